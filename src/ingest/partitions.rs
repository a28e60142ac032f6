//! The partition keeper: at start-up and every hour, makes the daily
//! partitions of `api_logs` from yesterday to two days ahead, drops those
//! older than the retention, prunes the batch ledger alike, reports rows
//! in the default partition, and deletes incidents resolved longer ago than
//! the incident retention (with their alerts and outbox rows).
//!
//! It never drops a partition that may still hold events within the retention,
//! and never deletes an incident that is not resolved.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError, partitions::Ensured};

/// How often the keeper runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Days made ahead of today.
pub const DAYS_AHEAD: i64 = 2;

/// How long things are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Raw events and the batch ledger.
    pub events: Duration,
    /// Incidents after their resolution, with their alerts and updates.
    pub incidents: Duration,
}

/// One pass: make, drop, prune, report. Returns the rows counted in the default partition.
pub async fn maintain(store: &Store, keep: Retention) -> Result<i64, StoreError> {
    let retention = keep.events;
    let today = OffsetDateTime::now_utc().date();
    for offset in -1..=DAYS_AHEAD {
        let day = today + time::Duration::days(offset);
        if store.ensure_partition(day).await? == Ensured::BlockedByDefault {
            tracing::warn!(%day, "cannot make the partition: the default partition holds rows of that day");
        }
    }
    // A partition is dropped once its whole day is older than the retention.
    let retention_days = (retention.as_secs() / 86_400) as i64;
    let oldest_kept = today - time::Duration::days(retention_days + 1);
    for day in store.list_partitions().await? {
        if day < oldest_kept {
            tracing::info!(%day, "dropping a partition past the retention");
            store.drop_partition(day).await?;
        }
    }
    // The ledger is kept as long as the events: a batch resent within the
    // retention is still recognised.
    let pruned = store
        .prune_batch_ledger(OffsetDateTime::now_utc() - retention)
        .await?;
    if pruned > 0 {
        tracing::info!(
            batches = pruned,
            "pruned the batch ledger past the retention"
        );
    }
    let incidents = store
        .prune_incidents(OffsetDateTime::now_utc() - keep.incidents)
        .await?;
    if incidents > 0 {
        tracing::info!(
            incidents,
            "deleted incidents resolved before the incident retention"
        );
    }
    let strays = store.default_partition_rows(1_000_000).await?;
    metrics::gauge!("pulsyon_default_partition_rows").set(strays as f64);
    if strays > 0 {
        tracing::warn!(
            rows = strays,
            "the default partition of api_logs holds events"
        );
    }
    Ok(strays)
}

/// Runs `maintain` now and then every hour until `stop`.
pub fn spawn(store: Store, keep: Retention, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(err) = maintain(&store, keep).await {
                tracing::warn!(error = %err, "partition maintenance failed; trying again later");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}
