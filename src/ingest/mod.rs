//! The ingest stages between the gRPC edge and PostgreSQL: validation,
//! admission into a queue bounded in bytes, the batching writer, and the
//! partition keeper.
//!
//! Admission never accepts what it cannot hold: a batch either gets queue
//! space (waiting a bounded time, which slows the client) or is refused as
//! overloaded, so that the client retries later. Nothing admitted is dropped:
//! every submission gets exactly one reply.

pub mod limits;
pub mod partitions;
pub mod validate;
pub mod writer;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::limits::ThrottleCause;
use crate::{
    domain::{BatchWrite, TenantId},
    store::{Store, ingest::BatchFate},
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
    /// Retention of raw events (partitions older than this are dropped).
    pub retention: Duration,
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
            retention: Duration::from_secs(30 * 86_400),
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
}

/// Refused events not yet recorded, by tenant and cause.
type Throttles = HashMap<(TenantId, ThrottleCause), i64>;

/// The reply to one admitted batch.
pub type Reply = oneshot::Receiver<Result<BatchFate, WriteError>>;

/// One admitted batch on its way to the writer.
#[derive(Debug)]
pub struct Submission {
    /// The batch.
    pub batch: BatchWrite,
    /// Queue space it holds until written.
    pub permit: OwnedSemaphorePermit,
    /// Where its fate goes.
    pub reply: oneshot::Sender<Result<BatchFate, WriteError>>,
}

/// Admission into the writer's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    /// The writer's queue.
    tx: mpsc::Sender<Submission>,
    /// Queue space in KiB.
    space: Arc<Semaphore>,
    /// Total queue space in KiB.
    space_kib: u32,
    /// Longest wait for space.
    admit_wait: Duration,
    /// Throttled events not yet counted in the database, by tenant and cause.
    throttled: Arc<Mutex<Throttles>>,
}

impl IngestHandle {
    /// Admits `batch` (of `bytes` encoded bytes), waiting at most the admit
    /// wait for queue space. The reply arrives once the batch is committed.
    pub async fn submit(&self, batch: BatchWrite, bytes: usize) -> Result<Reply, AdmitError> {
        let kib = (bytes.div_ceil(1024).max(1) as u32).min(self.space_kib);
        let acquired =
            tokio::time::timeout(self.admit_wait, self.space.clone().acquire_many_owned(kib)).await;
        let permit = match acquired {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(AdmitError::ShuttingDown),
            Err(_) => {
                let events = (batch.events.len() + batch.rejected.len()) as i64;
                self.count_throttled(batch.tenant_id, events, ThrottleCause::Overload);
                return Err(AdmitError::Overloaded(
                    self.admit_wait.max(Duration::from_millis(500)),
                ));
            }
        };
        self.record_depth();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx
            .send(Submission {
                batch,
                permit,
                reply: reply_tx,
            })
            .await
            .map_err(|_| AdmitError::ShuttingDown)?;
        Ok(reply_rx)
    }

    /// Counts events refused by a limit, for the outcome counters.
    pub fn count_throttled(&self, tenant: TenantId, events: i64, cause: ThrottleCause) {
        if events <= 0 {
            return;
        }
        let mut map = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((tenant, cause)).or_default() += events;
        metrics::counter!("pulsyon_ingest_events_total", "tenant" => tenant.to_string(), "outcome" => "received", "reason" => "")
            .increment(events as u64);
        metrics::counter!("pulsyon_ingest_events_total", "tenant" => tenant.to_string(), "outcome" => "throttled", "reason" => cause.as_str())
            .increment(events as u64);
    }

    fn record_depth(&self) {
        let used_kib = self.space_kib as usize - self.space.available_permits();
        metrics::gauge!("pulsyon_ingest_queue_bytes").set((used_kib * 1024) as f64);
    }
}

/// Starts the writer and the throttle-counter flusher; returns the admission handle.
/// The writer stops once every handle is dropped and the queue is drained.
pub fn spawn(
    store: Store,
    config: &IngestConfig,
    stop: CancellationToken,
    close_writer: CancellationToken,
) -> (IngestHandle, tokio::task::JoinHandle<()>) {
    let space_kib = (config.queue_bytes / 1024).max(1) as u32;
    let space = Arc::new(Semaphore::new(space_kib as usize));
    // The semaphore bounds the bytes; the channel only needs room for every
    // batch the space can hold (at least 1 KiB each).
    let (tx, rx) = mpsc::channel(space_kib as usize);
    metrics::gauge!("pulsyon_ingest_queue_capacity_bytes").set(config.queue_bytes as f64);
    let throttled = Arc::new(Mutex::new(HashMap::new()));
    let handle = IngestHandle {
        tx,
        space: space.clone(),
        space_kib,
        admit_wait: config.admit_wait,
        throttled: throttled.clone(),
    };
    let writer = writer::spawn(
        store.clone(),
        config.clone(),
        rx,
        space,
        space_kib,
        close_writer,
    );
    tokio::spawn(flush_throttled(store, throttled, stop));
    (handle, writer)
}

/// Writes throttled counts to `ingest_outcomes` every second (and at stop).
async fn flush_throttled(store: Store, throttled: Arc<Mutex<Throttles>>, stop: CancellationToken) {
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        let taken: Vec<((TenantId, ThrottleCause), i64)> = {
            let mut map = throttled.lock().unwrap_or_else(|p| p.into_inner());
            map.drain().collect()
        };
        if !taken.is_empty() {
            let now = OffsetDateTime::now_utc();
            let rows: Vec<_> = taken
                .iter()
                .flat_map(|((t, cause), n)| {
                    [
                        (*t, now, "received", "", *n),
                        (*t, now, "throttled", cause.as_str(), *n),
                    ]
                })
                .collect();
            if let Err(err) = store.add_outcomes(&rows).await {
                tracing::warn!(error = %err, "could not record throttled counts; keeping them");
                let mut map = throttled.lock().unwrap_or_else(|p| p.into_inner());
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
