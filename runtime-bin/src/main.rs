//! The `coracle` binary: runc's command line over the coracle library. Argument parsing and
//! output only; every container operation is a library call.

mod cgroup_cmds;
mod features;
mod log;
mod spec_template;
mod tty;

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use coracle::{Container, CreateOptions, State};
use nix::sys::signal::{SigSet, Signal};

/// An error of the CLI: what failed and why, printed as `coracle: <what>: <why>`.
#[derive(Debug)]
struct CliError(String);

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(chain(&e))
    }
}

/// An error and its sources joined by ": " (skipping a source already in the text).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cur = s.source();
    }
    text
}

type Result<T> = std::result::Result<T, CliError>;

#[derive(Parser, Debug)]
#[command(
    name = "coracle",
    disable_version_flag = true,
    about = "An OCI container runtime"
)]
struct Cli {
    /// Root directory for container state (default: /run/coracle as root,
    /// $XDG_RUNTIME_DIR/coracle otherwise).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless mode (true, false, auto); with `spec`: write a rootless config.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct CreateArgs {
    /// The bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// File to write the init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Do not use pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N extra fds (3 .. 3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// The container id.
    id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            relay_console: false,
            listen_fds: std::env::var("LISTEN_FDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        }
    }
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// A process.json describing the process (the other process flags are then ignored).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Unix socket to send the pty master to.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Environment variables (KEY=value).
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Capabilities to add.
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile (accepted, not applied: no AppArmor here).
    #[arg(long)]
    apparmor: Option<String>,
    /// SELinux label (accepted, not applied).
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Return once the process runs.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass N extra fds (3 .. 3+N).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even into a paused container.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Sub-cgroup to join (cgroup v2; accepted for compatibility).
    #[arg(long)]
    cgroup: Option<String>,
    /// The container id.
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (it waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// The container id.
        id: String,
    },
    /// Create and start a container, wait for it and delete it.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after starting.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State {
        /// The container id.
        id: String,
    },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
        /// The container id.
        id: String,
        /// The signal: a name (TERM, SIGTERM) or a number.
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill it first if it runs; succeed if it does not exist.
        #[arg(short, long)]
        force: bool,
        /// The container id.
        id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// table or json.
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process in a running container.
    Exec(Box<ExecArgs>),
    /// Commands on the container's cgroup.
    #[command(flatten)]
    Cgroup(cgroup_cmds::CgroupCommand),
    /// Print the features this runtime supports (JSON).
    Features,
    /// Write a template config.json.
    Spec {
        /// Where to write config.json.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.as_deref(), &cli.log_format);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(CliError(msg)) => {
            logger.error(&msg);
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<u8> {
    if cli.version {
        out_line(&format!(
            "coracle version {}\ncommit: {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            env!("CORACLE_COMMIT"),
            coracle::OCI_VERSION
        ))?;
        return Ok(0);
    }
    if cli.systemd_cgroup {
        return Err(CliError(
            "--systemd-cgroup: the systemd cgroup driver is not supported yet".into(),
        ));
    }
    let Some(command) = &cli.command else {
        return Err(CliError("no command given (see --help)".into()));
    };
    let root = &cli.root.clone().unwrap_or_else(default_root);
    match command {
        Command::Create(args) => {
            Container::create(&args.id, root, &args.options())?;
        }
        Command::Start { id } => Container::load(id, root)?.start()?,
        Command::Run {
            create,
            detach,
            keep,
        } => return run_container(root, create, *detach, *keep),
        Command::State { id } => print_json(&Container::load(id, root)?.state()?)?,
        Command::Kill { all, id, signal } => {
            let signal = parse_signal(signal)?;
            Container::load(id, root)?.kill(signal, *all)?;
        }
        Command::Delete { force: true, id } => Container::delete_forced(id, root)?,
        Command::Delete { force: false, id } => Container::load(id, root)?.delete(false)?,
        Command::Exec(args) => return exec(root, args),
        Command::Features => print_json(&features::features())?,
        Command::Cgroup(cmd) => return cgroup_cmds::run(root, cmd),

        Command::List { format, quiet } => list(root, format, *quiet)?,
        Command::Spec { bundle } => {
            let rootless = cli.rootless.as_deref().is_some_and(|v| v != "false");
            spec_template::write(bundle, rootless)?
        }
    }
    Ok(0)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    out_line(&serde_json::to_string_pretty(value)?)
}

/// Writes `text` and a newline to stdout; a reader that went away (EPIPE, as under `| head`)
/// ends the program quietly, as SIGPIPE ends a C or Go one, instead of failing or panicking.
pub(crate) fn out_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => Ok(r?),
    }
}

