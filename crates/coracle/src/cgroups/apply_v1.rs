//! Applying `linux.resources` on a v1 (or hybrid) host, controller by controller, as runc 1.1's
//! fs driver (plus runc 1.2's cpu burst/idle and checkBeforeUpdate). Functions over the
//! controllers' directories, so tests run them on temp-dir trees.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::fsops::{is_errno, read_u64, read_value, set, warn_skip};
use super::resources::{nz, DeviceRule};
use super::v1::V1Cgroup;
use super::CgroupError;

/// The directory of `controller`, or the error naming the field that needs it.
fn need<'a>(cg: &'a V1Cgroup, controller: &str, field: &str) -> Result<&'a Path, CgroupError> {
    cg.path(controller)
        .ok_or_else(|| CgroupError::ControllerMissing {
            field: field.to_owned(),
            controller: controller.to_owned(),
        })
}

/// The controllers the set fields of `res` need, with the field asking, in apply order.
fn needed(res: &LinuxResources) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if let Some(c) = res.cpu() {
        if c.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || c.mems().as_deref().is_some_and(|s| !s.is_empty())
        {
            out.push(("cpuset", "linux.resources.cpu.cpus/mems"));
        }
        if cpu_is_set(c) {
            out.push(("cpu", "linux.resources.cpu"));
        }
    }
    if res.memory().as_ref().is_some_and(memory_is_set) {
        out.push(("memory", "linux.resources.memory"));
    }
    if res.pids().is_some_and(|p| p.limit() != 0) {
        out.push(("pids", "linux.resources.pids"));
    }
    if res.block_io().as_ref().is_some_and(blkio_is_set) {
        out.push(("blkio", "linux.resources.blockIO"));
    }
    if res
        .hugepage_limits()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
    {
        out.push(("hugetlb", "linux.resources.hugepageLimits"));
    }
    if let Some(n) = res.network() {
        if nz(n.class_id()).is_some() {
            out.push(("net_cls", "linux.resources.network.classID"));
        }
        if n.priorities().as_ref().is_some_and(|l| !l.is_empty()) {
            out.push(("net_prio", "linux.resources.network.priorities"));
        }
    }
    if res.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push(("rdma", "linux.resources.rdma"));
    }
    out
}

/// Checks that every controller a set field of `res` needs is mounted (devices always is).
pub fn check_controllers(cg: &V1Cgroup, res: &LinuxResources) -> Result<(), CgroupError> {
    for (controller, field) in needed(res) {
        need(cg, controller, field)?;
    }
    Ok(())
}

/// Applies every set field of `res` (and, when given, the device rules) in runc's controller
/// order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma.
pub fn apply(
    cg: &V1Cgroup,
    res: &LinuxResources,
    devices: Option<&[DeviceRule]>,
) -> Result<(), CgroupError> {
    if let Some(c) = res.cpu() {
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let dir = need(cg, "cpuset", "linux.resources.cpu.cpus/mems")?;
            cpuset(dir, cpus, mems)?;
        }
    }
    if let Some(rules) = devices {
        let dir = need(cg, "devices", "linux.resources.devices")?;
        apply_devices(dir, rules)?;
    }
    if let Some(m) = res.memory() {
        if memory_is_set(m) {
            memory(need(cg, "memory", "linux.resources.memory")?, m)?;
        }
    }
    if let Some(c) = res.cpu() {
        if cpu_is_set(c) {
            cpu(need(cg, "cpu", "linux.resources.cpu")?, c)?;
        }
    }
    if let Some(limit) = res.pids().map(|p| p.limit()).filter(|l| *l != 0) {
        let dir = need(cg, "pids", "linux.resources.pids")?;
        set(
            dir,
            "pids.max",
            &pids_value(limit),
            "linux.resources.pids.limit",
        )?;
    }
    if let Some(b) = res.block_io() {
        if blkio_is_set(b) {
            blkio(need(cg, "blkio", "linux.resources.blockIO")?, b)?;
        }
    }
    if let Some(list) = res.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        let dir = need(cg, "hugetlb", "linux.resources.hugepageLimits")?;
        for h in list {
            let limit = h.limit().to_string();
            let field = "linux.resources.hugepageLimits";
            set(
                dir,
                &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
                &limit,
                field,
            )?;
            let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size());
            if dir.join(&rsvd).exists() {
                set(dir, &rsvd, &limit, field)?;
            }
        }
    }
    if let Some(n) = res.network() {
        if let Some(id) = nz(n.class_id()) {
            let dir = need(cg, "net_cls", "linux.resources.network.classID")?;
            set(
                dir,
                "net_cls.classid",
                &id.to_string(),
                "linux.resources.network.classID",
            )?;
        }
        if let Some(list) = n.priorities().as_ref().filter(|l| !l.is_empty()) {
            let dir = need(cg, "net_prio", "linux.resources.network.priorities")?;
            for p in list {
                let line = format!("{} {}", p.name(), p.priority());
                set(
                    dir,
                    "net_prio.ifpriomap",
                    &line,
                    "linux.resources.network.priorities",
                )?;
            }
        }
    }
    if let Some(map) = res.rdma().as_ref().filter(|m| !m.is_empty()) {
        let dir = need(cg, "rdma", "linux.resources.rdma")?;
        for line in rdma_lines(map) {
            set(dir, "rdma.max", &line, "linux.resources.rdma")?;
        }
    }
    Ok(())
}

