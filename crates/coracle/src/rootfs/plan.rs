//! The parent side: config.json's `root`, `mounts`, `linux.devices`, `linux.rootfsPropagation`,
//! `linux.maskedPaths` and `linux.readonlyPaths` checked into a [`RootfsPlan`].

use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Mount, Spec,
};

use super::idmap::{IdmapPlan, IdmapUserns};
use super::options::{propagation, Idmap, MountOptions};
use super::resolve::clean_relative;
use super::RootfsError;

/// What kind of mount an entry is; decides how the child performs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// `bind` or `rbind` of a host path (`recursive` for rbind).
    Bind {
        /// rbind.
        recursive: bool,
    },
    /// `proc`.
    Proc,
    /// `sysfs` (falls back to a recursive bind of /sys where the kernel refuses it).
    Sysfs,
    /// `cgroup`: v1 hierarchies (a tmpfs with one directory each) or cgroup2 on a unified host.
    Cgroup,
    /// `cgroup2`.
    Cgroup2,
    /// Any other filesystem (tmpfs, devpts, mqueue, overlay...): one mount(2).
    Filesystem,
}

/// One checked entry of `mounts`.
#[derive(Debug, Clone)]
pub struct MountEntry {
    /// Index in `mounts`, for messages.
    pub index: usize,
    /// Absolute, lexically clean destination inside the container.
    pub destination: PathBuf,
    /// Source: an absolute host path for binds, the device or a dummy otherwise.
    pub source: PathBuf,
    /// Filesystem type (`bind` for binds).
    pub fstype: String,
    /// How to mount.
    pub kind: MountKind,
    /// Parsed options.
    pub options: MountOptions,
    /// The id-mapping of an id-mapped bind mount (`idmap`, `ridmap`, `uidMappings`...).
    pub idmap: Option<IdmapPlan>,
}

/// The kind of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Character device (`c` or `u`).
    Char,
    /// Block device (`b`).
    Block,
    /// FIFO (`p`).
    Fifo,
}

/// One device node to create under /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute, clean path inside the container (under /dev).
    pub path: PathBuf,
    /// Type.
    pub kind: DeviceKind,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Everything the child needs to build the root filesystem, checked in the parent.
#[derive(Debug, Clone)]
pub struct RootfsPlan {
    pub(super) rootfs: PathBuf,
    pub(super) mounts: Vec<MountEntry>,
    pub(super) devices: Vec<DeviceNode>,
    /// False when /dev is a bind mount (of the host's /dev): no devices, no /dev symlinks.
    pub(super) setup_dev: bool,
    /// A devpts is mounted at /dev/pts: /dev/ptmx becomes a symlink to pts/ptmx.
    pub(super) ptmx_symlink: bool,
    /// The /dev mount asked for `ro`: mounted rw, remounted read-only in finalize.
    pub(super) dev_readonly: bool,
    pub(super) root_propagation: Option<c_ulong>,
    pub(super) masked_paths: Vec<PathBuf>,
    pub(super) readonly_paths: Vec<PathBuf>,
    pub(super) readonly_root: bool,
}

/// The devices every container gets (runc's defaults), unless linux.devices names the path.
const DEFAULT_DEVICES: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Entries of /proc that may be mount destinations (lxcfs emulates them), as runc allows.
const PROC_MOUNT_ALLOWED: [&str; 11] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Whether `destination` (clean, absolute) is an entry of /proc that may be a mount
/// destination ([`PROC_MOUNT_ALLOWED`]).
pub(super) fn proc_mount_allowed(destination: &Path) -> bool {
    PROC_MOUNT_ALLOWED
        .iter()
        .any(|p| destination == Path::new(p))
}

/// `/` followed by the clean relative form of `path`.
fn clean_absolute(path: &Path) -> PathBuf {
    Path::new("/").join(clean_relative(path))
}

