//! Terminals: `process.terminal` with `--console-socket` (the pty master received over
//! SCM_RIGHTS, as containerd and runc's `recvtty` do), `exec -t`, `consoleSize`, `run` in the
//! foreground relaying the pty to its own stdio (under a pty the test makes), and the errors.

use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::time::Duration;

use coracle_conformance::pty::{open_pty, ConsoleSocket, PtyReader};
use coracle_conformance::{guarded, wait_timeout, Bundle, Runtime};

const WAIT: Duration = Duration::from_secs(20);

#[track_caller]
fn expect(reader: &PtyReader, needle: &str) -> String {
    reader
        .wait_for(needle, WAIT)
        .unwrap_or_else(|got| panic!("the terminal never showed {needle:?}; it showed:\n{got}"))
}

/// Prints `SIZE` then the terminal's size, waiting (up to ~2 s) until it is set: the runtime
/// copies its terminal's size to the container's pty while the process may already run, so
/// the first look may see no size (busybox `stty size` then prints nothing, exit 0).
const SIZE_WHEN_SET: &str = "echo SIZE; i=0; \
    until s=$(stty size 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != \"0 0\" ]; do \
    i=$((i+1)); [ $i -gt 200 ] && break; sleep 0.01; done; echo \"${s:-unset}\"; ";

/// The line of `text` right after the line equal to `marker`.
fn line_after(text: &str, marker: &str) -> String {
    let mut lines = text.lines();
    lines.find(|l| l.trim() == marker);
    lines.next().unwrap_or_default().trim().to_string()
}

#[test]
fn console_socket_receives_the_master() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.terminal(true).console_size(40, 100).sh(
        "echo TTY; tty; echo SIZE; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo STDIO-IS-TTY; \
         read line; echo got:$line",
    );
    let sock = ConsoleSocket::new(rt.work_dir());
    let id = rt.new_id();
    rt.create_with(&id, &b, &["--console-socket", sock.path_str()])
        .ok();
    let (master, name) = sock
        .receive(WAIT)
        .unwrap_or_else(|e| panic!("console socket: {e}"));
    assert_eq!(
        name, "/dev/ptmx",
        "the message's data (runc sends the master's name)"
    );
    let mut reader = PtyReader::new(master);
    rt.start(&id).ok();
    let text = expect(&reader, "STDIO-IS-TTY");
    assert!(
        line_after(&text, "TTY").starts_with("/dev/pts/"),
        "tty inside the container:\n{text}"
    );
    assert_eq!(line_after(&text, "SIZE"), "40 100", "consoleSize:\n{text}");
    reader.write(b"typed-in\n");
    expect(&reader, "got:typed-in");
    rt.wait_status(&id, "stopped", WAIT);
}

#[test]
fn exec_tty_detached_with_console_socket() {
    // As containerd does it: `exec -d -t --console-socket`.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.run_detached(&b);
    let sock = ConsoleSocket::new(rt.work_dir());
    let script = guarded(
        "echo TTY; tty; [ -t 0 ] && [ -t 1 ] && echo STDIO-IS-TTY; read line; echo got:$line",
    );
    let out = rt.exec_in(
        &id,
        &["-d", "-t", "--console-socket", sock.path_str()],
        &["sh", "-c", &script],
    );
    out.ok();
    let (master, name) = sock
        .receive(WAIT)
        .unwrap_or_else(|e| panic!("console socket: {e}"));
    assert_eq!(
        name, "/dev/ptmx",
        "the message's data (runc sends the master's name)"
    );
    let mut reader = PtyReader::new(master);
    let text = expect(&reader, "STDIO-IS-TTY");
    assert!(
        line_after(&text, "TTY").starts_with("/dev/pts/"),
        "tty inside the container:\n{text}"
    );
    reader.write(b"from-exec\n");
    expect(&reader, "got:from-exec");
}

#[test]
fn exec_tty_in_the_foreground_relays_the_terminal() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.run_detached(&b);
    let script = guarded(&format!(
        "echo TTY; tty; {SIZE_WHEN_SET}[ -t 0 ] && echo STDIN-IS-TTY; read line; \
         echo got:$line; exit 3"
    ));
    let (mut child, mut reader) = under_pty(&rt, &["exec", "-t", &id, "sh", "-c", &script], 21, 66);
    let text = expect(&reader, "STDIN-IS-TTY");
    assert!(
        line_after(&text, "TTY").starts_with("/dev/pts/"),
        "tty inside the container:\n{text}"
    );
    assert_eq!(
        line_after(&text, "SIZE"),
        "21 66",
        "the exec'd process's terminal should get the size of exec's terminal:\n{text}"
    );
    reader.write(b"relayed\n");
    expect(&reader, "got:relayed");
    let status = wait_timeout(&mut child, WAIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "exec -t should exit with the process's status; terminal:\n{}",
        reader.text()
    );
}

/// Spawns the binary with `args` and a new pty of `rows` x `cols` as its stdio; returns the
/// child and a reader on the master.
fn under_pty(rt: &Runtime, args: &[&str], rows: u16, cols: u16) -> (Child, PtyReader) {
    let pty = open_pty(rows, cols);
    let mut cmd = rt.command(args);
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
    cmd.stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave));
    let child = cmd.spawn().expect("spawn the runtime");
    // Only the runtime holds the slave now: the master reads EOF once everything is gone.
    drop(cmd);
    drop(pty.slave);
    (child, PtyReader::new(pty.master))
}

#[test]
fn create_with_a_terminal_needs_a_console_socket() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.terminal(true).args(&["true"]);
    let id = rt.new_id();
    rt.create(&id, &b).fails().stderr_mentions(&["console"]);
    assert!(
        !rt.state_dir_exists(&id),
        "state left after a failed create"
    );
}

#[test]
fn run_detached_with_a_terminal_needs_a_console_socket() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.terminal(true).args(&["true"]);
    let id = rt.new_id();
    rt.run_id(&id, &b, &["--detach"])
        .fails()
        .stderr_mentions(&["console"]);
}

#[test]
fn run_in_the_foreground_relays_the_terminal() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.terminal(true).sh(&format!(
        "echo TTY; tty; {SIZE_WHEN_SET}[ -t 0 ] && echo STDIN-IS-TTY; read line; \
         echo got:$line; exit 3"
    ));
    b.write();
    let id = rt.new_id();
    let (mut child, mut reader) = under_pty(&rt, &["run", "--bundle", b.path_str(), &id], 33, 77);
    let text = expect(&reader, "STDIN-IS-TTY");
    assert!(
        line_after(&text, "TTY").starts_with("/dev/pts/"),
        "tty inside the container:\n{text}"
    );
    assert_eq!(
        line_after(&text, "SIZE"),
        "33 77",
        "the container's terminal should get the size of run's terminal:\n{text}"
    );
    reader.write(b"relayed\n");
    expect(&reader, "got:relayed");
    let status = wait_timeout(&mut child, WAIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "run should exit with the container's status; terminal:\n{}",
        reader.text()
    );
}
