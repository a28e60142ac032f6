//! Notifications' rows: receivers (the tenant's, through its transaction),
//! the planner's step from the outbox to deliveries (as the system, with
//! its cursor in the same transaction), the senders' claims and results,
//! and the delivery log the doors list and replay.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Store, StoreError, classify, outbox::updates_where};
use crate::domain::{
    TenantId,
    incident::{Update, UpdateKind},
    notify::{Attempt, Delivery, DeliveryState, Receiver, ReceiverKind, ReceiverSettings, Secret},
};

/// Transaction-level advisory lock of the planner ("pulsyon notify").
const PLAN_LOCK: i64 = 0x7075_6c73_6e6f_7469;

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
    /// The message's identity (`webhook-id`).
    pub message_id: String,
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

type ReceiverRow = (
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

const RECEIVER_COLUMNS: &str = "r.receiver_id, r.tenant_id, r.name, r.kind, r.url, r.secret, r.settings, r.created_at, \
     (SELECT max(d.delivered_at) FROM deliveries d WHERE d.receiver_id = r.receiver_id), \
     (SELECT a.error FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id \
       WHERE d.receiver_id = r.receiver_id AND NOT a.ok \
         AND a.at > coalesce((SELECT max(d2.delivered_at) FROM deliveries d2 WHERE d2.receiver_id = r.receiver_id), '-infinity') \
       ORDER BY a.at DESC LIMIT 1)";

fn receiver_from(row: ReceiverRow) -> Result<Receiver, StoreError> {
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

type DeliveryRow = (
    i64,
    i64,
    i64,
    String,
    i64,
    i64,
    String,
    OffsetDateTime,
    String,
    i32,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
    String,
);

const DELIVERY_COLUMNS: &str = "d.delivery_id, d.tenant_id, d.receiver_id, r.name, d.incident_id, d.update_seq, \
     d.change, d.committed_at, d.state, d.attempts, d.next_at, d.deadline, d.delivered_at, d.last_error";

fn delivery_from(row: DeliveryRow) -> Result<Delivery, StoreError> {
    let (delivery_id, tenant_id, receiver_id, receiver_name, incident_id, update_seq, change) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
    Ok(Delivery {
        delivery_id,
        tenant_id: TenantId(tenant_id),
        receiver_id,
        receiver_name,
        incident_id,
        update_seq,
        change: UpdateKind::parse(&change)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery change {change:?}")))?,
        committed_at: row.7,
        state: DeliveryState::parse(&row.8)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery state {:?}", row.8)))?,
        attempts: row.9,
        next_at: row.10,
        deadline: row.11,
        delivered_at: row.12,
        last_error: row.13,
    })
}

fn interval(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Store {
    /// Creates a receiver of `tenant`; `Conflict` when the name is taken.
    pub async fn create_receiver(
        &self,
        tenant: TenantId,
        spec: &ReceiverSpec,
    ) -> Result<Receiver, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO receivers (tenant_id, name, kind, url, secret, settings) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING receiver_id",
        )
        .bind(tenant.0)
        .bind(&spec.name)
        .bind(spec.kind.as_str())
        .bind(&spec.url)
        .bind(spec.secret.expose())
        .bind(sqlx::types::Json(&spec.settings))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(e, "receiver"))?;
        let receiver = receiver_in(&mut tx, "r.receiver_id = $1", id, "").await?;
        super::commit(tx, "receiver").await?;
        Ok(receiver)
    }

    /// Replaces the receiver `name` of `tenant` with `spec` (a secret left
    /// empty keeps the stored one).
    pub async fn update_receiver(
        &self,
        tenant: TenantId,
        name: &str,
        spec: &ReceiverSpec,
    ) -> Result<Receiver, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let id: i64 = sqlx::query_scalar(
            "UPDATE receivers SET name = $2, kind = $3, url = $4, \
               secret = CASE WHEN $5 = '' THEN secret ELSE $5 END, settings = $6, updated_at = now() \
             WHERE name = $1 RETURNING receiver_id",
        )
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
        super::commit(tx, "receiver").await?;
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
        super::commit(tx, "receivers").await?;
        rows.into_iter().map(receiver_from).collect()
    }

    /// The receiver `name` of `tenant`.
    pub async fn receiver(&self, tenant: TenantId, name: &str) -> Result<Receiver, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let receiver = receiver_in(&mut tx, "r.name = $2 AND $1 = $1", 0, name).await?;
        super::commit(tx, "receiver").await?;
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
        super::commit(tx, "receiver").await
    }

    /// The planner's step: the outbox rows after the cursor (at most
    /// `batch`), each made into deliveries by `plan` (receiver id and the
    /// rendered message, per update and its tenant's receivers), the cursor
    /// moved past them, all in one transaction. `None` when another process
    /// is planning; else how many updates were read.
    pub async fn plan_deliveries(
        &self,
        batch: i64,
        deadline: Duration,
        plan: impl Fn(&Update, &[Receiver]) -> Vec<(i64, serde_json::Value)>,
    ) -> Result<Option<usize>, StoreError> {
        let err = |e| classify(e, "delivery plan");
        let mut tx = self.pool().begin().await.map_err(err)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PLAN_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        if !locked {
            return Ok(None);
        }
        let cursor: i64 = sqlx::query_scalar("SELECT seq FROM notify_cursor")
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        let updates = updates_where(&mut tx, "u.seq > $1 AND $2 = $2", cursor, 0, batch).await?;
        let Some(last) = updates.last().map(|u| u.seq) else {
            return Ok(Some(0));
        };
        let mut tenants: Vec<i64> = updates.iter().map(|u| u.incident.tenant_id.0).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let sql = format!(
            "SELECT {RECEIVER_COLUMNS} FROM receivers r WHERE r.tenant_id = ANY($1) ORDER BY r.receiver_id"
        );
        let rows: Vec<ReceiverRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&tenants)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        let receivers: Vec<Receiver> = rows
            .into_iter()
            .map(receiver_from)
            .collect::<Result<_, _>>()?;
        let mut columns = PlannedColumns::default();
        for update in &updates {
            let theirs: Vec<Receiver> = receivers
                .iter()
                .filter(|r| r.tenant_id == update.incident.tenant_id)
                .cloned()
                .collect();
            for (receiver_id, message) in plan(update, &theirs) {
                columns.push(update, receiver_id, message);
            }
        }
        columns.insert(&mut tx, deadline).await?;
        sqlx::query("UPDATE notify_cursor SET seq = $1")
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        super::commit(tx, "delivery plan").await?;
        Ok(Some(updates.len()))
    }

    /// Claims up to `limit` due deliveries for `lease`: the oldest-due
    /// pending ones that no other sender holds, whose receiver has fewer
    /// than `per_receiver` held, and that have no earlier pending update of
    /// the same incident for the same receiver (so updates go out in order).
    pub async fn claim_deliveries(
        &self,
        limit: i64,
        per_receiver: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let sql = format!(
            "WITH picked AS ( \
               SELECT d.delivery_id FROM deliveries d \
               WHERE d.state = 'pending' AND d.next_at <= now() \
                 AND (d.leased_until IS NULL OR d.leased_until < now()) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.receiver_id = d.receiver_id \
                   AND e.incident_id = d.incident_id AND e.state = 'pending' AND e.update_seq < d.update_seq) \
                 AND (SELECT count(*) FROM deliveries h WHERE h.receiver_id = d.receiver_id \
                   AND h.state = 'pending' AND h.leased_until >= now()) < $2 \
               ORDER BY d.next_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED), \
             claimed AS ( \
               UPDATE deliveries d SET leased_until = now() + make_interval(secs => $3), attempts = d.attempts + 1 \
               FROM picked p WHERE d.delivery_id = p.delivery_id RETURNING d.*) \
             SELECT {DELIVERY_COLUMNS}, d.message, {RECEIVER_COLUMNS} \
             FROM claimed d JOIN receivers r ON r.receiver_id = d.receiver_id"
        );
        type Row = (
            DeliveryRow,
            sqlx::types::Json<serde_json::Value>,
            ReceiverRow,
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(per_receiver)
            .bind(interval(lease))
            .fetch_all(self.pool())
            .await
            .map_err(|e| classify(e, "delivery claim"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (d, message, r): Row =
                claimed_row(&row).map_err(|e| classify(e, "delivery claim"))?;
            let delivery = delivery_from(d)?;
            let message_id = format!("pulsyon-{}-{}", delivery.incident_id, delivery.update_seq);
            out.push(Claimed {
                delivery,
                receiver: receiver_from(r)?,
                message: message.0,
                message_id,
            });
        }
        Ok(out)
    }

    /// Records `attempt` of `delivery_id` and what comes next; a sender
    /// whose lease passed to another (the attempt counts differ) changes
    /// nothing but the attempt's record.
    pub async fn finish_delivery(
        &self,
        tenant: TenantId,
        delivery_id: i64,
        attempt: &Attempt,
        next: Next,
    ) -> Result<(), StoreError> {
        let err = |e| classify(e, "delivery result");
        let mut tx = self.pool().begin().await.map_err(err)?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, tenant_id, attempt, at, ok, status, latency_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(delivery_id)
        .bind(tenant.0)
        .bind(attempt.attempt)
        .bind(attempt.at)
        .bind(attempt.ok)
        .bind(attempt.status)
        .bind(attempt.latency_ms)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let (state, next_at, delivered, last_error) = match next {
            Next::Delivered => ("delivered", None, true, ""),
            Next::RetryAt(at) => ("pending", Some(at), false, attempt.error.as_str()),
            Next::Failed(ref why) => ("failed", None, false, why.as_str()),
        };
        sqlx::query(
            "UPDATE deliveries SET state = $3, next_at = coalesce($4, next_at), leased_until = NULL, \
               delivered_at = CASE WHEN $5 THEN now() ELSE delivered_at END, last_error = $6 \
             WHERE delivery_id = $1 AND attempts = $2 AND state = 'pending'",
        )
        .bind(delivery_id)
        .bind(attempt.attempt)
        .bind(state)
        .bind(next_at)
        .bind(delivered)
        .bind(last_error)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        super::commit(tx, "delivery result").await
    }

    /// Pending deliveries past their deadline that no sender holds become
    /// `failed`; returns how many.
    pub async fn fail_overdue_deliveries(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE deliveries SET state = 'failed', \
               last_error = CASE WHEN last_error = '' THEN 'deadline passed' ELSE 'deadline passed; last error: ' || last_error END \
             WHERE state = 'pending' AND deadline < now() AND (leased_until IS NULL OR leased_until < now())",
        )
        .execute(self.pool())
        .await
        .map_err(|e| classify(e, "overdue deliveries"))?;
        Ok(done.rows_affected())
    }

    /// Pending deliveries and the age of the oldest (seconds), every tenant.
    pub async fn pending_deliveries(&self) -> Result<(i64, f64), StoreError> {
        sqlx::query_as(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(committed_at))::float8, 0) \
             FROM deliveries WHERE state = 'pending'",
        )
        .fetch_one(self.pool())
        .await
        .map_err(|e| classify(e, "pending deliveries"))
    }

    /// The deliveries of `tenant` `filter` selects, newest first, each with
    /// its attempts.
    pub async fn deliveries(
        &self,
        tenant: TenantId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<(Delivery, Vec<Attempt>)>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN receivers r ON r.receiver_id = d.receiver_id \
             WHERE ($1::bigint IS NULL OR d.incident_id = $1) AND ($2::text IS NULL OR r.name = $2) \
               AND ($3::text IS NULL OR d.state = $3) \
             ORDER BY d.delivery_id DESC LIMIT $4"
        );
        let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.incident_id)
            .bind(filter.receiver.as_deref())
            .bind(filter.state.map(|s| s.as_str()))
            .bind(filter.limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "deliveries"))?;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        type AttemptRow = (i64, i32, OffsetDateTime, bool, i32, f64, String);
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT delivery_id, attempt, at, ok, status, latency_ms, error FROM delivery_attempts \
             WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "delivery attempts"))?;
        super::commit(tx, "deliveries").await?;
        rows.into_iter()
            .map(|row| {
                let d = delivery_from(row)?;
                let mine = attempts
                    .iter()
                    .filter(|a| a.0 == d.delivery_id)
                    .map(|a| Attempt {
                        attempt: a.1,
                        at: a.2,
                        ok: a.3,
                        status: a.4,
                        latency_ms: a.5,
                        error: a.6.clone(),
                    })
                    .collect();
                Ok((d, mine))
            })
            .collect()
    }

    /// Sends a delivery of `tenant` again: a `failed` or `delivered` one
    /// becomes pending now with a new deadline; `State` for a pending one.
    pub async fn retry_delivery(
        &self,
        tenant: TenantId,
        delivery_id: i64,
        deadline: Duration,
    ) -> Result<Delivery, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let state: String =
            sqlx::query_scalar("SELECT state FROM deliveries WHERE delivery_id = $1 FOR UPDATE")
                .bind(delivery_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| classify(e, "delivery"))?;
        if state == "pending" {
            return Err(StoreError::State(
                "the delivery is still pending: it is being sent",
            ));
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'pending', next_at = now(), leased_until = NULL, \
               deadline = now() + make_interval(secs => $2), last_error = '' WHERE delivery_id = $1",
        )
        .bind(delivery_id)
        .bind(interval(deadline))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "delivery"))?;
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN receivers r ON r.receiver_id = d.receiver_id \
             WHERE d.delivery_id = $1"
        );
        let row: DeliveryRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(delivery_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(e, "delivery"))?;
        super::commit(tx, "delivery").await?;
        delivery_from(row)
    }
}

