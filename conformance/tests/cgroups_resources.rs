//! linux.resources on real containers: the values land in the cgroup files (read from inside
//! the container, whose /sys/fs/cgroup shows its own cgroup), limits really limit, and the
//! cgroup commands (pause, resume, update, ps, events) behave as runc's. Each test works on a
//! cgroup v1/hybrid host and on a pure cgroup v2 host (the file names differ).

use std::path::Path;
use std::time::Duration;

use coracle_conformance::{is_runc, run_script, skip_for_runc, wait_timeout, Bundle, Runtime};
use serde_json::{json, Value};

/// Whether the host is a pure cgroup v2 (unified) host.
fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Sets `linux.resources` (keeping the default device rules).
fn resources(b: &mut Bundle, res: Value) {
    let r = &mut b.config["linux"]["resources"];
    for (k, v) in res.as_object().into_iter().flatten() {
        r[k] = v.clone();
    }
}

/// A script line printing `NAME=<contents of the cgroup file>` (v1: under the controller's
/// directory; v2: the one directory).
fn show(name: &str, v1: &str, v2_file: &str) -> String {
    if v2() {
        format!("echo {name}=$(cat /sys/fs/cgroup/{v2_file});")
    } else {
        format!("echo {name}=$(cat /sys/fs/cgroup/{v1});")
    }
}

#[test]
fn memory_cpu_pids_cpuset_values_land_in_the_cgroup_files() {
    let script = [
        show("MEM", "memory/memory.limit_in_bytes", "memory.max"),
        show(
            "SWAP",
            "memory/memory.memsw.limit_in_bytes",
            "memory.swap.max",
        ),
        show("RES", "memory/memory.soft_limit_in_bytes", "memory.low"),
        show("SHARES", "cpu/cpu.shares", "cpu.weight"),
        show("QUOTA", "cpu/cpu.cfs_quota_us", "cpu.max"),
        show("PERIOD", "cpu/cpu.cfs_period_us", "cpu.max"),
        show("PIDS", "pids/pids.max", "pids.max"),
        show("CPUS", "cpuset/cpuset.cpus", "cpuset.cpus"),
    ]
    .concat();
    let out = run_script(
        |b| {
            resources(
                b,
                json!({
                    "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
                    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
                    "pids": {"limit": 30}
                }),
            )
        },
        &script,
    );
    assert_eq!(out.expect_field("MEM"), "67108864", "{out}");
    assert_eq!(out.expect_field("RES"), "33554432", "{out}");
    assert_eq!(out.expect_field("PIDS"), "30", "{out}");
    assert_eq!(out.expect_field("CPUS"), "0", "{out}");
    if v2() {
        // swap.max is memory+swap minus memory; shares 512 -> weight 20 (runc 1.1).
        assert_eq!(out.expect_field("SWAP"), "67108864", "{out}");
        assert_eq!(out.expect_field("SHARES"), "20", "{out}");
        assert_eq!(out.expect_field("QUOTA"), "50000 100000", "{out}");
    } else {
        assert_eq!(out.expect_field("SWAP"), "134217728", "{out}");
        assert_eq!(out.expect_field("SHARES"), "512", "{out}");
        assert_eq!(out.expect_field("QUOTA"), "50000", "{out}");
        assert_eq!(out.expect_field("PERIOD"), "100000", "{out}");
    }
}

#[test]
fn v1_only_memory_and_cpu_knobs() {
    if v2() {
        return;
    }
    let script = [
        show("SWAPPINESS", "memory/memory.swappiness", ""),
        show("TCP", "memory/memory.kmem.tcp.limit_in_bytes", ""),
        show("OOMCTL", "memory/memory.oom_control", ""),
        show("RT", "cpu/cpu.rt_runtime_us", ""),
        show("BURST", "cpu/cpu.cfs_burst_us", ""),
        show("IDLE", "cpu/cpu.idle", ""),
    ]
    .concat();
    let out = run_script(
        |b| {
            resources(
                b,
                json!({
                    "memory": {"limit": 67108864, "swappiness": 17, "kernelTCP": 8388608,
                               "disableOOMKiller": true, "useHierarchy": true},
                    "cpu": {"quota": 20000, "period": 100000, "burst": 10000, "idle": 1,
                            "realtimeRuntime": 5000, "realtimePeriod": 1000000}
                }),
            )
        },
        &script,
    );
    assert_eq!(out.expect_field("SWAPPINESS"), "17", "{out}");
    assert!(
        out.expect_field("OOMCTL").contains("oom_kill_disable 1"),
        "{out}"
    );
    assert_eq!(out.expect_field("RT"), "5000", "{out}");
    if skip_for_runc("runc 1.1 ignores kernelTCP, cpu burst and idle") {
        return;
    }
    assert_eq!(out.expect_field("TCP"), "8388608", "{out}");
    assert_eq!(out.expect_field("BURST"), "10000", "{out}");
    assert_eq!(out.expect_field("IDLE"), "1", "{out}");
}

