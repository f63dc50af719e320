//! What the container process does between clone and execve, as a numbered list of steps.
//!
//! The process is a copy of the (single-threaded) runtime: it only executes the plan the parent
//! checked ([`Config`]), reports failure over the sync channel until it is [`Message::Ready`],
//! then blocks on the exec FIFO until `start` and execs the user's program.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxNamespaceType;

use crate::rootfs::{self, RootfsError, SetupOptions};
use crate::spec::{Config, ProcessConfig};
use crate::state::{State, Status};
use crate::sync::{Channel, ExpectError, Message, SyncError};
use crate::sys;
use crate::user::{self, UserError};

/// Errors of the container process's set-up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("parent: {0}")]
    Parent(String),
    #[error(transparent)]
    Namespaces(#[from] crate::namespaces::NamespaceError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Rlimits(#[from] crate::rlimits::RlimitError),
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exec {name:?}: executable file not found in $PATH")]
    NotFound { name: String },
    #[error(
        "exec {path}: refusing to run the runtime's own binary in the container (CVE-2019-5736)"
    )]
    RuntimeBinary { path: PathBuf },
    #[error("process.cwd {path}: {source}")]
    Cwd {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn sys_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> InitError {
    let op = op.into();
    move |source| InitError::Sys { op, source }
}

fn nix_err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> InitError {
    let op = op.into();
    move |e| InitError::Sys {
        op,
        source: e.into(),
    }
}

/// What the child needs besides the config.
pub(crate) struct InitArgs<'a> {
    pub id: &'a str,
    pub config: &'a Config,
    /// An `O_PATH` fd of the exec FIFO, opened by the parent before the clone.
    pub fifo: BorrowedFd<'a>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Whether setgroups is allowed (not in a user namespace with setgroups denied).
    pub allow_setgroups: bool,
    /// The connected `--console-socket`, when the process has a terminal.
    pub console: Option<&'a std::os::fd::OwnedFd>,
    /// Fds 3 .. 3+preserve_fds stay open across execve.
    pub preserve_fds: u32,
    /// We join the container's cgroup by ourselves at once (cloned into its cgroup2 directory,
    /// and [`Self::cgroup_tasks`] written): nothing waits for the parent's placement.
    pub self_placed: bool,
    /// The v1 `tasks` files to join the container's cgroup by ourselves (see
    /// [`crate::cgroups::SelfJoin`]); empty when the parent places us.
    pub cgroup_tasks: &'a [std::os::fd::OwnedFd],
}

/// Runs the container process; returns only an exit code for `_exit` when something failed.
pub(crate) fn run(args: InitArgs<'_>, channel: Channel) -> i32 {
    match prepare(&args, &channel) {
        Ok(exe) => {
            // Past this point the parent is gone: errors go to the container's stderr.
            drop(channel);
            let err = wait_and_exec(&exe, &args);
            let _ = writeln!(std::io::stderr(), "coracle init: {}", error_chain(&err));
            127
        }
        Err(e) => {
            let _ = channel.send(&Message::Error(error_chain(&e)));
            1
        }
    }
}

/// An error and its sources, joined by ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cur = s.source();
    }
    text
}

