//! What the container sees: namespaces, hostname, mounts, masked and read-only paths, devices,
//! its cgroup. Each checked from inside the container.

use std::fs;
use std::time::Duration;

use coracle_conformance::{
    find_mount, host_ns, parse_mountinfo, run_script, skip_for_runc, Bundle, MountInfo, Output,
    Runtime,
};

const NS_SCRIPT: &str = "for n in pid net ipc uts mnt cgroup user time; do \
                         echo NS_$n=$(readlink /proc/self/ns/$n); done";

#[test]
fn new_namespaces_differ_from_the_host() {
    let out = run_script(|_| {}, NS_SCRIPT);
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let inside = out.expect_field(&format!("NS_{ns}"));
        assert!(
            inside.starts_with(&format!("{ns}:[")),
            "{ns}: {inside}\n{out}"
        );
        assert_ne!(inside, host_ns(ns), "{ns} namespace is the host's\n{out}");
    }
    // Not asked for: shared with the host.
    for ns in ["user", "time"] {
        assert_eq!(
            out.expect_field(&format!("NS_{ns}")),
            host_ns(ns),
            "{ns} namespace should be the host's\n{out}"
        );
    }
}

#[test]
fn only_configured_namespaces_are_new() {
    let out = run_script(
        |b| {
            b.namespaces(&["mount", "pid"]);
            // A hostname needs a UTS namespace.
            b.config.as_object_mut().unwrap().remove("hostname");
        },
        NS_SCRIPT,
    );
    for ns in ["pid", "mnt"] {
        assert_ne!(
            out.expect_field(&format!("NS_{ns}")),
            host_ns(ns),
            "{ns}\n{out}"
        );
    }
    for ns in ["net", "ipc", "uts", "cgroup", "user"] {
        assert_eq!(
            out.expect_field(&format!("NS_{ns}")),
            host_ns(ns),
            "{ns}\n{out}"
        );
    }
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let out = run_script(
        |_| {},
        "echo PID=$$; echo PROCS=$(ls -d /proc/[0-9]* | wc -l)",
    );
    assert_eq!(out.expect_field("PID"), "1", "\n{out}");
    // sh, ls and wc, plus the subshell: only the container's own processes are visible.
    let procs: u32 = out.expect_field("PROCS").parse().unwrap();
    assert!(procs <= 5, "host processes are visible\n{out}");
}

#[test]
fn network_namespace_has_only_loopback() {
    let out = run_script(|_| {}, "cat /proc/net/dev");
    let ifaces: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(':').map(|(i, _)| i.trim()))
        .collect();
    assert_eq!(ifaces, vec!["lo"], "\n{out}");
}

