//! OCI seccomp -> one classic-BPF program.
//!
//! Layout (each part resolved by [`Assembler`]):
//! ```text
//!   ld arch; jeq AUDIT_ARCH_x -> group x ...; ret KILL_THREAD        (an ABI not listed)
//! group x86_64:  ld nr; jge X32_BIT -> x32 section (or bad arch) else x86_64 section
//! group i386:    ld nr; i386 section
//! section:       [jgt max_nr -> ret ERRNO(ENOSYS)]   (runc's -ENOSYS stub for newer syscalls)
//!                binary search on nr (jge), leaves of a few `jeq nr -> target`, then `ret default`
//!                targets: `ret action` (shared within the leaf) or the syscall's rule chain:
//!                for each rule in spec order: <argument checks from seccompiler>; ret action
//!                (a failed check falls through to the next rule), finally `ret default`.
//! ```
//! seccompiler compiles the argument checks of one rule (AND of its conditions, 64-bit or 32-bit
//! comparisons); everything it cannot express (several actions, several ABIs, the arch dispatch,
//! the x32 split, the stub) is emitted here.

use std::collections::BTreeMap;

use oci_spec::runtime::LinuxSeccompOperator as Op;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
};
use seccompiler::{BpfProgram, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::abi::{Abi, X32_SYSCALL_BIT};
use super::bpf::{self, AssembleError, Assembler, Target, JEQ, JGE, JGT};
use super::{SeccompError, SockFilter};

/// `SECCOMP_RET_KILL_THREAD`: what a call through an ABI the profile does not list gets (as
/// libseccomp's default bad-arch action).
pub(super) const RET_KILL_THREAD: u32 = 0;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
/// Syscalls with a number here or less share one binary-search leaf.
const LEAF: usize = 6;

/// The checked plan: the program, the filter flags, whether a rule notifies.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub insns: Vec<SockFilter>,
    pub flags: u32,
    pub notify: bool,
}

/// One argument comparison, checked (index < 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// One rule of a syscall in one ABI: all conditions must hold; then `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// The `SECCOMP_RET_*` value of an OCI action; `errno_ret` counts for ERRNO and TRACE (EPERM
/// when absent, as runc).
pub(super) fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: impl Fn() -> String,
) -> Result<u32, SeccompError> {
    let data = || -> Result<u32, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM.cast_unsigned()),
            Some(v) if v <= 0xffff => Ok(v),
            Some(value) => Err(SeccompError::ErrnoRange {
                field: field(),
                value,
            }),
        }
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => 0x8000_0000,
        LinuxSeccompAction::ScmpActTrap => 0x0003_0000,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data()?,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data()?,
        LinuxSeccompAction::ScmpActNotify => 0x7fc0_0000,
        LinuxSeccompAction::ScmpActLog => 0x7ffc_0000,
        LinuxSeccompAction::ScmpActAllow => 0x7fff_0000,
    })
}

/// The rules one OCI syscall entry stands for: its conditions ANDed, or, when two conditions name
/// the same argument, one rule per condition (ORed), as runc does.
fn alternatives(i: usize, args: &[LinuxSeccompArg]) -> Result<Vec<Vec<Cond>>, SeccompError> {
    let mut counts = [0usize; 6];
    let mut conds = Vec::with_capacity(args.len());
    for (j, arg) in args.iter().enumerate() {
        let index = u8::try_from(arg.index())
            .ok()
            .filter(|ix| *ix < 6)
            .ok_or_else(|| SeccompError::ArgIndex {
                field: format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                index: arg.index(),
            })?;
        counts[usize::from(index)] += 1;
        conds.push(Cond {
            index,
            op: arg.op(),
            value: arg.value(),
            value_two: arg.value_two().unwrap_or(0),
        });
    }
    if counts.iter().any(|c| *c > 1) {
        Ok(conds.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conds])
    }
}

/// The rules of every syscall in one ABI, and the largest syscall number the profile names in it.
struct AbiRules {
    abi: Abi,
    rules: BTreeMap<u32, Vec<Rule>>,
    /// `Some(max)` when calls above `max` get ENOSYS.
    enosys_above: Option<u32>,
}

