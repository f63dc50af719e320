//! `seccomp(2)`: installing a classic-BPF filter (with the flags the OCI spec names and a user
//! notification listener), probing which flags and actions the kernel knows, and the ioctls of the
//! listener fd (receive a notification, answer it).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SockFilter {
    /// The opcode (`BPF_LD | BPF_W | BPF_ABS`, ...).
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

const _: () =
    assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());

/// `SECCOMP_SET_MODE_FILTER`.
const SET_MODE_FILTER: libc::c_uint = 1;

fn seccomp(op: libc::c_uint, flags: libc::c_ulong, arg: *const libc::c_void) -> io::Result<i64> {
    // SAFETY: seccomp(2) reads `arg` according to `op`; every caller in this module passes either
    // null (a probe, which the kernel answers with EFAULT) or a pointer valid for that operation.
    cvt(unsafe { libc::syscall(libc::SYS_seccomp, op, flags, arg) })
}

/// Installs `filter` on the calling thread with `SECCOMP_SET_MODE_FILTER` and `flags`
/// (`SECCOMP_FILTER_FLAG_*`). With `SECCOMP_FILTER_FLAG_NEW_LISTENER` in `flags` the kernel returns
/// the user-notification fd, which is returned here (close-on-exec, as the kernel makes it).
///
/// The caller needs `no_new_privs` or `CAP_SYS_ADMIN` in its user namespace; this function sets
/// neither.
pub fn set_mode_filter(filter: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    let len =
        u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program; the cast to *mut is what the C struct asks for.
        filter: filter.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    let ret = seccomp(
        SET_MODE_FILTER,
        libc::c_ulong::from(flags),
        (&raw const prog).cast::<libc::c_void>(),
    )?;
    if libc::c_ulong::from(flags) & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER the kernel returned a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Whether the kernel knows the filter flag `flag` (`SECCOMP_FILTER_FLAG_*`), probed as libseccomp
/// does: `seccomp(SET_MODE_FILTER, flag, NULL)` fails with EFAULT for a known flag, EINVAL else.
/// Installs nothing.
pub fn filter_flag_supported(flag: u32) -> bool {
    match seccomp(SET_MODE_FILTER, libc::c_ulong::from(flag), std::ptr::null()) {
        Err(e) => e.raw_os_error() == Some(libc::EFAULT),
        Ok(_) => false,
    }
}

/// Whether the kernel knows the filter return action `action` (`SECCOMP_RET_*`), with
/// `SECCOMP_GET_ACTION_AVAIL`.
pub fn action_available(action: u32) -> bool {
    seccomp(
        libc::SECCOMP_GET_ACTION_AVAIL,
        0,
        (&raw const action).cast::<libc::c_void>(),
    )
    .is_ok()
}

/// What the filter saw: `struct seccomp_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeccompData {
    /// The system call number (for x32 with `__X32_SYSCALL_BIT` set).
    pub nr: i32,
    /// The `AUDIT_ARCH_*` of the calling ABI.
    pub arch: u32,
    /// The instruction pointer at the call.
    pub instruction_pointer: u64,
    /// The six arguments.
    pub args: [u64; 6],
}

/// A user notification read from a listener fd (`struct seccomp_notif`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The cookie to answer with.
    pub id: u64,
    /// The pid of the calling task, in the listener's PID namespace.
    pub pid: u32,
    /// The call.
    pub data: SeccompData,
}

/// The answer to a notification (`struct seccomp_notif_resp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotificationResponse {
    /// The notification's id.
    pub id: u64,
    /// The system call's return value when `error` is 0.
    pub val: i64,
    /// A negated errno to fail the call with (e.g. `-libc::EPERM`), or 0.
    pub error: i32,
    /// `SECCOMP_USER_NOTIF_FLAG_CONTINUE` to let the kernel run the call.
    pub flags: u32,
}

/// `SECCOMP_IOCTL_NOTIF_RECV`: blocks until a notification arrives on `listener`.
pub fn notif_recv(listener: BorrowedFd<'_>) -> io::Result<Notification> {
    // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
    let mut raw: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one seccomp_notif into `raw`, which is that type and size.
    cvt(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &raw mut raw,
        )
    })?;
    Ok(Notification {
        id: raw.id,
        pid: raw.pid,
        data: SeccompData {
            nr: raw.data.nr,
            arch: raw.data.arch,
            instruction_pointer: raw.data.instruction_pointer,
            args: raw.data.args,
        },
    })
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: answers a notification on `listener`.
pub fn notif_send(listener: BorrowedFd<'_>, resp: &NotificationResponse) -> io::Result<()> {
    let mut raw = libc::seccomp_notif_resp {
        id: resp.id,
        val: resp.val,
        error: resp.error,
        flags: resp.flags,
    };
    // SAFETY: the ioctl reads one seccomp_notif_resp from `raw`, which is that type.
    cvt(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &raw mut raw,
        )
    })?;
    Ok(())
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: whether the task behind notification `id` still waits.
pub fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> io::Result<bool> {
    let mut id = id;
    // SAFETY: the ioctl reads one u64 from `id`.
    match cvt(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &raw mut id,
        )
    }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Helpers for the seccomp tests: a forked child whose wait status is returned, raw system calls