/// Parses TERM, SIGTERM, term or 15.
fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || CliError(format!("invalid signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let mut states: Vec<State> = Vec::new();
    for id in Container::list(root)? {
        // A container deleted while we list is skipped.
        if let Ok(st) = Container::load(&id, root).and_then(|c| c.state()) {
            states.push(st);
        }
    }
    if quiet {
        for st in &states {
            out_line(&st.id)?;
        }
    } else if format == "json" {
        out_line(&serde_json::to_string(&states)?)?;
    } else {
        let rows: Vec<[String; 6]> = states
            .iter()
            .map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    if s.owner.is_empty() {
                        "root".to_string()
                    } else {
                        s.owner.clone()
                    },
                ]
            })
            .collect();
        let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
        let mut widths = [0usize; 6];
        for row in std::iter::once(&header).chain(rows.iter()) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(rows.iter()) {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out_line(line.join("   ").trim_end())?;
        }
    }
    Ok(())
}

/// The signals `run` forwards to the container's init.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// `run`: create, start, then (unless detached) forward signals until the init exits, delete
/// the container (unless `keep`) and return its exit status.
fn run_container(root: &Path, args: &CreateArgs, detach: bool, keep: bool) -> Result<u8> {
    let mask = forwarded_mask();
    if !detach {
        // Blocked before the clone so none is lost; the container process unblocks them.
        mask.thread_block()?;
    }
    let mut opts = args.options();
    opts.relay_console = !detach;
    let mut container = Container::create(&args.id, root, &opts)?;
    // Our terminal's size reaches the pty before the program starts.
    let console = container.take_console();
    if let Some(master) = &console {
        tty::copy_window_size(master);
    }
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let pidfd = container
        .pidfd()
        .ok_or_else(|| CliError("run: lost the container's pidfd".into()))?
        .try_clone_to_owned()?;
    // The init may be exiting right now: a failed forward is not an error.
    let forward = |sig| {
        let _ = container.kill(sig, false);
    };
    match console {
        Some(master) => tty::relay(master, &pidfd, &mask, forward)?,
        None => wait_forwarding(&pidfd, &mask, forward)?,
    }
    let status = container.wait()?;
    if !keep {
        container.delete(true)?;
    }
    Ok(u8::try_from(status & 0xff).unwrap_or(255))
}

/// Waits until the process behind `pidfd` exits, forwarding the signals of `mask` (already
/// blocked) with `forward`.
fn wait_forwarding(
    pidfd: &std::os::fd::OwnedFd,
    mask: &SigSet,
    forward: impl Fn(Signal),
) -> Result<()> {
    let sigfd =
        nix::sys::signalfd::SignalFd::with_flags(mask, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)?;
    loop {
        let mut fds = [
            nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN),
            nix::poll::PollFd::new(sigfd.as_fd(), nix::poll::PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(());
        }
        if let Ok(Some(info)) = sigfd.read_signal() {
            if let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) {
                forward(sig);
            }
        }
    }
}

fn forwarded_mask() -> SigSet {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask
}

