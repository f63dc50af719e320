//! Resource usage of a cgroup, in the JSON shape of runc's `events` (`types.Stats`): cpu,
//! cpuset, memory, pids, blkio, hugetlb. Read from the v1 controllers' files or the v2
//! directory; a file the kernel does not have reads as zero, as in runc.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::fsops::read_value;
use super::CgroupError;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// CPU time, nanoseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuUsage {
    /// Total CPU time.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU, in kernel mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU, in user mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In kernel mode.
    pub kernel: u64,
    /// In user mode.
    pub user: u64,
}

/// CFS throttling.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Throttling {
    /// Enforcement periods.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// CPU stats.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Cpu {
    /// Usage.
    pub usage: CpuUsage,
    /// Throttling.
    pub throttling: Throttling,
}

/// cpuset stats (v1 files; v2 has cpus and mems only).
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuSet {
    /// The effective CPUs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// cpuset.cpu_exclusive.
    pub cpu_exclusive: u64,
    /// The effective memory nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    /// cpuset.mem_hardwall.
    pub mem_hardwall: u64,
    /// cpuset.mem_exclusive.
    pub mem_exclusive: u64,
    /// cpuset.memory_migrate.
    pub memory_migrate: u64,
    /// cpuset.memory_spread_page.
    pub memory_spread_page: u64,
    /// cpuset.memory_spread_slab.
    pub memory_spread_slab: u64,
    /// cpuset.memory_pressure.
    pub memory_pressure: u64,
    /// cpuset.sched_load_balance.
    pub sched_load_balance: u64,
    /// cpuset.sched_relax_domain_level.
    pub sched_relax_domain_level: i64,
}

/// One memory counter family (usage, swap, kernel, kernelTCP).
#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryEntry {
    /// The limit (`u64::MAX`-like values for none, as the kernel says).
    pub limit: u64,
    /// Current usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

/// Memory stats.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Memory {
    /// Page cache.
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap.
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// Kernel TCP memory (v1).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat, as is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// pids stats.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Pids {
    /// Processes and threads now.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The limit (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One block I/O counter.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor.
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// Read, Write, Sync, Async, Total...
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The count.
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// Block I/O stats.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Blkio {
    /// Bytes.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// hugetlb stats of one page size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Hugetlb {
    /// Usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// How often the limit was hit.
    pub failcnt: u64,
}

/// Everything `events --stats` prints as `data`, in runc's shape.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// CPU.
    pub cpu: Cpu,
    /// cpuset.
    pub cpuset: CpuSet,
    /// Memory.
    pub memory: Memory,
    /// pids.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// hugetlb, by page size (`2MB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT (not supported: always empty).
    pub intel_rdt: serde_json::Map<String, serde_json::Value>,
    /// Network interfaces (runc prints null).
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

/// A number from `dir/file` (missing, empty or unparsable: 0; `max`: u64::MAX).
fn num(dir: &Path, file: &str) -> u64 {
    let v = read_value(dir, file).unwrap_or_default();
    if v == "max" {
        return u64::MAX;
    }
    v.parse().unwrap_or(0)
}

/// `key value` lines into a map.
fn flat_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    read_value(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_owned(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// A cpu list (`0-3,5`) expanded.
fn cpu_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            out.extend(a..=b);
        }
    }
    out
}

/// The huge page sizes of this host as cgroup file names use them (`2MB`, `1GB`).
pub fn huge_page_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    out.sort();
    out
}

/// The v1 cpuset files of `dir`.
fn cpuset_stats(dir: &Path, v2: bool) -> CpuSet {
    let (cpus, mems) = if v2 {
        ("cpuset.cpus.effective", "cpuset.mems.effective")
    } else {
        ("cpuset.effective_cpus", "cpuset.effective_mems")
    };
    let mut s = CpuSet {
        cpus: cpu_list(&read_value(dir, cpus).unwrap_or_default()),
        mems: cpu_list(&read_value(dir, mems).unwrap_or_default()),
        ..CpuSet::default()
    };
    if !v2 {
        s.cpu_exclusive = num(dir, "cpuset.cpu_exclusive");
        s.mem_hardwall = num(dir, "cpuset.mem_hardwall");
        s.mem_exclusive = num(dir, "cpuset.mem_exclusive");
        s.memory_migrate = num(dir, "cpuset.memory_migrate");
        s.memory_spread_page = num(dir, "cpuset.memory_spread_page");
        s.memory_spread_slab = num(dir, "cpuset.memory_spread_slab");
        s.memory_pressure = num(dir, "cpuset.memory_pressure");
        s.sched_load_balance = num(dir, "cpuset.sched_load_balance");
        s.sched_relax_domain_level = read_value(dir, "cpuset.sched_relax_domain_level")
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
    }
    s
}

