//! `pulsyon.v1.Query`: read models for grpcurl users and dashboards.
//! Authenticated with the `read` scope; every answer is confined to the caller's tenant.
//!
//! QueryEvents reads `api_logs`; ListServices, GetServiceHealth and GetMetrics
//! read the rollups (src/rollup), never rescanning raw events; ListFailedEvents
//! and GetIngestStats read what ingest wrote.
//!
//! Caps: QueryEvents spans at most 7 days and 1000 events a page; a health
//! window is 1 minute to 7 days; GetMetrics spans at most 1 day at a 1m step,
//! 31 days at 1h and 400 days at 1d.

use std::{sync::Arc, time::Duration};

use prost::Message;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::{
    auth::Authenticator,
    convert,
    status::{from_store, invalid},
};
use crate::{
    ingest::limits::ThrottleCause,
    proto::v1::{self as pb, query_server::Query},
    query::{self, Step},
    rollup::verdict,
    stats::cell::Agg,
    store::{Store, events::EventFilter},
};

/// The Query service.
#[derive(Debug, Clone)]
pub struct QueryService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// Where the answers come from.
    pub store: Store,
    /// Signs and verifies page tokens.
    pub tokens: Arc<super::tokens::PageTokens>,
    /// Bounds each tenant's concurrent queries.
    pub gate: Arc<crate::query::gate::QueryGate>,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);
/// Longest string filter of QueryEvents, in bytes (the longest field is 512).
const MAX_FILTER_BYTES: usize = 512;

/// The outcomes of one minute (or a total) as the protobuf message.
fn ingest_minute(minute: OffsetDateTime, m: query::Outcomes) -> pb::IngestMinute {
    pb::IngestMinute {
        minute: Some(convert::timestamp(minute)),
        received: m.received,
        stored: m.stored,
        overflowed: m.overflowed,
        duplicates: m.duplicates,
        filtered: m.filtered,
        throttled: m.throttled,
        throttled_by_cause: m
            .throttled_by_cause
            .into_iter()
            .map(|(cause, count)| pb::ThrottleCount {
                cause: match cause {
                    Some(ThrottleCause::EventRate) => pb::ThrottleCause::EventRate,
                    Some(ThrottleCause::ByteRate) => pb::ThrottleCause::ByteRate,
                    Some(ThrottleCause::Overload) => pb::ThrottleCause::Overload,
                    Some(ThrottleCause::Streams) => pb::ThrottleCause::Streams,
                    Some(ThrottleCause::DatabaseBusy) => pb::ThrottleCause::DatabaseBusy,
                    None => pb::ThrottleCause::Unspecified,
                } as i32,
                count,
            })
            .collect(),
        rejected: m.rejected,
        rejected_by_reason: m
            .rejected_by_reason
            .into_iter()
            .map(|(reason, count)| pb::RejectionCount {
                reason: reason.map(convert::reject_reason_to_pb).unwrap_or_default(),
                count,
            })
            .collect(),
    }
}

/// Most bytes of one payload in a ListFailedEvents page (the largest event
/// the server accepts, by default, fits whole).
const LISTED_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most bytes of payloads in one ListFailedEvents page, under the 4 MiB that
/// default gRPC clients read.
const FAILED_PAGE_BYTES: usize = 2 << 20;

/// A dead letter as listed: the event decoded when it can be, its bytes otherwise.
fn failed_event_to_pb(r: crate::domain::FailedEvent) -> pb::FailedEvent {
    let truncated = (r.payload.len() as i64) < r.size;
    // A payload this version cannot decode (or cut short) still lists, with its reason and bytes.
    let event = if truncated {
        None
    } else {
        pb::Event::decode(r.payload.as_slice()).ok()
    };
    pb::FailedEvent {
        payload: if event.is_none() {
            r.payload
        } else {
            Vec::new()
        },
        event,
        reason: r
            .reason
            .map(convert::reject_reason_to_pb)
            .unwrap_or_default(),
        message: r.message,
        received_at: Some(convert::timestamp(r.received_at)),
        producer_id: r.producer_id,
        batch_seq: r.batch_seq as u64,
        index: r.index,
        failed_id: r.failed_id.to_string(),
        size_bytes: r.size.max(0) as u64,
        truncated,
    }
}

/// The page token of QueryEvents: the resolved range (so that "the last hour"
/// does not move between pages), the last event returned, and a fingerprint
/// of the filters (a token only continues the query that issued it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventsToken {
    from: OffsetDateTime,
    to: OffsetDateTime,
    at: OffsetDateTime,
    id: uuid::Uuid,
    fingerprint: u64,
}

const TOKEN_VERSION: u8 = 1;

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(m: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1_000).ok()
}

