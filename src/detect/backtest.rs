//! The backtest: the detector replayed over stored minute rollups with a
//! simulated clock, writing nothing, listing the incidents it would have
//! opened. The rules, hysteresis and baselines are the live detector's
//! (`State::evaluate`, `baselines`); the lifecycle (join, reopen, resolve
//! after the clear period) is replayed in memory with the live rules of
//! `store::incidents`.
//!
//! Live, the current minute's row holds only the seconds so far; stored, it
//! holds the whole minute. The replay therefore counts the current minute's
//! row pro rata (counts and histogram scaled by the share of the minute
//! elapsed), assuming traffic spread evenly within a minute.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{DetectConfig, Effect, State, Subject, baselines, rules::Window, weighted_windows};
use crate::{
    domain::{
        incident::{Alert, Decision, Existing, Grouping},
        rules::{Kind, Overrides, Severity},
    },
    incidents::{explain, lifecycle},
    stats,
    store::detect::MinuteRow,
};

/// An incident the replay opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulated {
    /// Whose.
    pub tenant_id: i64,
    /// The service.
    pub service: String,
    /// Highest severity of its alerts.
    pub severity: Severity,
    /// When it opened.
    pub opened_at: OffsetDateTime,
    /// When it resolved by itself; `None` if still open at the end.
    pub resolved_at: Option<OffsetDateTime>,
    /// Times it reopened.
    pub reopen_count: u32,
    /// Its alerts, in order.
    pub alerts: Vec<Alert>,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The incidents, by opening time.
    pub incidents: Vec<Simulated>,
    /// Evaluations replayed.
    pub evaluations: u64,
}

/// Windows at `now` from stored rows: the previous minute whole, the current
/// one pro rata.
fn windows_at(
    by_minute: &HashMap<OffsetDateTime, Vec<&MinuteRow>>,
    now: OffsetDateTime,
) -> HashMap<Subject, Window> {
    let minute = stats::floor(now, 60);
    let share = (now - minute).as_seconds_f64() / 60.0;
    let previous = minute - time::Duration::minutes(1);
    let rows = [(previous, 1.0), (minute, share)]
        .into_iter()
        .flat_map(|(bucket, weight)| {
            by_minute
                .get(&bucket)
                .into_iter()
                .flatten()
                .map(move |r| (*r, weight))
        });
    weighted_windows(
        rows,
        (now - previous).as_seconds_f64(),
        minute,
        (now - minute).as_seconds_f64(),
    )
}

/// Replays detection over [from, to) on `rows` (which must reach back
/// `config.baseline` plus two minutes before `from`, histograms included).
pub fn run(
    mut rows: Vec<MinuteRow>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    overrides: &Overrides,
    config: &DetectConfig,
) -> Outcome {
    rows.sort_by_key(|r| r.bucket);
    let rows = rows.as_slice();
    let mut by_minute: HashMap<OffsetDateTime, Vec<&MinuteRow>> = HashMap::new();
    for r in rows {
        by_minute.entry(r.bucket).or_default().push(r);
    }
    let step = time::Duration::try_from(config.interval).unwrap_or(time::Duration::seconds(5));
    let mut replay = Replay::default();
    let mut current_baselines = HashMap::new();
    let mut baseline_minute = None;
    let mut t = from;
    while t < to {
        let minute = stats::floor(t, 60);
        let window_from = minute - time::Duration::minutes(1);
        // Baselines once a minute, from the rows before the window.
        if baseline_minute != Some(minute) {
            let start = window_from - config.baseline;
            let long_start = window_from - config.long_baseline;
            let lo = rows.partition_point(|r| r.bucket < long_start);
            let hi = rows.partition_point(|r| r.bucket < window_from);
            current_baselines = baselines(&rows[lo..hi], long_start, start, window_from);
            baseline_minute = Some(minute);
        }
        let windows = windows_at(&by_minute, t);
        let window_secs = (t - window_from).whole_seconds() as i32;
        let effects = replay.state.evaluate(
            &current_baselines,
            &windows,
            window_secs,
            overrides,
            config,
            t,
        );
        replay.out.evaluations += 1;
        for effect in effects {
            match effect {
                Effect::Fire(alert, grouping) => replay.fire(alert, grouping, t, config),
                Effect::Clear(subject, kind) => replay.clear(subject, kind, t),
            }
        }
        replay.resolve_due(t, config);
        t += step;
    }
    replay.out
}

/// A replay's state between evaluations: the detector's, and the incidents
/// simulated so far.
#[derive(Default)]
struct Replay {
    state: State,
    out: Outcome,
    /// The unresolved incident of each (tenant, service), by index.
    open: HashMap<(i64, String), usize>,
    /// Where each firing alert is: (incident, alert) indices.
    firing: HashMap<(Subject, Kind), (usize, usize)>,
    next_id: i64,
}

