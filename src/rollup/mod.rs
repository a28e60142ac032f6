//! Rollups: per (tenant, service, endpoint) and per minute and hour, the
//! counts, latency summary and a mergeable histogram of the stored events, so
//! that percentiles over any window come from merging rows, never from
//! rescanning `api_logs`.
//!
//! How they stay exact: the writer adds, in the transaction that stores a
//! batch, one `rollup_deltas` row per tenant with the batch's cells
//! ([`cells_by_tenant`]). The rollup task ([`spawn`]) consumes deltas in order
//! and merges them into the four tables in the transaction that deletes them.
//! A late event (any event the validator accepts, up to the raw retention)
//! updates the bucket it falls in, as long as that bucket is within the
//! rollups' retention. The watermark says up to when every stored event is in.

pub mod agg;
pub mod health;
pub mod histogram;

use std::{collections::BTreeMap, time::Duration};

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{Event, TenantId},
    store::{
        Store,
        rollups::{Consumed, Cutoffs},
    },
};
use agg::Cells;

/// `t` rounded down to a multiple of `secs` seconds since the epoch.
pub fn floor(t: OffsetDateTime, secs: i64) -> OffsetDateTime {
    let s = t.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(s - s.rem_euclid(secs)).unwrap_or(t)
}

/// `t` rounded up to a multiple of `secs` seconds since the epoch.
pub fn ceil(t: OffsetDateTime, secs: i64) -> OffsetDateTime {
    let f = floor(t, secs);
    if f == t {
        t
    } else {
        f + time::Duration::seconds(secs)
    }
}

/// The rollup cells of the events of `batches`, per tenant.
pub fn cells_by_tenant<'a>(
    events: impl Iterator<Item = (TenantId, &'a Event)>,
) -> BTreeMap<i64, Cells> {
    // Keys borrow from the events; owned strings are made once per cell.
    let mut borrowed: BTreeMap<(i64, &str, &str, OffsetDateTime), agg::Agg> = BTreeMap::new();
    for (tenant, e) in events {
        borrowed
            .entry((tenant.0, &e.service, &e.endpoint, floor(e.time, 60)))
            .or_default()
            .record(e.status_code, e.latency_ms);
    }
    let mut out: BTreeMap<i64, Cells> = BTreeMap::new();
    for ((tenant, service, endpoint, minute), cell) in borrowed {
        out.entry(tenant)
            .or_default()
            .insert((service.to_owned(), endpoint.to_owned(), minute), cell);
    }
    out
}

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
                health::Objectives::default().minute(),
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn floor_and_ceil_round_to_the_bucket() {
        let t = datetime!(2026-11-22 10:15:42.5 UTC);
        assert_eq!(floor(t, 60), datetime!(2026-11-22 10:15 UTC));
        assert_eq!(floor(t, 3_600), datetime!(2026-11-22 10:00 UTC));
        assert_eq!(ceil(t, 3_600), datetime!(2026-11-22 11:00 UTC));
        let h = datetime!(2026-11-22 10:00 UTC);
        assert_eq!(ceil(h, 3_600), h);
    }
}
