//! Docker's seccomp profile format converted to the OCI `linux.seccomp` section, as dockerd does
//! it (`setupSeccomp` in moby's `profiles/seccomp`) before handing a config to the runtime.
//!
//! A Docker profile adds to the OCI form: `archMap` (the architectures to list, chosen by the
//! host's), and per rule `name` (one syscall), `comment`, and `includes`/`excludes` filters on
//! the architecture (dockerd's names: `amd64`, `arm64`, `s390x`, ...), the container's
//! capabilities (its bounding set) and the running kernel's version (`minKernel`, `"4.8"`).
//!
//! The conversion, for one architecture, a capability set and a kernel version:
//! - `architectures` is copied, or else `archMap`'s entry for the architecture gives it and its
//!   `subArchitectures` (both at once is an error; no entry: no architectures listed);
//! - a rule is dropped when `excludes.arches` has the architecture, `excludes.caps` has any of
//!   the capabilities, the kernel is at least `excludes.minKernel`; or when `includes.arches` is
//!   non-empty without the architecture, `includes.caps` has one the set lacks, or the kernel is
//!   older than `includes.minKernel`;
//! - a kept rule becomes `{names, action, errnoRet?, args?}` (`name` turned into `names`);
//! - `defaultAction`, `defaultErrnoRet`, `listenerPath`, `listenerMetadata` and `flags` are copied.
//!
//! Only the shape of the Docker-specific parts is checked here; the values (action, operator and
//! architecture names) are checked when the result is parsed as [`oci_spec::runtime::LinuxSeccomp`]
//! and compiled by [`super::Program::from_spec`].

use serde_json::{Map, Value};

/// dockerd's default capability set (`oci.DefaultCapabilities()`): the bounding set a container
/// gets without `--cap-add`/`--cap-drop`, so the one its default profile is resolved against.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What is wrong with a Docker profile, or with reading the kernel version.
#[derive(Debug, thiserror::Error)]
pub enum DockerProfileError {
    /// A field whose JSON type is not the one the format has.
    #[error("{field}: expected {expected}, found {found}")]
    Type {
        /// The field, e.g. `syscalls[3].includes.caps[0]`.
        field: String,
        /// What the format has there.
        expected: &'static str,
        /// The JSON type given.
        found: &'static str,
    },
    /// A required field that is missing (or null).
    #[error("{field}: missing")]
    Missing {
        /// The field, e.g. `syscalls[3].action`.
        field: String,
    },
    /// A `minKernel` that is not `major.minor`.
    #[error("{field}: {value:?} is not a kernel version (major.minor)")]
    MinKernel {
        /// The field, e.g. `syscalls[20].includes.minKernel`.
        field: String,
        /// The value given.
        value: String,
    },
    /// Both `architectures` and `archMap` (dockerd refuses it too).
    #[error("architectures, archMap: a profile gives one or the other, not both")]
    ArchitecturesAndArchMap,
    /// A rule with both `name` and `names` (dockerd refuses it too).
    #[error("{field}: a rule gives name or names, not both")]
    NameAndNames {
        /// The rule, e.g. `syscalls[3]`.
        field: String,
    },
    /// `uname(2)` failed.
    #[error("uname: reading the running kernel's version")]
    Uname(#[source] nix::Error),
    /// The kernel release `uname(2)` gave does not start with `major.minor`.
    #[error("uname: kernel release {release:?} does not start with major.minor")]
    KernelRelease {
        /// The release string.
        release: String,
    },
}

/// An architecture as dockerd names it: its own name (matched against `includes.arches` and
/// `excludes.arches`) and its `SCMP_ARCH_*` name (looked up in `archMap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerArch {
    /// dockerd's name (`amd64`, `arm64`, ...).
    pub native: &'static str,
    /// The libseccomp name (`SCMP_ARCH_X86_64`, ...).
    pub seccomp: &'static str,
}

impl DockerArch {
    /// x86_64.
    pub const AMD64: DockerArch = DockerArch {
        native: "amd64",
        seccomp: "SCMP_ARCH_X86_64",
    };
    /// aarch64.
    pub const ARM64: DockerArch = DockerArch {
        native: "arm64",
        seccomp: "SCMP_ARCH_AARCH64",
    };

    /// The architecture coracle is built for, if it is one of the above.
    pub fn host() -> Option<DockerArch> {
        if cfg!(target_arch = "x86_64") {
            Some(Self::AMD64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Self::ARM64)
        } else {
            None
        }
    }
}

