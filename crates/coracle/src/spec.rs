//! Loading `config.json` and converting it, once, into a checked [`Config`].
//!
//! Every check that can reject a bundle runs here, before `create` has any side effect.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::capabilities::{Capabilities, CapsError};
use crate::namespaces::{NamespaceError, Namespaces};
use crate::rlimits::{RlimitError, Rlimits};
use crate::rootfs::{RootfsError, RootfsPlan};
use crate::user::{User, UserError};

/// Errors found while loading or checking a bundle.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// config.json could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// config.json is not a valid OCI runtime config.
    #[error("parse {path}: {field}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON path of the field that failed (`.` for the document).
        field: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// `ociVersion` is not one this runtime supports.
    #[error("ociVersion {0:?} is not supported (1.0.x to 1.3.x)")]
    Version(String),
    /// A field is missing or has a value the runtime cannot accept.
    #[error("{field}: {reason}")]
    Invalid {
        /// The JSON path of the field, e.g. `process.cwd`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The root filesystem path does not exist.
    #[error("root.path {path}: {source}")]
    Rootfs {
        /// The path, as resolved against the bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The namespaces are invalid.
    #[error(transparent)]
    Namespaces(#[from] NamespaceError),
    /// The mounts or filesystem settings are invalid.
    #[error(transparent)]
    Mounts(#[from] RootfsError),
    /// `process.user` is invalid.
    #[error(transparent)]
    User(#[from] UserError),
    /// `process.capabilities` is invalid.
    #[error(transparent)]
    Capabilities(#[from] CapsError),
    /// `process.rlimits` is invalid.
    #[error(transparent)]
    Rlimits(#[from] RlimitError),
    /// `linux.seccomp` is invalid.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `process`, checked: what the container's first process runs and as whom.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// `args`, non-empty, as C strings.
    pub args: Vec<CString>,
    /// `env` as C strings (`KEY=value`).
    pub env: Vec<CString>,
    /// `cwd`, absolute.
    pub cwd: PathBuf,
    /// `terminal`.
    pub terminal: bool,
    /// `consoleSize` as (height, width).
    pub console_size: Option<(u16, u16)>,
    /// `user`.
    pub user: User,
    /// `capabilities`.
    pub capabilities: Capabilities,
    /// `rlimits`.
    pub rlimits: Rlimits,
    /// `noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `oomScoreAdj`.
    pub oom_score_adj: Option<i32>,
}

impl ProcessConfig {
    /// Checks an OCI `process` object (from config.json, or process.json for `exec`).
    pub fn from_spec(process: &oci_spec::runtime::Process) -> Result<Self, SpecError> {
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(invalid("process.args", "must name a program to run"));
        }
        let args = to_cstrings("process.args", &args)?;
        let env = process.env().clone().unwrap_or_default();
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                return Err(invalid(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=value"),
                ));
            }
        }
        let env = to_cstrings("process.env", &env)?;
        let cwd = process.cwd().clone();
        if !cwd.is_absolute() {
            return Err(invalid(
                "process.cwd",
                format!("{} is not an absolute path", cwd.display()),
            ));
        }
        if let Some(adj) = process.oom_score_adj() {
            if !(-1000..=1000).contains(&adj) {
                return Err(invalid(
                    "process.oomScoreAdj",
                    format!("{adj} is outside -1000..1000"),
                ));
            }
        }
        Ok(Self {
            args,
            env,
            cwd,
            terminal: process.terminal().unwrap_or(false),
            console_size: process
                .console_size()
                .map(|b| (clamp_u16(b.height()), clamp_u16(b.width()))),
            user: User::from_spec(process)?,
            capabilities: Capabilities::from_spec(process)?,
            rlimits: Rlimits::from_spec(process)?,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            oom_score_adj: process.oom_score_adj(),
        })
    }
}

fn clamp_u16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn to_cstrings(field: &str, items: &[String]) -> Result<Vec<CString>, SpecError> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            CString::new(s.as_bytes())
                .map_err(|_| invalid(format!("{field}[{i}]"), "contains a NUL byte"))
        })
        .collect()
}

/// A bundle's `config.json`, checked and converted into what the runtime acts on.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute and canonical.
    pub rootfs: PathBuf,
    /// The spec as read, for hooks, annotations and the state.
    pub spec: Spec,
    /// The first process.
    pub process: ProcessConfig,
    /// Namespaces to create or join, id mappings, time offsets.
    pub namespaces: Namespaces,
    /// Mounts, devices, masked and read-only paths.
    pub rootfs_plan: RootfsPlan,
    /// `linux.cgroupsPath`.
    pub cgroups_path: Option<PathBuf>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `domainname`.
    pub domainname: Option<String>,
    /// `linux.sysctl`, sorted by key.
    pub sysctl: Vec<(String, String)>,
    /// `linux.seccomp`, compiled.
    pub seccomp: Option<crate::seccomp::Program>,
    /// The text of config.json as read ([`Config::load`]; `None` when made from a [`Spec`]),
    /// kept in the container's state as it is.
    pub json: Option<String>,
}

