//! The write side of ingest: one transaction per writer batch holding the
//! ledger of committed (producer, seq), the events (binary COPY), the dead
//! letters, the service catalogue, the rollup deltas and the outcome counters, so that all of
//! them commit together or not at all.
//!
//! Never commit events without their ledger row: the ledger is what makes a
//! resent batch a duplicate instead of a second copy.

use std::collections::{BTreeMap, HashSet};

use time::{OffsetDateTime, Time};

use super::{Store, StoreError, classify, pgcopy};
use crate::domain::{BatchWrite, TenantId};

/// What happened to each batch of a write, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFate {
    /// The batch is now stored.
    Stored,
    /// The same (tenant, producer, seq) was stored before; nothing was written.
    Duplicate,
}

/// Outcome counters of one write, keyed by (tenant, minute, outcome, reason).
type OutcomeKey = (i64, OffsetDateTime, &'static str, &'static str);

fn minute(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_time(Time::from_hms(t.hour(), t.minute(), 0).unwrap_or(Time::MIDNIGHT))
}

impl Store {
    /// Writes `batches` in one transaction and says which were new. Keys
    /// repeated within `batches` count as duplicates after their first.
    /// With `dedup` off (only to measure its cost) the ledger is skipped and
    /// every batch is stored.
    pub async fn write_batches(
        &self,
        batches: &[BatchWrite],
        dedup: bool,
    ) -> Result<Vec<BatchFate>, StoreError> {
        let err = |e| classify(e, "ingest batch");
        let mut tx = self.pool().begin().await.map_err(err)?;

        // 1. The ledger decides which batches are new.
        let fates = if dedup {
            ledger(&mut tx, batches).await?
        } else {
            vec![BatchFate::Stored; batches.len()]
        };
        let stored = || {
            batches
                .iter()
                .zip(&fates)
                .filter(|(_, f)| **f == BatchFate::Stored)
                .map(|(b, _)| b)
        };

        // 2. The events, by binary COPY.
        let rows: usize = stored().map(|b| b.events.len()).sum();
        if rows > 0 {
            let size: usize = stored()
                .flat_map(|b| b.events.iter())
                .map(pgcopy::encoded_size)
                .sum();
            let mut copy = pgcopy::CopyBuffer::new(size + 32);
            for batch in stored() {
                for event in &batch.events {
                    copy.encode_event(batch.tenant_id, event, batch.received_at);
                }
            }
            let statement = format!(
                "COPY api_logs ({}) FROM STDIN (FORMAT binary)",
                pgcopy::API_LOGS_COLUMNS
            );
            let mut sink = tx.copy_in_raw(&statement).await.map_err(err)?;
            if let Err(e) = sink.send(copy.finish()).await {
                let _ = sink.abort("send failed").await;
                return Err(err(e));
            }
            sink.finish().await.map_err(err)?;
        }

        // 3. Dead letters.
        let letters: Vec<(&BatchWrite, &crate::domain::DeadLetter)> = stored()
            .flat_map(|b| b.rejected.iter().map(move |d| (b, d)))
            .collect();
        if !letters.is_empty() {
            sqlx::query(
                "INSERT INTO failed_events (tenant_id, received_at, producer_id, batch_seq, event_index, reason, message, payload) \
                 SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::text[], $4::int8[], $5::int4[], $6::text[], $7::text[], $8::bytea[])",
            )
            .bind(letters.iter().map(|(b, _)| b.tenant_id.0).collect::<Vec<_>>())
            .bind(letters.iter().map(|(b, _)| b.received_at).collect::<Vec<_>>())
            .bind(letters.iter().map(|(b, _)| b.producer_id.as_str()).collect::<Vec<_>>())
            .bind(letters.iter().map(|(b, _)| b.seq).collect::<Vec<_>>())
            .bind(letters.iter().map(|(_, d)| d.index as i32).collect::<Vec<_>>())
            .bind(letters.iter().map(|(_, d)| d.reason.as_str()).collect::<Vec<_>>())
            .bind(letters.iter().map(|(_, d)| d.message.as_str()).collect::<Vec<_>>())
            .bind(letters.iter().map(|(_, d)| d.payload.as_slice()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }

        // 4. The service catalogue, in key order so concurrent writers lock rows alike.
        let mut services: BTreeMap<(i64, &str), (OffsetDateTime, OffsetDateTime)> = BTreeMap::new();
        for batch in stored() {
            for e in &batch.events {
                let span = services
                    .entry((batch.tenant_id.0, e.service.as_str()))
                    .or_insert((e.time, e.time));
                span.0 = span.0.min(e.time);
                span.1 = span.1.max(e.time);
            }
        }
        if !services.is_empty() {
            sqlx::query(
                "INSERT INTO services (tenant_id, name, first_seen, last_seen) \
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET \
                   first_seen = least(services.first_seen, excluded.first_seen), \
                   last_seen = greatest(services.last_seen, excluded.last_seen) \
                 WHERE excluded.first_seen < services.first_seen OR excluded.last_seen > services.last_seen",
            )
            .bind(services.keys().map(|k| k.0).collect::<Vec<_>>())
            .bind(services.keys().map(|k| k.1).collect::<Vec<_>>())
            .bind(services.values().map(|v| v.0).collect::<Vec<_>>())
            .bind(services.values().map(|v| v.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }

        // 5. What the stored events add to the rollups, for the rollup task.
        let deltas = crate::rollup::cells_by_tenant(stored());
        if !deltas.is_empty() {
            sqlx::query(
                "INSERT INTO rollup_deltas (tenant_id, payload) SELECT * FROM unnest($1::int8[], $2::bytea[])",
            )
            .bind(deltas.keys().copied().collect::<Vec<_>>())
            .bind(
                deltas
                    .values()
                    .map(crate::rollup::agg::encode_delta)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }

        // 6. Outcome counters per tenant and minute of receipt.
        let mut outcomes: BTreeMap<OutcomeKey, i64> = BTreeMap::new();
        for (batch, fate) in batches.iter().zip(&fates) {
            let m = minute(batch.received_at);
            let t = batch.tenant_id.0;
            let total = (batch.events.len() + batch.rejected.len()) as i64;
            *outcomes.entry((t, m, "received", "")).or_default() += total;
            match fate {
                BatchFate::Duplicate => {
                    *outcomes.entry((t, m, "duplicate", "")).or_default() += total
                }
                BatchFate::Stored => {
                    let overflowed = batch.overflowed.min(batch.events.len());
                    *outcomes.entry((t, m, "stored", "")).or_default() +=
                        (batch.events.len() - overflowed) as i64;
                    *outcomes.entry((t, m, "stored", "overflow")).or_default() += overflowed as i64;
                    for d in &batch.rejected {
                        *outcomes
                            .entry((t, m, "rejected", d.reason.as_str()))
                            .or_default() += 1;
                    }
                }
            }
        }
        outcomes.retain(|_, n| *n > 0);
        upsert_outcomes(&mut tx, &outcomes).await?;

        tx.commit().await.map_err(err)?;
        Ok(fates)
    }

    /// Adds outcome counts outside a batch (throttled events).
    pub async fn add_outcomes(
        &self,
        counts: &[(TenantId, OffsetDateTime, &'static str, &'static str, i64)],
    ) -> Result<(), StoreError> {
        let mut map: BTreeMap<OutcomeKey, i64> = BTreeMap::new();
        for (t, at, outcome, reason, n) in counts {
            *map.entry((t.0, minute(*at), outcome, reason)).or_default() += n;
        }
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(|e| classify(e, "ingest outcomes"))?;
        upsert_outcomes(&mut conn, &map).await
    }
}

/// Inserts the batches' keys into the ledger; a key already there (or
/// repeated within `batches`) makes its batch a duplicate.
async fn ledger(
    tx: &mut sqlx::PgConnection,
    batches: &[BatchWrite],
) -> Result<Vec<BatchFate>, StoreError> {
    let err = |e| classify(e, "ingest batch");
    let mut seen = HashSet::new();
    let unique: Vec<&BatchWrite> = batches.iter().filter(|b| seen.insert(b.key())).collect();
    let tenants: Vec<i64> = unique.iter().map(|b| b.tenant_id.0).collect();
    let producers: Vec<&str> = unique.iter().map(|b| b.producer_id.as_str()).collect();
    let seqs: Vec<i64> = unique.iter().map(|b| b.seq).collect();
    let accepted: Vec<i32> = unique.iter().map(|b| b.events.len() as i32).collect();
    let rejected: Vec<i32> = unique.iter().map(|b| b.rejected.len() as i32).collect();
    let inserted: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO ingest_batches (tenant_id, producer_id, seq, accepted, rejected) \
         SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::int4[], $5::int4[]) \
         ON CONFLICT DO NOTHING RETURNING tenant_id, producer_id, seq",
    )
    .bind(&tenants)
    .bind(&producers)
    .bind(&seqs)
    .bind(&accepted)
    .bind(&rejected)
    .fetch_all(tx)
    .await
    .map_err(err)?;
    let new: HashSet<(TenantId, &str, i64)> = inserted
        .iter()
        .map(|(t, p, s)| (TenantId(*t), p.as_str(), *s))
        .collect();
    let mut claimed = HashSet::new();
    let fates: Vec<BatchFate> = batches
        .iter()
        .map(|b| {
            if new.contains(&b.key()) && claimed.insert(b.key()) {
                BatchFate::Stored
            } else {
                BatchFate::Duplicate
            }
        })
        .collect();
    Ok(fates)
}

async fn upsert_outcomes(
    conn: &mut sqlx::PgConnection,
    outcomes: &BTreeMap<OutcomeKey, i64>,
) -> Result<(), StoreError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO ingest_outcomes (tenant_id, minute, outcome, reason, count) \
         SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::text[], $4::text[], $5::int8[]) \
         ON CONFLICT (tenant_id, minute, outcome, reason) DO UPDATE SET count = ingest_outcomes.count + excluded.count",
    )
    .bind(outcomes.keys().map(|k| k.0).collect::<Vec<_>>())
    .bind(outcomes.keys().map(|k| k.1).collect::<Vec<_>>())
    .bind(outcomes.keys().map(|k| k.2).collect::<Vec<_>>())
    .bind(outcomes.keys().map(|k| k.3).collect::<Vec<_>>())
    .bind(outcomes.values().copied().collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(|e| classify(e, "ingest outcomes"))?;
    Ok(())
}
