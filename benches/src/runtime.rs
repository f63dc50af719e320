//! Invoking a runtime binary: one timed child per command, reaped with `wait4` for its peak RSS,
//! guarded by a watchdog (per-command timeout, Ctrl-C).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::sys;

/// One runtime under test.
#[derive(Debug)]
pub struct Runtime {
    /// Short name: `coracle`, `crun`, `runc`.
    pub name: &'static str,
    /// The binary.
    pub path: PathBuf,
    /// Its own `--root` state directory.
    pub root: PathBuf,
    /// Ids of containers that may exist in `root` (deleted at cleanup).
    pub live: BTreeSet<String>,
    /// Why the runtime was dropped from the run, if it failed.
    pub broken: Option<String>,
}

/// A timed, successful invocation.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// From just before spawn to the reap.
    pub wall: Duration,
    /// `ru_maxrss` of the invocation, KiB.
    pub maxrss_kib: u64,
}

/// A command that failed (non-zero exit, signal, timeout, spawn error).
#[derive(Debug)]
pub struct Failure {
    /// What ran.
    pub command: String,
    /// How it ended, with the tail of its stderr.
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.command, self.why)
    }
}

/// A spawned command not yet reaped.
#[derive(Debug)]
pub struct Pending {
    pid: u32,
    start: Instant,
    command: String,
    out: PathBuf,
    err: PathBuf,
}

/// Spawns runtime commands; owns the output files and the watchdog.
#[derive(Debug)]
pub struct Invoker {
    out_dir: PathBuf,
    timeout: Duration,
    watched: Arc<Mutex<Vec<(u32, Instant)>>>,
    /// Children reaped while waiting for another one: pid -> (status, when). Orphaned container
    /// processes land here too (a container may exit before the bench waits for it); an entry is
    /// dropped when its pid is handed out again ([`Invoker::forget`]).
    stash: RefCell<HashMap<u32, (sys::Reaped, Instant)>>,
    /// Set by SIGINT/SIGTERM/SIGHUP.
    pub interrupted: Arc<AtomicBool>,
}

impl Invoker {
    /// Creates the invoker and starts its watchdog thread.
    pub fn new(out_dir: PathBuf, timeout: Duration, interrupted: Arc<AtomicBool>) -> Self {
        let watched: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
        let (w, i) = (Arc::clone(&watched), Arc::clone(&interrupted));
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = Instant::now();
            let stop = i.load(Ordering::Relaxed);
            let list = w.lock().unwrap_or_else(PoisonError::into_inner);
            for &(pid, deadline) in list.iter() {
                if stop || now > deadline {
                    if let Ok(p) = i32::try_from(pid) {
                        // A runtime child leads its own process group: kill the group; a
                        // container init may not, so kill the process as well.
                        let pid = nix::unistd::Pid::from_raw(p);
                        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
        });
        Self {
            out_dir,
            timeout,
            watched,
            stash: RefCell::default(),
            interrupted,
        }
    }

    /// Waits until child `pid` ends (reaping, and remembering, any other child that ends first;
    /// orphaned container processes re-parented to us are reaped and forgotten).
    pub fn wait_for(&self, pid: u32) -> std::io::Result<(sys::Reaped, Instant)> {
        if let Some(r) = self.stash.borrow_mut().remove(&pid) {
            return Ok(r);
        }
        loop {
            match sys::wait4_any()? {
                Some((p, r)) if p == pid => return Ok((r, Instant::now())),
                Some((p, r)) => {
                    self.stash.borrow_mut().insert(p, (r, Instant::now()));
                }
                None => return Err(std::io::Error::from_raw_os_error(libc::ECHILD)),
            }
        }
    }

    /// Drops what the stash holds for `pid`: call it when `pid` is known to name a live process,
    /// so an older process of the same pid is not mistaken for it.
    pub fn forget(&self, pid: u32) {
        self.stash.borrow_mut().remove(&pid);
    }

    /// Waits (untimed, bounded by the timeout) for a container process re-parented to us.
    pub fn wait_container(&self, pid: u32) -> Result<(), Failure> {
        let command = format!("wait for container process {pid}");
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((pid, Instant::now() + self.timeout));
        let r = self.wait_for(pid);
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&(p, _)| p != pid);
        match r {
            Ok(_) => Ok(()),
            Err(e) => Err(Failure {
                command,
                why: format!("{e} (is the bench not its subreaper?)"),
            }),
        }
    }

