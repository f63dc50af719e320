//! `run` in the foreground with a terminal: relay the container's pty to our stdio, with our
//! terminal in raw mode and its window size passed on.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};

use crate::Result;

/// Puts stdin in raw mode while it lives (when stdin is a terminal).
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return Self(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return Self(None);
        }
        Self(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Copies our terminal's window size to the pty (no-op when stdin is no terminal).
fn copy_window_size(master: &OwnedFd) {
    if let Some((rows, cols)) = coracle::sys::process::window_size(std::io::stdin().as_fd())
        .filter(|&(r, c)| r > 0 && c > 0)
    {
        let _ = coracle::sys::process::set_window_size(master.as_fd(), rows, cols);
    }
}

/// Relays between our stdio and `master` until the process behind `pidfd` exits, forwarding
/// the (blocked) signals of `mask` with `forward`.
pub fn relay(
    master: OwnedFd,
    pidfd: &OwnedFd,
    mask: &SigSet,
    forward: impl Fn(Signal),
) -> Result<()> {
    let _raw = RawMode::enter();
    copy_window_size(&master);
    let sigfd =
        nix::sys::signalfd::SignalFd::with_flags(mask, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)?;
    let mut master_file = std::fs::File::from(master);
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let stdin = std::io::stdin();
    loop {
        use nix::poll::{PollFd, PollFlags};
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if master_open {
            fds.push(PollFd::new(master_file.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let stdin_idx = if master_open { 3 } else { 2 };
        if master_open && ready[2] {
            match master_file.read(&mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if stdin_open && ready[stdin_idx] {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = master_file.write_all(&buf[..n]);
                }
            }
        }
        if ready[1] {
            if let Ok(Some(info)) = sigfd.read_signal() {
                if let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) {
                    if sig == Signal::SIGWINCH {
                        copy_window_size(&OwnedFd::from(master_file.try_clone()?));
                    } else {
                        forward(sig);
                    }
                }
            }
        }
        if ready[0] && !(master_open && ready[2]) {
            // The process exited and the pty has nothing more for now.
            let _ = master_file.as_raw_fd();
            return Ok(());
        }
    }
}
