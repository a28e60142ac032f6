//! Admission of connections to the gRPC port, so that silent or slow
//! clients cannot hold the server's descriptors and memory:
//! - at most `max` connections at once: past it a new connection is closed
//!   at once, counted (`pulsyon_connections_refused_total`) and logged (at
//!   most once a second);
//! - a connection must send the HTTP/2 preface and its first request
//!   (a HEADERS frame) within `first_request`, or it is closed and counted
//!   (`pulsyon_connections_closed_total{reason="no_request"}`);
//! - at start-up the descriptor soft limit is raised to the hard limit.
//!
//! Frames are looked at only until the first request; after it the
//! connection's bytes pass untouched. This module never reads application
//! data and never delays a byte.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tonic::transport::server::Connected;

/// The client's HTTP/2 connection preface.
const PREFACE_LEN: usize = 24;
/// The HTTP/2 frame type that opens a request.
const HEADERS: u8 = 0x1;

/// Bounds on the connections of one listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Connection slots.
    slots: Arc<Semaphore>,
    /// Most connections at once.
    max: usize,
    /// Longest wait for the preface and first request.
    first_request: Duration,
    /// When the last refusal was logged (seconds since the Unix epoch).
    last_logged: Arc<AtomicU64>,
}

impl ConnLimits {
    /// At most `max` connections, each with `first_request` to send its first request.
    pub fn new(max: usize, first_request: Duration) -> ConnLimits {
        ConnLimits {
            slots: Arc::new(Semaphore::new(max)),
            max,
            first_request,
            last_logged: Arc::default(),
        }
    }

    /// A slot for a new connection from `peer`, or `None` (refused: the
    /// caller drops the socket, which closes it).
    pub fn admit(&self, peer: std::net::SocketAddr) -> Option<Slot> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("pulsyon_connections_open")
                    .set((self.max - self.slots.available_permits()) as f64);
                Some(Slot {
                    _permit: permit,
                    first_request: self.first_request,
                    slots: self.slots.clone(),
                    max: self.max,
                })
            }
            Err(_) => {
                metrics::counter!("pulsyon_connections_refused_total", "reason" => "limit")
                    .increment(1);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                if self.last_logged.swap(now, Ordering::Relaxed) != now {
                    tracing::warn!(%peer, max = self.max, "connection refused: the server holds its most connections (--max-connections)");
                }
                None
            }
        }
    }
}

/// A connection's slot, given back when the connection closes.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    first_request: Duration,
    slots: Arc<Semaphore>,
    max: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit returns after this body; count it as returned already.
        let open = self.max - self.slots.available_permits() - 1;
        metrics::gauge!("pulsyon_connections_open").set(open as f64);
    }
}

/// Where a connection is on its way to its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Preface bytes still to come.
    Preface(usize),
    /// Inside a frame header: bytes of it seen so far.
    Header([u8; 9], usize),
    /// Inside a frame's payload: bytes still to skip.
    Payload(usize),
    /// The first request arrived.
    Done,
}

impl Progress {
    /// Advances over `bytes` the client sent.
    fn feed(mut self, mut bytes: &[u8]) -> Progress {
        while !bytes.is_empty() {
            self = match self {
                Progress::Done => return Progress::Done,
                Progress::Preface(left) => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    if left == n {
                        Progress::Header([0; 9], 0)
                    } else {
                        Progress::Preface(left - n)
                    }
                }
                Progress::Header(mut header, seen) => {
                    let n = (9 - seen).min(bytes.len());
                    header[seen..seen + n].copy_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    if seen + n < 9 {
                        Progress::Header(header, seen + n)
                    } else if header[3] == HEADERS {
                        Progress::Done
                    } else {
                        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                        if len == 0 {
                            Progress::Header([0; 9], 0)
                        } else {
                            Progress::Payload(len)
                        }
                    }
                }
                Progress::Payload(left) => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    if left == n {
                        Progress::Header([0; 9], 0)
                    } else {
                        Progress::Payload(left - n)
                    }
                }
            };
        }
        self
    }
}

/// An admitted connection: holds its slot and enforces the first-request deadline.
pub struct Guarded<S> {
    inner: S,
    _slot: Slot,
    progress: Progress,
    /// Until the first request; `None` after it.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Guarded<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S, slot: Slot) -> Guarded<S> {
        let deadline = Some(Box::pin(tokio::time::sleep(slot.first_request)));
        Guarded {
            inner,
            _slot: slot,
            progress: Progress::Preface(PREFACE_LEN),
            deadline,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            metrics::counter!("pulsyon_connections_closed_total", "reason" => "no_request")
                .increment(1);
            tracing::debug!("connection closed: no request within the deadline");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within the deadline",
            )));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_some() {
            this.progress = this.progress.feed(&buf.filled()[before..]);
            if this.progress == Progress::Done {
                this.deadline = None;
            }
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for Guarded<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Raises the soft limit of open descriptors to the hard limit, so that the
/// connection limit, not the descriptor table, is what refuses connections.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-file limit"),
            Err(err) => {
                tracing::warn!(error = %err, soft, hard, "could not raise the open-file limit")
            }
        },
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "could not read the open-file limit"),
    }
}

/// The soft limit of open descriptors now.
pub fn fd_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 1];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn the_first_request_is_found_past_the_preface_and_other_frames_in_any_split() {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        wire.extend(frame(0x4, &[0; 12])); // SETTINGS
        wire.extend(frame(0x8, &[0, 0, 1, 0])); // WINDOW_UPDATE
        wire.extend(frame(0x4, &[])); // SETTINGS ack
        let before_request = wire.len();
        wire.extend(frame(HEADERS, &[0x82, 0x86]));
        for split in 1..wire.len() {
            let mut p = Progress::Preface(PREFACE_LEN);
            for chunk in wire[..before_request].chunks(split) {
                p = p.feed(chunk);
            }
            assert_ne!(
                p,
                Progress::Done,
                "split {split}: not before the HEADERS frame"
            );
            for chunk in wire[before_request..].chunks(split) {
                p = p.feed(chunk);
            }
            assert_eq!(p, Progress::Done, "split {split}");
        }
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_refused_and_a_closed_one_frees_its_slot() {
        let limits = ConnLimits::new(2, Duration::from_secs(10));
        let peer = "127.0.0.1:1".parse().unwrap();
        let a = limits.admit(peer).unwrap();
        let _b = limits.admit(peer).unwrap();
        assert!(limits.admit(peer).is_none());
        drop(a);
        assert!(limits.admit(peer).is_some());
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_at_the_deadline() {
        use tokio::io::AsyncReadExt;
        let limits = ConnLimits::new(1, Duration::from_millis(50));
        let (server, _client) = tokio::io::duplex(1024);
        let mut guarded = Guarded::new(
            server,
            limits.admit("127.0.0.1:1".parse().unwrap()).unwrap(),
        );
        let mut buf = [0u8; 16];
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