/// One receiver in a transaction, by id (`$1`) or name (`$2`).
async fn receiver_in(
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

/// A claim's row, split into the delivery's, message and receiver's columns.
fn claimed_row(
    row: &sqlx::postgres::PgRow,
) -> Result<
    (
        DeliveryRow,
        sqlx::types::Json<serde_json::Value>,
        ReceiverRow,
    ),
    sqlx::Error,
> {
    use sqlx::Row;
    let d: DeliveryRow = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get(6)?,
        row.try_get(7)?,
        row.try_get(8)?,
        row.try_get(9)?,
        row.try_get(10)?,
        row.try_get(11)?,
        row.try_get(12)?,
        row.try_get(13)?,
    );
    let message = row.try_get(14)?;
    let r: ReceiverRow = (
        row.try_get(15)?,
        row.try_get(16)?,
        row.try_get(17)?,
        row.try_get(18)?,
        row.try_get(19)?,
        row.try_get(20)?,
        row.try_get(21)?,
        row.try_get(22)?,
        row.try_get(23)?,
        row.try_get(24)?,
    );
    Ok((d, message, r))
}

/// The planned deliveries as columns, for one INSERT.
#[derive(Default)]
struct PlannedColumns {
    tenant: Vec<i64>,
    receiver: Vec<i64>,
    incident: Vec<i64>,
    seq: Vec<i64>,
    change: Vec<&'static str>,
    committed: Vec<OffsetDateTime>,
    message: Vec<sqlx::types::Json<serde_json::Value>>,
}

