//! Hooks: prestart, createRuntime, createContainer, startContainer, poststart and poststop,
//! each recording its state JSON (stdin), args, env, namespaces and root; their order and
//! moments; and each kind's failure path (and a timeout).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coracle_conformance::{
    existing_cgroup_dirs, host_mounts_mentioning, host_ns, is_runc, skip_for_runc, unique, Bundle,
    Output, Runtime,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// The hooks' environment (exactly this, per the spec).
const HOOK_ENV: [&str; 2] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOOK_VAR=hook-value"];

/// Records everything about the hook into `$1/<kind>.*` and appends the kind to `$1/order`.
/// `$0` is `hook-<kind>`, `$2` a second argument.
const RECORDER: &str = r#"k=${0#hook-}; d=$1
cat > "$d/$k.state"
echo "$0|$2" > "$d/$k.args"
env > "$d/$k.env"
for n in mnt uts pid net; do echo "$n=$(readlink /proc/self/ns/$n)"; done > "$d/$k.ns"
if [ -e /.coracle-test-rootfs ]; then echo in-rootfs; else echo host-root; fi > "$d/$k.root"
if [ -e /tmp/process-started ]; then echo yes; else echo no; fi > "$d/$k.process"
echo "$k" >> "$d/order""#;

/// The container's process: marks that it started, then waits.
const PROCESS: &str = "touch /tmp/process-started; sleep 1000";

/// A recording hook of `kind` writing into `dir`.
fn recording_hook(b: &mut Bundle, kind: &str, dir: &str) {
    let name = format!("hook-{kind}");
    b.hook(
        kind,
        "/bin/sh",
        &["sh", "-c", RECORDER, &name, dir, "second arg"],
        &HOOK_ENV,
        None,
    );
}

/// Runs the binary with `args` and `CORACLE_LEAK_PROBE` in its environment.
fn with_probe(rt: &Runtime, args: &[&str]) -> Output {
    let mut cmd = rt.command(args);
    cmd.env("CORACLE_LEAK_PROBE", "leaked");
    rt.exec_command(cmd, &format!("(with env probe) {}", args.join(" ")))
}

/// What one hook recorded.
struct Record {
    kind: String,
    state: Value,
    args: String,
    env: String,
    ns: String,
    root: String,
    process: String,
}

impl Record {
    #[track_caller]
    fn read(dir: &Path, kind: &str) -> Record {
        let f = |ext: &str| {
            let p = dir.join(format!("{kind}.{ext}"));
            fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("the {kind} hook left no {}: {e}", p.display()))
        };
        let raw = f("state");
        let state = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("{kind} hook's stdin is not JSON ({e}): {raw:?}"));
        Record {
            kind: kind.to_string(),
            state,
            args: f("args").trim().to_string(),
            env: f("env"),
            ns: f("ns"),
            root: f("root").trim().to_string(),
            process: f("process").trim().to_string(),
        }
    }

    fn ns(&self, kind: &str) -> String {
        let prefix = format!("{kind}=");
        self.ns
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_default()
            .to_string()
    }

    /// The checks common to every hook: state id/bundle/ociVersion, args, env.
    #[track_caller]
    fn check_common(&self, id: &str, bundle: &Bundle) {
        let k = &self.kind;
        let st = &self.state;
        assert_eq!(st["id"], id, "{k} state: {st}");
        assert!(st["ociVersion"].is_string(), "{k} state: {st}");
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap_or_default()),
            bundle.path(),
            "{k} state: {st}"
        );
        assert_eq!(self.args, format!("hook-{k}|second arg"), "{k} args");
        assert!(
            self.env.lines().any(|l| l == "HOOK_VAR=hook-value"),
            "{k} hook env lacks HOOK_VAR:\n{}",
            self.env
        );
        assert!(
            !self.env.contains("CORACLE_LEAK_PROBE"),
            "the runtime's environment leaked into the {k} hook:\n{}",
            self.env
        );
    }

    #[track_caller]
    fn check_status(&self, status: &str) {
        assert_eq!(
            self.state["status"], status,
            "{} state: {}",
            self.kind, self.state
        );
    }

    #[track_caller]
    fn check_pid(&self, pid: i64) {
        assert_eq!(
            self.state["pid"], pid,
            "{} state: {}",
            self.kind, self.state
        );
    }

    /// Ran in the runtime's (host's) mount and uts namespaces, outside the rootfs.
    #[track_caller]
    fn check_runtime_namespace(&self) {
        assert_eq!(self.ns("mnt"), host_ns("mnt"), "{} mnt ns", self.kind);
        assert_eq!(self.ns("uts"), host_ns("uts"), "{} uts ns", self.kind);
        assert_eq!(self.root, "host-root", "{} root", self.kind);
    }

    /// Ran in the container's mount, uts, pid and net namespaces.
    #[track_caller]
    fn check_container_namespaces(&self, init: i64) {
        for n in ["mnt", "uts", "pid", "net"] {
            assert_eq!(
                self.ns(n),
                ns_of(init, n),
                "{} hook should run in the container's {n} namespace",
                self.kind
            );
        }
    }
}

