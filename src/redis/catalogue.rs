//! Each tenant's services and endpoints across every ingest process: a set
//! of services per tenant and a set of endpoints per service, under one
//! hash tag (`{<tenant>}`) so that one script decides on one cluster slot
//! whether a new name still fits the tenant's limits.

use crate::ingest::limits::SharedUnavailable;
use std::{future::Future, pin::Pin, time::Duration};

use super::conn::{Conn, Lazy};
use crate::{
    domain::{TenantId, TenantLimits},
    ingest::limits::{Fits, SharedCatalogue},
};

/// Longest wait for Redis before the caller decides alone.
const TIMEOUT: Duration = Duration::from_millis(250);

/// KEYS: the services set, the service's endpoints set; ARGV: service,
/// endpoint, max services, max endpoints. Returns {service fits, endpoint fits}.
const ADMIT: &str = r#"
local s = redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1
if not s and redis.call('SCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('SADD', KEYS[1], ARGV[1]); s = true
end
if not s then return {0, 0} end
local e = redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1
if not e and redis.call('SCARD', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('SADD', KEYS[2], ARGV[2]); e = true
end
if e then return {1, 1} end
return {1, 0}
"#;

/// The shared catalogue.
pub struct RedisCatalogue {
    prefix: String,
    conn: Lazy,
    admit: redis::Script,
}

crate::redis::debug_showing!(RedisCatalogue, prefix);

impl RedisCatalogue {
    /// The catalogue in Redis (`urls`: one, or a cluster's seeds), under keys
    /// starting with `prefix`. Connects on first use.
    pub fn new(urls: &[String], cluster: bool, prefix: &str) -> RedisCatalogue {
        RedisCatalogue {
            prefix: prefix.to_owned(),
            conn: Lazy::new(urls, cluster),
            admit: redis::Script::new(ADMIT),
        }
    }

    fn services_key(&self, tenant: TenantId) -> String {
        format!("{}:catalogue:{{{}}}:services", self.prefix, tenant.0)
    }

    fn endpoints_key(&self, tenant: TenantId, service: &str) -> String {
        format!(
            "{}:catalogue:{{{}}}:endpoints:{service}",
            self.prefix, tenant.0
        )
    }

    async fn connection(&self) -> Result<Conn, String> {
        // Connecting may take longer than a command (a first connection).
        self.conn.get(TIMEOUT * 8).await
    }
}

impl SharedCatalogue for RedisCatalogue {
    fn seed<'a>(
        &'a self,
        tenant: TenantId,
        pairs: &'a [(String, String)],
    ) -> Pin<Box<dyn Future<Output = Result<(), SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move {
            if pairs.is_empty() {
                return Ok(());
            }
            let mut conn = self.connection().await?;
            let mut pipe = redis::pipe();
            for (service, endpoint) in pairs {
                pipe.sadd(self.services_key(tenant), service).ignore();
                if !endpoint.is_empty() {
                    pipe.sadd(self.endpoints_key(tenant, service), endpoint)
                        .ignore();
                }
            }
            tokio::time::timeout(TIMEOUT * 4, pipe.query_async::<()>(&mut conn))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| SharedUnavailable(e.to_string()))
        })
    }

    fn admit<'a>(
        &'a self,
        tenant: TenantId,
        pairs: &'a [(String, String)],
        limits: &'a TenantLimits,
    ) -> Fits<'a> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let mut out = Vec::with_capacity(pairs.len());
            for (service, endpoint) in pairs {
                let mut call = self.admit.key(self.services_key(tenant));
                call.key(self.endpoints_key(tenant, service))
                    .arg(service)
                    .arg(endpoint)
                    .arg(limits.max_services)
                    .arg(limits.max_endpoints);
                let (s, e): (i64, i64) =
                    tokio::time::timeout(TIMEOUT, call.invoke_async(&mut conn))
                        .await
                        .map_err(|_| "timed out".to_owned())?
                        .map_err(|e| e.to_string())?;
                out.push((s == 1, e == 1));
            }
            Ok(out)
        })
    }
}
