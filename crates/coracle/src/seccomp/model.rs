//! A model of what an OCI seccomp profile means, written as directly as the rules read (no BPF):
//! for one call, the action the filter must return. The tests and the fuzz target compare every
//! compiled [`Program`](super::Program) against it.

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompArg, LinuxSeccompOperator as Op,
};

use super::abi::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::compile::{action_value, RET_KILL_THREAD};
use super::{SeccompData, SeccompError};

/// The `SECCOMP_RET_*` value the filter for `spec` must return for the call `d`, by the
/// semantics of runc + libseccomp (see the module documentation of [`super`]).
pub fn expected_action(spec: &LinuxSeccomp, d: &SeccompData) -> Result<u32, SeccompError> {
    let nr = d.nr.cast_unsigned();
    let abi = match d.arch {
        AUDIT_ARCH_X86_64 if nr >= X32_SYSCALL_BIT => Abi::X32,
        AUDIT_ARCH_X86_64 => Abi::X86_64,
        AUDIT_ARCH_I386 => Abi::X86,
        _ => return Ok(RET_KILL_THREAD),
    };
    let listed: Vec<Abi> = spec
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| Abi::from_oci(*a))
        .collect();
    if Some(abi) != Abi::native() && !listed.contains(&abi) {
        return Ok(RET_KILL_THREAD);
    }
    let default = action_value(spec.default_action(), spec.default_errno_ret(), || {
        "linux.seccomp.defaultErrnoRet".into()
    })?;
    let syscalls = spec.syscalls().as_deref().unwrap_or_default();
    let enosys = libc::ENOSYS.cast_unsigned();
    let stub = !matches!(
        spec.default_action(),
        A::ScmpActAllow | A::ScmpActLog | A::ScmpActTrace
    ) && spec.default_errno_ret() != Some(enosys);
    if stub && listed.contains(&abi) {
        let max = syscalls
            .iter()
            .flat_map(|s| s.names())
            .filter_map(|n| abi.syscall(n))
            .max();
        if max.is_some_and(|m| nr > m) {
            return Ok(0x0005_0000 | enosys);
        }
    }
    let width = if abi.wide_args() {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    for (i, sc) in syscalls.iter().enumerate() {
        let action = action_value(sc.action(), sc.errno_ret(), || {
            format!("linux.seccomp.syscalls[{i}].errnoRet")
        })?;
        if action == default || !sc.names().iter().any(|n| abi.syscall(n) == Some(nr)) {
            continue;
        }
        let args = sc.args().as_deref().unwrap_or_default();
        let mut results = Vec::with_capacity(args.len());
        for (j, a) in args.iter().enumerate() {
            let arg = d
                .args
                .get(a.index())
                .ok_or_else(|| SeccompError::ArgIndex {
                    field: format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    index: a.index(),
                })?;
            results.push(holds(a, arg & width, width));
        }
        let same_arg_twice = (0..6).any(|ix| args.iter().filter(|a| a.index() == ix).count() > 1);
        let matched = if same_arg_twice {
            results.iter().any(|r| *r)
        } else {
            results.iter().all(|r| *r)
        };
        if matched {
            return Ok(action);
        }
    }
    Ok(default)
}

fn holds(a: &LinuxSeccompArg, x: u64, width: u64) -> bool {
    let v = a.value() & width;
    match a.op() {
        Op::ScmpCmpNe => x != v,
        Op::ScmpCmpLt => x < v,
        Op::ScmpCmpLe => x <= v,
        Op::ScmpCmpEq => x == v,
        Op::ScmpCmpGe => x >= v,
        Op::ScmpCmpGt => x > v,
        Op::ScmpCmpMaskedEq => x & v == a.value_two().unwrap_or(0) & width,
    }
}
