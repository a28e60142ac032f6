//! The ingest buffer between ingest and writer processes: Redis Streams, on
//! one Redis or a Redis Cluster (docs/adr/0015-ingest-buffer.md).
//!
//! - **Shards**: `--buffer-shards` streams `<prefix>:buffer:{<n>}`, each on
//!   one cluster slot (the hash tag), a tenant's batches always in the same
//!   one. One consumer group, `writers`.
//! - **Ingest** (`RedisAdmission`): one entry per validated batch, the
//!   versioned record of proto/pulsyon/internal (`ingest::RecordCodec`),
//!   appended with no MAXLEN (nothing unacknowledged is ever trimmed); a
//!   shard past `--buffer-max-entries`, or Redis past 90% of its maxmemory,
//!   refuses with a retry delay instead. The ack says BUFFERED, or, with
//!   `--ack-after commit`, waits for the writer's report on this process's
//!   reply stream and says COMMITTED.
//! - **Writers** (`spawn_drain`): each owns shards by lease in PostgreSQL
//!   (`store::buffer`), takes over a dead writer's shard with its pending
//!   entries (XCLAIM), reads new entries, hands them to the batching writer
//!   under the shard's fence, XACKs after the commit; an entry delivered
//!   `--buffer-max-deliveries` times, or unreadable, is kept in
//!   `buffer_poison` and acknowledged. Each shard is trimmed up to the
//!   group's low-water mark (XTRIM MINID: the oldest pending entry, or the
//!   last delivered one).
//!
//! Redis 7.0 has no WAITAOF: an entry is as durable as the Redis's own
//! persistence, which is read at start-up; a Redis that keeps nothing on
//! disk is refused unless `--allow-volatile-buffer`.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{
    AsyncCommands, Value,
    streams::{StreamId, StreamPendingCountReply, StreamReadReply},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::conn::Conn;
use crate::{
    domain::{BatchFate, BatchWrite, TenantId},
    ingest::{
        Admission, AdmitError, BoxFuture, Held, QueueDepth, RecordCodec, Reply, ReplyTo,
        Submission, WriteError,
    },
    store::{Store, buffer::Fence},
};

/// The consumer group of the writers.
const GROUP: &str = "writers";
/// How long a shard reader waits before reading again when there was nothing.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// Entries read at a time.
const READ_COUNT: usize = 256;
/// How often a writer renews its leases and looks for shards.
const LEASE_TICK: Duration = Duration::from_secs(1);
/// How often an ingest process reads the buffer's fill.
const MONITOR_TICK: Duration = Duration::from_secs(1);
/// How often a shard is trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(2);
/// Longest an ingest process waits for a writer's commit report.
const COMMIT_WAIT: Duration = Duration::from_secs(60);
/// Most reports kept in a reply stream (reports are read within milliseconds).
const REPLY_STREAM_MAX: usize = 100_000;

/// What the buffer is set to.
#[derive(Debug, Clone)]
pub struct BufferConfig {
    /// `redis://` URLs: one Redis, or the seeds of a cluster.
    pub urls: Vec<String>,
    /// Whether `urls` are a Redis Cluster's.
    pub cluster: bool,
    /// Prefix of the keys.
    pub prefix: String,
    /// Streams.
    pub shards: u32,
    /// Entries a shard holds before ingest refuses.
    pub max_entries: u64,
    /// Deliveries after which an entry is poison.
    pub max_deliveries: u32,
    /// A writer's lease of a shard.
    pub lease: Duration,
    /// Acks wait for the commit.
    pub ack_after_commit: bool,
    /// Accept a Redis that keeps nothing on disk.
    pub allow_volatile: bool,
}

/// Why the buffer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// Redis cannot be reached (or refused a command).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis keeps nothing on disk and that was not allowed.
    #[error(
        "{0}: a BUFFERED ack would not survive a Redis restart; turn on appendonly (appendfsync always for no loss) or pass --allow-volatile-buffer"
    )]
    Volatile(String),
}

/// How a Redis keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    /// `appendonly`.
    pub appendonly: bool,
    /// `appendfsync` (`always`, `everysec`, `no`).
    pub appendfsync: String,
    /// `save` (RDB snapshot rules; empty: none).
    pub save: String,
}

