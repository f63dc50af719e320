//! The container process's resource limits (`process.rlimits`).
//!
//! [`Rlimits::from_spec`] checks the list in the parent (no type twice, soft not above hard);
//! [`Rlimits::apply`] sets each limit in the child, before the capabilities are dropped (raising
//! a hard limit needs CAP_SYS_RESOURCE).

use nix::sys::resource::{setrlimit, Resource};
use oci_spec::runtime::{PosixRlimitType, Process};

/// Errors of the rlimits module.
#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    /// The same type appears twice.
    #[error("process.rlimits[{index}]: {resource} is already set by process.rlimits[{first}]")]
    Duplicate {
        /// The index of the second occurrence.
        index: usize,
        /// The index of the first occurrence.
        first: usize,
        /// Which limit.
        resource: &'static str,
    },
    /// The soft limit is above the hard limit.
    #[error(
        "process.rlimits[{index}]: {resource} soft limit {soft} is above its hard limit {hard}"
    )]
    SoftAboveHard {
        /// The index in `process.rlimits`.
        index: usize,
        /// Which limit.
        resource: &'static str,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
    /// setrlimit failed.
    #[error("setrlimit {resource} (soft {soft}, hard {hard}): {source}")]
    Set {
        /// Which limit.
        resource: &'static str,
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
        /// Why it failed (EPERM: raising a hard limit without CAP_SYS_RESOURCE).
        #[source]
        source: std::io::Error,
    },
}

/// One checked limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The type as in the config.
    pub typ: PosixRlimitType,
    /// The soft limit (`u64::MAX` is RLIM_INFINITY).
    pub soft: u64,
    /// The hard limit (`u64::MAX` is RLIM_INFINITY).
    pub hard: u64,
}

impl Rlimit {
    /// The name of the limit, e.g. `RLIMIT_NOFILE`.
    pub fn name(&self) -> &'static str {
        name(self.typ)
    }
}

/// `process.rlimits`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rlimits {
    /// The limits, in the config's order.
    pub limits: Vec<Rlimit>,
}

/// The kernel's name of an OCI rlimit type.
pub fn name(typ: PosixRlimitType) -> &'static str {
    match typ {
        PosixRlimitType::RlimitCpu => "RLIMIT_CPU",
        PosixRlimitType::RlimitFsize => "RLIMIT_FSIZE",
        PosixRlimitType::RlimitData => "RLIMIT_DATA",
        PosixRlimitType::RlimitStack => "RLIMIT_STACK",
        PosixRlimitType::RlimitCore => "RLIMIT_CORE",
        PosixRlimitType::RlimitRss => "RLIMIT_RSS",
        PosixRlimitType::RlimitNproc => "RLIMIT_NPROC",
        PosixRlimitType::RlimitNofile => "RLIMIT_NOFILE",
        PosixRlimitType::RlimitMemlock => "RLIMIT_MEMLOCK",
        PosixRlimitType::RlimitAs => "RLIMIT_AS",
        PosixRlimitType::RlimitLocks => "RLIMIT_LOCKS",
        PosixRlimitType::RlimitSigpending => "RLIMIT_SIGPENDING",
        PosixRlimitType::RlimitMsgqueue => "RLIMIT_MSGQUEUE",
        PosixRlimitType::RlimitNice => "RLIMIT_NICE",
        PosixRlimitType::RlimitRtprio => "RLIMIT_RTPRIO",
        PosixRlimitType::RlimitRttime => "RLIMIT_RTTIME",
    }
}

/// The kernel's resource for an OCI rlimit type.
pub fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

impl Rlimits {
    /// Reads `process.rlimits`; a duplicate type or a soft limit above its hard limit is an
    /// error naming `process.rlimits[i]`.
    pub fn from_spec(process: &Process) -> Result<Self, RlimitError> {
        let mut limits: Vec<Rlimit> = Vec::new();
        for (index, r) in process.rlimits().iter().flatten().enumerate() {
            let typ = r.typ();
            if let Some(first) = limits.iter().position(|l| l.typ == typ) {
                return Err(RlimitError::Duplicate {
                    index,
                    first,
                    resource: name(typ),
                });
            }
            if r.soft() > r.hard() {
                return Err(RlimitError::SoftAboveHard {
                    index,
                    resource: name(typ),
                    soft: r.soft(),
                    hard: r.hard(),
                });
            }
            limits.push(Rlimit {
                typ,
                soft: r.soft(),
                hard: r.hard(),
            });
        }
        Ok(Self { limits })
    }

