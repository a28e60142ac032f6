//! The read models every door answers from, in no transport's terms: the
//! gRPC `Query` service (api/query.rs) and the dashboard's JSON API (web/)
//! both convert what these functions return, so a service's health, its
//! series and the ingest outcomes are computed once.
//!
//! Everything reads the rollups (src/rollup) and what ingest wrote, never
//! rescanning raw events; every call is confined to one tenant by the
//! store's row-level security.

pub mod gate;
pub mod objectives;

use std::{collections::BTreeMap, time::Duration};

use time::OffsetDateTime;

use crate::{
    domain::{Outcome, OutcomeCount, RejectReason, TenantId},
    ingest::limits::ThrottleCause,
    rollup::verdict::{self, Objectives, Verdict, WindowStats},
    stats::{self, cell::Agg, histogram::Histogram},
    store::{
        Store, StoreError,
        rollups::{ServiceWindow, Table},
    },
};

/// Latency percentiles, milliseconds (0 without requests).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// The percentiles of a histogram.
pub fn percentiles(h: &Histogram) -> Percentiles {
    let q = |q| h.quantile(q).unwrap_or(0.0);
    Percentiles {
        p50_ms: q(0.50),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
    }
}

/// The percentiles of one rollup cell.
pub fn cell_percentiles(agg: &Agg) -> Percentiles {
    Percentiles {
        p50_ms: agg.quantile(0.50),
        p95_ms: agg.quantile(0.95),
        p99_ms: agg.quantile(0.99),
    }
}

/// A service judged over a window.
#[derive(Debug, Clone)]
pub struct Judged {
    /// Its numbers.
    pub window: ServiceWindow,
    /// Latency over the window.
    pub latency: Percentiles,
    /// The verdict.
    pub status: Verdict,
    /// The rule behind the verdict, in words.
    pub reason: String,
}

/// Judges each service (or the one given) that had traffic in the window
/// ending `now`, from minute rows for counts and uptime and merged
/// histograms for latency (whole hours from the hour rows).
pub async fn judge(
    store: &Store,
    tenant: TenantId,
    service: Option<&str>,
    window: Duration,
    now: OffsetDateTime,
) -> Result<BTreeMap<String, Judged>, StoreError> {
    let objectives = Objectives::default();
    let from = stats::floor(now - window, 60);
    let recent =
        stats::floor(now, 60) - time::Duration::minutes(objectives.silence_minutes as i64 - 1);
    // Whole hours from the hour rows; the edges, and always the recent
    // minutes, from the minute rows.
    let (mut h0, mut h1) = (stats::ceil(from, 3_600), stats::floor(recent, 3_600));
    if h0 >= h1 {
        (h0, h1) = (from, from);
    }
    let windows = store
        .service_windows(tenant, service, from, (h0, h1), recent, objectives.minute())
        .await?;
    let minutes = ((now - from).whole_seconds() as u64).div_ceil(60);
    Ok(windows
        .into_iter()
        .map(|w| {
            let latency = percentiles(&w.histogram);
            let stats = WindowStats {
                minutes,
                requests: w.requests,
                errors: w.errors,
                recent_requests: w.recent,
                p95_ms: latency.p95_ms,
            };
            let (status, reason) = verdict::judge(&stats, &objectives);
            (
                w.service.clone(),
                Judged {
                    window: w,
                    latency,
                    status,
                    reason,
                },
            )
        })
        .collect())
}

/// A service's health over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The service.
    pub service: String,
    /// The verdict (`Unknown` without traffic in the window).
    pub status: Verdict,
    /// The rule behind it, in words.
    pub reason: String,
    /// Requests in the window.
    pub requests: u64,
    /// 5xx responses in the window.
    pub errors: u64,
    /// Latency over the window.
    pub latency: Percentiles,
    /// Share of the minutes with traffic that met the objective, percent.
    pub uptime_percent: f64,
}

impl Health {
    /// The 5xx share (0 without requests).
    pub fn error_rate(&self) -> f64 {
        error_rate(self.errors, self.requests)
    }
}

/// The 5xx share of `requests` (0 without requests): computed here alone,
/// so that every door shows the same figure.
pub fn error_rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}