/// The process of `exec`: process.json, or the container's process with the flags applied.
fn exec_process(container: &Container, args: &ExecArgs) -> Result<oci_spec::runtime::Process> {
    if let Some(path) = &args.process {
        let err =
            |e: &dyn std::fmt::Display| CliError(format!("--process {}: {e}", path.display()));
        let text = std::fs::read(path).map_err(|e| err(&e))?;
        return coracle::spec::parse_spec(&text)
            .map_err(|(field, e)| err(&format!("{field}: {e}")));
    }
    if args.command.is_empty() {
        return Err(CliError("exec: no command given (and no --process)".into()));
    }
    let base = container.config()?.process().clone().unwrap_or_default();
    let mut p = serde_json::to_value(base)?;
    p["args"] = serde_json::json!(args.command);
    p["terminal"] = serde_json::json!(args.tty);
    if let Some(cwd) = &args.cwd {
        p["cwd"] = serde_json::json!(cwd);
    }
    if !args.env.is_empty() {
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for e in &args.env {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|old| old.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p["env"] = serde_json::json!(env);
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let bad = || CliError(format!("--user {user:?}: expected UID[:GID] (numbers)"));
        p["user"]["uid"] = serde_json::json!(uid.parse::<u32>().map_err(|_| bad())?);
        if let Some(g) = gid {
            p["user"]["gid"] = serde_json::json!(g.parse::<u32>().map_err(|_| bad())?);
        }
    }
    if !args.additional_gids.is_empty() {
        p["user"]["additionalGids"] = serde_json::json!(args.additional_gids);
    }
    if args.no_new_privs {
        p["noNewPrivileges"] = serde_json::json!(true);
    }
    for cap in &args.cap {
        for set in ["bounding", "effective", "permitted"] {
            if let Some(list) = p["capabilities"][set].as_array_mut() {
                list.push(serde_json::json!(cap));
            } else {
                p["capabilities"][set] = serde_json::json!([cap]);
            }
        }
    }
    serde_json::from_value(p).map_err(|e| CliError(format!("exec: {e}")))
}

/// `exec`: start a process in the container; with `--detach` return, else wait for it while
/// forwarding signals and exit with its status.
fn exec(root: &Path, args: &ExecArgs) -> Result<u8> {
    let container = Container::load(&args.id, root)?;
    // The exec'd process is non-dumpable until execve; when a process of the container could
    // still open its /proc/PID/exe (CAP_SYS_PTRACE over us), run from a read-only view of our
    // binary (a no-op when already so; rootless, the binary is not ours to protect).
    if container.exec_exposes_runtime()
        && !coracle::namespaces::is_rootless()
        && !coracle::sys::fs::self_exe_is_readonly()
    {
        drop(container);
        return Err(coracle::sys::fs::reexec_from_readonly_view().into());
    }
    let process = exec_process(&container, args)?;
    let opts = coracle::ExecOptions {
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
        ignore_paused: args.ignore_paused,
        relay_console: !args.detach && args.console_socket.is_none(),
    };
    let mask = forwarded_mask();
    if !args.detach {
        mask.thread_block()?;
    }
    let mut proc = container.exec(&process, &opts)?;
    if args.detach {
        return Ok(0);
    }
    let pidfd = proc.pidfd.try_clone()?;
    let forward = |sig: Signal| {
        let _ = coracle::sys::process::pidfd_send_signal(pidfd.as_fd(), sig as i32);
    };
    match proc.console.take() {
        Some(master) => tty::relay(master, &proc.pidfd, &mask, forward)?,
        None => wait_forwarding(&proc.pidfd, &mask, forward)?,
    }
    let status = proc.wait()?;
    Ok(u8::try_from(status & 0xff).unwrap_or(255))
}

/// The state root when `--root` is not given: /run/coracle for root; rootless (another user,
/// or root inside a user namespace as under rootless podman) $XDG_RUNTIME_DIR/coracle, or
/// /tmp/coracle-UID without one.
fn default_root() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if !coracle::namespaces::is_rootless() {
        return PathBuf::from("/run/coracle");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("coracle"),
        _ => PathBuf::from(format!("/tmp/coracle-{uid}")),
    }
}
