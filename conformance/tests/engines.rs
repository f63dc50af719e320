//! Real engines running their containers on coracle: containerd 1.6 (`ctr`, runc v2 shim),
//! Docker 20.10 (dockerd started by hand, `--runtime coracle`) and Podman 4.3 (`--runtime`).
//!
//! Skipped (at once) unless `CORACLE_ENGINES` is set: `CORACLE_ENGINES=all cargo test -p
//! coracle-conformance --test engines` runs them all (`=containerd`, `=docker`, `=podman`, or a
//! comma-separated list, for some). Each engine runs with all its state in a temp dir and
//! networking off, on a busybox image built by the test; the runtime it is given is a logging
//! shim in front of coracle, and a failing scenario prints the runtime calls that failed.

#[path = "../engines/mod.rs"]
mod engines;

use std::fs;
use std::time::Duration;

use coracle_conformance::{cgroup_hierarchies, unique};
use engines::containerd::Containerd;
use engines::docker::Docker;
use engines::enabled;
use engines::podman::Podman;

// ---------------------------------------------------------------------------------------------
// containerd + ctr

/// Starts containerd for one test, or None (skipped) when containerd scenarios are off.
fn containerd() -> Option<Containerd> {
    enabled("containerd").then(Containerd::start)
}

#[test]
fn containerd_run_prints_and_returns_the_exit_code() {
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(
        &["--rm"],
        &unique("run"),
        &["sh", "-c", "echo hello from coracle; exit 7"],
    );
    assert!(
        out.code == Some(7) && out.stdout.contains("hello from coracle"),
        "{}",
        cd.report("ctr run: want exit code 7 and the output", &out)
    );
    let out = cd.run_ctr(&["--rm"], &unique("run"), &["true"]);
    assert!(out.success(), "{}", cd.report("ctr run true", &out));
}

#[test]
fn containerd_run_fast_exit_many_times() {
    // The init may exit before `start` returns: start must still succeed.
    let Some(cd) = containerd() else { return };
    for i in 0..10 {
        let out = cd.run_ctr(&["--rm"], &unique("fast"), &["sh", "-c", "exit 3"]);
        assert!(
            out.code == Some(3),
            "{}",
            cd.report(
                &format!("ctr run of a process exiting at once (try {i})"),
                &out
            )
        );
    }
}

#[test]
fn containerd_run_with_tty() {
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr_pty(
        &["--rm", "-t"],
        &unique("tty"),
        &["sh", "-c", "tty; exit 3"],
    );
    assert!(
        out.code == Some(3) && out.stdout.contains("/dev/pts/0"),
        "{}",
        cd.report("ctr run -t: want /dev/pts/0 and exit code 3", &out)
    );
}

#[test]
fn containerd_stdio_and_fds() {
    // Non-TTY stdio reaches the container; its init holds nothing but 0-2 (the shim's fd 3 must
    // not leak), looked at from the host.
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(
        &["--rm"],
        &unique("stdio"),
        &["sh", "-c", "echo out; echo err >&2"],
    );
    assert!(
        out.success() && out.stdout.contains("out") && out.stderr.contains("err"),
        "{}",
        cd.report("ctr run with stdout and stderr", &out)
    );
    let id = unique("fds");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    let pid = cd.task_pid(&id);
    let mut fds: Vec<String> = pid
        .and_then(|p| fs::read_dir(format!("/proc/{p}/fd")).ok())
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let target = fs::read_link(e.path()).unwrap_or_default();
                    format!(
                        "{} -> {}",
                        e.file_name().to_string_lossy(),
                        target.display()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    cd.remove(&id);
    let extra: Vec<&String> = fds
        .iter()
        .filter(|f| !["0 ", "1 ", "2 "].iter().any(|p| f.starts_with(p)))
        .collect();
    assert!(
        pid.is_some() && extra.is_empty(),
        "{}",
        cd.report(
            &format!("fds of the container's init (pid {pid:?}): {fds:?}"),
            &out
        )
    );
}

#[test]
fn containerd_env_cwd() {
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(
        &["--rm", "--env", "FOO=bar", "--cwd", "/tmp"],
        &unique("env"),
        &["sh", "-c", "echo foo=$FOO; echo cwd=$(pwd)"],
    );
    assert!(
        out.success() && out.stdout.contains("foo=bar") && out.stdout.contains("cwd=/tmp"),
        "{}",
        cd.report("ctr run --env --cwd", &out)
    );
}

#[test]
fn containerd_exec_and_exec_tty() {
    let Some(cd) = containerd() else { return };
    let id = unique("exec");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    // Several times: the exec'd process exits at once, its output must not be lost.
    let mut exec_ok = true;
    let mut exec_report = String::new();
    for i in 0..5 {
        let exec_id = format!("e1-{i}");
        let out = cd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            &exec_id,
            &id,
            "sh",
            "-c",
            "echo in-exec; exit 4",
        ]);
        if !(out.code == Some(4) && out.stdout.contains("in-exec")) {
            exec_ok = false;
            exec_report = cd.report(
                &format!("ctr task exec (try {i}): want in-exec and exit code 4"),
                &out,
            );
            break;
        }
    }
    let out = cd.ctr_pty(&[
        "task",
        "exec",
        "-t",
        "--exec-id",
        "e2",
        &id,
        "sh",
        "-c",
        "tty; exit 5",
    ]);
    let tty_ok = out.code == Some(5) && out.stdout.contains("/dev/pts/");
    let tty_report = cd.report("ctr task exec -t: want a pts and exit code 5", &out);
    cd.remove(&id);
    assert!(exec_ok, "{exec_report}");
    assert!(tty_ok, "{tty_report}");
}

