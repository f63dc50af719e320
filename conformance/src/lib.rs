//! Helpers for the conformance tests: bundles, the binary under test, cleanup.
//!
//! The tests drive a runtime binary speaking runc's command line: `coracle` by default
//! (`<workspace>/target/x86_64-unknown-linux-gnu/debug/coracle`), or whatever `CORACLE_BIN` names (runc is the oracle the
//! tests are validated against). Each test makes its own busybox [`Bundle`] in a fresh directory
//! and its own [`Runtime`] with a private `--root`; both clean up on drop, even when the test
//! fails: containers are force-deleted, leftover processes in the test's cgroup killed, its cgroup
//! directories removed, and the bundle removed (unless something is still mounted there).
//!
//! [`pty`] has the terminal helpers (a pty pair, a `--console-socket` listener receiving the
//! master over SCM_RIGHTS, a background reader); [`rootless`] a throwaway unprivileged user for
//! the rootless tests (created with useradd, removed with userdel on drop).

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod pty;
pub mod rootless;

/// How long one runtime command may take before the test gives up on it and kills it:
/// `$CORACLE_TEST_TIMEOUT` seconds, 20 by default (a command takes well under a second; a hung
/// runtime must not eat CI's time budget).
pub fn command_timeout() -> Duration {
    let secs = std::env::var("CORACLE_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique in this test process and across concurrent test processes:
/// `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The target triple the workspace builds for (`build.target` in .cargo/config.toml).
pub const BUILD_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The binary under test: `$CORACLE_BIN`, else `$CARGO_TARGET_DIR/<triple>/debug/coracle`,
/// else `<workspace>/target/<triple>/debug/coracle` (the triple is [`BUILD_TARGET`]).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CORACLE_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => workspace_root().join(t),
        None => workspace_root().join("target"),
    };
    target.join(BUILD_TARGET).join("debug").join("coracle")
}

/// Whether the binary under test is runc (the oracle), by its file name.
pub fn is_runc() -> bool {
    binary()
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("runc"))
}

/// Returns true (and says so on stderr) when the binary under test is runc, for a check runc is
/// known not to meet. Use as `if skip_for_runc("why") { return; }`.
pub fn skip_for_runc(why: &str) -> bool {
    if is_runc() {
        eprintln!("SKIPPED for runc: {why}");
        true
    } else {
        false
    }
}

