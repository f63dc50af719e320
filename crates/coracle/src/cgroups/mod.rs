//! Control groups: the container's cgroup on v1 (legacy), hybrid and v2 (unified) hosts, placed
//! as runc 1.1's cgroupfs driver places it.
//!
//! - The host is told apart from `/proc/self/mountinfo` ([`host::detect`]): cgroup2 at
//!   `/sys/fs/cgroup` is unified; v1 hierarchies (plus cgroup2 at `/sys/fs/cgroup/unified` on a
//!   hybrid host) are legacy.
//! - `linux.cgroupsPath` is cleaned as runc's `CleanPath` (no climbing out with `..`). Absolute:
//!   under each hierarchy's mount point. Relative: on v1, under the runtime's own cgroup in each
//!   hierarchy (`/proc/self/cgroup`); on v2, beside it (under its parent). Absent: the
//!   container id, as a relative path (runc's default for the fs driver).
//! - v1: every mounted hierarchy among runc's subsystems, `name=systemd` included; comounted
//!   controllers share a directory; a hybrid host's cgroup2 hierarchy is joined as well.
//! - The directories that [`Cgroup::create`] made are recorded (and serialised with the rest),
//!   and [`Cgroup::destroy`] removes exactly those.
//!
//! - `linux.resources` ([`resources`]): checked in the parent before anything is made
//!   ([`Cgroup::check_resources`]), applied after `create` ([`Cgroup::apply`]) with runc's file
//!   names, order and v1->v2 conversions (`apply_v1`, `apply_v2`); device rules as v1
//!   `devices.allow`/`deny` lines or a v2 eBPF program ([`devices_bpf`]). A resource the
//!   version cannot apply is refused with a clear error; a file this kernel lacks (blkio
//!   weights without CFQ/BFQ) is skipped with a warning.
//! - `update`, `ps`, `events` ([`ops`], [`stats`]): merged resources kept in `resources.json`,
//!   every pid of the cgroup tree, usage in runc's JSON, OOM kills counted.
//!
//! [`v1::V1Cgroup`] and [`v2::V2Cgroup`] implement [`CgroupManager`]; [`Cgroup`] holds one of
//! them. Every operation is a function over directory paths, so tests run against temp dirs via
//! [`Cgroup::resolve_with`] and a fake [`HostInfo`].

mod apply_v1;
mod apply_v2;
pub mod devices_bpf;
pub mod freezer;
pub mod fsops;
pub mod host;
pub mod ops;
pub mod resources;
pub mod stats;
pub mod v1;
pub mod v2;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use host::{HostInfo, Mode};

