//! Notifications: every incident update a tenant's receivers must hear of
//! becomes a delivery row, and the `notify` role sends them.
//!
//! Two loops per process with the role:
//! - the **planner** reads the outbox after its cursor and writes one
//!   delivery per (update x receiver), the message rendered once
//!   (`message.rs`), moving the cursor in the same transaction (a
//!   transaction-level advisory lock lets one process plan at a time; any
//!   may): no update is skipped or planned twice across crashes, restarts
//!   and leader changes;
//! - the **sender** claims due deliveries (`FOR UPDATE SKIP LOCKED`, with a
//!   lease: a sender killed mid-send leaves them to another once the lease
//!   passes), at most `per_receiver` in flight per receiver and only the
//!   earliest pending update of an incident per receiver (in order), sends
//!   each in a task of its own with a timeout (`send.rs`; one slow receiver
//!   holds only its own slots), records the attempts finished meanwhile
//!   together before its next claim (one transaction; one by one if that
//!   fails, so that one record cannot lose the others) and retries with
//!   backoff and jitter until the deadline, then `failed`.
//!
//! A message has the same identity on every attempt and after a failover
//! (`webhook-id`, PagerDuty's `dedup_key`, the email's `Message-ID`), so a
//! receiver can drop a repeat. Outbound safety: `target.rs`.

pub mod fallback;
pub mod message;
pub mod plan;
pub mod routing;
pub mod send;
pub mod sign;
pub mod spec;
pub mod target;

use std::{sync::Arc, time::Duration};

use time::OffsetDateTime;
use tokio::{task::JoinHandle, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        incident::UpdateKind,
        notify::{Attempt, bounded_error, retry_delay},
    },
    store::{
        Store,
        notify::{Claimed, Finished, Next},
    },
};
use message::Message;

/// The changes a receiver hears of (another alert joining an open
/// incident is shown on the timeline, not sent).
pub const NOTIFIED: [UpdateKind; 5] = [
    UpdateKind::Opened,
    UpdateKind::Escalated,
    UpdateKind::Acknowledged,
    UpdateKind::Resolved,
    UpdateKind::Reopened,
];

/// Settings of the notify role.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The dashboard's address as people reach it (links in messages).
    pub public_url: String,
    /// Whether receivers may point at private addresses.
    pub allow_private_targets: bool,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// After this long undelivered, a delivery is `failed`.
    pub deadline: Duration,
    /// Deliveries in flight per receiver at most.
    pub per_receiver: i64,
    /// Deliveries in flight per process at most.
    pub in_flight: usize,
    /// The first retry's delay (doubling up to `max_backoff`).
    pub base_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
    /// How often the planner and the sender look for work when idle.
    pub poll: Duration,
    /// The incident lifecycle's settings (for the system's incident of a
    /// failing receiver).
    pub lifecycle: crate::incidents::lifecycle::Policy,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            public_url: String::new(),
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(6 * 3600),
            per_receiver: 4,
            in_flight: 256,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            poll: Duration::from_millis(100),
            lifecycle: Default::default(),
        }
    }
}

/// Runs the planner and the sender until `stop`.
pub fn spawn(
    store: Store,
    config: NotifyConfig,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let senders = send::Senders::new(config.timeout, config.allow_private_targets)
        .map_err(anyhow::Error::msg)?;
    let config = Arc::new(config);
    // The planner wakes this process's sender when it planned something
    // (other processes' senders find it at their next poll).
    let planned = Arc::new(tokio::sync::Notify::new());
    Ok(tokio::spawn(async move {
        let planner = tokio::spawn(run_planner(
            store.clone(),
            config.clone(),
            planned.clone(),
            stop.clone(),
        ));
        run_sender(store, config, senders, planned, stop).await;
        let _ = planner.await;
    }))
}

/// The least time between two planner passes.
const PASS_GAP: Duration = Duration::from_millis(20);

/// Plans after every outbox NOTIFY (a commit of incident updates) and at
/// least every `poll` (escalations, repeats, windows and silences fall due
/// with time; a lost connection misses notifications).
async fn run_planner(
    store: Store,
    config: Arc<NotifyConfig>,
    planned: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    let mut checked: Option<std::time::Instant> = None;
    let mut last_pass = std::time::Instant::now();
    let mut listener = match store.update_listener().await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "notify: no outbox notifications; planning on the poll alone");
            None
        }
    };
    loop {
        if checked.is_none_or(|t| t.elapsed() >= fallback::EVERY) {
            checked = Some(std::time::Instant::now());
            if let Err(e) = fallback::check(&store, &config.lifecycle).await {
                tracing::warn!(error = %e, "notify: checking receivers' health failed; trying again");
            }
        }
        // A burst of commits wakes the planner for each: one pass per
        // PASS_GAP at most reads them together (each pass is a transaction
        // and several reads, whatever it finds).
        if let Some(wait) = PASS_GAP.checked_sub(last_pass.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        last_pass = std::time::Instant::now();
        let busy = match plan::pass(&store, &config).await {
            Ok(Some(n)) => {
                if n > 0 {
                    planned.notify_one();
                }
                n as i64 == plan::BATCH
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "notify: planning deliveries failed; trying again");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(config.poll) => {}
            woke = async { listener.as_mut()?.recv().await.err() }, if listener.is_some() => {
                if let Some(e) = woke {
                    tracing::warn!(error = %e, "notify: outbox notifications lost; planning on the poll alone");
                    listener = None;
                }
            }
        }
    }
}

