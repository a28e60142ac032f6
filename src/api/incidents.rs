//! `pulsyon.v1.Incidents`: incidents, their timeline, and the Watch stream.
//! Authenticated with the `read` scope; confined to the caller's tenant.
//!
//! Watch: an optional snapshot of the open incidents, an optional replay of
//! the outbox after `resume_after_seq`, then live updates from this process's
//! hub. A subscriber that falls more than the hub's buffer behind catches up
//! from the outbox, so it never skips an update; one that asks to resume from
//! a sequence the outbox no longer holds gets FAILED_PRECONDITION.

use std::{collections::VecDeque, pin::Pin, sync::Arc, time::Duration};

use prost::{Message, bytes::Bytes};

use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{
    auth::Authenticator,
    convert,
    status::{from_store, invalid},
    watch::{FrameStream, WatchFrame},
};
use crate::{
    domain::{
        Scope, TenantId,
        incident::{self as model, Alert, Incident, UpdateKind},
        rules::{Kind, Severity},
    },
    incidents::{
        explain,
        hub::{Hub, Receiver},
    },
    proto::v1::{self as pb, incidents_server::Incidents},
    store::{Store, incidents::IncidentFilter},
};

/// The Incidents service.
#[derive(Debug, Clone)]
pub struct IncidentsService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// Incidents and the outbox.
    pub store: Store,
    /// This process's fan-out of updates, each encoded once (api/watch.rs).
    pub hub: Arc<Hub<Bytes>>,
    /// Time between heartbeats of an idle Watch stream.
    pub heartbeat: Duration,
    /// Cancelled at shutdown: Watch streams end with UNAVAILABLE.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Signs and verifies page tokens.
    pub tokens: Arc<super::tokens::PageTokens>,
    /// Bounds each tenant's concurrent queries.
    pub gate: Arc<super::gate::QueryGate>,
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

fn status_to_pb(s: model::Status) -> i32 {
    (match s {
        model::Status::Open => pb::IncidentStatus::Open,
        model::Status::Acknowledged => pb::IncidentStatus::Acknowledged,
        model::Status::Resolved => pb::IncidentStatus::Resolved,
    }) as i32
}

fn statuses_from_pb(values: &[i32]) -> Result<Vec<model::Status>, Status> {
    values
        .iter()
        .map(|v| match pb::IncidentStatus::try_from(*v) {
            Ok(pb::IncidentStatus::Open) => Ok(model::Status::Open),
            Ok(pb::IncidentStatus::Acknowledged) => Ok(model::Status::Acknowledged),
            Ok(pb::IncidentStatus::Resolved) => Ok(model::Status::Resolved),
            _ => Err(invalid("statuses", format!("unknown status {v}"))),
        })
        .collect()
}

pub(super) fn kind_to_pb(k: Kind) -> i32 {
    (match k {
        Kind::ErrorRate => pb::AlertKind::ErrorRate,
        Kind::LatencyP95 => pb::AlertKind::LatencyP95,
        Kind::TrafficDrop => pb::AlertKind::TrafficDrop,
    }) as i32
}

fn update_kind_to_pb(k: UpdateKind) -> i32 {
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
        severity: Severity::parse(&i.severity)
            .map(severity_to_pb)
            .unwrap_or_default(),
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

fn incident_id(value: &str) -> Result<i64, Status> {
    value
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| invalid("incident_id", "not an incident id"))
}

/// Whether a Watch resumed after `resume` may have lost updates, given the
/// oldest and newest outbox sequences kept (0 when none) and the highest one
/// pruned (0 when none). Below the pruned sequence updates are gone; below
/// the oldest kept they were removed some other way; past the newest ever
/// written the sequence is not this outbox's (a subscriber waiting for it
/// would silently miss every update until the sequence caught up); with
/// nothing kept and nothing ever pruned no sequence is this outbox's.
fn resync_needed(resume: i64, oldest: i64, newest: i64, pruned_through: i64) -> bool {
    resume < pruned_through
        || resume > newest.max(pruned_through)
        || (oldest == 0 && pruned_through == 0)
        || (oldest > 0 && resume < oldest - 1)
}

fn resync(resume: i64) -> Status {
    Status::failed_precondition(format!(
        "resync required: the updates after {resume} are no longer kept; \
         list the open incidents and watch from now"
    ))
}

fn resync_future(resume: i64, newest: i64) -> Status {
    Status::failed_precondition(format!(
        "resync required: sequence {resume} is past the newest update ({newest}), \
         so it is not one this server sent; list the open incidents and watch from now"
    ))
}

