//! A mergeable, log-bucketed latency histogram.
//!
//! A value `x > 0` falls in bucket `i = ceil(ln x / ln γ)`, which holds
//! `(γ^(i-1), γ^i]`, with `γ = (1 + α) / (1 - α)`. Every value in a bucket is
//! within a relative error `α` of the bucket's representative `2γ^i / (γ + 1)`,
//! so a quantile read from the histogram is within `α` of the true order
//! statistic of the same rank. Merging is adding counts bucket by bucket, so
//! histograms of minutes add up to the histogram of an hour or a day exactly.
//!
//! `α` is [`RELATIVE_ERROR`] (1%, half of the 2% the contract states). Values
//! at or below [`MIN_VALUE`] (1 ns) count in a zero bucket read back as 0;
//! values above [`MAX_VALUE`] count in the last bucket.
//!
//! The encoding (stored in `metrics_*.histogram` and in rollup deltas) is a
//! version byte, the zero count, the number of buckets, then per bucket the
//! index (zigzag, the first absolute, the rest as gaps) and the count, all as
//! LEB128 varints.

/// Relative error of a quantile read from a histogram.
pub const RELATIVE_ERROR: f64 = 0.01;
/// Values at or below this (milliseconds) count as zero.
pub const MIN_VALUE: f64 = 1e-6;
/// Values above this (milliseconds, about 11.6 days) count in the last bucket.
pub const MAX_VALUE: f64 = 1e9;

const VERSION: u8 = 1;

fn gamma_ln() -> f64 {
    ((1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)).ln()
}

fn index_of(value: f64) -> i32 {
    let v = value.min(MAX_VALUE);
    (v.ln() / gamma_ln()).ceil() as i32
}

fn representative(index: i32) -> f64 {
    let g = gamma_ln().exp();
    2.0 * (index as f64 * gamma_ln()).exp() / (g + 1.0)
}

/// Counts per bucket. Dense between the lowest and highest bucket in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    zero: u64,
    offset: i32,
    counts: Vec<u64>,
}

/// A histogram that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed histogram: {0}")]
pub struct DecodeError(&'static str);

impl DecodeError {
    /// An error explaining what is wrong.
    pub fn new(what: &'static str) -> Self {
        DecodeError(what)
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value (milliseconds; negative and NaN count as zero).
    pub fn record(&mut self, value: f64) {
        self.record_n(value, 1);
    }

    /// Counts `n` occurrences of a value.
    pub fn record_n(&mut self, value: f64, n: u64) {
        if value.is_nan() || value <= MIN_VALUE {
            self.zero += n;
        } else {
            self.add_bucket(index_of(value), n);
        }
    }

    fn add_bucket(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = (index - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
    }

    /// Adds every count of `other` to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        self.zero += other.zero;
        if other.counts.is_empty() {
            return;
        }
        let last = other.offset + other.counts.len() as i32 - 1;
        // Grow once to cover both ranges, then add.
        self.add_bucket(other.offset, 0);
        self.add_bucket(last, 0);
        let start = (other.offset - self.offset) as usize;
        for (slot, n) in self.counts[start..].iter_mut().zip(&other.counts) {
            *slot += n;
        }
    }

    /// This histogram with every count multiplied by `share` (0 to 1) and
    /// rounded: the part of a bucket's values that fell in a share of its time.
    pub fn scaled(&self, share: f64) -> Histogram {
        let share = share.clamp(0.0, 1.0);
        let scale = |n: u64| (n as f64 * share).round() as u64;
        Histogram {
            zero: scale(self.zero),
            offset: self.offset,
            counts: self.counts.iter().map(|n| scale(*n)).collect(),
        }
    }

    /// Values counted in buckets whose representative is above `value`.
    pub fn count_above(&self, value: f64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(i, _)| representative(self.offset + *i as i32) > value)
            .map(|(_, n)| n)
            .sum()
    }

    /// Number of values counted.
    pub fn count(&self) -> u64 {
        self.zero + self.counts.iter().sum::<u64>()
    }

    /// The value of rank `ceil(q * count)` (at least 1), within
    /// [`RELATIVE_ERROR`]; `None` when empty. `q` is clamped to [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = self.zero;
        if seen >= rank {
            return Some(0.0);
        }
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(representative(self.offset + i as i32));
            }
        }
        // Unreachable: the counts add up to `total`.
        self.counts
            .len()
            .checked_sub(1)
            .map(|i| representative(self.offset + i as i32))
    }

    /// The compact binary form described in the module documentation.
    pub fn encode(&self) -> Vec<u8> {
        let used = self.counts.iter().filter(|n| **n > 0).count();
        let mut out = Vec::with_capacity(4 + used * 3);
        out.push(VERSION);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, used as u64);
        let mut previous: Option<i32> = None;
        for (i, n) in self.counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let index = self.offset + i as i32;
            match previous {
                None => put_varint(&mut out, zigzag(index)),
                Some(p) => put_varint(&mut out, (index - p) as u64),
            }
            put_varint(&mut out, *n);
            previous = Some(index);
        }
        out
    }

    /// Reads the form [`Histogram::encode`] writes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut input = bytes;
        let reader = &mut input;
        match take_byte(reader)? {
            VERSION => {}
            _ => return Err(DecodeError("unknown version")),
        }
        let mut h = Histogram {
            zero: get_varint(reader)?,
            ..Default::default()
        };
        let used = get_varint(reader)?;
        let mut index: i64 = 0;
        for k in 0..used {
            let step = get_varint(reader)?;
            index = if k == 0 {
                unzigzag(step)
            } else if step == 0 {
                return Err(DecodeError("buckets out of order"));
            } else {
                index + step as i64
            };
            let bounds = (index_of(MIN_VALUE) - 1) as i64..=index_of(MAX_VALUE) as i64;
            if !bounds.contains(&index) {
                return Err(DecodeError("bucket index out of range"));
            }
            let n = get_varint(reader)?;
            h.add_bucket(index as i32, n);
        }
        if !reader.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(h)
    }
}

