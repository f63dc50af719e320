//! Mount options (`mounts[].options`) parsed into what mount(2) and mount_setattr(2) take, with
//! runc's meaning for each word; unknown words form the filesystem's data string.

use libc::c_ulong;

use crate::sys::fs::{
    MountAttr, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
};

/// `MS_NOSYMFOLLOW` (Linux 5.10), missing from older libc versions.
pub const MS_NOSYMFOLLOW: c_ulong = 256;

/// The parsed options of one mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags for mount(2) (including `MS_BIND`/`MS_REC` for bind and rbind).
    pub flags: c_ulong,
    /// `MS_*` flags the options cleared explicitly (`suid`, `dev`, `exec`, `rw`...).
    pub cleared: c_ulong,
    /// The options that are no flag, comma separated: the filesystem's data string.
    pub data: String,
    /// Propagation changes (`MS_SHARED`, `MS_SLAVE`... with `MS_REC` for the `r` forms), in
    /// order, applied after the mount.
    pub propagation: Vec<c_ulong>,
    /// Recursive attributes (`rro`, `rnosuid`...) for mount_setattr(AT_RECURSIVE).
    pub rec_attr: Option<MountAttr>,
    /// runc's `tmpcopyup`: copy the directory's old content into the new tmpfs.
    pub tmpcopyup: bool,
}

/// Why an option list was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// An option that coracle does not support (id-mapped mounts).
    Unsupported(String),
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported(o) => write!(f, "option {o:?} is not supported"),
        }
    }
}

/// The flag words: (clear, flag).
const FLAG_OPTIONS: &[(&str, (bool, c_ulong))] = &[
    ("async", (true, libc::MS_SYNCHRONOUS)),
    ("atime", (true, libc::MS_NOATIME)),
    ("bind", (false, libc::MS_BIND)),
    ("defaults", (false, 0)),
    ("dev", (true, libc::MS_NODEV)),
    ("diratime", (true, libc::MS_NODIRATIME)),
    ("dirsync", (false, libc::MS_DIRSYNC)),
    ("exec", (true, libc::MS_NOEXEC)),
    ("iversion", (false, libc::MS_I_VERSION)),
    ("lazytime", (false, libc::MS_LAZYTIME)),
    ("loud", (true, libc::MS_SILENT)),
    ("mand", (false, libc::MS_MANDLOCK)),
    ("noatime", (false, libc::MS_NOATIME)),
    ("nodev", (false, libc::MS_NODEV)),
    ("nodiratime", (false, libc::MS_NODIRATIME)),
    ("noexec", (false, libc::MS_NOEXEC)),
    ("noiversion", (true, libc::MS_I_VERSION)),
    ("nolazytime", (true, libc::MS_LAZYTIME)),
    ("nomand", (true, libc::MS_MANDLOCK)),
    ("norelatime", (true, libc::MS_RELATIME)),
    ("nostrictatime", (true, libc::MS_STRICTATIME)),
    ("nosuid", (false, libc::MS_NOSUID)),
    ("nosymfollow", (false, MS_NOSYMFOLLOW)),
    ("rbind", (false, libc::MS_BIND | libc::MS_REC)),
    ("relatime", (false, libc::MS_RELATIME)),
    ("remount", (false, libc::MS_REMOUNT)),
    ("ro", (false, libc::MS_RDONLY)),
    ("rw", (true, libc::MS_RDONLY)),
    ("silent", (false, libc::MS_SILENT)),
    ("strictatime", (false, libc::MS_STRICTATIME)),
    ("suid", (true, libc::MS_NOSUID)),
    ("sync", (false, libc::MS_SYNCHRONOUS)),
    ("symfollow", (true, MS_NOSYMFOLLOW)),
];

fn flag_option(word: &str) -> Option<(bool, c_ulong)> {
    FLAG_OPTIONS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, v)| *v)
}

