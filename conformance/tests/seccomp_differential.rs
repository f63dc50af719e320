//! Differential seccomp test: the same profiles applied by runc (libseccomp) and by coracle
//! (its own compiler), each container running the same static probe that tries a list of
//! syscalls (64-bit and, through `int 0x80`, 32-bit ones) and prints what it gets. The outputs
//! must be identical. Needs gcc (a static probe) and runc; skips, saying so, without them.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use coracle_conformance::{is_runc, Bundle, Runtime};
use serde_json::{json, Value};

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Builds the probe (static) into `dir`.
fn build_probe(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/seccomp_probe.c");
    let out = dir.join("seccomp-probe");
    let ok = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then_some(out)
}

/// Docker's default profile (the copy the seccomp unit tests use), for x86_64, converted to
/// the OCI form as dockerd does with its default capabilities.
fn docker_default() -> Value {
    use coracle::seccomp::docker::{to_oci, DockerArch, KernelVersion, DEFAULT_CAPS};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/coracle/src/seccomp/testdata/docker-default.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kernel = KernelVersion::running().unwrap();
    to_oci(&d, DockerArch::AMD64, DEFAULT_CAPS, kernel).unwrap()
}

/// A profile that allows by default and gives each probed call another fate: errno values,
/// argument operators (EQ, GT, MASKED_EQ), log (the call runs), kill and trap.
fn operators(arches: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": arches,
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
            {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 63, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GT"}]},
            {"names": ["chroot"], "action": "SCMP_ACT_KILL"},
            {"names": ["keyctl"], "action": "SCMP_ACT_TRAP"},
            {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })
}

fn run_probe(bin: &Path, probe: &Path, profile: &Value, nnp: bool) -> String {
    let rt = Runtime::with_binary(bin);
    let mut b = Bundle::new();
    std::fs::copy(probe, b.rootfs().join("seccomp-probe")).unwrap();
    b.args(&["/seccomp-probe"]);
    b.no_new_privileges(nnp);
    b.config["linux"]["seccomp"] = profile.clone();
    let out = rt.run(&b);
    out.ok();
    out.out().to_string()
}

#[test]
fn runc_and_coracle_agree_on_every_probed_syscall() {
    if is_runc() {
        eprintln!("skipped: the runtime under test is runc itself");
        return;
    }
    let Some(runc) = which("runc") else {
        eprintln!("skipped: no runc to compare with");
        return;
    };
    let dir = std::env::temp_dir().join(format!("coracle-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some(probe) = build_probe(&dir) else {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("skipped: gcc -static could not build the probe");
        return;
    };
    let coracle = coracle_conformance::binary();
    let profiles = [
        ("docker-default", docker_default(), true),
        (
            "docker-default without no_new_privs",
            docker_default(),
            false,
        ),
        (
            "operators, x86_64+x86",
            operators(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]),
            true,
        ),
        (
            "operators, x86_64 only",
            operators(&["SCMP_ARCH_X86_64"]),
            true,
        ),
    ];
    let mut diffs = Vec::new();
    for (name, profile, nnp) in &profiles {
        let theirs = run_probe(&runc, &probe, profile, *nnp);
        let ours = run_probe(&coracle, &probe, profile, *nnp);
        assert!(
            theirs.lines().count() >= 17,
            "{name}: runc's probe output is short:\n{theirs}"
        );
        if theirs != ours {
            let lines: Vec<String> = theirs
                .lines()
                .zip(ours.lines())
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("  runc {a:<28} coracle {b}"))
                .collect();
            diffs.push(format!("{name}:\n{}", lines.join("\n")));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        diffs.is_empty(),
        "seccomp results differ from runc's:\n{}",
        diffs.join("\n")
    );
}

/// SCMP_ACT_NOTIFY in a real container: the notify fd reaches the `listenerPath` agent with the
/// container process state (ociVersion, fds, pid, metadata, state), and the agent's answer is
/// what the container's system call returns.
#[test]
fn notify_reaches_the_listener_which_answers() {
    if is_runc() {
        eprintln!("skipped: runc 1.1 is checked by the differential test only");
        return;
    }
    use coracle::sys::seccomp::{notif_recv, notif_send, NotificationResponse};
    use std::os::fd::AsFd;
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let sock = coracle_conformance::pty::ConsoleSocket::new(rt.work_dir());
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": sock.path_str(),
        "listenerMetadata": "from-the-test",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.sh("echo PPID=$PPID");
    let agent = std::thread::spawn(move || {
        let (fd, data) = sock.receive(std::time::Duration::from_secs(30))?;
        let mut answered = 0;
        // Answers until the container is gone (the listener then fails).
        while let Ok(n) = notif_recv(fd.as_fd()) {
            let resp = NotificationResponse {
                id: n.id,
                val: 4242,
                ..Default::default()
            };
            if notif_send(fd.as_fd(), &resp).is_ok() {
                answered += 1;
            }
        }
        Ok::<(String, i32), String>((data, answered))
    });
    let out = rt.run(&b);
    out.ok();
    let (state, answered) = agent.join().unwrap().unwrap();
    assert_eq!(out.expect_field("PPID"), "4242", "\n{out}");
    assert!(answered >= 1);
    let state: Value = serde_json::from_str(state.trim_end_matches('\0')).unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "from-the-test", "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert!(state["state"]["id"].is_string(), "{state}");
}
