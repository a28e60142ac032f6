//! The senders' side: claims, results, overdue deliveries, the pending gauge.

use std::time::Duration;

use super::{Claimed, Finished, Next};
use super::{
    DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, DeliveryRow, RECEIVER_SEND_COLUMNS, ReceiverRow,
    delivery_from, interval, receiver_from,
};
use crate::store::{Store, StoreError, classify};

impl Store {
    /// Claims up to `limit` due deliveries for `lease`, for `sender`: the oldest-due
    /// pending ones that no other sender holds, whose receiver has fewer
    /// than `per_receiver` held, and that have no earlier pending update of
    /// the same incident for the same receiver (so updates go out in order).
    pub async fn claim_deliveries(
        &self,
        limit: i64,
        per_receiver: i64,
        lease: Duration,
        sender: uuid::Uuid,
    ) -> Result<Vec<Claimed>, StoreError> {
        // Per receiver with due deliveries and a free slot (one with all its
        // slots held, a hanging one, costs the claim nothing), its oldest due ones that no
        // sender holds and that no earlier pending update of the same
        // incident holds back (in order); ranked after what the receiver
        // already has in flight, so none gets more than `per_receiver`.
        // The lease is checked again on the row `picked` locks: a row another
        // sender claimed and committed meanwhile is re-read there (READ
        // COMMITTED re-checks a locked row's own conditions, not the
        // snapshot's CTEs), so that two senders never take one delivery.
        // The work per claim is bounded by the receivers and `per_receiver`
        // (the due ones are read in the index's order and the scan stops
        // there), however long one receiver's backlog: a hanging receiver
        // starves no one.
        let sql = format!(
            "WITH held AS ( \
               SELECT receiver_id, count(*) AS n FROM deliveries \
               WHERE state = 'pending' AND leased_until IS NOT NULL AND leased_until >= now() \
               GROUP BY receiver_id), \
             busy AS ( \
               SELECT r.receiver_id FROM receivers r LEFT JOIN held h ON h.receiver_id = r.receiver_id \
               WHERE coalesce(h.n, 0) < $2 AND EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.receiver_id = r.receiver_id AND d.state = 'pending' AND d.next_at <= now())), \
             candidates AS ( \
               SELECT c.* FROM busy b CROSS JOIN LATERAL ( \
                 SELECT d.delivery_id, d.receiver_id, d.next_at FROM deliveries d \
                 WHERE d.receiver_id = b.receiver_id AND d.state = 'pending' AND d.next_at <= now() \
                   AND (d.leased_until IS NULL OR d.leased_until < now()) \
                   AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.receiver_id = d.receiver_id \
                     AND e.incident_id = d.incident_id AND e.state = 'pending' AND e.update_seq < d.update_seq) \
                 ORDER BY d.next_at LIMIT $2) c), \
             ranked AS ( \
               SELECT c.delivery_id, c.next_at, \
                 row_number() OVER (PARTITION BY c.receiver_id ORDER BY c.next_at, c.delivery_id) \
                   + coalesce(h.n, 0) AS slot \
               FROM candidates c LEFT JOIN held h ON h.receiver_id = c.receiver_id), \
             picked AS ( \
               SELECT d.delivery_id FROM deliveries d JOIN ranked r ON r.delivery_id = d.delivery_id \
               WHERE r.slot <= $2 AND d.state = 'pending' AND (d.leased_until IS NULL OR d.leased_until < now()) \
               ORDER BY r.next_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED), \
             claimed AS ( \
               UPDATE deliveries d SET leased_until = now() + make_interval(secs => $3), leased_by = $4, \
                 attempts = d.attempts + 1 \
               FROM picked p WHERE d.delivery_id = p.delivery_id \
                 AND d.state = 'pending' AND (d.leased_until IS NULL OR d.leased_until < now()) \
               RETURNING d.*) \
             SELECT {DELIVERY_COLUMNS}, d.message, {RECEIVER_SEND_COLUMNS} \
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
            .bind(sender)
            .fetch_all(self.pool())
            .await
            .map_err(|e| classify(e, "delivery claim"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (d, message, r): Row =
                claimed_row(&row).map_err(|e| classify(e, "delivery claim"))?;
            let delivery = delivery_from(d)?;
            out.push(Claimed {
                delivery,
                receiver: receiver_from(r)?,
                message: message.0,
            });
        }
        Ok(out)
    }

    /// Records each attempt of `done` and what comes next, in one
    /// transaction (one commit for all that a sender finished meanwhile); a
    /// sender whose lease passed to another (the attempt counts differ)
    /// changes nothing but the attempt's record.
    pub async fn finish_deliveries(&self, done: &[Finished]) -> Result<(), StoreError> {
        match self.finish_together(done).await {
            Err(_) if done.len() > 1 => {
                // One record that cannot be written must not lose the
                // others' (their deliveries would be sent again once their
                // leases pass): each alone, the first error said.
                let mut failed = None;
                for f in done {
                    if let Err(e) = self.finish_together(std::slice::from_ref(f)).await {
                        failed.get_or_insert(e);
                    }
                }
                failed.map_or(Ok(()), Err)
            }
            other => other,
        }
    }

    async fn finish_together(&self, done: &[Finished]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(|e| classify(e, "delivery result"))?;
        for f in done {
            finish(&mut tx, f).await?;
        }
        crate::store::commit(tx, "delivery result").await
    }

    /// Pending deliveries past their deadline that no sender holds become
    /// `failed`; returns how many.
    pub async fn fail_overdue_deliveries(&self) -> Result<u64, StoreError> {
        // A digest's members wait for it, whatever their own deadline, and
        // fail with it.
        let done = sqlx::query(
            "WITH failed AS ( \
               UPDATE deliveries SET state = 'failed', \
                 last_error = CASE WHEN last_error = '' THEN 'deadline passed' ELSE 'deadline passed; last error: ' || last_error END \
               WHERE state = 'pending' AND deadline < now() AND (leased_until IS NULL OR leased_until < now()) \
                 AND digest_id IS NULL AND group_due IS NULL \
               RETURNING delivery_id, last_error) \
             UPDATE deliveries m SET state = 'failed', last_error = f.last_error \
             FROM failed f WHERE m.digest_id = f.delivery_id AND m.state = 'pending'",
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
    use sqlx::{FromRow, Row};
    let d = DeliveryRow::from_row(row)?;
    const M: usize = DELIVERY_COLUMN_COUNT;
    let message = row.try_get(M)?;
    let r: ReceiverRow = (
        row.try_get(M + 1)?,
        row.try_get(M + 2)?,
        row.try_get(M + 3)?,
        row.try_get(M + 4)?,
        row.try_get(M + 5)?,
        row.try_get(M + 6)?,
        row.try_get(M + 7)?,
        row.try_get(M + 8)?,
        row.try_get(M + 9)?,
        row.try_get(M + 10)?,
    );
    Ok((d, message, r))
}

/// Records one finished attempt in `tx`.
async fn finish(tx: &mut sqlx::PgConnection, f: &Finished) -> Result<(), StoreError> {
    let err = |e| classify(e, "delivery result");
    let attempt = &f.attempt;
    sqlx::query(
        // A delivery deleted meanwhile (with its receiver) records nothing.
        "INSERT INTO delivery_attempts (delivery_id, tenant_id, attempt, at, ok, status, latency_ms, error) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM deliveries WHERE delivery_id = $1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(f.delivery_id)
    .bind(f.tenant.0)
    .bind(attempt.attempt)
    .bind(attempt.at)
    .bind(attempt.ok)
    .bind(attempt.status)
    .bind(attempt.latency_ms)
    .bind(&attempt.error)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    let (state, next_at, delivered, last_error) = match f.next {
        Next::Delivered => ("delivered", None, true, ""),
        Next::RetryAt(at) => ("pending", Some(at), false, attempt.error.as_str()),
        Next::Failed(ref why) => ("failed", None, false, why.as_str()),
    };
    sqlx::query(
        "UPDATE deliveries SET state = $3, next_at = coalesce($4, next_at), leased_until = NULL, \
           delivered_at = CASE WHEN $5 THEN now() ELSE delivered_at END, last_error = $6 \
         WHERE delivery_id = $1 AND attempts = $2 AND state = 'pending'",
    )
    .bind(f.delivery_id)
    .bind(attempt.attempt)
    .bind(state)
    .bind(next_at)
    .bind(delivered)
    .bind(last_error)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    if state != "pending" {
        // A digest's members end as it ends.
        sqlx::query(
            "UPDATE deliveries m SET state = d.state, delivered_at = d.delivered_at, \
               last_error = d.last_error, attempts = d.attempts \
             FROM deliveries d WHERE d.delivery_id = $1 AND m.digest_id = $1 AND m.state = 'pending'",
        )
        .bind(f.delivery_id)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    }
    Ok(())
}
