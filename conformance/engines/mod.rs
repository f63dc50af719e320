//! Helpers for driving coracle from real container engines (containerd + ctr, Docker, Podman).
//!
//! Every engine runs with all its state in a private temp dir and networking off. The runtime
//! the engine is given is not coracle itself but a logging shim (a small sh script) that records
//! each call's argv, exit code and stderr in `runtime.log`, then runs coracle; when a scenario
//! fails, the test prints that log, so the failing runtime call is in the test output.
//!
//! The tests run only when `CORACLE_ENGINES` is set: `all` (or `1`), or a comma-separated list
//! of `containerd`, `docker`, `podman`. Otherwise each returns at once.

#![allow(dead_code)]

pub mod containerd;
pub mod docker;
pub mod podman;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use coracle_conformance::{make_rootfs, remove_tree_unless_mounted, unique, wait_timeout, Output};

/// The engines that exist.
pub const ENGINES: [&str; 3] = ["containerd", "docker", "podman"];

/// Whether the scenarios of `engine` should run (`CORACLE_ENGINES` names it, or is `all`/`1`).
/// Says so on stderr when not.
pub fn enabled(engine: &str) -> bool {
    let on = selected(engine);
    if !on {
        eprintln!("SKIPPED: {engine} scenarios run only with CORACLE_ENGINES=all (or ={engine})");
    }
    on
}

/// Whether `CORACLE_ENGINES` selects `engine` (quietly).
pub fn selected(engine: &str) -> bool {
    let want = std::env::var("CORACLE_ENGINES").unwrap_or_default();
    want.split([',', ' '])
        .map(str::trim)
        .any(|w| w.eq_ignore_ascii_case(engine) || w.eq_ignore_ascii_case("all") || w == "1")
}