#[test]
fn containerd_task_ps() {
    let Some(cd) = containerd() else { return };
    let id = unique("ps");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    let pid = cd.task_pid(&id);
    let out = cd.ctr(&["task", "ps", &id]);
    cd.remove(&id);
    let listed = pid.is_some_and(|p| {
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&p.to_string()))
    });
    assert!(
        out.success() && listed,
        "{}",
        cd.report(
            &format!("ctr task ps: want the init pid {pid:?} listed"),
            &out
        )
    );
}

#[test]
fn containerd_pause_resume() {
    let Some(cd) = containerd() else { return };
    let id = unique("pause");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    let freezer = cd.cgroup_dir("freezer", &id).join("freezer.state");
    let out = cd.ctr(&["task", "pause", &id]);
    let paused = out.success() && cd.wait_status(&id, "PAUSED");
    let frozen = fs::read_to_string(&freezer).unwrap_or_default();
    let pause_report = cd.report(&format!("ctr task pause (freezer: {frozen:?})"), &out);
    let out = cd.ctr(&["task", "resume", &id]);
    let resumed = out.success() && cd.wait_status(&id, "RUNNING");
    let resume_report = cd.report("ctr task resume", &out);
    cd.remove(&id);
    assert!(paused && frozen.trim() == "FROZEN", "{pause_report}");
    assert!(resumed, "{resume_report}");
}

/// An enabled v1 controller attached to a hierarchy that is not mounted (this VM's hugetlb):
/// containerd's cgroups library then cannot load any container's cgroup, so `ctr task metrics`
/// gets nothing whatever the runtime (runc too).
fn unmounted_v1_controller() -> Option<String> {
    let text = fs::read_to_string("/proc/cgroups").ok()?;
    let mounted = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (name, hier, enabled) = (f.first()?, f.get(1)?, f.get(3)?);
        let attached = *hier != "0" && *enabled == "1";
        let is_mounted = mounted.lines().any(|m| {
            m.split_once(" - ").is_some_and(|(_, r)| {
                r.starts_with("cgroup ") && r.split([' ', ',']).any(|o| o == *name)
            })
        });
        (attached && !is_mounted).then(|| name.to_string())
    })
}

#[test]
fn containerd_metrics() {
    let Some(cd) = containerd() else { return };
    if let Some(c) = unmounted_v1_controller() {
        eprintln!(
            "SKIPPED: controller {c} is attached to a hierarchy that is not mounted: containerd \
             cannot load cgroups here, metrics fail with runc too"
        );
        return;
    }
    let id = unique("metrics");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    let out = cd.ctr(&["task", "metrics", &id]);
    cd.remove(&id);
    assert!(
        out.success() && out.stdout.to_lowercase().contains("memory"),
        "{}",
        cd.report("ctr task metrics", &out)
    );
}

#[test]
fn containerd_kill_term_reaches_the_init() {
    let Some(cd) = containerd() else { return };
    let id = unique("term");
    let out = cd.run_ctr(
        &["-d"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done",
        ],
    );
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    // Let the shell install its trap.
    std::thread::sleep(Duration::from_millis(500));
    let out = cd.ctr(&["task", "kill", "-s", "TERM", &id]);
    let stopped = out.success() && cd.wait_status(&id, "STOPPED");
    let kill_report = cd.report("ctr task kill -s TERM", &out);
    let del = cd.ctr(&["task", "delete", &id]);
    cd.remove(&id);
    assert!(stopped, "{kill_report}");
    assert!(
        del.success() && del.stderr.contains("exit code 42"),
        "{}",
        cd.report(
            "ctr task delete after TERM: want exit code 42 reported",
            &del
        )
    );
}

#[test]
fn containerd_kill_kill_and_all() {
    let Some(cd) = containerd() else { return };
    // KILL of the init.
    let id = unique("kill");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    let out = cd.ctr(&["task", "kill", "-s", "KILL", &id]);
    let killed = out.success() && cd.wait_status(&id, "STOPPED");
    let report1 = cd.report("ctr task kill -s KILL", &out);
    let del = cd.ctr(&["task", "delete", &id]);
    let deleted = del.success() && del.stderr.contains("137");
    let report2 = cd.report("ctr task delete after KILL: want exit code 137", &del);
    cd.remove(&id);
    assert!(killed, "{report1}");
    assert!(deleted, "{report2}");

    // --all reaches the exec'd process too.
    let id = unique("killall");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    let out = cd.ctr(&["task", "exec", "-d", "--exec-id", "x", &id, "sleep", "1001"]);
    let exec_ok = out.success();
    let exec_report = cd.report("ctr task exec -d", &out);
    let out = cd.ctr(&["task", "kill", "-a", "-s", "KILL", &id]);
    let all = out.success() && cd.wait_status(&id, "STOPPED");
    let procs_left = engines::containerd::pids_with_arg("1001");
    let all_report = cd.report(
        &format!("ctr task kill -a -s KILL (sleep 1001 left: {procs_left:?})"),
        &out,
    );
    cd.remove(&id);
    assert!(exec_ok, "{exec_report}");
    assert!(all && procs_left.is_empty(), "{all_report}");
}

