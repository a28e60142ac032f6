//! Black-box tests of the Query service and the rollups behind it: the real
//! server against real PostgreSQL, events sent through the ingest RPC.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, SystemTime},
};

use common::{Server, ServerOpts, TestDb, authed, create_tenant, pool, publish, ts};
use pulsyon::proto::v1::{self as pb, ingest_client::IngestClient, query_client::QueryClient};
use pulsyon_loadgen::Rng;
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::{Code, transport::Channel};

/// The contract's bound on a percentile's relative error.
const STATED_ERROR: f64 = 0.02;

/// Fields drop in order: the clients close their connection before the
/// server is stopped, so its shutdown does not wait for them.
struct Harness {
    ingest: IngestClient<Channel>,
    query: QueryClient<Channel>,
    db: PgPool,
    seq: u64,
    server: Server,
}

async fn start(db: &TestDb) -> (Harness, String) {
    let key = create_tenant(&db.url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--rollup-interval", "200ms"],
        ..Default::default()
    });
    let channel = server.channel().await;
    let harness = Harness {
        server,
        ingest: IngestClient::new(channel.clone()),
        query: QueryClient::new(channel),
        db: pool(&db.url).await,
        seq: 0,
    };
    (harness, key)
}

fn event(service: &str, endpoint: &str, status: u32, latency_ms: f64, at: SystemTime) -> pb::Event {
    pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(ts(at)),
        service: service.into(),
        endpoint: endpoint.into(),
        method: "GET".into(),
        status_code: status,
        latency_ms,
        ..Default::default()
    }
}

impl Harness {
    /// Sends `events` in batches of 500 and checks that all are stored.
    async fn send(&mut self, key: &str, events: Vec<pb::Event>) {
        for chunk in events.chunks(500) {
            self.seq += 1;
            let batch = pb::EventBatch {
                producer_id: "query-tests".into(),
                seq: self.seq,
                events: chunk.to_vec(),
            };
            let ack = publish(&mut self.ingest, key, batch).await;
            assert_eq!(ack.accepted as usize, chunk.len(), "{ack:?}");
        }
    }

    /// Waits until the rollups hold everything stored so far.
    async fn settle(&self) {
        let now: OffsetDateTime = sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.db)
            .await
            .unwrap();
        for _ in 0..600 {
            let done: Option<bool> = sqlx::query_scalar(
                "SELECT watermark > $1 FROM rollup_watermarks WHERE name = 'rollups'",
            )
            .bind(now)
            .fetch_optional(&self.db)
            .await
            .unwrap();
            if done == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the rollups did not catch up");
    }
}

fn within(got: f64, want: f64) -> bool {
    (got - want).abs() <= STATED_ERROR * want.abs() + 1e-9
}

type CellRow = (String, String, i64, i64, i64, i64, i64, f64, f64, f64);
type Cells = BTreeMap<(String, String, i64), (i64, i64, i64, i64, f64, f64, f64)>;

