//! The parent/child protocol of `create`, over a `SOCK_SEQPACKET` socketpair: one JSON message
//! per datagram.
//!
//! | step | from   | message          | meaning                                              |
//! |------|--------|------------------|------------------------------------------------------|
//! | 1    | parent | [`Message::Go`]  | id maps written: start on namespaces and rootfs    |
//! | 2    | parent | [`Message::Placed`] | in the cgroup, createRuntime hooks done         |
//! | 3    | child  | [`Message::Ready`] | all set up, blocking on the exec FIFO next         |
//! | 2'   | child  | [`Message::Error`] | set-up failed; the child exits                     |
//!
//! `exec` uses the same channel: Go, then Error or end-of-file (the channel is close-on-exec:
//! EOF means the program was exec'ed). An unprivileged exec first gets [`Message::Pid`] from
//! the intermediate child that joined the namespaces and forked the real process.
//!
//! An end-of-file (the other side died) or any message out of this order is an error.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

/// Errors of the protocol.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A socket operation failed.
    #[error("sync socket {op}: {source}")]
    Socket {
        /// What was done.
        op: &'static str,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// The other side closed the socket (it exited).
    #[error("the other side exited before sending {expected}")]
    Eof {
        /// What we waited for.
        expected: &'static str,
    },
    /// A message we did not expect at this step.
    #[error("expected {expected}, got {got:?}")]
    Unexpected {
        /// What we waited for.
        expected: &'static str,
        /// What came.
        got: Message,
    },
    /// A datagram that is not a message.
    #[error("malformed message: {0}")]
    Malformed(#[source] serde_json::Error),
    /// Nothing came in time.
    #[error("timed out waiting for {expected}")]
    Timeout {
        /// What we waited for.
        expected: &'static str,
    },
}

/// A message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Parent to child: go on with the set-up.
    Go,
    /// Parent to child: you are in the container's cgroup and the createRuntime hooks ran.
    Placed,
    /// Child to parent: set up, about to wait on the exec FIFO.
    Ready,
    /// Child to parent: set-up failed with this error (the whole chain, as text).
    Error(String),
    /// Intermediate child of a nested exec to the runtime: the pid of the process it forked.
    Pid(i32),
    /// Child to parent: the seccomp notify fd is attached, for the `listenerPath` agent.
    SeccompFd,
}

impl Message {
    fn name(&self) -> &'static str {
        match self {
            Message::Go => "Go",
            Message::Placed => "Placed",
            Message::Ready => "Ready",
            Message::Error(_) => "Error",
            Message::Pid(_) => "Pid",
            Message::SeccompFd => "SeccompFd",
        }
    }
}

