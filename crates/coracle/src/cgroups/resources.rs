//! `linux.resources`: the parent-side checks, the device rules, and the merge used by `update`.
//!
//! Numbers follow runc's conversion of the spec into its cgroup config: a value of `0` means
//! "not set" (the cgroup file is left alone) for the memory, cpu, pids, blkio and classID
//! numbers; `-1` means "unlimited" where the kernel has such a value.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};
use serde_json::Value;

use super::CgroupError;

/// `Some(v)` only for a set, non-zero value (runc treats 0 as "not set").
pub(crate) fn nz<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|x| *x != T::default())
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn unsupported(field: &'static str, reason: &'static str) -> CgroupError {
    CgroupError::Unsupported { field, reason }
}

/// One device rule, checked: `kind` is `a`, `b` or `c`; `None` numbers are wildcards; `access`
/// is a non-empty subset of `rwm` in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow or deny.
    pub allow: bool,
    /// `a` (all), `b` (block) or `c` (char).
    pub kind: char,
    /// The major number, `None` for any.
    pub major: Option<u32>,
    /// The minor number, `None` for any.
    pub minor: Option<u32>,
    /// Access bits: 1 mknod, 2 read, 4 write (the BPF_DEVCG_ACC_* values).
    pub access: u8,
}

/// `m` of [`DeviceRule::access`].
pub const ACC_MKNOD: u8 = 1;
/// `r` of [`DeviceRule::access`].
pub const ACC_READ: u8 = 2;
/// `w` of [`DeviceRule::access`].
pub const ACC_WRITE: u8 = 4;
/// `rwm`.
pub const ACC_ALL: u8 = ACC_READ | ACC_WRITE | ACC_MKNOD;

impl DeviceRule {
    /// A rule for `kind major:minor access`.
    pub const fn new(
        allow: bool,
        kind: char,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> Self {
        Self {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    /// Checks one `linux.resources.devices[i]`.
    pub fn from_spec(i: usize, d: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        let field = || format!("linux.resources.devices[{i}]");
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::P) => {
                return Err(invalid(field(), "type p (fifo) has no device cgroup rule"))
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>, CgroupError> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .map(Some)
                    .map_err(|_| invalid(field(), format!("{what} {n} out of range"))),
            }
        };
        let major = num(d.major(), "major")?;
        let minor = num(d.minor(), "minor")?;
        let text = d.access().as_deref().unwrap_or("");
        let mut access = 0u8;
        for c in text.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => return Err(invalid(field(), format!("access {text:?}: only r, w, m"))),
            };
        }
        if access == 0 {
            access = ACC_READ | ACC_WRITE | ACC_MKNOD;
        }
        Ok(Self::new(d.allow(), kind, major, minor, access))
    }

    /// The access letters (`rwm` order).
    pub fn access_str(&self) -> String {
        let mut s = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    /// The v1 `devices.allow`/`devices.deny` line: `a` alone for every device, else
    /// `c 1:3 rwm` (`*` for a wildcard number).
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' && self.major.is_none() && self.minor.is_none() {
            return "a".to_owned();
        }
        let n = |v: Option<u32>| v.map_or("*".to_owned(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access_str()
        )
    }
}

/// The rules runc appends to every container's list (`specconv.AllowedDevices`): mknod of any
/// device, /dev/null, random, full, tty, zero, urandom, the pty slaves, ptmx and tun.
pub const DEFAULT_ALLOWED: &[DeviceRule] = {
    const RWM: u8 = ACC_ALL;
    &[
        DeviceRule::new(true, 'c', None, None, ACC_MKNOD),
        DeviceRule::new(true, 'b', None, None, ACC_MKNOD),
        DeviceRule::new(true, 'c', Some(1), Some(3), RWM),
        DeviceRule::new(true, 'c', Some(1), Some(8), RWM),
        DeviceRule::new(true, 'c', Some(1), Some(7), RWM),
        DeviceRule::new(true, 'c', Some(5), Some(0), RWM),
        DeviceRule::new(true, 'c', Some(1), Some(5), RWM),
        DeviceRule::new(true, 'c', Some(1), Some(9), RWM),
        DeviceRule::new(true, 'c', Some(136), None, RWM),
        DeviceRule::new(true, 'c', Some(5), Some(2), RWM),
        DeviceRule::new(true, 'c', Some(10), Some(200), RWM),
    ]
};

