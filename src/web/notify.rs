//! The dashboard's notification pages: receivers (with their last success
//! and last error), routes and silences for admins; an incident's
//! deliveries for everyone who reads it; "silence this" and ending a
//! silence for responders. The same store functions as the gRPC doors,
//! with the session's tenant; secrets never leave the store (a receiver
//! shows its fingerprint).

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    Dashboard,
    api::{Answer, ApiError, Caller, incident_id, json_body, reply},
    json::time,
};
use crate::{
    domain::{
        Role,
        incident::IncidentStatus,
        notify::{Attempt, Delivery, Matchers, Receiver, Recurrence, Routes, Silence, SilenceKind},
    },
    store::{notify::DeliveryFilter, users::SessionInfo},
};

/// Deliveries an incident page shows at most.
const DELIVERIES_SHOWN: i64 = 200;

pub(super) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/api/v1/notifications", get(settings))
        .route("/api/v1/incidents/{id}/deliveries", get(deliveries))
        .route("/api/v1/incidents/{id}/silence", post(silence_this))
        .route("/api/v1/silences/{id}/expire", post(expire))
}

fn at_least(session: &SessionInfo, role: Role, why: &'static str) -> Result<(), ApiError> {
    match session.role >= role {
        true => Ok(()),
        false => Err(ApiError::Forbidden(why)),
    }
}

/// A receiver as the admin page shows it.
#[derive(Debug, Serialize)]
struct ReceiverJson<'a> {
    name: &'a str,
    kind: &'static str,
    url: &'a str,
    secret_fingerprint: String,
    created_at: String,
    last_success_at: Option<String>,
    last_error: &'a str,
}

fn receiver(r: &Receiver) -> ReceiverJson<'_> {
    ReceiverJson {
        name: &r.name,
        kind: r.kind.as_str(),
        url: &r.url,
        secret_fingerprint: r.secret.fingerprint(),
        created_at: time(r.created_at),
        last_success_at: r.last_success.map(time),
        last_error: &r.last_error,
    }
}

/// A silence as the pages show it.
#[derive(Debug, Serialize)]
struct SilenceJson<'a> {
    id: String,
    kind: &'static str,
    matchers: &'a Matchers,
    starts_at: String,
    ends_at: Option<String>,
    recurrence: &'a Option<Recurrence>,
    until_resolved_incident_id: Option<String>,
    created_by: &'a str,
    comment: &'a str,
    created_at: String,
    expired_at: Option<String>,
    /// Not ended, expired or resolved with its incident (it may still be
    /// outside its recurring hours).
    current: bool,
}

/// `s` as the pages show it; `open` says whether an incident is still
/// unresolved (a silence held until its incident resolves ends with it).
fn silence(s: &Silence, now: OffsetDateTime, open: impl Fn(i64) -> bool) -> SilenceJson<'_> {
    SilenceJson {
        id: s.silence_id.to_string(),
        kind: s.kind.as_str(),
        matchers: &s.matchers,
        starts_at: time(s.starts_at),
        ends_at: s.ends_at.map(time),
        recurrence: &s.recurrence,
        until_resolved_incident_id: s.until_resolved.map(|i| i.to_string()),
        created_by: &s.created_by,
        comment: &s.comment,
        created_at: time(s.created_at),
        expired_at: s.expired_at.map(time),
        current: s.expired_at.is_none()
            && s.ends_at.is_none_or(|e| e > now)
            && s.until_resolved.is_none_or(open),
    }
}

/// `GET /api/v1/notifications` (admins): receivers, routes, silences.
#[derive(Debug, Serialize)]
struct Settings<'a> {
    receivers: Vec<ReceiverJson<'a>>,
    routes: &'a Routes,
    silences: Vec<SilenceJson<'a>>,
}

async fn settings(State(d): State<Dashboard>, Caller { session, .. }: Caller) -> Answer {
    at_least(
        &session,
        Role::Admin,
        "only an admin sees receivers and routes",
    )?;
    let receivers = d.store.receivers(session.tenant_id).await?;
    let routes = d.store.routes(session.tenant_id).await?;
    let silences = d.store.silences(session.tenant_id, true).await?;
    let open: std::collections::HashSet<i64> = d
        .store
        .open_incidents(session.tenant_id)
        .await?
        .iter()
        .map(|i| i.incident_id)
        .collect();
    let now = OffsetDateTime::now_utc();
    Ok(reply(
        StatusCode::OK,
        Settings {
            receivers: receivers.iter().map(receiver).collect(),
            routes: &routes,
            silences: silences
                .iter()
                .map(|s| silence(s, now, |id| open.contains(&id)))
                .collect(),
        },
    ))
}

/// One attempt of a delivery.
#[derive(Debug, Serialize)]
struct AttemptJson<'a> {
    attempt: i32,
    at: String,
    ok: bool,
    status: i32,
    latency_ms: f64,
    error: &'a str,
}