/// One end of the sync socketpair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Makes the two connected ends (close-on-exec).
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| SyncError::Socket {
        op: "socketpair",
        source,
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends `msg`.
    pub fn send(&self, msg: &Message) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(msg).map_err(SyncError::Malformed)?;
        socket::send(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &bytes,
            socket::MsgFlags::MSG_NOSIGNAL,
        )
        .map_err(|source| SyncError::Socket { op: "send", source })?;
        Ok(())
    }

    /// Receives one message, waiting at most `timeout` (`None`: forever).
    pub fn recv(
        &self,
        expected: &'static str,
        timeout: Option<Duration>,
    ) -> Result<Message, SyncError> {
        Ok(self.recv_with_fd(expected, timeout)?.0)
    }

    /// Receives one message and the fd sent with it, if any, waiting at most `timeout`.
    pub fn recv_with_fd(
        &self,
        expected: &'static str,
        timeout: Option<Duration>,
    ) -> Result<(Message, Option<OwnedFd>), SyncError> {
        if let Some(t) = timeout {
            let mut fds = [nix::poll::PollFd::new(
                self.fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            loop {
                match nix::poll::poll(&mut fds, crate::sys::process::poll_timeout(t)) {
                    Ok(0) => return Err(SyncError::Timeout { expected }),
                    Ok(_) => break,
                    Err(nix::Error::EINTR) => continue,
                    Err(source) => return Err(SyncError::Socket { op: "poll", source }),
                }
            }
        }
        self.read_message(expected)
    }

    fn read_message(
        &self,
        expected: &'static str,
    ) -> Result<(Message, Option<OwnedFd>), SyncError> {
        // The message's length first (a peek with MSG_TRUNC returns it whole; 0 is the end),
        // then a buffer of just that size.
        let len = loop {
            match socket::recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                &mut [],
                socket::MsgFlags::MSG_PEEK | socket::MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => break n,
                // A peer that exited with a message of ours unread leaves ECONNRESET, reported
                // once before what it sent us: read on (the end then reads as 0).
                Err(nix::Error::EINTR | nix::Error::ECONNRESET) => continue,
                Err(source) => return Err(SyncError::Socket { op: "recv", source }),
            }
        };
        if len == 0 {
            return Err(SyncError::Eof { expected });
        }
        let mut buf = vec![0u8; len];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (n, fd) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match socket::recvmsg::<()>(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                &mut iov,
                Some(&mut space),
                socket::MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs().map_err(|source| SyncError::Socket {
                        op: "recvmsg",
                        source,
                    })? {
                        if let socket::ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // Every received fd is owned (and closed) here, the first kept.
                                let owned = crate::sys::process::own_fd(raw).ok();
                                if fd.is_none() {
                                    fd = owned;
                                }
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
                Err(nix::Error::EINTR | nix::Error::ECONNRESET) => continue,
                Err(source) => {
                    return Err(SyncError::Socket {
                        op: "recvmsg",
                        source,
                    })
                }
            }
        };
        if n == 0 {
            return Err(SyncError::Eof { expected });
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(SyncError::Malformed)?;
        Ok((msg, fd))
    }

    /// Sends `msg` with `fd` attached (SCM_RIGHTS).
    pub fn send_with_fd(
        &self,
        msg: &Message,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(msg).map_err(SyncError::Malformed)?;
        let fds = [std::os::fd::AsRawFd::as_raw_fd(&fd)];
        socket::sendmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &[std::io::IoSlice::new(&bytes)],
            &[socket::ControlMessage::ScmRights(&fds)],
            socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|source| SyncError::Socket {
            op: "sendmsg",
            source,
        })?;
        Ok(())
    }

    /// Receives and checks that the message is `want` (an `Error` from the child is returned
    /// as `Err(Ok(text))` to tell it apart from protocol failures).
    pub fn expect(&self, want: &Message, timeout: Option<Duration>) -> Result<(), ExpectError> {
        let got = self.recv(want.name(), timeout).map_err(ExpectError::Sync)?;
        match got {
            m if &m == want => Ok(()),
            Message::Error(text) => Err(ExpectError::Remote(text)),
            got => Err(ExpectError::Sync(SyncError::Unexpected {
                expected: want.name(),
                got,
            })),
        }
    }
}

/// Why [`Channel::expect`] failed.
#[derive(Debug)]
pub enum ExpectError {
    /// The other side reported this error.
    Remote(String),
    /// The protocol failed.
    Sync(SyncError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_of_a_peer_gone_with_ours_unread() {
        // The peer exits with our message unread: the kernel reports ECONNRESET once, before
        // the message the peer sent; then the end.
        let (a, b) = pair().unwrap();
        b.send(&Message::Error("failed".into())).unwrap();
        a.send(&Message::Placed).unwrap();
        drop(b);
        assert!(matches!(
            a.recv("Ready", Some(Duration::from_secs(1))),
            Ok(Message::Error(t)) if t == "failed"
        ));
        assert!(matches!(
            a.recv("Ready", Some(Duration::from_secs(1))),
            Err(SyncError::Eof { .. })
        ));
    }

    #[test]
    fn round_trip_and_order() {
        let (a, b) = pair().unwrap();
        a.send(&Message::Go).unwrap();
        b.expect(&Message::Go, Some(Duration::from_secs(1)))
            .unwrap();
        b.send(&Message::Error("boom".into())).unwrap();
        assert!(
            matches!(a.expect(&Message::Ready, None), Err(ExpectError::Remote(t)) if t == "boom")
        );
        b.send(&Message::Go).unwrap();
        assert!(matches!(
            a.expect(&Message::Ready, None),
            Err(ExpectError::Sync(SyncError::Unexpected { .. }))
        ));
        assert!(matches!(
            a.expect(&Message::Ready, Some(Duration::from_millis(10))),
            Err(ExpectError::Sync(SyncError::Timeout { .. }))
        ));
        drop(b);
        assert!(matches!(
            a.expect(&Message::Ready, None),
            Err(ExpectError::Sync(SyncError::Eof { .. }))
        ));
    }
}
