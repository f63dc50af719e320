//! The container process's capability sets (`process.capabilities`).
//!
//! [`Capabilities::from_spec`] (parent side) maps the five OCI sets onto [`caps::CapsHashSet`]s,
//! skipping, as runc does, capabilities that the running kernel does not know and ambient
//! capabilities the kernel could never raise (not both permitted and inheritable). The child then
//! applies the plan through [`crate::user::switch`], which calls, in runc's order,
//! [`Capabilities::check_available`], [`Capabilities::drop_bounding`],
//! [`Capabilities::set_base`] and [`Capabilities::set_ambient`].
//!
//! The inheritable and ambient sets are exactly what the config asks, never more
//! (CVE-2022-29162): both are set from the config's lists, the ambient set after being cleared.

use std::fmt;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capability as OciCap, Process};

use crate::sys::creds::{self, CapSets};

/// Where the kernel publishes the highest capability number it knows.
pub const CAP_LAST_CAP_PATH: &str = "/proc/sys/kernel/cap_last_cap";

/// Errors of the capabilities module.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    /// `/proc/sys/kernel/cap_last_cap` could not be read.
    #[error("read {path}: {source}")]
    LastCapRead {
        /// The file.
        path: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// `/proc/sys/kernel/cap_last_cap` does not hold a number.
    #[error("{path}: {value:?} is not a capability number")]
    LastCapParse {
        /// The file.
        path: &'static str,
        /// What it held.
        value: String,
    },
    /// The config asks for capabilities that the runtime's process does not hold, so the kernel
    /// would refuse them (EPERM).
    #[error(
        "process.capabilities.{set} asks for {}, which the runtime does not hold (not in its {held} set)",
        names(.capabilities)
    )]
    NotAvailable {
        /// The config's set (`effective`, `permitted`, ...).
        set: &'static str,
        /// The capabilities that are missing.
        capabilities: Vec<Capability>,
        /// Which of our own sets lacks them.
        held: &'static str,
    },
    /// A capability system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was done.
        op: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A capability operation of the `caps` crate failed.
    #[error("{op}: {source}")]
    Caps {
        /// What was done.
        op: String,
        /// Why it failed.
        #[source]
        source: caps::errors::CapsError,
    },
}

fn names(caps: &[Capability]) -> String {
    caps.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A capability named in the config but left out of the plan (runc warns about these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The config's set (`bounding`, `ambient`, ...).
    pub set: &'static str,
    /// The capability.
    pub capability: Capability,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why a capability was left out of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its number is above the kernel's `cap_last_cap`.
    UnknownToKernel,
    /// An ambient capability that is not both permitted and inheritable: the kernel refuses to
    /// raise it.
    AmbientNotPermittedAndInheritable,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            SkipReason::UnknownToKernel => "unknown to the running kernel",
            SkipReason::AmbientNotPermittedAndInheritable => {
                "not in both the permitted and the inheritable set"
            }
        };
        write!(
            f,
            "process.capabilities.{}: {} is {why}; ignored",
            self.set, self.capability
        )
    }
}

/// `process.capabilities`, checked: the five sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The bounding set: everything else is dropped from it.
    pub bounding: CapsHashSet,
    /// The effective set.
    pub effective: CapsHashSet,
    /// The inheritable set.
    pub inheritable: CapsHashSet,
    /// The permitted set.
    pub permitted: CapsHashSet,
    /// The ambient set.
    pub ambient: CapsHashSet,
    /// Capabilities of the config left out of the sets above (for the caller to warn about).
    pub skipped: Vec<Skipped>,
}

/// Whether any set of `process.capabilities` names CAP_SYS_PTRACE (as root, a capability of
/// the inheritable set alone is enough to gain it at execve).
pub fn names_sys_ptrace(process: &Process) -> bool {
    let Some(c) = process.capabilities() else {
        return false;
    };
    [
        c.bounding(),
        c.effective(),
        c.inheritable(),
        c.permitted(),
        c.ambient(),
    ]
    .into_iter()
    .flatten()
    .any(|set| set.contains(&OciCap::SysPtrace))
}

