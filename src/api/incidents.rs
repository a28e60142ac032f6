//! `pulsyon.v1.Incidents`: incidents, their timeline, and the Watch stream.
//! Authenticated with the `read` scope; confined to the caller's tenant.
//!
//! Watch: an optional snapshot of the open incidents, an optional replay of
//! the outbox after `resume_after_seq`, then live updates from this process's
//! hub. A subscriber that falls more than the hub's buffer behind catches up
//! from the outbox, so it never skips an update; one that asks to resume from
//! a sequence the outbox no longer holds gets FAILED_PRECONDITION.

use std::{pin::Pin, sync::Arc, time::Duration};

use prost::{Message, bytes::Bytes};

use time::OffsetDateTime;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{
    auth::Authenticator,
    convert,
    status::{self, from_store, invalid},
    watch::{FrameStream, WatchFrame},
};
use crate::{
    domain::{
        Scope, TenantId,
        incident::{self as model, Alert, Incident, IncidentFilter, UpdateKind},
        rules::{Kind, Severity},
    },
    incidents::{
        explain,
        feed::{Feed, FeedRequest, Item},
        hub::{Hub, Rendered},
    },
    proto::v1::{self as pb, incidents_server::Incidents},
    store::Store,
};

/// The Incidents service.
#[derive(Debug, Clone)]
pub struct IncidentsService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// Incidents and the outbox.
    pub store: Store,
    /// This process's fan-out of updates, each encoded once (api/watch.rs).
    pub hub: Arc<Hub<Rendered>>,
    /// Time between heartbeats of an idle Watch stream.
    pub heartbeat: Duration,
    /// Cancelled at shutdown: Watch streams end with UNAVAILABLE.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Signs and verifies page tokens.
    pub tokens: Arc<super::tokens::PageTokens>,
    /// Bounds each tenant's concurrent queries.
    pub gate: Arc<crate::query::gate::QueryGate>,
    /// Notification settings (a retried delivery's deadline).
    pub notify: Arc<crate::notify::NotifyConfig>,
}

const DAY: Duration = Duration::from_secs(86_400);

pub(super) fn severity_to_pb(s: Severity) -> i32 {
    (match s {
        Severity::Info => pb::Severity::Info,
        Severity::Warning => pb::Severity::Warning,
        Severity::Critical => pb::Severity::Critical,
    }) as i32
}

pub(super) fn severity_from_pb(field: &str, value: i32) -> Result<Option<Severity>, Status> {
    match pb::Severity::try_from(value) {
        Ok(pb::Severity::Unspecified) => Ok(None),
        Ok(pb::Severity::Info) => Ok(Some(Severity::Info)),
        Ok(pb::Severity::Warning) => Ok(Some(Severity::Warning)),
        Ok(pb::Severity::Critical) => Ok(Some(Severity::Critical)),
        Err(_) => Err(invalid(field, format!("unknown severity {value}"))),
    }
}

fn status_to_pb(s: model::IncidentStatus) -> i32 {
    (match s {
        model::IncidentStatus::Open => pb::IncidentStatus::Open,
        model::IncidentStatus::Acknowledged => pb::IncidentStatus::Acknowledged,
        model::IncidentStatus::Resolved => pb::IncidentStatus::Resolved,
    }) as i32
}

fn statuses_from_pb(values: &[i32]) -> Result<Vec<model::IncidentStatus>, Status> {
    values
        .iter()
        .map(|v| match pb::IncidentStatus::try_from(*v) {
            Ok(pb::IncidentStatus::Open) => Ok(model::IncidentStatus::Open),
            Ok(pb::IncidentStatus::Acknowledged) => Ok(model::IncidentStatus::Acknowledged),
            Ok(pb::IncidentStatus::Resolved) => Ok(model::IncidentStatus::Resolved),
            _ => Err(invalid("statuses", format!("unknown status {v}"))),
        })
        .collect()
}

