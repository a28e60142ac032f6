//! Service level objectives at the doors: `Admin.SetObjective`,
//! `Admin.ListObjectives`, `Admin.DeleteObjective` (admins), and
//! `Query.GetObjective`, `Query.ListObjectives` (readers): how each stands,
//! computed from the rollups (`query::objectives`).

use std::time::Duration;

use time::OffsetDateTime;
use tonic::{Response, Status};

use super::{
    convert::timestamp,
    request::positive_id,
    status::{checked_text, from_store, invalid},
};
use crate::{
    domain::{
        Principal,
        objective::{Objective, ObjectiveKind, PERIOD_DAYS, Standing},
    },
    proto::v1 as pb,
    query::objectives as reading,
    store::{Store, StoreError},
};

fn kind_to_pb(kind: ObjectiveKind) -> i32 {
    (match kind {
        ObjectiveKind::Availability => pb::ObjectiveKind::Availability,
        ObjectiveKind::Latency => pb::ObjectiveKind::Latency,
    }) as i32
}

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: 0,
    }
}

fn objective_to_pb(o: &Objective) -> pb::Objective {
    pb::Objective {
        objective_id: o.objective_id.to_string(),
        service: o.service.clone(),
        endpoint: o.endpoint.clone(),
        kind: kind_to_pb(o.kind),
        target_percent: o.target_percent,
        period: Some(duration(o.period())),
        count_4xx: o.count_4xx,
        latency_threshold_ms: o.latency_threshold_ms,
        created_at: Some(timestamp(o.created_at)),
    }
}

/// The objective a `SetObjective` request states, checked field by field.
fn objective_from_pb(
    caller: &Principal,
    req: pb::SetObjectiveRequest,
) -> Result<Objective, Status> {
    checked_text("service", &req.service, 128)?;
    checked_text("endpoint", &req.endpoint, 256)?;
    if req.service.is_empty() {
        return Err(invalid("service", "required"));
    }
    let kind = match pb::ObjectiveKind::try_from(req.kind) {
        Ok(pb::ObjectiveKind::Availability) => ObjectiveKind::Availability,
        Ok(pb::ObjectiveKind::Latency) => ObjectiveKind::Latency,
        Ok(pb::ObjectiveKind::Unspecified) => {
            return Err(invalid(
                "kind",
                "required: OBJECTIVE_KIND_AVAILABILITY or OBJECTIVE_KIND_LATENCY",
            ));
        }
        Err(_) => return Err(invalid("kind", format!("unknown kind {}", req.kind))),
    };
    let target = req.target_percent;
    if !(target > 0.0 && target < 100.0) {
        return Err(invalid(
            "target_percent",
            "between 0 and 100, both excluded (99.9 for 99.9 %)",
        ));
    }
    let period_days = req
        .period
        .filter(|p| p.nanos == 0 && p.seconds % 86_400 == 0)
        .map(|p| p.seconds / 86_400)
        .and_then(|days| PERIOD_DAYS.into_iter().find(|d| i64::from(*d) == days))
        .ok_or_else(|| invalid("period", "28 or 30 days (2419200s or 2592000s)"))?;
    let threshold = req.latency_threshold_ms;
    match kind {
        ObjectiveKind::Latency if !(threshold.is_finite() && threshold > 0.0) => {
            return Err(invalid(
                "latency_threshold_ms",
                "required for a latency objective: more than 0",
            ));
        }
        ObjectiveKind::Latency if req.count_4xx => {
            return Err(invalid(
                "count_4xx",
                "only an availability objective counts 4xx",
            ));
        }
        ObjectiveKind::Availability if threshold != 0.0 => {
            return Err(invalid(
                "latency_threshold_ms",
                "only a latency objective has a threshold",
            ));
        }
        _ => {}
    }
    Ok(Objective {
        objective_id: 0,
        tenant_id: caller.tenant_id,
        service: req.service,
        endpoint: req.endpoint,
        kind,
        target_percent: target,
        period_days,
        count_4xx: req.count_4xx,
        latency_threshold_ms: threshold,
        created_at: OffsetDateTime::now_utc(),
    })
}

