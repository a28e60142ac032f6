//! The write side of ingest: one transaction per writer batch holding the
//! ledger of committed (producer, seq), the events (binary COPY), the dead
//! letters, the service catalogue, the rollup deltas and the outcome counters, so that all of
//! them commit together or not at all.
//!
//! Never commit events without their ledger row: the ledger is what makes a
//! resent batch a duplicate instead of a second copy.

use std::collections::{BTreeMap, HashMap, HashSet, hash_map::Entry};

use time::{OffsetDateTime, Time};

use super::{Store, StoreError, classify, pgcopy};
use crate::domain::{BatchFate, BatchWrite, Outcome, TenantId};

/// Outcome counters of one write, keyed by (tenant, minute, outcome, reason).
type OutcomeKey = (i64, OffsetDateTime, Outcome, &'static str);

/// What makes two events the same: tenant, id and the stored time (microseconds).
type EventKey = (i64, uuid::Uuid, i64);

fn minute(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_time(Time::from_hms(t.hour(), t.minute(), 0).unwrap_or(Time::MIDNIGHT))
}

/// How the events of a write go into `api_logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Insert {
    /// One binary COPY: the fast path, when none of the events was stored before.
    Copy,
    /// COPY into a staging table, then an insert that skips the events
    /// stored before: taken by a write whose COPY met one of them.
    Staged,
}

impl Store {
    /// Writes `batches` in one transaction and says what became of each.
    /// A (producer, seq) already in the ledger with the same digest, or
    /// repeated within `batches` with the same digest, is a duplicate batch;
    /// any other batch is processed, and its events already stored (by
    /// (tenant, event_id, time)) are counted as duplicates, not stored twice.
    /// With `dedup` off (only to measure its cost) the ledger is skipped.
    pub async fn write_batches(
        &self,
        batches: &[BatchWrite],
        dedup: bool,
    ) -> Result<Vec<BatchFate>, StoreError> {
        self.write_batches_fenced(batches, dedup, &[]).await
    }

    /// `write_batches` under `fences`: the write fails with
    /// `StoreError::State(buffer::FENCED)`, writing nothing, unless each
    /// buffer shard named is still held under its epoch.
    pub async fn write_batches_fenced(
        &self,
        batches: &[BatchWrite],
        dedup: bool,
        fences: &[super::buffer::Fence],
    ) -> Result<Vec<BatchFate>, StoreError> {
        match self.write_once(batches, dedup, Insert::Copy, fences).await {
            Err(WriteFailure::EventStoredBefore) => {
                metrics::counter!("pulsyon_writer_staged_writes_total").increment(1);
                match self
                    .write_once(batches, dedup, Insert::Staged, fences)
                    .await
                {
                    Ok(fates) => Ok(fates),
                    Err(WriteFailure::Store(e)) => Err(e),
                    Err(WriteFailure::EventStoredBefore) => {
                        Err(StoreError::Conflict("ingest batch"))
                    }
                }
            }
            Err(WriteFailure::Store(e)) => Err(e),
            Ok(fates) => Ok(fates),
        }
    }

    async fn write_once(
        &self,
        batches: &[BatchWrite],
        dedup: bool,
        insert: Insert,
        fences: &[super::buffer::Fence],
    ) -> Result<Vec<BatchFate>, WriteFailure> {
        let err = |e| WriteFailure::Store(classify(e, "ingest batch"));
        let mut tx = self.pool().begin().await.map_err(err)?;
        // 0. The buffer shards the batches came from are still this writer's.
        super::buffer::check_fences(&mut tx, fences)
            .await
            .map_err(WriteFailure::Store)?;
        // 1. The ledger decides which batches are processed.
        let processed: Vec<bool> = if dedup {
            ledger(&mut tx, batches).await?
        } else {
            vec![true; batches.len()]
        };
        // 2. The events, each (tenant, event_id, time) once.
        let mut keep = first_of_each_event(batches, &processed);
        if kept(batches, &keep).next().is_some() {
            copy_events(&mut tx, batches, &mut keep, insert).await?;
        }
        let fates = fates_of(batches, &keep);
        // 3. Dead letters of the processed batches.
        insert_dead_letters(&mut tx, batches, &fates)
            .await
            .map_err(err)?;
        // 4. The service catalogue.
        upsert_services(&mut tx, batches, &keep)
            .await
            .map_err(err)?;
        // 5. What the stored events (and only they) add to the rollups.
        insert_rollup_deltas(&mut tx, batches, &keep)
            .await
            .map_err(err)?;
        // 6. Outcome counters per tenant and minute of receipt.
        upsert_outcomes(&mut tx, &outcome_counts(batches, &fates))
            .await
            .map_err(WriteFailure::Store)?;
        tx.commit().await.map_err(err)?;
        Ok(fates)
    }

