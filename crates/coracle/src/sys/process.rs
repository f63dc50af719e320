//! Process system calls: clone3 (with a clone fallback), pidfds, close_range, prctl.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// What `clone3` returned in the calling process.
#[derive(Debug)]
pub enum CloneResult {
    /// We are the child.
    Child,
    /// We are the parent: the child's pid (in our PID namespace) and a pidfd for it.
    Parent {
        /// The child's pid.
        pid: libc::pid_t,
        /// A pidfd referring to the child.
        pidfd: OwnedFd,
    },
}

/// `CLONE_INTO_CGROUP` (libc's constant has the wrong width).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Clones the calling process like `fork(2)` (no shared memory, same stack copy), with `flags`
/// (`CLONE_NEW*`) and `CLONE_PIDFD` added, SIGCHLD as exit signal, and, when `cgroup` is given,
/// `CLONE_INTO_CGROUP` so that the child starts in that (cgroup v2) directory.
///
/// Falls back to the `clone` system call where `clone3` is missing (only without `cgroup`).
///
/// # Safety
/// As for `fork(2)`: the child must only call async-signal-safe code if other threads exist.
/// The caller must be single-threaded or accept that.
pub unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<CloneResult> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT the kernel takes the exit signal of our parent's child (us).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::from(fd.as_raw_fd().cast_unsigned());
    }
    // SAFETY: args is a valid clone_args of the size we pass; no CLONE_VM, so the child gets a
    // copy of our memory and returns here like after fork(2).
    let mut ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS)
        && cgroup.is_none()
    {
        // SAFETY: the raw clone system call with a null stack behaves like fork; with CLONE_PIDFD
        // the kernel stores the pidfd at the parent_tid argument, which points to `pidfd`.
        ret = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::CLONE_PIDFD as u64 | libc::SIGCHLD as u64) as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                &mut pidfd as *mut RawFd,
                std::ptr::null_mut::<libc::c_void>(),
                0 as libc::c_ulong,
            )
        };
    }
    let ret = cvt(ret)?;
    if ret == 0 {
        return Ok(CloneResult::Child);
    }
    // SAFETY: the kernel gave us this new pidfd and nobody else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid =
        libc::pid_t::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    Ok(CloneResult::Parent { pid, pidfd })
}

/// Opens a pidfd for `pid` (`pidfd_open(2)`).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel gave us this new fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `signal` to the process a pidfd refers to (`pidfd_send_signal(2)`).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the fd is valid for the call; a null siginfo is allowed.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null_mut::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// Waits for the process a pidfd refers to and returns its exit status as a shell would
/// (the code, or 128 + the signal number). `None` when `nohang` and it still runs.
pub fn pidfd_wait(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<i32>> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let mut flags = libc::WEXITED;
    if nohang {
        flags |= libc::WNOHANG;
    }
    loop {
        // SAFETY: info is a valid siginfo_t to write to; P_PIDFD takes the fd as id.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd().cast_unsigned(),
                &mut info,
                flags,
            )
        };
        match cvt(ret) {
            Ok(_) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    // SAFETY: waitid filled info (si_pid is 0 when WNOHANG found nothing).
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match code {
        libc::CLD_EXITED => status,
        _ => 128 + status,
    }))
}

/// Marks every fd from `first` up as close-on-exec (`close_range(2)` with CLOSE_RANGE_CLOEXEC).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: plain system call with integer arguments; marking fds CLOEXEC frees nothing.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })?;
    Ok(())
}

/// Sets or clears the calling process's "dumpable" attribute (`PR_SET_DUMPABLE`).
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            libc::c_ulong::from(dumpable),
            0,
            0,
            0,
        )
    })?;
    Ok(())
}

/// Whether the calling process is "dumpable" (`PR_GET_DUMPABLE` returns 1).
pub fn is_dumpable() -> io::Result<bool> {
    // SAFETY: prctl with integer arguments.
    let v = cvt(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) })?;
    Ok(v == 1)
}

/// Sets `PR_SET_NO_NEW_PRIVS`.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// Restores the default disposition of every catchable signal and unblocks all signals, so
/// that the program exec'ed next starts as a fresh process would (the runtime ignores SIGPIPE).
pub fn reset_signals() {
    for sig in nix::sys::signal::Signal::iterator() {
        if matches!(
            sig,
            nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGSTOP
        ) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no handler code; failures leave the old disposition.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Sets the NIS domain name of the calling process's uts namespace (`setdomainname(2)`).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    cvt(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

/// Ends the calling process at once with `code`, running no destructors or atexit handlers
/// (for the cloned child, whose memory is a copy of the parent's).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Joins a new anonymous session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`), so the
/// container does not share the runtime's keyring.
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for a new anonymous keyring; no memory is passed.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    })?;
    Ok(())
}

/// Makes the terminal `fd` the controlling terminal of the calling session (`TIOCSCTTY`).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument; the fd is valid for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// Sets a terminal's window size (`TIOCSWINSZ`).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// Takes ownership of an fd the kernel just handed us (e.g. through SCM_RIGHTS).
pub fn own_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the fd was just received from the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A terminal's window size as (rows, cols) (`TIOCGWINSZ`), or `None` when `fd` is none.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which lives for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) }).ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Closes `fd` in the calling process only. For an fd a cloned child inherited and must not
/// keep (closing is not unlocking: a flock held through the same open file stays held by the
/// parent, and is released only when the last holder closes it).
pub fn close_inherited(fd: BorrowedFd<'_>) {
    // SAFETY: the caller's copy of the fd table holds this fd; the owner in this process is
    // never used again (the child leaves by execve or _exit), so nothing closes it twice.
    let _ = unsafe { libc::close(fd.as_raw_fd()) };
}

/// A poll(2) timeout for `d`, saturating at the largest one poll takes (~24 days).
pub fn poll_timeout(d: std::time::Duration) -> nix::poll::PollTimeout {
    nix::poll::PollTimeout::try_from(d).unwrap_or(nix::poll::PollTimeout::MAX)
}
