//! OTLP traces -> request events: the pure mapping behind the OTLP doors
//! (ADR 0011). Only `SPAN_KIND_SERVER` spans are requests; every other span
//! is counted as filtered. Both generations of the HTTP semantic conventions
//! are read (the stable names first, then the older ones that Python
//! instrumentations still emit by default). Never the raw URL path as the
//! endpoint: it would make one endpoint per id.
//!
//! This module does no I/O and decides no fate: a span that maps to a bad
//! event (say, one that ends before it starts) becomes an event that the
//! ingest pipeline rejects with its reason, like any other door's.

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::api::convert;
use crate::{
    domain::RawEvent,
    ingest::{
        admit::{Arriving, Incoming, Payload},
        validate::EventBounds,
    },
};

/// The producer id of OTLP batches (each Export request is one batch).
pub const PRODUCER: &str = "otlp";
/// The service of spans whose resource names none (what the SDKs default to).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// What an Export request becomes.
#[derive(Debug)]
pub struct Mapped {
    /// The batch of request events for the ingest pipeline.
    pub batch: Incoming,
    /// Spans that are not requests (not `SPAN_KIND_SERVER`).
    pub filtered: u64,
}

/// The value of attribute `key` (attributes are few: a scan beats a map).
fn find<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    kvs.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// Reads the first present attribute of `keys` as text.
fn text(kvs: &[KeyValue], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        find(kvs, k).and_then(|v| match &v.value {
            Some(Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::IntValue(i)) => Some(i.to_string()),
            Some(Value::BoolValue(b)) => Some(b.to_string()),
            Some(Value::DoubleValue(d)) => Some(d.to_string()),
            _ => None,
        })
    })
}

/// Reads the first present attribute of `keys` as an integer.
fn int(kvs: &[KeyValue], keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| {
        find(kvs, k).and_then(|v| match &v.value {
            Some(Value::IntValue(i)) => Some(*i),
            Some(Value::StringValue(s)) => s.parse().ok(),
            Some(Value::DoubleValue(d)) if d.fract() == 0.0 => Some(*d as i64),
            _ => None,
        })
    })
}

/// An attribute's value as text, for the event's attributes (arrays and
/// maps are left out: they have no one-line form within the limits).
fn plain(v: &AnyValue) -> Option<String> {
    match &v.value {
        Some(Value::StringValue(s)) => Some(s.clone()),
        Some(Value::IntValue(i)) => Some(i.to_string()),
        Some(Value::BoolValue(b)) => Some(b.to_string()),
        Some(Value::DoubleValue(d)) => Some(d.to_string()),
        _ => None,
    }
}

/// The HTTP-like status of a gRPC status code (the usual gateway mapping).
pub fn grpc_to_http(code: i64) -> u32 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// Lowercase hex of `bytes` (empty for none).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A rejected span's dead letter: the event it became, as the contract's
/// event (so it reads like any other door's).
fn dead_letter(raw: &RawEvent) -> Vec<u8> {
    convert::raw_to_pb(raw).encode_to_vec()
}

