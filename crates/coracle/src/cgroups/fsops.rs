//! File and directory operations on cgroup trees, shared by the v1 and v2 managers. Functions
//! over paths only, so that tests run them against temp dirs.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CgroupError;

/// How often [`rmdir_retry`] tries a busy directory, and the first pause (doubling each time:
/// 10 ms, 20 ms, ... about 2.5 s in all).
const RMDIR_TRIES: u32 = 9;
const RMDIR_FIRST_PAUSE: Duration = Duration::from_millis(10);

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `dir/name`, trimmed; a missing file reads as empty.
pub fn read_value(dir: &Path, name: &str) -> Result<String, CgroupError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().to_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Writes `value` to `dir/name` in one write(2), as cgroupfs wants. The file must exist (every
/// cgroup file does; a missing one means a controller is not available), except in unit tests
/// on temp-dir trees, where it is created.
pub fn write_value(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(cfg!(test))
        .open(&path)
        .map_err(io("open", &path))?;
    f.write_all(value.as_bytes()).map_err(io("write", &path))
}

/// Writes a resource value: as [`write_value`], with the spec field in the error.
pub fn set(dir: &Path, file: &str, value: &str, field: &'static str) -> Result<(), CgroupError> {
    write_value(dir, file, value).map_err(|e| match e {
        CgroupError::Io { path, source, .. } => CgroupError::Write {
            field,
            path,
            value: value.to_owned(),
            source,
        },
        other => other,
    })
}

/// Whether the failure of [`set`] was the kernel saying `errno`.
pub fn is_errno(e: &CgroupError, errno: i32) -> bool {
    matches!(e, CgroupError::Write { source, .. } if source.raw_os_error() == Some(errno))
}

/// Reads `dir/name` as an unsigned number; a missing file or `max` reads as `u64::MAX`.
pub fn read_u64(dir: &Path, name: &str) -> Result<u64, CgroupError> {
    let text = read_value(dir, name)?;
    if text.is_empty() || text == "max" {
        return Ok(u64::MAX);
    }
    text.parse().map_err(|source| CgroupError::Parse {
        path: dir.join(name),
        line: text.clone(),
        source,
    })
}

/// Reports a resource that is skipped because this kernel has no file for it.
pub fn warn_skip(field: &str, dir: &Path, file: &str) {
    eprintln!(
        "coracle: warning: {field}: {} does not exist (not supported by this kernel): skipped",
        dir.join(file).display()
    );
}

/// The directories from just below `mount_point` down to `target` (inclusive), parents first.
/// `target` must lie under `mount_point`; if it is the mount point itself the list is empty.
pub fn components_below(mount_point: &Path, target: &Path) -> Vec<PathBuf> {
    let Ok(rel) = target.strip_prefix(mount_point) else {
        return Vec::new();
    };
    let mut cur = mount_point.to_path_buf();
    rel.components()
        .map(|c| {
            cur.push(c);
            cur.clone()
        })
        .collect()
}

/// Creates `dir` (mode 0755) if missing; records it in `created` when this call made it.
pub fn mkdir_tracked(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io("mkdir", dir)(e)),
    }
}

/// Writes `pid` to `dir/cgroup.procs`.
pub fn write_pid(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    write_value(dir, "cgroup.procs", &pid.to_string())
}

/// The pids listed in `dir/cgroup.procs`.
pub fn read_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<i32>()
                .map_err(|source| CgroupError::Parse {
                    path: path.clone(),
                    line: l.to_owned(),
                    source,
                })
        })
        .collect()
}

/// Removes the cgroup directory `dir`; a missing one is fine. While the kernel reports it busy
/// (tasks still being reaped, or sub-cgroups the container made inside it), removes those
/// sub-cgroups and retries with a growing pause.
pub fn rmdir_retry(dir: &Path) -> Result<(), CgroupError> {
    let mut pause = RMDIR_FIRST_PAUSE;
    let mut tries = 0;
    loop {
        let err = match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        let busy = matches!(
            err.raw_os_error(),
            Some(libc::EBUSY) | Some(libc::ENOTEMPTY) | Some(libc::EAGAIN)
        );
        tries += 1;
        if !busy || tries >= RMDIR_TRIES {
            return Err(io("rmdir", dir)(err));
        }
        // Sub-cgroups inside ours belong to the container too.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    // Best effort: the retry of `dir` reports what still blocks it.
                    let _ = rmdir_retry(&entry.path());
                }
            }
        }
        std::thread::sleep(pause);
        pause = pause.saturating_mul(2);
    }
}

/// Removes the directories of `created` (in the order they were made, parents first) deepest
/// first. The container's own cgroups (`leaves`) are removed with [`rmdir_retry`]; a created
/// parent is tried once and left in place if it is busy: another container's cgroup may live
/// in it by now (it must not be touched), and none of ours can be inside it any more. Tries
/// every directory; returns the first error.
pub fn remove_created(created: &[PathBuf], leaves: &[PathBuf]) -> Result<(), CgroupError> {
    let mut first = None;
    for dir in created.iter().rev() {
        let result = if leaves.contains(dir) {
            rmdir_retry(dir)
        } else {
            match std::fs::remove_dir(dir) {
                Ok(()) => Ok(()),
                Err(e)
                    if e.kind() == ErrorKind::NotFound
                        || matches!(
                            e.raw_os_error(),
                            Some(libc::EBUSY) | Some(libc::ENOTEMPTY)
                        ) =>
                {
                    Ok(())
                }
                Err(e) => Err(io("rmdir", dir)(e)),
            }
        };
        if let Err(e) = result {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_and_mkdir_tracking() {
        let t = tempfile::tempdir().unwrap();
        let mp = t.path().join("cpu");
        std::fs::create_dir_all(mp.join("a")).unwrap();
        let target = mp.join("a/b/c");
        let comps = components_below(&mp, &target);
        assert_eq!(comps, vec![mp.join("a"), mp.join("a/b"), mp.join("a/b/c")]);
        assert!(components_below(&mp, &mp).is_empty());
        let mut created = Vec::new();
        for c in &comps {
            mkdir_tracked(c, &mut created).unwrap();
        }
        assert_eq!(created, vec![mp.join("a/b"), mp.join("a/b/c")]);
        // A created parent that another cgroup now lives in stays (with that cgroup).
        std::fs::create_dir(mp.join("a/b/other")).unwrap();
        remove_created(&created, std::slice::from_ref(&target)).unwrap();
        assert!(!target.exists());
        assert!(mp.join("a/b/other").is_dir());
        std::fs::remove_dir(mp.join("a/b/other")).unwrap();
        remove_created(&created, std::slice::from_ref(&target)).unwrap();
        assert!(!mp.join("a/b").exists());
        assert!(mp.join("a").exists());
        // Again: already gone is fine.
        remove_created(&created, &[target]).unwrap();
    }

    #[test]
    fn rmdir_removes_nested_subdirs() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("x");
        std::fs::create_dir_all(d.join("y/z")).unwrap();
        rmdir_retry(&d).unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn pids_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.procs"), "12\n345\n").unwrap();
        assert_eq!(read_pids(t.path()).unwrap(), vec![12, 345]);
        std::fs::write(t.path().join("cgroup.procs"), "12\nx\n").unwrap();
        assert!(matches!(
            read_pids(t.path()),
            Err(CgroupError::Parse { .. })
        ));
    }
}