/// v1 blkio counters (`8:0 Read 4096` lines; `Total` lines skipped).
fn blkio_v1(dir: &Path, file: &str) -> Vec<BlkioEntry> {
    read_value(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f.as_slice() else {
                return None;
            };
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: (*op).to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn mem_entry(dir: &Path, prefix: &str) -> MemoryEntry {
    MemoryEntry {
        limit: num(dir, &format!("{prefix}.limit_in_bytes")),
        usage: num(dir, &format!("{prefix}.usage_in_bytes")),
        max: num(dir, &format!("{prefix}.max_usage_in_bytes")),
        failcnt: num(dir, &format!("{prefix}.failcnt")),
    }
}

/// Stats of a v1 cgroup; `path` gives a controller's directory.
pub fn v1(path: &dyn Fn(&str) -> Option<std::path::PathBuf>) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(d) = path("cpuacct") {
        s.cpu.usage.total = num(&d, "cpuacct.usage");
        s.cpu.usage.percpu = read_value(&d, "cpuacct.usage_percpu")?
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // cpuacct.usage_all: "cpu user system" header, then one line per CPU (ns).
        for line in read_value(&d, "cpuacct.usage_all")?.lines().skip(1) {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if let [_, user, sys] = f.as_slice() {
                s.cpu.usage.percpu_user.push(*user);
                s.cpu.usage.percpu_kernel.push(*sys);
            }
        }
        // cpuacct.stat is in clock ticks (USER_HZ, 100 on Linux).
        let st = flat_keyed(&d, "cpuacct.stat");
        let tick_ns = 1_000_000_000 / 100;
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * tick_ns;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * tick_ns;
    }
    if let Some(d) = path("cpu") {
        let st = flat_keyed(&d, "cpu.stat");
        s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = path("cpuset") {
        s.cpuset = cpuset_stats(&d, false);
    }
    if let Some(d) = path("memory") {
        s.memory.raw = flat_keyed(&d, "memory.stat");
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        s.memory.usage = mem_entry(&d, "memory");
        s.memory.swap = mem_entry(&d, "memory.memsw");
        s.memory.kernel = mem_entry(&d, "memory.kmem");
        s.memory.kernel_tcp = mem_entry(&d, "memory.kmem.tcp");
    }
    if let Some(d) = path("pids") {
        s.pids.current = num(&d, "pids.current");
        s.pids.limit = match num(&d, "pids.max") {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Some(d) = path("blkio") {
        // CFQ's files when they have data, else BFQ's, else the throttling layer's.
        for prefix in ["blkio", "blkio.bfq", "blkio.throttle"] {
            let bytes = blkio_v1(&d, &format!("{prefix}.io_service_bytes_recursive"));
            if !bytes.is_empty() {
                s.blkio.io_service_bytes_recursive = bytes;
                s.blkio.io_serviced_recursive =
                    blkio_v1(&d, &format!("{prefix}.io_serviced_recursive"));
                break;
            }
        }
    }
    if let Some(d) = path("hugetlb") {
        for size in huge_page_sizes() {
            let p = format!("hugetlb.{size}");
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage: num(&d, &format!("{p}.usage_in_bytes")),
                    max: num(&d, &format!("{p}.max_usage_in_bytes")),
                    failcnt: num(&d, &format!("{p}.failcnt")),
                },
            );
        }
    }
    Ok(s)
}

/// Stats of the v2 cgroup `d`.
pub fn v2(d: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    let cpu = flat_keyed(d, "cpu.stat");
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
    s.cpu.usage.user = get(&cpu, "user_usec") * 1000;
    s.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
    s.cpu.throttling.periods = get(&cpu, "nr_periods");
    s.cpu.throttling.throttled_periods = get(&cpu, "nr_throttled");
    s.cpu.throttling.throttled_time = get(&cpu, "throttled_usec") * 1000;
    s.cpuset = cpuset_stats(d, true);
    s.memory.raw = flat_keyed(d, "memory.stat");
    s.memory.cache = get(&s.memory.raw, "file");
    let events = flat_keyed(d, "memory.events");
    s.memory.usage = MemoryEntry {
        limit: num(d, "memory.max"),
        usage: num(d, "memory.current"),
        max: num(d, "memory.peak"),
        failcnt: get(&events, "max"),
    };
    // As runc: swap is reported as memory+swap, like v1's memsw.
    let swap_limit = num(d, "memory.swap.max");
    s.memory.swap = MemoryEntry {
        limit: if swap_limit == u64::MAX || s.memory.usage.limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit + s.memory.usage.limit
        },
        usage: num(d, "memory.swap.current") + s.memory.usage.usage,
        max: 0,
        failcnt: 0,
    };
    s.pids.current = num(d, "pids.current");
    s.pids.limit = match num(d, "pids.max") {
        u64::MAX => 0,
        n => n,
    };
    // io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
    for line in read_value(d, "io.stat")?.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let value = v.parse().unwrap_or(0);
            let (list, op) = match k {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value,
            });
        }
    }
    if read_value(d, "cgroup.controllers")?
        .split_whitespace()
        .any(|c| c == "hugetlb")
    {
        for size in huge_page_sizes() {
            let ev = flat_keyed(d, &format!("hugetlb.{size}.events"));
            s.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: num(d, &format!("hugetlb.{size}.current")),
                    max: 0,
                    failcnt: get(&ev, "max"),
                },
            );
        }
    }
    Ok(s)
}

