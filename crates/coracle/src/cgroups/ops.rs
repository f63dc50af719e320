//! The container-level cgroup operations behind `update`, `ps` and `events`: the resources a
//! container has now (persisted by `update` in `resources.json` beside state.json), its
//! processes (every pid in its cgroup tree) and its usage stats.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use super::fsops::read_pids;
use super::stats::Stats;
use super::{resources, Cgroup, CgroupError};
use crate::container::ContainerError;
use crate::state::Status;
use crate::{Container, Error};

/// The file, in the container's state directory, holding the resources after `update`.
pub const RESOURCES_FILE: &str = "resources.json";

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One line of `events`, as runc prints it: `{"type":"stats","id":...,"data":{...}}` or
/// `{"type":"oom","id":...}`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `stats` or `oom`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The container id.
    pub id: String,
    /// The stats, for a `stats` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Cgroup {
    /// Every pid in the cgroup and the cgroups below it (runc's `GetAllPids`), sorted.
    pub fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(top) = self.manager.get().procs_dir().map(Path::to_path_buf) else {
            return Ok(Vec::new());
        };
        let mut pids = Vec::new();
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            match read_pids(&dir) {
                Ok(p) => pids.extend(p),
                // A sub-cgroup removed while we walk is fine.
                Err(CgroupError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The cgroup's usage, in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        self.manager.get().stats()
    }

    /// How many processes the kernel's OOM killer killed in the cgroup (`None`: not counted
    /// or no memory controller).
    pub fn oom_kills(&self) -> Option<u64> {
        self.manager.get().oom_kills()
    }

    /// Sends `signal` to every process of the cgroup (`kill --all`). On v2, SIGKILL goes
    /// through `cgroup.kill` where the kernel has it (atomic: forks racing the kill die too).
    /// Otherwise, as runc: freeze, signal every pid, thaw (so that no fork escapes the list);
    /// a paused cgroup stays paused unless the signal is SIGKILL (frozen tasks cannot die).
    pub fn signal_all(&self, signal: nix::sys::signal::Signal) -> Result<(), CgroupError> {
        use nix::sys::signal::Signal;
        if signal == Signal::SIGKILL && self.manager.get().kill_all_atomically()? {
            return Ok(());
        }
        let was_frozen = self.is_frozen().unwrap_or(false);
        // Best effort: without a freezer the signals still go out.
        let froze = !was_frozen && self.freeze().is_ok();
        let result = self.all_pids().and_then(|pids| {
            pids.into_iter().try_for_each(|pid| {
                match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
                    // A process may exit between listing and signalling.
                    Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
                    Err(e) => Err(CgroupError::Kill {
                        pid,
                        source: e.into(),
                    }),
                }
            })
        });
        if froze || (was_frozen && signal == Signal::SIGKILL) {
            self.thaw()?;
        }
        result
    }
}

/// The resources file of the container `id` under the state root `root`.
fn resources_path(root: &Path, id: &str) -> PathBuf {
    root.join(id).join(RESOURCES_FILE)
}

impl Container {
    /// The container's resources now: what the last `update` stored, else the bundle's
    /// `linux.resources` at create. `root` is the state root the container was loaded from.
    pub fn resources(&self, root: &Path) -> Result<LinuxResources, Error> {
        let path = resources_path(root, self.id());
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(
                    serde_json::from_slice(&bytes).map_err(|source| CgroupError::Json {
                        op: "parse resources.json",
                        source,
                    })?,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self
                .config()?
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone())
                .unwrap_or_default()),
            Err(e) => Err(io("read", &path)(e).into()),
        }
    }

    /// `update`: merges `patch` (every field it sets) into the current resources, checks the
    /// result, applies it (devices excepted) and stores it. Returns the new resources.
    pub fn update(&self, root: &Path, patch: &LinuxResources) -> Result<LinuxResources, Error> {
        let status = self.status();
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(ContainerError::WrongStatus {
                id: self.id().to_owned(),
                status,
                op: "update",
            }
            .into());
        }
        let old = self.resources(root)?;
        let merged = resources::merge(&old, patch)?;
        self.cgroup().check_resources(&merged)?;
        if let Err(e) = self.cgroup().update(&merged) {
            // As runc: put back what was there (best effort), so that resources.json and the
            // cgroup agree; the first error is the one to report.
            let _ = self.cgroup().update(&old);
            return Err(e.into());
        }
        let path = resources_path(root, self.id());
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec(&merged).map_err(|source| CgroupError::Json {
            op: "serialise resources",
            source,
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        Ok(merged)
    }

    /// The pids of every process in the container's cgroup (`ps`).
    pub fn processes(&self) -> Result<Vec<i32>, Error> {
        Ok(self.cgroup().all_pids()?)
    }

    /// One `stats` event (`events --stats`); refused when the container is stopped.
    pub fn stats_event(&self) -> Result<Event, Error> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(ContainerError::WrongStatus {
                id: self.id().to_owned(),
                status,
                op: "get stats",
            }
            .into());
        }
        Ok(Event {
            kind: "stats",
            id: self.id().to_owned(),
            data: Some(self.cgroup().stats()?),
        })
    }
}
