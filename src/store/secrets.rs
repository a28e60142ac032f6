//! Secrets shared by every server process (`server_secrets`): the first
//! process that asks for one makes it, the others read the same row.
//!
//! A secret is never logged and never leaves the server.

use super::{Store, StoreError, classify};

impl Store {
    /// The secret named `name`, made from `fresh` when there is none yet.
    /// Concurrent first calls agree: one insert wins, every caller reads it.
    pub async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let err = |e| classify(e, "server secret");
        sqlx::query("INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(fresh)
            .execute(self.pool())
            .await
            .map_err(err)?;
        sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await
            .map_err(err)
    }
}
