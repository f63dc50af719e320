//! Docker 20.10 (Debian `docker.io`): dockerd started by hand with all state in a temp dir,
//! no bridge, no iptables, cgroupfs driver, and coracle (through the logging shim) registered as
//! the runtime `coracle` (also the default). One daemon is shared by the tests that overlap in
//! time; it stops when the last of them drops its handle.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use coracle_conformance::{cgroup_hierarchies, unique, Output};

use super::containerd::pids_with_arg;
use super::{
    ensure_installed, report_since, run, run_on_pty, runtime_binary, stop_pid, unmount_under,
    wait_until, Shim, WorkDir, IMAGE,
};

/// The Debian docker client (a newer static client may come first on PATH).
pub const CLIENT: &str = "/usr/bin/docker";

/// A dockerd with the busybox image loaded.
pub struct Docker {
    child: Mutex<Option<Child>>,
    sock: String,
    cgroup_parent: String,
    /// The logging shim registered as the runtime `coracle`.
    pub shim: Shim,
    log: PathBuf,
    work: WorkDir,
}

static SHARED: Mutex<Weak<Docker>> = Mutex::new(Weak::new());

/// The shared dockerd, started (and docker.io installed) when no test holds one.
pub fn docker() -> Arc<Docker> {
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let d = match shared.upgrade() {
        Some(d) => d,
        None => {
            let d = Arc::new(Docker::start());
            *shared = Arc::downgrade(&d);
            d
        }
    };
    MARK.with(|m| m.set(d.shim.mark()));
    d
}

thread_local! {
    /// Where the runtime log stood when this test thread took its handle.
    static MARK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Docker {
    fn start() -> Docker {
        ensure_installed(&["dockerd", CLIENT], &["docker.io"]);
        let work = WorkDir::new("dk");
        let shim = Shim::new(work.path(), "coracle", &runtime_binary());
        let sock = work.join("d.sock").to_string_lossy().into_owned();
        let cgroup_parent = format!("/{}", unique("coracle-docker"));
        let config = serde_json::json!({
            "runtimes": {"coracle": {"path": shim.path}},
            "default-runtime": "coracle",
        });
        let config_path = work.join("daemon.json");
        fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("daemon.json: {e}"));
        let log = work.join("dockerd.log");
        let log_file = fs::File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("dup log: {e}"));
        let w = |n: &str| work.join(n).to_string_lossy().into_owned();
        let child = Command::new("dockerd")
            .args(["--data-root", &w("data")])
            .args(["--exec-root", &w("exec")])
            .args(["--pidfile", &w("dockerd.pid")])
            .args(["-H", &format!("unix://{sock}")])
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
            ])
            .args(["--cgroup-parent", &cgroup_parent])
            .args(["--config-file", &config_path.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning dockerd: {e}"));
        let d = Docker {
            child: Mutex::new(Some(child)),
            sock,
            cgroup_parent,
            shim,
            log,
            work,
        };
        let up = wait_until(Duration::from_secs(60), || d.docker(&["version"]).success());
        if !up {
            let log = fs::read_to_string(&d.log).unwrap_or_default();
            drop(d);
            panic!("dockerd did not come up:\n{log}");
        }
        let image = super::busybox_image(d.work.path());
        let out = d.docker(&["load", "-i", &image.to_string_lossy()]);
        assert!(out.success(), "docker load failed:\n{out}");
        d
    }

    fn prefix(&self) -> Vec<String> {
        vec![CLIENT.into(), "-H".into(), format!("unix://{}", self.sock)]
    }

    /// Runs `docker -H SOCK args...`.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_stdin(args, None)
    }

    /// Runs `docker -H SOCK args...` with `stdin` fed in.
    pub fn docker_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(CLIENT);
        cmd.args(["-H", &format!("unix://{}", self.sock)])
            .args(args);
        run(&mut cmd, stdin)
    }

    /// `docker ...` on a pseudo-terminal (for `-t`).
    pub fn docker_pty(&self, args: &[&str]) -> Output {
        let mut argv = self.prefix();
        argv.extend(args.iter().map(|s| s.to_string()));
        run_on_pty(&argv)
    }

    /// The `docker run` argv: `run --runtime coracle --network none --pull never OPTS IMAGE
    /// ARGS`.
    pub fn run_argv<'a>(opts: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "run",
            "--runtime",
            "coracle",
            "--network",
            "none",
            "--pull",
            "never",
        ];
        v.extend_from_slice(opts);
        v.push(IMAGE);
        v.extend_from_slice(args);
        v
    }

    /// `docker run` with coracle, no network, the local image.
    pub fn run(&self, opts: &[&str], args: &[&str]) -> Output {
        self.docker(&Self::run_argv(opts, args))
    }

    /// Starts a detached container named `name` running `args`.
    pub fn run_detached(&self, name: &str, opts: &[&str], args: &[&str]) -> Output {
        let mut o = vec!["-d", "--name", name];
        o.extend_from_slice(opts);
        self.run(&o, args)
    }

    /// `docker inspect -f FORMAT name`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.docker(&["inspect", "-f", format, name])
            .out()
            .to_string()
    }

    /// Everything to show when a scenario fails (runtime calls: those since the test took its
    /// handle on the daemon, see [`docker`]).
    pub fn report(&self, what: &str, out: &Output) -> String {
        let mark = MARK.with(|m| m.get());
        report_since(what, out, &self.shim, &self.log, mark)
    }

    /// `docker rm -f name`, ignoring the result.
    pub fn remove(&self, name: &str) {
        let _ = self.docker(&["rm", "-f", name]);
    }

    /// `RUNTIME --version` of the runtime under test (docker info parses its `commit:` line).
    pub fn stdout_of_runtime_version(&self) -> Option<String> {
        let out = Command::new(&self.shim.path)
            .arg("--version")
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The readlink of `/proc/self/ns/<kind>` of the test process.
    pub fn host_ns(kind: &str) -> String {
        fs::read_link(format!("/proc/self/ns/{kind}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in ids.stdout.split_whitespace() {
            self.remove(id);
        }
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            if let Ok(pid) = i32::try_from(child.id()) {
                stop_pid(pid, Duration::from_secs(20));
            }
            let _ = child.wait();
        }
        // dockerd's own containerd and any shim left: they name our exec root.
        for pid in pids_with_arg(&self.work.path().to_string_lossy()) {
            stop_pid(pid, Duration::from_secs(5));
        }
        unmount_under(self.work.path());
        for h in cgroup_hierarchies() {
            let _ = fs::remove_dir(h.join(self.cgroup_parent.trim_start_matches('/')));
        }
    }
}
