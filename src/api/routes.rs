//! Admin's notification routes and silences: conversions and checks
//! (`notify::spec`), each problem naming its field.

use std::time::Duration;

use tonic::{Response, Status};

use super::{
    convert::{from_timestamp, timestamp},
    incidents::{incident_id, kind_to_pb, severity_from_pb, severity_to_pb, update_kind_to_pb},
    status::{checked_text, from_store, invalid},
};
use crate::{
    domain::{
        Principal,
        incident::UpdateKind,
        notify::{EscalationStep, Matchers, Recurrence, Route, Routes, Silence, SilenceKind},
        rules::Kind,
    },
    notify::spec::{self, Invalid},
    proto::v1 as pb,
    store::Store,
};

fn from_invalid(e: Invalid) -> Status {
    invalid(e.field, e.problem)
}

fn alert_kind(value: i32) -> Result<Kind, Status> {
    super::admin::kind_from_pb(value)?
        .ok_or_else(|| invalid("matchers.kinds", "ALERT_KIND_UNSPECIFIED is not a rule"))
}

fn update_kind(value: i32) -> Result<UpdateKind, Status> {
    match pb::UpdateKind::try_from(value) {
        Ok(pb::UpdateKind::Opened) => Ok(UpdateKind::Opened),
        Ok(pb::UpdateKind::AlertAdded) => Ok(UpdateKind::AlertAdded),
        Ok(pb::UpdateKind::Escalated) => Ok(UpdateKind::Escalated),
        Ok(pb::UpdateKind::Acknowledged) => Ok(UpdateKind::Acknowledged),
        Ok(pb::UpdateKind::Resolved) => Ok(UpdateKind::Resolved),
        Ok(pb::UpdateKind::Reopened) => Ok(UpdateKind::Reopened),
        _ => Err(invalid("routes.changes", format!("unknown change {value}"))),
    }
}

fn texts(field: &str, values: &[String]) -> Result<(), Status> {
    values.iter().try_for_each(|v| checked_text(field, v, 256))
}