/// The busybox binary used for the rootfs: `$BUSYBOX` or `/bin/busybox` (Debian busybox-static).
pub fn busybox() -> PathBuf {
    std::env::var_os("BUSYBOX")
        .filter(|b| !b.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"))
}

/// The applets the busybox binary provides, from `busybox --list` run on the host.
fn busybox_applets(bb: &Path) -> Vec<String> {
    let out = Command::new(bb)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("running {} --list: {e}", bb.display()));
    assert!(out.status.success(), "{} --list failed", bb.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect()
}

/// A file at the root of every test rootfs; scripts check it before doing anything.
pub const ROOTFS_MARKER: &str = ".coracle-test-rootfs";

/// The prefix of every [`Bundle::sh`] script: exit 125 unless the marker is at `/`.
pub const ROOTFS_GUARD: &str = "[ -e /.coracle-test-rootfs ] || { echo 'conformance: / is not the \
test rootfs, refusing to run the test script' >&2; exit 125; }; ";

/// The five capability sets of `process.capabilities`.
pub const CAP_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// A bundle directory with a busybox rootfs and a config.json built from [`Bundle::config`].
///
/// The config starts like `runc spec` (but non-terminal, writable root, a cgroup namespace and a
/// unique absolute `cgroupsPath`) and is written by the [`Runtime`] methods before each use.
pub struct Bundle {
    dir: PathBuf,
    /// The config written to `config.json`; edit freely (or use the knobs below).
    pub config: Value,
    raw_config: Option<String>,
    cgroup_name: String,
}

impl Bundle {
    /// A fresh bundle under the system temp dir, running `sh` by default.
    pub fn new() -> Bundle {
        let name = unique("coracle-test");
        let dir = std::env::temp_dir().join(format!("{name}-bundle"));
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&rootfs).unwrap_or_else(|e| panic!("mkdir {}: {e}", rootfs.display()));
        let bundle = Bundle {
            config: default_config(&format!("/{name}")),
            dir,
            raw_config: None,
            cgroup_name: format!("/{name}"),
        };
        make_rootfs(&rootfs);
        bundle
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The bundle directory as a string, for command lines.
    pub fn path_str(&self) -> &str {
        self.dir.to_str().unwrap_or_default()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The absolute `cgroupsPath` this bundle was given (`/coracle-test-<pid>-<n>`).
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup_name
    }

    /// Writes this exact text as config.json from now on, instead of [`Bundle::config`].
    pub fn set_raw_config(&mut self, text: &str) -> &mut Self {
        self.raw_config = Some(text.to_string());
        self
    }

    /// Writes config.json (done by the [`Runtime`] methods that take a bundle).
    pub fn write(&self) {
        let text = match &self.raw_config {
            Some(raw) => raw.clone(),
            None => serde_json::to_string_pretty(&self.config).unwrap_or_default(),
        };
        let path = self.dir.join("config.json");
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }

    /// `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.process()["args"] = json!(args);
        self
    }

    /// `process.args = ["sh", "-c", script]`, the script guarded by [`ROOTFS_GUARD`] so that a
    /// runtime that failed to enter the rootfs never runs it on the host.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        let guarded = format!("{ROOTFS_GUARD}{script}");
        self.args(&["sh", "-c", &guarded])
    }

    /// `process.env`.
    pub fn env(&mut self, env: &[&str]) -> &mut Self {
        self.process()["env"] = json!(env);
        self
    }

    /// `process.cwd`.
    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.process()["cwd"] = json!(cwd);
        self
    }

    /// `process.user.uid` and `.gid`.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.process()["user"]["uid"] = json!(uid);
        self.process()["user"]["gid"] = json!(gid);
        self
    }

    /// `process.user.additionalGids`.
    pub fn additional_gids(&mut self, gids: &[u32]) -> &mut Self {
        self.process()["user"]["additionalGids"] = json!(gids);
        self
    }

    /// `process.user.umask`.
    pub fn umask(&mut self, umask: u32) -> &mut Self {
        self.process()["user"]["umask"] = json!(umask);
        self
    }

    /// Sets one capability set (`bounding`, `effective`, ...).
    pub fn cap_set(&mut self, set: &str, caps: &[&str]) -> &mut Self {
        self.process()["capabilities"][set] = json!(caps);
        self
    }

    /// Sets all five capability sets to the same list.
    pub fn caps_all(&mut self, caps: &[&str]) -> &mut Self {
        for set in CAP_SETS {
            self.cap_set(set, caps);
        }
        self
    }

    /// Removes one capability set from the config.
    pub fn remove_cap_set(&mut self, set: &str) -> &mut Self {
        if let Some(c) = self.process()["capabilities"].as_object_mut() {
            c.remove(set);
        }
        self
    }

    /// Sets (replacing any of the same type) one rlimit, e.g. `RLIMIT_NOFILE`.
    pub fn rlimit(&mut self, kind: &str, soft: u64, hard: u64) -> &mut Self {
        let p = self.process();
        if !p["rlimits"].is_array() {
            p["rlimits"] = json!([]);
        }
        if let Some(list) = p["rlimits"].as_array_mut() {
            list.retain(|r| r["type"] != kind);
            list.push(json!({"type": kind, "soft": soft, "hard": hard}));
        }
        self
    }

    /// `process.noNewPrivileges`.
    pub fn no_new_privileges(&mut self, on: bool) -> &mut Self {
        self.process()["noNewPrivileges"] = json!(on);
        self
    }

    /// Appends one entry to `mounts`.
    pub fn mount(&mut self, dest: &str, kind: &str, source: &str, options: &[&str]) -> &mut Self {
        if let Some(m) = self.config["mounts"].as_array_mut() {
            m.push(
                json!({"destination": dest, "type": kind, "source": source, "options": options}),
            );
        }
        self
    }

    /// Replaces `linux.namespaces` with new namespaces of these types.
    pub fn namespaces(&mut self, kinds: &[&str]) -> &mut Self {
        let list: Vec<Value> = kinds.iter().map(|k| json!({"type": k})).collect();
        self.linux()["namespaces"] = Value::Array(list);
        self
    }

    /// Adds one namespace entry (`path` None: a new namespace).
    pub fn add_namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        let entry = match path {
            Some(p) => json!({"type": kind, "path": p}),
            None => json!({"type": kind}),
        };
        if let Some(list) = self.linux()["namespaces"].as_array_mut() {
            list.retain(|n| n["type"] != kind);
            list.push(entry);
        }
        self
    }

    /// `linux.maskedPaths`.
    pub fn masked_paths(&mut self, paths: &[&str]) -> &mut Self {
        self.linux()["maskedPaths"] = json!(paths);
        self
    }

    /// `linux.readonlyPaths`.
    pub fn readonly_paths(&mut self, paths: &[&str]) -> &mut Self {
        self.linux()["readonlyPaths"] = json!(paths);
        self
    }

    /// `hostname`.
    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.config["hostname"] = json!(name);
        self
    }

    /// Appends one `linux.devices` entry, e.g. `device("/dev/fuse", "c", 10, 229, 0o666)`.
    pub fn device(
        &mut self,
        path: &str,
        kind: &str,
        major: u64,
        minor: u64,
        mode: u32,
    ) -> &mut Self {
        let linux = self.linux();
        if !linux["devices"].is_array() {
            linux["devices"] = json!([]);
        }
        if let Some(list) = linux["devices"].as_array_mut() {
            list.push(json!({
                "path": path, "type": kind, "major": major, "minor": minor,
                "fileMode": mode, "uid": 0, "gid": 0
            }));
        }
        self
    }

    /// `linux.cgroupsPath` (None removes it).
    pub fn cgroups_path(&mut self, path: Option<&str>) -> &mut Self {
        match path {
            Some(p) => self.linux()["cgroupsPath"] = json!(p),
            None => {
                if let Some(l) = self.linux().as_object_mut() {
                    l.remove("cgroupsPath");
                }
            }
        }
        self
    }

    /// `root.readonly`.
    pub fn root_readonly(&mut self, ro: bool) -> &mut Self {
        self.config["root"]["readonly"] = json!(ro);
        self
    }

    /// `process.terminal`.
    pub fn terminal(&mut self, on: bool) -> &mut Self {
        self.process()["terminal"] = json!(on);
        self
    }

    /// `process.consoleSize`.
    pub fn console_size(&mut self, height: u32, width: u32) -> &mut Self {
        self.process()["consoleSize"] = json!({"height": height, "width": width});
        self
    }

    /// Appends one hook to `hooks.<kind>` (`prestart`, `createRuntime`, `createContainer`,
    /// `startContainer`, `poststart`, `poststop`).
    pub fn hook(
        &mut self,
        kind: &str,
        path: &str,
        args: &[&str],
        env: &[&str],
        timeout: Option<u32>,
    ) -> &mut Self {
        if !self.config["hooks"].is_object() {
            self.config["hooks"] = json!({});
        }
        let hooks = &mut self.config["hooks"][kind];
        if !hooks.is_array() {
            *hooks = json!([]);
        }
        let mut h = json!({"path": path, "args": args, "env": env});
        if let Some(t) = timeout {
            h["timeout"] = json!(t);
        }
        if let Some(list) = hooks.as_array_mut() {
            list.push(h);
        }
        self
    }

    /// `linux.uidMappings` from `(containerID, hostID, size)` triples.
    pub fn uid_mappings(&mut self, maps: &[(u32, u32, u32)]) -> &mut Self {
        self.linux()["uidMappings"] = id_mappings(maps);
        self
    }

    /// `linux.gidMappings` from `(containerID, hostID, size)` triples.
    pub fn gid_mappings(&mut self, maps: &[(u32, u32, u32)]) -> &mut Self {
        self.linux()["gidMappings"] = id_mappings(maps);
        self
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Bundle::new()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        kill_cgroup(&self.cgroup_name);
        remove_cgroup_dirs(&self.cgroup_name);
        remove_tree_unless_mounted(&self.dir);
    }
}

