//! The ingest stages between the gRPC edge and PostgreSQL: validation,
//! admission into a queue bounded in bytes, the batching writer, and the
//! partition keeper.
//!
//! Admission never accepts what it cannot hold: a batch either gets queue
//! space (waiting a bounded time, which slows the client) or is refused as
//! overloaded, so that the client retries later. Nothing admitted is dropped:
//! every submission gets exactly one reply.

pub mod admit;
pub mod limits;
pub mod partitions;
pub mod validate;
pub mod writer;

use std::{
    collections::HashMap,
    fmt,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::limits::ThrottleCause;
use crate::{
    domain::{BatchFate, BatchWrite, Outcome, TenantId},
    store::Store,
};

/// Settings of admission and the writer.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Rows that make a writer batch full.
    pub batch_rows: usize,
    /// Bytes that make a writer batch full.
    pub batch_bytes: usize,
    /// Longest a writer batch waits for more rows.
    pub batch_age: Duration,
    /// Writer batches written at once (each on its own connection).
    pub workers: usize,
    /// Most bytes of admitted, unwritten batches.
    pub queue_bytes: usize,
    /// Longest a batch waits for queue space before it is refused.
    pub admit_wait: Duration,
    /// How long a failing write is retried before its batches are answered UNAVAILABLE.
    pub retry_for: Duration,
    /// Whether resent batches are recognised (the batch ledger); off only to measure its cost.
    pub dedup: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_rows: 5_000,
            batch_bytes: 8 << 20,
            batch_age: Duration::from_millis(10),
            workers: 2,
            queue_bytes: 64 << 20,
            admit_wait: Duration::from_secs(1),
            retry_for: Duration::from_secs(30),
            dedup: true,
        }
    }
}

/// Why a write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The database stayed unreachable; the client should retry later.
    #[error("the database is unavailable")]
    Unavailable,
    /// The batch could not be written for another reason (logged).
    #[error("the batch could not be stored")]
    Internal,
    /// The buffer shard it came from has another owner now, which commits
    /// it instead (only for batches read from the buffer).
    #[error("the buffer shard changed owner")]
    Fenced,
}

/// Why a batch was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The queue stayed full; retry after the delay.
    #[error("the server is overloaded; retry in {0:?}")]
    Overloaded(Duration),
    /// The writer has stopped (shutdown).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The buffer between processes cannot be reached; retry after the delay.
    #[error("the ingest buffer is unavailable; retry in {0:?}")]
    Unavailable(Duration),
}

/// Refused events not yet recorded, by tenant and cause.
type ThrottleMap = HashMap<(TenantId, Outcome, &'static str), i64>;

/// The reply to one admitted batch.
pub type Reply = oneshot::Receiver<Result<BatchFate, WriteError>>;

/// A future that may borrow its receiver.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where admitted batches go, until they are durable. This process's writer
/// queue is one implementation ([`LocalQueue`]); a buffer between processes
/// (a Redis stream) is another. The pipeline (`admit`) and the writer each
/// see only their side of this seam.
pub trait Admission: Send + Sync + fmt::Debug {
    /// Admits `batch` (of `bytes` encoded bytes) or refuses it; the reply
    /// arrives once the batch is durable. Never accepts what it cannot hold.
    fn submit(&self, batch: BatchWrite, bytes: usize) -> BoxFuture<'_, Result<Reply, AdmitError>>;
    /// How full it is now.
    fn depth(&self) -> QueueDepth;
}

/// How full an admission's buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Bytes held (admitted, not yet answered).
    pub used_bytes: u64,
    /// Bytes it holds at most.
    pub capacity_bytes: u64,
}

/// Where a buffered batch's commit is reported, for an ingest process that
/// answers only once its batches are committed (`--ack-after commit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The ingest process's reply stream.
    pub stream: String,
    /// The batch's id in it.
    pub id: String,
}

/// The buffer's record of a batch, both ways: the versioned message of
/// proto/pulsyon/internal, given by the wiring so that the buffer knows no
/// wire format.
pub trait RecordCodec: Send + Sync + fmt::Debug {
    /// The record of `batch` (and where its commit is reported).
    fn encode(&self, batch: &BatchWrite, reply: Option<&ReplyTo>) -> Vec<u8>;
    /// The batch of a record, or why it cannot be read.
    fn decode(&self, bytes: &[u8]) -> Result<(BatchWrite, Option<ReplyTo>), RecordError>;
}

