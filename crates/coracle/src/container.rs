//! The container lifecycle: create, start, kill, delete, state, wait.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxNamespaceType;

use crate::cgroups::Cgroup;
use crate::hooks;
use crate::init::{self, InitArgs};
use crate::namespaces::{ForChildren, IdMapper};
use crate::spec::Config;
use crate::state::{self, ContainerDir, Record, State, Status};
use crate::sync::{self, Message};
use crate::sys::process::{self as sysproc, CloneResult};
use crate::Error;

/// How long `create` waits for the container process to set itself up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `delete` waits for killed processes to go.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of lifecycle operations.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The operation is not allowed in the container's current status.
    #[error("container {id} is {status}: cannot {op}")]
    WrongStatus {
        /// The container.
        id: String,
        /// Its status.
        status: Status,
        /// What was asked.
        op: &'static str,
    },
    /// A system call of the runtime failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was done.
        op: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The container process failed to set itself up.
    #[error("container init: {0}")]
    Init(String),
    /// The parent/child protocol failed.
    #[error("container init: {0}")]
    Sync(#[from] sync::SyncError),
    /// The container process exited before `start` released it.
    #[error("container {0}: init exited before start")]
    InitDied(String),
    /// The console.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// A hook failed.
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    /// A feature the config asks for that this runtime does not offer yet.
    #[error("{0}: not supported yet")]
    Unsupported(&'static str),
}

pub(crate) fn sys_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let op = op.into();
    move |source| ContainerError::Sys { op, source }
}

pub(crate) fn nix_err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> ContainerError {
    let op = op.into();
    move |e| ContainerError::Sys {
        op,
        source: e.into(),
    }
}

/// Options of [`Container::create`] (runc's `create` flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The bundle directory (holding config.json).
    pub bundle: PathBuf,
    /// Where to write the init's pid (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the pty master to (`--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (`--no-pivot`).
    pub no_pivot: bool,
    /// Do not make a new session keyring (`--no-new-keyring`).
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+N to the container (`--preserve-fds`).
    pub preserve_fds: u32,
    /// With `process.terminal` and no console socket: receive the pty master here, for the
    /// caller to relay ([`Container::take_console`]), as `runc run` in the foreground does.
    pub relay_console: bool,
    /// Socket-activation fds (`LISTEN_FDS` of the caller): passed on as fds 3 .. 3+N, before
    /// the `preserve_fds` ones, with `LISTEN_FDS=N` and `LISTEN_PID=1` in the environment.
    pub listen_fds: u32,
}

impl CreateOptions {
    /// Options for `bundle`, everything else default.
    pub fn new(bundle: impl Into<PathBuf>) -> Self {
        Self {
            bundle: bundle.into(),
            ..Self::default()
        }
    }
}

/// A container in a state directory. Holding this value holds the container's lock.
#[derive(Debug)]
pub struct Container {
    dir: ContainerDir,
    record: Record,
    /// A pidfd of the init, when this process created it (it is then our child).
    pidfd: Option<OwnedFd>,
    /// The pty master received for relaying (see [`CreateOptions::relay_console`]).
    console: Option<OwnedFd>,
}

