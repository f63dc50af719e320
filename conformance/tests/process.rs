//! The container process: args, env, cwd, user, umask, capabilities, no_new_privs, rlimits,
//! stdio and inherited fds, each checked from inside the container.

use std::io::Write;
use std::process::Stdio;

use coracle_conformance::{cap_mask, run_script, wait_timeout, Bundle, Runtime};

#[test]
fn args_are_passed_verbatim() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["echo", "one", "two  three", "$HOME", "*"]);
    let out = rt.run(&b);
    out.ok();
    assert_eq!(out.stdout, "one two  three $HOME *\n", "\n{out}");
}

#[test]
fn env_is_exactly_the_config() {
    let out = run_script(
        |b| {
            b.env(&["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY="]);
        },
        "echo FOO=$FOO; echo PATH=$PATH; echo EMPTY_SET=${EMPTY+yes}; echo TERM=${TERM-unset}",
    );
    assert_eq!(out.expect_field("FOO"), "bar baz", "\n{out}");
    assert_eq!(out.expect_field("PATH"), "/bin:/usr/bin", "\n{out}");
    assert_eq!(out.expect_field("EMPTY_SET"), "yes", "\n{out}");
    // Nothing from the runtime's own environment leaks in.
    assert_eq!(out.expect_field("TERM"), "unset", "\n{out}");
}

#[test]
fn runtime_environment_does_not_leak() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo LEAK=${CORACLE_LEAK_PROBE-none}");
    b.write();
    let id = rt.new_id();
    let mut cmd = rt.command(&["run", "--bundle", b.path_str(), &id]);
    cmd.env("CORACLE_LEAK_PROBE", "leaked");
    let out = rt.exec_command(cmd, "run (with env probe)");
    out.ok();
    assert_eq!(out.expect_field("LEAK"), "none", "\n{out}");
}

#[test]
fn cwd_is_the_config_cwd() {
    let out = run_script(
        |b| {
            std::fs::create_dir_all(b.rootfs().join("work/dir")).unwrap();
            b.cwd("/work/dir");
        },
        "echo PWD=$(pwd)",
    );
    assert_eq!(out.expect_field("PWD"), "/work/dir", "\n{out}");
}

#[test]
fn cwd_is_created_when_missing() {
    // runc creates a missing cwd inside the rootfs.
    let out = run_script(
        |b| {
            b.cwd("/does/not/exist/yet");
        },
        "echo PWD=$(pwd)",
    );
    assert_eq!(out.expect_field("PWD"), "/does/not/exist/yet", "\n{out}");
}

#[test]
fn root_user_by_default() {
    let out = run_script(
        |_| {},
        "echo UID=$(id -u); echo GID=$(id -g); echo HOME=$HOME",
    );
    assert_eq!(out.expect_field("UID"), "0", "\n{out}");
    assert_eq!(out.expect_field("GID"), "0", "\n{out}");
}

#[test]
fn uid_gid_and_additional_groups() {
    let out = run_script(
        |b| {
            b.user(1000, 1000).additional_gids(&[10, 20]);
        },
        "echo UID=$(id -u); echo GID=$(id -g); echo GROUPS=$(id -G); echo NAME=$(id -un); \
         grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    );
    assert_eq!(out.expect_field("UID"), "1000", "\n{out}");
    assert_eq!(out.expect_field("GID"), "1000", "\n{out}");
    assert_eq!(out.expect_field("NAME"), "tester", "\n{out}");
    let mut groups: Vec<u32> = out
        .expect_field("GROUPS")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    // The supplementary groups are exactly the additionalGids (the primary gid may be listed).
    let supp: Vec<u32> = groups.into_iter().filter(|g| *g != 1000).collect();
    assert_eq!(supp, vec![10, 20], "\n{out}");
    let status_groups = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .unwrap_or_default()
        .to_string();
    let mut sg: Vec<&str> = status_groups
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    sg.sort_unstable();
    assert_eq!(
        sg,
        vec!["10", "20"],
        "Groups line of /proc/self/status\n{out}"
    );
    for line in ["Uid:", "Gid:"] {
        let l = out.stdout.lines().find(|l| l.starts_with(line)).unwrap();
        let ids: Vec<&str> = l[line.len()..].split_whitespace().collect();
        assert_eq!(ids, vec!["1000"; 4], "real/effective/saved/fs ids\n{out}");
    }
}

#[test]
fn no_additional_groups_means_none() {
    let out = run_script(
        |b| {
            b.user(1000, 1000);
        },
        "grep '^Groups:' /proc/self/status",
    );
    assert_eq!(
        out.out().trim_start_matches("Groups:").trim(),
        "",
        "\n{out}"
    );
}

#[test]
fn umask_from_config() {
    let out = run_script(
        |b| {
            b.umask(0o027);
        },
        "echo UMASK=$(umask); touch /tmp/f; mkdir /tmp/d; echo F=$(stat -c %a /tmp/f); \
         echo D=$(stat -c %a /tmp/d)",
    );
    assert_eq!(out.expect_field("UMASK"), "0027", "\n{out}");
    assert_eq!(out.expect_field("F"), "640", "\n{out}");
    assert_eq!(out.expect_field("D"), "750", "\n{out}");
}

#[test]
fn umask_defaults_to_0022() {
    let out = run_script(|_| {}, "echo UMASK=$(umask)");
    assert_eq!(out.expect_field("UMASK"), "0022", "\n{out}");
}

fn status_field(out: &coracle_conformance::Output, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key}: line in /proc/self/status\n{out}"))
}

