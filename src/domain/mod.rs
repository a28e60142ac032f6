//! The vocabulary of Pulsyon: tenants, scopes, principals, API-key secrets,
//! events and the limits a tenant works within; incidents and alerts
//! (`incident`); the rules' kinds, severities and settings (`rules`).
//!
//! Pure types and logic. This module must never depend on tonic, prost, sqlx or
//! redis, nor on any other module of the crate: every other layer maps its
//! own types to these.

/// An enum whose values have stored names: `as_str`, `parse` (an unknown
/// name is `None`, never a default) and `ALL`, from one list.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; <[&str]>::len(&[$($text),+])] = [$($name::$variant),+];

            /// The name as stored, logged and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value of a stored name; `None` for an unknown one.
            pub fn parse(name: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_str() == name)
            }
        }
    };
}

pub mod incident;
pub mod rules;

use std::{fmt, time::Duration};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Database identifier of a tenant. Every stored row carries one; every query
/// filters by the caller's, taken from its API key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

named_enum! {
/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send events.
    Ingest = "ingest",
    /// Read data and handle incidents.
    Read = "read",
    /// Manage keys and settings.
    Admin = "admin",
}
}

impl Scope {
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
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The tenant every query of this caller is confined to.
    pub tenant_id: TenantId,
    /// The tenant's name, for messages and logs.
    pub tenant_name: String,
    /// The key that authenticated the call.
    pub key_id: uuid::Uuid,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// The limits in force for the tenant (the server's defaults with the
    /// tenant's overrides), as of the key lookup.
    pub limits: TenantLimits,
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

named_enum! {
/// What a person (a user of the dashboard) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads services, incidents and ingest figures.
    Viewer = "viewer",
    /// Also acknowledges and resolves incidents.
    Responder = "responder",
    /// Also manages keys, users, limits and rules.
    Admin = "admin",
}
}

/// A person of a tenant who logs in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Identifier.
    pub user_id: uuid::Uuid,
    /// Login name, unique in the tenant.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created_at: OffsetDateTime,
    /// When the user was disabled; a disabled user cannot log in.
    pub disabled_at: Option<OffsetDateTime>,
}

/// Whether `name` is a valid user name: 1 to 64 of a-z, 0-9, '.', '_', '-'
/// and '@', starting with a letter or digit (an e-mail address fits).
pub fn valid_user_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
        })
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

named_enum! {
/// Why an event was refused. Stored by name in `failed_events.reason` and
/// `ingest_outcomes.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// `event_id` is empty or not a UUID.
    InvalidEventId = "invalid_event_id",
    /// `service` is empty.
    MissingService = "missing_service",
    /// `status_code` is outside 100..=599.
    InvalidStatusCode = "invalid_status_code",
    /// `latency_ms` is negative, NaN or infinite.
    InvalidLatency = "invalid_latency",
    /// `time` is missing.
    MissingTime = "missing_time",
    /// `time` is outside the protobuf range or has nanos outside 0..1e9.
    InvalidTime = "invalid_time",
    /// `time` is older than the retention.
    TimeTooOld = "time_too_old",
    /// `time` is too far in the future.
    TimeInFuture = "time_in_future",
    /// A string field is longer than its limit.
    FieldTooLong = "field_too_long",
    /// Too many attributes, or one too long.
    TooManyAttributes = "too_many_attributes",
    /// The encoded event is larger than the limit.
    EventTooLarge = "event_too_large",
    /// No partition may hold the event.
    NoPartition = "no_partition",
    /// The tenant's cardinality limit was reached.
    CardinalityLimit = "cardinality_limit",
    /// A string holds a character PostgreSQL cannot store (NUL) or is not UTF-8.
    InvalidText = "invalid_text",
    /// The event's bytes are not a decodable `pulsyon.v1.Event`.
    MalformedEvent = "malformed_event",
    /// The batch waited in the ingest buffer and could not be committed
    /// after every delivery; its record is the payload.
    PoisonBatch = "poison_batch",
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
    /// The event's bytes as received (an encoded `pulsyon.v1.Event`, or what
    /// could not be decoded as one).
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
    /// How many of `events` went to the cardinality overflow bucket.
    pub overflowed: usize,
    /// SHA-256 of the ids and times of every event of the batch as sent, in
    /// order ([`batch_digest`]): a resent (producer, seq) is the same batch
    /// only when its digest is the same.
    pub digest: [u8; 32],
}