/// The OOM-kill count of the cgroup: v1 `memory.oom_control` `oom_kill`, v2 `memory.events`
/// `oom_kill` (`None` when the kernel does not count them).
pub fn oom_kills(memory_dir: &Path, v2: bool) -> Option<u64> {
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    flat_keyed(memory_dir, file).get("oom_kill").copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(d: &Path, f: &str, v: &str) {
        std::fs::write(d.join(f), v).unwrap();
    }

    #[test]
    fn v1_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        w(d, "cpuacct.usage", "1000\n");
        w(d, "cpuacct.usage_percpu", "600 400 \n");
        w(
            d,
            "cpuacct.usage_all",
            "cpu user system\n0 500 100\n1 300 100\n",
        );
        w(d, "cpuacct.stat", "user 3\nsystem 1\n");
        w(
            d,
            "cpu.stat",
            "nr_periods 10\nnr_throttled 2\nthrottled_time 500\n",
        );
        w(d, "memory.stat", "cache 4096\nrss 8192\n");
        w(d, "memory.usage_in_bytes", "12288\n");
        w(d, "memory.limit_in_bytes", "104857600\n");
        w(d, "memory.failcnt", "0\n");
        w(d, "pids.current", "3\n");
        w(d, "pids.max", "max\n");
        w(
            d,
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
        );
        w(d, "cpuset.effective_cpus", "0-1\n");
        let s = v1(&|_| Some(d.to_path_buf())).unwrap();
        assert_eq!(s.cpu.usage.total, 1000);
        assert_eq!(s.cpu.usage.percpu, vec![600, 400]);
        assert_eq!(s.cpu.usage.percpu_user, vec![500, 300]);
        assert_eq!(s.cpu.usage.user, 30_000_000);
        assert_eq!(s.cpu.throttling.throttled_periods, 2);
        assert_eq!(s.memory.cache, 4096);
        assert_eq!(s.memory.usage.limit, 104857600);
        assert_eq!(s.pids.current, 3);
        assert_eq!(s.pids.limit, 0);
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.cpuset.cpus, vec![0, 1]);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(j["memory"]["usage"]["usage"], 12288);
        assert!(j["memory"]["swap"].get("usage").is_none());
        assert_eq!(j["memory"]["swap"]["failcnt"], 0);
        assert_eq!(j["pids"], serde_json::json!({"current": 3}));
        assert!(j["network_interfaces"].is_null());
        assert_eq!(
            j["blkio"]["ioServiceBytesRecursive"][1],
            serde_json::json!({"major":8,"op":"Write"})
        );
    }

    #[test]
    fn v2_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        w(
            d,
            "cpu.stat",
            "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 0\n",
        );
        w(d, "memory.current", "8192\n");
        w(d, "memory.max", "max\n");
        w(d, "memory.swap.current", "0\n");
        w(d, "memory.swap.max", "max\n");
        w(
            d,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        w(d, "memory.stat", "anon 4096\nfile 4096\n");
        w(d, "pids.current", "2\n");
        w(d, "pids.max", "20\n");
        w(
            d,
            "io.stat",
            "8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        );
        w(d, "cgroup.controllers", "cpu memory pids io\n");
        let s = v2(d).unwrap();
        assert_eq!(s.cpu.usage.total, 10_000);
        assert_eq!(s.cpu.usage.kernel, 4_000);
        assert_eq!(s.memory.usage.usage, 8192);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 3);
        assert_eq!(s.memory.swap.usage, 8192);
        assert_eq!(s.memory.cache, 4096);
        assert_eq!(s.pids.limit, 20);
        assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 512);
        assert_eq!(s.blkio.io_serviced_recursive[0].op, "Read");
        assert!(s.hugetlb.is_empty());
        assert_eq!(oom_kills(d, true), Some(1));
    }

    #[test]
    fn lists() {
        assert_eq!(cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert!(cpu_list("").is_empty());
    }
}
