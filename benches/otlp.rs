//! OTLP/gRPC load against a running server: `--events` server spans in
//! `ExportTraceServiceRequest`s of `--spans` spans, `--concurrency` exports
//! in flight, each answered only after its spans are committed. Spans look
//! like what an HTTP instrumentation emits (route, method, status, server
//! address, a few resource attributes); one in ten is a 5xx. Prints one JSON
//! line: events acknowledged, seconds, events per second.
//!
//!   cargo bench --bench otlp -- --url http://127.0.0.1:50051 --api-key KEY --events 1000000
//!
//! `scripts/bench-otlp.sh` runs it beside the StreamEvents load generator.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use clap::Parser;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind},
};
use tonic::{metadata::MetadataValue, transport::Channel};

#[derive(Debug, Parser)]
struct Args {
    /// The server's gRPC address.
    #[arg(long)]
    url: String,
    /// An ingest key.
    #[arg(long)]
    api_key: String,
    /// Server spans to send.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Spans per Export request.
    #[arg(long, default_value_t = 512)]
    spans: u64,
    /// Exports in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: u64,
    /// Ignored (cargo bench passes it).
    #[arg(long)]
    bench: bool,
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

const ROUTES: [&str; 4] = [
    "/api/v1/carts/{id}",
    "/api/v1/orders",
    "/api/v1/search",
    "/healthz",
];

/// Request `n` of the run: spans numbered from `n * spans`.
fn request(n: u64, spans: u64, now_ns: u64) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| {
            let id = n * spans + i;
            let start = now_ns - 60_000_000_000 + (id % 50_000) * 1_000_000;
            let status = if id.is_multiple_of(10) { 503 } else { 200 };
            let route = ROUTES[(id % 4) as usize];
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&id.to_be_bytes());
            trace_id[8..].copy_from_slice(&(id ^ 0x5eed).to_be_bytes());
            Span {
                trace_id: trace_id.to_vec(),
                span_id: id.to_be_bytes().to_vec(),
                name: format!("GET {route}"),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + (3 + id % 200) * 1_000_000,
                attributes: vec![
                    kv("http.route", Value::StringValue(route.into())),
                    kv("http.request.method", Value::StringValue("GET".into())),
                    kv("http.response.status_code", Value::IntValue(status)),
                    kv("server.address", Value::StringValue("shop.example".into())),
                    kv("url.scheme", Value::StringValue("https".into())),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue("otlp-bench".into())),
                    kv("service.version", Value::StringValue("1.0.0".into())),
                    kv("deployment.environment", Value::StringValue("bench".into())),
                ],
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

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let channel = Channel::from_shared(args.url.clone())
        .expect("--url")
        .connect()
        .await
        .expect("connecting");
    let bearer: MetadataValue<_> = format!("Bearer {}", args.api_key).parse().expect("key");
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    let requests = args.events.div_ceil(args.spans);
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (channel, bearer, next, acked) =
            (channel.clone(), bearer.clone(), next.clone(), acked.clone());
        let spans = args.spans;
        tasks.push(tokio::spawn(async move {
            let mut client = TraceServiceClient::new(channel);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return;
                }
                let body = request(n, spans, now_ns);
                let count = body.resource_spans[0].scope_spans[0].spans.len() as u64;
                loop {
                    let mut req = tonic::Request::new(body.clone());
                    req.metadata_mut().insert("authorization", bearer.clone());
                    match client.export(req).await {
                        Ok(answer) => {
                            let rejected = answer
                                .into_inner()
                                .partial_success
                                .map(|p| p.rejected_spans as u64)
                                .unwrap_or(0);
                            acked.fetch_add(count - rejected, Ordering::Relaxed);
                            break;
                        }
                        Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        Err(status) => panic!("export failed: {status:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    let seconds = started.elapsed().as_secs_f64();
    let acked = acked.load(Ordering::Relaxed);
    println!(
        "{{\"acked\":{acked},\"seconds\":{seconds:.3},\"events_per_sec\":{:.1},\"spans_per_request\":{},\"concurrency\":{}}}",
        acked as f64 / seconds,
        args.spans,
        args.concurrency
    );
}
