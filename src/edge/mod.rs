//! Admission of connections to both ports (gRPC and HTTP), so that silent
//! or slow clients cannot hold the server's descriptors and memory; each
//! port has its own [`ConnLimits`]:
//! - at most `max` connections at once: past it a new connection is closed
//!   at once, counted (`pulsyon_connections_refused_total{port}`) and logged
//!   (at most once a second per port); on a port that evicts (the HTTP
//!   port), the oldest connection that has not sent a request yet is closed
//!   to make room instead, counted as `reason="evicted"`, and its slot goes
//!   to the new connection at once (never a wait on the evicted one's task),
//!   so that a flood of silent connections cannot keep a real client out;
//! - a connection must send its first request within `first_request` (for
//!   HTTP/2 the preface, then a HEADERS frame; for HTTP/1.1 a whole request
//!   head), or it is closed and counted
//!   (`pulsyon_connections_closed_total{port, reason="no_request"}`);
//! - at start-up the descriptor soft limit is raised to the hard limit.
//!
//! Bytes are looked at only until the first request; after it the
//! connection's bytes pass untouched. [`Guarded::sniff`] tells, without
//! consuming a byte, whether a plaintext connection opens with HTTP/2's
//! preface or an HTTP/1 head, so that its server need not read a prefix
//! itself and hand it back (hyper-util's detection does, and hyper's read
//! buffer then grows to twice its size for the connection's whole life). This module never reads application
//! data, never delays a byte and knows no HTTP library: the ports' servers
//! (tonic, hyper) parse what they serve.

pub mod tls;

use std::{
    collections::VecDeque,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The client's HTTP/2 connection preface.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The HTTP/2 frame type that opens a request.
const HEADERS: u8 = 0x1;

/// Bounds on the connections of one listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Connection slots.
    slots: Arc<Semaphore>,
    /// Most connections at once.
    max: usize,
    /// Longest wait for the first request.
    first_request: Duration,
    /// The port's name in metrics and logs (`grpc`, `http`).
    port: &'static str,
    /// The flag that sets `max`, for the log line.
    flag: &'static str,
    /// Connections that have not sent a request yet, oldest first (only on
    /// a port that evicts; entries of gone or proven connections are
    /// skipped and pruned).
    unproven: Option<Arc<Mutex<VecDeque<Weak<Unproven>>>>>,
    /// When the last refusal was logged (seconds since the Unix epoch).
    last_logged: Arc<AtomicU64>,
}

/// What a port that evicts knows of a connection without a request yet.
#[derive(Debug, Default)]
struct Unproven {
    /// Cancelled to close the connection.
    evict: CancellationToken,
    /// Set once its first request came: no longer evictable.
    proven: AtomicBool,
    /// The connection's slot; an eviction hands it to the new connection
    /// at once (the evicted one closes at its next read, without a slot).
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

/// What became of a new connection.
#[derive(Debug)]
pub enum Admitted {
    /// A slot was free, or the oldest silent connection's was handed over
    /// (that connection closes at its next read).
    Now(Slot),
    /// Every slot is held by a connection that sent a request: closed.
    Refused,
}

impl ConnLimits {
    /// At most `max` connections, each with `first_request` to send its
    /// first request; `port` names it in metrics, `flag` in the refusal's log.
    pub fn new(
        max: usize,
        first_request: Duration,
        port: &'static str,
        flag: &'static str,
    ) -> ConnLimits {
        ConnLimits {
            slots: Arc::new(Semaphore::new(max)),
            max,
            first_request,
            port,
            flag,
            unproven: None,
            last_logged: Arc::default(),
        }
    }

    /// The same bounds, and when full the oldest connection that has not
    /// sent a request yet is closed to make room for a new one.
    pub fn evicting(mut self) -> ConnLimits {
        self.unproven = Some(Arc::default());
        self
    }