    /// Applies the limits to the calling process (child side, before capabilities are
    /// dropped), in the config's order.
    pub fn apply(&self) -> Result<(), RlimitError> {
        for l in &self.limits {
            setrlimit(resource(l.typ), l.soft, l.hard).map_err(|e| RlimitError::Set {
                resource: l.name(),
                soft: l.soft,
                hard: l.hard,
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::creds::in_child;
    use nix::sys::resource::getrlimit;

    fn process(rlimits_json: &str) -> Process {
        let r: Vec<oci_spec::runtime::PosixRlimit> = serde_json::from_str(rlimits_json).unwrap();
        oci_spec::runtime::ProcessBuilder::default()
            .rlimits(r)
            .build()
            .unwrap()
    }

    #[test]
    fn parses_every_type() {
        let all = [
            "RLIMIT_CPU",
            "RLIMIT_FSIZE",
            "RLIMIT_DATA",
            "RLIMIT_STACK",
            "RLIMIT_CORE",
            "RLIMIT_RSS",
            "RLIMIT_NPROC",
            "RLIMIT_NOFILE",
            "RLIMIT_MEMLOCK",
            "RLIMIT_AS",
            "RLIMIT_LOCKS",
            "RLIMIT_SIGPENDING",
            "RLIMIT_MSGQUEUE",
            "RLIMIT_NICE",
            "RLIMIT_RTPRIO",
            "RLIMIT_RTTIME",
        ];
        let json = all
            .iter()
            .map(|n| format!(r#"{{"type":"{n}","soft":1,"hard":2}}"#))
            .collect::<Vec<_>>()
            .join(",");
        let r = Rlimits::from_spec(&process(&format!("[{json}]"))).unwrap();
        let names: Vec<&str> = r.limits.iter().map(Rlimit::name).collect();
        assert_eq!(names, all);
        assert_eq!(resource(r.limits[7].typ), Resource::RLIMIT_NOFILE);
        assert_eq!((r.limits[0].soft, r.limits[0].hard), (1, 2));
    }

    #[test]
    fn absent_is_empty() {
        let mut p = process("[]");
        p.set_rlimits(None);
        assert_eq!(Rlimits::from_spec(&p).unwrap(), Rlimits::default());
    }

    #[test]
    fn duplicate_rejected() {
        let p = process(
            r#"[{"type":"RLIMIT_NOFILE","soft":1,"hard":2},{"type":"RLIMIT_CORE","soft":0,"hard":0},
                {"type":"RLIMIT_NOFILE","soft":3,"hard":4}]"#,
        );
        let e = Rlimits::from_spec(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.rlimits[2]: RLIMIT_NOFILE is already set by process.rlimits[0]"
        );
    }

    #[test]
    fn soft_above_hard_rejected() {
        let p = process(r#"[{"type":"RLIMIT_CORE","soft":5,"hard":4}]"#);
        let e = Rlimits::from_spec(&p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.rlimits[0]: RLIMIT_CORE soft limit 5 is above its hard limit 4"
        );
    }

    #[test]
    fn apply_lowers_limits() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let hard = hard.min(4096);
        let soft = hard / 2;
        let p = process(&format!(
            r#"[{{"type":"RLIMIT_NOFILE","soft":{soft},"hard":{hard}}},
                {{"type":"RLIMIT_CORE","soft":0,"hard":0}}]"#
        ));
        let r = Rlimits::from_spec(&p).unwrap();
        in_child(|| {
            r.apply().map_err(|e| e.to_string())?;
            let got = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
            if got != (soft, hard) {
                return Err(format!(
                    "RLIMIT_NOFILE: got {got:?}, want {:?}",
                    (soft, hard)
                ));
            }
            let limits = std::fs::read_to_string("/proc/self/limits").map_err(|e| e.to_string())?;
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .ok_or("no Max open files line")?;
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields[3..5] != [soft.to_string(), hard.to_string()] {
                return Err(format!("/proc/self/limits: {line}"));
            }
            let core = getrlimit(Resource::RLIMIT_CORE).map_err(|e| e.to_string())?;
            if core != (0, 0) {
                return Err(format!("RLIMIT_CORE: got {core:?}"));
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn raising_hard_limit_without_cap_sys_resource_fails() {
        let have = crate::sys::creds::capget().unwrap();
        if have.effective & caps::Capability::CAP_SYS_RESOURCE.bitmask() != 0 {
            eprintln!("skipped: this host's runtime holds CAP_SYS_RESOURCE");
            return;
        }
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let p = process(&format!(
            r#"[{{"type":"RLIMIT_NOFILE","soft":1024,"hard":{}}}]"#,
            hard + 1
        ));
        let r = Rlimits::from_spec(&p).unwrap();
        let e = in_child(|| r.apply().map_err(|e| e.to_string())).unwrap_err();
        assert!(
            e.starts_with("setrlimit RLIMIT_NOFILE (soft 1024, hard "),
            "{e}"
        );
        assert!(e.contains("Operation not permitted"), "{e}");
    }
}
