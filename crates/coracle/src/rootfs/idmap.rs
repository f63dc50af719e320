//! Id-mapped bind mounts (`uidMappings`/`gidMappings`, `idmap`, `ridmap`).
//!
//! Where they are made: in the parent, from [`RootfsPlan::from_spec`](super::RootfsPlan), not
//! in the container child. Two reasons, both from the kernel:
//! - The mappings' host ids are ids of the runtime's user namespace (runtime-spec). A user
//!   namespace created by the child, once it is inside the container's user namespace, would
//!   be a child of that namespace, and its map would read the host ids as container ids.
//! - `mount_setattr(MOUNT_ATTR_IDMAP)` needs CAP_SYS_ADMIN in the user namespace that owns
//!   the source's filesystem (the initial one for ext4, xfs...), which a child inside the
//!   container's user namespace never has.
//!
//! So, as runc does, the runtime makes the mapping's user namespace (a waiting child in a new
//! user namespace whose maps it writes, kept only as an fd), clones the source into a detached
//! mount (open_tree), id-maps it (and makes it a slave, so that nothing propagates between it
//! and the host's peers), and keeps that detached mount in the plan. The container child
//! inherits the fd through clone and only attaches it (move_mount) at its place among the
//! mounts, then applies the mount's other options as for any bind.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxIdMapping;

use super::plan::{MountEntry, MountKind};
use super::RootfsError;
use crate::namespaces::render_mappings;
use crate::sys::fs::{
    self as sysfs, idmap_attr, MountAttr, UserNsChild, AT_RECURSIVE, OPEN_TREE_CLONE,
};

/// The user namespace whose mapping an id-mapped mount takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdmapUserns {
    /// A new user namespace with these maps (`containerID hostID size` lines, host ids in
    /// the runtime's user namespace): the mount's own, or the container's for a bare `idmap`.
    Mappings {
        /// uid mappings.
        uid: Vec<LinuxIdMapping>,
        /// gid mappings.
        gid: Vec<LinuxIdMapping>,
    },
    /// The user namespace the container joins (`linux.namespaces[].path`), for a bare `idmap`.
    Join(PathBuf),
}

/// The id-mapping of one bind mount, and once made, the detached id-mapped mount.
#[derive(Debug, Clone)]
pub struct IdmapPlan {
    /// Where the mapping comes from.
    pub userns: IdmapUserns,
    /// `ridmap`: submounts are id-mapped too.
    pub recursive: bool,
    /// The detached, id-mapped mount made by the parent; the child attaches it.
    tree: Option<Arc<OwnedFd>>,
}

impl IdmapPlan {
    /// An id-mapping not made yet.
    pub fn new(userns: IdmapUserns, recursive: bool) -> Self {
        Self {
            userns,
            recursive,
            tree: None,
        }
    }

    /// The detached id-mapped mount, once made.
    pub fn tree(&self) -> Option<BorrowedFd<'_>> {
        self.tree.as_deref().map(AsFd::as_fd)
    }
}

/// Builds the [`RootfsError::Idmap`] of a failed step.
fn idmap_err(
    m: &MountEntry,
    op: &'static str,
    hint: &'static str,
) -> impl FnOnce(io::Error) -> RootfsError {
    let (index, destination, src) = (m.index, m.destination.clone(), m.source.clone());
    move |source| RootfsError::Idmap {
        index,
        destination,
        src,
        op,
        hint,
        source,
    }
}

/// Makes the detached id-mapped mount of every id-mapped entry (parent side; see the module
/// documentation). Entries with the same mappings share one user namespace.
pub(super) fn prepare(mounts: &mut [MountEntry]) -> Result<(), RootfsError> {
    let mut userns_fds: Vec<(IdmapUserns, OwnedFd)> = Vec::new();
    for m in mounts.iter_mut() {
        let Some(idmap) = &m.idmap else { continue };
        let fd = match userns_fds.iter().position(|(u, _)| *u == idmap.userns) {
            Some(i) => &userns_fds[i].1,
            None => {
                let fd = open_userns(m, &idmap.userns)?;
                userns_fds.push((idmap.userns.clone(), fd));
                &userns_fds[userns_fds.len() - 1].1
            }
        };
        let tree = idmapped_tree(m, fd.as_fd())?;
        if let Some(idmap) = &mut m.idmap {
            idmap.tree = Some(Arc::new(tree));
        }
    }
    Ok(())
}

