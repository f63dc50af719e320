//! The one syscall the benchmark needs that neither std nor nix wraps: `wait4`, which returns
//! the peak RSS (`ru_maxrss`) of exactly the child it reaps.

use std::io;

/// How a reaped child ended, with its peak resident set size.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// The raw wait status (decode with [`exit_code`] / [`signal`]).
    pub status: i32,
    /// `ru_maxrss` in KiB: the child's peak RSS (and that of descendants it waited for).
    pub maxrss_kib: u64,
}

impl Reaped {
    /// The exit code, if the child exited normally.
    pub fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }

    /// The signal that killed the child, if any.
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }

    /// Whether the child exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code() == Some(0)
    }
}

/// Blocks until any child ends and reaps it: its pid, status and rusage.
/// `Ok(None)` when there is no child left (ECHILD).
pub fn wait4_any() -> io::Result<Option<(u32, Reaped)>> {
    wait4_raw(-1, 0)
}

/// Reaps every child that has already ended, without blocking; returns how many.
pub fn reap_ended() -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = wait4_raw(-1, libc::WNOHANG) {
        n += 1;
    }
    n
}

fn wait4_raw(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<(u32, Reaped)>> {
    let mut status: libc::c_int = 0;
    // An all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = zeroed_rusage();
    loop {
        // SAFETY: `status` and `usage` are valid, writable, properly aligned locals that live for
        // the whole call; wait4 writes only into them.
        let rc = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if rc > 0 {
            let reaped = Reaped {
                status,
                maxrss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            };
            return Ok(u32::try_from(rc).ok().map(|p| (p, reaped)));
        }
        if rc == 0 {
            return Ok(None); // WNOHANG, nothing ended yet
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(None),
            _ => return Err(err),
        }
    }
}

fn zeroed_rusage() -> libc::rusage {
    // SAFETY: rusage is a C struct of integers and timevals; all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}
