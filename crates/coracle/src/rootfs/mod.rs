//! The container's filesystem: mounts, propagation, devices, /dev symlinks, pivot_root,
//! masked and read-only paths.
//!
//! The parent checks config.json into a [`RootfsPlan`] ([`RootfsPlan::from_spec`]); the child,
//! in its new mount namespace, runs [`setup`] (everything up to and including pivot_root) and,
//! after the createContainer hooks, [`finalize`]. Every path inside the rootfs is resolved with
//! openat2(RESOLVE_IN_ROOT) through a [`RootHandle`] and every mount lands on an fd, so a
//! symlink planted in the image never redirects a mount to the host. Id-mapped bind mounts
//! are the exception to "the child mounts": the parent makes them in `from_spec` (they need
//! the runtime's user namespace, see the `idmap` module) and the child attaches them.

mod cgroup;
mod copyup;
mod dev;
mod idmap;
pub mod mountinfo;
mod mounts;
pub mod options;
mod plan;
pub mod procfs;
pub mod resolve;

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

pub use idmap::{IdmapPlan, IdmapUserns};
pub use plan::{DeviceKind, DeviceNode, MountEntry, MountKind, RootfsPlan};
pub use procfs::{Procfs, ProcfsKind};
pub use resolve::{Create, RootHandle};

use crate::sys::fs::{self as sysfs, MountAttr, MOUNT_ATTR_RDONLY};