/// Errors of the cgroups module.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// An I/O operation on a cgroup file or directory failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A line of a cgroup file did not parse.
    #[error("parse {path}: bad line {line:?}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The offending line.
        line: String,
        /// Why.
        #[source]
        source: std::num::ParseIntError,
    },
    /// No cgroup filesystem is mounted where one is expected.
    #[error("no cgroup hierarchy mounted (neither cgroup2 at {root} nor v1 hierarchies)")]
    NoCgroupFs {
        /// The cgroup root looked at.
        root: PathBuf,
    },
    /// A v1 host without the devices controller: refused, as runc does, since the container
    /// would have access to every device.
    #[error("the devices cgroup hierarchy is not mounted (or this process is not in it)")]
    NoDevicesHierarchy,
    /// A v2 operation on a host without a unified hierarchy.
    #[error("no cgroup2 hierarchy mounted")]
    NoUnifiedMount,
    /// The runtime's own cgroup in a hierarchy is not listed in /proc/self/cgroup.
    #[error(
        "this process's cgroup in the {hierarchy} hierarchy is not listed in /proc/self/cgroup"
    )]
    NotInHierarchy {
        /// The hierarchy (controller name, or `unified`).
        hierarchy: String,
    },
    /// The runtime's own cgroup lies outside the part of the hierarchy that is mounted.
    #[error(
        "own cgroup {own} in the {hierarchy} hierarchy is outside its mount root {mount_root}"
    )]
    OutsideMount {
        /// The hierarchy (controller name, or `unified`).
        hierarchy: String,
        /// The own cgroup path from /proc/self/cgroup.
        own: PathBuf,
        /// The root of the mount (mountinfo field 4).
        mount_root: PathBuf,
    },
    /// A v1 host without a freezer hierarchy (or not in it): cannot pause.
    #[error("the freezer cgroup hierarchy is not mounted (or this process is not in it)")]
    NoFreezer,
    /// The freezer reported a state it should not be in.
    #[error("{path}: unexpected freezer state {state:?}")]
    FreezerState {
        /// The state file.
        path: PathBuf,
        /// What it said.
        state: String,
    },
    /// The cgroup did not reach the frozen state in time (it was thawed again).
    #[error("{path}: timed out waiting for the cgroup to freeze")]
    FreezeTimeout {
        /// The cgroup directory.
        path: PathBuf,
    },
    /// A `linux.resources` value is out of range or malformed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The spec field (`linux.resources.memory.swappiness`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `linux.resources` field this cgroup version cannot apply.
    #[error("{field}: not supported: {reason}")]
    Unsupported {
        /// The spec field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A resource asks for a controller that is not mounted (or not available in the cgroup).
    #[error("{field}: cannot set: the {controller} controller is not available on this host")]
    ControllerMissing {
        /// The spec field.
        field: String,
        /// The controller.
        controller: String,
    },
    /// Writing a resource value into a cgroup file failed.
    #[error("{field}: write {value:?} to {path}: {source}")]
    Write {
        /// The spec field.
        field: &'static str,
        /// The cgroup file.
        path: PathBuf,
        /// The value.
        value: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a memory limit below the current usage.
    #[error("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})")]
    MemoryBusy {
        /// The limit asked for.
        limit: i64,
        /// The current usage.
        usage: u64,
        /// The peak usage.
        peak: u64,
    },
    /// `checkBeforeUpdate`: the new memory limit is below the current usage.
    #[error("rejecting memory limit {limit} below usage {usage}")]
    BelowUsage {
        /// The limit asked for.
        limit: i64,
        /// The current usage.
        usage: u64,
    },
    /// The kernel clamped cpu.shares: the value is outside what it allows.
    #[error("linux.resources.cpu.shares: {asked}: the {bound} allowed cpu-shares is {got}")]
    SharesRange {
        /// The value asked for.
        asked: u64,
        /// "minimum" or "maximum".
        bound: &'static str,
        /// What the kernel kept.
        got: u64,
    },
    /// A JSON (de)serialisation of resources or stats failed.
    #[error("{op}: {source}")]
    Json {
        /// What was done.
        op: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Signalling a process of the cgroup failed.
    #[error("kill {pid}: {source}")]
    Kill {
        /// The process.
        pid: i32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Loading or attaching the v2 devices eBPF program failed.
    #[error("devices eBPF program: {op} {path}: {source}")]
    Bpf {
        /// What was done (load, attach, query, detach).
        op: &'static str,
        /// The cgroup directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What a cgroup implementation (v1, v2, later systemd) does for a container. Functions over
/// the directories resolved before.
pub trait CgroupManager {
    /// Creates the missing directories (recording the ones made) and prepares them so that a
    /// task can join (v1 cpuset values, v2 controllers enabled in the ancestors).
    fn create(&mut self) -> Result<(), CgroupError>;
    /// Moves `pid` into the container's cgroup on every hierarchy.
    fn add_pid(&self, pid: i32) -> Result<(), CgroupError>;
    /// The pids in the container's cgroup.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// The directories `create` made, parents first.
    fn created(&self) -> &[PathBuf];
    /// The same, to update.
    fn created_mut(&mut self) -> &mut Vec<PathBuf>;
    /// Freezes (`true`) or thaws the cgroup; freezing returns once every task is frozen.
    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError>;
    /// Whether the cgroup is frozen.
    fn is_frozen(&self) -> Result<bool, CgroupError>;
    /// (controller, directory) pairs as runc's `GetPaths`: the key `""` is the unified
    /// directory (on a v2 host the only one; on a hybrid host the cgroup2 one).
    fn paths(&self) -> Vec<(String, PathBuf)>;
    /// Applies checked resources, and the device rules when given.
    fn apply(
        &self,
        resources: &LinuxResources,
        devices: Option<&[resources::DeviceRule]>,
    ) -> Result<(), CgroupError>;
    /// The directory whose `cgroup.procs` (with the cgroups below it) lists the processes.
    fn procs_dir(&self) -> Option<&Path>;
    /// Usage stats, in runc's `events` shape.
    fn stats(&self) -> Result<stats::Stats, CgroupError>;
    /// How many processes the OOM killer killed in the cgroup (`None`: not counted).
    fn oom_kills(&self) -> Option<u64>;
    /// Kills every process at once where the kernel can (v2 `cgroup.kill`); `false` when it
    /// cannot and the caller must signal each process.
    fn kill_all_atomically(&self) -> Result<bool, CgroupError> {
        Ok(false)
    }
    /// Removes the directories `create` made, deepest first: the container's own cgroups
    /// retrying while busy, created parents only if nothing else lives in them.
    fn destroy(&self) -> Result<(), CgroupError> {
        let leaves: Vec<PathBuf> = self.paths().into_iter().map(|(_, p)| p).collect();
        fsops::remove_created(self.created(), &leaves)
    }
}

/// The implementation in use, tagged in state.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "driver", rename_all = "lowercase")]
enum Manager {
    /// Legacy and hybrid hosts.
    V1(v1::V1Cgroup),
    /// Unified hosts.
    V2(v2::V2Cgroup),
}

impl Manager {
    fn get(&self) -> &dyn CgroupManager {
        match self {
            Manager::V1(m) => m,
            Manager::V2(m) => m,
        }
    }
    fn get_mut(&mut self) -> &mut dyn CgroupManager {
        match self {
            Manager::V1(m) => m,
            Manager::V2(m) => m,
        }
    }
}

/// What a new process needs to join a container's cgroup by itself ([`Cgroup::self_join`]):
/// the cgroup2 directory to be cloned into (`clone3(CLONE_INTO_CGROUP)`; on a hybrid host the
/// one in the controller-less cgroup2 hierarchy), and, opened by the runtime (the kernel checks
/// the opener's credentials), the v1 hierarchies' `tasks` files, to which the new process, while
/// it has a single thread, writes `0` ([`join_v1_tasks`]): a thread moving itself takes no
/// global lock.
#[derive(Debug)]
pub struct SelfJoin {
    /// The cgroup2 directory for `CLONE_INTO_CGROUP`.
    pub clone_into: Option<OwnedFd>,
    /// The v1 `tasks` files, write-only.
    pub tasks: Vec<OwnedFd>,
}

/// In the new process, single-threaded: moves itself into each v1 cgroup of `tasks`
/// ([`SelfJoin::tasks`]) and closes those fds.
pub fn join_v1_tasks(tasks: &[OwnedFd]) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    for fd in tasks {
        nix::unistd::write(fd.as_fd(), b"0")?;
        crate::sys::process::close_inherited(fd.as_fd());
    }
    Ok(())
}

/// The container's cgroup: resolved paths on every hierarchy, serialisable into state.json so
/// that later commands (run from any cgroup) find the same directories and know which of them
/// this container created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    /// The host's layout when the cgroup was resolved.
    mode: Mode,
    /// The cleaned cgroupsPath (or the id, for the default).
    cgroups_path: PathBuf,
    /// The implementation, with its directories.
    #[serde(flatten)]
    manager: Manager,
}

impl Cgroup {
    /// Resolves `linux.cgroupsPath` (absolute, relative, or absent: then the container id as a
    /// relative path) as runc does, against the host's cgroup layout. No side effects.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        Self::resolve_with(&HostInfo::read()?, cgroups_path, id)
    }

    /// [`Cgroup::resolve`] against a given host (the injection point for tests).
    pub fn resolve_with(
        host: &HostInfo,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Self, CgroupError> {
        let layout = host::detect(host)?;
        let own = host::parse_self_cgroup(&host.self_cgroup);
        let given = cgroups_path.map(host::clean_path).unwrap_or_default();
        let inner = if given.as_os_str().is_empty() {
            host::clean_path(Path::new(id))
        } else {
            given
        };
        let manager = match layout.mode {
            Mode::Unified => Manager::V2(v2::V2Cgroup::resolve(&layout, &own, &inner)?),
            Mode::Legacy | Mode::Hybrid => {
                Manager::V1(v1::V1Cgroup::resolve(&layout, &own, &inner)?)
            }
        };
        Ok(Self {
            mode: layout.mode,
            cgroups_path: inner,
            manager,
        })
    }

    /// The host's layout.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether this is a unified (pure v2) host.
    pub fn is_v2(&self) -> bool {
        self.mode == Mode::Unified
    }

    /// The cleaned cgroupsPath the directories were derived from.
    pub fn cgroups_path(&self) -> &Path {
        &self.cgroups_path
    }

    /// (controller, directory) pairs, as runc's `GetPaths`: v1 controllers by name
    /// (`name=systemd` included); the key `""` for the unified directory (the only one on a v2
    /// host; the cgroup2 one on a hybrid host).
    pub fn paths(&self) -> Vec<(String, PathBuf)> {
        self.manager.get().paths()
    }

    /// The directory of `controller` (v1 name, or `""` for the unified one).
    pub fn path(&self, controller: &str) -> Option<PathBuf> {
        self.paths()
            .into_iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p)
    }

    /// The directories [`Cgroup::create`] made, parents first.
    pub fn created(&self) -> &[PathBuf] {
        self.manager.get().created()
    }

    /// Creates the directories (those that do not exist yet; only those are removed later).
    /// On failure, removes again what this call made.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        let before = self.created().len();
        let result = self.manager.get_mut().create();
        if result.is_err() {
            let leaves: Vec<PathBuf> = self.paths().into_iter().map(|(_, p)| p).collect();
            let made = self.manager.get_mut().created_mut();
            // Best effort: the create error is the one to report.
            let _ = fsops::remove_created(&made[before..], &leaves);
            made.truncate(before);
        }
        result
    }

    /// On a v2 (unified) host: an `O_PATH|O_DIRECTORY` fd of the container's cgroup directory
    /// for `clone3(CLONE_INTO_CGROUP)`. `None` on v1 and hybrid hosts, or if the directory
    /// cannot be opened (then [`Cgroup::add_pid`] reports the problem).
    pub fn clone_target(&self) -> Option<OwnedFd> {
        match &self.manager {
            Manager::V2(m) => m.open_dir().ok(),
            Manager::V1(_) => None,
        }
    }

    /// How a new, single-threaded process joins the cgroup by itself, avoiding the write of its
    /// pid to a `cgroup.procs` (which takes the global threadgroup lock for writing: an RCU
    /// grace period, 5-15 ms on v1 here). See [`SelfJoin`].
    pub fn self_join(&self) -> Result<SelfJoin, CgroupError> {
        let (dir, v1_dirs) = match &self.manager {
            Manager::V2(m) => (Some(m.open_dir()?), Vec::new()),
            Manager::V1(m) => (
                m.unified
                    .as_ref()
                    .map(|u| v2::V2Cgroup::open_path(&u.path))
                    .transpose()?,
                m.dirs.iter().map(|d| d.path.as_path()).collect(),
            ),
        };
        let tasks = v1_dirs
            .into_iter()
            .map(|d| {
                let path = d.join("tasks");
                // (std opens with O_CLOEXEC.)
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|source| CgroupError::Io {
                        op: "open",
                        path,
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(SelfJoin {
            clone_into: dir,
            tasks,
        })
    }

    /// Moves `pid` into the cgroup on every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        self.manager.get().add_pid(pid)
    }

    /// The pids in the cgroup (v1: from the devices hierarchy, as runc).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.manager.get().pids()
    }

    /// Freezes every process of the cgroup (`pause`); returns once they all are frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.manager.get().set_frozen(true)
    }

    /// Thaws the cgroup (`resume`).
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.manager.get().set_frozen(false)
    }

    /// Whether the cgroup is frozen (the container is `paused`).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        self.manager.get().is_frozen()
    }

    /// Checks `linux.resources` for this host's cgroup version before anything is made: values
    /// in range, names well formed, nothing the version cannot do, and (v1) every controller a
    /// set field needs is mounted. No side effects.
    pub fn check_resources(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        resources::validate(resources, self.is_v2())?;
        if let Manager::V1(m) = &self.manager {
            apply_v1::check_controllers(m, resources)?;
        }
        let sizes = stats::huge_page_sizes();
        for h in resources.hugepage_limits().iter().flatten() {
            if !sizes.contains(h.page_size()) {
                return Err(CgroupError::Invalid {
                    field: "linux.resources.hugepageLimits.pageSize".to_owned(),
                    reason: format!(
                        "{}: not a huge page size of this host (it has: {})",
                        h.page_size(),
                        sizes.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Applies `linux.resources` to the cgroup (after [`Cgroup::create`], before the process
    /// runs): every set field, and the device rules (deny all, the spec's rules, runc's
    /// default devices; as runc, `linux.devices` nodes need their own rule in the list).
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        resources::validate(resources, self.is_v2())?;
        let rules = resources::device_rules(resources)?;
        self.apply_inner(resources, Some(&rules))
    }

    /// Applies the resources that `update` changes: everything but the device rules (which
    /// `update` does not change; rewriting them would briefly deny every device).
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        resources::validate(resources, self.is_v2())?;
        self.apply_inner(resources, None)
    }

    fn apply_inner(
        &self,
        resources: &LinuxResources,
        rules: Option<&[resources::DeviceRule]>,
    ) -> Result<(), CgroupError> {
        self.manager.get().apply(resources, rules)
    }

    /// Removes the directories this container created (deepest first), retrying while the
    /// kernel says busy; missing ones are fine. Does not kill: the cgroup must be empty.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        self.manager.get().destroy()
    }
}

#[cfg(test)]
mod tests;