#[test]
fn containerd_delete_and_delete_force() {
    let Some(cd) = containerd() else { return };
    let id = unique("del");
    let out = cd.run_ctr(&["-d"], &id, &["sleep", "1000"]);
    assert!(out.success(), "{}", cd.report("ctr run -d", &out));
    // A running task cannot be deleted without -f ...
    let out = cd.ctr(&["task", "delete", &id]);
    let refused = !out.success();
    let refuse_report = cd.report("ctr task delete of a running task must fail", &out);
    // ... with -f it goes, and so do its cgroup dirs.
    let out = cd.ctr(&["task", "delete", "-f", &id]);
    let gone = out.success() && cd.task_status(&id).is_none();
    let force_report = cd.report("ctr task delete -f", &out);
    let cgroup_left: Vec<_> = cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(cd.cgroup_rel(&id)))
        .filter(|p| p.exists())
        .collect();
    let out = cd.ctr(&["containers", "delete", &id]);
    let crm = out.success();
    let crm_report = cd.report("ctr containers delete", &out);
    cd.remove(&id);
    assert!(refused, "{refuse_report}");
    assert!(gone, "{force_report}");
    assert!(cgroup_left.is_empty(), "cgroup dirs left: {cgroup_left:?}");
    assert!(crm, "{crm_report}");
}

#[test]
fn containerd_read_only_rootfs() {
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(
        &["--rm", "--read-only"],
        &unique("ro"),
        &[
            "sh",
            "-c",
            "touch /x 2>&1; echo rc=$?; touch /dev/shm/y && echo shm-rw",
        ],
    );
    assert!(
        out.success()
            && out.stdout.contains("Read-only file system")
            && out.stdout.contains("shm-rw"),
        "{}",
        cd.report("ctr run --read-only: / read-only, /dev/shm writable", &out)
    );
}

#[test]
fn containerd_cap_drop() {
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(
        &["--rm", "--cap-drop", "CAP_CHOWN"],
        &unique("cap"),
        &[
            "sh",
            "-c",
            "grep CapEff /proc/self/status; chown 1 /tmp 2>&1; echo rc=$?",
        ],
    );
    // CAP_CHOWN is bit 0: the effective mask must be even, and chown refused.
    let eff = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    assert!(
        out.success() && eff.is_some_and(|m| m & 1 == 0 && m != 0) && out.stdout.contains("rc=1"),
        "{}",
        cd.report("ctr run --cap-drop CAP_CHOWN", &out)
    );
}

#[test]
fn containerd_memory_and_cpu_limits() {
    let Some(cd) = containerd() else { return };
    let id = unique("limits");
    let out = cd.run_ctr(
        &["-d", "--memory-limit", "67108864", "--cpus", "0.5"],
        &id,
        &["sleep", "1000"],
    );
    assert!(
        out.success(),
        "{}",
        cd.report("ctr run -d with limits", &out)
    );
    let read = |c: &str, f: &str| {
        fs::read_to_string(cd.cgroup_dir(c, &id).join(f))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let (mem, quota, period) = (
        read("memory", "memory.limit_in_bytes"),
        read("cpu", "cpu.cfs_quota_us"),
        read("cpu", "cpu.cfs_period_us"),
    );
    let report = cd.report(
        &format!(
            "--memory-limit 64M --cpus 0.5: memory.limit_in_bytes={mem} cfs_quota_us={quota} \
             cfs_period_us={period} (want 67108864, 50000, 100000)"
        ),
        &out,
    );
    cd.remove(&id);
    assert!(
        mem == "67108864" && quota == "50000" && period == "100000",
        "{report}"
    );
}

#[test]
fn containerd_uid_mapping() {
    // ctr ignores --runc-binary with --uidmap and runs `runc` from containerd's PATH: the
    // logging shim sits first there.
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(
        &[
            "--rm",
            "--uidmap",
            "0:200000:65536",
            "--gidmap",
            "0:200000:65536",
        ],
        &unique("userns"),
        &["sh", "-c", "cat /proc/self/uid_map; id -u"],
    );
    let map: Vec<String> = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(
        out.success() && map == ["0", "200000", "65536"],
        "{}",
        cd.report("ctr run --uidmap 0:200000:65536", &out)
    );
}

#[test]
fn containerd_failed_runtime_call_shows_the_error() {
    // A failing create must reach the user with the runtime's message (from --log JSON).
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(&["--rm"], &unique("noexec"), &["/no/such/binary"]);
    assert!(
        !out.success() && out.stderr.contains("/no/such/binary"),
        "{}",
        cd.report("ctr run of a missing binary: the error must name it", &out)
    );
}

#[test]
fn containerd_no_pivot() {
    // ctr ignores --runc-binary with --no-pivot: the logging shim on containerd's PATH runs.
    let Some(cd) = containerd() else { return };
    let out = cd.run_ctr(&["--rm", "--no-pivot"], &unique("nopivot"), &["echo", "ok"]);
    let calls = cd.shim.calls();
    assert!(
        out.success() && out.stdout.contains("ok") && calls.contains("--no-pivot"),
        "{}",
        cd.report("ctr run --no-pivot", &out)
    );
}

// ---------------------------------------------------------------------------------------------
// Docker

/// The shared dockerd, or None (skipped) when Docker scenarios are off.
fn docker() -> Option<std::sync::Arc<Docker>> {
    enabled("docker").then(engines::docker::docker)
}

/// Runs one `docker run` and checks its exit code and that stdout contains every `want`.
#[track_caller]
fn docker_expect(d: &Docker, what: &str, opts: &[&str], script: &str, code: i32, want: &[&str]) {
    let out = d.run(&[&["--rm"], opts].concat(), &["sh", "-c", script]);
    let missing: Vec<&&str> = want.iter().filter(|w| !out.stdout.contains(**w)).collect();
    assert!(
        out.code == Some(code) && missing.is_empty(),
        "{}",
        d.report(
            &format!("docker run {what}: want exit code {code} and {missing:?} in stdout"),
            &out
        )
    );
}

#[test]
fn docker_info_shows_the_runtime() {
    let Some(d) = docker() else { return };
    let out = d.docker(&["info"]);
    assert!(
        out.success()
            && out
                .stdout
                .lines()
                .any(|l| l.contains("Runtimes:") && l.contains("coracle"))
            && out.stdout.contains("Default Runtime: coracle"),
        "{}",
        d.report(
            "docker info: want coracle among the runtimes and as default",
            &out
        )
    );
    // docker info runs `RUNTIME --version` and parses its `commit:` line.
    let version = d
        .stdout_of_runtime_version()
        .unwrap_or_else(|| "(none)".into());
    assert!(
        version.lines().any(|l| l.starts_with("commit:")),
        "`coracle --version` has no `commit:` line:\n{version}"
    );
}

#[test]
fn docker_run_exit_code_and_fast_exits() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "",
        &[],
        "echo hello from coracle; exit 3",
        3,
        &["hello from coracle"],
    );
    for i in 0..5 {
        let out = d.run(&["--rm"], &["true"]);
        assert!(
            out.success(),
            "{}",
            d.report(&format!("docker run --rm IMAGE true (try {i})"), &out)
        );
    }
}

