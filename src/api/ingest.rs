//! `pulsyon.v1.Ingest`: the SDKs' door. Authenticated with the `ingest` scope.
//!
//! Validation, admission and the batching writer land with the ingest issue;
//! until then both RPCs answer UNIMPLEMENTED after checking the caller.

use std::{pin::Pin, sync::Arc};

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::{auth::Authenticator, status::not_yet};
use crate::{
    domain::Scope,
    proto::v1::{self as pb, ingest_server::Ingest},
};

/// The Ingest service.
#[derive(Debug, Clone)]
pub struct IngestService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
}

const LANDS_WITH: &str = "the ingest issue (StreamEvents to durable daily partitions)";

#[tonic::async_trait]
impl Ingest for IngestService {
    type StreamEventsStream =
        Pin<Box<dyn Stream<Item = Result<pb::StreamEventsResponse, Status>> + Send>>;

    async fn stream_events(
        &self,
        request: Request<Streaming<pb::StreamEventsRequest>>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        self.auth.authorize(&request, Scope::Ingest).await?;
        Err(not_yet("Ingest.StreamEvents", LANDS_WITH))
    }

    async fn publish_events(
        &self,
        request: Request<pb::PublishEventsRequest>,
    ) -> Result<Response<pb::PublishEventsResponse>, Status> {
        self.auth.authorize(&request, Scope::Ingest).await?;
        Err(not_yet("Ingest.PublishEvents", LANDS_WITH))
    }
}