/// The health of every known service of the tenant (or the one named) over
/// the window ending `now`, by name; a known service without traffic in the
/// window is listed with its last request. A service never seen is `NotFound`.
pub async fn service_health(
    store: &Store,
    tenant: TenantId,
    service: Option<&str>,
    window: Duration,
    now: OffsetDateTime,
) -> Result<Vec<Health>, StoreError> {
    let judged = judge(store, tenant, service, window, now).await?;
    let mut services: Vec<Health> = judged
        .into_values()
        .map(|j| Health {
            status: j.status,
            reason: j.reason,
            requests: j.window.requests,
            errors: j.window.errors,
            latency: j.latency,
            uptime_percent: if j.window.minutes == 0 {
                100.0
            } else {
                100.0 * j.window.good_minutes as f64 / j.window.minutes as f64
            },
            service: j.window.service,
        })
        .collect();
    let known: Vec<_> = store
        .services(tenant)
        .await?
        .into_iter()
        .filter(|(n, _, _)| service.is_none_or(|s| s == n))
        .collect();
    if service.is_some() && known.is_empty() {
        return Err(StoreError::NotFound("service"));
    }
    for (name, _, last_seen) in known {
        if !services.iter().any(|s| s.service == name) {
            services.push(Health {
                service: name,
                status: Verdict::Unknown,
                reason: format!(
                    "no requests in the window; last request at {}",
                    last_seen
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
                requests: 0,
                errors: 0,
                latency: Percentiles::default(),
                uptime_percent: 100.0,
            });
        }
    }
    services.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(services)
}

/// An endpoint's numbers over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    /// The endpoint (route template).
    pub endpoint: String,
    /// Requests.
    pub requests: u64,
    /// 5xx responses.
    pub errors: u64,
    /// Latency.
    pub latency: Percentiles,
}

/// Each endpoint of `service` with traffic in the window ending `now`, the
/// busiest first (whole hours from the hour rows, the edges from minutes).
pub async fn endpoint_health(
    store: &Store,
    tenant: TenantId,
    service: &str,
    window: Duration,
    now: OffsetDateTime,
) -> Result<Vec<EndpointHealth>, StoreError> {
    let from = stats::floor(now - window, 60);
    let (mut h0, mut h1) = (stats::ceil(from, 3_600), stats::floor(now, 3_600));
    if h0 >= h1 {
        (h0, h1) = (from, from);
    }
    let to = now + time::Duration::minutes(1);
    let mut endpoints: Vec<EndpointHealth> = store
        .endpoint_windows(tenant, service, (from, to), (h0, h1))
        .await?
        .into_iter()
        .map(|w| EndpointHealth {
            latency: percentiles(&w.histogram),
            endpoint: w.service,
            requests: w.requests,
            errors: w.errors,
        })
        .collect();
    endpoints.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(a.endpoint.cmp(&b.endpoint))
    });
    Ok(endpoints)
}

/// Requests and 5xx per bucket of each service over the window ending
/// `now`: minute buckets up to a day, hour buckets past it. By service,
/// oldest bucket first; the bucket width in seconds.
pub async fn service_buckets(
    store: &Store,
    tenant: TenantId,
    window: Duration,
    now: OffsetDateTime,
) -> Result<(BTreeMap<String, Vec<(OffsetDateTime, u64, u64)>>, i64), StoreError> {
    let table = if window <= Duration::from_secs(3_600) {
        Table::ServiceMinute
    } else {
        Table::ServiceHour
    };
    let width = table.width();
    let from = stats::floor(now - window, width);
    let rows = store
        .service_buckets(tenant, table, from, now + time::Duration::seconds(width))
        .await?;
    let mut by_service: BTreeMap<String, Vec<(OffsetDateTime, u64, u64)>> = BTreeMap::new();
    for (service, bucket, count, errors) in rows {
        by_service
            .entry(service)
            .or_default()
            .push((bucket, count, errors));
    }
    Ok((by_service, width))
}

/// The width of a series' points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One minute (spans up to a day).
    Minute,
    /// One hour (up to 31 days).
    Hour,
    /// One day (up to 400 days).
    Day,
}

impl Step {
    /// The step of a duration, if it is one.
    pub fn of(d: Duration) -> Option<Step> {
        match d.as_secs() {
            60 => Some(Step::Minute),
            3_600 => Some(Step::Hour),
            86_400 => Some(Step::Day),
            _ => None,
        }
    }

    /// Seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Step::Minute => 60,
            Step::Hour => 3_600,
            Step::Day => 86_400,
        }
    }

    /// The longest range a series of this step may span.
    pub fn cap(self) -> Duration {
        const DAY: u64 = 86_400;
        Duration::from_secs(match self {
            Step::Minute => DAY,
            Step::Hour => 31 * DAY,
            Step::Day => 400 * DAY,
        })
    }
}

