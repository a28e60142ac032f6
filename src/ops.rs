//! The operations HTTP endpoint: `/metrics` (Prometheus text format),
//! `/healthz` (the process is alive) and `/readyz` (the database answers and
//! shutdown has not begun).
//!
//! HTTP/1.1. Besides these GETs, it routes the paths of the HTTP doors it is
//! given (`Door`, such as OTLP/HTTP's `POST /v1/traces`) to them; it knows
//! nothing of what they do. The probes must never block or share state with
//! the gRPC path beyond the `Readiness` flags.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// Whether the process should receive traffic.
#[derive(Debug, Default)]
pub struct Readiness {
    /// The database answered the latest ping.
    db_up: AtomicBool,
    /// Shutdown has begun.
    stopping: AtomicBool,
}

impl Readiness {
    /// Records the latest database ping.
    pub fn set_db_up(&self, up: bool) {
        self.db_up.store(up, Ordering::Relaxed);
        metrics::gauge!("pulsyon_database_up").set(if up { 1.0 } else { 0.0 });
    }

    /// Records that shutdown has begun; never undone.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Ready for traffic.
    pub fn is_ready(&self) -> bool {
        self.db_up.load(Ordering::Relaxed) && !self.stopping.load(Ordering::Relaxed)
    }
}

/// An HTTP door served on this endpoint at one path.
pub trait Door: Send + Sync {
    /// The path it answers.
    fn path(&self) -> &'static str;
    /// Answers one request of that path.
    fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send + '_>>;
}

/// Serves the endpoint (and `doors`) on `listener` until `stop` is cancelled.
pub fn spawn(
    listener: TcpListener,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
    doors: Vec<Arc<dyn Door>>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let doors = Arc::new(doors);
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(error = %err, "http accept failed");
                        continue;
                    }
                },
            };
            let metrics = metrics.clone();
            let readiness = readiness.clone();
            let doors = doors.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                // A door's path goes to the door; the rest is answered here.
                let route = match doors.iter().find(|d| d.path() == req.uri().path()) {
                    Some(door) => Ok(door.clone()),
                    None => Err(respond(&req, &metrics, &readiness)),
                };
                async move {
                    Ok::<_, Infallible>(match route {
                        Ok(door) => door.handle(req).await,
                        Err(response) => response,
                    })
                }
            });
            tokio::spawn(async move {
                if let Err(err) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %err, "http connection ended with an error");
                }
            });
        }
    })
}

fn respond<B>(
    req: &Request<B>,
    metrics: &PrometheusHandle,
    readiness: &Readiness,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => text(StatusCode::OK, metrics.render()),
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" if readiness.is_ready() => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}
