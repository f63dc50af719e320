//! `exec`: a new process in a running container. It joins every namespace of the container's
//! init (pid and time through the "for children" namespaces before the clone, the others by
//! `setns` on the init's pidfd), the container's cgroup, and gets its own credentials.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use crate::container::{sys_err, Container, ContainerError};
use crate::init::{self, ExecInitArgs};
use crate::namespaces::ForChildren;
use crate::spec::ProcessConfig;
use crate::state::{State, Status};
use crate::sync::{self, Message, SyncError};
use crate::sys::process::{self as sysproc, CloneResult};
use crate::Error;

/// Options of [`Container::exec`] (runc's `exec` flags that are not part of the process).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Where to write the new process's pid.
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the pty master to.
    pub console_socket: Option<PathBuf>,
    /// Pass fds 3 .. 3+N to the process.
    pub preserve_fds: u32,
    /// Exec even into a paused container.
    pub ignore_paused: bool,
    /// With a terminal and no console socket: receive the pty master for the caller to relay
    /// ([`ExecProcess::console`]).
    pub relay_console: bool,
}

/// A process started by [`Container::exec`].
#[derive(Debug)]
pub struct ExecProcess {
    /// Its pid.
    pub pid: i32,
    /// A pidfd for it (it is a child of the calling process).
    pub pidfd: OwnedFd,
    /// The pty master, when [`ExecOptions::relay_console`] asked for it.
    pub console: Option<OwnedFd>,
}

impl ExecProcess {
    /// Waits for the process and returns its exit status (code, or 128 + signal).
    pub fn wait(&self) -> Result<i32, Error> {
        let status = sysproc::pidfd_wait(self.pidfd.as_fd(), false).map_err(sys_err("waitid"))?;
        Ok(status.unwrap_or(0))
    }
}

