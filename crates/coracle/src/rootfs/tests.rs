//! setup + finalize in forked children with their own mount namespace; each checks from
//! inside (mountinfo, stat, writes) and the parent checks that nothing reached the host.

use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sched::{unshare, CloneFlags};

use super::mountinfo::{self, MountInfo};
use super::*;
use crate::sys::fs::run_in_child;

/// A tiny rootfs: busybox and a few directories, plus host-side sources for binds.
struct Fixture {
    dir: tempfile::TempDir,
    name: String,
}

impl Fixture {
    fn new(tag: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for l in ["sh", "cat", "ls"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(l)).unwrap();
        }
        std::fs::write(rootfs.join("etc/existing"), b"x").unwrap();
        // Symlinks that try to lead mounts out of the rootfs.
        std::os::unix::fs::symlink("/", rootfs.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", rootfs.join("etc/up")).unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(vol.join("sub")).unwrap();
        std::fs::write(vol.join("file"), b"vol").unwrap();
        std::fs::write(dir.path().join("hostfile"), b"hostfile").unwrap();
        for d in ["lower", "upper", "work"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("lower/low"), b"low").unwrap();
        // A unique name for mount points that must never appear on the host.
        let name = format!("coracle-rootfs-test-{tag}-{}", std::process::id());
        Self { dir, name }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).display().to_string()
    }
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn find<'a>(infos: &'a [MountInfo], at: &str) -> Result<&'a MountInfo, String> {
    infos
        .iter()
        .rev()
        .find(|m| m.mount_point == Path::new(at))
        .ok_or_else(|| format!("no mount at {at}"))
}

fn errno_of(r: std::io::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// The child's start: its own mount namespace with nothing propagating back to the host.
fn private_ns() -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
    crate::sys::fs::mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
    .map_err(|e| format!("make / private: {e}"))
}

#[test]
fn full_setup_in_child() {
    let fx = Fixture::new("full");
    let spec_json = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs","readonly":true}},
        "mounts":[
          {{"destination":"/proc","type":"proc","source":"proc"}},
          {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}},
          {{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]}},
          {{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]}},
          {{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}},
          {{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}},
          {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}},
          {{"destination":"/data","source":"{vol}","options":["rbind","ro","nosuid"]}},
          {{"destination":"/rro","source":"{vol}","options":["rbind","rro"]}},
          {{"destination":"/shared-tmp","type":"tmpfs","source":"tmpfs","options":["shared"]}},
          {{"destination":"/escape/{name}","type":"tmpfs","source":"tmpfs"}},
          {{"destination":"/etc/up/{name}-2","type":"tmpfs","source":"tmpfs"}},
          {{"destination":"/etc/hostfile","source":"{hostfile}","options":["bind"]}},
          {{"destination":"/ov","type":"overlay","source":"overlay","options":["lowerdir={lower}","upperdir={upper}","workdir={work}"]}},
          {{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["tmpcopyup"]}},
          {{"destination":"/opt","type":"tmpfs","source":"tmpfs","options":["tmpcopyup","ro","mode=755"]}}
        ],
        "linux":{{
          "devices":[{{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":384,"uid":1,"gid":2}},
                     {{"path":"/dev/sub/blk","type":"b","major":7,"minor":0}}],
          "maskedPaths":["/proc/kcore","/proc/keys","/sys/firmware","/nonexistent/x"],
          "readonlyPaths":["/proc/sys","/nonexistent"]
        }}}}"#,
        vol = fx.path("vol"),
        hostfile = fx.path("hostfile"),
        lower = fx.path("lower"),
        upper = fx.path("upper"),
        work = fx.path("work"),
        name = fx.name,
    );
    std::fs::write(fx.rootfs().join("tmp/keep"), b"kept").unwrap();
    std::fs::create_dir_all(fx.rootfs().join("opt/d")).unwrap();
    std::fs::write(fx.rootfs().join("opt/d/f"), b"f").unwrap();
    std::os::unix::fs::symlink("d/f", fx.rootfs().join("opt/l")).unwrap();
    let perm = std::os::unix::fs::PermissionsExt::from_mode(0o701);
    std::fs::set_permissions(fx.rootfs().join("opt/d"), perm).unwrap();
    let spec: oci_spec::runtime::Spec = serde_json::from_str(&spec_json).unwrap();
    let plan = RootfsPlan::from_spec(&spec, &fx.rootfs()).unwrap();
    let name = fx.name.clone();
    let vol = PathBuf::from(fx.path("vol"));
    let result = run_in_child(move || {
        private_ns()?;
        // A submount in the source, to see that rro reaches it.
        crate::sys::fs::mount(
            Some(Path::new("tmpfs")),
            &vol.join("sub"),
            Some("tmpfs"),
            0,
            None,
        )
        .map_err(|e| format!("submount: {e}"))?;
        setup(&plan, SetupOptions::default()).map_err(|e| format!("setup: {e}"))?;
        finalize(&plan).map_err(|e| format!("finalize: {e}"))?;
        check_full(&name)
    });
    result.unwrap();
    // Nothing reached the host.
    assert!(!Path::new("/").join(&fx.name).exists());
    assert!(!Path::new("/").join(format!("{}-2", fx.name)).exists());
    assert!(
        fx.rootfs().join(&fx.name).is_dir(),
        "the escape mount point is inside"
    );
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(fx.dir.path().to_str().unwrap()));
}

