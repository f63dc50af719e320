//! The hand-off of a user-notification fd to a seccomp agent (runtime-spec, config-linux.md
//! "seccomp" and runtime.md "ContainerProcessState"): connect to `listenerPath` (a unix stream
//! socket) and send, in one message, the `ContainerProcessState` JSON with the fd attached as
//! `SCM_RIGHTS`; the JSON's `fds` names it `seccompFd`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde::Serialize;

use super::SeccompError;

/// The name of the notify fd in `ContainerProcessState.fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// `ContainerProcessState` of the runtime-spec, sent with the notify fd.
#[derive(Debug, Serialize)]
struct ContainerProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "str::is_empty")]
    metadata: &'a str,
    state: &'a serde_json::Value,
}

/// Builds the `ContainerProcessState` JSON the agent receives: `ociVersion`, `fds`
/// (`["seccompFd"]`), the container process's `pid`, `metadata` (`listenerMetadata`, left out
/// when empty, as runc does) and the container's `state` (the OCI state, as `coracle state` prints
/// it).
pub fn process_state_json(
    pid: i32,
    metadata: Option<&str>,
    state: &serde_json::Value,
) -> Result<Vec<u8>, SeccompError> {
    serde_json::to_vec(&ContainerProcessState {
        oci_version: crate::OCI_VERSION,
        fds: [SECCOMP_FD_NAME],
        pid,
        metadata: metadata.unwrap_or_default(),
        state,
    })
    .map_err(SeccompError::StateJson)
}

/// Connects to the agent's socket at `listener_path` and sends `state_json` (see
/// [`process_state_json`]) with `notify_fd` attached.
pub fn send_to_listener(
    listener_path: &Path,
    notify_fd: BorrowedFd<'_>,
    state_json: &[u8],
) -> Result<(), SeccompError> {
    let sock = UnixStream::connect(listener_path).map_err(|source| SeccompError::Connect {
        path: listener_path.to_path_buf(),
        source,
    })?;
    let fds = [notify_fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(state_json)];
    let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map_err(
        |source| SeccompError::Send {
            path: listener_path.to_path_buf(),
            source,
        },
    )?;
    if sent != state_json.len() {
        return Err(SeccompError::ShortSend {
            path: listener_path.to_path_buf(),
            sent,
            len: state_json.len(),
        });
    }
    Ok(())
}