#[test]
fn blkio_throttle_and_hugetlb_or_a_clear_error() {
    // 1:3 is /dev/null: not a block device, the kernel refuses it; use the first real disk.
    let Some(dev) = first_block_device() else {
        return;
    };
    let (file, expect) = if v2() {
        ("io.max", format!("{dev} rbps=1048576"))
    } else {
        (
            "blkio/blkio.throttle.read_bps_device",
            format!("{dev} 1048576"),
        )
    };
    let (maj, min) = dev.split_once(':').unwrap_or_default();
    let out = run_script(
        |b| {
            resources(
                b,
                json!({"blockIO": {"weight": 300, "throttleReadBpsDevice": [
                    {"major": maj.parse::<i64>().unwrap_or(0), "minor": min.parse::<i64>().unwrap_or(0),
                     "rate": 1048576}]}}),
            )
        },
        &format!("echo IO=$(cat /sys/fs/cgroup/{file} | grep {dev})"),
    );
    assert!(out.expect_field("IO").starts_with(&expect), "{out}");
    // hugetlb: applied where the controller exists, else refused naming it.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo HUGE=$(cat /sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes /sys/fs/cgroup/hugetlb.2MB.max 2>/dev/null)");
    resources(
        &mut b,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    );
    let out = rt.run(&b);
    if out.success() {
        assert_eq!(out.expect_field("HUGE"), "4194304", "{out}");
    } else {
        out.stderr_mentions(&["hugetlb"]);
    }
}

/// `major:minor` of the first disk in /sys/block (not a loop or ram device).
fn first_block_device() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
        .collect();
    names.sort();
    let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
    Some(dev.trim().to_owned())
}

#[test]
fn a_memory_limit_really_oom_kills() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // dd's 64 MiB buffer, filled from /dev/zero at once: past a 16 MiB limit.
    b.sh(
        "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo SURVIVED=$?; \
          exec dd if=/dev/zero of=/dev/null bs=64M count=1",
    );
    resources(
        &mut b,
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let out = rt.run(&b);
    // The child dd was killed (status 128+9); then the init itself is.
    assert_eq!(out.expect_field("SURVIVED"), "137", "{out}");
    assert_eq!(
        out.code,
        Some(137),
        "expected death by SIGKILL (OOM):\n{out}"
    );
}

#[test]
fn a_pids_limit_really_stops_fork() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // sh and 5 sleeps fill a limit of 6: the next fork fails (busybox sh then gives up).
    b.sh("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; echo FORKED=all");
    resources(&mut b, json!({"pids": {"limit": 6}}));
    let out = rt.run(&b);
    assert!(out.field("FORKED").is_none(), "{out}");
    out.stderr_mentions(&["can't fork", "resource temporarily unavailable"]);
    // The same without the limit forks them all.
    let mut b = Bundle::new();
    b.sh("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.1 & done; wait; echo FORKED=all");
    let out = rt.run(&b);
    assert_eq!(out.expect_field("FORKED"), "all", "{out}");
}

