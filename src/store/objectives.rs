//! Service level objectives of a tenant (migration 0018), in tenant
//! transactions (row-level security keeps each to its tenant).

use time::OffsetDateTime;

use super::{Store, StoreError, classify, commit};
use crate::domain::{
    TenantId,
    objective::{Objective, ObjectiveKind},
};

const COLUMNS: &str = "objective_id, tenant_id, service, endpoint, kind, target_percent, period_days, \
     count_4xx, latency_threshold_ms, created_at";

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    f64,
    i32,
    bool,
    f64,
    OffsetDateTime,
);

fn objective_from(r: Row) -> Result<Objective, StoreError> {
    Ok(Objective {
        objective_id: r.0,
        tenant_id: TenantId(r.1),
        service: r.2,
        endpoint: r.3,
        kind: ObjectiveKind::parse(&r.4)
            .ok_or_else(|| StoreError::Corrupt(format!("objective kind {:?}", r.4)))?,
        target_percent: r.5,
        period_days: r.6.max(0) as u32,
        count_4xx: r.7,
        latency_threshold_ms: r.8,
        created_at: r.9,
    })
}

fn err(e: sqlx::Error) -> StoreError {
    classify(e, "objective")
}

impl Store {
    /// Sets `o` for its tenant: the one of its (service, endpoint, kind) is
    /// replaced (keeping its id and creation time).
    pub async fn set_objective(&self, o: &Objective) -> Result<Objective, StoreError> {
        let mut tx = self.tenant_tx(o.tenant_id).await?;
        let sql = format!(
            "INSERT INTO objectives (tenant_id, service, endpoint, kind, target_percent, period_days, \
               count_4xx, latency_threshold_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tenant_id, service, endpoint, kind) DO UPDATE SET \
               target_percent = EXCLUDED.target_percent, period_days = EXCLUDED.period_days, \
               count_4xx = EXCLUDED.count_4xx, latency_threshold_ms = EXCLUDED.latency_threshold_ms \
             RETURNING {COLUMNS}"
        );
        let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(o.tenant_id.0)
            .bind(&o.service)
            .bind(&o.endpoint)
            .bind(o.kind.as_str())
            .bind(o.target_percent)
            .bind(o.period_days as i32)
            .bind(o.count_4xx)
            .bind(o.latency_threshold_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        commit(tx, "objective").await?;
        objective_from(row)
    }

    /// The objectives of `tenant` (of `service` only, when given), by
    /// service, endpoint and kind.
    pub async fn objectives(
        &self,
        tenant: TenantId,
        service: Option<&str>,
    ) -> Result<Vec<Objective>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM objectives WHERE tenant_id = $1 AND ($2::text IS NULL OR service = $2) \
             ORDER BY service, endpoint, kind"
        );
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(service)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        commit(tx, "objectives").await?;
        rows.into_iter().map(objective_from).collect()
    }

    /// Every tenant's objectives (the detector's leader evaluates them all).
    pub async fn all_objectives(&self) -> Result<Vec<Objective>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM objectives ORDER BY objective_id");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
            .map_err(err)?;
        rows.into_iter().map(objective_from).collect()
    }

    /// One objective of `tenant`; `NotFound` when it is not the tenant's.
    pub async fn objective(&self, tenant: TenantId, id: i64) -> Result<Objective, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!("SELECT {COLUMNS} FROM objectives WHERE objective_id = $1");
        let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        commit(tx, "objective").await?;
        objective_from(row)
    }

    /// Removes an objective of `tenant`; `NotFound` when it is not the tenant's.
    pub async fn delete_objective(&self, tenant: TenantId, id: i64) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query("DELETE FROM objectives WHERE objective_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("objective"));
        }
        commit(tx, "objective").await
    }
}
