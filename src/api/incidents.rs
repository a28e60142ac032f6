//! `pulsyon.v1.Incidents`: incidents, their timeline, and the Watch stream.
//! Authenticated with the `read` scope; confined to the caller's tenant.
//!
//! Detection, grouping and Watch land with the incidents issue; until then
//! each RPC answers UNIMPLEMENTED after checking the caller.

use std::{pin::Pin, sync::Arc};

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::{auth::Authenticator, status::not_yet};
use crate::{
    domain::Scope,
    proto::v1::{self as pb, incidents_server::Incidents},
};

/// The Incidents service.
#[derive(Debug, Clone)]
pub struct IncidentsService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
}

const LANDS_WITH: &str = "the incidents issue (detection, grouping and Watch)";

#[tonic::async_trait]
impl Incidents for IncidentsService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Incidents.ListIncidents", LANDS_WITH))
    }

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::GetIncidentResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Incidents.GetIncident", LANDS_WITH))
    }

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Incidents.Watch", LANDS_WITH))
    }

    async fn acknowledge_incident(
        &self,
        request: Request<pb::AcknowledgeIncidentRequest>,
    ) -> Result<Response<pb::AcknowledgeIncidentResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Incidents.AcknowledgeIncident", LANDS_WITH))
    }

    async fn resolve_incident(
        &self,
        request: Request<pb::ResolveIncidentRequest>,
    ) -> Result<Response<pb::ResolveIncidentResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Incidents.ResolveIncident", LANDS_WITH))
    }

    async fn get_incident_summary(
        &self,
        request: Request<pb::GetIncidentSummaryRequest>,
    ) -> Result<Response<pb::GetIncidentSummaryResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Incidents.GetIncidentSummary", LANDS_WITH))
    }
}
