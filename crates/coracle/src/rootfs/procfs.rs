//! A procfs handle no mount can redirect (CVE-2025-52881): writes to /proc (sysctls,
//! oom_score_adj) go through it instead of through the path `/proc/...`, which a mount made
//! after /proc was mounted (by the config, or propagated in from a shared mount while the
//! container is created) could cover with another file, procfs or not.
//!
//! The handle is the root of a procfs nobody else can mount on: a new, detached instance
//! (fsopen/fsmount, in the caller's pid namespace), else a detached, non-recursive clone of the
//! mount at `/proc` (open_tree, so none of the mounts on top of it come along), else `/proc`
//! itself; in each case checked to be the root of a procfs. Files are opened beneath it with
//! openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), so
//! crossing any mount, symlink or magic link on the way is EXDEV/ELOOP, and each opened file is
//! checked to be on procfs.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::sys::fs::{
    fs_mount, open_tree, openat2, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID,
    OPEN_TREE_CLONE, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV,
};

/// The inode number of a procfs root (`PROC_ROOT_INO`); no other procfs inode has it.
const PROC_ROOT_INO: u64 = 1;

/// How a [`Procfs`] handle was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcfsKind {
    /// A new, private procfs instance (fsopen + fsmount, never attached).
    Private,
    /// A detached clone of the procfs mount at the given path (open_tree, no submounts).
    Clone,
    /// The procfs mount at the given path itself (no mount API): lookups still refuse to
    /// cross any mount on it.
    Mounted,
}

/// The root of a procfs that writes to /proc go through.
#[derive(Debug)]
pub struct Procfs {
    root: OwnedFd,
    kind: ProcfsKind,
}

/// EXDEV with a message, for what is not the procfs it should be.
fn not_procfs(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::CrossesDevices,
        format!("{what} is not on procfs (a mount covers it?)"),
    )
}

/// Checks that `fd` is the root directory of a procfs.
fn check_root(fd: BorrowedFd<'_>, what: &Path) -> io::Result<()> {
    if fstatfs(fd)?.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(not_procfs(&what.display().to_string()));
    }
    if nix::sys::stat::fstat(fd)?.st_ino != PROC_ROOT_INO {
        return Err(io::Error::new(
            io::ErrorKind::CrossesDevices,
            format!("{} is not the root of a procfs", what.display()),
        ));
    }
    Ok(())
}

impl Procfs {
    /// A handle on a procfs for the calling process: a private instance when the mount API
    /// allows one, else a detached clone of `/proc`, else `/proc` (each checked).
    pub fn open() -> io::Result<Self> {
        Self::open_with(Path::new("/proc"), true)
    }

