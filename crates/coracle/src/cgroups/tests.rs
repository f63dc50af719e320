//! Tests: path resolution and creation against temp-dir trees with fake mountinfo and
//! /proc/self/cgroup; and a real cgroup on the running host.

use std::path::{Path, PathBuf};

use super::*;

/// A mountinfo line for a cgroup mount at `mp`.
fn mi_line(n: u32, mp: &Path, root: &str, fstype: &str, opts: &str) -> String {
    format!(
        "{n} 1 0:{n} {root} {} rw,nosuid,nodev,noexec,relatime shared:{n} - {fstype} {fstype} {opts}\n",
        mp.display()
    )
}

/// A fake host whose cgroup root is `t`: v1 hierarchies named by `v1` (mount dir name,
/// super options), optionally cgroup2 at `t/unified`. Mount dirs are created.
fn fake_v1(t: &Path, v1: &[(&str, &str)], hybrid: bool, self_cgroup: &str) -> HostInfo {
    let mut mi = String::from("22 1 0:21 / /proc rw - proc proc rw\n");
    mi += &format!("23 1 0:22 / {} rw - tmpfs tmpfs rw,mode=755\n", t.display());
    for (i, (dir, opts)) in v1.iter().enumerate() {
        let mp = t.join(dir);
        std::fs::create_dir_all(&mp).unwrap();
        mi += &mi_line(30 + u32::try_from(i).unwrap(), &mp, "/", "cgroup", opts);
    }
    if hybrid {
        let mp = t.join("unified");
        std::fs::create_dir_all(&mp).unwrap();
        mi += &mi_line(60, &mp, "/", "cgroup2", "rw,nsdelegate");
    }
    HostInfo {
        root: t.to_path_buf(),
        mountinfo: mi,
        self_cgroup: self_cgroup.to_owned(),
    }
}

/// This VM's layout: separate cpu and cpuacct, no net_cls/perf_event/hugetlb.
const VM_V1: &[(&str, &str)] = &[
    ("cpu", "rw,cpu"),
    ("cpuacct", "rw,cpuacct"),
    ("cpuset", "rw,cpuset"),
    ("memory", "rw,memory"),
    ("devices", "rw,devices"),
    ("freezer", "rw,freezer"),
    ("blkio", "rw,blkio"),
    ("pids", "rw,pids"),
    ("systemd", "rw,xattr,name=systemd"),
];

const VM_SELF: &str = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
                       4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

fn path_of(cg: &Cgroup, c: &str) -> PathBuf {
    cg.path(c).unwrap_or_else(|| panic!("no path for {c:?}"))
}

#[test]
fn hybrid_default_path_is_the_id_relative_to_own_cgroups() {
    let t = tempfile::tempdir().unwrap();
    let host = fake_v1(t.path(), VM_V1, true, VM_SELF);
    let cg = Cgroup::resolve_with(&host, None, "ctr1").unwrap();
    assert_eq!(cg.mode(), Mode::Hybrid);
    assert!(!cg.is_v2());
    let r = t.path();
    assert_eq!(
        path_of(&cg, "memory"),
        r.join("memory/process_api/abc/ctr1")
    );
    assert_eq!(path_of(&cg, "cpu"), r.join("cpu/ctr1"));
    assert_eq!(path_of(&cg, "cpuacct"), r.join("cpuacct/ctr1"));
    assert_eq!(path_of(&cg, "name=systemd"), r.join("systemd/ctr1"));
    assert_eq!(path_of(&cg, ""), r.join("unified/ctr1"));
    // 9 v1 hierarchies + unified; nothing for absent controllers.
    assert_eq!(cg.paths().len(), 10);
    assert!(cg.path("hugetlb").is_none());
    assert!(cg.clone_target().is_none());
    // No side effects.
    assert!(!r.join("cpu/ctr1").exists());
}