impl Persistence {
    /// Whether a write acknowledged by this Redis survives its restart.
    pub fn volatile(&self) -> bool {
        !self.appendonly
    }
}

/// The buffer: its connection, shards and record codec.
pub struct Buffer {
    conn: Conn,
    config: BufferConfig,
    codec: Arc<dyn RecordCodec>,
    /// Whether Redis answered the latest command.
    up: AtomicBool,
    /// Where the process's health learns it.
    readiness: Option<Arc<crate::ops::Readiness>>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

async fn config_get(conn: &mut Conn, name: &str) -> redis::RedisResult<String> {
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(conn)
        .await?;
    Ok(pair.get(1).cloned().unwrap_or_default())
}

/// How each Redis of `urls` keeps its data (each node of a cluster).
pub async fn persistence(urls: &[String]) -> Result<Vec<(String, Persistence)>, BufferError> {
    let mut out = Vec::new();
    for url in urls {
        let mut conn = Conn::open(std::slice::from_ref(url), false).await?;
        out.push((
            url.clone(),
            Persistence {
                appendonly: config_get(&mut conn, "appendonly").await? == "yes",
                appendfsync: config_get(&mut conn, "appendfsync").await?,
                save: config_get(&mut conn, "save").await?,
            },
        ));
    }
    Ok(out)
}

impl Buffer {
    /// Connects, checks the persistence of every Redis named and makes the
    /// shards and their consumer group exist.
    pub async fn connect(
        config: BufferConfig,
        codec: Arc<dyn RecordCodec>,
        readiness: Option<Arc<crate::ops::Readiness>>,
    ) -> Result<Buffer, BufferError> {
        for (url, p) in persistence(&config.urls).await? {
            let shown = redact(&url);
            if p.volatile() {
                let what = format!(
                    "Redis at {shown} keeps nothing on disk (appendonly no, save {:?})",
                    p.save
                );
                if !config.allow_volatile {
                    return Err(BufferError::Volatile(what));
                }
                tracing::error!(
                    "{what}: --allow-volatile-buffer is set, so BUFFERED acks are lost if it restarts"
                );
            } else if p.appendfsync != "always" {
                tracing::warn!(
                    redis = %shown,
                    appendfsync = %p.appendfsync,
                    "Redis syncs its append-only file every second or less: a Redis crash may lose the last second of BUFFERED acks (--ack-after commit, or appendfsync always, loses none)"
                );
            }
        }
        let conn = Conn::open(&config.urls, config.cluster).await?;
        let buffer = Buffer {
            conn,
            config,
            codec,
            up: AtomicBool::new(true),
            readiness,
        };
        for shard in 0..buffer.config.shards {
            buffer.ensure_group(shard).await?;
        }
        metrics::gauge!("pulsyon_buffer_ack_level", "level" => if buffer.config.ack_after_commit { "commit" } else { "buffered" }).set(1.0);
        Ok(buffer)
    }

    /// The stream of `shard`: one hash tag per shard, so each lies on one
    /// cluster slot and the shards spread over the cluster.
    pub fn key(&self, shard: u32) -> String {
        format!("{}:buffer:{{{shard}}}", self.config.prefix)
    }

    /// The shard of a tenant's batches.
    pub fn shard_of(&self, tenant: TenantId) -> u32 {
        // A fixed mix of the id: the same shard in every process and version.
        let mixed = (tenant.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        (mixed % u64::from(self.config.shards.max(1))) as u32
    }

    /// The settings.
    pub fn config(&self) -> &BufferConfig {
        &self.config
    }

    /// Whether Redis answered the latest command.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn note<T>(&self, result: &redis::RedisResult<T>) {
        let up = match result {
            Ok(_) => true,
            // An answer that is an error still means Redis is there.
            Err(e) => !(e.is_io_error() || e.is_timeout() || e.is_connection_dropped()),
        };
        self.up.store(up, Ordering::Relaxed);
        if let Some(r) = &self.readiness {
            r.set_buffer_up(up);
        }
        metrics::gauge!("pulsyon_redis_up").set(if up { 1.0 } else { 0.0 });
    }

