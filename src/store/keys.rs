//! Tenants and API keys: creation, lookup by secret digest, listing, revocation.
//!
//! Every query that reads or changes a key is confined to one tenant, except
//! the lookup by digest, which is how a caller's tenant is found.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, classify};
use crate::domain::{
    ApiKeyInfo, ApiKeySecret, LimitOverrides, Principal, Scope, Tenant, TenantId, TenantLimits,
};

type KeyRow = (
    Uuid,
    String,
    String,
    String,
    Vec<String>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
);

const KEY_COLUMNS: &str =
    "k.key_id, t.name, k.name, k.prefix, k.scopes, k.created_at, k.last_used_at, k.revoked_at";

fn key_from_row(row: KeyRow) -> ApiKeyInfo {
    let (key_id, tenant_name, name, prefix, scopes, created_at, last_used_at, revoked_at) = row;
    ApiKeyInfo {
        key_id,
        tenant_name,
        name,
        prefix,
        scopes: scopes_from_db(&scopes),
        created_at,
        last_used_at,
        revoked_at,
    }
}

fn scopes_from_db(names: &[String]) -> Vec<Scope> {
    // The table's CHECK constraint admits only known names.
    let mut scopes: Vec<Scope> = names.iter().filter_map(|n| Scope::parse(n)).collect();
    scopes.sort();
    scopes
}

fn scopes_to_db(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(|s| s.as_str().to_owned()).collect()
}

/// What the key cache needs to know about a presented secret.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    /// The caller, if the key is valid.
    pub principal: Principal,
    /// When the key was revoked; a revoked key authenticates nobody.
    pub revoked: bool,
    /// The tenant's overrides of the default limits.
    pub overrides: LimitOverrides,
}

/// The override columns of `tenant_limits`, in the order of [`LimitsRow`].
const LIMIT_COLUMNS: &str = "events_per_sec, events_burst, bytes_per_sec, bytes_burst, max_streams, \
     max_services, max_endpoints, max_query_range_secs, max_page_size";

type LimitsRow = (
    Option<f64>,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i64>,
    Option<i32>,
);

type LookupRow = (
    Uuid,
    i64,
    String,
    Vec<String>,
    Option<OffsetDateTime>,
    Option<f64>,
    Option<i64>,
    Option<f64>,
    Option<i64>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i64>,
    Option<i32>,
);

fn overrides_from_row(r: LimitsRow) -> LimitOverrides {
    let (eps, eb, bps, bb, streams, services, endpoints, range, page) = r;
    let u32_of = |v: Option<i32>| v.map(|v| v.max(1) as u32);
    LimitOverrides {
        events_per_sec: eps,
        events_burst: eb.map(|v| v.max(1) as u64),
        bytes_per_sec: bps,
        bytes_burst: bb.map(|v| v.max(1) as u64),
        max_streams: u32_of(streams),
        max_services: u32_of(services),
        max_endpoints: u32_of(endpoints),
        max_query_range: range.map(|s| std::time::Duration::from_secs(s.max(1) as u64)),
        max_page_size: u32_of(page),
    }
}

impl Store {
    /// Creates a tenant and its first key (every scope) in one transaction.
    /// `before_commit` runs with the new secret before the commit, so that a
    /// caller can save it where it must not be lost (the embedded default's
    /// key file); if it fails, nothing is created.
    pub async fn create_tenant_with_key<F>(
        &self,
        name: &str,
        key_name: &str,
        secret: &ApiKeySecret,
        before_commit: F,
    ) -> Result<(Tenant, ApiKeyInfo), StoreError>
    where
        F: FnOnce() -> std::io::Result<()>,
    {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(|e| classify(e, "tenant"))?;
        let (tenant_id, created_at): (i64, OffsetDateTime) = sqlx::query_as(
            "INSERT INTO tenants (name) VALUES ($1) RETURNING tenant_id, created_at",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(e, "tenant"))?;
        let tenant = Tenant {
            id: TenantId(tenant_id),
            name: name.to_owned(),
            created_at,
        };
        let key = insert_key(&mut tx, &tenant, key_name, &Scope::ALL, secret).await?;
        if let Err(err) = before_commit() {
            tracing::error!(error = %err, "could not save the new key; nothing was created");
            return Err(StoreError::Invalid("key file location"));
        }
        tx.commit().await.map_err(|e| classify(e, "tenant"))?;
        Ok((tenant, key))
    }

    /// The tenant called `name`.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant, StoreError> {
        let (tenant_id, created_at): (i64, OffsetDateTime) =
            sqlx::query_as("SELECT tenant_id, created_at FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_one(self.pool())
                .await
                .map_err(|e| classify(e, "tenant"))?;
        Ok(Tenant {
            id: TenantId(tenant_id),
            name: name.to_owned(),
            created_at,
        })
    }

    /// Creates a key for `tenant` with `scopes`.
    pub async fn create_key(
        &self,
        tenant: &Tenant,
        name: &str,
        scopes: &[Scope],
        secret: &ApiKeySecret,
    ) -> Result<ApiKeyInfo, StoreError> {
        let mut tx = self.tenant_tx(tenant.id).await?;
        let key = insert_key(&mut tx, tenant, name, scopes, secret).await?;
        tx.commit().await.map_err(|e| classify(e, "api key"))?;
        Ok(key)
    }

