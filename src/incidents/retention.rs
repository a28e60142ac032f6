//! Incident retention: at start-up and every hour, deletes the incidents
//! resolved longer ago than `--incident-retention`, with their alerts and
//! updates (a Watch resuming before them must resync). Never an incident
//! that is not resolved.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// How often incidents are pruned.
const EVERY: Duration = Duration::from_secs(3600);

/// One pass: the incidents resolved before `now - keep` go; how many.
pub async fn prune(store: &Store, keep: Duration) -> Result<u64, StoreError> {
    let incidents = store
        .prune_incidents(OffsetDateTime::now_utc() - keep)
        .await?;
    if incidents > 0 {
        tracing::info!(
            incidents,
            "deleted incidents resolved before the incident retention"
        );
    }
    Ok(incidents)
}

/// Runs `prune` now and then every hour until `stop`.
pub fn spawn(store: Store, keep: Duration, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(err) = prune(&store, keep).await {
                tracing::warn!(error = %err, "incident retention failed; trying again later");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}
