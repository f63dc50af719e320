//! Tests of the seccomp module: the translation judged by running the BPF in the interpreter
//! (a hand-written table and a random differential against a reference model of the OCI/runc
//! semantics), Docker's default profile, and forked children that install filters for real.
#![cfg(target_arch = "x86_64")]

use std::os::fd::AsFd;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use super::abi::{AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::*;
use crate::sys::seccomp::test_support::{exit_on_sigsys, fork_wait, int80, raw, recv_with_fd};

const ALLOW: u32 = 0x7fff_0000;
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;
const TRAP: u32 = 0x0003_0000;
const LOG: u32 = 0x7ffc_0000;
const NOTIFY: u32 = 0x7fc0_0000;
const fn errno(e: u32) -> u32 {
    0x0005_0000 | e
}
const fn trace(e: u32) -> u32 {
    0x7ff0_0000 | e
}
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn call(abi: Abi, name: &str, args: [u64; 6]) -> SeccompData {
    SeccompData {
        nr: abi.syscall(name).unwrap().cast_signed(),
        arch: abi.audit_arch(),
        instruction_pointer: 0,
        args,
    }
}

fn reference(spec: &LinuxSeccomp, d: &SeccompData) -> u32 {
    model::expected_action(spec, d).unwrap()
}

fn ops_profile() -> LinuxSeccomp {
    profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 2, "value": 4_294_967_296u64, "op": "SCMP_CMP_GT"}]},
            {"names": ["close"], "action": "SCMP_ACT_TRAP",
             "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_LT"}]},
            {"names": ["dup"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_LE"}]},
            {"names": ["dup2"], "action": "SCMP_ACT_TRACE", "errnoRet": 7,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_GE"}]},
            {"names": ["fcntl"], "action": "SCMP_ACT_KILL",
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_NE"},
                      {"index": 2, "value": 255, "valueTwo": 18, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getpid", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["sched_yield"], "action": "SCMP_ACT_ALLOW"}
        ],
        "listenerPath": "/run/agent.sock"
    }))
}

#[test]
fn table_of_calls() {
    use Abi::{X86, X86_64};
    let p = ops_profile();
    let prog = Program::from_spec(&p).unwrap();
    assert!(prog.uses_notify());
    let big = 1u64 << 32;
    let cases: &[(Abi, &str, [u64; 6], u32)] = &[
        (X86_64, "read", [3, 0, 0, 0, 0, 0], errno(5)),
        (X86_64, "read", [4, 0, 0, 0, 0, 0], ALLOW),
        (X86_64, "read", [big | 3, 0, 0, 0, 0, 0], ALLOW),
        (X86, "read", [3, 0, 0, 0, 0, 0], errno(5)),
        (X86, "read", [big | 3, 0, 0, 0, 0, 0], errno(5)),
        (X86_64, "write", [1, 0, big, 0, 0, 0], ALLOW),
        (X86_64, "write", [1, 0, big + 1, 0, 0, 0], KILL_PROCESS),
        (X86_64, "write", [1, 0, u64::MAX, 0, 0, 0], KILL_PROCESS),
        (X86_64, "close", [9, 0, 0, 0, 0, 0], TRAP),
        (X86_64, "close", [10, 0, 0, 0, 0, 0], ALLOW),
        (X86_64, "dup", [10, 0, 0, 0, 0, 0], LOG),
        (X86_64, "dup", [11, 0, 0, 0, 0, 0], ALLOW),
        (X86_64, "dup2", [0, 10, 0, 0, 0, 0], trace(7)),
        (X86_64, "dup2", [0, 9, 0, 0, 0, 0], ALLOW),
        (X86_64, "fcntl", [0, 1, 0x112, 0, 0, 0], KILL_THREAD),
        (X86_64, "fcntl", [0, 0, 0x112, 0, 0, 0], ALLOW),
        (X86_64, "fcntl", [0, 1, 0x113, 0, 0, 0], ALLOW),
        (X86_64, "personality", [0, 0, 0, 0, 0, 0], errno(1)),
        (X86_64, "personality", [8, 0, 0, 0, 0, 0], errno(1)),
        (X86_64, "personality", [9, 0, 0, 0, 0, 0], ALLOW),
        (X86_64, "getpid", [0; 6], errno(1)),
        (X86, "getpid", [0; 6], errno(1)),
        (X86_64, "getppid", [0; 6], NOTIFY),
        (X86_64, "sched_yield", [0; 6], ALLOW),
        (X86_64, "mmap", [0; 6], ALLOW),
    ];
    for (abi, name, args, want) in cases {
        let d = call(*abi, name, *args);
        assert_eq!(prog.evaluate(&d), *want, "{abi:?} {name} {args:x?}");
        assert_eq!(
            reference(&p, &d),
            *want,
            "reference: {abi:?} {name} {args:x?}"
        );
    }
    // x32 is not listed, nor is aarch64 (which this kernel never reports): killed.
    let x32 = call(Abi::X32, "read", [4, 0, 0, 0, 0, 0]);
    assert_eq!(prog.evaluate(&x32), KILL_THREAD);
    let arm = SeccompData {
        arch: AUDIT_ARCH_AARCH64,
        ..call(X86_64, "read", [0; 6])
    };
    assert_eq!(prog.evaluate(&arm), KILL_THREAD);
}

