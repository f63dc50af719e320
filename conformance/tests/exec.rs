//! `exec`: a new process in a running container with runc's flags (env, cwd, user, groups,
//! capabilities, no_new_privs, --process, detach + pid file, preserve-fds), its exit status and
//! signals, the namespaces and cgroup it joins, and paused containers.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coracle_conformance::{cap_mask, existing_cgroup_dirs, guarded, thaw_cgroup, Bundle, Runtime};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// A running container (`sleep`) made from a bundle adjusted by `configure`.
fn running(rt: &Runtime, configure: impl FnOnce(&mut Bundle)) -> (Bundle, String) {
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    configure(&mut b);
    let id = rt.run_detached(&b);
    (b, id)
}

/// The `/proc/<pid>/status` line starting with `key` (e.g. `CapEff:`), value trimmed.
fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn ns_of(pid: i64, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
}

#[test]
fn exec_env_adds_to_the_config_env() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |b| {
        b.env(&["PATH=/bin:/usr/bin", "FROM_CONFIG=yes", "OVERRIDE=old"]);
    });
    let out = rt.exec_sh(
        &id,
        &["-e", "NEW=1", "-e", "OVERRIDE=new"],
        "echo NEW=$NEW; echo OVERRIDE=$OVERRIDE; echo FROM_CONFIG=$FROM_CONFIG; echo PATH=$PATH",
    );
    out.ok();
    assert_eq!(out.expect_field("NEW"), "1", "\n{out}");
    assert_eq!(out.expect_field("OVERRIDE"), "new", "\n{out}");
    assert_eq!(out.expect_field("FROM_CONFIG"), "yes", "\n{out}");
    assert_eq!(out.expect_field("PATH"), "/bin:/usr/bin", "\n{out}");
}

#[test]
fn exec_cwd_defaults_to_the_config_and_follows_the_flag() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |b| {
        b.cwd("/home/tester");
    });
    let out = rt.exec_sh(&id, &[], "echo PWD=$(pwd)");
    out.ok();
    assert_eq!(out.expect_field("PWD"), "/home/tester", "\n{out}");
    let out = rt.exec_sh(&id, &["--cwd", "/tmp"], "echo PWD=$(pwd)");
    out.ok();
    assert_eq!(out.expect_field("PWD"), "/tmp", "\n{out}");
}

#[test]
fn exec_user_and_additional_gids() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |_| {});
    let out = rt.exec_sh(
        &id,
        &["-u", "1000:1000", "-g", "10", "-g", "20"],
        "echo UID=$(id -u); echo GID=$(id -g); grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    );
    out.ok();
    assert_eq!(out.expect_field("UID"), "1000", "\n{out}");
    assert_eq!(out.expect_field("GID"), "1000", "\n{out}");
    let g = status_field(&out.stdout, "Groups:");
    let mut groups: Vec<&str> = g.split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(
        groups,
        vec!["10", "20"],
        "Groups of the exec'd process\n{out}"
    );
    assert_eq!(
        status_field(&out.stdout, "Uid:")
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["1000"; 4],
        "\n{out}"
    );
}

#[test]
fn exec_user_defaults_to_the_config_user() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |b| {
        b.user(1000, 1000);
    });
    let out = rt.exec_sh(&id, &[], "echo UID=$(id -u); echo GID=$(id -g)");
    out.ok();
    assert_eq!(out.expect_field("UID"), "1000", "\n{out}");
    assert_eq!(out.expect_field("GID"), "1000", "\n{out}");
}

#[test]
fn exec_capabilities_from_the_config_and_cap_flag() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |_| {});
    let base = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let script = "grep -E '^Cap(Eff|Bnd|Prm):' /proc/self/status";
    let out = rt.exec_sh(&id, &[], script);
    out.ok();
    for key in ["CapEff:", "CapBnd:", "CapPrm:"] {
        assert_eq!(
            status_field(&out.stdout, key),
            cap_mask(&base),
            "{key}\n{out}"
        );
    }
    let out = rt.exec_sh(
        &id,
        &["--cap", "CAP_SYS_ADMIN", "--cap", "CAP_CHOWN"],
        script,
    );
    out.ok();
    let more = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN",
        "CAP_CHOWN",
    ];
    for key in ["CapEff:", "CapBnd:", "CapPrm:"] {
        assert_eq!(
            status_field(&out.stdout, key),
            cap_mask(&more),
            "{key}\n{out}"
        );
    }
}

#[test]
fn exec_no_new_privs_flag() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |b| {
        b.no_new_privileges(false);
    });
    let script = "grep NoNewPrivs /proc/self/status";
    let out = rt.exec_sh(&id, &[], script);
    out.ok();
    assert_eq!(status_field(&out.stdout, "NoNewPrivs:"), "0", "\n{out}");
    let out = rt.exec_sh(&id, &["--no-new-privs"], script);
    out.ok();
    assert_eq!(status_field(&out.stdout, "NoNewPrivs:"), "1", "\n{out}");
}

