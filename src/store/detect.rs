//! What the detector reads (minute rollups of every tenant, rule overrides)
//! and the leader lock.

use time::OffsetDateTime;

use super::{Store, StoreError, classify};
use crate::{
    domain::rules::{Kind, Override, Overrides},
    stats::histogram::Histogram,
};

/// One minute of one subject: a service (endpoint '') or an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteRow {
    /// Whose.
    pub tenant_id: i64,
    /// Service.
    pub service: String,
    /// Endpoint; '' for the whole service.
    pub endpoint: String,
    /// Start of the minute.
    pub bucket: OffsetDateTime,
    /// Requests.
    pub count: i64,
    /// 5xx responses.
    pub status_5xx: i64,
    /// p95 latency of the minute.
    pub p95_ms: f64,
    /// Latency histogram (empty unless asked for).
    pub histogram: Histogram,
}

/// A session advisory lock held on a connection of its own.
pub struct LeaderLock {
    conn: sqlx::PgConnection,
    key: i64,
}

impl LeaderLock {
    /// Takes the lock if nobody holds it; true when this connection holds it.
    pub async fn try_acquire(&mut self) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(self.key)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| classify(e, "leader lock"))
    }

    /// Fails when the connection (and so the lock) is gone.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&mut self.conn)
            .await
            .map_err(|e| classify(e, "leader lock"))?;
        Ok(())
    }
}

impl Store {
    /// A connection of its own, for a session advisory lock on `key`.
    pub async fn leader_lock(&self, key: i64) -> Result<LeaderLock, StoreError> {
        let conn = self
            .pool()
            .acquire()
            .await
            .map_err(|e| classify(e, "leader lock"))?
            .detach();
        Ok(LeaderLock { conn, key })
    }

    /// Minute rows of every service and endpoint in [from, to): of one tenant
    /// (read under its row-level security) or, for the detector, of all.
    pub async fn detection_rows(
        &self,
        tenant: Option<crate::domain::TenantId>,
        from: OffsetDateTime,
        to: OffsetDateTime,
        with_histograms: bool,
    ) -> Result<Vec<MinuteRow>, StoreError> {
        let histogram = if with_histograms {
            "histogram"
        } else {
            "''::bytea"
        };
        let sql = format!(
            "SELECT tenant_id, service, ''::text, bucket, count, status_5xx, latency_p95, {histogram} \
               FROM service_minute WHERE bucket >= $1 AND bucket < $2 \
             UNION ALL \
             SELECT tenant_id, service, endpoint, bucket, count, status_5xx, latency_p95, {histogram} \
               FROM metrics_minute WHERE bucket >= $1 AND bucket < $2"
        );
        type Row = (i64, String, String, OffsetDateTime, i64, i64, f64, Vec<u8>);
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(from).bind(to);
        let err = |e| classify(e, "detection");
        let rows: Vec<Row> = match tenant {
            Some(t) => {
                let mut tx = self.tenant_tx(t).await?;
                let rows = q.fetch_all(&mut *tx).await.map_err(err)?;
                super::commit(tx, "detection").await?;
                rows
            }
            None => q.fetch_all(self.pool()).await.map_err(err)?,
        };
        rows.into_iter()
            .map(
                |(tenant_id, service, endpoint, bucket, count, status_5xx, p95_ms, h)| {
                    let histogram = if h.is_empty() {
                        Histogram::new()
                    } else {
                        Histogram::decode(&h)
                            .map_err(|e| StoreError::Corrupt(format!("rollup histogram: {e}")))?
                    };
                    Ok(MinuteRow {
                        tenant_id,
                        service,
                        endpoint,
                        bucket,
                        count,
                        status_5xx,
                        p95_ms,
                        histogram,
                    })
                },
            )
            .collect()
    }

    /// The rule overrides of one tenant (under its row-level security) or, for
    /// the detector, of every tenant. An override that cannot be read is left
    /// out with a warning (the defaults apply).
    pub async fn rule_overrides(
        &self,
        tenant: Option<crate::domain::TenantId>,
    ) -> Result<Overrides, StoreError> {
        type Row = (i64, String, String, sqlx::types::Json<serde_json::Value>);
        let q = sqlx::query_as("SELECT tenant_id, service, kind, settings FROM detection_rules");
        let err = |e| classify(e, "detection rules");
        let rows: Vec<Row> = match tenant {
            Some(t) => {
                let mut tx = self.tenant_tx(t).await?;
                let rows = q.fetch_all(&mut *tx).await.map_err(err)?;
                super::commit(tx, "detection rules").await?;
                rows
            }
            None => q.fetch_all(self.pool()).await.map_err(err)?,
        };
        let mut out = Overrides::new();
        for (tenant, service, kind, settings) in rows {
            let Some(kind) = Kind::parse(&kind) else {
                continue;
            };
            match serde_json::from_value::<Override>(settings.0) {
                Ok(o) => {
                    out.insert((crate::domain::TenantId(tenant), service, kind), o);
                }
                Err(err) => {
                    tracing::warn!(tenant, service, error = %err, "unreadable detection rule; using the defaults")
                }
            }
        }
        Ok(out)
    }

    /// Sets (replaces) the override of `kind` for a tenant (service '') or a service.
    pub async fn set_rule_override(
        &self,
        tenant: crate::domain::TenantId,
        service: &str,
        kind: Kind,
        o: &Override,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_value(o)
            .map_err(|e| StoreError::Corrupt(format!("detection rule: {e}")))?;
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO detection_rules (tenant_id, service, kind, settings) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, service, kind) DO UPDATE SET settings = excluded.settings, updated_at = now()",
        )
        .bind(tenant.0)
        .bind(service)
        .bind(kind.as_str())
        .bind(sqlx::types::Json(value))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "detection rule"))?;
        super::commit(tx, "detection rule").await
    }

    /// Removes an override; NotFound when there was none.
    pub async fn delete_rule_override(
        &self,
        tenant: crate::domain::TenantId,
        service: &str,
        kind: Kind,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "DELETE FROM detection_rules WHERE tenant_id = $1 AND service = $2 AND kind = $3",
        )
        .bind(tenant.0)
        .bind(service)
        .bind(kind.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "detection rule"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("detection rule"));
        }
        super::commit(tx, "detection rule").await
    }

    /// The overrides of one tenant: (service, kind, override), by service and kind.
    pub async fn tenant_rule_overrides(
        &self,
        tenant: crate::domain::TenantId,
    ) -> Result<Vec<(String, Kind, Override)>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(String, String, sqlx::types::Json<serde_json::Value>)> = sqlx::query_as(
            "SELECT service, kind, settings FROM detection_rules WHERE tenant_id = $1 ORDER BY service, kind",
        )
        .bind(tenant.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "detection rules"))?;
        super::commit(tx, "detection rules").await?;
        Ok(rows
            .into_iter()
            .filter_map(|(service, kind, settings)| {
                let o = serde_json::from_value::<Override>(settings.0).ok()?;
                Some((service, Kind::parse(&kind)?, o))
            })
            .collect())
    }
}