#[test]
fn hybrid_absolute_path_goes_under_each_mount_point() {
    let t = tempfile::tempdir().unwrap();
    let host = fake_v1(t.path(), VM_V1, true, VM_SELF);
    let cg = Cgroup::resolve_with(&host, Some(Path::new("/a/../../b/c")), "x").unwrap();
    assert_eq!(cg.cgroups_path(), Path::new("/b/c"));
    for (c, p) in cg.paths() {
        assert!(p.ends_with("b/c"), "{c}: {}", p.display());
        assert!(p.starts_with(t.path()));
    }
    assert_eq!(path_of(&cg, "memory"), t.path().join("memory/b/c"));
}

#[test]
fn relative_path_cannot_climb_out() {
    let t = tempfile::tempdir().unwrap();
    let host = fake_v1(t.path(), VM_V1, false, VM_SELF);
    let cg = Cgroup::resolve_with(&host, Some(Path::new("../../../etc")), "x").unwrap();
    assert_eq!(cg.mode(), Mode::Legacy);
    assert_eq!(
        path_of(&cg, "memory"),
        t.path().join("memory/process_api/abc/etc")
    );
    assert!(cg.path("").is_none());
}

#[test]
fn comounted_controllers_share_a_directory() {
    let t = tempfile::tempdir().unwrap();
    let v1 = [
        ("cpu,cpuacct", "rw,cpu,cpuacct"),
        ("net_cls,net_prio", "rw,net_cls,net_prio"),
        ("devices", "rw,devices"),
        ("misc", "rw,misc"),
    ];
    let own = "4:net_cls,net_prio:/n\n3:cpu,cpuacct:/c\n2:devices:/\n1:misc:/\n";
    let host = fake_v1(t.path(), &v1, false, own);
    let cg = Cgroup::resolve_with(&host, Some(Path::new("ctr")), "x").unwrap();
    let cpu = path_of(&cg, "cpu");
    assert_eq!(cpu, t.path().join("cpu,cpuacct/c/ctr"));
    assert_eq!(path_of(&cg, "cpuacct"), cpu);
    assert_eq!(
        path_of(&cg, "net_prio"),
        t.path().join("net_cls,net_prio/n/ctr")
    );
    // misc is not one of runc's subsystems.
    assert!(cg.path("misc").is_none());
    let Manager::V1(m) = &cg.manager else {
        panic!("not v1")
    };
    assert_eq!(m.dirs.len(), 3);
}

#[test]
fn v1_mount_of_a_subtree_strips_its_root() {
    let t = tempfile::tempdir().unwrap();
    let mp = t.path().join("devices");
    std::fs::create_dir_all(&mp).unwrap();
    let host = HostInfo {
        root: t.path().to_path_buf(),
        mountinfo: mi_line(30, &mp, "/docker/abc", "cgroup", "rw,devices"),
        self_cgroup: "1:devices:/docker/abc/sub\n".to_owned(),
    };
    let cg = Cgroup::resolve_with(&host, None, "c").unwrap();
    assert_eq!(path_of(&cg, "devices"), mp.join("sub/c"));
    // Absolute paths ignore the own cgroup.
    let cg = Cgroup::resolve_with(&host, Some(Path::new("/z")), "c").unwrap();
    assert_eq!(path_of(&cg, "devices"), mp.join("z"));
    // Own cgroup outside the mounted subtree: refused.
    let host = HostInfo {
        self_cgroup: "1:devices:/elsewhere\n".to_owned(),
        ..host
    };
    assert!(matches!(
        Cgroup::resolve_with(&host, None, "c"),
        Err(CgroupError::OutsideMount { .. })
    ));
}

#[test]
fn v1_without_devices_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let host = fake_v1(t.path(), &[("memory", "rw,memory")], false, "1:memory:/\n");
    assert!(matches!(
        Cgroup::resolve_with(&host, None, "c"),
        Err(CgroupError::NoDevicesHierarchy)
    ));
    let host = HostInfo {
        mountinfo: "1 1 0:1 / /proc rw - proc proc rw\n".to_owned(),
        ..host
    };
    assert!(matches!(
        Cgroup::resolve_with(&host, None, "c"),
        Err(CgroupError::NoCgroupFs { .. })
    ));
}

