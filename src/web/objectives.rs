//! The dashboard's objectives page: every objective of the session's
//! tenant with how it stands now (attainment, budget left, burn rate per
//! window, exhaustion), from the same reading as `Query.ListObjectives`
//! (`query::objectives`), and whether its burn-rate alert is firing.

use axum::{Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;
use time::OffsetDateTime;

use super::{
    Dashboard,
    api::{Answer, Caller, reply},
    json::time,
};
use crate::{
    domain::objective::{Objective, Standing},
    query::objectives::standings,
};

pub(super) fn routes() -> Router<Dashboard> {
    Router::new().route("/api/v1/objectives", get(objectives))
}

/// One window's burn rate.
#[derive(Debug, Serialize)]
struct BurnJson {
    window_secs: u64,
    burn_rate: f64,
    requests: u64,
    bad_requests: u64,
}

/// An objective and how it stands.
#[derive(Debug, Serialize)]
struct ObjectiveJson<'a> {
    id: String,
    service: &'a str,
    endpoint: &'a str,
    kind: &'static str,
    target_percent: f64,
    period_days: u32,
    count_4xx: bool,
    latency_threshold_ms: f64,
    attainment_percent: f64,
    requests: u64,
    bad_requests: u64,
    budget_left_percent: f64,
    budget_left_requests: i64,
    budget_left_minutes: f64,
    burn_rates: Vec<BurnJson>,
    exhausted_at: Option<String>,
    /// The severity of its burn-rate alert while one fires.
    alert: Option<&'static str>,
}

fn objective<'a>(o: &'a Objective, s: &Standing, alert: Option<&'static str>) -> ObjectiveJson<'a> {
    ObjectiveJson {
        id: o.objective_id.to_string(),
        service: &o.service,
        endpoint: &o.endpoint,
        kind: o.kind.as_str(),
        target_percent: o.target_percent,
        period_days: o.period_days,
        count_4xx: o.count_4xx,
        latency_threshold_ms: o.latency_threshold_ms,
        attainment_percent: s.attainment_percent,
        requests: s.period.requests,
        bad_requests: s.period.bad,
        budget_left_percent: s.budget_left_percent,
        budget_left_requests: s.budget_left_requests,
        budget_left_minutes: s.budget_left_minutes,
        burn_rates: s
            .burns
            .iter()
            .map(|b| BurnJson {
                window_secs: b.window.as_secs(),
                burn_rate: b.rate,
                requests: b.tally.requests,
                bad_requests: b.tally.bad,
            })
            .collect(),
        exhausted_at: s.exhausted_at.map(time),
        alert,
    }
}

/// What the page reads.
#[derive(Debug, Serialize)]
struct Page<'a> {
    objectives: Vec<ObjectiveJson<'a>>,
    as_of: Option<String>,
}

/// `GET /api/v1/objectives`: every objective of the tenant, how it stands.
async fn objectives(State(d): State<Dashboard>, Caller { session, .. }: Caller) -> Answer {
    let tenant = session.tenant_id;
    let now = OffsetDateTime::now_utc();
    let (found, firing, as_of) = tokio::try_join!(
        d.store.objectives(tenant, None),
        d.store.firing_alerts_of(tenant),
        d.store.rollup_watermark(),
    )?;
    let standings = standings(&d.store, &found, now).await?;
    let objectives = found
        .iter()
        .zip(&standings)
        .map(|(o, s)| {
            let alert = firing
                .iter()
                .find(|a| {
                    a.kind == o.kind.alert_kind()
                        && a.service == o.service
                        && a.endpoint == o.endpoint
                })
                .map(|a| a.severity.as_str());
            objective(o, s, alert)
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        Page {
            objectives,
            as_of: as_of.map(time),
        },
    ))
}
