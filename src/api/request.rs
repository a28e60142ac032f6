//! What a request asks, read and checked: page tokens and sizes, time
//! ranges, limit overrides. Errors are INVALID_ARGUMENT naming the field.

use time::OffsetDateTime;

use super::convert::from_timestamp;
use super::status;
use crate::proto::v1 as pb;

/// An opaque page token over a (time, id) keyset.
/// Cuts `rows`, read with one row more than `limit`, to the page and returns
/// the next page's token, made by `token` from the page's last row; empty
/// when there is no next page.
pub fn next_page<T>(rows: &mut Vec<T>, limit: i64, token: impl FnOnce(&T) -> String) -> String {
    if rows.len() as i64 <= limit {
        return String::new();
    }
    rows.truncate(limit.max(0) as usize);
    rows.last().map(token).unwrap_or_default()
}

pub fn encode_page_token(at: OffsetDateTime, id: i64) -> String {
    format!("{:x}.{:x}", at.unix_timestamp_nanos() / 1_000, id)
}

pub fn decode_page_token(token: &str) -> Result<Option<(OffsetDateTime, i64)>, tonic::Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || status::invalid("page_token", "not a token this server issued");
    let (micros, id) = token.split_once('.').ok_or_else(bad)?;
    let micros = i128::from_str_radix(micros, 16).map_err(|_| bad())?;
    let id = i64::from_str_radix(id, 16).map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| bad())?;
    Ok(Some((at, id)))
}

/// A positive identifier given as text (`field` names it in the error:
/// "not a <what> id").
pub fn positive_id(field: &str, what: &str, value: &str) -> Result<i64, tonic::Status> {
    value
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| super::status::invalid(field, format!("not a {what} id")))
}

/// The [start, end) of an optional `TimeRange`: end defaults to `now`, start to
/// `end - default`; the span may not exceed `max`. Errors name the field.
pub fn time_range(
    range: Option<&pb::TimeRange>,
    default: std::time::Duration,
    max: std::time::Duration,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), tonic::Status> {
    use status::invalid;
    let end = match range.and_then(|r| r.end.as_ref()) {
        Some(t) => {
            from_timestamp(t).ok_or_else(|| invalid("range.end", "not a valid timestamp"))?
        }
        None => now,
    };
    let start = match range.and_then(|r| r.start.as_ref()) {
        Some(t) => {
            from_timestamp(t).ok_or_else(|| invalid("range.start", "not a valid timestamp"))?
        }
        None => end - default,
    };
    if start >= end {
        return Err(invalid("range", "start must be before end"));
    }
    if end - start > max {
        return Err(invalid(
            "range",
            format!("spans more than the cap of {}", human(max)),
        ));
    }
    Ok((start, end))
}

/// A duration in the largest whole unit, for messages.
pub fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// A page size: 0 means `default`; more than `max` is refused.
pub fn page_size(value: u32, default: u32, max: u32) -> Result<i64, tonic::Status> {
    match value {
        0 => Ok(i64::from(default)),
        v if v > max => Err(status::invalid("page_size", format!("at most {max}"))),
        v => Ok(i64::from(v)),
    }
}

/// Overrides from a request; errors name the field.
pub fn overrides_from_pb(
    l: &pb::TenantLimits,
) -> Result<crate::domain::LimitOverrides, tonic::Status> {
    let range = match &l.max_query_range {
        None => None,
        Some(d) if d.seconds < 0 || d.nanos < 0 => {
            return Err(status::invalid(
                "overrides.max_query_range",
                "must not be negative",
            ));
        }
        Some(d) => Some(std::time::Duration::new(d.seconds as u64, d.nanos as u32)),
    };
    let o = crate::domain::LimitOverrides {
        events_per_sec: l.events_per_second,
        events_burst: l.events_burst,
        bytes_per_sec: l.bytes_per_second,
        bytes_burst: l.bytes_burst,
        max_streams: l.max_streams,
        max_services: l.max_services,
        max_endpoints: l.max_endpoints_per_service,
        max_query_range: range,
        max_page_size: l.max_page_size,
    };
    o.validate()
        .map_err(|(field, problem)| status::invalid(&format!("overrides.{field}"), problem))?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_cut_to_its_limit_and_its_last_row_makes_the_token() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), "2");
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), "");
        assert_eq!(rows, [1, 2]);
    }

    #[test]
    fn time_ranges_default_and_are_capped() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let hour = std::time::Duration::from_secs(3600);
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(time_range(None, hour, day, now).unwrap(), (now - hour, now));
        let ts = |s| {
            Some(prost_types::Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        let backwards = pb::TimeRange {
            start: ts(1_800_000_000),
            end: ts(1_700_000_000),
        };
        assert!(
            time_range(Some(&backwards), hour, day, now)
                .unwrap_err()
                .message()
                .starts_with("range:")
        );
        let too_long = pb::TimeRange {
            start: ts(1_700_000_000),
            end: ts(1_800_000_000),
        };
        assert!(
            time_range(Some(&too_long), hour, day, now)
                .unwrap_err()
                .message()
                .contains("1 days")
        );
        let bad = pb::TimeRange {
            start: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            end: None,
        };
        assert!(
            time_range(Some(&bad), hour, day, now)
                .unwrap_err()
                .message()
                .starts_with("range.start")
        );
        assert_eq!(page_size(0, 100, 1000).unwrap(), 100);
        assert!(page_size(1001, 100, 1000).is_err());
    }
}
