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
    message::{self, Context, Message},
    routing::{self, Selected, Subject},
};
use crate::{
    domain::{
        TenantId,
        incident::{Incident, IncidentStatus, Update, UpdateKind},
        notify::ReceiverKind,
        rules::Kind,
    },
    store::{
        Store, StoreError,
        notify::{Planned, TenantPlan, Windowed},
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

/// The deliveries `update` makes for `reason` to the receivers `to`. A
/// PagerDuty receiver is never grouped (each change is its own event on
/// the incident's `dedup_key`), nor is a delivery a silence holds.
fn deliveries(
    update: &Update,
    plan: &TenantPlan,
    to: &[Selected],
    reason: &str,
    silence: Option<i64>,
    public_url: &str,
) -> Vec<Planned> {
    let ctx = Context { public_url, reason };
    let seq = if reason == "update" { update.seq } else { 0 };
    to.iter()
        .filter_map(|sel| {
            let r = plan.receivers.iter().find(|r| r.name == sel.name)?;
            let grouped = r.kind != ReceiverKind::Pagerduty && silence.is_none();
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
                group_secs: if grouped { sel.group_secs } else { 0 },
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
    let to = match alerts.iter().any(|(_, k)| *k == Kind::ReceiverFailing) {
        // The system's incident of a failing receiver: the fallback alone.
        true => vec![Selected {
            name: plan.routes.fallback_receiver.clone(),
            group_secs: 0,
        }],
        false => routing::select(&plan.routes, &subject, update.kind, &every),
    };
    let silence = silenced_by(plan, &subject, now);
    deliveries(update, plan, &to, "update", silence, public_url)
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
    if alerts.iter().any(|(_, k)| *k == Kind::ReceiverFailing) {
        return Vec::new(); // the system's incident: its fallback only, once per change
    }
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
        let to: Vec<Selected> = due
            .receivers
            .iter()
            .map(|name| Selected {
                name: name.clone(),
                group_secs: 0,
            })
            .collect();
        out.extend(deliveries(
            &update,
            plan,
            &to,
            &due.reason,
            silence,
            public_url,
        ));
    }
    out
}

/// The digest of the deliveries a receiver's window held (two or more),
/// told under the first one's incident; `None` if the receiver is gone.
fn digest_of(members: &[Windowed], plan: &TenantPlan) -> Option<Planned> {
    let first = members.first()?;
    let receiver = plan
        .receivers
        .iter()
        .find(|r| r.receiver_id == first.receiver_id)?;
    let messages: Vec<Message> = members
        .iter()
        .filter_map(|m| serde_json::from_value(m.message.clone()).ok())
        .collect();
    let reason = format!("digest:{}", first.delivery_id);
    let id = message::identity(first.incident_id, 0, &reason);
    let rendered = message::digest(receiver, &messages, &id);
    Some(Planned {
        tenant_id: first.tenant_id,
        receiver_id: first.receiver_id,
        incident_id: first.incident_id,
        update_seq: 0,
        reason,
        change: UpdateKind::parse(&first.change)?.as_str(),
        committed_at: first.committed_at,
        message: serde_json::to_value(&rendered).ok()?,
        silence_id: None,
        group_secs: 0,
    })
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
    // 4. Group windows that are over: one digest per receiver.
    let windows = p.windows_over().await?;
    let missing: Vec<TenantId> = windows
        .iter()
        .map(|w| w.tenant_id)
        .filter(|t| !plans.contains_key(t))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let more = p.tenants(&missing).await?;
    for members in windows.chunk_by(|a, b| a.receiver_id == b.receiver_id) {
        let ids: Vec<i64> = members.iter().map(|m| m.delivery_id).collect();
        let tenant = members[0].tenant_id;
        let plan = plans
            .get(&tenant)
            .or_else(|| more.get(&tenant))
            .unwrap_or(&none);
        let digest = match members.len() {
            1 => None,
            _ => digest_of(members, plan),
        };
        p.close_window(&ids, digest, config.deadline).await?;
    }
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