#[test]
fn docker_run_interactive_stdin() {
    let Some(d) = docker() else { return };
    let out = d.docker_stdin(
        &engines::docker::Docker::run_argv(&["--rm", "-i"], &["sh", "-c", "cat; echo done"]),
        Some("line one\nline two\n"),
    );
    assert!(
        out.success() && out.stdout.contains("line one\nline two\ndone"),
        "{}",
        d.report("docker run -i with stdin piped", &out)
    );
}

#[test]
fn docker_run_interactive_tty() {
    let Some(d) = docker() else { return };
    let out = d.docker_pty(&engines::docker::Docker::run_argv(
        &["--rm", "-it"],
        &["sh", "-c", "tty; stty size; exit 2"],
    ));
    assert!(
        out.code == Some(2) && out.stdout.contains("/dev/pts/0"),
        "{}",
        d.report("docker run -it: want /dev/pts/0 and exit code 2", &out)
    );
}

#[test]
fn docker_exec_variants() {
    let Some(d) = docker() else { return };
    let name = unique("exec");
    let out = d.run_detached(&name, &[], &["sleep", "1000"]);
    assert!(out.success(), "{}", d.report("docker run -d", &out));
    let mut failures = Vec::new();
    let out = d.docker(&[
        "exec",
        "-u",
        "1000:1000",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo uid=$(id -u) gid=$(id -g) foo=$FOO cwd=$(pwd); exit 6",
    ]);
    if !(out.code == Some(6) && out.stdout.contains("uid=1000 gid=1000 foo=bar cwd=/tmp")) {
        failures.push(d.report("docker exec -u -e -w", &out));
    }
    let out = d.docker(&["exec", "-d", &name, "sh", "-c", "echo detached > /tmp/flag"]);
    let flag = wait_until_out(&d, &name, "cat /tmp/flag", "detached");
    if !(out.success() && flag) {
        failures.push(d.report("docker exec -d (then /tmp/flag must appear)", &out));
    }
    let out = d.docker_pty(&["exec", "-it", &name, "sh", "-c", "tty; exit 8"]);
    if !(out.code == Some(8) && out.stdout.contains("/dev/pts/")) {
        failures.push(d.report("docker exec -it", &out));
    }
    let out = d.docker_stdin(&["exec", "-i", &name, "cat"], Some("via stdin\n"));
    if !(out.success() && out.stdout.contains("via stdin")) {
        failures.push(d.report("docker exec -i", &out));
    }
    d.remove(&name);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Polls `docker exec name sh -c script` until its stdout contains `want` (10 s).
fn wait_until_out(d: &Docker, name: &str, script: &str, want: &str) -> bool {
    engines::wait_until(Duration::from_secs(10), || {
        d.docker(&["exec", name, "sh", "-c", script])
            .stdout
            .contains(want)
    })
}

#[test]
fn docker_top() {
    let Some(d) = docker() else { return };
    let name = unique("top");
    let out = d.run_detached(&name, &[], &["sleep", "1234"]);
    assert!(out.success(), "{}", d.report("docker run -d", &out));
    let out = d.docker(&["top", &name]);
    d.remove(&name);
    assert!(
        out.success() && out.stdout.contains("sleep 1234"),
        "{}",
        d.report("docker top: want `sleep 1234` listed", &out)
    );
}

#[test]
fn docker_pause_unpause() {
    let Some(d) = docker() else { return };
    let name = unique("pause");
    let out = d.run_detached(&name, &[], &["sleep", "1000"]);
    assert!(out.success(), "{}", d.report("docker run -d", &out));
    let out = d.docker(&["pause", &name]);
    let paused = out.success() && d.inspect(&name, "{{.State.Paused}}") == "true";
    let pause_report = d.report("docker pause", &out);
    let out = d.docker(&["unpause", &name]);
    let resumed = out.success()
        && d.inspect(&name, "{{.State.Paused}}") == "false"
        && d.docker(&["exec", &name, "true"]).success();
    let resume_report = d.report("docker unpause (then exec must work)", &out);
    d.remove(&name);
    assert!(paused, "{pause_report}");
    assert!(resumed, "{resume_report}");
}

#[test]
fn docker_update_resources() {
    let Some(d) = docker() else { return };
    let name = unique("update");
    let out = d.run_detached(&name, &["--memory", "64m"], &["sleep", "1000"]);
    assert!(
        out.success(),
        "{}",
        d.report("docker run -d --memory 64m", &out)
    );
    let out = d.docker(&["update", "--memory", "96m", "--memory-swap", "-1", &name]);
    let limit = d
        .docker(&[
            "exec",
            &name,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ])
        .out()
        .to_string();
    let report = d.report(
        &format!("docker update --memory 96m: limit now {limit:?} (want 100663296)"),
        &out,
    );
    d.remove(&name);
    assert!(out.success() && limit == "100663296", "{report}");
}

#[test]
fn docker_stats() {
    let Some(d) = docker() else { return };
    let name = unique("stats");
    let out = d.run_detached(&name, &[], &["sleep", "1000"]);
    assert!(out.success(), "{}", d.report("docker run -d", &out));
    let out = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        &name,
    ]);
    d.remove(&name);
    assert!(
        out.success() && out.stdout.contains(&name),
        "{}",
        d.report("docker stats --no-stream", &out)
    );
}

