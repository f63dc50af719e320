//! The OCI hooks (prestart, createRuntime, createContainer, startContainer, poststart,
//! poststop): each runs `path` with `args` and `env`, the container's state JSON on stdin, and
//! is killed after `timeout` seconds.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::{Hook, Hooks};

use crate::state::State;
use crate::sys::process as sysproc;

/// Errors of the hooks module.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook could not be started.
    #[error("{kind} hook {index} ({path}): start: {source}")]
    Spawn {
        /// The hook kind (`createRuntime`, ...).
        kind: &'static str,
        /// Its index in the list.
        index: usize,
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The hook exited with a non-zero status.
    #[error("{kind} hook {index} ({path}): exit status {status}: {stderr}")]
    Failed {
        /// The hook kind.
        kind: &'static str,
        /// Its index.
        index: usize,
        /// Its path.
        path: PathBuf,
        /// Its exit status (128 + signal when killed).
        status: i32,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
    /// The hook ran past its timeout and was killed.
    #[error("{kind} hook {index} ({path}): timed out after {secs}s")]
    Timeout {
        /// The hook kind.
        kind: &'static str,
        /// Its index.
        index: usize,
        /// Its path.
        path: PathBuf,
        /// The timeout.
        secs: i64,
    },
}

/// When a hook list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Deprecated; runs with createRuntime, before it.
    Prestart,
    /// In the runtime's namespaces, after the container's namespaces exist.
    CreateRuntime,
    /// In the container's namespaces, before pivot_root.
    CreateContainer,
    /// In the container, after `start`, before the user's program.
    StartContainer,
    /// In the runtime's namespaces, after the user's program started.
    Poststart,
    /// In the runtime's namespaces, after the container was deleted.
    Poststop,
}

impl Kind {
    /// The name used in config.json.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks`.
    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            #[allow(deprecated)]
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// Runs every hook of `kind` in `hooks` in order; stops at the first failure.
pub fn run_all(hooks: Option<&Hooks>, kind: Kind, state: &State) -> Result<(), HookError> {
    let Some(hooks) = hooks else { return Ok(()) };
    let list = kind.select(hooks);
    if list.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).unwrap_or_default();
    for (index, hook) in list.iter().enumerate() {
        run_one(hook, kind.name(), index, &json)?;
    }
    Ok(())
}

fn run_one(hook: &Hook, kind: &'static str, index: usize, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().clone();
    let spawn_err = |source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(&path);
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let pid = i32::try_from(child.id()).unwrap_or(-1);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state);
    }
    let timeout = hook.timeout().filter(|t| *t > 0);
    if let Some(secs) = timeout {
        let pidfd = sysproc::pidfd_open(pid).map_err(spawn_err)?;
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let limit = sysproc::poll_timeout(Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
        let exited = loop {
            match nix::poll::poll(&mut fds, limit) {
                Err(nix::Error::EINTR) => continue,
                Ok(n) => break n > 0,
                Err(_) => break true,
            }
        };
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                kind,
                index,
                path,
                secs,
            });
        }
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let status = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(HookError::Failed {
        kind,
        index,
        path,
        status,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: serde_json::Value) -> Hooks {
        serde_json::from_value(json).unwrap()
    }

    fn state() -> State {
        State {
            oci_version: "1.3.0".into(),
            id: "hooked".into(),
            pid: 42,
            status: crate::state::Status::Created,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: String::new(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn state_on_stdin_args_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {}; echo \"$0 $1 $FOO\" >> {}",
            out.display(),
            out.display()
        );
        let hooks = hook(serde_json::json!({"poststart": [
            {"path": "/bin/sh", "args": ["myhook", "-c", script, "arg1"], "env": ["FOO=bar"]}
        ]}));
        run_all(Some(&hooks), Kind::Poststart, &state()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("\"id\":\"hooked\""), "{text}");
        assert!(text.contains("\"pid\":42"), "{text}");
        assert!(text.ends_with("arg1  bar\n"), "{text}");
    }

    #[test]
    fn failure_and_timeout() {
        let hooks = hook(serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 3"]}
        ], "poststop": [
            {"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}
        ]}));
        let e = run_all(Some(&hooks), Kind::CreateRuntime, &state()).unwrap_err();
        assert!(
            matches!(&e, HookError::Failed { status: 3, stderr, .. } if stderr == "oops"),
            "{e}"
        );
        let start = std::time::Instant::now();
        let e = run_all(Some(&hooks), Kind::Poststop, &state()).unwrap_err();
        assert!(matches!(e, HookError::Timeout { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(4));
        let e = run_all(
            Some(&hook(
                serde_json::json!({"prestart": [{"path": "/nonexistent"}]}),
            )),
            Kind::Prestart,
            &state(),
        );
        assert!(matches!(e, Err(HookError::Spawn { .. })));
    }
}
