//! The Redis bridge: the ingest rate budget shared by every process of a
//! deployment (here), and the ingest buffer between ingest and writer
//! processes (`buffer`). One round trip per batch runs a script that does, atomically
//! and on Redis's clock, the same GCRA step for events and for bytes as
//! `ingest::limits::gcra`: both pass and are charged, or neither is.
//!
//! Only this module knows the redis crate. It never decides what happens when
//! Redis is unreachable: it reports the error and the caller falls back to its
//! local budget.

/// `Debug` for a Redis bridge showing only `field`: the rest (connections,
/// scripts) says nothing useful and some of it is not `Debug`.
macro_rules! debug_showing {
    ($type:ident, $field:ident) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($type))
                    .field(stringify!($field), &self.$field)
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use debug_showing;

pub mod buffer;
pub mod catalogue;
mod conn;
pub mod streams;

use crate::ingest::limits::SharedUnavailable;
use std::time::Duration;

use self::conn::Conn;
use tokio::sync::Mutex;

use crate::{
    domain::{TenantId, TenantLimits},
    ingest::limits::{Charge, SharedBudget, ThrottleCause, Throttled},
};

/// Longest wait for Redis before the caller falls back to local limits.
const TIMEOUT: Duration = Duration::from_millis(250);
/// Least time between two attempts to (re)connect.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// KEYS: the events key and the bytes key; ARGV: for events then for bytes,
/// the cost, the rate per second and the burst. Returns {0, ""} when both
/// passed, else {1 (events) or 2 (bytes), seconds to wait as a string}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function step(key, cost, rate, burst)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local need = math.min(cost, burst)
  local allow_at = tat - (burst - need) / rate
  if now + 1e-9 < allow_at then return nil, allow_at - now end
  return tat + cost / rate, 0
end
local e, ewait = step(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
if not e then return {1, string.format('%.6f', ewait)} end
local b, bwait = step(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
if not b then return {2, string.format('%.6f', bwait)} end
redis.call('SET', KEYS[1], string.format('%.6f', e), 'PX', math.ceil((e - now) * 1000) + 1000)
redis.call('SET', KEYS[2], string.format('%.6f', b), 'PX', math.ceil((b - now) * 1000) + 1000)
return {0, ''}
"#;

/// Why the shared budget could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The URL does not parse.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis did not answer (in time).
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

/// The rate budget in Redis.
pub struct RedisRates {
    urls: Vec<String>,
    cluster: bool,
    /// The connection, made on first use and remade after a failure, with
    /// the time of the last attempt (attempts are spaced by RECONNECT_EVERY).
    conn: Mutex<(Option<Conn>, Option<tokio::time::Instant>)>,
    script: redis::Script,
    prefix: String,
}

debug_showing!(RedisRates, prefix);

impl RedisRates {
    /// A budget in Redis, under keys starting with `prefix`.
    /// Connects lazily: an unreachable Redis at start-up is not an error.
    /// `urls` are one Redis, or the seeds of a Redis Cluster (`cluster`).
    pub fn new(urls: &[String], cluster: bool, prefix: &str) -> Result<RedisRates, BridgeError> {
        for url in urls {
            redis::Client::open(url.as_str()).map_err(BridgeError::Url)?;
        }
        Ok(RedisRates {
            urls: urls.to_vec(),
            cluster,
            conn: Mutex::new((None, None)),
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_owned(),
        })
    }

    async fn connection(&self) -> Result<Conn, BridgeError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = &guard.0 {
            return Ok(conn.clone());
        }
        let now = tokio::time::Instant::now();
        if guard.1.is_some_and(|at| now < at + RECONNECT_EVERY) {
            return Err(BridgeError::Unavailable("reconnecting".into()));
        }
        guard.1 = Some(now);
        let conn = tokio::time::timeout(TIMEOUT, Conn::open(&self.urls, self.cluster))
            .await
            .map_err(|_| BridgeError::Unavailable("connect timed out".into()))?
            .map_err(|e| BridgeError::Unavailable(e.to_string()))?;
        guard.0 = Some(conn.clone());
        Ok(conn)
    }

    async fn forget_connection(&self) {
        self.conn.lock().await.0 = None;
    }

    /// Charges `events` and `bytes` to `tenant`.
    pub async fn charge(
        &self,
        tenant: TenantId,
        limits: &TenantLimits,
        events: u64,
        bytes: u64,
    ) -> Result<Result<(), Throttled>, BridgeError> {
        let mut conn = self.connection().await?;
        // One hash tag per tenant: both keys live on one Redis Cluster slot.
        let key = |what: &str| format!("{}:rate:{{{}}}:{what}", self.prefix, tenant.0);
        let mut invocation = self.script.key(key("events"));
        invocation
            .key(key("bytes"))
            .arg(events)
            .arg(limits.events_per_sec)
            .arg(limits.events_burst)
            .arg(bytes)
            .arg(limits.bytes_per_sec)
            .arg(limits.bytes_burst);
        let answer: Result<(i64, String), _> =
            tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| BridgeError::Unavailable("timed out".into()))?;
        let (verdict, wait) = match answer {
            Ok(answer) => answer,
            Err(err) => {
                if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() {
                    self.forget_connection().await;
                }
                return Err(BridgeError::Unavailable(err.to_string()));
            }
        };
        let retry_after = Duration::from_secs_f64(wait.parse::<f64>().unwrap_or(1.0).max(0.0));
        Ok(match verdict {
            0 => Ok(()),
            1 => Err(Throttled {
                cause: ThrottleCause::EventRate,
                retry_after,
            }),
            _ => Err(Throttled {
                cause: ThrottleCause::ByteRate,
                retry_after,
            }),
        })
    }
}

impl SharedBudget for RedisRates {
    fn charge<'a>(
        &'a self,
        tenant: TenantId,
        limits: &'a TenantLimits,
        events: u64,
        bytes: u64,
    ) -> Charge<'a> {
        Box::pin(async move {
            RedisRates::charge(self, tenant, limits, events, bytes)
                .await
                .map_err(|e| SharedUnavailable(e.to_string()))
        })
    }
}
