//! The state directory: one directory per container under the runtime root, holding
//! `state.json` (written atomically), a lock file and the exec FIFO.
//!
//! Status is derived from facts, never trusted from the file: see [`Status`] and
//! [`ContainerDir::status`].

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;

/// Errors of the state module.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No container with this id.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A container with this id exists already.
    #[error("container {0} already exists")]
    Exists(String),
    /// The id is not acceptable.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// A file of the state directory could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// state.json is damaged.
    #[error("parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Taking the container's lock failed.
    #[error("lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// Running the user's program.
    Running,
    /// Frozen.
    Paused,
    /// Exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The OCI state of a container, as `state` prints it (runc's field set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The runtime-spec version.
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The init's pid (0 when stopped).
    pub pid: i32,
    /// The status, derived from facts.
    pub status: Status,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// When the container was created (RFC 3339, UTC).
    pub created: String,
    /// The owner (empty for root).
    pub owner: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// What `state.json` holds: the OCI state plus what later commands need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The OCI state as of the last write; `status` there is only a hint.
    #[serde(flatten)]
    pub state: State,
    /// Start time of the init (field 22 of /proc/PID/stat), so a reused pid is not mistaken.
    pub init_start_time: u64,
    /// The container's cgroup.
    pub cgroup: Cgroup,
    /// The bundle's config as it was at create (the defaults of `exec`), kept as JSON text
    /// and parsed only by the commands that need it.
    pub config: StoredConfig,
    /// The config's hooks (`start` and `delete` run some, without parsing the whole config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// cgroup directories `create` was about to make (cleared once it recorded the cgroup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_pending: Vec<std::path::PathBuf>,
    /// Set (for good) before `exec` starts a process that names CAP_SYS_PTRACE in a container
    /// without its own user namespace: from then on the container's processes may open
    /// /proc/PID/exe of a non-dumpable runtime process that joins it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ptrace_granted: bool,
}

/// A container's config kept as the JSON text it was read from: written to and read from
/// state.json without a pass over its structure, parsed on first use.
#[derive(Debug, Clone)]
pub struct StoredConfig {
    raw: Box<serde_json::value::RawValue>,
    parsed: std::cell::OnceCell<oci_spec::runtime::Spec>,
}

impl StoredConfig {
    /// From the text of a config.json (which must be JSON).
    pub fn from_json(text: String) -> Result<Self, serde_json::Error> {
        Ok(Self {
            raw: serde_json::value::RawValue::from_string(text)?,
            parsed: std::cell::OnceCell::new(),
        })
    }

    /// From a parsed config.
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Result<Self, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(spec)?;
        Ok(Self {
            raw,
            parsed: std::cell::OnceCell::from(spec.clone()),
        })
    }

    /// The config, parsed on first use (`path`: the state file, for the error).
    pub fn spec(&self, path: &Path) -> Result<&oci_spec::runtime::Spec, StateError> {
        if let Some(spec) = self.parsed.get() {
            return Ok(spec);
        }
        let spec = serde_json::from_str(self.raw.get()).map_err(|source| StateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self.parsed.get_or_init(|| spec))
    }
}

impl Serialize for StoredConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StoredConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            raw: Box::<serde_json::value::RawValue>::deserialize(d)?,
            parsed: std::cell::OnceCell::new(),
        })
    }
}

/// The file names inside a container's directory.
pub const STATE_FILE: &str = "state.json";
/// The exec FIFO `start` opens.
pub const EXEC_FIFO: &str = "exec.fifo";
const LOCK_FILE: &str = "lock";

/// Checks a container id: non-empty, at most 1024 bytes, `[A-Za-z0-9_+.-]`, not `.`/`..`.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let bad = |reason| {
        Err(StateError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("it is . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b))
    {
        return bad("only letters, digits and _ + . - are allowed");
    }
    Ok(())
}

/// A container's directory in the state root, locked for as long as this value lives.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    _lock: Flock<File>,
}

