//! Rollup tables: consuming the writer's deltas into the minute and hour
//! tables, pruning them, and the reads the Query service makes of them.
//!
//! Only one consumer runs at a time across all server processes (a
//! transaction-level advisory lock), so a cell is never merged by two
//! transactions at once and each delta counts exactly once: it is deleted in
//! the transaction that merges it.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Store, StoreError, classify};
use crate::{
    domain::TenantId,
    stats::{
        cell::{Agg, decode_delta},
        floor,
        histogram::Histogram,
    },
};

/// Advisory lock key of the rollup consumer ("pulsyon rollup").
const ROLLUP_LOCK: i64 = 0x7075_6c73_726f_6c6c;
/// Name of the rollups' watermark in `rollup_watermarks`.
pub const WATERMARK: &str = "rollups";

/// A rollup cell's key: tenant, service, endpoint ('' in service tables), bucket.
pub type CellKey = (i64, String, String, OffsetDateTime);

/// Where a cell goes: one of the four rollup tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Per endpoint, per minute.
    EndpointMinute,
    /// Per endpoint, per hour.
    EndpointHour,
    /// Per service, per minute.
    ServiceMinute,
    /// Per service, per hour.
    ServiceHour,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::EndpointMinute => "metrics_minute",
            Table::EndpointHour => "metrics_hourly",
            Table::ServiceMinute => "service_minute",
            Table::ServiceHour => "service_hourly",
        }
    }

    fn per_endpoint(self) -> bool {
        matches!(self, Table::EndpointMinute | Table::EndpointHour)
    }

    /// Bucket width in seconds.
    pub fn width(self) -> i64 {
        match self {
            Table::EndpointMinute | Table::ServiceMinute => 60,
            Table::EndpointHour | Table::ServiceHour => 3_600,
        }
    }

    const ALL: [Table; 4] = [
        Table::EndpointMinute,
        Table::EndpointHour,
        Table::ServiceMinute,
        Table::ServiceHour,
    ];
}

const AGG_COLUMNS: &str =
    "count, status_2xx, status_4xx, status_5xx, latency_sum, latency_min, latency_max, histogram";

type AggRow = (i64, i64, i64, i64, f64, f64, f64, Vec<u8>);
type SeriesRow = (OffsetDateTime, i64, i64, i64, i64, f64, f64, f64, Vec<u8>);

fn agg_from_row(row: AggRow) -> Result<Agg, StoreError> {
    let (count, s2, s4, s5, sum, min, max, histogram) = row;
    let histogram = Histogram::decode(&histogram)
        .map_err(|e| StoreError::Corrupt(format!("rollup histogram: {e}")))?;
    Ok(Agg {
        count: count.max(0) as u64,
        status_2xx: s2.max(0) as u64,
        status_4xx: s4.max(0) as u64,
        status_5xx: s5.max(0) as u64,
        latency_sum: sum,
        latency_min: min,
        latency_max: max,
        histogram,
    })
}

/// What one consumer pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consumed {
    /// Deltas merged.
    pub deltas: usize,
    /// Rollup rows written.
    pub rows: usize,
    /// Whether no delta was left: the watermark moved to this pass's start.
    pub drained: bool,
}

/// Rollup cutoffs: cells older than these are not written (they are past retention).
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// Oldest minute bucket kept.
    pub minute: OffsetDateTime,
    /// Oldest hour bucket kept.
    pub hour: OffsetDateTime,
}

/// What a minute must stay within to count towards uptime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteObjective {
    /// Highest 5xx share.
    pub max_error_rate: f64,
    /// Highest p95, milliseconds.
    pub max_p95_ms: f64,
}

/// A service's numbers over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceWindow {
    /// Service name.
    pub service: String,
    /// Requests.
    pub requests: u64,
    /// 5xx responses.
    pub errors: u64,
    /// Requests in buckets at or after the `recent` bound.
    pub recent: u64,
    /// Minutes with traffic.
    pub minutes: u64,
    /// Minutes with traffic meeting the objective.
    pub good_minutes: u64,
    /// Latency histogram over the window.
    pub histogram: Histogram,
}

