//! The per-process fan-out of incident updates. One task listens for the
//! outbox's NOTIFY (and polls every second, in case a notification was lost
//! while the connection was down), reads the new updates in sequence order
//! and broadcasts them to this process's `Watch` subscribers. Every process
//! runs its own hub, so updates reach the subscribers of every process, not
//! only the leader's.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::broadcast, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::model::Update;
use crate::store::{Store, StoreError};

/// Updates a subscriber may fall behind before it catches up from the database.
pub const BUFFER: usize = 4_096;
/// How often the hub looks for updates without a notification.
const POLL: Duration = Duration::from_secs(1);

/// The fan-out of this process.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Update>>,
    newest: AtomicI64,
}

impl Hub {
    /// A receiver of every update broadcast from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Update>> {
        self.tx.subscribe()
    }

    /// The newest sequence number broadcast (or found at start).
    pub fn newest(&self) -> i64 {
        self.newest.load(Ordering::Acquire)
    }

    /// Subscribers right now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Starts the hub; it runs until `stop`.
pub fn spawn(store: Store, stop: CancellationToken) -> (Arc<Hub>, JoinHandle<()>) {
    let (tx, _) = broadcast::channel(BUFFER);
    let hub = Arc::new(Hub {
        tx,
        newest: AtomicI64::new(0),
    });
    let task = {
        let hub = hub.clone();
        tokio::spawn(async move {
            loop {
                match run(&store, &hub, &stop).await {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "incident update hub: reconnecting");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(POLL) => {}
                        }
                    }
                }
            }
        })
    };
    (hub, task)
}

async fn run(store: &Store, hub: &Hub, stop: &CancellationToken) -> Result<(), StoreError> {
    let mut listener = store.update_listener().await?;
    if hub.newest() == 0 {
        let (_, newest) = store.update_seq_bounds().await?;
        hub.newest.store(newest, Ordering::Release);
    }
    loop {
        // Everything after what was broadcast, in order.
        loop {
            let updates = store.updates_after(None, hub.newest(), 1_000).await?;
            let Some(last) = updates.last().map(|u| u.seq) else {
                break;
            };
            for u in updates {
                // No subscriber is not an error.
                let _ = hub.tx.send(Arc::new(u));
            }
            hub.newest.store(last, Ordering::Release);
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            notified = listener.recv() => { notified?; }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