/// A delivery as an incident's page shows it.
#[derive(Debug, Serialize)]
struct DeliveryJson<'a> {
    id: String,
    receiver: &'a str,
    update_seq: i64,
    change: &'static str,
    reason: &'a str,
    state: &'static str,
    attempts: i32,
    committed_at: String,
    delivered_at: Option<String>,
    last_error: &'a str,
    silence_id: Option<String>,
    digest_id: Option<String>,
    attempt_log: Vec<AttemptJson<'a>>,
}

fn delivery<'a>(d: &'a Delivery, attempts: &'a [Attempt]) -> DeliveryJson<'a> {
    DeliveryJson {
        id: d.delivery_id.to_string(),
        receiver: &d.receiver_name,
        update_seq: d.update_seq,
        change: d.change.as_str(),
        reason: &d.reason,
        state: d.state.as_str(),
        attempts: d.attempts,
        committed_at: time(d.committed_at),
        delivered_at: d.delivered_at.map(time),
        last_error: &d.last_error,
        silence_id: d.silence_id.map(|s| s.to_string()),
        digest_id: d.digest_id.map(|s| s.to_string()),
        attempt_log: attempts
            .iter()
            .map(|a| AttemptJson {
                attempt: a.attempt,
                at: time(a.at),
                ok: a.ok,
                status: a.status,
                latency_ms: a.latency_ms,
                error: &a.error,
            })
            .collect(),
    }
}

/// `GET /api/v1/incidents/{id}/deliveries`: who was told what, and how it went.
#[derive(Debug, Serialize)]
struct Deliveries<'a> {
    deliveries: Vec<DeliveryJson<'a>>,
}

async fn deliveries(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Path(id): Path<String>,
) -> Answer {
    let filter = DeliveryFilter {
        incident_id: Some(incident_id(&id)?),
        limit: DELIVERIES_SHOWN,
        ..Default::default()
    };
    let found = d.store.deliveries(session.tenant_id, &filter).await?;
    Ok(reply(
        StatusCode::OK,
        Deliveries {
            deliveries: found.iter().map(|(d, a)| delivery(d, a)).collect(),
        },
    ))
}

/// What "silence this" sends.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceThis {
    #[serde(default)]
    comment: String,
}

/// The answer of a silence made or ended.
#[derive(Debug, Serialize)]
struct SilenceChanged<'a> {
    silence: SilenceJson<'a>,
}

/// `POST /api/v1/incidents/{id}/silence` (responders): the incident's
/// notifications held until it resolves; it is still detected, listed and
/// streamed.
async fn silence_this(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    at_least(
        &session,
        Role::Responder,
        "a viewer may not silence notifications",
    )?;
    let id = incident_id(&id)?;
    let req: SilenceThis = json_body(&headers, &body)?;
    if req.comment.len() > 4_096 || req.comment.contains('\0') {
        return Err(ApiError::Invalid(
            "comment: at most 4096 bytes, no NUL".into(),
        ));
    }
    // The incident must be the caller's (row-level security says so).
    let (incident, _, _) = d.store.incident(session.tenant_id, id).await?;
    let open = incident.status != IncidentStatus::Resolved;
    let now = OffsetDateTime::now_utc();
    let spec = Silence {
        silence_id: 0,
        tenant_id: session.tenant_id,
        matchers: Matchers::default(),
        kind: SilenceKind::Silence,
        starts_at: now,
        ends_at: None,
        recurrence: None,
        until_resolved: Some(id),
        created_by: session.actor.clone(),
        comment: req.comment,
        created_at: now,
        expired_at: None,
    };
    let made = d.store.create_silence(session.tenant_id, &spec).await?;
    tracing::info!(tenant = %session.tenant_name, silence = made.silence_id, incident = id, by = %session.actor, "silence created from the dashboard");
    Ok(reply(
        StatusCode::CREATED,
        SilenceChanged {
            silence: silence(&made, now, |_| open),
        },
    ))
}

/// `POST /api/v1/silences/{id}/expire` (responders): the silence ends now;
/// what it held of incidents still open is sent.
async fn expire(
    State(d): State<Dashboard>,
    Caller { session, .. }: Caller,
    Path(id): Path<String>,
) -> Answer {
    at_least(&session, Role::Responder, "a viewer may not end a silence")?;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::Invalid("not a silence id".into()))?;
    let ended = d.store.expire_silence(session.tenant_id, id).await?;
    tracing::info!(tenant = %session.tenant_name, silence = id, by = %session.actor, "silence expired from the dashboard");
    Ok(reply(
        StatusCode::OK,
        SilenceChanged {
            silence: silence(&ended, OffsetDateTime::now_utc(), |_| true),
        },
    ))
}