/// A JSON list of id mappings from `(containerID, hostID, size)` triples.
pub fn id_mappings(maps: &[(u32, u32, u32)]) -> Value {
    Value::Array(
        maps.iter()
            .map(|(c, h, n)| json!({"containerID": c, "hostID": h, "size": n}))
            .collect(),
    )
}

/// `script` prefixed with [`ROOTFS_GUARD`], for `sh -c` in a container (e.g. with `exec`).
pub fn guarded(script: &str) -> String {
    format!("{ROOTFS_GUARD}{script}")
}

/// The config a bundle starts with: `coracle spec` as runc's (ociVersion 1.0.2-dev, the ambient
/// capabilities runc 1.1 sets), non-terminal, writable root, with the given absolute cgroupsPath.
pub fn default_config(cgroups_path: &str) -> Value {
    let mut c = coracle::spec::template(false);
    c["ociVersion"] = json!("1.0.2-dev");
    c["process"]["terminal"] = json!(false);
    c["process"]["capabilities"]["ambient"] = c["process"]["capabilities"]["bounding"].clone();
    c["root"]["readonly"] = json!(false);
    c["linux"]["cgroupsPath"] = json!(cgroups_path);
    c
}

/// The passwd file of the test rootfs.
pub const ETC_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
tester:x:1000:1000:tester:/home/tester:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// The group file of the test rootfs.
pub const ETC_GROUP: &str = "root:x:0:\nwheel:x:10:\ndialout:x:20:\ntty:x:5:\n\
tester:x:1000:\nnogroup:x:65534:\n";