#[test]
fn capabilities_as_root() {
    let caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let out = run_script(
        |b| {
            b.caps_all(&caps).cap_set("inheritable", &["CAP_KILL"]);
        },
        "cat /proc/self/status",
    );
    let m = cap_mask(&caps);
    assert_eq!(status_field(&out, "CapBnd"), m, "CapBnd\n{out}");
    assert_eq!(status_field(&out, "CapEff"), m, "CapEff\n{out}");
    assert_eq!(status_field(&out, "CapPrm"), m, "CapPrm\n{out}");
    assert_eq!(
        status_field(&out, "CapInh"),
        cap_mask(&["CAP_KILL"]),
        "CapInh\n{out}"
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "NoNewPrivs\n{out}");
}

#[test]
fn capabilities_not_in_config_are_absent() {
    // No inheritable/ambient in the config: both empty (CVE-2022-29162 class).
    let caps = ["CAP_KILL"];
    let out = run_script(
        |b| {
            b.caps_all(&caps)
                .remove_cap_set("inheritable")
                .remove_cap_set("ambient");
        },
        "cat /proc/self/status",
    );
    assert_eq!(status_field(&out, "CapBnd"), cap_mask(&caps), "\n{out}");
    assert_eq!(status_field(&out, "CapEff"), cap_mask(&caps), "\n{out}");
    assert_eq!(status_field(&out, "CapInh"), "0000000000000000", "\n{out}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "\n{out}");
}

#[test]
fn ambient_capabilities_for_non_root() {
    let caps = ["CAP_NET_BIND_SERVICE"];
    let out = run_script(
        |b| {
            b.user(1000, 1000).caps_all(&caps).no_new_privileges(false);
        },
        "cat /proc/self/status",
    );
    let m = cap_mask(&caps);
    for key in ["CapEff", "CapPrm", "CapAmb", "CapInh", "CapBnd"] {
        assert_eq!(status_field(&out, key), m, "{key}\n{out}");
    }
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "\n{out}");
}

#[test]
fn non_root_without_ambient_has_no_effective_caps() {
    let caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"];
    let out = run_script(
        |b| {
            b.user(1000, 1000).caps_all(&caps).remove_cap_set("ambient");
        },
        "cat /proc/self/status",
    );
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000", "\n{out}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000000", "\n{out}");
    assert_eq!(status_field(&out, "CapBnd"), cap_mask(&caps), "\n{out}");
}

#[test]
fn capability_denies_what_is_missing() {
    // Without CAP_CHOWN even root cannot chown a file to someone else.
    let out = run_script(
        |b| {
            b.caps_all(&["CAP_KILL"]);
        },
        "touch /tmp/x; chown 1000 /tmp/x 2>/dev/null && echo CHOWN=yes || echo CHOWN=no",
    );
    assert_eq!(out.expect_field("CHOWN"), "no", "\n{out}");
}