fn fake_v2(t: &Path, self_cgroup: &str) -> HostInfo {
    HostInfo {
        root: t.to_path_buf(),
        mountinfo: mi_line(30, t, "/", "cgroup2", "rw,nsdelegate"),
        self_cgroup: self_cgroup.to_owned(),
    }
}

#[test]
fn v2_relative_is_beside_own_cgroup() {
    let t = tempfile::tempdir().unwrap();
    let host = fake_v2(t.path(), "0::/user.slice/session-1.scope\n");
    let cg = Cgroup::resolve_with(&host, None, "c1").unwrap();
    assert_eq!(cg.mode(), Mode::Unified);
    assert!(cg.is_v2());
    assert_eq!(
        cg.paths(),
        vec![(String::new(), t.path().join("user.slice/c1"))]
    );
    let cg = Cgroup::resolve_with(&host, Some(Path::new("a/b")), "c1").unwrap();
    assert_eq!(path_of(&cg, ""), t.path().join("user.slice/a/b"));
    let cg = Cgroup::resolve_with(&host, Some(Path::new("/x/y")), "c1").unwrap();
    assert_eq!(path_of(&cg, ""), t.path().join("x/y"));
    // In the root cgroup: under the root.
    let host = fake_v2(t.path(), "0::/\n");
    let cg = Cgroup::resolve_with(&host, None, "c1").unwrap();
    assert_eq!(path_of(&cg, ""), t.path().join("c1"));
    // A v2 host with no 0:: line.
    let host = fake_v2(t.path(), "");
    assert!(matches!(
        Cgroup::resolve_with(&host, None, "c1"),
        Err(CgroupError::NotInHierarchy { .. })
    ));
}

#[test]
fn v2_create_enables_controllers_in_ancestors() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::write(r.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    std::fs::write(r.join("cgroup.subtree_control"), "memory\n").unwrap();
    std::fs::create_dir(r.join("a")).unwrap();
    std::fs::write(r.join("a/cgroup.controllers"), "cpu memory\n").unwrap();
    std::fs::write(r.join("a/cgroup.subtree_control"), "cpu memory\n").unwrap();
    let host = fake_v2(r, "0::/\n");
    let mut cg = Cgroup::resolve_with(&host, Some(Path::new("/a/b/c")), "x").unwrap();
    cg.create().unwrap();
    assert!(r.join("a/b/c").is_dir());
    assert_eq!(cg.created(), &[r.join("a/b"), r.join("a/b/c")]);
    let root_ctl = std::fs::read_to_string(r.join("cgroup.subtree_control")).unwrap();
    assert_eq!(root_ctl, "+cpu +pids");
    // Nothing to enable in a (already complete); none written in the leaf.
    let a_ctl = std::fs::read_to_string(r.join("a/cgroup.subtree_control")).unwrap();
    assert_eq!(a_ctl, "cpu memory\n");
    assert!(!r.join("a/b/c/cgroup.subtree_control").exists());
    let fd = cg.clone_target().expect("an fd on v2");
    let st = nix::sys::stat::fstat(&fd).unwrap();
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
    // A later command sees the same thing from state.json.
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.created(), cg.created());
    assert!(back.is_v2());
    // a/b has no files in this fake tree, so rmdir works as on cgroupfs.
    back.destroy().unwrap();
    assert!(!r.join("a/b").exists());
    assert!(r.join("a").is_dir());
}

