//! cgroup v1 (legacy and hybrid hosts), as runc 1.1's fs driver: one directory per mounted
//! hierarchy (comounted controllers such as `cpu,cpuacct` share one), the `name=systemd`
//! hierarchy joined too, and on hybrid hosts the cgroup2 hierarchy at `<root>/unified` as well.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsops::{
    components_below, mkdir_tracked, read_pids, read_value, write_pid, write_value,
};
use super::host::{join_under, own_v1, own_v2, CgroupMount, Layout, OwnCgroup};
use oci_spec::runtime::LinuxResources;

use super::resources::DeviceRule;
use super::stats::Stats;
use super::{CgroupError, CgroupManager};

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HierarchyDir {
    /// The controllers (and `name=` hierarchies) this directory serves; empty for the cgroup2
    /// hierarchy of a hybrid host.
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted.
    pub mount_point: PathBuf,
    /// The container's cgroup directory.
    pub path: PathBuf,
}

/// The container's cgroup on a v1 or hybrid host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct V1Cgroup {
    /// One entry per distinct directory, cpuset first.
    pub dirs: Vec<HierarchyDir>,
    /// Hybrid hosts: the directory in the cgroup2 hierarchy (no controllers; it tracks the
    /// processes, as runc 1.1 does).
    pub unified: Option<HierarchyDir>,
    /// The directories `create` made, parents first; only these are removed.
    pub created: Vec<PathBuf>,
}

/// Where `inner` (cleaned; absolute or relative to the process's own cgroup) lands in the
/// hierarchy mounted at `mount`, given the process's own cgroup there (`None`: not listed).
fn place(
    mount: &CgroupMount,
    own: Option<PathBuf>,
    inner: &Path,
    hierarchy: &str,
) -> Result<Option<PathBuf>, CgroupError> {
    if inner.is_absolute() {
        return Ok(Some(join_under(&mount.mount_point, inner)));
    }
    let Some(own) = own else {
        return Ok(None);
    };
    // /proc/self/cgroup paths are relative to the hierarchy root; the mount may show a subtree.
    let rel = own
        .strip_prefix(&mount.root)
        .map_err(|_| CgroupError::OutsideMount {
            hierarchy: hierarchy.to_owned(),
            own: own.clone(),
            mount_root: mount.root.clone(),
        })?;
    Ok(Some(join_under(
        &join_under(&mount.mount_point, rel),
        inner,
    )))
}

impl V1Cgroup {
    /// Resolves the container's directories. `inner` is the cleaned cgroupsPath.
    pub fn resolve(layout: &Layout, own: &[OwnCgroup], inner: &Path) -> Result<Self, CgroupError> {
        let mut dirs: Vec<HierarchyDir> = Vec::new();
        for (sub, mount) in &layout.v1 {
            let Some(path) = place(mount, own_v1(own, sub), inner, sub)? else {
                continue;
            };
            match dirs.iter_mut().find(|d| d.path == path) {
                Some(d) => d.controllers.push(sub.clone()),
                None => dirs.push(HierarchyDir {
                    controllers: vec![sub.clone()],
                    mount_point: mount.mount_point.clone(),
                    path,
                }),
            }
        }
        // As runc: without the devices controller the container would get every device.
        if !dirs
            .iter()
            .any(|d| d.controllers.iter().any(|c| c == "devices"))
        {
            return Err(CgroupError::NoDevicesHierarchy);
        }
        let unified = match &layout.unified {
            Some(mount) => place(mount, own_v2(own), inner, "unified")?.map(|path| HierarchyDir {
                controllers: Vec::new(),
                mount_point: mount.mount_point.clone(),
                path,
            }),
            None => None,
        };
        Ok(Self {
            dirs,
            unified,
            created: Vec::new(),
        })
    }

    fn all_dirs(&self) -> impl Iterator<Item = &HierarchyDir> {
        self.dirs.iter().chain(self.unified.iter())
    }

    /// The directory serving `controller` (`""`: the cgroup2 directory of a hybrid host).
    pub fn path(&self, controller: &str) -> Option<&Path> {
        if controller.is_empty() {
            return self.unified.as_ref().map(|d| d.path.as_path());
        }
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }
}

/// A new cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems`, and no task can join
/// it until both are set: fill each empty one from the parent (top-down, so parents are set
/// first), as runc does.
fn fill_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read_value(dir, file)?.is_empty() {
            let value = read_value(parent, file)?;
            if !value.is_empty() {
                write_value(dir, file, &value)?;
            }
        }
    }
    Ok(())
}

impl CgroupManager for V1Cgroup {
    fn apply(
        &self,
        resources: &LinuxResources,
        devices: Option<&[DeviceRule]>,
    ) -> Result<(), CgroupError> {
        super::apply_v1::apply(self, resources, devices)
    }

    fn procs_dir(&self) -> Option<&Path> {
        // As runc: the devices cgroup (always there, see resolve).
        self.path("devices")
            .or_else(|| self.path("pids"))
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()))
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        super::stats::v1(&|c| self.path(c).map(Path::to_path_buf))
    }

    fn oom_kills(&self) -> Option<u64> {
        super::stats::oom_kills(self.path("memory")?, false)
    }

    fn create(&mut self) -> Result<(), CgroupError> {
        let dirs: Vec<HierarchyDir> = self.all_dirs().cloned().collect();
        for dir in dirs {
            let cpuset = dir.controllers.iter().any(|c| c == "cpuset");
            for component in components_below(&dir.mount_point, &dir.path) {
                mkdir_tracked(&component, &mut self.created)?;
                if cpuset {
                    fill_cpuset(&component)?;
                }
            }
        }
        Ok(())
    }

    fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        self.all_dirs().try_for_each(|d| write_pid(&d.path, pid))
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.procs_dir().map_or(Ok(Vec::new()), read_pids)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.path("freezer").ok_or(CgroupError::NoFreezer)?;
        super::freezer::v1_set(dir, frozen)
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.path("freezer") {
            Some(dir) => super::freezer::v1_is_frozen(dir),
            None => Ok(false),
        }
    }

    fn created(&self) -> &[PathBuf] {
        &self.created
    }

    fn created_mut(&mut self) -> &mut Vec<PathBuf> {
        &mut self.created
    }

    fn paths(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for d in &self.dirs {
            for c in &d.controllers {
                out.push((c.clone(), d.path.clone()));
            }
        }
        if let Some(u) = &self.unified {
            out.push((String::new(), u.path.clone()));
        }
        out
    }
}
