//! The lifecycle through runc's command line: run, create/start/state/kill/delete, list, spec,
//! --version; and that delete leaves nothing behind.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use coracle_conformance::{
    existing_cgroup_dirs, host_mounts_mentioning, is_runc, wait_timeout, Bundle, Output, Runtime,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// Polls until the container created as `id` printed `needle` to its stdout.
#[track_caller]
fn wait_output(rt: &Runtime, id: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let (out, err) = rt.container_output(id);
        if out.contains(needle) {
            return out;
        }
        assert!(
            start.elapsed() < WAIT,
            "container {id} never printed {needle:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn pid_alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
}

/// Asserts nothing of container `id` is left: state dir, cgroup dirs, mounts of the bundle.
#[track_caller]
fn assert_nothing_left(rt: &Runtime, id: &str, bundle: &Bundle) {
    assert!(
        !rt.state_dir_exists(id),
        "state dir {} still exists",
        rt.root().join(id).display()
    );
    let cg = existing_cgroup_dirs(bundle.cgroup_path());
    assert!(cg.is_empty(), "cgroup dirs left: {cg:?}");
    let m = host_mounts_mentioning(bundle.path());
    assert!(
        m.is_empty(),
        "mounts of the bundle left on the host:\n{}",
        m.join("\n")
    );
    rt.state_raw(id).fails();
}

#[test]
fn run_returns_the_exit_status() {
    for code in [0, 3, 42, 255] {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.sh(&format!("echo before-exit; exit {code}"));
        let out = rt.run(&b);
        assert_eq!(out.code, Some(code), "exit {code}\n{out}");
        assert_eq!(out.out(), "before-exit", "\n{out}");
    }
}

#[test]
fn run_of_a_missing_program_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/bin/no-such-program"]);
    let out = rt.run(&b);
    out.fails()
        .stderr_mentions(&["no-such-program", "no such file", "not found"]);
}

#[test]
fn run_reports_death_by_signal_as_128_plus_n() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Without a PID namespace, the shell is not an init and can kill itself.
    b.namespaces(&["mount", "uts", "ipc", "network"]);
    b.sh("kill -9 $$; sleep 5");
    let out = rt.run(&b);
    assert_eq!(out.code, Some(137), "\n{out}");
}

#[test]
fn run_forwards_signals() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    b.write();
    let id = rt.new_id();
    let work = rt.work_dir().to_path_buf();
    let out_file = work.join("out");
    let mut cmd = rt.command(&["run", "--bundle", b.path_str(), &id]);
    cmd.stdout(fs::File::create(&out_file).unwrap())
        .stderr(fs::File::create(work.join("err")).unwrap());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while !fs::read_to_string(&out_file)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(start.elapsed() < WAIT, "container never got ready");
        thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_timeout(&mut child, WAIT);
    let stdout = fs::read_to_string(&out_file).unwrap_or_default();
    let stderr = fs::read_to_string(work.join("err")).unwrap_or_default();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(7),
        "run should exit with the container's status after forwarding TERM\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("got-term"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn state_transitions_created_running_stopped() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Proves the user process does not run before `start`.
    b.sh("touch /tmp/started; echo hello-from-container; sleep 1000");
    let id = rt.new_id();
    let pid_file = b.path().join("container.pid");
    rt.create_with(&id, &b, &["--pid-file", pid_file.to_str().unwrap()])
        .ok();

    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "{st:#}");
    assert_eq!(st["id"], id.as_str(), "{st:#}");
    assert_eq!(st["bundle"], b.path_str(), "{st:#}");
    assert!(
        st["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{st:#}"
    );
    let pid = st["pid"].as_i64().unwrap_or(0);
    assert!(
        pid > 0 && pid_alive(pid),
        "pid {pid} of a created container is not alive: {st:#}"
    );
    let from_file: i64 = fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(-1);
    assert_eq!(from_file, pid, "--pid-file content");
    assert!(
        !b.rootfs().join("tmp/started").exists(),
        "the user process ran before start"
    );

    rt.start(&id).ok();
    wait_output(&rt, &id, "hello-from-container");
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st:#}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "{st:#}");
    assert!(b.rootfs().join("tmp/started").exists());

    rt.kill(&id, "KILL").ok();
    let st = rt.wait_status(&id, "stopped", WAIT);
    assert_eq!(st["id"], id.as_str(), "{st:#}");
    assert!(!pid_alive(pid), "pid {pid} still alive after SIGKILL");

    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn container_that_exits_reads_as_stopped() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo done");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    wait_output(&rt, &id, "done");
    rt.wait_status(&id, "stopped", WAIT);
    // A stopped container cannot be started again.
    rt.start(&id).fails();
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn create_inherits_stdio_as_is() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo FD1=$(readlink /proc/$$/fd/1); echo FD2=$(readlink /proc/$$/fd/2)");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    let out = wait_output(&rt, &id, "FD2=");
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        field("FD1=").ends_with(&format!("create-{id}.out")),
        "fd 1 should be the stdout file given to create:\n{out}"
    );
    assert!(
        field("FD2=").ends_with(&format!("create-{id}.err")),
        "fd 2 should be the stderr file given to create:\n{out}"
    );
}

