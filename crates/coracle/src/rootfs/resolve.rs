//! Safe path resolution inside a root directory: every lookup is openat2(RESOLVE_IN_ROOT) from
//! an fd on the root, so `..` and symlinks (absolute or relative) never leave it, and what is
//! created is created through fds of checked parents. Others reuse [`RootHandle`] for any path
//! under the container's root (before or after pivot_root).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::sys::fs::{openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

/// An open root directory to resolve paths in.
#[derive(Debug)]
pub struct RootHandle {
    fd: OwnedFd,
    path: PathBuf,
}

/// What to create at the end of a path that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Create nothing: a missing path is ENOENT.
    Nothing,
    /// A directory (and its missing parents), mode 0755.
    Dir,
    /// An empty regular file, mode 0644 (and its missing parent directories, 0755).
    File,
}

/// Cleans `path` lexically into components relative to the root: `.` dropped, `..` pops (never
/// above the root), a leading `/` ignored. Empty for the root itself.
pub fn clean_relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn as_rel(rel: &Path) -> &Path {
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

impl RootHandle {
    /// Opens the directory `path` (a trusted host path) as the root.
    pub fn open(path: &Path) -> io::Result<Self> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root's path as given to [`RootHandle::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root directory's fd (O_PATH).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The host path `path` names inside this root, lexically (for messages).
    pub fn display_path(&self, path: &Path) -> PathBuf {
        self.path.join(clean_relative(path))
    }

    /// Opens `path` (absolute or relative, both taken inside the root) with `flags` (`O_*`;
    /// O_CLOEXEC is added); symlinks are followed but stay inside the root, magic links are
    /// refused.
    pub fn open_in(&self, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
        let rel = clean_relative(path);
        openat2(
            self.fd.as_fd(),
            as_rel(&rel),
            flags.bits(),
            0,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
    }

    /// Opens `path` like [`RootHandle::open_in`] and checks that what was opened lies on a
    /// filesystem of type `fs` (e.g. `nix::sys::statfs::PROC_SUPER_MAGIC` before a write to
    /// /proc/sys): a bind mount or symlink planted over it is refused with EXDEV.
    pub fn open_on_fs(
        &self,
        path: &Path,
        flags: OFlag,
        fs: nix::sys::statfs::FsType,
    ) -> io::Result<OwnedFd> {
        let fd = self.open_in(path, flags)?;
        if nix::sys::statfs::fstatfs(&fd)?.filesystem_type() != fs {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        Ok(fd)
    }

    /// Opens `path` as an O_PATH fd, creating it first when missing as `create` says (missing
    /// parents become directories). A dangling symlink on the way is followed inside the root
    /// (what it names is created there), as runc does.
    pub fn open_or_create(&self, path: &Path, create: Create) -> io::Result<OwnedFd> {
        let mut rel = clean_relative(path);
        let mut hops = 0;
        loop {
            match self.open_in(&rel, OFlag::O_PATH) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::Nothing => {}
                other => return other,
            }
            let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            };
            let parent_fd = self.mkdir_all(parent)?;
            let made = match create {
                Create::Dir => {
                    nix::sys::stat::mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o755))
                }
                _ => nix::fcntl::openat(
                    &parent_fd,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_WRONLY
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop),
            };
            match made {
                Ok(()) => return self.open_in(&rel, OFlag::O_PATH),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            // Something appeared there: a dangling symlink (follow it) or a racing creation.
            match dangling_target(
                &parent_fd,
                parent,
                Path::new(name),
                Path::new(""),
                &mut hops,
            )? {
                Some(next) => rel = next,
                None => return self.open_in(&rel, OFlag::O_PATH),
            }
        }
    }

    /// Makes the directory `path` and its missing parents, each created through the fd of its
    /// resolved parent; returns an O_PATH fd on it.
    pub fn mkdir_all(&self, path: &Path) -> io::Result<OwnedFd> {
        let mut rel = clean_relative(path);
        let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let mut hops = 0;
        'restart: loop {
            match self.open_in(&rel, dir) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                other => return other,
            }
            let mut done = PathBuf::new();
            let mut cur = self.open_in(Path::new("."), dir)?;
            let comps: Vec<PathBuf> = rel
                .components()
                .map(|c| PathBuf::from(c.as_os_str()))
                .collect();
            for (i, comp) in comps.iter().enumerate() {
                let parent = done.clone();
                done.push(comp);
                cur = match self.open_in(&done, dir) {
                    Ok(fd) => fd,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        match nix::sys::stat::mkdirat(
                            &cur,
                            comp.as_path(),
                            Mode::from_bits_truncate(0o755),
                        ) {
                            Ok(()) => {}
                            Err(Errno::EEXIST) => {
                                let rest: PathBuf = comps[i + 1..].iter().collect();
                                if let Some(next) =
                                    dangling_target(&cur, &parent, comp, &rest, &mut hops)?
                                {
                                    rel = next;
                                    continue 'restart;
                                }
                            }
                            Err(e) => return Err(e.into()),
                        }
                        self.open_in(&done, dir)?
                    }
                    Err(e) => return Err(e),
                };
            }
            return Ok(cur);
        }
    }

    /// Opens the parent directory of `path` inside the root (created when `create`), and
    /// returns it with the last component's name. The root itself has no parent: EINVAL.
    pub fn open_parent(&self, path: &Path, create: bool) -> io::Result<(OwnedFd, PathBuf)> {
        let rel = clean_relative(path);
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let fd = if create {
            self.mkdir_all(parent)?
        } else {
            self.open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?
        };
        Ok((fd, PathBuf::from(name)))
    }
}

