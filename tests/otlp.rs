//! The OTLP doors against the real OpenTelemetry Python SDK and exporters
//! (tools/venv-otel, installed by scripts/test.sh) and a raw OTLP/gRPC
//! client: server spans become request events through the ingest pipeline,
//! other spans are counted as filtered, retries store once, a bad span is a
//! dead letter beside its stored siblings, throttling is retried.

mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use common::{Server, ServerOpts, TestDb, authed, create_tenant};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind},
};
use pulsyon::proto::v1::{self as pb, admin_client::AdminClient, query_client::QueryClient};
use tonic::{Code, transport::Channel};

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/venv-otel/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test.sh (or scripts/install-tools.sh), which installs the OpenTelemetry Python exporters",
        venv.display()
    );
    venv
}

/// Runs tests/python/send_spans.py; returns whether the export succeeded
/// and the server spans it sent as (route, status, latency ms).
fn send(
    protocol: &str,
    endpoint: &str,
    key: &str,
    servers: usize,
    clients: usize,
) -> (bool, Vec<(String, u32, f64)>, String) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/send_spans.py");
    let out = Command::new(python())
        .arg(script)
        .args([
            protocol,
            endpoint,
            &servers.to_string(),
            &clients.to_string(),
        ])
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization=Bearer%20{key}"),
        )
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    let sent = line["sent"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["route"].as_str().unwrap().to_owned(),
                        s["status"].as_u64().unwrap() as u32,
                        s["latency_ms"].as_f64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (out.status.success(), sent, stderr)
}