#[test]
fn v1_create_copies_cpuset_and_tracks_dirs() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let host = fake_v1(r, VM_V1, true, VM_SELF);
    std::fs::write(r.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
    std::fs::write(r.join("cpuset/cpuset.mems"), "0\n").unwrap();
    std::fs::create_dir_all(r.join("memory/process_api/abc")).unwrap();
    let mut cg = Cgroup::resolve_with(&host, Some(Path::new("p/q")), "x").unwrap();
    cg.create().unwrap();
    for f in ["cpuset/p", "cpuset/p/q"] {
        assert_eq!(
            std::fs::read_to_string(r.join(f).join("cpuset.cpus")).unwrap(),
            "0-3"
        );
        assert_eq!(
            std::fs::read_to_string(r.join(f).join("cpuset.mems")).unwrap(),
            "0"
        );
    }
    assert!(r.join("memory/process_api/abc/p/q").is_dir());
    assert!(r.join("unified/p/q").is_dir());
    // Two directories per hierarchy (9 v1 + unified); the existing memory parents not included.
    assert_eq!(cg.created().len(), 20);
    assert!(!cg.created().contains(&r.join("memory/process_api/abc")));
    assert!(cg.created().contains(&r.join("memory/process_api/abc/p")));
    cg.add_pid(4242).unwrap();
    assert_eq!(cg.pids().unwrap(), vec![4242]);
    assert_eq!(
        std::fs::read_to_string(r.join("systemd/p/q/cgroup.procs")).unwrap(),
        "4242"
    );
}

#[test]
fn v1_destroy_removes_only_created_dirs() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let v1 = [("devices", "rw,devices"), ("memory", "rw,memory")];
    let host = fake_v1(r, &v1, false, "2:devices:/\n1:memory:/m\n");
    std::fs::create_dir_all(r.join("memory/m")).unwrap();
    std::fs::create_dir_all(r.join("devices/c")).unwrap(); // pre-existing leaf: not ours
    let mut cg = Cgroup::resolve_with(&host, None, "c").unwrap();
    cg.create().unwrap();
    assert_eq!(cg.created(), &[r.join("memory/m/c")]);
    cg.destroy().unwrap();
    assert!(!r.join("memory/m/c").exists());
    assert!(r.join("memory/m").is_dir());
    assert!(r.join("devices/c").is_dir());
    cg.destroy().unwrap(); // idempotent
}

#[test]
fn failed_create_removes_what_it_made() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let v1 = [("devices", "rw,devices"), ("memory", "rw,memory")];
    let host = fake_v1(r, &v1, false, "2:devices:/\n1:memory:/\n");
    std::fs::remove_dir(r.join("memory")).unwrap(); // the memory mount point vanished
    let mut cg = Cgroup::resolve_with(&host, Some(Path::new("/a/b")), "c").unwrap();
    assert!(matches!(
        cg.create(),
        Err(CgroupError::Io { op: "mkdir", .. })
    ));
    assert!(cg.created().is_empty());
    assert!(!r.join("devices/a").exists());
}