/// Steps 1-12: everything that can fail in a way `create` must report.
fn prepare(args: &InitArgs<'_>, channel: &Channel) -> Result<CString, InitError> {
    let cfg = args.config;
    // 0. Into the container's v1 cgroups, by ourselves while we have one thread.
    crate::cgroups::join_v1_tasks(args.cgroup_tasks)
        .map_err(sys_err("join the container's cgroups (v1 tasks)"))?;
    // 1. Never expose the runtime binary through /proc/PID/exe to the container (CVE-2019-5736);
    //    execve resets this for the user's program. With a new user namespace only after the
    //    parent wrote our id maps: /proc/PID/uid_map of a non-dumpable process belongs to root,
    //    which a rootless parent is not (nothing else runs in our namespaces until then).
    let new_userns = cfg.namespaces.creates(LinuxNamespaceType::User);
    if !new_userns {
        sys::process::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
    }
    // 2. Wait until the parent wrote our id maps.
    wait_for_go(channel)?;
    if new_userns {
        sys::process::set_dumpable(false).map_err(sys_err("prctl(PR_SET_DUMPABLE)"))?;
    }
    // 3. Namespaces: joined ones, root of a new user namespace.
    enter_namespaces(cfg)?;
    // 4. Once placed in the cgroup (wait only when needed: hooks must follow createRuntime;
    //    the cgroup namespace and cgroup mounts need the cgroup): createContainer hooks, the
    //    root filesystem up to pivot_root, cwd.
    let cgroup_ns = cfg.namespaces.creates(LinuxNamespaceType::Cgroup);
    let mut placed = Placement {
        channel,
        cgroup_ns,
        done: false,
    };
    if has_hooks(cfg) {
        placed.wait()?;
    }
    let state = container_state(cfg, args.id, Status::Creating);
    crate::hooks::run_all(
        cfg.spec.hooks().as_ref(),
        crate::hooks::Kind::CreateContainer,
        &state,
    )?;
    build_rootfs(args, &mut placed)?;
    // 5. Host and domain name, session keyring, sysctls.
    set_names(args)?;
    let mut proc = ProcHandle::default();
    write_sysctls(cfg, &mut proc)?;
    // 6. The terminal, on the container's /dev/pts; read-only and masked paths, read-only root.
    if let Some(socket) = args.console {
        crate::console::setup_pty(socket, cfg.process.console_size)?;
    }
    rootfs::finalize(&cfg.rootfs_plan)?;
    // 7. OOM score (while we hold every capability); in the cgroup (the parent's first write
    //    to a v1 cgroup.procs may take milliseconds: everything above overlapped it); then the
    //    process's own credentials.
    //    (In a new user namespace the parent wrote it: our /proc/self files are no longer ours.)
    let oom = cfg.process.oom_score_adj;
    if let Some(adj) = oom.filter(|_| !cfg.namespaces.creates(LinuxNamespaceType::User)) {
        proc.get()?
            .write_self(Path::new("oom_score_adj"), adj.to_string().as_bytes())
            .map_err(sys_err(
                "process.oomScoreAdj: write /proc/self/oom_score_adj",
            ))?;
    }
    placed.wait()?;
    let exe = become_process(
        &cfg.process,
        args.allow_setgroups,
        cfg.seccomp.as_ref(),
        channel,
    )?;
    channel.send(&Message::Ready)?;
    Ok(exe)
}

/// Waits for the parent's [`Message::Go`].
fn wait_for_go(channel: &Channel) -> Result<(), InitError> {
    match channel.expect(&Message::Go, Some(Duration::from_secs(60))) {
        Ok(()) => Ok(()),
        Err(ExpectError::Sync(e)) => Err(e.into()),
        Err(ExpectError::Remote(text)) => Err(InitError::Parent(text)),
    }
}

/// Waiting for [`Message::Placed`], once: then the cgroup namespace is made, now that we are in
/// the container's cgroup (its root is the cgroup we are in when it is made).
struct Placement<'a> {
    channel: &'a Channel,
    cgroup_ns: bool,
    done: bool,
}

impl Placement<'_> {
    fn wait(&mut self) -> Result<(), InitError> {
        if self.done {
            return Ok(());
        }
        match self
            .channel
            .expect(&Message::Placed, Some(Duration::from_secs(60)))
        {
            Ok(()) => {}
            Err(ExpectError::Sync(e)) => return Err(e.into()),
            Err(ExpectError::Remote(text)) => return Err(InitError::Parent(text)),
        }
        if self.cgroup_ns {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .map_err(nix_err("unshare cgroup namespace"))?;
        }
        self.done = true;
        Ok(())
    }
}

/// Whether the config has hooks the container process must not run ahead of.
fn has_hooks(cfg: &Config) -> bool {
    use crate::hooks::Kind;
    cfg.spec.hooks().as_ref().is_some_and(|h| {
        [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer]
            .iter()
            .any(|k| !k.select(h).is_empty())
    })
}

/// Joins the namespaces given by path (pid and time were joined by the parent) and becomes
/// root of a new user namespace.
fn enter_namespaces(cfg: &Config) -> Result<(), InitError> {
    let ns = &cfg.namespaces;
    ns.enter_joined(&[LinuxNamespaceType::Pid, LinuxNamespaceType::Time])?;
    if ns.creates(LinuxNamespaceType::User) {
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).map_err(nix_err("setresgid(0)"))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).map_err(nix_err("setresuid(0)"))?;
    }
    Ok(())
}

