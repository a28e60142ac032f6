//! The people of a tenant who log in to the dashboard (creation, listing,
//! disabling) and their sessions. Every query runs in the tenant's
//! transaction (row-level security), except the lookup of a session by its
//! token's digest, which is how a browser's tenant is found. The store keeps
//! the password's Argon2id hash as given; hashing and checking are
//! `crate::auth`'s.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, classify};
use crate::domain::{Role, TenantId, UserInfo};

/// A session as its cookie finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Identifier.
    pub session_id: Uuid,
    /// Whose.
    pub tenant_id: TenantId,
    /// The tenant's name.
    pub tenant_name: String,
    /// Who logged in: the user's name, or `key:<prefix>` for an API key.
    pub actor: String,
    /// What the session may do.
    pub role: Role,
    /// When it ends by itself.
    pub expires_at: OffsetDateTime,
    /// Whether it ended (logout, or its user was disabled).
    pub revoked: bool,
}

/// Who a new session is for.
#[derive(Debug, Clone, Copy)]
pub enum SessionOwner {
    /// A user who gave their password.
    User(Uuid),
    /// An API key.
    Key(Uuid),
}

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
        // Their sessions end with them.
        sqlx::query(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(row.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "session"))?;
        tx.commit().await.map_err(|e| classify(e, "user"))?;
        user_from_row(row)
    }

    /// The user named `name` with its password hash, for a login; `None`
    /// when the tenant has no such user.
    pub async fn user_credentials(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<(UserInfo, String)>, StoreError> {
        type Row = (
            Uuid,
            String,
            String,
            OffsetDateTime,
            Option<OffsetDateTime>,
            String,
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| classify(e, "user"))?;
        tx.commit().await.map_err(|e| classify(e, "user"))?;
        row.map(|(id, name, role, created, disabled, hash)| {
            Ok((user_from_row((id, name, role, created, disabled))?, hash))
        })
        .transpose()
    }

    /// Records a new session of `tenant` whose token has SHA-256 `digest`,
    /// ending at `expires_at`.
    pub async fn create_session(
        &self,
        tenant: TenantId,
        owner: SessionOwner,
        role: Role,
        actor: &str,
        digest: &[u8; 32],
        expires_at: OffsetDateTime,
    ) -> Result<Uuid, StoreError> {
        let (user_id, key_id) = match owner {
            SessionOwner::User(id) => (Some(id), None),
            SessionOwner::Key(id) => (None, Some(id)),
        };
        let session_id = Uuid::now_v7();
        let mut tx = self.tenant_tx(tenant).await?;
        sqlx::query(
            "INSERT INTO sessions (session_id, tenant_id, user_id, key_id, role, actor, \
                                   token_sha256, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)",
        )
        .bind(session_id)
        .bind(tenant.0)
        .bind(user_id)
        .bind(key_id)
        .bind(role.as_str())
        .bind(actor)
        .bind(&digest[..])
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "session"))?;
        tx.commit().await.map_err(|e| classify(e, "session"))?;
        Ok(session_id)
    }

    /// The session whose token has SHA-256 `digest` (revoked or expired
    /// ones too: the caller decides).
    pub async fn lookup_session(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<SessionInfo>, StoreError> {
        type Row = (
            Uuid,
            i64,
            String,
            String,
            String,
            OffsetDateTime,
            Option<OffsetDateTime>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.session_id, s.tenant_id, t.name, s.actor, s.role, s.expires_at, s.revoked_at \
             FROM sessions s JOIN tenants t USING (tenant_id) WHERE s.token_sha256 = $1",
        )
        .bind(&digest[..])
        .fetch_optional(self.pool())
        .await
        .map_err(|e| classify(e, "session"))?;
        row.map(
            |(session_id, tenant, tenant_name, actor, role, expires_at, revoked_at)| {
                Ok(SessionInfo {
                    session_id,
                    tenant_id: TenantId(tenant),
                    tenant_name,
                    actor,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("session role {role:?}")))?,
                    expires_at,
                    revoked: revoked_at.is_some(),
                })
            },
        )
        .transpose()
    }

    /// Ends a session (logout); false when it had ended already.
    pub async fn revoke_session(
        &self,
        tenant: TenantId,
        session_id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = now() WHERE session_id = $1 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "session"))?
        .rows_affected();
        tx.commit().await.map_err(|e| classify(e, "session"))?;
        Ok(done == 1)
    }
}
