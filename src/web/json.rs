//! The dashboard's JSON answers, typed: each shape a struct serde writes
//! (times in RFC 3339, series points in Unix seconds for the charts).

use std::{collections::BTreeMap, fmt::Write, time::Duration};

use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    domain::{
        FailedEvent,
        incident::{Alert, Incident, Update},
    },
    query::{self, EndpointHealth, Health, Outcomes},
    rollup::verdict::Verdict,
    stats::cell::Agg,
    store::events::StoredEvent,
};

/// A time in RFC 3339.
pub fn time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Unknown => "unknown",
        Verdict::Healthy => "healthy",
        Verdict::Degraded => "degraded",
        Verdict::Down => "down",
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

fn latency(p: query::Percentiles) -> Latency {
    Latency {
        p50_ms: p.p50_ms,
        p95_ms: p.p95_ms,
        p99_ms: p.p99_ms,
    }
}

/// A service's health over a window.
#[derive(Debug, Serialize)]
pub struct ServiceHealth<'a> {
    service: &'a str,
    status: &'static str,
    reason: &'a str,
    requests: u64,
    requests_per_s: f64,
    errors: u64,
    error_rate: f64,
    latency: Latency,
    uptime_percent: f64,
    /// The overview's buckets: [t, requests, errors].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<(i64, u64, u64)>>,
}

/// A service's health over a window of `window`.
pub fn health(h: &Health, window: Duration) -> ServiceHealth<'_> {
    ServiceHealth {
        service: &h.service,
        status: verdict(h.status),
        reason: &h.reason,
        requests: h.requests,
        requests_per_s: h.requests as f64 / window.as_secs_f64().max(1.0),
        errors: h.errors,
        error_rate: h.error_rate(),
        latency: latency(h.latency),
        uptime_percent: h.uptime_percent,
        buckets: None,
    }
}

/// One point of a series: `t` in Unix seconds.
#[derive(Debug, Serialize)]
pub struct Point {
    t: i64,
    count: u64,
    errors: u64,
    error_rate: f64,
    latency: Latency,
}

/// One point of a series at `t`.
pub fn point(t: OffsetDateTime, a: &Agg) -> Point {
    Point {
        t: t.unix_timestamp(),
        count: a.count,
        errors: a.status_5xx,
        error_rate: query::error_rate(a.status_5xx, a.count),
        latency: latency(query::cell_percentiles(a)),
    }
}

/// An endpoint's numbers.
#[derive(Debug, Serialize)]
pub struct Endpoint<'a> {
    endpoint: &'a str,
    requests: u64,
    errors: u64,
    error_rate: f64,
    latency: Latency,
}

/// An endpoint's numbers over the window.
pub fn endpoint(e: &EndpointHealth) -> Endpoint<'_> {
    Endpoint {
        endpoint: &e.endpoint,
        requests: e.requests,
        errors: e.errors,
        error_rate: query::error_rate(e.errors, e.requests),
        latency: latency(e.latency),
    }
}

/// A stored event (as the recent 5xx list shows it).
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    event_id: String,
    time: String,
    endpoint: &'a str,
    method: &'a str,
    status_code: i16,
    latency_ms: f64,
    trace_id: &'a str,
    request_id: &'a str,
    host: &'a str,
    release: &'a str,
}

/// A stored event.
pub fn event(e: &StoredEvent) -> Event<'_> {
    let ev = &e.event;
    Event {
        event_id: ev.event_id.to_string(),
        time: time(ev.time),
        endpoint: &ev.endpoint,
        method: &ev.method,
        status_code: ev.status_code,
        latency_ms: ev.latency_ms,
        trace_id: &ev.trace_id,
        request_id: &ev.request_id,
        host: &ev.host,
        release: &ev.release,
    }
}

/// An incident, with the explanation of its latest alert when known.
#[derive(Debug, Serialize)]
pub struct IncidentJson<'a> {
    id: String,
    service: &'a str,
    title: &'a str,
    severity: &'static str,
    status: &'static str,
    opened_at: String,
    acknowledged_at: Option<String>,
    acknowledged_by: &'a Option<String>,
    resolved_at: Option<String>,
    resolved_by: &'a Option<String>,
    reopen_count: i32,
    alert_count: i64,
    last_seq: i64,
    explanation: Option<String>,
}