/// The event id of a span: derived from (trace id, span id), so that an
/// exporter's retry of the same span is the same event (stored once).
pub fn event_id(trace_id: &[u8], span_id: &[u8]) -> uuid::Uuid {
    let digest = Sha256::new()
        .chain_update(b"pulsyon otlp span\0")
        .chain_update(trace_id)
        .chain_update(span_id)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Attributes the event's own fields already carry (not repeated).
const MAPPED: &[&str] = &[
    "service.name",
    "http.route",
    "http.request.method",
    "http.method",
    "http.response.status_code",
    "http.status_code",
    "server.address",
    "host.name",
    "deployment.environment",
    "deployment.environment.name",
    "service.version",
    "http.request.body.size",
    "http.response.body.size",
    "http.request_content_length",
    "http.response_content_length",
];

/// One SERVER span of a resource as a raw event.
fn event(span: &Span, resource: &[KeyValue], service: &str, bounds: &EventBounds) -> RawEvent {
    let attrs = span.attributes.as_slice();
    let rpc = || {
        let service = text(attrs, &["rpc.service"])?;
        let method = text(attrs, &["rpc.method"]).unwrap_or_default();
        Some(format!("{service}/{method}"))
    };
    let endpoint = text(attrs, &["http.route"])
        .or_else(|| (!span.name.is_empty()).then(|| span.name.clone()))
        .or_else(rpc)
        .unwrap_or_default();
    let method = text(attrs, &["http.request.method", "http.method"])
        .or_else(|| text(attrs, &["rpc.system"]).map(|s| s.to_uppercase()))
        .unwrap_or_default();
    let grpc_code = int(attrs, &["rpc.grpc.status_code"]);
    let status_code = match int(attrs, &["http.response.status_code", "http.status_code"]) {
        Some(code) => u32::try_from(code).unwrap_or(0),
        None => match grpc_code {
            Some(code) => grpc_to_http(code),
            // No status attribute: the span's own status decides.
            None => match span.status.as_ref().map(|s| s.code()) {
                Some(StatusCode::Error) => 500,
                _ => 200,
            },
        },
    };
    // End before start stays negative: the pipeline rejects it by reason.
    let latency_ms = if span.end_time_unix_nano >= span.start_time_unix_nano {
        (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6
    } else {
        -((span.start_time_unix_nano - span.end_time_unix_nano) as f64 / 1e6)
    };
    let time = (span.start_time_unix_nano > 0).then_some((
        (span.start_time_unix_nano / 1_000_000_000) as i64,
        (span.start_time_unix_nano % 1_000_000_000) as i32,
    ));
    let both = |keys: &[&str]| text(attrs, keys).or_else(|| text(resource, keys));
    // Span attributes first, then the resource's, within the bounds; what
    // does not fit is left out rather than failing the event.
    let mut attributes: Vec<(String, String)> = Vec::new();
    attributes.push(("span_id".into(), hex(&span.span_id)));
    if !span.parent_span_id.is_empty() {
        attributes.push(("parent_span_id".into(), hex(&span.parent_span_id)));
    }
    if let Some(code) = grpc_code {
        attributes.push(("rpc.grpc.status_code".into(), code.to_string()));
    }
    let extra = span
        .attributes
        .iter()
        .chain(resource)
        .filter(|kv| !MAPPED.contains(&kv.key.as_str()) && kv.key != "rpc.grpc.status_code");
    for kv in extra {
        if attributes.len() >= bounds.max_attributes {
            break;
        }
        let Some(value) = kv.value.as_ref().and_then(plain) else {
            continue;
        };
        if kv.key.len() > bounds.max_attribute_key
            || value.len() > bounds.max_attribute_value
            || attributes.iter().any(|(k, _)| *k == kv.key)
        {
            continue;
        }
        attributes.push((kv.key.clone(), value));
    }
    RawEvent {
        event_id: event_id(&span.trace_id, &span.span_id).to_string(),
        time,
        service: service.to_owned(),
        endpoint,
        method,
        status_code,
        latency_ms,
        trace_id: hex(&span.trace_id),
        request_id: String::new(),
        attributes,
        environment: both(&["deployment.environment.name", "deployment.environment"])
            .unwrap_or_default(),
        release: both(&["service.version"]).unwrap_or_default(),
        host: text(attrs, &["server.address"])
            .or_else(|| text(resource, &["host.name"]))
            .unwrap_or_default(),
        request_bytes: int(
            attrs,
            &["http.request.body.size", "http.request_content_length"],
        )
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0),
        response_bytes: int(
            attrs,
            &["http.response.body.size", "http.response_content_length"],
        )
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0),
        encoded_len: span.encoded_len(),
    }
}

