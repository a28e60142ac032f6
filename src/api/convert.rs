//! Conversions between the protobuf messages of `pulsyon.v1` and the domain.
//!
//! Pure functions: no I/O, no database, no policy beyond the shape of the data.

use time::OffsetDateTime;

use crate::{
    domain::{ApiKeyInfo, Scope, Tenant},
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

/// A tenant as the protobuf `Tenant`.
pub fn tenant(t: &Tenant) -> pb::Tenant {
    pb::Tenant {
        name: t.name.clone(),
        created_at: Some(timestamp(t.created_at)),
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
    fn timestamps_keep_nanoseconds() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let ts = timestamp(t);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_456_789));
    }
}
