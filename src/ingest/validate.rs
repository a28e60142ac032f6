//! Validation of one event: pure, no I/O. A bad event is refused on its own,
//! with a reason and a message naming the field; it never fails its batch.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::{Event, RawEvent, RejectReason};

/// The bounds an event must respect.
#[derive(Debug, Clone)]
pub struct EventBounds {
    /// Events older than this are refused (the retention of raw events).
    pub retention: Duration,
    /// Events further than this in the future are refused (clock skew).
    pub max_future: Duration,
    /// Largest encoded event, in bytes.
    pub max_event_bytes: usize,
    /// Most attributes per event.
    pub max_attributes: usize,
    /// Longest attribute key, in bytes.
    pub max_attribute_key: usize,
    /// Longest attribute value, in bytes.
    pub max_attribute_value: usize,
}

impl Default for EventBounds {
    fn default() -> Self {
        EventBounds {
            retention: Duration::from_secs(30 * 86_400),
            max_future: Duration::from_secs(300),
            max_event_bytes: 64 * 1024,
            max_attributes: 64,
            max_attribute_key: 128,
            max_attribute_value: 1024,
        }
    }
}

/// Largest latency an event may carry: 7 days in milliseconds. Bounded so
/// that rollup sums stay finite (a cell's sum is at most its count times this).
pub const MAX_LATENCY_MS: f64 = 604_800_000.0;

/// Longest value of each string field, in bytes.
const FIELD_LIMITS: [(&str, usize); 8] = [
    ("service", 128),
    ("endpoint", 512),
    ("method", 32),
    ("trace_id", 128),
    ("request_id", 128),
    ("environment", 64),
    ("release", 128),
    ("host", 255),
];

type Refusal = (RejectReason, String);