    /// Adds outcome counts outside a batch (throttled events).
    pub async fn add_outcomes(
        &self,
        counts: &[(TenantId, OffsetDateTime, Outcome, &'static str, i64)],
    ) -> Result<(), StoreError> {
        let mut map: BTreeMap<OutcomeKey, i64> = BTreeMap::new();
        for (t, at, outcome, reason, n) in counts {
            *map.entry((t.0, minute(*at), *outcome, reason)).or_default() += n;
        }
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(|e| classify(e, "ingest outcomes"))?;
        upsert_outcomes(&mut conn, &map).await
    }
}

/// Which events of the processed batches go in: each (tenant, event_id,
/// time) once, repeats within the write left out before COPY; `None` for a
/// batch the ledger found a duplicate.
fn first_of_each_event(batches: &[BatchWrite], processed: &[bool]) -> Vec<Option<Vec<bool>>> {
    let mut seen: HashSet<EventKey> = HashSet::new();
    batches
        .iter()
        .zip(processed)
        .map(|(batch, &todo)| {
            todo.then(|| {
                batch
                    .events
                    .iter()
                    .map(|e| seen.insert(event_key(batch.tenant_id, e)))
                    .collect()
            })
        })
        .collect()
}

/// COPYs the events `keep` marks into `api_logs`; with `Staged`, into a
/// staging table first, then only those not stored before (`keep` then
/// unmarks the others). A COPY that meets an event stored before fails with
/// `EventStoredBefore`.
async fn copy_events(
    tx: &mut sqlx::PgConnection,
    batches: &[BatchWrite],
    keep: &mut [Option<Vec<bool>>],
    insert: Insert,
) -> Result<(), WriteFailure> {
    let err = |e| WriteFailure::Store(classify(e, "ingest batch"));
    let size: usize = kept(batches, keep)
        .map(|(_, e)| pgcopy::encoded_size(e))
        .sum();
    let mut copy = pgcopy::CopyBuffer::new(size + 32);
    for (batch, event) in kept(batches, keep) {
        copy.encode_event(batch.tenant_id, event, batch.received_at);
    }
    let target = match insert {
        Insert::Copy => "api_logs",
        Insert::Staged => {
            sqlx::query(
                "CREATE TEMP TABLE IF NOT EXISTS staged_api_logs (LIKE api_logs) ON COMMIT DELETE ROWS",
            )
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            "staged_api_logs"
        }
    };
    let statement = format!(
        "COPY {target} ({}) FROM STDIN (FORMAT binary)",
        pgcopy::API_LOGS_COLUMNS
    );
    let mut sink = tx.copy_in_raw(&statement).await.map_err(err)?;
    if let Err(e) = sink.send(copy.finish()).await {
        let _ = sink.abort("send failed").await;
        return Err(err(e));
    }
    if let Err(e) = sink.finish().await {
        if is_unique_violation(&e) {
            return Err(WriteFailure::EventStoredBefore);
        }
        return Err(err(e));
    }
    if insert == Insert::Staged {
        let inserted: Vec<(i64, uuid::Uuid, OffsetDateTime)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "INSERT INTO api_logs ({cols}) SELECT {cols} FROM staged_api_logs \
                 ON CONFLICT DO NOTHING RETURNING tenant_id, event_id, time",
                cols = pgcopy::API_LOGS_COLUMNS
            )))
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        let stored: HashSet<EventKey> = inserted
            .into_iter()
            .map(|(t, id, time)| (t, id, pgcopy::pg_timestamp(time)))
            .collect();
        for (batch, mask) in batches.iter().zip(keep.iter_mut()) {
            if let Some(mask) = mask {
                for (e, k) in batch.events.iter().zip(mask.iter_mut()) {
                    *k = *k && stored.contains(&event_key(batch.tenant_id, e));
                }
            }
        }
    }
    Ok(())
}