#[test]
fn rlimits_are_applied() {
    let out = run_script(
        |b| {
            b.rlimit("RLIMIT_NOFILE", 777, 888)
                .rlimit("RLIMIT_NPROC", 3333, 4444)
                .rlimit("RLIMIT_CORE", 0, 0);
        },
        "echo SOFT=$(ulimit -Sn); echo HARD=$(ulimit -Hn); cat /proc/self/limits",
    );
    assert_eq!(out.expect_field("SOFT"), "777", "\n{out}");
    assert_eq!(out.expect_field("HARD"), "888", "\n{out}");
    let limit = |name: &str| {
        let l = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/self/limits\n{out}"));
        l[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(limit("Max open files"), vec!["777", "888"], "\n{out}");
    assert_eq!(limit("Max processes"), vec!["3333", "4444"], "\n{out}");
    assert_eq!(limit("Max core file size"), vec!["0", "0"], "\n{out}");
}

#[test]
fn no_new_privileges_off() {
    let out = run_script(
        |b| {
            b.no_new_privileges(false);
        },
        "grep NoNewPrivs /proc/self/status",
    );
    assert_eq!(out.out(), "NoNewPrivs:\t0", "\n{out}");
}

/// Runs the container with an extra open fd 3 (a file holding a marker), via a host shell that
/// opens it and execs the runtime.
fn run_with_fd3(extra: &[&str]) -> coracle_conformance::Output {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(
        "if [ -e /proc/self/fd/3 ]; then echo FD3=open; read -r line <&3; echo DATA=$line; \
         else echo FD3=closed; fi; echo FDS=$(ls /proc/self/fd | tr '\\n' ' ')",
    );
    b.write();
    let marker = b.path().join("fd3-marker");
    std::fs::write(&marker, "marker-from-fd3\n").expect("write marker");
    let id = rt.new_id();
    let mut args: Vec<String> = rt.global_args();
    args.push("run".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--bundle".into(), b.path_str().into(), id.clone()]);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec 3<\"$0\"; exec \"$@\"")
        .arg(&marker)
        .arg(rt.bin())
        .args(&args)
        .stdin(Stdio::null());
    let describe = format!("(fd 3 open) {} {}", rt.bin().display(), args.join(" "));
    let out = rt.exec_command(cmd, &describe);
    out.ok();
    out
}

#[test]
fn extra_fds_do_not_reach_the_container() {
    let out = run_with_fd3(&[]);
    assert_eq!(out.expect_field("FD3"), "closed", "\n{out}");
}

#[test]
fn preserve_fds_passes_fd_3() {
    let out = run_with_fd3(&["--preserve-fds", "1"]);
    assert_eq!(out.expect_field("FD3"), "open", "\n{out}");
    assert_eq!(out.expect_field("DATA"), "marker-from-fd3", "\n{out}");
}

#[test]
fn no_runtime_fds_leak_into_the_container() {
    // The shell itself sees only 0, 1, 2 (ls adds its own directory fd, 3).
    let out = run_script(|_| {}, "ls -l /proc/$$/fd");
    let numbers: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .filter_map(|(left, _)| left.split_whitespace().last())
        .collect();
    assert_eq!(
        numbers,
        vec!["0", "1", "2"],
        "the container's shell has extra fds:\n{out}"
    );
}

#[test]
fn stdio_pipes_are_inherited() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh(
        "read -r line; echo GOT=$line; echo IN=$(readlink /proc/self/fd/0); \
         echo OUT=$(readlink /proc/$$/fd/1); echo ERR=$(readlink /proc/$$/fd/2); echo to-stderr >&2",
    );
    b.write();
    let id = rt.new_id();
    let mut cmd = rt.command(&["run", "--bundle", b.path_str(), &id]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello-through-stdin\n").unwrap();
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = wait_timeout(&mut child, coracle_conformance::command_timeout());
    let out = coracle_conformance::Output {
        cmd: "run (stdio as pipes)".into(),
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    out.ok();
    assert_eq!(out.expect_field("GOT"), "hello-through-stdin", "\n{out}");
    for key in ["IN", "OUT", "ERR"] {
        assert!(
            out.expect_field(key).starts_with("pipe:"),
            "{key} should be a pipe\n{out}"
        );
    }
    assert!(out.stderr.contains("to-stderr"), "\n{out}");
}

#[test]
fn oom_score_adj() {
    let out = run_script(
        |b| {
            b.config["process"]["oomScoreAdj"] = serde_json::json!(123);
        },
        "echo OOM=$(cat /proc/self/oom_score_adj)",
    );
    assert_eq!(out.expect_field("OOM"), "123", "\n{out}");
}

#[test]
fn sysctls_in_the_container_namespaces() {
    let out = run_script(
        |b| {
            b.config["linux"]["sysctl"] = serde_json::json!({
                "net.ipv4.ip_forward": "1",
                "kernel.shm_rmid_forced": "1"
            });
        },
        "echo FWD=$(cat /proc/sys/net/ipv4/ip_forward); \
         echo SHM=$(cat /proc/sys/kernel/shm_rmid_forced)",
    );
    assert_eq!(out.expect_field("FWD"), "1", "\n{out}");
    assert_eq!(out.expect_field("SHM"), "1", "\n{out}");
}
