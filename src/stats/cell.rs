//! One rollup cell: the counts, latency summary and histogram of the events
//! of one (service, endpoint) in one bucket, and the delta payload the writer
//! stores with each batch.
//!
//! Delta payload (one `rollup_deltas` row per tenant per writer transaction):
//! a version byte, the number of cells, then per cell the service and
//! endpoint (length-prefixed UTF-8), the minute (zigzag varint of Unix
//! minutes), the four counts (varints), sum/min/max (f64, little endian) and
//! the histogram (length-prefixed, see `histogram`).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{
    floor,
    histogram::{DecodeError, Histogram, get_varint, put_varint, take_byte},
};
use crate::domain::{Event, TenantId};

const VERSION: u8 = 1;
/// Longest string a payload may carry (validation caps fields far below this).
const MAX_STRING: u64 = 4_096;

/// Counts and latency of a set of events.
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    /// Events.
    pub count: u64,
    /// Events with a 2xx status.
    pub status_2xx: u64,
    /// Events with a 4xx status.
    pub status_4xx: u64,
    /// Events with a 5xx status.
    pub status_5xx: u64,
    /// Sum of latencies, milliseconds.
    pub latency_sum: f64,
    /// Smallest latency (infinity when empty).
    pub latency_min: f64,
    /// Largest latency (0 when empty).
    pub latency_max: f64,
    /// Latency histogram.
    pub histogram: Histogram,
}

impl Default for Agg {
    fn default() -> Self {
        Agg {
            count: 0,
            status_2xx: 0,
            status_4xx: 0,
            status_5xx: 0,
            latency_sum: 0.0,
            latency_min: f64::INFINITY,
            latency_max: 0.0,
            histogram: Histogram::new(),
        }
    }
}

impl Agg {
    /// Counts one event.
    pub fn record(&mut self, status_code: i16, latency_ms: f64) {
        self.count += 1;
        match status_code / 100 {
            2 => self.status_2xx += 1,
            4 => self.status_4xx += 1,
            5 => self.status_5xx += 1,
            _ => {}
        }
        self.latency_sum += latency_ms;
        self.latency_min = self.latency_min.min(latency_ms);
        self.latency_max = self.latency_max.max(latency_ms);
        self.histogram.record(latency_ms);
    }

    /// Adds `other` to this cell.
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.status_2xx += other.status_2xx;
        self.status_4xx += other.status_4xx;
        self.status_5xx += other.status_5xx;
        self.latency_sum += other.latency_sum;
        self.latency_min = self.latency_min.min(other.latency_min);
        self.latency_max = self.latency_max.max(other.latency_max);
        self.histogram.merge(&other.histogram);
    }

    /// A latency quantile, kept within the observed min and max; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        self.histogram
            .quantile(q)
            .map(|v| v.clamp(self.latency_min.min(self.latency_max), self.latency_max))
            .unwrap_or(0.0)
    }
}

/// Cells of a delta, keyed by (service, endpoint, minute).
pub type Cells = BTreeMap<(String, String, OffsetDateTime), Agg>;

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn take<'a>(input: &mut &'a [u8], n: u64) -> Result<&'a [u8], DecodeError> {
    let n = usize::try_from(n).map_err(|_| DecodeError::new("length too large"))?;
    if input.len() < n {
        return Err(DecodeError::new("unexpected end"));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn get_str(input: &mut &[u8]) -> Result<String, DecodeError> {
    let len = get_varint(input)?;
    if len > MAX_STRING {
        return Err(DecodeError::new("string too long"));
    }
    String::from_utf8(take(input, len)?.to_vec()).map_err(|_| DecodeError::new("not UTF-8"))
}

fn get_f64(input: &mut &[u8]) -> Result<f64, DecodeError> {
    let bytes: [u8; 8] = take(input, 8)?
        .try_into()
        .map_err(|_| DecodeError::new("unexpected end"))?;
    Ok(f64::from_le_bytes(bytes))
}

/// Encodes cells as a delta payload.
pub fn encode_delta(cells: &Cells) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + cells.len() * 96);
    out.push(VERSION);
    put_varint(&mut out, cells.len() as u64);
    for ((service, endpoint, minute), agg) in cells {
        put_str(&mut out, service);
        put_str(&mut out, endpoint);
        let m = minute.unix_timestamp().div_euclid(60);
        put_varint(&mut out, ((m << 1) ^ (m >> 63)) as u64);
        for n in [agg.count, agg.status_2xx, agg.status_4xx, agg.status_5xx] {
            put_varint(&mut out, n);
        }
        for v in [agg.latency_sum, agg.latency_min, agg.latency_max] {
            put_f64(&mut out, v);
        }
        let h = agg.histogram.encode();
        put_varint(&mut out, h.len() as u64);
        out.extend_from_slice(&h);
    }
    out
}

