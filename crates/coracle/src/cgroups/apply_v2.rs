//! Applying `linux.resources` on a v2 (unified) host, as runc 1.1's fs2 driver (plus runc
//! 1.2's burst, idle, hugetlb rsvd and checkBeforeUpdate): pids, memory, io, cpu, cpuset,
//! hugetlb, rdma, devices (an eBPF program), then the `unified` map, which may override any of
//! them. Functions over the cgroup directory, tested on temp dirs.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::apply_v1::{blkio_is_set, check_usage, cpu_is_set, pids_value, rdma_lines};
use super::fsops::{is_errno, read_value, set, warn_skip};
use super::resources::{nz, DeviceRule};
use super::CgroupError;

/// runc 1.1's conversion of v1 cpu shares (2..262144) to a v2 cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// runc's conversion of a v1 blkio weight (10..1000) to a v2 io.weight (1..10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// `memory.swap.max` from the v1-style memory+swap value, as runc's
/// `ConvertMemorySwapToCgroupV2Value`: `None` leaves the file alone.
pub fn swap_value(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>, CgroupError> {
    let invalid = |reason: String| CgroupError::Invalid {
        field: "linux.resources.memory.swap".to_owned(),
        reason,
    };
    match (swap, limit) {
        (None, Some(-1)) | (Some(-1), _) => Ok(Some("max".to_owned())),
        (None, _) => Ok(None),
        (Some(s), Some(l)) if l > 0 => {
            if s < l {
                return Err(invalid(format!(
                    "memory+swap limit {s} should be >= memory limit {l}"
                )));
            }
            Ok(Some((s - l).to_string()))
        }
        (Some(_), _) => Err(invalid(
            "unable to set swap limit without memory limit".to_owned(),
        )),
    }
}

fn max_or(v: i64) -> String {
    if v == -1 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// How the device rules are installed (the eBPF attach, or a test's stand-in).
pub type AttachFn<'a> = dyn Fn(&Path, &[DeviceRule]) -> Result<(), CgroupError> + 'a;

/// Applies every set field of `res` to the cgroup `dir`; `devices`, when given, is passed to
/// `attach_devices` (the eBPF attach, injected so tests can observe it).
pub fn apply(
    dir: &Path,
    res: &LinuxResources,
    devices: Option<&[DeviceRule]>,
    attach_devices: &AttachFn<'_>,
) -> Result<(), CgroupError> {
    apply_all(dir, res, devices, attach_devices).map_err(|e| explain_missing(dir, e))
}

/// A write that failed because the file does not exist is, on v2, a controller not enabled
/// for the cgroup: say which.
fn explain_missing(dir: &Path, e: CgroupError) -> CgroupError {
    let CgroupError::Write { field, path, .. } = &e else {
        return e;
    };
    if !is_errno(&e, libc::ENOENT) {
        return e;
    }
    let Some(controller) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .map(str::to_owned)
    else {
        return e;
    };
    let enabled = read_value(dir, "cgroup.controllers").unwrap_or_default();
    if controller == "cgroup" || enabled.split_whitespace().any(|c| c == controller) {
        return e;
    }
    CgroupError::ControllerMissing {
        field: (*field).to_owned(),
        controller,
    }
}

fn apply_all(
    dir: &Path,
    res: &LinuxResources,
    devices: Option<&[DeviceRule]>,
    attach_devices: &AttachFn<'_>,
) -> Result<(), CgroupError> {
    if let Some(limit) = res.pids().map(|p| p.limit()).filter(|l| *l != 0) {
        set(
            dir,
            "pids.max",
            &pids_value(limit),
            "linux.resources.pids.limit",
        )?;
    }
    if let Some(m) = res.memory() {
        memory(dir, m)?;
    }
    if let Some(b) = res.block_io() {
        if blkio_is_set(b) {
            io(dir, b)?;
        }
    }
    if let Some(c) = res.cpu() {
        if cpu_is_set(c) {
            cpu(dir, c)?;
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            set(dir, "cpuset.cpus", cpus, "linux.resources.cpu.cpus")?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            set(dir, "cpuset.mems", mems, "linux.resources.cpu.mems")?;
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        let limit = h.limit().to_string();
        let field = "linux.resources.hugepageLimits";
        set(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &limit,
            field,
        )?;
        let rsvd = format!("hugetlb.{}.rsvd.max", h.page_size());
        if dir.join(&rsvd).exists() {
            set(dir, &rsvd, &limit, field)?;
        }
    }
    if let Some(map) = res.rdma() {
        for line in rdma_lines(map) {
            set(dir, "rdma.max", &line, "linux.resources.rdma")?;
        }
    }
    if let Some(rules) = devices {
        attach_devices(dir, rules)?;
    }
    if let Some(map) = res.unified() {
        unified(dir, map)?;
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = nz(m.limit());
    if m.check_before_update() == Some(true) {
        check_usage(dir, "memory.current", limit)?;
    }
    if let Some(swap) = swap_value(nz(m.swap()), limit)? {
        match set(dir, "memory.swap.max", &swap, "linux.resources.memory.swap") {
            // Without swap accounting, "unlimited" and "none" are what the kernel does anyway.
            Err(e) if is_errno(&e, libc::ENOENT) && (swap == "max" || swap == "0") => {}
            other => other?,
        }
    }
    if let Some(l) = limit {
        set(
            dir,
            "memory.max",
            &max_or(l),
            "linux.resources.memory.limit",
        )?;
    }
    if let Some(r) = nz(m.reservation()) {
        set(
            dir,
            "memory.low",
            &max_or(r),
            "linux.resources.memory.reservation",
        )?;
    }
    // v2 has no per-cgroup swappiness, no OOM-killer switch, and is always hierarchical.
    if m.swappiness().is_some() {
        warn_skip(
            "linux.resources.memory.swappiness",
            dir,
            "memory.swappiness",
        );
    }
    if m.disable_oom_killer() == Some(true) {
        warn_skip(
            "linux.resources.memory.disableOOMKiller",
            dir,
            "memory.oom_control",
        );
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = nz(c.shares()) {
        set(
            dir,
            "cpu.weight",
            &shares_to_weight(shares).to_string(),
            "linux.resources.cpu.shares",
        )?;
    }
    if let Some(i) = c.idle() {
        set(dir, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    // A burst above the current quota is refused (EINVAL) until cpu.max is set: retry after.
    let mut burst_pending = None;
    if let Some(b) = c.burst() {
        match set(
            dir,
            "cpu.max.burst",
            &b.to_string(),
            "linux.resources.cpu.burst",
        ) {
            Err(e) if is_errno(&e, libc::EINVAL) => burst_pending = Some(b),
            other => other?,
        }
    }
    let quota = nz(c.quota());
    let period = nz(c.period());
    if quota.is_some() || period.is_some() {
        let mut value = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_owned(),
        };
        if let Some(p) = period {
            value.push_str(&format!(" {p}"));
        }
        set(dir, "cpu.max", &value, "linux.resources.cpu.quota/period")?;
        if let Some(b) = burst_pending {
            set(
                dir,
                "cpu.max.burst",
                &b.to_string(),
                "linux.resources.cpu.burst",
            )?;
        }
    } else if let Some(b) = burst_pending {
        set(
            dir,
            "cpu.max.burst",
            &b.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = nz(b.weight()) {
        if bfq {
            set(
                dir,
                "io.bfq.weight",
                &w.to_string(),
                "linux.resources.blockIO.weight",
            )?;
        } else if dir.join("io.weight").exists() {
            let v = blkio_to_io_weight(w).to_string();
            set(dir, "io.weight", &v, "linux.resources.blockIO.weight")?;
        } else {
            warn_skip("linux.resources.blockIO.weight", dir, "io.weight");
        }
    }
    if nz(b.leaf_weight()).is_some() {
        warn_skip("linux.resources.blockIO.leafWeight", dir, "io.leaf_weight");
    }
    for d in b.weight_device().iter().flatten() {
        let Some(w) = nz(d.weight()) else { continue };
        let field = "linux.resources.blockIO.weightDevice";
        if bfq {
            set(
                dir,
                "io.bfq.weight",
                &format!("{}:{} {w}", d.major(), d.minor()),
                field,
            )?;
        } else if dir.join("io.weight").exists() {
            let v = blkio_to_io_weight(w);
            set(
                dir,
                "io.weight",
                &format!("{}:{} {v}", d.major(), d.minor()),
                field,
            )?;
        } else {
            warn_skip(field, dir, "io.weight");
        }
    }
    for (list, key, field) in [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "linux.resources.blockIO.throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "linux.resources.blockIO.throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "linux.resources.blockIO.throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "linux.resources.blockIO.throttleWriteIOPSDevice",
        ),
    ] {
        for d in list.iter().flatten() {
            let line = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            set(dir, "io.max", &line, field)?;
        }
    }
    Ok(())
}

/// The `unified` map, in key order; a file the kernel does not have is reported with the
/// controller it needs when that controller is not enabled for the cgroup.
fn unified(dir: &Path, map: &std::collections::HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for k in keys {
        let Some(v) = map.get(k) else { continue };
        // Multi-line values are written line by line, as runc's WriteFileByLine.
        for line in v
            .lines()
            .filter(|l| !l.is_empty())
            .chain(v.is_empty().then_some(""))
        {
            if let Err(e) = set(dir, k, line, "linux.resources.unified") {
                let missing = is_errno(&e, libc::ENOENT) || is_errno(&e, libc::EPERM);
                let ctrl = k.split('.').next().unwrap_or_default();
                let enabled = read_value(dir, "cgroup.controllers")?;
                if missing && ctrl != "cgroup" && !enabled.split_whitespace().any(|c| c == ctrl) {
                    return Err(CgroupError::ControllerMissing {
                        field: format!("linux.resources.unified[{k:?}]"),
                        controller: ctrl.to_owned(),
                    });
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn no_devices(_: &Path, _: &[DeviceRule]) -> Result<(), CgroupError> {
        Ok(())
    }

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(swap_value(None, None).unwrap(), None);
        assert_eq!(swap_value(None, Some(-1)).unwrap().as_deref(), Some("max"));
        assert_eq!(
            swap_value(Some(-1), Some(100)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(
            swap_value(Some(300), Some(100)).unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(
            swap_value(Some(100), Some(100)).unwrap().as_deref(),
            Some("0")
        );
        assert!(swap_value(Some(50), Some(100)).is_err());
        assert!(swap_value(Some(50), None).is_err());
    }

    #[test]
    fn every_v2_file() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for f in ["io.weight", "hugetlb.2MB.rsvd.max"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let r = res(r#"{
            "memory":{"limit":104857600,"reservation":52428800,"swap":209715200},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"idle":1,"cpus":"0-1","mems":"0"},
            "pids":{"limit":-1},
            "blockIO":{"weight":500,"throttleWriteBpsDevice":[{"major":8,"minor":16,"rate":1024}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "rdma":{"mlx5_1":{"hcaHandles":3}},
            "unified":{"memory.high":"90000000","cgroup.max.depth":"5"}}"#);
        let seen = RefCell::new(0);
        let rules = crate::cgroups::resources::device_rules(&res("{}")).unwrap();
        apply(d, &r, Some(&rules), &|dir, rules| {
            assert_eq!(dir, d);
            *seen.borrow_mut() = rules.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(*seen.borrow(), rules.len());
        let rd = |f: &str| read_value(d, f).unwrap();
        assert_eq!(rd("memory.max"), "104857600");
        assert_eq!(rd("memory.swap.max"), "104857600");
        assert_eq!(rd("memory.low"), "52428800");
        assert_eq!(rd("cpu.weight"), "39");
        assert_eq!(rd("cpu.max"), "50000 100000");
        assert_eq!(rd("cpu.max.burst"), "1000");
        assert_eq!(rd("cpu.idle"), "1");
        assert_eq!(rd("cpuset.cpus"), "0-1");
        assert_eq!(rd("cpuset.mems"), "0");
        assert_eq!(rd("pids.max"), "max");
        assert_eq!(rd("io.weight"), "4950");
        assert_eq!(rd("io.max"), "8:16 wbps=1024");
        assert_eq!(rd("hugetlb.2MB.max"), "4194304");
        assert_eq!(rd("hugetlb.2MB.rsvd.max"), "4194304");
        assert_eq!(rd("rdma.max"), "mlx5_1 hca_handle=3");
        assert_eq!(rd("memory.high"), "90000000");
        assert_eq!(rd("cgroup.max.depth"), "5");
    }

    #[test]
    fn quota_alone_and_unlimited() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        apply(d, &res(r#"{"cpu":{"quota":-1}}"#), None, &no_devices).unwrap();
        assert_eq!(read_value(d, "cpu.max").unwrap(), "max");
        apply(d, &res(r#"{"cpu":{"period":50000}}"#), None, &no_devices).unwrap();
        assert_eq!(read_value(d, "cpu.max").unwrap(), "max 50000");
        apply(d, &res(r#"{"memory":{"limit":-1}}"#), None, &no_devices).unwrap();
        assert_eq!(read_value(d, "memory.max").unwrap(), "max");
        assert_eq!(read_value(d, "memory.swap.max").unwrap(), "max");
    }

    #[test]
    fn a_missing_controller_is_named() {
        let e = CgroupError::Write {
            field: "linux.resources.hugepageLimits",
            path: Path::new("/x/hugetlb.2MB.max").to_path_buf(),
            value: "1".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let e = explain_missing(t.path(), e);
        assert!(
            matches!(&e, CgroupError::ControllerMissing { controller, .. } if controller == "hugetlb"),
            "{e}"
        );
    }
}