#[test]
fn exec_process_json() {
    // With --process the file describes the process; the other process flags are ignored.
    let rt = Runtime::new();
    let (b, id) = running(&rt, |_| {});
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", guarded("echo X=$X; echo PWD=$(pwd); echo UID=$(id -u)")],
        "env": ["PATH=/bin", "X=from-json"],
        "cwd": "/tmp"
    });
    let file = b.path().join("process.json");
    fs::write(&file, process.to_string()).unwrap();
    let out = rt.exec(&[
        "exec",
        "--process",
        file.to_str().unwrap(),
        "-e",
        "X=from-flag",
        "--cwd",
        "/",
        &id,
    ]);
    out.ok();
    assert_eq!(out.expect_field("X"), "from-json", "\n{out}");
    assert_eq!(out.expect_field("PWD"), "/tmp", "\n{out}");
    assert_eq!(out.expect_field("UID"), "1000", "\n{out}");
}

#[test]
fn exec_exit_status_and_death_by_signal() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |_| {});
    let out = rt.exec_sh(&id, &[], "exit 42");
    assert_eq!(out.code, Some(42), "\n{out}");
    let out = rt.exec_sh(&id, &[], "kill -9 $$");
    assert_eq!(out.code, Some(128 + 9), "\n{out}");
    let out = rt.exec_sh(&id, &[], "kill -TERM $$");
    assert_eq!(out.code, Some(128 + 15), "\n{out}");
    let out = rt.exec_in(&id, &[], &["/no/such/program"]);
    out.fails();
    // The container is unaffected.
    assert_eq!(rt.state(&id)["status"], "running");
}

#[test]
fn exec_forwards_signals() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |_| {});
    let script =
        guarded("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    let proc = rt.spawn(&["exec", &id, "sh", "-c", &script]);
    proc.wait_stdout("ready", WAIT);
    let st = Command::new("kill")
        .args(["-TERM", &proc.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = proc.wait();
    assert_eq!(out.code, Some(7), "SIGTERM was not forwarded\n{out}");
    assert!(out.stdout.contains("got-term"), "\n{out}");
}

#[test]
fn exec_detach_writes_the_pid_file_and_joins_everything() {
    let rt = Runtime::new();
    let (b, id) = running(&rt, |_| {});
    let init = rt.init_pid(&id);
    let pid_file = b.path().join("exec.pid");
    let out = rt.exec_in(
        &id,
        &["-d", "--pid-file", pid_file.to_str().unwrap()],
        &["sleep", "999"],
    );
    out.ok();
    let text = fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("pid file: {e}\n{out}"));
    let pid: i64 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {text:?}: {e}"));
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert_eq!(
        cmdline, "sleep\u{0}999\u{0}",
        "the pid file names pid {pid}, which is not the exec'd process"
    );
    for kind in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            ns_of(pid, kind),
            ns_of(init, kind),
            "exec'd process is not in the container's {kind} namespace"
        );
    }
    let cg = |p: i64| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap_or_default();
    assert_eq!(
        cg(pid),
        cg(init),
        "exec'd process is not in the container's cgroups"
    );
    assert_eq!(rt.state(&id)["status"], "running");
}

/// `exec --preserve-fds N` with fd 3 opened (on a marker file) by a host shell.
fn exec_with_fd3(
    rt: &Runtime,
    b: &Bundle,
    id: &str,
    extra: &[&str],
) -> coracle_conformance::Output {
    let marker = b.path().join("fd3-marker");
    fs::write(&marker, "marker-from-fd3\n").expect("write marker");
    let mut args: Vec<String> = rt.global_args();
    args.push("exec".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        id.to_string(),
        "sh".into(),
        "-c".into(),
        guarded(
            "if [ -e /proc/self/fd/3 ]; then echo FD3=open; read -r line <&3; echo DATA=$line; \
             else echo FD3=closed; fi",
        ),
    ]);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec 3<\"$0\"; exec \"$@\"")
        .arg(&marker)
        .arg(rt.bin())
        .args(&args)
        .stdin(Stdio::null());
    let describe = format!("(fd 3 open) {} {}", rt.bin().display(), args.join(" "));
    rt.exec_command(cmd, &describe)
}

#[test]
fn exec_preserve_fds() {
    let rt = Runtime::new();
    let (b, id) = running(&rt, |_| {});
    let out = exec_with_fd3(&rt, &b, &id, &[]);
    out.ok();
    assert_eq!(out.expect_field("FD3"), "closed", "\n{out}");
    let out = exec_with_fd3(&rt, &b, &id, &["--preserve-fds", "1"]);
    out.ok();
    assert_eq!(out.expect_field("FD3"), "open", "\n{out}");
    assert_eq!(out.expect_field("DATA"), "marker-from-fd3", "\n{out}");
}

