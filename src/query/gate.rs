//! The per-tenant bound on concurrent queries of one process, through every
//! door (the gRPC Query and Incidents reads, the dashboard's JSON API), so
//! that one tenant's burst of queries cannot take every request connection
//! from the others: past the bound a call is refused at once with
//! [`Busy`] and a retry delay, never queued; each door words it in its own
//! terms (RESOURCE_EXHAUSTED with RetryInfo, 429 with Retry-After).
//!
//! It must never hold a slot past the end of the call that took it, and
//! knows no transport.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::domain::TenantId;

/// A query refused because its tenant already runs its most.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("too many concurrent queries: tenant {tenant} already has {limit} running on this server")]
pub struct Busy {
    /// The tenant's name.
    pub tenant: String,
    /// Its bound.
    pub limit: u32,
    /// When to try again.
    pub retry_after: Duration,
}

/// Running queries per tenant, bounded.
#[derive(Debug)]
pub struct QueryGate {
    /// Most queries of one tenant running at once on this process.
    limit: u32,
    /// Running queries by tenant (absent: none).
    running: Mutex<HashMap<TenantId, u32>>,
}

/// A running query's slot, given back when dropped.
#[derive(Debug)]
pub struct Running {
    gate: Arc<QueryGate>,
    tenant: TenantId,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.gate.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.tenant);
            }
        }
    }
}

impl QueryGate {
    /// A gate letting `limit` queries of each tenant run at once.
    pub fn new(limit: u32) -> Arc<QueryGate> {
        Arc::new(QueryGate {
            limit: limit.max(1),
            running: Mutex::default(),
        })
    }

    /// A slot for one query of `tenant` (named `name`), or the refusal.
    pub fn enter(self: &Arc<Self>, tenant: TenantId, name: &str) -> Result<Running, Busy> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(tenant).or_insert(0);
        if *n >= self.limit {
            drop(running);
            metrics::counter!("pulsyon_limit_refusals_total", "limit" => "queries").increment(1);
            return Err(Busy {
                tenant: name.to_owned(),
                limit: self.limit,
                retry_after: Duration::from_millis(100),
            });
        }
        *n += 1;
        Ok(Running {
            gate: self.clone(),
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_past_its_bound_is_refused_while_another_runs() {
        let gate = QueryGate::new(2);
        let a = TenantId(1);
        let first = gate.enter(a, "t1").unwrap();
        let _second = gate.enter(a, "t1").unwrap();
        let refused = gate.enter(a, "t1").unwrap_err();
        assert_eq!(refused.limit, 2);
        assert!(
            refused
                .to_string()
                .starts_with("too many concurrent queries: tenant t1")
        );
        assert!(
            gate.enter(TenantId(2), "t2").is_ok(),
            "another tenant is not held back"
        );
        drop(first);
        assert!(
            gate.enter(a, "t1").is_ok(),
            "a finished query frees its slot"
        );
    }
}