/// A kernel version as `minKernel` compares it: major and minor only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// The major number (6 in 6.18.0).
    pub major: u32,
    /// The minor number (18 in 6.18.0).
    pub minor: u32,
}

impl KernelVersion {
    /// Parses the `major.minor` at the start of `s` (`"4.8"`, `"6.18.0-amd64"`); what follows
    /// the minor number is ignored, as dockerd's `%d.%d` scan does.
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let (major, rest) = s.split_once('.')?;
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        Some(KernelVersion {
            major: major.parse().ok()?,
            minor: rest[..end].parse().ok()?,
        })
    }

    /// The running kernel's version (`uname -r`).
    pub fn running() -> Result<KernelVersion, DockerProfileError> {
        let uts = nix::sys::utsname::uname().map_err(DockerProfileError::Uname)?;
        let release = uts.release().to_string_lossy();
        Self::parse(&release).ok_or_else(|| DockerProfileError::KernelRelease {
            release: release.into_owned(),
        })
    }
}

/// Converts a Docker seccomp profile (`profile`, parsed JSON) to the OCI `linux.seccomp`
/// section (JSON) for a container on `arch` with the bounding set `caps`, on a kernel of version
/// `kernel` (see the module documentation for the rules). Errors name the malformed field.
pub fn to_oci(
    profile: &Value,
    arch: DockerArch,
    caps: &[&str],
    kernel: KernelVersion,
) -> Result<Value, DockerProfileError> {
    let top = object(profile, "the profile")?;
    let mut oci = Map::new();
    let action = top
        .get("defaultAction")
        .filter(|v| !v.is_null())
        .ok_or_else(|| DockerProfileError::Missing {
            field: "defaultAction".into(),
        })?;
    oci.insert(
        "defaultAction".into(),
        string(action, "defaultAction")?.into(),
    );
    let architectures = architectures(top, arch)?;
    oci.insert("architectures".into(), architectures.into());
    if let Some(e) = present(top, "defaultErrnoRet") {
        oci.insert("defaultErrnoRet".into(), number(e, "defaultErrnoRet")?);
    }
    for key in ["listenerPath", "listenerMetadata"] {
        if let Some(v) = present(top, key) {
            oci.insert(key.into(), string(v, key)?.into());
        }
    }
    if let Some(v) = present(top, "flags") {
        oci.insert("flags".into(), strings(Some(v), "flags")?.into());
    }
    let mut syscalls = Vec::new();
    if let Some(rules) = present(top, "syscalls") {
        let rules = rules
            .as_array()
            .ok_or_else(|| wrong(rules, "syscalls", "an array"))?;
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("syscalls[{i}]");
            let rule = object(rule, &field)?;
            if keep(rule, &field, arch, caps, kernel)? {
                syscalls.push(convert_rule(rule, &field)?);
            }
        }
    }
    oci.insert("syscalls".into(), syscalls.into());
    Ok(Value::Object(oci))
}

/// `architectures` as given, or from `archMap`'s entry for `arch`.
fn architectures(
    top: &Map<String, Value>,
    arch: DockerArch,
) -> Result<Vec<&str>, DockerProfileError> {
    let given = strings(present(top, "architectures"), "architectures")?;
    let Some(map) = present(top, "archMap") else {
        return Ok(given);
    };
    let map = map
        .as_array()
        .ok_or_else(|| wrong(map, "archMap", "an array"))?;
    if map.is_empty() {
        return Ok(given);
    }
    if !given.is_empty() {
        return Err(DockerProfileError::ArchitecturesAndArchMap);
    }
    for (i, entry) in map.iter().enumerate() {
        let field = format!("archMap[{i}]");
        let entry = object(entry, &field)?;
        let name_field = format!("{field}.architecture");
        let name = entry
            .get("architecture")
            .ok_or_else(|| DockerProfileError::Missing {
                field: name_field.clone(),
            })?;
        let name = string(name, &name_field)?;
        let subs = strings(
            entry.get("subArchitectures"),
            &format!("{field}.subArchitectures"),
        )?;
        if name == arch.seccomp {
            return Ok(std::iter::once(name).chain(subs).collect());
        }
    }
    Ok(Vec::new())
}