/// The root filesystem up to pivot_root, then the working directory made if missing (as root,
/// inside the new root), as runc does.
fn build_rootfs(args: &InitArgs<'_>, placed: &mut Placement<'_>) -> Result<(), InitError> {
    let cfg = args.config;
    let ns = &cfg.namespaces;
    let opts = SetupOptions {
        no_pivot: args.no_pivot,
        // In a user namespace of the container's, or one the runtime itself runs in (rootless
        // podman): devices cannot be made with mknod there.
        in_user_ns: ns.has(LinuxNamespaceType::User) || !crate::namespaces::in_initial_user_ns(),
        cgroup_ns: ns.has(LinuxNamespaceType::Cgroup),
    };
    // Cgroup mounts bind (or, in a cgroup namespace, show) the cgroup we are in: wait for the
    // parent to place us unless we placed ourselves.
    let wait = opts.cgroup_ns || !args.self_placed;
    rootfs::setup_with(&cfg.rootfs_plan, opts, || {
        if wait {
            placed.wait()
        } else {
            Ok(())
        }
    })?;
    std::fs::create_dir_all(&cfg.process.cwd).map_err(|source| InitError::Cwd {
        path: cfg.process.cwd.clone(),
        source,
    })
}

/// A session keyring of our own (unless --no-new-keyring), host and domain name.
fn set_names(args: &InitArgs<'_>) -> Result<(), InitError> {
    if !args.no_new_keyring {
        sys::process::join_new_session_keyring().map_err(sys_err("join a new session keyring"))?;
    }
    if let Some(h) = &args.config.hostname {
        nix::unistd::sethostname(h).map_err(nix_err("sethostname"))?;
    }
    if let Some(d) = &args.config.domainname {
        sys::process::setdomainname(d).map_err(sys_err("setdomainname"))?;
    }
    Ok(())
}

/// sysctls, through a procfs handle no mount can redirect (CVE-2025-52881): each file opened
/// beneath it without crossing a mount or following a link, and checked to be on procfs.
fn write_sysctls(cfg: &Config, proc: &mut ProcHandle) -> Result<(), InitError> {
    for (key, value) in &cfg.sysctl {
        let rel = Path::new("sys").join(key.replace('.', "/"));
        let err = || format!("linux.sysctl {key}: write /proc/{}", rel.display());
        proc.get()?
            .write(&rel, value.as_bytes())
            .map_err(sys_err(err()))?;
    }
    Ok(())
}

/// The container's procfs handle, opened on first use (after the rootfs is set up).
#[derive(Default)]
struct ProcHandle(Option<rootfs::Procfs>);

impl ProcHandle {
    fn get(&mut self) -> Result<&rootfs::Procfs, InitError> {
        match &mut self.0 {
            Some(p) => Ok(p),
            slot => Ok(slot.insert(
                rootfs::Procfs::open().map_err(sys_err("open a procfs handle for /proc"))?,
            )),
        }
    }
}

/// The process's own settings, for the init and for exec: resource limits (while we hold every
/// capability), the program looked up in the container's PATH, the working directory (as root;
/// again as the user if root may not enter it), the user with its groups and capabilities, and
/// no_new_privs. Returns the program to exec.
fn become_process(
    p: &ProcessConfig,
    allow_setgroups: bool,
    seccomp: Option<&crate::seccomp::Program>,
    channel: &Channel,
) -> Result<CString, InitError> {
    p.rlimits.apply()?;
    let exe = find_executable(p)?;
    refuse_runtime_binary(Path::new(std::ffi::OsStr::from_bytes(exe.to_bytes())), 0)?;
    let cwd_first = nix::unistd::chdir(&p.cwd);
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: before the user switch
    // (as runc does; the profile must then allow the switch's own calls).
    if !p.no_new_privileges {
        install_seccomp(seccomp, channel)?;
    }
    user::switch(&p.user, &p.capabilities, allow_setgroups)?;
    if cwd_first.is_err() {
        nix::unistd::chdir(&p.cwd).map_err(|e| InitError::Cwd {
            path: p.cwd.clone(),
            source: e.into(),
        })?;
    }
    check_cwd(&p.cwd)?;
    if p.no_new_privileges {
        sys::process::set_no_new_privs().map_err(sys_err("prctl(PR_SET_NO_NEW_PRIVS)"))?;
        install_seccomp(seccomp, channel)?;
    }
    Ok(exe)
}

/// Installs the seccomp filter; a notify fd goes to the runtime, for the listener.
fn install_seccomp(
    seccomp: Option<&crate::seccomp::Program>,
    channel: &Channel,
) -> Result<(), InitError> {
    let Some(program) = seccomp else {
        return Ok(());
    };
    if let Some(fd) = crate::seccomp::install(program)? {
        channel.send_with_fd(&Message::SeccompFd, fd.as_fd())?;
    }
    Ok(())
}

/// The state a hook run from the container process sees (the pid as seen from the runtime is
/// not known in here: the parent's view is in the other hooks).
fn container_state(cfg: &Config, id: &str, status: Status) -> State {
    State {
        oci_version: cfg.spec.version().clone(),
        id: id.to_string(),
        pid: i32::try_from(std::process::id()).unwrap_or(0),
        status,
        bundle: cfg.bundle.clone(),
        rootfs: cfg.rootfs.clone(),
        created: String::new(),
        owner: String::new(),
        annotations: cfg.spec.annotations().clone().unwrap_or_default(),
    }
}