/// A container that reports the signals it gets on stdout and exits on TERM.
fn signal_reporter(rt: &Runtime) -> (String, Bundle) {
    let mut b = Bundle::new();
    b.sh(
        "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 0' TERM; echo ready; \
         while :; do sleep 0.05; done",
    );
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    wait_output(rt, &id, "ready");
    (id, b)
}

#[test]
fn kill_with_signal_names_and_numbers() {
    for sig in ["TERM", "SIGTERM", "15"] {
        let rt = Runtime::new();
        let (id, b) = signal_reporter(&rt);
        rt.kill(&id, sig).ok();
        wait_output(&rt, &id, "got-term");
        rt.wait_status(&id, "stopped", WAIT);
        rt.delete(&id).ok();
        assert_nothing_left(&rt, &id, &b);
    }
}

#[test]
fn kill_non_fatal_signal_then_kill_9() {
    let rt = Runtime::new();
    let (id, b) = signal_reporter(&rt);
    rt.kill(&id, "USR1").ok();
    wait_output(&rt, &id, "got-usr1");
    assert_eq!(rt.state(&id)["status"], "running");
    rt.kill(&id, "SIGUSR1").ok();
    rt.kill(&id, "10").ok(); // SIGUSR1 on x86_64
    rt.kill(&id, "9").ok();
    rt.wait_status(&id, "stopped", WAIT);
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn kill_defaults_to_term() {
    let rt = Runtime::new();
    let (id, _b) = signal_reporter(&rt);
    rt.exec(&["kill", &id]).ok();
    wait_output(&rt, &id, "got-term");
    rt.wait_status(&id, "stopped", WAIT);
}

#[test]
fn kill_all() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000 & sleep 1000 & echo ready; wait");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    wait_output(&rt, &id, "ready");
    rt.exec(&["kill", "--all", &id, "KILL"]).ok();
    rt.wait_status(&id, "stopped", WAIT);
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn kill_a_created_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.kill(&id, "KILL").ok();
    rt.wait_status(&id, "stopped", WAIT);
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.delete(&id)
        .fails()
        .stderr_mentions(&["running", "not stopped", "force"]);
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "a failed delete changed the container"
    );
    rt.delete_force(&id).ok();
    let start = Instant::now();
    while pid_alive(pid) {
        assert!(start.elapsed() < WAIT, "pid {pid} survived delete --force");
        thread::sleep(Duration::from_millis(10));
    }
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn delete_force_of_a_created_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.delete_force(&id).ok();
    thread::sleep(Duration::from_millis(50));
    assert!(!pid_alive(pid), "init {pid} survived delete --force");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn delete_force_of_a_gone_container_succeeds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("true");
    let id = rt.new_id();
    rt.run_id(&id, &b, &[]).ok();
    // `run` without --keep already deleted it; containerd then calls delete --force.
    rt.delete_force(&id).ok();
    rt.delete_force(&id).ok();
    rt.delete_force("never-existed-xyz").ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_cleans_up_after_itself() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("exit 0");
    let id = rt.new_id();
    rt.run_id(&id, &b, &[]).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_keep_keeps_the_stopped_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("exit 5");
    let id = rt.new_id();
    let out = rt.run_id(&id, &b, &["--keep"]);
    assert_eq!(out.code, Some(5), "\n{out}");
    assert_eq!(rt.state(&id)["status"], "stopped");
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn run_detach() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    let out = rt.run_id(&id, &b, &["--detach"]);
    out.ok();
    assert_eq!(rt.state(&id)["status"], "running");
    rt.kill(&id, "KILL").ok();
    rt.wait_status(&id, "stopped", WAIT);
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

