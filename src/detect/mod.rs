//! Detection: every `interval` the leader reads a short window of the rollups
//! for every (tenant, service) and every endpoint with enough traffic, reads
//! it against a baseline with each rule (`rules`), and turns the rules'
//! transitions into alerts and incident changes (`store::incidents`).
//!
//! One leader across all server processes: the process holding a session
//! advisory lock on a dedicated connection. When it dies, PostgreSQL releases
//! the lock with its connection and another process takes over within
//! `LEADER_POLL`. The new leader reloads the firing alerts, so an alert
//! neither fires twice nor stays open forever.
//!
//! The window is the previous whole minute plus the current one so far
//! (60 to 120 s). The baseline is the median over the minutes of the previous
//! `baseline` (default 2 h) before the window: robust to the spikes it is
//! there to find.

pub mod backtest;
pub mod objectives;
pub mod rules;

use std::{collections::HashMap, time::Duration};

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        TenantId,
        incident::{Alert, Grouping, Update},
        rules::{Kind, Overrides, Settings, Severity},
    },
    incidents::{self, explain, lifecycle::Policy},
    stats::{self, histogram::Histogram},
    store::{Store, StoreError, detect::MinuteRow},
};
use rules::{Baseline, Hysteresis, Transition, Window};

/// Advisory lock key of the detector's leader ("pulsyon detect").
pub const LEADER_LOCK: i64 = 0x7075_6c73_6465_7465;
/// How often a follower tries to become the leader.
pub const LEADER_POLL: Duration = Duration::from_secs(2);

/// Settings of the detector.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Time between evaluations.
    pub interval: Duration,
    /// History the baseline is made of.
    pub baseline: Duration,
    /// History the long latency baseline is made of.
    pub long_baseline: Duration,
    /// When incidents reopen and resolve by themselves.
    pub lifecycle: Policy,
    /// Endpoints are evaluated on their own from this many requests a minute
    /// (baseline): low, since every reading must also be beyond chance.
    pub endpoint_min_rpm: f64,
    /// Time between evaluations of the objectives' burn rates.
    pub objective_interval: Duration,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            interval: Duration::from_secs(5),
            baseline: Duration::from_secs(2 * 3_600),
            long_baseline: Duration::from_secs(24 * 3_600),
            lifecycle: Policy::default(),
            endpoint_min_rpm: 3.0,
            objective_interval: Duration::from_secs(30),
        }
    }
}

/// What is evaluated: a service (endpoint '') or one endpoint of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject {
    /// Whose.
    pub tenant: TenantId,
    /// The service.
    pub service: String,
    /// The endpoint; '' for the whole service.
    pub endpoint: String,
}

impl Subject {
    /// The subject of a minute row.
    pub fn of_row(r: &MinuteRow) -> Subject {
        Subject {
            tenant: TenantId(r.tenant_id),
            service: r.service.clone(),
            endpoint: r.endpoint.clone(),
        }
    }

    /// The subject an alert is about.
    pub fn of_alert(a: &Alert) -> Subject {
        Subject {
            tenant: a.tenant_id,
            service: a.service.clone(),
            endpoint: a.endpoint.clone(),
        }
    }

    /// Whether it is a whole service.
    pub fn is_service(&self) -> bool {
        self.endpoint.is_empty()
    }
}

/// The settings of `kind` for a subject: defaults, then the tenant's
/// override, then the service's.
pub fn settings_for(
    overrides: &Overrides,
    tenant: TenantId,
    service: &str,
    kind: Kind,
) -> Settings {
    let mut s = Settings::defaults(kind);
    if let Some(o) = overrides.get(&(tenant, String::new(), kind)) {
        s = s.overlay(o);
    }
    if let Some(o) = overrides.get(&(tenant, service.to_owned(), kind)) {
        s = s.overlay(o);
    }
    s
}