pub(super) fn kind_to_pb(k: Kind) -> i32 {
    (match k {
        Kind::ErrorRate => pb::AlertKind::ErrorRate,
        Kind::LatencyP95 => pb::AlertKind::LatencyP95,
        Kind::TrafficDrop => pb::AlertKind::TrafficDrop,
        Kind::ReceiverFailing => pb::AlertKind::ReceiverFailing,
        Kind::AvailabilityBurn => pb::AlertKind::AvailabilityBurn,
        Kind::LatencyBurn => pb::AlertKind::LatencyBurn,
    }) as i32
}

pub(super) fn update_kind_to_pb(k: UpdateKind) -> i32 {
    (match k {
        UpdateKind::Opened => pb::UpdateKind::Opened,
        UpdateKind::AlertAdded => pb::UpdateKind::AlertAdded,
        UpdateKind::Escalated => pb::UpdateKind::Escalated,
        UpdateKind::Acknowledged => pb::UpdateKind::Acknowledged,
        UpdateKind::Resolved => pb::UpdateKind::Resolved,
        UpdateKind::Reopened => pb::UpdateKind::Reopened,
    }) as i32
}

/// An incident as the protobuf message.
pub fn incident_to_pb(i: &Incident) -> pb::Incident {
    pb::Incident {
        incident_id: i.incident_id.to_string(),
        service: i.service.clone(),
        title: i.title.clone(),
        severity: severity_to_pb(i.severity),
        status: status_to_pb(i.status),
        opened_at: Some(convert::timestamp(i.opened_at)),
        acknowledged_at: i.acknowledged_at.map(convert::timestamp),
        acknowledged_by: i.acknowledged_by.clone().unwrap_or_default(),
        resolved_at: i.resolved_at.map(convert::timestamp),
        resolved_by: i.resolved_by.clone().unwrap_or_default(),
        reopen_count: i.reopen_count.max(0) as u32,
        alert_count: i.alert_count.max(0) as u32,
        last_seq: i.last_seq.max(0) as u64,
    }
}

/// An alert as the protobuf message, with its explanation.
pub fn alert_to_pb(a: &Alert) -> pb::Alert {
    pb::Alert {
        alert_id: a.alert_id.to_string(),
        kind: kind_to_pb(a.kind),
        service: a.service.clone(),
        endpoint: a.endpoint.clone(),
        severity: severity_to_pb(a.severity),
        observed: a.observed,
        baseline: a.baseline,
        threshold: a.threshold,
        window: Some(prost_types::Duration {
            seconds: i64::from(a.window_secs),
            nanos: 0,
        }),
        fired_at: Some(convert::timestamp(a.fired_at)),
        cleared_at: a.cleared_at.map(convert::timestamp),
        explanation: explain::alert(a),
        no_baseline: a.no_baseline,
    }
}

/// An update as the protobuf message.
pub fn update_to_pb(u: &model::Update) -> pb::IncidentUpdate {
    pb::IncidentUpdate {
        seq: u.seq.max(0) as u64,
        kind: update_kind_to_pb(u.kind),
        time: Some(convert::timestamp(u.at)),
        incident: Some(incident_to_pb(&u.incident)),
        alert: u.alert.as_ref().map(alert_to_pb),
        actor: u.actor.clone(),
        note: u.note.clone(),
    }
}

/// An update as every Watch subscriber receives it: the encoded
/// `WatchResponse`, made once by the hub (api/watch.rs).
pub fn render_update(u: &model::Update) -> Bytes {
    pb::WatchResponse {
        payload: Some(pb::watch_response::Payload::Update(update_to_pb(u))),
    }
    .encode_to_vec()
    .into()
}

/// The filter of ListIncidents and Watch; errors name the field.
fn incident_filter(
    statuses: &[i32],
    service: String,
    min_severity: i32,
) -> Result<IncidentFilter, Status> {
    super::status::checked_text("service", &service, 128)?;
    Ok(IncidentFilter {
        statuses: statuses_from_pb(statuses)?,
        service: (!service.is_empty()).then_some(service),
        min_severity: severity_from_pb("min_severity", min_severity)?,
    })
}