#[test]
fn user_namespace_with_mappings() {
    let out = run_script(
        |b| {
            b.add_namespace("user", None);
            b.config["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            // sysfs cannot be mounted in a user namespace without a new network namespace
            // owned by it; keep the default mounts, which work here.
        },
        "echo UIDMAP=$(cat /proc/self/uid_map); echo GIDMAP=$(cat /proc/self/gid_map); \
         echo UID=$(id -u); echo NS_user=$(readlink /proc/self/ns/user)",
    );
    let words = |k: &str| {
        out.expect_field(k)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(words("UIDMAP"), "0 200000 65536", "\n{out}");
    assert_eq!(words("GIDMAP"), "0 200000 65536", "\n{out}");
    assert_eq!(out.expect_field("UID"), "0", "\n{out}");
    assert_ne!(out.expect_field("NS_user"), host_ns("user"), "\n{out}");
}

#[test]
fn time_namespace_with_offsets() {
    if skip_for_runc("runc 1.1 has no time namespace support") {
        return;
    }
    let out = run_script(
        |b| {
            b.add_namespace("time", None);
            b.config["linux"]["timeOffsets"] = serde_json::json!({
                "boottime": {"secs": 10_000_000, "nanosecs": 0},
                "monotonic": {"secs": 10_000_000, "nanosecs": 0}
            });
        },
        "echo NS_time=$(readlink /proc/self/ns/time); echo UPTIME=$(cut -d. -f1 /proc/uptime)",
    );
    assert_ne!(out.expect_field("NS_time"), host_ns("time"), "\n{out}");
    let up: u64 = out.expect_field("UPTIME").parse().unwrap();
    assert!(up >= 10_000_000, "boottime offset not applied\n{out}");
}

#[test]
fn joining_namespaces_by_path() {
    let rt = Runtime::new();
    let mut first = Bundle::new();
    first.sh("sleep 1000");
    let id1 = rt.new_id();
    rt.create(&id1, &first).ok();
    let pid = rt.state(&id1)["pid"].as_i64().unwrap();
    let net = fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let ipc = fs::read_link(format!("/proc/{pid}/ns/ipc")).unwrap();

    let mut second = Bundle::new();
    second.sh(NS_SCRIPT);
    second
        .add_namespace("network", Some(&format!("/proc/{pid}/ns/net")))
        .add_namespace("ipc", Some(&format!("/proc/{pid}/ns/ipc")));
    let out = rt.run(&second);
    out.ok();
    assert_eq!(
        out.expect_field("NS_net"),
        net.display().to_string(),
        "\n{out}"
    );
    assert_eq!(
        out.expect_field("NS_ipc"),
        ipc.display().to_string(),
        "\n{out}"
    );
    // The others are still new, and not the first container's.
    let uts1 = fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    assert_ne!(
        out.expect_field("NS_uts"),
        uts1.display().to_string(),
        "\n{out}"
    );
    assert_ne!(out.expect_field("NS_uts"), host_ns("uts"), "\n{out}");
    rt.delete_force(&id1).ok();
}

#[test]
fn hostname_is_set() {
    let out = run_script(
        |b| {
            b.hostname("conformance-host");
        },
        "echo HOST=$(hostname); echo PROC=$(cat /proc/sys/kernel/hostname)",
    );
    assert_eq!(out.expect_field("HOST"), "conformance-host", "\n{out}");
    assert_eq!(out.expect_field("PROC"), "conformance-host", "\n{out}");
    // The host's is untouched.
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "conformance-host");
}

#[test]
fn domainname_is_set() {
    if skip_for_runc("runc 1.1 ignores `domainname`") {
        return;
    }
    let out = run_script(
        |b| {
            b.config["domainname"] = serde_json::json!("conformance.example");
        },
        "echo DOMAIN=$(cat /proc/sys/kernel/domainname)",
    );
    assert_eq!(out.expect_field("DOMAIN"), "conformance.example", "\n{out}");
}

fn mounts_of(out: &Output) -> Vec<MountInfo> {
    let m = parse_mountinfo(&out.stdout);
    assert!(!m.is_empty(), "no mountinfo in output\n{out}");
    m
}

#[track_caller]
fn mount_at<'a>(mounts: &'a [MountInfo], point: &str, out: &Output) -> &'a MountInfo {
    find_mount(mounts, point).unwrap_or_else(|| panic!("nothing mounted at {point}\n{out}"))
}

#[track_caller]
fn assert_opts(m: &MountInfo, opts: &[&str], out: &Output) {
    for o in opts {
        assert!(
            m.has(o),
            "{} should have option {o}: {m:?}\n{out}",
            m.mount_point
        );
    }
}