fn list_json(rt: &Runtime) -> Vec<Value> {
    let out = rt.exec(&["list", "--format", "json"]);
    out.ok();
    let v: Value = serde_json::from_str(out.out())
        .unwrap_or_else(|e| panic!("list --format json is not JSON ({e}):\n{out}"));
    match v {
        Value::Null => Vec::new(), // runc prints `null` for no containers
        Value::Array(a) => a,
        other => panic!("list --format json should be an array: {other}"),
    }
}

#[test]
fn list_formats() {
    let rt = Runtime::new();
    assert!(list_json(&rt).is_empty(), "fresh root should list nothing");
    let out = rt.exec(&["list", "-q"]);
    out.ok();
    assert_eq!(out.out(), "", "\n{out}");

    let mut b1 = Bundle::new();
    b1.sh("sleep 1000");
    let mut b2 = Bundle::new();
    b2.sh("sleep 1000");
    let (id1, id2) = (rt.new_id(), rt.new_id());
    rt.create(&id1, &b1).ok();
    rt.create(&id2, &b2).ok();
    rt.start(&id2).ok();

    let out = rt.exec(&["list"]);
    out.ok();
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        vec!["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "\n{out}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r.first() == Some(&id))
            .unwrap_or_else(|| panic!("no row for {id}\n{out}"))
            .clone()
    };
    assert_eq!(row(&id1)[2], "created", "\n{out}");
    assert_eq!(row(&id2)[2], "running", "\n{out}");
    assert_eq!(row(&id1)[3], b1.path_str(), "\n{out}");

    let out = rt.exec(&["list", "--quiet"]);
    out.ok();
    let mut ids: Vec<&str> = out.stdout.lines().collect();
    ids.sort_unstable();
    let mut want = vec![id1.as_str(), id2.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "\n{out}");

    let all = list_json(&rt);
    assert_eq!(all.len(), 2, "{all:?}");
    for c in &all {
        for key in ["id", "pid", "status", "bundle", "created", "owner"] {
            assert!(c.get(key).is_some(), "list json entry lacks {key}: {c}");
        }
        let want = if c["id"] == id1.as_str() {
            "created"
        } else {
            "running"
        };
        assert_eq!(c["status"], want, "{c}");
        assert!(c["pid"].as_i64().unwrap_or(0) > 0, "{c}");
    }
    rt.delete_force(&id1).ok();
    rt.delete_force(&id2).ok();
    assert!(list_json(&rt).is_empty());
}

#[test]
fn spec_writes_a_runnable_config() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let dir = b.path();
    rt.exec(&["spec", "--bundle", b.path_str()]).ok();
    let text = fs::read_to_string(dir.join("config.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    assert!(
        spec["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{spec:#}"
    );
    assert_eq!(
        spec["process"]["args"],
        serde_json::json!(["sh"]),
        "{spec:#}"
    );
    assert_eq!(spec["root"]["path"], "rootfs", "{spec:#}");
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&want), "spec lacks {want} namespace: {ns:?}");
    }
    // A second `spec` refuses to overwrite.
    rt.exec(&["spec", "--bundle", b.path_str()])
        .fails()
        .stderr_mentions(&["exist"]);

    // The generated config runs our rootfs (non-terminal).
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["process"]["args"] = serde_json::json!(["echo", "spec-ran"]);
    spec["linux"]["cgroupsPath"] = serde_json::json!(b.cgroup_path());
    let mut b = b;
    b.config = spec;
    let out = rt.run(&b);
    out.ok();
    assert_eq!(out.out(), "spec-ran", "\n{out}");
}

#[test]
fn spec_rootless() {
    let rt = Runtime::new();
    let b = Bundle::new();
    rt.exec(&["spec", "--rootless", "--bundle", b.path_str()])
        .ok();
    let text = fs::read_to_string(b.path().join("config.json")).unwrap();
    let spec: Value = serde_json::from_str(&text).unwrap();
    let ns: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(
        ns.contains(&"user"),
        "rootless spec lacks a user namespace: {ns:?}"
    );
    assert!(
        !ns.contains(&"network"),
        "rootless spec has a network namespace: {ns:?}"
    );
    for key in ["uidMappings", "gidMappings"] {
        let m = &spec["linux"][key][0];
        assert_eq!(m["containerID"], 0, "{key}: {spec:#}");
        assert_eq!(m["size"], 1, "{key}: {spec:#}");
    }
}