    /// Whether Ctrl-C (or SIGTERM/SIGHUP) arrived.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Spawns `rt --root ROOT args...` with stdout/stderr to files of output slot `slot`.
    pub fn spawn(&self, rt: &Runtime, args: &[&str], slot: usize) -> Result<Pending, Failure> {
        let mut cmd = Command::new(&rt.path);
        cmd.arg("--root").arg(&rt.root).args(args);
        self.spawn_cmd(cmd, slot)
    }

    /// Spawns an arbitrary command (used for the baseline) in output slot `slot`.
    pub fn spawn_cmd(&self, mut cmd: Command, slot: usize) -> Result<Pending, Failure> {
        let command = describe(&cmd);
        if self.is_interrupted() {
            return Err(Failure {
                command,
                why: "interrupted".into(),
            });
        }
        let out = self.out_dir.join(format!("{slot}.out"));
        let err = self.out_dir.join(format!("{slot}.err"));
        let files = File::create(&out).and_then(|o| Ok((o, File::create(&err)?)));
        let (o, e) = files.map_err(|e| Failure {
            command: command.clone(),
            why: format!("output file: {e}"),
        })?;
        cmd.stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .process_group(0);
        let start = Instant::now();
        let child = cmd.spawn().map_err(|e| Failure {
            command: command.clone(),
            why: format!("spawn: {e}"),
        })?;
        let pid = child.id();
        self.forget(pid);
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((pid, start + self.timeout));
        Ok(Pending {
            pid,
            start,
            command,
            out,
            err,
        })
    }

    /// Reaps `p`; a non-zero exit is a [`Failure`].
    pub fn finish(&self, p: Pending) -> Result<Sample, Failure> {
        let reaped = self.wait_for(p.pid);
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&(pid, _)| pid != p.pid);
        let (reaped, end) = reaped.map_err(|e| Failure {
            command: p.command.clone(),
            why: format!("wait4: {e}"),
        })?;
        let wall = end - p.start;
        if reaped.success() {
            return Ok(Sample {
                wall,
                maxrss_kib: reaped.maxrss_kib,
            });
        }
        let how = match (reaped.exit_code(), reaped.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (_, Some(9)) if self.is_interrupted() => "interrupted".to_string(),
            (_, Some(9)) if wall >= self.timeout => format!("timed out after {:?}", self.timeout),
            (_, Some(s)) => format!("killed by signal {s}"),
            _ => format!("wait status {}", reaped.status),
        };
        Err(Failure {
            command: p.command,
            why: format!("{how}; stderr: {}", tail(&p.err)),
        })
    }

    /// Runs one command to completion.
    pub fn run(&self, rt: &Runtime, args: &[&str]) -> Result<Sample, Failure> {
        let p = self.spawn(rt, args, 0)?;
        self.finish(p)
    }

    /// Runs one command and returns its stdout too.
    pub fn run_output(&self, rt: &Runtime, args: &[&str]) -> Result<(Sample, String), Failure> {
        let p = self.spawn(rt, args, 0)?;
        let out = p.out.clone();
        let s = self.finish(p)?;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        Ok((s, text))
    }

    /// Spawns all `cmds` at once, then reaps them all; returns the wall time of the whole batch
    /// and each command's sample. Any failure fails the batch (after every child is reaped).
    pub fn run_concurrently(
        &self,
        rt: &Runtime,
        cmds: &[Vec<String>],
    ) -> Result<(Duration, Vec<Sample>), Failure> {
        let start = Instant::now();
        let mut pending = Vec::with_capacity(cmds.len());
        let mut first_err = None;
        for (slot, args) in cmds.iter().enumerate() {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            match self.spawn(rt, &a, slot) {
                Ok(p) => pending.push(p),
                Err(e) => {
                    first_err = Some(e);
                    break;
                }
            }
        }
        let mut samples = Vec::with_capacity(pending.len());
        for p in pending {
            match self.finish(p) {
                Ok(s) => samples.push(s),
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        let wall = start.elapsed();
        match first_err {
            Some(e) => Err(e),
            None => Ok((wall, samples)),
        }
    }

    /// Runs `cmds` with at most `width` in flight (batches of `width`).
    pub fn run_batched(
        &self,
        rt: &Runtime,
        cmds: &[Vec<String>],
        width: usize,
    ) -> Result<(), Failure> {
        for chunk in cmds.chunks(width.max(1)) {
            self.run_concurrently(rt, chunk)?;
        }
        Ok(())
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn tail(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    let s = s.trim();
    let start = s.char_indices().rev().nth(300).map_or(0, |(i, _)| i);
    if s.is_empty() {
        "(empty)".into()
    } else {
        s[start..].replace('\n', " | ")
    }
}

/// Finds `name` in `$PATH` (or takes it as a path if it has a slash).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