#[test]
fn default_mounts_types_and_options() {
    let out = run_script(|_| {}, "cat /proc/self/mountinfo");
    let m = mounts_of(&out);
    let root = mount_at(&m, "/", &out);
    assert!(root.has("rw"), "/ should be rw: {root:?}\n{out}");
    let expect = [
        ("/proc", "proc", &[][..]),
        ("/dev", "tmpfs", &["nosuid"][..]),
        ("/dev/pts", "devpts", &["nosuid", "noexec"][..]),
        ("/dev/shm", "tmpfs", &["nosuid", "nodev", "noexec"][..]),
        ("/dev/mqueue", "mqueue", &["nosuid", "nodev", "noexec"][..]),
        ("/sys", "sysfs", &["ro", "nosuid", "nodev", "noexec"][..]),
    ];
    for (point, fstype, opts) in expect {
        let mi = mount_at(&m, point, &out);
        assert_eq!(mi.fstype, fstype, "{point}\n{out}");
        assert_opts(mi, opts, &out);
    }
    let dev = mount_at(&m, "/dev", &out);
    assert!(
        dev.super_options.iter().any(|o| o == "mode=755"),
        "/dev mode=755: {dev:?}\n{out}"
    );
    let pts = mount_at(&m, "/dev/pts", &out);
    for o in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(
            pts.super_options.iter().any(|s| s == o),
            "/dev/pts {o}\n{out}"
        );
    }
    // cgroup v1 (this machine): each controller mounted read-only under /sys/fs/cgroup.
    let cg: Vec<&MountInfo> = m.iter().filter(|x| x.fstype == "cgroup").collect();
    assert!(
        !cg.is_empty(),
        "no cgroup mounts under /sys/fs/cgroup\n{out}"
    );
    for c in cg {
        assert!(c.mount_point.starts_with("/sys/fs/cgroup"), "{c:?}\n{out}");
        assert_opts(c, &["ro", "nosuid", "nodev", "noexec"], &out);
    }
    let memory = mount_at(&m, "/sys/fs/cgroup/memory", &out);
    assert!(
        memory.super_options.iter().any(|o| o == "memory"),
        "{memory:?}\n{out}"
    );
}

#[test]
fn no_host_mounts_are_visible() {
    let out = run_script(|_| {}, "cat /proc/self/mountinfo");
    for m in mounts_of(&out) {
        let p = &m.mount_point;
        let ok = p == "/"
            || ["/proc", "/dev", "/sys"]
                .iter()
                .any(|pre| p == pre || p.starts_with(&format!("{pre}/")));
        assert!(ok, "unexpected mount {p} in the container\n{out}");
    }
}

#[test]
fn tmpfs_mount_with_options() {
    let out = run_script(
        |b| {
            b.mount(
                "/mnt/scratch",
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "noexec", "size=1m", "mode=700"],
            );
        },
        "cat /proc/self/mountinfo; echo MODE=$(stat -c %a /mnt/scratch); \
         echo hi > /mnt/scratch/f && echo WRITE=ok",
    );
    let m = mounts_of(&out);
    let t = mount_at(&m, "/mnt/scratch", &out);
    assert_eq!(t.fstype, "tmpfs", "\n{out}");
    assert_opts(t, &["rw", "nosuid", "nodev", "noexec"], &out);
    assert!(
        t.super_options.iter().any(|o| o == "size=1024k"),
        "{t:?}\n{out}"
    );
    assert_eq!(out.expect_field("MODE"), "700", "\n{out}");
    assert_eq!(out.expect_field("WRITE"), "ok", "\n{out}");
}

#[test]
fn bind_mounts_rw_and_ro() {
    let out = run_script(
        |b| {
            let src = b.path().join("shared-src");
            fs::create_dir_all(&src).unwrap();
            fs::write(src.join("hello"), "from-the-host\n").unwrap();
            let src = src.display().to_string();
            b.mount("/mnt/ro", "bind", &src, &["rbind", "ro", "nosuid"]);
            b.mount("/mnt/rw", "bind", &src, &["bind", "rw"]);
        },
        "cat /proc/self/mountinfo; echo RO_READ=$(cat /mnt/ro/hello); \
         touch /mnt/ro/x 2>/dev/null && echo RO_WRITE=yes || echo RO_WRITE=no; \
         echo written > /mnt/rw/new && echo RW_WRITE=yes",
    );
    let m = mounts_of(&out);
    let ro = mount_at(&m, "/mnt/ro", &out);
    assert_opts(ro, &["ro", "nosuid"], &out);
    let rw = mount_at(&m, "/mnt/rw", &out);
    assert_opts(rw, &["rw"], &out);
    assert_eq!(out.expect_field("RO_READ"), "from-the-host", "\n{out}");
    assert_eq!(out.expect_field("RO_WRITE"), "no", "\n{out}");
    assert_eq!(out.expect_field("RW_WRITE"), "yes", "\n{out}");
}

