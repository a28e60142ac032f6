//! The delivery log the doors list, and a delivery sent again by hand.

use std::time::Duration;

use time::OffsetDateTime;

use super::DeliveryFilter;
use super::{DELIVERY_COLUMNS, DeliveryRow, delivery_from, interval};
use crate::{
    domain::{
        TenantId,
        notify::{Attempt, Delivery},
    },
    store::{Store, StoreError, classify},
};

impl Store {
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
        let ids: Vec<i64> = rows.iter().map(|r| r.delivery_id).collect();
        type AttemptRow = (i64, i32, OffsetDateTime, bool, i32, f64, String);
        let attempts: Vec<AttemptRow> = sqlx::query_as(
            "SELECT delivery_id, attempt, at, ok, status, latency_ms, error FROM delivery_attempts \
             WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "delivery attempts"))?;
        crate::store::commit(tx, "deliveries").await?;
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
        // A digest's members follow it again; a member sent again by
        // itself leaves its digest (its own message goes out).
        sqlx::query(
            "WITH again AS ( \
               UPDATE deliveries SET state = 'pending', next_at = now(), leased_until = NULL, \
                 deadline = now() + make_interval(secs => $2), last_error = '', digest_id = NULL \
               WHERE delivery_id = $1 RETURNING delivery_id) \
             UPDATE deliveries m SET state = 'pending', next_at = '9999-12-31 00:00:00+00', \
               leased_until = NULL, last_error = '' \
             FROM again a WHERE m.digest_id = a.delivery_id",
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
        crate::store::commit(tx, "delivery").await?;
        delivery_from(row)
    }
}