impl Store {
    /// Merges up to `limit` deltas into the rollup tables in one transaction.
    pub async fn consume_rollup_deltas(
        &self,
        limit: i64,
        cutoffs: Cutoffs,
        objective: MinuteObjective,
    ) -> Result<Consumed, StoreError> {
        let err = |e| classify(e, "rollups");
        let mut tx = self.pool().begin().await.map_err(err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROLLUP_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let deltas: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
            "DELETE FROM rollup_deltas WHERE delta_id IN \
               (SELECT delta_id FROM rollup_deltas ORDER BY delta_id LIMIT $1) \
             RETURNING delta_id, tenant_id, payload",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;

        let mut cells: [BTreeMap<CellKey, Agg>; 4] = Default::default();
        for (delta_id, tenant, payload) in &deltas {
            let decoded = decode_delta(payload).map_err(|e| {
                StoreError::Corrupt(format!("rollup delta {delta_id} cannot be read: {e}"))
            })?;
            for (service, endpoint, minute, agg) in decoded {
                let hour = floor(minute, 3_600);
                for (i, table) in Table::ALL.iter().enumerate() {
                    let bucket = if table.width() == 60 { minute } else { hour };
                    let cutoff = if table.width() == 60 {
                        cutoffs.minute
                    } else {
                        cutoffs.hour
                    };
                    if bucket < cutoff {
                        continue;
                    }
                    let endpoint = if table.per_endpoint() {
                        endpoint.clone()
                    } else {
                        String::new()
                    };
                    cells[i]
                        .entry((*tenant, service.clone(), endpoint, bucket))
                        .or_default()
                        .merge(&agg);
                }
            }
        }
        // The service hours whose minutes changed, while their minute rows
        // are all still kept: their uptime counts are recounted below.
        let hours: Vec<(i64, String, OffsetDateTime)> = cells[3]
            .keys()
            .filter(|k| k.3 >= cutoffs.minute)
            .map(|k| (k.0, k.1.clone(), k.3))
            .collect();
        let mut rows = 0;
        for (table, cells) in Table::ALL.into_iter().zip(cells) {
            rows += cells.len();
            merge_cells(&mut tx, table, cells).await?;
        }
        if !hours.is_empty() {
            sqlx::query(
                "UPDATE service_hourly h SET traffic_minutes = s.n, good_minutes = s.good \
                 FROM (SELECT k.tenant_id, k.service, k.bucket, count(*)::int4 AS n, \
                              (count(*) FILTER (WHERE m.status_5xx <= $4 * m.count AND m.latency_p95 <= $5))::int4 AS good \
                       FROM unnest($1::int8[], $2::text[], $3::timestamptz[]) AS k(tenant_id, service, bucket) \
                       JOIN service_minute m ON m.tenant_id = k.tenant_id AND m.service = k.service \
                        AND m.bucket >= k.bucket AND m.bucket < k.bucket + interval '1 hour' \
                       GROUP BY 1, 2, 3) s \
                 WHERE h.tenant_id = s.tenant_id AND h.service = s.service AND h.bucket = s.bucket",
            )
            .bind(hours.iter().map(|h| h.0).collect::<Vec<_>>())
            .bind(hours.iter().map(|h| h.1.as_str()).collect::<Vec<_>>())
            .bind(hours.iter().map(|h| h.2).collect::<Vec<_>>())
            .bind(objective.max_error_rate)
            .bind(objective.max_p95_ms)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        let drained = (deltas.len() as i64) < limit;
        if drained {
            sqlx::query(
                "INSERT INTO rollup_watermarks (name, watermark) VALUES ($1, now()) \
                 ON CONFLICT (name) DO UPDATE SET watermark = excluded.watermark",
            )
            .bind(WATERMARK)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        Ok(Consumed {
            deltas: deltas.len(),
            rows,
            drained,
        })
    }

    /// Deletes rollup rows older than the cutoffs; returns how many.
    pub async fn prune_rollups(&self, cutoffs: Cutoffs) -> Result<u64, StoreError> {
        let mut pruned = 0;
        for table in Table::ALL {
            let cutoff = if table.width() == 60 {
                cutoffs.minute
            } else {
                cutoffs.hour
            };
            let sql = format!("DELETE FROM {} WHERE bucket < $1", table.name());
            pruned += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(cutoff)
                .execute(self.pool())
                .await
                .map_err(|e| classify(e, "rollup retention"))?
                .rows_affected();
        }
        Ok(pruned)
    }

    /// Everything stored before this time is in the rollups; `None` before the first pass.
    pub async fn rollup_watermark(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        sqlx::query_scalar("SELECT watermark FROM rollup_watermarks WHERE name = $1")
            .bind(WATERMARK)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| classify(e, "rollup watermark"))
    }

    /// Rows of one table for a service (or one endpoint of it) with buckets in [from, to).
    pub async fn rollup_series(
        &self,
        tenant: TenantId,
        table: Table,
        service: &str,
        endpoint: Option<&str>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, Agg)>, StoreError> {
        let endpoint_filter = if table.per_endpoint() {
            "AND endpoint = $5"
        } else {
            ""
        };
        let sql = format!(
            "SELECT bucket, {AGG_COLUMNS} FROM {} \
             WHERE tenant_id = $1 AND service = $2 AND bucket >= $3 AND bucket < $4 {endpoint_filter} \
             ORDER BY bucket",
            table.name()
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<SeriesRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(service)
            .bind(from)
            .bind(to)
            .bind(endpoint.unwrap_or_default())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "metrics"))?;
        super::commit(tx, "metrics").await?;
        rows.into_iter()
            .map(|(bucket, c, s2, s4, s5, sum, min, max, h)| {
                Ok((bucket, agg_from_row((c, s2, s4, s5, sum, min, max, h))?))
            })
            .collect()
    }

    /// Per service (or the one given), over [from, now]: hour rows for the
    /// whole hours in [h0, h1), minute rows for the rest. Requests, 5xx,
    /// requests in buckets from `recent` on (which must lie at or after h1),
    /// minutes with traffic and those meeting `objective`, and the merged histogram.
    pub async fn service_windows(
        &self,
        tenant: TenantId,
        service: Option<&str>,
        from: OffsetDateTime,
        (h0, h1): (OffsetDateTime, OffsetDateTime),
        recent: OffsetDateTime,
        objective: MinuteObjective,
    ) -> Result<Vec<ServiceWindow>, StoreError> {
        type Row = (String, i64, i64, i32, i32, bool, Vec<u8>);
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT service, count, status_5xx, traffic_minutes, good_minutes, false, histogram \
               FROM service_hourly \
              WHERE tenant_id = $1 AND bucket >= $3 AND bucket < $4 AND ($5::text IS NULL OR service = $5) \
             UNION ALL \
             SELECT service, count, status_5xx, 1, (status_5xx <= $6 * count AND latency_p95 <= $7)::int4, \
                    bucket >= $8, histogram \
               FROM service_minute \
              WHERE tenant_id = $1 AND bucket >= $2 AND (bucket < $3 OR bucket >= $4) \
                AND ($5::text IS NULL OR service = $5)",
        )
        .bind(tenant.0)
        .bind(from)
        .bind(h0)
        .bind(h1)
        .bind(service)
        .bind(objective.max_error_rate)
        .bind(objective.max_p95_ms)
        .bind(recent)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "service health"))?;
        super::commit(tx, "service health").await?;
        let mut merged: BTreeMap<String, ServiceWindow> = BTreeMap::new();
        for (service, count, errors, minutes, good, is_recent, bytes) in rows {
            let h = Histogram::decode(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("rollup histogram: {e}")))?;
            let w = merged
                .entry(service.clone())
                .or_insert_with(|| ServiceWindow {
                    service,
                    ..ServiceWindow::default()
                });
            w.requests += count.max(0) as u64;
            w.errors += errors.max(0) as u64;
            if is_recent {
                w.recent += count.max(0) as u64;
            }
            w.minutes += minutes.max(0) as u64;
            w.good_minutes += good.max(0) as u64;
            w.histogram.merge(&h);
        }
        Ok(merged.into_values().collect())
    }
}

