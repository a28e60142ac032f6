//! Black-box tests of the promises an outside client relies on: nothing
//! acked as a duplicate is missing, an event id is stored once, one bad
//! event never costs its batch or its stream, and open streams obey key
//! revocation and the idle timeout.

mod common;

use std::time::Duration;

use common::{
    Server, ServerOpts, TestDb, authed, batch, create_key, create_tenant, pool, publish, ts,
};
use prost::Message;
use pulsyon::{
    api::ingest::{WireBatch, WireRequest},
    proto::v1::{self as pb, ingest_client::IngestClient},
};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Code, transport::Channel};

fn event(service: &str) -> pb::Event {
    pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(ts(std::time::SystemTime::now())),
        service: service.into(),
        endpoint: "/orders/{id}".into(),
        method: "GET".into(),
        status_code: 200,
        latency_ms: 12.5,
        ..Default::default()
    }
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

async fn count(pg: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pg)
        .await
        .unwrap()
}

/// Outcome totals of the tenant: (received, stored, duplicate, rejected).
async fn outcomes(pg: &sqlx::PgPool) -> (i64, i64, i64, i64) {
    let of = |o: &'static str| {
        format!("SELECT coalesce(sum(count), 0)::int8 FROM ingest_outcomes WHERE outcome = '{o}'")
    };
    (
        count(pg, &of("received")).await,
        count(pg, &of("stored")).await,
        count(pg, &of("duplicate")).await,
        count(pg, &of("rejected")).await,
    )
}