fn heartbeat(newest: i64) -> pb::Heartbeat {
    pb::Heartbeat {
        current_seq: newest.max(0) as u64,
        time: Some(convert::timestamp(OffsetDateTime::now_utc())),
    }
}

/// Where a Watch stream is.
struct Watching {
    store: Store,
    hub: Arc<Hub<Bytes>>,
    tenant: TenantId,
    filter: IncidentFilter,
    rx: Receiver<Bytes>,
    /// Messages ready to send (snapshot, replayed updates).
    ready: VecDeque<pb::WatchResponse>,
    /// The newest sequence the stream has passed (sent or filtered out).
    last: i64,
    /// Catching up from the outbox after this sequence, when `Some`.
    replay_from: Option<i64>,
    heartbeat: tokio::time::Interval,
    shutdown: tokio_util::sync::CancellationToken,
    /// Resolves once the caller's key stops working (boxed: an idle
    /// subscriber's state stays small).
    revoked: Pin<Box<dyn Future<Output = Status> + Send>>,
}

impl Watching {
    fn wrap(payload: pb::watch_response::Payload) -> pb::WatchResponse {
        pb::WatchResponse {
            payload: Some(payload),
        }
    }

    fn keep(&self, u: &model::Update) -> bool {
        u.incident.tenant_id == self.tenant.0 && self.filter.matches(&u.incident)
    }