fn check_text(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.len() > max {
        return Err((
            RejectReason::FieldTooLong,
            format!("{field}: {} bytes, at most {max}", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err((
            RejectReason::InvalidText,
            format!("{field}: contains a NUL character"),
        ));
    }
    Ok(())
}

/// An event that failed validation, given back whole so that it can be kept
/// in the dead-letter store.
#[derive(Debug)]
pub struct Invalid {
    /// Why.
    pub reason: RejectReason,
    /// The explanation, naming the field.
    pub message: String,
    /// The event as received.
    pub raw: Box<RawEvent>,
}

/// Checks `raw` against `limits` at time `now`; on success, the typed event.
pub fn validate(
    raw: RawEvent,
    now: OffsetDateTime,
    limits: &EventBounds,
) -> Result<Event, Invalid> {
    match check(&raw, now, limits) {
        Ok(checked) => Ok(build(raw, checked)),
        Err((reason, message)) => Err(Invalid {
            reason,
            message,
            raw: Box::new(raw),
        }),
    }
}

/// The typed values `check` derives from an event.
struct Checked {
    event_id: uuid::Uuid,
    time: OffsetDateTime,
    request_bytes: i64,
    response_bytes: i64,
}

/// The checks in the contract's order: size, id, time, fields, attributes,
/// byte counts; the first that fails is the event's reason.
fn check(raw: &RawEvent, now: OffsetDateTime, limits: &EventBounds) -> Result<Checked, Refusal> {
    check_size(raw, limits)?;
    let event_id = check_id(raw)?;
    let time = check_time(raw, now, limits)?;
    check_fields(raw)?;
    check_attributes(raw, limits)?;
    let (request_bytes, response_bytes) = check_byte_counts(raw)?;
    Ok(Checked {
        event_id,
        time,
        request_bytes,
        response_bytes,
    })
}

/// The encoded event's size.
fn check_size(raw: &RawEvent, limits: &EventBounds) -> Result<(), Refusal> {
    if raw.encoded_len > limits.max_event_bytes {
        return Err((
            RejectReason::EventTooLarge,
            format!(
                "event: {} bytes encoded, at most {}",
                raw.encoded_len, limits.max_event_bytes
            ),
        ));
    }
    Ok(())
}

/// `event_id`: a UUID, not the nil one.
fn check_id(raw: &RawEvent) -> Result<uuid::Uuid, Refusal> {
    let event_id = uuid::Uuid::try_parse(&raw.event_id).map_err(|_| {
        (
            RejectReason::InvalidEventId,
            format!("event_id: {:?} is not a UUID", truncate(&raw.event_id)),
        )
    })?;
    if event_id.is_nil() {
        return Err((
            RejectReason::InvalidEventId,
            "event_id: the nil UUID is not an id".into(),
        ));
    }
    Ok(event_id)
}

/// `time`: a valid timestamp, within the retention and not too far ahead.
fn check_time(
    raw: &RawEvent,
    now: OffsetDateTime,
    limits: &EventBounds,
) -> Result<OffsetDateTime, Refusal> {
    let (seconds, nanos) = raw
        .time
        .ok_or((RejectReason::MissingTime, "time: missing".to_owned()))?;
    let time = u32::try_from(nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .and_then(|n| {
            OffsetDateTime::from_unix_timestamp(seconds)
                .ok()
                .and_then(|t| t.replace_nanosecond(n).ok())
        })
        // Timestamp's own range, years 1 to 9999 (time's is wider).
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or((
            RejectReason::InvalidTime,
            format!(
                "time: {seconds} s and {nanos} ns is not a valid timestamp (years 1 to 9999, nanos 0 to 999999999)"
            ),
        ))?;
    if time < now - limits.retention {
        return Err((
            RejectReason::TimeTooOld,
            format!(
                "time: {time} is older than the retention of {} days",
                limits.retention.as_secs() / 86_400
            ),
        ));
    }
    if time > now + limits.max_future {
        return Err((
            RejectReason::TimeInFuture,
            format!(
                "time: {time} is more than {}s in the future",
                limits.max_future.as_secs()
            ),
        ));
    }
    Ok(time)
}

/// The service, the text fields, the status code and the latency.
fn check_fields(raw: &RawEvent) -> Result<(), Refusal> {
    if raw.service.is_empty() {
        return Err((RejectReason::MissingService, "service: missing".into()));
    }
    let fields = [
        &raw.service,
        &raw.endpoint,
        &raw.method,
        &raw.trace_id,
        &raw.request_id,
        &raw.environment,
        &raw.release,
        &raw.host,
    ];
    for ((name, max), value) in FIELD_LIMITS.iter().zip(fields) {
        check_text(name, value, *max)?;
    }
    if !(100..=599).contains(&raw.status_code) {
        return Err((
            RejectReason::InvalidStatusCode,
            format!("status_code: {} is not in 100..=599", raw.status_code),
        ));
    }
    if !raw.latency_ms.is_finite() || !(0.0..=MAX_LATENCY_MS).contains(&raw.latency_ms) {
        return Err((
            RejectReason::InvalidLatency,
            format!(
                "latency_ms: {} is not a value from 0 to {MAX_LATENCY_MS} (7 days)",
                raw.latency_ms
            ),
        ));
    }
    Ok(())
}

/// The attributes: how many, each key's and value's length and text.
fn check_attributes(raw: &RawEvent, limits: &EventBounds) -> Result<(), Refusal> {
    if raw.attributes.len() > limits.max_attributes {
        return Err((
            RejectReason::TooManyAttributes,
            format!(
                "attributes: {} entries, at most {}",
                raw.attributes.len(),
                limits.max_attributes
            ),
        ));
    }
    for (key, value) in &raw.attributes {
        if key.len() > limits.max_attribute_key || value.len() > limits.max_attribute_value {
            return Err((
                RejectReason::TooManyAttributes,
                format!(
                    "attributes[{:?}]: key or value too long (at most {} and {} bytes)",
                    truncate(key),
                    limits.max_attribute_key,
                    limits.max_attribute_value
                ),
            ));
        }
        if key.contains('\0') || value.contains('\0') {
            return Err((
                RejectReason::InvalidText,
                format!("attributes[{:?}]: contains a NUL character", truncate(key)),
            ));
        }
    }
    Ok(())
}

/// The request and response sizes, as stored (signed 64 bits).
fn check_byte_counts(raw: &RawEvent) -> Result<(i64, i64), Refusal> {
    let request_bytes = i64::try_from(raw.request_bytes).map_err(|_| {
        (
            RejectReason::FieldTooLong,
            "request_bytes: larger than 2^63-1".to_owned(),
        )
    })?;
    let response_bytes = i64::try_from(raw.response_bytes).map_err(|_| {
        (
            RejectReason::FieldTooLong,
            "response_bytes: larger than 2^63-1".to_owned(),
        )
    })?;
    Ok((request_bytes, response_bytes))
}

fn build(raw: RawEvent, checked: Checked) -> Event {
    let Checked {
        event_id,
        time,
        request_bytes,
        response_bytes,
    } = checked;
    let mut attributes = raw.attributes;
    attributes.sort();
    attributes.dedup_by(|a, b| a.0 == b.0);
    Event {
        event_id,
        time,
        service: raw.service,
        endpoint: raw.endpoint,
        method: raw.method,
        status_code: raw.status_code as i16,
        latency_ms: raw.latency_ms,
        trace_id: raw.trace_id,
        request_id: raw.request_id,
        attributes,
        environment: raw.environment,
        release: raw.release,
        host: raw.host,
        request_bytes,
        response_bytes,
    }
}

/// The first characters of a client value, for a message.
fn truncate(value: &str) -> &str {
    let mut end = value.len().min(40);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn good() -> RawEvent {
        RawEvent {
            event_id: "01932c07-a8f4-7b9e-8a1f-3c2b1d0e9f8a".into(),
            time: Some((1_800_000_000 - 5, 250_000_000)),
            service: "checkout".into(),
            endpoint: "/api/v1/orders/{id}".into(),
            method: "GET".into(),
            status_code: 200,
            latency_ms: 12.5,
            attributes: vec![
                ("tier".into(), "gold".into()),
                ("region".into(), "eu".into()),
            ],
            encoded_len: 200,
            ..Default::default()
        }
    }

    fn reason(raw: RawEvent) -> RejectReason {
        validate(raw, now(), &EventBounds::default())
            .unwrap_err()
            .reason
    }

    #[test]
    fn a_good_event_is_typed_and_its_attributes_sorted() {
        let event = validate(good(), now(), &EventBounds::default()).unwrap();
        assert_eq!(event.status_code, 200);
        assert_eq!(event.time.nanosecond(), 250_000_000);
        assert_eq!(event.attributes[0].0, "region");
    }

    #[test]
    fn each_bad_field_has_its_reason() {
        let limits = EventBounds::default();
        let cases: Vec<(RawEvent, RejectReason)> = vec![
            (
                RawEvent {
                    event_id: "42".into(),
                    ..good()
                },
                RejectReason::InvalidEventId,
            ),
            (
                RawEvent {
                    event_id: uuid::Uuid::nil().to_string(),
                    ..good()
                },
                RejectReason::InvalidEventId,
            ),
            (
                RawEvent {
                    time: None,
                    ..good()
                },
                RejectReason::MissingTime,
            ),
            (
                RawEvent {
                    time: Some((1, -1)),
                    ..good()
                },
                RejectReason::InvalidTime,
            ),
            (
                RawEvent {
                    time: Some((i64::MAX, 0)),
                    ..good()
                },
                RejectReason::InvalidTime,
            ),
            (
                RawEvent {
                    // Year 10000: past Timestamp's range, within time's.
                    time: Some((253_402_300_800, 0)),
                    ..good()
                },
                RejectReason::InvalidTime,
            ),
            (
                RawEvent {
                    latency_ms: MAX_LATENCY_MS * 1.000_001,
                    ..good()
                },
                RejectReason::InvalidLatency,
            ),
            (
                RawEvent {
                    latency_ms: f64::MAX,
                    ..good()
                },
                RejectReason::InvalidLatency,
            ),
            (
                RawEvent {
                    time: Some((1_800_000_000 - 31 * 86_400, 0)),
                    ..good()
                },
                RejectReason::TimeTooOld,
            ),
            (
                RawEvent {
                    time: Some((1_800_000_000 + 301, 0)),
                    ..good()
                },
                RejectReason::TimeInFuture,
            ),
            (
                RawEvent {
                    service: String::new(),
                    ..good()
                },
                RejectReason::MissingService,
            ),
            (
                RawEvent {
                    endpoint: "x".repeat(513),
                    ..good()
                },
                RejectReason::FieldTooLong,
            ),
            (
                RawEvent {
                    host: "a\0b".into(),
                    ..good()
                },
                RejectReason::InvalidText,
            ),
            (
                RawEvent {
                    status_code: 99,
                    ..good()
                },
                RejectReason::InvalidStatusCode,
            ),
            (
                RawEvent {
                    status_code: 600,
                    ..good()
                },
                RejectReason::InvalidStatusCode,
            ),
            (
                RawEvent {
                    latency_ms: -0.5,
                    ..good()
                },
                RejectReason::InvalidLatency,
            ),
            (
                RawEvent {
                    latency_ms: f64::NAN,
                    ..good()
                },
                RejectReason::InvalidLatency,
            ),
            (
                RawEvent {
                    latency_ms: f64::INFINITY,
                    ..good()
                },
                RejectReason::InvalidLatency,
            ),
            (
                RawEvent {
                    attributes: (0..65).map(|i| (i.to_string(), String::new())).collect(),
                    ..good()
                },
                RejectReason::TooManyAttributes,
            ),
            (
                RawEvent {
                    attributes: vec![("k".into(), "v".repeat(1025))],
                    ..good()
                },
                RejectReason::TooManyAttributes,
            ),
            (
                RawEvent {
                    attributes: vec![("k\0".into(), "v".into())],
                    ..good()
                },
                RejectReason::InvalidText,
            ),
            (
                RawEvent {
                    encoded_len: limits.max_event_bytes + 1,
                    ..good()
                },
                RejectReason::EventTooLarge,
            ),
            (
                RawEvent {
                    request_bytes: u64::MAX,
                    ..good()
                },
                RejectReason::FieldTooLong,
            ),
        ];
        for (raw, expected) in cases {
            let shown = format!("{raw:?}");
            assert_eq!(reason(raw), expected, "{shown}");
        }
    }

    #[test]
    fn messages_name_the_field_and_cut_long_values() {
        let invalid = validate(
            RawEvent {
                event_id: "é".repeat(100),
                ..good()
            },
            now(),
            &EventBounds::default(),
        )
        .unwrap_err();
        let message = invalid.message;
        assert_eq!(
            invalid.raw.event_id,
            "é".repeat(100),
            "the event comes back whole"
        );
        assert!(message.starts_with("event_id:"), "{message}");
        assert!(message.len() < 120, "{message}");
    }
}
