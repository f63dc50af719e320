//! Seccomp: the OCI `linux.seccomp` section compiled to one classic-BPF program in pure Rust
//! (no libseccomp), installed with our own `seccomp(2)` call, and the user-notification fd handed
//! to a seccomp agent.
//!
//! The three steps and where they run:
//! 1. [`Program::from_spec`], in the runtime before the clone: checks and compiles everything
//!    (all ABIs of the host the profile lists, every action and operator, runc's rules: unknown
//!    syscall names skipped, rules with the default action dropped, the `-ENOSYS` stub for newer
//!    syscalls). Errors name the field (`linux.seccomp.syscalls[3].args[0].index`).
//! 2. [`install`], in the single-threaded container process: one `seccomp(2)`; returns the
//!    listener fd when a rule uses `SCMP_ACT_NOTIFY`. It sets no `no_new_privs`: the caller
//!    orders it with the capability drop as runc does.
//! 3. [`send_to_listener`], in the runtime: the fd and [`process_state_json`] to `listenerPath`.
//!
//! Semantics, where OCI leaves them open, follow runc + libseccomp: a call through an ABI the
//! profile does not list is killed (`SCMP_ACT_KILL`, the thread); the native ABI is always
//! filtered; for one syscall, rules are tried in profile order and the first whose conditions all
//! hold decides; conditions on the same argument twice become alternatives (OR); on a 32-bit ABI
//! only the low 32 bits of an argument are compared; `SCMP_CMP_MASKED_EQ` is
//! `(arg & value) == valueTwo`.
//!
//! [`docker`] converts Docker's profile format (`archMap`, `includes`/`excludes`) to the OCI
//! form, as dockerd does before it calls a runtime.

mod abi;
pub mod bpf;
mod compile;
pub mod docker;
pub mod model;
mod notify;
mod tables;

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};

pub use abi::Abi;
pub use bpf::{SeccompData, SockFilter};
pub use notify::{process_state_json, send_to_listener, SECCOMP_FD_NAME};

use compile::{FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_WAIT_KILLABLE_RECV};