/// Baselines of every subject from minute rows: the short one of
/// [from, to), and the long p95 of [long_from, to), which a slow drift cannot
/// drag along with it.
pub fn baselines(
    rows: &[MinuteRow],
    long_from: OffsetDateTime,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> HashMap<Subject, Baseline> {
    let mut per: HashMap<Subject, (Vec<&MinuteRow>, Vec<f64>)> = HashMap::new();
    for r in rows
        .iter()
        .filter(|r| r.bucket >= long_from && r.bucket < to)
    {
        let entry = per.entry(Subject::of_row(r)).or_default();
        if r.count > 0 {
            entry.1.push(r.p95_ms);
        }
        if r.bucket >= from {
            entry.0.push(r);
        }
    }
    per.into_iter()
        .filter(|(_, (short, _))| !short.is_empty())
        .map(|(subject, (rows, mut long_p95))| {
            let first = rows.iter().map(|r| r.bucket).min().unwrap_or(from);
            let span = ((to - first).whole_minutes()).max(1) as usize;
            let mut requests: Vec<f64> = rows.iter().map(|r| r.count as f64).collect();
            requests.resize(span.max(requests.len()), 0.0);
            // Failing minutes are not what the service usually does.
            let mut errors: Vec<f64> = rows
                .iter()
                .filter(|r| r.count > 0)
                .map(|r| r.status_5xx as f64 / r.count as f64)
                .filter(|share| *share <= rules::HEALTHY_ERROR_SHARE)
                .collect();
            let error_minutes = errors.len() as u32;
            let mut p95: Vec<f64> = rows
                .iter()
                .filter(|r| r.count > 0)
                .map(|r| r.p95_ms)
                .collect();
            let evidence_from = to - time::Duration::minutes(i64::from(rules::EVIDENCE_MINUTES));
            let (before_requests, before_errors) = rows
                .iter()
                .filter(|r| r.bucket >= evidence_from)
                .fold((0, 0), |(n, e), r| {
                    (n + r.count.max(0) as u64, e + r.status_5xx.max(0) as u64)
                });
            let b = Baseline {
                before_requests,
                before_errors,
                error_rate: rules::median(&mut errors),
                error_minutes,
                p95_ms: rules::median(&mut p95),
                p95_long_ms: rules::median(&mut long_p95),
                requests_per_minute: rules::median(&mut requests),
                minutes: rows.len() as u32,
            };
            (subject, b)
        })
        .collect()
}

/// Windows of every subject from weighted minute rows (a weight below 1
/// counts that share of a row: counts scaled and rounded, histogram alike),
/// the window covering `seconds`, of which the rows of `latest` (the current
/// minute) cover `latest_seconds`.
pub fn weighted_windows<'a>(
    rows: impl IntoIterator<Item = (&'a MinuteRow, f64)>,
    seconds: f64,
    latest: OffsetDateTime,
    latest_seconds: f64,
) -> HashMap<Subject, Window> {
    let mut acc: HashMap<Subject, (Window, Histogram)> = HashMap::new();
    for (r, weight) in rows {
        let entry = acc.entry(Subject::of_row(r)).or_default();
        let requests = (r.count.max(0) as f64 * weight).round() as u64;
        entry.0.requests += requests;
        entry.0.errors += (r.status_5xx.max(0) as f64 * weight).round() as u64;
        let scaled;
        let histogram = if weight >= 1.0 {
            &r.histogram
        } else {
            scaled = r.histogram.scaled(weight);
            &scaled
        };
        entry.1.merge(histogram);
        if r.bucket == latest {
            entry.0.latest_requests += requests;
            entry.0.latest_latency.merge(histogram);
        }
    }
    acc.into_iter()
        .map(|(s, (mut w, h))| {
            w.seconds = seconds;
            w.latest_seconds = latest_seconds;
            w.p95_ms = h.quantile(0.95).unwrap_or(0.0);
            w.latency = h;
            (s, w)
        })
        .collect()
}

/// Windows of every subject from minute rows at or after `from`, as of `now`.
pub fn windows(
    rows: &[MinuteRow],
    from: OffsetDateTime,
    now: OffsetDateTime,
) -> HashMap<Subject, Window> {
    let minute = stats::floor(now, 60);
    weighted_windows(
        rows.iter().filter(|r| r.bucket >= from).map(|r| (r, 1.0)),
        (now - from).as_seconds_f64().max(1.0),
        minute,
        (now - minute).as_seconds_f64(),
    )
}

/// A rule's change for one subject, from one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A new alert fires, into the incident its grouping names.
    Fire(Alert, Grouping),
    /// The alert of this subject and rule clears.
    Clear(Subject, Kind),
}