#[test]
fn docker_stop_term_and_kill_fallback() {
    let Some(d) = docker() else { return };
    // TERM handled by the init: exit code of the trap.
    let name = unique("stop");
    let out = d.run_detached(
        &name,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done",
        ],
    );
    assert!(out.success(), "{}", d.report("docker run -d", &out));
    std::thread::sleep(Duration::from_millis(500));
    let out = d.docker(&["stop", "-t", "10", &name]);
    let code = d.inspect(&name, "{{.State.ExitCode}}");
    let term_report = d.report(
        &format!("docker stop (TERM): exit code {code}, want 42"),
        &out,
    );
    d.remove(&name);
    // TERM ignored (sleep as pid 1): KILL after the timeout.
    let name2 = unique("stopkill");
    let out2 = d.run_detached(&name2, &[], &["sleep", "1000"]);
    assert!(out2.success(), "{}", d.report("docker run -d", &out2));
    let out2 = d.docker(&["stop", "-t", "1", &name2]);
    let code2 = d.inspect(&name2, "{{.State.ExitCode}}");
    let kill_report = d.report(
        &format!("docker stop -t 1 of an init ignoring TERM: exit code {code2}, want 137"),
        &out2,
    );
    d.remove(&name2);
    assert!(out.success() && code == "42", "{term_report}");
    assert!(out2.success() && code2 == "137", "{kill_report}");
}

#[test]
fn docker_restart_and_rm_force() {
    let Some(d) = docker() else { return };
    let name = unique("restart");
    let out = d.run_detached(&name, &[], &["sleep", "1000"]);
    assert!(out.success(), "{}", d.report("docker run -d", &out));
    let pid1 = d.inspect(&name, "{{.State.Pid}}");
    let out = d.docker(&["restart", "-t", "1", &name]);
    let pid2 = d.inspect(&name, "{{.State.Pid}}");
    let running = d.inspect(&name, "{{.State.Running}}");
    let restart_report = d.report(
        &format!("docker restart: pid {pid1} -> {pid2}, running={running}"),
        &out,
    );
    let rm = d.docker(&["rm", "-f", &name]);
    let gone = !d.docker(&["inspect", &name]).success();
    let rm_report = d.report("docker rm -f of a running container", &rm);
    d.remove(&name);
    assert!(
        out.success() && pid1 != pid2 && running == "true",
        "{restart_report}"
    );
    assert!(rm.success() && gone, "{rm_report}");
}

#[test]
fn docker_memory_limit() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--memory 64m",
        &["--memory", "64m"],
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        0,
        &["67108864"],
    );
}

#[test]
fn docker_cpus_limit() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--cpus 0.5",
        &["--cpus", "0.5"],
        "echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)",
        0,
        &["quota=50000 period=100000"],
    );
}

#[test]
fn docker_pids_limit() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--pids-limit 50",
        &["--pids-limit", "50"],
        "cat /sys/fs/cgroup/pids/pids.max",
        0,
        &["50"],
    );
}

