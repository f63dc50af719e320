//! containerd 1.6 started by hand (all state in a temp dir, CRI off), driven with `ctr`; the
//! runc v2 shim runs coracle (through the logging shim) via `--runc-binary`, and a `runc` on
//! containerd's PATH catches the calls where ctr ignores `--runc-binary`.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coracle_conformance::{cgroup_hierarchies, unique, Output};

use super::{
    ensure_installed, report, run, run_on_pty, runtime_binary, stop_pid, unmount_under, wait_until,
    Shim, WorkDir, IMAGE,
};

/// The sandbox ("pause") image of the CRI scenarios: busybox sleeping forever.
pub const PAUSE_IMAGE: &str = "docker.io/library/coracle-pause:latest";

/// One containerd daemon with one namespace holding the busybox image.
pub struct Containerd {
    child: Option<Child>,
    sock: PathBuf,
    ns: String,
    cri: bool,
    /// The logging shim standing in for runc.
    pub shim: Shim,
    runc_root: PathBuf,
    log: PathBuf,
    // Last: removed after everything above has been stopped.
    work: WorkDir,
}

impl Containerd {
    /// Installs containerd when missing, starts it (CRI off), imports the busybox image.
    pub fn start() -> Containerd {
        Containerd::start_with(false)
    }

    /// Like [`Containerd::start`] with the CRI plugin on: runtime `coracle` (the default) runs
    /// the logging shim; the sandbox image is a local busybox sleeping forever; CNI dirs are
    /// empty temp dirs (host-network pods only); the stream server listens on 127.0.0.1 only.
    /// The images are imported into the `k8s.io` namespace.
    pub fn start_cri() -> Containerd {
        Containerd::start_with(true)
    }

    /// The CRI socket (the containerd socket).
    pub fn socket(&self) -> &std::path::Path {
        &self.sock
    }

    /// The work dir of this daemon (for logs and the like).
    pub fn work_dir(&self) -> &std::path::Path {
        self.work.path()
    }

