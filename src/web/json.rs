//! The dashboard's JSON shapes of the domain's types (times in RFC 3339,
//! series points in Unix seconds for the charts).

use std::{fmt::Write, time::Duration};

use serde_json::{Value, json};
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

fn latency(p: query::Percentiles) -> Value {
    json!({ "p50_ms": p.p50_ms, "p95_ms": p.p95_ms, "p99_ms": p.p99_ms })
}

/// A service's health over a window of `window`.
pub fn health(h: &Health, window: Duration) -> Value {
    json!({
        "service": h.service,
        "status": verdict(h.status),
        "reason": h.reason,
        "requests": h.requests,
        "requests_per_s": h.requests as f64 / window.as_secs_f64().max(1.0),
        "errors": h.errors,
        "error_rate": h.error_rate(),
        "latency": latency(h.latency),
        "uptime_percent": h.uptime_percent,
    })
}

/// One point of a series: `t` in Unix seconds.
pub fn point(t: OffsetDateTime, a: &Agg) -> Value {
    json!({
        "t": t.unix_timestamp(),
        "count": a.count,
        "errors": a.status_5xx,
        "error_rate": if a.count == 0 { 0.0 } else { a.status_5xx as f64 / a.count as f64 },
        "latency": latency(query::cell_percentiles(a)),
    })
}

/// An endpoint's numbers.
pub fn endpoint(e: &EndpointHealth) -> Value {
    json!({
        "endpoint": e.endpoint,
        "requests": e.requests,
        "errors": e.errors,
        "error_rate": if e.requests == 0 { 0.0 } else { e.errors as f64 / e.requests as f64 },
        "latency": latency(e.latency),
    })
}

/// A stored event (as the recent 5xx list shows it).
pub fn event(e: &StoredEvent) -> Value {
    let ev = &e.event;
    json!({
        "event_id": ev.event_id.to_string(),
        "time": time(ev.time),
        "endpoint": ev.endpoint,
        "method": ev.method,
        "status_code": ev.status_code,
        "latency_ms": ev.latency_ms,
        "trace_id": ev.trace_id,
        "request_id": ev.request_id,
        "host": ev.host,
        "release": ev.release,
    })
}

/// An incident, with the explanation of its latest alert when known.
pub fn incident(i: &Incident, explanation: Option<String>) -> Value {
    json!({
        "id": i.incident_id.to_string(),
        "service": i.service,
        "title": i.title,
        "severity": i.severity.as_str(),
        "status": i.status.as_str(),
        "opened_at": time(i.opened_at),
        "acknowledged_at": i.acknowledged_at.map(time),
        "acknowledged_by": i.acknowledged_by,
        "resolved_at": i.resolved_at.map(time),
        "resolved_by": i.resolved_by,
        "reopen_count": i.reopen_count,
        "alert_count": i.alert_count,
        "last_seq": i.last_seq,
        "explanation": explanation,
    })
}

/// An alert with its explanation: observed vs baseline vs threshold.
pub fn alert(a: &Alert) -> Value {
    json!({
        "id": a.alert_id.to_string(),
        "kind": a.kind.as_str(),
        "service": a.service,
        "endpoint": a.endpoint,
        "severity": a.severity.as_str(),
        "observed": a.observed,
        "baseline": if a.no_baseline { None } else { Some(a.baseline) },
        "threshold": a.threshold,
        "window_secs": a.window_secs,
        "fired_at": time(a.fired_at),
        "cleared_at": a.cleared_at.map(time),
        "explanation": crate::incidents::explain::alert(a),
    })
}

/// An incident update (timeline entry and live event).
pub fn update(u: &Update) -> Value {
    let explanation = u.alert.as_ref().map(crate::incidents::explain::alert);
    json!({
        "seq": u.seq,
        "kind": u.kind.as_str(),
        "at": time(u.at),
        "actor": u.actor,
        "note": u.note,
        "incident": incident(&u.incident, explanation),
        "alert": u.alert.as_ref().map(alert),
    })
}

/// Outcome counts of a minute (or, without one, a total).
pub fn outcomes(minute: Option<OffsetDateTime>, m: &Outcomes) -> Value {
    let rejected: serde_json::Map<String, Value> = m
        .rejected_by_reason
        .iter()
        .map(|(r, n)| {
            (
                r.map(|r| r.as_str()).unwrap_or("unknown").to_owned(),
                json!(n),
            )
        })
        .collect();
    let throttled: serde_json::Map<String, Value> = m
        .throttled_by_cause
        .iter()
        .map(|(c, n)| {
            (
                c.map(|c| c.as_str()).unwrap_or("unknown").to_owned(),
                json!(n),
            )
        })
        .collect();
    json!({
        "t": minute.map(|t| t.unix_timestamp()),
        "received": m.received,
        "stored": m.stored,
        "duplicates": m.duplicates,
        "rejected": m.rejected,
        "rejected_by_reason": rejected,
        "throttled": m.throttled,
        "throttled_by_cause": throttled,
        "filtered": m.filtered,
    })
}

/// A dead letter; its payload (hex) only when asked for.
pub fn failed(f: &FailedEvent, payload: bool) -> Value {
    let mut v = json!({
        "id": f.failed_id.to_string(),
        "received_at": time(f.received_at),
        "reason": f.reason.map(|r| r.as_str()).unwrap_or("unknown"),
        "message": f.message,
        "producer_id": f.producer_id,
        "batch_seq": f.batch_seq,
        "index": f.index,
        "size_bytes": f.size,
    });
    if payload {
        let mut hex = String::with_capacity(f.payload.len() * 2);
        for b in &f.payload {
            let _ = write!(hex, "{b:02x}");
        }
        v["payload_hex"] = json!(hex);
        v["payload_text"] = json!(String::from_utf8_lossy(&f.payload));
        v["truncated"] = json!((f.payload.len() as i64) < f.size);
    }
    v
}