/// Compiles `spec` for this host.
pub(super) fn compile(spec: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    let native = Abi::native().ok_or(SeccompError::UnsupportedHost {
        arch: std::env::consts::ARCH,
    })?;
    let default_action = spec.default_action();
    if default_action == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action_value(default_action, spec.default_errno_ret(), || {
        "linux.seccomp.defaultErrnoRet".into()
    })?;

    // The native ABI is always filtered (libseccomp's filter always has it); listed ABIs the host
    // cannot run are never consulted by this kernel and are skipped.
    let listed: Vec<Abi> = spec
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| Abi::from_oci(*a))
        .collect();
    let mut abis = vec![native];
    for abi in &listed {
        if !abis.contains(abi) {
            abis.push(*abi);
        }
    }

    let flags = spec.flags().iter().flatten().fold(0u32, |acc, f| {
        acc | match f {
            // A single-threaded process has no other thread to synchronise (runc ignores it too).
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        }
    });

    // runc's stub: with a denying default, a syscall newer than every one the profile names
    // fails with ENOSYS (so that libcs fall back to older calls), unless the default already is
    // ENOSYS.
    let stub = !matches!(
        default_action,
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    ) && spec.default_errno_ret() != Some(libc::ENOSYS.cast_unsigned());

    let mut per_abi: Vec<AbiRules> = abis
        .iter()
        .map(|abi| AbiRules {
            abi: *abi,
            rules: BTreeMap::new(),
            enosys_above: None,
        })
        .collect();
    let mut notify = false;
    let syscalls = spec.syscalls().as_deref().unwrap_or_default();
    for (i, sc) in syscalls.iter().enumerate() {
        let action = action_value(sc.action(), sc.errno_ret(), || {
            format!("linux.seccomp.syscalls[{i}].errnoRet")
        })?;
        let is_notify = sc.action() == LinuxSeccompAction::ScmpActNotify;
        if is_notify && spec.listener_path().is_none() {
            return Err(SeccompError::NotifyWithoutListener {
                field: format!("linux.seccomp.syscalls[{i}].action"),
            });
        }
        let alts = alternatives(i, sc.args().as_deref().unwrap_or_default())?;
        for ar in &mut per_abi {
            for name in sc.names() {
                // Unknown names are skipped, as runc does (the kernel or ABI lacks the call).
                let Some(nr) = ar.abi.syscall(name) else {
                    continue;
                };
                if stub && listed.contains(&ar.abi) {
                    ar.enosys_above = Some(ar.enosys_above.map_or(nr, |m| m.max(nr)));
                }
                // A rule with the default action changes nothing (runc drops it: libseccomp
                // refuses it).
                if action == default {
                    continue;
                }
                notify |= is_notify;
                let rules = ar.rules.entry(nr).or_default();
                rules.extend(alts.iter().map(|conds| Rule {
                    conds: conds.clone(),
                    action,
                }));
            }
        }
    }
    let insns = emit(&per_abi, default)?;
    Ok(Compiled {
        insns,
        flags,
        notify,
    })
}

/// `SECCOMP_FILTER_FLAG_LOG`.
pub(super) const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
pub(super) const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub(super) const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
pub(super) const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

fn emit(per_abi: &[AbiRules], default: u32) -> Result<Vec<SockFilter>, SeccompError> {
    let mut asm = Assembler::default();
    // Jumps only go forward: a second `ret KILL_THREAD` at the end for the x32 split.
    let bad_arch_late = asm.label();
    let enosys = asm.label();
    let section = |abi: Abi| per_abi.iter().position(|a| a.abi == abi);
    let labels: Vec<_> = per_abi.iter().map(|_| asm.label()).collect();

    // Groups by arch value: x86_64 and x32 share one.
    let mut groups: Vec<u32> = Vec::new();
    for ar in per_abi {
        if !groups.contains(&ar.abi.audit_arch()) {
            groups.push(ar.abi.audit_arch());
        }
    }
    let group_labels: Vec<_> = groups.iter().map(|_| asm.label()).collect();
    asm.insn(bpf::load(bpf::OFF_ARCH));
    for (arch, label) in groups.iter().zip(&group_labels) {
        asm.jump(JEQ, *arch, Target::To(*label), Target::Next);
    }
    asm.insn(bpf::ret(RET_KILL_THREAD));

    for (arch, label) in groups.iter().zip(&group_labels) {
        asm.place(*label);
        asm.insn(bpf::load(bpf::OFF_NR));
        let members: Vec<usize> = per_abi
            .iter()
            .enumerate()
            .filter(|(_, a)| a.abi.audit_arch() == *arch)
            .map(|(i, _)| i)
            .collect();
        if *arch == Abi::X86_64.audit_arch() {
            let to = |abi| section(abi).map_or(bad_arch_late, |i| labels[i]);
            asm.jump(
                JGE,
                X32_SYSCALL_BIT,
                Target::To(to(Abi::X32)),
                Target::To(to(Abi::X86_64)),
            );
        }
        for i in members {
            asm.place(labels[i]);
            emit_section(&mut asm, &per_abi[i], default, enosys)?;
        }
    }
    asm.place(enosys);
    asm.insn(bpf::ret(RET_ERRNO | libc::ENOSYS.cast_unsigned()));
    asm.place(bad_arch_late);
    asm.insn(bpf::ret(RET_KILL_THREAD));
    let prog = asm.finish().map_err(|e| match e {
        AssembleError::TooLong(n) => SeccompError::TooLong(n),
        AssembleError::UnplacedLabel => SeccompError::Assemble,
    })?;
    bpf::validate(&prog).map_err(|_| SeccompError::Assemble)?;
    Ok(prog)
}