/// Makes a busybox rootfs at `rootfs`: /bin/busybox plus one symlink per applet, the usual
/// directories, /etc/passwd and /etc/group.
pub fn make_rootfs(rootfs: &Path) {
    let bb = busybox();
    assert!(
        bb.is_file(),
        "{} not found: install Debian's busybox-static (apt-get install -y busybox-static) or set BUSYBOX",
        bb.display()
    );
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "home/tester",
        "mnt",
        "run",
    ] {
        let p = rootfs.join(d);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
    let set_mode = |p: &Path, mode: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
    };
    set_mode(&rootfs.join("tmp"), 0o1777);
    set_mode(rootfs, 0o755);
    let target = rootfs.join("bin/busybox");
    fs::copy(&bb, &target).unwrap_or_else(|e| panic!("copy {}: {e}", bb.display()));
    set_mode(&target, 0o755);
    for applet in busybox_applets(&bb) {
        let link = rootfs.join("bin").join(&applet);
        symlink("busybox", &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
    }
    fs::write(rootfs.join(ROOTFS_MARKER), "").unwrap_or_else(|e| panic!("marker: {e}"));
    fs::write(rootfs.join("etc/passwd"), ETC_PASSWD).unwrap_or_else(|e| panic!("passwd: {e}"));
    fs::write(rootfs.join("etc/group"), ETC_GROUP).unwrap_or_else(|e| panic!("group: {e}"));
}

/// The result of one command: what ran, its exit code (None: killed by a signal or timed out),
/// stdout and stderr.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub cmd: String,
    /// The exit code, or None when it died of a signal or timed out.
    pub code: Option<i32>,
    /// Set when the command was killed for exceeding [`command_timeout`].
    pub timed_out: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics (showing everything) unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "command failed:\n{self}");
        self
    }

    /// Panics (showing everything) unless the command exited non-zero (and did not time out).
    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert!(
            !self.timed_out && self.code.is_some_and(|c| c != 0),
            "command should have failed with a non-zero exit code:\n{self}"
        );
        self
    }

    /// Panics unless stderr mentions one of `keywords` (case-insensitive).
    #[track_caller]
    pub fn stderr_mentions(&self, keywords: &[&str]) -> &Self {
        let err = self.stderr.to_lowercase();
        assert!(
            keywords.iter().any(|k| err.contains(&k.to_lowercase())),
            "stderr should mention one of {keywords:?}:\n{self}"
        );
        self
    }

    /// stdout, trimmed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// The value after `key=` on a line of stdout like `key=value` (the conformance scripts
    /// print their findings that way).
    pub fn field(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }

    /// Like [`Output::field`], panicking with the whole output when the key is missing.
    #[track_caller]
    pub fn expect_field(&self, key: &str) -> String {
        match self.field(key) {
            Some(v) => v,
            None => panic!("no `{key}=` line in the container's output:\n{self}"),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.cmd)?;
        match (self.timed_out, self.code) {
            (true, _) => writeln!(f, "  result:  TIMED OUT (killed at the test's time limit)")?,
            (false, Some(c)) => writeln!(f, "  exit:    {c}")?,
            (false, None) => writeln!(f, "  exit:    killed by a signal")?,
        }
        writeln!(f, "  --- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "  --- stderr ---\n{}", self.stderr.trim_end())
    }
}

