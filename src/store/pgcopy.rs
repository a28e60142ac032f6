//! A small writer of PostgreSQL's binary COPY format, for the columns of
//! `api_logs`. Binary COPY skips text parsing on the server, which is most of
//! the cost of a text COPY.
//!
//! Format: a header, then per row a 16-bit field count and per field a 32-bit
//! length and the value in the type's binary send format; a trailer of -1.

use time::OffsetDateTime;

use crate::domain::{Event, TenantId};

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 UTC).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// The columns `encode_event` writes, in order.
pub const API_LOGS_COLUMNS: &str = "tenant_id, time, event_id, service, endpoint, method, status_code, latency_ms, \
     trace_id, request_id, environment, release, host, request_bytes, response_bytes, attributes, received_at";
const API_LOGS_FIELDS: i16 = 17;

/// A binary COPY payload under construction.
pub struct CopyBuffer {
    buf: Vec<u8>,
}

impl CopyBuffer {
    /// A buffer holding the header.
    pub fn new(capacity: usize) -> CopyBuffer {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuffer { buf }
    }

    /// Appends one `api_logs` row.
    pub fn encode_event(&mut self, tenant: TenantId, event: &Event, received_at: OffsetDateTime) {
        let b = &mut self.buf;
        b.extend_from_slice(&API_LOGS_FIELDS.to_be_bytes());
        put_i64(b, tenant.0);
        put_i64(b, pg_timestamp(event.time));
        put_bytes(b, event.event_id.as_bytes());
        put_bytes(b, event.service.as_bytes());
        put_bytes(b, event.endpoint.as_bytes());
        put_bytes(b, event.method.as_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&event.status_code.to_be_bytes());
        put_i64(b, event.latency_ms.to_bits() as i64);
        put_bytes(b, event.trace_id.as_bytes());
        put_bytes(b, event.request_id.as_bytes());
        put_bytes(b, event.environment.as_bytes());
        put_bytes(b, event.release.as_bytes());
        put_bytes(b, event.host.as_bytes());
        put_i64(b, event.request_bytes);
        put_i64(b, event.response_bytes);
        // jsonb: a version byte (1), then the JSON text.
        let len_at = b.len();
        b.extend_from_slice(&0i32.to_be_bytes());
        b.push(1);
        write_json_object(b, &event.attributes);
        let len = (b.len() - len_at - 4) as i32;
        b[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        put_i64(b, pg_timestamp(received_at));
    }

    /// The payload with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&8i32.to_be_bytes());
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
    b.extend_from_slice(v);
}

/// Microseconds since 2000-01-01 UTC (PostgreSQL keeps microseconds; the rest is cut).
pub fn pg_timestamp(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64 - PG_EPOCH_OFFSET_MICROS
}

/// `{"k":"v",...}` with JSON string escaping.
fn write_json_object(b: &mut Vec<u8>, pairs: &[(String, String)]) {
    b.push(b'{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        write_json_string(b, k);
        b.push(b':');
        write_json_string(b, v);
    }
    b.push(b'}');
}

fn write_json_string(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    let needs_escape = |byte: &u8| *byte < 0x20 || *byte == b'"' || *byte == b'\\';
    if !s.as_bytes().iter().any(needs_escape) {
        // The common case: nothing to escape, one copy.
        b.extend_from_slice(s.as_bytes());
    } else {
        for &byte in s.as_bytes() {
            match byte {
                b'"' => b.extend_from_slice(b"\\\""),
                b'\\' => b.extend_from_slice(b"\\\\"),
                b'\n' => b.extend_from_slice(b"\\n"),
                b'\r' => b.extend_from_slice(b"\\r"),
                b'\t' => b.extend_from_slice(b"\\t"),
                0..=0x1f => b.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
                _ => b.push(byte),
            }
        }
    }
    b.push(b'"');
}

/// Bytes one event takes in the COPY payload, to size the buffer once.
pub fn encoded_size(event: &Event) -> usize {
    // The field count, 17 length words, six 8-byte values, the UUID, the
    // status, jsonb's version byte and braces; per attribute its quotes and
    // colon, and the commas between them (escapes may add more).
    let fixed = 2 + 17 * 4 + 8 * 6 + 16 + 2 + 3;
    let text = event.service.len()
        + event.endpoint.len()
        + event.method.len()
        + event.trace_id.len()
        + event.request_id.len()
        + event.environment.len()
        + event.release.len()
        + event.host.len();
    let attributes: usize = event
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.len() + 5)
        .sum::<usize>()
        + event.attributes.len().saturating_sub(1);
    fixed + text + attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut b = Vec::new();
        write_json_object(
            &mut b,
            &[
                ("a\"b".into(), "c\\d\n\u{1}é".into()),
                ("x".into(), String::new()),
            ],
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"a\"b":"c\\d\n\u0001é","x":""}"#
        );
    }

    #[test]
    fn the_size_estimate_covers_an_event_without_escapes() {
        let event = Event {
            event_id: uuid::Uuid::now_v7(),
            time: OffsetDateTime::now_utc(),
            service: "checkout".into(),
            endpoint: "/api/v1/orders/{id}".into(),
            method: "GET".into(),
            status_code: 200,
            latency_ms: 1.5,
            trace_id: "abc".into(),
            request_id: "r-1".into(),
            attributes: vec![
                ("region".into(), "eu".into()),
                ("tier".into(), "gold".into()),
            ],
            environment: "production".into(),
            release: "v1".into(),
            host: "h".into(),
            request_bytes: 1,
            response_bytes: 2,
        };
        let mut copy = CopyBuffer::new(0);
        let header = copy.buf.len();
        copy.encode_event(TenantId(1), &event, OffsetDateTime::now_utc());
        assert_eq!(copy.buf.len() - header, encoded_size(&event));
    }

    #[test]
    fn timestamps_count_from_the_postgres_epoch() {
        let t = OffsetDateTime::from_unix_timestamp(946_684_800).unwrap();
        assert_eq!(pg_timestamp(t), 0);
        assert_eq!(pg_timestamp(t + time::Duration::microseconds(1_500)), 1_500);
    }
}
