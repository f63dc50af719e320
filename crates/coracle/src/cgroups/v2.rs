//! cgroup v2 (unified hosts), as runc 1.1's fs2 driver: one directory; every ancestor gets the
//! controllers it has enabled for its children, so that the leaf can use them.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsops::{components_below, mkdir_tracked, read_pids, read_value, write_value};
use super::host::{join_under, own_v2, Layout, OwnCgroup};
use oci_spec::runtime::LinuxResources;

use super::resources::DeviceRule;
use super::stats::Stats;
use super::{CgroupError, CgroupManager};

/// The container's cgroup on a unified host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct V2Cgroup {
    /// Where cgroup2 is mounted.
    pub mount_point: PathBuf,
    /// The container's cgroup directory.
    pub path: PathBuf,
    /// The directories `create` made, parents first; only these are removed.
    pub created: Vec<PathBuf>,
}

impl V2Cgroup {
    /// Resolves the container's directory. `inner` is the cleaned cgroupsPath: absolute means
    /// under the mount point; relative means beside the process's own cgroup (under its
    /// parent, which, unlike the process's own cgroup, holds no processes and so can enable
    /// controllers for children), as runc 1.1.
    pub fn resolve(layout: &Layout, own: &[OwnCgroup], inner: &Path) -> Result<Self, CgroupError> {
        let mount = layout.unified.as_ref().ok_or(CgroupError::NoUnifiedMount)?;
        let path = if inner.is_absolute() {
            join_under(&mount.mount_point, inner)
        } else {
            let own_path = own_v2(own).ok_or(CgroupError::NotInHierarchy {
                hierarchy: "unified".to_owned(),
            })?;
            let rel =
                own_path
                    .strip_prefix(&mount.root)
                    .map_err(|_| CgroupError::OutsideMount {
                        hierarchy: "unified".to_owned(),
                        own: own_path.clone(),
                        mount_root: mount.root.clone(),
                    })?;
            let base = join_under(&mount.mount_point, rel.parent().unwrap_or(Path::new("")));
            join_under(&base, inner)
        };
        Ok(Self {
            mount_point: mount.mount_point.clone(),
            path,
            created: Vec::new(),
        })
    }

    /// An `O_PATH` fd of the container's cgroup directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn open_dir(&self) -> Result<OwnedFd, CgroupError> {
        Self::open_path(&self.path)
    }

    /// An `O_PATH|O_DIRECTORY` fd of the cgroup2 directory `path`.
    pub fn open_path(path: &Path) -> Result<OwnedFd, CgroupError> {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(path)
            .map(OwnedFd::from)
            .map_err(|source| CgroupError::Io {
                op: "open",
                path: path.to_path_buf(),
                source,
            })
    }
}

/// Enables in `dir`'s `cgroup.subtree_control` every controller `dir` has (its
/// `cgroup.controllers`) that is not enabled yet. Controllers the kernel refuses (e.g. a
/// threaded subtree, or a cgroup with processes in it other than the root) are left out, as
/// runc does: a later limit on one of them fails with its own error.
pub fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let available = read_value(dir, "cgroup.controllers")?;
    let enabled = read_value(dir, "cgroup.subtree_control")?;
    let missing: Vec<&str> = available
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    if write_value(dir, "cgroup.subtree_control", &all).is_err() {
        for c in missing {
            // Deliberately ignored: see above.
            let _ = write_value(dir, "cgroup.subtree_control", &format!("+{c}"));
        }
    }
    Ok(())
}

impl CgroupManager for V2Cgroup {
    fn apply(
        &self,
        resources: &LinuxResources,
        devices: Option<&[DeviceRule]>,
    ) -> Result<(), CgroupError> {
        super::apply_v2::apply(&self.path, resources, devices, &super::devices_bpf::attach)
    }

    fn procs_dir(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        super::stats::v2(&self.path)
    }

    fn oom_kills(&self) -> Option<u64> {
        super::stats::oom_kills(&self.path, true)
    }

    fn kill_all_atomically(&self) -> Result<bool, CgroupError> {
        if !self.path.join("cgroup.kill").exists() {
            return Ok(false);
        }
        write_value(&self.path, "cgroup.kill", "1")?;
        Ok(true)
    }

    fn create(&mut self) -> Result<(), CgroupError> {
        for component in components_below(&self.mount_point, &self.path) {
            if let Some(parent) = component.parent() {
                enable_controllers(parent)?;
            }
            mkdir_tracked(&component, &mut self.created)?;
        }
        Ok(())
    }

    fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        super::fsops::write_pid(&self.path, pid)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        read_pids(&self.path)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        super::freezer::v2_set(&self.path, frozen)
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        super::freezer::v2_is_frozen(&self.path)
    }

    fn created(&self) -> &[PathBuf] {
        &self.created
    }

    fn created_mut(&mut self) -> &mut Vec<PathBuf> {
        &mut self.created
    }

    fn paths(&self) -> Vec<(String, PathBuf)> {
        vec![(String::new(), self.path.clone())]
    }
}
