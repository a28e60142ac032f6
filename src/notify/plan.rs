//! The planner: every pass, in one transaction (`store::notify::Planner`),
//! at one database time `now`:
//! 1. suppressed deliveries whose silence no longer holds them, of
//!    incidents still open, are released (before anything newer is planned,
//!    so they keep their place in order);
//! 2. each outbox row after the cursor becomes a delivery per receiver its
//!    tenant's routes select, `suppressed` when a silence holds it;
//! 3. escalation steps and repeats that fell due for open, unacknowledged
//!    incidents become deliveries of their own reason (each once);
//!    then the cursor moves past what was read.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::{
    NotifyConfig,
    message::{self, Context},
    routing::{self, Subject},
};
use crate::{
    domain::{
        TenantId,
        incident::{Incident, IncidentStatus, Update, UpdateKind},
        rules::Kind,
    },
    store::{
        Store, StoreError,
        notify::{Planned, TenantPlan},
    },
};

/// Outbox rows read per pass at most.
pub const BATCH: i64 = 500;

/// What routes and silences see of `incident`.
pub fn subject_of(incident: &Incident, alerts: &[(String, Kind)]) -> Subject {
    Subject {
        incident_id: incident.incident_id,
        service: incident.service.clone(),
        severity: incident.severity,
        alerts: alerts.to_vec(),
        resolved: incident.status == IncidentStatus::Resolved,
    }
}

/// The silence holding notifications of `s` at `now`, if one does.
fn silenced_by(plan: &TenantPlan, s: &Subject, now: OffsetDateTime) -> Option<i64> {
    plan.silences
        .iter()
        .find(|sil| routing::silences(sil, s, now))
        .map(|sil| sil.silence_id)
}

/// The deliveries `update` makes for `reason` to the receivers `names`.
fn deliveries(
    update: &Update,
    plan: &TenantPlan,
    names: &[String],
    reason: &str,
    silence: Option<i64>,
    public_url: &str,
) -> Vec<Planned> {
    let ctx = Context { public_url, reason };
    let seq = if reason == "update" { update.seq } else { 0 };
    names
        .iter()
        .filter_map(|name| plan.receivers.iter().find(|r| &r.name == name))
        .filter_map(|r| {
            let rendered = message::render(update, r, &ctx);
            let message = serde_json::to_value(&rendered).ok()?;
            Some(Planned {
                tenant_id: update.incident.tenant_id,
                receiver_id: r.receiver_id,
                incident_id: update.incident.incident_id,
                update_seq: seq,
                reason: reason.to_owned(),
                change: update.kind.as_str(),
                committed_at: update.at,
                message,
                silence_id: silence,
            })
        })
        .collect()
}

/// The deliveries of one outbox row.
pub fn for_update(
    update: &Update,
    plan: &TenantPlan,
    alerts: &[(String, Kind)],
    now: OffsetDateTime,
    public_url: &str,
) -> Vec<Planned> {
    let subject = subject_of(&update.incident, alerts);
    let every: Vec<String> = plan.receivers.iter().map(|r| r.name.clone()).collect();
    let names = routing::select(&plan.routes, &subject, update.kind, &every);
    let silence = silenced_by(plan, &subject, now);
    deliveries(update, plan, &names, "update", silence, public_url)
}

/// The escalations and repeats due for an open, unacknowledged incident.
pub fn for_due(
    incident: &Incident,
    open_secs: u64,
    plan: &TenantPlan,
    alerts: &[(String, Kind)],
    now: OffsetDateTime,
    public_url: &str,
) -> Vec<Planned> {
    let subject = subject_of(incident, alerts);
    let silence = silenced_by(plan, &subject, now);
    let mut out = Vec::new();
    for due in routing::due(&plan.routes, &subject, open_secs) {
        let note = match due.reason.starts_with("escalation") {
            true => format!("not acknowledged after {} min: escalated", open_secs / 60),
            false => format!(
                "still open and not acknowledged after {} min",
                open_secs / 60
            ),
        };
        let update = Update {
            seq: incident.last_seq,
            kind: UpdateKind::Opened,
            at: now,
            incident: incident.clone(),
            alert: None,
            actor: "pulsyon".into(),
            note,
        };
        out.extend(deliveries(
            &update,
            plan,
            &due.receivers,
            &due.reason,
            silence,
            public_url,
        ));
    }
    out
}

/// One pass; returns how many outbox rows it read (`None`: another
/// process plans).
pub async fn pass(store: &Store, config: &NotifyConfig) -> Result<Option<usize>, StoreError> {
    let Some(mut p) = store.planner().await? else {
        return Ok(None);
    };
    let now = p.now().await?;
    let held = p.held().await?;
    let updates = p.updates(BATCH).await?;
    let open = p.unacknowledged().await?;
    let mut tenants: HashSet<TenantId> = HashSet::new();
    let mut incidents: HashSet<i64> = HashSet::new();
    for i in held
        .iter()
        .map(|h| &h.incident)
        .chain(updates.iter().map(|u| &u.incident))
        .chain(open.iter().map(|(i, _)| i))
    {
        tenants.insert(i.tenant_id);
        incidents.insert(i.incident_id);
    }
    let plans = p.tenants(&tenants.into_iter().collect::<Vec<_>>()).await?;
    let alerts = p
        .alerts_of(&incidents.into_iter().collect::<Vec<_>>())
        .await?;
    let none = TenantPlan::default();
    let plan_of = |t: TenantId| plans.get(&t).unwrap_or(&none);
    let alerts_of = |id: i64| alerts.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    // 1. Released: the silence that held them is gone or no longer holds.
    let released: Vec<i64> = held
        .iter()
        .filter(|h| {
            let plan = plan_of(h.incident.tenant_id);
            let subject = subject_of(&h.incident, alerts_of(h.incident.incident_id));
            let holding = h
                .silence
                .and_then(|id| plan.silences.iter().find(|s| s.silence_id == id));
            !holding.is_some_and(|s| routing::silences(s, &subject, now))
        })
        .map(|h| h.delivery_id)
        .collect();
    p.release(&released).await?;
    // 2. The outbox rows after the cursor.
    let mut planned = Vec::new();
    for u in &updates {
        let plan = plan_of(u.incident.tenant_id);
        planned.extend(for_update(
            u,
            plan,
            alerts_of(u.incident.incident_id),
            now,
            &config.public_url,
        ));
    }
    // 3. Escalations and repeats due.
    for (incident, secs) in &open {
        let plan = plan_of(incident.tenant_id);
        let alerts = alerts_of(incident.incident_id);
        planned.extend(for_due(
            incident,
            *secs as u64,
            plan,
            alerts,
            now,
            &config.public_url,
        ));
    }
    p.insert(&planned, config.deadline).await?;
    let last = updates.last().map(|u| u.seq).unwrap_or(p.cursor);
    p.commit(last).await?;
    if !released.is_empty() {
        tracing::info!(
            deliveries = released.len(),
            "notify: a silence ended; held deliveries sent"
        );
    }
    Ok(Some(updates.len()))
}