#[test]
fn device_rules_deny_and_allow() {
    // mknod is allowed by default, opening an unlisted device is not; a rule allows it.
    let script = "mknod /tmp/kmsg c 1 11 && \
                  if dd if=/tmp/kmsg of=/dev/null count=0 2>/dev/null; then echo OPEN=yes; \
                  else echo OPEN=no; fi; echo NULL=$(head -c 3 /dev/zero | wc -c)";
    let caps = |b: &mut Bundle| {
        b.caps_all(&["CAP_MKNOD", "CAP_SYSLOG", "CAP_DAC_OVERRIDE"]);
    };
    let out = run_script(caps, script);
    assert_eq!(out.expect_field("OPEN"), "no", "{out}");
    assert_eq!(out.expect_field("NULL"), "3", "{out}");
    let out = run_script(
        |b| {
            caps(b);
            let rule = json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"});
            if let Some(list) = b.config["linux"]["resources"]["devices"].as_array_mut() {
                list.push(rule);
            }
        },
        script,
    );
    assert_eq!(out.expect_field("OPEN"), "yes", "{out}");
}

#[test]
fn linux_devices_need_a_device_rule_as_in_runc() {
    // /dev/kmsg in linux.devices is made in the container, but (as runc) opening it needs a
    // rule in linux.resources.devices.
    let script = "if dd if=/dev/kmsg of=/dev/null count=0 2>/dev/null; then echo OPEN=yes; \
                  else echo OPEN=no; fi";
    let node = |b: &mut Bundle| {
        b.device("/dev/kmsg", "c", 1, 11, 0o644);
        b.caps_all(&["CAP_SYSLOG"]);
    };
    let out = run_script(node, script);
    assert_eq!(out.expect_field("OPEN"), "no", "{out}");
    let out = run_script(
        |b| {
            node(b);
            let rule =
                json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"});
            if let Some(list) = b.config["linux"]["resources"]["devices"].as_array_mut() {
                list.push(rule);
            }
        },
        script,
    );
    assert_eq!(out.expect_field("OPEN"), "yes", "{out}");
}

#[test]
fn bad_resources_are_refused_before_anything_is_made() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    resources(&mut b, json!({"memory": {"swappiness": 200}}));
    let id = rt.new_id();
    rt.create(&id, &b).fails().stderr_mentions(&["swappiness"]);
    assert!(!rt.state_dir_exists(&id));
    assert!(coracle_conformance::existing_cgroup_dirs(b.cgroup_path()).is_empty());
    let mut b = Bundle::new();
    resources(
        &mut b,
        json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 4194304}]}),
    );
    rt.create(&rt.new_id(), &b)
        .fails()
        .stderr_mentions(&["pageSize", "hugetlb"]);
    let mut b = Bundle::new();
    let bad = if v2() {
        json!({"unified": {"nosuchctl.max": "1"}})
    } else {
        json!({"unified": {"memory.max": "1"}})
    };
    resources(&mut b, bad);
    rt.create(&rt.new_id(), &b)
        .fails()
        .stderr_mentions(&["unified"]);
}

#[test]
fn unified_map_on_v2() {
    if !v2() {
        return;
    }
    let out = run_script(
        |b| {
            resources(
                b,
                json!({"unified": {"memory.high": "50000000", "pids.max": "12"}}),
            )
        },
        "echo HIGH=$(cat /sys/fs/cgroup/memory.high) PIDS=$(cat /sys/fs/cgroup/pids.max)",
    );
    assert!(
        out.out().contains("HIGH=49999872") || out.out().contains("HIGH=50000000"),
        "{out}"
    );
}

/// Creates and starts a container running `script`; returns its id and init pid.
fn started(rt: &Runtime, b: &mut Bundle, script: &str) -> (String, i64) {
    b.sh(script);
    let id = rt.new_id();
    rt.create(&id, b).ok();
    rt.start(&id).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0);
    (id, pid)
}

/// The one-letter state of `pid` (R, S, D, T...) from /proc/PID/stat.
fn proc_state(pid: i64) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_owned()
}