impl ContainerDir {
    /// Makes the directory of a new container (and the root, 0700, if needed) and locks it.
    pub fn create(root: &Path, id: &str) -> Result<Self, StateError> {
        check_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_err("create state root", root))?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(e) => return Err(io_err("create state directory", &path)(e)),
        }
        Self::lock(id, path, true)
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<Self, StateError> {
        check_id(id)?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(StateError::NotFound(id.to_string()));
        }
        Self::lock(id, path, false)
    }

    /// Locks the directory; only a new container's directory gets its lock file made (an
    /// existing one that lost it is being deleted: re-creating it would leave it behind).
    fn lock(id: &str, path: PathBuf, create: bool) -> Result<Self, StateError> {
        let lock_path = path.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StateError::NotFound(id.to_string()),
                _ => io_err("open", &lock_path)(e),
            })?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, source)| StateError::Lock {
                path: lock_path,
                source,
            })?;
        // The directory may have been deleted while we waited for the lock.
        if !path.join(LOCK_FILE).exists() {
            return Err(StateError::NotFound(id.to_string()));
        }
        Ok(Self {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// In a process cloned while this value is held: drops this process's reference to the
    /// lock without unlocking it, so that the clone does not keep the container locked.
    pub fn release_in_child(&self) {
        use std::os::fd::AsFd;
        crate::sys::process::close_inherited(self._lock.as_fd());
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The exec FIFO's path.
    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Reads state.json.
    pub fn read(&self) -> Result<Record, StateError> {
        let path = self.path.join(STATE_FILE);
        let text = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StateError::NotFound(self.id.clone()),
            _ => io_err("read", &path)(e),
        })?;
        serde_json::from_slice(&text).map_err(|source| StateError::Parse { path, source })
    }

    /// Writes state.json atomically (temporary file, rename).
    pub fn write(&self, record: &Record) -> Result<(), StateError> {
        let path = self.path.join(STATE_FILE);
        let tmp = self.path.join(".state.json.tmp");
        let text = serde_json::to_vec(record).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        // No fsync: the state lives as long as the machine's processes do (/run is volatile);
        // the rename alone keeps readers from ever seeing a torn file.
        f.write_all(&text).map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))
    }

    /// Removes the directory and everything in it (the lock goes with it).
    pub fn remove(self) -> Result<(), StateError> {
        // Renamed first, under the lock, so that no other command finds a half-removed
        // directory (list skips dot names).
        let tomb = self
            .path
            .with_file_name(format!(".{}.deleted-{}", self.id, std::process::id()));
        fs::rename(&self.path, &tomb).map_err(io_err("rename", &self.path))?;
        fs::remove_dir_all(&tomb).map_err(io_err("remove", &tomb))
    }

    /// Removes what an interrupted `create` left of container `id`: a directory with no
    /// state.json (or no lock file yet). Nothing to remove is not an error.
    pub fn remove_remains(root: &Path, id: &str) -> Result<(), StateError> {
        check_id(id)?;
        let path = root.join(id);
        if !path.is_dir() {
            return Ok(());
        }
        match Self::open(root, id) {
            Ok(dir) if !dir.path.join(STATE_FILE).exists() => dir.remove(),
            Ok(_) => Ok(()),
            Err(StateError::NotFound(_)) if !path.join(LOCK_FILE).exists() => {
                fs::remove_dir_all(&path).map_err(io_err("remove", &path))
            }
            Err(StateError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The status derived from facts: is the init alive with the recorded start time, is it
    /// a zombie, does the exec FIFO still exist.
    pub fn status(&self, record: &Record) -> Status {
        if record.state.status == Status::Creating {
            return Status::Creating;
        }
        if !init_alive(record.state.pid, record.init_start_time) {
            return Status::Stopped;
        }
        if self.fifo_path().exists() {
            Status::Created
        } else if record.cgroup.is_frozen().unwrap_or(false) {
            Status::Paused
        } else {
            Status::Running
        }
    }
}

/// Whether `pid` runs, is not a zombie and started at `start_time`.
pub fn init_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some((state, start)) => state != 'Z' && state != 'X' && start == start_time,
        None => false,
    }
}

/// The state letter and start time (field 22) of /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3; field 22 is 19 further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The ids of the containers under `root` (sorted); an absent root has none.
pub fn list_ids(root: &Path) -> Result<Vec<String>, StateError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read", root)(e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The current time as RFC 3339 in UTC with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_config_keeps_the_text_and_parses_on_demand() {
        let text = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"hostname":"h"}"#;
        let c = StoredConfig::from_json(text.to_string()).unwrap();
        let out = serde_json::to_string(&c).unwrap();
        assert_eq!(out, text);
        let back: StoredConfig = serde_json::from_str(&out).unwrap();
        let spec = back.spec(Path::new("/x/state.json")).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("h"));
        // Valid JSON that is no config: an error naming the state file, not a panic.
        let bad: StoredConfig = serde_json::from_str(r#"{"root":42}"#).unwrap();
        let e = bad.spec(Path::new("/x/state.json")).unwrap_err();
        assert!(e.to_string().contains("/x/state.json"), "{e}");
    }

    #[test]
    fn ids() {
        for ok in ["a", "abc-1_2.3+x", "A"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn own_stat() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let (state, start) = proc_stat(pid).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(init_alive(pid, start));
        assert!(!init_alive(pid, start + 1));
    }

    #[test]
    fn dir_lifecycle() {
        let root = tempfile::tempdir().unwrap();
        let dir = ContainerDir::create(root.path(), "c1").unwrap();
        assert!(matches!(
            ContainerDir::create(root.path(), "c1"),
            Err(StateError::Exists(_))
        ));
        drop(dir);
        assert!(matches!(
            ContainerDir::open(root.path(), "nope"),
            Err(StateError::NotFound(_))
        ));
        let dir = ContainerDir::open(root.path(), "c1").unwrap();
        dir.remove().unwrap();
        assert!(list_ids(root.path()).unwrap().is_empty());
    }
}