    /// The next frame: ready ones first, then a page of replay, then live.
    async fn next(&mut self) -> Option<Result<WatchFrame, Status>> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                if self.ready.is_empty() {
                    // Its slots are messages' size: an idle stream holds none.
                    self.ready = VecDeque::new();
                }
                return Some(Ok(WatchFrame::Message(Box::new(message))));
            }
            if let Some(after) = self.replay_from {
                // Boxed: the database futures are large, and inline they would
                // size every idle subscriber's state (docs/perf/watch.md).
                let (store, tenant) = (self.store.clone(), self.tenant);
                let read = Box::pin(async move {
                    // Updates after `after` may have been pruned meanwhile.
                    let pruned = store.outbox_pruned_through().await?;
                    if after < pruned {
                        return Ok(Err(resync(after)));
                    }
                    store.updates_after(Some(tenant), after, 500).await.map(Ok)
                });
                let page = match read.await {
                    Ok(Ok(page)) => page,
                    Ok(Err(status)) => return Some(Err(status)),
                    Err(err) => return Some(Err(from_store(err))),
                };
                match page.last().map(|u| u.seq) {
                    None => self.replay_from = None,
                    Some(last) => {
                        self.replay_from = Some(last);
                        self.last = self.last.max(last);
                        let kept: Vec<pb::WatchResponse> = page
                            .iter()
                            .filter(|u| self.keep(u))
                            .map(|u| {
                                Self::wrap(pb::watch_response::Payload::Update(update_to_pb(u)))
                            })
                            .collect();
                        self.ready.extend(kept);
                    }
                }
                continue;
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(p) => {
                        if p.update.seq <= self.last {
                            continue;
                        }
                        self.last = p.update.seq;
                        if self.keep(&p.update) {
                            // Encoded once by the hub for every subscriber.
                            return Some(Ok(WatchFrame::Encoded(p.rendered.clone())));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind the hub: catch up from the outbox, where nothing is skipped.
                        metrics::counter!("pulsyon_watch_catch_ups_total").increment(1);
                        self.replay_from = Some(self.last);
                    }
                    Err(RecvError::Closed) => {
                        return Some(Err(Status::unavailable("the server is shutting down; resume after the last sequence received")));
                    }
                },
                _ = self.shutdown.cancelled() => {
                    return Some(Err(Status::unavailable("the server is shutting down; resume after the last sequence received")));
                }
                status = &mut self.revoked => return Some(Err(status)),
                _ = self.heartbeat.tick() => {
                    return Some(Ok(WatchFrame::Message(Box::new(Self::wrap(pb::watch_response::Payload::Heartbeat(heartbeat(self.hub.newest())))))));
                }
            }
        }
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

    /// Opens a Watch stream: authorizes, checks the resume point, queues the
    /// snapshot, then streams frames (api/watch.rs serves them).
    pub async fn open_watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<FrameStream>, Status> {
        let (caller, key) = self.auth.authorize_stream(&request, Scope::Read).await?;
        // Subscribers of one connection share a group, so they wake and
        // write together (detect/hub.rs).
        let group = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let req = request.into_inner();
        let filter = incident_filter(&req.statuses, req.service, req.min_severity)?;
        // Subscribe first: nothing broadcast from here on can be missed.
        let (rx, newest) = self.hub.subscribe(&group);
        let mut ready = VecDeque::new();
        let resume = i64::try_from(req.resume_after_seq)
            .map_err(|_| invalid("resume_after_seq", "too large"))?;
        if resume > 0 {
            let (oldest, newest_kept) = self.store.update_seq_bounds().await.map_err(from_store)?;
            let pruned = self
                .store
                .outbox_pruned_through()
                .await
                .map_err(from_store)?;
            if resync_needed(resume, oldest, newest_kept, pruned) {
                let newest = newest_kept.max(pruned);
                return Err(if resume > newest {
                    resync_future(resume, newest)
                } else {
                    resync(resume)
                });
            }
        }
        if req.send_snapshot {
            for i in self
                .store
                .open_incidents(caller.tenant_id)
                .await
                .map_err(from_store)?
                .iter()
                .filter(|i| filter.matches(i))
            {
                ready.push_back(Watching::wrap(pb::watch_response::Payload::Snapshot(
                    incident_to_pb(i),
                )));
            }
            ready.push_back(Watching::wrap(pb::watch_response::Payload::SnapshotDone(
                heartbeat(newest),
            )));
        } else if resume == 0 {
            // A first heartbeat at once: the subscriber learns the sequence it
            // is live from (to resume after a disconnect), and the stream's
            // first write is not the first update's.
            ready.push_back(Watching::wrap(pb::watch_response::Payload::Heartbeat(
                heartbeat(newest),
            )));
        }
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + self.heartbeat, self.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watching = Watching {
            store: self.store.clone(),
            hub: self.hub.clone(),
            tenant: caller.tenant_id,
            filter,
            rx,
            ready,
            last: if resume > 0 { resume } else { newest },
            replay_from: (resume > 0).then_some(resume),
            heartbeat,
            shutdown: self.shutdown.clone(),
            revoked: {
                let auth = self.auth.clone();
                Box::pin(async move { auth.revoked(key).await })
            },
        };
        metrics::gauge!("pulsyon_watch_subscribers").set(self.hub.subscribers() as f64);
        let stream = futures_util::stream::unfold(Some(watching), |state| async move {
            let mut w = state?;
            let item = w.next().await?;
            // After an error the stream ends.
            let next = item.is_ok().then_some(w);
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
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let _running = self.gate.enter(&caller)?;
        let req = request.into_inner();
        let filter = incident_filter(&req.statuses, req.service, req.min_severity)?;
        let (from, to) = convert::time_range(
            req.range.as_ref(),
            7 * DAY,
            400 * DAY,
            OffsetDateTime::now_utc(),
        )?;
        let limit = convert::page_size(req.page_size, 50, 500)?;
        let cursor = convert::decode_page_token(self.tokens.open(&req.page_token)?)?;
        let mut rows = self
            .store
            .incidents(caller.tenant_id, &filter, from, to, cursor, limit + 1)
            .await
            .map_err(from_store)?;
        let next_page_token = self.tokens.sign(convert::next_page(&mut rows, limit, |i| {
            convert::encode_page_token(i.opened_at, i.incident_id)
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
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let _running = self.gate.enter(&caller)?;
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

    async fn acknowledge_incident(
        &self,
        request: Request<pb::AcknowledgeIncidentRequest>,
    ) -> Result<Response<pb::AcknowledgeIncidentResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let _running = self.gate.enter(&caller)?;
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
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let _running = self.gate.enter(&caller)?;
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
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let _running = self.gate.enter(&caller)?;
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

#[cfg(test)]
mod tests {
    use super::resync_needed;

    #[test]
    fn a_resume_below_what_was_pruned_or_kept_needs_a_resync() {
        // Nothing pruned; 10.. kept: resuming after 9 or later loses nothing.
        assert!(!resync_needed(9, 10, 50, 0));
        assert!(!resync_needed(42, 10, 50, 0));
        assert!(resync_needed(8, 10, 50, 0));
        // Past the newest sequence: not one this outbox sent.
        assert!(!resync_needed(50, 10, 50, 0));
        assert!(resync_needed(51, 10, 50, 0));
        assert!(resync_needed(21, 0, 0, 20));
        // 1..=20 pruned, 15 still kept (an open incident's): after 20 is whole.
        assert!(!resync_needed(20, 15, 30, 20));
        assert!(resync_needed(19, 15, 30, 20));
        // Everything pruned: only a resume at or past the horizon is whole.
        assert!(!resync_needed(20, 0, 0, 20));
        assert!(resync_needed(5, 0, 0, 20));
        // Nothing kept, nothing ever pruned: not this outbox's sequence.
        assert!(resync_needed(3, 0, 0, 0));
    }
}