impl PlannedColumns {
    fn push(&mut self, update: &Update, receiver_id: i64, message: serde_json::Value) {
        self.tenant.push(update.incident.tenant_id.0);
        self.receiver.push(receiver_id);
        self.incident.push(update.incident.incident_id);
        self.seq.push(update.seq);
        self.change.push(update.kind.as_str());
        self.committed.push(update.at);
        self.message.push(sqlx::types::Json(message));
    }

    async fn insert(
        self,
        tx: &mut sqlx::PgConnection,
        deadline: Duration,
    ) -> Result<(), StoreError> {
        if self.tenant.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO deliveries (tenant_id, receiver_id, incident_id, update_seq, change, committed_at, \
               next_at, deadline, message) \
             SELECT t, r, i, s, c, at, now(), now() + make_interval(secs => $8), m \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], \
               $6::timestamptz[], $7::jsonb[]) AS x(t, r, i, s, c, at, m) \
             ON CONFLICT (receiver_id, update_seq) DO NOTHING",
        )
        .bind(&self.tenant)
        .bind(&self.receiver)
        .bind(&self.incident)
        .bind(&self.seq)
        .bind(&self.change)
        .bind(&self.committed)
        .bind(&self.message)
        .bind(interval(deadline))
        .execute(tx)
        .await
        .map_err(|e| classify(e, "deliveries"))?;
        Ok(())
    }
}
