//! Fuzzes the OCI seccomp profile -> BPF translation (`coracle::seccomp::Program::from_spec`).
//!
//! Input: a profile as JSON (when it starts with `{`), or bytes that steer a builder of
//! well-formed profiles (which reaches the compiler much more often than random JSON). For every
//! profile the compiler accepts:
//! - no panic; the program passes the kernel's rules (length <= 4096, jumps in range, loads
//!   inside `seccomp_data`, ends in a return);
//! - on calls around every value the profile compares with (and a few from the input), the
//!   program returns what `coracle::seccomp::model` says the profile means.

#![no_main]

use coracle::seccomp::{bpf, model, Abi, Program, SeccompData};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

const NAMES: &[&str] = &[
    "read",
    "write",
    "close",
    "getpid",
    "getppid",
    "mmap",
    "clone",
    "personality",
    "socket",
    "socketcall",
    "ioctl",
    "fcntl",
    "unshare",
    "mount",
    "keyctl",
    "no_such_call",
    "futex",
    "clone3",
    "execve",
    "ptrace",
    "uname",
    "_llseek",
    "mseal",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];
const ARCHS: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_NATIVE",
];
const VALUES: &[u64] = &[
    0,
    1,
    2,
    8,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    u64::MAX,
    1 << 63,
];

/// Reads the input front to back; past its end every read is 0.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }
    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn value(&mut self) -> u64 {
        match self.below(4) {
            0 => (0..8).fold(0u64, |acc, _| acc << 8 | u64::from(self.byte())),
            1 => self
                .pick(VALUES)
                .wrapping_add(u64::from(self.byte() % 3))
                .wrapping_sub(1),
            _ => self.pick(VALUES),
        }
    }
}

fn build(b: &mut Bytes<'_>) -> Value {
    let mut p = json!({"defaultAction": b.pick(&ACTIONS[..8]), "listenerPath": "/run/agent"});
    if b.below(3) == 0 {
        p["defaultErrnoRet"] = json!(b.pick(&[1u32, 13, 38, 70000]));
    }
    if b.below(5) != 0 {
        let archs: Vec<&str> = (0..b.below(4)).map(|_| b.pick(ARCHS)).collect();
        p["architectures"] = json!(archs);
    }
    let rules: Vec<Value> = (0..b.below(64))
        .map(|_| {
            let names: Vec<&str> = (0..=b.below(3)).map(|_| b.pick(NAMES)).collect();
            let mut r = json!({"names": names, "action": b.pick(ACTIONS)});
            if b.below(3) == 0 {
                r["errnoRet"] = json!(b.below(256));
            }
            let args: Vec<Value> = (0..b.pick(&[0usize, 0, 1, 1, 2, 3, 7]))
                .map(|_| {
                    json!({"index": b.below(7), "value": b.value(), "op": b.pick(OPS),
                           "valueTwo": b.value()})
                })
                .collect();
            r["args"] = json!(args);
            r
        })
        .collect();
    p["syscalls"] = json!(rules);
    p
}

/// Calls around every compared value, in every ABI, for every name the profile uses.
fn probes(spec: &LinuxSeccomp, b: &mut Bytes<'_>) -> Vec<SeccompData> {
    let abis = [Abi::X86_64, Abi::X86, Abi::X32];
    let mut out = Vec::new();
    for sc in spec.syscalls().as_deref().unwrap_or_default() {
        for name in sc.names() {
            for abi in abis {
                let Some(nr) = abi.syscall(name) else {
                    continue;
                };
                let base = SeccompData {
                    nr: nr.cast_signed(),
                    arch: abi.audit_arch(),
                    instruction_pointer: 0,
                    args: [0; 6],
                };
                out.push(base);
                for a in sc.args().as_deref().unwrap_or_default() {
                    if a.index() >= 6 {
                        continue;
                    }
                    for v in [a.value(), a.value_two().unwrap_or(0)] {
                        for delta in [0u64, 1, u64::MAX, 1 << 32] {
                            let mut d = base;
                            d.args[a.index()] = v.wrapping_add(delta);
                            out.push(d);
                        }
                    }
                }
            }
        }
    }
    for _ in 0..16 {
        let abi = b.pick(&abis);
        let nr = u32::from(b.byte()) | u32::from(b.byte() & 1) << 8;
        out.push(SeccompData {
            nr: (if abi == Abi::X32 {
                nr | 0x4000_0000
            } else {
                nr
            })
            .cast_signed(),
            arch: if b.below(16) == 0 {
                0xc000_00b7
            } else {
                abi.audit_arch()
            },
            instruction_pointer: 0,
            args: std::array::from_fn(|_| b.value()),
        });
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let spec: LinuxSeccomp = if data.first() == Some(&b'{') {
        match serde_json::from_slice(data) {
            Ok(s) => s,
            Err(_) => return,
        }
    } else {
        match serde_json::from_value(build(&mut b)) {
            Ok(s) => s,
            Err(e) => panic!("the builder made an invalid profile: {e}"),
        }
    };
    let Ok(program) = Program::from_spec(&spec) else {
        return;
    };
    let insns = program.instructions();
    assert!(insns.len() <= bpf::MAX_INSNS);
    if let Err(e) = bpf::validate(insns) {
        panic!("invalid program: {e:?}");
    }
    for d in probes(&spec, &mut b) {
        let want = match model::expected_action(&spec, &d) {
            Ok(w) => w,
            Err(e) => panic!("the model rejects a profile the compiler accepted: {e}"),
        };
        assert_eq!(program.evaluate(&d), want, "call {d:x?}");
    }
});