/// The leader's memory: hysteresis per subject and rule, and the alert
/// firing for each.
#[derive(Debug, Default)]
pub struct State {
    hysteresis: HashMap<(Subject, Kind), Hysteresis>,
    firing: HashMap<(Subject, Kind), (i64, Severity)>,
}

impl State {
    /// State that knows the alerts already firing (after a leader change).
    pub fn with_firing(alerts: &[Alert]) -> State {
        let mut state = State::default();
        // The system's alerts (a failing receiver) are the notify stage's.
        for a in alerts.iter().filter(|a| a.kind.is_rule()) {
            let key = (Subject::of_alert(a), a.kind);
            state.hysteresis.insert(key.clone(), Hysteresis::firing());
            state.firing.insert(key, (a.alert_id, a.severity));
        }
        state
    }

    /// Reads every subject that has a baseline with every rule; returns the
    /// transitions. Endpoints need `endpoint_min_rpm` of baseline traffic.
    pub fn evaluate(
        &mut self,
        baselines: &HashMap<Subject, Baseline>,
        windows: &HashMap<Subject, Window>,
        window_secs: i32,
        overrides: &Overrides,
        config: &DetectConfig,
        now: OffsetDateTime,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Services with traffic now but no baseline yet are read too (error
        // rate against its absolute bar): a new deploy broken from its first
        // minute must not wait for a baseline that would learn the failure.
        let unseen = Baseline::default();
        let mut subjects: Vec<&Subject> = baselines
            .keys()
            .chain(
                windows
                    .keys()
                    .filter(|s| s.is_service() && !baselines.contains_key(*s)),
            )
            .collect();
        subjects.sort();
        let silent = silent_tenants(baselines, windows, window_secs, overrides);
        for subject in subjects {
            let baseline = baselines.get(subject).unwrap_or(&unseen);
            if !subject.is_service() && baseline.requests_per_minute < config.endpoint_min_rpm {
                continue;
            }
            let empty = empty_window(window_secs);
            let window = windows.get(subject).unwrap_or(&empty);
            for kind in Kind::RULES {
                let settings = settings_for(overrides, subject.tenant, &subject.service, kind);
                let reading = rules::read(kind, &settings, window, baseline);
                let key = (subject.clone(), kind);
                let h = self.hysteresis.entry(key.clone()).or_default();
                let bad = reading.as_ref().and_then(|r| r.bad);
                let transition = h.feed(bad.is_some(), &settings);
                // A firing alert whose reading got worse escalates: it is
                // replaced by one of the higher severity.
                let worse = transition == Transition::None
                    && self
                        .firing
                        .get(&key)
                        .zip(bad)
                        .is_some_and(|((_, firing), now)| now > *firing);
                if worse {
                    effects.push(Effect::Clear(subject.clone(), kind));
                }
                match if worse { Transition::Fire } else { transition } {
                    Transition::Fire => {
                        if let (Some(r), Some(severity)) = (reading, bad) {
                            let grouping = match silent.get(&subject.tenant) {
                                Some(&services) if kind == Kind::TrafficDrop => {
                                    Grouping::AllServices { services }
                                }
                                _ => Grouping::Service,
                            };
                            effects.push(Effect::Fire(
                                Alert {
                                    alert_id: 0,
                                    tenant_id: subject.tenant,
                                    incident_id: None,
                                    service: subject.service.clone(),
                                    endpoint: subject.endpoint.clone(),
                                    kind,
                                    severity,
                                    observed: r.observed,
                                    baseline: r.baseline,
                                    no_baseline: r.no_baseline,
                                    threshold: r.threshold,
                                    window_secs: r.seconds.round() as i32,
                                    fired_at: now,
                                    cleared_at: None,
                                    detail: String::new(),
                                },
                                grouping,
                            ));
                        }
                    }
                    Transition::Clear => effects.push(Effect::Clear(subject.clone(), kind)),
                    Transition::None => {}
                }
            }
        }
        // A firing alert whose subject lost its baseline (no traffic for the
        // whole baseline period) and has no traffic now clears: nothing is
        // left to compare with.
        let orphans: Vec<(Subject, Kind)> = self
            .firing
            .keys()
            .filter(|(s, _)| !baselines.contains_key(s) && !windows.contains_key(s))
            .cloned()
            .collect();
        for (s, k) in orphans {
            self.hysteresis.remove(&(s.clone(), k));
            effects.push(Effect::Clear(s, k));
        }
        effects
    }
}

/// The window of a subject without traffic: `window_secs` of nothing, the
/// current minute's share of them included.
fn empty_window(window_secs: i32) -> Window {
    Window {
        seconds: f64::from(window_secs),
        latest_seconds: f64::from(window_secs - 60).max(0.0),
        ..Window::default()
    }
}

/// Tenants whose steady services (at least two) all read as a traffic drop
/// in this evaluation, with how many there are: they went silent together,
/// which is one event, not one outage per service.
fn silent_tenants(
    baselines: &HashMap<Subject, Baseline>,
    windows: &HashMap<Subject, Window>,
    window_secs: i32,
    overrides: &Overrides,
) -> HashMap<TenantId, usize> {
    // tenant -> (steady services, of which dropped)
    let mut per: HashMap<TenantId, (usize, usize)> = HashMap::new();
    for (subject, baseline) in baselines.iter().filter(|(s, _)| s.is_service()) {
        let settings = settings_for(
            overrides,
            subject.tenant,
            &subject.service,
            Kind::TrafficDrop,
        );
        let empty = empty_window(window_secs);
        let window = windows.get(subject).unwrap_or(&empty);
        if let Some(reading) = rules::read(Kind::TrafficDrop, &settings, window, baseline) {
            let entry = per.entry(subject.tenant).or_default();
            entry.0 += 1;
            entry.1 += usize::from(reading.bad.is_some());
        }
    }
    per.into_iter()
        .filter(|(_, (steady, dropped))| *steady >= 2 && dropped == steady)
        .map(|(tenant, (steady, _))| (tenant, steady))
        .collect()
}

/// The detector of the leader process.
pub struct Detector {
    store: Store,
    config: DetectConfig,
    state: State,
    burning: objectives::Burning,
    /// When the objectives are read next.
    objectives_due: Option<OffsetDateTime>,
    baselines: HashMap<Subject, Baseline>,
    baseline_minute: Option<OffsetDateTime>,
}

/// What one evaluation did.
#[derive(Debug, Default)]
pub struct Tick {
    /// Alerts fired.
    pub fired: Vec<Alert>,
    /// Alerts cleared.
    pub cleared: usize,
    /// Incident updates written.
    pub updates: Vec<Update>,
}

impl Detector {
    /// A detector that knows the alerts already firing.
    pub async fn new(store: Store, config: DetectConfig) -> Result<Detector, StoreError> {
        let firing = store.firing_alerts().await?;
        Ok(Detector {
            store,
            config,
            state: State::with_firing(&firing),
            burning: objectives::Burning::with_firing(&firing),
            objectives_due: None,
            baselines: HashMap::new(),
            baseline_minute: None,
        })
    }