/// The conformance crate's directory (holding `engines/`).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How long one engine command may take: `$CORACLE_ENGINE_TIMEOUT` seconds, 60 by default.
pub fn engine_timeout() -> Duration {
    let secs = std::env::var("CORACLE_ENGINE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// The runtime under test: `$CORACLE_BIN`, else the workspace's debug build (as the other
/// conformance tests), made absolute.
pub fn runtime_binary() -> PathBuf {
    let bin = coracle_conformance::binary();
    assert!(
        bin.is_file(),
        "runtime binary {} not found: run `cargo build` first or set CORACLE_BIN",
        bin.display()
    );
    bin
}

static APT: Mutex<()> = Mutex::new(());

/// Installs the Debian `packages` unless every one of `commands` is already on PATH.
pub fn ensure_installed(commands: &[&str], packages: &[&str]) {
    let _guard = APT.lock().unwrap_or_else(|p| p.into_inner());
    if commands.iter().all(|c| which(c).is_some()) {
        return;
    }
    eprintln!("installing {packages:?} (missing one of {commands:?})");
    let run = |args: &[&str]| {
        let st = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("apt-get: {e}"));
        assert!(st.success(), "apt-get {args:?} failed: {st}");
    };
    run(&["update", "-q"]);
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    run(&args);
    for c in commands {
        assert!(
            which(c).is_some(),
            "{c} still missing after installing {packages:?}"
        );
    }
}

/// Installs Debian's python3-grpcio unless `/usr/bin/python3` can import grpc.
pub fn ensure_python_grpc() {
    let has = || {
        Command::new("/usr/bin/python3")
            .args(["-c", "import grpc"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has() {
        return;
    }
    let _guard = APT.lock().unwrap_or_else(|p| p.into_inner());
    for args in [
        &["update", "-q"][..],
        &[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "python3-grpcio",
        ][..],
    ] {
        let st = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("apt-get: {e}"));
        assert!(st.success(), "apt-get {args:?} failed: {st}");
    }
    assert!(
        has(),
        "python3 cannot import grpc after installing python3-grpcio"
    );
}

/// The first `cmd` on PATH (or `cmd` itself when it is a path to a file).
pub fn which(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Path::new(cmd).is_file().then(|| PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// A private working directory for one engine instance, removed on drop (unless something is
/// still mounted under it, which is then reported and left alone).
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// A fresh dir under /tmp named after `prefix`.
    pub fn new(prefix: &str) -> WorkDir {
        // Short: unix socket paths must stay under 108 bytes.
        let path = PathBuf::from("/tmp").join(unique(&format!("ce-{prefix}")));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        WorkDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `dir/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        unmount_under(&self.path);
        remove_tree_unless_mounted(&self.path);
    }
}

/// Lazily unmounts every mount point under `dir` (deepest first): overlay rootfs mounts,
/// shm mounts and the like that an engine left after being stopped.
pub fn unmount_under(dir: &Path) {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let _ = Command::new("umount")
            .args(["-l", &p])
            .stderr(Stdio::null())
            .status();
    }
}

/// The logging shim: an executable script that records every call and runs the runtime.
pub struct Shim {
    /// The script (give this path to the engine as its runtime).
    pub path: PathBuf,
    /// Where the calls are recorded.
    pub log: PathBuf,
}

impl Shim {
    /// Writes `<dir>/bin/<name>` forwarding to `real`, logging to `<dir>/runtime.log`.
    pub fn new(dir: &Path, name: &str, real: &Path) -> Shim {
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("mkdir {}: {e}", bin.display()));
        let path = bin.join(name);
        let log = dir.join("runtime.log");
        let script = format!(
            r#"#!/bin/sh
# Logging shim written by conformance/engines: records the call, runs the runtime under test.
# stdio is passed through untouched for create/run/exec (the container inherits it); for them
# a failure's message is taken from the --log file.
log='{log}'
{{ printf '%s CALL' "$(date +%T.%N)"; for a in "$@"; do printf ' %s' "$a"; done; echo; }} >>"$log"
runlog=; prev=; sub=; update_stdin=
for a in "$@"; do
    [ "$prev" = --log ] && runlog=$a
    case "$a" in --log=*) runlog=${{a#--log=}};; esac
    case "$a" in create|run|exec) [ -z "$sub" ] && sub=$a;; esac
    [ "$prev" = --resources ] && [ "$a" = - ] && update_stdin=1
    prev=$a
done
if [ -n "$sub" ]; then
    '{real}' "$@"
    rc=$?
    if [ "$rc" != 0 ]; then
        {{ printf '    -> exit %s, last --log lines: ' "$rc"; [ -n "$runlog" ] && tail -n 2 "$runlog" | tr '\n' ' '; echo; }} >>"$log"
    fi
    exit "$rc"
fi
err=$(mktemp)
if [ -n "$update_stdin" ]; then
    # update reads the resources JSON from stdin (--resources -): record it too.
    in=$(mktemp)
    cat >"$in"
    {{ printf '    stdin: '; tr '\n' ' ' <"$in"; echo; }} >>"$log"
    '{real}' "$@" <"$in" 2>"$err"
    rc=$?
    rm -f "$in"
else
    '{real}' "$@" 2>"$err"
    rc=$?
fi
cat "$err" >&2
if [ "$rc" != 0 ]; then
    {{ printf '    -> exit %s, stderr: ' "$rc"; tr '\n' ' ' <"$err"; echo; }} >>"$log"
fi
rm -f "$err"
exit "$rc"
"#,
            log = log.display(),
            real = real.display()
        );
        fs::write(&path, script).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        Shim { path, log }
    }

    /// The calls recorded so far.
    pub fn calls(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A mark of the log's current end, for [`Shim::failed_calls_since`].
    pub fn mark(&self) -> usize {
        fs::metadata(&self.log)
            .ok()
            .and_then(|m| usize::try_from(m.len()).ok())
            .unwrap_or(0)
    }

    /// The calls recorded after `mark` (with a shared engine, other tests' calls may be among
    /// them).
    pub fn calls_since(&self, mark: usize) -> String {
        let text = self.calls();
        text.get(mark..).unwrap_or_default().to_string()
    }

    /// The recorded calls that failed (each with the line of the call before it).
    pub fn failed_calls(&self) -> String {
        self.failed_calls_since(0)
    }

    /// The calls recorded after `mark` that failed (each with the line of the call before it).
    pub fn failed_calls_since(&self, mark: usize) -> String {
        let text = self.calls_since(mark);
        let lines: Vec<&str> = text.lines().collect();
        let mut out = String::new();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("    -> exit") {
                // The call (and its recorded stdin) this result belongs to.
                let call = lines[..i].iter().rposition(|c| c.contains(" CALL "));
                for c in &lines[call.unwrap_or(i)..=i] {
                    out.push_str(c);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Runs `cmd` with `stdin` fed in (or /dev/null), stdout/stderr captured, killed after the
/// engine timeout.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let describe = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {describe}: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(text.as_bytes());
    }
    let reader = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = wait_timeout(&mut child, engine_timeout());
    Output {
        cmd: describe,
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs the command line `argv` on a pseudo-terminal (under util-linux `script`), so that
/// engines asked for `-t` see a terminal on their stdin. Output: the terminal's text.
pub fn run_on_pty(argv: &[String]) -> Output {
    let line = argv
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", &line, "/dev/null"]);
    let mut out = run(&mut cmd, None);
    out.cmd = format!("(on a pty) {line}");
    out
}

/// Quotes `s` for sh.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The image reference every engine imports.
pub const IMAGE: &str = "coracle-busybox:latest";

/// Builds a Docker-archive image tar (`docker save` format, loadable by `ctr images import`,
/// `docker load` and `podman load`) of a busybox rootfs at `<dir>/busybox.tar`; returns its path.
pub fn busybox_image(dir: &Path) -> PathBuf {
    image_tar(dir, IMAGE, &["sh"], "busybox.tar")
}

/// Builds a Docker-archive image tar of a busybox rootfs tagged `tag` whose command is `cmd`, at
/// `<dir>/<file>`; returns its path.
pub fn image_tar(dir: &Path, tag: &str, cmd: &[&str], file: &str) -> PathBuf {
    let work = dir.join(format!("image-build-{file}"));
    let rootfs = work.join("rootfs");
    fs::create_dir_all(&rootfs).unwrap_or_else(|e| panic!("mkdir {}: {e}", rootfs.display()));
    make_rootfs(&rootfs);
    let arch = work.join("archive");
    fs::create_dir_all(&arch).unwrap_or_else(|e| panic!("mkdir {}: {e}", arch.display()));
    let layer = work.join("layer.tar");
    tar(&[
        "--numeric-owner",
        "--owner=0",
        "--group=0",
        "--sort=name",
        "-C",
        &rootfs.to_string_lossy(),
        "-cf",
        &layer.to_string_lossy(),
        ".",
    ]);
    let layer_sum = sha256(&layer);
    let layer_dir = arch.join(&layer_sum);
    fs::create_dir_all(&layer_dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    fs::rename(&layer, layer_dir.join("layer.tar")).unwrap_or_else(|e| panic!("rename: {e}"));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_sum}")]},
        "history": [{"created_by": "coracle conformance/engines"}],
    });
    let config_path = work.join("config.json");
    fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("write config: {e}"));
    let config_sum = sha256(&config_path);
    let config_name = format!("{config_sum}.json");
    fs::rename(&config_path, arch.join(&config_name)).unwrap_or_else(|e| panic!("rename: {e}"));
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": [format!("{layer_sum}/layer.tar")],
    }]);
    fs::write(arch.join("manifest.json"), manifest.to_string())
        .unwrap_or_else(|e| panic!("write manifest: {e}"));
    let out = dir.join(file);
    tar(&[
        "-C",
        &arch.to_string_lossy(),
        "-cf",
        &out.to_string_lossy(),
        ".",
    ]);
    let _ = fs::remove_dir_all(&work);
    out
}

fn tar(args: &[&str]) {
    let st = Command::new("tar")
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("tar: {e}"));
    assert!(st.success(), "tar {args:?} failed: {st}");
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    assert!(out.status.success(), "sha256sum {} failed", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Sends SIGTERM to `pid`, waits up to `grace` for it to go, then SIGKILLs it.
pub fn stop_pid(pid: i32, grace: Duration) {
    let alive = || Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
    if !alive() {
        return;
    }
    // `kill` from the shell: this crate's tests use no unsafe.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if !wait_until(grace, || !alive()) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        wait_until(Duration::from_secs(5), || !alive());
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// A failure report for a scenario: the engine command's output, the runtime calls that failed
/// and the tail of the engine's own log.
pub fn report(what: &str, out: &Output, shim: &Shim, engine_log: &Path) -> String {
    report_since(what, out, shim, engine_log, 0)
}

/// Like [`report`], with only the runtime calls recorded after `mark` ([`Shim::mark`]).
pub fn report_since(
    what: &str,
    out: &Output,
    shim: &Shim,
    engine_log: &Path,
    mark: usize,
) -> String {
    let log = fs::read_to_string(engine_log).unwrap_or_default();
    let tail: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("level=info") && !l.contains("level=debug"))
        .rev()
        .take(15)
        .collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "{what}\n{out}\n  --- failed runtime calls ---\n{}\n  --- last runtime calls ---\n{}\n  --- engine log (tail) ---\n{}",
        shim.failed_calls_since(mark),
        last_lines(&shim.calls_since(mark), 8),
        tail.join("\n")
    )
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
