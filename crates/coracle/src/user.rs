//! The container process's user: uid, gid, supplementary groups, umask, and the switch to it
//! (with the capabilities), done in the child just before execve.

use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use crate::capabilities::{Capabilities, CapsError};

/// The umask of the container process when the config sets none (runc's default).
pub const DEFAULT_UMASK: u32 = 0o022;

/// Errors of the user module.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was done, with its arguments.
        op: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// `process.user.umask` is not a permission mask.
    #[error("process.user.umask: {value:#o} is not within 0..=0o777")]
    InvalidUmask {
        /// The value from the config.
        value: u32,
    },
    /// `process.user.additionalGids` is set, but the container may not call setgroups (a user
    /// namespace whose `setgroups` file says `deny`, e.g. rootless).
    #[error("process.user.additionalGids: cannot set {count} additional groups: setgroups is denied in this user namespace")]
    SetgroupsDenied {
        /// How many groups were asked for.
        count: usize,
    },
    /// Setting the capabilities failed.
    #[error(transparent)]
    Capabilities(#[from] CapsError),
}

fn sys(op: String) -> impl FnOnce(nix::errno::Errno) -> UserError {
    move |e| UserError::Sys {
        op,
        source: std::io::Error::from(e),
    }
}

/// `process.user`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
    /// Supplementary gids.
    pub additional_gids: Vec<u32>,
    /// The umask, if set (else [`DEFAULT_UMASK`] is applied, as runc does).
    pub umask: Option<u32>,
}

impl User {
    /// Reads `process.user`; the umask must lie within 0..=0o777.
    pub fn from_spec(process: &Process) -> Result<Self, UserError> {
        let u = process.user();
        if let Some(value) = u.umask() {
            if value > 0o777 {
                return Err(UserError::InvalidUmask { value });
            }
        }
        Ok(Self {
            uid: u.uid(),
            gid: u.gid(),
            additional_gids: u.additional_gids().clone().unwrap_or_default(),
            umask: u.umask(),
        })
    }
}