#[test]
fn enosys_stub_as_runc() {
    let p = |extra: Value| {
        let mut v = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Program::from_spec(&profile(v)).unwrap()
    };
    let getpid = call(Abi::X86_64, "getpid", [0; 6]);
    let read = call(Abi::X86_64, "read", [0; 6]);
    let stub = p(json!({}));
    assert_eq!(stub.evaluate(&getpid), errno(38));
    assert_eq!(stub.evaluate(&read), ALLOW);
    // Number 0 < read's? No: write (1) is the largest named; 0..=1 get the rules.
    assert_eq!(stub.evaluate(&call(Abi::X86_64, "write", [0; 6])), ALLOW);
    let i386 = call(Abi::X86, "getpid", [0; 6]);
    assert_eq!(stub.evaluate(&i386), KILL_THREAD);
    // No stub when the default already is ENOSYS, nor without listed architectures.
    assert_eq!(
        p(json!({"defaultErrnoRet": 38})).evaluate(&getpid),
        errno(38)
    );
    assert_eq!(
        p(json!({"defaultErrnoRet": 13})).evaluate(&getpid),
        errno(38)
    );
    let unlisted = p(json!({"architectures": []}));
    assert_eq!(unlisted.evaluate(&getpid), errno(1));
    assert_eq!(unlisted.evaluate(&read), ALLOW);
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    let prog = Program::from_spec(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
    assert_eq!(prog.evaluate(&call(Abi::X86_64, "mount", [0; 6])), ALLOW);
    assert!(!prog.uses_notify());
}

#[test]
fn errors_name_the_field() {
    let err = |v: Value| Program::from_spec(&profile(v)).unwrap_err().to_string();
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}
    ]}));
    assert!(
        e.starts_with("linux.seccomp.syscalls[1].args[0].index:"),
        "{e}"
    );
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}
    ]}));
    assert!(e.starts_with("linux.seccomp.syscalls[0].errnoRet:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}));
    assert!(e.starts_with("linux.seccomp.defaultErrnoRet:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}
    ]}));
    assert!(e.starts_with("linux.seccomp.syscalls[0].action:"), "{e}");
    let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}));
    assert!(e.starts_with("linux.seccomp.defaultAction:"), "{e}");
}

/// xorshift64*: enough randomness for the differential test, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const NAMES: &[&str] = &[
    "read",
    "write",
    "open",
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
    "rt_sigaction",
    "execve",
    "ptrace",
    "uname",
    "mseal",
    "_llseek",
];
const VALUES: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    8,
    10,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    0x1_0000_00ff,
    u64::MAX - 1,
    u64::MAX,
    1 << 63,
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

fn value(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng.next(),
        1 => rng
            .pick(VALUES)
            .wrapping_add(rng.next() % 3)
            .wrapping_sub(1),
        _ => rng.pick(VALUES),
    }
}