/// The working directory must lie inside the container's root: a cwd reached through a
/// leaked host fd reads as "(unreachable)/..." (CVE-2024-21626).
fn check_cwd(cwd: &Path) -> Result<(), InitError> {
    let now = nix::unistd::getcwd().map_err(|e| InitError::Cwd {
        path: cwd.to_path_buf(),
        source: e.into(),
    })?;
    if !now.is_absolute() {
        return Err(InitError::Cwd {
            path: cwd.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "outside the container's root",
            ),
        });
    }
    Ok(())
}

/// Looks `args[0]` up in the container's `PATH` (from `process.env`), as runc does.
fn find_executable(p: &ProcessConfig) -> Result<CString, InitError> {
    let name = p.args[0].to_bytes();
    let not_found = || InitError::NotFound {
        name: String::from_utf8_lossy(name).into_owned(),
    };
    if name.contains(&b'/') {
        let path = Path::new(std::ffi::OsStr::from_bytes(name));
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            p.cwd.join(path)
        };
        return if is_executable(&path) {
            Ok(p.args[0].clone())
        } else {
            Err(not_found())
        };
    }
    let path_var = p
        .env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(|&b| b == b':') {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let candidate =
            Path::new(std::ffi::OsStr::from_bytes(dir)).join(std::ffi::OsStr::from_bytes(name));
        if is_executable(&candidate) {
            return CString::new(candidate.as_os_str().as_bytes()).map_err(|_| not_found());
        }
    }
    Err(not_found())
}

/// Refuses a program that is the runtime binary itself, directly, through a link such as
/// /proc/self/exe, or as the interpreter of a `#!` script (up to the kernel's 4 levels): run in
/// the container it would let the container overwrite the host's runtime (CVE-2019-5736).
fn refuse_runtime_binary(path: &Path, depth: u32) -> Result<(), InitError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/exe").map_err(sys_err("stat /proc/self/exe"))?;
    let Ok(target) = std::fs::metadata(path) else {
        return Ok(());
    };
    if (target.dev(), target.ino()) == (own.dev(), own.ino()) {
        return Err(InitError::RuntimeBinary {
            path: path.to_path_buf(),
        });
    }
    if depth >= 4 {
        return Ok(());
    }
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let Some(line) = head[..n].strip_prefix(b"#!") else {
        return Ok(());
    };
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let interp = line
        .split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty());
    match interp {
        Some(i) => refuse_runtime_binary(Path::new(std::ffi::OsStr::from_bytes(i)), depth + 1),
        None => Ok(()),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Steps 13-15: wait for `start` on the exec FIFO, then exec. Returns only on failure.
fn wait_and_exec(exe: &CStr, args: &InitArgs<'_>) -> InitError {
    // 13. Signals as a fresh process expects them (the runtime ignores SIGPIPE).
    sys::process::reset_signals();
    // 14. Block until `start` opens the FIFO for reading; tell it we go on.
    let fifo_path = format!("/proc/self/fd/{}", args.fifo.as_raw_fd());
    let opened = std::fs::OpenOptions::new().write(true).open(&fifo_path);
    let mut fifo = match opened {
        Ok(f) => f,
        Err(e) => return sys_err("open exec fifo")(e),
    };
    if let Err(e) = fifo.write_all(b"0") {
        return sys_err("write exec fifo")(e);
    }
    drop(fifo);
    // startContainer hooks, in the container.
    let state = container_state(args.config, args.id, Status::Running);
    if let Err(e) = crate::hooks::run_all(
        args.config.spec.hooks().as_ref(),
        crate::hooks::Kind::StartContainer,
        &state,
    ) {
        return e.into();
    }
    // 15. Close every fd but stdio and the preserved ones, and exec.
    if let Err(e) = sys::process::cloexec_from(3 + args.preserve_fds) {
        return sys_err("close_range")(e);
    }
    let p = &args.config.process;
    match nix::unistd::execve(exe, &p.args, &p.env) {
        Err(e) => nix_err(format!("exec {}", exe.to_string_lossy()))(e),
        Ok(never) => match never {},
    }
}

/// What an exec'ed process needs.
pub(crate) struct ExecInitArgs<'a> {
    pub process: &'a ProcessConfig,
    /// The container init's pidfd, whose namespaces we join.
    pub init_pidfd: BorrowedFd<'a>,
    /// The namespaces to join through the pidfd.
    pub join: nix::sched::CloneFlags,
    pub console: Option<&'a std::os::fd::OwnedFd>,
    pub preserve_fds: u32,
    /// Whether setgroups is allowed in the container's user namespace.
    pub allow_setgroups: bool,
    /// The container's seccomp filter.
    pub seccomp: Option<&'a crate::seccomp::Program>,
    /// Join every namespace (pid and time too) here, then fork the real process with
    /// CLONE_PARENT and report its pid (for a runtime that may not change its own).
    pub nested: bool,
    /// For a nested exec: the container's pid and time namespaces (those it has of its own).
    pub join_for_children: nix::sched::CloneFlags,
    /// The v1 `tasks` files to join the container's cgroup by ourselves (see
    /// [`crate::cgroups::SelfJoin`]); empty when the parent places us.
    pub cgroup_tasks: &'a [std::os::fd::OwnedFd],
}

