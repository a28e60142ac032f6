//! The ingest side of the buffer: one entry per validated batch, refused
//! with a retry delay when a shard or Redis is full; with `--ack-after
//! commit`, the wait for the writer's report on this process's reply stream.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    AsyncCommands,
    streams::{StreamId, StreamReadReply},
};
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{Buffer, COMMIT_WAIT, IDLE_POLL, MONITOR_TICK, report::Report};
use crate::{
    domain::{BatchFate, BatchWrite},
    ingest::{Admission, AdmitError, BoxFuture, QueueDepth, Reply, ReplyTo, WriteError},
};

/// How full the buffer is, as the ingest side last read it.
#[derive(Debug, Default)]
struct Fill {
    /// Shards past `max_entries`.
    full_shards: Mutex<Vec<bool>>,
    /// Redis past 90% of its maxmemory.
    memory_full: AtomicBool,
    used_bytes: AtomicU64,
    max_bytes: AtomicU64,
}

/// Batches waiting for their commit report (`--ack-after commit`).
#[derive(Debug, Default)]
struct Waiters {
    next: AtomicU64,
    map: Mutex<HashMap<String, (Instant, Answer)>>,
}

/// Where a batch's answer goes.
type Answer = oneshot::Sender<Result<BatchFate, WriteError>>;

/// Admission into the buffer: the ingest side.
#[derive(Debug)]
pub struct RedisAdmission {
    buffer: Arc<Buffer>,
    fill: Arc<Fill>,
    /// This process's reply stream and its waiters, with `--ack-after commit`.
    replies: Option<(String, Arc<Waiters>)>,
}

impl RedisAdmission {
    /// Admission into `buffer`; starts the fill monitor (and, with
    /// `--ack-after commit`, the reader of this process's reply stream),
    /// which run until `stop`.
    pub fn start(buffer: Arc<Buffer>, stop: CancellationToken) -> (RedisAdmission, JoinHandle<()>) {
        let fill = Arc::new(Fill {
            full_shards: Mutex::new(vec![false; buffer.config.shards as usize]),
            ..Fill::default()
        });
        let replies = buffer.config.ack_after_commit.then(|| {
            (
                format!(
                    "{}:replies:{{{}}}",
                    buffer.config.prefix,
                    uuid::Uuid::now_v7()
                ),
                Arc::new(Waiters::default()),
            )
        });
        let task = {
            let (buffer, fill, replies) = (buffer.clone(), fill.clone(), replies.clone());
            tokio::spawn(async move {
                let monitor = monitor(buffer.clone(), fill, stop.clone());
                match replies {
                    Some((stream, waiters)) => {
                        tokio::join!(monitor, read_replies(buffer, stream, waiters, stop));
                    }
                    None => monitor.await,
                }
            })
        };
        (
            RedisAdmission {
                buffer,
                fill,
                replies,
            },
            task,
        )
    }
}

