//! The host's cgroup layout: which hierarchies are mounted where (from mountinfo), and where the
//! runtime process itself sits in each (from `/proc/self/cgroup`). Pure parsing over strings, so
//! tests feed it fake contents whose mount points lie in a temp dir.

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// The default root of the cgroup hierarchies.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// What the cgroup code needs to know about the host, read once (or given by a test).
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// The root of the cgroup hierarchies (`/sys/fs/cgroup`): a cgroup2 mount here means a
    /// unified (pure v2) host; a cgroup2 mount at `<root>/unified` beside v1 hierarchies means a
    /// hybrid host.
    pub root: PathBuf,
    /// Contents of `/proc/self/mountinfo`.
    pub mountinfo: String,
    /// Contents of `/proc/self/cgroup`.
    pub self_cgroup: String,
}

impl HostInfo {
    /// Reads the running host's layout (`/proc/self/mountinfo`, `/proc/self/cgroup`).
    pub fn read() -> Result<Self, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Io {
                op: "read",
                path: PathBuf::from(p),
                source,
            })
        };
        Ok(Self {
            root: PathBuf::from(DEFAULT_ROOT),
            mountinfo: read("/proc/self/mountinfo")?,
            self_cgroup: read("/proc/self/cgroup")?,
        })
    }
}

/// One cgroup filesystem mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which directory of the hierarchy is mounted there (field 4 of mountinfo; `/` normally,
    /// something deeper under a cgroup namespace or a bind mount).
    pub root: PathBuf,
    /// `true` for cgroup2, `false` for a v1 hierarchy.
    pub v2: bool,
    /// v1 only: the controllers (and `name=...` of a named hierarchy) from the super options.
    pub controllers: Vec<String>,
}

/// The v1 controllers (and named hierarchies) runc 1.1's fs driver places a container in, in
/// runc's order (cpuset first: it must be filled in before a task can join).
pub const V1_SUBSYSTEMS: &[&str] = &[
    "cpuset",
    "devices",
    "memory",
    "cpu",
    "cpuacct",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "freezer",
    "rdma",
    "name=systemd",
];

/// Known v1 super options that are not controllers.
const V1_NON_CONTROLLER_OPTS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "xattr",
    "clone_children",
    "cpuset_v2_mode",
    "none",
];

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup and cgroup2 mounts of a mountinfo text, in file order. Malformed lines are
/// skipped (mountinfo comes from the kernel; a line we cannot read is not a cgroup we use).
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent maj:min root mount_point options [optional...] - fstype source super_opts
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 4 {
            continue;
        }
        let fstype = fields[sep + 1];
        let v2 = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if v2 {
            Vec::new()
        } else {
            fields[sep + 3]
                .split(',')
                .filter(|o| !V1_NON_CONTROLLER_OPTS.contains(o))
                .filter(|o| !o.contains('=') || o.starts_with("name="))
                .map(str::to_owned)
                .collect()
        };
        mounts.push(CgroupMount {
            mount_point: PathBuf::from(unescape(fields[4])),
            root: PathBuf::from(unescape(fields[3])),
            v2,
            controllers,
        });
    }
    mounts
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCgroup {
    /// The controllers of a v1 hierarchy (`name=systemd` included); empty for the v2 line `0::`.
    pub controllers: Vec<String>,
    /// The process's cgroup in that hierarchy, relative to the hierarchy's root (absolute form).
    pub path: PathBuf,
}

/// Parses `/proc/self/cgroup`.
pub fn parse_self_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some(OwnCgroup {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// The process's own cgroup for a v1 controller (`None`: not listed).
pub fn own_v1(own: &[OwnCgroup], controller: &str) -> Option<PathBuf> {
    own.iter()
        .find(|o| o.controllers.iter().any(|c| c == controller))
        .map(|o| o.path.clone())
}

/// The process's own cgroup on the v2 (unified) hierarchy, the `0::` line.
pub fn own_v2(own: &[OwnCgroup]) -> Option<PathBuf> {
    own.iter()
        .find(|o| o.controllers.is_empty())
        .map(|o| o.path.clone())
}

/// runc's `CleanPath`: lexically cleans `path`; a relative path stays relative but can no longer
/// climb above its base (`../../x` becomes `x`), an absolute one stays under `/`. Empty in,
/// empty out.
pub fn clean_path(path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let mut out = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    out.extend(parts);
    out
}

/// Joins `rel` (absolute or relative, already cleaned) below `base`, never above it.
pub fn join_under(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in clean_path(rel).components() {
        if let Component::Normal(p) = c {
            out.push(p);
        }
    }
    out
}

/// The host's layout, as runc 1.1 tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 hierarchies plus a cgroup2 mount at `<root>/unified` (holding no controllers).
    Hybrid,
    /// cgroup2 mounted at `<root>`: one unified hierarchy.
    Unified,
}

/// The host's layout and mounts.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Which kind of host.
    pub mode: Mode,
    /// v1: the mount serving each controller of [`V1_SUBSYSTEMS`] (first mount listing it).
    pub v1: Vec<(String, CgroupMount)>,
    /// The unified (cgroup2) mount: at `<root>` on a unified host, `<root>/unified` on hybrid.
    pub unified: Option<CgroupMount>,
}