/// Decodes a delta payload into (service, endpoint, minute, cell) entries.
pub fn decode_delta(
    bytes: &[u8],
) -> Result<Vec<(String, String, OffsetDateTime, Agg)>, DecodeError> {
    let mut input = bytes;
    let r = &mut input;
    if take_byte(r)? != VERSION {
        return Err(DecodeError::new("unknown delta version"));
    }
    let n = get_varint(r)?;
    let mut cells = Vec::with_capacity(n.min(4_096) as usize);
    for _ in 0..n {
        let service = get_str(r)?;
        let endpoint = get_str(r)?;
        let z = get_varint(r)? as i64;
        let minutes = (z >> 1) ^ -(z & 1);
        let minute = minutes
            .checked_mul(60)
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or(DecodeError::new("minute out of range"))?;
        let mut agg = Agg {
            count: get_varint(r)?,
            status_2xx: get_varint(r)?,
            status_4xx: get_varint(r)?,
            status_5xx: get_varint(r)?,
            ..Agg::default()
        };
        agg.latency_sum = get_f64(r)?;
        agg.latency_min = get_f64(r)?;
        agg.latency_max = get_f64(r)?;
        let len = get_varint(r)?;
        agg.histogram = Histogram::decode(take(r, len)?)?;
        cells.push((service, endpoint, minute, agg));
    }
    if !r.is_empty() {
        return Err(DecodeError::new("trailing bytes"));
    }
    Ok(cells)
}

/// The rollup cells of the events of `batches`, per tenant.
pub fn cells_by_tenant<'a>(
    events: impl Iterator<Item = (TenantId, &'a Event)>,
) -> BTreeMap<i64, Cells> {
    // Keys borrow from the events; owned strings are made once per cell.
    let mut borrowed: BTreeMap<(i64, &str, &str, OffsetDateTime), Agg> = BTreeMap::new();
    for (tenant, e) in events {
        borrowed
            .entry((tenant.0, &e.service, &e.endpoint, floor(e.time, 60)))
            .or_default()
            .record(e.status_code, e.latency_ms);
    }
    let mut out: BTreeMap<i64, Cells> = BTreeMap::new();
    for ((tenant, service, endpoint, minute), cell) in borrowed {
        out.entry(tenant)
            .or_default()
            .insert((service.to_owned(), endpoint.to_owned(), minute), cell);
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_delta_round_trips() {
        let mut cells = Cells::new();
        let at = datetime!(2026-11-22 10:15 UTC);
        for (i, (status, latency)) in [(200, 12.5), (503, 80.0), (404, 3.0), (302, 0.0)]
            .into_iter()
            .enumerate()
        {
            cells
                .entry(("checkout".into(), format!("/r{}", i % 2), at))
                .or_default()
                .record(status, latency);
        }
        cells
            .entry((
                "cart".into(),
                String::new(),
                datetime!(1969-12-31 23:59 UTC),
            ))
            .or_default()
            .record(201, 7.0);
        let decoded = decode_delta(&encode_delta(&cells)).unwrap();
        let back: Cells = decoded
            .into_iter()
            .map(|(s, e, m, a)| ((s, e, m), a))
            .collect();
        assert_eq!(back, cells);
        let r0 = &back[&("checkout".to_string(), "/r0".to_string(), at)];
        assert_eq!((r0.count, r0.status_2xx, r0.status_4xx), (2, 1, 1));
        assert!(decode_delta(&[]).is_err());
        assert!(decode_delta(&[VERSION, 1]).is_err());
    }

    #[test]
    fn merged_cells_add_up() {
        let (mut a, mut b) = (Agg::default(), Agg::default());
        a.record(200, 10.0);
        a.record(500, 30.0);
        b.record(404, 2.0);
        a.merge(&b);
        assert_eq!(
            (a.count, a.status_2xx, a.status_4xx, a.status_5xx),
            (3, 1, 1, 1)
        );
        assert_eq!(
            (a.latency_min, a.latency_max, a.latency_sum),
            (2.0, 30.0, 42.0)
        );
        assert_eq!(a.quantile(1.0), 30.0);
        assert_eq!(Agg::default().quantile(0.5), 0.0);
    }
}
