//! linux.resources on real containers: the values land in the cgroup files (read from inside
//! the container, whose /sys/fs/cgroup shows its own cgroup), limits really limit, and the
//! cgroup commands (pause, resume, update, ps, events) behave as runc's. Each test works on a
//! cgroup v1/hybrid host and on a pure cgroup v2 host (the file names differ).

use std::path::Path;

use coracle_conformance::{run_script, skip_for_runc, Bundle, Runtime};
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
    // The shell keeps a 64 MiB command substitution in memory: past a 16 MiB limit.
    b.sh("x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo SURVIVED=${#x}");
    resources(
        &mut b,
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let out = rt.run(&b);
    assert!(out.field("SURVIVED").is_none(), "{out}");
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
fn bad_resources_are_refused_before_anything_is_made() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    resources(&mut b, json!({"memory": {"swappiness": 200}}));
    let id = rt.new_id();
    rt.create(&id, &b).fails().stderr_mentions(&["swappiness"]);
    assert!(!rt.state_dir_exists(&id));
    assert!(coracle_conformance::existing_cgroup_dirs(b.cgroup_path()).is_empty());
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