impl BatchWrite {
    /// The deduplication key of the batch.
    pub fn key(&self) -> (TenantId, &str, i64) {
        (self.tenant_id, &self.producer_id, self.seq)
    }
}

/// What happened to each batch of a write, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFate {
    /// The batch's events were processed: every valid one is stored now but
    /// `duplicates`, whose (tenant, event_id, time) was stored before (or
    /// earlier in the same write); its rejected events are dead letters.
    Stored {
        /// Valid events not stored again.
        duplicates: u32,
    },
    /// The same batch (tenant, producer, seq and digest) was processed
    /// before; nothing was written.
    Duplicate,
    /// Appended to the buffer between processes; a writer commits it later
    /// (never a writer's answer).
    Buffered,
}

impl BatchFate {
    /// A batch stored whole.
    pub const NEW: BatchFate = BatchFate::Stored { duplicates: 0 };
}

/// The digest of a batch as sent: the id and time of each event in order
/// (the bytes of one that could not be decoded), SHA-256. Two sends of one
/// (producer, seq) are the same batch exactly when their digests are equal.
#[derive(Debug, Clone, Default)]
pub struct BatchDigest(Sha256);

impl BatchDigest {
    /// Adds a decodable event.
    pub fn event(&mut self, event_id: &str, time: Option<(i64, i32)>) {
        self.0.update([1u8]);
        self.0.update((event_id.len() as u64).to_le_bytes());
        self.0.update(event_id.as_bytes());
        match time {
            Some((seconds, nanos)) => {
                self.0.update([1u8]);
                self.0.update(seconds.to_le_bytes());
                self.0.update(nanos.to_le_bytes());
            }
            None => self.0.update([0u8]),
        }
    }

    /// Adds an event whose bytes could not be decoded.
    pub fn undecodable(&mut self, bytes: &[u8]) {
        self.0.update([2u8]);
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
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
    /// The event's bytes as received, or their first bytes when listed cut
    /// short (`size` says how many there are).
    pub payload: Vec<u8>,
    /// Size of the whole payload, in bytes.
    pub size: i64,
}

named_enum! {
/// What became of a received event, as the outcome counters keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// It arrived (every event counts here once, whatever became of it).
    Received = "received",
    /// Stored now (reason `overflow` when its service or endpoint went to
    /// the overflow bucket).
    Stored = "stored",
    /// Stored before: not stored again.
    Duplicate = "duplicate",
    /// Refused with a reason and kept as a dead letter.
    Rejected = "rejected",
    /// Refused whole by a limit (reason: the limit).
    Throttled = "throttled",
    /// Not a request, left out by its door (an OTLP span that is not a
    /// server span; reason: why).
    Filtered = "filtered",
}
}

/// One outcome counter of one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    /// Start of the minute.
    pub minute: OffsetDateTime,
    /// What became of them.
    pub outcome: Outcome,
    /// The reject reason for `rejected`, else empty.
    pub reason: String,
    /// How many events.
    pub count: i64,
}

/// Highest page size an override may set (QueryEvents, ListFailedEvents...).
pub const MAX_PAGE_SIZE_CEILING: u32 = 10_000;
/// Longest query range an override may set.
pub const MAX_QUERY_RANGE_CEILING: Duration = Duration::from_secs(31 * 86_400);

/// The limits in force for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantLimits {
    /// Sustained events per second.
    pub events_per_sec: f64,
    /// Events that may arrive at once above the sustained rate.
    pub events_burst: u64,
    /// Sustained encoded bytes per second.
    pub bytes_per_sec: f64,
    /// Bytes that may arrive at once above the sustained rate.
    pub bytes_burst: u64,
    /// Concurrent `StreamEvents` streams per server process.
    pub max_streams: u32,
    /// Distinct services; further ones go to the overflow bucket.
    pub max_services: u32,
    /// Distinct endpoints per service; further ones go to the overflow bucket.
    pub max_endpoints: u32,
    /// Longest time range of one query.
    pub max_query_range: Duration,
    /// Largest page of one query.
    pub max_page_size: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            events_per_sec: 100_000.0,
            events_burst: 200_000,
            bytes_per_sec: (64 << 20) as f64,
            bytes_burst: 128 << 20,
            max_streams: 64,
            max_services: 1_000,
            max_endpoints: 500,
            max_query_range: Duration::from_secs(7 * 86_400),
            max_page_size: 1_000,
        }
    }
}