/// (through `syscall` and, on x86_64, through the i386 `int 0x80` gate) and a SIGSYS handler.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io;

    /// Runs `f` in a forked child that exits with the code `f` returns; returns the raw wait
    /// status (so a death by signal can be checked).
    pub(crate) fn fork_wait(f: impl FnOnce() -> i32) -> io::Result<i32> {
        // SAFETY: the child runs only `f` (system calls, small allocations: glibc's malloc is
        // fork-safe) and leaves with _exit, never returning into the test harness.
        let pid = super::cvt(unsafe { libc::fork() })?;
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(125);
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: status is a valid out pointer; pid is our child.
        super::cvt(unsafe { libc::waitpid(pid, &mut status, 0) })?;
        Ok(status)
    }

    /// `syscall(nr, args...)`, returning the raw result or `-errno`.
    ///
    /// # Safety
    /// The call must not touch memory in a way Rust does not expect: use it for calls with
    /// scalar arguments or pointers to live buffers only.
    pub(crate) unsafe fn raw(nr: libc::c_long, a: [u64; 6]) -> i64 {
        // SAFETY: the caller vouches for the call and its arguments.
        let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
        if r < 0 {
            -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            r
        }
    }

    /// An i386 system call through `int 0x80` from this 64-bit process (three arguments);
    /// returns the kernel's result (`-errno` on failure).
    ///
    /// # Safety
    /// As for [`raw`]: only calls with scalar arguments.
    #[cfg(target_arch = "x86_64")]
    pub(crate) unsafe fn int80(nr: u32, a: u32, b: u32, c: u32) -> i32 {
        let ret: i32;
        // SAFETY: int 0x80 enters the kernel's compat entry; rbx (reserved by LLVM) is swapped
        // in and out around it; the kernel preserves every other register but eax.
        unsafe {
            std::arch::asm!(
                "xchg {a:r}, rbx",
                "int 0x80",
                "xchg {a:r}, rbx",
                a = inout(reg) u64::from(a) => _,
                inlateout("eax") nr.cast_signed() => ret,
                in("ecx") b,
                in("edx") c,
            );
        }
        ret
    }

    /// Receives one message with one fd attached (`SCM_RIGHTS`) on `sock`.
    pub(crate) fn recv_with_fd(
        sock: std::os::fd::BorrowedFd<'_>,
    ) -> io::Result<(Vec<u8>, std::os::fd::OwnedFd)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
        let mut buf = vec![0u8; 65536];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = {
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let fd = msg.cmsgs()?.find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            });
            (msg.bytes, fd)
        };
        let fd = fd.ok_or_else(|| io::Error::other("no fd in the message"))?;
        buf.truncate(len);
        // SAFETY: the kernel installed this fd for us with the message; nothing else owns it.
        Ok((buf, unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    extern "C" fn on_sigsys(
        _sig: libc::c_int,
        info: *mut libc::siginfo_t,
        _ctx: *mut libc::c_void,
    ) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let (code, errno) = unsafe { ((*info).si_code, (*info).si_errno) };
        // SYS_SECCOMP = 1: the signal came from a seccomp TRAP, whose data is in si_errno.
        let status = if code == 1 { 100 + (errno & 0x7f) } else { 99 };
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(status) };
    }

    /// Installs a SIGSYS handler that exits with `100 + SECCOMP_RET_DATA` (mod 128) when the
    /// signal comes from a seccomp TRAP, 99 otherwise.
    pub(crate) fn exit_on_sigsys() -> io::Result<()> {
        // SAFETY: sigaction is plain data; zeroed is a valid empty mask and no flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            on_sigsys;
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        // SAFETY: sa is a valid sigaction with an async-signal-safe handler.
        super::cvt(unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_answer_without_installing() {
        assert!(filter_flag_supported(2)); // SECCOMP_FILTER_FLAG_LOG
        assert!(!filter_flag_supported(1 << 30));
        assert!(action_available(libc::SECCOMP_RET_ALLOW));
        assert!(!action_available(0x1234_0000));
    }
}