impl EventsToken {
    fn encode(&self) -> String {
        let mut bytes = vec![TOKEN_VERSION];
        for m in [self.from, self.to, self.at].map(micros) {
            bytes.extend_from_slice(&m.to_be_bytes());
        }
        bytes.extend_from_slice(self.id.as_bytes());
        bytes.extend_from_slice(&self.fingerprint.to_be_bytes());
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(token: &str) -> Result<EventsToken, Status> {
        let bad = || invalid("page_token", "not a token this server issued");
        if token.len() != 98 || !token.is_ascii() {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if bytes[0] != TOKEN_VERSION {
            return Err(bad());
        }
        let word = |at: usize| -> Result<[u8; 8], Status> {
            bytes[at..at + 8].try_into().map_err(|_| bad())
        };
        let time = |at: usize| from_micros(i64::from_be_bytes(word(at)?)).ok_or_else(bad);
        Ok(EventsToken {
            from: time(1)?,
            to: time(9)?,
            at: time(17)?,
            id: uuid::Uuid::from_slice(&bytes[25..41]).map_err(|_| bad())?,
            fingerprint: u64::from_be_bytes(word(41)?),
        })
    }
}

/// FNV-1a over the filter fields: stable across processes and versions.
fn fingerprint(f: &EventFilter) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain([0xffu8].iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for text in [
        &f.service,
        &f.endpoint,
        &f.method,
        &f.trace_id,
        &f.request_id,
    ] {
        eat(text.as_deref().unwrap_or("\u{0}").as_bytes());
    }
    let (low, high) = f.status.unwrap_or((0, 0));
    eat(&low.to_be_bytes());
    eat(&high.to_be_bytes());
    eat(&f.min_latency_ms.unwrap_or(-1.0).to_be_bytes());
    h
}

fn text_filter(field: &str, value: String) -> Result<Option<String>, Status> {
    super::status::checked_text(field, &value, MAX_FILTER_BYTES)?;
    Ok((!value.is_empty()).then_some(value))
}

/// The filter of a QueryEvents request, range resolved against `now`.
/// The filter of a QueryEvents request; its range is at most `max_range`
/// (the tenant's limit).
fn event_filter(
    req: &pb::QueryEventsRequest,
    now: OffsetDateTime,
    max_range: Duration,
) -> Result<EventFilter, Status> {
    let status = match (req.status_code, req.status_class) {
        (0, 0) => None,
        (0, class) => Some(match pb::StatusClass::try_from(class) {
            Ok(pb::StatusClass::StatusClass2xx) => (200, 299),
            Ok(pb::StatusClass::StatusClass3xx) => (300, 399),
            Ok(pb::StatusClass::StatusClass4xx) => (400, 499),
            Ok(pb::StatusClass::StatusClass5xx) => (500, 599),
            _ => return Err(invalid("status_class", format!("unknown value {class}"))),
        }),
        (code @ 100..=599, _) => Some((code as i16, code as i16)),
        (code, _) => return Err(invalid("status_code", format!("{code} is not 100 to 599"))),
    };
    let min_latency_ms = match req.min_latency_ms {
        0.0 => None,
        ms if ms.is_finite() && ms > 0.0 => Some(ms),
        ms => return Err(invalid("min_latency_ms", format!("{ms} is not a latency"))),
    };
    let (from, to) =
        super::request::time_range(req.range.as_ref(), HOUR.min(max_range), max_range, now)?;
    Ok(EventFilter {
        service: text_filter("service", req.service.clone())?,
        endpoint: text_filter("endpoint", req.endpoint.clone())?,
        method: text_filter("method", req.method.clone())?,
        status,
        min_latency_ms,
        trace_id: text_filter("trace_id", req.trace_id.clone())?,
        request_id: text_filter("request_id", req.request_id.clone())?,
        from,
        to,
    })
}

fn health_to_pb(status: verdict::Verdict) -> i32 {
    (match status {
        verdict::Verdict::Unknown => pb::HealthStatus::Unspecified,
        verdict::Verdict::Healthy => pb::HealthStatus::Healthy,
        verdict::Verdict::Degraded => pb::HealthStatus::Degraded,
        verdict::Verdict::Down => pb::HealthStatus::Down,
    }) as i32
}

fn percentiles(p: query::Percentiles) -> pb::LatencyPercentiles {
    pb::LatencyPercentiles {
        p50_ms: p.p50_ms,
        p95_ms: p.p95_ms,
        p99_ms: p.p99_ms,
    }
}

fn point(time: OffsetDateTime, agg: &Agg) -> pb::MetricPoint {
    pb::MetricPoint {
        time: Some(convert::timestamp(time)),
        count: agg.count,
        errors: agg.status_5xx,
        latency: Some(percentiles(query::cell_percentiles(agg))),
    }
}

#[tonic::async_trait]
impl Query for QueryService {
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let now = OffsetDateTime::now_utc();
        let services = self
            .store
            .services(caller.tenant_id)
            .await
            .map_err(from_store)?;
        let hour = query::judge(&self.store, caller.tenant_id, None, HOUR, now)
            .await
            .map_err(from_store)?;
        let current = query::judge(&self.store, caller.tenant_id, None, 15 * MINUTE, now)
            .await
            .map_err(from_store)?;
        let services = services
            .into_iter()
            .map(|(name, first_seen, last_seen)| {
                let h = hour.get(&name);
                let requests = h.map(|j| j.window.requests).unwrap_or(0);
                let errors = h.map(|j| j.window.errors).unwrap_or(0);
                pb::ServiceSummary {
                    first_seen: Some(convert::timestamp(first_seen)),
                    last_seen: Some(convert::timestamp(last_seen)),
                    requests_last_hour: requests,
                    error_rate_last_hour: crate::query::error_rate(errors, requests),
                    health: current
                        .get(&name)
                        .map(|j| health_to_pb(j.status))
                        .unwrap_or_default(),
                    name,
                }
            })
            .collect();
        Ok(Response::new(pb::ListServicesResponse { services }))
    }

    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let limits = &caller.limits;
        let mut filter = event_filter(&req, OffsetDateTime::now_utc(), limits.max_query_range)?;
        let limit = super::request::page_size(
            req.page_size,
            100.min(limits.max_page_size),
            limits.max_page_size,
        )?;
        let print = fingerprint(&filter);
        let cursor = if req.page_token.is_empty() {
            None
        } else {
            let token = EventsToken::decode(self.tokens.open(&req.page_token)?)?;
            if token.fingerprint != print {
                return Err(invalid(
                    "page_token",
                    "it continues a query with other filters",
                ));
            }
            // Signed, so not forged; checked again all the same, since the
            // tenant's limit may have shrunk since the token was issued.
            if token.to - token.from > limits.max_query_range {
                return Err(invalid(
                    "page_token",
                    format!(
                        "its range spans more than the cap of {}",
                        super::request::human(limits.max_query_range)
                    ),
                ));
            }
            (filter.from, filter.to) = (token.from, token.to);
            Some((token.at, token.id))
        };
        let mut rows = self
            .store
            .query_events(caller.tenant_id, &filter, cursor, limit + 1)
            .await
            .map_err(from_store)?;
        let next_page_token = self
            .tokens
            .sign(super::request::next_page(&mut rows, limit, |r| {
                EventsToken {
                    from: filter.from,
                    to: filter.to,
                    at: r.event.time,
                    id: r.event.event_id,
                    fingerprint: print,
                }
                .encode()
            }));
        let events = rows
            .iter()
            .map(|r| pb::StoredEvent {
                event: Some(convert::event_to_pb(&r.event)),
                received_at: Some(convert::timestamp(r.received_at)),
            })
            .collect();
        Ok(Response::new(pb::QueryEventsResponse {
            events,
            next_page_token,
        }))
    }

