//! The child side of the mounts: each entry of the plan onto an fd inside the rootfs, the
//! switch of root, and the read-only and masked paths.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, Mode, SFlag};

use super::plan::{MountEntry, MountKind, RootfsPlan};
use super::resolve::{Create, RootHandle};
use super::{io_err, mount_path, mountinfo, setattr, RootfsError, SetupOptions};
use crate::sys::fs::{self as sysfs, fd_path, MountAttr, AT_RECURSIVE, OPEN_TREE_CLONE};

/// runc's checkProcMount on the resolved destination: a mount point that lies on procfs (the
/// destination went through a symlink into /proc, or /proc is already mounted there) must be
/// /proc itself or an entry lxcfs emulates; the plan checked the destination as written.
pub(super) fn check_proc_target(
    target: BorrowedFd<'_>,
    m: &MountEntry,
    shown: &Path,
) -> Result<(), RootfsError> {
    let fs = nix::sys::statfs::fstatfs(target).map_err(|e| io_err("statfs", shown)(e.into()))?;
    if fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC
        && m.destination != Path::new("/proc")
        && !super::plan::proc_mount_allowed(&m.destination)
    {
        return Err(RootfsError::InvalidMount {
            index: m.index,
            destination: m.destination.display().to_string(),
            reason: format!(
                "cannot be mounted because it resolves to {} inside /proc",
                shown.display()
            ),
        });
    }
    Ok(())
}

/// Performs one mount of the plan, then its propagation and recursive attributes.
pub(super) fn mount_entry(
    root: &RootHandle,
    plan: &RootfsPlan,
    m: &MountEntry,
    opts: SetupOptions,
) -> Result<(), RootfsError> {
    let top = match m.kind {
        MountKind::Bind { recursive } => bind_entry(root, &m.source, &m.destination, recursive, m)?,
        MountKind::Sysfs => match fs_entry(root, plan, m) {
            // Without its own network namespace a user namespace may not mount sysfs:
            // the host's /sys, recursively bound, is what runc gives then.
            Err(RootfsError::Mount { source, .. })
                if source.raw_os_error() == Some(libc::EPERM) =>
            {
                bind_entry(root, Path::new("/sys"), &m.destination, true, m)?
            }
            other => other?,
        },
        MountKind::Cgroup | MountKind::Cgroup2 => super::cgroup::mount_cgroup(root, m, opts)?,
        MountKind::Proc | MountKind::Filesystem => fs_entry(root, plan, m)?,
    };
    apply_propagation(&top, root, m)
}

/// The propagation words and recursive attributes of `m`, on its new mount `top`.
pub(super) fn apply_propagation(
    top: &OwnedFd,
    root: &RootHandle,
    m: &MountEntry,
) -> Result<(), RootfsError> {
    let shown = root.display_path(&m.destination);
    for &p in &m.options.propagation {
        let attr = MountAttr {
            propagation: p & !libc::MS_REC,
            ..MountAttr::default()
        };
        setattr(top, &shown, p & libc::MS_REC != 0, &attr)?;
    }
    if let Some(attr) = &m.options.rec_attr {
        setattr(top, &shown, true, attr)?;
    }
    Ok(())
}

/// A bind (recursive with `recursive`) of the host path `source` onto `dest` in the root,
/// then the options' flags on the new mount. Returns an fd on the new mount.
pub(super) fn bind_entry(
    root: &RootHandle,
    source: &Path,
    dest: &Path,
    recursive: bool,
    m: &MountEntry,
) -> Result<OwnedFd, RootfsError> {
    // An id-mapped mount was made by the parent: attach that detached mount.
    let prepared = match &m.idmap {
        Some(idmap) => Some(idmap.tree().ok_or_else(|| RootfsError::InvalidMount {
            index: m.index,
            destination: m.destination.display().to_string(),
            reason: "the id-mapped mount was not prepared".into(),
        })?),
        None => None,
    };
    let opened;
    let src = match prepared {
        Some(tree) => tree,
        None => {
            opened = nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(|e| io_err("open bind source", source)(e.into()))?;
            opened.as_fd()
        }
    };
    if m.destination == Path::new("/proc") {
        // Only a procfs may be bound over /proc.
        let fs = nix::sys::statfs::fstatfs(src).map_err(|e| io_err("statfs", source)(e.into()))?;
        if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
            return Err(RootfsError::Unsafe {
                path: source.to_path_buf(),
                reason: "only a procfs may be bind mounted on /proc",
            });
        }
    }
    let create = if is_dir(src, source)? {
        Create::Dir
    } else {
        Create::File
    };
    let shown = root.display_path(dest);
    let target = root
        .open_or_create(dest, create)
        .map_err(io_err("create mount point", &shown))?;
    check_proc_target(target.as_fd(), m, &shown)?;
    let tree = match prepared {
        Some(tree) => super::idmap::attach(m, tree, target.as_fd(), &shown)?,
        None => bind_fd(src, target.as_fd(), recursive, source, &shown)?,
    };
    if let Some(attr) = m.options.bind_attr() {
        setattr(&tree, &shown, false, &attr)?;
    }
    Ok(tree)
}

