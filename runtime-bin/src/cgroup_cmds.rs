//! The cgroup commands: pause, resume, update, ps, events (runc's flags and output).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use coracle::cgroups::ops::Event;
use coracle::Container;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::{CliError, Result};

/// Commands that act on a container's cgroup.
#[derive(Subcommand, Debug)]
pub enum CgroupCommand {
    /// Freeze every process of a container.
    Pause {
        /// The container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container id.
        id: String,
    },
    /// Update a container's resource limits.
    Update(Box<UpdateArgs>),
    /// List the processes running in a container.
    Ps {
        /// Output format: table (runs ps) or json (the pids).
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// The container id.
        id: String,
        /// Arguments for ps (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Display container events (OOM) and resource usage stats.
    Events {
        /// The stats collection interval.
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Print the stats once, then exit.
        #[arg(long)]
        stats: bool,
        /// The container id.
        id: String,
    },
}

/// `update`'s flags, as runc's.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file with the resources to update, or `-` for stdin (other flags are ignored).
    #[arg(short, long)]
    resources: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// CPU CFS period (µs).
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota (µs; -1 for none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS burst (µs).
    #[arg(long = "cpu-burst")]
    cpu_burst: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    cpu_share: Option<u64>,
    /// CPU realtime period (µs).
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (µs).
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// SCHED_IDLE for the cgroup (0 or 1).
    #[arg(long = "cpu-idle")]
    cpu_idle: Option<i64>,
    /// CPUs to use.
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Obsolete; ignored.
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// TCP kernel memory limit (bytes, or with a unit: 64m).
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit: 512m, 1g; -1 for none).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory reservation (soft limit).
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory + swap limit (-1 for unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids (-1 or 0... as runc: <= 0 means unlimited when set).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Intel RDT/CAT L3 cache schema.
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema.
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
    /// The container id.
    id: String,
}

/// Runs a cgroup command; returns the exit code.
pub fn run(root: &Path, cmd: &CgroupCommand) -> Result<u8> {
    match cmd {
        CgroupCommand::Pause { id } => Container::load(id, root)?.pause()?,
        CgroupCommand::Resume { id } => Container::load(id, root)?.resume()?,
        CgroupCommand::Update(args) => update(root, args)?,
        CgroupCommand::Ps {
            format,
            id,
            ps_args,
        } => ps(root, id, format, ps_args)?,
        CgroupCommand::Events {
            interval,
            stats,
            id,
        } => events(root, id, interval, *stats)?,
    }
    Ok(0)
}

/// runc's `units.RAMInBytes`: a number (decimals allowed) with an optional binary unit
/// (`k`, `m`, `g`, `t`, `p`, optionally followed by `i` and/or `b`), case-insensitive.
pub fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "p" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (value * mult).trunc();
    (0.0..9.2e18).contains(&bytes).then(|| {
        // In range: checked just above.
        #[allow(clippy::cast_possible_truncation)]
        let b = bytes as i64;
        b
    })
}

fn mem_flag(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref() {
        None => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => ram_in_bytes(s)
            .map(Some)
            .ok_or_else(|| CliError(format!("invalid value for {name}: {s:?}"))),
    }
}

