//! Receivers' health for the fallback (src/notify/fallback.rs): which fail
//! every attempt, since when, and the system's alerts already raised.

use time::OffsetDateTime;

use crate::{
    domain::{TenantId, notify::DEFAULT_FALLBACK_AFTER_SECS, rules::Kind},
    store::{Store, StoreError, classify},
};

/// A receiver whose attempts have all failed since its last delivery, of a
/// tenant with a fallback receiver (never the fallback itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    /// Whose.
    pub tenant_id: TenantId,
    /// The receiver's name.
    pub receiver: String,
    /// Since its first failed attempt after its last delivery (seconds).
    pub failing_secs: f64,
    /// Its tenant's threshold (seconds).
    pub after_secs: u64,
}

/// A system alert still firing: its id, tenant and receiver.
pub type Raised = (i64, i64, String);

impl Store {
    /// The failing receivers, the receiver alerts still firing, and the
    /// database's `now`. Only pending deliveries are read (a receiver that
    /// fails has some; the attempts of each are few), so the check stays
    /// small however long the history.
    pub async fn receivers_health(
        &self,
    ) -> Result<(Vec<Failing>, Vec<Raised>, OffsetDateTime), StoreError> {
        let err = |e| classify(e, "receivers' health");
        let rows: Vec<(i64, String, f64, Option<i64>)> = sqlx::query_as(
            "SELECT d.tenant_id, r.name, extract(epoch FROM now() - min(a.at))::float8, \
               (n.routes->>'fallback_after_secs')::bigint \
             FROM deliveries d \
             JOIN receivers r ON r.receiver_id = d.receiver_id \
             JOIN notify_routes n ON n.tenant_id = d.tenant_id \
               AND coalesce(n.routes->>'fallback_receiver', '') NOT IN ('', r.name) \
             JOIN delivery_attempts a ON a.delivery_id = d.delivery_id AND NOT a.ok \
             WHERE d.state = 'pending' AND d.attempts > 0 \
               AND NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.receiver_id = d.receiver_id \
                 AND s.state = 'delivered' AND s.delivered_at > a.at) \
             GROUP BY d.tenant_id, r.name, n.routes",
        )
        .fetch_all(self.pool())
        .await
        .map_err(err)?;
        let failing = rows
            .into_iter()
            .map(|(tenant, receiver, secs, after)| Failing {
                tenant_id: TenantId(tenant),
                receiver,
                failing_secs: secs,
                after_secs: match after.unwrap_or(0) {
                    0 => DEFAULT_FALLBACK_AFTER_SECS,
                    s => s as u64,
                },
            })
            .collect();
        let raised: Vec<Raised> = sqlx::query_as(
            "SELECT alert_id, tenant_id, endpoint FROM alerts WHERE kind = $1 AND cleared_at IS NULL",
        )
        .bind(Kind::ReceiverFailing.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(err)?;
        let now = sqlx::query_scalar("SELECT now()")
            .fetch_one(self.pool())
            .await
            .map_err(err)?;
        Ok((failing, raised, now))
    }
}
