//! The vocabulary of Pulsyon: tenants, scopes, principals and API-key secrets.
//!
//! Pure types and logic. This module must never depend on tonic, prost, sqlx or
//! redis: every other layer maps its own types to these.

use std::fmt;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Database identifier of a tenant. Every stored row carries one; every query
/// filters by the caller's, taken from its API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send events.
    Ingest,
    /// Read data and handle incidents.
    Read,
    /// Manage keys and settings.
    Admin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    /// The name used in the database, on the command line and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Parses one scope name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Parses a comma-separated list such as `ingest,read`; sorted, without repeats.
    pub fn parse_list(list: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::parse(name).ok_or_else(|| {
                format!("unknown scope {name:?} (expected ingest, read or admin)")
            })?;
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err("at least one scope is needed (ingest, read, admin)".into());
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of an RPC: the tenant and scopes of its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every query of this caller is confined to.
    pub tenant_id: TenantId,
    /// The tenant's name, for messages and logs.
    pub tenant_name: String,
    /// The key that authenticated the call.
    pub key_id: uuid::Uuid,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the caller holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Database identifier.
    pub id: TenantId,
    /// Unique name.
    pub name: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// An API key as stored: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Identifier, used to revoke it.
    pub key_id: uuid::Uuid,
    /// Name of the tenant it belongs to.
    pub tenant_name: String,
    /// Label chosen at creation.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last used, to the minute.
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Whether `name` is a valid tenant name: 1 to 63 of `a-z 0-9 _ -`, starting
/// with a letter or digit (the database checks the same).
pub fn valid_tenant_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
        && !bytes[0].is_ascii_uppercase()
}

/// The secret of an API key as shown once to its owner: `pls_` and 64 hex
/// digits (256 random bits). Never logged; only its SHA-256 is stored.
pub struct ApiKeySecret(String);

/// Prefix of every secret, so that a leaked key is easy to recognise and scan for.
pub const SECRET_PREFIX: &str = "pls_";
/// How many characters of a secret are kept to recognise it (`pls_` + 8 hex digits).
pub const DISPLAY_PREFIX_LEN: usize = 12;

impl ApiKeySecret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let mut text = String::with_capacity(SECRET_PREFIX.len() + 64);
        text.push_str(SECRET_PREFIX);
        for b in bytes {
            text.push_str(&format!("{b:02x}"));
        }
        Ok(ApiKeySecret(text))
    }

    /// The secret itself, to show to its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first characters, safe to store and show.
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LEN]
    }

    /// The digest the database keeps.
    pub fn sha256(&self) -> [u8; 32] {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

/// SHA-256 of a presented secret, to look it up.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// An event as received, before validation: every field as the client sent it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawEvent {
    /// Client-made id, expected to be a UUID.
    pub event_id: String,
    /// Seconds and nanoseconds since the Unix epoch; `None` when missing.
    pub time: Option<(i64, i32)>,
    /// Service name.
    pub service: String,
    /// Route template.
    pub endpoint: String,
    /// Method or operation.
    pub method: String,
    /// HTTP status code.
    pub status_code: u32,
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Trace id.
    pub trace_id: String,
    /// Request id.
    pub request_id: String,
    /// Free-form attributes, in the order received.
    pub attributes: Vec<(String, String)>,
    /// Deployment environment.
    pub environment: String,
    /// Service version.
    pub release: String,
    /// Serving instance.
    pub host: String,
    /// Request body size.
    pub request_bytes: u64,
    /// Response body size.
    pub response_bytes: u64,
    /// Size of the event as encoded on the wire, for the per-event limit.
    pub encoded_len: usize,
}

/// A valid event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Client-made id.
    pub event_id: uuid::Uuid,
    /// When the request started.
    pub time: OffsetDateTime,
    /// Service name (not empty).
    pub service: String,
    /// Route template.
    pub endpoint: String,
    /// Method or operation.
    pub method: String,
    /// HTTP status code, 100 to 599.
    pub status_code: i16,
    /// Latency in milliseconds, finite and not negative.
    pub latency_ms: f64,
    /// Trace id ('' when none).
    pub trace_id: String,
    /// Request id ('' when none).
    pub request_id: String,
    /// Attributes, sorted by key, keys unique.
    pub attributes: Vec<(String, String)>,
    /// Deployment environment.
    pub environment: String,
    /// Service version.
    pub release: String,
    /// Serving instance.
    pub host: String,
    /// Request body size.
    pub request_bytes: i64,
    /// Response body size.
    pub response_bytes: i64,
}

/// Why an event was refused. Stored by name in `failed_events.reason` and
/// `ingest_outcomes.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// `event_id` is empty or not a UUID.
    InvalidEventId,
    /// `service` is empty.
    MissingService,
    /// `status_code` is outside 100..=599.
    InvalidStatusCode,
    /// `latency_ms` is negative, NaN or infinite.
    InvalidLatency,
    /// `time` is missing or malformed.
    MissingTime,
    /// `time` is older than the retention.
    TimeTooOld,
    /// `time` is too far in the future.
    TimeInFuture,
    /// A string field is longer than its limit.
    FieldTooLong,
    /// Too many attributes, or one too long.
    TooManyAttributes,
    /// The encoded event is larger than the limit.
    EventTooLarge,
    /// No partition may hold the event.
    NoPartition,
    /// The tenant's cardinality limit was reached.
    CardinalityLimit,
    /// A string holds a character PostgreSQL cannot store (NUL).
    InvalidText,
}

