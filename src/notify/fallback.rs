//! A receiver that keeps failing is itself an incident: when one fails every
//! attempt for longer than its tenant's `fallback_after`, the notify stage
//! fires an alert of the system (`Kind::ReceiverFailing`, endpoint = the
//! receiver's name) into the incident of service [`SERVICE`], through the
//! same lifecycle as every detection; the planner sends that incident to the
//! tenant's fallback receiver alone. A delivery to the receiver that
//! succeeds clears the alert, and the incident resolves as any other whose
//! alerts stayed clear.

use std::{collections::HashSet, time::Duration};

use time::OffsetDateTime;

use crate::{
    domain::{
        incident::{Alert, Grouping},
        rules::{Kind, Severity},
    },
    incidents::{self, lifecycle::Policy},
    store::{Store, StoreError, notify::Failing},
};

/// The system incident's service.
pub const SERVICE: &str = "pulsyon.notify";

/// How often receivers' health is checked.
pub const EVERY: Duration = Duration::from_secs(2);

/// The alert a failing receiver raises at `now`.
pub fn alert_of(f: &Failing, now: OffsetDateTime) -> Alert {
    Alert {
        alert_id: 0,
        tenant_id: f.tenant_id,
        incident_id: None,
        service: SERVICE.into(),
        endpoint: f.receiver.clone(),
        kind: Kind::ReceiverFailing,
        severity: Severity::Critical,
        observed: f.failing_secs,
        baseline: 0.0,
        no_baseline: true,
        threshold: f.after_secs as f64,
        window_secs: f.failing_secs as i32,
        fired_at: now,
        cleared_at: None,
        detail: String::new(),
    }
}

/// One check: alerts fired for receivers failing past their threshold that
/// have none yet; alerts of receivers no longer failing cleared.
pub async fn check(store: &Store, policy: &Policy) -> Result<(), StoreError> {
    let (failing, firing, now) = store.receivers_health().await?;
    let still: HashSet<(i64, &str)> = failing
        .iter()
        .map(|f| (f.tenant_id.0, f.receiver.as_str()))
        .collect();
    for (alert_id, tenant, receiver) in &firing {
        if !still.contains(&(*tenant, receiver.as_str())) {
            store.clear_alert(*alert_id, now).await?;
            tracing::info!(
                tenant,
                receiver,
                "notify: a receiver that was failing delivered again"
            );
        }
    }
    let raised: HashSet<(i64, &str)> = firing.iter().map(|(_, t, r)| (*t, r.as_str())).collect();
    for f in failing
        .iter()
        .filter(|f| f.failing_secs >= f.after_secs as f64)
    {
        if raised.contains(&(f.tenant_id.0, f.receiver.as_str())) {
            continue;
        }
        tracing::warn!(
            tenant = f.tenant_id.0,
            receiver = %f.receiver,
            failing_secs = f.failing_secs,
            "notify: a receiver failed every attempt past its threshold; its tenant's fallback is told"
        );
        incidents::fire(store, &alert_of(f, now), Grouping::Service, policy).await?;
    }
    Ok(())
}
