//! Fuzzes `update --resources FILE`: the file parsed as `LinuxResources` (as the CLI does),
//! merged into a container's current resources (`cgroups::resources::merge`), then checked as
//! `Container::update` checks it (`Cgroup::check_resources`) against fake v1 (every controller,
//! and devices only), hybrid and v2 hosts, plus the device rules `apply` would derive. Nothing
//! touches a real cgroup: the fake hosts' mount points do not exist and checking has no side
//! effects. Must never panic, hang or allocate without bound.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use coracle::cgroups::{resources, Cgroup, HostInfo};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxResources;

/// Where the fake hosts' hierarchies are "mounted": never created.
const ROOT: &str = "/nonexistent/coracle-fuzz-cgroup";

/// A mountinfo line for a cgroup mount at `ROOT/dir`.
fn mi_line(n: u32, dir: &str, fstype: &str, opts: &str) -> String {
    let mp = if dir.is_empty() {
        ROOT.to_owned()
    } else {
        format!("{ROOT}/{dir}")
    };
    format!("{n} 1 0:{n} / {mp} rw,nosuid,nodev,noexec,relatime shared:{n} - {fstype} {fstype} {opts}\n")
}

/// A v1 host with the given (mount dir, super options) hierarchies, optionally hybrid.
fn v1_host(hierarchies: &[(&str, &str)], hybrid: bool) -> HostInfo {
    let mut mountinfo = String::from("22 1 0:21 / /proc rw - proc proc rw\n");
    let mut self_cgroup = String::new();
    for (i, (dir, opts)) in (0u32..).zip(hierarchies) {
        mountinfo += &mi_line(30 + i, dir, "cgroup", opts);
        let ctrl = opts.trim_start_matches("rw,");
        self_cgroup += &format!("{}:{ctrl}:/\n", i + 1);
    }
    if hybrid {
        mountinfo += &mi_line(60, "unified", "cgroup2", "rw,nsdelegate");
    }
    self_cgroup += "0::/\n";
    HostInfo {
        root: PathBuf::from(ROOT),
        mountinfo,
        self_cgroup,
    }
}

/// The fake hosts' cgroups for a container `c`, resolved once per fuzzing process.
fn cgroups() -> &'static [Cgroup] {
    static CGROUPS: OnceLock<Vec<Cgroup>> = OnceLock::new();
    CGROUPS.get_or_init(|| {
        let all: &[(&str, &str)] = &[
            ("cpu,cpuacct", "rw,cpu,cpuacct"),
            ("cpuset", "rw,cpuset"),
            ("memory", "rw,memory"),
            ("devices", "rw,devices"),
            ("freezer", "rw,freezer"),
            ("blkio", "rw,blkio"),
            ("pids", "rw,pids"),
            ("hugetlb", "rw,hugetlb"),
            ("net_cls,net_prio", "rw,net_cls,net_prio"),
            ("rdma", "rw,rdma"),
            ("systemd", "rw,xattr,name=systemd"),
        ];
        let hosts = [
            v1_host(all, false),
            v1_host(all, true),
            v1_host(&[("devices", "rw,devices")], false),
            HostInfo {
                root: PathBuf::from(ROOT),
                mountinfo: mi_line(30, "", "cgroup2", "rw,nsdelegate"),
                self_cgroup: "0::/user.slice\n".to_owned(),
            },
        ];
        let cgroups: Vec<Cgroup> = hosts
            .iter()
            .map(|h| match Cgroup::resolve_with(h, None, "c") {
                Ok(cg) => cg,
                Err(e) => panic!("fake host does not resolve: {e}"),
            })
            .collect();
        cgroups
    })
}

/// A container's resources at create: what `coracle spec` and engines typically set.
fn base() -> &'static LinuxResources {
    static BASE: OnceLock<LinuxResources> = OnceLock::new();
    BASE.get_or_init(|| {
        let text = br#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}],
            "memory":{"limit":536870912,"swap":1073741824},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1"},
            "pids":{"limit":100}}"#;
        match serde_json::from_slice(text) {
            Ok(r) => r,
            Err(e) => panic!("base resources do not parse: {e}"),
        }
    })
}

fn check(res: &LinuxResources) {
    for cg in cgroups() {
        let _ = cg.check_resources(res);
    }
    let _ = resources::device_rules(res);
}

fuzz_target!(|data: &[u8]| {
    let Ok(patch) = serde_json::from_slice::<LinuxResources>(data) else {
        return;
    };
    check(&patch);
    for old in [base(), &LinuxResources::default()] {
        if let Ok(merged) = resources::merge(old, &patch) {
            check(&merged);
        }
    }
});
