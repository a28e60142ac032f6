//! The HTTP port's connections, served by hyper (HTTP/1.1, and HTTP/2 by
//! prior knowledge or, with TLS, by ALPN), under the connection policy the
//! gRPC port has too (`crate::edge`): a bounded number of connections (the
//! oldest one that has not sent a request is closed to make room for a new
//! one), a first request within `--first-request-timeout`, then
//! - HTTP/1.1: every later request head within the same time (hyper's
//!   `header_read_timeout`, which also bounds a kept-alive connection's
//!   wait between requests), a request body within [`BODY_TIMEOUT`];
//! - HTTP/2: pings to find dead peers, and a connection with no request in
//!   flight for `--http-idle-timeout` is closed (GOAWAY).
//!
//! At shutdown every connection is shut down gracefully: answers in flight
//! are written whole, then the connection closes (event streams end when
//! the server's streams do). Parsing and framing are hyper's alone; this
//! module never reads a byte of a request itself.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, HttpBody},
    response::Response,
};
use http_body_util::BodyExt;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::Notify,
    task::JoinHandle,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use crate::edge::{Admitted, ConnLimits, Guarded, Sniffed};

/// Longest time a request body may take to arrive (a trickled body is cut
/// off, answered 408 by the handler that reads it, and its connection closed).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (HTTP/1.1: larger is answered 431; HTTP/2: the
/// header list). A browser's heads, cookies included, stay far under it.
const MAX_HEAD: usize = 64 * 1024;
/// Time between HTTP/2 pings, and how long one may go unanswered.
const H2_PING: Duration = Duration::from_secs(20);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The policy of the HTTP port's connections.
#[derive(Clone)]
pub struct Edge {
    /// Connection bound and first-request deadline.
    pub limits: ConnLimits,
    /// Longest wait for an HTTP/1.1 request head (the first and every later one).
    pub header_timeout: Duration,
    /// An HTTP/2 connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
    /// TLS, with ALPN `h2` and `http/1.1`; plaintext when `None`.
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("limits", &self.limits)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Serves `router` on `listener` until `stop` is cancelled; then stops
/// accepting, shuts every connection down gracefully and ends when they have
/// closed (the caller bounds the wait).
pub fn spawn(
    listener: TcpListener,
    router: Router,
    edge: Edge,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let builders = Arc::new(Builders::new(&edge));
        let connections = TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(error = %err, "http accept failed");
                        // Out of descriptors, most likely: let some close.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Admitted::Now(slot) = edge.limits.admit_or_evict(peer) else {
                // Refused: dropping the socket closes it.
                continue;
            };
            let (builders, router, stop) = (builders.clone(), router.clone(), stop.clone());
            let idle = edge.idle_timeout;
            // One task kind per port kind: a plaintext connection's task is
            // not sized by the TLS state it never holds (every idle browser
            // stream keeps its task).
            match edge.tls.clone() {
                None => connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let mut io = Guarded::new(stream, slot);
                    match io.sniff().await {
                        Ok(sniffed) => {
                            let builder = builders.of(sniffed);
                            serve_connection(io, builder, router, idle, stop).await
                        }
                        Err(err) => tracing::debug!(%peer, error = %err, "connection closed before its first request"),
                    }
                }),
                Some(acceptor) => connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    // The handshake comes before the first request's deadline counts.
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let builder = builders.of(match tls.get_ref().1.alpn_protocol() {
                                Some(b"h2") => Sniffed::Http2,
                                Some(b"http/1.1") => Sniffed::Http1,
                                _ => Sniffed::Unknown,
                            });
                            serve_connection(Guarded::new(tls, slot), builder, router, idle, stop)
                                .await
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "tls handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                }),
            };
        }
        connections.close();
        connections.wait().await;
    })
}

/// hyper's servers of the port: each protocol's alone, for connections
/// whose protocol is known before hyper reads (ALPN, or the first bytes
/// peeked), and both, for the rest (hyper-util reads a prefix and hands it
/// back, which leaves hyper's HTTP/1 read buffer at twice its size: 8 KiB
/// more for every idle event stream).
struct Builders {
    either: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(edge: &Edge) -> Builders {
        let either = builder(edge);
        Builders {
            http1: either.clone().http1_only(),
            http2: either.clone().http2_only(),
            either,
        }
    }

    fn of(&self, sniffed: Sniffed) -> &auto::Builder<TokioExecutor> {
        match sniffed {
            Sniffed::Http1 => &self.http1,
            Sniffed::Http2 => &self.http2,
            Sniffed::Unknown => &self.either,
        }
    }
}

/// hyper's server for every connection of the port.
fn builder(edge: &Edge) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(edge.header_timeout)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_PING))
        .keep_alive_timeout(H2_PING)
        .max_concurrent_streams(64)
        .max_header_list_size(MAX_HEAD as u32);
    builder
}

/// Serves one admitted connection to its end.
async fn serve_connection<I>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    idle: Duration,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let in_flight = Arc::new(InFlight::default());
    let service = TowerToHyperService::new(Tracked {
        router,
        in_flight: in_flight.clone(),
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(error = %err, "http connection ended with an error");
                }
                return;
            }
            _ = stop.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = in_flight.idle_for(idle), if !closing => {
                metrics::counter!("pulsyon_connections_closed_total", "port" => "http", "reason" => "idle")
                    .increment(1);
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Requests of one connection whose answers are not over yet.
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    changed: Notify,
}

