//! The per-process fan-out of incident updates. One task listens for the
//! outbox's NOTIFY (and polls every second, in case a notification was lost
//! while the connection was down), reads the new updates in sequence order
//! and broadcasts them to this process's `Watch` subscribers. Every process
//! runs its own hub, so updates reach the subscribers of every process, not
//! only the leader's.
//!
//! Each update is rendered once, here, into what subscribers send (the
//! caller's `render`, so that this module knows no wire format): with
//! thousands of subscribers, per-subscriber conversion dominated fan-out.
//!
//! Subscribers are grouped (by connection, as the caller chooses) and each
//! group gets its own channel, sent to one after another: the subscribers of
//! one connection then wake and write together, and the connection carries
//! their frames in a few writes instead of one each (docs/adr/0008).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::broadcast, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::domain::incident::Update;
use crate::store::{Store, StoreError};

/// Updates a subscriber may fall behind before it catches up from the
/// database (per group: memory is this many slots per connection).
pub const BUFFER: usize = 128;
/// How often the hub looks for updates without a notification.
const POLL: Duration = Duration::from_secs(1);

/// An update as broadcast: the update and its rendering.
#[derive(Debug)]
pub struct Published<R> {
    /// The update.
    pub update: Update,
    /// What subscribers send for it, made once.
    pub rendered: R,
}

/// An update rendered once for each door that streams updates: the gRPC
/// Watch and the dashboard's server-sent events (each door's renderer,
/// so that this module knows no wire format).
#[derive(Debug, Clone)]
pub struct Rendered {
    /// As Watch sends it.
    pub watch: bytes::Bytes,
    /// As the event stream sends it.
    pub events: bytes::Bytes,
}

/// A receiver of one group's updates.
pub type Receiver<R> = broadcast::Receiver<Arc<Published<R>>>;

/// The fan-out of this process; `R` is an update's rendering.
#[derive(Debug)]
pub struct Hub<R> {
    /// One channel per group of subscribers. Sending and subscribing hold
    /// this lock, so a subscriber's starting sequence and its first update
    /// cannot miss each other.
    groups: Mutex<HashMap<String, broadcast::Sender<Arc<Published<R>>>>>,
    /// The newest sequence number broadcast (or found at start).
    newest: AtomicI64,
}

impl<R> Hub<R> {
    /// A receiver of every update broadcast from now on, in `group`, and
    /// the newest sequence before them.
    pub fn subscribe(&self, group: &str) -> (Receiver<R>, i64) {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let rx = match groups.get(group) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(BUFFER);
                groups.insert(group.to_owned(), tx);
                rx
            }
        };
        (rx, self.newest())
    }

    /// The newest sequence number broadcast (or found at start).
    pub fn newest(&self) -> i64 {
        self.newest.load(Ordering::Acquire)
    }

    /// Subscribers right now.
    pub fn subscribers(&self) -> usize {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.values().map(|tx| tx.receiver_count()).sum()
    }

    /// Sends `p` to every group, group after group; forgets empty groups.
    fn publish(&self, p: Published<R>) {
        let seq = p.update.seq;
        let p = Arc::new(p);
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.retain(|_, tx| tx.receiver_count() > 0);
        self.newest.fetch_max(seq, Ordering::AcqRel);
        for tx in groups.values() {
            // A group whose last subscriber just left is not an error.
            let _ = tx.send(p.clone());
        }
    }
}

/// Starts the hub, which renders each update with `render`; it runs until `stop`.
pub fn spawn<R: Send + Sync + 'static>(
    store: Store,
    render: fn(&Update) -> R,
    stop: CancellationToken,
) -> (Arc<Hub<R>>, JoinHandle<()>) {
    let hub = Arc::new(Hub {
        groups: Mutex::new(HashMap::new()),
        newest: AtomicI64::new(0),
    });
    let task = {
        let hub = hub.clone();
        tokio::spawn(async move {
            loop {
                match run(&store, &hub, render, &stop).await {
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

async fn run<R>(
    store: &Store,
    hub: &Hub<R>,
    render: fn(&Update) -> R,
    stop: &CancellationToken,
) -> Result<(), StoreError> {
    let mut listener = store.update_listener().await?;
    if hub.newest() == 0 {
        let (_, newest) = store.update_seq_bounds().await?;
        hub.newest.store(newest, Ordering::Release);
    }
    loop {
        // Everything after what was broadcast, in order.
        loop {
            let updates = store.updates_after(None, hub.newest(), 1_000).await?;
            if updates.is_empty() {
                break;
            }
            // `publish` advances `newest` with each update.
            for update in updates {
                let rendered = render(&update);
                hub.publish(Published { update, rendered });
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            notified = listener.recv() => { notified?; }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