    /// A slot for a new connection from `peer`, or `None` (refused: the
    /// caller drops the socket, which closes it). Never evicts.
    pub fn admit(&self, peer: std::net::SocketAddr) -> Option<Slot> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(self.slot(permit)),
            Err(_) => {
                self.refused(peer);
                None
            }
        }
    }

    /// As [`ConnLimits::admit`], evicting the oldest silent connection when
    /// full (on a port made with [`ConnLimits::evicting`]): its slot goes to
    /// the new connection at once, so a real client never waits on the
    /// evicted connection's task, however loaded the machine.
    pub fn admit_or_evict(&self, peer: std::net::SocketAddr) -> Admitted {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Admitted::Now(self.slot(permit));
        }
        if let Some(permit) = self.evict_oldest_silent() {
            metrics::counter!("pulsyon_connections_closed_total", "port" => self.port, "reason" => "evicted")
                .increment(1);
            return Admitted::Now(self.slot(permit));
        }
        self.refused(peer);
        Admitted::Refused
    }

    /// Closes the oldest connection that has not sent a request and takes
    /// its slot; `None` if there is none.
    fn evict_oldest_silent(&self) -> Option<OwnedSemaphorePermit> {
        let unproven = self.unproven.as_ref()?;
        let mut queue = unproven.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(oldest) = queue.pop_front() {
            if let Some(conn) = oldest.upgrade()
                && !conn.proven.load(Ordering::Relaxed)
                && !conn.evict.is_cancelled()
            {
                let permit = conn.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
                conn.evict.cancel();
                if permit.is_some() {
                    return permit;
                }
            }
        }
        None
    }

    fn refused(&self, peer: std::net::SocketAddr) {
        metrics::counter!("pulsyon_connections_refused_total", "port" => self.port, "reason" => "limit")
            .increment(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if self.last_logged.swap(now, Ordering::Relaxed) != now {
            tracing::warn!(%peer, port = self.port, max = self.max, flag = self.flag,
                "connection refused: the port holds its most connections");
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        metrics::gauge!("pulsyon_connections_open", "port" => self.port)
            .set((self.max - self.slots.available_permits()) as f64);
        // On a port that evicts the permit lives with what eviction can reach.
        let (permit, unproven) = match &self.unproven {
            None => (Some(permit), None),
            Some(_) => (None, Some(permit)),
        };
        let unproven = self.unproven.as_ref().zip(unproven).map(|(queue, permit)| {
            let conn = Arc::new(Unproven {
                permit: Mutex::new(Some(permit)),
                ..Unproven::default()
            });
            let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded: entries of connections gone or proven are pruned
            // once the queue outgrows the slots.
            if queue.len() >= self.max.max(16) {
                queue.retain(|c| {
                    c.upgrade()
                        .is_some_and(|c| !c.proven.load(Ordering::Relaxed))
                });
            }
            queue.push_back(Arc::downgrade(&conn));
            conn
        });
        Slot {
            _permit: permit,
            first_request: self.first_request,
            slots: self.slots.clone(),
            max: self.max,
            port: self.port,
            unproven,
        }
    }
}

/// A connection's slot, given back when the connection closes.
#[derive(Debug)]
pub struct Slot {
    /// The permit (on a port that evicts, held in `unproven` instead).
    _permit: Option<OwnedSemaphorePermit>,
    first_request: Duration,
    slots: Arc<Semaphore>,
    max: usize,
    port: &'static str,
    /// On a port that evicts: how to evict it until it is proven.
    unproven: Option<Arc<Unproven>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit returns after this body (an evicted connection's went
        // to its successor); count it as returned already.
        let held = self._permit.is_some()
            || self
                .unproven
                .as_ref()
                .is_some_and(|u| u.permit.lock().unwrap_or_else(|p| p.into_inner()).is_some());
        let open = self.max - self.slots.available_permits() - usize::from(held);
        metrics::gauge!("pulsyon_connections_open", "port" => self.port).set(open as f64);
    }
}

/// Where a connection is on its way to its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// The bytes so far match the HTTP/2 preface's first `n`.
    Sniff(usize),
    /// HTTP/1: inside the first request's head; `lf`: the last byte other
    /// than CR was a LF (a second LF ends the head: CRLF CRLF or bare LFs).
    Head { lf: bool },
    /// HTTP/2, inside a frame header: bytes of it seen so far.
    Header([u8; 9], usize),
    /// HTTP/2, inside a frame's payload: bytes still to skip.
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
                Progress::Sniff(n) => {
                    if bytes[0] != PREFACE[n] {
                        // Not HTTP/2: the same bytes are a head's.
                        Progress::Head { lf: false }
                    } else {
                        bytes = &bytes[1..];
                        if n + 1 == PREFACE.len() {
                            Progress::Header([0; 9], 0)
                        } else {
                            Progress::Sniff(n + 1)
                        }
                    }
                }
                Progress::Head { lf } => {
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    match b {
                        b'\n' if lf => Progress::Done,
                        b'\n' => Progress::Head { lf: true },
                        b'\r' => Progress::Head { lf },
                        _ => Progress::Head { lf: false },
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

/// An admitted connection: holds its slot and enforces the first-request
/// deadline (and, on a port that evicts, closes when evicted before it).
pub struct Guarded<S> {
    inner: S,
    slot: Slot,
    progress: Progress,
    /// Until the first request; `None` after it.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Until the first request, on a port that evicts.
    evicted: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Bytes that are not HTTP/2's preface: an HTTP/1 head (or garbage,
    /// which the HTTP/1 server refuses).
    Http1,
    /// HTTP/2's whole preface.
    Http2,
    /// Not known yet (a preface's first bytes only, or the end of the
    /// stream): the server finds out by itself.
    Unknown,
}

/// What the first `bytes` a client sent say it speaks.
pub fn sniffed(bytes: &[u8]) -> Sniffed {
    let n = bytes.len().min(PREFACE.len());
    if bytes[..n] != PREFACE[..n] {
        Sniffed::Http1
    } else if n == PREFACE.len() {
        Sniffed::Http2
    } else {
        Sniffed::Unknown
    }
}

impl Guarded<tokio::net::TcpStream> {
    /// Waits for the client's first bytes (within the first-request
    /// deadline, and until evicted) and tells which protocol they open,
    /// leaving them unread.
    pub async fn sniff(&mut self) -> io::Result<Sniffed> {
        std::future::poll_fn(|cx| {
            if let Some(err) = self.poll_guard(cx) {
                return Poll::Ready(Err(err));
            }
            let mut bytes = [0u8; PREFACE.len()];
            let mut buf = ReadBuf::new(&mut bytes);
            match self.inner.poll_peek(cx, &mut buf) {
                Poll::Ready(Ok(0)) => Poll::Ready(Ok(Sniffed::Unknown)),
                Poll::Ready(Ok(n)) => Poll::Ready(Ok(sniffed(&bytes[..n]))),
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

impl<S> Guarded<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S, slot: Slot) -> Guarded<S> {
        let deadline = Some(Box::pin(tokio::time::sleep(slot.first_request)));
        let evicted = slot
            .unproven
            .as_ref()
            .map(|u| Box::pin(u.evict.clone().cancelled_owned()));
        Guarded {
            inner,
            slot,
            progress: Progress::Sniff(0),
            deadline,
            evicted,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Until the first request: the error that closes the connection once
    /// its deadline passed or it was evicted.
    fn poll_guard(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Some(self.closed("no_request"));
        }
        if let Some(evicted) = self.evicted.as_mut()
            && evicted.as_mut().poll(cx).is_ready()
        {
            // Counted as evicted where the eviction was decided.
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "closed to make room for a new connection",
            ));
        }
        None
    }

    fn closed(&self, reason: &'static str) -> io::Error {
        metrics::counter!("pulsyon_connections_closed_total", "port" => self.slot.port, "reason" => reason)
            .increment(1);
        tracing::debug!(reason, "connection closed before its first request");
        io::Error::new(io::ErrorKind::TimedOut, reason)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(err) = this.poll_guard(cx) {
            return Poll::Ready(Err(err));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_some() {
            this.progress = this.progress.feed(&buf.filled()[before..]);
            if this.progress == Progress::Done {
                this.deadline = None;
                this.evicted = None;
                if let Some(u) = &this.slot.unproven {
                    u.proven.store(true, Ordering::Relaxed);
                }
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
    fn first_bytes_tell_http2_from_http1_only_once_they_can() {
        assert_eq!(sniffed(b"GET / HTTP/1.1\r\n"), Sniffed::Http1);
        // POST shares its first byte with the preface, not its second.
        assert_eq!(sniffed(b"P"), Sniffed::Unknown);
        assert_eq!(sniffed(b"POST /x"), Sniffed::Http1);
        assert_eq!(sniffed(&PREFACE[..10]), Sniffed::Unknown);
        assert_eq!(sniffed(PREFACE), Sniffed::Http2);
        let mut more = PREFACE.to_vec();
        more.extend(frame(0x4, &[]));
        assert_eq!(sniffed(&more), Sniffed::Http2);
        assert_eq!(sniffed(b"\x16\x03\x01"), Sniffed::Http1);
    }

    #[test]
    fn the_first_request_is_found_past_the_preface_and_other_frames_in_any_split() {
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(0x4, &[0; 12])); // SETTINGS
        wire.extend(frame(0x8, &[0, 0, 1, 0])); // WINDOW_UPDATE
        wire.extend(frame(0x4, &[])); // SETTINGS ack
        let before_request = wire.len();
        wire.extend(frame(HEADERS, &[0x82, 0x86]));
        for split in 1..wire.len() {
            let mut p = Progress::Sniff(0);
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
        let limits = ConnLimits::new(2, Duration::from_secs(10), "test", "--test");
        let peer = "127.0.0.1:1".parse().unwrap();
        let a = limits.admit(peer).unwrap();
        let _b = limits.admit(peer).unwrap();
        assert!(limits.admit(peer).is_none());
        drop(a);
        assert!(limits.admit(peer).is_some());
    }

    // Paused time: the runtime moves the clock to the deadline when idle.
    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_at_the_deadline() {
        use tokio::io::AsyncReadExt;
        let limits = ConnLimits::new(1, Duration::from_secs(10), "test", "--test");
        let (server, _client) = tokio::io::duplex(1024);
        let mut guarded = Guarded::new(
            server,
            limits.admit("127.0.0.1:1".parse().unwrap()).unwrap(),
        );
        let mut buf = [0u8; 16];
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn an_http1_head_is_found_at_its_blank_line_in_any_split_and_not_before() {
        for wire in [
            &b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n"[..],
            &b"GET / HTTP/1.1\nhost: a\n\n"[..],
            // Starts like the HTTP/2 preface, then is not it.
            &b"PRI / HTTP/1.1\r\n\r\n"[..],
        ] {
            for split in 1..wire.len() {
                let mut p = Progress::Sniff(0);
                for chunk in wire[..wire.len() - 1].chunks(split) {
                    p = p.feed(chunk);
                }
                assert_ne!(p, Progress::Done, "split {split}: the head is not over");
                p = p.feed(&wire[wire.len() - 1..]);
                assert_eq!(p, Progress::Done, "split {split}");
            }
        }
    }

    #[tokio::test]
    async fn a_full_evicting_port_closes_its_oldest_silent_connection_for_a_new_one() {
        use tokio::io::AsyncReadExt;
        let limits = ConnLimits::new(2, Duration::from_secs(60), "test", "--test").evicting();
        let peer = "127.0.0.1:1".parse().unwrap();
        let (a, _a_client) = tokio::io::duplex(1024);
        let (b, mut b_client) = tokio::io::duplex(1024);
        let mut a = Guarded::new(a, limits.admit(peer).unwrap());
        let mut b = Guarded::new(b, limits.admit(peer).unwrap());
        // b sends a request: it is no longer evictable.
        use tokio::io::AsyncWriteExt;
        b_client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(b.read(&mut buf).await.unwrap() > 0);
        // A third connection evicts a (silent), taking its slot at once; a
        // then reads an error.
        let Admitted::Now(c) = limits.admit_or_evict(peer) else {
            panic!("a's slot goes to the third connection");
        };
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(a);
        // Full of proven (b) and unproven-but-newest (c): c is evicted next, b never.
        let (c_io, _c_client) = tokio::io::duplex(64);
        let mut c = Guarded::new(c_io, c);
        let Admitted::Now(d) = limits.admit_or_evict(peer) else {
            panic!("c's slot goes to the fourth connection");
        };
        assert_eq!(
            c.read(&mut buf).await.unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        // Once d sends a request too, every slot is proven: refused.
        let (d_io, mut d_client) = tokio::io::duplex(1024);
        let mut d = Guarded::new(d_io, d);
        d_client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(d.read(&mut buf).await.unwrap() > 0);
        assert!(matches!(limits.admit_or_evict(peer), Admitted::Refused));
    }
}