    async fn ensure_group(&self, shard: u32) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let made: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.key(shard))
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match made {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Appends a record to `shard`; its entry id.
    async fn append(&self, shard: u32, record: &[u8]) -> redis::RedisResult<String> {
        let mut conn = self.conn.clone();
        let id: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(self.key(shard))
            .arg("*")
            .arg("b")
            .arg(record)
            .query_async(&mut conn)
            .await;
        self.note(&id);
        id
    }
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

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
                    let id: Option<String> = entry.get("r");
                    let fate: Option<String> = entry.get("f");
                    if let (Some(id), Some(fate)) = (id, fate)
                        && let Some((_, tx)) = map.remove(&id)
                    {
                        let _ = tx.send(parse_fate(&fate).ok_or(WriteError::Internal));
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

/// A writer's report of a batch's fate, as the reply stream carries it.
fn fate_text(fate: BatchFate) -> String {
    match fate {
        BatchFate::Stored { duplicates } => format!("s{duplicates}"),
        BatchFate::Duplicate => "d".into(),
        BatchFate::Buffered => "b".into(),
    }
}

fn parse_fate(text: &str) -> Option<BatchFate> {
    match text {
        "d" => Some(BatchFate::Duplicate),
        "b" => Some(BatchFate::Buffered),
        s => Some(BatchFate::Stored {
            duplicates: s.strip_prefix('s')?.parse().ok()?,
        }),
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

/// Starts a writer process's drain: it owns shards by lease and feeds their
/// entries to the batching writer through `writer` until `stop`; then it
/// finishes what it handed over, acknowledges it and gives its shards up.
pub fn spawn_drain(
    buffer: Arc<Buffer>,
    store: Store,
    writer: mpsc::Sender<Submission>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let owner = format!("writer-{}", uuid::Uuid::now_v7());
    tokio::spawn(async move {
        if let Err(e) = store.ensure_buffer_shards(buffer.config.shards).await {
            tracing::warn!(error = %e, "buffer shards: retrying");
        }
        let mut held: HashMap<i32, (Fence, CancellationToken, JoinHandle<()>)> = HashMap::new();
        let mut tick = tokio::time::interval(LEASE_TICK);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            // Shards whose task ended (lost to another writer, fenced) go.
            held.retain(|_, (_, _, task)| !task.is_finished());
            let fences: Vec<Fence> = held.values().map(|h| h.0).collect();
            let kept = match store
                .renew_buffer_shards(&owner, &fences, buffer.config.lease)
                .await
            {
                Ok(kept) => kept,
                Err(e) => {
                    tracing::warn!(error = %e, "buffer leases could not be renewed");
                    continue;
                }
            };
            for lost in fences.iter().filter(|f| !kept.contains(f)) {
                if let Some((_, cancel, _)) = held.remove(&lost.shard) {
                    tracing::warn!(shard = lost.shard, "buffer shard lost to another writer");
                    cancel.cancel();
                }
            }
            let writers = store.buffer_writers(&owner).await.unwrap_or(1).max(1);
            let fair = (i64::from(buffer.config.shards) + writers - 1) / writers;
            let want = fair - held.len() as i64;
            if want > 0 {
                match store
                    .claim_buffer_shards(&owner, buffer.config.shards, want, buffer.config.lease)
                    .await
                {
                    Ok(claimed) => {
                        for fence in claimed {
                            tracing::info!(
                                shard = fence.shard,
                                epoch = fence.epoch,
                                "buffer shard taken"
                            );
                            let cancel = stop.child_token();
                            let task = tokio::spawn(drain_shard(
                                buffer.clone(),
                                store.clone(),
                                writer.clone(),
                                owner.clone(),
                                fence,
                                cancel.clone(),
                            ));
                            held.insert(fence.shard, (fence, cancel, task));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "buffer shards could not be claimed"),
                }
            } else if want < 0 {
                // Another writer joined: give a shard up, after its in-flight batches.
                if let Some(&shard) = held.keys().max()
                    && let Some((fence, cancel, task)) = held.remove(&shard)
                {
                    cancel.cancel();
                    let _ = task.await;
                    let _ = store.release_buffer_shards(&owner, &[fence]).await;
                    tracing::info!(shard, "buffer shard given up to rebalance");
                }
            }
        }
        let mut fences = Vec::new();
        for (_, (fence, cancel, task)) in held.drain() {
            cancel.cancel();
            let _ = task.await;
            fences.push(fence);
        }
        if let Err(e) = store.release_buffer_shards(&owner, &fences).await {
            tracing::warn!(error = %e, "buffer leases could not be released; they run out");
        }
        tracing::info!("buffer drain stopped");
    })
}

/// One entry read from a shard.
struct Entry {
    id: String,
    record: Vec<u8>,
    deliveries: usize,
}

fn entry(s: StreamId) -> Entry {
    let record = match s.map.get("b") {
        Some(Value::BulkString(b)) => b.clone(),
        _ => Vec::new(),
    };
    Entry {
        deliveries: s.delivered_count.unwrap_or(1),
        id: s.id,
        record,
    }
}

/// Drains one owned shard until `cancel` (or until the shard is lost).
async fn drain_shard(
    buffer: Arc<Buffer>,
    store: Store,
    writer: mpsc::Sender<Submission>,
    owner: String,
    fence: Fence,
    cancel: CancellationToken,
) {
    let shard = fence.shard as u32;
    let key = buffer.key(shard);
    let mut conn = buffer.conn.clone();
    if let Err(e) = buffer.ensure_group(shard).await {
        tracing::warn!(error = %e, shard, "buffer group");
    }
    // Entries pending for anyone (a dead writer's, or this one's before a
    // restart) first, then new ones.
    let mut pending_first = true;
    let mut trimmed = Instant::now();
    let mut backoff = Duration::from_millis(100);
    while !cancel.is_cancelled() {
        let read = if pending_first {
            claim_pending(&mut conn, &key, &owner).await
        } else {
            read_new(&mut conn, &key, &owner).await
        };
        buffer.note(&read);
        let entries = match read {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, shard, "buffer read failed");
                sleep_or(&cancel, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if trimmed.elapsed() >= TRIM_EVERY {
            if let Err(e) = trim(&buffer, &mut conn, shard).await {
                tracing::debug!(error = %e, shard, "buffer trim failed");
            }
            trimmed = Instant::now();
        }
        if entries.is_empty() {
            pending_first = false;
            sleep_or(&cancel, IDLE_POLL).await;
            continue;
        }
        match handle(&buffer, &store, &writer, &mut conn, fence, entries).await {
            Handled::AllDone => backoff = Duration::from_millis(100),
            Handled::Retry => {
                // Left pending: read again after a pause (with their count raised).
                pending_first = true;
                sleep_or(&cancel, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Handled::Lost => {
                tracing::warn!(shard, "buffer shard fenced: another writer owns it now");
                return;
            }
        }
    }
}

async fn sleep_or(cancel: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// The shard's pending entries (of any consumer), claimed for `owner`:
/// their delivery count rises with the claim.
async fn claim_pending(conn: &mut Conn, key: &str, owner: &str) -> redis::RedisResult<Vec<Entry>> {
    let pending: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(key)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(READ_COUNT)
        .query_async(conn)
        .await?;
    if pending.ids.is_empty() {
        return Ok(Vec::new());
    }
    let others = pending.ids.iter().filter(|p| p.consumer != owner).count();
    if others > 0 {
        metrics::counter!("pulsyon_buffer_claims_total").increment(others as u64);
    }
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(key).arg(GROUP).arg(owner).arg(0);
    for p in &pending.ids {
        cmd.arg(&p.id);
    }
    let claimed: redis::streams::StreamClaimReply = cmd.query_async(conn).await?;
    let counts: HashMap<&str, usize> = pending
        .ids
        .iter()
        .map(|p| (p.id.as_str(), p.times_delivered + 1))
        .collect();
    Ok(claimed
        .ids
        .into_iter()
        .map(|s| {
            let mut e = entry(s);
            e.deliveries = counts.get(e.id.as_str()).copied().unwrap_or(1);
            e
        })
        .collect())
}

/// New entries of the shard, delivered to `owner`.
async fn read_new(conn: &mut Conn, key: &str, owner: &str) -> redis::RedisResult<Vec<Entry>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(owner)
        .arg("COUNT")
        .arg(READ_COUNT)
        .arg("STREAMS")
        .arg(key)
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).map(entry).collect())
        .unwrap_or_default())
}

enum Handled {
    AllDone,
    Retry,
    Lost,
}

/// Hands readable entries to the writer under the shard's fence, keeps
/// poison ones, acknowledges what is done.
async fn handle(
    buffer: &Buffer,
    store: &Store,
    writer: &mpsc::Sender<Submission>,
    conn: &mut Conn,
    fence: Fence,
    entries: Vec<Entry>,
) -> Handled {
    let key = buffer.key(fence.shard as u32);
    let mut done: Vec<String> = Vec::new();
    let mut waiting = Vec::new();
    for e in entries {
        let decoded = buffer.codec.decode(&e.record);
        let poison = match &decoded {
            _ if e.deliveries > buffer.config.max_deliveries as usize => {
                Some(format!("delivered {} times without a commit", e.deliveries))
            }
            Err(why) => Some(why.clone()),
            Ok(_) => None,
        };
        if let Some(reason) = poison {
            // A readable batch goes to its tenant's dead letters, whole; one
            // that cannot be read (or whose tenant cannot take it) to the
            // buffer's own.
            if let Ok((batch, _)) = &decoded
                && poison_to_dead_letters(store, fence, batch, &e, &reason).await
            {
                tracing::error!(shard = fence.shard, entry = %e.id, %reason, "poison batch in the buffer: kept in the tenant's dead letters and acknowledged");
                metrics::counter!("pulsyon_buffer_poison_total").increment(1);
                done.push(e.id);
                continue;
            }
            tracing::error!(shard = fence.shard, entry = %e.id, %reason, "poison entry in the buffer: kept in buffer_poison and acknowledged");
            match store
                .add_buffer_poison(fence.shard, &e.id, e.deliveries as i64, &reason, &e.record)
                .await
            {
                Ok(()) => {
                    metrics::counter!("pulsyon_buffer_poison_total").increment(1);
                    done.push(e.id);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "poison entry could not be kept; retrying")
                }
            }
            continue;
        }
        let Ok((batch, reply_to)) = decoded else {
            continue;
        };
        let (tx, rx) = oneshot::channel();
        let submission = Submission {
            batch,
            bytes: e.record.len(),
            held: Held::nothing(),
            fence: Some(fence),
            reply: tx,
        };
        if writer.send(submission).await.is_err() {
            // The writer stopped: what is pending stays for the next owner.
            return Handled::Retry;
        }
        waiting.push((e.id, reply_to, rx));
    }
    let mut result = Handled::AllDone;
    let mut reports: Vec<(ReplyTo, BatchFate)> = Vec::new();
    for (id, reply_to, rx) in waiting {
        match rx.await {
            Ok(Ok(fate)) => {
                done.push(id);
                if let Some(r) = reply_to {
                    reports.push((r, fate));
                }
            }
            Ok(Err(WriteError::Fenced)) => result = Handled::Lost,
            Ok(Err(_)) | Err(_) => {
                if !matches!(result, Handled::Lost) {
                    result = Handled::Retry;
                }
            }
        }
    }
    if !done.is_empty() {
        let acked: redis::RedisResult<u64> = redis::cmd("XACK")
            .arg(&key)
            .arg(GROUP)
            .arg(&done)
            .query_async(conn)
            .await;
        buffer.note(&acked);
        if let Err(e) = acked {
            // Committed but not acknowledged: redelivered later, and the
            // ledger recognises it (nothing is written twice).
            tracing::warn!(error = %e, "XACK failed; the entries will be redelivered as duplicates");
        }
    }
    for (r, fate) in reports {
        let sent: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&r.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(REPLY_STREAM_MAX)
            .arg("*")
            .arg("r")
            .arg(&r.id)
            .arg("f")
            .arg(fate_text(fate))
            .query_async(conn)
            .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "commit report not sent; the ingest process times out and the client resends");
        }
    }
    result
}

/// Keeps a poison batch in its tenant's dead letters: one dead letter whose
/// payload is the whole record (outside the batch ledger, so a resend of the
/// same batch is still stored). Whether it was kept.
async fn poison_to_dead_letters(
    store: &Store,
    fence: Fence,
    batch: &BatchWrite,
    entry: &Entry,
    reason: &str,
) -> bool {
    let letter = BatchWrite {
        tenant_id: batch.tenant_id,
        producer_id: batch.producer_id.clone(),
        seq: batch.seq,
        received_at: batch.received_at,
        events: Vec::new(),
        rejected: vec![crate::domain::DeadLetter {
            index: 0,
            reason: crate::domain::RejectReason::PoisonBatch,
            message: format!(
                "buffer entry {} of shard {} ({} events): {reason}",
                entry.id,
                fence.shard,
                batch.events.len() + batch.rejected.len()
            ),
            payload: entry.record.clone(),
        }],
        overflowed: 0,
        digest: batch.digest,
    };
    match store
        .write_batches_fenced(std::slice::from_ref(&letter), false, &[fence])
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "poison batch not kept in the dead letters");
            false
        }
    }
}