fn check_full(name: &str) -> Result<(), String> {
    let infos = mountinfo::read_self().map_err(|e| e.to_string())?;
    check(
        Path::new("/bin/busybox").exists(),
        "busybox visible in the new root",
    )?;
    check(find(&infos, "/proc")?.fstype == "proc", "proc")?;
    let dev = find(&infos, "/dev")?;
    check(
        dev.fstype == "tmpfs" && dev.has_option("nosuid"),
        "/dev tmpfs nosuid",
    )?;
    check(find(&infos, "/dev/pts")?.fstype == "devpts", "devpts")?;
    check(find(&infos, "/dev/mqueue")?.fstype == "mqueue", "mqueue")?;
    let shm = find(&infos, "/dev/shm")?;
    check(
        shm.has_option("nodev") && shm.has_option("noexec"),
        "/dev/shm flags",
    )?;
    let sys = find(&infos, "/sys")?;
    check(
        sys.fstype == "sysfs" && sys.has_option("ro"),
        "/sys sysfs ro",
    )?;
    let data = find(&infos, "/data")?;
    check(
        data.has_option("ro") && data.has_option("nosuid"),
        "/data ro,nosuid",
    )?;
    check(
        std::fs::read("/data/file").ok() == Some(b"vol".to_vec()),
        "/data content",
    )?;
    check(find(&infos, "/rro")?.has_option("ro"), "/rro ro")?;
    check(
        find(&infos, "/rro/sub")?.has_option("ro"),
        "/rro/sub ro (recursive)",
    )?;
    check(
        find(&infos, "/shared-tmp")?.is_shared(),
        "/shared-tmp shared",
    )?;
    check(
        find(&infos, &format!("/{name}"))?.fstype == "tmpfs",
        "escape mount inside",
    )?;
    check(
        find(&infos, &format!("/{name}-2"))?.fstype == "tmpfs",
        "../ mount inside",
    )?;
    check(
        std::fs::read("/etc/hostfile").ok() == Some(b"hostfile".to_vec()),
        "file bind",
    )?;
    check(find(&infos, "/ov")?.fstype == "overlay", "overlay")?;
    check(
        std::fs::read("/ov/low").ok() == Some(b"low".to_vec()),
        "overlay lower",
    )?;
    check(find(&infos, "/tmp")?.fstype == "tmpfs", "/tmp tmpfs")?;
    check(
        std::fs::read("/tmp/keep").ok() == Some(b"kept".to_vec()),
        "tmpcopyup",
    )?;
    // cgroup v1: a read-only tmpfs with the hierarchies bound.
    let cg = find(&infos, "/sys/fs/cgroup")?;
    check(
        cg.fstype == "tmpfs" && cg.has_option("ro"),
        "cgroup tmpfs ro",
    )?;
    let mem = find(&infos, "/sys/fs/cgroup/memory")?;
    check(
        mem.fstype == "cgroup" && mem.has_option("ro"),
        "memory hierarchy ro",
    )?;
    check(
        Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
        "memory files",
    )?;
    // Devices.
    let dev_of = |p: &str| std::fs::metadata(p).map_err(|e| format!("{p}: {e}"));
    let null = dev_of("/dev/null")?;
    check(
        null.file_type().is_char_device() && null.rdev() == nix::sys::stat::makedev(1, 3),
        "/dev/null 1:3",
    )?;
    check(null.mode() & 0o7777 == 0o666, "/dev/null 0666")?;
    let fuse = dev_of("/dev/fuse")?;
    check(
        fuse.rdev() == nix::sys::stat::makedev(10, 229) && fuse.mode() & 0o7777 == 0o600,
        "/dev/fuse",
    )?;
    check(fuse.uid() == 1 && fuse.gid() == 2, "/dev/fuse owner")?;
    check(
        dev_of("/dev/sub/blk")?.file_type().is_block_device(),
        "/dev/sub/blk",
    )?;
    check(
        dev_of("/dev/tty")?.rdev() == nix::sys::stat::makedev(5, 0),
        "/dev/tty",
    )?;
    let link = |p: &str| std::fs::read_link(p).map_err(|e| format!("{p}: {e}"));
    check(link("/dev/ptmx")? == Path::new("pts/ptmx"), "/dev/ptmx")?;
    check(link("/dev/fd")? == Path::new("/proc/self/fd"), "/dev/fd")?;
    check(
        link("/dev/stderr")? == Path::new("/proc/self/fd/2"),
        "/dev/stderr",
    )?;
    // Masked and read-only paths, read-only root.
    let kcore = std::fs::read("/proc/keys").map(|v| v.len());
    let kinfo = find(&infos, "/proc/keys");
    check(
        matches!(kcore, Ok(0)),
        &format!("/proc/keys masked: {kcore:?} {kinfo:?}"),
    )?;
    check(
        std::fs::read_dir("/sys/firmware").map(Iterator::count).ok() == Some(0),
        "/sys/firmware masked",
    )?;
    check(
        find(&infos, "/sys/firmware")?.has_option("ro"),
        "/sys/firmware ro",
    )?;
    let w = std::fs::write("/proc/sys/kernel/hostname", b"x");
    check(errno_of(w) == Some(libc::EROFS), "/proc/sys read-only")?;
    let w = std::fs::write("/newfile", b"x");
    check(errno_of(w) == Some(libc::EROFS), "/ read-only")?;
    check(
        std::fs::write("/dev/shm/ok", b"x").is_ok(),
        "/dev/shm writable",
    )?;
    check(
        std::env::current_dir().ok() == Some(PathBuf::from("/")),
        "cwd /",
    )?;
    Ok(())
}