/// The resources the flags set (only those), as a spec `LinuxResources`.
fn patch_from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut memory = Map::new();
    for (key, flag, v) in [
        ("limit", "memory", &a.memory),
        ("swap", "memory-swap", &a.memory_swap),
        ("reservation", "memory-reservation", &a.memory_reservation),
        ("kernelTCP", "kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if let Some(n) = mem_flag(flag, v)? {
            memory.insert(key.into(), json!(n));
        }
    }
    if a.kernel_memory.is_some() {
        eprintln!("coracle: warning: --kernel-memory is obsolete and ignored");
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_share.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("burst", a.cpu_burst.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("idle", a.cpu_idle.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.as_ref().map(|v| json!(v)));
    put("mems", a.cpuset_mems.as_ref().map(|v| json!(v)));
    let mut res = Map::new();
    if !memory.is_empty() {
        res.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        res.insert("pids".into(), json!({ "limit": p }));
    }
    if let Some(w) = a.blkio_weight {
        res.insert("blockIO".into(), json!({ "weight": w }));
    }
    Ok(serde_json::from_value(Value::Object(res))?)
}

fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    let container = Container::load(&a.id, root)?;
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        let rdt = container
            .config()?
            .linux()
            .as_ref()
            .and_then(|l| l.intel_rdt().as_ref())
            .is_some();
        return Err(CliError(if !rdt && a.l3_cache_schema.is_some() {
            "Intel RDT/CAT: l3 cache schema is not enabled".into()
        } else if !rdt {
            "Intel RDT/MBA: memory bandwidth schema is not enabled".into()
        } else {
            "Intel RDT: not supported by coracle".into()
        }));
    }
    let patch = match a.resources.as_deref() {
        Some(source) => {
            let mut text = String::new();
            if source == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(source)
                    .map_err(|e| CliError(format!("read {source}: {e}")))?;
            }
            serde_json::from_str(&text)
                .map_err(|e| CliError(format!("parse resources {source}: {e}")))?
        }
        None => patch_from_flags(a)?,
    };
    container.update(root, &patch)?;
    Ok(())
}

/// The index of the `PID` column in ps's header.
fn pid_column(header: &str) -> Option<usize> {
    header.split_whitespace().position(|f| f == "PID")
}

fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let pids = Container::load(id, root)?.processes()?;
    if format == "json" {
        crate::out_line(&serde_json::to_string(&pids)?)?;
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| CliError(format!("run ps: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(CliError(format!(
            "ps {}: {}{}",
            args.join(" "),
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = pid_column(header)
        .ok_or_else(|| CliError("couldn't find PID field in ps output".into()))?;
    crate::out_line(header)?;
    for line in lines.filter(|l| !l.is_empty()) {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            crate::out_line(line)?;
        }
    }
    Ok(())
}

/// A Go duration (`5s`, `100ms`, `1m30s`, `1.5h`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * secs;
        rest = &rest[u..];
    }
    Duration::try_from_secs_f64(total).ok()
}

fn print_event(e: &Event) -> Result<()> {
    crate::out_line(&serde_json::to_string(e)?)
}

fn events(root: &Path, id: &str, interval: &str, stats_once: bool) -> Result<()> {
    let every = parse_duration(interval)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError(format!(
                "duration interval {interval:?} must be greater than 0"
            ))
        })?;
    let cgroup = {
        // The lock is held only while loading, so that the loop never blocks other commands.
        let container = Container::load(id, root)?;
        let first = container.stats_event()?;
        if stats_once {
            return print_event(&first);
        }
        container.cgroup().clone()
    };
    let mut ooms = cgroup.oom_kills().unwrap_or(0);
    let mut next_stats = Instant::now() + every;
    let tick = every.min(Duration::from_millis(100));
    loop {
        std::thread::sleep(tick);
        let now_ooms = cgroup.oom_kills().unwrap_or(ooms);
        for _ in ooms..now_ooms {
            print_event(&Event {
                kind: "oom",
                id: id.to_owned(),
                data: None,
            })?;
        }
        ooms = now_ooms;
        // The container is gone when its cgroup holds no process any more.
        if cgroup.all_pids().map_or(true, |p| p.is_empty()) {
            return Ok(());
        }
        if Instant::now() >= next_stats {
            next_stats += every;
            print_event(&Event {
                kind: "stats",
                id: id.to_owned(),
                data: Some(cgroup.stats()?),
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_units() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("512m"), Some(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("10 MB"), Some(10 << 20));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("5q"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn flags_to_patch() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: UpdateArgs,
        }
        let t = T::parse_from([
            "t",
            "--memory",
            "256m",
            "--memory-swap",
            "-1",
            "--cpu-quota",
            "-1",
            "--cpu-shares",
            "100",
            "--pids-limit",
            "9",
            "--cpuset-cpus",
            "0",
            "ctr",
        ]);
        let p = patch_from_flags(&t.a).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({"memory": {"limit": 268435456, "swap": -1},
                   "cpu": {"shares": 100, "quota": -1, "cpus": "0"},
                   "pids": {"limit": 9}})
        );
        assert_eq!(pid_column("UID PID PPID C STIME TTY TIME CMD"), Some(1));
    }
}