    /// Like [`Procfs::open`], falling back to the procfs mounted at `mounted`; with
    /// `private == false` no new instance is tried (tests of the fallbacks).
    pub fn open_with(mounted: &Path, private: bool) -> io::Result<Self> {
        if private {
            let attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
            if let Ok(root) = fs_mount("proc", &[], attr) {
                if check_root(root.as_fd(), Path::new("a new procfs")).is_ok() {
                    return Ok(Self {
                        root,
                        kind: ProcfsKind::Private,
                    });
                }
            }
        }
        let dir = nix::fcntl::open(
            mounted,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        check_root(dir.as_fd(), mounted)?;
        match open_tree(dir.as_fd(), OPEN_TREE_CLONE) {
            Ok(root) => {
                check_root(root.as_fd(), mounted)?;
                Ok(Self {
                    root,
                    kind: ProcfsKind::Clone,
                })
            }
            Err(_) => Ok(Self {
                root: dir,
                kind: ProcfsKind::Mounted,
            }),
        }
    }

    /// How this handle was obtained.
    pub fn kind(&self) -> ProcfsKind {
        self.kind
    }

    /// Opens `rel` (relative to the procfs root, e.g. `sys/kernel/domainname`) with `flags`
    /// (O_CLOEXEC is added): no `..` above the root, no mount crossed, no symlink followed;
    /// the file must be on procfs.
    pub fn open_file(&self, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
        let fd = openat2(
            self.root.as_fd(),
            rel,
            flags.bits(),
            0,
            RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        )?;
        if fstatfs(&fd)?.filesystem_type() != PROC_SUPER_MAGIC {
            return Err(not_procfs(&rel.display().to_string()));
        }
        Ok(fd)
    }

    /// The path of the calling process's own directory (what `self` names: its pid in this
    /// procfs's pid namespace), joined with `rel`.
    pub fn self_path(&self, rel: &Path) -> io::Result<PathBuf> {
        let target = nix::fcntl::readlinkat(&self.root, "self")?;
        let pid = target.as_bytes();
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/self points to {target:?}"),
            ));
        }
        Ok(Path::new(&target).join(rel))
    }

    /// Writes `data` to `rel` in one write(2), through [`Procfs::open_file`].
    pub fn write(&self, rel: &Path, data: &[u8]) -> io::Result<()> {
        let fd = self.open_file(rel, OFlag::O_WRONLY)?;
        std::fs::File::from(fd).write_all(data)
    }

    /// Writes `data` to the calling process's `/proc/self/<rel>` ([`Procfs::self_path`]).
    pub fn write_self(&self, rel: &Path, data: &[u8]) -> io::Result<()> {
        self.write(&self.self_path(rel)?, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fs::run_in_child;

    fn read(fd: OwnedFd) -> String {
        std::io::read_to_string(std::fs::File::from(fd)).unwrap_or_default()
    }

    #[test]
    fn every_kind_reads_its_own_files() {
        for (private, kind) in [(true, ProcfsKind::Private), (false, ProcfsKind::Clone)] {
            let p = Procfs::open_with(Path::new("/proc"), private).unwrap();
            assert_eq!(p.kind(), kind);
            let own = p.self_path(Path::new("status")).unwrap();
            let status = read(p.open_file(&own, OFlag::O_RDONLY).unwrap());
            let pid = format!("Pid:\t{}\n", std::process::id());
            assert!(status.contains(&pid), "{kind:?}: {status}");
            let v = read(
                p.open_file(Path::new("sys/kernel/ostype"), OFlag::O_RDONLY)
                    .unwrap(),
            );
            assert_eq!(v, "Linux\n");
        }
    }

    #[test]
    fn symlinks_dotdot_and_non_proc_roots_are_refused() {
        let p = Procfs::open().unwrap();
        for bad in ["self/status", "../etc/passwd", "/etc/passwd", "mounts"] {
            let e = p.open_file(Path::new(bad), OFlag::O_RDONLY).unwrap_err();
            assert!(
                matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EXDEV)),
                "{bad}: {e}"
            );
        }
        let e = Procfs::open_with(Path::new("/"), false).unwrap_err();
        assert!(e.to_string().contains("not on procfs"), "{e}");
        let e = Procfs::open_with(Path::new("/proc/sys"), false).unwrap_err();
        assert!(e.to_string().contains("not the root of a procfs"), "{e}");
    }

    /// A file bound over a procfs file (here /proc/sys/kernel/domainname) after the handle
    /// was taken, and another procfs file bound over it, are never what the handle opens:
    /// the private and cloned handles do not see the mounts, the mounted one refuses them.
    #[test]
    fn mounts_over_proc_files_never_redirect() {
        run_in_child(|| {
            use nix::mount::{mount, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| e.to_string())?;
            let kinds = [
                Procfs::open().map_err(|e| e.to_string())?,
                Procfs::open_with(Path::new("/proc"), false).map_err(|e| e.to_string())?,
            ];
            let fake = std::env::temp_dir().join(format!("coracle-procfs-{}", std::process::id()));
            std::fs::write(&fake, "FAKE\n").map_err(|e| e.to_string())?;
            let target = "/proc/sys/kernel/domainname";
            let bind = |src: &Path| {
                mount(
                    Some(src),
                    target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| format!("bind {}: {e}", src.display()))
            };
            let result = (|| {
                // The clone of a mounted /proc with a mount on it: refused at lookup.
                let mounted = Procfs {
                    root: nix::fcntl::open(
                        "/proc",
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| e.to_string())?,
                    kind: ProcfsKind::Mounted,
                };
                for src in [fake.as_path(), Path::new("/proc/sys/kernel/ostype")] {
                    bind(src)?;
                    for p in &kinds {
                        let got = read(
                            p.open_file(Path::new("sys/kernel/domainname"), OFlag::O_RDONLY)
                                .map_err(|e| format!("{:?}: {e}", p.kind()))?,
                        );
                        if got == "FAKE\n" || got == "Linux\n" {
                            return Err(format!("{:?} read the mount over it: {got}", p.kind()));
                        }
                    }
                    let e = mounted
                        .open_file(Path::new("sys/kernel/domainname"), OFlag::O_RDONLY)
                        .err()
                        .and_then(|e| e.raw_os_error());
                    if e != Some(libc::EXDEV) {
                        return Err(format!("mounted /proc: {e:?}"));
                    }
                    nix::mount::umount(target).map_err(|e| e.to_string())?;
                }
                Ok(())
            })();
            let _ = std::fs::remove_file(&fake);
            result
        })
        .unwrap();
    }
}