/// Why a buffered record cannot be read back (its entry is then poison).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a record.
    #[error("not a record: {0}")]
    Undecodable(String),
    /// A record of a version this build does not read.
    #[error("record version {found} (this build reads {reads})")]
    Version {
        /// The record's.
        found: u32,
        /// This build's.
        reads: u32,
    },
    /// A record whose content breaks the batch's rules.
    #[error("{0}")]
    Invalid(String),
}

/// One admitted batch on its way to the writer.
#[derive(Debug)]
pub struct Submission {
    /// The batch.
    pub batch: BatchWrite,
    /// Its encoded size (what it weighs in a writer batch).
    pub bytes: usize,
    /// What it holds of its source until it is answered (queue space).
    pub held: Held,
    /// The buffer shard it was read from and its owner's epoch: it commits
    /// only while that still holds (`None` for the local queue).
    pub fence: Option<crate::store::buffer::Fence>,
    /// Where its fate goes.
    pub reply: oneshot::Sender<Result<BatchFate, WriteError>>,
}

/// What an admitted batch holds of its source until it is answered: the
/// local queue's space (given back, and the depth gauge updated, when
/// dropped), or nothing (a batch read from the buffer, whose entry stays
/// pending there until it is acknowledged).
#[derive(Debug)]
pub struct Held {
    /// Dropped with the submission: the space goes back.
    _space: Option<QueueSpace>,
}

impl Held {
    /// Holds nothing.
    pub fn nothing() -> Held {
        Held { _space: None }
    }
}

/// Space of the local queue.
#[derive(Debug)]
struct QueueSpace {
    permit: OwnedSemaphorePermit,
    space: Arc<Semaphore>,
    space_kib: u32,
}

impl Drop for QueueSpace {
    fn drop(&mut self) {
        // The permit goes back after this body: count it as given back.
        let free = self.space.available_permits() + self.permit.num_permits();
        let used_kib = (self.space_kib as usize).saturating_sub(free);
        metrics::gauge!("pulsyon_ingest_queue_bytes").set((used_kib * 1024) as f64);
    }
}

/// Events that never reach the writer, counted for the outcome counters
/// (written to the database every second by the flusher [`spawn`] starts):
/// those refused by a limit, and spans a door filters out. Each is counted
/// as received too, so the counters reconcile. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Throttles(Arc<Mutex<ThrottleMap>>);

impl Throttles {
    /// Counts `events` of `tenant` refused for `cause`.
    pub fn count(&self, tenant: TenantId, events: i64, cause: ThrottleCause) {
        self.add(tenant, events, Outcome::Throttled, cause.as_str());
    }

    /// Counts `events` of `tenant` a door left out as not requests (`why`).
    pub fn filtered(&self, tenant: TenantId, events: i64, why: &'static str) {
        self.add(tenant, events, Outcome::Filtered, why);
    }