/// The contents of the container's cgroup file (v1 `ctrl/file`, v2 `file`) read from inside
/// with `exec`.
fn inside(rt: &Runtime, id: &str, v1: &str, v2_file: &str) -> String {
    let path = if v2() {
        format!("/sys/fs/cgroup/{v2_file}")
    } else {
        format!("/sys/fs/cgroup/{v1}")
    };
    let out = rt.exec(&["exec", id, "cat", &path]);
    out.ok();
    out.out().to_owned()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (id, pid) = started(&rt, &mut b, "while :; do :; done");
    rt.exec(&["pause", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "paused");
    // A busy loop that is frozen no longer runs (v1: D, v2: S; never R).
    std::thread::sleep(Duration::from_millis(100));
    let frozen = proc_state(pid);
    assert!(["D", "T", "S"].contains(&frozen.as_str()), "state {frozen}");
    let ticks = |p: i64| {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let rest = s
            .rsplit_once(") ")
            .map(|(_, r)| r.to_owned())
            .unwrap_or_default();
        rest.split_whitespace()
            .nth(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ticks(pid), before, "a frozen process used CPU");
    rt.exec(&["resume", &id]).ok();
    assert_eq!(rt.state(&id)["status"], "running");
    std::thread::sleep(Duration::from_millis(300));
    assert!(ticks(pid) > before, "the resumed process does not run");
    rt.delete_force(&id).ok();
}

#[test]
fn update_with_runc_flags_and_resources_json() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    resources(
        &mut b,
        json!({"memory": {"limit": 67108864}, "cpu": {"shares": 1024}, "pids": {"limit": 100}}),
    );
    let (id, _) = started(&rt, &mut b, "sleep 600");
    rt.exec(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "100000",
        "--pids-limit",
        "42",
        &id,
    ])
    .ok();
    assert_eq!(
        inside(&rt, &id, "memory/memory.limit_in_bytes", "memory.max"),
        "134217728"
    );
    assert_eq!(inside(&rt, &id, "pids/pids.max", "pids.max"), "42");
    if v2() {
        assert_eq!(inside(&rt, &id, "", "memory.swap.max"), "134217728");
        assert_eq!(inside(&rt, &id, "", "cpu.max"), "25000 100000");
        assert_eq!(inside(&rt, &id, "", "cpu.weight"), "10");
    } else {
        assert_eq!(
            inside(&rt, &id, "memory/memory.memsw.limit_in_bytes", ""),
            "268435456"
        );
        assert_eq!(inside(&rt, &id, "cpu/cpu.cfs_quota_us", ""), "25000");
        assert_eq!(inside(&rt, &id, "cpu/cpu.shares", ""), "256");
    }
    // --resources -: JSON on stdin; only the fields given change.
    let (ok, err) = update_json(&rt, &id, r#"{"pids":{"limit":17},"cpu":{"quota":50000}}"#);
    assert!(ok, "{err}");
    assert_eq!(inside(&rt, &id, "pids/pids.max", "pids.max"), "17");
    assert_eq!(
        inside(&rt, &id, "memory/memory.limit_in_bytes", "memory.max"),
        "134217728"
    );
    if v2() {
        assert_eq!(inside(&rt, &id, "", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(inside(&rt, &id, "cpu/cpu.cfs_quota_us", ""), "50000");
        assert_eq!(inside(&rt, &id, "cpu/cpu.cfs_period_us", ""), "100000");
    }
    // Refusals: below usage (v1: the kernel says busy; both: checkBeforeUpdate), and Intel
    // RDT without intelRdt in the config.
    if !v2() {
        rt.exec(&["update", "--memory", "4096", &id])
            .fails()
            .stderr_mentions(&["memory"]);
    }
    let (ok, err) = update_json(
        &rt,
        &id,
        r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#,
    );
    let refused = err.contains("below usage") || err.contains("unable to set memory limit");
    assert!(!ok && refused, "{err}");
    rt.exec(&["update", "--l3-cache-schema", "L3:0=f", &id])
        .fails()
        .stderr_mentions(&["l3 cache schema is not enabled"]);
    rt.delete_force(&id).ok();
}

#[test]
fn ps_lists_the_container_processes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (id, pid) = started(&rt, &mut b, "sleep 600 & sleep 601");
    // Wait for the background sleep to exist.
    let mut pids: Vec<i64> = Vec::new();
    for _ in 0..100 {
        let out = rt.exec(&["ps", "--format", "json", &id]);
        out.ok();
        pids = serde_json::from_str(out.out()).unwrap_or_default();
        if pids.len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pids.contains(&pid) && pids.len() == 2, "{pids:?}");
    let out = rt.exec(&["ps", &id]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        out.stdout.contains("sleep 600") && out.stdout.contains("sleep 601"),
        "{out}"
    );
    let out = rt.exec(&["ps", &id, "-o", "pid,comm"]);
    out.ok();
    assert!(
        out.stdout.lines().skip(1).all(|l| l.contains("sleep")),
        "{out}"
    );
    rt.delete_force(&id).ok();
}

#[test]
fn events_stats_json_as_runc() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    resources(
        &mut b,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}}),
    );
    let (id, _) = started(&rt, &mut b, "sleep 600");
    let out = rt.exec(&["events", "--stats", &id]);
    out.ok();
    let e: Value = serde_json::from_str(out.out()).unwrap_or_else(|err| panic!("{err}: {out}"));
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], id.as_str());
    let d = &e["data"];
    for key in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(d.get(key).is_some(), "no {key}: {e}");
    }
    assert_eq!(d["memory"]["usage"]["limit"], 67108864);
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{e}"
    );
    assert_eq!(d["pids"]["current"], 1);
    assert_eq!(d["pids"]["limit"], 50);
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{e}");
    rt.delete_force(&id).ok();
    rt.exec(&["events", "--stats", &id]).fails();
}

