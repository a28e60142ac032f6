//! `pulsyon.v1.Query`: read models for grpcurl users and dashboards.
//! Authenticated with the `read` scope; every answer is confined to the caller's tenant.
//!
//! The read models land with the query issue (ListFailedEvents and
//! GetIngestStats with the ingest issue); until then each RPC answers
//! UNIMPLEMENTED after checking the caller.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{auth::Authenticator, status::not_yet};
use crate::{
    domain::Scope,
    proto::v1::{self as pb, query_server::Query},
};

/// The Query service.
#[derive(Debug, Clone)]
pub struct QueryService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
}

const QUERY_ISSUE: &str = "the query issue (rollups and the Query service)";
const INGEST_ISSUE: &str = "the ingest issue (dead letter and outcomes)";

#[tonic::async_trait]
impl Query for QueryService {
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.ListServices", QUERY_ISSUE))
    }

    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.QueryEvents", QUERY_ISSUE))
    }

    async fn get_service_health(
        &self,
        request: Request<pb::GetServiceHealthRequest>,
    ) -> Result<Response<pb::GetServiceHealthResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.GetServiceHealth", QUERY_ISSUE))
    }

    async fn get_metrics(
        &self,
        request: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.GetMetrics", QUERY_ISSUE))
    }

    async fn list_failed_events(
        &self,
        request: Request<pb::ListFailedEventsRequest>,
    ) -> Result<Response<pb::ListFailedEventsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.ListFailedEvents", INGEST_ISSUE))
    }

    async fn get_ingest_stats(
        &self,
        request: Request<pb::GetIngestStatsRequest>,
    ) -> Result<Response<pb::GetIngestStatsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.GetIngestStats", INGEST_ISSUE))
    }
}