impl Store {
    /// Requests and 5xx of every service of the tenant per bucket of a
    /// service table, buckets in [from, to): the recent history a service
    /// list draws (no histograms read). By service, then bucket.
    pub async fn service_buckets(
        &self,
        tenant: TenantId,
        table: Table,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime, u64, u64)>, StoreError> {
        if table.per_endpoint() {
            return Err(StoreError::Invalid("service buckets of an endpoint table"));
        }
        let sql = format!(
            "SELECT service, bucket, count, status_5xx FROM {} \
              WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY service, bucket",
            table.name()
        );
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(String, OffsetDateTime, i64, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(tenant.0)
                .bind(from)
                .bind(to)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| classify(e, "service buckets"))?;
        super::commit(tx, "service buckets").await?;
        Ok(rows
            .into_iter()
            .map(|(s, b, c, e)| (s, b, c.max(0) as u64, e.max(0) as u64))
            .collect())
    }

    /// Per endpoint of `service` over [from, to): hour rows for the whole
    /// hours in [h0, h1), minute rows for the rest. Requests, 5xx and the
    /// merged histogram, by endpoint (in `ServiceWindow`s named by endpoint).
    pub async fn endpoint_windows(
        &self,
        tenant: TenantId,
        service: &str,
        (from, to): (OffsetDateTime, OffsetDateTime),
        (h0, h1): (OffsetDateTime, OffsetDateTime),
    ) -> Result<Vec<ServiceWindow>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows: Vec<(String, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT endpoint, count, status_5xx, histogram FROM metrics_hourly \
              WHERE tenant_id = $1 AND service = $2 AND bucket >= $4 AND bucket < $5 \
             UNION ALL \
             SELECT endpoint, count, status_5xx, histogram FROM metrics_minute \
              WHERE tenant_id = $1 AND service = $2 AND bucket >= $3 AND bucket < $6 \
                AND (bucket < $4 OR bucket >= $5)",
        )
        .bind(tenant.0)
        .bind(service)
        .bind(from)
        .bind(h0)
        .bind(h1)
        .bind(to)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(e, "endpoint health"))?;
        super::commit(tx, "endpoint health").await?;
        let mut merged: BTreeMap<String, ServiceWindow> = BTreeMap::new();
        for (endpoint, count, errors, bytes) in rows {
            let h = Histogram::decode(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("rollup histogram: {e}")))?;
            let w = merged
                .entry(endpoint.clone())
                .or_insert_with(|| ServiceWindow {
                    service: endpoint,
                    ..ServiceWindow::default()
                });
            w.requests += count.max(0) as u64;
            w.errors += errors.max(0) as u64;
            w.histogram.merge(&h);
        }
        Ok(merged.into_values().collect())
    }
}