/// Maps oci-spec's capability names onto the `caps` crate's.
pub fn to_caps(cap: OciCap) -> Capability {
    use Capability as C;
    match cap {
        OciCap::AuditControl => C::CAP_AUDIT_CONTROL,
        OciCap::AuditRead => C::CAP_AUDIT_READ,
        OciCap::AuditWrite => C::CAP_AUDIT_WRITE,
        OciCap::BlockSuspend => C::CAP_BLOCK_SUSPEND,
        OciCap::Bpf => C::CAP_BPF,
        OciCap::CheckpointRestore => C::CAP_CHECKPOINT_RESTORE,
        OciCap::Chown => C::CAP_CHOWN,
        OciCap::DacOverride => C::CAP_DAC_OVERRIDE,
        OciCap::DacReadSearch => C::CAP_DAC_READ_SEARCH,
        OciCap::Fowner => C::CAP_FOWNER,
        OciCap::Fsetid => C::CAP_FSETID,
        OciCap::IpcLock => C::CAP_IPC_LOCK,
        OciCap::IpcOwner => C::CAP_IPC_OWNER,
        OciCap::Kill => C::CAP_KILL,
        OciCap::Lease => C::CAP_LEASE,
        OciCap::LinuxImmutable => C::CAP_LINUX_IMMUTABLE,
        OciCap::MacAdmin => C::CAP_MAC_ADMIN,
        OciCap::MacOverride => C::CAP_MAC_OVERRIDE,
        OciCap::Mknod => C::CAP_MKNOD,
        OciCap::NetAdmin => C::CAP_NET_ADMIN,
        OciCap::NetBindService => C::CAP_NET_BIND_SERVICE,
        OciCap::NetBroadcast => C::CAP_NET_BROADCAST,
        OciCap::NetRaw => C::CAP_NET_RAW,
        OciCap::Perfmon => C::CAP_PERFMON,
        OciCap::Setgid => C::CAP_SETGID,
        OciCap::Setfcap => C::CAP_SETFCAP,
        OciCap::Setpcap => C::CAP_SETPCAP,
        OciCap::Setuid => C::CAP_SETUID,
        OciCap::SysAdmin => C::CAP_SYS_ADMIN,
        OciCap::SysBoot => C::CAP_SYS_BOOT,
        OciCap::SysChroot => C::CAP_SYS_CHROOT,
        OciCap::SysModule => C::CAP_SYS_MODULE,
        OciCap::SysNice => C::CAP_SYS_NICE,
        OciCap::SysPacct => C::CAP_SYS_PACCT,
        OciCap::SysPtrace => C::CAP_SYS_PTRACE,
        OciCap::SysRawio => C::CAP_SYS_RAWIO,
        OciCap::SysResource => C::CAP_SYS_RESOURCE,
        OciCap::SysTime => C::CAP_SYS_TIME,
        OciCap::SysTtyConfig => C::CAP_SYS_TTY_CONFIG,
        OciCap::Syslog => C::CAP_SYSLOG,
        OciCap::WakeAlarm => C::CAP_WAKE_ALARM,
    }
}

/// The highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn kernel_last_cap() -> Result<u8, CapsError> {
    let text =
        std::fs::read_to_string(CAP_LAST_CAP_PATH).map_err(|source| CapsError::LastCapRead {
            path: CAP_LAST_CAP_PATH,
            source,
        })?;
    text.trim()
        .parse::<u8>()
        .map_err(|_| CapsError::LastCapParse {
            path: CAP_LAST_CAP_PATH,
            value: text.trim().to_string(),
        })
}

/// A set as a bit mask (bit N = capability number N).
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

/// The capabilities of `mask` that the `caps` crate knows, in number order.
fn from_mask(mask: u64) -> Vec<Capability> {
    let mut v: Vec<Capability> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect();
    v.sort_by_key(Capability::index);
    v
}

/// Removes from a JSON `process` object (config.json's `process`, or an exec's process.json)
/// every capability name that oci-spec cannot parse, and returns them as
/// `process.capabilities.<set>: <name>` for the caller to warn about.
///
/// runc warns about and ignores unknown names (e.g. `"CAP_UNKNOWN"`), while oci-spec rejects
/// the whole document; call this on the raw JSON before deserializing to behave like runc.
pub fn strip_unknown_capabilities(process: &mut serde_json::Value) -> Vec<String> {
    let mut removed = Vec::new();
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return removed;
    };
    for (set, list) in sets.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        list.retain(|name| {
            let known = serde_json::from_value::<OciCap>(name.clone()).is_ok();
            if !known {
                removed.push(format!("process.capabilities.{set}: {name}"));
            }
            known || !name.is_string()
        });
    }
    removed
}

impl Capabilities {
    /// Reads `process.capabilities` (absent: every set empty) for the running kernel.
    pub fn from_spec(process: &Process) -> Result<Self, CapsError> {
        Ok(Self::from_spec_for_kernel(process, kernel_last_cap()?))
    }

