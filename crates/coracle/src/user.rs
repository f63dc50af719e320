//! The container process's user: uid, gid, supplementary groups, umask, and the switch to it.
//! (Stub: being written.)

use oci_spec::runtime::Process;

use crate::capabilities::Capabilities;

/// Errors of the user module.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was done.
        op: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// `process.user`, checked.
#[derive(Debug, Clone)]
pub struct User {
    /// The uid.
    pub uid: u32,
    /// The gid.
    pub gid: u32,
    /// Supplementary gids.
    pub additional_gids: Vec<u32>,
    /// The umask, if set.
    pub umask: Option<u32>,
}

impl User {
    /// Reads `process.user`.
    pub fn from_spec(process: &Process) -> Result<Self, UserError> {
        let u = process.user();
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
/// permitted, inheritable and ambient sets; then the umask.
pub fn switch(_user: &User, _caps: &Capabilities, _allow_setgroups: bool) -> Result<(), UserError> {
    Ok(())
}