async fn events_of(channel: &Channel, key: &str, service: &str) -> Vec<pb::StoredEvent> {
    let reply = QueryClient::new(channel.clone())
        .query_events(authed(
            pb::QueryEventsRequest {
                service: service.into(),
                page_size: 1000,
                range: Some(pb::TimeRange {
                    start: Some(prost_types::Timestamp::from(
                        std::time::SystemTime::now() - Duration::from_secs(3_600),
                    )),
                    end: None,
                }),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    reply.events
}

/// The ingest totals of the last hour, once `ready` holds (rollups and
/// counters are written within about a second).
async fn stats_when(
    channel: &Channel,
    key: &str,
    ready: impl Fn(&pb::IngestMinute) -> bool,
) -> pb::IngestMinute {
    let mut last = pb::IngestMinute::default();
    for _ in 0..100 {
        let total = QueryClient::new(channel.clone())
            .get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), key))
            .await
            .unwrap()
            .into_inner()
            .total
            .unwrap_or_default();
        if ready(&total) {
            return total;
        }
        last = total;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ingest stats never reached the expected counts: {last:?}");
}

/// Requests and 5xx of `service` over the last hour, from the rollups.
async fn metrics_when(channel: &Channel, key: &str, service: &str, count: u64) -> (u64, u64) {
    for _ in 0..100 {
        let points = QueryClient::new(channel.clone())
            .get_metrics(authed(
                pb::GetMetricsRequest {
                    service: service.into(),
                    ..Default::default()
                },
                key,
            ))
            .await
            .unwrap()
            .into_inner()
            .points;
        let (n, errors) = points
            .iter()
            .fold((0, 0), |(n, e), p| (n + p.count, e + p.errors));
        if n >= count {
            return (n, errors);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the rollups never counted {count} requests of {service}");
}

async fn check_python_export(protocol: &str) {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let key = create_tenant(&db.url, "acme");
    let endpoint = match protocol {
        "grpc" => format!("http://{}", server.grpc),
        _ => format!("http://{}", server.http),
    };
    let (ok, sent, stderr) = send(protocol, &endpoint, &key, 30, 5);
    assert!(ok, "the export failed: {stderr}\n{}", server.logs());
    let channel = server.channel().await;
    // Stored when the Export was answered.
    let events = events_of(&channel, &key, "otel-shop").await;
    assert_eq!(events.len(), sent.len(), "{events:?}");
    let mut got: Vec<(String, u32, f64)> = events
        .iter()
        .map(|e| {
            let e = e.event.as_ref().unwrap();
            (e.endpoint.clone(), e.status_code, e.latency_ms)
        })
        .collect();
    let mut want = sent.clone();
    let order = |a: &(String, u32, f64), b: &(String, u32, f64)| {
        (a.0.as_str(), a.1, a.2 as u64).cmp(&(b.0.as_str(), b.1, b.2 as u64))
    };
    got.sort_by(order);
    want.sort_by(order);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, g.1), (&w.0, w.1));
        // Latency is end minus start.
        assert!((g.2 - w.2).abs() < 1e-6, "{g:?} vs {w:?}");
    }
    let e = events[0].event.as_ref().unwrap();
    assert_eq!(
        (e.release.as_str(), e.environment.as_str()),
        ("2.1.0", "staging")
    );
    assert_eq!(e.trace_id.len(), 32);
    // 5xx spans are errors in the rollups; client spans are filtered.
    let errors = sent.iter().filter(|s| s.1 >= 500).count() as u64;
    assert_eq!(
        metrics_when(&channel, &key, "otel-shop", sent.len() as u64).await,
        (sent.len() as u64, errors)
    );
    // And in the service's health: its error rate is the 5xx share.
    let health = QueryClient::new(channel.clone())
        .get_service_health(authed(
            pb::GetServiceHealthRequest {
                service: "otel-shop".into(),
                window: Some(prost_types::Duration {
                    seconds: 3_600,
                    nanos: 0,
                }),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let h = &health.services[0];
    assert_eq!(h.requests, sent.len() as u64);
    assert!(
        (h.error_rate - errors as f64 / sent.len() as f64).abs() < 1e-9,
        "{h:?}"
    );
    let total = stats_when(&channel, &key, |t| t.filtered == 5).await;
    assert_eq!(total.stored, 30);
    assert_eq!(total.received, 35, "{total:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_otlp_grpc_exporter_sends_server_spans_as_request_events() {
    check_python_export("grpc").await;
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn raw_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "raw-otlp")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Half a minute ago, in nanoseconds since the epoch (a span's start).
fn half_a_minute_ago_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 30_000_000_000
}

fn server_span(i: u8, start: u64, end: u64) -> Span {
    Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        name: "GET /items/{id}".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: vec![
            kv("http.route", "/items/{id}"),
            kv("http.request.method", "GET"),
        ],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_export_stores_once_and_a_bad_span_is_a_dead_letter_beside_its_siblings() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let key = create_tenant(&db.url, "acme");
    let channel = server.channel().await;
    let now = half_a_minute_ago_ns();
    let request = raw_request(vec![
        server_span(1, now, now + 5_000_000),
        server_span(2, now, now + 7_000_000),
        // Ends before it starts.
        server_span(3, now, now - 1_000_000),
    ]);
    let mut client = TraceServiceClient::new(channel.clone());
    for attempt in 0..2 {
        // The key as `x-api-key`, as some exporters are configured.
        let mut req = tonic::Request::new(request.clone());
        req.metadata_mut().insert("x-api-key", key.parse().unwrap());
        let answer = client.export(req).await.unwrap().into_inner();
        if attempt == 0 {
            let partial = answer.partial_success.expect("a partial success");
            assert_eq!(partial.rejected_spans, 1);
            assert!(
                partial.error_message.contains("latency_ms"),
                "{}",
                partial.error_message
            );
        } else {
            // The same request again: already processed, nothing new to report.
            assert_eq!(answer.partial_success, None);
        }
    }
    let events = events_of(&channel, &key, "raw-otlp").await;
    assert_eq!(events.len(), 2, "stored once: {events:?}");
    let failed = QueryClient::new(channel.clone())
        .list_failed_events(authed(pb::ListFailedEventsRequest::default(), &key))
        .await
        .unwrap()
        .into_inner()
        .failed_events;
    assert_eq!(failed.len(), 1, "{failed:?}");
    // Kept as the event the span became, readable like any other.
    let dead = failed[0].event.as_ref().unwrap();
    assert_eq!(
        (dead.service.as_str(), dead.endpoint.as_str()),
        ("raw-otlp", "/items/{id}")
    );
    assert_eq!(failed[0].reason, pb::RejectReason::InvalidLatency as i32);
    // No key: refused before anything is read.
    let refused = client
        .export(tonic::Request::new(request))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_python_exporter_waits_the_delay_retries_and_stores_every_span_once() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let key = create_tenant(&db.url, "acme");
    let channel = server.channel().await;
    AdminClient::new(channel.clone())
        .set_tenant_limits(authed(
            pb::SetTenantLimitsRequest {
                overrides: Some(pb::TenantLimits {
                    events_per_second: Some(20.0),
                    events_burst: Some(20),
                    ..Default::default()
                }),
            },
            &key,
        ))
        .await
        .unwrap();
    let endpoint = format!("http://{}", server.grpc);
    // The first export empties the budget (and goes into debt); the second
    // is refused with a delay, waits it out and passes.
    let (first, sent_a, stderr) = send("grpc", &endpoint, &key, 30, 0);
    assert!(first, "{stderr}");
    let (second, sent_b, stderr) = send("grpc", &endpoint, &key, 30, 0);
    assert!(
        second,
        "the retried export failed: {stderr}\n{}",
        server.logs()
    );
    let total = stats_when(&channel, &key, |t| t.throttled > 0).await;
    assert!(total.throttled >= 30, "{total:?}");
    // Both exports made the same spans' shapes but new span ids: 60 events,
    // each stored once although one export was sent more than once.
    assert_eq!(sent_a.len() + sent_b.len(), 60);
    assert_eq!(events_of(&channel, &key, "otel-shop").await.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_otlp_http_exporter_sends_server_spans_as_request_events() {
    check_python_export("http").await;
}

/// One HTTP/1.1 POST; returns the status line's code, the raw head and the body.
async fn post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let code = head[9..12].parse().unwrap();
    (code, head, out[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_takes_json_and_gzip_and_answers_the_statuses_of_the_spec() {
    use std::io::Write;

    use prost::Message;

    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let key = create_tenant(&db.url, "acme");
    let bearer = format!("Bearer {key}");
    let now = half_a_minute_ago_ns();
    // OTLP JSON: hex ids, camelCase, integer enums, nanoseconds as strings.
    let json = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-otlp"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "GET /a/{id}",
            "kind": 2,
            "startTimeUnixNano": now.to_string(),
            "endTimeUnixNano": (now + 9_000_000).to_string(),
            "attributes": [
                {"key": "http.route", "value": {"stringValue": "/a/{id}"}},
                {"key": "http.response.status_code", "value": {"intValue": "502"}}
            ]
        }]}]
    }]});
    let (code, head, body) = post(
        &server.http,
        "/v1/traces",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
        ],
        json.to_string().as_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{head} {}", String::from_utf8_lossy(&body));
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    // Gzip-compressed protobuf, with the key as x-api-key.
    let request = raw_request(vec![server_span(9, now, now + 3_000_000)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&request.encode_to_vec()).unwrap();
    let (code, head, _) = post(
        &server.http,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
            ("x-api-key", &key),
        ],
        &gz.finish().unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{head}");
    let channel = server.channel().await;
    let stored = events_of(&channel, &key, "json-otlp").await;
    assert_eq!(stored.len(), 1);
    let e = stored[0].event.as_ref().unwrap();
    assert_eq!((e.endpoint.as_str(), e.status_code), ("/a/{id}", 502));
    assert_eq!(e.trace_id, "5b8efff798038103d269b633813fc60c");
    assert!((e.latency_ms - 9.0).abs() < 1e-9);
    assert_eq!(events_of(&channel, &key, "raw-otlp").await.len(), 1);
    // The statuses OTLP/HTTP names: no key, bad body, other type.
    let proto = [("content-type", "application/x-protobuf")];
    assert_eq!(post(&server.http, "/v1/traces", &proto, b"").await.0, 401);
    let authed_proto = [
        ("content-type", "application/x-protobuf"),
        ("authorization", bearer.as_str()),
    ];
    assert_eq!(
        post(&server.http, "/v1/traces", &authed_proto, b"\xff\xff\xff")
            .await
            .0,
        400
    );
    let text = [
        ("content-type", "text/plain"),
        ("authorization", bearer.as_str()),
    ];
    assert_eq!(post(&server.http, "/v1/traces", &text, b"hi").await.0, 415);
}