fn zigzag(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

fn unzigzag(v: u64) -> i64 {
    let v = v as i64;
    (v >> 1) ^ -(v & 1)
}

/// Appends `v` as an LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one byte.
pub fn take_byte(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (first, rest) = input.split_first().ok_or(DecodeError("unexpected end"))?;
    *input = rest;
    Ok(*first)
}

/// Reads an LEB128 varint of at most 10 bytes.
pub fn get_varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = take_byte(input)?;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, to avoid a dependency.
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((s >> 11) as f64) / ((1u64 << 53) as f64);
                // Spread over six orders of magnitude.
                10f64.powf(u * 6.0 - 2.0)
            })
            .collect()
    }

    fn exact(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn quantiles_are_within_the_stated_error() {
        let mut v = values(20_000, 7);
        let mut h = Histogram::new();
        v.iter().for_each(|x| h.record(*x));
        v.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let (got, want) = (h.quantile(q).unwrap(), exact(&v, q));
            assert!(
                (got - want).abs() <= RELATIVE_ERROR * want * (1.0 + 1e-9),
                "q={q}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (a, b) = (values(3_000, 1), values(5_000, 2));
        let (mut ha, mut hb, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        a.iter().for_each(|x| ha.record(*x));
        b.iter().for_each(|x| hb.record(*x));
        a.iter().chain(&b).for_each(|x| all.record(*x));
        all.record(0.0);
        ha.record(0.0);
        ha.merge(&hb);
        assert_eq!(ha, all);
        assert_eq!(ha.count(), 8_001);
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut h = Histogram::new();
        values(1_000, 3).iter().for_each(|x| h.record(*x));
        h.record_n(0.0, 5);
        h.record(f64::MAX);
        let bytes = h.encode();
        assert_eq!(Histogram::decode(&bytes).unwrap(), h);
        assert_eq!(
            Histogram::decode(&Histogram::new().encode()).unwrap(),
            Histogram::new()
        );
        assert!(Histogram::decode(&[]).is_err());
        assert!(Histogram::decode(&[9, 0, 0]).is_err());
        assert!(Histogram::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Histogram::decode(&trailing).is_err());
        // A huge index must not allocate a huge vector.
        let mut far = vec![VERSION, 0, 1];
        put_varint(&mut far, zigzag(i32::MAX));
        put_varint(&mut far, 1);
        assert!(Histogram::decode(&far).is_err());
    }

    #[test]
    fn empty_and_edge_values() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        h.record(f64::NAN);
        h.record(-1.0);
        assert_eq!(h.quantile(0.99), Some(0.0));
        h.record(1e12);
        assert!(h.quantile(1.0).unwrap() >= MAX_VALUE * (1.0 - RELATIVE_ERROR));
    }
}