    fn start_with(cri: bool) -> Containerd {
        ensure_installed(
            &["containerd", "ctr", "containerd-shim-runc-v2"],
            &["containerd"],
        );
        let work = WorkDir::new("ctrd");
        let shim = Shim::new(work.path(), "runc", &runtime_binary());
        let sock = work.join("c.sock");
        let runc_root = work.join("runc-root");
        let cri_config = if cri {
            let p = "plugins.\"io.containerd.grpc.v1.cri\"";
            format!(
                "[{p}]\n  sandbox_image = \"{PAUSE_IMAGE}\"\n  restrict_oom_score_adj = true\n\
                 \x20 disable_apparmor = true\n  stream_server_address = \"127.0.0.1\"\n\
                 \x20 stream_server_port = \"0\"\n\
                 [{p}.cni]\n  bin_dir = \"{cni}/bin\"\n  conf_dir = \"{cni}/conf\"\n\
                 [{p}.containerd]\n  default_runtime_name = \"coracle\"\n\
                 [{p}.containerd.runtimes.coracle]\n  runtime_type = \"io.containerd.runc.v2\"\n\
                 [{p}.containerd.runtimes.coracle.options]\n  BinaryName = \"{bin}\"\n\
                 \x20 Root = \"{root}\"\n",
                cni = work.join("cni").display(),
                bin = shim.path.display(),
                root = runc_root.display(),
            )
        } else {
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".to_string()
        };
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             {cri_config}\
             [grpc]\n  address = \"{sock}\"\n\
             [ttrpc]\n  address = \"{ttrpc}\"\n\
             [debug]\n  address = \"{debug}\"\n",
            root = work.join("root").display(),
            state = work.join("state").display(),
            sock = sock.display(),
            ttrpc = work.join("t.sock").display(),
            debug = work.join("d.sock").display(),
        );
        let config_path = work.join("config.toml");
        fs::write(&config_path, config).unwrap_or_else(|e| panic!("write config: {e}"));
        let log = work.join("containerd.log");
        let log_file = fs::File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("dup log: {e}"));
        let path = format!(
            "{}:{}",
            work.join("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config_path)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning containerd: {e}"));
        let mut cd = Containerd {
            child: Some(child),
            sock,
            ns: if cri { "k8s.io".into() } else { unique("cns") },
            cri,
            shim,
            runc_root,
            log,
            work,
        };
        let up = wait_until(Duration::from_secs(20), || {
            cd.sock.exists() && cd.ctr(&["version"]).success()
        });
        if !up {
            let log = fs::read_to_string(&cd.log).unwrap_or_default();
            cd.stop();
            panic!("containerd did not come up:\n{log}");
        }
        let mut images = vec![super::busybox_image(cd.work.path())];
        if cri {
            images.push(super::image_tar(
                cd.work.path(),
                PAUSE_IMAGE.trim_start_matches("docker.io/library/"),
                &["sleep", "2147483647"],
                "pause.tar",
            ));
        }
        for image in images {
            let out = cd.ctr(&["images", "import", &image.to_string_lossy()]);
            assert!(out.success(), "ctr images import failed:\n{out}");
        }
        cd
    }

    /// The full image reference as ctr names it.
    pub fn image(&self) -> String {
        format!("docker.io/library/{IMAGE}")
    }

    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a").arg(&self.sock).args(["-n", &self.ns]);
        cmd.args(args);
        cmd
    }

    /// Runs `ctr -a SOCK -n NS args...`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        run(&mut self.ctr_cmd(args), None)
    }

    /// The `ctr run` options selecting coracle.
    pub fn runtime_opts(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            self.shim.path.to_string_lossy().into_owned(),
            "--runc-root".into(),
            self.runc_root.to_string_lossy().into_owned(),
        ]
    }

    /// `ctr run [opts] --runc-binary ... IMAGE id args...`.
    pub fn run_ctr(&self, opts: &[&str], id: &str, args: &[&str]) -> Output {
        let argv = self.run_argv(opts, id, args);
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.ctr(&refs)
    }

    fn run_argv(&self, opts: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = vec!["run".into()];
        argv.extend(opts.iter().map(|s| s.to_string()));
        argv.extend(self.runtime_opts());
        argv.push(self.image());
        argv.push(id.to_string());
        argv.extend(args.iter().map(|s| s.to_string()));
        argv
    }

    /// Like [`Containerd::run_ctr`] with ctr on a pseudo-terminal (for `-t`).
    pub fn run_ctr_pty(&self, opts: &[&str], id: &str, args: &[&str]) -> Output {
        let mut argv = self.ctr_prefix();
        argv.extend(self.run_argv(opts, id, args));
        run_on_pty(&argv)
    }

    /// `ctr ...` on a pseudo-terminal.
    pub fn ctr_pty(&self, args: &[&str]) -> Output {
        let mut argv = self.ctr_prefix();
        argv.extend(args.iter().map(|s| s.to_string()));
        run_on_pty(&argv)
    }

    fn ctr_prefix(&self) -> Vec<String> {
        vec![
            "ctr".into(),
            "-a".into(),
            self.sock.to_string_lossy().into_owned(),
            "-n".into(),
            self.ns.clone(),
        ]
    }

    /// The task's status column in `ctr task ls` (RUNNING, PAUSED, STOPPED...), if listed.
    pub fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr(&["task", "ls"]);
        out.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).map(|s| s.to_string()).unwrap_or_default())
        })
    }

    /// The task's pid in `ctr task ls`.
    pub fn task_pid(&self, id: &str) -> Option<i32> {
        let out = self.ctr(&["task", "ls"]);
        out.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() == Some(&id) {
                f.get(1).and_then(|p| p.parse().ok())
            } else {
                None
            }
        })
    }

    /// Waits until the task reads as `status`.
    pub fn wait_status(&self, id: &str, status: &str) -> bool {
        wait_until(Duration::from_secs(20), || {
            self.task_status(id).as_deref() == Some(status)
        })
    }

    /// The host path of the container's cgroup in the v1 hierarchy `controller` (ctr's default
    /// cgroupsPath is `/<namespace>/<id>`).
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroup_rel(id))
    }

    /// The container's cgroup path relative to a hierarchy's root: `<namespace>/<id>`.
    pub fn cgroup_rel(&self, id: &str) -> PathBuf {
        PathBuf::from(&self.ns).join(id)
    }

    /// Everything to show when a scenario fails.
    pub fn report(&self, what: &str, out: &Output) -> String {
        report(what, out, &self.shim, &self.log)
    }

    /// Removes a container whatever its state: kill, task delete, container delete.
    pub fn remove(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-a", "-s", "KILL", id]);
        wait_until(Duration::from_secs(10), || {
            !matches!(self.task_status(id).as_deref(), Some("RUNNING" | "PAUSED"))
        });
        let _ = self.ctr(&["task", "delete", "-f", id]);
        let _ = self.ctr(&["containers", "delete", id]);
    }

    fn stop(&mut self) {
        if self.child.is_some() {
            let ids = self.ctr(&["containers", "ls", "-q"]);
            for id in ids.stdout.split_whitespace() {
                self.remove(id);
            }
        }
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                stop_pid(pid, Duration::from_secs(10));
            }
            let _ = child.wait();
        }
        // Shims of this daemon (they name its socket on their command line).
        let sock = self.sock.to_string_lossy().into_owned();
        for pid in pids_with_arg(&sock) {
            stop_pid(pid, Duration::from_secs(5));
        }
        unmount_under(self.work.path());
        // The namespace's parent cgroup made by the runtime (cgroupsPath /<ns>/<id>); with CRI
        // the pods name their own parent (removed by the test).
        if !self.cri {
            for h in cgroup_hierarchies() {
                let _ = fs::remove_dir(h.join(&self.ns));
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The pids whose command line has an argument equal to `arg` or containing it.
pub fn pids_with_arg(arg: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == i32::try_from(std::process::id()).unwrap_or(0) {
            continue;
        }
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|a| String::from_utf8_lossy(a).contains(arg))
        {
            pids.push(pid);
        }
    }
    pids
}
