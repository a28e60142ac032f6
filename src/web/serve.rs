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

use crate::edge::{Admitted, ConnLimits, Guarded};

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
        let builder = Arc::new(builder(&edge));
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
            let admitted = edge.limits.admit_or_evict(peer);
            if let Admitted::Refused = admitted {
                // Dropping the socket closes it.
                continue;
            }
            let (builder, router, stop) = (builder.clone(), router.clone(), stop.clone());
            let (idle, tls) = (edge.idle_timeout, edge.tls.clone());
            connections.spawn(async move {
                let Some(slot) = admitted.slot().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                match tls {
                    None => {
                        serve_connection(Guarded::new(stream, slot), &builder, router, idle, stop)
                            .await
                    }
                    Some(acceptor) => {
                        // The handshake comes before the first request's deadline counts.
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                serve_connection(
                                    Guarded::new(tls, slot),
                                    &builder,
                                    router,
                                    idle,
                                    stop,
                                )
                                .await
                            }
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "tls handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                        }
                    }
                }
            });
        }
        connections.close();
        connections.wait().await;
    })
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
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
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
