//! Black-box tests of ingest: the real server against real PostgreSQL,
//! through the generated client and the Rust SDK.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{Server, ServerOpts, TestDb, authed, batch, create_tenant, pool, publish, ts};
use prost::Message;
use pulsyon::proto::v1::{self as pb, ingest_client::IngestClient};
use sqlx::Row;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::Code;

fn full_event(i: usize) -> pb::Event {
    let mut event = pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(ts(
            std::time::SystemTime::now() - Duration::from_secs(i as u64)
        )),
        service: "checkout".into(),
        endpoint: "/api/v1/orders/{id}".into(),
        method: "POST".into(),
        status_code: 200 + (i as u32 % 4) * 100,
        latency_ms: 12.345 + i as f64,
        trace_id: format!("{:032x}", i),
        request_id: format!("req-{i}"),
        environment: "production".into(),
        release: "v1.2.3".into(),
        host: "checkout-7f9c".into(),
        request_bytes: 512,
        response_bytes: 4096 + i as u64,
        ..Default::default()
    };
    event
        .attributes
        .insert("tier".into(), "gold \"quoted\" \\ é ✓".into());
    event
        .attributes
        .insert("line\nbreak".into(), "tab\there".into());
    event
}

async fn start(db: &TestDb, extra: &'static [&'static str]) -> (Server, String) {
    let key = create_tenant(&db.url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: extra,
        ..Default::default()
    });
    (server, key)
}

/// The stored row of `event_id` as a protobuf event, read straight from the table.
async fn stored(db: &sqlx::PgPool, event_id: &str) -> pb::Event {
    let row = sqlx::query(
        "SELECT event_id::text, \
                (extract(epoch from time) * 1000000)::int8 AS micros, service, endpoint, method, status_code, \
                latency_ms, trace_id, request_id, environment, release, host, request_bytes, response_bytes, \
                attributes::text FROM api_logs WHERE event_id = $1::uuid",
    )
    .bind(event_id)
    .fetch_one(db)
    .await
    .expect("the event is stored");
    let micros: i64 = row.get("micros");
    let attributes: BTreeMap<String, String> = parse_flat_json(&row.get::<String, _>("attributes"));
    pb::Event {
        event_id: row.get("event_id"),
        time: Some(prost_types::Timestamp {
            seconds: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
        }),
        service: row.get("service"),
        endpoint: row.get("endpoint"),
        method: row.get("method"),
        status_code: row.get::<i16, _>("status_code") as u32,
        latency_ms: row.get("latency_ms"),
        trace_id: row.get("trace_id"),
        request_id: row.get("request_id"),
        attributes,
        environment: row.get("environment"),
        release: row.get("release"),
        host: row.get("host"),
        request_bytes: row.get::<i64, _>("request_bytes") as u64,
        response_bytes: row.get::<i64, _>("response_bytes") as u64,
    }
}

