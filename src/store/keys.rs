//! Tenants and API keys: creation, lookup by secret digest, listing, revocation.
//!
//! Every query that reads or changes a key is confined to one tenant, except
//! the lookup by digest, which is how a caller's tenant is found.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, classify};
use crate::domain::{ApiKeyInfo, ApiKeySecret, Principal, Scope, Tenant, TenantId};

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
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(|e| classify(e, "api key"))?;
        let key = insert_key(&mut tx, tenant, name, scopes, secret).await?;
        tx.commit().await.map_err(|e| classify(e, "api key"))?;
        Ok(key)
    }

    /// Finds the key whose secret has this SHA-256.
    pub async fn lookup_key(&self, digest: &[u8; 32]) -> Result<Option<KeyLookup>, StoreError> {
        type LookupRow = (Uuid, i64, String, Vec<String>, Option<OffsetDateTime>);
        let row: Option<LookupRow> = sqlx::query_as(
            "SELECT k.key_id, k.tenant_id, t.name, k.scopes, k.revoked_at \
             FROM api_keys k JOIN tenants t USING (tenant_id) WHERE k.secret_sha256 = $1",
        )
        .bind(&digest[..])
        .fetch_optional(self.pool())
        .await
        .map_err(|e| classify(e, "api key"))?;
        Ok(row.map(
            |(key_id, tenant_id, tenant_name, scopes, revoked_at)| KeyLookup {
                principal: Principal {
                    tenant_id: TenantId(tenant_id),
                    tenant_name,
                    key_id,
                    scopes: scopes_from_db(&scopes),
                },
                revoked: revoked_at.is_some(),
            },
        ))
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
        let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.0)
            .bind(include_revoked)
            .fetch_all(self.pool())
            .await
            .map_err(|e| classify(e, "api key"))?;
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
        let row: KeyRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.0)
            .bind(key_id)
            .fetch_one(self.pool())
            .await
            .map_err(|e| classify(e, "api key"))?;
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
