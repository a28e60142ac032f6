//! Reads of stored events (`Query.QueryEvents`): newest first, keyset
//! pagination on (time, event_id), only the filters that are set in the SQL so
//! that the planner can pick the index each filter allows.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, classify};
use crate::domain::{Event, TenantId};

/// Which events to read. Every filter that is set must match.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    /// Only this service.
    pub service: Option<String>,
    /// Only this endpoint.
    pub endpoint: Option<String>,
    /// Only this method.
    pub method: Option<String>,
    /// Only status codes in this inclusive range.
    pub status: Option<(i16, i16)>,
    /// Only events at least this slow.
    pub min_latency_ms: Option<f64>,
    /// Only this trace.
    pub trace_id: Option<String>,
    /// Only this request id.
    pub request_id: Option<String>,
    /// Event time at or after this.
    pub from: OffsetDateTime,
    /// Event time before this.
    pub to: OffsetDateTime,
}

/// An event as stored, with when it was received.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The event.
    pub event: Event,
    /// When the server received it.
    pub received_at: OffsetDateTime,
}

/// A row of `api_logs` as QueryEvents selects it.
#[derive(sqlx::FromRow)]
struct EventRow {
    time: OffsetDateTime,
    event_id: Uuid,
    service: String,
    endpoint: String,
    method: String,
    status_code: i16,
    latency_ms: f64,
    trace_id: String,
    request_id: String,
    environment: String,
    release: String,
    host: String,
    request_bytes: i64,
    response_bytes: i64,
    attributes: sqlx::types::Json<BTreeMap<String, String>>,
    received_at: OffsetDateTime,
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> Self {
        StoredEvent {
            event: Event {
                event_id: r.event_id,
                time: r.time,
                service: r.service,
                endpoint: r.endpoint,
                method: r.method,
                status_code: r.status_code,
                latency_ms: r.latency_ms,
                trace_id: r.trace_id,
                request_id: r.request_id,
                attributes: r.attributes.0.into_iter().collect(),
                environment: r.environment,
                release: r.release,
                host: r.host,
                request_bytes: r.request_bytes,
                response_bytes: r.response_bytes,
            },
            received_at: r.received_at,
        }
    }
}

impl Store {
    /// Up to `limit` events of `tenant` matching `filter`, newest first,
    /// strictly before `cursor` (time, event_id) when given.
    pub async fn query_events(
        &self,
        tenant: TenantId,
        filter: &EventFilter,
        cursor: Option<(OffsetDateTime, Uuid)>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut sql = String::from(
            "SELECT time, event_id, service, endpoint, method, status_code, latency_ms, trace_id, request_id, \
                    environment, release, host, request_bytes, response_bytes, attributes, received_at \
             FROM api_logs WHERE tenant_id = $1 AND time >= $2 AND time < $3",
        );
        let mut n = 3;
        let mut clause = |sql: &mut String, text: &str| {
            n += 1;
            sql.push_str(&text.replace('?', &format!("${n}")));
        };
        let texts = [
            (filter.service.is_some(), " AND service = ?"),
            (filter.endpoint.is_some(), " AND endpoint = ?"),
            (filter.method.is_some(), " AND method = ?"),
            (filter.status.is_some(), " AND status_code >= ?"),
            (filter.status.is_some(), " AND status_code <= ?"),
            (filter.min_latency_ms.is_some(), " AND latency_ms >= ?"),
            (filter.trace_id.is_some(), " AND trace_id = ?"),
            (filter.request_id.is_some(), " AND request_id = ?"),
            (cursor.is_some(), " AND (time, event_id) < (?"),
            (cursor.is_some(), ", ?)"),
        ];
        for (set, text) in texts {
            if set {
                clause(&mut sql, text);
            }
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY time DESC, event_id DESC LIMIT ${n}"));

        let mut q = sqlx::query_as::<_, EventRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.0)
            .bind(filter.from)
            .bind(filter.to);
        for text in [&filter.service, &filter.endpoint, &filter.method]
            .into_iter()
            .flatten()
        {
            q = q.bind(text.clone());
        }
        if let Some((low, high)) = filter.status {
            q = q.bind(low).bind(high);
        }
        if let Some(ms) = filter.min_latency_ms {
            q = q.bind(ms);
        }
        for text in [&filter.trace_id, &filter.request_id].into_iter().flatten() {
            q = q.bind(text.clone());
        }
        if let Some((at, id)) = cursor {
            q = q.bind(at).bind(id);
        }
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = q
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "events"))?;
        super::commit(tx, "events").await?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// Every service of `tenant` with its first and last event time, by name.
    pub async fn services(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, OffsetDateTime, OffsetDateTime)>, StoreError> {
        self.catalogue_rows(
            tenant,
            "SELECT name, first_seen, last_seen FROM services WHERE tenant_id = $1 ORDER BY name",
        )
        .await
    }

    /// The services of `tenant` (with an empty endpoint) and the (service,
    /// endpoint) pairs of its last day of rollups: what the cardinality
    /// guard of ingest starts from.
    pub async fn catalogue_pairs(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.catalogue_rows(
            tenant,
            "SELECT name, ''::text FROM services WHERE tenant_id = $1 \
             UNION SELECT service, endpoint FROM metrics_hourly \
               WHERE tenant_id = $1 AND bucket >= now() - interval '1 day' \
             UNION SELECT service, endpoint FROM metrics_minute \
               WHERE tenant_id = $1 AND bucket >= now() - interval '2 hours'",
        )
        .await
    }

    /// Rows of a catalogue read (`$1`: the tenant), in a tenant transaction.
    async fn catalogue_rows<T>(
        &self,
        tenant: TenantId,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(sql)
            .bind(tenant.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| classify(e, "services"))?;
        super::commit(tx, "services").await?;
        Ok(rows)
    }
}