/// `Admin.SetObjective`.
pub async fn set(
    store: &Store,
    caller: &Principal,
    req: pb::SetObjectiveRequest,
) -> Result<Response<pb::SetObjectiveResponse>, Status> {
    let o = objective_from_pb(caller, req)?;
    let known = store.services(caller.tenant_id).await.map_err(from_store)?;
    if !known.iter().any(|(name, _, _)| *name == o.service) {
        return Err(Status::not_found(format!(
            "service: no service {:?} has sent events to this tenant",
            o.service
        )));
    }
    let stored = store.set_objective(&o).await.map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, objective = stored.objective_id, service = %stored.service, kind = stored.kind.as_str(), "objective set");
    Ok(Response::new(pb::SetObjectiveResponse {
        objective: Some(objective_to_pb(&stored)),
    }))
}

fn service_filter(service: &str) -> Result<Option<&str>, Status> {
    checked_text("service", service, 128)?;
    Ok((!service.is_empty()).then_some(service))
}

/// `Admin.ListObjectives`.
pub async fn list(
    store: &Store,
    caller: &Principal,
    req: pb::ListObjectivesRequest,
) -> Result<Response<pb::ListObjectivesResponse>, Status> {
    let service = service_filter(&req.service)?;
    let found = store
        .objectives(caller.tenant_id, service)
        .await
        .map_err(from_store)?;
    Ok(Response::new(pb::ListObjectivesResponse {
        objectives: found.iter().map(objective_to_pb).collect(),
    }))
}

/// `Admin.DeleteObjective`.
pub async fn delete(
    store: &Store,
    caller: &Principal,
    req: pb::DeleteObjectiveRequest,
) -> Result<Response<pb::DeleteObjectiveResponse>, Status> {
    let id = positive_id("objective_id", "objective", &req.objective_id)?;
    store
        .delete_objective(caller.tenant_id, id)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, objective = id, "objective deleted");
    Ok(Response::new(pb::DeleteObjectiveResponse {}))
}

fn status_to_pb(o: &Objective, s: &Standing, as_of: Option<OffsetDateTime>) -> pb::ObjectiveStatus {
    pb::ObjectiveStatus {
        objective: Some(objective_to_pb(o)),
        attainment_percent: s.attainment_percent,
        requests: s.period.requests,
        bad_requests: s.period.bad,
        budget_left_percent: s.budget_left_percent,
        budget_left_requests: s.budget_left_requests,
        budget_left_minutes: s.budget_left_minutes,
        burn_rates: s
            .burns
            .iter()
            .map(|b| pb::BurnRate {
                window: Some(duration(b.window)),
                burn_rate: b.rate,
                requests: b.tally.requests,
                bad_requests: b.tally.bad,
            })
            .collect(),
        exhausted_at: s.exhausted_at.map(timestamp),
        as_of: as_of.map(timestamp),
    }
}

async fn statuses(
    store: &Store,
    objectives: &[Objective],
) -> Result<Vec<pb::ObjectiveStatus>, StoreError> {
    let now = OffsetDateTime::now_utc();
    let as_of = store.rollup_watermark().await?;
    let found = reading::standings(store, objectives, now).await?;
    Ok(objectives
        .iter()
        .zip(&found)
        .map(|(o, s)| status_to_pb(o, s, as_of))
        .collect())
}

/// `Query.GetObjective`.
pub async fn get(
    store: &Store,
    caller: &Principal,
    req: pb::GetObjectiveRequest,
) -> Result<Response<pb::GetObjectiveResponse>, Status> {
    let id = positive_id("objective_id", "objective", &req.objective_id)?;
    let o = store
        .objective(caller.tenant_id, id)
        .await
        .map_err(from_store)?;
    let mut found = statuses(store, std::slice::from_ref(&o))
        .await
        .map_err(from_store)?;
    Ok(Response::new(pb::GetObjectiveResponse {
        status: found.pop(),
    }))
}

/// `Query.ListObjectives`.
pub async fn standings(
    store: &Store,
    caller: &Principal,
    req: pb::QueryListObjectivesRequest,
) -> Result<Response<pb::QueryListObjectivesResponse>, Status> {
    let service = service_filter(&req.service)?;
    let found = store
        .objectives(caller.tenant_id, service)
        .await
        .map_err(from_store)?;
    Ok(Response::new(pb::QueryListObjectivesResponse {
        objectives: statuses(store, &found).await.map_err(from_store)?,
    }))
}
