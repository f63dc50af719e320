//! Faults: a runtime killed mid-create, an init that died before `start`, many concurrent
//! commands on one `--root`, many sequential runs. Afterwards nothing is left behind and the
//! state stays consistent.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use coracle_conformance::{
    binary, existing_cgroup_dirs, host_mounts_mentioning, spawn_to_files, unique, wait_timeout,
    Bundle, Output, Runtime,
};
use serde_json::Value;

/// The heavy tests (many containers, host-wide counters) run one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A private copy of the binary under test, so the processes it leaves (if any) can be found
/// by their /proc/PID/exe. Removed on drop.
struct BinCopy {
    dir: PathBuf,
    path: PathBuf,
}

impl BinCopy {
    fn new() -> BinCopy {
        let dir = std::env::temp_dir().join(unique("coracle-test-faultbin"));
        fs::create_dir_all(&dir).expect("test setup");
        let path = dir.join("coracle");
        fs::copy(binary(), &path).expect("test setup");
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
        BinCopy { dir, path }
    }
}

impl Drop for BinCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A temp directory removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let d = std::env::temp_dir().join(unique(prefix));
        fs::create_dir_all(&d).expect("mkdir temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Pids of processes whose exe is `exe`, or whose root or cwd lies under `dir`.
fn processes_of(exe: &Path, dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let p = e.path();
        let hit = |link: &str| {
            fs::read_link(p.join(link)).ok().filter(|t| {
                let t = t.to_string_lossy();
                let t = t.trim_end_matches(" (deleted)");
                Path::new(t) == exe || Path::new(t).starts_with(dir)
            })
        };
        if let Some(t) = hit("exe").or_else(|| hit("root")).or_else(|| hit("cwd")) {
            let comm = fs::read_to_string(p.join("comm")).unwrap_or_default();
            found.push((name, format!("{} {}", comm.trim(), t.display())));
        }
    }
    found
}

