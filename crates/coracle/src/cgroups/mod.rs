//! Control groups: the container's cgroup on v1, v2 (unified) and hybrid hosts.
//! (Stub: being written.)

use std::os::fd::OwnedFd;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Errors of the cgroups module.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// An I/O operation on a cgroup file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On which path.
        path: std::path::PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// The container's cgroup: resolved paths on every hierarchy, serialisable into state.json so
/// that later commands find the same directories.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` (absolute, relative, or absent: then derived from `id`) as
    /// runc does, against the host's cgroup layout. No side effects.
    pub fn resolve(_cgroups_path: Option<&Path>, _id: &str) -> Result<Self, CgroupError> {
        Ok(Self {})
    }
    /// Creates the directories (those that do not exist yet; only those are removed later).
    pub fn create(&mut self) -> Result<(), CgroupError> {
        Ok(())
    }
    /// On a v2 (unified) host: an fd of the container's cgroup directory for CLONE_INTO_CGROUP.
    pub fn clone_target(&self) -> Option<OwnedFd> {
        None
    }
    /// Moves `pid` into the cgroup on every hierarchy.
    pub fn add_pid(&self, _pid: i32) -> Result<(), CgroupError> {
        Ok(())
    }
    /// The pids in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(Vec::new())
    }
    /// Whether the cgroup is frozen (v1 freezer.state FROZEN, v2 cgroup.freeze 1).
    pub fn is_frozen(&self) -> bool {
        false
    }
    /// Removes the directories this container created, retrying while the kernel says busy.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        Ok(())
    }
}