/// Waits for `child` up to `timeout`, killing it when it takes longer. Returns its status, or
/// None on timeout.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for a child: {e}"),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// A handle on the binary under test with a private `--root`; remembers the containers it
/// created and force-deletes them (then removes the root) on drop.
pub struct Runtime {
    bin: PathBuf,
    root: PathBuf,
    work: PathBuf,
    log: Option<PathBuf>,
    ids: Mutex<Vec<String>>,
}

impl Runtime {
    /// A runtime with `--root /run/coracle-test-<pid>-<n>`.
    pub fn new() -> Runtime {
        let bin = binary();
        assert!(
            bin.is_file(),
            "binary under test {} not found: build it (cargo build --workspace) or set CORACLE_BIN",
            bin.display()
        );
        let name = unique("coracle-test");
        let root = PathBuf::from("/run").join(&name);
        let work = std::env::temp_dir().join(format!("{name}-work"));
        fs::create_dir_all(&work).unwrap_or_else(|e| panic!("mkdir {}: {e}", work.display()));
        Runtime {
            bin,
            root,
            work,
            log: None,
            ids: Mutex::new(Vec::new()),
        }
    }

    /// Like [`Runtime::new`], but for the runtime binary `bin` (e.g. runc, in a test that
    /// compares two runtimes).
    pub fn with_binary(bin: &Path) -> Runtime {
        let mut rt = Runtime::new();
        rt.bin = bin.to_path_buf();
        rt
    }

    /// Like [`Runtime::new`], also passing `--log <file> --log-format json`.
    pub fn with_json_log() -> Runtime {
        let mut rt = Runtime::new();
        rt.log = Some(rt.work.join("runtime-log.json"));
        rt
    }

