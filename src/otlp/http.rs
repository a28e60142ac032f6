//! The OTLP/HTTP door: `POST /v1/traces` on the HTTP port, protobuf
//! (`application/x-protobuf`) or JSON (`application/json`) bodies, gzip
//! accepted. The same export as the gRPC door (`otlp::OtlpService`), so the
//! same mapping and pipeline; answers follow the OTLP/HTTP specification:
//! 200 with the response in the request's encoding (partial success
//! included), 400 for a body that cannot be read (not retryable), 401/403
//! for the key, 413 for a body too large, 415 for another content type, 429
//! (throttled) and 503 (overloaded, unavailable) with `Retry-After`. The key
//! is checked before the body is read.

use std::{convert::Infallible, future::Future, io::Read, pin::Pin, time::Duration};

use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Body, Bytes},
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::{OtlpService, Refusal, response};
use crate::{
    auth::AuthError,
    domain::{Principal, Scope},
    ingest::{
        WriteError,
        admit::{AckError, Refused},
    },
};

/// The path of trace exports.
pub const TRACES_PATH: &str = "/v1/traces";
/// Largest body read, compressed or not.
const MAX_BODY: usize = 16 << 20;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// An HTTP error as OTLP/HTTP answers it: a status, a message, and the
/// retry delay for the retryable ones.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry(status: StatusCode, message: impl Into<String>, delay: Duration) -> Failure {
        Failure {
            retry_after: Some(delay),
            ..Failure::new(status, message)
        }
    }
}

/// The one mapping of the HTTP door's errors to statuses.
fn from_auth(err: AuthError) -> Failure {
    match err {
        AuthError::MissingScope(_) => Failure::new(StatusCode::FORBIDDEN, err.to_string()),
        AuthError::Store(_) => Failure::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; retry later",
            Duration::from_secs(1),
        ),
        _ => Failure::new(StatusCode::UNAUTHORIZED, err.to_string()),
    }
}

fn from_refusal(r: Refusal) -> Failure {
    match r {
        Refusal::Refused(Refused::Invalid { field, message }) => {
            Failure::new(StatusCode::BAD_REQUEST, format!("{field}: {message}"))
        }
        Refusal::Refused(Refused::Throttled {
            retry_after,
            message,
            ..
        }) => Failure::retry(StatusCode::TOO_MANY_REQUESTS, message, retry_after),
        Refusal::Refused(Refused::Overloaded(delay)) => Failure::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is overloaded",
            delay,
        ),
        Refusal::Refused(Refused::Unavailable(delay)) => Failure::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "the ingest buffer is unavailable",
            delay,
        ),
        Refusal::Refused(Refused::ShuttingDown) => Failure::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
            Duration::from_secs(1),
        ),
        Refusal::Refused(Refused::Store(err)) => {
            tracing::warn!(error = %err, "otlp/http: a limit could not be read");
            Failure::retry(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; retry later",
                Duration::from_secs(1),
            )
        }
        Refusal::Write(AckError::Write(WriteError::Internal)) => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the batch could not be stored",
        ),
        Refusal::Write(_) => Failure::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            "the spans could not be stored now; retry later",
            Duration::from_secs(1),
        ),
    }
}

/// The OTLP/HTTP trace door: a `tower::Service` the HTTP port mounts at
/// [`TRACES_PATH`].
#[derive(Clone)]
pub struct OtlpHttp {
    /// The export both OTLP doors share.
    pub service: OtlpService,
}