#[test]
fn events_reports_an_oom_kill() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    resources(
        &mut b,
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let (id, _) = started(
        &rt,
        &mut b,
        "while [ ! -e /go ]; do sleep 0.1; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
    );
    let log = std::env::temp_dir().join(format!("{id}-events.json"));
    let file = std::fs::File::create(&log).unwrap();
    let mut ev = rt.command(&["events", "--interval", "1s", &id]);
    ev.stdout(file).stderr(std::process::Stdio::null());
    let mut child = ev.spawn().unwrap();
    // Allocate only once events is watching (its first stats line is out).
    let watching = eventually_for(120, || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().next().is_some())
    });
    assert!(watching, "events printed no stats");
    std::fs::write(b.rootfs().join("go"), "").unwrap();
    // events ends by itself once the OOM-killed container has no process left (runc's goes
    // on: give it 10 s).
    let limit = if is_runc() { 10 } else { 120 };
    let ended = wait_timeout(&mut child, Duration::from_secs(limit));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let ooms = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "oom" && e["id"] == id.as_str())
        .count();
    assert!(ooms >= 1, "no oom event in:\n{text}");
    if skip_for_runc("runc events does not end with the container") {
        return;
    }
    assert!(
        ended.is_some_and(|s| s.success()),
        "events did not end with the container"
    );
    rt.delete_force(&id).ok();
}

#[test]
fn kill_all_reaches_every_process_even_when_paused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (id, _) = started(&rt, &mut b, "sleep 600 & sleep 601 & sleep 602");
    let count = |rt: &Runtime| {
        let out = rt.exec(&["ps", "--format", "json", &id]);
        serde_json::from_str::<Vec<i64>>(out.out()).map_or(0, |p| p.len())
    };
    assert!(eventually(|| count(&rt) == 3), "three processes expected");
    rt.exec(&["pause", &id]).ok();
    rt.exec(&["kill", "--all", &id, "KILL"]).ok();
    assert!(
        eventually(|| count(&rt) == 0),
        "processes left after kill --all"
    );
    rt.delete_force(&id).ok();
    // delete --force of a paused container kills and removes it.
    let mut b = Bundle::new();
    let (id, _) = started(&rt, &mut b, "sleep 600 & sleep 601");
    rt.exec(&["pause", &id]).ok();
    rt.delete_force(&id).ok();
    assert!(!rt.state_dir_exists(&id));
    assert!(coracle_conformance::existing_cgroup_dirs(b.cgroup_path()).is_empty());
}

/// `update --resources -` with `json` on stdin: (success, stderr).
fn update_json(rt: &Runtime, id: &str, json: &str) -> (bool, String) {
    use std::io::Write;
    let mut cmd = rt.command(&["update", "--resources", "-", id]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn update");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(json.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for update");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until `cond` holds (every 50 ms, 10 s at most).
fn eventually(cond: impl FnMut() -> bool) -> bool {
    eventually_for(10, cond)
}

/// Waits until `cond` holds (every 50 ms, `secs` seconds at most).
fn eventually_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