    /// Reads `process.capabilities` for a kernel whose highest capability number is `last_cap`.
    pub fn from_spec_for_kernel(process: &Process, last_cap: u8) -> Self {
        let mut out = Self::default();
        let Some(c) = process.capabilities() else {
            return out;
        };
        let sets = [
            ("bounding", c.bounding()),
            ("effective", c.effective()),
            ("inheritable", c.inheritable()),
            ("permitted", c.permitted()),
            ("ambient", c.ambient()),
        ];
        for (name, list) in sets {
            let mut set = CapsHashSet::new();
            let mut list: Vec<Capability> = list
                .iter()
                .flatten()
                .map(|&oci_cap| to_caps(oci_cap))
                .collect();
            list.sort_by_key(Capability::index);
            for cap in list {
                if cap.index() > last_cap {
                    out.skipped.push(Skipped {
                        set: name,
                        capability: cap,
                        reason: SkipReason::UnknownToKernel,
                    });
                } else {
                    set.insert(cap);
                }
            }
            match name {
                "bounding" => out.bounding = set,
                "effective" => out.effective = set,
                "inheritable" => out.inheritable = set,
                "permitted" => out.permitted = set,
                _ => out.ambient = set,
            }
        }
        let mut ambient: Vec<Capability> = out.ambient.iter().copied().collect();
        ambient.sort_by_key(Capability::index);
        for cap in ambient {
            if !(out.permitted.contains(&cap) && out.inheritable.contains(&cap)) {
                out.ambient.remove(&cap);
                out.skipped.push(Skipped {
                    set: "ambient",
                    capability: cap,
                    reason: SkipReason::AmbientNotPermittedAndInheritable,
                });
            }
        }
        out
    }

    /// Child side, before anything changes: checks that the calling process holds what the
    /// plan asks for, so that a config asking for, say, CAP_SYS_RESOURCE on a host whose
    /// runtime lacks it fails with an error naming it instead of a bare EPERM from capset.
    /// (The bounding set is not checked: as in runc, asking to keep a capability that is
    /// already gone from it is not an error.)
    pub fn check_available(&self) -> Result<(), CapsError> {
        let have = creds::capget().map_err(|source| CapsError::Sys {
            op: "capget".into(),
            source,
        })?;
        let checks = [
            ("permitted", &self.permitted, have.permitted, "permitted"),
            ("effective", &self.effective, have.permitted, "permitted"),
            (
                "inheritable",
                &self.inheritable,
                have.permitted | have.inheritable,
                "permitted or inheritable",
            ),
        ];
        for (set, want, held_mask, held) in checks {
            let missing = mask(want) & !held_mask;
            if missing != 0 {
                return Err(CapsError::NotAvailable {
                    set,
                    capabilities: from_mask(missing),
                    held,
                });
            }
        }
        Ok(())
    }

