//! The incident feed: what one subscriber sees, whatever renders it (gRPC
//! `Incidents.Watch` today, a browser's event stream next). A snapshot of
//! the open incidents on request, a replay of the outbox after a resume
//! point, then live updates from the hub, with heartbeats when idle.
//!
//! It never skips an update: live updates carry their sequence, and a
//! subscriber that falls behind the hub catches up from the outbox. A resume
//! point the outbox cannot serve (below what retention kept, or past the
//! newest sequence ever written) is a `FeedError::Resync*`, never a silent
//! hole. Only the caller's tenant's updates pass, then its filter.

use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc, time::Duration};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Published, Receiver};
use crate::{
    domain::{
        TenantId,
        incident::{Incident, IncidentFilter, Update},
    },
    store::{Store, StoreError},
};

/// Updates read from the outbox at a time while catching up.
const REPLAY_PAGE: i64 = 500;

/// What a subscriber asks for.
#[derive(Debug, Clone)]
pub struct FeedRequest {
    /// Whose incidents (the caller's, never from the request body).
    pub tenant: TenantId,
    /// Which of them.
    pub filter: IncidentFilter,
    /// Start with the open incidents.
    pub send_snapshot: bool,
    /// Replay the updates after this sequence first (0: none).
    pub resume_after: i64,
    /// Time between heartbeats of an idle feed.
    pub heartbeat: Duration,
}

/// One item of a feed; `R` is the hub's rendering of a live update.
#[derive(Debug)]
pub enum Item<R> {
    /// An open incident of the snapshot.
    Snapshot(Box<Incident>),
    /// The snapshot is complete; live from `newest`.
    SnapshotDone {
        /// The newest sequence when the feed opened.
        newest: i64,
    },
    /// An update replayed from the outbox.
    Update(Box<Update>),
    /// A live update, rendered once by the hub for every subscriber.
    Live(Arc<Published<R>>),
    /// Nothing happened for a while; the newest sequence.
    Heartbeat {
        /// The hub's newest sequence.
        newest: i64,
    },
}

/// Why a feed cannot start or goes no further; `E` is why the caller's
/// access ended (its key revoked), in the caller's terms.
#[derive(Debug)]
pub enum FeedError<E> {
    /// The updates after `after` are no longer kept: list the open
    /// incidents and follow from now.
    Resync {
        /// The resume point.
        after: i64,
    },
    /// `resume` is past the newest sequence ever written: not one this
    /// server sent.
    ResyncFuture {
        /// The resume point.
        resume: i64,
        /// The newest sequence written.
        newest: i64,
    },
    /// The server is shutting down; resume after the last sequence received.
    ShuttingDown,
    /// The caller's access ended.
    Ended(E),
    /// The outbox could not be read.
    Store(StoreError),
}

impl<E> From<StoreError> for FeedError<E> {
    fn from(err: StoreError) -> Self {
        FeedError::Store(err)
    }
}

/// Whether a feed resumed after `resume` may have lost updates, given the
/// oldest and newest outbox sequences kept (0 when none) and the highest one
/// pruned (0 when none). Below the pruned sequence updates are gone; below
/// the oldest kept they were removed some other way; past the newest ever
/// written the sequence is not this outbox's (a subscriber waiting for it
/// would silently miss every update until the sequence caught up); with
/// nothing kept and nothing ever pruned no sequence is this outbox's.
pub fn resync_needed(resume: i64, oldest: i64, newest: i64, pruned_through: i64) -> bool {
    resume < pruned_through
        || resume > newest.max(pruned_through)
        || (oldest == 0 && pruned_through == 0)
        || (oldest > 0 && resume < oldest - 1)
}

/// One subscriber's feed.
pub struct Feed<R, E> {
    store: Store,
    hub: Arc<Hub<R>>,
    tenant: TenantId,
    filter: IncidentFilter,
    rx: Receiver<R>,
    /// Items ready to hand out (snapshot, replayed updates).
    ready: VecDeque<Item<R>>,
    /// The newest sequence the feed has passed (handed out or filtered out).
    last: i64,
    /// Catching up from the outbox after this sequence, when `Some`.
    replay_from: Option<i64>,
    heartbeat: tokio::time::Interval,
    shutdown: CancellationToken,
    /// Resolves once the caller's access ends (boxed: an idle subscriber's
    /// state stays small).
    ended: Pin<Box<dyn Future<Output = E> + Send>>,
}

