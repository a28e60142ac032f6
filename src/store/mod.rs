//! PostgreSQL access: the pool, the migrations, the private cluster and the
//! mapping of SQLSTATE codes to `StoreError`.
//!
//! Only `store/` (and the writer's COPY) knows sqlx. No database text leaves
//! this module in a form meant for clients: callers see `StoreError` kinds.

pub mod buffer;
pub mod detect;
pub mod embedded;
pub mod events;
pub mod incidents;
pub mod ingest;
pub mod keys;
pub mod notify;
pub mod objectives;
pub mod outbox;
pub mod partitions;
pub mod pgcopy;
pub mod reads;
pub mod rollups;
pub mod secrets;
pub mod users;

use std::time::Duration;

use crate::domain::TenantId;

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The migrations under `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What went wrong with the database, in the terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is shutting down; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A row with the same unique key exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The row asked for does not exist (for this tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A constraint refused the value.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Anything else: a bug or an unexpected database state.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    /// The change does not apply to the row's current state.
    #[error("{0}")]
    State(&'static str),
    /// Stored data this version cannot read (a bug or a newer writer).
    #[error("unreadable stored data: {0}")]
    Corrupt(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Every connection of the pool stayed busy with other requests: the
    /// database is up, the server is saturated.
    #[error("no database connection free for {0}")]
    Busy(&'static str),
}

impl StoreError {
    /// Whether the caller may retry the same operation later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Busy(_))
    }
}

/// The one place where SQLSTATE codes and driver errors become `StoreError`s.
/// `what` names the entity for conflict and constraint errors.
pub fn classify(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound(what),
        sqlx::Error::PoolTimedOut => StoreError::Busy(what),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => StoreError::Conflict(what),
            Some("23514" | "23502" | "22001" | "22P02" | "23503") => StoreError::Invalid(what),
            // Class 08: connection exceptions; 57P0x: the server is shutting down or
            // starting; 53300: too many connections; 40001/40P01: retry the transaction.
            Some(code)
                if code.starts_with("08")
                    || matches!(
                        code,
                        "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
                    ) =>
            {
                StoreError::Unavailable(err)
            }
            _ => StoreError::Other(err),
        },
        _ => StoreError::Other(err),
    }
}

/// A handle on the database, cheap to clone.
///
/// Three budgets, so that one kind of load cannot starve another: `pool`
/// for the system paths (the writer, rollups, detector, keeper, key lookups),
/// `reads` for request paths (every [`Store::tenant_tx`]), and one connection
/// of its own for the health ping, which then says whether the database
/// answers, not whether a pool is momentarily exhausted.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
    reads: PgPool,
    health: PgPool,
}

impl Store {
    /// Connects, retrying until `timeout` while the database is unreachable
    /// (it may still be starting); request paths get a pool of the same size.
    pub async fn connect(
        options: PgConnectOptions,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        Store::connect_split(options, max_connections, max_connections, timeout).await
    }

    /// Connects with `system` connections for the system paths and `reads`
    /// for request paths (and one for health).
    pub async fn connect_split(
        options: PgConnectOptions,
        system: u32,
        reads: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delay = Duration::from_millis(100);
        loop {
            let attempt = PgPoolOptions::new()
                .max_connections(system)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options.clone())
                .await;
            match attempt {
                Ok(pool) => {
                    // A request waits at most 2 s for a connection, then is
                    // told the server is busy (RESOURCE_EXHAUSTED), not down.
                    let reads = PgPoolOptions::new()
                        .max_connections(reads.max(1))
                        .acquire_timeout(Duration::from_secs(2))
                        .connect_lazy_with(options.clone());
                    let health = PgPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(Duration::from_secs(2))
                        .connect_lazy_with(options.clone());
                    return Ok(Store {
                        pool,
                        reads,
                        health,
                    });
                }
                Err(err) => {
                    let err = classify(err, "connection");
                    if !err.is_retryable() || tokio::time::Instant::now() + delay > deadline {
                        return Err(err);
                    }
                    tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "database not reachable yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Applies every pending migration. Safe to run from several processes at
    /// once: sqlx serialises them with an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// A cheap round trip on health's own connection, to tell whether the
    /// database answers (however busy the pools are).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.health)
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "ping"))
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        self.reads.close().await;
        self.health.close().await;
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction that sees and changes `tenant`'s rows only: it runs as
    /// the role `pulsyon_tenant` with `pulsyon.tenant_id` set, so PostgreSQL's
    /// row-level security (migrations/0005) filters every statement, including
    /// one that forgets its `WHERE tenant_id`. Every request path reads and
    /// writes tenant data through one of these; dropping it rolls back.
    pub async fn tenant_tx(
        &self,
        tenant: TenantId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self
            .reads
            .begin()
            .await
            .map_err(|e| classify(e, "transaction"))?;
        sqlx::query(
            "SELECT set_config('role', 'pulsyon_tenant', true), set_config('pulsyon.tenant_id', $1, true)",
        )
        .bind(tenant.0.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "tenant"))?;
        Ok(tx)
    }
}

/// Commits a tenant transaction (a read-only one too: cheaper than a rollback
/// left to the pool).
pub(crate) async fn commit(
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    what: &'static str,
) -> Result<(), StoreError> {
    tx.commit().await.map_err(|e| classify(e, what))
}

/// Connection options from a `postgres://` URL.
pub fn options_from_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    url.parse::<PgConnectOptions>()
        .map_err(|_| StoreError::Invalid("database URL"))
}