/// A tenant's overrides of the defaults; `None` follows the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitOverrides {
    /// See [`TenantLimits::events_per_sec`].
    pub events_per_sec: Option<f64>,
    /// See [`TenantLimits::events_burst`].
    pub events_burst: Option<u64>,
    /// See [`TenantLimits::bytes_per_sec`].
    pub bytes_per_sec: Option<f64>,
    /// See [`TenantLimits::bytes_burst`].
    pub bytes_burst: Option<u64>,
    /// See [`TenantLimits::max_streams`].
    pub max_streams: Option<u32>,
    /// See [`TenantLimits::max_services`].
    pub max_services: Option<u32>,
    /// See [`TenantLimits::max_endpoints`].
    pub max_endpoints: Option<u32>,
    /// See [`TenantLimits::max_query_range`].
    pub max_query_range: Option<Duration>,
    /// See [`TenantLimits::max_page_size`].
    pub max_page_size: Option<u32>,
}

impl LimitOverrides {
    /// Checks each set value; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let rate = |name, v: Option<f64>| match v {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                Err((name, "must be a number above 0".to_owned()))
            }
            _ => Ok(()),
        };
        rate("events_per_second", self.events_per_sec)?;
        rate("bytes_per_second", self.bytes_per_sec)?;
        for (name, v) in [
            ("events_burst", self.events_burst),
            ("bytes_burst", self.bytes_burst),
        ] {
            if v == Some(0) || v.is_some_and(|v| v > i64::MAX as u64) {
                return Err((name, "must be at least 1".to_owned()));
            }
        }
        for (name, v) in [
            ("max_streams", self.max_streams),
            ("max_services", self.max_services),
            ("max_endpoints_per_service", self.max_endpoints),
        ] {
            if v == Some(0) || v.is_some_and(|v| v > i32::MAX as u32) {
                return Err((name, "must be at least 1".to_owned()));
            }
        }
        if let Some(n) = self.max_page_size
            && !(1..=MAX_PAGE_SIZE_CEILING).contains(&n)
        {
            return Err((
                "max_page_size",
                format!("must be 1 to {MAX_PAGE_SIZE_CEILING}"),
            ));
        }
        if let Some(d) = self.max_query_range
            && !(Duration::from_secs(60)..=MAX_QUERY_RANGE_CEILING).contains(&d)
        {
            return Err(("max_query_range", "must be 1 minute to 31 days".to_owned()));
        }
        Ok(())
    }
}

impl TenantLimits {
    /// These limits with `o` applied on top.
    pub fn with(&self, o: &LimitOverrides) -> TenantLimits {
        TenantLimits {
            events_per_sec: o.events_per_sec.unwrap_or(self.events_per_sec),
            events_burst: o.events_burst.unwrap_or(self.events_burst),
            bytes_per_sec: o.bytes_per_sec.unwrap_or(self.bytes_per_sec),
            bytes_burst: o.bytes_burst.unwrap_or(self.bytes_burst),
            max_streams: o.max_streams.unwrap_or(self.max_streams),
            max_services: o.max_services.unwrap_or(self.max_services),
            max_endpoints: o.max_endpoints.unwrap_or(self.max_endpoints),
            max_query_range: o.max_query_range.unwrap_or(self.max_query_range),
            max_page_size: o.max_page_size.unwrap_or(self.max_page_size),
        }
    }
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

    #[test]
    fn overrides_apply_on_top_and_are_validated() {
        let o = LimitOverrides {
            events_per_sec: Some(5.0),
            max_page_size: Some(20),
            ..LimitOverrides::default()
        };
        o.validate().unwrap();
        let l = TenantLimits::default().with(&o);
        assert_eq!(l.events_per_sec, 5.0);
        assert_eq!(l.max_page_size, 20);
        assert_eq!(l.events_burst, TenantLimits::default().events_burst);
        for (bad, field) in [
            (
                LimitOverrides {
                    events_per_sec: Some(0.0),
                    ..Default::default()
                },
                "events_per_second",
            ),
            (
                LimitOverrides {
                    bytes_per_sec: Some(f64::NAN),
                    ..Default::default()
                },
                "bytes_per_second",
            ),
            (
                LimitOverrides {
                    max_streams: Some(0),
                    ..Default::default()
                },
                "max_streams",
            ),
            (
                LimitOverrides {
                    max_page_size: Some(10_001),
                    ..Default::default()
                },
                "max_page_size",
            ),
            (
                LimitOverrides {
                    max_query_range: Some(Duration::from_secs(1)),
                    ..Default::default()
                },
                "max_query_range",
            ),
        ] {
            assert_eq!(bad.validate().unwrap_err().0, field);
        }
    }
}
