//! `cgroup` and `cgroup2` mounts. With cgroup v1 (or a hybrid host) a `cgroup` mount is a
//! tmpfs with one directory per hierarchy: in a cgroup namespace a real cgroup mount of it,
//! otherwise a bind of the process's own cgroup directory on the host (as runc does). cgroup2
//! is mounted directly, or bound from the host where the kernel refuses (no cgroup namespace).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::symlinkat;

use super::mountinfo::{self, MountInfo};
use super::mounts::{bind_fd, mount_fd};
use super::plan::{MountEntry, MountKind};
use super::resolve::{Create, RootHandle};
use super::{io_err, setattr, RootfsError, SetupOptions};
use crate::sys::fs::MountAttr;

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    /// Hierarchy id (0 for cgroup2).
    pub id: u32,
    /// Controllers (`cpu,cpuacct`, `name=systemd`; empty for cgroup2).
    pub controllers: String,
    /// The cgroup path in that hierarchy.
    pub path: PathBuf,
}

/// Parses /proc/<pid>/cgroup.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            Some(CgroupLine {
                id: parts.next()?.parse().ok()?,
                controllers: parts.next()?.to_string(),
                path: PathBuf::from(parts.next()?),
            })
        })
        .collect()
}

/// A v1 hierarchy to show in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Directory name under the cgroup mount (the host mount point's name, `cpu,cpuacct`).
    pub name: String,
    /// Controllers, as `-o` data for a real mount (`cpu,cpuacct`, `name=systemd`).
    pub controllers: String,
    /// The host directory of the process's cgroup in it.
    pub host_dir: PathBuf,
}

/// Matches the v1 lines of /proc/self/cgroup with their mounts in mountinfo, in mountinfo's
/// order (as runc lists them); a hierarchy mounted twice is taken once.
pub fn v1_hierarchies(cgroups: &[CgroupLine], mounts: &[MountInfo]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in mounts.iter().filter(|m| m.fstype == "cgroup") {
        let line = cgroups.iter().find(|l| {
            !l.controllers.is_empty()
                && l.controllers
                    .split(',')
                    .all(|c| m.super_options.iter().any(|o| o == c))
                // In a cgroup namespace a mount made outside it shows a root of "/..".
                && (l.path.starts_with(&m.root) || m.root.starts_with("/.."))
        });
        let (Some(line), Some(name)) = (line, m.mount_point.file_name()) else {
            continue;
        };
        if out.iter().any(|h| h.controllers == line.controllers) {
            continue;
        }
        let rel = line.path.strip_prefix(&m.root).unwrap_or(Path::new(""));
        out.push(Hierarchy {
            name: name.to_string_lossy().into_owned(),
            controllers: line.controllers.clone(),
            host_dir: m.mount_point.join(rel),
        });
    }
    out
}

fn read(path: &str) -> Result<String, RootfsError> {
    std::fs::read_to_string(path).map_err(io_err("read", Path::new(path)))
}

/// Mounts a `cgroup` or `cgroup2` entry; returns an fd on the new mount.
pub(super) fn mount_cgroup(
    root: &RootHandle,
    m: &MountEntry,
    opts: SetupOptions,
) -> Result<OwnedFd, RootfsError> {
    let unified = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if m.kind == MountKind::Cgroup2 || unified {
        mount_v2(root, m)
    } else {
        mount_v1(root, m, opts)
    }
}

fn flag_attr(m: &MountEntry) -> Option<MountAttr> {
    let mut o = m.options.clone();
    o.flags |= libc::MS_BIND;
    o.bind_attr()
}

