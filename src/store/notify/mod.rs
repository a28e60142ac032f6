//! Notifications' rows: receivers (the tenant's, through its transaction),
//! the planner's step from the outbox to deliveries (as the system, with
//! its cursor in the same transaction), the senders' claims and results,
//! and the delivery log the doors list and replay.

use std::time::Duration;

use time::OffsetDateTime;

mod health;
mod log;
mod plan;
pub mod rules;
mod send;

pub use health::{Failing, Raised};
pub use plan::{Planned, Planner, TenantPlan, Windowed};

use super::{Store, StoreError, classify};
use crate::domain::{
    TenantId,
    incident::UpdateKind,
    notify::{Attempt, Delivery, DeliveryState, Receiver, ReceiverKind, ReceiverSettings, Secret},
};

/// Transaction-level advisory lock of the planner ("pulsyon notify").
pub(super) const PLAN_LOCK: i64 = 0x7075_6c73_6e6f_7469;

/// A receiver as written through a door (the id and times are the store's).
#[derive(Debug, Clone)]
pub struct ReceiverSpec {
    /// Unique per tenant.
    pub name: String,
    /// Its kind.
    pub kind: ReceiverKind,
    /// Where to send.
    pub url: String,
    /// Its secret.
    pub secret: Secret,
    /// Kind-specific settings.
    pub settings: ReceiverSettings,
}

/// A claimed delivery with what its sender needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery (its `attempts` counts this one).
    pub delivery: Delivery,
    /// Its receiver, secret included.
    pub receiver: Receiver,
    /// The rendered message.
    pub message: serde_json::Value,
}

/// How an attempt ends a claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Accepted.
    Delivered,
    /// Try again then.
    RetryAt(OffsetDateTime),
    /// Not again (a permanent refusal, or the deadline would pass before
    /// the next attempt): `failed` with this as its last error, replayable.
    Failed(String),
}

/// An attempt of a claimed delivery, finished, to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The delivery's tenant.
    pub tenant: TenantId,
    /// The delivery.
    pub delivery_id: i64,
    /// The attempt.
    pub attempt: Attempt,
    /// What comes next.
    pub next: Next,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Of this incident.
    pub incident_id: Option<i64>,
    /// To this receiver (by name).
    pub receiver: Option<String>,
    /// In this state.
    pub state: Option<DeliveryState>,
    /// At most this many, newest first.
    pub limit: i64,
}

pub(super) type ReceiverRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    sqlx::types::Json<ReceiverSettings>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<String>,
);

/// A receiver's columns with its last success and last error (for the
/// doors' listings).
pub(super) const RECEIVER_COLUMNS: &str = "r.receiver_id, r.tenant_id, r.name, r.kind, r.url, r.secret, r.settings, r.created_at, \
     (SELECT max(d.delivered_at) FROM deliveries d WHERE d.receiver_id = r.receiver_id), \
     (SELECT a.error FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id \
       WHERE d.receiver_id = r.receiver_id AND NOT a.ok \
         AND a.at > coalesce((SELECT max(d2.delivered_at) FROM deliveries d2 WHERE d2.receiver_id = r.receiver_id), '-infinity') \
       ORDER BY a.at DESC LIMIT 1)";

/// A receiver's columns without its history (for planning and sending).
pub(super) const RECEIVER_SEND_COLUMNS: &str = "r.receiver_id, r.tenant_id, r.name, r.kind, r.url, r.secret, r.settings, r.created_at, \
     NULL::timestamptz, NULL::text";

pub(super) fn receiver_from(row: ReceiverRow) -> Result<Receiver, StoreError> {
    let (
        receiver_id,
        tenant_id,
        name,
        kind,
        url,
        secret,
        settings,
        created_at,
        last_success,
        last_error,
    ) = row;
    Ok(Receiver {
        receiver_id,
        tenant_id: TenantId(tenant_id),
        name,
        kind: ReceiverKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("receiver kind {kind:?}")))?,
        url,
        secret: Secret::new(secret),
        settings: settings.0,
        created_at,
        last_success,
        last_error: last_error.unwrap_or_default(),
    })
}

/// A delivery's columns as `DELIVERY_COLUMNS` reads them (by position, so
/// a claim can read the receiver's columns after them).
pub(super) struct DeliveryRow {
    pub(super) delivery_id: i64,
    tenant_id: i64,
    receiver_id: i64,
    receiver_name: String,
    incident_id: i64,
    update_seq: i64,
    change: String,
    committed_at: OffsetDateTime,
    state: String,
    attempts: i32,
    next_at: OffsetDateTime,
    deadline: OffsetDateTime,
    delivered_at: Option<OffsetDateTime>,
    last_error: String,
    reason: String,
    silence_id: Option<i64>,
    digest_id: Option<i64>,
}

/// How many columns `DELIVERY_COLUMNS` names.
pub(super) const DELIVERY_COLUMN_COUNT: usize = 17;

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for DeliveryRow {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        Ok(DeliveryRow {
            delivery_id: row.try_get(0)?,
            tenant_id: row.try_get(1)?,
            receiver_id: row.try_get(2)?,
            receiver_name: row.try_get(3)?,
            incident_id: row.try_get(4)?,
            update_seq: row.try_get(5)?,
            change: row.try_get(6)?,
            committed_at: row.try_get(7)?,
            state: row.try_get(8)?,
            attempts: row.try_get(9)?,
            next_at: row.try_get(10)?,
            deadline: row.try_get(11)?,
            delivered_at: row.try_get(12)?,
            last_error: row.try_get(13)?,
            reason: row.try_get(14)?,
            silence_id: row.try_get(15)?,
            digest_id: row.try_get(16)?,
        })
    }
}

