//! The ingest buffer's shard leases (`buffer_shards`) and its unreadable
//! entries (`buffer_poison`). A writer process owns a shard while its lease
//! runs and commits the shard's batches only under the shard's current epoch
//! (`Fence`, checked in the write transaction): a takeover raises the epoch,
//! so two writers never commit one shard at once.

use time::OffsetDateTime;

use super::{Store, StoreError, classify};

/// The shard and epoch a write commits under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The shard.
    pub shard: i32,
    /// The epoch its owner holds.
    pub epoch: i64,
}

/// What a write under a lost fence fails with.
pub const FENCED: &str = "the buffer shard has another owner now";

impl Store {
    /// Makes the rows of shards `0..shards` exist.
    pub async fn ensure_buffer_shards(&self, shards: u32) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO buffer_shards (shard) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING",
        )
        .bind(shards as i32)
        .execute(self.pool())
        .await
        .map_err(|e| classify(e, "buffer shards"))?;
        Ok(())
    }

    /// How many writers hold a live lease, `owner` counted whether or not it does.
    pub async fn buffer_writers(&self, owner: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT count(DISTINCT o) FROM (SELECT owner AS o FROM buffer_shards \
              WHERE lease_until > now() AND owner <> '' UNION SELECT $1) AS live",
        )
        .bind(owner)
        .fetch_one(self.pool())
        .await
        .map_err(|e| classify(e, "buffer writers"))
    }

    /// Takes up to `want` shards of `0..shards` whose lease ran out (or that
    /// nobody held) for `owner`, each under a new epoch, for `lease`.
    pub async fn claim_buffer_shards(
        &self,
        owner: &str,
        shards: u32,
        want: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<Fence>, StoreError> {
        if want <= 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "UPDATE buffer_shards SET owner = $1, epoch = epoch + 1, \
                    lease_until = now() + make_interval(secs => $4) \
              WHERE shard IN (SELECT shard FROM buffer_shards \
                               WHERE shard < $2 AND lease_until < now() \
                               ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING shard, epoch",
        )
        .bind(owner)
        .bind(shards as i32)
        .bind(want)
        .bind(lease.as_secs_f64())
        .fetch_all(self.pool())
        .await
        .map_err(|e| classify(e, "buffer shard claim"))?;
        Ok(rows
            .into_iter()
            .map(|(shard, epoch)| Fence { shard, epoch })
            .collect())
    }

    /// Extends `owner`'s leases of `held` by `lease`; returns those it still
    /// holds (a shard taken over meanwhile is not among them).
    pub async fn renew_buffer_shards(
        &self,
        owner: &str,
        held: &[Fence],
        lease: std::time::Duration,
    ) -> Result<Vec<Fence>, StoreError> {
        let (shards, epochs): (Vec<i32>, Vec<i64>) =
            held.iter().map(|f| (f.shard, f.epoch)).unzip();
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "UPDATE buffer_shards b SET lease_until = now() + make_interval(secs => $4) \
               FROM unnest($2::int4[], $3::int8[]) AS h(shard, epoch) \
              WHERE b.shard = h.shard AND b.epoch = h.epoch AND b.owner = $1 \
             RETURNING b.shard, b.epoch",
        )
        .bind(owner)
        .bind(&shards)
        .bind(&epochs)
        .bind(lease.as_secs_f64())
        .fetch_all(self.pool())
        .await
        .map_err(|e| classify(e, "buffer shard lease"))?;
        Ok(rows
            .into_iter()
            .map(|(shard, epoch)| Fence { shard, epoch })
            .collect())
    }

    /// Gives `owner`'s `shards` up at once (another writer may take them).
    pub async fn release_buffer_shards(
        &self,
        owner: &str,
        shards: &[Fence],
    ) -> Result<(), StoreError> {
        let (shards, epochs): (Vec<i32>, Vec<i64>) =
            shards.iter().map(|f| (f.shard, f.epoch)).unzip();
        sqlx::query(
            "UPDATE buffer_shards b SET lease_until = '-infinity' \
               FROM unnest($2::int4[], $3::int8[]) AS h(shard, epoch) \
              WHERE b.shard = h.shard AND b.epoch = h.epoch AND b.owner = $1",
        )
        .bind(owner)
        .bind(&shards)
        .bind(&epochs)
        .execute(self.pool())
        .await
        .map_err(|e| classify(e, "buffer shard release"))?;
        Ok(())
    }

    /// Keeps an entry no writer can read as a batch.
    pub async fn add_buffer_poison(
        &self,
        shard: i32,
        entry_id: &str,
        deliveries: i64,
        reason: &str,
        record: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO buffer_poison (shard, entry_id, deliveries, reason, record, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(shard)
        .bind(entry_id)
        .bind(deliveries.clamp(0, i32::MAX as i64) as i32)
        .bind(reason)
        .bind(record)
        .bind(OffsetDateTime::now_utc())
        .execute(self.pool())
        .await
        .map_err(|e| classify(e, "buffer poison"))?;
        Ok(())
    }
}

/// Fails unless every fence still holds, and holds them (FOR SHARE) until
/// the transaction ends: a takeover (which raises the epoch) waits for it,
/// and a write that starts after one fails.
pub(super) async fn check_fences(
    tx: &mut sqlx::PgConnection,
    fences: &[Fence],
) -> Result<(), StoreError> {
    if fences.is_empty() {
        return Ok(());
    }
    let (shards, epochs): (Vec<i32>, Vec<i64>) = fences.iter().map(|f| (f.shard, f.epoch)).unzip();
    let held: Vec<i32> = sqlx::query_scalar(
        "SELECT b.shard FROM buffer_shards b \
           JOIN unnest($1::int4[], $2::int8[]) AS f(shard, epoch) \
             ON b.shard = f.shard AND b.epoch = f.epoch \
         FOR SHARE OF b",
    )
    .bind(&shards)
    .bind(&epochs)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| classify(e, "buffer fence"))?;
    let distinct: std::collections::HashSet<i32> = shards.iter().copied().collect();
    if held.len() < distinct.len() {
        return Err(StoreError::State(FENCED));
    }
    Ok(())
}