    async fn get_service_health(
        &self,
        request: Request<pb::GetServiceHealthRequest>,
    ) -> Result<Response<pb::GetServiceHealthResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let window = match req.window {
            None => HOUR,
            Some(d) if d.seconds == 0 && d.nanos == 0 => HOUR,
            Some(d) => Duration::try_from(d)
                .ok()
                .filter(|w| (MINUTE..=7 * DAY).contains(w))
                .ok_or_else(|| invalid("window", "must be between 1 minute and 7 days"))?,
        };
        let service = text_filter("service", req.service)?;
        let services = query::service_health(
            &self.store,
            caller.tenant_id,
            service.as_deref(),
            window,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(from_store)?
        .into_iter()
        .map(|h| pb::ServiceHealth {
            status: health_to_pb(h.status),
            error_rate: h.error_rate(),
            reason: h.reason,
            requests: h.requests,
            latency: Some(percentiles(h.latency)),
            uptime_percent: h.uptime_percent,
            service: h.service,
        })
        .collect();
        let as_of = self.store.rollup_watermark().await.map_err(from_store)?;
        Ok(Response::new(pb::GetServiceHealthResponse {
            services,
            as_of: as_of.map(convert::timestamp),
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let service =
            text_filter("service", req.service)?.ok_or_else(|| invalid("service", "required"))?;
        let endpoint = text_filter("endpoint", req.endpoint)?;
        let step = match req.step {
            None => Step::Minute,
            Some(d) if d.seconds == 0 && d.nanos == 0 => Step::Minute,
            Some(d) => Duration::try_from(d)
                .ok()
                .and_then(Step::of)
                .ok_or_else(|| invalid("step", "must be 1m, 1h or 1d"))?,
        };
        let (from, to) = super::request::time_range(
            req.range.as_ref(),
            HOUR,
            step.cap(),
            OffsetDateTime::now_utc(),
        )?;
        let points = query::series(
            &self.store,
            caller.tenant_id,
            &service,
            endpoint.as_deref(),
            step,
            from,
            to,
        )
        .await
        .map_err(from_store)?
        .iter()
        .map(|(t, a)| point(*t, a))
        .collect();
        Ok(Response::new(pb::GetMetricsResponse { points }))
    }

    async fn list_failed_events(
        &self,
        request: Request<pb::ListFailedEventsRequest>,
    ) -> Result<Response<pb::ListFailedEventsResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let reason = match req.reason {
            0 => None,
            value => Some(
                convert::reject_reason_from_pb(value)
                    .ok_or_else(|| invalid("reason", "unknown reject reason"))?,
            ),
        };
        let (from, to) = super::request::time_range(
            req.range.as_ref(),
            DAY,
            31 * DAY,
            OffsetDateTime::now_utc(),
        )?;
        let max_page = caller.limits.max_page_size;
        let limit = super::request::page_size(req.page_size, 100.min(max_page), max_page)?;
        let cursor = super::request::decode_page_token(self.tokens.open(&req.page_token)?)?;
        let mut rows = self
            .store
            .failed_events(
                caller.tenant_id,
                (from, to),
                reason,
                cursor,
                limit + 1,
                LISTED_PAYLOAD_BYTES as i32,
            )
            .await
            .map_err(from_store)?;
        // Bounded in bytes too: the page ends before the payloads pass the
        // budget (a first row always fits: its payload is capped).
        let mut bytes = 0;
        let fit = rows
            .iter()
            .position(|r| {
                bytes += r.payload.len() + r.message.len() + r.producer_id.len();
                bytes > FAILED_PAGE_BYTES
            })
            .unwrap_or(rows.len())
            .max(1);
        let cut = (fit as i64).min(limit);
        let next_page_token = self
            .tokens
            .sign(super::request::next_page(&mut rows, cut, |r| {
                super::request::encode_page_token(r.received_at, r.failed_id)
            }));
        let failed_events = rows.into_iter().map(failed_event_to_pb).collect();
        Ok(Response::new(pb::ListFailedEventsResponse {
            failed_events,
            next_page_token,
        }))
    }

    async fn get_failed_event(
        &self,
        request: Request<pb::GetFailedEventRequest>,
    ) -> Result<Response<pb::GetFailedEventResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let id: i64 = request
            .into_inner()
            .failed_id
            .parse()
            .map_err(|_| invalid("failed_id", "not a failed event id"))?;
        let row = self
            .store
            .failed_event(caller.tenant_id, id)
            .await
            .map_err(from_store)?;
        Ok(Response::new(pb::GetFailedEventResponse {
            failed_event: Some(failed_event_to_pb(row)),
        }))
    }

    async fn get_ingest_stats(
        &self,
        request: Request<pb::GetIngestStatsRequest>,
    ) -> Result<Response<pb::GetIngestStatsResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        let req = request.into_inner();
        let (from, to) = super::request::time_range(
            req.range.as_ref(),
            Duration::from_secs(3600),
            31 * DAY,
            OffsetDateTime::now_utc(),
        )?;
        let limit = super::request::page_size(req.page_size, 60, 1440)?;
        let before = super::request::decode_page_token(self.tokens.open(&req.page_token)?)?
            .map(|(at, _)| at);
        let (minutes, more) =
            query::outcome_minutes(&self.store, caller.tenant_id, (from, to), before, limit)
                .await
                .map_err(from_store)?;
        let next_page_token = match (more, minutes.last()) {
            (true, Some((last, _))) => self
                .tokens
                .sign(super::request::encode_page_token(*last, 0)),
            _ => String::new(),
        };
        let minutes: Vec<pb::IngestMinute> = minutes
            .into_iter()
            .map(|(minute, m)| ingest_minute(minute, m))
            .collect();
        let totals = self
            .store
            .outcome_totals(caller.tenant_id, from, to)
            .await
            .map_err(from_store)?;
        let mut total = ingest_minute(from, query::fold_outcomes(&totals));
        total.minute = None;
        Ok(Response::new(pb::GetIngestStatsResponse {
            minutes,
            total: Some(total),
            next_page_token,
        }))
    }

    async fn get_objective(
        &self,
        request: Request<pb::GetObjectiveRequest>,
    ) -> Result<Response<pb::GetObjectiveResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        super::objectives::get(&self.store, &caller, request.into_inner()).await
    }

    async fn list_objectives(
        &self,
        request: Request<pb::QueryListObjectivesRequest>,
    ) -> Result<Response<pb::QueryListObjectivesResponse>, Status> {
        let (caller, _running) = self.auth.admit_query(&request, &self.gate).await?;
        super::objectives::standings(&self.store, &caller, request.into_inner()).await
    }
}