impl<R: Send + Sync + 'static, E> Feed<R, E> {
    /// Opens a feed in subscriber group `group` (the subscribers of one
    /// connection share one, so they wake and write together): checks the
    /// resume point and queues the snapshot. `ended` resolves when the
    /// caller's access ends; `shutdown` when the server stops.
    pub async fn open(
        store: Store,
        hub: Arc<Hub<R>>,
        group: &str,
        request: FeedRequest,
        shutdown: CancellationToken,
        ended: Pin<Box<dyn Future<Output = E> + Send>>,
    ) -> Result<Feed<R, E>, FeedError<E>> {
        // Subscribe first: nothing broadcast from here on can be missed.
        let (rx, newest) = hub.subscribe(group);
        let resume = request.resume_after;
        if resume > 0 {
            let (oldest, newest_kept) = store.update_seq_bounds().await?;
            let pruned = store.outbox_pruned_through().await?;
            if resync_needed(resume, oldest, newest_kept, pruned) {
                let newest = newest_kept.max(pruned);
                return Err(if resume > newest {
                    FeedError::ResyncFuture { resume, newest }
                } else {
                    FeedError::Resync { after: resume }
                });
            }
        }
        let mut ready = VecDeque::new();
        if request.send_snapshot {
            for i in store
                .open_incidents(request.tenant)
                .await?
                .into_iter()
                .filter(|i| request.filter.matches(i))
            {
                ready.push_back(Item::Snapshot(Box::new(i)));
            }
            ready.push_back(Item::SnapshotDone { newest });
        } else if resume == 0 {
            // A first heartbeat at once: the subscriber learns the sequence it
            // is live from (to resume after a disconnect), and the stream's
            // first write is not the first update's.
            ready.push_back(Item::Heartbeat { newest });
        }
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + request.heartbeat,
            request.heartbeat,
        );
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Feed {
            store,
            hub,
            tenant: request.tenant,
            filter: request.filter,
            rx,
            ready,
            last: if resume > 0 { resume } else { newest },
            replay_from: (resume > 0).then_some(resume),
            heartbeat,
            shutdown,
            ended,
        })
    }

    fn keep(&self, u: &Update) -> bool {
        u.incident.tenant_id == self.tenant && self.filter.matches(&u.incident)
    }

    /// The next item: ready ones first, then a page of replay, then live.
    /// `None` never comes before an error or the end of the hub.
    pub async fn next(&mut self) -> Option<Result<Item<R>, FeedError<E>>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                if self.ready.is_empty() {
                    // Its slots are items' size: an idle feed holds none.
                    self.ready = VecDeque::new();
                }
                return Some(Ok(item));
            }
            if let Some(after) = self.replay_from {
                // Boxed: the database futures are large, and inline they would
                // size every idle subscriber's state (docs/perf/watch.md).
                let (store, tenant) = (self.store.clone(), self.tenant);
                let read = Box::pin(async move {
                    // Updates after `after` may have been pruned meanwhile.
                    let pruned = store.outbox_pruned_through().await?;
                    if after < pruned {
                        return Ok(None);
                    }
                    store
                        .updates_after(Some(tenant), after, REPLAY_PAGE)
                        .await
                        .map(Some)
                });
                let page = match read.await {
                    Ok(Some(page)) => page,
                    Ok(None) => return Some(Err(FeedError::Resync { after })),
                    Err(err) => return Some(Err(FeedError::Store(err))),
                };
                match page.last().map(|u| u.seq) {
                    None => self.replay_from = None,
                    Some(last) => {
                        self.replay_from = Some(last);
                        self.last = self.last.max(last);
                        let kept: Vec<Item<R>> = page
                            .into_iter()
                            .filter(|u| self.keep(u))
                            .map(|u| Item::Update(Box::new(u)))
                            .collect();
                        self.ready.extend(kept);
                    }
                }
                continue;
            }
            tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(p) => {
                        if p.update.seq <= self.last {
                            continue;
                        }
                        self.last = p.update.seq;
                        if self.keep(&p.update) {
                            return Some(Ok(Item::Live(p)));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind the hub: catch up from the outbox, where nothing is skipped.
                        metrics::counter!("pulsyon_watch_catch_ups_total").increment(1);
                        self.replay_from = Some(self.last);
                    }
                    Err(RecvError::Closed) => return Some(Err(FeedError::ShuttingDown)),
                },
                _ = self.shutdown.cancelled() => return Some(Err(FeedError::ShuttingDown)),
                why = &mut self.ended => return Some(Err(FeedError::Ended(why))),
                _ = self.heartbeat.tick() => {
                    return Some(Ok(Item::Heartbeat { newest: self.hub.newest() }));
                }
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::resync_needed;

    #[test]
    fn a_resume_below_what_was_pruned_or_kept_needs_a_resync() {
        // Nothing pruned; 10.. kept: resuming after 9 or later loses nothing.
        assert!(!resync_needed(9, 10, 50, 0));
        assert!(!resync_needed(42, 10, 50, 0));
        assert!(resync_needed(8, 10, 50, 0));
        // Past the newest sequence: not one this outbox sent.
        assert!(!resync_needed(50, 10, 50, 0));
        assert!(resync_needed(51, 10, 50, 0));
        assert!(resync_needed(21, 0, 0, 20));
        // 1..=20 pruned, 15 still kept (an open incident's): after 20 is whole.
        assert!(!resync_needed(20, 15, 30, 20));
        assert!(resync_needed(19, 15, 30, 20));
        // Everything pruned: only a resume at or past the horizon is whole.
        assert!(!resync_needed(20, 0, 0, 20));
        assert!(resync_needed(5, 0, 0, 20));
        // Nothing kept, nothing ever pruned: not this outbox's sequence.
        assert!(resync_needed(3, 0, 0, 0));
    }
}