/// Rollup rows of `table` against the same aggregates computed from `api_logs`.
async fn compare(db: &PgPool, table: &str, endpoint: bool, unit: &str) {
    let endpoint_col = if endpoint { "endpoint" } else { "''::text" };
    let from_raw = format!(
        "SELECT service, {endpoint_col}, extract(epoch from date_trunc('{unit}', time))::int8, count(*), \
                count(*) FILTER (WHERE status_code BETWEEN 200 AND 299), \
                count(*) FILTER (WHERE status_code BETWEEN 400 AND 499), \
                count(*) FILTER (WHERE status_code BETWEEN 500 AND 599), \
                min(latency_ms), max(latency_ms), sum(latency_ms) \
         FROM api_logs GROUP BY 1, 2, 3"
    );
    let from_rollup = format!(
        "SELECT service, {endpoint_col}, extract(epoch from bucket)::int8, count, status_2xx, status_4xx, status_5xx, \
                latency_min, latency_max, latency_sum FROM {table}"
    );
    let read = |sql: String| async move {
        let rows: Vec<CellRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(db)
            .await
            .unwrap();
        rows.into_iter()
            .map(|(s, e, b, c, s2, s4, s5, min, max, sum)| {
                ((s, e, b), (c, s2, s4, s5, min, max, sum))
            })
            .collect::<Cells>()
    };
    let (want, got) = (read(from_raw).await, read(from_rollup).await);
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{table}: the same cells"
    );
    for (key, w) in &want {
        let g = &got[key];
        assert_eq!(
            (g.0, g.1, g.2, g.3),
            (w.0, w.1, w.2, w.3),
            "{table} {key:?}: counts"
        );
        assert_eq!((g.4, g.5), (w.4, w.5), "{table} {key:?}: min and max");
        assert!(
            (g.6 - w.6).abs() <= 1e-9 * w.6.abs().max(1.0),
            "{table} {key:?}: sum"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_a_direct_computation_over_the_raw_events() {
    let db = TestDb::new().await;
    let (mut h, key) = start(&db).await;
    let mut rng = Rng::new(42);
    let now = SystemTime::now();
    let services = ["checkout", "search", "cart"];
    let endpoints = ["/a", "/b/{id}", "/c"];
    let statuses = [200, 200, 200, 201, 302, 404, 429, 500, 503];
    let events: Vec<pb::Event> = (0..6_000)
        .map(|_| {
            // Up to three hours ago, latencies over four orders of magnitude.
            let age = Duration::from_secs_f64(60.0 + rng.unit() * 3.0 * 3_600.0);
            let latency = (20.0 * (1.5 * rng.normal()).exp() * 1_000.0).round() / 1_000.0;
            event(
                services[rng.below(3)],
                endpoints[rng.below(3)],
                statuses[rng.below(statuses.len())],
                latency,
                now - age,
            )
        })
        .collect();
    h.send(&key, events).await;
    h.settle().await;

    compare(&h.db, "metrics_minute", true, "minute").await;
    compare(&h.db, "metrics_hourly", true, "hour").await;
    compare(&h.db, "service_minute", false, "minute").await;
    compare(&h.db, "service_hourly", false, "hour").await;

    // Percentiles over a window, merged from hour and minute rows.
    let exact: Vec<(String, i64, i64, Vec<f64>)> = sqlx::query_as(
        "SELECT service, count(*), count(*) FILTER (WHERE status_code >= 500), \
                percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) \
         FROM api_logs GROUP BY service ORDER BY service",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    // Uptime: the share of minutes with traffic that met the objective (5xx <= 5%, p95 <= 1 s).
    let uptime: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT service, count(*), count(*) FILTER (WHERE status_5xx <= 0.05 * count AND latency_p95 <= 1000) \
         FROM service_minute GROUP BY service ORDER BY service",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    let health = h
        .query
        .get_service_health(authed(
            pb::GetServiceHealthRequest {
                service: String::new(),
                window: Some(prost_types::Duration {
                    seconds: 6 * 3_600,
                    nanos: 0,
                }),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(health.as_of.is_some());
    assert_eq!(health.services.len(), 3);
    for (s, (service, count, errors, p)) in health.services.iter().zip(&exact) {
        assert_eq!(&s.service, service);
        assert_eq!(s.requests as i64, *count);
        assert!((s.error_rate - *errors as f64 / *count as f64).abs() < 1e-12);
        let l = s.latency.unwrap();
        for (got, want) in [l.p50_ms, l.p95_ms, l.p99_ms].into_iter().zip(p) {
            assert!(within(got, *want), "{service}: {got} vs {want}");
        }
        let want = uptime.iter().find(|u| &u.0 == service).unwrap();
        assert!(
            (s.uptime_percent - 100.0 * want.2 as f64 / want.1 as f64).abs() < 1e-9,
            "{service}: uptime {} vs {want:?}",
            s.uptime_percent
        );
    }
    // Each hour row counts its minutes exactly.
    let off: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM service_hourly h WHERE (h.traffic_minutes, h.good_minutes) <> \
           (SELECT count(*)::int4, (count(*) FILTER (WHERE m.status_5xx <= 0.05 * m.count AND m.latency_p95 <= 1000))::int4 \
              FROM service_minute m WHERE m.tenant_id = h.tenant_id AND m.service = h.service \
               AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour')",
    )
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert_eq!(
        off, 0,
        "hour rows whose uptime counts differ from their minutes"
    );

    // A series per hour and per minute, against the raw events of each step.
    for (step, unit, range_secs, endpoint) in [
        (3_600, "hour", 4 * 3_600, ""),
        (60, "minute", 3_600, "/b/{id}"),
    ] {
        let metrics = h
            .query
            .get_metrics(authed(
                pb::GetMetricsRequest {
                    service: "search".into(),
                    endpoint: endpoint.into(),
                    range: Some(pb::TimeRange {
                        start: Some(ts(now - Duration::from_secs(range_secs))),
                        end: Some(ts(now + Duration::from_secs(60))),
                    }),
                    step: Some(prost_types::Duration {
                        seconds: step,
                        nanos: 0,
                    }),
                },
                &key,
            ))
            .await
            .unwrap()
            .into_inner();
        let sql = format!(
            "SELECT extract(epoch from date_trunc('{unit}', time))::int8, count(*), \
                    count(*) FILTER (WHERE status_code >= 500), \
                    percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) \
             FROM api_logs WHERE service = 'search' AND ($1 = '' OR endpoint = $1) \
               AND time >= date_trunc('{unit}', to_timestamp($2)) GROUP BY 1 ORDER BY 1"
        );
        let want: Vec<(i64, i64, i64, Vec<f64>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(endpoint)
            .bind(
                (now - Duration::from_secs(range_secs))
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64(),
            )
            .fetch_all(&h.db)
            .await
            .unwrap();
        assert_eq!(metrics.points.len(), want.len(), "step {step}");
        for (point, (bucket, count, errors, p)) in metrics.points.iter().zip(&want) {
            assert_eq!(point.time.unwrap().seconds, *bucket);
            assert_eq!((point.count as i64, point.errors as i64), (*count, *errors));
            let l = point.latency.unwrap();
            for (got, want) in [l.p50_ms, l.p95_ms, l.p99_ms].into_iter().zip(p) {
                assert!(within(got, *want), "step {step}: {got} vs {want}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_update_the_buckets_they_fall_in() {
    let db = TestDb::new().await;
    let (mut h, key) = start(&db).await;
    // A minute two hours ago.
    let now = SystemTime::now();
    let epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = SystemTime::UNIX_EPOCH + Duration::from_secs((epoch - 7_200) / 60 * 60);
    let at = minute + Duration::from_secs(30);
    let query = h.query.clone();
    let count_at = |step: i64| {
        let mut query = query.clone();
        let key = key.clone();
        async move {
            let points = query
                .get_metrics(authed(
                    pb::GetMetricsRequest {
                        service: "billing".into(),
                        range: Some(pb::TimeRange {
                            start: Some(ts(minute - Duration::from_secs(3_600))),
                            end: Some(ts(minute + Duration::from_secs(3_600))),
                        }),
                        step: Some(prost_types::Duration {
                            seconds: step,
                            nanos: 0,
                        }),
                        ..Default::default()
                    },
                    &key,
                ))
                .await
                .unwrap()
                .into_inner()
                .points;
            points.iter().map(|p| p.count).sum::<u64>()
        }
    };
    h.send(
        &key,
        (0..10)
            .map(|_| event("billing", "/pay", 200, 10.0, at))
            .collect(),
    )
    .await;
    h.settle().await;
    assert_eq!((count_at(60).await, count_at(3_600).await), (10, 10));

    // Late: the same minute, long after it was rolled up, with errors.
    h.send(
        &key,
        (0..5)
            .map(|_| event("billing", "/pay", 503, 900.0, at))
            .collect(),
    )
    .await;
    h.settle().await;
    assert_eq!((count_at(60).await, count_at(3_600).await), (15, 15));
    let row: (i64, i64, f64) = sqlx::query_as(
        "SELECT count, status_5xx, latency_max FROM metrics_minute WHERE service = 'billing'",
    )
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert_eq!(row, (15, 5, 900.0));
}

async fn page(
    query: &mut QueryClient<Channel>,
    key: &str,
    req: pb::QueryEventsRequest,
) -> Result<pb::QueryEventsResponse, tonic::Status> {
    query
        .query_events(authed(req, key))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_returns_every_event_once_while_inserts_continue() {
    let db = TestDb::new().await;
    let (mut h, key) = start(&db).await;
    let now = SystemTime::now();
    let mut rng = Rng::new(7);
    // Many events share a timestamp, so the keyset's tie-break matters.
    let initial: Vec<pb::Event> = (0..1_000)
        .map(|i| {
            event(
                "orders",
                "/o",
                200,
                5.0,
                now - Duration::from_secs(60 + (i / 4) * 7),
            )
        })
        .collect();
    let wanted: HashSet<String> = initial.iter().map(|e| e.event_id.clone()).collect();
    h.send(&key, initial).await;

    let mut seen: Vec<(i64, i32, String)> = Vec::new();
    let mut token = String::new();
    loop {
        let resp = page(
            &mut h.query,
            &key,
            pb::QueryEventsRequest {
                service: "orders".into(),
                page_size: 37,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for e in resp.events {
            let event = e.event.unwrap();
            let t = event.time.unwrap();
            seen.push((t.seconds, t.nanos, event.event_id));
        }
        // Inserts continue: newer events, and late ones inside the range.
        let more: Vec<pb::Event> = (0..20)
            .map(|_| {
                let age = Duration::from_secs(rng.below(3_000) as u64);
                event("orders", "/o", 200, 5.0, now - age)
            })
            .collect();
        h.send(&key, more).await;
        if resp.next_page_token.is_empty() {
            break;
        }
        token = resp.next_page_token;
    }
    let ids: HashSet<&String> = seen.iter().map(|s| &s.2).collect();
    assert_eq!(ids.len(), seen.len(), "an event was returned twice");
    assert!(
        wanted.iter().all(|id| ids.contains(id)),
        "an event was missed"
    );
    let order: Vec<(i64, i32, uuid::Uuid)> = seen
        .iter()
        .map(|(s, n, id)| (*s, *n, id.parse().unwrap()))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] > w[1]),
        "newest first, strictly"
    );
}

/// A server with four events of `web` and `api` (a trace id, a request id,
/// a method among them) stored.
async fn four_events(db: &TestDb) -> (Harness, String) {
    let (mut h, key) = start(db).await;
    let now = SystemTime::now() - Duration::from_secs(30);
    let mut events = vec![
        event("web", "/home", 200, 12.0, now),
        event("web", "/home", 503, 80.0, now),
        event("web", "/cart", 404, 300.0, now),
        event("api", "/v1", 500, 2_000.0, now),
    ];
    events[0].trace_id = "trace-1".into();
    events[2].request_id = "req-9".into();
    events[2].method = "POST".into();
    h.send(&key, events).await;
    (h, key)
}

/// The time the four events were sent at, near enough for ranges around it.
fn around_now() -> SystemTime {
    SystemTime::now() - Duration::from_secs(30)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_events() {
    let db = TestDb::new().await;
    let (h, key) = four_events(&db).await;
    let now = around_now();
    let count = |req: pb::QueryEventsRequest| {
        let mut query = h.query.clone();
        let key = key.clone();
        async move { page(&mut query, &key, req).await.unwrap().events.len() }
    };
    let base = pb::QueryEventsRequest::default();
    assert_eq!(count(base.clone()).await, 4);
    let cases = [
        (
            pb::QueryEventsRequest {
                service: "web".into(),
                ..base.clone()
            },
            3,
        ),
        (
            pb::QueryEventsRequest {
                endpoint: "/home".into(),
                ..base.clone()
            },
            2,
        ),
        (
            pb::QueryEventsRequest {
                method: "POST".into(),
                ..base.clone()
            },
            1,
        ),
        (
            pb::QueryEventsRequest {
                status_class: pb::StatusClass::StatusClass5xx as i32,
                ..base.clone()
            },
            2,
        ),
        (
            pb::QueryEventsRequest {
                status_code: 404,
                ..base.clone()
            },
            1,
        ),
        (
            pb::QueryEventsRequest {
                min_latency_ms: 100.0,
                ..base.clone()
            },
            2,
        ),
        (
            pb::QueryEventsRequest {
                trace_id: "trace-1".into(),
                ..base.clone()
            },
            1,
        ),
        (
            pb::QueryEventsRequest {
                request_id: "req-9".into(),
                ..base.clone()
            },
            1,
        ),
        (
            pb::QueryEventsRequest {
                range: Some(pb::TimeRange {
                    start: Some(ts(now - Duration::from_secs(7_200))),
                    end: Some(ts(now - Duration::from_secs(3_600))),
                }),
                ..base.clone()
            },
            0,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(count(req.clone()).await, want, "{req:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let db = TestDb::new().await;
    let (mut h, key) = four_events(&db).await;
    let now = around_now();
    let base = pb::QueryEventsRequest::default();
    let invalid = [
        (
            pb::QueryEventsRequest {
                status_code: 700,
                ..base.clone()
            },
            "status_code",
        ),
        (
            pb::QueryEventsRequest {
                status_class: 9,
                ..base.clone()
            },
            "status_class",
        ),
        (
            pb::QueryEventsRequest {
                page_size: 1_001,
                ..base.clone()
            },
            "page_size",
        ),
        (
            pb::QueryEventsRequest {
                min_latency_ms: -1.0,
                ..base.clone()
            },
            "min_latency_ms",
        ),
        (
            pb::QueryEventsRequest {
                page_token: "zz".into(),
                ..base.clone()
            },
            "page_token",
        ),
        (
            pb::QueryEventsRequest {
                service: "x".repeat(600),
                ..base.clone()
            },
            "service",
        ),
        (
            pb::QueryEventsRequest {
                range: Some(pb::TimeRange {
                    start: Some(ts(now - Duration::from_secs(8 * 86_400))),
                    end: None,
                }),
                ..base.clone()
            },
            "range",
        ),
    ];
    for (req, field) in invalid {
        let status = page(&mut h.query, &key, req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    // A token only continues the query that issued it.
    let first = page(
        &mut h.query,
        &key,
        pb::QueryEventsRequest {
            page_size: 1,
            ..base.clone()
        },
    )
    .await
    .unwrap();
    let status = page(
        &mut h.query,
        &key,
        pb::QueryEventsRequest {
            page_size: 1,
            service: "web".into(),
            page_token: first.next_page_token,
            ..base.clone()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("page_token"));

    let metrics = |req: pb::GetMetricsRequest| {
        let mut query = h.query.clone();
        let key = key.clone();
        async move { query.get_metrics(authed(req, &key)).await.unwrap_err() }
    };
    let status = metrics(pb::GetMetricsRequest::default()).await;
    assert!(
        status.message().starts_with("service"),
        "{}",
        status.message()
    );
    let status = metrics(pb::GetMetricsRequest {
        service: "web".into(),
        step: Some(prost_types::Duration {
            seconds: 300,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await;
    assert!(status.message().starts_with("step"), "{}", status.message());
    let status = h
        .query
        .get_service_health(authed(
            pb::GetServiceHealthRequest {
                window: Some(prost_types::Duration {
                    seconds: 8 * 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("window"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_sees_another_tenants_data() {
    let db = TestDb::new().await;
    let (mut h, key_a) = start(&db).await;
    let key_b = create_tenant(&db.url, "globex");
    let now = SystemTime::now() - Duration::from_secs(60);
    let mut a = vec![
        event("a-only", "/a", 200, 5.0, now),
        event("shared", "/s", 500, 5.0, now),
    ];
    let mut b: Vec<pb::Event> = (0..3)
        .map(|_| event("shared", "/s", 200, 50.0, now))
        .collect();
    b.push(event("b-only", "/b", 200, 5.0, now));
    // One bad event each, for the dead letters.
    a.push(pb::Event {
        service: String::new(),
        ..event("", "/", 200, 1.0, now)
    });
    b.push(pb::Event {
        status_code: 42,
        ..event("b-only", "/", 200, 1.0, now)
    });
    let a_ids: HashSet<String> = a.iter().map(|e| e.event_id.clone()).collect();
    for (key, events) in [(&key_a, a), (&key_b, b)] {
        h.seq += 1;
        let n = events.len();
        let ack = publish(
            &mut h.ingest,
            key,
            pb::EventBatch {
                producer_id: "iso".into(),
                seq: h.seq,
                events,
            },
        )
        .await;
        assert_eq!(ack.accepted as usize + ack.rejections.len(), n);
    }
    h.settle().await;
    let q = &mut h.query;

    let services = q
        .list_services(authed(pb::ListServicesRequest {}, &key_a))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = services.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a-only", "shared"]);
    let shared = &services.services[1];
    assert_eq!(
        (shared.requests_last_hour, shared.error_rate_last_hour),
        (1, 1.0)
    );

    let events = page(q, &key_a, pb::QueryEventsRequest::default())
        .await
        .unwrap()
        .events;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| a_ids.contains(&e.event.as_ref().unwrap().event_id))
    );
    let b_only = page(
        q,
        &key_a,
        pb::QueryEventsRequest {
            service: "b-only".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(b_only.events.is_empty());

    let health = q
        .get_service_health(authed(pb::GetServiceHealthRequest::default(), &key_a))
        .await
        .unwrap()
        .into_inner();
    let requests: Vec<(&str, u64)> = health
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.requests))
        .collect();
    assert_eq!(requests, [("a-only", 1), ("shared", 1)]);
    let status = q
        .get_service_health(authed(
            pb::GetServiceHealthRequest {
                service: "b-only".into(),
                ..Default::default()
            },
            &key_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    for (service, want) in [("b-only", 0), ("shared", 1)] {
        let points = q
            .get_metrics(authed(
                pb::GetMetricsRequest {
                    service: service.into(),
                    ..Default::default()
                },
                &key_a,
            ))
            .await
            .unwrap()
            .into_inner()
            .points;
        assert_eq!(
            points.iter().map(|p| p.count).sum::<u64>(),
            want,
            "{service}"
        );
    }

    let failed = q
        .list_failed_events(authed(pb::ListFailedEventsRequest::default(), &key_a))
        .await
        .unwrap()
        .into_inner()
        .failed_events;
    assert_eq!(failed.len(), 1);
    assert!(a_ids.contains(&failed[0].event.as_ref().unwrap().event_id));
    let stats = q
        .get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), &key_a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.total.unwrap().received, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_query_examples_run_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = |name: &str| {
        readme
            .split(&format!("<!-- {name} -->"))
            .nth(1)
            .and_then(|rest| rest.split(&format!("<!-- /{name} -->")).next())
            .unwrap_or_else(|| panic!("the README marks its {name}"))
            .lines()
            .filter(|l| !l.starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let script = format!(
        "{}\n{}",
        block("query-examples"),
        block("incident-examples")
    );
    assert!(script.matches("grpcurl ").count() >= 12);

    let db = TestDb::new().await;
    let (mut h, key) = start(&db).await;
    let now = SystemTime::now() - Duration::from_secs(60);
    let events = (0..20)
        .map(|i| {
            event(
                "checkout",
                "/api/v1/checkout",
                if i % 4 == 0 { 503 } else { 200 },
                600.0,
                now,
            )
        })
        .collect();
    h.send(&key, events).await;
    h.settle().await;

    let grpcurl = common::grpcurl();
    let path = format!(
        "{}:{}",
        grpcurl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = script.replace("127.0.0.1:50051", &h.server.grpc);
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .env("KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"name\": \"checkout\""), "{stdout}");
    assert!(stdout.contains("HEALTH_STATUS_DEGRADED"), "{stdout}");
    assert!(stdout.contains("\"statusCode\": 503"), "{stdout}");
}