/// Runs a process exec'ed into a container; returns only an exit code when it failed (the
/// error then went to the parent over `channel`).
pub(crate) fn run_exec(mut args: ExecInitArgs<'_>, channel: Channel) -> i32 {
    if args.nested {
        match join_and_fork(&args, &channel) {
            Ok(Some(pid)) => {
                let _ = channel.send(&Message::Pid(pid));
                return 0;
            }
            Ok(None) => args.join = nix::sched::CloneFlags::empty(),
            Err(e) => {
                let _ = channel.send(&Message::Error(error_chain(&e)));
                return 1;
            }
        }
    }
    let err = exec_steps(&args, &channel);
    let _ = channel.send(&Message::Error(error_chain(&err)));
    1
}

/// The steps of an exec'ed process; returns only on failure.
fn exec_steps(args: &ExecInitArgs<'_>, channel: &Channel) -> InitError {
    let run = || -> Result<CString, InitError> {
        // 1. (Non-dumpable since our clone, until execve: `Container::exec` cleared it around
        //    clone3, CVE-2019-5736.) Into the container's v1 cgroups by ourselves (while we
        //    have one thread), or
        // 2. wait until the parent has put us in the container's cgroup.
        crate::cgroups::join_v1_tasks(args.cgroup_tasks)
            .map_err(sys_err("join the container's cgroups (v1 tasks)"))?;
        match channel.expect(&Message::Go, Some(Duration::from_secs(60))) {
            Ok(()) => {}
            Err(ExpectError::Sync(e)) => return Err(e.into()),
            Err(ExpectError::Remote(text)) => return Err(InitError::Parent(text)),
        }
        // 3. Every namespace of the init at once (user first, mount last, done by the kernel).
        if !args.join.is_empty() {
            nix::sched::setns(args.init_pidfd, args.join)
                .map_err(nix_err("setns to the container's namespaces"))?;
        }
        let p = args.process;
        // 4. The terminal, on the container's /dev/pts.
        if let Some(socket) = args.console {
            crate::console::setup_pty(socket, p.console_size)?;
        }
        // 5. Limits, program, working directory, user and capabilities, as for the init.
        become_process(p, args.allow_setgroups, args.seccomp, channel)
    };
    let exe = match run() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    // 6. Fresh signals, close every other fd, exec.
    sys::process::reset_signals();
    if let Err(e) = sys::process::cloexec_from(3 + args.preserve_fds) {
        return sys_err("close_range")(e);
    }
    match nix::unistd::execve(&exe, &args.process.args, &args.process.env) {
        Err(e) => nix_err(format!("exec {}", exe.to_string_lossy()))(e),
        Ok(never) => match never {},
    }
}

/// For a nested exec: joins all the init's namespaces (pid and time for our children) and forks
/// the process that will exec as a sibling (CLONE_PARENT). Returns its pid in the intermediate
/// child, `None` in the new process.
fn join_and_fork(args: &ExecInitArgs<'_>, _channel: &Channel) -> Result<Option<i32>, InitError> {
    // Non-dumpable since our clone (see `exec_steps`); the process we fork inherits it.
    let flags = args.join | args.join_for_children;
    nix::sched::setns(args.init_pidfd, flags)
        .map_err(nix_err("setns to the container's namespaces"))?;
    // SAFETY: single-threaded; the new process continues in `run_exec` and leaves by execve
    // or `_exit`.
    match unsafe { sys::process::clone3(libc::CLONE_PARENT as u64, None) }
        .map_err(sys_err("clone3"))?
    {
        sys::process::CloneResult::Child => Ok(None),
        sys::process::CloneResult::Parent { pid, .. } => Ok(Some(pid)),
    }
}
