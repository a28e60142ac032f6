//! The OTLP/gRPC door: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//! Every OpenTelemetry exporter or collector becomes a producer: its server
//! spans are request events (`map`; `http` is the OTLP/HTTP door), through the same ingest pipeline
//! as `Ingest.StreamEvents` (validation, limits, dedup, dead letters,
//! outcomes). The answer comes only after the events are committed; spans
//! refused by validation are counted in `partial_success` (and kept as dead
//! letters), the others stored. A throttled Export is RESOURCE_EXHAUSTED with
//! the delay both in `grpc-status-details-bin` and in the
//! `google.rpc.retryinfo-bin` trailer that OpenTelemetry exporters read.
//! The key comes from `authorization: Bearer <key>` or `x-api-key`.

pub mod http;
pub mod map;

use std::{sync::Arc, time::Duration};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::TraceService,
};
use prost::Message;
use tonic::{Request, Response, Status, metadata::MetadataValue};

use crate::{api::status, auth::Authenticator};
use crate::{
    domain::{Principal, Scope},
    ingest::admit::{Ack, Pipeline, Refused},
};

/// Why spans left out of a batch are counted as filtered.
pub const NOT_A_SERVER_SPAN: &str = "not_a_server_span";

/// The OTLP trace service.
#[derive(Debug, Clone)]
pub struct OtlpService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// The ingest pipeline.
    pub pipeline: Pipeline,
}

/// A status with the retry delay also in the `google.rpc.retryinfo-bin`
/// trailer (what OpenTelemetry exporters read to back off).
pub fn with_retry_trailer(mut status: Status, delay: Duration) -> Status {
    let info = tonic_types::pb::RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    status.metadata_mut().insert_bin(
        "google.rpc.retryinfo-bin",
        MetadataValue::from_bytes(&info.encode_to_vec()),
    );
    status
}

/// A refusal as the OTLP door answers it.
pub fn refused(r: Refused) -> Status {
    let delay = match &r {
        Refused::Throttled { retry_after, .. } => Some(*retry_after),
        Refused::Overloaded(delay) | Refused::Unavailable(delay) => Some(*delay),
        _ => None,
    };
    let status = status::from_refused(r);
    match delay {
        Some(delay) => with_retry_trailer(status, delay),
        None => status,
    }
}

/// The Export answer of an ack: rejected spans, with the first reason.
pub fn response(ack: &Ack) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: ack
            .rejections
            .first()
            .map(|first| ExportTracePartialSuccess {
                rejected_spans: ack.rejections.len() as i64,
                error_message: format!(
                    "{} span(s) rejected and kept as dead letters; the first: {}",
                    ack.rejections.len(),
                    first.message
                ),
            }),
    }
}

impl OtlpService {
    /// Maps, admits and waits for one Export's spans.
    pub async fn export_as(
        &self,
        caller: &Principal,
        request: &ExportTraceServiceRequest,
    ) -> Result<Ack, Refusal> {
        let mapped = map::map(request, &self.pipeline.bounds);
        self.pipeline.throttles.filtered(
            caller.tenant_id,
            mapped.filtered as i64,
            NOT_A_SERVER_SPAN,
        );
        let pending = self
            .pipeline
            .admit(caller, mapped.batch)
            .await
            .map_err(Refusal::Refused)?;
        pending.wait().await.map_err(Refusal::Write)
    }
}

/// Why an Export got no ack.
#[derive(Debug)]
pub enum Refusal {
    /// The batch was refused whole.
    Refused(Refused),
    /// Its write failed.
    Write(crate::ingest::admit::AckError),
}

#[tonic::async_trait]
impl TraceService for OtlpService {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Ingest).await?;
        match self.export_as(&caller, request.get_ref()).await {
            Ok(ack) => Ok(Response::new(response(&ack))),
            Err(Refusal::Refused(r)) => Err(refused(r)),
            Err(Refusal::Write(e)) => Err(status::from_ack_error(e)),
        }
    }
}