fn matchers_from_pb(m: Option<pb::Matchers>) -> Result<Matchers, Status> {
    let m = m.unwrap_or_default();
    texts("matchers.services", &m.services)?;
    texts("matchers.endpoints", &m.endpoints)?;
    let severities = m
        .severities
        .iter()
        .map(|s| {
            severity_from_pb("matchers.severities", *s)?.ok_or_else(|| {
                invalid(
                    "matchers.severities",
                    "SEVERITY_UNSPECIFIED is not a severity",
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Matchers {
        services: m.services,
        endpoints: m.endpoints,
        severities,
        kinds: m
            .kinds
            .iter()
            .map(|k| alert_kind(*k))
            .collect::<Result<_, _>>()?,
    })
}

fn matchers_to_pb(m: &Matchers) -> pb::Matchers {
    pb::Matchers {
        services: m.services.clone(),
        endpoints: m.endpoints.clone(),
        severities: m.severities.iter().map(|s| severity_to_pb(*s)).collect(),
        kinds: m.kinds.iter().map(|k| kind_to_pb(*k)).collect(),
    }
}

fn seconds(field: &str, d: Option<prost_types::Duration>) -> Result<u64, Status> {
    match d {
        None => Ok(0),
        Some(d) => Duration::try_from(d)
            .map(|d| d.as_secs())
            .map_err(|_| invalid(field, "a duration of 0 or more")),
    }
}

/// A group window's length when a route does not say.
const DEFAULT_GROUP_SECS: u64 = 10;

fn route_from_pb(r: pb::NotificationRoute) -> Result<Route, Status> {
    texts("routes.receivers", &r.receivers)?;
    let escalation = r
        .escalation
        .into_iter()
        .map(|s| {
            texts("routes.escalation.receivers", &s.receivers)?;
            Ok(EscalationStep {
                after_secs: seconds("routes.escalation.after", s.after)?,
                receivers: s.receivers,
            })
        })
        .collect::<Result<_, Status>>()?;
    Ok(Route {
        matchers: matchers_from_pb(r.matchers)?,
        receivers: r.receivers,
        changes: r
            .changes
            .iter()
            .map(|c| update_kind(*c))
            .collect::<Result<_, _>>()?,
        continue_matching: r.continue_matching,
        escalation,
        repeat_secs: seconds("routes.repeat_interval", r.repeat_interval)?,
        group_secs: match (r.group, r.group_window) {
            (false, None) => 0,
            (false, Some(_)) => return Err(invalid("routes.group_window", "only with group")),
            (true, None) => DEFAULT_GROUP_SECS,
            (true, window) => match seconds("routes.group_window", window)? {
                0 => return Err(invalid("routes.group_window", "more than 0 s")),
                secs => secs,
            },
        },
    })
}

fn route_to_pb(r: &Route) -> pb::NotificationRoute {
    let secs = |s: u64| prost_types::Duration {
        seconds: s as i64,
        nanos: 0,
    };
    pb::NotificationRoute {
        matchers: Some(matchers_to_pb(&r.matchers)),
        receivers: r.receivers.clone(),
        changes: r.changes.iter().map(|c| update_kind_to_pb(*c)).collect(),
        continue_matching: r.continue_matching,
        escalation: r
            .escalation
            .iter()
            .map(|s| pb::EscalationStep {
                after: Some(secs(s.after_secs)),
                receivers: s.receivers.clone(),
            })
            .collect(),
        repeat_interval: (r.repeat_secs > 0).then(|| secs(r.repeat_secs)),
        group: r.group_secs > 0,
        group_window: (r.group_secs > 0).then(|| secs(r.group_secs)),
    }
}

/// `Admin.SetRoutes`.
pub async fn set(
    store: &Store,
    caller: &Principal,
    req: pb::SetRoutesRequest,
) -> Result<Response<pb::SetRoutesResponse>, Status> {
    texts("default_receivers", &req.default_receivers)?;
    checked_text("fallback_receiver", &req.fallback_receiver, 256)?;
    let routes = Routes {
        routes: req
            .routes
            .into_iter()
            .map(route_from_pb)
            .collect::<Result<_, _>>()?,
        default_receivers: req.default_receivers,
        fallback_receiver: req.fallback_receiver,
        fallback_after_secs: match req.fallback_after {
            None => 0,
            some => match seconds("fallback_after", some)? {
                0 => return Err(invalid("fallback_after", "more than 0 s")),
                secs => secs,
            },
        },
    };
    let receivers = store
        .receivers(caller.tenant_id)
        .await
        .map_err(from_store)?;
    let names: Vec<String> = receivers.into_iter().map(|r| r.name).collect();
    spec::check_routes(&routes, &names).map_err(from_invalid)?;
    store
        .set_routes(caller.tenant_id, &routes)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, routes = routes.routes.len(), "notification routes set");
    Ok(Response::new(pb::SetRoutesResponse {}))
}

/// `Admin.ListRoutes`.
pub async fn list(
    store: &Store,
    caller: &Principal,
) -> Result<Response<pb::ListRoutesResponse>, Status> {
    let routes = store.routes(caller.tenant_id).await.map_err(from_store)?;
    Ok(Response::new(pb::ListRoutesResponse {
        routes: routes.routes.iter().map(route_to_pb).collect(),
        fallback_after: Some(prost_types::Duration {
            seconds: routes.fallback_after() as i64,
            nanos: 0,
        }),
        default_receivers: routes.default_receivers,
        fallback_receiver: routes.fallback_receiver,
    }))
}

fn recurrence_from_pb(r: pb::Recurrence) -> Result<Recurrence, Status> {
    checked_text("recurrence.time_zone", &r.time_zone, 64)?;
    let weekdays = r
        .weekdays
        .iter()
        .map(|d| {
            u8::try_from(*d).map_err(|_| invalid("recurrence.weekdays", "1 (Monday) to 7 (Sunday)"))
        })
        .collect::<Result<_, _>>()?;
    let recurrence = Recurrence {
        weekdays,
        from_minute: spec::minute_of_day("recurrence.from", &r.from).map_err(from_invalid)?,
        to_minute: spec::minute_of_day("recurrence.to", &r.to).map_err(from_invalid)?,
        time_zone: r.time_zone,
    };
    spec::check_recurrence(&recurrence).map_err(from_invalid)?;
    Ok(recurrence)
}

fn silence_to_pb(s: &Silence) -> pb::Silence {
    pb::Silence {
        silence_id: s.silence_id.to_string(),
        kind: (match s.kind {
            SilenceKind::Silence => pb::SilenceKind::Silence,
            SilenceKind::Maintenance => pb::SilenceKind::Maintenance,
        }) as i32,
        matchers: Some(matchers_to_pb(&s.matchers)),
        starts_at: Some(timestamp(s.starts_at)),
        ends_at: s.ends_at.map(timestamp),
        recurrence: s.recurrence.as_ref().map(|r| pb::Recurrence {
            weekdays: r.weekdays.iter().map(|d| i32::from(*d)).collect(),
            from: format!("{:02}:{:02}", r.from_minute / 60, r.from_minute % 60),
            to: format!("{:02}:{:02}", r.to_minute / 60, r.to_minute % 60),
            time_zone: r.time_zone.clone(),
        }),
        until_resolved_incident_id: s.until_resolved.map(|i| i.to_string()).unwrap_or_default(),
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        created_at: Some(timestamp(s.created_at)),
        expired_at: s.expired_at.map(timestamp),
    }
}

/// The window a request asks for: (starts, ends).
fn window(
    req: &pb::CreateSilenceRequest,
    now: time::OffsetDateTime,
) -> Result<(time::OffsetDateTime, Option<time::OffsetDateTime>), Status> {
    let starts = match &req.starts_at {
        Some(t) => from_timestamp(t).ok_or_else(|| invalid("starts_at", "not a time"))?,
        None => now,
    };
    let ends = match (&req.ends_at, &req.duration) {
        (Some(_), Some(_)) => {
            return Err(invalid("duration", "give ends_at or duration, not both"));
        }
        (Some(t), None) => Some(from_timestamp(t).ok_or_else(|| invalid("ends_at", "not a time"))?),
        (None, Some(d)) => {
            let d = Duration::try_from(*d).map_err(|_| invalid("duration", "more than 0"))?;
            Some(starts + d)
        }
        (None, None) => None,
    };
    if ends.is_some_and(|e| e <= starts) {
        return Err(invalid("ends_at", "after starts_at"));
    }
    Ok((starts, ends))
}

/// `Admin.CreateSilence`.
pub async fn create_silence(
    store: &Store,
    caller: &Principal,
    req: pb::CreateSilenceRequest,
) -> Result<Response<pb::CreateSilenceResponse>, Status> {
    checked_text("created_by", &req.created_by, 128)?;
    checked_text("comment", &req.comment, 4096)?;
    checked_text(
        "until_resolved_incident_id",
        &req.until_resolved_incident_id,
        32,
    )?;
    let matchers = matchers_from_pb(req.matchers.clone())?;
    let recurrence = req.recurrence.clone().map(recurrence_from_pb).transpose()?;
    if req.created_by.trim().is_empty() {
        return Err(invalid("created_by", "required: who silences"));
    }
    let kind = match pb::SilenceKind::try_from(req.kind) {
        Ok(pb::SilenceKind::Unspecified | pb::SilenceKind::Silence) => SilenceKind::Silence,
        Ok(pb::SilenceKind::Maintenance) => SilenceKind::Maintenance,
        Err(_) => {
            return Err(invalid(
                "kind",
                format!("unknown silence kind {}", req.kind),
            ));
        }
    };
    let (starts_at, ends_at) = window(&req, time::OffsetDateTime::now_utc())?;
    let until_resolved = match req.until_resolved_incident_id.as_str() {
        "" => None,
        id => Some(
            incident_id(id)
                .map_err(|_| invalid("until_resolved_incident_id", "not an incident id"))?,
        ),
    };
    spec::check_matchers("matchers", &matchers).map_err(from_invalid)?;
    if ends_at.is_none() && until_resolved.is_none() {
        return Err(invalid(
            "ends_at",
            "a silence ends: give ends_at, duration or until_resolved_incident_id",
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let spec = Silence {
        silence_id: 0,
        tenant_id: caller.tenant_id,
        created_at: now,
        expired_at: None,
        kind,
        matchers,
        starts_at,
        ends_at,
        recurrence,
        until_resolved,
        created_by: req.created_by,
        comment: req.comment,
    };
    let silence = store
        .create_silence(caller.tenant_id, &spec)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, silence = silence.silence_id, by = %silence.created_by, "silence created");
    Ok(Response::new(pb::CreateSilenceResponse {
        silence: Some(silence_to_pb(&silence)),
    }))
}

/// `Admin.ListSilences`.
pub async fn list_silences(
    store: &Store,
    caller: &Principal,
    req: pb::ListSilencesRequest,
) -> Result<Response<pb::ListSilencesResponse>, Status> {
    let silences = store
        .silences(caller.tenant_id, req.include_ended)
        .await
        .map_err(from_store)?;
    Ok(Response::new(pb::ListSilencesResponse {
        silences: silences.iter().map(silence_to_pb).collect(),
    }))
}

/// `Admin.ExpireSilence`.
pub async fn expire_silence(
    store: &Store,
    caller: &Principal,
    req: pb::ExpireSilenceRequest,
) -> Result<Response<pb::ExpireSilenceResponse>, Status> {
    let id = super::request::positive_id("silence_id", "silence", &req.silence_id)?;
    let silence = store
        .expire_silence(caller.tenant_id, id)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, silence = id, "silence expired");
    Ok(Response::new(pb::ExpireSilenceResponse {
        silence: Some(silence_to_pb(&silence)),
    }))
}
