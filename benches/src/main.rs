//! `lifecycle`: coracle vs crun vs runc, side by side.
//!
//! Builds a busybox bundle, then measures interleaved (A B C A B C ...) over N rounds:
//! `run` of /bin/true; `create` + `start` + `delete --force` as three invocations; `exec` of
//! /bin/true into a running container; the peak RSS of every invocation (wait4 rusage); the binary
//! sizes. Then the scale part: containers created/started/deleted concurrently, and `state`/`list`
//! with many containers in the root. Prints medians, min/max and ratios. Exits non-zero only when
//! a runtime fails (a broken run), never because one is slow. Removes everything it made (state
//! roots, cgroups, the bundle, a v1 hugetlb binding) at the end, also on failure and Ctrl-C.
//!
//! Run as root: `cargo run --release -p coracle-bench --bin lifecycle -- --help`.

mod bundle;
mod host;
mod runtime;
mod stats;
mod sys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use runtime::{Failure, Invoker, Runtime, Sample};
use stats::{mib, ms, ratio, summarize};

/// How to make the host's cgroups acceptable to crun 1.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CgroupMode {
    /// On a hybrid host whose cgroup2 holds controllers (hugetlb), bind them to v1 hierarchies
    /// for the run and undo it at the end; otherwise leave the host as it is.
    Auto,
    /// Always leave the host as it is (crun may refuse a hybrid host).
    AsIs,
}

/// What the create+start+delete measurement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lifecycle {
    /// /bin/true; the bench (subreaper, like a shim) reaps it, untimed; then `delete`.
    True,
    /// /bin/sleep; right after `start`, `delete --force` (kill included in the delete time).
    Sleep,
}

/// coracle vs crun vs runc: lifecycle latency, peak RSS, binary size, scale.
#[derive(Debug, Parser)]
#[command(name = "lifecycle")]
struct Args {
    /// Measured rounds (each round runs every runtime once per measurement, interleaved).
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    /// Unmeasured warm-up rounds before the measured ones.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// The coracle binary (default: <workspace>/target/x86_64-unknown-linux-gnu/release/coracle).
    #[arg(long)]
    coracle: Option<PathBuf>,
    /// The crun binary (a name is looked up in $PATH).
    #[arg(long, default_value = "crun")]
    crun: String,
    /// The runc binary (a name is looked up in $PATH).
    #[arg(long, default_value = "runc")]
    runc: String,
    /// Which runtimes to measure, in interleaving order.
    #[arg(long, value_delimiter = ',', default_value = "coracle,crun,runc")]
    runtimes: Vec<String>,
    /// The container of the create+start+delete measurement.
    #[arg(long, value_enum, default_value_t = Lifecycle::True)]
    lifecycle: Lifecycle,
    /// A statically linked busybox (Debian: busybox-static).
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// What to do about the host's cgroup layout.
    #[arg(long, value_enum, default_value_t = CgroupMode::Auto)]
    cgroup_mode: CgroupMode,
    /// Directory for the bundle and the state roots (default: /run/coracle-bench-<pid>).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Per-invocation timeout in seconds (a runtime that hangs is killed and counted as broken).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Skip the scale part.
    #[arg(long)]
    no_scale: bool,
    /// Concurrency levels for create/start/delete of many containers at once.
    #[arg(long, value_delimiter = ',', default_value = "10,100")]
    concurrent: Vec<usize>,
    /// Population checkpoints for the `state`/`list` timings (containers in the root).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    population: Vec<usize>,
    /// Timed repetitions of `state`/`list` at each population checkpoint.
    #[arg(long, default_value_t = 10)]
    population_reps: usize,
}

/// Measurements, in print order.
const METRICS: [&str; 6] = [
    "run",
    "create",
    "start",
    "delete",
    "create+start+delete",
    "exec",
];