/// Every stored event is in the rollups once: their minute rows come to
/// the count of `api_logs` (waits for the rollup task).
async fn rollups_match_the_events(pg: &sqlx::PgPool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = count(pg, "SELECT count(*) FROM api_logs").await;
        let rolled = count(
            pg,
            "SELECT coalesce(sum(count), 0)::int8 FROM metrics_minute",
        )
        .await;
        let pending = count(pg, "SELECT count(*) FROM rollup_deltas").await;
        if pending == 0 {
            assert_eq!(rolled, events, "each stored event is rolled up once");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rollups never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_producer_seq_with_other_events_stores_them_and_only_the_same_batch_is_a_duplicate()
 {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let mut client = IngestClient::new(server.channel().await);
    let (a, b, c) = (event("checkout"), event("checkout"), event("checkout"));

    // A client restarted with a fixed producer id counts from 1 again.
    let ack = publish(&mut client, &key, batch("fixed", 1, vec![a.clone()])).await;
    assert_eq!((ack.accepted, ack.duplicates), (1, 0));
    let ack = publish(&mut client, &key, batch("fixed", 1, vec![b.clone()])).await;
    assert_eq!(
        (ack.accepted, ack.duplicates),
        (1, 0),
        "another batch, not a duplicate"
    );
    // The same sequence resent with an extra event: the extra one is stored.
    let ack = publish(
        &mut client,
        &key,
        batch("fixed", 1, vec![b.clone(), c.clone()]),
    )
    .await;
    assert_eq!((ack.accepted, ack.duplicates), (1, 1));
    // Exactly that batch again: a duplicate batch.
    let ack = publish(
        &mut client,
        &key,
        batch("fixed", 1, vec![b.clone(), c.clone()]),
    )
    .await;
    assert_eq!((ack.accepted, ack.duplicates), (0, 2));

    let pg = pool(&db.url).await;
    for e in [&a, &b, &c] {
        let n = count(
            &pg,
            &format!(
                "SELECT count(*) FROM api_logs WHERE event_id = '{}'",
                e.event_id
            ),
        )
        .await;
        assert_eq!(
            n, 1,
            "every event acked (as new or duplicate) is stored once"
        );
    }
    // received = stored + duplicate + rejected
    assert_eq!(outcomes(&pg).await, (6, 3, 3, 0));
    rollups_match_the_events(&pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_is_stored_once_across_batches_producers_streams_and_restarts() {
    let db = TestDb::new().await;
    let (mut server, key) = start(&db, &[]).await;
    let mut client = IngestClient::new(server.channel().await);
    let a = event("checkout");
    let mut a_later = a.clone();
    a_later.time = Some(ts(std::time::SystemTime::now() + Duration::from_secs(1)));

    // Twice in one batch: stored once.
    let ack = publish(
        &mut client,
        &key,
        batch("p1", 1, vec![a.clone(), a.clone()]),
    )
    .await;
    assert_eq!((ack.accepted, ack.duplicates), (1, 1));
    // In another batch of another producer, beside a new event.
    let fresh = event("checkout");
    let ack = publish(
        &mut client,
        &key,
        batch("p2", 9, vec![a.clone(), fresh.clone()]),
    )
    .await;
    assert_eq!((ack.accepted, ack.duplicates), (1, 1));
    // On a stream.
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::StreamEventsRequest {
        batch: Some(batch("p3", 1, vec![a.clone()])),
    })
    .await
    .unwrap();
    let mut acks = client
        .stream_events(authed(ReceiverStream::new(rx), &key))
        .await
        .unwrap()
        .into_inner();
    let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
    assert_eq!((ack.accepted, ack.duplicates), (0, 1));
    drop(tx);
    drop(acks);

    // After a restart of the server.
    server.signal(nix::sys::signal::Signal::SIGTERM);
    server
        .wait_exit(Duration::from_secs(30))
        .expect("clean exit");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let mut client = IngestClient::new(server.channel().await);
    let ack = publish(&mut client, &key, batch("p4", 1, vec![a.clone()])).await;
    assert_eq!((ack.accepted, ack.duplicates), (0, 1));
    // The same id at another time is another event (the key is tenant, id and time).
    let ack = publish(&mut client, &key, batch("p4", 2, vec![a_later.clone()])).await;
    assert_eq!((ack.accepted, ack.duplicates), (1, 0));
    // Another tenant's event with the same id is its own.
    let other = create_tenant(&db.url, "globex");
    let ack = publish(&mut client, &other, batch("p1", 1, vec![a.clone()])).await;
    assert_eq!((ack.accepted, ack.duplicates), (1, 0));

    let pg = pool(&db.url).await;
    let n = count(
        &pg,
        &format!(
            "SELECT count(*) FROM api_logs WHERE event_id = '{}'",
            a.event_id
        ),
    )
    .await;
    assert_eq!(n, 3, "acme at two times, globex once");
    // received 2+2+1+1+1+1 = 8; stored a, fresh, a_later, globex's a = 4.
    assert_eq!(outcomes(&pg).await, (8, 4, 4, 0));
    rollups_match_the_events(&pg).await;
}

/// A PublishEvents body sent as bytes, events given as their encodings.
async fn publish_raw(channel: Channel, key: &str, events: Vec<Vec<u8>>) -> pb::BatchAck {
    let request = WireRequest {
        batch: Some(WireBatch {
            producer_id: "raw".into(),
            seq: 1,
            events: events.into_iter().map(Into::into).collect(),
        }),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<WireRequest, pb::PublishEventsResponse>::default();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/pulsyon.v1.Ingest/PublishEvents");
    grpc.unary(authed(request, key), path, codec)
        .await
        .unwrap()
        .into_inner()
        .ack
        .unwrap()
}

/// `event` encoded with its service's bytes replaced by invalid UTF-8.
fn with_invalid_utf8(event: &pb::Event) -> Vec<u8> {
    let mut marked = event.clone();
    marked.service = "SVCX".into();
    let mut bytes = marked.encode_to_vec();
    let at = bytes.windows(4).position(|w| w == b"SVCX").unwrap();
    bytes[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_is_not_utf8_or_out_of_range_is_rejected_alone_and_its_batch_and_stream_go_on()
 {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let (good, bad, after) = (event("checkout"), event("checkout"), event("checkout"));
    let bad_bytes = with_invalid_utf8(&bad);
    let mut bad_time = event("checkout");
    bad_time.time = Some(prost_types::Timestamp {
        seconds: 1,
        nanos: -5,
    });
    let mut huge = event("checkout");
    huge.latency_ms = 1e308;
    let ack = publish_raw(
        server.channel().await,
        &key,
        vec![
            good.encode_to_vec(),
            bad_bytes.clone(),
            after.encode_to_vec(),
            bad_time.encode_to_vec(),
            huge.encode_to_vec(),
            huge.encode_to_vec(),
        ],
    )
    .await;
    assert_eq!(ack.accepted, 2);
    use pb::RejectReason as R;
    let reasons: Vec<(u32, i32)> = ack.rejections.iter().map(|r| (r.index, r.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (1, R::InvalidText as i32),
            (3, R::InvalidTime as i32),
            (4, R::InvalidLatency as i32),
            (5, R::InvalidLatency as i32),
        ]
    );
    assert!(
        ack.rejections[0].message.contains("UTF-8"),
        "{}",
        ack.rejections[0].message
    );
    let pg = pool(&db.url).await;
    let payload: Vec<u8> =
        sqlx::query_scalar("SELECT payload FROM failed_events WHERE event_index = 1")
            .fetch_one(&pg)
            .await
            .unwrap();
    assert_eq!(
        payload, bad_bytes,
        "the dead letter keeps the bytes as sent"
    );

    // On a stream: the batch with the bad event is answered, and the next one too.
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    let wire = |seq: u64, events: Vec<Vec<u8>>| WireRequest {
        batch: Some(WireBatch {
            producer_id: "stream".into(),
            seq,
            events: events.into_iter().map(Into::into).collect(),
        }),
    };
    tx.send(wire(
        1,
        vec![
            event("checkout").encode_to_vec(),
            with_invalid_utf8(&event("x")),
        ],
    ))
    .await
    .unwrap();
    tx.send(wire(2, vec![event("checkout").encode_to_vec()]))
        .await
        .unwrap();
    let codec = tonic_prost::ProstCodec::<WireRequest, pb::StreamEventsResponse>::default();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/pulsyon.v1.Ingest/StreamEvents");
    let mut acks = grpc
        .streaming(authed(ReceiverStream::new(rx), &key), path, codec)
        .await
        .unwrap()
        .into_inner();
    // Acks may come in any order.
    let mut got = Vec::new();
    for _ in 0..2 {
        let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
        got.push((ack.seq, ack.accepted, ack.rejections.len()));
    }
    got.sort();
    assert_eq!(got, vec![(1, 1, 1), (2, 1, 0)]);
    drop(tx);
    assert!(acks.next().await.is_none(), "the stream ends cleanly");
    let (received, stored, duplicate, rejected) = outcomes(&pg).await;
    assert_eq!((received, stored + duplicate + rejected), (9, 9));
    assert_eq!(rejected, 5);
}

/// The server's health says SERVING.
async fn assert_serving(channel: Channel) {
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

/// Marks the key revoked in the database, as another process would.
async fn revoke_elsewhere(pg: &sqlx::PgPool, key: &str) {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE secret_sha256 = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(key)
    .execute(pg)
    .await
    .unwrap();
    assert_eq!(done.rows_affected(), 1, "the key is found by its digest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_ingest_and_watch_streams_end_within_the_cache_ttl_of_a_revocation() {
    let db = TestDb::new().await;
    let (server, admin) = start(&db, &["--key-cache-ttl", "1s"]).await;
    let key = create_key(&db.url, "acme", "ingest,read");
    let pg = pool(&db.url).await;
    let channel = server.channel().await;

    let (tx, rx) = mpsc::channel(4);
    let mut acks = IngestClient::new(channel.clone())
        .stream_events(authed(ReceiverStream::new(rx), &key))
        .await
        .unwrap()
        .into_inner();
    tx.send(pb::StreamEventsRequest {
        batch: Some(batch("revoked", 1, vec![event("checkout")])),
    })
    .await
    .unwrap();
    let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
    assert_eq!(ack.accepted, 1);
    let mut watch = pb::incidents_client::IncidentsClient::new(channel.clone())
        .watch(authed(pb::WatchRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();

    revoke_elsewhere(&pg, &key).await;

    // The ingest stream ends with UNAUTHENTICATED without being sent anything.
    let end = tokio::time::timeout(Duration::from_secs(30), acks.next())
        .await
        .expect("the stream ends")
        .expect("with a status");
    let status = end.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{}", status.message());
    let stored = count(&pg, "SELECT count(*) FROM api_logs").await;
    assert_eq!(stored, 1, "the acked batch stays stored");

    // The Watch stream too, after whatever heartbeats it had.
    let status = loop {
        let next = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("the watch ends")
            .expect("with a status");
        match next {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // The tenant's other key still works.
    let mut client = IngestClient::new(channel);
    let ack = publish(
        &mut client,
        &admin,
        batch("other", 1, vec![event("checkout")]),
    )
    .await;
    assert_eq!(ack.accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_ingest_stream_is_ended_with_a_retryable_status_and_frees_its_slot() {
    let db = TestDb::new().await;
    let (server, key) = start(
        &db,
        &["--ingest-idle-timeout", "1s", "--limit-streams", "1"],
    )
    .await;
    let channel = server.channel().await;
    let (tx, rx) = mpsc::channel::<pb::StreamEventsRequest>(4);
    let mut acks = IngestClient::new(channel.clone())
        .stream_events(authed(ReceiverStream::new(rx), &key))
        .await
        .unwrap()
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(30), acks.next())
        .await
        .expect("the idle stream ends")
        .expect("with a status");
    let status = end.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("no batch for"),
        "{}",
        status.message()
    );
    drop(tx);

    // Its slot is free again: a new stream (the tenant may hold one) works.
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::StreamEventsRequest {
        batch: Some(batch("again", 1, vec![event("checkout")])),
    })
    .await
    .unwrap();
    let mut acks = IngestClient::new(channel)
        .stream_events(authed(ReceiverStream::new(rx), &key))
        .await
        .unwrap()
        .into_inner();
    let ack = acks.next().await.unwrap().unwrap().ack.unwrap();
    assert_eq!(ack.accepted, 1);
}

/// Every string field reachable from `message` (through message fields, at
/// most three deep), each as the encoded message holding "a\0b" there alone,
/// with the field's dotted path.
fn nul_requests(
    types: &std::collections::HashMap<String, prost_types::DescriptorProto>,
    message: &str,
    depth: usize,
) -> Vec<(String, Vec<u8>)> {
    use prost_types::field_descriptor_proto::Type;
    let mut out = Vec::new();
    let Some(descriptor) = types.get(message) else {
        return out;
    };
    for field in &descriptor.field {
        let tag = |wire: u64| ((field.number() as u64) << 3) | wire;
        let mut put = |path: String, payload: &[u8]| {
            let mut bytes = Vec::new();
            prost::encoding::encode_varint(tag(2), &mut bytes);
            prost::encoding::encode_varint(payload.len() as u64, &mut bytes);
            bytes.extend_from_slice(payload);
            out.push((path, bytes));
        };
        match field.r#type() {
            Type::String => put(field.name().to_owned(), b"a\0b"),
            Type::Message if depth < 3 => {
                for (path, inner) in nul_requests(types, field.type_name(), depth + 1) {
                    put(format!("{}.{path}", field.name()), &inner);
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_any_string_field_of_any_request_is_invalid_argument_naming_the_field() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let set = prost_types::FileDescriptorSet::decode(pulsyon::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut types = std::collections::HashMap::new();
    fn collect(
        prefix: &str,
        messages: &[prost_types::DescriptorProto],
        types: &mut std::collections::HashMap<String, prost_types::DescriptorProto>,
    ) {
        for m in messages {
            let name = format!("{prefix}.{}", m.name());
            collect(&name, &m.nested_type, types);
            types.insert(name, m.clone());
        }
    }
    for file in &set.file {
        collect(
            &format!(".{}", file.package()),
            &file.message_type,
            &mut types,
        );
    }
    let channel = server.channel().await;
    let mut checked = 0;
    for file in set.file.iter().filter(|f| f.package() == "pulsyon.v1") {
        for service in &file.service {
            for method in &service.method {
                // StreamEvents runs the very checks of PublishEvents (tests above).
                if method.client_streaming() {
                    continue;
                }
                let path: tonic::codegen::http::uri::PathAndQuery =
                    format!("/pulsyon.v1.{}/{}", service.name(), method.name())
                        .parse()
                        .unwrap();
                // Fields a method needs before it looks at the others; the
                // field under test, encoded after them, wins where it is the same.
                let base: Vec<u8> = match method.name() {
                    "GetMetrics" => pb::GetMetricsRequest {
                        service: "checkout".into(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                    "AcknowledgeIncident" | "ResolveIncident" => pb::AcknowledgeIncidentRequest {
                        incident_id: "1".into(),
                        by: "alice".into(),
                        note: String::new(),
                    }
                    .encode_to_vec(),
                    "DeleteDetectionRule" => pb::DeleteDetectionRuleRequest {
                        kind: pb::AlertKind::ErrorRate as i32,
                        service: String::new(),
                    }
                    .encode_to_vec(),
                    "CreateUser" => pb::CreateUserRequest {
                        name: "cid".into(),
                        role: pb::UserRole::Viewer as i32,
                        password: String::new(),
                    }
                    .encode_to_vec(),
                    "SetDetectionRule" => pb::SetDetectionRuleRequest {
                        rule: Some(pb::DetectionRule {
                            kind: pb::AlertKind::ErrorRate as i32,
                            ..Default::default()
                        }),
                    }
                    .encode_to_vec(),
                    _ => Vec::new(),
                };
                for (field, nul) in nul_requests(&types, method.input_type(), 0) {
                    let body = [base.clone(), nul].concat();
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.unwrap();
                    let request = authed(body, &key);
                    let answer = if method.server_streaming() {
                        grpc.server_streaming(request, path.clone(), common::RawCodec)
                            .await
                            .map(|_| Vec::new())
                    } else {
                        grpc.unary(request, path.clone(), common::RawCodec)
                            .await
                            .map(|r| r.into_inner())
                    };
                    let what = format!("{}.{} {field}", service.name(), method.name());
                    match answer {
                        Err(status) => {
                            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
                            // A map entry's key or value: the map is named.
                            let named =
                                field.split('.').any(|part| status.message().contains(part));
                            assert!(named, "{what}: {}", status.message());
                        }
                        Ok(bytes) => {
                            // Only an event's fields may pass the call: the
                            // event alone is rejected, as INVALID_TEXT.
                            assert!(field.starts_with("batch.events."), "{what} was accepted");
                            let ack = pb::PublishEventsResponse::decode(bytes.as_slice())
                                .unwrap()
                                .ack
                                .unwrap();
                            assert_eq!(ack.rejections.len(), 1, "{what}");
                            let reason = ack.rejections[0].reason;
                            assert!(
                                reason == pb::RejectReason::InvalidText as i32
                                    || reason == pb::RejectReason::InvalidEventId as i32,
                                "{what}: {:?}",
                                ack.rejections[0]
                            );
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 30, "{checked} fields walked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_tokens_are_signed_and_a_forged_range_past_the_cap_is_refused() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let channel = server.channel().await;
    let mut ingest = IngestClient::new(channel.clone());
    let events: Vec<pb::Event> = (0..3).map(|_| event("checkout")).collect();
    let ack = publish(&mut ingest, &key, batch("pages", 1, events)).await;
    assert_eq!(ack.accepted, 3);
    let mut query = pb::query_client::QueryClient::new(channel);
    let page = |token: String| pb::QueryEventsRequest {
        page_size: 1,
        page_token: token,
        ..Default::default()
    };
    let first = query
        .query_events(authed(page(String::new()), &key))
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token.clone();
    let (body, _tag) = token.rsplit_once('~').expect("a signed token");
    // The real token continues the query.
    let second = query
        .query_events(authed(page(token.clone()), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.events.len(), 1);
    assert_ne!(second.events[0].event, first.events[0].event);

    // Altered or unsigned: refused.
    let mut bytes: Vec<u8> = (0..body.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&body[i..i + 2], 16).unwrap())
        .collect();
    let from = i64::from_be_bytes(bytes[1..9].try_into().unwrap());
    let to = i64::from_be_bytes(bytes[9..17].try_into().unwrap());
    bytes[1..9].copy_from_slice(&(to - 20 * 86_400 * 1_000_000).to_be_bytes());
    assert!(from > to - 20 * 86_400 * 1_000_000);
    let forged_body: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    for bad in [
        body.to_owned(),
        format!("{forged_body}~{}", &token[token.len() - 32..]),
    ] {
        let err = query
            .query_events(authed(page(bad), &key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("page_token"), "{}", err.message());
    }
    // Signed with the server's own secret (as if it leaked), the 20-day
    // range is still past the tenant's 7-day cap.
    let pg = pool(&db.url).await;
    let secret: Vec<u8> =
        sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = 'page_tokens'")
            .fetch_one(&pg)
            .await
            .unwrap();
    let signed = pulsyon::api::tokens::PageTokens::new(&secret)
        .unwrap()
        .sign(forged_body);
    let err = query
        .query_events(authed(page(signed), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("cap"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_pages_are_bounded_in_bytes_and_one_is_fetched_whole() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let channel = server.channel().await;
    let mut ingest = IngestClient::new(channel.clone());
    // 40 events of about 100 KiB: each too large, each kept as a dead letter.
    let big: Vec<pb::Event> = (0..40)
        .map(|i| {
            let mut e = event("checkout");
            e.attributes
                .insert("blob".into(), format!("{i:03}").repeat(34_000));
            e
        })
        .collect();
    let ack = publish(&mut ingest, &key, batch("big", 1, big.clone())).await;
    assert_eq!(ack.rejections.len(), 40);
    assert!(
        ack.rejections
            .iter()
            .all(|r| r.reason == pb::RejectReason::EventTooLarge as i32)
    );

    let mut query = pb::query_client::QueryClient::new(channel);
    let mut token = String::new();
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let request = pb::ListFailedEventsRequest {
            page_size: 1000,
            page_token: token,
            ..Default::default()
        };
        let page = query
            .list_failed_events(authed(request.clone(), &key))
            .await
            .unwrap()
            .into_inner();
        assert!(page.encoded_len() < 4 << 20, "{} bytes", page.encoded_len());
        pages += 1;
        token = page.next_page_token.clone();
        listed.extend(page.failed_events);
        if token.is_empty() {
            break;
        }
    }
    assert!(pages >= 2, "the 4 MB of dead letters took {pages} page");
    assert_eq!(listed.len(), 40, "every dead letter once");
    let one = &listed[0];
    assert!(one.truncated && one.event.is_none());
    assert_eq!(one.payload.len(), 64 * 1024);
    let sent = big
        .iter()
        .find(|e| e.encoded_len() as u64 == one.size_bytes);
    assert!(sent.is_some(), "size_bytes is the event's whole size");

    let whole = query
        .get_failed_event(authed(
            pb::GetFailedEventRequest {
                failed_id: one.failed_id.clone(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .failed_event
        .unwrap();
    assert!(!whole.truncated);
    let event = whole.event.expect("the whole payload decodes");
    assert!(big.contains(&event));
    assert_eq!(event.encoded_len() as u64, one.size_bytes);
    // Another tenant cannot fetch it.
    let other = create_tenant(&db.url, "globex");
    let err = query
        .get_failed_event(authed(
            pb::GetFailedEventRequest {
                failed_id: one.failed_id.clone(),
            },
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_queries_cannot_take_the_database_from_another_tenant_or_from_health() {
    let db = TestDb::new().await;
    let (server, key_a) = start(
        &db,
        &[
            "--limit-concurrent-queries",
            "2",
            "--db-read-connections",
            "4",
        ],
    )
    .await;
    let key_b = create_tenant(&db.url, "globex");
    let channel = server.channel().await;
    // Tenant A's incident queries hang: their table is locked by another session.
    let pg = pool(&db.url).await;
    let mut locker = pg.begin().await.unwrap();
    sqlx::query("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let hanging: Vec<_> = (0..2)
        .map(|_| {
            let mut incidents = pb::incidents_client::IncidentsClient::new(channel.clone());
            let key = key_a.clone();
            tokio::spawn(async move {
                incidents
                    .list_incidents(authed(pb::ListIncidentsRequest::default(), &key))
                    .await
            })
        })
        .collect();
    // Wait until both hold a connection (they wait on the lock in PostgreSQL).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(
        &pg,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_type = 'client backend'",
    )
    .await
        < 2
    {
        if let Some(done) = hanging.iter().find(|h| h.is_finished()) {
            panic!("a query did not wait for the lock: {done:?}");
        }
        assert!(std::time::Instant::now() < deadline, "the queries never reached the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A's next query is refused at once, with a retry delay and the reason.
    let mut query = pb::query_client::QueryClient::new(channel.clone());
    let err = query
        .list_services(authed(pb::ListServicesRequest {}, &key_a))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().starts_with("too many concurrent queries"),
        "{}",
        err.message()
    );
    let details = tonic_types::StatusExt::get_error_details(&err);
    assert!(details.retry_info().is_some(), "a retry delay");

    // B queries and ingests as usual; health says SERVING.
    query
        .list_failed_events(authed(pb::ListFailedEventsRequest::default(), &key_b))
        .await
        .expect("another tenant's query runs");
    let mut ingest = IngestClient::new(channel.clone());
    let ack = publish(&mut ingest, &key_b, batch("b", 1, vec![event("billing")])).await;
    assert_eq!(ack.accepted, 1);
    assert_serving(channel).await;

    // Once the lock goes, A's hanging queries finish and its slots are free.
    locker.rollback().await.unwrap();
    for call in hanging {
        call.await.unwrap().expect("the held queries complete");
    }
    query
        .list_services(authed(pb::ListServicesRequest {}, &key_a))
        .await
        .expect("A's slots are free again");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_valid_key_is_refused_before_its_body_is_read() {
    let db = TestDb::new().await;
    let (server, key) = start(&db, &[]).await;
    let channel = server.channel().await;
    let huge = pb::PublishEventsRequest {
        batch: Some(batch(
            "p",
            1,
            vec![pb::Event {
                attributes: [("blob".to_string(), "x".repeat(30 << 20))].into(),
                ..event("checkout")
            }],
        )),
    };
    let before = rss_kib(server.child.id());
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let mut client = IngestClient::new(channel.clone());
            let request = huge.clone();
            tokio::spawn(async move {
                let request = if i % 2 == 0 {
                    tonic::Request::new(request)
                } else {
                    authed(request, "pls_not_a_key_0000000000000000000000")
                };
                client.publish_events(request).await
            })
        })
        .collect();
    for call in calls {
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let grown_mib = rss_kib(server.child.id()).saturating_sub(before) / 1024;
    // 20 bodies of 30 MiB would be 600 MiB; unread, they cost the windows only.
    assert!(grown_mib < 150, "the server grew by {grown_mib} MiB");
    let metrics = common::http_get(&format!("http://{}/metrics", server.http)).await;
    assert!(
        metrics.contains("pulsyon_requests_refused_unread_total"),
        "{metrics}"
    );
    // A valid key still gets in; a key without the scope is refused unread too.
    let mut client = IngestClient::new(channel.clone());
    let ack = publish(&mut client, &key, batch("ok", 1, vec![event("checkout")])).await;
    assert_eq!(ack.accepted, 1);
    let reader = create_key(&db.url, "acme", "read");
    let err = client
        .publish_events(authed(huge, &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_bounded_in_number_and_time_and_health_stays_reachable() {
    use tokio::io::AsyncReadExt;
    let db = TestDb::new().await;
    let (server, _key) = start(
        &db,
        &["--max-connections", "8", "--first-request-timeout", "1s"],
    )
    .await;
    // Eight silent connections take every slot.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(tokio::net::TcpStream::connect(&server.grpc).await.unwrap());
    }
    // The ninth is closed at once by the server.
    let mut ninth = tokio::net::TcpStream::connect(&server.grpc).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), ninth.read(&mut buf))
        .await
        .expect("the refused connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    // The silent ones are closed after the first-request deadline (after
    // the server's own SETTINGS frame).
    for conn in &mut silent {
        let closed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the silent connection is closed");
    }
    drop(silent);
    // A real client gets in again, and the refusals are counted and logged.
    assert_serving(server.channel().await).await;
    let metrics = common::http_get(&format!("http://{}/metrics", server.http)).await;
    assert!(
        metrics.contains("pulsyon_connections_refused_total"),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"no_request\""), "{metrics}");
    assert!(
        server.logs().contains("connection refused"),
        "{}",
        server.logs()
    );
}
