//! Podman 4.3 (Debian `podman`, with conmon, uidmap, fuse-overlayfs), rootful, with its
//! storage, run root and temp dir in a private dir, cgroupfs, file events, no network, and
//! `--runtime` pointing at coracle through the logging shim. Podman passes no `--root`: coracle
//! keeps these containers' state in its default dir. A containers.conf lowers the default
//! RLIMIT_NOFILE/NPROC (1048576 cannot be set here). One storage is shared by the tests that
//! overlap in time, like the Docker daemon.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

use coracle_conformance::{cgroup_hierarchies, Output};

use super::{
    ensure_installed, report_since, run, run_on_pty, runtime_binary, shell_quote, unmount_under,
    Shim, WorkDir, IMAGE,
};

/// A podman storage with the busybox image loaded.
pub struct Podman {
    /// The logging shim given as `--runtime`.
    pub shim: Shim,
    /// `--cgroup-parent` of every container (podman's default, /libpod_parent, is shared).
    cgroup_parent: String,
    conf: PathBuf,
    log: PathBuf,
    work: WorkDir,
}

static SHARED: Mutex<Weak<Podman>> = Mutex::new(Weak::new());

thread_local! {
    static MARK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The shared podman storage, made (and podman installed) when no test holds one.
pub fn podman() -> Arc<Podman> {
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let p = match shared.upgrade() {
        Some(p) => p,
        None => {
            let p = Arc::new(Podman::start());
            *shared = Arc::downgrade(&p);
            p
        }
    };
    MARK.with(|m| m.set(p.shim.mark()));
    p
}

impl Podman {
    fn start() -> Podman {
        ensure_installed(
            &["podman", "conmon", "newuidmap", "fuse-overlayfs"],
            &["podman", "conmon", "uidmap", "fuse-overlayfs"],
        );
        let work = WorkDir::new("pm");
        let shim = Shim::new(work.path(), "coracle", &runtime_binary());
        let conf = work.join("containers.conf");
        fs::write(
            &conf,
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             netns = \"none\"\n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .unwrap_or_else(|e| panic!("containers.conf: {e}"));
        let log = work.join("podman.log");
        let p = Podman {
            shim,
            cgroup_parent: format!("/{}", coracle_conformance::unique("coracle-podman")),
            conf,
            log,
            work,
        };
        let image = super::busybox_image(p.work.path());
        let out = p.podman(&["load", "-i", &image.to_string_lossy()]);
        assert!(out.success(), "podman load failed:\n{out}");
        p
    }

    fn global_args(&self) -> Vec<String> {
        let w = |n: &str| self.work.join(n).to_string_lossy().into_owned();
        vec![
            "--root".into(),
            w("root"),
            "--runroot".into(),
            w("runroot"),
            "--tmpdir".into(),
            w("tmp"),
            "--storage-driver".into(),
            "overlay".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            "--runtime".into(),
            self.shim.path.to_string_lossy().into_owned(),
        ]
    }

    /// Runs `podman GLOBAL args...`.
    pub fn podman(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .args(self.global_args())
            .args(args);
        let out = run(&mut cmd, None);
        self.append_log(&out);
        out
    }

    /// Runs `sh -c 'SETUP; exec podman GLOBAL args...'` (for fds the engine must inherit).
    pub fn podman_sh(&self, setup: &str, args: &[&str]) -> Output {
        let line: Vec<String> = std::iter::once("podman".to_string())
            .chain(self.global_args())
            .chain(args.iter().map(|s| s.to_string()))
            .map(|a| shell_quote(&a))
            .collect();
        let mut cmd = Command::new("sh");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .args(["-c", &format!("{setup}; exec {}", line.join(" "))]);
        let out = run(&mut cmd, None);
        self.append_log(&out);
        out
    }

    /// `podman ...` on a pseudo-terminal.
    pub fn podman_pty(&self, args: &[&str]) -> Output {
        let argv: Vec<String> = [
            "env".to_string(),
            format!("CONTAINERS_CONF={}", self.conf.display()),
            "podman".into(),
        ]
        .into_iter()
        .chain(self.global_args())
        .chain(args.iter().map(|s| s.to_string()))
        .collect();
        let out = run_on_pty(&argv);
        self.append_log(&out);
        out
    }

    fn append_log(&self, out: &Output) {
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            use std::io::Write;
            let _ = writeln!(f, "{out}");
        }
    }

    /// The `podman run` argv: `run --network none --pull never --cgroup-parent P OPTS IMAGE
    /// ARGS`.
    pub fn run_argv<'a>(&'a self, opts: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--network",
            "none",
            "--pull",
            "never",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        v.extend_from_slice(opts);
        v.push(IMAGE);
        v.extend_from_slice(args);
        v
    }

    /// `podman run` on coracle.
    pub fn run(&self, opts: &[&str], args: &[&str]) -> Output {
        self.podman(&self.run_argv(opts, args))
    }

    /// Everything to show when a scenario fails.
    pub fn report(&self, what: &str, out: &Output) -> String {
        let mark = MARK.with(|m| m.get());
        report_since(what, out, &self.shim, &self.log, mark)
    }

    /// `podman rm -f -t 0 name`, ignoring the result.
    pub fn remove(&self, name: &str) {
        let _ = self.podman(&["rm", "-f", "-t", "0", name]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        let _ = self.podman(&["rmi", "-af"]);
        unmount_under(self.work.path());
        // conmon's cgroup and the parent made for this storage's containers.
        let parent = self.cgroup_parent.trim_start_matches('/');
        for h in cgroup_hierarchies() {
            let _ = fs::remove_dir(h.join(parent).join("conmon"));
            let _ = fs::remove_dir(h.join(parent));
        }
    }
}

/// Rootless podman: run as uid/gid 65534 (`nobody`) with its own HOME, XDG_RUNTIME_DIR,
/// storage (vfs) and containers.conf in a private dir owned by that user; no subuid ranges, so
/// podman uses a single mapping (root in the container is uid 65534 on the host).
pub struct RootlessPodman {
    /// The logging shim given as `--runtime` (owned by the user, logging into its dir).
    pub shim: Shim,
    log: PathBuf,
    work: WorkDir,
}

/// The unprivileged uid/gid rootless podman runs as.
pub const ROOTLESS_ID: u32 = 65534;

impl RootlessPodman {
    /// Prepares the user's dirs and loads the image.
    pub fn start() -> RootlessPodman {
        ensure_installed(
            &["podman", "conmon", "setpriv"],
            &["podman", "conmon", "util-linux"],
        );
        let work = WorkDir::new("pmrl");
        let shim = Shim::new(work.path(), "coracle", &runtime_binary());
        fs::write(
            work.join("containers.conf"),
            "[containers]\nnetns = \"none\"\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n",
        )
        .unwrap_or_else(|e| panic!("containers.conf: {e}"));
        super::busybox_image(work.path());
        fs::create_dir_all(work.join("run")).unwrap_or_else(|e| panic!("mkdir run: {e}"));
        let _ = fs::File::create(work.join("runtime.log"));
        let st = Command::new("chown")
            .args(["-R", &format!("{ROOTLESS_ID}:{ROOTLESS_ID}")])
            .arg(work.path())
            .status()
            .unwrap_or_else(|e| panic!("chown: {e}"));
        assert!(st.success(), "chown -R of {} failed", work.path().display());
        let p = RootlessPodman {
            log: work.join("podman.log"),
            shim,
            work,
        };
        let tar = p.work.join("busybox.tar").to_string_lossy().into_owned();
        let out = p.podman(&["load", "-i", &tar]);
        assert!(out.success(), "rootless podman load failed:\n{out}");
        p
    }

    /// Runs podman as the unprivileged user.
    pub fn podman(&self, args: &[&str]) -> Output {
        let w = |n: &str| self.work.join(n).to_string_lossy().into_owned();
        let id = ROOTLESS_ID.to_string();
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &id,
            "--regid",
            &id,
            "--clear-groups",
            "env",
            "-i",
        ])
        .arg(format!("HOME={}", w("")))
        .arg(format!("XDG_RUNTIME_DIR={}", w("run")))
        .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(format!("CONTAINERS_CONF={}", w("containers.conf")))
        .args(["podman", "--root", &w("root"), "--runroot", &w("runroot")])
        .args(["--tmpdir", &w("tmp"), "--storage-driver", "vfs"])
        .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
        .arg("--runtime")
        .arg(&self.shim.path)
        .args(args);
        let out = run(&mut cmd, None);
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            use std::io::Write;
            let _ = writeln!(f, "{out}");
        }
        out
    }

    /// Everything to show when a scenario fails.
    pub fn report(&self, what: &str, out: &Output) -> String {
        report_since(what, out, &self.shim, &self.log, 0)
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        // The rootless pause process keeping podman's user namespace.
        if let Some(pid) = fs::read_to_string(self.work.join("tmp/pause.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            super::stop_pid(pid, std::time::Duration::from_secs(5));
        }
        unmount_under(self.work.path());
    }
}
