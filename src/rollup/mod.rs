//! Rollups: per (tenant, service, endpoint) and per minute and hour, the
//! counts, latency summary and a mergeable histogram of the stored events, so
//! that percentiles over any window come from merging rows, never from
//! rescanning `api_logs`.
//!
//! How they stay exact: the writer adds, in the transaction that stores a
//! batch, one `rollup_deltas` row per tenant with the batch's cells
//! ([`crate::stats::cell::cells_by_tenant`]). The rollup task ([`spawn`]) consumes deltas in order
//! and merges them into the four tables in the transaction that deletes them.
//! A late event (any event the validator accepts, up to the raw retention)
//! updates the bucket it falls in, as long as that bucket is within the
//! rollups' retention. The watermark says up to when every stored event is in.

pub mod verdict;

use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    stats::floor,
    store::{
        Store,
        rollups::{Consumed, Cutoffs},
    },
};

/// Settings of the rollup task.
#[derive(Debug, Clone)]
pub struct RollupConfig {
    /// Time between passes when there is nothing left to merge.
    pub interval: Duration,
    /// How long minute rows are kept.
    pub minute_retention: Duration,
    /// How long hour rows are kept.
    pub hour_retention: Duration,
    /// Deltas merged per transaction.
    pub deltas_per_pass: i64,
}

impl Default for RollupConfig {
    fn default() -> Self {
        RollupConfig {
            interval: Duration::from_secs(1),
            minute_retention: Duration::from_secs(8 * 86_400),
            hour_retention: Duration::from_secs(400 * 86_400),
            deltas_per_pass: 500,
        }
    }
}

impl RollupConfig {
    /// The oldest buckets kept, as of `now`.
    pub fn cutoffs(&self, now: OffsetDateTime) -> Cutoffs {
        Cutoffs {
            minute: floor(now - self.minute_retention, 60),
            hour: floor(now - self.hour_retention, 3_600),
        }
    }
}

/// Merges every delta there is now, pass after pass; returns the last pass.
pub async fn catch_up(
    store: &Store,
    config: &RollupConfig,
) -> Result<Consumed, crate::store::StoreError> {
    loop {
        let pass = store
            .consume_rollup_deltas(
                config.deltas_per_pass,
                config.cutoffs(OffsetDateTime::now_utc()),
                verdict::Objectives::default().minute(),
            )
            .await?;
        metrics::counter!("pulsyon_rollup_deltas_total").increment(pass.deltas as u64);
        if pass.drained {
            return Ok(pass);
        }
    }
}

/// Runs the rollup task until `stop`: merge deltas every `interval`, prune
/// past the retention every hour.
pub fn spawn(store: Store, config: RollupConfig, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            if let Err(err) = catch_up(&store, &config).await {
                metrics::counter!("pulsyon_rollup_failures_total").increment(1);
                tracing::warn!(error = %err, "rollup pass failed; trying again");
            }
            if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(3_600)) {
                match store
                    .prune_rollups(config.cutoffs(OffsetDateTime::now_utc()))
                    .await
                {
                    Ok(rows) => {
                        last_prune = Some(tokio::time::Instant::now());
                        if rows > 0 {
                            tracing::info!(rows, "pruned rollups past their retention");
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "rollup retention failed"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(config.interval) => {}
            }
        }
    })
}