fn random_profile(rng: &mut Rng, max_rules: usize) -> Value {
    let default = loop {
        let a = rng.pick(ACTIONS);
        if a != "SCMP_ACT_NOTIFY" {
            break a;
        }
    };
    let mut p = json!({"defaultAction": default, "listenerPath": "/run/agent"});
    if rng.below(3) == 0 {
        p["defaultErrnoRet"] = json!(rng.pick(&[1u32, 13, 38]));
    }
    if rng.below(5) != 0 {
        let archs: Vec<&str> = (0..rng.below(4)).map(|_| rng.pick(ARCHS)).collect();
        p["architectures"] = json!(archs);
    }
    let rules: Vec<Value> = (0..rng.below(max_rules + 1))
        .map(|_| {
            let names: Vec<&str> = (0..=rng.below(3)).map(|_| rng.pick(NAMES)).collect();
            let mut r = json!({"names": names, "action": rng.pick(ACTIONS)});
            if rng.below(3) == 0 {
                r["errnoRet"] = json!(rng.below(200));
            }
            let nargs = rng.pick(&[0usize, 0, 1, 1, 2, 3, 6]);
            let args: Vec<Value> = (0..nargs)
                .map(|_| {
                    json!({"index": rng.below(6), "value": value(rng), "op": rng.pick(OPS),
                           "valueTwo": if rng.below(2) == 0 { value(rng) } else { rng.next() & 0xff }})
                })
                .collect();
            r["args"] = json!(args);
            r
        })
        .collect();
    p["syscalls"] = json!(rules);
    p
}

fn random_call(rng: &mut Rng) -> SeccompData {
    let abi = rng.pick(&[Abi::X86_64, Abi::X86, Abi::X32]);
    let nr = match (rng.below(6), abi.syscall(rng.pick(NAMES))) {
        (0, _) | (_, None) => {
            let base = u32::try_from(rng.below(600)).unwrap();
            if abi == Abi::X32 {
                base | X32_SYSCALL_BIT
            } else {
                base
            }
        }
        (_, Some(nr)) => nr,
    };
    let arch = if rng.below(20) == 0 {
        AUDIT_ARCH_AARCH64
    } else {
        abi.audit_arch()
    };
    SeccompData {
        nr: nr.cast_signed(),
        arch,
        instruction_pointer: rng.next(),
        args: std::array::from_fn(|_| value(rng)),
    }
}

#[test]
fn random_profiles_agree_with_the_reference() {
    let mut rng = Rng(0x00c0_ffee_1234_5678);
    for round in 0..600 {
        let v = random_profile(&mut rng, if round % 10 == 0 { 120 } else { 12 });
        let spec = profile(v.clone());
        let prog = Program::from_spec(&spec).unwrap();
        bpf::validate(prog.instructions()).unwrap();
        for _ in 0..200 {
            let d = random_call(&mut rng);
            assert_eq!(
                prog.evaluate(&d),
                reference(&spec, &d),
                "round {round}: {d:x?}\nprofile: {v}"
            );
        }
    }
}

#[test]
fn long_chains_and_many_conditions() {
    // 100 rules on one syscall (far jumps inside the chain) and one rule with 40 conditions
    // (seccompiler's own long-jump helpers).
    let mut rules: Vec<Value> = (0..100)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": i + 1, "args": [
                {"index": 1, "value": i, "op": "SCMP_CMP_EQ"},
                {"index": 2, "value": 0xf0, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}]})
        })
        .collect();
    let many: Vec<Value> = (0..40)
        .map(|i| json!({"index": i % 6, "value": i, "op": "SCMP_CMP_GE"}))
        .collect();
    rules.push(json!({"names": ["read"], "action": "SCMP_ACT_TRAP", "args": many}));
    let spec = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    }));
    let prog = Program::from_spec(&spec).unwrap();
    let mut rng = Rng(42);
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        for i in [0u64, 1, 77, 99, 100, u64::MAX] {
            for a2 in [0x10u64, 0x11, 0x20, 0x1_0000_0010] {
                let d = call(abi, "ioctl", [0, i, a2, 0, 0, 0]);
                assert_eq!(
                    prog.evaluate(&d),
                    reference(&spec, &d),
                    "{abi:?} {i} {a2:x}"
                );
            }
        }
        for _ in 0..500 {
            let mut d = call(abi, "read", std::array::from_fn(|_| value(&mut rng)));
            if rng.below(3) == 0 {
                d.args = [40; 6];
            }
            assert_eq!(prog.evaluate(&d), reference(&spec, &d), "{abi:?} {d:x?}");
        }
    }
    assert_eq!(prog.evaluate(&call(Abi::X86_64, "read", [40; 6])), TRAP);
}