#[test]
fn mount_propagation_flags() {
    let out = run_script(
        |b| {
            let src = b.path().join("prop-src");
            fs::create_dir_all(&src).unwrap();
            let src = src.display().to_string();
            b.mount("/mnt/shared", "bind", &src, &["rbind", "rshared"]);
            b.mount("/mnt/private", "bind", &src, &["rbind", "rprivate"]);
        },
        "cat /proc/self/mountinfo",
    );
    let m = mounts_of(&out);
    let shared = mount_at(&m, "/mnt/shared", &out);
    assert!(
        shared.optional.iter().any(|o| o.starts_with("shared:")),
        "/mnt/shared should be shared: {shared:?}\n{out}"
    );
    let private = mount_at(&m, "/mnt/private", &out);
    assert!(
        private.optional.is_empty(),
        "/mnt/private should be private: {private:?}\n{out}"
    );
}

#[test]
fn root_propagation_is_not_shared_with_the_host() {
    // Mounts made inside the container must not propagate to the host: the root mount is
    // private or a slave, never shared with a host peer group.
    let out = run_script(|_| {}, "cat /proc/self/mountinfo");
    let m = mounts_of(&out);
    let root = mount_at(&m, "/", &out);
    assert!(
        !root.optional.iter().any(|o| o.starts_with("shared:")),
        "/ is shared: {root:?}\n{out}"
    );
}

#[test]
fn readonly_root() {
    let out = run_script(
        |b| {
            b.root_readonly(true);
        },
        "cat /proc/self/mountinfo; touch /newfile 2>/dev/null && echo ROOT_WRITE=yes || \
         echo ROOT_WRITE=no; echo x > /dev/shm/f && echo SHM_WRITE=yes",
    );
    let m = mounts_of(&out);
    assert_opts(mount_at(&m, "/", &out), &["ro"], &out);
    assert_eq!(out.expect_field("ROOT_WRITE"), "no", "\n{out}");
    assert_eq!(out.expect_field("SHM_WRITE"), "yes", "\n{out}");
}

#[test]
fn masked_paths_are_unreadable() {
    let out = run_script(
        |b| {
            let etc = b.rootfs().join("etc");
            fs::write(etc.join("secret"), "s3cret\n").unwrap();
            fs::create_dir_all(etc.join("secretdir")).unwrap();
            fs::write(etc.join("secretdir/inner"), "s3cret\n").unwrap();
            b.masked_paths(&[
                "/proc/kcore",
                "/proc/keys",
                "/proc/timer_list",
                "/sys/firmware",
                "/etc/secret",
                "/etc/secretdir",
                "/does/not/exist",
            ]);
        },
        "echo SECRET=$(cat /etc/secret); echo SECRETDIR=$(ls /etc/secretdir); \
         touch /etc/secretdir/x 2>/dev/null && echo DIR_WRITE=yes || echo DIR_WRITE=no; \
         echo KEYS=$(cat /proc/keys | wc -c); echo TIMERS=$(cat /proc/timer_list | wc -c); \
         echo FIRMWARE=$(ls /sys/firmware | wc -l); \
         if [ -e /proc/kcore ]; then echo KCORE=$(head -c 16 /proc/kcore | wc -c); else echo KCORE=0; fi",
    );
    assert_eq!(out.expect_field("SECRET"), "", "\n{out}");
    assert_eq!(out.expect_field("SECRETDIR"), "", "\n{out}");
    assert_eq!(out.expect_field("DIR_WRITE"), "no", "\n{out}");
    for k in ["KEYS", "TIMERS", "FIRMWARE", "KCORE"] {
        assert_eq!(out.expect_field(k), "0", "{k} should be masked\n{out}");
    }
}

#[test]
fn masked_file_is_the_null_device() {
    let out = run_script(
        |b| {
            fs::write(b.rootfs().join("etc/secret"), "s3cret\n").unwrap();
            b.masked_paths(&["/etc/secret"]);
        },
        "echo DEV=$(stat -c '%F %t:%T' /etc/secret)",
    );
    assert_eq!(
        out.expect_field("DEV"),
        "character special file 1:3",
        "\n{out}"
    );
}