/// `rdma.max` lines, one per device, sorted by device name.
pub(crate) fn rdma_lines(
    map: &std::collections::HashMap<String, oci_spec::runtime::LinuxRdma>,
) -> Vec<String> {
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let r = map.get(name)?;
            let mut line = name.clone();
            if let Some(h) = r.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = r.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            Some(line)
        })
        .collect()
}

/// `pids.max`: a positive limit, or `max` for a negative one.
pub(crate) fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

fn cpuset(dir: &Path, cpus: Option<&str>, mems: Option<&str>) -> Result<(), CgroupError> {
    if let Some(c) = cpus {
        set(dir, "cpuset.cpus", c, "linux.resources.cpu.cpus")?;
    }
    if let Some(m) = mems {
        set(dir, "cpuset.mems", m, "linux.resources.cpu.mems")?;
    }
    Ok(())
}

/// v1 devices: each rule in order into `devices.allow` or `devices.deny`.
pub fn apply_devices(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        set(dir, file, &r.v1_line(), "linux.resources.devices")?;
    }
    Ok(())
}

pub(crate) fn memory_is_set(m: &LinuxMemory) -> bool {
    nz(m.limit()).is_some()
        || nz(m.swap()).is_some()
        || nz(m.reservation()).is_some()
        || nz(m.kernel_tcp()).is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some()
}

fn num(v: i64) -> String {
    v.to_string()
}

/// Writes `memory.limit_in_bytes`; when the kernel says busy (usage above the new limit), the
/// error says the usage.
fn set_memory_limit(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    match set(
        dir,
        "memory.limit_in_bytes",
        &num(limit),
        "linux.resources.memory.limit",
    ) {
        Err(e) if is_errno(&e, libc::EBUSY) => Err(CgroupError::MemoryBusy {
            limit,
            usage: read_u64(dir, "memory.usage_in_bytes")?,
            peak: read_u64(dir, "memory.max_usage_in_bytes")?,
        }),
        other => other,
    }
}