/// What became of each batch: a duplicate, or stored with the events left
/// out counted as duplicates.
fn fates_of(batches: &[BatchWrite], keep: &[Option<Vec<bool>>]) -> Vec<BatchFate> {
    batches
        .iter()
        .zip(keep)
        .map(|(batch, mask)| match mask {
            None => BatchFate::Duplicate,
            Some(mask) => BatchFate::Stored {
                duplicates: (batch.events.len() - mask.iter().filter(|k| **k).count()) as u32,
            },
        })
        .collect()
}

/// The dead letters of the batches processed (not of duplicate batches).
async fn insert_dead_letters(
    tx: &mut sqlx::PgConnection,
    batches: &[BatchWrite],
    fates: &[BatchFate],
) -> Result<(), sqlx::Error> {
    let letters: Vec<(&BatchWrite, &crate::domain::DeadLetter)> = batches
        .iter()
        .zip(fates)
        .filter(|(_, f)| **f != BatchFate::Duplicate)
        .flat_map(|(b, _)| b.rejected.iter().map(move |d| (b, d)))
        .collect();
    if letters.is_empty() {
        return Ok(());
    }
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
    .execute(tx)
    .await?;
    Ok(())
}

/// The service catalogue: each stored event's service with its first and
/// last time, in key order so concurrent writers lock rows alike.
async fn upsert_services(
    tx: &mut sqlx::PgConnection,
    batches: &[BatchWrite],
    keep: &[Option<Vec<bool>>],
) -> Result<(), sqlx::Error> {
    let mut services: BTreeMap<(i64, &str), (OffsetDateTime, OffsetDateTime)> = BTreeMap::new();
    for (batch, e) in kept(batches, keep) {
        let span = services
            .entry((batch.tenant_id.0, e.service.as_str()))
            .or_insert((e.time, e.time));
        span.0 = span.0.min(e.time);
        span.1 = span.1.max(e.time);
    }
    if services.is_empty() {
        return Ok(());
    }
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
    .execute(tx)
    .await?;
    Ok(())
}