#[test]
fn version_output() {
    let rt = Runtime::new();
    let out = rt.exec(&["--version"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.contains(" version ")),
        "\n{out}"
    );
    assert!(lines.iter().any(|l| l.starts_with("commit: ")), "\n{out}");
    let spec = lines
        .iter()
        .find_map(|l| l.strip_prefix("spec: "))
        .unwrap_or_else(|| panic!("no `spec: ` line\n{out}"));
    assert!(spec.starts_with("1."), "\n{out}");
    if is_runc() {
        eprintln!("SKIPPED for runc: the coracle-specific version text");
        return;
    }
    assert!(lines[0].starts_with("coracle version "), "\n{out}");
    assert_eq!(spec, "1.3.0", "\n{out}");
}

#[test]
fn json_log_records_errors() {
    let rt = Runtime::with_json_log();
    let out = rt.exec(&["state", "no-such-container-xyz"]);
    out.fails();
    let log = rt.log_text();
    let entries: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}")))
        .collect();
    let err = entries
        .iter()
        .find(|e| e["level"] == "error")
        .unwrap_or_else(|| panic!("no error entry in the JSON log:\n{log}\n{out}"));
    assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    assert!(err["time"].is_string(), "{err}");
}

#[test]
fn many_containers_in_parallel() {
    let rt = Runtime::new();
    let bundles: Vec<(String, Bundle)> = (0..6)
        .map(|i| {
            let mut b = Bundle::new();
            b.sh(&format!("echo n={i}"));
            (rt.new_id(), b)
        })
        .collect();
    thread::scope(|s| {
        let handles: Vec<_> = bundles
            .iter()
            .map(|(id, b)| s.spawn(|| rt.run_id(id, b, &[])))
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let out: Output = h.join().unwrap();
            out.ok();
            assert_eq!(out.out(), format!("n={i}"), "\n{out}");
        }
    });
    for (id, b) in &bundles {
        assert_nothing_left(&rt, id, b);
    }
}

#[test]
fn create_passes_stdio_pipes_through() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::process::Stdio;

    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo FD0=$(readlink /proc/$$/fd/0); echo FD1=$(readlink /proc/$$/fd/1); cat");
    b.write();
    let id = rt.new_id();
    let mut cmd = rt.command(&["create", "--bundle", b.path_str(), &id]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let in_pipe = fs::read_link(format!("/proc/self/fd/{}", stdin.as_raw_fd())).unwrap();
    let out_pipe = fs::read_link(format!("/proc/self/fd/{}", stdout.as_raw_fd())).unwrap();
    let status = wait_timeout(&mut child, WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "create failed");
    rt.start(&id).ok();
    let mut stdin = stdin;
    std::io::Write::write_all(&mut stdin, b"through-the-pipe\n").unwrap();
    drop(stdin);
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    rt.wait_status(&id, "stopped", WAIT);
    let out = reader.join().unwrap();
    assert!(
        out.contains(&format!("FD0={}", in_pipe.display())),
        "fd 0 should be our pipe {}:\n{out}",
        in_pipe.display()
    );
    assert!(
        out.contains(&format!("FD1={}", out_pipe.display())),
        "fd 1 should be our pipe {}:\n{out}",
        out_pipe.display()
    );
    assert!(
        out.contains("through-the-pipe"),
        "stdin did not reach the container:\n{out}"
    );
}

#[test]
fn start_after_the_init_died_fails_fast() {
    // `start` must not hang on the exec FIFO when the container's init is gone.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while pid_alive(pid) {
        assert!(start.elapsed() < WAIT, "init {pid} survived SIGKILL");
        thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    let out = rt.start(&id);
    out.fails();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "start took {:?} on a dead init\n{out}",
        t.elapsed()
    );
    assert_eq!(rt.state(&id)["status"], "stopped");
    rt.delete(&id).ok();
    assert_nothing_left(&rt, &id, &b);
}

/// Output to a reader that went away (`coracle state ID | head -c1`) ends the command quietly,
/// with no panic (Rust ignores SIGPIPE: a plain println! would panic on EPIPE).
#[test]
fn output_to_a_closed_pipe_is_no_panic() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.run_detached(&b);
    for args in [vec!["state", id.as_str()], vec!["list", "--format", "json"]] {
        let mut child = Command::new(rt.bin())
            .args(rt.global_args())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before the runtime writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{args:?} panicked on a closed stdout:\n{stderr}"
        );
        assert!(
            out.status.success(),
            "{args:?} on a closed stdout: {:?}\n{stderr}",
            out.status
        );
    }
    rt.delete_force(&id).ok();
}