/// The device rules to apply, in order, as runc: deny every device, then the spec's rules,
/// then runc's defaults ([`DEFAULT_ALLOWED`]). As in runc, the nodes of `linux.devices` get no
/// rule of their own: a config lists them in `linux.resources.devices` to allow them.
pub fn device_rules(res: &LinuxResources) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut rules = vec![DeviceRule::new(false, 'a', None, None, ACC_ALL)];
    for (i, d) in res.devices().iter().flatten().enumerate() {
        rules.push(DeviceRule::from_spec(i, d)?);
    }
    rules.extend_from_slice(DEFAULT_ALLOWED);
    Ok(rules)
}

/// Whether `s` is a cpu or memory-node list (`0-3,5`).
fn is_cpu_list(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let ok = |x: Option<&str>| {
                x.is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            };
            match (it.next(), it.next()) {
                (a, None) => ok(a),
                (a, b) => ok(a) && ok(b),
            }
        })
}

/// Whether `s` is a huge page size as the kernel names them (`2MB`, `1GB`, `64KB`).
pub(crate) fn is_page_size(s: &str) -> bool {
    let Some(num) = s
        .strip_suffix("KB")
        .or_else(|| s.strip_suffix("MB"))
        .or_else(|| s.strip_suffix("GB"))
    else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `k` is a file name a `unified` key may name: `controller.param`, no slash, and none
/// of the `cgroup.*` files that manage membership or the tree.
fn check_unified_key(k: &str) -> Result<(), CgroupError> {
    let field = || format!("linux.resources.unified[{k:?}]");
    if k.contains('/') || k.contains('\0') || k.starts_with('.') {
        return Err(invalid(field(), "must be a file name (no slashes)"));
    }
    let Some((ctrl, param)) = k.split_once('.') else {
        return Err(invalid(field(), "must be in the form CONTROLLER.PARAMETER"));
    };
    if ctrl.is_empty() || param.is_empty() {
        return Err(invalid(field(), "must be in the form CONTROLLER.PARAMETER"));
    }
    const ALLOWED_CGROUP: &[&str] = &["cgroup.max.depth", "cgroup.max.descendants"];
    if ctrl == "cgroup" && !ALLOWED_CGROUP.contains(&k) {
        return Err(invalid(
            field(),
            "this cgroup core file is managed by the runtime",
        ));
    }
    Ok(())
}

fn check_limit(field: &'static str, v: Option<i64>) -> Result<(), CgroupError> {
    match v {
        Some(n) if n < -1 => Err(invalid(
            field,
            format!("{n}: must be -1 (unlimited), 0 (unset) or positive"),
        )),
        _ => Ok(()),
    }
}

/// Checks `linux.resources` for a v1 (`v2 == false`) or v2 host: values in range, names well
/// formed, and nothing the cgroup version cannot do. No side effects.
pub fn validate(res: &LinuxResources, v2: bool) -> Result<(), CgroupError> {
    if let Some(m) = res.memory() {
        check_limit("linux.resources.memory.limit", m.limit())?;
        check_limit("linux.resources.memory.reservation", m.reservation())?;
        check_limit("linux.resources.memory.swap", m.swap())?;
        check_limit("linux.resources.memory.kernelTCP", m.kernel_tcp())?;
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(invalid(
                    "linux.resources.memory.swappiness",
                    format!("{s}: valid range is 0-100"),
                ));
            }
        }
        if let (Some(l), Some(s)) = (nz(m.limit()), nz(m.swap())) {
            if l > 0 && s > 0 && s < l {
                return Err(invalid(
                    "linux.resources.memory.swap",
                    format!("memory+swap limit {s} should be >= memory limit {l}"),
                ));
            }
        }
        if v2 {
            if let Some(s) = nz(m.swap()) {
                if s > 0 && nz(m.limit()).is_none_or(|l| l <= 0) {
                    return Err(invalid(
                        "linux.resources.memory.swap",
                        "unable to set swap limit without memory limit",
                    ));
                }
            }
            if nz(m.kernel_tcp()).is_some() {
                return Err(unsupported(
                    "linux.resources.memory.kernelTCP",
                    "cgroup v2 has no tcp memory limit",
                ));
            }
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(q) = c.quota() {
            if q < -1 {
                return Err(invalid(
                    "linux.resources.cpu.quota",
                    format!("{q}: must be -1 or positive"),
                ));
            }
        }
        if let Some(i) = c.idle() {
            if !(0..=1).contains(&i) {
                return Err(invalid(
                    "linux.resources.cpu.idle",
                    format!("{i}: must be 0 or 1"),
                ));
            }
        }
        for (field, v) in [
            ("linux.resources.cpu.cpus", c.cpus()),
            ("linux.resources.cpu.mems", c.mems()),
        ] {
            if let Some(s) = v.as_deref().filter(|s| !s.is_empty()) {
                if !is_cpu_list(s) {
                    return Err(invalid(field, format!("{s:?} is not a list like 0-3,5")));
                }
            }
        }
        if v2 && (nz(c.realtime_runtime()).is_some() || nz(c.realtime_period()).is_some()) {
            return Err(unsupported(
                "linux.resources.cpu.realtimeRuntime/realtimePeriod",
                "cgroup v2 cannot limit realtime tasks",
            ));
        }
    }
    if let Some(b) = res.block_io() {
        let weight_ok = |v: Option<u16>| v.is_none_or(|w| w == 0 || (10..=1000).contains(&w));
        if !weight_ok(b.weight()) || !weight_ok(b.leaf_weight()) {
            return Err(invalid(
                "linux.resources.blockIO.weight",
                "valid range is 10-1000",
            ));
        }
        for d in b.weight_device().iter().flatten() {
            if !weight_ok(d.weight()) || !weight_ok(d.leaf_weight()) {
                return Err(invalid(
                    "linux.resources.blockIO.weightDevice",
                    "valid range is 10-1000",
                ));
            }
            if d.major() < 0 || d.minor() < 0 {
                return Err(invalid(
                    "linux.resources.blockIO.weightDevice",
                    "negative device number",
                ));
            }
        }
        for list in [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ] {
            if list
                .iter()
                .flatten()
                .any(|d| d.major() < 0 || d.minor() < 0)
            {
                return Err(invalid(
                    "linux.resources.blockIO.throttle*",
                    "negative device number",
                ));
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        if !is_page_size(h.page_size()) {
            return Err(invalid(
                "linux.resources.hugepageLimits.pageSize",
                format!("{:?}: expected a size like 2MB or 1GB", h.page_size()),
            ));
        }
    }
    if let Some(n) = res.network() {
        if v2
            && (nz(n.class_id()).is_some()
                || n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
        {
            return Err(unsupported(
                "linux.resources.network",
                "cgroup v2 has no net_cls/net_prio controllers",
            ));
        }
        for p in n.priorities().iter().flatten() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(invalid(
                    "linux.resources.network.priorities.name",
                    format!("{:?}", p.name()),
                ));
            }
        }
    }
    for name in res.rdma().iter().flat_map(HashMap::keys) {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(invalid(
                "linux.resources.rdma",
                format!("device name {name:?}"),
            ));
        }
    }
    if let Some(u) = res.unified() {
        if !u.is_empty() && !v2 {
            return Err(unsupported(
                "linux.resources.unified",
                "cannot use unified on cgroup v1",
            ));
        }
        for (k, v) in u {
            check_unified_key(k)?;
            if v.contains('\0') {
                return Err(invalid(
                    format!("linux.resources.unified[{k:?}]"),
                    "NUL in value",
                ));
            }
        }
    }
    device_rules(res)?;
    Ok(())
}

