//! Which namespaces a container creates and which it joins, in which order; id mappings and
//! time offsets.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};

/// Errors of the namespaces module.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// A namespace type appears twice in `linux.namespaces`.
    #[error("linux.namespaces: {0} appears twice")]
    Duplicate(String),
    /// A namespace path cannot be opened or is not a namespace of that type.
    #[error("linux.namespaces: {kind} path {path}: {reason}")]
    Path {
        /// The namespace type.
        kind: String,
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Mappings or offsets are given without their namespace, or are malformed.
    #[error("{field}: {reason}")]
    Invalid {
        /// The JSON field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A system call on namespaces failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was done.
        op: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// setns failed.
    #[error("setns {kind} ({path}): {source}")]
    Setns {
        /// The namespace type.
        kind: String,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// One namespace of the container: its type and, when it is joined, the open namespace file.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// The type.
    pub kind: LinuxNamespaceType,
    /// The namespace to join, or `None` to create a new one.
    pub join: Option<(PathBuf, std::sync::Arc<File>)>,
}

/// `linux.namespaces`, `uidMappings`, `gidMappings`, `timeOffsets`, checked.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    /// The namespaces, in config order.
    pub list: Vec<Namespace>,
    /// uid mappings for a new user namespace.
    pub uid_mappings: Vec<LinuxIdMapping>,
    /// gid mappings for a new user namespace.
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// `linux.timeOffsets` rendered as lines for /proc/self/timens_offsets.
    pub time_offsets: String,
}

/// The order in which joined namespaces are entered: user first (it grants the rights to join
/// the others), mount last (after it the paths of the host are gone).
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// The `CLONE_NEW*` flag of a namespace type.
pub fn clone_flag(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of the namespace's file under /proc/PID/ns.
pub fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

impl Namespaces {
    /// Checks `linux.namespaces` and the mappings; opens every namespace to be joined, so that a
    /// bad path fails before anything is made.
    pub fn from_spec(linux: &Linux) -> Result<Self, NamespaceError> {
        let mut list: Vec<Namespace> = Vec::new();
        for ns in linux.namespaces().clone().unwrap_or_default() {
            let kind = ns.typ();
            if list.iter().any(|n| n.kind == kind) {
                return Err(NamespaceError::Duplicate(kind.to_string()));
            }
            let join = match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => Some((
                    path.clone(),
                    std::sync::Arc::new(open_namespace(kind, path)?),
                )),
                _ => None,
            };
            list.push(Namespace { kind, join });
        }
        let mut me = Self {
            list,
            uid_mappings: linux.uid_mappings().clone().unwrap_or_default(),
            gid_mappings: linux.gid_mappings().clone().unwrap_or_default(),
            time_offsets: String::new(),
        };
        let new_user = me.creates(LinuxNamespaceType::User);
        if !new_user && (!me.uid_mappings.is_empty() || !me.gid_mappings.is_empty()) {
            return Err(NamespaceError::Invalid {
                field: "linux.uidMappings",
                reason: "mappings need a new user namespace".into(),
            });
        }
        if new_user && (me.uid_mappings.is_empty() || me.gid_mappings.is_empty()) {
            return Err(NamespaceError::Invalid {
                field: "linux.uidMappings",
                reason: "a new user namespace needs uidMappings and gidMappings".into(),
            });
        }
        if let Some(offsets) = linux.time_offsets() {
            if !me.creates(LinuxNamespaceType::Time) {
                return Err(NamespaceError::Invalid {
                    field: "linux.timeOffsets",
                    reason: "offsets need a new time namespace".into(),
                });
            }
            let mut keys: Vec<_> = offsets.keys().collect();
            keys.sort();
            for clock in keys {
                let off = &offsets[clock];
                let name = match clock.as_str() {
                    "monotonic" | "boottime" => clock.as_str(),
                    other => {
                        return Err(NamespaceError::Invalid {
                            field: "linux.timeOffsets",
                            reason: format!("unknown clock {other:?}"),
                        })
                    }
                };
                me.time_offsets.push_str(&format!(
                    "{name} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
        }
        Ok(me)
    }

    /// Whether a new namespace of `kind` is created.
    pub fn creates(&self, kind: LinuxNamespaceType) -> bool {
        self.list.iter().any(|n| n.kind == kind && n.join.is_none())
    }

    /// Whether the container has a namespace of `kind` of its own (new or joined).
    pub fn has(&self, kind: LinuxNamespaceType) -> bool {
        self.list.iter().any(|n| n.kind == kind)
    }

    /// Whether a new uts namespace is created.
    pub fn creates_uts(&self) -> bool {
        self.creates(LinuxNamespaceType::Uts)
    }

    /// The flags for the clone of the container process: every new namespace except time,
    /// which the parent unshares itself (its offsets must be written before a process enters),
    /// and cgroup, which the child unshares once it is in its cgroup.
    pub fn clone_flags(&self) -> CloneFlags {
        self.list
            .iter()
            .filter(|n| n.join.is_none())
            .filter(|n| {
                !matches!(
                    n.kind,
                    LinuxNamespaceType::Time | LinuxNamespaceType::Cgroup
                )
            })
            .fold(CloneFlags::empty(), |acc, n| acc | clone_flag(n.kind))
    }

    /// The namespace to join of `kind`, if any.
    pub fn joined(&self, kind: LinuxNamespaceType) -> Option<&Namespace> {
        self.list
            .iter()
            .find(|n| n.kind == kind && n.join.is_some())
    }

    /// Enters the joined namespaces except those in `skip`, in [`JOIN_ORDER`].
    pub fn enter_joined(&self, skip: &[LinuxNamespaceType]) -> Result<(), NamespaceError> {
        for kind in JOIN_ORDER {
            if skip.contains(&kind) {
                continue;
            }
            if let Some(Namespace {
                join: Some((path, file)),
                ..
            }) = self.joined(kind)
            {
                nix::sched::setns(file.as_fd(), clone_flag(kind)).map_err(|source| {
                    NamespaceError::Setns {
                        kind: kind.to_string(),
                        path: path.clone(),
                        source,
                    }
                })?;
            }
        }
        Ok(())
    }
}

fn open_namespace(
    kind: LinuxNamespaceType,
    path: &std::path::Path,
) -> Result<File, NamespaceError> {
    let err = |reason: String| NamespaceError::Path {
        kind: kind.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let st = nix::sys::statfs::fstatfs(&file).map_err(|e| err(e.to_string()))?;
    if st.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(err("is not a namespace file".into()));
    }
    Ok(file)
}

/// Renders id mappings as the lines of /proc/PID/uid_map.
pub fn render_mappings(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn sys_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> NamespaceError {
    let op = op.into();
    move |source| NamespaceError::Sys { op, source }
}

fn nix_err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> NamespaceError {
    let op = op.into();
    move |e| NamespaceError::Sys {
        op,
        source: e.into(),
    }
}

/// Changes a "for children" namespace (pid, time) of the calling process for one clone, and
/// puts the old one back when dropped, so that an embedding program is left as it was.
pub(crate) struct ForChildren {
    saved: Vec<(File, nix::sched::CloneFlags)>,
}

impl ForChildren {
    /// Saves the current "for children" namespace of `kind` before it is changed.
    fn save(&mut self, kind: LinuxNamespaceType) -> Result<(), NamespaceError> {
        let own = format!(
            "/proc/self/ns/{}_for_children",
            crate::namespaces::proc_name(kind)
        );
        let saved = File::open(&own).map_err(sys_err(format!("open {own}")))?;
        self.saved.push((saved, clone_flag(kind)));
        Ok(())
    }

    /// For `create`: the pid and time namespaces joined by path, or a new time namespace with
    /// its offsets written.
    pub(crate) fn for_create(config: &crate::spec::Config) -> Result<Self, NamespaceError> {
        let ns = &config.namespaces;
        let mut me = Self { saved: Vec::new() };
        for kind in [LinuxNamespaceType::Pid, LinuxNamespaceType::Time] {
            let joined = ns.joined(kind).and_then(|n| n.join.as_ref());
            let new_time = kind == LinuxNamespaceType::Time && ns.creates(kind);
            if joined.is_none() && !new_time {
                continue;
            }
            me.save(kind)?;
            if let Some((path, f)) = joined {
                nix::sched::setns(f.as_fd(), clone_flag(kind))
                    .map_err(nix_err(format!("setns {kind} {}", path.display())))?;
            } else {
                nix::sched::unshare(clone_flag(kind)).map_err(nix_err("unshare time namespace"))?;
                std::fs::write("/proc/self/timens_offsets", &ns.time_offsets).map_err(sys_err(
                    "linux.timeOffsets: write /proc/self/timens_offsets",
                ))?;
            }
        }
        Ok(me)
    }

    /// For `exec`: the pid and time namespaces of the process `pid`, where they differ from ours.
    pub(crate) fn for_exec(pid: i32) -> Result<Self, NamespaceError> {
        let mut me = Self { saved: Vec::new() };
        for kind in [LinuxNamespaceType::Pid, LinuxNamespaceType::Time] {
            let name = crate::namespaces::proc_name(kind);
            let theirs = format!("/proc/{pid}/ns/{name}");
            let mine = format!("/proc/self/ns/{name}_for_children");
            let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&mine)) else {
                continue;
            };
            use std::os::unix::fs::MetadataExt;
            if a.ino() == b.ino() && a.dev() == b.dev() {
                continue;
            }
            let f = File::open(&theirs).map_err(sys_err(format!("open {theirs}")))?;
            me.save(kind)?;
            nix::sched::setns(f.as_fd(), clone_flag(kind))
                .map_err(nix_err(format!("setns {theirs}")))?;
        }
        Ok(me)
    }
}

impl Drop for ForChildren {
    fn drop(&mut self) {
        for (file, flag) in self.saved.drain(..).rev() {
            // Deliberately swallowed: nothing sensible to do if the old namespace is gone.
            let _ = nix::sched::setns(file.as_fd(), flag);
        }
    }
}

/// How the uid/gid maps of a new user namespace get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdMapper {
    /// We are root: write them.
    Direct,
    /// Unprivileged, mapping only our own ids: write them after denying setgroups.
    DenySetgroups,
    /// Unprivileged, several ids: through the setuid helpers newuidmap/newgidmap.
    Helpers,
}

impl IdMapper {
    pub(crate) fn for_config(ns: &Namespaces) -> Self {
        if nix::unistd::geteuid().is_root() {
            return Self::Direct;
        }
        let own = |maps: &[oci_spec::runtime::LinuxIdMapping], id: u32| {
            maps.len() == 1 && maps[0].host_id() == id && maps[0].size() == 1
        };
        if own(&ns.uid_mappings, nix::unistd::geteuid().as_raw())
            && own(&ns.gid_mappings, nix::unistd::getegid().as_raw())
        {
            Self::DenySetgroups
        } else {
            Self::Helpers
        }
    }

    /// Whether the container process may call setgroups.
    pub(crate) fn allows_setgroups(self) -> bool {
        self != Self::DenySetgroups
    }

    pub(crate) fn write(self, pid: i32, ns: &Namespaces) -> Result<(), NamespaceError> {
        let maps = [
            ("uid_map", "uidMappings", "newuidmap", &ns.uid_mappings),
            ("gid_map", "gidMappings", "newgidmap", &ns.gid_mappings),
        ];
        if self == Self::DenySetgroups {
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").map_err(sys_err(format!("write {path}")))?;
        }
        for (file, field, helper, list) in maps {
            if self == Self::Helpers {
                let mut cmd = std::process::Command::new(helper);
                cmd.arg(pid.to_string());
                for m in list.iter() {
                    cmd.args([
                        m.container_id().to_string(),
                        m.host_id().to_string(),
                        m.size().to_string(),
                    ]);
                }
                let out = cmd
                    .output()
                    .map_err(sys_err(format!("linux.{field}: run {helper}")))?;
                if !out.status.success() {
                    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
                    return Err(sys_err(format!("linux.{field}: {helper}"))(
                        std::io::Error::other(why),
                    ));
                }
                continue;
            }
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, render_mappings(list))
                .map_err(sys_err(format!("linux.{field}: write {path}")))?;
        }
        Ok(())
    }
}

/// Whether the calling process runs in the initial user namespace (its uid map is the
/// identity over all ids). A runtime started inside a user namespace (rootless podman) is
/// treated as rootless even when its uid there is 0.
pub fn in_initial_user_ns() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields == ["0", "0", "4294967295"]
        }
        Err(_) => true,
    }
}

/// Whether the runtime lacks host privileges: not root, or root only inside a user namespace.
pub fn is_rootless() -> bool {
    !nix::unistd::geteuid().is_root() || !in_initial_user_ns()
}

/// Whether setgroups is allowed in the user namespace the runtime runs in (a rootless engine
/// may have denied it for its namespace).
pub fn setgroups_allowed_here() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}