impl RootfsPlan {
    /// Checks and converts the filesystem part of `spec` (`root`, `mounts`, `linux.devices`,
    /// `rootfsPropagation`, `maskedPaths`, `readonlyPaths`). `rootfs` is the absolute,
    /// canonical root path. Relative bind sources are taken relative to the current
    /// directory; use [`RootfsPlan::from_spec_in_bundle`] to have them relative to the bundle
    /// as the runtime-spec says.
    pub fn from_spec(spec: &Spec, rootfs: &Path) -> Result<Self, RootfsError> {
        let cwd = std::env::current_dir().map_err(|source| RootfsError::Io {
            op: "get the current directory",
            path: PathBuf::from("."),
            source,
        })?;
        Self::from_spec_in_bundle(spec, rootfs, &cwd)
    }

    /// As [`RootfsPlan::from_spec`], with relative bind sources taken relative to `bundle`.
    ///
    /// Id-mapped mounts are made here, in the runtime's user and mount namespace (see
    /// [`IdmapPlan`]): the plan then holds them as detached mounts, which the child inherits
    /// and attaches. Needs root (CAP_SYS_ADMIN over the source's filesystem) when there are any.
    pub fn from_spec_in_bundle(
        spec: &Spec,
        rootfs: &Path,
        bundle: &Path,
    ) -> Result<Self, RootfsError> {
        let mut plan = Self::checked(spec, rootfs, bundle)?;
        super::idmap::prepare(&mut plan.mounts)?;
        Ok(plan)
    }

