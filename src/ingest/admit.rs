//! The door-neutral ingest pipeline: a batch as any door hands it over
//! (`Incoming`) is checked (`validate`), held to its tenant's limits
//! (`limits`) and admitted (`Admission`); the returned `PendingAck` yields
//! the batch's `Ack` once its events are durable. Every door (the gRPC
//! `Ingest` service today, OTLP next) converts its wire format to
//! `Incoming` and renders the `Ack` or `Refused` in its own; none of them
//! validates, limits or admits on its own.
//!
//! This module never answers a batch before the admission behind it says
//! the batch is durable, and never drops an event without a reason: each is
//! accepted, a duplicate, or rejected with its index (and kept as a dead
//! letter with its bytes).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use time::OffsetDateTime;

use super::{
    Admission, AdmitError, Reply, Throttles, WriteError,
    limits::{Guards, StreamSlot, ThrottleCause, Throttled},
    validate,
};
use crate::{
    domain::{
        BatchDigest, BatchFate, BatchWrite, DeadLetter, Principal, RawEvent, RejectReason,
        Rejection,
    },
    store::StoreError,
};

/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Longest producer id.
pub const MAX_PRODUCER_ID: usize = 128;
/// When a batch refused because the database was busy may come back.
const DATABASE_BUSY_RETRY: Duration = Duration::from_millis(200);

/// One event as a door hands it over.
// Nearly every event is `Decoded`: boxing it would cost an allocation per
// event on the hot path to save space on the rare undecodable one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Arriving {
    /// Decoded by the door.
    Decoded {
        /// The event's fields, unchecked (`encoded_len`: its size as received).
        raw: RawEvent,
        /// What a dead letter keeps of it, if it is rejected.
        payload: Payload,
    },
    /// The door could not decode it (for example a string that is not UTF-8).
    Undecodable {
        /// Why.
        reason: RejectReason,
        /// Explanation.
        message: String,
        /// Its bytes as received.
        payload: Bytes,
    },
}

/// What a dead letter keeps of a decoded event.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Its bytes as received (a door whose wire format is the event's).
    Received(Bytes),
    /// How to make them from the event, called only for a rejected one (a
    /// door that maps another format: encoding every event would cost
    /// every event what only the rejected need).
    Made(fn(&RawEvent) -> Vec<u8>),
}

/// A batch as a door hands it over.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The producer's id (one per SDK client instance).
    pub producer_id: String,
    /// The producer's batch number.
    pub seq: u64,
    /// The events, in order.
    pub events: Vec<Arriving>,
}

/// How durable an acknowledged batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Committed in PostgreSQL.
    Committed,
    /// In the buffer between processes (Redis); a writer commits it later.
    Buffered,
}

/// The answer to one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// The batch's `seq`.
    pub seq: u64,
    /// Events stored now.
    pub accepted: u32,
    /// Events stored before (the same batch or the same events).
    pub duplicates: u32,
    /// Events refused, each with its index and reason.
    pub rejections: Vec<Rejection>,
    /// How durable it is.
    pub durability: Durability,
}

/// Why a batch was refused whole (nothing of it is stored).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The batch itself is malformed; `field` names what.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the contract names it.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// One of the tenant's limits; retry after the delay.
    #[error("{message}")]
    Throttled {
        /// Which limit.
        cause: ThrottleCause,
        /// When the same batch would pass (at least 10 ms).
        retry_after: Duration,
        /// What happened, naming the tenant and the limit.
        message: String,
    },
    /// The server cannot hold more now; retry after the delay.
    #[error("the server is overloaded")]
    Overloaded(Duration),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Where admitted batches go (the buffer) cannot be reached; retry after the delay.
    #[error("the ingest buffer is unavailable")]
    Unavailable(Duration),
    /// Reading what a limit needs failed.
    #[error("{0}")]
    Store(StoreError),
}

/// Why an admitted batch got no ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The write failed (the database stayed unavailable, or another reason).
    #[error("{0}")]
    Write(WriteError),
    /// The writer stopped before answering (shutdown).
    #[error("the writer stopped")]
    WriterStopped,
}

/// An admitted batch's answer, to come.
#[derive(Debug)]
pub struct PendingAck {
    seq: u64,
    events: usize,
    rejections: Vec<Rejection>,
    reply: Option<Reply>,
}

impl PendingAck {
    /// Waits until the batch is durable (or its write failed).
    pub async fn wait(self) -> Result<Ack, AckError> {
        let fate = match self.reply {
            None => BatchFate::NEW,
            Some(reply) => reply
                .await
                .map_err(|_| AckError::WriterStopped)?
                .map_err(AckError::Write)?,
        };
        Ok(ack(self.seq, self.events, self.rejections, fate))
    }
}

