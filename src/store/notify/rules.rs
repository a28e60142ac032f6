//! A tenant's routes and silences, through its transaction.

use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{
    domain::{
        TenantId,
        notify::{Matchers, Recurrence, Routes, Silence, SilenceKind},
    },
    store::{Store, StoreError, classify},
};

pub(super) type SilenceRow = (
    i64,
    i64,
    String,
    Json<Matchers>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<Json<Recurrence>>,
    Option<i64>,
    String,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

pub(super) const SILENCE_COLUMNS: &str = "s.silence_id, s.tenant_id, s.kind, s.matchers, s.starts_at, s.ends_at, \
     s.recurrence, s.until_resolved, s.created_by, s.comment, s.created_at, s.expired_at";

pub(super) fn silence_from(row: SilenceRow) -> Result<Silence, StoreError> {
    Ok(Silence {
        silence_id: row.0,
        tenant_id: TenantId(row.1),
        kind: SilenceKind::parse(&row.2)
            .ok_or_else(|| StoreError::Corrupt(format!("silence kind {:?}", row.2)))?,
        matchers: row.3.0,
        starts_at: row.4,
        ends_at: row.5,
        recurrence: row.6.map(|r| r.0),
        until_resolved: row.7,
        created_by: row.8,
        comment: row.9,
        created_at: row.10,
        expired_at: row.11,
    })
}

impl Store {
    /// The routes of `tenant` (none set: the default).
    pub async fn routes(&self, tenant: TenantId) -> Result<Routes, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let routes: Option<Json<Routes>> = sqlx::query_scalar("SELECT routes FROM notify_routes")
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| classify(e, "routes"))?;
        crate::store::commit(tx, "routes").await?;
        Ok(routes.map(|r| r.0).unwrap_or_default())
    }

    /// Replaces the routes of `tenant`.
    pub async fn set_routes(&self, tenant: TenantId, routes: &Routes) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO notify_routes (tenant_id, routes) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET routes = EXCLUDED.routes, updated_at = now()",
        )
        .bind(tenant.0)
        .bind(Json(routes))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "routes"))?;
        crate::store::commit(tx, "routes").await
    }

    /// Creates a silence of `tenant` as `spec` says (its id, tenant and
    /// times of creation and expiry are the store's).
    pub async fn create_silence(
        &self,
        tenant: TenantId,
        spec: &Silence,
    ) -> Result<Silence, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "INSERT INTO silences AS s (tenant_id, kind, matchers, starts_at, ends_at, recurrence, \
               until_resolved, created_by, comment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING {SILENCE_COLUMNS}"
        );
        let row: SilenceRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(spec.kind.as_str())
            .bind(Json(&spec.matchers))
            .bind(spec.starts_at)
            .bind(spec.ends_at)
            .bind(spec.recurrence.as_ref().map(Json))
            .bind(spec.until_resolved)
            .bind(&spec.created_by)
            .bind(&spec.comment)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "silence"))?;
        crate::store::commit(tx, "silence").await?;
        silence_from(row)
    }

    /// The silences of `tenant`, newest first; ended ones too when `all`.
    pub async fn silences(&self, tenant: TenantId, all: bool) -> Result<Vec<Silence>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "SELECT {SILENCE_COLUMNS} FROM silences s WHERE $1 OR (s.expired_at IS NULL \
               AND (s.ends_at IS NULL OR s.ends_at > now())) ORDER BY s.silence_id DESC LIMIT 1000"
        );
        let rows: Vec<SilenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(all)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "silences"))?;
        crate::store::commit(tx, "silences").await?;
        rows.into_iter().map(silence_from).collect()
    }

    /// Ends a silence of `tenant` now.
    pub async fn expire_silence(&self, tenant: TenantId, id: i64) -> Result<Silence, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "UPDATE silences s SET expired_at = now() WHERE s.silence_id = $1 AND s.expired_at IS NULL \
             RETURNING {SILENCE_COLUMNS}"
        );
        let row: Option<SilenceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| classify(e, "silence"))?;
        let Some(row) = row else {
            return Err(StoreError::NotFound("silence"));
        };
        crate::store::commit(tx, "silence").await?;
        silence_from(row)
    }
}