/// Clones the mount at `src` (its subtree when `recursive`) onto `target`; returns the new
/// (now attached) mount.
pub(super) fn bind_fd(
    src: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    source: &Path,
    shown: &Path,
) -> Result<OwnedFd, RootfsError> {
    let flags = OPEN_TREE_CLONE | if recursive { AT_RECURSIVE } else { 0 };
    let err = |source_err| RootfsError::Mount {
        src: source.display().to_string(),
        target: shown.to_path_buf(),
        fstype: if recursive { "rbind" } else { "bind" }.into(),
        flags: 0,
        data: String::new(),
        source: source_err,
    };
    let tree = sysfs::open_tree(src, flags).map_err(err)?;
    sysfs::move_mount(tree.as_fd(), target).map_err(err)?;
    Ok(tree)
}

fn is_dir(fd: BorrowedFd<'_>, path: &Path) -> Result<bool, RootfsError> {
    let st = fstat(fd).map_err(|e| io_err("stat", path)(e.into()))?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// A filesystem mount (proc, sysfs, tmpfs, devpts, mqueue, overlay...) onto the directory
/// `m.destination`, by fd. Returns an fd on the new mount.
fn fs_entry(root: &RootHandle, plan: &RootfsPlan, m: &MountEntry) -> Result<OwnedFd, RootfsError> {
    let shown = root.display_path(&m.destination);
    if matches!(m.kind, MountKind::Proc | MountKind::Sysfs) {
        // The target of proc and sysfs must be a real directory, not a symlink elsewhere.
        match root.open_in(&m.destination, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
            Ok(fd) => {
                let st = fstat(&fd).map_err(|e| io_err("stat", &shown)(e.into()))?;
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                    return Err(RootfsError::Unsafe {
                        path: shown,
                        reason: "the mount point of proc or sysfs must be a directory",
                    });
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(io_err("open", &shown)(e)),
        }
    }
    let target = root
        .open_or_create(&m.destination, Create::Dir)
        .map_err(io_err("create mount point", &shown))?;
    check_proc_target(target.as_fd(), m, &shown)?;
    let mut flags = m.options.flags;
    if plan.dev_readonly && m.destination == Path::new("/dev") {
        // /dev stays writable until the devices are made; finalize makes it read-only.
        flags &= !libc::MS_RDONLY;
    }
    // tmpcopyup writes into the new tmpfs: a read-only one becomes so after the copy.
    let ro_after_copy = m.options.tmpcopyup && flags & libc::MS_RDONLY != 0;
    if ro_after_copy {
        flags &= !libc::MS_RDONLY;
    }
    let old_dir = if m.options.tmpcopyup {
        Some(
            root.open_in(&m.destination, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(io_err("open", &shown))?,
        )
    } else {
        None
    };
    mount_fd(
        &m.source,
        target.as_fd(),
        &m.fstype,
        flags,
        &m.options.data,
        &shown,
    )?;
    let top = root
        .open_in(&m.destination, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(io_err("open new mount", &shown))?;
    if let Some(old) = old_dir {
        super::copyup::copy_dir(&old, &top, &shown)?;
    }
    if ro_after_copy {
        let attr = MountAttr {
            attr_set: crate::sys::fs::MOUNT_ATTR_RDONLY,
            ..MountAttr::default()
        };
        setattr(&top, &shown, false, &attr)?;
    }
    Ok(top)
}

/// mount(2) of a filesystem onto the object `target` refers to (via its /proc/self/fd path).
pub(super) fn mount_fd(
    source: &Path,
    target: BorrowedFd<'_>,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
    shown: &Path,
) -> Result<(), RootfsError> {
    let data_opt = (!data.is_empty()).then_some(data);
    sysfs::mount(
        Some(source),
        &fd_path(target),
        Some(fstype),
        flags,
        data_opt,
    )
    .map_err(|e| RootfsError::Mount {
        src: source.display().to_string(),
        target: shown.to_path_buf(),
        fstype: fstype.to_string(),
        flags,
        data: data.to_string(),
        source: e,
    })
}

/// pivot_root refuses a shared parent mount of the new root: makes the mount holding the
/// rootfs (the rootfs itself when it is a mount point, as with an overlay) private, trying
/// each directory upwards until one is a mount point (EINVAL means it is none), as runc does.
pub(super) fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let mut path = rootfs;
    loop {
        match sysfs::mount(None, path, None, libc::MS_PRIVATE, None) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => match path.parent() {
                Some(parent) => path = parent,
                None => return Err(io_err("make private", path)(e)),
            },
            Err(e) => return Err(io_err("make private", path)(e)),
        }
    }
}

/// pivot_root(".", ".") in the rootfs, then the old root (stacked under the new one) made
/// rslave and lazily unmounted, as runc and crun do.
pub(super) fn pivot_root(root: &RootHandle) -> Result<(), RootfsError> {
    let slash = Path::new("/");
    let old = nix::fcntl::open(
        slash,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", slash)(e.into()))?;
    nix::unistd::fchdir(root.fd()).map_err(|e| io_err("chdir", root.path())(e.into()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| io_err("pivot_root", root.path())(e.into()))?;
    nix::unistd::fchdir(&old).map_err(|e| io_err("chdir to the old root", slash)(e.into()))?;
    // The old root must not propagate our unmount to the host.
    mount_path(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        "propagation",
    )?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| io_err("unmount the old root", slash)(e.into()))?;
    nix::unistd::chdir(slash).map_err(|e| io_err("chdir", slash)(e.into()))?;
    Ok(())
}

/// `--no-pivot`: hides the host's full procfs and sysfs mounts (they stay in the mount
/// namespace under a chroot: runc unmounts them, or covers them with a tmpfs where it may
/// not), then moves the rootfs mount onto / and chroots into it.
pub(super) fn move_root(root: &RootHandle) -> Result<(), RootfsError> {
    let slash = Path::new("/");
    let infos =
        mountinfo::read_self().map_err(io_err("read", Path::new("/proc/self/mountinfo")))?;
    let host_fs = infos.iter().filter(|m| {
        m.root == slash
            && matches!(m.fstype.as_str(), "proc" | "sysfs")
            && !m.mount_point.starts_with(root.path())
    });
    // Deepest first, so that /sys goes after what is mounted under it.
    let mut host_fs: Vec<_> = host_fs.map(|m| m.mount_point.clone()).collect();
    host_fs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in host_fs {
        match sysfs::mount(None, &p, None, libc::MS_SLAVE | libc::MS_REC, None) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            other => other.map_err(io_err("make rslave", &p))?,
        }
        match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EPERM) => {
                sysfs::mount(Some(Path::new("tmpfs")), &p, Some("tmpfs"), 0, None)
                    .map_err(io_err("cover with a tmpfs", &p))?;
            }
            Err(e) => return Err(io_err("unmount", &p)(e.into())),
        }
    }
    nix::unistd::fchdir(root.fd()).map_err(|e| io_err("chdir", root.path())(e.into()))?;
    mount_path(Some(Path::new(".")), slash, None, libc::MS_MOVE, "move")?;
    nix::unistd::chroot(".").map_err(|e| io_err("chroot", root.path())(e.into()))?;
    nix::unistd::chdir(slash).map_err(|e| io_err("chdir", slash)(e.into()))?;
    Ok(())
}