impl Replay {
    /// An alert fires: the lifecycle joins, reopens or opens its incident.
    fn fire(
        &mut self,
        mut alert: Alert,
        grouping: Grouping,
        t: OffsetDateTime,
        config: &DetectConfig,
    ) {
        self.next_id += 1;
        alert.alert_id = self.next_id;
        let key = (
            alert.tenant_id.0,
            grouping.incident_service(&alert).to_owned(),
        );
        let incidents = &self.out.incidents;
        let existing = Existing {
            open: self
                .open
                .get(&key)
                .map(|&i| (i as i64, incidents[i].severity)),
            last_resolved: incidents.iter().enumerate().rev().find_map(|(n, i)| {
                ((i.tenant_id, &i.service) == (key.0, &key.1))
                    .then_some(i.resolved_at.map(|r| (n as i64, r)))
                    .flatten()
            }),
        };
        let decision = lifecycle::on_alert(&existing, alert.severity, t, &config.lifecycle);
        let index = match decision {
            Decision::Join { incident_id, .. } => incident_id as usize,
            Decision::Reopen { incident_id } => {
                let incident = &mut self.out.incidents[incident_id as usize];
                incident.resolved_at = None;
                incident.reopen_count += 1;
                incident.severity = alert.severity;
                incident_id as usize
            }
            Decision::Open => {
                self.out.incidents.push(Simulated {
                    tenant_id: key.0,
                    service: key.1.clone(),
                    severity: alert.severity,
                    opened_at: t,
                    resolved_at: None,
                    reopen_count: 0,
                    alerts: Vec::new(),
                });
                self.out.incidents.len() - 1
            }
        };
        self.open.insert(key, index);
        let incident = &mut self.out.incidents[index];
        incident.severity = incident.severity.max(alert.severity);
        let subject = Subject::of_alert(&alert);
        self.state.firing.insert(
            (subject.clone(), alert.kind),
            (alert.alert_id, alert.severity),
        );
        self.firing
            .insert((subject, alert.kind), (index, incident.alerts.len()));
        incident.alerts.push(alert);
    }

    /// An alert's condition holds no more.
    fn clear(&mut self, subject: Subject, kind: Kind, t: OffsetDateTime) {
        self.state.firing.remove(&(subject.clone(), kind));
        if let Some((i, a)) = self.firing.remove(&(subject, kind)) {
            self.out.incidents[i].alerts[a].cleared_at = Some(t);
        }
    }

    /// Incidents whose alerts all stayed clear for the clear period resolve.
    fn resolve_due(&mut self, t: OffsetDateTime, config: &DetectConfig) {
        let incidents = &mut self.out.incidents;
        self.open.retain(|_, i| {
            let incident = &mut incidents[*i];
            let all_clear = incident.alerts.iter().all(|a| a.cleared_at.is_some());
            let last_clear = incident.alerts.iter().filter_map(|a| a.cleared_at).max();
            if lifecycle::due_to_resolve(all_clear, last_clear, t, &config.lifecycle) {
                incident.resolved_at = Some(t);
                false
            } else {
                true
            }
        });
    }
}

/// Loads what a replay of [from, to) needs (one tenant or all) and runs it,
/// with `candidates` applied on top of the stored rule overrides.
pub async fn replay(
    store: &crate::store::Store,
    tenant: Option<crate::domain::TenantId>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    candidates: &Overrides,
) -> Result<Outcome, crate::store::StoreError> {
    let config = DetectConfig::default();
    let since = stats::floor(from, 60) - config.long_baseline - time::Duration::minutes(2);
    // One tenant's replay reads under its row-level security: nothing of
    // another tenant is even loaded.
    let rows = store.detection_rows(tenant, since, to, true).await?;
    let mut overrides = store.rule_overrides(tenant).await?;
    overrides.extend(candidates.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(run(rows, from, to, &overrides, &config))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Prints a replay's incidents: a table, or one JSON object per line.
pub fn print(outcome: &Outcome, json: bool) {
    for i in &outcome.incidents {
        if json {
            let alerts: Vec<serde_json::Value> = i
                .alerts
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "kind": a.kind.as_str(),
                        "endpoint": a.endpoint,
                        "severity": a.severity.as_str(),
                        "fired_at": rfc3339(a.fired_at),
                        "cleared_at": a.cleared_at.map(rfc3339),
                        "explanation": explain::alert(a),
                    })
                })
                .collect();
            let line = serde_json::json!({
                "tenant_id": i.tenant_id,
                "service": i.service,
                "severity": i.severity.as_str(),
                "opened_at": rfc3339(i.opened_at),
                "resolved_at": i.resolved_at.map(rfc3339),
                "reopen_count": i.reopen_count,
                "alerts": alerts,
            });
            println!("{line}");
        } else {
            let first = i.alerts.first().map(explain::alert).unwrap_or_default();
            println!(
                "{}  {:<20}  {:<8}  {} alert(s), resolved {}: {first}",
                rfc3339(i.opened_at),
                i.service,
                i.severity.as_str(),
                i.alerts.len(),
                i.resolved_at.map(rfc3339).unwrap_or_else(|| "never".into()),
            );
        }
    }
    eprintln!(
        "{} incident(s) over {} evaluations",
        outcome.incidents.len(),
        outcome.evaluations
    );
}
