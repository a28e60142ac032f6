//! Daily partitions of `api_logs`: create, list, drop, and watch the default
//! partition. Partition `api_logs_YYYYMMDD` holds [day 00:00 UTC, next day 00:00 UTC).
//!
//! DDL here never runs inside a writer transaction: it takes locks a COPY
//! would wait on.

use time::{Date, Month, macros::format_description};

use super::{Store, StoreError, classify};

fn partition_name(day: Date) -> String {
    format!(
        "api_logs_{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn parse_partition_name(name: &str) -> Option<Date> {
    let digits = name.strip_prefix("api_logs_")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[0..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..8].parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// What `ensure_partition` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The partition exists (it was there, or was made now).
    Exists,
    /// It cannot be made because the default partition holds rows of that
    /// day; such events keep going to the default partition.
    BlockedByDefault,
}

impl Store {
    /// Makes sure the partition for `day` exists.
    pub async fn ensure_partition(&self, day: Date) -> Result<Ensured, StoreError> {
        let fmt = format_description!("[year]-[month]-[day]");
        let from = day
            .format(&fmt)
            .map_err(|_| StoreError::Invalid("partition day"))?;
        let to = day
            .next_day()
            .ok_or(StoreError::Invalid("partition day"))?
            .format(&fmt)
            .map_err(|_| StoreError::Invalid("partition day"))?;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF api_logs FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')",
            partition_name(day)
        );
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(self.pool())
            .await
        {
            Ok(_) => Ok(Ensured::Exists),
            Err(e) => match e.as_database_error().and_then(|d| d.code()).as_deref() {
                // Another process made it at the same moment.
                Some("42P07") | Some("23505") => Ok(Ensured::Exists),
                // The default partition holds rows of that day.
                Some("23514") => Ok(Ensured::BlockedByDefault),
                _ => Err(classify(e, "partition")),
            },
        }
    }

    /// The days that have a partition.
    pub async fn list_partitions(&self) -> Result<Vec<Date>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'api_logs'::regclass",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| classify(e, "partition"))?;
        let mut days: Vec<Date> = names
            .iter()
            .filter_map(|n| parse_partition_name(n))
            .collect();
        days.sort();
        Ok(days)
    }

    /// Drops the partition of `day` with all its events.
    pub async fn drop_partition(&self, day: Date) -> Result<(), StoreError> {
        let sql = format!("DROP TABLE IF EXISTS {}", partition_name(day));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(self.pool())
            .await
            .map_err(|e| classify(e, "partition"))?;
        Ok(())
    }

    /// Forgets ledger entries of batches committed before `before`; a batch
    /// resent after that would be stored again.
    pub async fn prune_batch_ledger(
        &self,
        before: time::OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM ingest_batches WHERE committed_at < $1")
            .bind(before)
            .execute(self.pool())
            .await
            .map_err(|e| classify(e, "batch ledger"))?;
        Ok(done.rows_affected())
    }

    /// How many rows sit in the default partition, counted up to `cap`.
    pub async fn default_partition_rows(&self, cap: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM (SELECT 1 FROM api_logs_default LIMIT $1) s")
            .bind(cap)
            .fetch_one(self.pool())
            .await
            .map_err(|e| classify(e, "partition"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn partition_names_round_trip() {
        let day = date!(2026 - 03 - 07);
        assert_eq!(partition_name(day), "api_logs_20260307");
        assert_eq!(parse_partition_name("api_logs_20260307"), Some(day));
        for bad in [
            "api_logs_default",
            "api_logs_2026030",
            "api_logs_20261301",
            "other_20260307",
        ] {
            assert_eq!(parse_partition_name(bad), None, "{bad}");
        }
    }
}