/// Makes `path` (inside the root) read-only: a recursive bind onto itself, then read-only on
/// the whole subtree with mount_setattr (which keeps the locked nosuid/nodev/noexec flags).
/// A missing path is skipped.
pub(super) fn readonly_path(root: &RootHandle, path: &Path) -> Result<(), RootfsError> {
    let fd = match root.open_in(path, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let tree = bind_fd(fd.as_fd(), fd.as_fd(), true, path, path)?;
    let attr = MountAttr {
        attr_set: crate::sys::fs::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    setattr(&tree, path, true, &attr)
}

/// Masks `path`: a directory gets a read-only tmpfs on it, anything else a bind of /dev/null
/// (checked to be the 1:3 character device, opened once into `dev_null`). A missing path is
/// skipped.
pub(super) fn mask_path(
    root: &RootHandle,
    path: &Path,
    dev_null: &mut Option<OwnedFd>,
) -> Result<(), RootfsError> {
    let fd = match root.open_in(path, OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    if is_dir(fd.as_fd(), path)? {
        let err = |source| RootfsError::Mount {
            src: "tmpfs".into(),
            target: path.to_path_buf(),
            fstype: "tmpfs".into(),
            flags: crate::sys::fs::MOUNT_ATTR_RDONLY,
            data: String::new(),
            source,
        };
        let tmpfs = sysfs::fs_mount(
            "tmpfs",
            &[("source", "tmpfs")],
            crate::sys::fs::MOUNT_ATTR_RDONLY,
        )
        .map_err(err)?;
        sysfs::move_mount(tmpfs.as_fd(), fd.as_fd()).map_err(err)?;
        return Ok(());
    }
    let null = match dev_null {
        Some(fd) => fd,
        None => dev_null.insert(open_dev_null(root)?),
    };
    bind_fd(
        null.as_fd(),
        fd.as_fd(),
        false,
        Path::new("/dev/null"),
        path,
    )
    .map(drop)
}

/// Opens the container's /dev/null and checks that it is the 1:3 character device (a symlink
/// or file planted there must not be bound over masked paths).
fn open_dev_null(root: &RootHandle) -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = root
        .open_in(path, OFlag::O_PATH | OFlag::O_NOFOLLOW)
        .map_err(io_err("open", path))?;
    let st = fstat(&fd).map_err(|e| io_err("stat", path)(e.into()))?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(RootfsError::Unsafe {
            path: path.to_path_buf(),
            reason: "is not the 1:3 character device",
        });
    }
    Ok(fd)
}