#[test]
fn readonly_paths_are_read_only() {
    let out = run_script(
        |b| {
            fs::create_dir_all(b.rootfs().join("etc/rodir")).unwrap();
            b.readonly_paths(&["/proc/sys", "/proc/sysrq-trigger", "/etc/rodir", "/not/there"]);
        },
        "cat /proc/self/mountinfo; \
         echo changed > /proc/sys/kernel/hostname 2>/dev/null && echo SYS_WRITE=yes || echo SYS_WRITE=no; \
         echo HOST=$(hostname); \
         touch /etc/rodir/x 2>/dev/null && echo RODIR_WRITE=yes || echo RODIR_WRITE=no; \
         touch /etc/x && echo ETC_WRITE=yes; echo SYS_READ=$(cat /proc/sys/kernel/ostype)",
    );
    assert_eq!(out.expect_field("SYS_WRITE"), "no", "\n{out}");
    assert_ne!(out.expect_field("HOST"), "changed", "\n{out}");
    assert_eq!(out.expect_field("RODIR_WRITE"), "no", "\n{out}");
    assert_eq!(out.expect_field("ETC_WRITE"), "yes", "\n{out}");
    assert_eq!(out.expect_field("SYS_READ"), "Linux", "\n{out}");
    let m = mounts_of(&out);
    for p in ["/proc/sys", "/proc/sysrq-trigger", "/etc/rodir"] {
        if p == "/proc/sysrq-trigger" && !std::path::Path::new(p).exists() {
            continue; // not built into this kernel
        }
        assert_opts(mount_at(&m, p, &out), &["ro"], &out);
    }
}

const STAT_DEVS: &str = "for d in null zero full random urandom tty fuse coracle-made-up coracle-blk; do \
     if [ -e /dev/$d ]; then echo DEV_$d=$(stat -c '%F %t:%T %a %u:%g' /dev/$d); else echo DEV_$d=missing; fi; done; \
     for l in fd stdin stdout stderr ptmx; do echo LINK_$l=$(readlink /dev/$l); done; \
     echo ZERO=$(head -c 5 /dev/zero | wc -c); echo x > /dev/null && echo NULL_WRITE=ok; \
     echo URANDOM=$(head -c 7 /dev/urandom | wc -c)";

#[test]
fn default_devices() {
    let out = run_script(|_| {}, STAT_DEVS);
    let expect = [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ];
    for (name, mm) in expect {
        let got = out.expect_field(&format!("DEV_{name}"));
        assert_eq!(
            got,
            format!("character special file {mm} 666 0:0"),
            "/dev/{name}\n{out}"
        );
    }
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        assert_eq!(
            out.expect_field(&format!("LINK_{name}")),
            target,
            "/dev/{name}\n{out}"
        );
    }
    assert_eq!(out.expect_field("ZERO"), "5", "\n{out}");
    assert_eq!(out.expect_field("NULL_WRITE"), "ok", "\n{out}");
    assert_eq!(out.expect_field("URANDOM"), "7", "\n{out}");
    // Devices not asked for are not there.
    assert_eq!(out.expect_field("DEV_fuse"), "missing", "\n{out}");
}

#[test]
fn extra_linux_devices() {
    let out = run_script(
        |b| {
            b.device("/dev/fuse", "c", 10, 229, 0o666)
                .device("/dev/coracle-made-up", "c", 240, 7, 0o640)
                .device("/dev/coracle-blk", "b", 7, 200, 0o600);
            // Owned by someone else.
            b.config["linux"]["devices"][1]["uid"] = serde_json::json!(1000);
            b.config["linux"]["devices"][1]["gid"] = serde_json::json!(20);
        },
        STAT_DEVS,
    );
    // stat prints major/minor in hex.
    assert_eq!(
        out.expect_field("DEV_fuse"),
        "character special file a:e5 666 0:0",
        "\n{out}"
    );
    assert_eq!(
        out.expect_field("DEV_coracle-made-up"),
        "character special file f0:7 640 1000:20",
        "\n{out}"
    );
    assert_eq!(
        out.expect_field("DEV_coracle-blk"),
        "block special file 7:c8 600 0:0",
        "\n{out}"
    );
}

#[test]
fn devpts_and_shm_are_usable() {
    let out = run_script(
        |_| {},
        "echo PTMX=$(stat -c %F /dev/pts/ptmx); echo x > /dev/shm/f && echo SHM=ok",
    );
    assert_eq!(
        out.expect_field("PTMX"),
        "character special file",
        "\n{out}"
    );
    assert_eq!(out.expect_field("SHM"), "ok", "\n{out}");
}