/// What went wrong compiling, installing or handing off a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The host's architecture has no syscall tables in coracle.
    #[error("linux.seccomp: seccomp filters are not supported on {arch}")]
    UnsupportedHost {
        /// The host architecture.
        arch: &'static str,
    },
    /// An errno value that does not fit in the 16 data bits of a filter's return value.
    #[error("{field}: errno value {value} is larger than 65535")]
    ErrnoRange {
        /// The field, e.g. `linux.seccomp.syscalls[2].errnoRet`.
        field: String,
        /// The value given.
        value: u32,
    },
    /// An argument index past the sixth argument.
    #[error("{field}: argument index {index} is not in 0..=5")]
    ArgIndex {
        /// The field, e.g. `linux.seccomp.syscalls[3].args[0].index`.
        field: String,
        /// The index given.
        index: usize,
    },
    /// `SCMP_ACT_NOTIFY` as the default action (it would trap the runtime's own calls).
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    /// `SCMP_ACT_NOTIFY` without `listenerPath`.
    #[error("{field}: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")]
    NotifyWithoutListener {
        /// The field of the rule.
        field: String,
    },
    /// seccompiler refused a rule's conditions.
    #[error("linux.seccomp.syscalls: compiling argument conditions")]
    Seccompiler(#[source] seccompiler::BackendError),
    /// The program is longer than the kernel accepts.
    #[error("linux.seccomp: the filter needs {0} BPF instructions, more than the kernel's 4096")]
    TooLong(usize),
    /// The emitter produced an invalid program (a bug in coracle).
    #[error("linux.seccomp: internal error: the generated BPF program is invalid")]
    Assemble,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x})")]
    Install {
        /// The flags passed.
        flags: u32,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Serialising the container process state.
    #[error("serialising the seccomp ContainerProcessState")]
    StateJson(#[source] serde_json::Error),
    /// Connecting to the agent's socket.
    #[error("connecting to the seccomp listener {path}")]
    Connect {
        /// `listenerPath`.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Sending the fd and state.
    #[error("sending the seccomp notify fd to {path}")]
    Send {
        /// `listenerPath`.
        path: PathBuf,
        /// The error.
        #[source]
        source: nix::Error,
    },
    /// The socket took only part of the message.
    #[error("sending the seccomp notify fd to {path}: sent {sent} of {len} bytes")]
    ShortSend {
        /// `listenerPath`.
        path: PathBuf,
        /// Bytes sent.
        sent: usize,
        /// Bytes to send.
        len: usize,
    },
}

/// A compiled, checked seccomp filter: the BPF program and how to install it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<SockFilter>,
    flags: u32,
    notify: bool,
}

impl Program {
    /// Compiles the OCI seccomp section for this host (see the module documentation for the
    /// semantics). Everything is checked here; [`install`] only makes the system call.
    pub fn from_spec(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
        let c = compile::compile(seccomp)?;
        Ok(Program {
            insns: c.insns,
            flags: c.flags,
            notify: c.notify,
        })
    }

    /// The BPF instructions.
    pub fn instructions(&self) -> &[SockFilter] {
        &self.insns
    }

    /// The `SECCOMP_FILTER_FLAG_*` flags [`install`] passes (`NEW_LISTENER` added when
    /// [`Program::uses_notify`]).
    pub fn flags(&self) -> u32 {
        let mut flags = self.flags;
        if self.notify {
            flags |= FLAG_NEW_LISTENER;
        } else {
            // Only meaningful (and only accepted by the kernel) with a listener.
            flags &= !FLAG_WAIT_KILLABLE_RECV;
        }
        flags
    }

    /// Whether a rule returns `SCMP_ACT_NOTIFY`, so [`install`] returns a listener fd.
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// What the filter returns for a call (`SECCOMP_RET_*` action | data), computed by running
    /// the program in an interpreter, as the kernel would.
    pub fn evaluate(&self, data: &SeccompData) -> u32 {
        bpf::run(&self.insns, data)
    }
}

/// Installs `program` on the calling thread (the container process, single-threaded). Needs
/// `no_new_privs` or `CAP_SYS_ADMIN`; sets neither. Returns the user-notification fd when the
/// program uses `SCMP_ACT_NOTIFY`.
///
/// Where, as runc (`standard_init_linux.go`): without `process.noNewPrivileges`, install before
/// the capability drop and user switch (the kernel demands CAP_SYS_ADMIN then), so a profile
/// that denies `setuid`/`capset` still lets the runtime finish; with it, set no_new_privs and
/// install as late as possible, right before `execve`, so the profile constrains as few of the
/// runtime's own calls as possible. Every call the process makes after this one (the hand-off
/// of the fd, `execve`) must be allowed by the profile.
pub fn install(program: &Program) -> Result<Option<OwnedFd>, SeccompError> {
    let flags = program.flags();
    crate::sys::seccomp::set_mode_filter(&program.insns, flags)
        .map_err(|source| SeccompError::Install { flags, source })
}

/// The seccomp part of `features` (runtime-spec features.md): the actions, operators,
/// architectures and flags coracle knows, and the flags this kernel supports.
pub fn features() -> oci_spec::runtime::Seccomp {
    use oci_spec::runtime::LinuxSeccompAction as A;
    let actions = vec![
        A::ScmpActAllow,
        A::ScmpActErrno,
        A::ScmpActKill,
        A::ScmpActKillProcess,
        A::ScmpActKillThread,
        A::ScmpActLog,
        A::ScmpActNotify,
        A::ScmpActTrace,
        A::ScmpActTrap,
    ];
    let operators = [
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_LE",
        "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE",
    ];
    let archs: Vec<Arch> = Abi::host().iter().map(|a| a.oci()).collect();
    let known = [
        ("SECCOMP_FILTER_FLAG_TSYNC", None),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", Some(FLAG_SPEC_ALLOW)),
        ("SECCOMP_FILTER_FLAG_LOG", Some(FLAG_LOG)),
        (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            Some(FLAG_WAIT_KILLABLE_RECV),
        ),
    ];
    let supported: Vec<String> = known
        .iter()
        .filter(|(_, bit)| {
            // TSYNC is accepted and ignored (the container process is single-threaded).
            bit.is_none_or(|b| {
                let b = if b == FLAG_WAIT_KILLABLE_RECV {
                    b | FLAG_NEW_LISTENER
                } else {
                    b
                };
                crate::sys::seccomp::filter_flag_supported(b)
            })
        })
        .map(|(n, _)| (*n).to_string())
        .collect();
    let mut f = oci_spec::runtime::Seccomp::default();
    f.set_enabled(Some(true));
    f.set_actions(Some(actions));
    f.set_operators(Some(operators.iter().map(|s| (*s).to_string()).collect()));
    f.set_archs(Some(archs));
    f.set_known_flags(Some(known.iter().map(|(n, _)| (*n).to_string()).collect()));
    f.set_supported_flags(Some(supported));
    f
}

/// The default action of a profile as the filter returns it (for callers that report it).
pub fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
) -> Result<u32, SeccompError> {
    compile::action_value(action, errno_ret, || "errnoRet".into())
}

#[cfg(test)]
mod tests;