pub(super) fn incident_id(value: &str) -> Result<i64, Status> {
    super::request::positive_id("incident_id", "incident", value)
}

fn heartbeat(newest: i64) -> pb::Heartbeat {
    pb::Heartbeat {
        current_seq: newest.max(0) as u64,
        time: Some(convert::timestamp(OffsetDateTime::now_utc())),
    }
}

fn wrap(payload: pb::watch_response::Payload) -> WatchFrame {
    WatchFrame::Message(Box::new(pb::WatchResponse {
        payload: Some(payload),
    }))
}

/// A feed item as Watch sends it: live updates as the hub encoded them.
fn frame(item: Item<Rendered>) -> WatchFrame {
    use pb::watch_response::Payload;
    match item {
        Item::Snapshot(i) => wrap(Payload::Snapshot(incident_to_pb(&i))),
        Item::SnapshotDone { newest } => wrap(Payload::SnapshotDone(heartbeat(newest))),
        Item::Update(u) => wrap(Payload::Update(update_to_pb(&u))),
        Item::Live(p) => WatchFrame::Encoded(p.rendered.watch.clone()),
        Item::Heartbeat { newest } => wrap(Payload::Heartbeat(heartbeat(newest))),
    }
}

impl IncidentsService {
    /// Acknowledges (`resolve` false) or resolves an incident for a person.
    async fn by_hand(
        &self,
        tenant: TenantId,
        incident: &str,
        resolve: bool,
        by: &str,
        note: &str,
    ) -> Result<pb::Incident, Status> {
        let id = incident_id(incident)?;
        if by.trim().is_empty() {
            return Err(invalid("by", "required: who does it"));
        }
        super::status::checked_text("by", by, 128)?;
        super::status::checked_text("note", note, 4_096)?;
        let update = self
            .store
            .close_by_hand(tenant, id, resolve, by, note, OffsetDateTime::now_utc())
            .await
            .map_err(from_store)?;
        Ok(incident_to_pb(&update.incident))
    }