/// Maps an Export request to one batch of the ingest pipeline.
pub fn map(request: &ExportTraceServiceRequest, bounds: &EventBounds) -> Mapped {
    let mut events = Vec::new();
    let mut filtered = 0;
    let mut seq_hash = Sha256::new();
    for rs in &request.resource_spans {
        let resource: &[KeyValue] = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let service = text(resource, &["service.name"]).unwrap_or_else(|| UNKNOWN_SERVICE.into());
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            seq_hash.update(&span.trace_id);
            seq_hash.update(&span.span_id);
            if span.kind() != SpanKind::Server {
                filtered += 1;
                continue;
            }
            events.push(Arriving::Decoded {
                raw: event(span, resource, &service, bounds),
                payload: Payload::Made(dead_letter),
            });
        }
    }
    // The same request retried is the same batch: same producer and seq
    // (the ledger's fast path), and its events are the same events anyway.
    let digest = seq_hash.finalize();
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&digest[..8]);
    Mapped {
        batch: Incoming {
            producer_id: PRODUCER.into(),
            seq: u64::from_be_bytes(seq) >> 1,
            events,
        },
        filtered,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans, Status},
    };

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    const START: u64 = 1_764_000_000_123_456_789;

    fn span(kind: SpanKind, name: &str, attrs: Vec<KeyValue>, millis: u64) -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![7; 8],
            parent_span_id: vec![3; 8],
            name: name.into(),
            kind: kind as i32,
            start_time_unix_nano: START,
            end_time_unix_nano: START + millis * 1_000_000,
            attributes: attrs,
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
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

    fn raw(mapped: &Mapped, i: usize) -> &RawEvent {
        match &mapped.batch.events[i] {
            Arriving::Decoded { raw, .. } => raw,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_server_spans_of_both_conventions_become_request_events() {
        let resource = vec![
            kv("service.name", s("checkout")),
            kv("service.version", s("1.4.2")),
            kv("deployment.environment", s("production")),
            kv("host.name", s("node-7")),
            kv("cloud.region", s("eu-west-1")),
        ];
        let stable = span(
            SpanKind::Server,
            "GET /carts/{id}",
            vec![
                kv("http.route", s("/carts/{id}")),
                kv("http.request.method", s("GET")),
                kv("http.response.status_code", Value::IntValue(503)),
                kv("url.path", s("/carts/123")),
                kv("server.address", s("shop.example")),
            ],
            42,
        );
        let old = span(
            SpanKind::Server,
            "POST",
            vec![
                kv("http.method", s("POST")),
                kv("http.status_code", Value::IntValue(201)),
                kv("http.target", s("/orders/9")),
            ],
            7,
        );
        let client = span(SpanKind::Client, "GET", vec![], 1);
        let m = map(
            &request(resource, vec![stable, old, client]),
            &EventBounds::default(),
        );
        assert_eq!(m.filtered, 1);
        assert_eq!(m.batch.events.len(), 2);
        let e = raw(&m, 0);
        assert_eq!(e.service, "checkout");
        assert_eq!(e.endpoint, "/carts/{id}");
        assert_eq!((e.method.as_str(), e.status_code), ("GET", 503));
        assert!((e.latency_ms - 42.0).abs() < 1e-9, "{}", e.latency_ms);
        assert_eq!(e.time, Some((1_764_000_000, 123_456_789)));
        assert_eq!(e.trace_id, "ab".repeat(16));
        assert_eq!(
            (e.release.as_str(), e.environment.as_str()),
            ("1.4.2", "production")
        );
        assert_eq!(e.host, "shop.example");
        let attr = |e: &RawEvent, k: &str| {
            e.attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(attr(e, "span_id").as_deref(), Some("0707070707070707"));
        assert_eq!(
            attr(e, "parent_span_id").as_deref(),
            Some("0303030303030303")
        );
        assert_eq!(attr(e, "url.path").as_deref(), Some("/carts/123"));
        assert_eq!(attr(e, "cloud.region").as_deref(), Some("eu-west-1"));
        // The older names; no route: the span's name, never the raw target.
        let o = raw(&m, 1);
        assert_eq!(
            (o.endpoint.as_str(), o.method.as_str(), o.status_code),
            ("POST", "POST", 201)
        );
        assert_eq!(o.host, "node-7");
    }

    #[test]
    fn grpc_spans_map_their_code_and_keep_it() {
        let grpc = span(
            SpanKind::Server,
            "",
            vec![
                kv("rpc.system", s("grpc")),
                kv("rpc.service", s("shop.Cart")),
                kv("rpc.method", s("Add")),
                kv("rpc.grpc.status_code", Value::IntValue(14)),
            ],
            3,
        );
        let m = map(&request(vec![], vec![grpc]), &EventBounds::default());
        let e = raw(&m, 0);
        assert_eq!(e.service, UNKNOWN_SERVICE);
        assert_eq!(
            (e.endpoint.as_str(), e.method.as_str()),
            ("shop.Cart/Add", "GRPC")
        );
        assert_eq!(e.status_code, 503);
        assert!(
            e.attributes
                .contains(&("rpc.grpc.status_code".into(), "14".into()))
        );
        assert_eq!(grpc_to_http(0), 200);
        assert_eq!(grpc_to_http(5), 404);
        assert_eq!(grpc_to_http(16), 401);
        assert_eq!(grpc_to_http(99), 500);
    }

    #[test]
    fn missing_attributes_and_bad_times_are_left_to_validation() {
        let mut failed = span(SpanKind::Server, "job", vec![], 0);
        failed.status = Some(Status {
            code: StatusCode::Error as i32,
            ..Default::default()
        });
        let mut backwards = span(SpanKind::Server, "job", vec![], 0);
        backwards.end_time_unix_nano = START - 5_000_000;
        let mut untimed = span(SpanKind::Server, "job", vec![], 0);
        untimed.start_time_unix_nano = 0;
        untimed.end_time_unix_nano = 0;
        let m = map(
            &request(vec![], vec![failed, backwards, untimed]),
            &EventBounds::default(),
        );
        assert_eq!(raw(&m, 0).status_code, 500);
        assert!(raw(&m, 1).latency_ms < 0.0);
        assert_eq!(raw(&m, 2).time, None);
    }

    #[test]
    fn a_retried_request_is_the_same_batch_and_the_same_events() {
        let spans = || {
            vec![
                span(SpanKind::Server, "a", vec![], 1),
                span(SpanKind::Internal, "b", vec![], 1),
            ]
        };
        let a = map(&request(vec![], spans()), &EventBounds::default());
        let b = map(&request(vec![], spans()), &EventBounds::default());
        assert_eq!(a.batch.seq, b.batch.seq);
        assert!(a.batch.seq < 1 << 63);
        assert_eq!(raw(&a, 0).event_id, raw(&b, 0).event_id);
        let other = map(
            &request(vec![], vec![span(SpanKind::Server, "c", vec![], 1)]),
            &EventBounds::default(),
        );
        // Another span id: another event.
        let mut moved = span(SpanKind::Server, "a", vec![], 1);
        moved.span_id = vec![8; 8];
        let third = map(&request(vec![], vec![moved]), &EventBounds::default());
        assert_ne!(raw(&a, 0).event_id, raw(&third, 0).event_id);
        assert_ne!(a.batch.seq, third.batch.seq);
        assert_eq!(other.filtered, 0);
    }

    #[test]
    fn attributes_past_the_bounds_are_left_out_not_fatal() {
        let many: Vec<KeyValue> = (0..200).map(|i| kv(&format!("k{i}"), s("v"))).collect();
        let mut long = many.clone();
        long.push(kv("big", s(&"x".repeat(5_000))));
        let m = map(
            &request(vec![], vec![span(SpanKind::Server, "a", long, 1)]),
            &EventBounds::default(),
        );
        let e = raw(&m, 0);
        assert_eq!(e.attributes.len(), EventBounds::default().max_attributes);
        assert!(e.attributes.iter().all(|(k, _)| k != "big"));
    }
}