/// One request in flight, until its answer's body ends (or is dropped).
struct Running(Arc<InFlight>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> Running {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        Running(self.clone())
    }

    /// Ends once nothing has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => return,
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// The router, counting each request in flight until its answer is over.
#[derive(Clone)]
struct Tracked {
    router: Router,
    in_flight: Arc<InFlight>,
}

impl<B> tower::Service<hyper::Request<B>> for Tracked
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let running = self.in_flight.enter();
        let answer = self.router.clone().oneshot(request.map(Body::new));
        Box::pin(async move {
            let response = answer.await?;
            // The request stays in flight until its body has gone out.
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &running;
                    frame
                }))
            }))
        })
    }
}

/// Fuzzing of the HTTP port's request handling: raw bytes, from the
/// committed corpus under `fuzz/corpus/http_requests/` mutated by proptest,
/// go through the port's whole connection path (the first-request guard,
/// hyper, the router's layers and the probes) on an in-memory connection,
/// with time paused so that every deadline passes at once. Never a panic,
/// never an answer that is not HTTP, never a 5xx. A short run is part of
/// every `cargo test`; `PROPTEST_CASES` raises it.
#[cfg(test)]
mod fuzz {
    use std::path::PathBuf;

    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn corpus() -> Vec<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/http_requests");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("the committed corpus")
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 8, "the corpus is committed");
        seeds
    }

    /// Serves `bytes` as one connection's input; returns what was answered.
    fn serve(bytes: &[u8]) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            // One router and one server for every case: building them is
            // most of a case's time.
            static PORT: std::sync::OnceLock<(Router, auto::Builder<TokioExecutor>)> =
                std::sync::OnceLock::new();
            let (router, builder) = PORT.get_or_init(|| {
                let router = super::super::router(
                    metrics_exporter_prometheus::PrometheusBuilder::new()
                        .build_recorder()
                        .handle(),
                    Arc::new(crate::ops::Readiness::default()),
                    Vec::new(),
                    None,
                );
                let edge = Edge {
                    limits: ConnLimits::new(1, Duration::from_secs(10), "fuzz", "--fuzz"),
                    header_timeout: Duration::from_secs(10),
                    idle_timeout: Duration::from_secs(60),
                    tls: None,
                };
                (router, builder(&edge))
            });
            let (router, builder) = (router.clone(), builder.clone());
            let limits = ConnLimits::new(1, Duration::from_secs(10), "fuzz", "--fuzz").evicting();
            let (mut client, server) = tokio::io::duplex(1 << 20);
            let slot = limits.admit("127.0.0.1:1".parse().unwrap()).unwrap();
            let stop = CancellationToken::new();
            let served = tokio::spawn(async move {
                serve_connection(
                    Guarded::new(server, slot),
                    &builder,
                    router,
                    Duration::from_secs(60),
                    stop,
                )
                .await
            });
            client.write_all(bytes).await.unwrap();
            let mut out = Vec::new();
            // Time is paused: deadlines pass as soon as nothing else can run.
            let _ =
                tokio::time::timeout(Duration::from_secs(120), client.read_to_end(&mut out)).await;
            drop(client);
            let _ = served.await;
            out
        })
    }

    fn check(bytes: &[u8]) {
        let out = serve(bytes);
        if out.is_empty() {
            return;
        }
        // HTTP/2 frames answer the whole preface, and nothing else.
        if out.starts_with(b"\0") {
            assert!(
                bytes.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                "{out:?}"
            );
            return;
        }
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 ") || text.starts_with("HTTP/1.0 "),
            "{text:?}"
        );
        // 503 is /readyz's answer here (no database); a 500 is a bug.
        for status in text
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| text.get(i + 9..i + 12))
            .filter_map(|s| s.parse::<u16>().ok())
        {
            assert_ne!(
                status,
                500,
                "for {:?}:\n{text}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        for &(at, kind, byte) in edits {
            let len = bytes.len().max(1);
            match kind % 4 {
                0 if !bytes.is_empty() => bytes[at % len] = byte,
                1 => bytes.truncate(at % len),
                2 => {
                    let at = at % (bytes.len() + 1);
                    bytes.insert(at, byte);
                }
                // HTTP's own separators, where they hurt most.
                _ => {
                    let at = at % (bytes.len() + 1);
                    let piece: &[u8] = match byte % 5 {
                        0 => b"\r\n",
                        1 => b"\n",
                        2 => b":",
                        3 => b" ",
                        _ => b"\r\ncontent-length: 1\r\n",
                    };
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]

        #[test]
        fn mutated_requests_are_answered_as_http_or_closed(
            seed in any::<prop::sample::Index>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
        ) {
            let seeds = corpus();
            check(&mutate(seeds[seed.index(seeds.len())].clone(), &edits));
        }

        #[test]
        fn arbitrary_bytes_are_answered_as_http_or_closed(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            check(&bytes);
        }
    }

    #[test]
    fn the_corpus_is_answered() {
        for seed in corpus() {
            check(&seed);
        }
        // A plain request gets its answer.
        let out = serve(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
}
