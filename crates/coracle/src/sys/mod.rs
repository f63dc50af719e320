//! Thin, safe wrappers over the system calls that `nix` lacks (clone3, pidfd, openat2,
//! close_range, the new mount API). Every `unsafe` block of the crate lives under this module.

pub mod bpf;
pub mod creds;
pub mod fs;
pub mod process;
pub mod seccomp;

use std::io;

/// Turns the return value of a raw system call into a `Result`: a negative value means the call
/// failed and `errno` tells why.
pub(crate) fn cvt<T: Copy + PartialOrd + Default>(ret: T) -> io::Result<T> {
    if ret < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