/// Docker's default profile as dockerd hands it to a runtime on x86_64 with its default caps.
fn docker_default() -> LinuxSeccomp {
    let docker: Value = serde_json::from_str(include_str!("testdata/docker-default.json")).unwrap();
    let kernel = docker::KernelVersion::running().unwrap();
    let oci = docker::to_oci(
        &docker,
        docker::DockerArch::AMD64,
        docker::DEFAULT_CAPS,
        kernel,
    )
    .unwrap();
    profile(oci)
}

#[test]
fn docker_default_profile_compiles_and_judges() {
    let spec = docker_default();
    assert_eq!(
        spec.architectures().clone().unwrap(),
        [Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    );
    let t = std::time::Instant::now();
    let prog = Program::from_spec(&spec).unwrap();
    let took = t.elapsed();
    let n = prog.instructions().len();
    eprintln!("compiled in {took:?}");
    eprintln!("Docker default profile: {n} BPF instructions");
    assert!(n < 4096, "{n} instructions");
    bpf::validate(prog.instructions()).unwrap();
    let eperm = errno(1);
    const CLONE_NEWNS: u64 = 0x0002_0000;
    const CLONE_NEWUSER: u64 = 0x1000_0000;
    const THREAD_FLAGS: u64 = 0x003d_0f00; // what pthread_create passes
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        let c = |name, args| prog.evaluate(&call(abi, name, args));
        assert_eq!(c("getpid", [0; 6]), ALLOW, "{abi:?}");
        assert_eq!(c("write", [1, 0, 5, 0, 0, 0]), ALLOW, "{abi:?}");
        assert_eq!(c("unshare", [CLONE_NEWNS, 0, 0, 0, 0, 0]), eperm, "{abi:?}");
        assert_eq!(c("mount", [0; 6]), eperm, "{abi:?}");
        assert_eq!(c("keyctl", [0; 6]), eperm, "{abi:?}");
        assert_eq!(c("clone", [THREAD_FLAGS, 0, 0, 0, 0, 0]), ALLOW, "{abi:?}");
        assert_eq!(
            c("clone", [CLONE_NEWUSER | 17, 0, 0, 0, 0, 0]),
            eperm,
            "{abi:?}"
        );
        assert_eq!(c("personality", [0, 0, 0, 0, 0, 0]), ALLOW, "{abi:?}");
        assert_eq!(
            c("personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW,
            "{abi:?}"
        );
        assert_eq!(
            c("personality", [0x0040_0000, 0, 0, 0, 0, 0]),
            eperm,
            "{abi:?}"
        );
    }
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        // glibc falls back to clone when clone3 fails with ENOSYS.
        assert_eq!(
            prog.evaluate(&call(abi, "clone3", [0; 6])),
            errno(38),
            "{abi:?}"
        );
    }
    // Included for the amd64 arch only.
    assert_eq!(
        prog.evaluate(&call(Abi::X86_64, "arch_prctl", [0; 6])),
        ALLOW
    );
    // i386 multiplexed socket calls are allowed by name.
    assert_eq!(
        prog.evaluate(&call(Abi::X86, "socketcall", [1, 0, 0, 0, 0, 0])),
        ALLOW
    );
    // A number past every syscall the profile names gets ENOSYS (runc's stub).
    let future = SeccompData {
        nr: 1000,
        ..call(Abi::X86_64, "read", [0; 6])
    };
    assert_eq!(prog.evaluate(&future), errno(38));
    let mut rng = Rng(7);
    for _ in 0..3_000 {
        let d = random_call(&mut rng);
        assert_eq!(prog.evaluate(&d), reference(&spec, &d), "{d:x?}");
    }
}

/// Installs `spec` in a forked child and runs `body` there; returns the wait status.
fn in_filtered_child(spec: &LinuxSeccomp, body: impl FnOnce() -> i32) -> i32 {
    let prog = Program::from_spec(spec).unwrap();
    fork_wait(move || {
        if let Err(e) = install(&prog) {
            eprintln!("install: {e}: {:?}", std::error::Error::source(&e));
            return 120;
        }
        body()
    })
    .unwrap()
}