impl Config {
    /// Reads `<bundle>/config.json` and checks it.
    pub fn load(bundle: &Path) -> Result<Self, SpecError> {
        let bundle = std::path::absolute(bundle).map_err(|source| SpecError::Read {
            path: bundle.to_path_buf(),
            source,
        })?;
        let path = bundle.join("config.json");
        let text = std::fs::read(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        let spec = parse_spec(&text).map_err(|(field, source)| SpecError::Parse {
            path,
            field,
            source,
        })?;
        let mut config = Self::from_spec(spec, &bundle)?;
        // It parsed, so it is UTF-8 JSON.
        config.json = String::from_utf8(text).ok();
        Ok(config)
    }

    /// Checks `spec`, whose relative paths are relative to `bundle`.
    pub fn from_spec(spec: Spec, bundle: &Path) -> Result<Self, SpecError> {
        check_version(spec.version())?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| invalid("root", "is missing"))?;
        let root_path = bundle.join(root.path());
        let rootfs = std::fs::canonicalize(&root_path).map_err(|source| SpecError::Rootfs {
            path: root_path.clone(),
            source,
        })?;
        if !rootfs.is_dir() {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("process", "is missing"))?;
        let process = ProcessConfig::from_spec(process)?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| invalid("linux", "is missing"))?;
        let namespaces = Namespaces::from_spec(linux)?;
        let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
        let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
        if (hostname.is_some() || domainname.is_some()) && !namespaces.creates_uts() {
            return Err(invalid("hostname", "needs a new uts namespace"));
        }
        let mut sysctl: Vec<(String, String)> = linux
            .sysctl()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        sysctl.sort();
        for (key, _) in &sysctl {
            if key.is_empty() || key.contains("..") || key.starts_with(['/', '.']) {
                return Err(invalid(
                    format!("linux.sysctl[{key:?}]"),
                    "is not a sysctl name",
                ));
            }
            check_sysctl_namespace(key, &namespaces)?;
        }
        let cgroups_path = linux.cgroups_path().clone();
        if let Some(p) = &cgroups_path {
            if p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(invalid(
                    "linux.cgroupsPath",
                    format!("{} contains ..", p.display()),
                ));
            }
        }
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            if !m.destination().is_absolute() {
                let shown = m.destination().display();
                return Err(invalid(
                    format!("mounts[{i}].destination"),
                    format!("{shown} is not an absolute path"),
                ));
            }
        }
        let rootfs_plan = RootfsPlan::from_spec_in_bundle(&spec, &rootfs, bundle)?;
        let seccomp = compile_seccomp(linux)?;
        Ok(Self {
            bundle: bundle.to_path_buf(),
            rootfs,
            process,
            namespaces,
            rootfs_plan,
            cgroups_path,
            hostname,
            domainname,
            sysctl,
            seccomp,
            json: None,
            spec,
        })
    }
}

/// Compiles `linux.seccomp`, if any.
pub fn compile_seccomp(
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<crate::seccomp::Program>, SpecError> {
    Ok(linux
        .seccomp()
        .as_ref()
        .map(crate::seccomp::Program::from_spec)
        .transpose()?)
}

/// Parses a config.json (or a process.json, with `T = Process`), ignoring capability names this
/// runtime does not know (as runc does). A failure names the JSON path of the field.
pub fn parse_spec<T: serde::de::DeserializeOwned>(
    text: &[u8],
) -> Result<T, (String, serde_json::Error)> {
    // Straight from the bytes first; only a config that fails (e.g. an unknown capability)
    // pays for the detour through a JSON tree.
    let mut direct = serde_json::Deserializer::from_slice(text);
    if let Ok(spec) = T::deserialize(&mut direct) {
        if direct.end().is_ok() {
            return Ok(spec);
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| (".".to_string(), e))?;
    let process = if value.get("args").is_some() && value.get("ociVersion").is_none() {
        Some(&mut value)
    } else {
        value.get_mut("process")
    };
    if let Some(process) = process {
        crate::capabilities::strip_unknown_capabilities(process);
    }
    serde_path_to_error::deserialize(value).map_err(|e| (e.path().to_string(), e.into_inner()))
}

/// A sysctl may only be set in a namespace of the container's own, never host-wide (runc's
/// rules): IPC ones need an ipc namespace, `net.*` a network namespace, host and domain name
/// a uts namespace; any other is refused.
fn check_sysctl_namespace(key: &str, ns: &Namespaces) -> Result<(), SpecError> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let needs = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        T::Ipc
    } else if key.starts_with("net.") {
        T::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        T::Uts
    } else {
        return Err(invalid(
            format!("linux.sysctl[{key:?}]"),
            "is not in a namespace of the container's own",
        ));
    };
    if !ns.has(needs) {
        return Err(invalid(
            format!("linux.sysctl[{key:?}]"),
            format!("needs a {needs} namespace"),
        ));
    }
    Ok(())
}

/// Accepts 1.0.x through 1.3.x (with pre-release suffixes such as `1.0.2-dev`).
fn check_version(version: &str) -> Result<(), SpecError> {
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(1), Some(0..=3)) => Ok(()),
        _ => Err(SpecError::Version(version.to_string())),
    }
}

/// The template config.json `coracle spec` writes: runc's (with a cgroup namespace), or its
/// rootless variant (a user namespace mapping the caller, no network namespace, no cgroup mount,
/// /sys bound from the host). Tests and benchmarks start from it too.
pub fn template(rootless: bool) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = serde_json::json!({
        "ociVersion": crate::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "coracle",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if rootless {
        // As runc: a user namespace mapping the caller, no network namespace, no cgroup
        // mount, /sys bound from the host.
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "cgroup"}, {"type": "user"}
        ]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            mounts.retain(|m| m["type"] != "cgroup" && m["destination"] != "/dev/mqueue");
            for m in mounts.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if m["destination"] == "/dev/pts" {
                    if let Some(opts) = m["options"].as_array_mut() {
                        opts.retain(|o| o != "gid=5");
                    }
                }
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_valid_spec() {
        for rootless in [false, true] {
            let spec: Spec = serde_json::from_value(super::template(rootless)).unwrap();
            assert!(spec.linux().is_some());
            let args = spec.process().as_ref().and_then(|p| p.args().clone());
            assert_eq!(args, Some(vec!["sh".to_string()]));
        }
    }

    #[test]
    fn versions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2.0.0", "1.4.0", "0.9", "x"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