    /// One evaluation as of `now`.
    pub async fn tick(&mut self, now: OffsetDateTime) -> Result<Tick, StoreError> {
        let minute = stats::floor(now, 60);
        let window_from = minute - time::Duration::minutes(1);
        if self.baseline_minute != Some(minute) {
            let from = window_from - self.config.baseline;
            let long_from = window_from - self.config.long_baseline;
            let rows = self
                .store
                .detection_rows(None, long_from, window_from, false)
                .await?;
            self.baselines = baselines(&rows, long_from, from, window_from);
            self.baseline_minute = Some(minute);
        }
        let rows = self
            .store
            .detection_rows(None, window_from, minute + time::Duration::minutes(1), true)
            .await?;
        let windows = windows(&rows, window_from, now);
        let overrides = self.store.rule_overrides(None).await?;
        let window_secs = (now - window_from).whole_seconds() as i32;
        let effects = self.state.evaluate(
            &self.baselines,
            &windows,
            window_secs,
            &overrides,
            &self.config,
            now,
        );
        let mut tick = Tick::default();
        for effect in effects {
            match effect {
                Effect::Fire(alert, grouping) => {
                    let key = (Subject::of_alert(&alert), alert.kind);
                    let (stored, updates) =
                        incidents::fire(&self.store, &alert, grouping, &self.config.lifecycle)
                            .await?;
                    metrics::counter!("pulsyon_alerts_fired_total", "kind" => alert.kind.as_str())
                        .increment(1);
                    self.state
                        .firing
                        .insert(key, (stored.alert_id, stored.severity));
                    tick.fired.push(stored);
                    tick.updates.extend(updates);
                }
                Effect::Clear(subject, kind) => {
                    if let Some((id, _)) = self.state.firing.remove(&(subject, kind)) {
                        self.store.clear_alert(id, now).await?;
                        tick.cleared += 1;
                    }
                }
            }
        }
        if self.objectives_due.is_none_or(|due| now >= due) {
            let burns = self
                .burning
                .evaluate(&self.store, &self.config.lifecycle, now)
                .await?;
            tick.fired.extend(burns.fired);
            tick.cleared += burns.cleared;
            tick.updates.extend(burns.updates);
            self.objectives_due = Some(now + self.config.objective_interval);
        }
        tick.updates
            .extend(incidents::resolve_quiet(&self.store, now, &self.config.lifecycle).await?);
        Ok(tick)
    }
}

/// Runs leader election and, while leader, the detector, until `stop`.
pub fn spawn(store: Store, config: DetectConfig, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match lead(&store, &config, &stop).await {
                Ok(()) => return,
                Err(err) => {
                    metrics::gauge!("pulsyon_detector_leader").set(0.0);
                    tracing::warn!(error = %err, "detector: lost or could not take leadership; trying again");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(LEADER_POLL) => {}
            }
        }
    })
}