#[test]
fn no_pivot_in_child() {
    let fx = Fixture::new("nopivot");
    let spec_json = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
                  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}],
        "linux":{"rootfsPropagation":"private"}}"#;
    let spec: oci_spec::runtime::Spec = serde_json::from_str(spec_json).unwrap();
    let plan = RootfsPlan::from_spec(&spec, &fx.rootfs()).unwrap();
    run_in_child(move || {
        private_ns()?;
        let opts = SetupOptions {
            no_pivot: true,
            ..SetupOptions::default()
        };
        setup(&plan, opts).map_err(|e| format!("setup: {e}"))?;
        finalize(&plan).map_err(|e| format!("finalize: {e}"))?;
        let infos = mountinfo::read_self().map_err(|e| e.to_string())?;
        check(Path::new("/bin/busybox").exists(), "busybox visible")?;
        check(Path::new("/etc/existing").exists(), "rootfs content")?;
        check(find(&infos, "/proc")?.fstype == "proc", "proc")?;
        check(find(&infos, "/dev")?.fstype == "tmpfs", "/dev")?;
        check(!find(&infos, "/")?.is_shared(), "/ private")?;
        check(Path::new("/dev/null").exists(), "/dev/null")?;
        check(std::fs::write("/newfile", b"x").is_ok(), "/ writable")
    })
    .unwrap();
}