/// An incident as the dashboard shows it.
pub fn incident(i: &Incident, explanation: Option<String>) -> IncidentJson<'_> {
    IncidentJson {
        id: i.incident_id.to_string(),
        service: &i.service,
        title: &i.title,
        severity: i.severity.as_str(),
        status: i.status.as_str(),
        opened_at: time(i.opened_at),
        acknowledged_at: i.acknowledged_at.map(time),
        acknowledged_by: &i.acknowledged_by,
        resolved_at: i.resolved_at.map(time),
        resolved_by: &i.resolved_by,
        reopen_count: i.reopen_count,
        alert_count: i.alert_count,
        last_seq: i.last_seq,
        explanation,
    }
}

/// An alert with its explanation: observed vs baseline vs threshold.
#[derive(Debug, Serialize)]
pub struct AlertJson<'a> {
    id: String,
    kind: &'static str,
    service: &'a str,
    endpoint: &'a str,
    severity: &'static str,
    observed: f64,
    baseline: Option<f64>,
    threshold: f64,
    window_secs: i32,
    fired_at: String,
    cleared_at: Option<String>,
    explanation: String,
}

/// An alert as the dashboard shows it.
pub fn alert(a: &Alert) -> AlertJson<'_> {
    AlertJson {
        id: a.alert_id.to_string(),
        kind: a.kind.as_str(),
        service: &a.service,
        endpoint: &a.endpoint,
        severity: a.severity.as_str(),
        observed: a.observed,
        baseline: (!a.no_baseline).then_some(a.baseline),
        threshold: a.threshold,
        window_secs: a.window_secs,
        fired_at: time(a.fired_at),
        cleared_at: a.cleared_at.map(time),
        explanation: crate::incidents::explain::alert(a),
    }
}

/// An incident update (timeline entry and live event).
#[derive(Debug, Serialize)]
pub struct UpdateJson<'a> {
    seq: i64,
    kind: &'static str,
    at: String,
    actor: &'a str,
    note: &'a str,
    incident: IncidentJson<'a>,
    alert: Option<AlertJson<'a>>,
}

/// An incident update as the timeline and the live feed show it.
pub fn update(u: &Update) -> UpdateJson<'_> {
    let explanation = u.alert.as_ref().map(crate::incidents::explain::alert);
    UpdateJson {
        seq: u.seq,
        kind: u.kind.as_str(),
        at: time(u.at),
        actor: &u.actor,
        note: &u.note,
        incident: incident(&u.incident, explanation),
        alert: u.alert.as_ref().map(alert),
    }
}

/// Outcome counts of a minute (or, without one, a total).
#[derive(Debug, Serialize)]
pub struct OutcomesJson {
    t: Option<i64>,
    received: u64,
    stored: u64,
    duplicates: u64,
    rejected: u64,
    rejected_by_reason: BTreeMap<&'static str, u64>,
    throttled: u64,
    throttled_by_cause: BTreeMap<&'static str, u64>,
    filtered: u64,
}

/// The outcome counts of `minute`, or a total.
pub fn outcomes(minute: Option<OffsetDateTime>, m: &Outcomes) -> OutcomesJson {
    OutcomesJson {
        t: minute.map(|t| t.unix_timestamp()),
        received: m.received,
        stored: m.stored,
        duplicates: m.duplicates,
        rejected: m.rejected,
        rejected_by_reason: m
            .rejected_by_reason
            .iter()
            .map(|(r, n)| (r.map(|r| r.as_str()).unwrap_or("unknown"), *n))
            .collect(),
        throttled: m.throttled,
        throttled_by_cause: m
            .throttled_by_cause
            .iter()
            .map(|(c, n)| (c.map(|c| c.as_str()).unwrap_or("unknown"), *n))
            .collect(),
        filtered: m.filtered,
    }
}