#[test]
fn docker_cpuset_cpus() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--cpuset-cpus 0",
        &["--cpuset-cpus", "0"],
        "echo cpus=$(cat /sys/fs/cgroup/cpuset/cpuset.cpus)",
        0,
        &["cpus=0\n"],
    );
}

#[test]
fn docker_read_only_rootfs() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--read-only",
        &["--read-only"],
        "touch /x 2>&1; touch /dev/shm/ok && echo shm-ok",
        0,
        &["Read-only file system", "shm-ok"],
    );
}

#[test]
fn docker_cap_drop() {
    let Some(d) = docker() else { return };
    // Only CAP_KILL (bit 5) left.
    docker_expect(
        &d,
        "--cap-drop ALL --cap-add KILL",
        &["--cap-drop", "ALL", "--cap-add", "KILL"],
        "grep -E 'Cap(Eff|Bnd)' /proc/self/status; chown 1 /tmp 2>/dev/null || echo chown-refused",
        0,
        &[
            "CapEff:\t0000000000000020",
            "CapBnd:\t0000000000000020",
            "chown-refused",
        ],
    );
}

#[test]
fn docker_default_seccomp_profile() {
    let Some(d) = docker() else { return };
    // Docker sends its default profile: the filter must be installed (mode 2), and a syscall it
    // refuses (unshare of a user namespace: not in its allow list without CAP_SYS_ADMIN) fails.
    docker_expect(
        &d,
        "(default seccomp)",
        &[],
        "grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null || echo unshare-refused",
        0,
        &["Seccomp:\t2", "unshare-refused"],
    );
}

#[test]
fn docker_seccomp_unconfined() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--security-opt seccomp=unconfined",
        &["--security-opt", "seccomp=unconfined"],
        "grep Seccomp: /proc/self/status",
        0,
        &["Seccomp:\t0"],
    );
}

#[test]
fn docker_no_new_privileges() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--security-opt no-new-privileges",
        &["--security-opt", "no-new-privileges"],
        "grep NoNewPrivs /proc/self/status",
        0,
        &["NoNewPrivs:\t1"],
    );
}

#[test]
fn docker_init() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--init",
        &["--init"],
        "echo init=$(cat /proc/1/comm)",
        0,
        &["init=docker-init"],
    );
}

#[test]
fn docker_ulimit() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--ulimit nofile=123:456",
        &["--ulimit", "nofile=123:456"],
        "echo soft=$(ulimit -n) hard=$(ulimit -Hn)",
        0,
        &["soft=123 hard=456"],
    );
}

#[test]
fn docker_shm_size() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--shm-size 8m",
        &["--shm-size", "8m"],
        "grep ' /dev/shm ' /proc/mounts",
        0,
        &["size=8192k"],
    );
}

#[test]
fn docker_pid_and_ipc_host() {
    let Some(d) = docker() else { return };
    let (pid, ipc) = (Docker::host_ns("pid"), Docker::host_ns("ipc"));
    docker_expect(
        &d,
        "--pid host --ipc host",
        &["--pid", "host", "--ipc", "host"],
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc",
        0,
        &[&pid, &ipc],
    );
}

#[test]
fn docker_cgroupns_private() {
    let Some(d) = docker() else { return };
    // In a private cgroup namespace the container's own cgroup reads as the root.
    docker_expect(
        &d,
        "--cgroupns private",
        &["--cgroupns", "private"],
        "grep ':memory:' /proc/self/cgroup",
        0,
        &[":memory:/\n"],
    );
}

#[test]
fn docker_sysctl() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--sysctl kernel.shmmax=123456789",
        &["--sysctl", "kernel.shmmax=123456789"],
        "cat /proc/sys/kernel/shmmax",
        0,
        &["123456789"],
    );
}

#[test]
fn docker_device() {
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--device /dev/null:/dev/xnull",
        &["--device", "/dev/null:/dev/xnull"],
        "ls -l /dev/xnull; echo hi > /dev/xnull && echo write-ok",
        0,
        &["1,   3", "write-ok"],
    );
}

#[test]
fn docker_tmpfs_and_bind_mounts() {
    let Some(d) = docker() else { return };
    let dir = engines::WorkDir::new("bind");
    fs::write(dir.join("f"), "from the host\n").unwrap();
    let src = dir.path().to_string_lossy().into_owned();
    let ro = format!("{src}:/data-ro:ro");
    let rw = format!("{src}:/data-rw");
    docker_expect(
        &d,
        "--tmpfs, -v ro and rw",
        &["--tmpfs", "/scratch:size=4m", "-v", &ro, "-v", &rw],
        "grep ' /scratch ' /proc/mounts; cat /data-ro/f; touch /data-ro/g 2>&1; \
         echo written > /data-rw/h && echo rw-ok",
        0,
        &[
            "size=4096k",
            "from the host",
            "Read-only file system",
            "rw-ok",
        ],
    );
    assert_eq!(
        fs::read_to_string(dir.join("h")).unwrap_or_default(),
        "written\n",
        "the rw bind mount's write must reach the host"
    );
}

