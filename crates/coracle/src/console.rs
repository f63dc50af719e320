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
