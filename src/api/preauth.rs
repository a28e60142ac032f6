//! Authentication before a request's body is read. tonic reads a unary
//! request's whole message before the handler runs, so without this layer a
//! client with no key could make the server hold a 32 MiB message per
//! stream. Here the key is checked from the headers alone (through the key
//! cache); a request without a valid key for its service is answered
//! UNAUTHENTICATED or PERMISSION_DENIED and its body never read.
//!
//! Health and reflection need no key and pass untouched. Handlers still
//! authorize on their own: this layer only decides whether a body is read.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{BoxFuture, Service, http},
};

use super::Authenticator;
use crate::domain::Scope;

/// The scope a request's path needs; `None` for paths outside `pulsyon.v1`.
fn scope_of(path: &str) -> Option<Scope> {
    if path.starts_with("/opentelemetry.proto.collector.trace.v1.TraceService/") {
        return Some(Scope::Ingest);
    }
    let service = path.strip_prefix("/pulsyon.v1.")?.split('/').next()?;
    match service {
        "Ingest" => Some(Scope::Ingest),
        "Query" | "Incidents" => Some(Scope::Read),
        "Admin" => Some(Scope::Admin),
        _ => None,
    }
}

/// Wraps every service of the server (see the module documentation).
#[derive(Debug, Clone)]
pub struct PreAuthLayer {
    /// Checks keys (the same cache as the handlers).
    pub auth: Arc<Authenticator>,
}

impl<S> tower::Layer<S> for PreAuthLayer {
    type Service = PreAuth<S>;

    fn layer(&self, inner: S) -> PreAuth<S> {
        PreAuth {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`PreAuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct PreAuth<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S> Service<http::Request<Body>> for PreAuth<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<http::Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Some(scope) = scope_of(request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        // The ready service goes with this call; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.check_headers(request.headers(), scope).await {
                Ok(()) => inner.call(request).await,
                Err(status) => {
                    metrics::counter!("pulsyon_requests_refused_unread_total").increment(1);
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_needs_its_scope_and_others_need_none() {
        assert_eq!(
            scope_of("/pulsyon.v1.Ingest/StreamEvents"),
            Some(Scope::Ingest)
        );
        assert_eq!(scope_of("/pulsyon.v1.Query/QueryEvents"), Some(Scope::Read));
        assert_eq!(scope_of("/pulsyon.v1.Incidents/Watch"), Some(Scope::Read));
        assert_eq!(
            scope_of("/pulsyon.v1.Admin/ListApiKeys"),
            Some(Scope::Admin)
        );
        assert_eq!(
            scope_of("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
            Some(Scope::Ingest)
        );
        assert_eq!(scope_of("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            scope_of("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            None
        );
    }
}
