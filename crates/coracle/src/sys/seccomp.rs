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
