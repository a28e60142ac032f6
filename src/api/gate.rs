//! The per-tenant bound on concurrent queries (Query and Incidents reads) of
//! one process, so that one tenant's burst of queries cannot take every
//! request connection from the others: past the bound a call is answered at
//! once with RESOURCE_EXHAUSTED and a retry delay, never queued.
//!
//! It must never hold a slot past the end of the call that took it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tonic::Status;

use crate::domain::{Principal, TenantId};

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

    /// A slot for one query of `caller`, or the refusal to answer with.
    pub fn enter(self: &Arc<Self>, caller: &Principal) -> Result<Running, Status> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(caller.tenant_id).or_insert(0);
        if *n >= self.limit {
            drop(running);
            metrics::counter!("pulsyon_limit_refusals_total", "limit" => "queries").increment(1);
            let delay = Duration::from_millis(100);
            return Err(super::status::retry_in(
                format!(
                    "too many concurrent queries: tenant {} already has {} running on this server; retry in {} ms",
                    caller.tenant_name,
                    self.limit,
                    delay.as_millis()
                ),
                delay,
            ));
        }
        *n += 1;
        Ok(Running {
            gate: self.clone(),
            tenant: caller.tenant_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn principal(tenant: i64) -> Principal {
        Principal {
            tenant_id: TenantId(tenant),
            tenant_name: format!("t{tenant}"),
            key_id: uuid::Uuid::nil(),
            scopes: vec![],
            limits: Default::default(),
        }
    }

    #[test]
    fn a_tenant_past_its_bound_is_refused_while_another_runs() {
        let gate = QueryGate::new(2);
        let a = principal(1);
        let first = gate.enter(&a).unwrap();
        let _second = gate.enter(&a).unwrap();
        let refused = gate.enter(&a).unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(refused.message().starts_with("too many concurrent queries"));
        assert!(
            gate.enter(&principal(2)).is_ok(),
            "another tenant is not held back"
        );
        drop(first);
        assert!(gate.enter(&a).is_ok(), "a finished query frees its slot");
    }
}