/// Becomes `user` with `caps`, in the order that keeps the capabilities the config asks for:
/// keep-caps, bounding set, groups (when `allow_setgroups`), gid, uid, then the effective,
/// permitted and inheritable sets (one capset), then the ambient set; then the umask.
///
/// Runs in the container child (single-threaded, root in its user namespace) just before
/// execve. Before changing anything it checks that the process holds every capability asked
/// for ([`Capabilities::check_available`]) and that additional groups are not asked for when
/// setgroups is denied.
///
/// With keep-caps set, the permitted set survives the switch to a non-zero uid (the kernel
/// clears the effective set), and the capset that follows sets all three base sets to exactly
/// the config's. Note that for a non-zero uid, execve keeps only what is also ambient
/// (capabilities(7)); that is the kernel's rule and runc's behaviour too.
pub fn switch(user: &User, caps: &Capabilities, allow_setgroups: bool) -> Result<(), UserError> {
    caps.check_available()?;
    if !allow_setgroups && !user.additional_gids.is_empty() {
        return Err(UserError::SetgroupsDenied {
            count: user.additional_gids.len(),
        });
    }
    nix::sys::prctl::set_keepcaps(true).map_err(sys("prctl(PR_SET_KEEPCAPS, 1)".into()))?;
    caps.drop_bounding()?;
    if allow_setgroups {
        let groups: Vec<Gid> = user
            .additional_gids
            .iter()
            .copied()
            .map(Gid::from_raw)
            .collect();
        nix::unistd::setgroups(&groups)
            .map_err(sys(format!("setgroups({:?})", user.additional_gids)))?;
    }
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(sys(format!("setresgid({})", user.gid)))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(sys(format!("setresuid({})", user.uid)))?;
    nix::sys::prctl::set_keepcaps(false).map_err(sys("prctl(PR_SET_KEEPCAPS, 0)".into()))?;
    caps.set_base()?;
    caps.set_ambient()?;
    let mask = user.umask.unwrap_or(DEFAULT_UMASK) & 0o777;
    nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::creds::in_child;
    use caps::{Capability, CapsHashSet};
    use oci_spec::runtime::{ProcessBuilder, UserBuilder};

    fn status() -> Result<String, String> {
        std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())
    }

    fn field<'a>(status: &'a str, name: &str) -> Result<&'a str, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .ok_or(format!("no {name} in status"))
    }

    fn expect(status: &str, name: &str, want: &str) -> Result<(), String> {
        let got = field(status, name)?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{name}: got {got:?}, want {want:?}"))
        }
    }

    fn set(caps: &[Capability]) -> CapsHashSet {
        caps.iter().copied().collect()
    }

    fn user(uid: u32, gid: u32, groups: &[u32], umask: Option<u32>) -> User {
        User {
            uid,
            gid,
            additional_gids: groups.to_vec(),
            umask,
        }
    }

    #[test]
    fn from_spec_reads_user() {
        let u = UserBuilder::default()
            .uid(1000u32)
            .gid(100u32)
            .additional_gids(vec![5u32, 6])
            .umask(0o027u32)
            .build()
            .unwrap();
        let p = ProcessBuilder::default().user(u).build().unwrap();
        assert_eq!(
            User::from_spec(&p).unwrap(),
            user(1000, 100, &[5, 6], Some(0o027))
        );
    }

    #[test]
    fn from_spec_rejects_bad_umask() {
        let u = UserBuilder::default().umask(0o1777u32).build().unwrap();
        let p = ProcessBuilder::default().user(u).build().unwrap();
        let e = User::from_spec(&p).unwrap_err();
        assert!(matches!(e, UserError::InvalidUmask { value: 0o1777 }));
        assert!(e.to_string().contains("process.user.umask"));
    }

    #[test]
    fn switch_to_non_root_keeps_listed_caps() {
        use Capability::{CAP_CHOWN, CAP_NET_BIND_SERVICE};
        let caps = Capabilities {
            bounding: set(&[CAP_CHOWN, CAP_NET_BIND_SERVICE]),
            effective: set(&[CAP_CHOWN, CAP_NET_BIND_SERVICE]),
            permitted: set(&[CAP_CHOWN, CAP_NET_BIND_SERVICE]),
            inheritable: set(&[CAP_NET_BIND_SERVICE]),
            ambient: set(&[CAP_NET_BIND_SERVICE]),
            skipped: vec![],
        };
        let u = user(1000, 1000, &[1001, 1002], Some(0o027));
        let r = in_child(|| {
            switch(&u, &caps, true).map_err(|e| e.to_string())?;
            let s = status()?;
            expect(&s, "CapBnd", "0000000000000401")?;
            expect(&s, "CapEff", "0000000000000401")?;
            expect(&s, "CapPrm", "0000000000000401")?;
            expect(&s, "CapInh", "0000000000000400")?;
            expect(&s, "CapAmb", "0000000000000400")?;
            expect(&s, "Uid", "1000\t1000\t1000\t1000")?;
            expect(&s, "Gid", "1000\t1000\t1000\t1000")?;
            expect(&s, "Groups", "1001 1002")?;
            expect(&s, "Umask", "0027")?;
            // After execve a non-root process keeps exactly its ambient capabilities.
            let out = std::process::Command::new("/bin/cat")
                .arg("/proc/self/status")
                .output()
                .map_err(|e| e.to_string())?;
            let s = String::from_utf8_lossy(&out.stdout);
            expect(&s, "CapEff", "0000000000000400")?;
            expect(&s, "CapPrm", "0000000000000400")?;
            expect(&s, "CapInh", "0000000000000400")?;
            expect(&s, "CapAmb", "0000000000000400")?;
            expect(&s, "CapBnd", "0000000000000401")
        });
        r.unwrap();
    }

    #[test]
    fn switch_as_root_sets_exact_sets() {
        use Capability::{CAP_KILL, CAP_SETUID, CAP_SYS_CHROOT};
        let caps = Capabilities {
            bounding: set(&[CAP_KILL, CAP_SETUID, CAP_SYS_CHROOT]),
            effective: set(&[CAP_KILL]),
            permitted: set(&[CAP_KILL, CAP_SETUID]),
            inheritable: CapsHashSet::new(),
            ambient: CapsHashSet::new(),
            skipped: vec![],
        };
        let u = user(0, 0, &[], None);
        in_child(|| {
            switch(&u, &caps, true).map_err(|e| e.to_string())?;
            let s = status()?;
            // CAP_KILL = 5, CAP_SETUID = 7, CAP_SYS_CHROOT = 18.
            expect(&s, "CapBnd", "00000000000400a0")?;
            expect(&s, "CapEff", "0000000000000020")?;
            expect(&s, "CapPrm", "00000000000000a0")?;
            expect(&s, "CapInh", "0000000000000000")?;
            expect(&s, "CapAmb", "0000000000000000")?;
            expect(&s, "Uid", "0\t0\t0\t0")?;
            expect(&s, "Groups", "")?;
            expect(&s, "Umask", "0022")
        })
        .unwrap();
    }

    #[test]
    fn empty_caps_drop_everything() {
        let u = user(0, 0, &[], None);
        in_child(|| {
            switch(&u, &Capabilities::default(), true).map_err(|e| e.to_string())?;
            let s = status()?;
            for f in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
                expect(&s, f, "0000000000000000")?;
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn missing_capability_is_named() {
        let have = crate::sys::creds::capget().unwrap();
        if have.permitted & Capability::CAP_SYS_RESOURCE.bitmask() != 0 {
            eprintln!("skipped: this host's runtime holds CAP_SYS_RESOURCE");
            return;
        }
        let r = set(&[Capability::CAP_SYS_RESOURCE, Capability::CAP_CHOWN]);
        let caps = Capabilities {
            bounding: r.clone(),
            effective: r.clone(),
            permitted: r,
            ..Capabilities::default()
        };
        let u = user(1000, 1000, &[], None);
        let e = in_child(|| match switch(&u, &caps, true) {
            Err(e) => Err(e.to_string()),
            Ok(()) => Ok(()),
        })
        .unwrap_err();
        assert_eq!(
            e,
            "process.capabilities.permitted asks for CAP_SYS_RESOURCE, which the runtime does \
             not hold (not in its permitted set)"
        );
    }

    #[test]
    fn setgroups_denied() {
        let caps = Capabilities::default();
        let e = in_child(|| {
            switch(&user(1000, 1000, &[5], None), &caps, false).map_err(|e| e.to_string())
        })
        .unwrap_err();
        assert!(e.contains("setgroups is denied"), "{e}");
        // Without additional groups, the groups are left alone (here: root's, unchanged).
        in_child(|| {
            let before = field(&status()?, "Groups")?.to_string();
            switch(&user(1000, 1000, &[], None), &caps, false).map_err(|e| e.to_string())?;
            expect(&status()?, "Groups", &before)?;
            expect(&status()?, "Uid", "1000\t1000\t1000\t1000")
        })
        .unwrap();
    }
}