fn ns_of(pid: i64, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
}

/// The hooks recorded so far, in order (for runc 1.1, which runs poststart hooks at create
/// instead of start, without poststart).
fn order(dir: &Path) -> Vec<String> {
    let mut list: Vec<String> = fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    if is_runc() {
        list.retain(|k| k != "poststart");
    }
    list
}

fn wait_file(p: &Path) {
    let start = Instant::now();
    while !p.exists() {
        assert!(start.elapsed() < WAIT, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A host dir for the host-side hooks' records, and a dir in the rootfs (`/tmp/hooks-…` inside)
/// for startContainer's (it does not exist on the host, so a hook run there by mistake fails).
fn record_dirs(rt: &Runtime, b: &Bundle) -> (PathBuf, String) {
    let host = rt.work_dir().join("hooks");
    fs::create_dir_all(&host).expect("mkdir hooks");
    let inside = format!("/tmp/{}", unique("hooks"));
    fs::create_dir_all(b.rootfs().join(inside.trim_start_matches('/'))).expect("mkdir");
    (host, inside)
}

#[test]
fn every_hook_runs_with_its_state_at_its_moment() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(PROCESS);
    let (host, inside) = record_dirs(&rt, &b);
    let host_s = host.to_str().expect("utf-8 path");
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        recording_hook(&mut b, kind, host_s);
    }
    recording_hook(&mut b, "startContainer", &inside);
    b.write();
    let id = rt.new_id();

    // create: prestart, createRuntime, createContainer, in that order.
    let out = with_probe(&rt, &["create", "--bundle", b.path_str(), &id]);
    out.ok();
    assert_eq!(
        order(&host),
        ["prestart", "createRuntime", "createContainer"],
        "hooks run by create (records in {})\n{out}",
        host.display()
    );
    let init = rt.init_pid(&id);
    for kind in ["prestart", "createRuntime"] {
        let r = Record::read(&host, kind);
        r.check_common(&id, &b);
        r.check_status("creating");
        r.check_pid(init);
        r.check_runtime_namespace();
        assert_eq!(r.process, "no");
    }
    let r = Record::read(&host, "createContainer");
    r.check_common(&id, &b);
    r.check_status("creating");
    assert!(r.state["pid"].as_i64().unwrap_or(0) > 0, "{}", r.state);
    r.check_container_namespaces(init);
    assert_eq!(
        r.root, "host-root",
        "createContainer runs before pivot_root"
    );
    assert!(
        !b.rootfs()
            .join(inside.trim_start_matches('/'))
            .join("order")
            .exists(),
        "startContainer ran at create"
    );

    // start: startContainer inside the container before the process, then poststart.
    let out = with_probe(&rt, &["start", &id]);
    out.ok();
    wait_file(&b.rootfs().join("tmp/process-started"));
    let expected: &[&str] = if is_runc() {
        &["prestart", "createRuntime", "createContainer"]
    } else {
        &["prestart", "createRuntime", "createContainer", "poststart"]
    };
    assert_eq!(order(&host), expected, "\n{out}");
    let in_rootfs = b.rootfs().join(inside.trim_start_matches('/'));
    let r = Record::read(&in_rootfs, "startContainer");
    r.check_common(&id, &b);
    r.check_container_namespaces(init);
    assert_eq!(
        r.root, "in-rootfs",
        "startContainer runs inside the container"
    );
    assert_eq!(
        r.process, "no",
        "startContainer must run before the process"
    );
    if !is_runc() {
        let r = Record::read(&host, "poststart");
        r.check_common(&id, &b);
        r.check_status("running");
        r.check_pid(init);
        r.check_runtime_namespace();
    }

    // delete: poststop.
    rt.kill(&id, "KILL").ok();
    rt.wait_status(&id, "stopped", WAIT);
    let out = with_probe(&rt, &["delete", &id]);
    out.ok();
    assert_eq!(
        order(&host).last().map(String::as_str),
        Some("poststop"),
        "\n{out}"
    );
    let r = Record::read(&host, "poststop");
    r.check_common(&id, &b);
    r.check_status("stopped");
    r.check_runtime_namespace();
}

/// A bundle whose `kind` hook fails (exit 3, after saying so on stderr) and whose process
/// marks that it started.
fn failing(kind: &str) -> Bundle {
    let mut b = Bundle::new();
    b.sh(PROCESS);
    b.hook(
        kind,
        "/bin/sh",
        &["sh", "-c", "echo hook-is-failing >&2; exit 3"],
        &HOOK_ENV,
        None,
    );
    b
}

/// Asserts nothing of container `id` is left: state dir, cgroup dirs, mounts of the bundle.
#[track_caller]
fn assert_nothing_left(rt: &Runtime, id: &str, b: &Bundle) {
    assert!(!rt.state_dir_exists(id), "state dir of {id} left");
    let cg = existing_cgroup_dirs(b.cgroup_path());
    assert!(cg.is_empty(), "cgroup dirs left: {cg:?}");
    let m = host_mounts_mentioning(b.path());
    assert!(m.is_empty(), "mounts left:\n{}", m.join("\n"));
}

#[track_caller]
fn create_fails_and_cleans_up(kind: &str) {
    let rt = Runtime::new();
    let b = failing(kind);
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.fails().stderr_mentions(&["hook", kind]);
    assert!(
        !b.rootfs().join("tmp/process-started").exists(),
        "the process ran despite the failing {kind} hook"
    );
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn failing_prestart_hook_fails_create() {
    create_fails_and_cleans_up("prestart");
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    create_fails_and_cleans_up("createRuntime");
}

#[test]
fn failing_create_container_hook_fails_create() {
    create_fails_and_cleans_up("createContainer");
}

#[test]
fn failing_start_container_hook_stops_the_process() {
    let rt = Runtime::new();
    let b = failing("startContainer");
    let id = rt.new_id();
    let out = rt.run_id(&id, &b, &[]);
    out.fails();
    assert!(
        !b.rootfs().join("tmp/process-started").exists(),
        "the process ran despite the failing startContainer hook\n{out}"
    );
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn failing_poststart_hook_kills_the_container() {
    if skip_for_runc("runc 1.1 runs poststart hooks at create") {
        return;
    }
    let rt = Runtime::new();
    let b = failing("poststart");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    let init = rt.init_pid(&id);
    let out = rt.start(&id);
    out.fails().stderr_mentions(&["hook", "poststart"]);
    let start = Instant::now();
    while Path::new(&format!("/proc/{init}")).exists()
        && !fs::read_to_string(format!("/proc/{init}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(
            start.elapsed() < WAIT,
            "the container's init {init} survived its failing poststart hook"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.delete_force(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn failing_poststop_hook_is_only_a_warning() {
    let rt = Runtime::new();
    let b = failing("poststop");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    rt.kill(&id, "KILL").ok();
    rt.wait_status(&id, "stopped", WAIT);
    let out = rt.delete(&id);
    out.ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn hook_timeout_fails_create() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(PROCESS);
    b.hook(
        "createRuntime",
        "/bin/sh",
        &["sh", "-c", "exec sleep 30"],
        &HOOK_ENV,
        Some(1),
    );
    let id = rt.new_id();
    let t = Instant::now();
    let out = rt.create(&id, &b);
    out.fails();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "create took {:?} with a 1 s hook timeout\n{out}",
        t.elapsed()
    );
    assert_nothing_left(&rt, &id, &b);
}