#[test]
fn docker_failed_runtime_call_shows_the_error() {
    let Some(d) = docker() else { return };
    let out = d.run(&["--rm"], &["/no/such/binary"]);
    assert!(
        !out.success() && out.stderr.contains("/no/such/binary"),
        "{}",
        d.report(
            "docker run of a missing binary: the error must name it",
            &out
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Podman

/// The shared podman storage, or None (skipped) when Podman scenarios are off.
fn podman() -> Option<std::sync::Arc<Podman>> {
    enabled("podman").then(engines::podman::podman)
}

#[test]
fn podman_run_exit_code() {
    let Some(p) = podman() else { return };
    let out = p.run(&["--rm"], &["sh", "-c", "echo hello from coracle; exit 3"]);
    assert!(
        out.code == Some(3) && out.stdout.contains("hello from coracle"),
        "{}",
        p.report("podman run: want exit code 3 and the output", &out)
    );
    for i in 0..5 {
        let out = p.run(&["--rm"], &["true"]);
        assert!(
            out.success(),
            "{}",
            p.report(&format!("podman run --rm IMAGE true (try {i})"), &out)
        );
    }
}

#[test]
fn podman_run_tty() {
    let Some(p) = podman() else { return };
    let out = p.podman_pty(&p.run_argv(&["--rm", "-t"], &["sh", "-c", "tty; exit 2"]));
    assert!(
        out.code == Some(2) && out.stdout.contains("/dev/pts/0"),
        "{}",
        p.report("podman run -t: want /dev/pts/0 and exit code 2", &out)
    );
}

#[test]
fn podman_exec_and_exec_tty() {
    let Some(p) = podman() else { return };
    let name = unique("pexec");
    let out = p.run(&["-d", "--name", &name], &["sleep", "1000"]);
    assert!(out.success(), "{}", p.report("podman run -d", &out));
    let mut failures = Vec::new();
    let out = p.podman(&[
        "exec",
        "-u",
        "1000",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        &name,
        "sh",
        "-c",
        "echo uid=$(id -u) foo=$FOO cwd=$(pwd); exit 6",
    ]);
    if !(out.code == Some(6) && out.stdout.contains("uid=1000 foo=bar cwd=/tmp")) {
        failures.push(p.report("podman exec -u -e -w", &out));
    }
    let out = p.podman_pty(&["exec", "-it", &name, "sh", "-c", "tty; exit 4"]);
    if !(out.code == Some(4) && out.stdout.contains("/dev/pts/")) {
        failures.push(p.report("podman exec -it", &out));
    }
    p.remove(&name);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn podman_pause_unpause_and_stop() {
    let Some(p) = podman() else { return };
    let name = unique("ppause");
    let out = p.run(&["-d", "--name", &name], &["sleep", "1000"]);
    assert!(out.success(), "{}", p.report("podman run -d", &out));
    let status = |p: &Podman| {
        p.podman(&["inspect", "-f", "{{.State.Status}}", &name])
            .out()
            .to_string()
    };
    let out = p.podman(&["pause", &name]);
    let st = status(&p);
    let pause_report = p.report(&format!("podman pause: status {st}"), &out);
    let paused = out.success() && st == "paused";
    let out = p.podman(&["unpause", &name]);
    let st = status(&p);
    let resumed = out.success() && st == "running";
    let resume_report = p.report(&format!("podman unpause: status {st}"), &out);
    // sleep as pid 1 ignores TERM: podman stop -t 1 falls back to KILL.
    let out = p.podman(&["stop", "-t", "1", &name]);
    let code = p
        .podman(&["inspect", "-f", "{{.State.ExitCode}}", &name])
        .out()
        .to_string();
    let stopped = out.success() && status(&p) == "exited" && code == "137";
    let stop_report = p.report(&format!("podman stop -t 1: exit code {code}"), &out);
    p.remove(&name);
    assert!(paused, "{pause_report}");
    assert!(resumed, "{resume_report}");
    assert!(stopped, "{stop_report}");
}

#[test]
fn podman_update_resources() {
    let Some(p) = podman() else { return };
    let name = unique("pupdate");
    let out = p.run(
        &["-d", "--name", &name, "--memory", "64m"],
        &["sleep", "1000"],
    );
    assert!(
        out.success(),
        "{}",
        p.report("podman run -d --memory 64m", &out)
    );
    let out = p.podman(&["update", "--memory", "96m", &name]);
    let limit = p
        .podman(&[
            "exec",
            &name,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ])
        .out()
        .to_string();
    let report = p.report(
        &format!("podman update --memory 96m: limit now {limit:?} (want 100663296)"),
        &out,
    );
    p.remove(&name);
    assert!(out.success() && limit == "100663296", "{report}");
}

#[test]
fn podman_preserve_fds() {
    let Some(p) = podman() else { return };
    let dir = engines::WorkDir::new("pfds");
    let file = dir.join("passed");
    fs::write(&file, "passed through fd 3\n").unwrap();
    let out = p.podman_sh(
        &format!("exec 3<{}", engines::shell_quote(&file.to_string_lossy())),
        &p.run_argv(
            &["--rm", "--preserve-fds", "1"],
            &["sh", "-c", "cat <&3; ls /proc/self/fd | tr '\\n' ' '"],
        ),
    );
    assert!(
        out.success() && out.stdout.contains("passed through fd 3"),
        "{}",
        p.report(
            "podman run --preserve-fds 1: fd 3 must reach the container",
            &out
        )
    );
}

#[test]
fn podman_uidmap() {
    let Some(p) = podman() else { return };
    let out = p.run(
        &[
            "--rm",
            "--uidmap",
            "0:300000:65536",
            "--gidmap",
            "0:300000:65536",
        ],
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map; id -u; touch /x && echo write-ok",
        ],
    );
    let map: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        out.success() && map == ["0", "300000", "65536"] && out.stdout.contains("write-ok"),
        "{}",
        p.report("podman run --uidmap 0:300000:65536", &out)
    );
}

#[test]
fn podman_privileged() {
    let Some(p) = podman() else { return };
    let out = p.run(
        &["--rm", "--privileged"],
        &[
            "sh",
            "-c",
            "grep CapEff /proc/self/status; ls /dev | grep -c .",
        ],
    );
    assert!(
        out.success() && out.stdout.contains("CapEff"),
        "{}",
        p.report("podman run --privileged", &out)
    );
}

#[test]
fn podman_failed_runtime_call_shows_the_error() {
    let Some(p) = podman() else { return };
    let out = p.run(&["--rm"], &["/no/such/binary"]);
    assert!(
        !out.success() && out.stderr.contains("/no/such/binary"),
        "{}",
        p.report(
            "podman run of a missing binary: the error must name it",
            &out
        )
    );
}

// ---------------------------------------------------------------------------------------------
// containerd's CRI plugin

#[test]
fn containerd_cri_pod_and_container() {
    // A host-network pod sandbox and a container in it, driven over CRI by a small Python client
    // (conformance/engines/cri_client.py): create, start, exec, update resources, stop, remove.
    if !enabled("containerd") {
        return;
    }
    engines::ensure_python_grpc();
    let cd = Containerd::start_cri();
    let parent = format!("/{}", unique("coracle-cri"));
    let logs = cd.work_dir().join("pod-logs");
    fs::create_dir_all(&logs).unwrap();
    let client = engines::workspace_dir().join("engines/cri_client.py");
    let out = engines::run(
        std::process::Command::new("/usr/bin/python3")
            .arg(&client)
            .arg(cd.socket())
            .arg(cd.image())
            .arg(&parent)
            .arg(&logs),
        None,
    );
    let report = cd.report("CRI scenario (cri_client.py): every step must be ok", &out);
    drop(cd);
    for h in cgroup_hierarchies() {
        let dir = h.join(parent.trim_start_matches('/'));
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                let _ = fs::remove_dir(e.path());
            }
        }
        let _ = fs::remove_dir(&dir);
    }
    assert!(
        out.success() && out.stdout.contains("failed=\n"),
        "{report}"
    );
}