/// The real host: a cgroup on every hierarchy, a child in it, then gone.
mod real {
    use super::*;
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicU32, Ordering};

    static N: AtomicU32 = AtomicU32::new(0);

    /// Kills the child and destroys the cgroup even when an assertion fails.
    struct Guard {
        child: Option<Child>,
        cg: Cgroup,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            // A frozen v1 task does not die until thawed.
            let _ = self.cg.thaw();
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = self.cg.destroy();
        }
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn unique(tag: &str) -> String {
        format!(
            "/coracle-unit-{}-{}{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Creates `cg`, puts a sleeping child in it, checks /proc/<child>/cgroup, kills the child.
    fn join_a_child(cg: &Cgroup, name: &str) {
        let mut g = Guard {
            child: None,
            cg: cg.clone(),
        };
        assert_eq!(cg.clone_target().is_some(), cg.is_v2());
        let child = Command::new("sleep").arg("100").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        g.child = Some(child);
        cg.add_pid(pid).unwrap();
        assert_eq!(cg.pids().unwrap(), vec![pid]);

        // Every line of /proc/<pid>/cgroup (every hierarchy, named and unified ones too)
        // shows the container's path.
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let own = host::parse_self_cgroup(&text);
        assert!(!own.is_empty());
        // (A hierarchy that exists in the kernel but is mounted nowhere cannot be joined,
        // by runc either: it is skipped.)
        let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in &own {
            let is_mounted = line.controllers.is_empty()
                || line.controllers.iter().all(|c| {
                    mounted.contains(&format!(",{c}\n"))
                        || mounted.contains(&format!(" {c}\n"))
                        || mounted.contains(&format!(",{c},"))
                });
            if is_mounted {
                assert_eq!(line.path, Path::new(name), "{line:?} in\n{text}");
            }
        }
        // And each hierarchy we resolved appears there.
        for (c, _) in cg.paths() {
            let listed = if c.is_empty() {
                host::own_v2(&own)
            } else {
                host::own_v1(&own, &c)
            };
            assert_eq!(listed.as_deref(), Some(Path::new(name)), "{c}");
        }
        // Pause and resume.
        assert!(!cg.is_frozen().unwrap());
        cg.freeze().unwrap();
        assert!(cg.is_frozen().unwrap());
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        eprintln!(
            "frozen child state: {}",
            stat.split(' ').nth(2).unwrap_or("?")
        );
        cg.thaw().unwrap();
        assert!(!cg.is_frozen().unwrap());
        let mut child = g.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // The guard's destroy is harmless here: the caller destroys and checks.
        std::mem::forget(g);
    }

    #[test]
    fn create_join_and_destroy_on_this_host() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique("");
        let mut cg = Cgroup::resolve(Some(Path::new(&name)), "ignored").unwrap();
        eprintln!("mode {:?}, paths {:?}", cg.mode(), cg.paths());
        // Before create: none of the leaves exist.
        for (_, p) in cg.paths() {
            assert!(!p.exists(), "{} exists already", p.display());
        }
        cg.create().unwrap();
        let _g = Guard {
            child: None,
            cg: cg.clone(),
        };
        join_a_child(&cg, &name);
        cg.destroy().unwrap();
        for (c, p) in cg.paths() {
            assert!(!p.exists(), "{c}: {} still exists", p.display());
        }
    }

    /// Two containers under one new parent: the first one created the parent; deleting it
    /// first leaves the parent (the second still lives there), and the second's directories
    /// are untouched.
    #[test]
    fn nested_paths_share_a_parent() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let parent = unique("");
        let (na, nb) = (format!("{parent}/a"), format!("{parent}/b"));
        let mut a = Cgroup::resolve(Some(Path::new(&na)), "x").unwrap();
        let mut b = Cgroup::resolve(Some(Path::new(&nb)), "x").unwrap();
        a.create().unwrap();
        let _ga = Guard {
            child: None,
            cg: a.clone(),
        };
        b.create().unwrap();
        let _gb = Guard {
            child: None,
            cg: b.clone(),
        };
        // a made parent and leaf on each hierarchy; b only its leaf.
        assert_eq!(a.created().len(), 2 * a.paths().len());
        assert_eq!(b.created().len(), b.paths().len());
        if a.is_v2() {
            // The new parent passed its controllers on to the leaf.
            let leaf = a.path("").unwrap();
            let pc = fsops::read_value(leaf.parent().unwrap(), "cgroup.controllers").unwrap();
            let lc = fsops::read_value(&leaf, "cgroup.controllers").unwrap();
            eprintln!("v2 leaf controllers: {lc:?}");
            assert_eq!(lc, pc);
        }
        join_a_child(&a, &na);
        join_a_child(&b, &nb);
        a.destroy().unwrap();
        for (c, p) in a.paths() {
            assert!(!p.exists(), "{c}: {} still exists", p.display());
            assert!(p.parent().unwrap().is_dir(), "{c}: parent removed");
        }
        for (_, p) in b.paths() {
            assert!(p.is_dir());
        }
        b.destroy().unwrap();
        for (_, p) in b.paths() {
            assert!(!p.exists());
        }
        // The parent was a's: a second destroy of a (delete is retried) removes it now.
        a.destroy().unwrap();
        for (_, p) in a.paths() {
            assert!(!p.parent().unwrap().exists());
        }
    }
}