fn mount_v2(root: &RootHandle, m: &MountEntry) -> Result<OwnedFd, RootfsError> {
    let shown = root.display_path(&m.destination);
    let target = root
        .open_or_create(&m.destination, Create::Dir)
        .map_err(io_err("create mount point", &shown))?;
    super::mounts::check_proc_target(target.as_fd(), m, &shown)?;
    let flags = m.options.flags & !(libc::MS_BIND | libc::MS_REC);
    match mount_fd(
        Path::new("cgroup2"),
        target.as_fd(),
        "cgroup2",
        flags,
        &m.options.data,
        &shown,
    ) {
        Ok(()) => {
            return root
                .open_in(&m.destination, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(io_err("open new mount", &shown))
        }
        Err(RootfsError::Mount { source, .. })
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) => {}
        Err(e) => return Err(e),
    }
    // No cgroup namespace: bind the process's own cgroup2 directory.
    let lines = parse_proc_cgroup(&read("/proc/self/cgroup")?);
    let mounts =
        mountinfo::read_self().map_err(io_err("read", Path::new("/proc/self/mountinfo")))?;
    let (Some(line), Some(mnt)) = (
        lines.iter().find(|l| l.id == 0),
        mounts.iter().find(|x| x.fstype == "cgroup2"),
    ) else {
        return Err(RootfsError::Unsafe {
            path: shown,
            reason: "no cgroup2 hierarchy to bind",
        });
    };
    let rel = line.path.strip_prefix(&mnt.root).unwrap_or(Path::new(""));
    let source = mnt.mount_point.join(rel);
    let src = nix::fcntl::open(
        &source,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io_err("open", &source)(e.into()))?;
    let tree = bind_fd(src.as_fd(), target.as_fd(), true, &source, &shown)?;
    if let Some(attr) = flag_attr(m) {
        setattr(&tree, &shown, false, &attr)?;
    }
    Ok(tree)
}

fn mount_v1(root: &RootHandle, m: &MountEntry, opts: SetupOptions) -> Result<OwnedFd, RootfsError> {
    let shown = root.display_path(&m.destination);
    let target = root
        .open_or_create(&m.destination, Create::Dir)
        .map_err(io_err("create mount point", &shown))?;
    super::mounts::check_proc_target(target.as_fd(), m, &shown)?;
    let tmpfs_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    mount_fd(
        Path::new("tmpfs"),
        target.as_fd(),
        "tmpfs",
        tmpfs_flags,
        "mode=755",
        &shown,
    )?;
    let base = root
        .open_in(&m.destination, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(io_err("open new mount", &shown))?;
    let lines = parse_proc_cgroup(&read("/proc/self/cgroup")?);
    let mounts =
        mountinfo::read_self().map_err(io_err("read", Path::new("/proc/self/mountinfo")))?;
    let flags = m.options.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
    let attr = flag_attr(m);
    for h in v1_hierarchies(&lines, &mounts) {
        let dest = m.destination.join(&h.name);
        let sub_shown = root.display_path(&dest);
        let sub = root
            .open_or_create(&dest, Create::Dir)
            .map_err(io_err("create mount point", &sub_shown))?;
        let top = if opts.cgroup_ns {
            mount_fd(
                Path::new("cgroup"),
                sub.as_fd(),
                "cgroup",
                flags,
                &h.controllers,
                &sub_shown,
            )?;
            root.open_in(&dest, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .map_err(io_err("open new mount", &sub_shown))?
        } else {
            let src = nix::fcntl::open(
                &h.host_dir,
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| io_err("open", &h.host_dir)(e.into()))?;
            bind_fd(src.as_fd(), sub.as_fd(), true, &h.host_dir, &sub_shown)?
        };
        if let Some(attr) = &attr {
            setattr(&top, &sub_shown, false, attr)?;
        }
        // cpu -> cpu,cpuacct and cpuacct -> cpu,cpuacct.
        for c in h.name.split(',').filter(|c| *c != h.name) {
            match symlinkat(h.name.as_str(), &base, c) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => {
                    return Err(io_err(
                        "symlink",
                        &root.display_path(&m.destination.join(c)),
                    )(e.into()))
                }
            }
        }
    }
    if m.options.flags & libc::MS_RDONLY != 0 {
        let ro = MountAttr {
            attr_set: crate::sys::fs::MOUNT_ATTR_RDONLY,
            ..MountAttr::default()
        };
        setattr(&base, &shown, false, &ro)?;
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies() {
        let cg = parse_proc_cgroup(
            "12:cpu,cpuacct:/c1\n3:name=systemd:/user.slice/c1\n11:memory:/c1\n0::/c1\n4:pids:/x\n",
        );
        assert_eq!(cg.len(), 5);
        let mi = mountinfo::parse(
            "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n\
             31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             33 25 0:29 /c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        let h = v1_hierarchies(&cg, &mi);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[0].name, "cpu,cpuacct");
        assert_eq!(h[0].host_dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/c1"));
        assert_eq!(h[1].name, "systemd");
        assert_eq!(h[1].controllers, "name=systemd");
        assert_eq!(h[2].host_dir, Path::new("/sys/fs/cgroup/memory"));
        let twice = [mi.clone(), mi].concat();
        assert_eq!(v1_hierarchies(&cg, &twice).len(), 3);
    }
}
