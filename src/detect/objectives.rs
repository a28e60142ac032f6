//! Burn-rate alerts of service level objectives, evaluated by the
//! detector's leader every `--objective-interval`: each objective's standing
//! is read from the rollups (`query::objectives`), and the SRE workbook's
//! window pairs (`domain::objective::BURN_ALERTS`) decide its alert. One
//! alert per objective at a time (kind `availability_burn` or
//! `latency_burn`, on the objective's service and endpoint): it fires as a
//! ticket (warning) or a page (critical), is replaced by a page when a page
//! pair starts to burn (its incident escalates), and clears once no pair
//! burns any more (the short windows recovered); its incident then resolves
//! as every other does. These alerts go through the same lifecycle, Watch,
//! dashboard and notifications as the rules'.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::{
    domain::{
        TenantId,
        incident::{Alert, Grouping, Update},
        objective::{self, BurningPair, Objective, Standing},
        rules::{Kind, Severity},
    },
    incidents::{self, explain, lifecycle::Policy},
    query::objectives::objective_standing,
    store::{Store, StoreError},
};

/// An objective as its alert names it: tenant, service, endpoint, kind.
type Key = (TenantId, String, String, Kind);

fn key_of(o: &Objective) -> Key {
    (
        o.tenant_id,
        o.service.clone(),
        o.endpoint.clone(),
        o.kind.alert_kind(),
    )
}

/// What an objective's alert does, given the severity its windows call for
/// now and the severity of the alert firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing changes.
    Keep,
    /// An alert of this severity fires.
    Fire(Severity),
    /// The firing alert is replaced by one of this higher severity.
    Escalate(Severity),
    /// The firing alert clears.
    Clear,
}

/// The step from `level` (None: no pair burns) and `firing`. A page that
/// slows to a ticket's pace stays a page until no pair burns: the incident's
/// severity never drops while it is open.
pub fn step(level: Option<Severity>, firing: Option<Severity>) -> Step {
    match (level, firing) {
        (Some(l), None) => Step::Fire(l),
        (Some(l), Some(f)) if l > f => Step::Escalate(l),
        (None, Some(_)) => Step::Clear,
        _ => Step::Keep,
    }
}

/// The alert `o` raises at `now` for the burning `pair`.
pub fn alert_of(o: &Objective, s: &Standing, pair: &BurningPair, now: OffsetDateTime) -> Alert {
    Alert {
        alert_id: 0,
        tenant_id: o.tenant_id,
        incident_id: None,
        service: o.service.clone(),
        endpoint: o.endpoint.clone(),
        kind: o.kind.alert_kind(),
        severity: pair.severity,
        observed: objective::rate_of(s, pair.long),
        baseline: 0.0,
        no_baseline: false,
        threshold: pair.factor,
        window_secs: pair.long.as_secs() as i32,
        fired_at: now,
        cleared_at: None,
        detail: explain::objective_burn(o, s, pair, now),
    }
}

/// The leader's memory of the objectives' alerts firing.
#[derive(Debug, Default)]
pub struct Burning {
    firing: HashMap<Key, (i64, Severity)>,
}

/// What one evaluation of the objectives did.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// Alerts fired (escalations included).
    pub fired: Vec<Alert>,
    /// Alerts cleared.
    pub cleared: usize,
    /// Incident updates written.
    pub updates: Vec<Update>,
}

impl Burning {
    /// The objectives' alerts already firing (after a leader change).
    pub fn with_firing(alerts: &[Alert]) -> Burning {
        let firing = alerts
            .iter()
            .filter(|a| matches!(a.kind, Kind::AvailabilityBurn | Kind::LatencyBurn))
            .map(|a| {
                let key = (a.tenant_id, a.service.clone(), a.endpoint.clone(), a.kind);
                (key, (a.alert_id, a.severity))
            })
            .collect();
        Burning { firing }
    }

    /// Reads every objective as of `now` and fires, escalates or clears
    /// their alerts; the alert of an objective deleted since clears.
    pub async fn evaluate(
        &mut self,
        store: &Store,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<Evaluated, StoreError> {
        let mut out = Evaluated::default();
        let objectives = store.all_objectives().await?;
        let mut seen = HashSet::new();
        for o in &objectives {
            let key = key_of(o);
            seen.insert(key.clone());
            let standing = objective_standing(store, o, now).await?;
            let pair = objective::burning_pair(o, &standing);
            let firing = self.firing.get(&key).copied();
            match step(pair.map(|p| p.severity), firing.map(|(_, s)| s)) {
                Step::Keep => {}
                Step::Clear => out.cleared += self.clear(store, &key, now).await?,
                Step::Fire(_) | Step::Escalate(_) => {
                    let Some(pair) = pair else { continue };
                    out.cleared += self.clear(store, &key, now).await?;
                    let alert = alert_of(o, &standing, &pair, now);
                    let (stored, updates) =
                        incidents::fire(store, &alert, Grouping::Service, policy).await?;
                    metrics::counter!("pulsyon_alerts_fired_total", "kind" => alert.kind.as_str())
                        .increment(1);
                    self.firing.insert(key, (stored.alert_id, stored.severity));
                    out.fired.push(stored);
                    out.updates.extend(updates);
                }
            }
        }
        let gone: Vec<Key> = self
            .firing
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            out.cleared += self.clear(store, &key, now).await?;
        }
        Ok(out)
    }

    async fn clear(
        &mut self,
        store: &Store,
        key: &Key,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        match self.firing.remove(key) {
            Some((alert_id, _)) => {
                store.clear_alert(alert_id, now).await?;
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objectives_alert_fires_escalates_holds_and_clears() {
        let (t, p) = (Severity::Warning, Severity::Critical);
        assert_eq!(step(None, None), Step::Keep);
        assert_eq!(step(Some(t), None), Step::Fire(t));
        assert_eq!(step(Some(p), None), Step::Fire(p));
        // A ticket whose page pair starts to burn escalates.
        assert_eq!(step(Some(p), Some(t)), Step::Escalate(p));
        assert_eq!(step(Some(t), Some(t)), Step::Keep);
        // A page slowing to a ticket's pace stays a page until all recover.
        assert_eq!(step(Some(t), Some(p)), Step::Keep);
        assert_eq!(step(None, Some(p)), Step::Clear);
        assert_eq!(step(None, Some(t)), Step::Clear);
    }
}