    /// The checks and conversion of [`RootfsPlan::from_spec_in_bundle`], without its side
    /// effects (the id-mapped mounts are not made).
    pub(super) fn checked(spec: &Spec, rootfs: &Path, bundle: &Path) -> Result<Self, RootfsError> {
        let userns = container_userns(spec);
        let mut mounts = Vec::new();
        for (index, m) in spec.mounts().iter().flatten().enumerate() {
            mounts.push(check_mount(index, m, bundle, &userns)?);
        }
        let dev_mount = mounts
            .iter()
            .rev()
            .find(|m| m.destination == Path::new("/dev"));
        let setup_dev = !dev_mount.is_some_and(|m| matches!(m.kind, MountKind::Bind { .. }));
        let dev_readonly =
            setup_dev && dev_mount.is_some_and(|m| m.options.flags & libc::MS_RDONLY != 0);
        let ptmx_symlink = mounts
            .iter()
            .any(|m| m.destination == Path::new("/dev/pts") && m.fstype == "devpts");
        let linux = spec.linux().as_ref();
        let devices = check_devices(linux.and_then(|l| l.devices().as_ref()))?;
        let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => None,
            Some(p) => Some(propagation(p).ok_or_else(|| RootfsError::InvalidField {
                field: "linux.rootfsPropagation".into(),
                reason: format!("unknown propagation {p:?}"),
            })?),
        };
        let paths = |field: &str, list: Option<&Vec<String>>| {
            list.into_iter()
                .flatten()
                .enumerate()
                .map(|(i, p)| {
                    if p.starts_with('/') {
                        Ok(clean_absolute(Path::new(p)))
                    } else {
                        Err(RootfsError::InvalidField {
                            field: format!("{field}[{i}]"),
                            reason: format!("{p:?} is not an absolute path"),
                        })
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let masked_paths = paths(
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_ref()),
        )?;
        let readonly_paths = paths(
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        )?;
        let readonly_root = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        Ok(Self {
            rootfs: rootfs.to_path_buf(),
            mounts,
            devices,
            setup_dev,
            ptmx_symlink,
            dev_readonly,
            root_propagation,
            masked_paths,
            readonly_paths,
            readonly_root,
        })
    }

    /// The container's root on the host (absolute, canonical).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The checked mounts, in order.
    pub fn mounts(&self) -> &[MountEntry] {
        &self.mounts
    }

    /// The device nodes created under /dev (linux.devices, then the defaults).
    pub fn devices(&self) -> &[DeviceNode] {
        &self.devices
    }

    /// True when `root.readonly` asks for a read-only root.
    pub fn readonly_root(&self) -> bool {
        self.readonly_root
    }
}

/// Checks `linux.devices` and adds the default devices it does not name.
fn check_devices(devices_in: Option<&Vec<LinuxDevice>>) -> Result<Vec<DeviceNode>, RootfsError> {
    let mut devices = Vec::new();
    for (index, d) in devices_in.into_iter().flatten().enumerate() {
        let bad = |reason: String| RootfsError::InvalidDevice {
            index,
            path: d.path().display().to_string(),
            reason,
        };
        let path = d.path();
        let clean = clean_absolute(path);
        if !path.is_absolute() || !clean.starts_with("/dev") || clean == Path::new("/dev") {
            return Err(bad("path must be an absolute path under /dev".into()));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => DeviceKind::Fifo,
            LinuxDeviceType::A => return Err(bad("type must be c, b, u or p".into())),
        };
        let number = |n: i64, what: &str| {
            u32::try_from(n).map_err(|_| bad(format!("{what} {n} is out of range")))
        };
        let (major, minor) = (number(d.major(), "major")?, number(d.minor(), "minor")?);
        if kind != DeviceKind::Fifo && (major > 0xfff || minor > 0xf_ffff) {
            return Err(bad(format!(
                "device number {major}:{minor} is out of range"
            )));
        }
        devices.push(DeviceNode {
            path: clean,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for (path, major, minor) in DEFAULT_DEVICES {
        if !devices.iter().any(|d| d.path == Path::new(path)) {
            devices.push(DeviceNode {
                path: PathBuf::from(path),
                kind: DeviceKind::Char,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            });
        }
    }
    Ok(devices)
}

/// The container's user namespace, for `idmap`/`ridmap` mounts without mappings of their own.
fn container_userns(spec: &Spec) -> Option<IdmapUserns> {
    let linux = spec.linux().as_ref()?;
    let ns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::User)?;
    match ns.path() {
        Some(p) if !p.as_os_str().is_empty() => Some(IdmapUserns::Join(p.clone())),
        _ => Some(IdmapUserns::Mappings {
            uid: linux.uid_mappings().clone().unwrap_or_default(),
            gid: linux.gid_mappings().clone().unwrap_or_default(),
        }),
    }
}

/// The most lines a uid_map or gid_map takes.
const MAX_MAP_LINES: usize = 340;

/// Checks the mappings of an id-mapped mount (`field` names them in messages).
fn check_mappings(field: &str, maps: &[LinuxIdMapping]) -> Result<(), String> {
    if maps.len() > MAX_MAP_LINES {
        return Err(format!("{field} has more than {MAX_MAP_LINES} entries"));
    }
    for (i, m) in maps.iter().enumerate() {
        let end = |start: u32| u64::from(start) + u64::from(m.size());
        if m.size() == 0 || end(m.container_id()) > 1 << 32 || end(m.host_id()) > 1 << 32 {
            return Err(format!(
                "{field}[{i}] ({} {} {}) is an empty or out-of-range id range",
                m.container_id(),
                m.host_id(),
                m.size()
            ));
        }
    }
    Ok(())
}

/// The id-mapping of `m`: its own `uidMappings`/`gidMappings`, or for a bare `idmap`/`ridmap`
/// the container's user namespace (runtime-spec 1.2, as runc and crun). `None` when the
/// mount is not id-mapped.
fn check_idmap(
    m: &Mount,
    options: &MountOptions,
    is_bind: bool,
    userns: &Option<IdmapUserns>,
) -> Result<Option<IdmapPlan>, String> {
    let given = |v: &Option<Vec<LinuxIdMapping>>| v.as_ref().filter(|v| !v.is_empty()).cloned();
    let (uid, gid) = (given(m.uid_mappings()), given(m.gid_mappings()));
    if options.idmap.is_none() && uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    if !is_bind {
        return Err(
            "id-mapped mounts (idmap, ridmap, uidMappings, gidMappings) must be bind mounts".into(),
        );
    }
    let userns = match (uid, gid) {
        (Some(uid), Some(gid)) => {
            check_mappings("uidMappings", &uid)?;
            check_mappings("gidMappings", &gid)?;
            IdmapUserns::Mappings { uid, gid }
        }
        (None, None) => userns.clone().ok_or(
            "idmap/ridmap without uidMappings and gidMappings needs the container's user \
             namespace, and the container has none",
        )?,
        _ => return Err("an id-mapped mount needs both uidMappings and gidMappings".into()),
    };
    Ok(Some(IdmapPlan::new(
        userns,
        options.idmap == Some(Idmap::Recursive),
    )))
}

/// Checks `mounts[index]`.
fn check_mount(
    index: usize,
    m: &Mount,
    bundle: &Path,
    userns: &Option<IdmapUserns>,
) -> Result<MountEntry, RootfsError> {
    let dest = m.destination();
    let bad = |reason: String| RootfsError::InvalidMount {
        index,
        destination: dest.display().to_string(),
        reason,
    };
    if dest.as_os_str().is_empty() {
        return Err(bad("destination is empty".into()));
    }
    // Relative destinations are taken from / (runc accepts them with a warning).
    let destination = clean_absolute(dest);
    if destination == Path::new("/") {
        return Err(bad("cannot mount over the container's root".into()));
    }
    let options = MountOptions::parse(m.options().as_deref().unwrap_or_default())
        .map_err(|e| bad(e.to_string()))?;
    let typ = m.typ().as_deref().unwrap_or("");
    let kind = if options.is_bind() || typ == "bind" {
        MountKind::Bind {
            recursive: options.is_recursive(),
        }
    } else {
        match typ {
            "" => return Err(bad("has no type and is no bind mount".into())),
            "proc" => MountKind::Proc,
            "sysfs" => MountKind::Sysfs,
            "cgroup" => MountKind::Cgroup,
            "cgroup2" => MountKind::Cgroup2,
            _ => MountKind::Filesystem,
        }
    };
    if typ.contains(['\0', ',']) {
        return Err(bad(format!("invalid type {typ:?}")));
    }
    if options.tmpcopyup && typ != "tmpfs" {
        return Err(bad("tmpcopyup is only for tmpfs".into()));
    }
    if destination == Path::new("/proc") {
        if !matches!(kind, MountKind::Proc | MountKind::Bind { .. }) {
            return Err(bad(format!(
                "only a proc mount or a bind of a procfs may be mounted on /proc, not {typ:?}"
            )));
        }
    } else if destination.starts_with("/proc") && !proc_mount_allowed(&destination) {
        return Err(bad("cannot be mounted because it is inside /proc".into()));
    }
    let source = match (kind, m.source()) {
        (MountKind::Bind { .. }, None) => return Err(bad("a bind mount needs a source".into())),
        (MountKind::Bind { .. }, Some(s)) if s.as_os_str().is_empty() => {
            return Err(bad("a bind mount needs a source".into()))
        }
        (MountKind::Bind { .. }, Some(s)) => bundle.join(s),
        (_, Some(s)) if !s.as_os_str().is_empty() => s.clone(),
        (_, _) => PathBuf::from(typ),
    };
    let is_bind = matches!(kind, MountKind::Bind { .. });
    let idmap = check_idmap(m, &options, is_bind, userns).map_err(bad)?;
    let fstype = if is_bind { "bind" } else { typ };
    Ok(MountEntry {
        index,
        destination,
        source,
        fstype: fstype.to_string(),
        kind,
        options,
        idmap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn plan(json: &str) -> Result<RootfsPlan, RootfsError> {
        RootfsPlan::checked(&spec(json), Path::new("/r"), Path::new("/bundle"))
    }

    #[test]
    fn converts_mounts() {
        let p = plan(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
            "mounts":[
              {"destination":"/proc","type":"proc","source":"proc"},
              {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k","ro"]},
              {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666"]},
              {"destination":"data/../x","source":"vol","options":["rbind","ro","rprivate"]},
              {"destination":"/y","type":"bind","source":"/host"}
            ],
            "linux":{"rootfsPropagation":"rshared","maskedPaths":["/proc/kcore"],"readonlyPaths":["/proc/sys"],
              "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":8630,"uid":1,"gid":2},
                         {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":384}]}}"#,
        )
        .unwrap();
        assert!(p.readonly_root() && p.setup_dev && p.ptmx_symlink && p.dev_readonly);
        assert_eq!(p.root_propagation, Some(libc::MS_SHARED | libc::MS_REC));
        let m = p.mounts();
        assert_eq!(m[0].kind, MountKind::Proc);
        assert_eq!(m[1].options.data, "mode=755,size=65536k");
        assert_eq!(m[3].destination, Path::new("/x"));
        assert_eq!(m[3].source, Path::new("/bundle/vol"));
        assert_eq!(m[3].kind, MountKind::Bind { recursive: true });
        assert_eq!(m[4].kind, MountKind::Bind { recursive: false });
        assert_eq!(m[4].source, Path::new("/host"));
        let d = p.devices();
        assert_eq!(d.len(), 7);
        assert_eq!(d[0].mode, 0o666);
        assert_eq!(
            (d[0].major, d[0].minor, d[0].uid, d[0].gid),
            (10, 229, 1, 2)
        );
        assert_eq!(
            d[1].mode, 0o600,
            "linux.devices overrides the default /dev/null"
        );
        assert_eq!(
            d.iter()
                .filter(|d| d.path == Path::new("/dev/null"))
                .count(),
            1
        );
        assert_eq!(p.masked_paths, vec![PathBuf::from("/proc/kcore")]);
    }

    #[test]
    fn idmap_mappings() {
        let map = |c: u32, h: u32, n: u32| {
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(c)
                .host_id(h)
                .size(n)
                .build()
                .unwrap()
        };
        let p = plan(
            r#"{"ociVersion":"1.0.2","mounts":[
              {"destination":"/a","source":"/s","options":["bind"],
               "uidMappings":[{"containerID":1000,"hostID":0,"size":1}],
               "gidMappings":[{"containerID":5,"hostID":6,"size":7}]},
              {"destination":"/b","source":"/s","options":["rbind","ridmap"]},
              {"destination":"/c","source":"/s","options":["bind","idmap"]},
              {"destination":"/d","source":"/s","options":["bind"]}],
             "linux":{"namespaces":[{"type":"user"}],
               "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "gidMappings":[{"containerID":0,"hostID":200000,"size":65536}]}}"#,
        )
        .unwrap();
        let m = p.mounts();
        let a = m[0].idmap.as_ref().unwrap();
        assert!(!a.recursive && a.tree().is_none());
        assert_eq!(
            a.userns,
            IdmapUserns::Mappings {
                uid: vec![map(1000, 0, 1)],
                gid: vec![map(5, 6, 7)]
            }
        );
        let b = m[1].idmap.as_ref().unwrap();
        assert!(b.recursive);
        assert_eq!(
            b.userns,
            IdmapUserns::Mappings {
                uid: vec![map(0, 100000, 65536)],
                gid: vec![map(0, 200000, 65536)]
            }
        );
        assert!(!m[2].idmap.as_ref().unwrap().recursive);
        assert!(m[3].idmap.is_none());
        let p = plan(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/a","source":"/s","options":["bind","idmap"]}],
             "linux":{"namespaces":[{"type":"user","path":"/proc/1/ns/user"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            p.mounts()[0].idmap.as_ref().unwrap().userns,
            IdmapUserns::Join(PathBuf::from("/proc/1/ns/user"))
        );
    }

    #[test]
    fn dev_bind_skips_devices() {
        let p = plan(
            r#"{"ociVersion":"1.0.2","mounts":[{"destination":"/dev","source":"/dev","options":["rbind"]}]}"#,
        )
        .unwrap();
        assert!(!p.setup_dev);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#""mounts":[{"destination":"/a","type":"tmpfs"},{"destination":"/proc","type":"proc","options":["idmap=uids=0-1-1"]}]"#,
                "mounts[1] (/proc): option \"idmap=uids=0-1-1\" is not supported (give the mapping as uidMappings/gidMappings)",
            ),
            (
                r#""mounts":[{"destination":"/a","type":"tmpfs","options":["idmap"]}]"#,
                "mounts[0] (/a): id-mapped mounts (idmap, ridmap, uidMappings, gidMappings) must be bind mounts",
            ),
            (
                r#""mounts":[{"destination":"/a","source":"/s","options":["bind","ridmap"]}]"#,
                "mounts[0] (/a): idmap/ridmap without uidMappings and gidMappings needs the container's user namespace, and the container has none",
            ),
            (
                r#""mounts":[{"destination":"/a","source":"/s","options":["bind"],"uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]"#,
                "mounts[0] (/a): an id-mapped mount needs both uidMappings and gidMappings",
            ),
            (
                r#""mounts":[{"destination":"/a","source":"/s","options":["bind"],"uidMappings":[{"containerID":0,"hostID":1,"size":1}],"gidMappings":[{"containerID":4294967295,"hostID":1,"size":2}]}]"#,
                "mounts[0] (/a): gidMappings[0] (4294967295 1 2) is an empty or out-of-range id range",
            ),
            (
                r#""mounts":[{"destination":"/a"}]"#,
                "mounts[0] (/a): has no type and is no bind mount",
            ),
            (
                r#""mounts":[{"destination":"/a","options":["bind"]}]"#,
                "mounts[0] (/a): a bind mount needs a source",
            ),
            (
                r#""mounts":[{"destination":"/","type":"tmpfs"}]"#,
                "mounts[0] (/): cannot mount over the container's root",
            ),
            (
                r#""mounts":[{"destination":"/proc/self/x","type":"tmpfs"}]"#,
                "mounts[0] (/proc/self/x): cannot be mounted because it is inside /proc",
            ),
            (
                r#""mounts":[{"destination":"/proc/./sys/../sys/kernel","type":"bind","source":"/tmp","options":["bind"]}]"#,
                "mounts[0] (/proc/./sys/../sys/kernel): cannot be mounted because it is inside /proc",
            ),
            (
                r#""mounts":[{"destination":"/proc","type":"tmpfs"}]"#,
                "mounts[0] (/proc): only a proc mount or a bind of a procfs may be mounted on /proc, not \"tmpfs\"",
            ),
            (
                r#""linux":{"rootfsPropagation":"bogus"}"#,
                "linux.rootfsPropagation: unknown propagation \"bogus\"",
            ),
            (
                r#""linux":{"maskedPaths":["/ok","rel"]}"#,
                "linux.maskedPaths[1]: \"rel\" is not an absolute path",
            ),
            (
                r#""linux":{"readonlyPaths":["x"]}"#,
                "linux.readonlyPaths[0]: \"x\" is not an absolute path",
            ),
            (
                r#""linux":{"devices":[{"path":"/etc/x","type":"c","major":1,"minor":1}]}"#,
                "linux.devices[0] (/etc/x): path must be an absolute path under /dev",
            ),
            (
                r#""linux":{"devices":[{"path":"/dev/x","type":"a"}]}"#,
                "linux.devices[0] (/dev/x): type must be c, b, u or p",
            ),
            (
                r#""linux":{"devices":[{"path":"/dev/x","type":"c","major":-1,"minor":1}]}"#,
                "linux.devices[0] (/dev/x): major -1 is out of range",
            ),
            (
                r#""linux":{"devices":[{"path":"/dev/x","type":"b","major":4096,"minor":1}]}"#,
                "linux.devices[0] (/dev/x): device number 4096:1 is out of range",
            ),
        ];
        for (fields, want) in cases {
            let json = format!(r#"{{"ociVersion":"1.0.2",{fields}}}"#);
            let err = plan(&json).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }
}