/// Adds `cells` to `table`: reads the rows already there, merges, writes back.
async fn merge_cells(
    tx: &mut sqlx::PgConnection,
    table: Table,
    mut cells: BTreeMap<CellKey, Agg>,
) -> Result<(), StoreError> {
    if cells.is_empty() {
        return Ok(());
    }
    let err = |e| classify(e, "rollups");
    let tenants: Vec<i64> = cells.keys().map(|k| k.0).collect();
    let services: Vec<String> = cells.keys().map(|k| k.1.clone()).collect();
    let endpoints: Vec<String> = cells.keys().map(|k| k.2.clone()).collect();
    let buckets: Vec<OffsetDateTime> = cells.keys().map(|k| k.3).collect();
    let (endpoint_col, endpoint_join) = if table.per_endpoint() {
        ("m.endpoint", "AND m.endpoint = k.endpoint")
    } else {
        ("''::text", "")
    };
    let read = format!(
        "SELECT m.tenant_id, m.service, {endpoint_col}, m.bucket, \
                m.count, m.status_2xx, m.status_4xx, m.status_5xx, m.latency_sum, m.latency_min, m.latency_max, m.histogram \
         FROM {} m JOIN unnest($1::int8[], $2::text[], $3::text[], $4::timestamptz[]) AS k(tenant_id, service, endpoint, bucket) \
           ON m.tenant_id = k.tenant_id AND m.service = k.service AND m.bucket = k.bucket {endpoint_join}",
        table.name()
    );
    type Existing = (
        i64,
        String,
        String,
        OffsetDateTime,
        i64,
        i64,
        i64,
        i64,
        f64,
        f64,
        f64,
        Vec<u8>,
    );
    let existing: Vec<Existing> = sqlx::query_as(sqlx::AssertSqlSafe(read))
        .bind(&tenants)
        .bind(&services)
        .bind(&endpoints)
        .bind(&buckets)
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
    for (t, s, e, b, c, s2, s4, s5, sum, min, max, h) in existing {
        let old = agg_from_row((c, s2, s4, s5, sum, min, max, h))?;
        if let Some(cell) = cells.get_mut(&(t, s, e, b)) {
            cell.merge(&old);
        }
    }

    let mut columns = vec![("tenant_id", "int8"), ("service", "text")];
    if table.per_endpoint() {
        columns.push(("endpoint", "text"));
    }
    columns.extend([
        ("bucket", "timestamptz"),
        ("count", "int8"),
        ("status_2xx", "int8"),
        ("status_4xx", "int8"),
        ("status_5xx", "int8"),
        ("latency_sum", "float8"),
        ("latency_min", "float8"),
        ("latency_max", "float8"),
        ("latency_p95", "float8"),
        ("histogram", "bytea"),
    ]);
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1))
        .collect();
    let key = if table.per_endpoint() {
        "tenant_id, service, endpoint, bucket"
    } else {
        "tenant_id, service, bucket"
    };
    let updates: Vec<String> = names[names.len() - 9..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let write = format!(
        "INSERT INTO {} ({}) SELECT * FROM unnest({}) ON CONFLICT ({key}) DO UPDATE SET {}",
        table.name(),
        names.join(", "),
        arrays.join(", "),
        updates.join(", ")
    );
    let aggs: Vec<&Agg> = cells.values().collect();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(write))
        .bind(&tenants)
        .bind(&services);
    if table.per_endpoint() {
        q = q.bind(&endpoints);
    }
    q.bind(&buckets)
        .bind(aggs.iter().map(|a| a.count as i64).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.status_2xx as i64).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.status_4xx as i64).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.status_5xx as i64).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.latency_sum).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.latency_min).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.latency_max).collect::<Vec<_>>())
        .bind(aggs.iter().map(|a| a.quantile(0.95)).collect::<Vec<_>>())
        .bind(
            aggs.iter()
                .map(|a| a.histogram.encode())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    Ok(())
}
