//! An unprivileged user for the rootless tests: created with `useradd` (which gives it a
//! subordinate id range in /etc/subuid and /etc/subgid), running a copy of the binary under test
//! from a world-readable directory, with its own `$XDG_RUNTIME_DIR`; on drop its containers are
//! force-deleted, its leftover processes killed (by pid), the user removed with `userdel` and
//! the directories removed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::{binary, spawn_to_files, unique, wait_timeout, Output};

/// useradd/userdel lock /etc/passwd: one at a time in this process.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Runs useradd/userdel-like `cmd` under [`ACCOUNTS`], retrying while /etc/passwd is locked.
fn account_command(prog: &str, args: &[&str]) -> Result<(), String> {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = String::new();
    for _ in 0..50 {
        let out = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{prog}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        last = format!(
            "{prog} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !last.contains("lock") {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(last)
}

/// The first `name:start:count` range of `name` (or its uid) in /etc/subuid or /etc/subgid.
fn sub_range(file: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let who = f.next()?;
        if who != name && who != id.to_string() {
            return None;
        }
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// A throwaway unprivileged user (see the module docs).
pub struct RootlessUser {
    /// The user name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    dir: PathBuf,
    bin: PathBuf,
    xdg: PathBuf,
    ids: Mutex<Vec<String>>,
}

impl RootlessUser {
    /// Creates the user (`useradd -M -U`), copies the binary under test to a world-readable
    /// directory and makes its `$XDG_RUNTIME_DIR` (mode 0700, owned by it).
    pub fn create() -> RootlessUser {
        let name = unique("crl");
        account_command("useradd", &["-M", "-U", "-s", "/bin/sh", &name])
            .unwrap_or_else(|e| panic!("creating the test user: {e}"));
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, &name])
                .output()
                .unwrap_or_else(|e| panic!("id: {e}"));
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("id {flag} {name}: {e}"))
        };
        let dir = std::env::temp_dir().join(format!("{name}-home"));
        let user = RootlessUser {
            uid: id("-u"),
            gid: id("-g"),
            bin: dir.join("coracle"),
            xdg: dir.join("xdg"),
            dir,
            name,
            ids: Mutex::new(Vec::new()),
        };
        // From here on, Drop removes the user even if the setup below panics.
        let mode = |p: &Path, m: u32| {
            fs::set_permissions(p, fs::Permissions::from_mode(m))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
        };
        fs::create_dir_all(&user.xdg).unwrap_or_else(|e| panic!("mkdir: {e}"));
        mode(&user.dir, 0o755);
        fs::copy(binary(), &user.bin)
            .unwrap_or_else(|e| panic!("copy {}: {e}", binary().display()));
        mode(&user.bin, 0o755);
        user.chown(&user.xdg.clone());
        mode(&user.xdg, 0o700);
        user
    }

    /// The copy of the binary the user runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The user's `$XDG_RUNTIME_DIR`.
    pub fn xdg_runtime_dir(&self) -> &Path {
        &self.xdg
    }

    /// The user's subordinate uid range `(start, count)` from /etc/subuid.
    pub fn subuid(&self) -> Option<(u32, u32)> {
        sub_range("/etc/subuid", &self.name, self.uid)
    }

    /// The user's subordinate gid range `(start, count)` from /etc/subgid.
    pub fn subgid(&self) -> Option<(u32, u32)> {
        sub_range("/etc/subgid", &self.name, self.gid)
    }

    /// `chown -R` of `path` to the user.
    pub fn chown(&self, path: &Path) {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap_or_else(|e| panic!("chown: {e}"));
        assert!(st.success(), "chown -R {}", path.display());
    }

    /// Remembers container `id` for the force-delete on drop.
    pub fn track(&self, id: &str) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.push(id.to_string());
        }
    }

    /// A command running the binary as the user: a clean environment (PATH, HOME=/, USER,
    /// `XDG_RUNTIME_DIR`), no supplementary groups, cwd `/`, stdin /dev/null.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", "/")
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("XDG_RUNTIME_DIR", &self.xdg)
            .current_dir("/")
            .stdin(Stdio::null())
            .uid(self.uid)
            .gid(self.gid);
        c
    }

    /// Runs the binary as the user with `args`, output to files in `work` (named `stem`).
    pub fn run(&self, args: &[&str], work: &Path, stem: &str) -> Output {
        let describe = format!(
            "(as {}) {} {}",
            self.name,
            self.bin.display(),
            args.join(" ")
        );
        spawn_to_files(&mut self.command(args), work, stem, &describe)
    }

    /// Pids of the processes whose real uid is the user's.
    pub fn processes(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return out;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(status) = fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse::<u32>().ok());
            if uid == Some(self.uid) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        let ids = self.ids.lock().map(|i| i.clone()).unwrap_or_default();
        for id in ids {
            let mut c = self.command(&["delete", "--force", &id]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            if let Ok(mut child) = c.spawn() {
                let _ = wait_timeout(&mut child, Duration::from_secs(20));
            }
        }
        for _ in 0..50 {
            let pids = self.processes();
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-9")
                .args(pids.iter().map(|p| p.to_string()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = account_command("userdel", &[&self.name]) {
            eprintln!("cleanup: {e}");
        }
        crate::remove_tree_unless_mounted(&self.dir);
    }
}