const PROPAGATION_OPTIONS: &[(&str, c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("shared", libc::MS_SHARED),
    ("slave", libc::MS_SLAVE),
    ("unbindable", libc::MS_UNBINDABLE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

/// Parses a propagation word (`shared`, `rslave`...) into its `MS_*` flags.
pub fn propagation(word: &str) -> Option<c_ulong> {
    PROPAGATION_OPTIONS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, v)| *v)
}

/// The recursive attribute words: (clear, MOUNT_ATTR_*).
const RECURSIVE_OPTIONS: &[(&str, (bool, u64))] = &[
    ("rro", (false, MOUNT_ATTR_RDONLY)),
    ("rrw", (true, MOUNT_ATTR_RDONLY)),
    ("rnosuid", (false, MOUNT_ATTR_NOSUID)),
    ("rsuid", (true, MOUNT_ATTR_NOSUID)),
    ("rnodev", (false, MOUNT_ATTR_NODEV)),
    ("rdev", (true, MOUNT_ATTR_NODEV)),
    ("rnoexec", (false, MOUNT_ATTR_NOEXEC)),
    ("rexec", (true, MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", (false, MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", (true, MOUNT_ATTR_NODIRATIME)),
    ("rrelatime", (false, MOUNT_ATTR_RELATIME)),
    ("rnorelatime", (true, MOUNT_ATTR_RELATIME)),
    ("rnoatime", (false, MOUNT_ATTR_NOATIME)),
    ("ratime", (true, MOUNT_ATTR_NOATIME)),
    ("rstrictatime", (false, MOUNT_ATTR_STRICTATIME)),
    ("rnostrictatime", (true, MOUNT_ATTR_STRICTATIME)),
    ("rnosymfollow", (false, MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", (true, MOUNT_ATTR_NOSYMFOLLOW)),
];

fn rec_option(word: &str) -> Option<(bool, u64)> {
    RECURSIVE_OPTIONS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, v)| *v)
}

/// Every option word this runtime understands (besides filesystem data such as `mode=755`),
/// for the `features` document.
pub fn known_options() -> Vec<&'static str> {
    let mut words: Vec<&'static str> = FLAG_OPTIONS
        .iter()
        .map(|(w, _)| *w)
        .chain(PROPAGATION_OPTIONS.iter().map(|(w, _)| *w))
        .chain(RECURSIVE_OPTIONS.iter().map(|(w, _)| *w))
        .chain(["tmpcopyup"])
        .collect();
    words.sort_unstable();
    words
}

impl MountOptions {
    /// Parses `options` in order (a later word wins over an earlier one, as in runc).
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<Self, OptionError> {
        let mut out = Self::default();
        let mut data: Vec<&str> = Vec::new();
        for word in options.iter().map(AsRef::as_ref) {
            if let Some((clear, flag)) = flag_option(word) {
                if clear {
                    out.flags &= !flag;
                    out.cleared |= flag;
                } else {
                    out.flags |= flag;
                    out.cleared &= !flag;
                }
            } else if let Some(p) = propagation(word) {
                out.propagation.push(p);
            } else if let Some((clear, attr)) = rec_option(word) {
                let rec = out.rec_attr.get_or_insert_with(MountAttr::default);
                if clear {
                    rec.attr_clr |= attr;
                    rec.attr_set &= !attr;
                } else {
                    rec.attr_set |= attr;
                    rec.attr_clr &= !attr;
                    if attr & MOUNT_ATTR_ATIME_MASK == attr {
                        // An atime setting replaces the others: clear the whole field.
                        rec.attr_set &= !MOUNT_ATTR_ATIME_MASK;
                        rec.attr_set |= attr;
                        rec.attr_clr |= MOUNT_ATTR_ATIME_MASK;
                    }
                }
            } else if word == "tmpcopyup" {
                out.tmpcopyup = true;
            } else if matches!(word, "idmap" | "ridmap") || word.starts_with("idmap=") {
                return Err(OptionError::Unsupported(word.to_string()));
            } else if !word.is_empty() {
                data.push(word);
            }
        }
        out.data = data.join(",");
        Ok(out)
    }

    /// True for `bind` and `rbind`.
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// True for `rbind`.
    pub fn is_recursive(&self) -> bool {
        self.flags & libc::MS_REC != 0
    }

    /// What a bind mount needs changed after the bind (mount_setattr on the new mount, not
    /// recursive): the flags the options set, and those they explicitly cleared except `rw`,
    /// so that a bind keeps its source's state unless asked (and a locked read-only source in
    /// a user namespace does not fail on the usual `rw`). `None` when nothing changes.
    pub fn bind_attr(&self) -> Option<MountAttr> {
        let map = [
            (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
            (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
            (libc::MS_NODEV, MOUNT_ATTR_NODEV),
            (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
            (libc::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
        ];
        let mut attr = MountAttr::default();
        for (ms, ma) in map {
            if self.flags & ms != 0 {
                attr.attr_set |= ma;
            } else if self.cleared & ms != 0 && ms != libc::MS_RDONLY {
                attr.attr_clr |= ma;
            }
        }
        let atime = [
            (libc::MS_NOATIME, MOUNT_ATTR_NOATIME),
            (libc::MS_STRICTATIME, MOUNT_ATTR_STRICTATIME),
            (libc::MS_RELATIME, MOUNT_ATTR_RELATIME),
        ];
        if let Some((_, ma)) = atime.iter().find(|(ms, _)| self.flags & ms != 0) {
            attr.attr_set |= ma;
            attr.attr_clr |= MOUNT_ATTR_ATIME_MASK;
        }
        (attr != MountAttr::default()).then_some(attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> MountOptions {
        MountOptions::parse(words).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.is_bind());
        let o = parse(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "gid=5"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
        assert_eq!(o.data, "newinstance,ptmxmode=0666,gid=5");
    }

    #[test]
    fn later_word_wins() {
        let o = parse(&["ro", "rw"]);
        assert_eq!(o.flags & libc::MS_RDONLY, 0);
        assert_eq!(o.cleared, libc::MS_RDONLY);
        let o = parse(&["rw", "ro"]);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.cleared, 0);
        let o = parse(&["suid", "nosuid", "exec"]);
        assert_eq!(o.flags, libc::MS_NOSUID);
        assert_eq!(o.cleared, libc::MS_NOEXEC);
    }

    #[test]
    fn bind_and_propagation() {
        let o = parse(&["rbind", "rprivate", "shared", "ro"]);
        assert!(o.is_bind() && o.is_recursive());
        assert_eq!(
            o.propagation,
            vec![libc::MS_PRIVATE | libc::MS_REC, libc::MS_SHARED]
        );
        assert_eq!(o.data, "");
        let attr = o.bind_attr().unwrap();
        assert_eq!(attr.attr_set, MOUNT_ATTR_RDONLY);
        assert_eq!(attr.attr_clr, 0);
        assert!(parse(&["bind", "rw"]).bind_attr().is_none());
        let o = parse(&["bind", "nodev", "exec", "noatime"]);
        let attr = o.bind_attr().unwrap();
        assert_eq!(attr.attr_set, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME);
        assert_eq!(attr.attr_clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_ATIME_MASK);
    }

    #[test]
    fn recursive_attrs() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnoexec", "rexec", "rnoatime"]);
        let a = o.rec_attr.unwrap();
        assert_eq!(
            a.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(a.attr_clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_ATIME_MASK);
        let a = parse(&["rnoatime", "rstrictatime"]).rec_attr.unwrap();
        assert_eq!(a.attr_set, MOUNT_ATTR_STRICTATIME);
        let a = parse(&["rrelatime"]).rec_attr.unwrap();
        assert_eq!(a.attr_set, 0);
        assert_eq!(a.attr_clr, MOUNT_ATTR_ATIME_MASK);
        assert!(parse(&["ro"]).rec_attr.is_none());
    }

    #[test]
    fn extensions() {
        assert!(parse(&["tmpcopyup", "mode=1777"]).tmpcopyup);
        assert_eq!(parse(&["tmpcopyup", "mode=1777"]).data, "mode=1777");
        for bad in ["idmap", "ridmap", "idmap=uids=0-1000-10"] {
            assert_eq!(
                MountOptions::parse(&[bad]),
                Err(OptionError::Unsupported(bad.to_string()))
            );
        }
    }
}
