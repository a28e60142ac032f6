//! Conversions between the protobuf messages of `pulsyon.v1` and the domain.
//!
//! Pure functions: no I/O, no database, no policy beyond the shape of the data.

use time::OffsetDateTime;

use crate::{
    domain::{ApiKeyInfo, Event, RawEvent, RejectReason, Role, Scope, Tenant, UserInfo},
    proto::v1 as pb,
};

/// A domain time as a protobuf `Timestamp`.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// A protobuf scope as a domain scope; `None` for `SCOPE_UNSPECIFIED` and unknown values.
pub fn scope_from_pb(value: i32) -> Option<Scope> {
    match pb::Scope::try_from(value).ok()? {
        pb::Scope::Ingest => Some(Scope::Ingest),
        pb::Scope::Read => Some(Scope::Read),
        pb::Scope::Admin => Some(Scope::Admin),
        pb::Scope::Unspecified => None,
    }
}

/// A domain scope as a protobuf enum value.
pub fn scope_to_pb(scope: Scope) -> i32 {
    match scope {
        Scope::Ingest => pb::Scope::Ingest as i32,
        Scope::Read => pb::Scope::Read as i32,
        Scope::Admin => pb::Scope::Admin as i32,
    }
}

/// A stored key as the protobuf `ApiKey` (never with its secret).
pub fn api_key(key: &ApiKeyInfo) -> pb::ApiKey {
    pb::ApiKey {
        key_id: key.key_id.to_string(),
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        scopes: key.scopes.iter().copied().map(scope_to_pb).collect(),
        created_at: Some(timestamp(key.created_at)),
        last_used_at: key.last_used_at.map(timestamp),
        revoked_at: key.revoked_at.map(timestamp),
        tenant: key.tenant_name.clone(),
    }
}

/// A user role from its protobuf value; `None` for unspecified or unknown.
pub fn role_from_pb(value: i32) -> Option<Role> {
    match pb::UserRole::try_from(value).ok()? {
        pb::UserRole::Viewer => Some(Role::Viewer),
        pb::UserRole::Responder => Some(Role::Responder),
        pb::UserRole::Admin => Some(Role::Admin),
        pb::UserRole::Unspecified => None,
    }
}

/// A user as the protobuf `User`.
pub fn user(u: &UserInfo) -> pb::User {
    pb::User {
        user_id: u.user_id.to_string(),
        name: u.name.clone(),
        role: match u.role {
            Role::Viewer => pb::UserRole::Viewer,
            Role::Responder => pb::UserRole::Responder,
            Role::Admin => pb::UserRole::Admin,
        } as i32,
        created_at: Some(timestamp(u.created_at)),
        disabled_at: u.disabled_at.map(timestamp),
    }
}

/// A tenant as the protobuf `Tenant`.
pub fn tenant(t: &Tenant) -> pb::Tenant {
    pb::Tenant {
        name: t.name.clone(),
        created_at: Some(timestamp(t.created_at)),
    }
}

/// A raw event as the contract's event (how a door that is not
/// `StreamEvents` keeps what it received as a dead letter).
pub fn raw_to_pb(e: &RawEvent) -> pb::Event {
    pb::Event {
        event_id: e.event_id.clone(),
        time: e
            .time
            .map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        service: e.service.clone(),
        endpoint: e.endpoint.clone(),
        method: e.method.clone(),
        status_code: e.status_code,
        latency_ms: e.latency_ms,
        trace_id: e.trace_id.clone(),
        request_id: e.request_id.clone(),
        attributes: e.attributes.iter().cloned().collect(),
        environment: e.environment.clone(),
        release: e.release.clone(),
        host: e.host.clone(),
        request_bytes: e.request_bytes,
        response_bytes: e.response_bytes,
    }
}

/// A received protobuf event as a raw domain event; `encoded_len` is its wire size.
pub fn raw_event(e: pb::Event, encoded_len: usize) -> RawEvent {
    RawEvent {
        event_id: e.event_id,
        time: e.time.map(|t| (t.seconds, t.nanos)),
        service: e.service,
        endpoint: e.endpoint,
        method: e.method,
        status_code: e.status_code,
        latency_ms: e.latency_ms,
        trace_id: e.trace_id,
        request_id: e.request_id,
        attributes: e.attributes.into_iter().collect(),
        environment: e.environment,
        release: e.release,
        host: e.host,
        request_bytes: e.request_bytes,
        response_bytes: e.response_bytes,
        encoded_len,
    }
}