/// What the stored events add to the rollups, for the rollup task to merge.
async fn insert_rollup_deltas(
    tx: &mut sqlx::PgConnection,
    batches: &[BatchWrite],
    keep: &[Option<Vec<bool>>],
) -> Result<(), sqlx::Error> {
    let deltas =
        crate::stats::cell::cells_by_tenant(kept(batches, keep).map(|(b, e)| (b.tenant_id, e)));
    if deltas.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rollup_deltas (tenant_id, payload) SELECT * FROM unnest($1::int8[], $2::bytea[])",
    )
    .bind(deltas.keys().copied().collect::<Vec<_>>())
    .bind(
        deltas
            .values()
            .map(crate::stats::cell::encode_delta)
            .collect::<Vec<_>>(),
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Outcome counters of a write, per tenant and minute of receipt; the
/// counters that stay 0 left out.
fn outcome_counts(batches: &[BatchWrite], fates: &[BatchFate]) -> BTreeMap<OutcomeKey, i64> {
    let mut outcomes: BTreeMap<OutcomeKey, i64> = BTreeMap::new();
    for (batch, fate) in batches.iter().zip(fates) {
        let m = minute(batch.received_at);
        let t = batch.tenant_id.0;
        let total = (batch.events.len() + batch.rejected.len()) as i64;
        *outcomes.entry((t, m, Outcome::Received, "")).or_default() += total;
        match *fate {
            // The store never answers Buffered; counted as processed.
            BatchFate::Duplicate | BatchFate::Buffered => {
                *outcomes.entry((t, m, Outcome::Duplicate, "")).or_default() += total
            }
            BatchFate::Stored { duplicates } => {
                let stored = batch.events.len() - duplicates as usize;
                let overflowed = batch.overflowed.min(stored);
                *outcomes.entry((t, m, Outcome::Stored, "")).or_default() +=
                    (stored - overflowed) as i64;
                *outcomes
                    .entry((t, m, Outcome::Stored, "overflow"))
                    .or_default() += overflowed as i64;
                *outcomes.entry((t, m, Outcome::Duplicate, "")).or_default() += duplicates as i64;
                for d in &batch.rejected {
                    *outcomes
                        .entry((t, m, Outcome::Rejected, d.reason.as_str()))
                        .or_default() += 1;
                }
            }
        }
    }
    outcomes.retain(|_, n| *n > 0);
    outcomes
}

/// Why one attempt at a write did not commit.
enum WriteFailure {
    /// The COPY met an event stored before: write again with `Insert::Staged`.
    EventStoredBefore,
    /// Anything else.
    Store(StoreError),
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

/// The events of `batches` that `keep` marks, with their batch.
fn kept<'a>(
    batches: &'a [BatchWrite],
    keep: &'a [Option<Vec<bool>>],
) -> impl Iterator<Item = (&'a BatchWrite, &'a crate::domain::Event)> {
    batches.iter().zip(keep).flat_map(|(batch, mask)| {
        batch
            .events
            .iter()
            .zip(mask.as_deref().unwrap_or(&[]))
            .filter(|(_, k)| **k)
            .map(move |(e, _)| (batch, e))
    })
}

fn event_key(tenant: TenantId, e: &crate::domain::Event) -> EventKey {
    (tenant.0, e.event_id, pgcopy::pg_timestamp(e.time))
}

/// Records the batches in the ledger and says which are to be processed: a
/// key new to the ledger, or one whose digest differs from the recorded one
/// (a producer that reused a sequence number for other events; the ledger
/// then keeps the newer digest). A key already there with the same digest,
/// or repeated within `batches` with the digest of its first occurrence, is
/// a duplicate batch.
async fn ledger(
    tx: &mut sqlx::PgConnection,
    batches: &[BatchWrite],
) -> Result<Vec<bool>, WriteFailure> {
    let err = |e| WriteFailure::Store(classify(e, "ingest batch"));
    let mut first: HashMap<(TenantId, &str, i64), &[u8; 32]> = HashMap::new();
    let unique: Vec<&BatchWrite> = batches
        .iter()
        .filter(|b| match first.entry(b.key()) {
            Entry::Vacant(slot) => {
                slot.insert(&b.digest);
                true
            }
            Entry::Occupied(_) => false,
        })
        .collect();
    let tenants: Vec<i64> = unique.iter().map(|b| b.tenant_id.0).collect();
    let producers: Vec<&str> = unique.iter().map(|b| b.producer_id.as_str()).collect();
    let seqs: Vec<i64> = unique.iter().map(|b| b.seq).collect();
    let accepted: Vec<i32> = unique.iter().map(|b| b.events.len() as i32).collect();
    let rejected: Vec<i32> = unique.iter().map(|b| b.rejected.len() as i32).collect();
    let digests: Vec<&[u8]> = unique.iter().map(|b| b.digest.as_slice()).collect();
    let written: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO ingest_batches (tenant_id, producer_id, seq, accepted, rejected, digest) \
         SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::int4[], $5::int4[], $6::bytea[]) \
         ON CONFLICT (tenant_id, producer_id, seq) DO UPDATE SET \
           digest = excluded.digest, accepted = excluded.accepted, rejected = excluded.rejected, \
           committed_at = now() \
         WHERE ingest_batches.digest IS DISTINCT FROM excluded.digest \
         RETURNING tenant_id, producer_id, seq",
    )
    .bind(&tenants)
    .bind(&producers)
    .bind(&seqs)
    .bind(&accepted)
    .bind(&rejected)
    .bind(&digests)
    .fetch_all(tx)
    .await
    .map_err(err)?;
    let todo: HashSet<(TenantId, &str, i64)> = written
        .iter()
        .map(|(t, p, s)| (TenantId(*t), p.as_str(), *s))
        .collect();
    let mut claimed = HashSet::new();
    Ok(batches
        .iter()
        .map(|b| {
            if claimed.insert(b.key()) {
                todo.contains(&b.key())
            } else {
                // Repeated within this write: the same batch again, unless
                // its events differ from the first occurrence's.
                first.get(&b.key()).is_none_or(|d| **d != b.digest)
            }
        })
        .collect())
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
    .bind(outcomes.keys().map(|k| k.2.as_str()).collect::<Vec<_>>())
    .bind(outcomes.keys().map(|k| k.3).collect::<Vec<_>>())
    .bind(outcomes.values().copied().collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(|e| classify(e, "ingest outcomes"))?;
    Ok(())
}
