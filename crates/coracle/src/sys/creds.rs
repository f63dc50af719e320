//! Credential system calls that `nix` and `caps` do not give us in the form we need: one atomic
//! `capset(2)` of the three base sets (with its errno), `capget(2)`, and the bounding set by raw
//! capability number (so that capabilities newer than the `caps` crate are dropped too).

use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, two `__user_cap_data_struct`s.
const CAPS_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapUserHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapUserData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three base capability sets of a thread, as bit masks (bit N = capability number N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    /// The effective set.
    pub effective: u64,
    /// The permitted set.
    pub permitted: u64,
    /// The inheritable set.
    pub inheritable: u64,
}

fn join(lo: u32, hi: u32) -> u64 {
    u64::from(hi) << 32 | u64::from(lo)
}

fn split(v: u64) -> (u32, u32) {
    // Truncation is the point: the low and the high 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    ((v & 0xffff_ffff) as u32, (v >> 32) as u32)
}

/// `capget(2)` for the calling thread.
pub fn capget() -> io::Result<CapSets> {
    let mut hdr = CapUserHeader {
        version: CAPS_V3,
        pid: 0,
    };
    let mut data = [CapUserData::default(); 2];
    // SAFETY: hdr is a valid header; with version 3 the kernel writes two data structs, which is
    // the size of `data`.
    super::cvt(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) })?;
    Ok(CapSets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// `capset(2)` for the calling thread: sets the effective, permitted and inheritable sets in one
/// call, so the kernel checks the new sets against the old ones at once (no ordering pitfalls).
pub fn capset(sets: CapSets) -> io::Result<()> {
    let mut hdr = CapUserHeader {
        version: CAPS_V3,
        pid: 0,
    };
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapUserData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapUserData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: hdr is a valid header; with version 3 the kernel reads two data structs, which is
    // the size of `data`.
    super::cvt(unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) })?;
    Ok(())
}

/// `PR_CAPBSET_READ`: whether capability number `cap` is in the calling thread's bounding set.
/// `Ok(None)` when the kernel does not know the capability (EINVAL).
pub fn capbset_read(cap: u32) -> io::Result<Option<bool>> {
    // SAFETY: PR_CAPBSET_READ takes a capability number and reads no memory.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    match super::cvt(ret) {
        Ok(v) => Ok(Some(v == 1)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `PR_CAPBSET_DROP`: removes capability number `cap` from the calling thread's bounding set
/// (needs CAP_SETPCAP).
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number and reads no memory.
    super::cvt(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) })?;
    Ok(())
}

/// The calling thread's bounding set as a bit mask (every capability number the kernel knows).
pub fn capbset() -> io::Result<u64> {
    let mut mask = 0u64;
    for cap in 0..64u32 {
        match capbset_read(cap)? {
            Some(true) => mask |= 1 << cap,
            Some(false) => {}
            None => break,
        }
    }
    Ok(mask)
}

/// Runs `f` in a forked child of the calling process and returns what it returned: `Err` carries
/// the child's message, or says how the child died. For tests whose body changes process-wide
/// state (credentials, limits): the test process itself stays untouched.
#[cfg(test)]
pub(crate) fn in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};

    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    super::cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })
        .map_err(|e| format!("pipe2: {e}"))?;
    // SAFETY: pipe2 succeeded, so both are fresh descriptors that we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child runs only `f` (plain system calls; glibc's malloc is fork-safe) and
    // leaves with _exit, never returning into the test harness.
    let pid = super::cvt(unsafe { libc::fork() }).map_err(|e| format!("fork: {e}"))?;
    if pid == 0 {
        drop(rd);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let (code, msg) = match result {
            Ok(Ok(())) => (0, String::new()),
            Ok(Err(m)) => (1, m),
            Err(_) => (2, "child panicked".to_string()),
        };
        let mut w = std::fs::File::from(wr);
        let _ = w.write_all(msg.as_bytes());
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(wr);
    let mut msg = String::new();
    let _ = std::fs::File::from(rd).read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: status is a valid out pointer; pid is our child.
    super::cvt(unsafe { libc::waitpid(pid, &mut status, 0) })
        .map_err(|e| format!("waitpid: {e}"))?;
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if msg.is_empty() {
        Err(format!("child failed: wait status {status:#x}"))
    } else {
        Err(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capget_reads_own_sets() {
        let s = capget().unwrap();
        // The effective set is always a subset of the permitted set.
        assert_eq!(s.effective & !s.permitted, 0);
    }

    #[test]
    fn capbset_knows_cap_chown() {
        assert_eq!(capbset_read(0).unwrap(), Some(true));
        assert_eq!(capbset_read(63).unwrap(), None);
        assert_ne!(capbset().unwrap() & 1, 0);
    }

    #[test]
    fn in_child_reports_error() {
        assert_eq!(in_child(|| Err("boom".into())), Err("boom".to_string()));
        assert_eq!(in_child(|| Ok(())), Ok(()));
    }
}
