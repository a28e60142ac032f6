//! The HTTP port (`--http-addr`), on axum: the probes and metrics
//! (`/metrics`, `/healthz`, `/readyz`), the HTTP doors of other modules
//! ([`HttpDoor`]: a `tower::Service` at a path, such as OTLP/HTTP's
//! `POST /v1/traces`), and, with the web
//! role, the dashboard: its pages (embedded in the binary, `assets.rs`),
//! its JSON API under `/api/v1/` (`api.rs`: the same query and store
//! functions as the gRPC services, checked against the session's tenant and
//! role) and the live incident stream (`events.rs`: server-sent events fed
//! by the same incident feed as `Incidents.Watch`).
//!
//! Every dashboard answer carries the security headers (a strict
//! Content-Security-Policy: no inline script, nothing from another host)
//! and is gzip-compressed when the browser asks; every request is logged
//! (method, path, status, time; never a cookie or a query string).

mod api;
mod assets;
mod events;
mod json;
mod notify;
mod objectives;
mod serve;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Logins,
    incidents::hub::{Hub, Rendered},
    ingest::Admission,
    ops::Readiness,
    store::Store,
};

pub use events::render_update;
pub use serve::{Edge, spawn};

/// Another module's HTTP door: a service mounted at `path` (every method;
/// the door answers the ones it does not take).
pub struct HttpDoor {
    /// The path it answers.
    pub path: &'static str,
    /// The door.
    pub service: tower::util::BoxCloneSyncService<
        Request,
        axum::http::Response<http_body_util::Full<bytes::Bytes>>,
        std::convert::Infallible,
    >,
}

/// What the dashboard reads and acts on.
#[derive(Clone)]
pub struct Dashboard {
    /// Where the answers come from.
    pub store: Store,
    /// Logins and sessions.
    pub logins: Arc<Logins>,
    /// This process's incident updates.
    pub hub: Arc<Hub<Rendered>>,
    /// This process's writer queue, when it ingests.
    pub admission: Option<Arc<dyn Admission>>,
    /// Time between keep-alives of an idle event stream.
    pub heartbeat: Duration,
    /// Cancelled when the server stops: event streams end.
    pub shutdown: CancellationToken,
    /// The port serves TLS: the session cookie is `Secure`.
    pub tls: bool,
    /// The per-tenant bound on concurrent queries (shared with the gRPC door).
    pub gate: Arc<crate::query::gate::QueryGate>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

/// What the probes answer from.
#[derive(Clone)]
struct Probes {
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
}

/// The Content-Security-Policy of every dashboard answer: this origin's
/// scripts, styles and connections only, no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The whole router of the HTTP port.
pub fn router(
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
    doors: Vec<HttpDoor>,
    dashboard: Option<Dashboard>,
) -> Router {
    let probes = Probes { metrics, readiness };
    let mut router = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(probes);
    for door in doors {
        router = router.route_service(
            door.path,
            tower::ServiceExt::map_response(door.service, |r| r.map(Body::new)),
        );
    }
    if let Some(dashboard) = dashboard {
        let pages = api::routes()
            .merge(objectives::routes())
            .merge(assets::routes())
            .with_state(dashboard)
            .layer(middleware::from_fn(secure))
            .layer(tower_http::compression::CompressionLayer::new().gzip(true));
        router = router.merge(pages);
    }
    router
        .fallback(not_found)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            serve::BODY_TIMEOUT,
        ))
        .layer(middleware::from_fn(access_log))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body.into(),
    )
        .into_response()
}

async fn metrics_text(State(p): State<Probes>) -> Response {
    text(StatusCode::OK, p.metrics.render())
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(p): State<Probes>) -> Response {
    if p.readiness.is_ready() {
        text(StatusCode::OK, "ready\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn not_found(method: Method) -> Response {
    if method != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    text(
        StatusCode::NOT_FOUND,
        "not found: try /, /metrics, /healthz or /readyz\n",
    )
}

/// Adds the security headers to a dashboard answer, and refuses a request
/// that changes something from another origin.
async fn secure(request: Request, next: Next) -> Response {
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes && !same_origin(&request) {
        return api::error(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether a request's `Origin` (when the browser sends one) is this host.
fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    // HTTP/1.1 names the host in `Host`; HTTP/2 in the `:authority` the
    // request's URI carries.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// Logs each request: method, path, status, milliseconds.
async fn access_log(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        target: "pulsyon::access",
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "http"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_from_another_origin_is_told_apart() {
        let req = |origin: Option<&str>| {
            let mut b = Request::builder()
                .method(Method::POST)
                .header(header::HOST, "127.0.0.1:9464");
            if let Some(o) = origin {
                b = b.header(header::ORIGIN, o);
            }
            b.body(Body::empty()).unwrap()
        };
        assert!(same_origin(&req(None)));
        assert!(same_origin(&req(Some("http://127.0.0.1:9464"))));
        assert!(!same_origin(&req(Some("http://evil.example"))));
        assert!(!same_origin(&req(Some("null"))));
        // HTTP/2: the host is the URI's authority.
        let h2 = |origin: &str| {
            Request::builder()
                .method(Method::POST)
                .version(axum::http::Version::HTTP_2)
                .uri("https://127.0.0.1:9464/api/v1/session")
                .header(header::ORIGIN, origin)
                .body(Body::empty())
                .unwrap()
        };
        assert!(same_origin(&h2("https://127.0.0.1:9464")));
        assert!(!same_origin(&h2("https://evil.example")));
    }
}
