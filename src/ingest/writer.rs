//! The batching writer: gathers admitted batches from every stream and tenant
//! into writer batches (full on rows, bytes or age) and writes each in one
//! transaction, replying to every batch only after the commit.
//!
//! A failing write is retried while the database is unavailable (bounded by
//! `retry_for`), then answered UNAVAILABLE; a write that fails for another
//! reason is retried batch by batch so one bad batch cannot sink its
//! neighbours. Every submission gets exactly one reply; queue space is given
//! back when its batch is answered.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use time::Date;
use tokio::sync::{Mutex, mpsc};

use tokio_util::sync::CancellationToken;

use super::{IngestConfig, Submission, WriteError};
use crate::{
    domain::{BatchFate, BatchWrite, Outcome},
    store::{
        Store, StoreError,
        buffer::{FENCED, Fence},
        partitions::Ensured,
    },
};

/// Starts the batcher and its workers. Ends when the queue is drained after
/// every sender is gone or `close` is cancelled (which refuses new batches:
/// senders still held by lingering connections get an error, not a hang).
pub fn spawn(
    store: Store,
    config: IngestConfig,
    mut rx: mpsc::Receiver<Submission>,
    close: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (work_tx, work_rx) = mpsc::channel::<Vec<Submission>>(config.workers.max(1));
        let work_rx = Arc::new(Mutex::new(work_rx));
        let days = Arc::new(std::sync::Mutex::new(HashSet::new()));
        let mut workers = Vec::new();
        for _ in 0..config.workers.max(1) {
            let worker = Worker {
                store: store.clone(),
                retry_for: config.retry_for,
                dedup: config.dedup,
                days: days.clone(),
            };
            let work_rx = work_rx.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    let next = work_rx.lock().await.recv().await;
                    match next {
                        Some(batch) => worker.write(batch).await,
                        None => return,
                    }
                }
            }));
        }
        let mut closed = false;
        loop {
            let first = tokio::select! {
                next = rx.recv() => match next {
                    Some(first) => first,
                    None => break,
                },
                _ = close.cancelled(), if !closed => {
                    rx.close();
                    closed = true;
                    continue;
                }
            };
            let mut rows = first.batch.events.len() + first.batch.rejected.len();
            let mut bytes = first.bytes;
            let mut pending = vec![first];
            let deadline = tokio::time::Instant::now() + config.batch_age;
            while rows < config.batch_rows && bytes < config.batch_bytes {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(next)) => {
                        rows += next.batch.events.len() + next.batch.rejected.len();
                        bytes += next.bytes;
                        pending.push(next);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if work_tx.send(pending).await.is_err() {
                break;
            }
        }
        drop(work_tx);
        for worker in workers {
            let _ = worker.await;
        }
        tracing::info!("writer drained");
    })
}

/// One writer worker's dependencies.
struct Worker {
    /// Where batches go.
    store: Store,
    /// How long an unavailable database is retried.
    retry_for: Duration,
    /// Whether the batch ledger is used (off only to measure its cost).
    dedup: bool,
    /// Days known to have a partition (shared by the workers).
    days: Arc<std::sync::Mutex<HashSet<Date>>>,
}