/// Reads the buffer's fill every second until `stop`: shard lengths and
/// Redis memory, for the refusals and the metrics.
async fn monitor(buffer: Arc<Buffer>, fill: Arc<Fill>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(MONITOR_TICK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut conn = buffer.conn.clone();
        let mut full = Vec::with_capacity(buffer.config.shards as usize);
        let mut ok = true;
        for shard in 0..buffer.config.shards {
            let len: redis::RedisResult<u64> = conn.xlen(buffer.key(shard)).await;
            buffer.note(&len);
            match len {
                Ok(len) => {
                    metrics::gauge!("pulsyon_buffer_entries", "shard" => shard.to_string())
                        .set(len as f64);
                    full.push(len >= buffer.config.max_entries);
                }
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            *fill.full_shards.lock().unwrap_or_else(|p| p.into_inner()) = full;
        }
        let info: redis::RedisResult<String> = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await;
        if let Ok(info) = info {
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (used, max) = (field("used_memory"), field("maxmemory"));
            fill.used_bytes.store(used, Ordering::Relaxed);
            fill.max_bytes.store(max, Ordering::Relaxed);
            fill.memory_full
                .store(max > 0 && used * 10 >= max * 9, Ordering::Relaxed);
            metrics::gauge!("pulsyon_redis_used_bytes").set(used as f64);
        }
    }
}

/// Reads this process's reply stream until `stop`, answering the waiting
/// batches; answers UNAVAILABLE to those that waited past `COMMIT_WAIT`.
async fn read_replies(
    buffer: Arc<Buffer>,
    stream: String,
    waiters: Arc<Waiters>,
    stop: CancellationToken,
) {
    let mut conn = buffer.conn.clone();
    let mut last = "0-0".to_owned();
    loop {
        let idle = {
            let map = waiters.map.lock().unwrap_or_else(|p| p.into_inner());
            map.is_empty()
        };
        let read: redis::RedisResult<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query_async(&mut conn)
            .await;
        let entries: Vec<StreamId> = match read {
            Ok(reply) => reply.keys.into_iter().flat_map(|k| k.ids).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "reply stream read failed");
                Vec::new()
            }
        };
        if let Some(newest) = entries.last() {
            last = newest.id.clone();
            {
                let mut map = waiters.map.lock().unwrap_or_else(|p| p.into_inner());
                for entry in &entries {
                    match Report::from_entry(entry) {
                        Ok(report) => {
                            if let Some((_, tx)) = map.remove(&report.waiter) {
                                let _ = tx.send(Ok(report.fate));
                            }
                        }
                        // Its batch, unanswered, times out and is resent.
                        Err(e) => tracing::warn!(error = %e, entry = %entry.id, "reply stream"),
                    }
                }
            }
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            let _: redis::RedisResult<u64> = conn.xdel(&stream, &ids).await;
        }
        // Batches whose report never came (a writer lost, Redis lost): the
        // client resends them, and the ledger recognises any that did commit.
        {
            let mut map = waiters.map.lock().unwrap_or_else(|p| p.into_inner());
            let expired: Vec<String> = map
                .iter()
                .filter(|(_, (at, _))| at.elapsed() > COMMIT_WAIT)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                if let Some((_, tx)) = map.remove(&k) {
                    let _ = tx.send(Err(WriteError::Unavailable));
                }
            }
        }
        if !entries.is_empty() {
            continue;
        }
        let wait = if idle {
            IDLE_POLL * 5
        } else {
            Duration::from_millis(2)
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Admission for RedisAdmission {
    fn submit(&self, batch: BatchWrite, _bytes: usize) -> BoxFuture<'_, Result<Reply, AdmitError>> {
        Box::pin(async move {
            let shard = self.buffer.shard_of(batch.tenant_id);
            let shard_full = {
                let full = self
                    .fill
                    .full_shards
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                full.get(shard as usize).copied().unwrap_or(false)
            };
            if shard_full || self.fill.memory_full.load(Ordering::Relaxed) {
                metrics::counter!("pulsyon_buffer_full_refusals_total").increment(1);
                return Err(AdmitError::Overloaded(Duration::from_secs(1)));
            }
            let (tx, rx) = oneshot::channel();
            // With commit acks the reply stream answers; otherwise the
            // append itself does.
            let (reply_to, now): (Option<ReplyTo>, Option<Answer>) = match &self.replies {
                Some((stream, waiters)) => {
                    let id = waiters.next.fetch_add(1, Ordering::Relaxed).to_string();
                    waiters
                        .map
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone(), (Instant::now(), tx));
                    (
                        Some(ReplyTo {
                            stream: stream.clone(),
                            id,
                        }),
                        None,
                    )
                }
                None => (None, Some(tx)),
            };
            let record = self.buffer.codec.encode(&batch, reply_to.as_ref());
            match self.buffer.append(shard, &record).await {
                Ok(_) => {
                    metrics::counter!("pulsyon_buffer_appended_total").increment(1);
                    if let Some(tx) = now {
                        let _ = tx.send(Ok(BatchFate::Buffered));
                    }
                    Ok(rx)
                }
                Err(e) => {
                    tracing::warn!(error = %e, shard, "buffer append failed");
                    if let (Some((_, waiters)), Some(r)) = (&self.replies, &reply_to) {
                        waiters
                            .map
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&r.id);
                    }
                    Err(AdmitError::Unavailable(Duration::from_secs(1)))
                }
            }
        })
    }

    fn depth(&self) -> QueueDepth {
        QueueDepth {
            used_bytes: self.fill.used_bytes.load(Ordering::Relaxed),
            capacity_bytes: self.fill.max_bytes.load(Ordering::Relaxed),
        }
    }
}
