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
//!
//! Files: `producer.rs` (the ingest side: append, fill, commit reports),
//! `drain.rs` (the writers' side), `trim.rs` (the low-water mark),
//! `persistence.rs` (how each Redis keeps its data), `report.rs` (the
//! writer's report of a batch's fate on a reply stream).

mod drain;
mod persistence;
mod producer;
mod report;
mod trim;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::conn::Conn;
use crate::{domain::TenantId, ingest::RecordCodec};

pub use drain::spawn_drain;
pub use persistence::{Persistence, persistence};
pub use producer::RedisAdmission;

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

crate::redis::debug_showing!(Buffer, config);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("redis://user:secret@10.0.0.1:6379/0"),
            "redis://…@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
