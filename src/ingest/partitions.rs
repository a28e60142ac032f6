//! The partition keeper: at start-up and every hour, makes the daily
//! partitions of `api_logs` from yesterday to two days ahead, drops those
//! older than the retention, prunes the batch ledger alike, and reports rows
//! in the default partition (incidents have their own retention,
//! `incidents::retention`).
//!
//! It never drops a partition that may still hold events within the retention.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError, partitions::Ensured};

/// How often the keeper runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Days made ahead of today.
pub const DAYS_AHEAD: i64 = 2;

/// One pass: make, drop, prune, report. Returns the rows counted in the default partition.
/// `retention`: how long raw events and the batch ledger are kept.
pub async fn maintain(store: &Store, retention: Duration) -> Result<i64, StoreError> {
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
pub fn spawn(store: Store, retention: Duration, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(err) = maintain(&store, retention).await {
                tracing::warn!(error = %err, "partition maintenance failed; trying again later");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}
