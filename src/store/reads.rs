//! Reads of what ingest wrote: dead letters and outcome counters, always for
//! one tenant, newest first, with keyset pagination.

use time::OffsetDateTime;

use super::{Store, StoreError, classify};
use crate::domain::{FailedEvent, Outcome, OutcomeCount, RejectReason, TenantId};

/// Where a page of dead letters starts: before this (received_at, failed_id).
pub type FailedCursor = (OffsetDateTime, i64);

type FailedRow = (
    i64,
    OffsetDateTime,
    String,
    i64,
    i32,
    String,
    String,
    Vec<u8>,
    i32,
);

fn failed_event(row: FailedRow) -> FailedEvent {
    let (failed_id, received_at, producer_id, batch_seq, index, reason, message, payload, size) =
        row;
    FailedEvent {
        failed_id,
        received_at,
        producer_id,
        batch_seq,
        index: index as u32,
        reason: RejectReason::parse(&reason),
        message,
        payload,
        size: i64::from(size),
    }
}

/// A stored outcome name; an unknown one is corrupt data, not a default.
fn outcome_of(name: &str) -> Result<Outcome, StoreError> {
    Outcome::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown outcome {name:?}")))
}

impl Store {
    /// Up to `limit` dead letters of `tenant` received in [from, to), newest
    /// first, optionally of one reason, after `cursor`; of each payload at
    /// most its first `payload_cap` bytes (cut in the database, so a page of
    /// large dead letters never holds them whole in memory).
    pub async fn failed_events(
        &self,
        tenant: TenantId,
        (from, to): (OffsetDateTime, OffsetDateTime),
        reason: Option<RejectReason>,
        cursor: Option<FailedCursor>,
        limit: i64,
        payload_cap: i32,
    ) -> Result<Vec<FailedEvent>, StoreError> {
        let (cursor_at, cursor_id) = cursor.unwrap_or((to, i64::MAX));
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<FailedRow> = sqlx::query_as(
            "SELECT failed_id, received_at, producer_id, batch_seq, event_index, reason, message, \
                    substring(payload FROM 1 FOR $8), length(payload) \
             FROM failed_events \
             WHERE tenant_id = $1 AND received_at >= $2 AND received_at < $3 \
               AND ($4::text IS NULL OR reason = $4) \
               AND (received_at, failed_id) < ($5, $6) \
             ORDER BY received_at DESC, failed_id DESC LIMIT $7",
        )
        .bind(tenant.0)
        .bind(from)
        .bind(to)
        .bind(reason.map(RejectReason::as_str))
        .bind(cursor_at)
        .bind(cursor_id)
        .bind(limit)
        .bind(payload_cap)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "failed events"))?;
        super::commit(tx, "failed events").await?;
        Ok(rows.into_iter().map(failed_event).collect())
    }

    /// One dead letter of `tenant`, its payload whole.
    pub async fn failed_event(
        &self,
        tenant: TenantId,
        failed_id: i64,
    ) -> Result<FailedEvent, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row: FailedRow = sqlx::query_as(
            "SELECT failed_id, received_at, producer_id, batch_seq, event_index, reason, message, \
                    payload, length(payload) \
             FROM failed_events WHERE tenant_id = $1 AND failed_id = $2",
        )
        .bind(tenant.0)
        .bind(failed_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(e, "failed event"))?;
        super::commit(tx, "failed event").await?;
        Ok(failed_event(row))
    }

    /// The outcome counters of the `limit` newest minutes of `tenant` in
    /// [from, to) that have any, before `before` (a minute) when given.
    pub async fn outcome_minutes(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<OutcomeCount>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(OffsetDateTime, String, String, i64)> = sqlx::query_as(
            "WITH m AS ( \
                SELECT DISTINCT minute FROM ingest_outcomes \
                WHERE tenant_id = $1 AND minute >= $2 AND minute < $3 AND minute < $4 \
                ORDER BY minute DESC LIMIT $5) \
             SELECT o.minute, o.outcome, o.reason, o.count FROM ingest_outcomes o JOIN m USING (minute) \
             WHERE o.tenant_id = $1 ORDER BY o.minute DESC, o.outcome, o.reason",
        )
        .bind(tenant.0)
        .bind(from)
        .bind(to)
        .bind(before.unwrap_or(to))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "ingest stats"))?;
        super::commit(tx, "ingest stats").await?;
        rows.into_iter()
            .map(|(minute, outcome, reason, count)| {
                Ok(OutcomeCount {
                    minute,
                    outcome: outcome_of(&outcome)?,
                    reason,
                    count,
                })
            })
            .collect()
    }

    /// The outcome counters of `tenant` summed over [from, to), by outcome and reason.
    pub async fn outcome_totals(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<OutcomeCount>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT outcome, reason, sum(count)::int8 FROM ingest_outcomes \
             WHERE tenant_id = $1 AND minute >= $2 AND minute < $3 GROUP BY outcome, reason ORDER BY outcome, reason",
        )
        .bind(tenant.0)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "ingest stats"))?;
        super::commit(tx, "ingest stats").await?;
        rows.into_iter()
            .map(|(outcome, reason, count)| {
                Ok(OutcomeCount {
                    minute: from,
                    outcome: outcome_of(&outcome)?,
                    reason,
                    count,
                })
            })
            .collect()
    }
}
