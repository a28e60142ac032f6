//! Events as received and as stored, batches and what became of them,
//! the reasons an event is refused, and the outcome counters.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::TenantId;

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