async fn run_sender(
    store: Store,
    config: Arc<NotifyConfig>,
    senders: send::Senders,
    planned: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    let mut gauges = tokio::time::interval(Duration::from_secs(5));
    let lease = config.timeout * 2 + Duration::from_secs(5);
    // Which process holds a delivery (`deliveries.leased_by`).
    let sender = uuid::Uuid::now_v7();
    tracing::info!(%sender, "notify: sending deliveries");
    // Attempts finished since the last claim: recorded together, in one
    // transaction, before the next claim (whose slots they free).
    let mut done: Vec<Finished> = Vec::new();
    loop {
        while let Some(finished) = tasks.try_join_next() {
            done.extend(finished.ok());
        }
        record(&store, &mut done).await;
        let free = config.in_flight.saturating_sub(tasks.len());
        let mut claimed = Vec::new();
        if free > 0 {
            match store
                .claim_deliveries(free as i64, config.per_receiver, lease, sender)
                .await
            {
                Ok(c) => claimed = c,
                Err(e) => {
                    tracing::warn!(error = %e, "notify: claiming deliveries failed; trying again")
                }
            }
        }
        let got = !claimed.is_empty();
        for c in claimed {
            let (senders, config) = (senders.clone(), config.clone());
            tasks.spawn(async move { deliver(&senders, &config, c).await });
        }
        if got && tasks.len() < config.in_flight {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(config.poll) => {}
            _ = planned.notified() => {}
            Some(finished) = tasks.join_next(), if !tasks.is_empty() => done.extend(finished.ok()),
            _ = gauges.tick() => upkeep(&store).await,
        }
    }
    // In-flight sends finish (each is bounded by its timeout); what is not
    // finished is sent again by another process once its lease passes.
    let _ = tokio::time::timeout(config.timeout, async {
        while let Some(finished) = tasks.join_next().await {
            done.extend(finished.ok());
        }
    })
    .await;
    record(&store, &mut done).await;
}

/// Records the attempts in `done` (a failure leaves them to their leases:
/// the deliveries are sent again once those pass).
async fn record(store: &Store, done: &mut Vec<Finished>) {
    if let Err(e) = store.finish_deliveries(done).await {
        tracing::warn!(error = %e, attempts = done.len(), "notify: recording attempts failed; their leases will pass");
    }
    done.clear();
}

/// Overdue deliveries failed; the pending gauges set.
async fn upkeep(store: &Store) {
    match store.fail_overdue_deliveries().await {
        Ok(n) if n > 0 => {
            metrics::counter!("pulsyon_notify_deliveries_total", "kind" => "any", "outcome" => "failed")
                .increment(n);
            tracing::warn!(
                deliveries = n,
                "notify: deliveries past their deadline are failed"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "notify: failing overdue deliveries"),
    }
    if let Ok((pending, oldest)) = store.pending_deliveries().await {
        metrics::gauge!("pulsyon_notify_pending_deliveries").set(pending as f64);
        metrics::gauge!("pulsyon_notify_oldest_pending_seconds").set(oldest);
    }
}

/// One attempt of a claimed delivery, and what comes next.
async fn deliver(senders: &send::Senders, config: &NotifyConfig, c: Claimed) -> Finished {
    let at = OffsetDateTime::now_utc();
    let kind = c.receiver.kind.as_str();
    let outcome = match serde_json::from_value::<Message>(c.message.clone()) {
        Ok(m) => {
            let d = &c.delivery;
            let id = message::identity(d.incident_id, d.update_seq, &d.reason);
            senders.send(&c.receiver, &id, &m).await
        }
        Err(e) => send::Outcome {
            ok: false,
            status: 0,
            error: format!("stored message unreadable: {e}"),
            retry_after: None,
            permanent: true,
            latency: Duration::ZERO,
        },
    };
    let d = &c.delivery;
    let next = if outcome.ok {
        let latency = (OffsetDateTime::now_utc() - d.committed_at).as_seconds_f64();
        metrics::histogram!("pulsyon_notify_commit_to_delivery_seconds", "kind" => kind)
            .record(latency);
        Next::Delivered
    } else if outcome.permanent {
        Next::Failed(format!("refused for good: {}", outcome.error))
    } else {
        let jitter = f64::from(rand_unit());
        let delay = retry_delay(
            d.attempts.max(1) as u32,
            config.base_backoff,
            config.max_backoff,
            jitter,
            outcome.retry_after,
        );
        let next_at = OffsetDateTime::now_utc() + delay;
        match next_at > d.deadline {
            true => Next::Failed(bounded_error(&format!(
                "deadline passed; last error: {}",
                outcome.error
            ))),
            false => Next::RetryAt(next_at),
        }
    };
    let result = match next {
        Next::Delivered => "delivered",
        Next::Failed(_) => "failed",
        Next::RetryAt(_) => "retried",
    };
    metrics::counter!("pulsyon_notify_deliveries_total", "kind" => kind, "outcome" => result)
        .increment(1);
    if !outcome.ok {
        tracing::info!(
            delivery = d.delivery_id, receiver = %c.receiver.name, attempt = d.attempts,
            status = outcome.status, error = %outcome.error, "notify: attempt failed"
        );
    }
    let attempt = Attempt {
        attempt: d.attempts,
        at,
        ok: outcome.ok,
        status: outcome.status,
        latency_ms: outcome.latency.as_secs_f64() * 1e3,
        error: outcome.error,
    };
    Finished {
        tenant: d.tenant_id,
        delivery_id: d.delivery_id,
        attempt,
        next,
    }
}

/// A random number in 0..1 for jitter.
fn rand_unit() -> f32 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f32::from(u16::from_le_bytes(b)) / f32::from(u16::MAX),
        Err(_) => 0.5,
    }
}