/// Asserts (waiting up to 3 s for stragglers to exit) that nothing of container `id` remains:
/// no state dir, no cgroup dir, no mount of the bundle, no process.
#[track_caller]
fn assert_nothing_left(rt: &Runtime, id: &str, b: &Bundle, exe: &Path, context: &str) {
    let start = Instant::now();
    loop {
        let procs = processes_of(exe, b.path());
        let cg = existing_cgroup_dirs(b.cgroup_path());
        let mounts = host_mounts_mentioning(b.path());
        let state = rt.state_dir_exists(id);
        if procs.is_empty() && cg.is_empty() && mounts.is_empty() && !state {
            return;
        }
        if start.elapsed() > Duration::from_secs(3) {
            let dir = rt.root().join(id);
            let files: Vec<_> = fs::read_dir(&dir)
                .map(|d| d.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            let record = fs::read_to_string(dir.join("state.json")).unwrap_or_default();
            panic!(
                "left behind by {context}:\n  processes: {procs:?}\n  cgroups: {cg:?}\n  \
                 mounts: {mounts:?}\n  state dir: {state} {files:?}\n  state.json: {record}"
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `delete --force ID` after an interrupted create: succeeds, or says the container does not
/// exist (when create was killed before it made the state dir).
#[track_caller]
fn force_delete_after_fault(rt: &Runtime, id: &str, context: &str) -> Output {
    let out = rt.delete_force(id);
    assert!(!out.timed_out, "{context}\n{out}");
    if !out.success() {
        out.stderr_mentions(&["not exist", "not found", "no such"]);
    }
    out
}

/// `coracle create` SIGKILLed after various delays (so at various steps): `delete --force`
/// then cleans up everything: no process, cgroup, mount or state dir remains.
#[test]
fn create_killed_at_any_moment_is_cleaned_up_by_delete_force() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let _work_dir = TempDir::new("coracle-test-killcreate");
    let mut failures = Vec::new();
    for round in 0..2 {
        for delay_ms in [0u64, 1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 150] {
            let mut b = Bundle::new();
            b.sh("sleep 1000");
            b.write();
            let id = rt.new_id();
            let mut cmd = Command::new(&bin.path);
            cmd.args(rt.global_args())
                .args(["create", "--bundle", b.path_str(), &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = cmd.spawn().unwrap();
            thread::sleep(Duration::from_millis(delay_ms));
            let _ = child.kill();
            let _ = wait_timeout(&mut child, Duration::from_secs(5));
            let context = format!("create SIGKILLed after {delay_ms} ms (round {round})");
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let del = force_delete_after_fault(&rt, &id, &context);
                assert_nothing_left(&rt, &id, &b, &bin.path, &format!("{context}\n{del}"));
                let list = rt.exec(&["list", "-q"]);
                list.ok();
                assert!(!list.stdout.lines().any(|l| l == id), "{context}\n{list}");
            }));
            if let Err(e) = checked {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(msg);
                // Clean what delete left, so the next rounds start clean.
                let _ = fs::remove_dir_all(rt.root().join(&id));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The steps of `create` (in `Container::create`) the test-only failpoint
/// `CORACLE_FAILPOINT=<step>` makes the runtime SIGKILL itself at.
const FAILPOINTS: &[&str] = &[
    // After ContainerDir::create (dir and lock), before the first state.json write.
    "after-state-dir",
    // After the first write of the `creating` record.
    "after-creating-record",
    // After cgroup.create(), before the record naming the cgroup is written.
    "after-cgroup",
    // After the record with the cgroup is written, before clone3.
    "after-cgroup-record",
    // In the parent, right after clone3.
    "after-clone",
    // After the id maps are written and the pid added to the cgroup.
    "after-id-maps",
    // After the prestart and createRuntime hooks.
    "after-hooks",
    // After Message::Go is sent.
    "after-go",
    // After Message::Ready is received (the init now blocks on the exec FIFO).
    "after-ready",
    // After the pid file is written, before the final state.json write.
    "before-final-record",
    // After the final state.json write (status created).
    "after-final-record",
];

/// `coracle create` SIGKILLed (by itself) at each named step: `delete --force` succeeds and
/// leaves no cgroup, mount, state dir or process.
#[test]
fn create_killed_at_each_failpoint_is_cleaned_up_by_delete_force() {
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let work_dir = TempDir::new("coracle-test-failpoint");
    let work = work_dir.0.clone();
    for step in FAILPOINTS {
        let mut b = Bundle::new();
        b.sh("sleep 1000");
        b.write();
        let id = rt.new_id();
        let mut cmd = Command::new(&bin.path);
        cmd.env("CORACLE_FAILPOINT", step)
            .args(rt.global_args())
            .args(["create", "--bundle", b.path_str(), &id])
            .stdin(Stdio::null());
        let out = spawn_to_files(&mut cmd, &work, step, &format!("create at {step}"));
        assert!(
            !out.timed_out && out.code.is_none(),
            "create should have died of SIGKILL at {step}:\n{out}"
        );
        let context = format!("create killed at {step}");
        let del = force_delete_after_fault(&rt, &id, &context);
        assert_nothing_left(&rt, &id, &b, &bin.path, &format!("{context}\n{del}"));
    }
}

/// The container's init dies (SIGKILL from the host) before `start`: `start` fails fast with a
/// clear error, never hangs; `state` says stopped; `delete` cleans up.
#[test]
fn start_of_a_container_whose_init_died_fails_fast() {
    let rt = Runtime::with_json_log();
    let mut b = Bundle::new();
    b.sh("echo SHOULD-NOT-RUN; sleep 1000");
    let id = rt.new_id();
    rt.create(&id, &b).ok();
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let pid = i32::try_from(pid).unwrap();
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let gone = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && gone.elapsed() < Duration::from_secs(5) {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')) {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    let out = rt.start(&id);
    let took = t.elapsed();
    out.fails().stderr_mentions(&[
        "stopped",
        "not running",
        "dead",
        "exited",
        "no such process",
    ]);
    assert!(took < Duration::from_secs(3), "start took {took:?}:\n{out}");
    let (stdout, _) = rt.container_output(&id);
    assert!(!stdout.contains("SHOULD-NOT-RUN"), "{stdout}");
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped", "{st:#}");
    rt.delete(&id).ok();
    assert_nothing_left(
        &rt,
        &id,
        &b,
        Path::new("/nonexistent"),
        "delete after a dead init",
    );
}

/// `start` of a container whose program exits at once (`true`) succeeds every time: the init
/// may be gone by the time `start` looks at it, but it did start.
#[test]
fn start_of_a_container_that_exits_at_once_succeeds() {
    let rt = Runtime::new();
    let mut failures = Vec::new();
    for _ in 0..40 {
        let mut b = Bundle::new();
        b.args(&["true"]);
        let id = rt.new_id();
        rt.create(&id, &b).ok();
        let out = rt.start(&id);
        if !out.success() {
            failures.push(out.to_string());
        }
        rt.delete_force(&id).ok();
    }
    assert!(
        failures.is_empty(),
        "{} of 40 starts failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One `list --format json`: must succeed and parse, and every entry must look complete.
#[track_caller]
fn checked_list(rt: &Runtime) -> Vec<Value> {
    let out = rt.exec(&["list", "--format", "json"]);
    out.ok();
    let text = out.out();
    let v: Value = if text.is_empty() || text == "null" {
        Value::Array(Vec::new())
    } else {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("list is not JSON ({e}):\n{out}"))
    };
    let list = v.as_array().cloned().unwrap_or_default();
    for entry in &list {
        let status = entry["status"].as_str().unwrap_or_default();
        assert!(
            ["creating", "created", "running", "stopped", "paused"].contains(&status),
            "bad status in list entry {entry:#}\n{out}"
        );
        assert!(
            entry["id"].as_str().is_some_and(|i| !i.is_empty()),
            "{entry:#}"
        );
    }
    list
}

/// 50 concurrent create/start/state/delete cycles on one `--root`, with `list` running all the
/// while: every command succeeds, no state.json is ever unreadable, and nothing remains.
#[test]
fn parallel_lifecycles_on_one_root_keep_state_consistent() {
    let _guard = heavy();
    const N: usize = 50;
    let rt = Runtime::new();
    let bundles: Vec<(String, Bundle)> = (0..N)
        .map(|_| {
            let mut b = Bundle::new();
            b.sh("sleep 1000");
            (rt.new_id(), b)
        })
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|s| {
        let lister = s.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let list =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checked_list(&rt)));
                if let Err(e) = list {
                    done.store(true, std::sync::atomic::Ordering::Relaxed);
                    std::panic::resume_unwind(e);
                }
                n += 1;
            }
            n
        });
        // Stop the lister however the workers end (a panic must not hang the scope).
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stop = StopOnDrop(&done);
        let workers: Vec<_> = bundles
            .iter()
            .map(|(id, b)| {
                let rt = &rt;
                s.spawn(move || {
                    rt.create(id, b).ok();
                    rt.start(id).ok();
                    let st = rt.state(id);
                    assert_eq!(st["status"], "running", "{st:#}");
                    assert_eq!(st["id"], id.as_str(), "{st:#}");
                    rt.delete_force(id).ok();
                    assert!(!rt.state_dir_exists(id));
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        drop(stop);
        for r in results {
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        }
        let lists = lister.join().unwrap();
        assert!(lists > 0);
    });
    assert!(checked_list(&rt).is_empty());
    let left: Vec<_> = fs::read_dir(rt.root())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "entries left in the root: {left:?}");
    for (id, b) in &bundles {
        assert_nothing_left(&rt, id, b, Path::new("/nonexistent"), "parallel lifecycle");
    }
}

/// Host-wide counters, for the record (other work on the machine moves them, so the test
/// asserts only on what it can attribute to its own runs).
#[derive(Debug, Clone, PartialEq)]
struct HostCounts {
    /// Allocated file handles (first field of /proc/sys/fs/file-nr).
    files: i64,
    /// Lines of the host's mountinfo.
    mounts: usize,
    /// Entries of /run.
    run_entries: usize,
}

fn host_counts() -> HostCounts {
    let files = fs::read_to_string("/proc/sys/fs/file-nr")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0);
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .count();
    let run_entries = fs::read_dir("/run").map(|d| d.count()).unwrap_or(0);
    HostCounts {
        files,
        mounts,
        run_entries,
    }
}

/// Open fds of the processes running `exe` or rooted in `dir`, and the processes themselves.
fn fds_of(exe: &Path, dir: &Path) -> usize {
    processes_of(exe, dir)
        .iter()
        .map(|(pid, _)| {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

/// Up to 200 sequential `run`s (at most ~40 s) with a private copy of the binary: afterwards
/// no process of it remains (so no fd it held), no mount of the bundle or root exists, the
/// container's cgroup is gone in every hierarchy, and the root and /run hold nothing new.
#[test]
fn sequential_runs_leak_nothing() {
    let _guard = heavy();
    let bin = BinCopy::new();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("true");
    b.write();
    let work_dir = TempDir::new("coracle-test-seqruns");
    let work = work_dir.0.clone();
    let run = |n: u32| {
        let id = format!("seq-{}-{n}", std::process::id());
        rt.track(&id);
        let mut cmd = Command::new(&bin.path);
        cmd.args(rt.global_args())
            .args(["run", "--bundle", b.path_str(), &id])
            .stdin(Stdio::null());
        let out = spawn_to_files(&mut cmd, &work, "run", &format!("run {id}"));
        out.ok();
        assert!(
            !rt.state_dir_exists(&id),
            "state dir left by run {n}\n{out}"
        );
    };
    run(0);
    let before = host_counts();
    let run_before: Vec<_> = fs::read_dir("/run")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let start = Instant::now();
    let mut runs = 0u32;
    while runs < 200 && start.elapsed() < Duration::from_secs(40) {
        runs += 1;
        run(runs);
        if runs.is_multiple_of(25) {
            let procs = processes_of(&bin.path, b.path());
            assert!(
                procs.is_empty(),
                "after {runs} runs, processes remain: {procs:?}"
            );
        }
    }
    thread::sleep(Duration::from_millis(300));
    let after = host_counts();
    eprintln!(
        "{runs} runs in {:?}: before {before:?}, after {after:?}",
        start.elapsed()
    );
    assert!(runs >= 20, "only {runs} runs in 40 s");
    let procs = processes_of(&bin.path, b.path());
    assert!(procs.is_empty(), "processes remain: {procs:?}");
    assert_eq!(fds_of(&bin.path, b.path()), 0);
    let mounts: Vec<String> = host_mounts_mentioning(b.path())
        .into_iter()
        .chain(host_mounts_mentioning(rt.root()))
        .collect();
    assert!(mounts.is_empty(), "mounts remain: {mounts:?}");
    let cg = existing_cgroup_dirs(b.cgroup_path());
    assert!(cg.is_empty(), "cgroup dirs remain: {cg:?}");
    let left: Vec<_> = fs::read_dir(rt.root())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "entries left in the root: {left:?}");
    // /run: nothing new except test roots of concurrent tests.
    let new_in_run: Vec<_> = fs::read_dir("/run")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| !run_before.contains(n))
                .filter(|n| !n.to_string_lossy().starts_with("coracle-test"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        new_in_run.len() < 3,
        "new entries in /run after {runs} runs: {new_in_run:?}"
    );
}