/// Parses a flat JSON object of strings (as jsonb prints it).
fn parse_flat_json(text: &str) -> BTreeMap<String, String> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_event_is_stored_with_identical_fields() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let mut client = IngestClient::new(server.channel().await);
    let events: Vec<pb::Event> = (0..50).map(full_event).collect();
    let ack = publish(&mut client, &key, batch("p-1", 1, events.clone())).await;
    assert_eq!((ack.seq, ack.accepted, ack.duplicates), (1, 50, 0));
    assert!(ack.rejections.is_empty());
    assert_eq!(ack.durability, pb::Durability::Committed as i32);

    let pg = pool(&db.url).await;
    for event in &events {
        assert_eq!(&stored(&pg, &event.event_id).await, event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_resent_after_a_disconnect_is_stored_once_and_acked_as_duplicates() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let channel = server.channel().await;
    let events: Vec<pb::Event> = (0..3).map(full_event).collect();

    for (attempt, expected) in [(1, (3, 0)), (2, (0, 3))] {
        // A fresh stream each time: the first one is dropped, as a reconnecting SDK would.
        let (tx, rx) = mpsc::channel(4);
        tx.send(pb::StreamEventsRequest {
            batch: Some(batch("p-resend", 7, events.clone())),
        })
        .await
        .unwrap();
        let mut acks = IngestClient::new(channel.clone())
            .stream_events(authed(ReceiverStream::new(rx), &key))
            .await
            .unwrap()
            .into_inner();
        let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
        assert_eq!(
            (ack.accepted, ack.duplicates),
            expected,
            "attempt {attempt}"
        );
        assert_eq!(ack.seq, 7);
        drop(tx);
        drop(acks);
    }
    let pg = pool(&db.url).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_logs")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(count, 3);
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT outcome, sum(count)::int8 FROM ingest_outcomes GROUP BY outcome ORDER BY outcome",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        vec![
            ("duplicate".into(), 3),
            ("received".into(), 6),
            ("stored".into(), 3)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_events_are_dead_lettered_while_the_valid_ones_are_stored() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let mut client = IngestClient::new(server.channel().await);
    let good = full_event(1);
    let mut no_service = full_event(2);
    no_service.service.clear();
    let mut bad_status = full_event(3);
    bad_status.status_code = 42;
    let mut bad_id = full_event(4);
    bad_id.event_id = "not-a-uuid".into();
    let mut too_old = full_event(5);
    too_old.time = Some(prost_types::Timestamp {
        seconds: 1_000_000_000,
        nanos: 0,
    });
    let mut bad_latency = full_event(6);
    bad_latency.latency_ms = -1.0;
    let events = vec![
        good.clone(),
        no_service.clone(),
        bad_status,
        bad_id,
        too_old,
        bad_latency,
    ];
    let ack = publish(&mut client, &key, batch("p-bad", 1, events)).await;
    assert_eq!(ack.accepted, 1);
    let reasons: Vec<(u32, i32)> = ack.rejections.iter().map(|r| (r.index, r.reason)).collect();
    use pb::RejectReason as R;
    assert_eq!(
        reasons,
        vec![
            (1, R::MissingService as i32),
            (2, R::InvalidStatusCode as i32),
            (3, R::InvalidEventId as i32),
            (4, R::TimeTooOld as i32),
            (5, R::InvalidLatency as i32),
        ]
    );
    assert!(
        ack.rejections[1].message.starts_with("status_code:"),
        "{}",
        ack.rejections[1].message
    );

    let pg = pool(&db.url).await;
    assert_eq!(stored(&pg, &good.event_id).await, good);
    let rows: Vec<(i32, String, Vec<u8>)> = sqlx::query_as(
        "SELECT event_index, reason, payload FROM failed_events ORDER BY event_index",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    let names: Vec<(i32, &str)> = rows.iter().map(|(i, r, _)| (*i, r.as_str())).collect();
    assert_eq!(
        names,
        vec![
            (1, "missing_service"),
            (2, "invalid_status_code"),
            (3, "invalid_event_id"),
            (4, "time_too_old"),
            (5, "invalid_latency")
        ]
    );
    assert_eq!(
        pb::Event::decode(rows[0].2.as_slice()).unwrap(),
        no_service,
        "the payload is the event as sent"
    );

    // A malformed batch as a whole is a precise INVALID_ARGUMENT.
    let err = client
        .publish_events(authed(
            pb::PublishEventsRequest {
                batch: Some(batch("", 1, vec![full_event(9)])),
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("batch.producer_id"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_refuses_with_a_retry_delay_and_never_accepts_then_drops() {
    let db = TestDb::new().await;
    // A 1 MiB queue, one writer and a short wait for space: concurrent large batches overflow it.
    let (server, key) = start(
        &db,
        &[
            "--writer-queue-mib",
            "1",
            "--writer-workers",
            "1",
            "--admit-wait",
            "20ms",
            "--stream-max-in-flight",
            "2",
            // The key stays cached for the whole test: no key lookup races the load.
            "--key-cache-ttl",
            "1h",
        ],
    )
    .await;
    let channel = server.channel().await;
    // One batch first reads the key and the tenant's catalogue, so the
    // concurrent batches below need no database connection to be admitted.
    let warm = publish(
        &mut IngestClient::new(channel.clone()),
        &key,
        batch("p-warm", 0, vec![full_event(0)]),
    )
    .await;
    let mut accepted = u64::from(warm.accepted);
    let mut tasks = Vec::new();
    for producer in 0..12 {
        let channel = channel.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = IngestClient::new(channel);
            let mut results = Vec::new();
            for seq in 0..4u64 {
                let events: Vec<pb::Event> = (0..2_000).map(full_event).collect();
                let req = pb::PublishEventsRequest {
                    batch: Some(batch(&format!("p-{producer}"), seq, events)),
                };
                results.push(
                    client
                        .publish_events(authed(req, &key))
                        .await
                        .map(|r| r.into_inner().ack.unwrap()),
                );
            }
            results
        }));
    }
    // Refused events by the cause each refusal named (its ErrorInfo reason).
    let mut refused_by_cause: BTreeMap<String, i64> = BTreeMap::new();
    for task in tasks {
        for result in task.await.unwrap() {
            match result {
                Ok(ack) => accepted += u64::from(ack.accepted),
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                    use tonic_types::StatusExt;
                    let retry = status
                        .get_details_retry_info()
                        .expect("RetryInfo in the status details");
                    assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()));
                    let info = status
                        .get_details_error_info()
                        .expect("ErrorInfo naming the cause");
                    assert_eq!(info.domain, "pulsyon.dev");
                    *refused_by_cause
                        .entry(info.reason.to_ascii_lowercase())
                        .or_default() += 2_000;
                }
            }
        }
    }
    assert!(
        refused_by_cause.get("overload").is_some_and(|&n| n > 0),
        "the queue never overflowed; the test needs more load: {refused_by_cause:?}"
    );
    let pg = pool(&db.url).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_logs")
        .fetch_one(&pg)
        .await
        .unwrap();
    assert_eq!(
        count as u64, accepted,
        "exactly the acknowledged events are stored"
    );

    // Throttled events are counted by cause (flushed within a second or two)
    // and match what each client was told, cause by cause.
    let expected: i64 = refused_by_cause.values().sum();
    let mut throttled: BTreeMap<String, i64> = BTreeMap::new();
    for _ in 0..300 {
        throttled = sqlx::query_as::<_, (String, i64)>(
            "SELECT reason, sum(count)::int8 FROM ingest_outcomes \
             WHERE outcome = 'throttled' GROUP BY reason",
        )
        .fetch_all(&pg)
        .await
        .unwrap()
        .into_iter()
        .collect();
        if throttled.values().sum::<i64>() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(throttled, refused_by_cause);
    let metrics = common::http_get(&format!("http://{}/metrics", server.http)).await;
    assert!(
        metrics.contains("pulsyon_ingest_queue_capacity_bytes 1048576"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_because_the_database_is_busy_says_so_and_is_counted_with_its_cause() {
    use pulsyon::proto::v1::query_client::QueryClient;
    use tonic_types::StatusExt;
    let db = TestDb::new().await;
    // Two request connections: a tenant's first batches read its catalogue through them.
    let (server, key) = start(&db, &["--db-read-connections", "2"]).await;
    let channel = server.channel().await;
    let pg = pool(&db.url).await;
    // Every catalogue read now waits, holding its connection: the ingest
    // path's connections are drained.
    let mut lock = pg.begin().await.unwrap();
    sqlx::query("LOCK TABLE services IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    const BATCHES: u64 = 6;
    const EVENTS: usize = 10;
    let tasks: Vec<_> = (0..BATCHES)
        .map(|seq| {
            let mut client = IngestClient::new(channel.clone());
            let key = key.clone();
            tokio::spawn(async move {
                let events = (0..EVENTS).map(full_event).collect();
                let req = pb::PublishEventsRequest {
                    batch: Some(batch("p-busy", seq, events)),
                };
                client.publish_events(authed(req, &key)).await
            })
        })
        .collect();
    // Two batches hold the connections; the others are refused once the
    // pool's acquire timeout passes. Wait for those refusals, then let go.
    while tasks.iter().filter(|t| t.is_finished()).count() < (BATCHES - 2) as usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lock.rollback().await.unwrap();
    let (mut accepted, mut refused) = (0u64, 0u64);
    for task in tasks {
        match task.await.unwrap() {
            Ok(ack) => accepted += u64::from(ack.into_inner().ack.unwrap().accepted),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().starts_with("database busy"),
                    "{}",
                    status.message()
                );
                let info = status.get_details_error_info().expect("ErrorInfo");
                assert_eq!(info.reason, "DATABASE_BUSY");
                let retry = status.get_details_retry_info().expect("RetryInfo");
                assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()));
                refused += EVENTS as u64;
            }
        }
    }
    assert_eq!(
        refused,
        (BATCHES - 2) * EVENTS as u64,
        "the others were refused"
    );
    assert_eq!(
        accepted,
        2 * EVENTS as u64,
        "the two that held connections were stored"
    );

    // GetIngestStats names the cause, and received = stored + throttled.
    let mut query = QueryClient::new(channel);
    let mut total = pb::IngestMinute::default();
    for _ in 0..300 {
        total = query
            .get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), &key))
            .await
            .unwrap()
            .into_inner()
            .total
            .unwrap();
        if total.throttled >= refused && total.stored >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        total.throttled_by_cause,
        vec![pb::ThrottleCount {
            cause: pb::ThrottleCause::DatabaseBusy as i32,
            count: refused,
        }]
    );
    assert_eq!((total.stored, total.throttled), (accepted, refused));
    assert_eq!(
        total.received,
        total.stored + total.duplicates + total.rejected + total.throttled + total.filtered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_events_and_ingest_stats_are_listed_per_tenant_and_reconcile() {
    use pulsyon::proto::v1::query_client::QueryClient;
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let other_key = create_tenant(&db.url, "other");
    let channel = server.channel().await;
    let mut ingest = IngestClient::new(channel.clone());
    let mut query = QueryClient::new(channel);

    // 3 batches of 4 events, 1 of them invalid each; the last batch is sent twice.
    for seq in 1..=3u64 {
        let mut events: Vec<pb::Event> = (0..4).map(full_event).collect();
        events[2].status_code = 7;
        for _ in 0..if seq == 3 { 2 } else { 1 } {
            publish(&mut ingest, &key, batch("p-stats", seq, events.clone())).await;
        }
    }

    // Dead letters, two per page.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = query
            .list_failed_events(authed(
                pb::ListFailedEventsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &key,
            ))
            .await
            .unwrap()
            .into_inner();
        for f in &page.failed_events {
            assert_eq!(f.reason, pb::RejectReason::InvalidStatusCode as i32);
            assert_eq!(f.event.as_ref().unwrap().status_code, 7);
            assert_eq!(f.index, 2);
            seen.push(f.batch_seq);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![1, 2, 3],
        "each dead letter once, the resent batch's not again"
    );
    let filtered = query
        .list_failed_events(authed(
            pb::ListFailedEventsRequest {
                reason: pb::RejectReason::TimeTooOld as i32,
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(filtered.failed_events.is_empty());
    let err = query
        .list_failed_events(authed(
            pb::ListFailedEventsRequest {
                page_size: 5000,
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("page_size"), "{}", err.message());

    // Outcomes reconcile: received = stored + duplicates + rejected + throttled.
    let stats = query
        .get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    let total = stats.total.unwrap();
    assert_eq!(
        (
            total.received,
            total.stored,
            total.duplicates,
            total.rejected,
            total.throttled
        ),
        (16, 9, 4, 3, 0)
    );
    assert_eq!(
        total.received,
        total.stored + total.duplicates + total.rejected + total.throttled
    );
    assert_eq!(
        total.rejected_by_reason,
        vec![pb::RejectionCount {
            reason: pb::RejectReason::InvalidStatusCode as i32,
            count: 3
        }]
    );
    let per_minute: u64 = stats.minutes.iter().map(|m| m.received).sum();
    assert_eq!(per_minute, 16);

    // Another tenant sees none of it.
    let theirs = query
        .list_failed_events(authed(pb::ListFailedEventsRequest::default(), &other_key))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.failed_events.is_empty());
    let theirs = query
        .get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), &other_key))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.minutes.is_empty());
    assert_eq!(theirs.total.unwrap().received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_gives_an_event_without_an_id_a_uuid_and_it_is_stored_once() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let client = pulsyon_client::Client::connect(&format!("http://{}", server.grpc), &key)
        .await
        .unwrap();
    for _ in 0..3 {
        client
            .send(pulsyon_client::Event {
                time: Some(pulsyon_client::now()),
                service: "no-ids".into(),
                status_code: 200,
                latency_ms: 1.0,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    client.close().await.unwrap();
    let stats = client.stats();
    assert_eq!((stats.acked, stats.rejected), (3, 0), "{stats:?}");
    let pg = pool(&db.url).await;
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT event_id::text FROM api_logs WHERE service = 'no-ids'")
            .fetch_all(&pg)
            .await
            .unwrap();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(
            uuid::Uuid::parse_str(id).unwrap().get_version_num(),
            7,
            "{id}"
        );
    }
}