/// The ack of a batch of `events` valid events once its fate is known.
fn ack(seq: u64, events: usize, rejections: Vec<Rejection>, fate: BatchFate) -> Ack {
    match fate {
        BatchFate::Stored { duplicates } => Ack {
            seq,
            accepted: events as u32 - duplicates,
            duplicates,
            rejections,
            durability: Durability::Committed,
        },
        // In the buffer: every valid event counts as accepted; a resent
        // batch or event is recognised when a writer commits it.
        BatchFate::Buffered => Ack {
            seq,
            accepted: events as u32,
            duplicates: 0,
            rejections,
            durability: Durability::Buffered,
        },
        // The same batch was processed before: its events were stored (or
        // dead-lettered) then, so all of them count as duplicates now.
        BatchFate::Duplicate => Ack {
            seq,
            accepted: 0,
            duplicates: (events + rejections.len()) as u32,
            rejections: Vec::new(),
            durability: Durability::Committed,
        },
    }
}

/// The pipeline every door calls. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Where admitted batches go.
    pub admission: Arc<dyn Admission>,
    /// Where refusals by a limit are counted.
    pub throttles: Throttles,
    /// Bounds on each event.
    pub bounds: Arc<validate::EventBounds>,
    /// Per-tenant rate, stream and cardinality limits.
    pub guards: Arc<Guards>,
}

impl Pipeline {
    /// A slot for one more open stream of the caller's tenant, or the
    /// refusal (held until the stream ends).
    pub async fn open_stream(&self, caller: &Principal) -> Result<StreamSlot, Refused> {
        self.guards
            .streams
            .open(caller.tenant_id, caller.limits.max_streams)
            .await
            .ok_or_else(|| {
                throttled(
                    caller,
                    Throttled {
                        cause: ThrottleCause::Streams,
                        retry_after: Duration::from_secs(1),
                    },
                )
            })
    }

    /// Checks, limits and admits one batch of `caller`'s tenant. The
    /// returned answer resolves once the batch is durable.
    pub async fn admit(&self, caller: &Principal, batch: Incoming) -> Result<PendingAck, Refused> {
        let seq = batch.seq;
        let Checked {
            batch: mut prepared,
            rejections,
            bytes,
        } = check(caller, batch, &self.bounds)?;
        self.guard(caller, &mut prepared, bytes).await?;
        let events = prepared.events.len();
        let reply = if prepared.events.is_empty() && prepared.rejected.is_empty() {
            None
        } else {
            Some(
                self.admission
                    .submit(prepared, bytes)
                    .await
                    .map_err(|e| match e {
                        AdmitError::Overloaded(delay) => Refused::Overloaded(delay),
                        AdmitError::ShuttingDown => Refused::ShuttingDown,
                        AdmitError::Unavailable(delay) => Refused::Unavailable(delay),
                    })?,
            )
        };
        Ok(PendingAck {
            seq,
            events,
            rejections,
            reply,
        })
    }

    /// Applies the tenant's limits: the rate budget (a refused batch is
    /// counted as throttled, whole), then the cardinality of services and
    /// endpoints.
    async fn guard(
        &self,
        caller: &Principal,
        batch: &mut BatchWrite,
        bytes: usize,
    ) -> Result<(), Refused> {
        let events = (batch.events.len() + batch.rejected.len()) as u64;
        if events == 0 {
            return Ok(());
        }
        if let Err(t) = self
            .guards
            .rates
            .check(caller.tenant_id, &caller.limits, events, bytes as u64)
            .await
        {
            self.throttles
                .count(caller.tenant_id, events as i64, t.cause);
            return Err(throttled(caller, t));
        }
        batch.overflowed = match self
            .guards
            .cardinality
            .admit(caller.tenant_id, &caller.limits, &mut batch.events)
            .await
        {
            Ok(overflowed) => overflowed,
            // The catalogue could not be read because every connection was
            // taken: a refusal like an overload, counted with its cause so
            // that the outcomes reconcile with what the client was told.
            Err(StoreError::Busy(_)) => {
                let t = Throttled {
                    cause: ThrottleCause::DatabaseBusy,
                    retry_after: DATABASE_BUSY_RETRY,
                };
                self.throttles
                    .count(caller.tenant_id, events as i64, t.cause);
                return Err(throttled(caller, t));
            }
            Err(err) => return Err(Refused::Store(err)),
        };
        Ok(())
    }
}