#[test]
fn cgroup_namespace_hides_the_path() {
    let out = run_script(|_| {}, "cat /proc/self/cgroup");
    for line in out.stdout.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.ends_with(":/"),
            "cgroup path visible inside: {line}\n{out}"
        );
    }
}

#[test]
fn container_process_is_in_its_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap().to_string();
    let dirs = coracle_conformance::existing_cgroup_dirs(b.cgroup_path());
    let hierarchies = coracle_conformance::cgroup_hierarchies();
    for h in &hierarchies {
        let dir = h.join(b.cgroup_path().trim_start_matches('/'));
        assert!(
            dirs.contains(&dir),
            "cgroup dir {} missing while the container exists",
            dir.display()
        );
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.split_whitespace().any(|p| p == pid),
            "pid {pid} not in {}/cgroup.procs ({procs:?})",
            dir.display()
        );
    }
    rt.delete_force(&id).ok();
    std::thread::sleep(Duration::from_millis(50));
    let left = coracle_conformance::existing_cgroup_dirs(b.cgroup_path());
    assert!(left.is_empty(), "cgroup dirs left after delete: {left:?}");
}

#[test]
fn relative_cgroups_path_and_none() {
    // A relative cgroupsPath and no cgroupsPath both work (runc puts them under the root cgroup
    // or /<id>); the container runs and all of it is removed on delete.
    for rel in [true, false] {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        let name = coracle_conformance::unique("coracle-test-rel");
        if rel {
            b.cgroups_path(Some(&name));
        } else {
            b.cgroups_path(None);
        }
        b.sh("echo RAN=yes");
        let id = rt.new_id();
        let out = rt.run_id(&id, &b, &[]);
        out.ok();
        assert_eq!(out.expect_field("RAN"), "yes", "\n{out}");
        let probe = if rel {
            format!("/{name}")
        } else {
            format!("/{id}")
        };
        let left = coracle_conformance::existing_cgroup_dirs(&probe);
        assert!(left.is_empty(), "cgroup left after run: {left:?}");
    }
}

#[test]
fn recursive_mount_attributes() {
    // A host directory with a submount, bind-mounted with rbind + rro + rnosuid: the submount
    // must be read-only and nosuid too.
    let out = run_script(
        |b| {
            let src = b.path().join("rec-src");
            let sub = src.join("sub");
            fs::create_dir_all(&sub).unwrap();
            let st = std::process::Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    "size=1m",
                    "coracle-test",
                    sub.to_str().unwrap(),
                ])
                .status()
                .unwrap();
            assert!(st.success(), "mount tmpfs on {}", sub.display());
            let src = src.display().to_string();
            b.mount("/mnt/rec", "bind", &src, &["rbind", "rro", "rnosuid"]);
        },
        "cat /proc/self/mountinfo; touch /mnt/rec/sub/x 2>/dev/null && echo SUB_WRITE=yes || \
         echo SUB_WRITE=no",
    );
    let m = mounts_of(&out);
    assert_opts(mount_at(&m, "/mnt/rec", &out), &["ro", "nosuid"], &out);
    assert_opts(mount_at(&m, "/mnt/rec/sub", &out), &["ro", "nosuid"], &out);
    assert_eq!(out.expect_field("SUB_WRITE"), "no", "\n{out}");
}

#[test]
fn no_pivot() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("cat /proc/self/mountinfo; echo ROOTLS=$(ls / | tr '\\n' ' ')");
    let out = rt.run_id(&rt.new_id(), &b, &["--no-pivot"]);
    out.ok();
    let m = mounts_of(&out);
    mount_at(&m, "/", &out);
    assert!(out.expect_field("ROOTLS").contains("bin"), "\n{out}");
    assert!(!out.expect_field("ROOTLS").contains("rootfs"), "\n{out}");
}

#[test]
fn rootfs_propagation_private() {
    let out = run_script(
        |b| {
            b.config["linux"]["rootfsPropagation"] = serde_json::json!("private");
        },
        "cat /proc/self/mountinfo",
    );
    let m = mounts_of(&out);
    let root = mount_at(&m, "/", &out);
    assert!(
        root.optional.is_empty(),
        "/ should be private: {root:?}\n{out}"
    );
}
