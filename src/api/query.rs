//! `pulsyon.v1.Query`: read models for grpcurl users and dashboards.
//! Authenticated with the `read` scope; every answer is confined to the caller's tenant.
//!
//! ListFailedEvents and GetIngestStats read what ingest wrote; the other
//! read models land with the query issue and answer UNIMPLEMENTED until then.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use prost::Message;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::{
    auth::Authenticator,
    convert,
    status::{from_store, invalid, not_yet},
};
use crate::{
    domain::{OutcomeCount, RejectReason, Scope},
    proto::v1::{self as pb, query_server::Query},
    store::Store,
};

/// The Query service.
#[derive(Debug, Clone)]
pub struct QueryService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// Where the answers come from.
    pub store: Store,
}

const QUERY_ISSUE: &str = "the query issue (rollups and the Query service)";
const DAY: Duration = Duration::from_secs(86_400);

/// An opaque page token over a (time, id) keyset.
fn encode_token(at: OffsetDateTime, id: i64) -> String {
    format!("{:x}.{:x}", at.unix_timestamp_nanos() / 1_000, id)
}

fn decode_token(token: &str) -> Result<Option<(OffsetDateTime, i64)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || invalid("page_token", "not a token this server issued");
    let (micros, id) = token.split_once('.').ok_or_else(bad)?;
    let micros = i128::from_str_radix(micros, 16).map_err(|_| bad())?;
    let id = i64::from_str_radix(id, 16).map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| bad())?;
    Ok(Some((at, id)))
}

/// Folds outcome rows of one minute (or a total) into the protobuf message.
fn ingest_minute(minute: OffsetDateTime, rows: &[OutcomeCount]) -> pb::IngestMinute {
    let mut m = pb::IngestMinute {
        minute: Some(convert::timestamp(minute)),
        ..Default::default()
    };
    for row in rows {
        let n = row.count.max(0) as u64;
        match row.outcome.as_str() {
            "received" => m.received += n,
            "stored" => m.stored += n,
            "duplicate" => m.duplicates += n,
            "throttled" => m.throttled += n,
            "rejected" => {
                m.rejected += n;
                let reason = RejectReason::parse(&row.reason)
                    .map(convert::reject_reason_to_pb)
                    .unwrap_or_default();
                m.rejected_by_reason
                    .push(pb::RejectionCount { reason, count: n });
            }
            _ => {}
        }
    }
    m
}

#[tonic::async_trait]
impl Query for QueryService {
    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.ListServices", QUERY_ISSUE))
    }

    async fn query_events(
        &self,
        request: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.QueryEvents", QUERY_ISSUE))
    }

    async fn get_service_health(
        &self,
        request: Request<pb::GetServiceHealthRequest>,
    ) -> Result<Response<pb::GetServiceHealthResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.GetServiceHealth", QUERY_ISSUE))
    }

    async fn get_metrics(
        &self,
        request: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::GetMetricsResponse>, Status> {
        self.auth.authorize(&request, Scope::Read).await?;
        Err(not_yet("Query.GetMetrics", QUERY_ISSUE))
    }

    async fn list_failed_events(
        &self,
        request: Request<pb::ListFailedEventsRequest>,
    ) -> Result<Response<pb::ListFailedEventsResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let req = request.into_inner();
        let reason = match req.reason {
            0 => None,
            value => Some(
                convert::reject_reason_from_pb(value)
                    .ok_or_else(|| invalid("reason", "unknown reject reason"))?,
            ),
        };
        let (from, to) =
            convert::time_range(req.range.as_ref(), DAY, 31 * DAY, OffsetDateTime::now_utc())?;
        let limit = convert::page_size(req.page_size, 100, 1000)?;
        let cursor = decode_token(&req.page_token)?;
        let mut rows = self
            .store
            .failed_events(caller.tenant_id, from, to, reason, cursor, limit + 1)
            .await
            .map_err(from_store)?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| encode_token(r.received_at, r.failed_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let failed_events = rows
            .into_iter()
            .map(|r| pb::FailedEvent {
                // A payload this version cannot decode still lists, with its reason.
                event: pb::Event::decode(r.payload.as_slice()).ok(),
                reason: r
                    .reason
                    .map(convert::reject_reason_to_pb)
                    .unwrap_or_default(),
                message: r.message,
                received_at: Some(convert::timestamp(r.received_at)),
                producer_id: r.producer_id,
                batch_seq: r.batch_seq as u64,
                index: r.index,
            })
            .collect();
        Ok(Response::new(pb::ListFailedEventsResponse {
            failed_events,
            next_page_token,
        }))
    }

    async fn get_ingest_stats(
        &self,
        request: Request<pb::GetIngestStatsRequest>,
    ) -> Result<Response<pb::GetIngestStatsResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Read).await?;
        let req = request.into_inner();
        let (from, to) = convert::time_range(
            req.range.as_ref(),
            Duration::from_secs(3600),
            31 * DAY,
            OffsetDateTime::now_utc(),
        )?;
        let limit = convert::page_size(req.page_size, 60, 1440)?;
        let before = decode_token(&req.page_token)?.map(|(at, _)| at);
        let rows = self
            .store
            .outcome_minutes(caller.tenant_id, from, to, before, limit + 1)
            .await
            .map_err(from_store)?;
        let mut by_minute: BTreeMap<std::cmp::Reverse<OffsetDateTime>, Vec<OutcomeCount>> =
            BTreeMap::new();
        for row in rows {
            by_minute
                .entry(std::cmp::Reverse(row.minute))
                .or_default()
                .push(row);
        }
        let more = by_minute.len() as i64 > limit;
        let minutes: Vec<pb::IngestMinute> = by_minute
            .iter()
            .take(limit as usize)
            .map(|(std::cmp::Reverse(minute), rows)| ingest_minute(*minute, rows))
            .collect();
        let next_page_token = match (more, by_minute.keys().nth(limit as usize - 1)) {
            (true, Some(std::cmp::Reverse(last))) => encode_token(*last, 0),
            _ => String::new(),
        };
        let totals = self
            .store
            .outcome_totals(caller.tenant_id, from, to)
            .await
            .map_err(from_store)?;
        let mut total = ingest_minute(from, &totals);
        total.minute = None;
        Ok(Response::new(pb::GetIngestStatsResponse {
            minutes,
            total: Some(total),
            next_page_token,
        }))
    }
}