#[test]
fn podman_rootless() {
    // Rootless podman as uid 65534: the runtime runs unprivileged, in a user namespace, and must
    // keep its state under $XDG_RUNTIME_DIR (podman passes no --root).
    if !enabled("podman") {
        return;
    }
    let p = engines::podman::RootlessPodman::start();
    let out = p.podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        engines::IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; exit 5",
    ]);
    let map: Vec<String> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(
        out.code == Some(5) && out.stdout.starts_with("0\n") && map == ["0", "65534", "1"],
        "{}",
        p.report(
            "rootless podman run: want uid 0 mapped to 65534 and exit code 5",
            &out
        )
    );
}

// ---------------------------------------------------------------------------------------------
// The runtime's side of the engine contract, checked directly

#[test]
fn contract_features_json() {
    // Engines (and `docker info`/podman) probe `RUNTIME features`: the runtime-spec features
    // document, as runc prints it.
    if !engines::ENGINES.iter().any(|e| engines::selected(e)) {
        eprintln!("SKIPPED: runs only with CORACLE_ENGINES set");
        return;
    }
    let bin = engines::runtime_binary();
    let out = engines::run(std::process::Command::new(&bin).arg("features"), None);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    let missing: Vec<&str> = [
        "/ociVersionMin",
        "/ociVersionMax",
        "/hooks",
        "/mountOptions",
        "/linux/namespaces",
        "/linux/capabilities",
        "/linux/cgroup",
        "/linux/seccomp/actions",
        "/linux/seccomp/operators",
        "/linux/seccomp/archs",
        "/annotations",
    ]
    .into_iter()
    .filter(|p| doc.pointer(p).is_none())
    .collect();
    assert!(
        out.success() && missing.is_empty(),
        "`{} features`: missing {missing:?}\n{out}",
        bin.display()
    );
}

#[test]
fn docker_privileged() {
    // --privileged asks for every capability; where the host's bounding set lacks one (this
    // kind of VM lacks CAP_SYS_RESOURCE) runc and crun fail too: skipped there.
    if !enabled("docker") {
        return;
    }
    let bnd = fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    let last_cap = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    let all = (1u64 << (last_cap + 1)) - 1;
    if bnd & all != all {
        eprintln!("SKIPPED: the host's bounding set ({bnd:x}) lacks capabilities; --privileged fails with runc too");
        return;
    }
    let Some(d) = docker() else { return };
    docker_expect(
        &d,
        "--privileged",
        &["--privileged"],
        "grep CapEff /proc/self/status; ls /dev | grep -c .",
        0,
        &[&format!("CapEff:\t{all:016x}")],
    );
}