/// Deep-merges JSON objects: keys of `patch` replace those of `base` (objects recursively,
/// anything else as a whole); `null` in the patch leaves the base value.
fn merge_json(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    continue;
                }
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge_json(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

/// `base` with every field set in `patch` replacing it (what `update` stores: the resources
/// the container now has).
pub fn merge(base: &LinuxResources, patch: &LinuxResources) -> Result<LinuxResources, CgroupError> {
    let json = |e: serde_json::Error| CgroupError::Json {
        op: "merge resources",
        source: e,
    };
    let mut b = serde_json::to_value(base).map_err(json)?;
    let p = serde_json::to_value(patch).map_err(json)?;
    merge_json(&mut b, p);
    serde_json::from_value(b).map_err(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn device_rules_and_lines() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
            {"allow":true,"type":"b","major":8,"access":"m"}]}"#);
        let rules = device_rules(&r).unwrap();
        assert_eq!(rules.len(), 4 + DEFAULT_ALLOWED.len());
        assert_eq!(rules[0].v1_line(), "a");
        assert!(!rules[0].allow && !rules[1].allow);
        assert_eq!(rules[2].v1_line(), "c 1:3 rw");
        assert_eq!(rules[3].v1_line(), "b 8:* m");
        assert_eq!(rules[4].v1_line(), "c *:* m");
        assert_eq!(rules[12].v1_line(), "c 136:* rwm");
        assert_eq!(
            device_rules(&res("{}")).unwrap().len(),
            1 + DEFAULT_ALLOWED.len()
        );
        let bad = res(r#"{"devices":[{"allow":true,"type":"c","access":"rwx"}]}"#);
        assert!(matches!(
            validate(&bad, false),
            Err(CgroupError::Invalid { .. })
        ));
        let fifo = res(r#"{"devices":[{"allow":true,"type":"p"}]}"#);
        assert!(validate(&fifo, true).is_err());
    }

    #[test]
    fn validation() {
        let ok = res(
            r#"{"memory":{"limit":1048576,"swap":2097152,"swappiness":10},
            "cpu":{"shares":512,"quota":-1,"cpus":"0-1,3","mems":"0"},
            "pids":{"limit":10},"hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#,
        );
        validate(&ok, false).unwrap();
        validate(&ok, true).unwrap();
        for (bad, v2) in [
            (r#"{"memory":{"swappiness":101}}"#, false),
            (r#"{"memory":{"limit":-2}}"#, false),
            (r#"{"memory":{"limit":2000000,"swap":1000000}}"#, false),
            (r#"{"memory":{"swap":1000000}}"#, true),
            (r#"{"memory":{"kernelTCP":1000000}}"#, true),
            (r#"{"cpu":{"cpus":"0-a"}}"#, false),
            (r#"{"cpu":{"idle":2}}"#, false),
            (r#"{"cpu":{"realtimeRuntime":1000}}"#, true),
            (r#"{"blockIO":{"weight":5}}"#, false),
            (r#"{"hugepageLimits":[{"pageSize":"2M","limit":1}]}"#, false),
            (r#"{"network":{"classID":5}}"#, true),
            (r#"{"unified":{"memory.max":"1"}}"#, false),
            (r#"{"unified":{"../memory.max":"1"}}"#, true),
            (r#"{"unified":{"memorymax":"1"}}"#, true),
            (r#"{"unified":{"cgroup.procs":"1"}}"#, true),
        ] {
            assert!(validate(&res(bad), v2).is_err(), "{bad} v2={v2} accepted");
        }
        validate(
            &res(r#"{"unified":{"memory.max":"1","cgroup.max.depth":"3"}}"#),
            true,
        )
        .unwrap();
        validate(&res(r#"{"cpu":{"realtimeRuntime":0}}"#), true).unwrap();
    }

    #[test]
    fn merge_overrides_set_fields_only() {
        let base = res(r#"{"memory":{"limit":100,"swap":200},"cpu":{"shares":10},
            "devices":[{"allow":false,"access":"rwm"}]}"#);
        let patch = res(r#"{"memory":{"limit":150},"pids":{"limit":5}}"#);
        let m = merge(&base, &patch).unwrap();
        let mem = m.memory().unwrap();
        assert_eq!(mem.limit(), Some(150));
        assert_eq!(mem.swap(), Some(200));
        assert_eq!(m.cpu().as_ref().unwrap().shares(), Some(10));
        assert_eq!(m.pids().unwrap().limit(), 5);
        assert_eq!(m.devices().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn lists_and_page_sizes() {
        assert!(is_cpu_list("0"));
        assert!(is_cpu_list("0-3,7,9-10"));
        assert!(!is_cpu_list("0-"));
        assert!(!is_cpu_list(""));
        assert!(is_page_size("2MB") && is_page_size("1GB") && is_page_size("64KB"));
        assert!(!is_page_size("MB") && !is_page_size("2mb"));
    }
}