    /// The binary under test.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A scratch directory for this runtime's command outputs, removed on drop.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// Runs a prepared command (e.g. from [`Runtime::command`], changed by the test) with
    /// stdout/stderr to files in the work dir and the timeout; `describe` names it in messages.
    pub fn exec_command(&self, mut cmd: Command, describe: &str) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        spawn_to_files(&mut cmd, &self.work, &format!("custom-{n}"), describe)
    }

    /// The `--log` file's contents ("" when there is none yet).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// A fresh container id, remembered for cleanup.
    pub fn new_id(&self) -> String {
        let id = unique("ct");
        self.track(&id);
        id
    }

    /// Remembers `id` for cleanup (ids that are not plain names are never tracked, so cleanup
    /// cannot reach outside the root).
    pub fn track(&self, id: &str) {
        if id.is_empty() || id == "." || id == ".." || id.contains('/') {
            return;
        }
        if let Ok(mut ids) = self.ids.lock() {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
    }

    /// The global flags (`--root`, and `--log`/`--log-format json` when asked for).
    pub fn global_args(&self) -> Vec<String> {
        let mut a = vec!["--root".to_string(), self.root.display().to_string()];
        if let Some(log) = &self.log {
            a.push("--log".to_string());
            a.push(log.display().to_string());
            a.push("--log-format".to_string());
            a.push("json".to_string());
        }
        a
    }

    /// A `Command` for the binary with the global flags and `args`; stdin is /dev/null.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(self.global_args()).args(args).stdin(Stdio::null());
        c
    }

    fn describe(&self, args: &[&str]) -> String {
        let mut s = self.bin.display().to_string();
        for a in self
            .global_args()
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
        {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs the binary with `args`, stdout and stderr going to files in the work dir (so a
    /// container that inherits them never keeps the test waiting), with a timeout.
    pub fn exec(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        self.exec_to(args, &format!("cmd-{n}"))
    }

    /// Like [`Runtime::exec`], naming the output files `<stem>.out` and `<stem>.err`.
    fn exec_to(&self, args: &[&str], stem: &str) -> Output {
        let mut cmd = self.command(args);
        spawn_to_files(&mut cmd, &self.work, stem, &self.describe(args))
    }

    /// `run --bundle B <new id>`: the container's stdout/stderr are captured, its exit status
    /// returned.
    pub fn run(&self, bundle: &Bundle) -> Output {
        let id = self.new_id();
        self.run_id(&id, bundle, &[])
    }

    /// `run [extra] --bundle B ID`.
    pub fn run_id(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        bundle.write();
        self.track(id);
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", bundle.path_str(), id]);
        self.exec(&args)
    }

    /// `create --bundle B ID`. The container inherits this command's stdout and stderr, which
    /// go to files read by [`Runtime::container_output`].
    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.create_with(id, bundle, &[])
    }

    /// `create [extra] --bundle B ID`.
    pub fn create_with(&self, id: &str, bundle: &Bundle, extra: &[&str]) -> Output {
        bundle.write();
        self.track(id);
        let mut args = vec!["create"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", bundle.path_str(), id]);
        self.exec_to(&args, &format!("create-{}", file_safe(id)))
    }

    /// What the container created as `id` wrote so far to stdout and stderr.
    pub fn container_output(&self, id: &str) -> (String, String) {
        let read = |ext: &str| {
            let name = format!("create-{}.{ext}", file_safe(id));
            fs::read_to_string(self.work.join(name)).unwrap_or_default()
        };
        (read("out"), read("err"))
    }

    /// `start ID`.
    pub fn start(&self, id: &str) -> Output {
        self.exec(&["start", id])
    }

    /// `state ID`, raw.
    pub fn state_raw(&self, id: &str) -> Output {
        self.exec(&["state", id])
    }

    /// `state ID`, which must succeed and print JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.state_raw(id);
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}):\n{out}"))
    }

    /// `kill ID SIGNAL`.
    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.exec(&["kill", id, signal])
    }

    /// `delete ID`.
    pub fn delete(&self, id: &str) -> Output {
        self.exec(&["delete", id])
    }

    /// `delete --force ID`.
    pub fn delete_force(&self, id: &str) -> Output {
        self.exec(&["delete", "--force", id])
    }

    /// Polls `state ID` until its status is `status` (panics after `timeout`).
    #[track_caller]
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let out = self.state_raw(id);
            if out.success() {
                if let Ok(v) = serde_json::from_str::<Value>(&out.stdout) {
                    if v["status"] == status {
                        return v;
                    }
                }
            }
            assert!(
                start.elapsed() < timeout,
                "container {id} did not reach status {status:?} within {timeout:?}; last state:\n{out}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the binary with `args` in the background (stdout/stderr to files in the work
    /// dir); [`Running::wait`] collects the result.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_command(self.command(args), &self.describe(args))
    }

    /// Starts a prepared command in the background, like [`Runtime::spawn`].
    pub fn spawn_command(&self, mut cmd: Command, describe: &str) -> Running {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let out = self.work.join(format!("bg-{n}.out"));
        let err = self.work.join(format!("bg-{n}.err"));
        let f = |p: &Path| fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        cmd.stdout(f(&out)).stderr(f(&err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {describe}: {e}"));
        Running {
            child: Some(child),
            cmd: describe.to_string(),
            out,
            err,
        }
    }

    /// `run --detach` of `bundle` under a fresh id (asserting success); returns the id.
    #[track_caller]
    pub fn run_detached(&self, bundle: &Bundle) -> String {
        let id = self.new_id();
        self.run_id(&id, bundle, &["--detach"]).ok();
        id
    }

    /// The container's init pid from `state`.
    #[track_caller]
    pub fn init_pid(&self, id: &str) -> i64 {
        let st = self.state(id);
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state of {id} has no pid: {st}"))
    }

    /// `exec [flags] ID argv...`.
    pub fn exec_in(&self, id: &str, flags: &[&str], argv: &[&str]) -> Output {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.push(id);
        args.extend_from_slice(argv);
        self.exec(&args)
    }

    /// `exec [flags] ID sh -c <guarded script>`.
    pub fn exec_sh(&self, id: &str, flags: &[&str], script: &str) -> Output {
        let g = guarded(script);
        self.exec_in(id, flags, &["sh", "-c", &g])
    }

    /// Whether the state dir holds an entry for `id`.
    pub fn state_dir_exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids = self.ids.lock().map(|i| i.clone()).unwrap_or_default();
        for id in ids {
            if self.root.join(&id).exists() {
                let mut c = self.command(&["delete", "--force", &id]);
                c.stdout(Stdio::null()).stderr(Stdio::null());
                if let Ok(mut child) = c.spawn() {
                    let _ = wait_timeout(&mut child, Duration::from_secs(20));
                }
            }
        }
        remove_tree_unless_mounted(&self.root);
        let _ = fs::remove_dir_all(&self.work);
    }
}