/// Whether dockerd keeps the rule (its `includes` and `excludes`).
fn keep(
    rule: &Map<String, Value>,
    field: &str,
    arch: DockerArch,
    caps: &[&str],
    kernel: KernelVersion,
) -> Result<bool, DockerProfileError> {
    let filter = |key: &str| -> Result<Option<Filter<'_>>, DockerProfileError> {
        present(rule, key)
            .map(|v| Filter::read(v, &format!("{field}.{key}")))
            .transpose()
    };
    if let Some(ex) = filter("excludes")? {
        if ex.arches.contains(&arch.native)
            || ex.caps.iter().any(|c| caps.contains(c))
            || ex.min_kernel.is_some_and(|k| kernel >= k)
        {
            return Ok(false);
        }
    }
    if let Some(inc) = filter("includes")? {
        if (!inc.arches.is_empty() && !inc.arches.contains(&arch.native))
            || inc.caps.iter().any(|c| !caps.contains(c))
            || inc.min_kernel.is_some_and(|k| kernel < k)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A rule's `includes` or `excludes`.
struct Filter<'a> {
    arches: Vec<&'a str>,
    caps: Vec<&'a str>,
    min_kernel: Option<KernelVersion>,
}

impl<'a> Filter<'a> {
    fn read(v: &'a Value, field: &str) -> Result<Filter<'a>, DockerProfileError> {
        let o = object(v, field)?;
        let min_kernel = match present(o, "minKernel") {
            None => None,
            Some(k) => {
                let field = format!("{field}.minKernel");
                let s = string(k, &field)?;
                Some(
                    KernelVersion::parse(s).ok_or_else(|| DockerProfileError::MinKernel {
                        field,
                        value: s.to_string(),
                    })?,
                )
            }
        };
        Ok(Filter {
            arches: strings(o.get("arches"), &format!("{field}.arches"))?,
            caps: strings(o.get("caps"), &format!("{field}.caps"))?,
            min_kernel,
        })
    }
}

/// A kept rule in the OCI form.
fn convert_rule(rule: &Map<String, Value>, field: &str) -> Result<Value, DockerProfileError> {
    let names = strings(present(rule, "names"), &format!("{field}.names"))?;
    let names = match present(rule, "name") {
        Some(n) => {
            let n = string(n, &format!("{field}.name"))?;
            if n.is_empty() {
                names
            } else if names.is_empty() {
                vec![n]
            } else {
                return Err(DockerProfileError::NameAndNames {
                    field: field.to_string(),
                });
            }
        }
        None => names,
    };
    let action_field = format!("{field}.action");
    let action = present(rule, "action").ok_or_else(|| DockerProfileError::Missing {
        field: action_field.clone(),
    })?;
    let mut out = Map::new();
    out.insert("names".into(), names.into());
    out.insert("action".into(), string(action, &action_field)?.into());
    if let Some(e) = present(rule, "errnoRet") {
        out.insert("errnoRet".into(), number(e, &format!("{field}.errnoRet"))?);
    }
    if let Some(args) = present(rule, "args") {
        let list = args
            .as_array()
            .ok_or_else(|| wrong(args, &format!("{field}.args"), "an array"))?;
        if !list.is_empty() {
            out.insert("args".into(), args.clone());
        }
    }
    Ok(Value::Object(out))
}

/// The field, unless it is absent or null (which Go's decoder treats alike).
fn present<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, DockerProfileError> {
    v.as_object().ok_or_else(|| wrong(v, field, "an object"))
}

fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str, DockerProfileError> {
    v.as_str().ok_or_else(|| wrong(v, field, "a string"))
}

fn number(v: &Value, field: &str) -> Result<Value, DockerProfileError> {
    if v.is_u64() {
        Ok(v.clone())
    } else {
        Err(wrong(v, field, "a non-negative integer"))
    }
}

/// A list of strings; absent or null is empty.
fn strings<'a>(v: Option<&'a Value>, field: &str) -> Result<Vec<&'a str>, DockerProfileError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, s)| string(s, &format!("{field}[{i}]")))
            .collect(),
        Some(other) => Err(wrong(other, field, "an array of strings")),
    }
}

