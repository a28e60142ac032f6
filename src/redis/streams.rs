//! The concurrent ingest streams of each tenant across every process: one
//! sorted set per tenant (`<prefix>:streams:{<tenant>}`), a member per open
//! stream scored by when its lease ends. A process renews its streams'
//! leases every `RENEW_EVERY`; a process that dies leaves slots that expire
//! after `LEASE`. Acquiring drops the expired ones and counts the rest in one
//! script, so two processes cannot both take the last slot.

use crate::ingest::limits::SharedUnavailable;
use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::conn::{Conn, Lazy};
use crate::{domain::TenantId, ingest::limits::SharedStreams};

/// How long a slot lives without renewal.
const LEASE: Duration = Duration::from_secs(30);
/// How often a process renews its slots.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for Redis before the caller counts locally.
const TIMEOUT: Duration = Duration::from_millis(250);

/// KEYS: the tenant's set; ARGV: the slot, the maximum, the lease (s).
/// Returns 1 when the slot was taken, 0 when the tenant holds `max`.
const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 5)
return 1
"#;

/// KEYS: the tenant's set; ARGV: the lease (s), then the slots to renew.
const RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 5)
return 0
"#;

/// The shared stream count.
pub struct RedisStreams {
    prefix: String,
    conn: Lazy,
    held: Mutex<HashSet<(i64, String)>>,
    acquire: redis::Script,
    renew: redis::Script,
}

crate::redis::debug_showing!(RedisStreams, prefix);

impl RedisStreams {
    /// The count in Redis (`urls`: one, or a cluster's seeds), under keys
    /// starting with `prefix`; renews this process's slots until `stop`.
    pub fn start(
        urls: &[String],
        cluster: bool,
        prefix: &str,
        stop: CancellationToken,
    ) -> (Arc<RedisStreams>, JoinHandle<()>) {
        let streams = Arc::new(RedisStreams {
            prefix: prefix.to_owned(),
            conn: Lazy::new(urls, cluster),
            held: Mutex::new(HashSet::new()),
            acquire: redis::Script::new(ACQUIRE),
            renew: redis::Script::new(RENEW),
        });
        let task = {
            let streams = streams.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(RENEW_EVERY) => {}
                    }
                    if let Err(e) = streams.renew_all().await {
                        tracing::debug!(error = %e, "stream slots not renewed");
                    }
                }
            })
        };
        (streams, task)
    }

    fn key(&self, tenant: TenantId) -> String {
        format!("{}:streams:{{{}}}", self.prefix, tenant.0)
    }

    async fn connection(&self) -> Result<Conn, String> {
        // Connecting may take longer than a command (a first connection).
        self.conn.get(TIMEOUT * 8).await
    }

    async fn renew_all(&self) -> Result<(), String> {
        let held: Vec<(i64, String)> = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut by_tenant: std::collections::HashMap<i64, Vec<String>> = Default::default();
        for (t, id) in held {
            by_tenant.entry(t).or_default().push(id);
        }
        let mut conn = self.connection().await?;
        for (tenant, ids) in by_tenant {
            let mut call = self.renew.key(self.key(TenantId(tenant)));
            call.arg(LEASE.as_secs_f64());
            for id in &ids {
                call.arg(id);
            }
            let _: i64 = call
                .invoke_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl SharedStreams for RedisStreams {
    fn acquire<'a>(
        &'a self,
        tenant: TenantId,
        id: &'a str,
        max: u32,
    ) -> Pin<Box<dyn Future<Output = Result<bool, SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let mut call = self.acquire.key(self.key(tenant));
            call.arg(id).arg(max).arg(LEASE.as_secs_f64());
            let taken: i64 = tokio::time::timeout(TIMEOUT, call.invoke_async(&mut conn))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            if taken == 1 {
                self.held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((tenant.0, id.to_owned()));
            }
            Ok(taken == 1)
        })
    }

    fn release(&self, tenant: TenantId, id: String) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.0, id.clone()));
        let key = self.key(tenant);
        if let Some(mut conn) = self.conn.made() {
            tokio::spawn(async move {
                let _: redis::RedisResult<i64> = redis::cmd("ZREM")
                    .arg(key)
                    .arg(id)
                    .query_async(&mut conn)
                    .await;
            });
        }
    }
}