/// Waits to become the leader, then evaluates every interval while the lock's
/// connection lives. Returns Ok when stopped.
async fn lead(
    store: &Store,
    config: &DetectConfig,
    stop: &CancellationToken,
) -> Result<(), StoreError> {
    let mut lock = store.leader_lock(LEADER_LOCK).await?;
    loop {
        if lock.try_acquire().await? {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(LEADER_POLL) => {}
        }
    }
    tracing::info!("detector: this process is the leader");
    metrics::gauge!("pulsyon_detector_leader").set(1.0);
    let mut detector = Detector::new(store.clone(), config.clone()).await?;
    loop {
        lock.check().await?;
        match detector.tick(OffsetDateTime::now_utc()).await {
            Ok(tick) => {
                for a in &tick.fired {
                    tracing::info!(
                        tenant = a.tenant_id.0,
                        service = %a.service,
                        endpoint = %a.endpoint,
                        kind = a.kind.as_str(),
                        explanation = %explain::alert(a),
                        "alert fired"
                    );
                }
            }
            Err(err) if err.is_retryable() => return Err(err),
            Err(err) => tracing::warn!(error = %err, "detector: evaluation failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => {
                metrics::gauge!("pulsyon_detector_leader").set(0.0);
                return Ok(());
            }
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}

#[cfg(test)]
mod tests;