fn exited(status: i32) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

fn killed_by(status: i32) -> Option<i32> {
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

fn sys(nr: libc::c_long, args: [u64; 6]) -> i64 {
    // SAFETY: every call in these tests passes scalars (flags, fds, numbers) or null pointers.
    unsafe { raw(nr, args) }
}

#[test]
fn docker_default_in_a_child() {
    let spec = docker_default();
    let status = in_filtered_child(&spec, || {
        let eperm = -i64::from(libc::EPERM);
        let checks = [
            sys(libc::SYS_unshare, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]) == eperm,
            sys(libc::SYS_mount, [0; 6]) == eperm,
            sys(libc::SYS_keyctl, [0; 6]) == eperm,
            sys(libc::SYS_getpid, [0; 6]) > 0,
            nix::unistd::write(std::io::stderr(), b"").is_ok(),
            sys(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]) >= 0,
            sys(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]) == eperm,
        ];
        checks
            .iter()
            .position(|ok| !ok)
            .map_or(0, |i| 10 + i32::try_from(i).unwrap())
    });
    assert_eq!(exited(status), Some(0), "status {status:#x}");
}

fn one_rule(action: &str, errno_ret: Option<u32>) -> LinuxSeccomp {
    let mut rule = json!({"names": ["getppid"], "action": action});
    if let Some(e) = errno_ret {
        rule["errnoRet"] = json!(e);
    }
    profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}))
}

#[test]
fn actions_in_children() {
    let getppid = || sys(libc::SYS_getppid, [0; 6]);
    let st = in_filtered_child(&one_rule("SCMP_ACT_KILL_PROCESS", None), || {
        getppid();
        0
    });
    assert_eq!(killed_by(st), Some(libc::SIGSYS), "kill process: {st:#x}");
    for kill in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"] {
        let st = in_filtered_child(&one_rule(kill, None), || {
            getppid();
            0
        });
        assert_eq!(killed_by(st), Some(libc::SIGSYS), "{kill}: {st:#x}");
    }
    let st = in_filtered_child(&one_rule("SCMP_ACT_TRAP", None), || {
        if exit_on_sigsys().is_err() {
            return 1;
        }
        getppid();
        2
    });
    assert_eq!(exited(st), Some(100), "trap: {st:#x}");
    let st = in_filtered_child(&one_rule("SCMP_ACT_ERRNO", Some(42)), || {
        i32::from(getppid() != -42)
    });
    assert_eq!(exited(st), Some(0), "errno: {st:#x}");
    let st = in_filtered_child(&one_rule("SCMP_ACT_ERRNO", None), || {
        i32::from(getppid() != -i64::from(libc::EPERM))
    });
    assert_eq!(exited(st), Some(0), "errno default EPERM: {st:#x}");
    // No tracer: the kernel fails a TRACE'd call with ENOSYS.
    let st = in_filtered_child(&one_rule("SCMP_ACT_TRACE", Some(3)), || {
        i32::from(getppid() != -i64::from(libc::ENOSYS))
    });
    assert_eq!(exited(st), Some(0), "trace: {st:#x}");
    let parent = i64::from(std::process::id());
    let st = in_filtered_child(&one_rule("SCMP_ACT_LOG", None), move || {
        i32::from(getppid() != parent)
    });
    assert_eq!(exited(st), Some(0), "log: {st:#x}");
    let mut log = one_rule("SCMP_ACT_ERRNO", None);
    log.set_flags(Some(vec![
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    let st = in_filtered_child(&log, move || {
        i32::from(getppid() != -i64::from(libc::EPERM))
    });
    assert_eq!(exited(st), Some(0), "flags: {st:#x}");
}

fn ia32_available() -> bool {
    // SAFETY: getpid through the i386 gate: no arguments, no memory.
    let pid = unsafe { int80(20, 0, 0, 0) };
    u32::try_from(pid).ok() == Some(std::process::id())
}

#[test]
fn i386_calls_are_judged_by_the_rules() {
    if !ia32_available() {
        eprintln!("skipped: this kernel has no ia32 emulation");
        return;
    }
    let spec = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77},
                     {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
                      "args": [{"index": 0, "value": 18, "op": "SCMP_CMP_EQ"}]}]
    }));
    let st = in_filtered_child(&spec, || {
        // SAFETY: getppid (64), getpid (20) and umask (60) through the i386 gate: scalars only.
        let (ppid, pid, umask_hit, umask_miss) = unsafe {
            (
                int80(64, 0, 0, 0),
                int80(20, 0, 0, 0),
                int80(60, 18, 0, 0),
                int80(60, 0o77, 0, 0),
            )
        };
        let checks = [ppid == -77, pid > 0, umask_hit == -78, umask_miss >= 0];
        checks
            .iter()
            .position(|ok| !ok)
            .map_or(0, |i| 10 + i32::try_from(i).unwrap())
    });
    assert_eq!(exited(st), Some(0), "{st:#x}");
    // Not listed: an i386 call is killed.
    let only64 = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
                                "architectures": ["SCMP_ARCH_X86_64"]}));
    let st = in_filtered_child(&only64, || {
        // SAFETY: getpid through the i386 gate.
        unsafe { int80(20, 0, 0, 0) };
        0
    });
    assert_eq!(killed_by(st), Some(libc::SIGSYS), "{st:#x}");
}