/// An fd to the user namespace of `userns`: a new one with its maps written by us (so host
/// ids are read in our user namespace), or the joined one.
fn open_userns(m: &MountEntry, userns: &IdmapUserns) -> Result<OwnedFd, RootfsError> {
    match userns {
        IdmapUserns::Join(path) => File::open(path).map(OwnedFd::from).map_err(idmap_err(
            m,
            "open the container's user namespace",
            "",
        )),
        IdmapUserns::Mappings { uid, gid } => {
            let child = UserNsChild::spawn().map_err(idmap_err(
                m,
                "clone a process in a new user namespace",
                "",
            ))?;
            let pid = child.pid();
            // Through a procfs handle, as every write to /proc (CVE-2025-52881).
            let proc = super::Procfs::open().map_err(idmap_err(m, "open a procfs handle", ""))?;
            proc.write(
                Path::new(&format!("{pid}/uid_map")),
                render_mappings(uid).as_bytes(),
            )
            .map_err(idmap_err(
                m,
                "write uidMappings to the uid_map of the mapping's user namespace",
                MAP_HINT,
            ))?;
            proc.write(
                Path::new(&format!("{pid}/gid_map")),
                render_mappings(gid).as_bytes(),
            )
            .map_err(idmap_err(
                m,
                "write gidMappings to the gid_map of the mapping's user namespace",
                MAP_HINT,
            ))?;
            child
                .ns_fd()
                .map_err(idmap_err(m, "open the mapping's user namespace", ""))
        }
    }
}

const MAP_HINT: &str = " (the host ids must be mapped in the runtime's user namespace, \
                        and writing several ranges needs root there)";

/// The source of `m`, cloned into a detached mount (its subtree for rbind), made a slave and
/// id-mapped through `userns` (its submounts too for ridmap).
fn idmapped_tree(m: &MountEntry, userns: BorrowedFd<'_>) -> Result<OwnedFd, RootfsError> {
    let rbind = matches!(m.kind, MountKind::Bind { recursive: true });
    let recursive_map = m.idmap.as_ref().is_some_and(|i| i.recursive);
    let src = nix::fcntl::open(&m.source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| idmap_err(m, "open the bind source", "")(e.into()))?;
    let flags = OPEN_TREE_CLONE | if rbind { AT_RECURSIVE } else { 0 };
    let tree = sysfs::open_tree(src.as_fd(), flags).map_err(idmap_err(
        m,
        "clone the bind source (open_tree)",
        "",
    ))?;
    // A clone of a shared host mount joins the host's peer group: cut it loose first.
    let slave = MountAttr {
        propagation: libc::MS_SLAVE,
        ..MountAttr::default()
    };
    sysfs::mount_setattr(tree.as_fd(), rbind, &slave).map_err(idmap_err(
        m,
        "make the id-mapped mount a slave",
        "",
    ))?;
    sysfs::mount_setattr(tree.as_fd(), recursive_map, &idmap_attr(userns)).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) => {
                ": the filesystem (or, with ridmap, one mounted below the source) does not \
                 support id-mapped mounts"
            }
            Some(libc::EPERM) => {
                ": id-mapping needs CAP_SYS_ADMIN in the user namespace that owns the \
                 filesystem (a rootless runtime cannot id-map the host's filesystems)"
            }
            _ => "",
        };
        idmap_err(m, "id-map the mount (mount_setattr MOUNT_ATTR_IDMAP)", hint)(e)
    })?;
    Ok(tree)
}

/// Child side: attaches the prepared id-mapped mount of `m` onto `target`; returns an fd on
/// the attached mount.
pub(super) fn attach(
    m: &MountEntry,
    tree: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    shown: &Path,
) -> Result<OwnedFd, RootfsError> {
    let err = |source| RootfsError::Mount {
        src: m.source.display().to_string(),
        target: shown.to_path_buf(),
        fstype: "idmapped bind (move_mount)".into(),
        flags: 0,
        data: String::new(),
        source,
    };
    sysfs::move_mount(tree, target).map_err(err)?;
    tree.try_clone_to_owned().map_err(err)
}
