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