/// Errors of the rootfs module.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A mount in config.json is invalid.
    #[error("mounts[{index}] ({destination}): {reason}")]
    InvalidMount {
        /// Index in `mounts`.
        index: usize,
        /// Its destination.
        destination: String,
        /// What is wrong.
        reason: String,
    },
    /// A device in `linux.devices` is invalid.
    #[error("linux.devices[{index}] ({path}): {reason}")]
    InvalidDevice {
        /// Index in `linux.devices`.
        index: usize,
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Another field (`linux.rootfsPropagation`, `linux.maskedPaths[i]`...) is invalid.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field, e.g. `linux.maskedPaths[2]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A mount operation failed.
    #[error("mount {src} on {target} (type {fstype}, flags {flags:#x}, data {data:?}): {source}")]
    Mount {
        /// The mount source.
        src: String,
        /// The target (its path on the host before pivot_root, in the container after).
        target: PathBuf,
        /// Filesystem type or the operation (`bind`, `setattr`, `propagation`...).
        fstype: String,
        /// `MS_*` or `MOUNT_ATTR_*` flags.
        flags: u64,
        /// Data string.
        data: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Making an id-mapped mount failed (in the parent).
    #[error("mounts[{index}] ({destination}): {op} of {src}{hint}: {source}", destination = .destination.display(), src = .src.display())]
    Idmap {
        /// Index in `mounts`.
        index: usize,
        /// Its destination.
        destination: PathBuf,
        /// Its source.
        src: PathBuf,
        /// The step that failed.
        op: &'static str,
        /// What the error likely means (may be empty).
        hint: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Another filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done (`open`, `mkdir`, `mknod`...).
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Something in the rootfs is not what it must be (a symlink as /proc, a /dev/null that
    /// is no 1:3 character device...).
    #[error("{path}: {reason}")]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Builds the [`RootfsError::Io`] of a failed `op` on `path`.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RootfsError {
    let path = path.to_path_buf();
    move |source| RootfsError::Io { op, path, source }
}

/// Options of [`setup`] that come from the command line or the namespaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetupOptions {
    /// `--no-pivot`: move the root with MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own user namespace (devices are bind mounted, not mknod'ed).
    pub in_user_ns: bool,
    /// The container has its own cgroup namespace.
    pub cgroup_ns: bool,
}

/// Runs in the container process, in its new mount namespace: propagation, the mounts, the
/// devices, /dev symlinks and /dev/pts, then pivot_root (or chroot with `no_pivot`). On return
/// the process's root and cwd are the container's root.
pub fn setup(plan: &RootfsPlan, opts: SetupOptions) -> Result<(), RootfsError> {
    setup_with(plan, opts, || Ok::<(), RootfsError>(()))
}

/// [`setup`], calling `before_cgroup` before each `cgroup`/`cgroup2` mount: the caller may do
/// there, once, what those mounts need first (join the cgroup, unshare the cgroup namespace).
pub fn setup_with<E: From<RootfsError>>(
    plan: &RootfsPlan,
    opts: SetupOptions,
    mut before_cgroup: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    let rootfs = plan.rootfs.as_path();
    // 1. Stop mount events from reaching the host: / becomes rslave (or what the config says).
    let flag = plan
        .root_propagation
        .unwrap_or(libc::MS_SLAVE | libc::MS_REC);
    mount_path(None, Path::new("/"), None, flag, "propagation")?;
    // 2. pivot_root refuses a shared parent mount.
    mounts::make_parent_private(rootfs)?;
    // 3. The rootfs becomes a mount point of its own.
    mount_path(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        "bind",
    )?;
    let root = RootHandle::open(rootfs).map_err(io_err("open", rootfs))?;
    // 4. The mounts, in order.
    for m in &plan.mounts {
        if matches!(m.kind, MountKind::Cgroup | MountKind::Cgroup2) {
            before_cgroup()?;
        }
        mounts::mount_entry(&root, plan, m, opts)?;
    }
    // 5. Devices and /dev symlinks, unless /dev is the host's.
    if plan.setup_dev {
        dev::create_devices(&root, &plan.devices, opts.in_user_ns)?;
        dev::create_symlinks(&root, plan.ptmx_symlink)?;
    }
    // 6. Switch root.
    if opts.no_pivot {
        mounts::move_root(&root)?;
    } else {
        mounts::pivot_root(&root)?;
    }
    // 7. The root's own propagation, when the config sets it.
    if let Some(flag) = plan.root_propagation {
        mount_path(None, Path::new("/"), None, flag, "propagation")?;
    }
    Ok(())
}

/// Runs after [`setup`] (and after the createContainer hooks), in the container's root:
/// readonly paths, masked paths, a read-only /dev when asked, and a read-only root when
/// `root.readonly`.
pub fn finalize(plan: &RootfsPlan) -> Result<(), RootfsError> {
    let root = RootHandle::open(Path::new("/")).map_err(io_err("open", Path::new("/")))?;
    for path in &plan.readonly_paths {
        mounts::readonly_path(&root, path)?;
    }
    let mut dev_null = None;
    for path in &plan.masked_paths {
        mounts::mask_path(&root, path, &mut dev_null)?;
    }
    if plan.dev_readonly {
        let dev = root
            .open_in(Path::new("/dev"), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(io_err("open", Path::new("/dev")))?;
        setattr(&dev, Path::new("/dev"), false, &ro_attr())?;
    }
    if plan.readonly_root {
        setattr(root.fd(), Path::new("/"), false, &ro_attr())?;
    }
    Ok(())
}

/// Binds the object `source` refers to (a pty, a host file) onto `dest` inside `root`,
/// creating an empty file or directory there when missing (e.g. /dev/console). The last
/// component must not be a symlink, and the target must not lie on procfs or sysfs, so a
/// planted `/dev/console -> /proc/sys/...` cannot redirect the mount. Returns the new mount.
pub fn bind_onto(
    root: &RootHandle,
    source: std::os::fd::BorrowedFd<'_>,
    dest: &Path,
) -> Result<std::os::fd::OwnedFd, RootfsError> {
    use nix::sys::stat::{fstat, SFlag};
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let shown = root.display_path(dest);
    let st = fstat(source).map_err(|e| io_err("stat the source for", &shown)(e.into()))?;
    let create = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        Create::Dir
    } else {
        Create::File
    };
    let target = match root.open_in(dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => root
            .open_or_create(dest, create)
            .map_err(io_err("create mount point", &shown))?,
        Err(e) => return Err(io_err("open", &shown)(e)),
    };
    let tst = fstat(&target).map_err(|e| io_err("stat", &shown)(e.into()))?;
    if SFlag::from_bits_truncate(tst.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
        return Err(RootfsError::Unsafe {
            path: shown,
            reason: "is a symlink",
        });
    }
    let fs = fstatfs(&target).map_err(|e| io_err("statfs", &shown)(e.into()))?;
    if fs.filesystem_type() == PROC_SUPER_MAGIC || fs.filesystem_type() == SYSFS_MAGIC {
        return Err(RootfsError::Unsafe {
            path: shown,
            reason: "lies on procfs or sysfs",
        });
    }
    mounts::bind_fd(source, target.as_fd(), false, Path::new("fd"), &shown)
}

fn ro_attr() -> MountAttr {
    MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    }
}

/// mount(2) on a trusted host path (the rootfs, `/`), with the error carrying everything.
fn mount_path(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    what: &str,
) -> Result<(), RootfsError> {
    sysfs::mount(source, target, fstype, flags, None).map_err(|source_err| RootfsError::Mount {
        src: source.map_or_else(|| "none".into(), |s| s.display().to_string()),
        target: target.to_path_buf(),
        fstype: fstype.unwrap_or(what).to_string(),
        flags,
        data: String::new(),
        source: source_err,
    })
}

/// mount_setattr on the mount `fd` refers to.
fn setattr(
    fd: impl AsFd,
    path: &Path,
    recursive: bool,
    attr: &MountAttr,
) -> Result<(), RootfsError> {
    sysfs::mount_setattr(fd.as_fd(), recursive, attr).map_err(|source| RootfsError::Mount {
        src: "none".into(),
        target: path.to_path_buf(),
        fstype: if recursive {
            "setattr (recursive)"
        } else {
            "setattr"
        }
        .into(),
        flags: attr.propagation,
        data: format!("set {:#x} clear {:#x}", attr.attr_set, attr.attr_clr),
        source,
    })
}

#[cfg(test)]
mod tests;
