//! Device nodes and the /dev symlinks.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::mounts::bind_fd;
use super::plan::{DeviceKind, DeviceNode};
use super::resolve::{Create, RootHandle};
use super::{io_err, RootfsError};

/// Creates every device node: mknod with the node's mode and owner, or, in a user namespace
/// (or where mknod is refused), a bind mount of the host's node of the same path.
pub(super) fn create_devices(
    root: &RootHandle,
    devices: &[DeviceNode],
    in_user_ns: bool,
) -> Result<(), RootfsError> {
    let old = umask(Mode::empty());
    let result = devices
        .iter()
        .try_for_each(|d| create_device(root, d, in_user_ns));
    umask(old);
    result
}

fn sflag(kind: DeviceKind) -> SFlag {
    match kind {
        DeviceKind::Char => SFlag::S_IFCHR,
        DeviceKind::Block => SFlag::S_IFBLK,
        DeviceKind::Fifo => SFlag::S_IFIFO,
    }
}

fn create_device(root: &RootHandle, d: &DeviceNode, bind: bool) -> Result<(), RootfsError> {
    let shown = root.display_path(&d.path);
    if bind {
        return bind_device(root, d);
    }
    let (dir, name) = root
        .open_parent(&d.path, true)
        .map_err(io_err("create the directory of", &shown))?;
    let kind = sflag(d.kind);
    let dev = if d.kind == DeviceKind::Fifo {
        0
    } else {
        makedev(u64::from(d.major), u64::from(d.minor))
    };
    let mode = Mode::from_bits_truncate(d.mode);
    let mut made = mknodat(&dir, name.as_path(), kind, mode, dev);
    if made == Err(Errno::EEXIST) {
        // Keep a node that already is the right device; replace anything else.
        let st = fstatat(&dir, name.as_path(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("stat", &shown)(e.into()))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind && st.st_rdev == dev {
            made = Ok(());
        } else {
            unlinkat(&dir, name.as_path(), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| io_err("remove", &shown)(e.into()))?;
            made = mknodat(&dir, name.as_path(), kind, mode, dev);
        }
    }
    match made {
        Ok(()) => {}
        Err(Errno::EPERM) => return bind_device(root, d),
        Err(e) => return Err(io_err("mknod", &shown)(e.into())),
    }
    fchownat(
        &dir,
        name.as_path(),
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("chown", &shown)(e.into()))
}

/// Binds the host's node at `d.path` onto an empty file at the same path in the root.
fn bind_device(root: &RootHandle, d: &DeviceNode) -> Result<(), RootfsError> {
    let shown = root.display_path(&d.path);
    let src = nix::fcntl::open(&d.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| io_err("open host device", &d.path)(e.into()))?;
    let target = root
        .open_or_create(&d.path, Create::File)
        .map_err(io_err("create mount point", &shown))?;
    bind_fd(src.as_fd(), target.as_fd(), false, &d.path, &shown).map(drop)
}

/// The /dev symlinks: fd, stdin, stdout, stderr, core (when /proc/kcore exists) and, with a
/// devpts at /dev/pts, ptmx -> pts/ptmx.
pub(super) fn create_symlinks(root: &RootHandle, ptmx: bool) -> Result<(), RootfsError> {
    let dev_path = Path::new("/dev");
    let dev = root
        .mkdir_all(dev_path)
        .map_err(io_err("create", &root.display_path(dev_path)))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if ptmx {
        match unlinkat(&dev, "ptmx", UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(io_err("remove", &root.display_path(Path::new("/dev/ptmx")))(e.into()))
            }
        }
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                let shown = root.display_path(&dev_path.join(name));
                return Err(io_err("symlink", &shown)(e.into()));
            }
        }
    }
    Ok(())
}