fn emit_section(
    asm: &mut Assembler,
    ar: &AbiRules,
    default: u32,
    enosys: bpf::Label,
) -> Result<(), SeccompError> {
    if let Some(max) = ar.enosys_above {
        asm.jump(JGT, max, Target::To(enosys), Target::Next);
    }
    let keys: Vec<(u32, &[Rule])> = ar.rules.iter().map(|(nr, r)| (*nr, r.as_slice())).collect();
    tree(asm, ar.abi, &keys, default)
}

fn tree(
    asm: &mut Assembler,
    abi: Abi,
    keys: &[(u32, &[Rule])],
    default: u32,
) -> Result<(), SeccompError> {
    if keys.len() <= LEAF {
        return leaf(asm, abi, keys, default);
    }
    let mid = keys.len() / 2;
    let right = asm.label();
    asm.jump(JGE, keys[mid].0, Target::To(right), Target::Next);
    tree(asm, abi, &keys[..mid], default)?;
    asm.place(right);
    tree(asm, abi, &keys[mid..], default)
}

fn leaf(
    asm: &mut Assembler,
    abi: Abi,
    keys: &[(u32, &[Rule])],
    default: u32,
) -> Result<(), SeccompError> {
    let mut rets: Vec<(u32, bpf::Label)> = Vec::new();
    let mut chains: Vec<(bpf::Label, &[Rule])> = Vec::new();
    for (nr, rules) in keys {
        let target = match rules.first() {
            Some(first) if first.conds.is_empty() => {
                match rets.iter().find(|(a, _)| *a == first.action) {
                    Some((_, l)) => *l,
                    None => {
                        let l = asm.label();
                        rets.push((first.action, l));
                        l
                    }
                }
            }
            _ => {
                let l = asm.label();
                chains.push((l, rules));
                l
            }
        };
        asm.jump(JEQ, *nr, Target::To(target), Target::Next);
    }
    asm.insn(bpf::ret(default));
    for (action, l) in rets {
        asm.place(l);
        asm.insn(bpf::ret(action));
    }
    for (l, rules) in chains {
        asm.place(l);
        chain(asm, abi, rules, default)?;
    }
    Ok(())
}

/// The rules of one syscall, first match wins; none matching gives the default action.
fn chain(asm: &mut Assembler, abi: Abi, rules: &[Rule], default: u32) -> Result<(), SeccompError> {
    for rule in rules {
        if rule.conds.is_empty() {
            asm.insn(bpf::ret(rule.action));
            return Ok(());
        }
        if let Some(block) = rule_block(abi, rule)? {
            asm.block(block);
        }
    }
    asm.insn(bpf::ret(default));
    Ok(())
}

/// The argument checks of `rule` (seccompiler's code, which jumps past the block plus one
/// instruction when a check fails) followed by `ret action`; `None` when a condition can never
/// hold: `SCMP_CMP_MASKED_EQ` with bits in `valueTwo` outside the mask (seccompiler would mask
/// `valueTwo` too and match).
fn rule_block(abi: Abi, rule: &Rule) -> Result<Option<Vec<SockFilter>>, SeccompError> {
    let (len, width) = if abi.wide_args() {
        (SeccompCmpArgLen::Qword, u64::MAX)
    } else {
        (SeccompCmpArgLen::Dword, u64::from(u32::MAX))
    };
    let never = |c: &Cond| c.op == Op::ScmpCmpMaskedEq && c.value_two & !c.value & width != 0;
    if rule.conds.iter().any(never) {
        return Ok(None);
    }
    let conds = rule
        .conds
        .iter()
        .map(|c| {
            let (op, datum) = match c.op {
                Op::ScmpCmpNe => (SeccompCmpOp::Ne, c.value),
                Op::ScmpCmpLt => (SeccompCmpOp::Lt, c.value),
                Op::ScmpCmpLe => (SeccompCmpOp::Le, c.value),
                Op::ScmpCmpEq => (SeccompCmpOp::Eq, c.value),
                Op::ScmpCmpGe => (SeccompCmpOp::Ge, c.value),
                Op::ScmpCmpGt => (SeccompCmpOp::Gt, c.value),
                // OCI: `value` is the mask, `valueTwo` the value the masked argument must equal.
                Op::ScmpCmpMaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
            };
            SeccompCondition::new(c.index, len.clone(), op, datum)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(SeccompError::Seccompiler)?;
    let compiled: BpfProgram = SeccompRule::new(conds)
        .map_err(SeccompError::Seccompiler)?
        .into();
    // The first two instructions are seccompiler's entry (`ja 1`) and its skip-this-rule jump,
    // which we never take: we enter at the checks.
    let mut block: Vec<SockFilter> = compiled
        .iter()
        .skip(2)
        .map(|i| SockFilter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    block.push(bpf::ret(rule.action));
    Ok(Some(block))
}