#[test]
fn notify_fd_reaches_the_listener_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let spec = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "listenerMetadata": "meta-data",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (msg, fd) = recv_with_fd(conn.as_fd()).unwrap();
        let state: Value = serde_json::from_slice(&msg).unwrap();
        let req = crate::sys::seccomp::notif_recv(fd.as_fd()).unwrap();
        let answer = crate::sys::seccomp::NotificationResponse {
            id: req.id,
            val: 4242,
            error: 0,
            flags: 0,
        };
        crate::sys::seccomp::notif_send(fd.as_fd(), &answer).unwrap();
        (state, req)
    });
    let sock = path.clone();
    let prog = Program::from_spec(&spec).unwrap();
    let st = fork_wait(move || {
        let Ok(Some(fd)) = install(&prog) else {
            return 120;
        };
        let state = json!({"ociVersion": "1.3.0", "id": "c1", "status": "creating", "pid": 1,
                           "bundle": "/b"});
        let pid = i32::try_from(std::process::id()).unwrap();
        let Ok(json) = process_state_json(pid, Some("meta-data"), &state) else {
            return 121;
        };
        if send_to_listener(&sock, fd.as_fd(), &json).is_err() {
            return 122;
        }
        drop(fd);
        i32::from(sys(libc::SYS_getppid, [0; 6]) != 4242)
    })
    .unwrap();
    let (state, req) = agent.join().unwrap();
    assert_eq!(exited(st), Some(0), "{st:#x}");
    assert_eq!(state["ociVersion"], crate::OCI_VERSION);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "meta-data");
    assert_eq!(state["state"]["id"], "c1");
    assert_eq!(state["pid"].as_i64(), Some(i64::from(req.pid)));
    assert_eq!(req.data.nr, i32::try_from(libc::SYS_getppid).unwrap());
    assert_eq!(req.data.arch, AUDIT_ARCH_X86_64);
}

#[test]
fn features_lists_what_we_support() {
    let f = features();
    assert_eq!(f.enabled(), &Some(true));
    assert_eq!(f.actions().as_ref().unwrap().len(), 9);
    assert_eq!(f.operators().as_ref().unwrap().len(), 7);
    assert!(f.archs().as_ref().unwrap().contains(&Arch::ScmpArchX32));
    let supported = f.supported_flags().clone().unwrap();
    assert!(supported.contains(&"SECCOMP_FILTER_FLAG_LOG".to_string()));
    assert!(supported.contains(&"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".to_string()));
    let v = serde_json::to_value(&f).unwrap();
    assert!(v["knownFlags"].is_array(), "{v}");
}

#[test]
fn process_state_json_leaves_out_empty_metadata() {
    let v: Value =
        serde_json::from_slice(&process_state_json(7, None, &json!({"id": "x"})).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"ociVersion": crate::OCI_VERSION, "fds": ["seccompFd"], "pid": 7,
                         "state": {"id": "x"}})
    );
}