struct Bench {
    args: Args,
    invoker: Invoker,
    workdir: PathBuf,
    rootfs: PathBuf,
    prefix: String,
    runtimes: Vec<Runtime>,
    missing: Vec<(String, String)>,
    binding: Option<host::V1Binding>,
    cgroup_note: String,
    samples: BTreeMap<&'static str, Vec<Vec<Sample>>>,
    /// `unshare` of the same namespaces + chroot + exec /bin/true: the floor without a runtime.
    floor: Vec<Sample>,
    cleaned: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&interrupted)) {
            eprintln!("lifecycle: cannot handle signal {sig}: {e}");
            return ExitCode::from(2);
        }
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("lifecycle: must run as root");
        return ExitCode::from(2);
    }
    // Like a containerd shim: container processes re-parent to us when their runtime exits, so
    // the bench can wait for them and reap them (pid 1 may not).
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("lifecycle: PR_SET_CHILD_SUBREAPER: {e}");
        return ExitCode::from(2);
    }
    let mut bench = match Bench::new(args, Arc::clone(&interrupted)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("lifecycle: setup: {e}");
            return ExitCode::from(2);
        }
    };
    bench.run_all();
    let leftovers = bench.cleanup();
    bench.report();
    let broken: Vec<String> = bench
        .runtimes
        .iter()
        .filter_map(|r| r.broken.as_ref().map(|why| format!("{}: {why}", r.name)))
        .collect();
    for b in &broken {
        println!("BROKEN {b}");
    }
    for l in &leftovers {
        println!("CLEANUP FAILED {l}");
    }
    if bench.invoker.is_interrupted() {
        println!("interrupted");
        ExitCode::from(130)
    } else if broken.is_empty() && leftovers.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Bench {
    fn new(args: Args, interrupted: Arc<AtomicBool>) -> Result<Self, String> {
        let pid = std::process::id();
        let workdir = args.workdir.clone().unwrap_or_else(|| {
            let base = if Path::new("/run").is_dir() {
                "/run"
            } else {
                "/tmp"
            };
            PathBuf::from(format!("{base}/coracle-bench-{pid}"))
        });
        if workdir.exists() {
            return Err(format!("{} exists already", workdir.display()));
        }
        std::fs::create_dir_all(workdir.join("out"))
            .map_err(|e| format!("{}: {e}", workdir.display()))?;
        let invoker = Invoker::new(
            workdir.join("out"),
            Duration::from_secs(args.timeout),
            interrupted,
        );
        let mut bench = Self {
            invoker,
            rootfs: PathBuf::new(),
            prefix: format!("coracle-bench-{pid}"),
            runtimes: Vec::new(),
            missing: Vec::new(),
            binding: None,
            cgroup_note: String::new(),
            samples: BTreeMap::new(),
            floor: Vec::new(),
            cleaned: false,
            workdir,
            args,
        };
        // From here on, Drop cleans up whatever was made.
        bench.rootfs = bundle::build_rootfs(&bench.workdir.join("bundle"), &bench.args.busybox)
            .map_err(|e| format!("busybox rootfs: {e}"))?;
        bench.find_runtimes();
        bench.setup_cgroups()?;
        Ok(bench)
    }

    fn find_runtimes(&mut self) {
        let default_coracle = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/x86_64-unknown-linux-gnu/release/coracle");
        for name in self.args.runtimes.clone() {
            let (name, found): (&'static str, Option<PathBuf>) = match name.as_str() {
                "coracle" => {
                    let p = self.args.coracle.clone().unwrap_or(default_coracle.clone());
                    (
                        "coracle",
                        p.is_file().then(|| p.canonicalize().unwrap_or(p)),
                    )
                }
                "crun" => ("crun", runtime::which(&self.args.crun)),
                "runc" => ("runc", runtime::which(&self.args.runc)),
                other => {
                    self.missing
                        .push((other.to_owned(), "unknown runtime".into()));
                    continue;
                }
            };
            match found {
                Some(path) => self.runtimes.push(Runtime {
                    name,
                    root: self.workdir.join(format!("root-{name}")),
                    path,
                    live: Default::default(),
                    broken: None,
                }),
                None => {
                    let wanted = match name {
                        "coracle" => self
                            .args
                            .coracle
                            .clone()
                            .unwrap_or(default_coracle.clone())
                            .display()
                            .to_string(),
                        "crun" => self.args.crun.clone(),
                        _ => self.args.runc.clone(),
                    };
                    self.missing
                        .push((name.to_owned(), format!("not found ({wanted})")));
                }
            }
        }
    }

    fn setup_cgroups(&mut self) -> Result<(), String> {
        let layout = host::layout();
        let held = host::unified_controllers();
        self.cgroup_note = match (layout, self.args.cgroup_mode) {
            (host::Layout::Unified, _) => "cgroup v2 only (unified); host unchanged".into(),
            (host::Layout::Legacy, _) => "cgroup v1 only (legacy); host unchanged".into(),
            (host::Layout::Hybrid, _) if held.is_empty() => {
                "hybrid (v1 controllers, cgroup2 holds none); host unchanged".into()
            }
            (host::Layout::Hybrid, CgroupMode::AsIs) => {
                format!("hybrid, cgroup2 holds {held:?}; host unchanged (--cgroup-mode as-is: crun 1.8 may refuse)")
            }
            (host::Layout::Hybrid, CgroupMode::Auto) => {
                let b = host::V1Binding::bind_all()
                    .map_err(|e| format!("binding {held:?} to cgroup v1: {e}"))?;
                let note = format!(
                    "hybrid; {:?} moved from cgroup2 to v1 hierarchies at /sys/fs/cgroup/<ctrl> for this run (undone at the end; \
                     other container workloads on this host see it on v1 meanwhile)",
                    b.controllers()
                );
                self.binding = Some(b);
                note
            }
        };
        Ok(())
    }

    fn bundle_for(&self, rt: usize, id: &str, args: &[&str]) -> Result<PathBuf, Failure> {
        let name = self.runtimes[rt].name;
        let dir = self.workdir.join("bundles").join(name).join(id);
        let cg = format!("/{}/{name}/{id}", self.prefix);
        bundle::write_bundle(&dir, &self.rootfs, args, &cg).map_err(|e| Failure {
            command: format!("write bundle {}", dir.display()),
            why: e.to_string(),
        })?;
        Ok(dir)
    }

    fn record(&mut self, metric: &'static str, rt: usize, s: Sample) {
        let n = self.runtimes.len();
        self.samples
            .entry(metric)
            .or_insert_with(|| vec![Vec::new(); n])[rt]
            .push(s);
    }

    fn mark_broken(&mut self, rt: usize, f: &Failure) {
        if self.runtimes[rt].broken.is_none() && !self.invoker.is_interrupted() {
            eprintln!("lifecycle: {} failed: {f}", self.runtimes[rt].name);
            self.runtimes[rt].broken = Some(f.to_string());
        }
    }

    fn usable(&self, rt: usize) -> bool {
        self.runtimes[rt].broken.is_none() && !self.invoker.is_interrupted()
    }

    /// Runs `args` with runtime `rt`, tracking `id` as live until `forget` says it is gone.
    fn invoke(
        &mut self,
        rt: usize,
        args: &[&str],
        id: &str,
        forget: bool,
    ) -> Result<Sample, Failure> {
        self.runtimes[rt].live.insert(id.to_owned());
        let r = self.invoker.run(&self.runtimes[rt], args);
        if forget && r.is_ok() {
            self.runtimes[rt].live.remove(id);
        }
        r
    }

    fn run_all(&mut self) {
        println!("# coracle-bench lifecycle");
        println!("cgroups: {}", self.cgroup_note);
        for (name, why) in &self.missing {
            println!("{name}: {why}: skipped");
        }
        for r in &self.runtimes {
            println!("{}: {}", r.name, r.path.display());
        }
        for rt in 0..self.runtimes.len() {
            if let Err(f) = self.start_exec_target(rt) {
                self.mark_broken(rt, &f);
            }
        }
        let total = self.args.warmup + self.args.rounds;
        let t0 = Instant::now();
        for round in 0..total {
            let measured = round >= self.args.warmup;
            for rt in 0..self.runtimes.len() {
                if let Err(f) = self.round_run(rt, round, measured) {
                    self.mark_broken(rt, &f);
                }
            }
            if let Err(f) = self.round_floor(measured) {
                if !self.invoker.is_interrupted() {
                    eprintln!("lifecycle: floor measurement: {f}");
                }
            }
            for rt in 0..self.runtimes.len() {
                if let Err(f) = self.round_lifecycle(rt, round, measured) {
                    self.mark_broken(rt, &f);
                }
            }
            for rt in 0..self.runtimes.len() {
                if let Err(f) = self.round_exec(rt, measured) {
                    self.mark_broken(rt, &f);
                }
            }
            if self.invoker.is_interrupted() {
                return;
            }
        }
        eprintln!(
            "lifecycle: {total} rounds in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        for rt in 0..self.runtimes.len() {
            if self.usable(rt) {
                if let Err(f) = self.invoke(rt, &["delete", "--force", "exec"], "exec", true) {
                    self.mark_broken(rt, &f);
                }
            }
        }
        self.print_latency();
        if !self.args.no_scale {
            self.scale();
        }
    }

    fn start_exec_target(&mut self, rt: usize) -> Result<(), Failure> {
        let b = self.bundle_for(rt, "exec", &["/bin/sleep", "100000"])?;
        let b = b.to_string_lossy().into_owned();
        self.invoke(rt, &["create", "--bundle", &b, "exec"], "exec", false)?;
        self.invoke(rt, &["start", "exec"], "exec", false)?;
        Ok(())
    }

    fn round_run(&mut self, rt: usize, round: usize, measured: bool) -> Result<(), Failure> {
        if !self.usable(rt) {
            return Ok(());
        }
        let id = format!("run-{round}");
        let b = self
            .bundle_for(rt, &id, &["/bin/true"])?
            .to_string_lossy()
            .into_owned();
        let s = self.invoke(rt, &["run", "--bundle", &b, &id], &id, true)?;
        if measured {
            self.record("run", rt, s);
        }
        Ok(())
    }

    /// The floor: what the kernel alone charges for the namespaces, a chroot and the exec.
    fn round_floor(&mut self, measured: bool) -> Result<(), Failure> {
        let Some(unshare) = runtime::which("unshare") else {
            return Ok(());
        };
        let mut cmd = std::process::Command::new(unshare);
        cmd.args([
            "--fork", "--pid", "--mount", "--net", "--ipc", "--uts", "chroot",
        ])
        .arg(&self.rootfs)
        .arg("/bin/true");
        let p = self.invoker.spawn_cmd(cmd, 0)?;
        let s = self.invoker.finish(p)?;
        if measured {
            self.floor.push(s);
        }
        Ok(())
    }

    /// `create` + `start` + `delete` of a container running /bin/true, as an engine drives it:
    /// between `start` and `delete` the bench (the container's subreaper, like a shim) waits,
    /// untimed, for the container process to exit, so `delete` finds it stopped and no runtime
    /// is charged for a kill-and-poll loop.
    fn round_lifecycle(&mut self, rt: usize, round: usize, measured: bool) -> Result<(), Failure> {
        if !self.usable(rt) {
            return Ok(());
        }
        let id = format!("lc-{round}");
        let sleep = self.args.lifecycle == Lifecycle::Sleep;
        let prog: &[&str] = if sleep {
            &["/bin/sleep", "100000"]
        } else {
            &["/bin/true"]
        };
        let bdir = self.bundle_for(rt, &id, prog)?;
        let pid_file = bdir.join("container.pid");
        let (b, pf) = (
            bdir.to_string_lossy().into_owned(),
            pid_file.to_string_lossy().into_owned(),
        );
        let c = self.invoke(
            rt,
            &["create", "--bundle", &b, "--pid-file", &pf, &id],
            &id,
            false,
        )?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .ok_or_else(|| Failure {
                command: format!("{} create {id}", self.runtimes[rt].name),
                why: "no pid in --pid-file".into(),
            })?;
        self.invoker.forget(pid); // the container process is alive (blocked before exec)
        let s = self.invoke(rt, &["start", &id], &id, false)?;
        let d = if sleep {
            self.invoke(rt, &["delete", "--force", &id], &id, true)?
        } else {
            self.invoker.wait_container(pid)?;
            self.invoke(rt, &["delete", &id], &id, true)?
        };
        if measured {
            self.record("create", rt, c);
            self.record("start", rt, s);
            self.record("delete", rt, d);
            let total = Sample {
                wall: c.wall + s.wall + d.wall,
                maxrss_kib: c.maxrss_kib.max(s.maxrss_kib).max(d.maxrss_kib),
            };
            self.record("create+start+delete", rt, total);
        }
        Ok(())
    }

    fn round_exec(&mut self, rt: usize, measured: bool) -> Result<(), Failure> {
        if !self.usable(rt) {
            return Ok(());
        }
        let s = self
            .invoker
            .run(&self.runtimes[rt], &["exec", "exec", "/bin/true"])?;
        if measured {
            self.record("exec", rt, s);
        }
        Ok(())
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.runtimes.iter().position(|r| r.name == name)
    }

    fn print_latency(&self) {
        println!();
        println!(
            "## latency, {} interleaved rounds (+{} warm-up), ms; peak RSS of the invocation, MiB",
            self.args.rounds, self.args.warmup
        );
        let lc = match self.args.lifecycle {
            Lifecycle::True => "/bin/true, reaped by the bench (untimed), then delete",
            Lifecycle::Sleep => "/bin/sleep, then delete --force right after start",
        };
        println!("(create/start/delete: {lc}; exec: /bin/true into a running /bin/sleep)");
        println!(
            "{:<22} {:<8} {:>8} {:>8} {:>8} {:>9} {:>4}",
            "measurement", "runtime", "median", "min", "max", "RSS MiB", "n"
        );
        let coracle = self.idx("coracle");
        for metric in METRICS {
            let Some(per_rt) = self.samples.get(metric) else {
                continue;
            };
            let sums: Vec<_> = per_rt.iter().map(|s| summarize(s)).collect();
            for (rt, sum) in sums.iter().enumerate() {
                let Some(sum) = sum else { continue };
                println!(
                    "{:<22} {:<8} {:>8} {:>8} {:>8} {:>9} {:>4}",
                    metric,
                    self.runtimes[rt].name,
                    ms(sum.median),
                    ms(sum.min),
                    ms(sum.max),
                    mib(sum.rss_kib),
                    sum.n
                );
            }
            let get = |name: &str| self.idx(name).and_then(|i| sums[i]);
            let mut line = String::new();
            for (a, b) in [("coracle", "crun"), ("coracle", "runc"), ("runc", "crun")] {
                if let (Some(x), Some(y)) = (get(a), get(b)) {
                    line.push_str(&format!(
                        "  {a}/{b} {} (RSS {})",
                        ratio(x.median.as_secs_f64(), y.median.as_secs_f64()),
                        ratio(x.rss_kib as f64, y.rss_kib as f64)
                    ));
                }
            }
            if coracle.is_none() || get("coracle").is_none() {
                line.push_str("  (coracle: no samples)");
            }
            println!("{:<22}{line}", "  ratios");
        }
        if let Some(f) = summarize(&self.floor) {
            println!(
                "{:<22} {:<8} {:>8} {:>8} {:>8} {:>9} {:>4}   (unshare -fpmniu + chroot + exec /bin/true, no runtime)",
                "floor",
                "kernel",
                ms(f.median),
                ms(f.min),
                ms(f.max),
                mib(f.rss_kib),
                f.n
            );
        }
        println!();
        println!("## binary size");
        for r in &self.runtimes {
            let size = std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
            let linking = match bundle::has_interpreter(&r.path) {
                Ok(true) => "dynamically linked (shared libraries not counted)",
                Ok(false) => "static",
                Err(_) => "not ELF?",
            };
            println!(
                "{:<8} {:>10} bytes ({} MiB), {linking}",
                r.name,
                size,
                mib(size / 1024)
            );
        }
    }

    fn scale(&mut self) {
        println!();
        println!("## scale: N containers created / started / deleted concurrently (all N spawned at once); ms per container");
        println!(
            "{:<8} {:>5} {:>10} {:>10} {:>10} {:>10}",
            "runtime", "N", "create", "start", "delete", "total wall"
        );
        for rt in 0..self.runtimes.len() {
            for &n in &self.args.concurrent.clone() {
                if !self.usable(rt) {
                    break;
                }
                if let Err(f) = self.scale_concurrent(rt, n) {
                    self.mark_broken(rt, &f);
                }
            }
        }
        println!();
        println!(
            "## scale: state/list with P running containers in the root; median of {} reps, ms",
            self.args.population_reps
        );
        println!(
            "{:<8} {:>6} {:>10} {:>10} {:>16}",
            "runtime", "P", "state", "list", "list/container"
        );
        for rt in 0..self.runtimes.len() {
            if self.usable(rt) {
                if let Err(f) = self.scale_population(rt) {
                    self.mark_broken(rt, &f);
                }
            }
        }
    }

    fn per(d: Duration, n: usize) -> String {
        ms(d / u32::try_from(n.max(1)).unwrap_or(u32::MAX))
    }

    fn scale_concurrent(&mut self, rt: usize, n: usize) -> Result<(), Failure> {
        let ids: Vec<String> = (0..n).map(|i| format!("conc{n}-{i}")).collect();
        let mut create = Vec::new();
        for id in &ids {
            let b = self.bundle_for(rt, id, &["/bin/sleep", "100000"])?;
            create.push(vec![
                "create".into(),
                "--bundle".into(),
                b.to_string_lossy().into_owned(),
                id.clone(),
            ]);
        }
        let start: Vec<Vec<String>> = ids
            .iter()
            .map(|id| vec!["start".into(), id.clone()])
            .collect();
        let delete: Vec<Vec<String>> = ids
            .iter()
            .map(|id| vec!["delete".into(), "--force".into(), id.clone()])
            .collect();
        self.runtimes[rt].live.extend(ids.iter().cloned());
        let (c, _) = self.invoker.run_concurrently(&self.runtimes[rt], &create)?;
        let (s, _) = self.invoker.run_concurrently(&self.runtimes[rt], &start)?;
        let (d, _) = self.invoker.run_concurrently(&self.runtimes[rt], &delete)?;
        for id in &ids {
            self.runtimes[rt].live.remove(id);
        }
        println!(
            "{:<8} {:>5} {:>10} {:>10} {:>10} {:>10}",
            self.runtimes[rt].name,
            n,
            Self::per(c, n),
            Self::per(s, n),
            Self::per(d, n),
            ms(c + s + d)
        );
        Ok(())
    }

    fn scale_population(&mut self, rt: usize) -> Result<(), Failure> {
        let mut checkpoints = self.args.population.clone();
        checkpoints.sort_unstable();
        let mut have = 0usize;
        let width = 16;
        let result = (|| {
            for &p in &checkpoints {
                let ids: Vec<String> = (have..p).map(|i| format!("pop-{i}")).collect();
                let mut create = Vec::new();
                for id in &ids {
                    let b = self.bundle_for(rt, id, &["/bin/sleep", "100000"])?;
                    create.push(vec![
                        "create".into(),
                        "--bundle".into(),
                        b.to_string_lossy().into_owned(),
                        id.clone(),
                    ]);
                }
                let start: Vec<Vec<String>> = ids
                    .iter()
                    .map(|id| vec!["start".into(), id.clone()])
                    .collect();
                self.runtimes[rt].live.extend(ids.iter().cloned());
                self.invoker
                    .run_batched(&self.runtimes[rt], &create, width)?;
                self.invoker
                    .run_batched(&self.runtimes[rt], &start, width)?;
                have = p;
                let mut st = Vec::new();
                let mut ls = Vec::new();
                for _ in 0..self.args.population_reps.max(1) {
                    let (s, out) = self
                        .invoker
                        .run_output(&self.runtimes[rt], &["state", "pop-0"])?;
                    check_state(&out, &self.runtimes[rt])?;
                    st.push(s);
                    let (l, out) = self
                        .invoker
                        .run_output(&self.runtimes[rt], &["list", "--format", "json"])?;
                    check_list(&out, p, &self.runtimes[rt])?;
                    ls.push(l);
                }
                let (Some(st), Some(ls)) = (summarize(&st), summarize(&ls)) else {
                    continue;
                };
                println!(
                    "{:<8} {:>6} {:>10} {:>10} {:>16}",
                    self.runtimes[rt].name,
                    p,
                    ms(st.median),
                    ms(ls.median),
                    format!("{:.1} us", ls.median.as_secs_f64() * 1e6 / p.max(1) as f64)
                );
            }
            Ok(())
        })();
        let ids: Vec<String> = (0..have).map(|i| format!("pop-{i}")).collect();
        let delete: Vec<Vec<String>> = ids
            .iter()
            .map(|id| vec!["delete".into(), "--force".into(), id.clone()])
            .collect();
        let t = Instant::now();
        let deleted = self.invoker.run_batched(&self.runtimes[rt], &delete, width);
        if deleted.is_ok() {
            for id in &ids {
                self.runtimes[rt].live.remove(id);
            }
            if result.is_ok() {
                println!(
                    "{:<8} deleted {have} in {:.1} s",
                    self.runtimes[rt].name,
                    t.elapsed().as_secs_f64()
                );
            }
        }
        result.and(deleted)
    }

    /// Deletes every container that may still exist, removes the bench's cgroups, undoes the v1
    /// binding, removes the workdir. Returns what could not be cleaned.
    fn cleanup(&mut self) -> Vec<String> {
        if self.cleaned {
            return Vec::new();
        }
        self.cleaned = true;
        let mut left = Vec::new();
        // A fresh invoker: the main one refuses to spawn once interrupted.
        let inv = Invoker::new(
            self.workdir.join("out"),
            Duration::from_secs(20),
            Arc::new(AtomicBool::new(false)),
        );
        for r in &mut self.runtimes {
            let ids: Vec<String> = r.live.iter().cloned().collect();
            for id in ids {
                if inv.run(r, &["delete", "--force", &id]).is_ok() {
                    r.live.remove(&id);
                }
            }
        }
        sys::reap_ended();
        for p in host::remove_prefix_cgroups(&self.prefix) {
            left.push(format!("cgroup {}", p.display()));
        }
        sys::reap_ended();
        if let Some(mut b) = self.binding.take() {
            for c in b.undo() {
                left.push(format!("controller {c} not back on cgroup2"));
            }
        }
        let mounted = mounts_under(&self.workdir);
        if mounted.is_empty() {
            if let Err(e) = std::fs::remove_dir_all(&self.workdir) {
                left.push(format!("{}: {e}", self.workdir.display()));
            }
        } else {
            left.push(format!(
                "{} kept: mounts under it: {mounted:?}",
                self.workdir.display()
            ));
        }
        left
    }

    fn report(&self) {
        let ok: Vec<&str> = self
            .runtimes
            .iter()
            .filter(|r| r.broken.is_none())
            .map(|r| r.name)
            .collect();
        println!();
        println!(
            "runtimes measured without failure: {ok:?}; cgroups: {}",
            self.cgroup_note
        );
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for l in self.cleanup() {
            eprintln!("lifecycle: cleanup: {l}");
        }
    }
}

fn check_state(out: &str, rt: &Runtime) -> Result<(), Failure> {
    let v: serde_json::Value = serde_json::from_str(out).map_err(|e| Failure {
        command: format!("{} state pop-0", rt.name),
        why: format!("not JSON: {e}"),
    })?;
    if v["status"] != "running" {
        return Err(Failure {
            command: format!("{} state pop-0", rt.name),
            why: format!("status {} (want running)", v["status"]),
        });
    }
    Ok(())
}

fn check_list(out: &str, want: usize, rt: &Runtime) -> Result<(), Failure> {
    let v: serde_json::Value = serde_json::from_str(out).map_err(|e| Failure {
        command: format!("{} list --format json", rt.name),
        why: format!("not JSON: {e}"),
    })?;
    let n = v.as_array().map_or(0, Vec::len);
    if n != want {
        return Err(Failure {
            command: format!("{} list --format json", rt.name),
            why: format!("{n} containers listed, {want} exist"),
        });
    }
    Ok(())
}

/// Mount points at or below `dir` in our mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_owned)
        .collect()
}