    /// Opens a Watch stream: authorizes, then serves the caller's incident
    /// feed as frames (api/watch.rs sends them).
    pub async fn open_watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<FrameStream>, Status> {
        let (caller, key) = self.auth.authorize_stream(&request, Scope::Read).await?;
        // Subscribers of one connection share a group, so they wake and
        // write together (incidents/hub.rs).
        let group = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let req = request.into_inner();
        let filter = incident_filter(&req.statuses, req.service, req.min_severity)?;
        let resume_after = i64::try_from(req.resume_after_seq)
            .map_err(|_| invalid("resume_after_seq", "too large"))?;
        let feed_request = FeedRequest {
            tenant: caller.tenant_id,
            filter,
            send_snapshot: req.send_snapshot,
            resume_after,
            heartbeat: self.heartbeat,
        };
        let auth = self.auth.clone();
        let feed = Feed::open(
            self.store.clone(),
            self.hub.clone(),
            &group,
            feed_request,
            self.shutdown.clone(),
            Box::pin(async move { auth.revoked_status(key).await }),
        )
        .await
        .map_err(status::from_feed)?;
        metrics::gauge!("pulsyon_watch_subscribers").set(self.hub.subscribers() as f64);
        let stream = futures_util::stream::unfold(Some(feed), |state| async move {
            let mut feed = state?;
            let item = feed.next().await?.map(frame).map_err(status::from_feed);
            // After an error the stream ends.
            let next = item.is_ok().then_some(feed);
            Some((item, next))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[tonic::async_trait]
impl Incidents for IncidentsService {
    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

    async fn list_incidents(
        &self,
        request: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let filter = incident_filter(&req.statuses, req.service, req.min_severity)?;
        let (from, to) = super::request::time_range(
            req.range.as_ref(),
            7 * DAY,
            400 * DAY,
            OffsetDateTime::now_utc(),
        )?;
        let limit = super::request::page_size(req.page_size, 50, 500)?;
        let cursor = super::request::decode_page_token(self.tokens.open(&req.page_token)?)?;
        let mut rows = self
            .store
            .incidents(caller.tenant_id, &filter, from, to, cursor, limit + 1)
            .await
            .map_err(from_store)?;
        let next_page_token = self
            .tokens
            .sign(super::request::next_page(&mut rows, limit, |i| {
                super::request::encode_page_token(i.opened_at, i.incident_id)
            }));
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: rows.iter().map(incident_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_incident(
        &self,
        request: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::GetIncidentResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let id = incident_id(&request.get_ref().incident_id)?;
        let (incident, alerts, timeline) = self
            .store
            .incident(caller.tenant_id, id)
            .await
            .map_err(from_store)?;
        Ok(Response::new(pb::GetIncidentResponse {
            incident: Some(incident_to_pb(&incident)),
            alerts: alerts.iter().map(alert_to_pb).collect(),
            timeline: timeline.iter().map(update_to_pb).collect(),
        }))
    }

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Served by api/watch.rs, which sends the hub's encoded updates as
        // they are; this is the same stream for any other caller.
        let frames = self.open_watch(request).await?;
        Ok(frames.map(|frames| {
            Box::pin(frames.map(|frame| frame.and_then(WatchFrame::into_message)))
                as Self::WatchStream
        }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        super::receivers::list_deliveries(&self.store, &caller, request.into_inner()).await
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        super::receivers::retry_delivery(&self.store, &self.notify, &caller, request.into_inner())
            .await
    }

    async fn acknowledge_incident(
        &self,
        request: Request<pb::AcknowledgeIncidentRequest>,
    ) -> Result<Response<pb::AcknowledgeIncidentResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let incident = self
            .by_hand(
                caller.tenant_id,
                &req.incident_id,
                false,
                &req.by,
                &req.note,
            )
            .await?;
        Ok(Response::new(pb::AcknowledgeIncidentResponse {
            incident: Some(incident),
        }))
    }

    async fn resolve_incident(
        &self,
        request: Request<pb::ResolveIncidentRequest>,
    ) -> Result<Response<pb::ResolveIncidentResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let incident = self
            .by_hand(caller.tenant_id, &req.incident_id, true, &req.by, &req.note)
            .await?;
        Ok(Response::new(pb::ResolveIncidentResponse {
            incident: Some(incident),
        }))
    }

    async fn get_incident_summary(
        &self,
        request: Request<pb::GetIncidentSummaryRequest>,
    ) -> Result<Response<pb::GetIncidentSummaryResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let window = match request.into_inner().window {
            None => 7 * DAY,
            Some(d) if d.seconds == 0 && d.nanos == 0 => 7 * DAY,
            Some(d) => Duration::try_from(d)
                .ok()
                .filter(|w| *w >= Duration::from_secs(60) && *w <= 90 * DAY)
                .ok_or_else(|| invalid("window", "must be between 1 minute and 90 days"))?,
        };
        let now = OffsetDateTime::now_utc();
        let s = self
            .store
            .incident_summary(caller.tenant_id, now - window, now)
            .await
            .map_err(from_store)?;
        let (top, top_count) = s.top_service.unwrap_or_default();
        Ok(Response::new(pb::GetIncidentSummaryResponse {
            open: s.open.max(0) as u32,
            critical: s.critical.max(0) as u32,
            opened_in_window: s.opened.max(0) as u32,
            mttr: Some(prost_types::Duration {
                seconds: s.mttr_secs as i64,
                nanos: ((s.mttr_secs.fract()) * 1e9) as i32,
            }),
            most_incident_prone_service: top,
            most_incident_prone_count: top_count.max(0) as u32,
        }))
    }
}
