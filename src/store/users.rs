//! The people of a tenant who log in to the dashboard: creation, listing,
//! disabling. Every query runs in the tenant's transaction (row-level
//! security). The store keeps the password's Argon2id hash as given; hashing
//! and checking are `crate::auth`'s.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, classify};
use crate::domain::{Role, TenantId, UserInfo};

type UserRow = (Uuid, String, String, OffsetDateTime, Option<OffsetDateTime>);

const USER_COLUMNS: &str = "user_id, name, role, created_at, disabled_at";

fn user_from_row(row: UserRow) -> Result<UserInfo, StoreError> {
    let (user_id, name, role, created_at, disabled_at) = row;
    Ok(UserInfo {
        user_id,
        name,
        // The table's CHECK constraint admits only known names.
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("user role {role:?}")))?,
        created_at,
        disabled_at,
    })
}

impl Store {
    /// Creates a user of `tenant`; `Conflict` when the name is taken.
    pub async fn create_user(
        &self,
        tenant: TenantId,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<UserInfo, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (user_id, tenant_id, name, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, now()) RETURNING {USER_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(tenant.0)
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(e, "user"))?;
        tx.commit().await.map_err(|e| classify(e, "user"))?;
        user_from_row(row)
    }

    /// The tenant's users, by name.
    pub async fn list_users(&self, tenant: TenantId) -> Result<Vec<UserInfo>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY name"
        )))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "user"))?;
        tx.commit().await.map_err(|e| classify(e, "user"))?;
        rows.into_iter().map(user_from_row).collect()
    }

    /// Disables the user named `name` (once: a disabled user keeps its first
    /// `disabled_at`); `NotFound` when the tenant has no such user.
    pub async fn disable_user(&self, tenant: TenantId, name: &str) -> Result<UserInfo, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row: UserRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE name = $1 \
             RETURNING {USER_COLUMNS}"
        )))
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(e, "user"))?;
        tx.commit().await.map_err(|e| classify(e, "user"))?;
        user_from_row(row)
    }
}
