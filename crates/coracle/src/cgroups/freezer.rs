//! Freezing (pause/resume), as runc 1.1: v1 `freezer.state`, v2 `cgroup.freeze` with
//! `cgroup.events` to learn when the freeze is complete. Functions over a directory.

use std::path::Path;
use std::time::Duration;

use super::fsops::{read_value, write_value};
use super::CgroupError;

/// v1: writes FROZEN until the kernel reports FROZEN (it may stay in FREEZING while tasks are
/// busy in the kernel; thawing now and then lets pending signals through, as runc does);
/// gives up after ~1000 tries, thawing again. `frozen == false` thaws.
pub fn v1_set(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    if !frozen {
        return write_value(dir, "freezer.state", "THAWED");
    }
    for i in 0..1000u32 {
        if i % 50 == 49 {
            // Best effort: a failing thaw shows up as a failing freeze next.
            let _ = write_value(dir, "freezer.state", "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        write_value(dir, "freezer.state", "FROZEN")?;
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_micros(10));
        }
        match read_value(dir, "freezer.state")?.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => continue,
            other => {
                return Err(CgroupError::FreezerState {
                    path: dir.join("freezer.state"),
                    state: other.to_owned(),
                })
            }
        }
    }
    // Never leave it half frozen.
    let _ = write_value(dir, "freezer.state", "THAWED");
    Err(CgroupError::FreezeTimeout {
        path: dir.to_path_buf(),
    })
}

/// v1: whether the cgroup is frozen (FREEZING is not: it is not paused yet).
pub fn v1_is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    Ok(read_value(dir, "freezer.state")? == "FROZEN")
}

/// v2: whether `cgroup.events` says `frozen 1`.
pub fn v2_is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    let events = read_value(dir, "cgroup.events")?;
    Ok(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// v2: writes `cgroup.freeze`; when freezing, waits (10 ms steps, 10 s at most, as runc) for
/// `cgroup.events` to say `frozen 1`.
pub fn v2_set(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    write_value(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    if !frozen {
        return Ok(());
    }
    for _ in 0..1000 {
        if v2_is_frozen(dir)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(CgroupError::FreezeTimeout {
        path: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_on_a_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        // A plain file echoes what was written, like a freezer that freezes at once.
        v1_set(t.path(), true).unwrap();
        assert!(v1_is_frozen(t.path()).unwrap());
        v1_set(t.path(), false).unwrap();
        assert!(!v1_is_frozen(t.path()).unwrap());
    }

    #[test]
    fn v2_events_parsing() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(v2_is_frozen(t.path()).unwrap());
        v2_set(t.path(), true).unwrap();
        assert_eq!(read_value(t.path(), "cgroup.freeze").unwrap(), "1");
        std::fs::write(t.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(!v2_is_frozen(t.path()).unwrap());
    }
}