/// A runtime command running in the background (killed on drop if still running).
pub struct Running {
    child: Option<Child>,
    cmd: String,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    /// The command's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// What it wrote to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until its stdout contains `needle` (panics after `timeout`, showing the output).
    #[track_caller]
    pub fn wait_stdout(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let out = self.stdout_so_far();
            if out.contains(needle) {
                return out;
            }
            assert!(
                start.elapsed() < timeout,
                "{} never printed {needle:?}\nstdout:\n{out}\nstderr:\n{}",
                self.cmd,
                fs::read_to_string(&self.err).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for it (with [`command_timeout`]) and returns its output.
    pub fn wait(self) -> Output {
        self.wait_within(command_timeout())
    }

    /// Waits for it up to `timeout` (then kills it: the output says `timed_out`).
    pub fn wait_within(mut self, timeout: Duration) -> Output {
        let status = self.child.as_mut().and_then(|c| wait_timeout(c, timeout));
        self.child = None;
        Output {
            cmd: self.cmd.clone(),
            code: status.and_then(|s| s.code()),
            timed_out: status.is_none(),
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `id` with every character that is not alphanumeric, `-`, `_` or `.` replaced by `_`.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Spawns `cmd` with stdout and stderr to `<dir>/<stem>.out|err`, waits with the timeout, and
/// reads the files back.
pub fn spawn_to_files(cmd: &mut Command, dir: &Path, stem: &str, describe: &str) -> Output {
    let out_path = dir.join(format!("{stem}.out"));
    let err_path = dir.join(format!("{stem}.err"));
    let out = fs::File::create(&out_path).unwrap_or_else(|e| panic!("{}: {e}", out_path.display()));
    let err = fs::File::create(&err_path).unwrap_or_else(|e| panic!("{}: {e}", err_path.display()));
    cmd.stdout(out).stderr(err);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {describe}: {e}"));
    let status = wait_timeout(&mut child, command_timeout());
    let read = |p: &Path| {
        let mut s = Vec::new();
        if let Ok(mut f) = fs::File::open(p) {
            let _ = f.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    };
    Output {
        cmd: describe.to_string(),
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// The target of `/proc/self/ns/<kind>` of the test process (the host's namespace).
pub fn host_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Lines of the host's /proc/self/mountinfo that mention `path`.
pub fn host_mounts_mentioning(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, named hierarchies and
/// the unified one), as directories.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") else {
        return out;
    };
    for line in mounts.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split_whitespace().next().unwrap_or_default();
        let mountpoint = left.split_whitespace().nth(4).unwrap_or_default();
        if (fstype == "cgroup" || fstype == "cgroup2") && mountpoint.starts_with("/sys/fs/cgroup") {
            out.push(PathBuf::from(mountpoint));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The directories of cgroup `path` (absolute, like a cgroupsPath) that exist on the host.
pub fn existing_cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Vec::new();
    }
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|d| d.is_dir())
        .collect()
}

/// Thaws cgroup `path` (a test's own cgroup) if it is frozen (v1 freezer or v2 cgroup.freeze),
/// so that its processes can be killed or go on.
pub fn thaw_cgroup(path: &str) {
    for dir in existing_cgroup_dirs(path) {
        let v1 = dir.join("freezer.state");
        if v1.exists() {
            let _ = fs::write(&v1, "THAWED");
        }
        let v2 = dir.join("cgroup.freeze");
        if v2.exists() {
            let _ = fs::write(&v2, "0");
        }
    }
}

/// SIGKILLs every process in cgroup `path` (a test's own cgroup; never call it on another),
/// thawing it first (a frozen process does not die until thawed).
fn kill_cgroup(path: &str) {
    thaw_cgroup(path);
    let mut pids = Vec::new();
    for dir in existing_cgroup_dirs(path) {
        if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(procs.split_whitespace().map(str::to_string));
        }
    }
    pids.sort();
    pids.dedup();
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-9")
        .args(&pids)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    thread::sleep(Duration::from_millis(100));
}

/// Removes the test's cgroup directories that are still there (deepest first).
fn remove_cgroup_dirs(path: &str) {
    for dir in existing_cgroup_dirs(path) {
        for _ in 0..50 {
            if fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes `dir` recursively, after lazily unmounting anything mounted under it; leaves it in
/// place (and says so) if a mount remains, so a stray bind mount never makes us delete files
/// outside the test's directories.
pub fn remove_tree_unless_mounted(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let under = |l: &String| {
        l.split_whitespace()
            .nth(4)
            .is_some_and(|mp| Path::new(mp).starts_with(dir))
    };
    let mut mounted: Vec<String> = host_mounts_mentioning(dir)
        .into_iter()
        .filter(under)
        .collect();
    if !mounted.is_empty() {
        // Deepest first.
        let mut points: Vec<String> = mounted
            .iter()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount")
                .args(["-l", &p])
                .stderr(Stdio::null())
                .status();
        }
        mounted = host_mounts_mentioning(dir)
            .into_iter()
            .filter(under)
            .collect();
    }
    if mounted.is_empty() {
        let _ = fs::remove_dir_all(dir);
    } else {
        eprintln!(
            "cleanup: leaving {} in place, still mounted there:\n{}",
            dir.display(),
            mounted.join("\n")
        );
    }
}

/// The fields of one /proc/PID/mountinfo line that the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// The mount point.
    pub mount_point: String,
    /// Per-mount options (ro, nosuid, ...).
    pub mount_options: Vec<String>,
    /// Optional fields (`shared:N`, `master:N`, ...).
    pub optional: Vec<String>,
    /// The filesystem type.
    pub fstype: String,
    /// The mount source.
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

impl MountInfo {
    /// Whether the per-mount options include `opt`.
    pub fn has(&self, opt: &str) -> bool {
        self.mount_options.iter().any(|o| o == opt)
    }
}

/// Parses mountinfo text (lines not shaped like mountinfo are skipped).
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split_whitespace().collect();
            let r: Vec<&str> = right.split_whitespace().collect();
            if l.len() < 6 || r.len() < 2 {
                return None;
            }
            Some(MountInfo {
                mount_point: l[4].to_string(),
                mount_options: l[5].split(',').map(str::to_string).collect(),
                optional: l[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r[0].to_string(),
                source: r[1].to_string(),
                super_options: r
                    .get(2)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The last mount at `point` in parsed mountinfo (the one visible).
pub fn find_mount<'a>(mounts: &'a [MountInfo], point: &str) -> Option<&'a MountInfo> {
    mounts.iter().rev().find(|m| m.mount_point == point)
}

/// Capability numbers of the names used in the tests.
pub fn cap_number(name: &str) -> u32 {
    match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_FOWNER" => 3,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_ADMIN" => 21,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        other => panic!("cap_number: add {other} to the table"),
    }
}

/// The mask of `caps` as /proc/self/status prints it (16 hex digits).
pub fn cap_mask(caps: &[&str]) -> String {
    let m = caps.iter().fold(0u64, |m, c| m | (1u64 << cap_number(c)));
    format!("{m:016x}")
}

/// Runs `script` with `sh -c` in a fresh container (bundle adjusted by `configure`) via `run`,
/// asserts it exited 0 and returns its output. Everything is cleaned up on return.
#[track_caller]
pub fn run_script(configure: impl FnOnce(&mut Bundle), script: &str) -> Output {
    let rt = Runtime::new();
    let mut bundle = Bundle::new();
    bundle.sh(script);
    configure(&mut bundle);
    let out = rt.run(&bundle);
    out.ok();
    out
}