impl Worker {
    async fn write(&self, submissions: Vec<Submission>) {
        let started = Instant::now();
        self.ensure_partitions(&submissions).await;
        let fences: Vec<Option<Fence>> = submissions.iter().map(|s| s.fence).collect();
        let (batches, replies): (Vec<BatchWrite>, Vec<_>) = submissions
            .into_iter()
            .map(|s| (s.batch, (s.reply, s.held)))
            .unzip();
        let all_fences: Vec<Fence> = {
            let mut f: Vec<Fence> = fences.iter().flatten().copied().collect();
            f.sort_by_key(|f| (f.shard, f.epoch));
            f.dedup();
            f
        };
        let results = match self.write_retrying(&batches, &all_fences).await {
            Ok(fates) => fates.into_iter().map(Ok).collect(),
            Err(StoreError::Unavailable(_) | StoreError::Busy(_)) => {
                vec![Err(WriteError::Unavailable); batches.len()]
            }
            Err(StoreError::State(FENCED)) if batches.len() == 1 => {
                metrics::counter!("pulsyon_buffer_fenced_writes_total").increment(1);
                vec![Err(WriteError::Fenced)]
            }
            Err(err) if batches.len() > 1 => {
                tracing::warn!(error = %err, batches = batches.len(), "writer batch failed; writing its batches one by one");
                let mut results = Vec::with_capacity(batches.len());
                for (batch, fence) in batches.iter().zip(&fences) {
                    let fence: Vec<Fence> = fence.iter().copied().collect();
                    results.push(match self.write_retrying(std::slice::from_ref(batch), &fence).await {
                        Ok(fates) => Ok(fates[0]),
                        Err(StoreError::Unavailable(_) | StoreError::Busy(_)) => {
                            Err(WriteError::Unavailable)
                        }
                        Err(StoreError::State(FENCED)) => {
                            metrics::counter!("pulsyon_buffer_fenced_writes_total").increment(1);
                            Err(WriteError::Fenced)
                        }
                        Err(err) => {
                            tracing::error!(error = %err, producer = %batch.producer_id, seq = batch.seq, "batch could not be stored");
                            Err(WriteError::Internal)
                        }
                    });
                }
                results
            }
            Err(err) => {
                tracing::error!(error = %err, "batch could not be stored");
                vec![Err(WriteError::Internal)]
            }
        };
        let rows: usize = batches.iter().map(|b| b.events.len()).sum();
        metrics::histogram!("pulsyon_writer_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("pulsyon_writer_batch_rows").record(rows as f64);
        for (batch, result) in batches.iter().zip(&results) {
            record_outcome(batch, result);
        }
        for ((reply, held), result) in replies.into_iter().zip(results) {
            // The client may have gone; its batch is stored (or not) all the same.
            let _ = reply.send(result);
            // What the batch held of its source (queue space) goes back.
            drop(held);
        }
    }

    async fn write_retrying(
        &self,
        batches: &[BatchWrite],
        fences: &[Fence],
    ) -> Result<Vec<BatchFate>, StoreError> {
        let deadline = Instant::now() + self.retry_for;
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .store
                .write_batches_fenced(batches, self.dedup, fences)
                .await
            {
                Err(err) if err.is_retryable() && Instant::now() + delay < deadline => {
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "write failed; retrying");
                    metrics::counter!("pulsyon_writer_retries_total").increment(1);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// Makes the partitions of every day in the batches exist before the
    /// write (DDL outside the write transaction). A day that cannot have one
    /// goes to the default partition, which catches every stray.
    async fn ensure_partitions(&self, submissions: &[Submission]) {
        let wanted: HashSet<Date> = submissions
            .iter()
            .flat_map(|s| {
                s.batch
                    .events
                    .iter()
                    .map(|e| e.time.to_offset(time::UtcOffset::UTC).date())
            })
            .collect();
        let missing: Vec<Date> = {
            let known = self.days.lock().unwrap_or_else(|p| p.into_inner());
            wanted.into_iter().filter(|d| !known.contains(d)).collect()
        };
        for day in missing {
            match self.store.ensure_partition(day).await {
                Ok(Ensured::Exists) => {
                    self.days
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(day);
                }
                Ok(Ensured::BlockedByDefault) => {
                    tracing::warn!(%day, "the default partition holds rows of this day; its events go there");
                }
                Err(err) => tracing::warn!(%day, error = %err, "could not create a partition"),
            }
        }
    }
}

/// Counts a batch's events by outcome in `/metrics` (the database keeps the same
/// counts per minute in `ingest_outcomes`).
fn record_outcome(batch: &BatchWrite, result: &Result<BatchFate, WriteError>) {
    let total = (batch.events.len() + batch.rejected.len()) as u64;
    let tenant = batch.tenant_id.to_string();
    let count = |outcome: Outcome, reason: &'static str, n: u64| {
        metrics::counter!("pulsyon_ingest_events_total", "tenant" => tenant.clone(), "outcome" => outcome.as_str(), "reason" => reason)
            .increment(n);
    };
    match result {
        Ok(BatchFate::Stored { duplicates }) => {
            count(Outcome::Received, "", total);
            count(
                Outcome::Stored,
                "",
                batch.events.len() as u64 - *duplicates as u64,
            );
            if *duplicates > 0 {
                count(Outcome::Duplicate, "", *duplicates as u64);
            }
            for d in &batch.rejected {
                count(Outcome::Rejected, d.reason.as_str(), 1);
            }
        }
        Ok(BatchFate::Duplicate | BatchFate::Buffered) => {
            count(Outcome::Received, "", total);
            count(Outcome::Duplicate, "", total);
        }
        Err(_) => metrics::counter!("pulsyon_ingest_failed_batches_total").increment(1),
    }
}