    /// Child side, while still privileged (needs CAP_SETPCAP): drops from the bounding set
    /// every capability the kernel knows that is not in [`Self::bounding`].
    pub fn drop_bounding(&self) -> Result<(), CapsError> {
        let keep = mask(&self.bounding);
        for cap in 0..64u32 {
            let present = creds::capbset_read(cap).map_err(|source| CapsError::Sys {
                op: format!("read capability {cap} of the bounding set"),
                source,
            })?;
            match present {
                None => break,
                Some(true) if keep & (1 << cap) == 0 => {
                    creds::capbset_drop(cap).map_err(|source| CapsError::Sys {
                        op: format!("drop capability {cap} from the bounding set"),
                        source,
                    })?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Child side, after the uid change: sets the effective, permitted and inheritable sets to
    /// exactly the plan's, in one `capset(2)`.
    pub fn set_base(&self) -> Result<(), CapsError> {
        creds::capset(CapSets {
            effective: mask(&self.effective),
            permitted: mask(&self.permitted),
            inheritable: mask(&self.inheritable),
        })
        .map_err(|source| CapsError::Sys {
            op: "capset".into(),
            source,
        })
    }

    /// Child side, after [`Self::set_base`]: clears the ambient set, then raises each of the
    /// plan's ambient capabilities.
    pub fn set_ambient(&self) -> Result<(), CapsError> {
        caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::Caps {
            op: "clear the ambient set".into(),
            source,
        })?;
        let mut ambient: Vec<Capability> = self.ambient.iter().copied().collect();
        ambient.sort_by_key(Capability::index);
        for cap in ambient {
            caps::raise(None, CapSet::Ambient, cap).map_err(|source| CapsError::Caps {
                op: format!("raise ambient {cap}"),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::ProcessBuilder;
    use std::collections::HashSet;

    fn process(caps_json: &str) -> Process {
        let c: oci_spec::runtime::LinuxCapabilities = serde_json::from_str(caps_json).unwrap();
        ProcessBuilder::default().capabilities(c).build().unwrap()
    }

    #[test]
    fn maps_names_into_sets() {
        let p = process(
            r#"{"bounding":["CAP_CHOWN","CAP_NET_BIND_SERVICE","CAP_CHECKPOINT_RESTORE"],
                "effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN","CAP_NET_BIND_SERVICE"],
                "inheritable":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]}"#,
        );
        let c = Capabilities::from_spec_for_kernel(&p, 40);
        assert_eq!(
            c.bounding,
            HashSet::from([
                Capability::CAP_CHOWN,
                Capability::CAP_NET_BIND_SERVICE,
                Capability::CAP_CHECKPOINT_RESTORE
            ])
        );
        assert_eq!(c.effective, HashSet::from([Capability::CAP_CHOWN]));
        assert_eq!(
            c.inheritable,
            HashSet::from([Capability::CAP_NET_BIND_SERVICE])
        );
        assert_eq!(c.ambient, HashSet::from([Capability::CAP_NET_BIND_SERVICE]));
        assert!(c.skipped.is_empty());
        assert_eq!(mask(&c.effective), 1);
    }

    #[test]
    fn every_oci_name_maps_to_the_same_name() {
        for c in caps::all() {
            let oci: OciCap = serde_json::from_value(serde_json::json!(c.to_string())).unwrap();
            assert_eq!(to_caps(oci), c);
        }
    }

    #[test]
    fn caps_above_last_cap_are_skipped() {
        let p = process(r#"{"bounding":["CAP_CHOWN","CAP_BPF","CAP_CHECKPOINT_RESTORE"]}"#);
        let c = Capabilities::from_spec_for_kernel(&p, 38);
        assert_eq!(c.bounding, HashSet::from([Capability::CAP_CHOWN]));
        assert_eq!(c.skipped.len(), 2);
        assert_eq!(c.skipped[0].capability, Capability::CAP_BPF);
        assert_eq!(c.skipped[0].reason, SkipReason::UnknownToKernel);
        assert!(c.skipped[0].to_string().contains("bounding: CAP_BPF"));
    }

    #[test]
    fn ambient_needs_permitted_and_inheritable() {
        let p = process(r#"{"permitted":["CAP_KILL"],"ambient":["CAP_KILL"]}"#);
        let c = Capabilities::from_spec_for_kernel(&p, 40);
        assert!(c.ambient.is_empty());
        assert_eq!(
            c.skipped[0].reason,
            SkipReason::AmbientNotPermittedAndInheritable
        );
    }

    #[test]
    fn absent_means_empty() {
        let mut p = ProcessBuilder::default().build().unwrap();
        p.set_capabilities(None);
        let c = Capabilities::from_spec_for_kernel(&p, 40);
        assert_eq!(c, Capabilities::default());
    }

    #[test]
    fn unknown_names_are_stripped_like_runc() {
        let mut v = serde_json::json!({"capabilities": {
            "bounding": ["CAP_UNKNOWN", "CAP_CHOWN", "UNKNOWN_CAP"],
            "effective": ["CAP_KILL"]
        }});
        let removed = strip_unknown_capabilities(&mut v);
        assert_eq!(
            removed,
            [
                "process.capabilities.bounding: \"CAP_UNKNOWN\"",
                "process.capabilities.bounding: \"UNKNOWN_CAP\""
            ]
        );
        let c: oci_spec::runtime::LinuxCapabilities =
            serde_json::from_value(v["capabilities"].clone()).unwrap();
        assert_eq!(c.bounding().as_ref().unwrap().len(), 1);
        assert!(strip_unknown_capabilities(&mut serde_json::json!({})).is_empty());
    }

    #[test]
    fn kernel_last_cap_reads() {
        assert!(kernel_last_cap().unwrap() >= 40);
    }

    #[test]
    fn not_available_error_names_capability() {
        let e = CapsError::NotAvailable {
            set: "permitted",
            capabilities: vec![Capability::CAP_SYS_RESOURCE],
            held: "permitted",
        };
        assert_eq!(
            e.to_string(),
            "process.capabilities.permitted asks for CAP_SYS_RESOURCE, which the runtime does \
             not hold (not in its permitted set)"
        );
    }
}