pub(super) const DELIVERY_COLUMNS: &str = "d.delivery_id, d.tenant_id, d.receiver_id, r.name, d.incident_id, d.update_seq, \
     d.change, d.committed_at, d.state, d.attempts, d.next_at, d.deadline, d.delivered_at, d.last_error, \
     d.reason, d.silence_id, d.digest_id";

pub(super) fn delivery_from(row: DeliveryRow) -> Result<Delivery, StoreError> {
    let change = row.change;
    Ok(Delivery {
        delivery_id: row.delivery_id,
        tenant_id: TenantId(row.tenant_id),
        receiver_id: row.receiver_id,
        receiver_name: row.receiver_name,
        incident_id: row.incident_id,
        update_seq: row.update_seq,
        change: UpdateKind::parse(&change)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery change {change:?}")))?,
        committed_at: row.committed_at,
        state: DeliveryState::parse(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery state {:?}", row.state)))?,
        attempts: row.attempts,
        next_at: row.next_at,
        deadline: row.deadline,
        delivered_at: row.delivered_at,
        last_error: row.last_error,
        reason: row.reason,
        silence_id: row.silence_id,
        digest_id: row.digest_id,
    })
}

pub(super) fn interval(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Store {
    /// Creates a receiver of `tenant`; `Conflict` when the name is taken.
    pub async fn create_receiver(
        &self,
        tenant: TenantId,
        spec: &ReceiverSpec,
    ) -> Result<Receiver, StoreError> {
        let sql = "INSERT INTO receivers (tenant_id, name, kind, url, secret, settings) \
             SELECT current_setting('pulsyon.tenant_id')::bigint, $2, $3, $4, $5, $6 \
             WHERE $1 = $1 RETURNING receiver_id";
        self.write_receiver(tenant, sql, "", spec).await
    }

    /// Replaces the receiver `name` of `tenant` with `spec` (a secret left
    /// empty keeps the stored one).
    pub async fn update_receiver(
        &self,
        tenant: TenantId,
        name: &str,
        spec: &ReceiverSpec,
    ) -> Result<Receiver, StoreError> {
        let sql = "UPDATE receivers SET name = $2, kind = $3, url = $4, \
               secret = CASE WHEN $5 = '' THEN secret ELSE $5 END, settings = $6, updated_at = now() \
             WHERE name = $1 RETURNING receiver_id";
        self.write_receiver(tenant, sql, name, spec).await
    }

    /// Runs `sql` ($1 `name`, $2.. the spec) in the tenant's transaction and
    /// reads the receiver it returns the id of.
    async fn write_receiver(
        &self,
        tenant: TenantId,
        sql: &'static str,
        name: &str,
        spec: &ReceiverSpec,
    ) -> Result<Receiver, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let id: i64 = sqlx::query_scalar(sql)
            .bind(name)
            .bind(&spec.name)
            .bind(spec.kind.as_str())
            .bind(&spec.url)
            .bind(spec.secret.expose())
            .bind(sqlx::types::Json(&spec.settings))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "receiver"))?;
        let receiver = receiver_in(&mut tx, "r.receiver_id = $1", id, "").await?;
        crate::store::commit(tx, "receiver").await?;
        Ok(receiver)
    }

    /// The receivers of `tenant`, by name.
    pub async fn receivers(&self, tenant: TenantId) -> Result<Vec<Receiver>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!("SELECT {RECEIVER_COLUMNS} FROM receivers r ORDER BY r.name");
        let rows: Vec<ReceiverRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "receivers"))?;
        crate::store::commit(tx, "receivers").await?;
        rows.into_iter().map(receiver_from).collect()
    }

    /// The receiver `name` of `tenant`.
    pub async fn receiver(&self, tenant: TenantId, name: &str) -> Result<Receiver, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let receiver = receiver_in(&mut tx, "r.name = $2 AND $1 = $1", 0, name).await?;
        crate::store::commit(tx, "receiver").await?;
        Ok(receiver)
    }

    /// Deletes the receiver `name` of `tenant`, with its deliveries.
    pub async fn delete_receiver(&self, tenant: TenantId, name: &str) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let done = sqlx::query("DELETE FROM receivers WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, "receiver"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("receiver"));
        }
        crate::store::commit(tx, "receiver").await
    }
}

/// One receiver in a transaction, by id (`$1`) or name (`$2`).
pub(super) async fn receiver_in(
    tx: &mut sqlx::PgConnection,
    condition: &str,
    id: i64,
    name: &str,
) -> Result<Receiver, StoreError> {
    let sql = format!("SELECT {RECEIVER_COLUMNS} FROM receivers r WHERE {condition}");
    let row: ReceiverRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(name)
        .fetch_one(tx)
        .await
        .map_err(|e| classify(e, "receiver"))?;
    receiver_from(row)
}