/// The rollup cells of a service (or one endpoint of it) in [from, to), one
/// per step (days merged from hour rows), oldest first.
pub async fn series(
    store: &Store,
    tenant: TenantId,
    service: &str,
    endpoint: Option<&str>,
    step: Step,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<(OffsetDateTime, Agg)>, StoreError> {
    let table = match (step == Step::Minute, endpoint.is_some()) {
        (true, true) => Table::EndpointMinute,
        (true, false) => Table::ServiceMinute,
        (false, true) => Table::EndpointHour,
        (false, false) => Table::ServiceHour,
    };
    let rows = store
        .rollup_series(
            tenant,
            table,
            service,
            endpoint,
            stats::floor(from, step.seconds()),
            to,
        )
        .await?;
    if step != Step::Day {
        return Ok(rows);
    }
    let mut days: BTreeMap<OffsetDateTime, Agg> = BTreeMap::new();
    for (bucket, agg) in &rows {
        days.entry(stats::floor(*bucket, 86_400))
            .or_default()
            .merge(agg);
    }
    Ok(days.into_iter().collect())
}

/// What became of the events of one minute (or of a range, as a total).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcomes {
    /// Received.
    pub received: u64,
    /// Stored (the overflowed included).
    pub stored: u64,
    /// Stored in the default partition (no daily partition for their day).
    pub overflowed: u64,
    /// Already stored: not written twice.
    pub duplicates: u64,
    /// Dropped by the tenant's filters.
    pub filtered: u64,
    /// Refused for a limit, with the cause (`None`: a name this version does not know).
    pub throttled: u64,
    /// Throttled, by cause.
    pub throttled_by_cause: Vec<(Option<ThrottleCause>, u64)>,
    /// Rejected as invalid.
    pub rejected: u64,
    /// Rejected, by reason (`None`: a name this version does not know).
    pub rejected_by_reason: Vec<(Option<RejectReason>, u64)>,
}

/// Folds the outcome rows of one minute (or a range) into counts.
pub fn fold_outcomes(rows: &[OutcomeCount]) -> Outcomes {
    let mut m = Outcomes::default();
    for row in rows {
        let n = row.count.max(0) as u64;
        match row.outcome {
            Outcome::Received => m.received += n,
            Outcome::Stored => {
                m.stored += n;
                if row.reason == "overflow" {
                    m.overflowed += n;
                }
            }
            Outcome::Duplicate => m.duplicates += n,
            Outcome::Filtered => m.filtered += n,
            Outcome::Throttled => {
                m.throttled += n;
                add_to(
                    &mut m.throttled_by_cause,
                    ThrottleCause::parse(&row.reason),
                    n,
                );
            }
            Outcome::Rejected => {
                m.rejected += n;
                add_to(
                    &mut m.rejected_by_reason,
                    RejectReason::parse(&row.reason),
                    n,
                );
            }
        }
    }
    m
}

/// Adds `n` to `key`'s count in `counts`, the first time as a new entry.
fn add_to<K: PartialEq>(counts: &mut Vec<(K, u64)>, key: K, n: u64) {
    match counts.iter_mut().find(|c| c.0 == key) {
        Some(c) => c.1 += n,
        None => counts.push((key, n)),
    }
}

/// The outcomes of each minute in [from, to), newest first, at most
/// `limit` minutes before `before` (when given); `more` when older minutes remain.
pub async fn outcome_minutes(
    store: &Store,
    tenant: TenantId,
    (from, to): (OffsetDateTime, OffsetDateTime),
    before: Option<OffsetDateTime>,
    limit: i64,
) -> Result<(Vec<(OffsetDateTime, Outcomes)>, bool), StoreError> {
    let rows = store
        .outcome_minutes(tenant, from, to, before, limit + 1)
        .await?;
    let mut by_minute: BTreeMap<std::cmp::Reverse<OffsetDateTime>, Vec<OutcomeCount>> =
        BTreeMap::new();
    for row in rows {
        by_minute
            .entry(std::cmp::Reverse(row.minute))
            .or_default()
            .push(row);
    }
    let more = by_minute.len() as i64 > limit;
    let minutes = by_minute
        .iter()
        .take(limit.max(0) as usize)
        .map(|(std::cmp::Reverse(minute), rows)| (*minute, fold_outcomes(rows)))
        .collect();
    Ok((minutes, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, reason: &str, count: i64) -> OutcomeCount {
        OutcomeCount {
            minute: OffsetDateTime::UNIX_EPOCH,
            outcome,
            reason: reason.into(),
            count,
        }
    }

    #[test]
    fn outcomes_fold_by_kind_cause_and_reason() {
        let m = fold_outcomes(&[
            row(Outcome::Received, "", 10),
            row(Outcome::Stored, "", 5),
            row(Outcome::Stored, "overflow", 1),
            row(Outcome::Throttled, "event_rate", 2),
            row(Outcome::Throttled, "event_rate", 1),
            row(Outcome::Throttled, "mystery", 1),
            row(Outcome::Rejected, "invalid_status_code", 1),
        ]);
        assert_eq!((m.received, m.stored, m.overflowed), (10, 6, 1));
        assert_eq!(m.throttled, 4);
        assert_eq!(
            m.throttled_by_cause,
            vec![(Some(ThrottleCause::EventRate), 3), (None, 1)]
        );
        assert_eq!(m.rejected, 1);
        assert_eq!(m.rejected_by_reason.len(), 1);
    }

    #[test]
    fn steps_are_the_three_widths() {
        assert_eq!(Step::of(Duration::from_secs(60)), Some(Step::Minute));
        assert_eq!(Step::of(Duration::from_secs(86_400)), Some(Step::Day));
        assert_eq!(Step::of(Duration::from_secs(120)), None);
        assert!(Step::Hour.cap() > Step::Minute.cap());
    }
}