    fn add(&self, tenant: TenantId, events: i64, outcome: Outcome, reason: &'static str) {
        if events <= 0 {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((tenant, Outcome::Received, "")).or_default() += events;
        *map.entry((tenant, outcome, reason)).or_default() += events;
        metrics::counter!("pulsyon_ingest_events_total", "tenant" => tenant.to_string(), "outcome" => Outcome::Received.as_str(), "reason" => "")
            .increment(events as u64);
        metrics::counter!("pulsyon_ingest_events_total", "tenant" => tenant.to_string(), "outcome" => outcome.as_str(), "reason" => reason)
            .increment(events as u64);
    }

    fn take(&self) -> Vec<((TenantId, Outcome, &'static str), i64)> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.drain().collect()
    }
}

/// This process's writer queue, bounded in bytes: a batch waits at most the
/// admit wait for space, then is refused as overloaded.
#[derive(Debug)]
pub struct LocalQueue {
    /// The writer's queue.
    tx: mpsc::Sender<Submission>,
    /// Queue space in KiB.
    space: Arc<Semaphore>,
    /// Total queue space in KiB.
    space_kib: u32,
    /// Longest wait for space.
    admit_wait: Duration,
    /// Where a refusal for overload is counted.
    throttles: Throttles,
}

impl LocalQueue {
    /// A sender into the writer's queue, for another source of batches
    /// (the Redis buffer's drain), which bounds what it sends itself.
    pub fn sender(&self) -> mpsc::Sender<Submission> {
        self.tx.clone()
    }
}

impl Admission for LocalQueue {
    fn depth(&self) -> QueueDepth {
        let used_kib = (self.space_kib as usize).saturating_sub(self.space.available_permits());
        QueueDepth {
            used_bytes: used_kib as u64 * 1024,
            capacity_bytes: u64::from(self.space_kib) * 1024,
        }
    }

    fn submit(&self, batch: BatchWrite, bytes: usize) -> BoxFuture<'_, Result<Reply, AdmitError>> {
        Box::pin(async move {
            let kib = (bytes.div_ceil(1024).max(1) as u32).min(self.space_kib);
            let acquired =
                tokio::time::timeout(self.admit_wait, self.space.clone().acquire_many_owned(kib))
                    .await;
            let permit = match acquired {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(AdmitError::ShuttingDown),
                Err(_) => {
                    let events = (batch.events.len() + batch.rejected.len()) as i64;
                    self.throttles
                        .count(batch.tenant_id, events, ThrottleCause::Overload);
                    return Err(AdmitError::Overloaded(
                        self.admit_wait.max(Duration::from_millis(500)),
                    ));
                }
            };
            let used_kib = self.space_kib as usize - self.space.available_permits();
            metrics::gauge!("pulsyon_ingest_queue_bytes").set((used_kib * 1024) as f64);
            let (reply_tx, reply_rx) = oneshot::channel();
            let held = Held {
                _space: Some(QueueSpace {
                    permit,
                    space: self.space.clone(),
                    space_kib: self.space_kib,
                }),
            };
            self.tx
                .send(Submission {
                    batch,
                    bytes,
                    held,
                    fence: None,
                    reply: reply_tx,
                })
                .await
                .map_err(|_| AdmitError::ShuttingDown)?;
            Ok(reply_rx)
        })
    }
}

/// The ingest stages of this process, as started.
#[derive(Debug)]
pub struct Started {
    /// Admission into this process's writer queue.
    pub queue: Arc<LocalQueue>,
    /// Where refusals are counted.
    pub throttles: Throttles,
    /// The writer: ends once every admission handle is gone (or it is
    /// closed) and its queue is drained.
    pub writer: tokio::task::JoinHandle<()>,
    /// The throttle-counter flusher: ends at `stop`, after a last flush.
    pub flusher: tokio::task::JoinHandle<()>,
}

/// Starts the writer behind a local queue, and the throttle-counter flusher.
pub fn spawn(
    store: Store,
    config: &IngestConfig,
    stop: CancellationToken,
    close_writer: CancellationToken,
) -> Started {
    let space_kib = (config.queue_bytes / 1024).max(1) as u32;
    let space = Arc::new(Semaphore::new(space_kib as usize));
    // The semaphore bounds the bytes; the channel only needs room for every
    // batch the space can hold (at least 1 KiB each).
    let (tx, rx) = mpsc::channel(space_kib as usize);
    metrics::gauge!("pulsyon_ingest_queue_capacity_bytes").set(config.queue_bytes as f64);
    let throttles = Throttles::default();
    let queue = Arc::new(LocalQueue {
        tx,
        space,
        space_kib,
        admit_wait: config.admit_wait,
        throttles: throttles.clone(),
    });
    let writer = writer::spawn(store.clone(), config.clone(), rx, close_writer);
    let flusher = tokio::spawn(flush_throttled(store, throttles.clone(), stop));
    Started {
        queue,
        throttles,
        writer,
        flusher,
    }
}

/// Starts the throttle-counter flusher alone (an ingest process without a
/// writer); it ends at `stop`, after a last flush.
pub fn spawn_flusher(
    store: Store,
    stop: CancellationToken,
) -> (Throttles, tokio::task::JoinHandle<()>) {
    let throttles = Throttles::default();
    let flusher = tokio::spawn(flush_throttled(store, throttles.clone(), stop));
    (throttles, flusher)
}

/// Writes throttled counts to `ingest_outcomes` every second (and at stop).
async fn flush_throttled(store: Store, throttles: Throttles, stop: CancellationToken) {
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        let taken = throttles.take();
        if !taken.is_empty() {
            let now = OffsetDateTime::now_utc();
            let rows: Vec<_> = taken
                .iter()
                .map(|((t, outcome, reason), n)| (*t, now, *outcome, *reason, *n))
                .collect();
            if let Err(err) = store.add_outcomes(&rows).await {
                tracing::warn!(error = %err, "could not record throttled counts; keeping them");
                let mut map = throttles.0.lock().unwrap_or_else(|p| p.into_inner());
                for (t, n) in taken {
                    *map.entry(t).or_default() += n;
                }
            }
        }
        if stopping {
            return;
        }
    }
}