/// Tells the host's layout apart from its mounts.
pub fn detect(host: &HostInfo) -> Result<Layout, CgroupError> {
    let mounts = parse_mountinfo(&host.mountinfo);
    // The last mount on a mount point is the visible one.
    let visible = |m: &CgroupMount| {
        mounts
            .iter()
            .rev()
            .find(|o| o.mount_point == m.mount_point)
            .is_some_and(|o| o == m)
    };
    if let Some(m) = mounts
        .iter()
        .find(|m| m.v2 && m.mount_point == host.root && visible(m))
    {
        return Ok(Layout {
            mode: Mode::Unified,
            v1: Vec::new(),
            unified: Some(m.clone()),
        });
    }
    let mut v1 = Vec::new();
    for sub in V1_SUBSYSTEMS {
        if let Some(m) = mounts
            .iter()
            .find(|m| !m.v2 && visible(m) && m.controllers.iter().any(|c| c == sub))
        {
            v1.push(((*sub).to_owned(), m.clone()));
        }
    }
    if v1.is_empty() {
        return Err(CgroupError::NoCgroupFs {
            root: host.root.clone(),
        });
    }
    let hybrid_point = host.root.join("unified");
    let unified = mounts
        .iter()
        .find(|m| m.v2 && m.mount_point == hybrid_point && visible(m))
        .cloned();
    Ok(Layout {
        mode: if unified.is_some() {
            Mode::Hybrid
        } else {
            Mode::Legacy
        },
        v1,
        unified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_like_runc() {
        let c = |s: &str| clean_path(Path::new(s));
        assert_eq!(c(""), PathBuf::new());
        assert_eq!(c("foo"), PathBuf::from("foo"));
        assert_eq!(c("../../foo/./bar/"), PathBuf::from("foo/bar"));
        assert_eq!(c("a/../../b"), PathBuf::from("b"));
        assert_eq!(c("/../x/../y"), PathBuf::from("/y"));
        assert_eq!(c("//a//b"), PathBuf::from("/a/b"));
        assert_eq!(c("/"), PathBuf::from("/"));
        assert_eq!(
            join_under(Path::new("/sys/fs/cgroup"), Path::new("/../../etc")),
            PathBuf::from("/sys/fs/cgroup/etc")
        );
    }

    #[test]
    fn mountinfo_escapes_and_controllers() {
        let mi = "30 23 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
                  31 23 0:27 /x /tmp/a\\040b rw - cgroup cgroup rw,xattr,name=systemd,release_agent=/x\n\
                  32 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
                  33 23 0:29 / /proc rw - proc proc rw\n\
                  garbage\n";
        let m = parse_mountinfo(mi);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[1].mount_point, PathBuf::from("/tmp/a b"));
        assert_eq!(m[1].root, PathBuf::from("/x"));
        assert_eq!(m[1].controllers, vec!["name=systemd"]);
        assert!(m[2].v2);
    }

    #[test]
    fn self_cgroup_lines() {
        let own = parse_self_cgroup("4:cpu,cpuacct:/a/b\n1:name=systemd:/user.slice\n0::/x:y\n");
        assert_eq!(own_v1(&own, "cpuacct"), Some(PathBuf::from("/a/b")));
        assert_eq!(
            own_v1(&own, "name=systemd"),
            Some(PathBuf::from("/user.slice"))
        );
        assert_eq!(own_v1(&own, "memory"), None);
        assert_eq!(own_v2(&own), Some(PathBuf::from("/x:y")));
    }
}