/// When `name` in `dir` (at `parent` inside the root) is a symlink, the root-relative path it
/// stands for, followed by `rest`; None when it is no symlink. ELOOP after 40 symlinks.
fn dangling_target(
    dir: &OwnedFd,
    parent: &Path,
    name: &Path,
    rest: &Path,
    hops: &mut u32,
) -> io::Result<Option<PathBuf>> {
    let target = match nix::fcntl::readlinkat(dir, name) {
        Ok(t) => PathBuf::from(t),
        Err(Errno::EINVAL) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    *hops += 1;
    if *hops > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    Ok(Some(clean_relative(&parent.join(target).join(rest))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fs::fd_path;

    #[test]
    fn clean() {
        assert_eq!(clean_relative(Path::new("/a/./b/../c")), Path::new("a/c"));
        assert_eq!(clean_relative(Path::new("/../../x")), Path::new("x"));
        assert_eq!(clean_relative(Path::new("/")), Path::new(""));
        assert_eq!(clean_relative(Path::new("rel/p")), Path::new("rel/p"));
    }

    #[test]
    fn create_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir(&root_path).unwrap();
        // Symlinks pointing out of the root by absolute path and by `..`.
        std::os::unix::fs::symlink(outside.path(), root_path.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root_path.join("up")).unwrap();
        let root = RootHandle::open(&root_path).unwrap();
        let fd = root
            .open_or_create(Path::new("/abs/x/y"), Create::Dir)
            .unwrap();
        let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert!(real.starts_with(&root_path), "{}", real.display());
        std::os::unix::fs::symlink("/abs/x/file", root_path.join("dangling")).unwrap();
        let fd = root
            .open_or_create(Path::new("/dangling"), Create::File)
            .unwrap();
        let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert!(real.starts_with(&root_path), "{}", real.display());
        let fd = root
            .open_or_create(Path::new("/up/f"), Create::File)
            .unwrap();
        let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert_eq!(real, root_path.join("f"));
        assert!(root_path.join("f").is_file());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // The root itself.
        let fd = root.open_or_create(Path::new("/"), Create::Dir).unwrap();
        let real = std::fs::read_link(fd_path(fd.as_fd())).unwrap();
        assert_eq!(real, root_path);
        assert!(root.open_in(Path::new("/missing"), OFlag::O_PATH).is_err());
        assert!(root.open_parent(Path::new("/"), false).is_err());
    }
}