fn respond(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response<Full<Bytes>> {
    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// A failure's body: a `google.rpc.Status` in the request's encoding.
fn fail(f: Failure, encoding: Encoding) -> Response<Full<Bytes>> {
    let body = match encoding {
        Encoding::Protobuf => tonic_types::pb::Status {
            code: grpc_code(f.status),
            message: f.message.clone(),
            details: Vec::new(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": grpc_code(f.status), "message": f.message})
            .to_string()
            .into_bytes(),
    };
    let mut response = respond(f.status, encoding, body);
    if let Some(delay) = f.retry_after
        && let Ok(value) = (delay.as_secs_f64().ceil() as u64)
            .max(1)
            .to_string()
            .parse()
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// The gRPC code that goes with an HTTP status in a `google.rpc.Status`.
fn grpc_code(status: StatusCode) -> i32 {
    match status {
        StatusCode::BAD_REQUEST => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::PAYLOAD_TOO_LARGE => 11,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::METHOD_NOT_ALLOWED => 12,
        _ => 13,
    }
}

impl OtlpHttp {
    async fn caller(&self, headers: &hyper::HeaderMap) -> Result<Principal, Failure> {
        let value = |name| headers.get(name).map(|v| v.to_str());
        self.service
            .auth
            .authenticate(value("authorization"), value("x-api-key"), Scope::Ingest)
            .await
            .map(|(principal, _)| principal)
            .map_err(from_auth)
    }

    async fn export<B>(
        &self,
        request: Request<B>,
        encoding: Encoding,
    ) -> Result<Response<Full<Bytes>>, Failure>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // The key before the body: nothing is read for a caller without one
        // (the head apart: the body is not shared between threads).
        let (head, body) = request.into_parts();
        let caller = self.caller(&head.headers).await?;
        let gzip = head
            .headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|_| {
                Failure::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is over {MAX_BODY} bytes"),
                )
            })?
            .to_bytes();
        let body = if gzip {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Failure::new(StatusCode::BAD_REQUEST, format!("gzip: {e}")))?;
            if out.len() > MAX_BODY {
                return Err(Failure::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the decompressed body is over {MAX_BODY} bytes"),
                ));
            }
            Bytes::from(out)
        } else {
            body
        };
        let export: ExportTraceServiceRequest = match encoding {
            Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("not an ExportTraceServiceRequest: {e}"),
                )
            })?,
            Encoding::Json => serde_json::from_slice(&body).map_err(|e| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("not an ExportTraceServiceRequest in OTLP JSON: {e}"),
                )
            })?,
        };
        let ack = self
            .service
            .export_as(&caller, &export)
            .await
            .map_err(from_refusal)?;
        let answer = response(&ack);
        let body = match encoding {
            Encoding::Protobuf => answer.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(&answer).unwrap_or_default(),
        };
        Ok(respond(StatusCode::OK, encoding, body))
    }
}

impl<B> tower::Service<Request<B>> for OtlpHttp
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let door = self.clone();
        Box::pin(async move { Ok(door.handle(request).await) })
    }
}

impl OtlpHttp {
    async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        {
            let content_type = request
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let encoding = match content_type.as_str() {
                "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
                "application/json" => Encoding::Json,
                _ => {
                    return fail(
                        Failure::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "send application/x-protobuf or application/json",
                        ),
                        Encoding::Json,
                    );
                }
            };
            if request.method() != Method::POST {
                return fail(
                    Failure::new(StatusCode::METHOD_NOT_ALLOWED, "only POST"),
                    encoding,
                );
            }
            match self.export(request, encoding).await {
                Ok(response) => response,
                Err(failure) => fail(failure, encoding),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_otlp_http_statuses_with_retry_after() {
        let throttled = from_refusal(Refusal::Refused(Refused::Throttled {
            cause: crate::ingest::limits::ThrottleCause::EventRate,
            retry_after: Duration::from_millis(1_500),
            message: "over".into(),
        }));
        assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
        let response = fail(throttled, Encoding::Json);
        assert_eq!(response.headers()["retry-after"], "2");
        let bad = from_refusal(Refusal::Refused(Refused::Invalid {
            field: "batch.events",
            message: "too many".into(),
        }));
        assert_eq!(
            (bad.status, bad.retry_after),
            (StatusCode::BAD_REQUEST, None)
        );
        assert_eq!(
            from_auth(AuthError::UnknownKey).status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            from_auth(AuthError::MissingScope(Scope::Ingest)).status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            from_refusal(Refusal::Refused(Refused::Overloaded(Duration::from_secs(
                2
            ))))
            .status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