impl RejectReason {
    /// Every reason, in a stable order.
    pub const ALL: [RejectReason; 13] = [
        RejectReason::InvalidEventId,
        RejectReason::MissingService,
        RejectReason::InvalidStatusCode,
        RejectReason::InvalidLatency,
        RejectReason::MissingTime,
        RejectReason::TimeTooOld,
        RejectReason::TimeInFuture,
        RejectReason::FieldTooLong,
        RejectReason::TooManyAttributes,
        RejectReason::EventTooLarge,
        RejectReason::NoPartition,
        RejectReason::CardinalityLimit,
        RejectReason::InvalidText,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidEventId => "invalid_event_id",
            RejectReason::MissingService => "missing_service",
            RejectReason::InvalidStatusCode => "invalid_status_code",
            RejectReason::InvalidLatency => "invalid_latency",
            RejectReason::MissingTime => "missing_time",
            RejectReason::TimeTooOld => "time_too_old",
            RejectReason::TimeInFuture => "time_in_future",
            RejectReason::FieldTooLong => "field_too_long",
            RejectReason::TooManyAttributes => "too_many_attributes",
            RejectReason::EventTooLarge => "event_too_large",
            RejectReason::NoPartition => "no_partition",
            RejectReason::CardinalityLimit => "cardinality_limit",
            RejectReason::InvalidText => "invalid_text",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// One refused event of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index of the event in its batch.
    pub index: u32,
    /// Machine-readable reason.
    pub reason: RejectReason,
    /// Explanation naming the field.
    pub message: String,
}

/// A refused event kept in the dead-letter store.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Index of the event in its batch.
    pub index: u32,
    /// Why it was refused.
    pub reason: RejectReason,
    /// The message sent back to the client.
    pub message: String,
    /// The event as received, encoded as a `pulsyon.v1.Event`.
    pub payload: Vec<u8>,
}

/// A validated batch on its way to the database.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchWrite {
    /// Whose events these are.
    pub tenant_id: TenantId,
    /// The producer that sent the batch.
    pub producer_id: String,
    /// The batch's sequence number within the producer.
    pub seq: i64,
    /// When the server received it.
    pub received_at: OffsetDateTime,
    /// The valid events.
    pub events: Vec<Event>,
    /// The refused ones.
    pub rejected: Vec<DeadLetter>,
}

impl BatchWrite {
    /// The deduplication key of the batch.
    pub fn key(&self) -> (TenantId, &str, i64) {
        (self.tenant_id, &self.producer_id, self.seq)
    }
}

/// A dead letter as listed back to its tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedEvent {
    /// Row id, for pagination.
    pub failed_id: i64,
    /// When the server received it.
    pub received_at: OffsetDateTime,
    /// Producer of its batch.
    pub producer_id: String,
    /// Sequence number of its batch.
    pub batch_seq: i64,
    /// Index in its batch.
    pub index: u32,
    /// Why it was refused (`None` for a name this version does not know).
    pub reason: Option<RejectReason>,
    /// The message sent to the client.
    pub message: String,
    /// The encoded `pulsyon.v1.Event` as received.
    pub payload: Vec<u8>,
}

/// One outcome counter of one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    /// Start of the minute.
    pub minute: OffsetDateTime,
    /// received, stored, duplicate, rejected or throttled.
    pub outcome: String,
    /// The reject reason for `rejected`, else empty.
    pub reason: String,
    /// How many events.
    pub count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_round_trip_by_name() {
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(RejectReason::parse("nope"), None);
    }

    #[test]
    fn scope_lists_parse_sorted_and_deduplicated() {
        assert_eq!(
            Scope::parse_list("read, ingest,read").unwrap(),
            vec![Scope::Ingest, Scope::Read]
        );
        assert!(Scope::parse_list("").is_err());
        let err = Scope::parse_list("ingest,write").unwrap_err();
        assert!(err.contains("\"write\""), "{err}");
    }

    #[test]
    fn tenant_names_follow_the_documented_rule() {
        for ok in ["default", "a", "team-1", "x_y", &"a".repeat(63)] {
            assert!(valid_tenant_name(ok), "{ok}");
        }
        for bad in ["", "-a", "_a", "Team", "a b", "é", &"a".repeat(64)] {
            assert!(!valid_tenant_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = ApiKeySecret::generate().unwrap();
        let b = ApiKeySecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 4 + 64);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(a.sha256(), hash_secret(a.expose()));
        assert!(!format!("{a:?}").contains(&a.expose()[DISPLAY_PREFIX_LEN..]));
    }
}