fn wrong(v: &Value, field: &str, expected: &'static str) -> DockerProfileError {
    DockerProfileError::Type {
        field: field.to_string(),
        expected,
        found: match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const K6_1: KernelVersion = KernelVersion { major: 6, minor: 1 };

    fn convert(profile: Value) -> Value {
        to_oci(&profile, DockerArch::AMD64, DEFAULT_CAPS, K6_1).unwrap()
    }

    #[test]
    fn filters_rules_as_dockerd() {
        let oci = convert(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}
            ],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "x",
                 "includes": {}, "excludes": {}},
                {"name": "write", "action": "SCMP_ACT_ALLOW", "args": null},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["arm", "arm64"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_CHROOT"]}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_CHROOT", "CAP_SYS_ADMIN"]}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["mips64"]}},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
                 "excludes": {"caps": ["CAP_KILL"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                 "excludes": {"arches": ["amd64"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "4.8"}},
                {"names": ["mseal"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "6.10"}},
                {"names": ["old"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"minKernel": "6.1"}},
                {"names": ["new"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"minKernel": "6.2"}}
            ]
        }));
        let names: Vec<&str> = oci["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["names"][0].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "read",
                "write",
                "arch_prctl",
                "chroot",
                "clone3",
                "ptrace",
                "new"
            ]
        );
        assert_eq!(
            oci["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(oci["defaultErrnoRet"], 1);
        // comment, includes, excludes and empty args are gone; errnoRet is kept.
        assert_eq!(
            oci["syscalls"][0],
            json!({"names": ["read"], "action": "SCMP_ACT_ALLOW"})
        );
        assert_eq!(
            oci["syscalls"][4],
            json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
        );
        let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(oci).unwrap();
        super::super::Program::from_spec(&oci).unwrap();
    }

    #[test]
    fn architectures_and_other_fields_are_copied() {
        let oci = convert(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [],
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "m",
            "flags": ["SECCOMP_FILTER_FLAG_LOG"]
        }));
        assert_eq!(
            oci,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                   "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
                   "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": []})
        );
        // An archMap without the architecture lists none (the host's ABI only).
        let oci = to_oci(
            &json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}),
            DockerArch::ARM64,
            &[],
            K6_1,
        )
        .unwrap();
        assert_eq!(oci["architectures"], json!([]));
    }

    #[test]
    fn malformed_profiles_name_the_field() {
        let cases = [
            (json!([]), "the profile: expected an object, found an array"),
            (json!({}), "defaultAction: missing"),
            (json!({"defaultAction": null}), "defaultAction: missing"),
            (
                json!({"defaultAction": 3}),
                "defaultAction: expected a string",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": -1}),
                "defaultErrnoRet: expected a non-negative integer",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                       "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}),
                "architectures, archMap: a profile gives one or the other",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "archMap": {}}),
                "archMap: expected an array, found an object",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{}]}),
                "archMap[0].architecture: missing",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                    "subArchitectures": "SCMP_ARCH_X86"}]}),
                "archMap[0].subArchitectures: expected an array of strings, found a string",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}),
                "syscalls: expected an array",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [1]}),
                "syscalls[0]: expected an object, found a number",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]}),
                "syscalls[0].action: missing",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["read", 7], "action": "SCMP_ACT_ALLOW"}]}),
                "syscalls[1].names[1]: expected a string, found a number",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}),
                "syscalls[0]: a rule gives name or names, not both",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": {}}]}),
                "syscalls[0].args: expected an array",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": "1"}]}),
                "syscalls[0].errnoRet: expected a non-negative integer, found a string",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": []}]}),
                "syscalls[0].includes: expected an object, found an array",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "excludes": {"caps": "CAP_SYS_ADMIN"}}]}),
                "syscalls[0].excludes.caps: expected an array of strings, found a string",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"minKernel": "four"}}]}),
                "syscalls[0].includes.minKernel: \"four\" is not a kernel version",
            ),
            (
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                     "includes": {"minKernel": 4.8}}]}),
                "syscalls[0].includes.minKernel: expected a string, found a number",
            ),
        ];
        for (profile, want) in cases {
            let err = to_oci(&profile, DockerArch::AMD64, DEFAULT_CAPS, K6_1)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{profile}: {err}");
        }
    }

    #[test]
    fn kernel_versions() {
        let v = |major, minor| Some(KernelVersion { major, minor });
        assert_eq!(KernelVersion::parse("4.8"), v(4, 8));
        assert_eq!(KernelVersion::parse("6.18.0-1-amd64"), v(6, 18));
        assert_eq!(KernelVersion::parse("5.10-rc1"), v(5, 10));
        for bad in ["", "4", "4.", ".8", "four.8", "4.x", "-4.8"] {
            assert_eq!(KernelVersion::parse(bad), None, "{bad:?}");
        }
        assert!(KernelVersion::parse("4.10") > KernelVersion::parse("4.9"));
        assert!(KernelVersion::parse("5.0") > KernelVersion::parse("4.20"));
        assert!(KernelVersion::running().unwrap() >= KernelVersion { major: 3, minor: 0 });
    }
}