#[test]
fn dev_null_must_be_the_device() {
    let fx = Fixture::new("devnull");
    // /dev is the rootfs's own directory and /dev/null a symlink to a file we must not bind.
    let spec_json = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "mounts":[{"destination":"/dev","source":"/dev","options":["rbind"]}],
        "linux":{"maskedPaths":["/etc/existing"]}}"#;
    let spec: oci_spec::runtime::Spec = serde_json::from_str(spec_json).unwrap();
    let plan = RootfsPlan::from_spec(&spec, &fx.rootfs()).unwrap();
    let fake = fx.rootfs().join("fakedev");
    std::fs::create_dir(&fake).unwrap();
    std::os::unix::fs::symlink("/etc/existing", fake.join("null")).unwrap();
    let fake_dev = fake.clone();
    run_in_child(move || {
        private_ns()?;
        // Bind our fake /dev over the host /dev in this namespace only, so the rbind of
        // /dev brings the planted symlink.
        crate::sys::fs::mount(
            Some(&fake_dev),
            Path::new("/dev"),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(|e| format!("fake /dev: {e}"))?;
        setup(&plan, SetupOptions::default()).map_err(|e| format!("setup: {e}"))?;
        match finalize(&plan) {
            Err(RootfsError::Unsafe { .. }) => Ok(()),
            other => Err(format!("finalize: {other:?}")),
        }
    })
    .unwrap();
}

/// Makes the calling process root of a new user namespace mapped to its own (root) ids, with
/// new mount, pid and ipc namespaces; the caller must fork for the pid namespace to apply.
fn user_ns() -> Result<(), String> {
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC;
    unshare(flags).map_err(|e| format!("unshare: {e}"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    std::fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| format!("gid_map: {e}"))
}

#[test]
fn user_ns_in_child() {
    let fx = Fixture::new("userns");
    let spec_json = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs","readonly":true}},
        "mounts":[
          {{"destination":"/proc","type":"proc","source":"proc"}},
          {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}},
          {{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]}},
          {{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}},
          {{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}},
          {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}},
          {{"destination":"/data","source":"{vol}","options":["rbind","ro","rw","ro"]}}
        ],
        "linux":{{"maskedPaths":["/proc/keys","/sys/firmware"],"readonlyPaths":["/proc/sys"]}}}}"#,
        vol = fx.path("vol"),
    );
    let spec: oci_spec::runtime::Spec = serde_json::from_str(&spec_json).unwrap();
    let plan = RootfsPlan::from_spec(&spec, &fx.rootfs()).unwrap();
    run_in_child(move || {
        user_ns()?;
        run_in_child(move || {
            let opts = SetupOptions {
                in_user_ns: true,
                ..SetupOptions::default()
            };
            setup(&plan, opts).map_err(|e| format!("setup: {e}"))?;
            finalize(&plan).map_err(|e| format!("finalize: {e}"))?;
            let infos = mountinfo::read_self().map_err(|e| e.to_string())?;
            let sys = find(&infos, "/sys")?;
            check(
                sys.fstype == "sysfs" && sys.has_option("ro"),
                "/sys bound, ro",
            )?;
            check(
                sys.has_option("nosuid") && sys.has_option("noexec"),
                "/sys keeps locked flags",
            )?;
            check(
                find(&infos, "/sys/fs/cgroup/memory")?.has_option("ro"),
                "cgroup ro",
            )?;
            check(find(&infos, "/data")?.has_option("ro"), "/data ro")?;
            let null = std::fs::metadata("/dev/null").map_err(|e| e.to_string())?;
            check(
                null.rdev() == nix::sys::stat::makedev(1, 3),
                "/dev/null bound",
            )?;
            check(
                find(&infos, "/dev/null").is_ok(),
                "/dev/null is a bind mount",
            )?;
            check(
                std::fs::write("/dev/null", b"x").is_ok(),
                "/dev/null writable",
            )?;
            check(
                std::fs::read("/proc/keys").map(|v| v.len()).ok() == Some(0),
                "/proc/keys masked",
            )?;
            let w = std::fs::write("/proc/sys/kernel/hostname", b"x");
            check(errno_of(w).is_some(), "/proc/sys not writable")?;
            check(
                errno_of(std::fs::write("/newfile", b"x")) == Some(libc::EROFS),
                "/ read-only",
            )
        })
    })
    .unwrap();
}