    /// Finds the key whose secret has this SHA-256, with its tenant's limit overrides.
    pub async fn lookup_key(&self, digest: &[u8; 32]) -> Result<Option<KeyLookup>, StoreError> {
        let row: Option<LookupRow> = sqlx::query_as(
            "SELECT k.key_id, k.tenant_id, t.name, k.scopes, k.revoked_at, \
                    l.events_per_sec, l.events_burst, l.bytes_per_sec, l.bytes_burst, l.max_streams, \
                    l.max_services, l.max_endpoints, l.max_query_range_secs, l.max_page_size \
             FROM api_keys k JOIN tenants t USING (tenant_id) LEFT JOIN tenant_limits l USING (tenant_id) \
             WHERE k.secret_sha256 = $1",
        )
        .bind(&digest[..])
        .fetch_optional(self.pool())
        .await
        .map_err(|e| classify(e, "api key"))?;
        Ok(row.map(|r| KeyLookup {
            principal: Principal {
                tenant_id: TenantId(r.1),
                tenant_name: r.2,
                key_id: r.0,
                scopes: scopes_from_db(&r.3),
                limits: TenantLimits::default(),
            },
            revoked: r.4.is_some(),
            overrides: overrides_from_row((r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13)),
        }))
    }

    /// The tenant's overrides of the default limits.
    pub async fn limit_overrides(&self, tenant: TenantId) -> Result<LimitOverrides, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row: Option<LimitsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LIMIT_COLUMNS} FROM tenant_limits WHERE tenant_id = $1"
        )))
        .bind(tenant.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| classify(e, "tenant limits"))?;
        super::commit(tx, "tenant limits").await?;
        Ok(row.map(overrides_from_row).unwrap_or_default())
    }

    /// Replaces the tenant's overrides (an all-`None` set removes them).
    pub async fn set_limit_overrides(
        &self,
        tenant: TenantId,
        o: &LimitOverrides,
    ) -> Result<(), StoreError> {
        let err = |e| classify(e, "tenant limits");
        let mut tx = self.tenant_tx(tenant).await?;
        if *o == LimitOverrides::default() {
            sqlx::query("DELETE FROM tenant_limits WHERE tenant_id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO tenant_limits (tenant_id, {LIMIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (tenant_id) DO UPDATE SET events_per_sec = $2, events_burst = $3, bytes_per_sec = $4, \
                   bytes_burst = $5, max_streams = $6, max_services = $7, max_endpoints = $8, \
                   max_query_range_secs = $9, max_page_size = $10, updated_at = now()"
            )))
            .bind(tenant.0)
            .bind(o.events_per_sec)
            .bind(o.events_burst.map(|v| v as i64))
            .bind(o.bytes_per_sec)
            .bind(o.bytes_burst.map(|v| v as i64))
            .bind(o.max_streams.map(|v| v as i32))
            .bind(o.max_services.map(|v| v as i32))
            .bind(o.max_endpoints.map(|v| v as i32))
            .bind(o.max_query_range.map(|d| d.as_secs() as i64))
            .bind(o.max_page_size.map(|v| v as i32))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        super::commit(tx, "tenant limits").await
    }

    /// Records that a key was used, at most once a minute per key.
    pub async fn touch_key(&self, key_id: Uuid) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = date_trunc('minute', now()) \
             WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < date_trunc('minute', now()))",
        )
        .bind(key_id)
        .execute(self.pool())
        .await
        .map_err(|e| classify(e, "api key"))?;
        Ok(())
    }

    /// The keys of one tenant, oldest first.
    pub async fn list_keys(
        &self,
        tenant_id: TenantId,
        include_revoked: bool,
    ) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t USING (tenant_id) \
             WHERE k.tenant_id = $1 AND ($2 OR k.revoked_at IS NULL) ORDER BY k.created_at, k.key_id"
        );
        let mut tx = self.tenant_tx(tenant_id).await?;
        let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.0)
            .bind(include_revoked)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "api key"))?;
        super::commit(tx, "api key").await?;
        Ok(rows.into_iter().map(key_from_row).collect())
    }

    /// Revokes a key of `tenant_id`; a key of another tenant is `NotFound`.
    /// Revoking twice keeps the first revocation time.
    pub async fn revoke_key(
        &self,
        tenant_id: TenantId,
        key_id: Uuid,
    ) -> Result<ApiKeyInfo, StoreError> {
        let sql = format!(
            "WITH k AS (UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) \
                        WHERE tenant_id = $1 AND key_id = $2 RETURNING *) \
             SELECT {KEY_COLUMNS} FROM k JOIN tenants t USING (tenant_id)"
        );
        let mut tx = self.tenant_tx(tenant_id).await?;
        let row: KeyRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.0)
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "api key"))?;
        super::commit(tx, "api key").await?;
        Ok(key_from_row(row))
    }
}

async fn insert_key(
    tx: &mut sqlx::PgConnection,
    tenant: &Tenant,
    name: &str,
    scopes: &[Scope],
    secret: &ApiKeySecret,
) -> Result<ApiKeyInfo, StoreError> {
    let key_id = Uuid::now_v7();
    let created_at: OffsetDateTime = sqlx::query_scalar(
        "INSERT INTO api_keys (key_id, tenant_id, name, prefix, secret_sha256, scopes) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
    )
    .bind(key_id)
    .bind(tenant.id.0)
    .bind(name)
    .bind(secret.display_prefix())
    .bind(&secret.sha256()[..])
    .bind(scopes_to_db(scopes))
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| classify(e, "api key"))?;
    Ok(ApiKeyInfo {
        key_id,
        tenant_name: tenant.name.clone(),
        name: name.to_owned(),
        prefix: secret.display_prefix().to_owned(),
        scopes: scopes.to_vec(),
        created_at,
        last_used_at: None,
        revoked_at: None,
    })
}