#[test]
fn exec_into_a_new_pid_namespace() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, |_| {});
    let init = rt.init_pid(&id);
    let out = rt.exec_sh(
        &id,
        &[],
        "echo PID=$$; echo ONE=$(cat /proc/1/cmdline | tr '\\0' ' '); \
         echo NS=$(readlink /proc/self/ns/pid); echo PPID=$PPID",
    );
    out.ok();
    let pid: i64 = out.expect_field("PID").parse().unwrap();
    assert!(
        (2..100).contains(&pid),
        "the exec'd shell should see its pid in the container's namespace (small, not 1)\n{out}"
    );
    assert_eq!(
        out.expect_field("ONE"),
        "sleep 1000",
        "pid 1 should be the container's init\n{out}"
    );
    assert_eq!(out.expect_field("NS"), ns_of(init, "pid"), "\n{out}");
    // Its parent is outside the namespace: getppid() reads 0.
    assert_eq!(out.expect_field("PPID"), "0", "\n{out}");
}

#[test]
fn exec_into_a_joined_pid_namespace() {
    let rt = Runtime::new();
    let (_a, first) = running(&rt, |_| {});
    let first_init = rt.init_pid(&first);
    let ns_path = format!("/proc/{first_init}/ns/pid");
    let (_b, second) = running(&rt, |b| {
        b.add_namespace("pid", Some(&ns_path));
    });
    let second_init = rt.init_pid(&second);
    assert_eq!(ns_of(second_init, "pid"), ns_of(first_init, "pid"));
    let out = rt.exec_sh(
        &second,
        &[],
        "echo NS=$(readlink /proc/self/ns/pid); echo ONE=$(cat /proc/1/cmdline | tr '\\0' ' '); \
         echo PID=$$",
    );
    out.ok();
    assert_eq!(out.expect_field("NS"), ns_of(first_init, "pid"), "\n{out}");
    // pid 1 of the joined namespace is the first container's init.
    assert_eq!(out.expect_field("ONE"), "sleep 1000", "\n{out}");
    let pid: i64 = out.expect_field("PID").parse().unwrap();
    assert!(pid > 1 && pid < 1000, "\n{out}");
}

#[test]
fn exec_into_a_paused_container() {
    let rt = Runtime::new();
    let (b, id) = running(&rt, |_| {});
    rt.exec(&["pause", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "paused");
    let out = rt.exec_in(&id, &[], &["true"]);
    out.fails().stderr_mentions(&["paused"]);
    // --ignore-paused: the exec goes ahead; its process runs once the container is resumed (it
    // joins the frozen cgroup).
    let proc = rt.spawn(&["exec", "--ignore-paused", &id, "echo", "ran-after-resume"]);
    // Resume only once the exec's process has joined the (frozen) cgroup, so that the exec is
    // really waiting on the paused container.
    let procs = || {
        existing_cgroup_dirs(b.cgroup_path())
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().count())
            .max()
            .unwrap_or(0)
    };
    let t = Instant::now();
    while procs() < 2 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let resume = rt
        .spawn(&["resume", &id])
        .wait_within(Duration::from_secs(5));
    if !resume.success() {
        // Unfreeze it ourselves so that the exec and the cleanup can finish.
        thaw_cgroup(b.cgroup_path());
        let exec = proc.wait_within(Duration::from_secs(5));
        panic!("resume while an `exec --ignore-paused` waits failed:\n{resume}\nthe exec:\n{exec}");
    }
    let out = proc.wait();
    out.ok();
    assert_eq!(out.out(), "ran-after-resume", "\n{out}");
}

#[test]
fn exec_into_a_stopped_or_missing_container_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["true"]);
    let id = rt.new_id();
    rt.run_id(&id, &b, &["--detach"]).ok();
    rt.wait_status(&id, "stopped", WAIT);
    rt.exec_in(&id, &[], &["true"]).fails();
    rt.exec_in("no-such-container-here", &[], &["true"]).fails();
}

/// An exec'ed process is in the container's cgroup on every hierarchy (it joins by itself:
/// cloned into the cgroup2 directory, `0` written to the v1 `tasks` files), as the host sees it.
#[test]
fn exec_process_joins_the_container_cgroups() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.run_detached(&b);
    let init = rt.init_pid(&id);
    let pid_file = std::env::temp_dir().join(format!("coracle-test-execcg-{id}.pid"));
    let pf = pid_file.to_str().unwrap().to_string();
    rt.exec_in(&id, &["--detach", "--pid-file", &pf], &["sleep", "1000"])
        .ok();
    let pid = fs::read_to_string(&pid_file).unwrap();
    let _ = fs::remove_file(&pid_file);
    let cgroups = |p: &str| {
        let mut lines: Vec<String> = fs::read_to_string(format!("/proc/{p}/cgroup"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let (of_init, of_exec) = (cgroups(&init.to_string()), cgroups(pid.trim()));
    assert_ne!(
        of_init,
        cgroups("self"),
        "the init is in the runtime's cgroups, not the container's"
    );
    assert_eq!(of_exec, of_init, "exec'ed process vs init");
    rt.delete_force(&id).ok();
}