/// A stored event as the protobuf event.
pub fn event_to_pb(e: &Event) -> pb::Event {
    pb::Event {
        event_id: e.event_id.to_string(),
        time: Some(timestamp(e.time)),
        service: e.service.clone(),
        endpoint: e.endpoint.clone(),
        method: e.method.clone(),
        status_code: e.status_code as u32,
        latency_ms: e.latency_ms,
        trace_id: e.trace_id.clone(),
        request_id: e.request_id.clone(),
        attributes: e.attributes.iter().cloned().collect(),
        environment: e.environment.clone(),
        release: e.release.clone(),
        host: e.host.clone(),
        request_bytes: e.request_bytes as u64,
        response_bytes: e.response_bytes as u64,
    }
}

/// A domain reject reason as the protobuf enum value.
pub fn reject_reason_to_pb(reason: RejectReason) -> i32 {
    use pb::RejectReason as P;
    (match reason {
        RejectReason::InvalidEventId => P::InvalidEventId,
        RejectReason::MissingService => P::MissingService,
        RejectReason::InvalidStatusCode => P::InvalidStatusCode,
        RejectReason::InvalidLatency => P::InvalidLatency,
        RejectReason::MissingTime => P::MissingTime,
        RejectReason::TimeTooOld => P::TimeTooOld,
        RejectReason::TimeInFuture => P::TimeInFuture,
        RejectReason::FieldTooLong => P::FieldTooLong,
        RejectReason::TooManyAttributes => P::TooManyAttributes,
        RejectReason::EventTooLarge => P::EventTooLarge,
        RejectReason::NoPartition => P::NoPartition,
        RejectReason::CardinalityLimit => P::CardinalityLimit,
        RejectReason::InvalidText => P::InvalidText,
        RejectReason::InvalidTime => P::InvalidTime,
        RejectReason::MalformedEvent => P::MalformedEvent,
        RejectReason::PoisonBatch => P::PoisonBatch,
    }) as i32
}

/// A protobuf reject reason as the domain one; `None` for unspecified or unknown values.
pub fn reject_reason_from_pb(value: i32) -> Option<RejectReason> {
    RejectReason::ALL
        .into_iter()
        .find(|r| reject_reason_to_pb(*r) == value)
}

/// A protobuf timestamp as a domain time; `None` if out of range.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()?
        .replace_nanosecond(nanos)
        .ok()
}

/// Limits as sent to a client: every field set.
pub fn limits_to_pb(l: &crate::domain::TenantLimits) -> pb::TenantLimits {
    pb::TenantLimits {
        events_per_second: Some(l.events_per_sec),
        events_burst: Some(l.events_burst),
        bytes_per_second: Some(l.bytes_per_sec),
        bytes_burst: Some(l.bytes_burst),
        max_streams: Some(l.max_streams),
        max_services: Some(l.max_services),
        max_endpoints_per_service: Some(l.max_endpoints),
        max_query_range: Some(duration_to_pb(l.max_query_range)),
        max_page_size: Some(l.max_page_size),
    }
}

/// Overrides as sent to a client: only the fields set.
pub fn overrides_to_pb(o: &crate::domain::LimitOverrides) -> pb::TenantLimits {
    pb::TenantLimits {
        events_per_second: o.events_per_sec,
        events_burst: o.events_burst,
        bytes_per_second: o.bytes_per_sec,
        bytes_burst: o.bytes_burst,
        max_streams: o.max_streams,
        max_services: o.max_services,
        max_endpoints_per_service: o.max_endpoints,
        max_query_range: o.max_query_range.map(duration_to_pb),
        max_page_size: o.max_page_size,
    }
}

fn duration_to_pb(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A batch's ack as the contract's.
pub fn ack_to_pb(a: &crate::ingest::admit::Ack) -> pb::BatchAck {
    use crate::ingest::admit::Durability;
    pb::BatchAck {
        seq: a.seq,
        accepted: a.accepted,
        duplicates: a.duplicates,
        rejections: a
            .rejections
            .iter()
            .map(|r| pb::EventRejection {
                index: r.index,
                reason: reject_reason_to_pb(r.reason),
                message: r.message.clone(),
            })
            .collect(),
        durability: match a.durability {
            Durability::Committed => pb::Durability::Committed as i32,
            Durability::Buffered => pb::Durability::Buffered as i32,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unspecified_is_refused() {
        for scope in Scope::ALL {
            assert_eq!(scope_from_pb(scope_to_pb(scope)), Some(scope));
        }
        assert_eq!(scope_from_pb(0), None);
        assert_eq!(scope_from_pb(99), None);
    }

    #[test]
    fn reject_reasons_map_one_to_one() {
        for reason in RejectReason::ALL {
            assert_eq!(
                reject_reason_from_pb(reject_reason_to_pb(reason)),
                Some(reason)
            );
        }
        assert_eq!(reject_reason_from_pb(0), None);
    }

    #[test]
    fn timestamps_keep_nanoseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let ts = timestamp(t);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_456_789));
    }
}