impl Container {
    /// Starts `process` inside the container and returns once it has exec'ed (an exec failure,
    /// such as a missing program, is returned as an error).
    ///
    /// The process is non-dumpable from its clone to its execve. When no process of the
    /// container could get past that ([`Container::exec_exposes_runtime`] is false), the
    /// container's lock is held until the process has exec'ed, so that no concurrent `exec`
    /// can give CAP_SYS_PTRACE to a process meanwhile; otherwise (the caller then runs from a
    /// binary the container cannot write) it is released before the process is started (in a
    /// paused container, it may wait a long time, and `resume` needs the lock).
    pub fn exec(mut self, process: &Process, opts: &ExecOptions) -> Result<ExecProcess, Error> {
        let status = self.status();
        match status {
            Status::Running | Status::Created => {}
            Status::Paused if opts.ignore_paused => {}
            _ => {
                return Err(ContainerError::WrongStatus {
                    id: self.id().to_string(),
                    status,
                    op: "exec in it",
                }
                .into())
            }
        }
        let own_user_ns = self.has_own_user_ns();
        let hold_lock = !self.exposes_runtime(status, own_user_ns);
        self.note_ptrace_grant(process, own_user_ns)?;
        // Root changes its pid/time namespaces for children before the clone; anyone else may
        // not, and the child joins them itself and forks once more ("nested").
        let nested = !nix::unistd::geteuid().is_root();
        let process = ProcessConfig::from_spec(process)?;
        let ends = crate::console::prepare(
            opts.console_socket.as_deref(),
            process.terminal,
            opts.relay_console,
        )
        .map_err(ContainerError::from)?;
        let console = ends.child;
        let init_pidfd = self.init_pidfd()?;
        // In a user namespace whose setgroups is denied, the process keeps its groups.
        let setgroups = std::fs::read_to_string(format!("/proc/{}/setgroups", self.init_pid()));
        let allow_setgroups = setgroups.map(|s| s.trim() != "deny").unwrap_or(true);
        let join = self.join_flags();
        let linux = self.config()?.linux().as_ref();
        let seccomp = match linux {
            Some(l) => crate::spec::compile_seccomp(l)?,
            None => None,
        };
        let cgroup = self.cgroup().clone();
        // Root's process joins the cgroup by itself (no cgroup.procs write, see
        // `Cgroup::self_join`); a nested one is placed by us.
        let self_join = if nested {
            None
        } else {
            cgroup.self_join().ok()
        };
        let self_joined = self_join.is_some();
        let (clone_target, cgroup_tasks) = match self_join {
            Some(j) => (j.clone_into, j.tasks),
            None => (cgroup.clone_target(), Vec::new()),
        };
        let join_for_children = self.join_flags_for_children();
        let spec = self.config()?.clone();
        let state = self.state()?;
        let init_pid = self.init_pid();
        let locked = hold_lock.then_some(self);
        let (parent_end, child_end) = sync::pair().map_err(ContainerError::from)?;
        let for_children = if nested {
            None
        } else {
            Some(ForChildren::for_exec(init_pid)?)
        };
        // Non-dumpable from birth: the child is in the container's pid namespace at once.
        let dumpable = sysproc::is_dumpable().map_err(sys_err("prctl(PR_GET_DUMPABLE)"))?;
        sysproc::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
        // SAFETY: the runtime is single-threaded; the child runs `init::run_exec` and leaves
        // with `_exit` or execve, never returning into our caller.
        let cloned = unsafe { sysproc::clone3(0, clone_target.as_ref().map(|f| f.as_fd())) };
        if dumpable && !matches!(cloned, Ok(CloneResult::Child)) {
            sysproc::set_dumpable(true).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
        }
        let (pid, pidfd) = match cloned.map_err(sys_err("clone3"))? {
            CloneResult::Child => {
                drop(parent_end);
                let args = ExecInitArgs {
                    process: &process,
                    init_pidfd: init_pidfd.as_fd(),
                    join,
                    console: console.as_ref(),
                    preserve_fds: opts.preserve_fds,
                    allow_setgroups,
                    seccomp: seccomp.as_ref(),
                    nested,
                    join_for_children,
                    cgroup_tasks: &cgroup_tasks,
                };
                sysproc::exit_now(init::run_exec(args, child_end))
            }
            CloneResult::Parent { pid, pidfd } => (pid, pidfd),
        };
        drop(for_children);
        drop(child_end);
        drop(console);
        let kill_child = |e: Error| {
            let _ = sysproc::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = sysproc::pidfd_wait(pidfd.as_fd(), false);
            e
        };
        let (pid, pidfd) = if nested {
            // The intermediate child reports its own child (ours, by CLONE_PARENT) and exits.
            let grandchild = match parent_end.recv("Pid", None) {
                Ok(Message::Pid(p)) => p,
                Ok(Message::Error(text)) => {
                    let _ = sysproc::pidfd_wait(pidfd.as_fd(), false);
                    return Err(ContainerError::Init(text).into());
                }
                Ok(got) => {
                    return Err(kill_child(
                        ContainerError::from(SyncError::Unexpected {
                            expected: "Pid",
                            got,
                        })
                        .into(),
                    ))
                }
                Err(e) => return Err(kill_child(ContainerError::from(e).into())),
            };
            let _ = sysproc::pidfd_wait(pidfd.as_fd(), false);
            let gfd = sysproc::pidfd_open(grandchild)
                .map_err(sys_err(format!("pidfd_open {grandchild}")))?;
            (grandchild, gfd)
        } else {
            (pid, pidfd)
        };
        let kill_child = |e: Error| {
            let _ = sysproc::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = sysproc::pidfd_wait(pidfd.as_fd(), false);
            e
        };
        drop(cgroup_tasks);
        if !self_joined && clone_target.is_none() {
            match cgroup.add_pid(pid) {
                Ok(()) => {}
                // Without root, a container may have no cgroup of its own (rootless).
                Err(_) if nested => {}
                Err(e) => return Err(kill_child(e.into())),
            }
        }
        parent_end
            .send(&Message::Go)
            .map_err(|e| kill_child(ContainerError::from(e).into()))?;
        // The channel is close-on-exec: end-of-file means the program was exec'ed.
        let mut got = parent_end.recv_with_fd("exec", None);
        if let Ok((Message::SeccompFd, Some(fd))) = &got {
            let st = State {
                pid,
                ..state.clone()
            };
            crate::container::forward_seccomp_fd(&spec, &st, fd).map_err(&kill_child)?;
            got = parent_end.recv_with_fd("exec", None);
        }
        match got.map(|(m, _)| m) {
            Err(SyncError::Eof { .. }) => {}
            Ok(Message::Error(text)) => {
                let _ = sysproc::pidfd_wait(pidfd.as_fd(), false);
                return Err(ContainerError::Init(text).into());
            }
            Ok(got) => {
                return Err(kill_child(
                    ContainerError::from(SyncError::Unexpected {
                        expected: "exec",
                        got,
                    })
                    .into(),
                ))
            }
            Err(e) => return Err(kill_child(ContainerError::from(e).into())),
        }
        drop(locked);
        if let Some(path) = &opts.pid_file {
            crate::container::write_pid_file(path, pid)?;
        }
        let console = match ends.relay {
            Some(sock) => Some(crate::console::recv_master(&sock).map_err(ContainerError::from)?),
            None => None,
        };
        Ok(ExecProcess {
            pid,
            pidfd,
            console,
        })
    }

    /// The pid and time namespaces of the container's config (joined for children).
    fn join_flags_for_children(&self) -> CloneFlags {
        self.config_namespaces()
            .filter(|k| matches!(k, LinuxNamespaceType::Pid | LinuxNamespaceType::Time))
            .fold(CloneFlags::empty(), |acc, k| {
                acc | crate::namespaces::clone_flag(k)
            })
    }

    /// The namespace types of the container's config (none when it cannot be read: `exec`
    /// reads it first and fails then).
    fn config_namespaces(&self) -> impl Iterator<Item = LinuxNamespaceType> + '_ {
        self.config()
            .ok()
            .and_then(|c| c.linux().as_ref())
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .map(|n| n.typ())
    }

    /// The namespaces an exec'ed process joins by `setns` on the init's pidfd: those of the
    /// container's config, but pid and time (joined before the clone).
    fn join_flags(&self) -> CloneFlags {
        self.config_namespaces()
            .filter(|k| !matches!(k, LinuxNamespaceType::Pid | LinuxNamespaceType::Time))
            .fold(CloneFlags::empty(), |acc, k| {
                acc | crate::namespaces::clone_flag(k)
            })
    }
}
