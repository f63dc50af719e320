//! Terminals for the tests: a pty the test owns (for `run` with a terminal in the foreground), a
//! `--console-socket` listener that receives the pty master over SCM_RIGHTS as containerd and
//! runc's `recvtty` do, and a background reader collecting what a pty master prints.

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A pty pair made by the test.
pub struct Pty {
    /// The master side (the test reads and writes it).
    pub master: File,
    /// The slave side (given to the runtime as its stdio).
    pub slave: OwnedFd,
}

/// Opens a pty pair with the window size `rows` x `cols`.
pub fn open_pty(rows: u16, cols: u16) -> Pty {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = openpty(&ws, None).unwrap_or_else(|e| panic!("openpty: {e}"));
    Pty {
        master: File::from(p.master),
        slave: p.slave,
    }
}

/// A unix socket listening at `<dir>/console-<n>.sock`, for `--console-socket`.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a fresh socket in `dir`.
    pub fn new(dir: &Path) -> ConsoleSocket {
        let path = dir.join(format!("{}.sock", crate::unique("console")));
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking: {e}"));
        ConsoleSocket { path, listener }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The socket's path as a string.
    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }

    /// Accepts one connection and receives one message carrying exactly one fd (SCM_RIGHTS):
    /// returns the fd (the pty master) and the message's data (runc sends the master's name,
    /// `/dev/ptmx`). Errors (as text) when nothing arrives within `timeout`.
    pub fn receive(&self, timeout: Duration) -> Result<(File, String), String> {
        let start = Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if start.elapsed() > timeout {
                        return Err(format!(
                            "nobody connected to the console socket within {timeout:?}"
                        ));
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(|e| format!("blocking: {e}"))?;
        stream
            .set_read_timeout(Some(
                timeout
                    .saturating_sub(start.elapsed())
                    .max(Duration::from_millis(100)),
            ))
            .map_err(|e| format!("timeout: {e}"))?;
        let mut data = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut data)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| format!("recvmsg: {e}"))?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
            if let ControlMessageOwned::ScmRights(list) = c {
                fds.extend(list);
            }
        }
        let len = msg.bytes;
        // Own every received fd at once, so none leaks whatever happens next.
        let owned: Vec<OwnedFd> = fds
            .into_iter()
            .map(|fd| {
                // SAFETY: the kernel just installed `fd` in this process (SCM_RIGHTS, with
                // MSG_CMSG_CLOEXEC); nothing else owns it, so it is owned exactly once here.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .collect();
        let name = String::from_utf8_lossy(&data[..len]).into_owned();
        let mut owned = owned.into_iter();
        match (owned.next(), owned.next()) {
            (Some(fd), None) => Ok((File::from(fd), name)),
            (None, _) => Err(format!(
                "the console socket message carried no fd (data {name:?})"
            )),
            (Some(_), Some(_)) => Err(format!(
                "the console socket message carried more than one fd (data {name:?})"
            )),
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Collects everything read from a pty master in a background thread (stops at EOF/EIO, or
/// when dropped).
pub struct PtyReader {
    buf: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    writer: File,
}

impl PtyReader {
    /// Starts reading `master` (a clone is kept for [`PtyReader::write`]).
    pub fn new(master: File) -> PtyReader {
        let writer = master
            .try_clone()
            .unwrap_or_else(|e| panic!("dup master: {e}"));
        let buf = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (b, s, d) = (buf.clone(), stop.clone(), done.clone());
        thread::spawn(move || {
            let mut master = master;
            let mut chunk = [0u8; 4096];
            while !s.load(Ordering::SeqCst) {
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                match nix::poll::poll(&mut fds, PollTimeout::from(50u16)) {
                    Ok(0) | Err(nix::Error::EINTR) => continue,
                    Ok(_) => {}
                    Err(_) => break,
                }
                match master.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut v) = b.lock() {
                            v.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            }
            d.store(true, Ordering::SeqCst);
        });
        PtyReader {
            buf,
            stop,
            done,
            writer,
        }
    }

    /// Everything read so far, lossily decoded, with `\r` removed.
    pub fn text(&self) -> String {
        let v = self.buf.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&v).replace('\r', "")
    }

    /// Whether the master reached EOF/EIO (every slave fd closed).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until the output contains `needle`; returns the output, or errors with it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let t = self.text();
            if t.contains(needle) {
                return Ok(t);
            }
            if start.elapsed() > timeout || (self.finished() && !self.text().contains(needle)) {
                return Err(t);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes `bytes` to the master (typing into the terminal).
    pub fn write(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to the pty master: {e}"));
    }
}

impl Drop for PtyReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