impl Buffer {
    /// Trims `shard` below the group's low-water mark (see `trim`); the
    /// entries removed.
    pub async fn trim_shard(&self, shard: u32) -> redis::RedisResult<u64> {
        let mut conn = self.conn.clone();
        trim(self, &mut conn, shard).await
    }
}

/// The stream id right after `id` (`ms-seq`).
fn next_id(id: &str) -> String {
    match id.split_once('-').map(|(ms, seq)| (ms, seq.parse::<u64>())) {
        Some((ms, Ok(seq))) => format!("{ms}-{}", seq.saturating_add(1)),
        _ => id.to_owned(),
    }
}

/// Trims `shard` below the group's low-water mark: the oldest pending
/// entry, or (none pending) the one after the last delivered. An entry below it was
/// delivered and acknowledged; nothing pending or undelivered is removed.
/// Also reads the shard's pending count, lag and oldest pending age.
async fn trim(buffer: &Buffer, conn: &mut Conn, shard: u32) -> redis::RedisResult<u64> {
    let key = buffer.key(shard);
    let summary: redis::RedisResult<(u64, Option<String>, Option<String>, Value)> =
        redis::cmd("XPENDING")
            .arg(&key)
            .arg(GROUP)
            .query_async(conn)
            .await;
    let (pending, oldest, _, _) = summary?;
    let groups: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(&key).await?;
    let Some(group) = groups.groups.into_iter().find(|g| g.name == GROUP) else {
        return Ok(0);
    };
    let low = match (&oldest, pending) {
        (Some(oldest), n) if n > 0 => oldest.clone(),
        // Nothing pending: everything delivered so far is acknowledged.
        _ => next_id(&group.last_delivered_id),
    };
    let label = shard.to_string();
    metrics::gauge!("pulsyon_buffer_pending", "shard" => label.clone()).set(pending as f64);
    metrics::gauge!("pulsyon_buffer_lag", "shard" => label.clone())
        .set(group.lag.unwrap_or(0) as f64);
    let oldest_age = oldest
        .as_deref()
        .and_then(|id| id.split('-').next()?.parse::<u64>().ok())
        .map(|ms| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            now.saturating_sub(ms) as f64 / 1e3
        })
        .unwrap_or(0.0);
    metrics::gauge!("pulsyon_buffer_oldest_pending_seconds", "shard" => label).set(oldest_age);
    if low == "0-0" || low == "0-1" {
        return Ok(0);
    }
    let trimmed: u64 = redis::cmd("XTRIM")
        .arg(&key)
        .arg("MINID")
        .arg(&low)
        .query_async(conn)
        .await?;
    metrics::counter!("pulsyon_buffer_trimmed_total").increment(trimmed);
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_cross_the_reply_stream_unchanged() {
        for fate in [
            BatchFate::Stored { duplicates: 0 },
            BatchFate::Stored { duplicates: 7 },
            BatchFate::Duplicate,
        ] {
            assert_eq!(parse_fate(&fate_text(fate)), Some(fate));
        }
        assert_eq!(parse_fate("x"), None);
    }

    #[test]
    fn the_mark_after_the_last_delivered_entry_is_its_successor() {
        assert_eq!(next_id("1700000000000-4"), "1700000000000-5");
        assert_eq!(next_id("0-0"), "0-1");
        assert_eq!(next_id("junk"), "junk");
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("redis://user:secret@10.0.0.1:6379/0"),
            "redis://…@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