/// Undoes a half-made container when `create` fails at any step.
struct CreateGuard {
    dir: Option<ContainerDir>,
    cgroup: Option<Cgroup>,
    child: Option<OwnedFd>,
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        // Errors are deliberately swallowed: we are already failing with the first error.
        if let Some(pidfd) = self.child.take() {
            let _ = sysproc::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
            let _ = sysproc::pidfd_wait(pidfd.as_fd(), false);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

impl Container {
    /// Creates the container `id` in the state root `root` from `opts.bundle`: checks the
    /// bundle, makes the state directory and the cgroup, clones the container process, and
    /// returns once it waits for [`Container::start`]. On any error nothing is left behind.
    pub fn create(id: &str, root: &Path, opts: &CreateOptions) -> Result<Self, Error> {
        state::check_id(id)?;
        let mut config = Config::load(&opts.bundle)?;
        if opts.listen_fds > 0 {
            for var in [
                format!("LISTEN_FDS={}", opts.listen_fds),
                "LISTEN_PID=1".to_string(),
            ] {
                config
                    .process
                    .env
                    .push(std::ffi::CString::new(var).unwrap_or_default());
            }
        }
        let console = crate::console::prepare(
            opts.console_socket.as_deref(),
            config.process.terminal,
            opts.relay_console,
        )
        .map_err(ContainerError::from)?;
        let mut cgroup = Cgroup::resolve(config.cgroups_path.as_deref(), id)?;
        let linux = config.spec.linux().as_ref();
        let resources = linux
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        cgroup.check_resources(&resources)?;
        let dir = ContainerDir::create(root, id)?;
        failpoint("after-state-dir");
        let mut guard = CreateGuard {
            dir: Some(dir),
            cgroup: None,
            child: None,
        };
        let mut record = Record {
            state: State {
                oci_version: config.spec.version().clone(),
                id: id.to_string(),
                pid: 0,
                status: Status::Creating,
                bundle: config.bundle.clone(),
                rootfs: config.rootfs.clone(),
                created: state::now_rfc3339(),
                owner: String::new(),
                annotations: config.spec.annotations().clone().unwrap_or_default(),
            },
            init_start_time: 0,
            cgroup: cgroup.clone(),
            config: match config.json.take() {
                Some(text) => state::StoredConfig::from_json(text),
                None => state::StoredConfig::from_spec(&config.spec),
            }
            .map_err(|source| state::StateError::Parse {
                path: opts.bundle.join("config.json"),
                source,
            })?,
            hooks: config.spec.hooks().clone(),
            // The cgroup directories about to be made: a create killed while making them
            // leaves a record from which delete can remove them.
            cgroup_pending: cgroup
                .paths()
                .into_iter()
                .map(|(_, p)| p)
                .filter(|p| !p.exists())
                .collect(),
            ptrace_granted: false,
        };
        let dir = guard
            .dir
            .as_ref()
            .ok_or(ContainerError::Unsupported("state"))?;
        dir.write(&record)?;
        failpoint("after-creating-record");
        let fifo = make_fifo(&dir.fifo_path())?;
        // Without root, a cgroup we may not make is skipped with a warning, as runc does.
        let in_cgroup = match cgroup.create() {
            Ok(()) => true,
            Err(e) if crate::namespaces::is_rootless() && is_permission_error(&e) => {
                if config
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.resources().as_ref())
                    .is_some()
                {
                    eprintln!("coracle: warning: linux.resources ignored: rootless, no cgroup");
                }
                false
            }
            Err(e) => return Err(e.into()),
        };
        guard.cgroup = Some(cgroup.clone());
        if in_cgroup {
            match cgroup.apply(&resources) {
                // Rootless, as runc: a limit we may not set is a warning, not a failure.
                Err(e) if crate::namespaces::is_rootless() && is_permission_error(&e) => {
                    eprintln!("coracle: warning: linux.resources not applied (rootless): {e}");
                }
                other => other?,
            }
        }
        record.cgroup = cgroup.clone();
        record.cgroup_pending.clear();
        // Recorded at once, so that a delete after a crash finds the directories.
        failpoint("after-cgroup");
        dir.write(&record)?;
        failpoint("after-cgroup-record");

        let (parent_end, child_end) = sync::pair().map_err(ContainerError::from)?;
        // The child joins its cgroup by itself (no cgroup.procs write, see `Cgroup::self_join`),
        // unless prestart/createRuntime hooks, run by us, must find it there first.
        let runtime_hooks = config.spec.hooks().as_ref().is_some_and(|h| {
            [hooks::Kind::Prestart, hooks::Kind::CreateRuntime]
                .iter()
                .any(|k| !k.select(h).is_empty())
        });
        let self_join = in_cgroup && !runtime_hooks;
        let (clone_target, cgroup_tasks) = if self_join {
            let j = cgroup.self_join()?;
            (j.clone_into, j.tasks)
        } else if in_cgroup {
            (cgroup.clone_target(), Vec::new())
        } else {
            (None, Vec::new())
        };
        let id_mapper = IdMapper::for_config(&config.namespaces);
        let for_children = ForChildren::for_create(&config)?;
        let flags = u64::from(config.namespaces.clone_flags().bits().cast_unsigned());
        // SAFETY: the runtime is single-threaded (documented requirement of `create`); the child
        // runs `init::run` and leaves with `_exit`, never returning into our caller.
        let cloned = unsafe { sysproc::clone3(flags, clone_target.as_ref().map(|f| f.as_fd())) };
        let (pid, pidfd) = match cloned.map_err(sys_err("clone3"))? {
            CloneResult::Child => {
                drop(parent_end);
                if let Some(dir) = &guard.dir {
                    dir.release_in_child();
                }
                let args = InitArgs {
                    id,
                    config: &config,
                    fifo: fifo.as_fd(),
                    no_pivot: opts.no_pivot,
                    no_new_keyring: opts.no_new_keyring,
                    allow_setgroups: id_mapper.allows_setgroups()
                        && (config.namespaces.creates(LinuxNamespaceType::User)
                            || crate::namespaces::setgroups_allowed_here()),
                    console: console.child.as_ref(),
                    preserve_fds: opts.preserve_fds + opts.listen_fds,
                    self_placed: self_join,
                    cgroup_tasks: &cgroup_tasks,
                };
                let code = init::run(args, child_end);
                sysproc::exit_now(code)
            }
            CloneResult::Parent { pid, pidfd } => (pid, pidfd),
        };
        failpoint("after-clone");
        drop(for_children);
        drop(child_end);
        drop(fifo);
        let console_master = console.relay;
        drop(console.child);
        guard.child = Some(pidfd);

        if config.namespaces.creates(LinuxNamespaceType::User) {
            id_mapper.write(pid, &config.namespaces)?;
            // The child, non-dumpable in its own user namespace, may not write its own
            // /proc/self/oom_score_adj any more (its owner is not mapped there): we do, as
            // root on the host (the child runs nothing of the container's yet).
            if let Some(adj) = config.process.oom_score_adj {
                let path = format!("/proc/{pid}/oom_score_adj");
                std::fs::write(&path, adj.to_string())
                    .map_err(sys_err(format!("process.oomScoreAdj: write {path}")))?;
            }
        }
        // The child may start on its namespaces and root filesystem while we put it in its
        // cgroup (the first write to a v1 cgroup.procs takes milliseconds): it waits for
        // `Placed` before anything that depends on the cgroup, and before user code.
        parent_end
            .send(&Message::Go)
            .map_err(ContainerError::from)?;
        failpoint("after-go");
        drop(cgroup_tasks);
        if in_cgroup && !self_join && clone_target.is_none() {
            cgroup.add_pid(pid)?;
        }
        failpoint("after-id-maps");
        // prestart and createRuntime hooks: the namespaces exist, nothing is mounted yet.
        record.state.pid = pid;
        let hooks = config.spec.hooks().as_ref();
        hooks::run_all(hooks, hooks::Kind::Prestart, &record.state)
            .map_err(ContainerError::from)?;
        hooks::run_all(hooks, hooks::Kind::CreateRuntime, &record.state)
            .map_err(ContainerError::from)?;
        failpoint("after-hooks");
        // A child that failed meanwhile has sent its error: the wait below reports it.
        let _ = parent_end.send(&Message::Placed);
        loop {
            match parent_end.recv_with_fd("Ready", Some(SETUP_TIMEOUT)) {
                Ok((Message::Ready, _)) => {
                    failpoint("after-ready");
                    break;
                }
                Ok((Message::SeccompFd, Some(fd))) => {
                    let mut st = record.state.clone();
                    st.status = Status::Creating;
                    forward_seccomp_fd(&config.spec, &st, &fd)?;
                }
                Ok((Message::Error(text), _)) => return Err(ContainerError::Init(text).into()),
                Ok((got, _)) => {
                    let e = sync::SyncError::Unexpected {
                        expected: "Ready",
                        got,
                    };
                    return Err(ContainerError::from(e).into());
                }
                Err(e) => return Err(ContainerError::from(e).into()),
            }
        }
        let (_, start_time) =
            state::proc_stat(pid).ok_or_else(|| ContainerError::InitDied(id.to_string()))?;
        record.state.status = Status::Created;
        record.init_start_time = start_time;
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        failpoint("before-final-record");
        let dir = guard
            .dir
            .as_ref()
            .ok_or(ContainerError::Unsupported("state"))?;
        dir.write(&record)?;
        failpoint("after-final-record");
        // Success: disarm the guard.
        let pidfd = guard.child.take();
        guard.cgroup = None;
        let dir = guard
            .dir
            .take()
            .ok_or(ContainerError::Unsupported("state"))?;
        let console = match console_master {
            Some(sock) => Some(crate::console::recv_master(&sock).map_err(ContainerError::from)?),
            None => None,
        };
        Ok(Self {
            dir,
            record,
            pidfd,
            console,
        })
    }

    /// Opens the existing container `id` under `root` (and takes its lock).
    pub fn load(id: &str, root: &Path) -> Result<Self, Error> {
        let dir = ContainerDir::open(root, id)?;
        let record = dir.read()?;
        Ok(Self {
            dir,
            record,
            pidfd: None,
            console: None,
        })
    }

    /// `delete --force`: deletes the container `id` (killing it), or what an interrupted
    /// `create` left of it; succeeds when there is no such container.
    pub fn delete_forced(id: &str, root: &Path) -> Result<(), Error> {
        match Self::load(id, root) {
            Ok(c) => c.delete(true),
            Err(Error::State(state::StateError::NotFound(_))) => {
                Ok(ContainerDir::remove_remains(root, id)?)
            }
            Err(e) => Err(e),
        }
    }

    /// The ids of every container under `root`.
    pub fn list(root: &Path) -> Result<Vec<String>, Error> {
        Ok(state::list_ids(root)?)
    }

    /// The container id.
    pub fn id(&self) -> &str {
        self.dir.id()
    }

    /// The status, derived from facts (see [`ContainerDir::status`]).
    pub fn status(&self) -> Status {
        self.dir.status(&self.record)
    }

    /// The OCI state, with the status derived from facts.
    pub fn state(&self) -> Result<State, Error> {
        let mut st = self.record.state.clone();
        st.status = self.status();
        if st.status == Status::Stopped {
            st.pid = 0;
        }
        Ok(st)
    }

    /// The bundle's config as it was at create (parsed from the state on first use).
    pub fn config(&self) -> Result<&oci_spec::runtime::Spec, Error> {
        Ok(self
            .record
            .config
            .spec(&self.dir.path().join(state::STATE_FILE))?)
    }

    /// Whether a process of this container could open the runtime binary through
    /// /proc/PID/exe of a process [`Container::exec`] makes, although that process is
    /// non-dumpable from its clone to its execve (CVE-2019-5736): only a process holding
    /// CAP_SYS_PTRACE in our user namespace can, and only one that sees our pid namespace. So it
    /// cannot when the container has a user namespace other than ours (its capabilities are
    /// that namespace's); otherwise it can when the pid namespace is not the container's own
    /// (others share it) or when the init's config, or a process exec'ed earlier
    /// ([`Record::ptrace_granted`]), names CAP_SYS_PTRACE. Also true for a paused container,
    /// whose lock `exec` cannot hold until its process has exec'ed (see [`Container::exec`]).
    /// When this is true the caller should run from a binary the container cannot write (the
    /// CLI re-executes from a read-only view of itself, [`crate::sys::fs::reexec_from_readonly_view`]).
    pub fn exec_exposes_runtime(&self) -> bool {
        self.exposes_runtime(self.status(), self.has_own_user_ns())
    }

    /// [`Container::exec_exposes_runtime`] for a known status and user namespace.
    pub(crate) fn exposes_runtime(&self, status: Status, own_user_ns: bool) -> bool {
        if status == Status::Paused {
            return true;
        }
        if own_user_ns {
            return false;
        }
        let own_pid_ns = self.config_namespace(LinuxNamespaceType::Pid) == Some(None);
        !own_pid_ns
            || self.record.ptrace_granted
            || self.config().map_or(true, |c| {
                c.process()
                    .as_ref()
                    .is_some_and(crate::capabilities::names_sys_ptrace)
            })
    }

    /// Whether the init runs in a user namespace other than ours (unknown: no).
    pub(crate) fn has_own_user_ns(&self) -> bool {
        let ns = |pid: &str| std::fs::metadata(format!("/proc/{pid}/ns/user")).ok();
        use std::os::unix::fs::MetadataExt;
        match (ns(&self.init_pid().to_string()), ns("self")) {
            (Some(init), Some(ours)) => (init.dev(), init.ino()) != (ours.dev(), ours.ino()),
            _ => false,
        }
    }

    /// The config's namespace of kind `kind`: `None` without one, `Some(path)` with one (a path
    /// to join, or `None` for a new one).
    pub(crate) fn config_namespace(&self, kind: LinuxNamespaceType) -> Option<Option<PathBuf>> {
        self.config()
            .ok()?
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .find(|n| n.typ() == kind)
            .map(|n| n.path().clone())
    }

    /// Records, before `exec` starts `process`, that it names CAP_SYS_PTRACE in a container
    /// that has no user namespace of its own (see [`Container::exec_exposes_runtime`]).
    pub(crate) fn note_ptrace_grant(
        &mut self,
        process: &oci_spec::runtime::Process,
        own_user_ns: bool,
    ) -> Result<(), Error> {
        if self.record.ptrace_granted
            || own_user_ns
            || !crate::capabilities::names_sys_ptrace(process)
        {
            return Ok(());
        }
        self.record.ptrace_granted = true;
        Ok(self.dir.write(&self.record)?)
    }

    /// The init's pid as recorded (check [`Container::status`] before trusting it).
    pub fn init_pid(&self) -> i32 {
        self.record.state.pid
    }

    /// The pty master of the container's terminal, when [`CreateOptions::relay_console`]
    /// asked for it (once).
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> &Cgroup {
        &self.record.cgroup
    }

    fn wrong(&self, status: Status, op: &'static str) -> Error {
        ContainerError::WrongStatus {
            id: self.id().to_string(),
            status,
            op,
        }
        .into()
    }

    /// A pidfd of the init, checked to be the process this container started.
    pub(crate) fn init_pidfd(&self) -> Result<OwnedFd, Error> {
        if let Some(fd) = &self.pidfd {
            return Ok(fd.try_clone().map_err(sys_err("dup pidfd"))?);
        }
        let pid = self.record.state.pid;
        let fd = sysproc::pidfd_open(pid).map_err(sys_err(format!("pidfd_open {pid}")))?;
        // The pid could have been reused between our read of state and pidfd_open.
        if !state::init_alive(pid, self.record.init_start_time) {
            return Err(self.wrong(Status::Stopped, "signal it"));
        }
        Ok(fd)
    }

    /// Releases a created container to exec its program (opens the exec FIFO). Never hangs on
    /// a dead init: the init's pidfd is polled together with the FIFO.
    pub fn start(&mut self) -> Result<(), Error> {
        let status = self.status();
        if status != Status::Created {
            return Err(self.wrong(status, "start it"));
        }
        // The pidfd first: once the FIFO is open the program may run and exit at once.
        let pidfd = self.init_pidfd()?;
        let fifo_path = self.dir.fifo_path();
        let mut fifo = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo_path)
            .map_err(sys_err(format!("open {}", fifo_path.display())))?;
        loop {
            let mut fds = [
                nix::poll::PollFd::new(fifo.as_fd(), nix::poll::PollFlags::POLLIN),
                nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(nix_err("poll exec fifo")(e).into()),
                Ok(_) => {}
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            if ready[0] {
                let mut byte = [0u8; 1];
                match fifo.read(&mut byte) {
                    Ok(1) => break,
                    Ok(_) => return Err(ContainerError::InitDied(self.id().to_string()).into()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(sys_err("read exec fifo")(e).into()),
                }
            }
            if ready[1] {
                return Err(ContainerError::InitDied(self.id().to_string()).into());
            }
        }
        std::fs::remove_file(&fifo_path)
            .map_err(sys_err(format!("remove {}", fifo_path.display())))?;
        // No state.json write: `running` is derived from the FIFO being gone.
        self.record.state.status = Status::Running;
        let hooks = self.record.hooks.as_ref();
        if let Err(e) = hooks::run_all(hooks, hooks::Kind::Poststart, &self.record.state) {
            // As runc: a failed poststart hook stops the container.
            let _ = self.kill(Signal::SIGKILL, false);
            return Err(ContainerError::from(e).into());
        }
        Ok(())
    }

    /// Sends `signal` to the init, or with `all` to every process in the container's cgroup.
    pub fn kill(&self, signal: Signal, all: bool) -> Result<(), Error> {
        let status = self.status();
        if matches!(status, Status::Stopped | Status::Creating) && !all {
            return Err(self.wrong(status, "signal it"));
        }
        if all {
            return Ok(self.record.cgroup.signal_all(signal)?);
        }
        let pidfd = self.init_pidfd()?;
        sysproc::pidfd_send_signal(pidfd.as_fd(), signal as i32)
            .map_err(|e| sys_err(format!("signal {signal} to {}", self.record.state.pid))(e).into())
    }

    /// Freezes every process of a running container (status `paused`).
    pub fn pause(&self) -> Result<(), Error> {
        match self.status() {
            Status::Running => Ok(self.record.cgroup.freeze()?),
            status => Err(self.wrong(status, "pause it (not running)")),
        }
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<(), Error> {
        match self.status() {
            Status::Paused => Ok(self.record.cgroup.thaw()?),
            status => Err(self.wrong(status, "resume it (not paused)")),
        }
    }

    /// Waits for the init to exit and returns its exit status (the code, or 128 + signal).
    /// Only for the process that created the container (the init is its child).
    pub fn wait(&self) -> Result<i32, Error> {
        let pidfd = self
            .pidfd
            .as_ref()
            .ok_or(ContainerError::Unsupported("wait without being the parent"))?;
        let status = sysproc::pidfd_wait(pidfd.as_fd(), false).map_err(sys_err("waitid"))?;
        Ok(status.unwrap_or(0))
    }

    /// A pidfd of the init (for an event loop that waits for it and forwards signals).
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Deletes the container: its processes (which must be stopped, or it must be only
    /// created, unless `force`), its cgroup and its state directory.
    pub fn delete(self, force: bool) -> Result<(), Error> {
        let status = self.status();
        match status {
            Status::Stopped | Status::Created | Status::Creating => {}
            Status::Running | Status::Paused if force => {}
            _ => return Err(self.wrong(status, "delete it (not stopped; use --force)")),
        }
        if status == Status::Paused {
            // Frozen tasks cannot die: signal_all kills them all, then thaws the cgroup.
            let _ = self.record.cgroup.signal_all(Signal::SIGKILL);
        }
        if status != Status::Stopped {
            if let Ok(pidfd) = self.init_pidfd() {
                let _ = sysproc::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
                wait_exit(&pidfd);
            }
        }
        let cgroup = &self.record.cgroup;
        let deadline = Instant::now() + KILL_TIMEOUT;
        loop {
            let pids = cgroup.pids().unwrap_or_default();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cgroup.destroy()?;
        for path in &self.record.cgroup_pending {
            // Made by a create that died before recording them; rmdir only removes an empty
            // cgroup, and a missing one is fine.
            let _ = std::fs::remove_dir(path);
        }
        let mut st = self.record.state.clone();
        st.status = Status::Stopped;
        let hooks = self.record.hooks.clone();
        self.dir.remove()?;
        if let Err(e) = hooks::run_all(hooks.as_ref(), hooks::Kind::Poststop, &st) {
            // A failed poststop hook does not fail the delete: it is only reported.
            eprintln!("coracle: warning: {}", crate::init::error_chain(&e));
        }
        Ok(())
    }
}

/// Polls a pidfd until the process has exited (or [`KILL_TIMEOUT`]).
fn wait_exit(pidfd: &OwnedFd) {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(&mut fds, sysproc::poll_timeout(KILL_TIMEOUT));
}

/// Makes the exec FIFO (mode 0622, so a container user of any uid can write it) and opens an
/// `O_PATH` fd of it for the container process.
fn make_fifo(path: &Path) -> Result<OwnedFd, ContainerError> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(nix_err(format!("mkfifo {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o622))
        .map_err(sys_err(format!("chmod {}", path.display())))?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(sys_err(format!("open {}", path.display())))?;
    Ok(f.into())
}

/// Writes the pid file atomically (temporary file + rename), as runc does.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let path =
        std::path::absolute(path).map_err(sys_err(format!("--pid-file {}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, pid.to_string()).map_err(sys_err(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(sys_err(format!("rename {}", path.display())))
}

/// Whether `e` comes from an EACCES/EPERM somewhere in its chain.
fn is_permission_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::PermissionDenied
                || io.raw_os_error() == Some(libc::EPERM)
            {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// Hands a seccomp notify fd to the agent at `linux.seccomp.listenerPath`, with the state of
/// the container process as the runtime-spec says.
pub(crate) fn forward_seccomp_fd(
    spec: &oci_spec::runtime::Spec,
    state: &State,
    fd: &OwnedFd,
) -> Result<(), Error> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    let Some(path) = seccomp.listener_path() else {
        return Ok(());
    };
    let state_value = serde_json::to_value(state).unwrap_or_default();
    let json = crate::seccomp::process_state_json(
        state.pid,
        seccomp.listener_metadata().as_deref(),
        &state_value,
    )
    .map_err(crate::spec::SpecError::from)?;
    crate::seccomp::send_to_listener(path, fd.as_fd(), &json)
        .map_err(crate::spec::SpecError::from)?;
    Ok(())
}

/// Test-only fault injection: with `CORACLE_FAILPOINT=<step>` in a debug build, the runtime
/// kills itself with SIGKILL at that step of `create` (conformance/tests/faults.rs checks that
/// `delete --force` then cleans up). Release builds compile it away.
fn failpoint(step: &str) {
    if cfg!(debug_assertions) && std::env::var("CORACLE_FAILPOINT").is_ok_and(|v| v == step) {
        let _ = nix::sys::signal::raise(Signal::SIGKILL);
    }
}