/// `checkBeforeUpdate`: refuses a limit at or below the current usage.
pub(crate) fn check_usage(dir: &Path, file: &str, limit: Option<i64>) -> Result<(), CgroupError> {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return Ok(());
    };
    // Best effort, as runc: an unreadable usage does not block the update.
    let Ok(usage) = read_u64(dir, file) else {
        return Ok(());
    };
    if usage != u64::MAX && usage >= limit.unsigned_abs() {
        return Err(CgroupError::BelowUsage { limit, usage });
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = nz(m.limit());
    let mut swap = nz(m.swap());
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    // Unlimited memory without a swap value: unlimited swap too (if the kernel accounts swap).
    if limit == Some(-1) && swap.is_none() && dir.join(MEMSW).exists() {
        swap = Some(-1);
    }
    if m.check_before_update() == Some(true) {
        check_usage(dir, "memory.usage_in_bytes", limit)?;
    }
    let set_swap = |s: Option<i64>| match s {
        Some(s) => set(dir, MEMSW, &num(s), "linux.resources.memory.swap"),
        None => Ok(()),
    };
    // memory <= memsw must hold after each write: raise memsw first when it grows.
    let swap_first = match (limit, swap) {
        (Some(_), Some(s)) => s == -1 || read_u64(dir, "memory.limit_in_bytes")? < s.unsigned_abs(),
        _ => false,
    };
    if swap_first {
        set_swap(swap)?;
    }
    if let Some(l) = limit {
        set_memory_limit(dir, l)?;
    }
    if !swap_first {
        set_swap(swap)?;
    }
    if let Some(r) = nz(m.reservation()) {
        set(
            dir,
            "memory.soft_limit_in_bytes",
            &num(r),
            "linux.resources.memory.reservation",
        )?;
    }
    if let Some(t) = nz(m.kernel_tcp()) {
        set(
            dir,
            "memory.kmem.tcp.limit_in_bytes",
            &num(t),
            "linux.resources.memory.kernelTCP",
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        set(
            dir,
            "memory.oom_control",
            "1",
            "linux.resources.memory.disableOOMKiller",
        )?;
    }
    if let Some(s) = m.swappiness() {
        set(
            dir,
            "memory.swappiness",
            &s.to_string(),
            "linux.resources.memory.swappiness",
        )?;
    }
    if let Some(h) = m.use_hierarchy() {
        let want = if h { "1" } else { "0" };
        // Recent kernels are always hierarchical and refuse 0: only write a change.
        if read_value(dir, "memory.use_hierarchy")? != want {
            set(
                dir,
                "memory.use_hierarchy",
                want,
                "linux.resources.memory.useHierarchy",
            )?;
        }
    }
    Ok(())
}

pub(crate) fn cpu_is_set(c: &LinuxCpu) -> bool {
    nz(c.shares()).is_some()
        || nz(c.quota()).is_some()
        || nz(c.period()).is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || nz(c.realtime_runtime()).is_some()
        || nz(c.realtime_period()).is_some()
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = nz(c.shares()) {
        set(
            dir,
            "cpu.shares",
            &shares.to_string(),
            "linux.resources.cpu.shares",
        )?;
        let got = read_u64(dir, "cpu.shares")?;
        if shares > got {
            return Err(CgroupError::SharesRange {
                asked: shares,
                bound: "maximum",
                got,
            });
        }
        if shares < got {
            return Err(CgroupError::SharesRange {
                asked: shares,
                bound: "minimum",
                got,
            });
        }
    }
    let quota = nz(c.quota());
    let mut period_pending = None;
    if let Some(p) = nz(c.period()) {
        // A smaller period can be refused (EINVAL) until the quota is set: retry after it.
        match set(
            dir,
            "cpu.cfs_period_us",
            &p.to_string(),
            "linux.resources.cpu.period",
        ) {
            Err(e) if is_errno(&e, libc::EINVAL) && quota.is_some() => period_pending = Some(p),
            other => other?,
        }
    }
    if let Some(q) = quota {
        set(
            dir,
            "cpu.cfs_quota_us",
            &q.to_string(),
            "linux.resources.cpu.quota",
        )?;
        if let Some(p) = period_pending {
            set(
                dir,
                "cpu.cfs_period_us",
                &p.to_string(),
                "linux.resources.cpu.period",
            )?;
        }
    }
    if let Some(b) = c.burst() {
        set(
            dir,
            "cpu.cfs_burst_us",
            &b.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    if let Some(i) = c.idle() {
        set(dir, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    if let Some(p) = nz(c.realtime_period()) {
        set(
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
            "linux.resources.cpu.realtimePeriod",
        )?;
    }
    if let Some(r) = nz(c.realtime_runtime()) {
        set(
            dir,
            "cpu.rt_runtime_us",
            &r.to_string(),
            "linux.resources.cpu.realtimeRuntime",
        )?;
    }
    Ok(())
}

pub(crate) fn blkio_is_set(b: &LinuxBlockIo) -> bool {
    nz(b.weight()).is_some()
        || nz(b.leaf_weight()).is_some()
        || [
            b.throttle_read_bps_device().as_ref().map(Vec::len),
            b.throttle_write_bps_device().as_ref().map(Vec::len),
            b.throttle_read_iops_device().as_ref().map(Vec::len),
            b.throttle_write_iops_device().as_ref().map(Vec::len),
            b.weight_device().as_ref().map(Vec::len),
        ]
        .iter()
        .any(|n| n.unwrap_or(0) > 0)
}

/// Writes `value` to `file` if the kernel has it; otherwise warns and skips (as on kernels
/// without CFQ/BFQ weights).
fn set_if_exists(
    dir: &Path,
    file: &str,
    value: &str,
    field: &'static str,
) -> Result<(), CgroupError> {
    if !dir.join(file).exists() {
        warn_skip(field, dir, file);
        return Ok(());
    }
    set(dir, file, value, field)
}

fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // CFQ names (blkio.weight) when present, else BFQ's (blkio.bfq.weight).
    let (weight, weight_device) = if dir.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = nz(b.weight()) {
        set_if_exists(
            dir,
            weight,
            &w.to_string(),
            "linux.resources.blockIO.weight",
        )?;
    }
    if let Some(w) = nz(b.leaf_weight()) {
        set_if_exists(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "linux.resources.blockIO.leafWeight",
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(w) = nz(d.weight()) {
            let field = "linux.resources.blockIO.weightDevice";
            set_if_exists(dir, weight_device, &format!("{dev} {w}"), field)?;
        }
        if let Some(w) = nz(d.leaf_weight()) {
            let field = "linux.resources.blockIO.weightDevice.leafWeight";
            set_if_exists(
                dir,
                "blkio.leaf_weight_device",
                &format!("{dev} {w}"),
                field,
            )?;
        }
    }
    for (list, file, field) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "linux.resources.blockIO.throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "linux.resources.blockIO.throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "linux.resources.blockIO.throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "linux.resources.blockIO.throttleWriteIOPSDevice",
        ),
    ] {
        for d in list.iter().flatten() {
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            set_if_exists(dir, file, &line, field)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::v1::HierarchyDir;

    /// A v1 cgroup whose controllers each have a directory under `t`.
    fn fake(t: &Path, controllers: &[&str]) -> V1Cgroup {
        let dirs = controllers
            .iter()
            .map(|c| {
                let path = t.join(c).join("ctr");
                std::fs::create_dir_all(&path).unwrap();
                HierarchyDir {
                    controllers: vec![(*c).to_owned()],
                    mount_point: t.join(c),
                    path,
                }
            })
            .collect();
        V1Cgroup {
            dirs,
            unified: None,
            created: Vec::new(),
        }
    }

    fn read(t: &Path, c: &str, f: &str) -> String {
        read_value(&t.join(c).join("ctr"), f).unwrap()
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn every_v1_file() {
        let t = tempfile::tempdir().unwrap();
        let all = [
            "cpuset", "devices", "memory", "cpu", "pids", "blkio", "hugetlb", "net_cls",
            "net_prio", "rdma",
        ];
        let cg = fake(t.path(), &all);
        // Files that must exist to be written (as the kernel's would).
        let blk = t.path().join("blkio/ctr");
        for f in [
            "blkio.weight",
            "blkio.leaf_weight",
            "blkio.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
        ] {
            std::fs::write(blk.join(f), "").unwrap();
        }
        std::fs::write(
            t.path().join("hugetlb/ctr/hugetlb.2MB.rsvd.limit_in_bytes"),
            "",
        )
        .unwrap();
        let r = res(r#"{
            "memory":{"limit":104857600,"reservation":52428800,"swap":209715200,"kernelTCP":1048576,
                      "swappiness":30,"disableOOMKiller":true},
            "cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,"idle":0,
                   "realtimeRuntime":1000,"realtimePeriod":100000,"cpus":"0","mems":"0"},
            "pids":{"limit":42},
            "blockIO":{"weight":500,"leafWeight":300,"weightDevice":[{"major":8,"minor":0,"weight":400}],
                       "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
                       "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":100}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "network":{"classID":1048577,"priorities":[{"name":"lo","priority":3}]},
            "rdma":{"mlx5_1":{"hcaHandles":3,"hcaObjects":100}}}"#);
        let rules = crate::cgroups::resources::device_rules(&res("{}")).unwrap();
        apply(&cg, &r, Some(&rules)).unwrap();
        let p = t.path();
        assert_eq!(read(p, "memory", "memory.limit_in_bytes"), "104857600");
        assert_eq!(
            read(p, "memory", "memory.memsw.limit_in_bytes"),
            "209715200"
        );
        assert_eq!(read(p, "memory", "memory.soft_limit_in_bytes"), "52428800");
        assert_eq!(
            read(p, "memory", "memory.kmem.tcp.limit_in_bytes"),
            "1048576"
        );
        assert_eq!(read(p, "memory", "memory.swappiness"), "30");
        assert_eq!(read(p, "memory", "memory.oom_control"), "1");
        assert_eq!(read(p, "cpu", "cpu.shares"), "512");
        assert_eq!(read(p, "cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(p, "cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read(p, "cpu", "cpu.cfs_burst_us"), "1000");
        assert_eq!(read(p, "cpu", "cpu.idle"), "0");
        assert_eq!(read(p, "cpu", "cpu.rt_runtime_us"), "1000");
        assert_eq!(read(p, "cpu", "cpu.rt_period_us"), "100000");
        assert_eq!(read(p, "cpuset", "cpuset.cpus"), "0");
        assert_eq!(read(p, "pids", "pids.max"), "42");
        assert_eq!(read(p, "blkio", "blkio.weight"), "500");
        assert_eq!(read(p, "blkio", "blkio.leaf_weight"), "300");
        assert_eq!(read(p, "blkio", "blkio.weight_device"), "8:0 400");
        assert_eq!(
            read(p, "blkio", "blkio.throttle.read_bps_device"),
            "8:0 1048576"
        );
        assert_eq!(
            read(p, "blkio", "blkio.throttle.write_iops_device"),
            "8:0 100"
        );
        assert!(!blk.join("blkio.throttle.write_bps_device").exists());
        assert_eq!(read(p, "hugetlb", "hugetlb.2MB.limit_in_bytes"), "4194304");
        assert_eq!(
            read(p, "hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes"),
            "4194304"
        );
        assert_eq!(read(p, "net_cls", "net_cls.classid"), "1048577");
        assert_eq!(read(p, "net_prio", "net_prio.ifpriomap"), "lo 3");
        assert_eq!(
            read(p, "rdma", "rdma.max"),
            "mlx5_1 hca_handle=3 hca_object=100"
        );
        // The last device rule written wins in a plain file: runc's tun rule.
        assert_eq!(read(p, "devices", "devices.allow"), "c 10:200 rwm");
        assert_eq!(read(p, "devices", "devices.deny"), "a");
    }

    #[test]
    fn memory_swap_order_and_unlimited() {
        let t = tempfile::tempdir().unwrap();
        let cg = fake(t.path(), &["memory", "devices"]);
        let d = t.path().join("memory/ctr");
        std::fs::write(d.join("memory.memsw.limit_in_bytes"), "").unwrap();
        apply(&cg, &res(r#"{"memory":{"limit":-1}}"#), None).unwrap();
        assert_eq!(read_value(&d, "memory.limit_in_bytes").unwrap(), "-1");
        assert_eq!(read_value(&d, "memory.memsw.limit_in_bytes").unwrap(), "-1");
        // 0 means unset: nothing written.
        std::fs::remove_file(d.join("memory.limit_in_bytes")).unwrap();
        apply(&cg, &res(r#"{"memory":{"limit":0}}"#), None).unwrap();
        assert!(!d.join("memory.limit_in_bytes").exists());
    }

    #[test]
    fn missing_controller_is_an_error_and_missing_weight_file_a_skip() {
        let t = tempfile::tempdir().unwrap();
        let cg = fake(t.path(), &["devices", "blkio"]);
        let e = apply(
            &cg,
            &res(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#),
            None,
        );
        assert!(matches!(e, Err(CgroupError::ControllerMissing { .. })));
        apply(&cg, &res(r#"{"blockIO":{"weight":100}}"#), None).unwrap();
        assert!(!t.path().join("blkio/ctr/blkio.weight").exists());
        assert!(!t.path().join("blkio/ctr/blkio.bfq.weight").exists());
    }

    #[test]
    fn check_before_update() {
        let t = tempfile::tempdir().unwrap();
        let cg = fake(t.path(), &["memory", "devices"]);
        std::fs::write(t.path().join("memory/ctr/memory.usage_in_bytes"), "5000\n").unwrap();
        let e = apply(
            &cg,
            &res(r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#),
            None,
        );
        assert!(matches!(
            e,
            Err(CgroupError::BelowUsage { usage: 5000, .. })
        ));
        apply(
            &cg,
            &res(r#"{"memory":{"limit":8192,"checkBeforeUpdate":true}}"#),
            None,
        )
        .unwrap();
    }
}