/// A refusal by one of the tenant's limits, with when to retry.
fn throttled(caller: &Principal, t: Throttled) -> Refused {
    let what = match t.cause {
        ThrottleCause::EventRate => format!(
            "tenant {} is over its rate of {} events/s (burst {})",
            caller.tenant_name, caller.limits.events_per_sec, caller.limits.events_burst
        ),
        ThrottleCause::ByteRate => format!(
            "tenant {} is over its rate of {} bytes/s (burst {})",
            caller.tenant_name, caller.limits.bytes_per_sec, caller.limits.bytes_burst
        ),
        ThrottleCause::Streams => format!(
            "tenant {} already has {} ingest streams open on this server",
            caller.tenant_name, caller.limits.max_streams
        ),
        ThrottleCause::Overload => "the server is overloaded".to_owned(),
        ThrottleCause::DatabaseBusy => format!(
            "database busy: no connection was free to read tenant {}'s services for its limits",
            caller.tenant_name
        ),
    };
    // Never ask for a retry sooner than 10 ms: a zero delay invites a busy loop.
    let retry_after = t.retry_after.max(Duration::from_millis(10));
    metrics::counter!("pulsyon_limit_refusals_total", "limit" => t.cause.as_str()).increment(1);
    Refused::Throttled {
        cause: t.cause,
        retry_after,
        message: what,
    }
}

/// A batch checked event by event, before the tenant's limits.
#[derive(Debug)]
pub struct Checked {
    /// What to write: the valid events typed, the bad ones as dead letters
    /// with their index, reason and bytes.
    pub batch: BatchWrite,
    /// The rejections the ack reports.
    pub rejections: Vec<Rejection>,
    /// The batch's encoded size.
    pub bytes: usize,
}

/// Checks the batch and each of its events (pure: no limit is charged).
pub fn check(
    caller: &Principal,
    batch: Incoming,
    limits: &validate::EventBounds,
) -> Result<Checked, Refused> {
    if batch.producer_id.is_empty()
        || batch.producer_id.len() > MAX_PRODUCER_ID
        || batch.producer_id.contains('\0')
    {
        return Err(Refused::Invalid {
            field: "batch.producer_id",
            message: format!("must be 1 to {MAX_PRODUCER_ID} bytes without NUL"),
        });
    }
    let seq = i64::try_from(batch.seq).map_err(|_| Refused::Invalid {
        field: "batch.seq",
        message: "must be below 2^63".into(),
    })?;
    if batch.events.len() > MAX_BATCH_EVENTS {
        return Err(Refused::Invalid {
            field: "batch.events",
            message: format!("{} events, at most {MAX_BATCH_EVENTS}", batch.events.len()),
        });
    }
    let now = OffsetDateTime::now_utc();
    let mut events = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    let mut rejections = Vec::new();
    let mut bytes = 0;
    let mut digest = BatchDigest::default();
    for (index, arriving) in batch.events.into_iter().enumerate() {
        let (reason, message, payload) = match arriving {
            Arriving::Undecodable {
                reason,
                message,
                payload,
            } => {
                bytes += payload.len();
                digest.undecodable(&payload);
                (reason, message, payload)
            }
            Arriving::Decoded { raw, payload } => {
                bytes += raw.encoded_len;
                digest.event(&raw.event_id, raw.time);
                match validate::validate(raw, now, limits) {
                    Ok(valid) => {
                        events.push(valid);
                        continue;
                    }
                    Err(bad) => {
                        let payload = match payload {
                            Payload::Received(bytes) => bytes,
                            Payload::Made(make) => Bytes::from(make(&bad.raw)),
                        };
                        (bad.reason, bad.message, payload)
                    }
                }
            }
        };
        rejections.push(Rejection {
            index: index as u32,
            reason,
            message: message.clone(),
        });
        rejected.push(DeadLetter {
            index: index as u32,
            reason,
            message,
            payload: payload.to_vec(),
        });
    }
    let write = BatchWrite {
        tenant_id: caller.tenant_id,
        producer_id: batch.producer_id,
        seq,
        received_at: now,
        events,
        rejected,
        overflowed: 0,
        digest: digest.finish(),
    };
    Ok(Checked {
        batch: write,
        rejections,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resent_batch_is_all_duplicates_and_a_new_one_counts_what_it_stored() {
        let rejection = Rejection {
            index: 1,
            reason: RejectReason::MissingService,
            message: "service: missing".into(),
        };
        let fresh = ack(
            7,
            3,
            vec![rejection.clone()],
            BatchFate::Stored { duplicates: 1 },
        );
        assert_eq!(
            (fresh.accepted, fresh.duplicates, fresh.rejections.len()),
            (2, 1, 1)
        );
        let again = ack(7, 3, vec![rejection], BatchFate::Duplicate);
        assert_eq!(
            (again.accepted, again.duplicates, again.rejections.len()),
            (0, 4, 0)
        );
        assert_eq!(again.durability, Durability::Committed);
    }
}
