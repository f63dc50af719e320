//! The host's cgroup layout: detecting it, moving controllers off cgroup2 on a hybrid host (crun
//! 1.8 refuses hybrid mode while cgroup2 holds any controller), undoing that, and removing the
//! cgroups the runtimes made under the bench's own prefix.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{mount, umount, MsFlags};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only cgroup2, mounted at /sys/fs/cgroup.
    Unified,
    /// v1 controllers plus cgroup2 at /sys/fs/cgroup/unified.
    Hybrid,
    /// Only v1 hierarchies.
    Legacy,
}

/// Detects the layout from the filesystem types under /sys/fs/cgroup.
pub fn layout() -> Layout {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    let is_v2 = |p: &str| statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    if is_v2(CGROUP_ROOT) {
        Layout::Unified
    } else if is_v2(UNIFIED) {
        Layout::Hybrid
    } else {
        Layout::Legacy
    }
}

/// Controllers currently bound to the hybrid cgroup2 hierarchy.
pub fn unified_controllers() -> Vec<String> {
    fs::read_to_string(Path::new(UNIFIED).join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// v1 mounts the bench made; [`V1Binding::undo`] (also run on drop) unmounts them, which hands the
/// controllers back to cgroup2 once their (empty) v1 hierarchies are released.
#[derive(Debug, Default)]
pub struct V1Binding {
    mounts: Vec<(String, PathBuf, bool)>,
}

impl V1Binding {
    /// Mounts every controller that cgroup2 holds as its own v1 hierarchy at
    /// /sys/fs/cgroup/<controller>.
    pub fn bind_all() -> io::Result<Self> {
        let mut b = Self::default();
        for ctrl in unified_controllers() {
            let target = Path::new(CGROUP_ROOT).join(&ctrl);
            let created = !target.exists();
            if created {
                fs::create_dir(&target)?;
            }
            if let Err(e) = mount_v1(&ctrl, &target) {
                if created {
                    let _ = fs::remove_dir(&target);
                }
                b.undo();
                return Err(io::Error::other(format!(
                    "mount -t cgroup -o {ctrl} on {}: {e}",
                    target.display()
                )));
            }
            b.mounts.push((ctrl, target, created));
        }
        Ok(b)
    }

    /// The controllers this binding moved.
    pub fn controllers(&self) -> Vec<&str> {
        self.mounts.iter().map(|(c, _, _)| c.as_str()).collect()
    }

    /// Unmounts what [`bind_all`](Self::bind_all) mounted and waits until cgroup2 lists the
    /// controllers again. A v1 hierarchy is only released if it had no child cgroups at umount
    /// time; a child that was still dying (removed, but referenced by an exiting task) keeps it
    /// alive, unmounted, forever. So when a controller does not come back, mount the hierarchy
    /// again (same root), check it has no children left and unmount it again. Returns the
    /// controllers that did not come back.
    pub fn undo(&mut self) -> Vec<String> {
        let moved: Vec<(String, PathBuf, bool)> = self.mounts.drain(..).collect();
        for (ctrl, target, created) in moved.iter().rev() {
            unmount(ctrl, target, *created);
        }
        let missing = |moved: &[(String, PathBuf, bool)]| {
            let now = unified_controllers();
            moved
                .iter()
                .filter(|(c, _, _)| !now.contains(c))
                .cloned()
                .collect::<Vec<_>>()
        };
        for attempt in 0..10 {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !missing(&moved).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let left = missing(&moved);
            if left.is_empty() || attempt == 9 {
                return left.into_iter().map(|(c, _, _)| c).collect();
            }
            for (ctrl, target, _) in &left {
                let created = !target.exists();
                if created && fs::create_dir(target).is_err() {
                    continue;
                }
                let mut foreign = Vec::new();
                if mount_v1(ctrl, target).is_ok() {
                    foreign = fs::read_dir(target)
                        .map(|rd| {
                            rd.flatten()
                                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                }
                unmount(ctrl, target, created);
                if !foreign.is_empty() {
                    // Cgroups someone else made while the controller was on v1: not ours to
                    // remove, and they pin the hierarchy. Say so and stop retrying.
                    eprintln!(
                        "lifecycle: the {ctrl} v1 hierarchy holds cgroups the bench did not make: {foreign:?}; \
                         {ctrl} stays on v1 until their owner removes them \
                         (mount -t cgroup -o {ctrl} cgroup DIR; rmdir DIR/NAME; umount DIR)"
                    );
                    return missing(&moved).into_iter().map(|(c, _, _)| c).collect();
                }
            }
        }
        Vec::new()
    }
}

fn mount_v1(ctrl: &str, target: &Path) -> nix::Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("cgroup"), target, Some("cgroup"), flags, Some(ctrl))
}

fn unmount(ctrl: &str, target: &Path, created: bool) {
    if let Err(e) = umount(target) {
        eprintln!("lifecycle: umount {} ({ctrl}): {e}", target.display());
        return;
    }
    if created {
        let _ = fs::remove_dir(target);
    }
}

impl Drop for V1Binding {
    fn drop(&mut self) {
        if !self.mounts.is_empty() {
            let missing = self.undo();
            if !missing.is_empty() {
                eprintln!("lifecycle: cgroup2 has not taken back {missing:?} yet");
            }
        }
    }
}

/// Every cgroup directory named `prefix` directly under a hierarchy root (v1 controllers, the
/// named systemd hierarchy, cgroup2 whether unified or hybrid).
fn prefix_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = Path::new(CGROUP_ROOT);
    if layout() == Layout::Unified {
        out.push(root.join(prefix));
    } else if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
            if is_dir && !is_link {
                out.push(e.path().join(prefix));
            }
        }
    }
    out.retain(|p| p.is_dir());
    out
}

/// Removes every cgroup under `/<prefix>` in every hierarchy, deepest first, killing any process
/// still in one (they are containers the bench started). Returns paths it could not remove.
pub fn remove_prefix_cgroups(prefix: &str) -> Vec<PathBuf> {
    let mut failed = Vec::new();
    for dir in prefix_dirs(prefix) {
        remove_tree(&dir, &mut failed);
    }
    failed
}

fn remove_tree(dir: &Path, failed: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), failed);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) if Instant::now() < deadline => {
                kill_procs(dir);
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                eprintln!("lifecycle: rmdir {}: {e}", dir.display());
                failed.push(dir.to_owned());
                return;
            }
        }
    }
}

fn kill_procs(dir: &Path) {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
