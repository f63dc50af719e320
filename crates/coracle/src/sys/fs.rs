//! Filesystem system calls: openat2, the new mount API (open_tree, move_mount, mount_setattr,
//! fsopen/fsconfig/fsmount) and mount(2) with raw flags (nix's `MsFlags` lacks some).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::cvt;

/// `RESOLVE_NO_XDEV`: do not cross mount points.
pub const RESOLVE_NO_XDEV: u64 = 0x01;
/// `RESOLVE_NO_MAGICLINKS`: do not follow /proc magic links.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_NO_SYMLINKS`: do not follow any symlink.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// `RESOLVE_BENEATH`: fail on any escape from the directory.
pub const RESOLVE_BENEATH: u64 = 0x08;
/// `RESOLVE_IN_ROOT`: resolve as if the directory were the root (`..` and absolute symlinks
/// stay inside).
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// `MOUNT_ATTR_RDONLY`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
/// `MOUNT_ATTR_NOSUID`.
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
/// `MOUNT_ATTR_NODEV`.
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
/// `MOUNT_ATTR_NOEXEC`.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
/// `MOUNT_ATTR__ATIME`: the mask of the access-time setting.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x0000_0070;
/// `MOUNT_ATTR_RELATIME` (the value 0 inside the atime mask).
pub const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
/// `MOUNT_ATTR_NOATIME`.
pub const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
/// `MOUNT_ATTR_STRICTATIME`.
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
/// `MOUNT_ATTR_NODIRATIME`.
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;
/// `MOUNT_ATTR_NOSYMFOLLOW`.
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `AT_RECURSIVE` for open_tree and mount_setattr.
pub const AT_RECURSIVE: u32 = 0x8000;
/// `OPEN_TREE_CLONE`: make a detached copy of the mount (a bind mount).
pub const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

/// The `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    /// `MOUNT_ATTR_*` bits to set.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits to clear (include [`MOUNT_ATTR_ATIME_MASK`] to change atime).
    pub attr_clr: u64,
    /// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE` or `MS_UNBINDABLE`, or 0 to leave it.
    pub propagation: u64,
    /// A user namespace fd for `MOUNT_ATTR_IDMAP` (unused here: 0).
    pub userns_fd: u64,
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this new fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

const EMPTY: &CStr = c"";

/// The bits of a C `int` flag word, as the unsigned kernel ABI takes them.
fn bits(flags: i32) -> u32 {
    u32::from_ne_bytes(flags.to_ne_bytes())
}

/// `openat2(2)`: opens `path` relative to `dir` with `flags` (`O_*`, O_CLOEXEC is added),
/// `mode` (for O_CREAT) and `resolve` (`RESOLVE_*`). Retries on EAGAIN (a concurrent rename
/// under RESOLVE_IN_ROOT) a few times.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let cpath = cstring(path)?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::from(bits(flags | libc::O_CLOEXEC));
    how.mode = u64::from(mode);
    how.resolve = resolve;
    let mut tries = 0;
    loop {
        // SAFETY: cpath is a valid C string, how a valid open_how of the size we pass.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match cvt(ret) {
            Ok(fd) => return owned(fd),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 16 => tries += 1,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// `open_tree(2)` on the object `fd` refers to (AT_EMPTY_PATH): with [`OPEN_TREE_CLONE`] a
/// detached bind mount of it (of its whole subtree with [`AT_RECURSIVE`]).
pub fn open_tree(fd: BorrowedFd<'_>, flags: u32) -> io::Result<OwnedFd> {
    let flags = flags | bits(libc::AT_EMPTY_PATH) | bits(libc::O_CLOEXEC);
    // SAFETY: EMPTY is a valid C string; fd is valid for the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), EMPTY.as_ptr(), flags) };
    owned(cvt(ret)?)
}

/// `move_mount(2)` of the mount `from` (from open_tree or fsmount) onto the object `to`
/// refers to; both by fd (the EMPTY_PATH forms).
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both fds are valid for the call, the paths are valid empty C strings.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            EMPTY.as_ptr(),
            to.as_raw_fd(),
            EMPTY.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `mount_setattr(2)` on the mount `fd` refers to (AT_EMPTY_PATH), on its whole subtree when
/// `recursive`. Only the bits named in `attr` change: locked flags stay as they are.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut flags = bits(libc::AT_EMPTY_PATH);
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: attr is a valid mount_attr of the size we pass; fd is valid for the call.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// Makes a new, detached mount of the filesystem `fstype` (fsopen, fsconfig with each of
/// `params` as a string key/value, create, fsmount with `attr` `MOUNT_ATTR_*` flags), ready for
/// [`move_mount`].
pub fn fs_mount(fstype: &str, params: &[(&str, &str)], attr: u64) -> io::Result<OwnedFd> {
    let ctype = CString::new(fstype).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: ctype is a valid C string.
    let fsfd = owned(cvt(unsafe {
        libc::syscall(libc::SYS_fsopen, ctype.as_ptr(), libc::FSOPEN_CLOEXEC)
    })?)?;
    for (key, value) in params {
        let k = CString::new(*key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let v = CString::new(*value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: k and v are valid C strings; fsfd is valid.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        })?;
    }
    // SAFETY: null key/value are what FSCONFIG_CMD_CREATE takes; fsfd is valid.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: fsfd is a created filesystem context.
    owned(cvt(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fsfd.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr,
        )
    })?)
}

/// `mount(2)` with raw `MS_*` flags. `None` source/fstype/data are passed as NULL.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
    let source = source.map(cstring).transpose()?;
    let target = cstring(target)?;
    let fstype = fstype.map(CString::new).transpose().map_err(invalid)?;
    let data = data.map(CString::new).transpose().map_err(invalid)?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a valid C string or NULL, which mount(2) accepts.
    cvt(unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast::<libc::c_void>(),
        )
    })?;
    Ok(())
}

/// The `/proc/self/fd/N` path of `fd`, to give an fd to a path-based system call (mount(2)):
/// the kernel follows the magic link to the very object the fd refers to.
pub fn fd_path(fd: BorrowedFd<'_>) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Test helper: runs `f` in a forked child and returns its result (the error text travels
/// back over a pipe). The child exits with `_exit`, so nothing of the test harness runs in it.
#[cfg(test)]
pub(crate) fn run_in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    use std::io::{Read, Write};
    let (rd, wr) = nix::unistd::pipe().map_err(|e| e.to_string())?;
    // SAFETY: the child only runs `f` (test code that allocates; glibc makes malloc usable
    // after fork) and then `_exit`s.
    match unsafe { nix::unistd::fork() }.map_err(|e| e.to_string())? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err("panicked".into()));
            let mut w = std::fs::File::from(wr);
            let code = match result {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = w.write_all(msg.as_bytes());
                    1
                }
            };
            drop(w);
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut msg);
            let status = nix::sys::wait::waitpid(child, None).map_err(|e| e.to_string())?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(format!("child {other:?}: {msg}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn openat2_in_root_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/x"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/x", dir.path().join("up")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        for p in ["link/x", "up", "/etc/x", "../etc/x"] {
            let fd = openat2(
                root.as_fd(),
                Path::new(p),
                libc::O_RDONLY,
                0,
                RESOLVE_IN_ROOT,
            )
            .unwrap();
            let got = std::fs::read_to_string(fd_path(fd.as_fd())).unwrap();
            assert_eq!(got, "inside", "{p}");
        }
        let err = openat2(
            root.as_fd(),
            Path::new("nope"),
            libc::O_RDONLY,
            0,
            RESOLVE_IN_ROOT,
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
