//! Terminals: the container's pty, made inside the container's /dev/pts, its master handed to
//! the `--console-socket` listener with SCM_RIGHTS (as runc does: the data is the master's
//! name), its slave made the process's stdio and controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::sys;

/// Errors of the console module.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// `process.terminal` is true but no console socket was given.
    #[error("process.terminal is true: a --console-socket is needed to receive the pty master")]
    TerminalWithoutSocket,
    /// A console socket was given but `process.terminal` is false.
    #[error("--console-socket given but process.terminal is false")]
    SocketWithoutTerminal,

    /// The console socket could not be reached.
    #[error("--console-socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pty operation failed.
    #[error("{op}: {source}")]
    Pty {
        /// What was done.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn pty_err(op: &'static str) -> impl FnOnce(nix::Error) -> ConsoleError {
    move |e| ConsoleError::Pty {
        op,
        source: e.into(),
    }
}

/// Connects to the listener at `path` (in the runtime, before the clone).
pub fn connect(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let stream = UnixStream::connect(path).map_err(|source| ConsoleError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(stream.into())
}

/// In the container, after pivot_root: opens a pty on the container's /dev/ptmx, sends the
/// master over `socket`, and makes the slave stdin, stdout, stderr and the controlling tty of
/// a new session. `size` is (height, width) from `process.consoleSize`.
pub fn setup_pty(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<(), ConsoleError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(pty_err("open /dev/ptmx"))?;
    grantpt(&master).map_err(pty_err("grantpt"))?;
    unlockpt(&master).map_err(pty_err("unlockpt"))?;
    let slave_name = ptsname_r(&master).map_err(pty_err("ptsname"))?;
    let slave = nix::fcntl::open(
        slave_name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(pty_err("open pty slave"))?;
    if let Some((rows, cols)) = size {
        sys::process::set_window_size(slave.as_fd(), rows, cols).map_err(|source| {
            ConsoleError::Pty {
                op: "TIOCSWINSZ",
                source,
            }
        })?;
    }
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(pty_err("send pty master to the console socket"))?;
    drop(master);
    nix::unistd::setsid().map_err(pty_err("setsid"))?;
    sys::process::set_controlling_tty(slave.as_fd()).map_err(|source| ConsoleError::Pty {
        op: "TIOCSCTTY",
        source,
    })?;
    nix::unistd::dup2_stdin(&slave).map_err(pty_err("dup2 stdin"))?;
    nix::unistd::dup2_stdout(&slave).map_err(pty_err("dup2 stdout"))?;
    nix::unistd::dup2_stderr(&slave).map_err(pty_err("dup2 stderr"))?;
    Ok(())
}

/// The two ends for a container process's terminal: the one the child sends its pty master
/// over, and (when relaying) the one the runtime receives it on.
#[derive(Debug, Default)]
pub struct ConsoleEnds {
    /// Goes to the container process.
    pub child: Option<OwnedFd>,
    /// Stays with the runtime, to receive the master ([`recv_master`]).
    pub relay: Option<OwnedFd>,
}

/// Checks `process.terminal` against the console options and connects what is needed: the
/// `--console-socket` listener, or with `relay` a socketpair whose other end we keep.
pub fn prepare(
    socket: Option<&Path>,
    terminal: bool,
    relay: bool,
) -> Result<ConsoleEnds, ConsoleError> {
    match (socket, terminal) {
        (Some(path), true) => Ok(ConsoleEnds {
            child: Some(connect(path)?),
            relay: None,
        }),
        (None, true) if relay => {
            let (ours, theirs) = UnixStream::pair().map_err(|source| ConsoleError::Pty {
                op: "socketpair",
                source,
            })?;
            Ok(ConsoleEnds {
                child: Some(theirs.into()),
                relay: Some(ours.into()),
            })
        }
        (None, true) => Err(ConsoleError::TerminalWithoutSocket),
        (Some(_), false) => Err(ConsoleError::SocketWithoutTerminal),
        (None, false) => Ok(ConsoleEnds::default()),
    }
}

/// Receives a pty master sent by [`setup_pty`] over `socket`.
pub fn recv_master(socket: &OwnedFd) -> Result<OwnedFd, ConsoleError> {
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(pty_err("receive the pty master"))?;
    for cmsg in msg.cmsgs().map_err(pty_err("receive the pty master"))? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                return sys::process::own_fd(fd).map_err(|source| ConsoleError::Pty {
                    op: "receive the pty master",
                    source,
                });
            }
        }
    }
    Err(ConsoleError::Pty {
        op: "receive the pty master",
        source: std::io::Error::from_raw_os_error(libc::EBADMSG),
    })
}