/// A dead letter; its payload only when asked for.
#[derive(Debug, Serialize)]
pub struct Failed<'a> {
    id: String,
    received_at: String,
    reason: &'static str,
    message: &'a str,
    producer_id: &'a str,
    batch_seq: i64,
    index: u32,
    size_bytes: i64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    payload: Option<Payload>,
}

/// A dead letter's payload as hex and as text.
#[derive(Debug, Serialize)]
pub struct Payload {
    payload_hex: String,
    payload_text: String,
    truncated: bool,
}

/// A dead letter; its payload (hex) only when asked for.
pub fn failed(f: &FailedEvent, payload: bool) -> Failed<'_> {
    let payload = payload.then(|| {
        let mut hex = String::with_capacity(f.payload.len() * 2);
        for b in &f.payload {
            let _ = write!(hex, "{b:02x}");
        }
        Payload {
            payload_hex: hex,
            payload_text: String::from_utf8_lossy(&f.payload).into_owned(),
            truncated: (f.payload.len() as i64) < f.size,
        }
    });
    Failed {
        id: f.failed_id.to_string(),
        received_at: time(f.received_at),
        reason: f.reason.map(|r| r.as_str()).unwrap_or("unknown"),
        message: &f.message,
        producer_id: &f.producer_id,
        batch_seq: f.batch_seq,
        index: f.index,
        size_bytes: f.size,
        payload,
    }
}

// The pages' answers, made of the shapes above.
/// A refusal: `{"error": message}`.
#[derive(Debug, Serialize)]
pub struct Refusal {
    pub error: String,
}

/// Who the session is; only `logged_in: false` without one.
#[derive(Debug, Serialize)]
pub struct Who<'a> {
    pub logged_in: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub session: Option<Described<'a>>,
}

/// A session, described.
#[derive(Debug, Serialize)]
pub struct Described<'a> {
    pub tenant: &'a str,
    pub actor: &'a str,
    pub role: &'static str,
    pub may_respond: bool,
    pub expires_at: String,
}

/// The overview: every service judged over the range, worst first.
#[derive(Debug, Serialize)]
pub struct Overview<'a> {
    pub range: &'a str,
    pub window_secs: u64,
    pub bucket_secs: i64,
    pub as_of: Option<String>,
    pub services: Vec<ServiceHealth<'a>>,
}

/// Incidents, with the newest update's sequence (where the live feed starts).
#[derive(Debug, Serialize)]
pub struct IncidentList<'a> {
    pub seq: i64,
    pub incidents: Vec<IncidentJson<'a>>,
}

/// One incident's page.
#[derive(Debug, Serialize)]
pub struct IncidentPage<'a> {
    pub incident: IncidentJson<'a>,
    pub alerts: Vec<AlertJson<'a>>,
    pub timeline: Vec<UpdateJson<'a>>,
}

/// An incident after a change by hand.
#[derive(Debug, Serialize)]
pub struct Changed<'a> {
    pub incident: IncidentJson<'a>,
}

/// One service's page.
#[derive(Debug, Serialize)]
pub struct ServicePage<'a> {
    pub range: &'a str,
    pub step_secs: i64,
    pub health: Option<ServiceHealth<'a>>,
    pub series: Vec<Point>,
    pub endpoints: Vec<Endpoint<'a>>,
    pub recent_errors: Vec<Event<'a>>,
    pub incidents: Vec<IncidentJson<'a>>,
}

/// This process's writer queue.
#[derive(Debug, Serialize)]
pub struct Queue {
    pub used_bytes: u64,
    pub capacity_bytes: u64,
}

/// The ingest page.
#[derive(Debug, Serialize)]
pub struct IngestPage<'a> {
    pub range: &'a str,
    pub minutes: Vec<OutcomesJson>,
    pub total: OutcomesJson,
    pub failed: Vec<Failed<'a>>,
    pub queue: Option<Queue>,
}

/// Who a session is.
pub fn who(session: &crate::store::users::SessionInfo) -> Who<'_> {
    Who {
        logged_in: true,
        session: Some(Described {
            tenant: &session.tenant_name,
            actor: &session.actor,
            role: session.role.as_str(),
            may_respond: session.role >= crate::domain::Role::Responder,
            expires_at: time(session.expires_at),
        }),
    }
}