#[test]
fn rshared_root_propagation() {
    let fx = Fixture::new("rshared");
    let spec_json = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
        "linux":{"rootfsPropagation":"rshared"}}"#;
    let spec: oci_spec::runtime::Spec = serde_json::from_str(spec_json).unwrap();
    let plan = RootfsPlan::from_spec(&spec, &fx.rootfs()).unwrap();
    let rootfs = fx.rootfs();
    run_in_child(move || {
        private_ns()?;
        // The rootfs is a mount point of its own (an overlay from containerd, say).
        let flags = libc::MS_BIND;
        crate::sys::fs::mount(Some(&rootfs), &rootfs, None, flags, None)
            .map_err(|e| format!("bind rootfs: {e}"))?;
        setup(&plan, SetupOptions::default()).map_err(|e| format!("setup: {e}"))?;
        let infos = mountinfo::read_self().map_err(|e| e.to_string())?;
        check(find(&infos, "/")?.is_shared(), "/ shared after pivot")?;
        check(find(&infos, "/proc")?.is_shared(), "/proc shared")
    })
    .unwrap();
}

#[test]
fn bind_onto_and_open_on_fs() {
    let fx = Fixture::new("console");
    let spec_json = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
                  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}]}"#;
    let spec: oci_spec::runtime::Spec = serde_json::from_str(spec_json).unwrap();
    let plan = RootfsPlan::from_spec(&spec, &fx.rootfs()).unwrap();
    run_in_child(move || {
        private_ns()?;
        setup(&plan, SetupOptions::default()).map_err(|e| format!("setup: {e}"))?;
        let root = RootHandle::open(Path::new("/")).map_err(|e| e.to_string())?;
        let null = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDWR,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| e.to_string())?;
        // A planted symlink to a proc file is refused.
        std::os::unix::fs::symlink("/proc/sys/kernel/hostname", "/dev/console")
            .map_err(|e| e.to_string())?;
        let r = bind_onto(&root, null.as_fd(), Path::new("/dev/console"));
        check(
            matches!(r, Err(RootfsError::Unsafe { .. })),
            &format!("symlink refused: {r:?}"),
        )?;
        std::fs::remove_file("/dev/console").map_err(|e| e.to_string())?;
        bind_onto(&root, null.as_fd(), Path::new("/dev/console"))
            .map_err(|e| format!("bind: {e}"))?;
        let st = std::fs::metadata("/dev/console").map_err(|e| e.to_string())?;
        check(
            st.rdev() == nix::sys::stat::makedev(1, 3),
            "bound onto /dev/console",
        )?;
        let proc = nix::sys::statfs::PROC_SUPER_MAGIC;
        let flags = nix::fcntl::OFlag::O_RDONLY;
        check(
            root.open_on_fs(Path::new("/proc/sys/kernel/hostname"), flags, proc)
                .is_ok(),
            "proc file",
        )?;
        let r = root.open_on_fs(Path::new("/etc/existing"), flags, proc);
        check(
            r.err().and_then(|e| e.raw_os_error()) == Some(libc::EXDEV),
            "not on proc",
        )
    })
    .unwrap();
}
