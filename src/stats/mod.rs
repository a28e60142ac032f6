//! Statistics with no I/O, shared by the writer, the rollups, the detector
//! and the reads: the mergeable latency histogram, a rollup cell and its
//! delta encoding, and time flooring. Nothing here knows the database, the
//! network or any stage.

pub mod cell;
pub mod histogram;

use time::OffsetDateTime;

/// `t` rounded down to a multiple of `secs` seconds since the epoch.
pub fn floor(t: OffsetDateTime, secs: i64) -> OffsetDateTime {
    let s = t.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(s - s.rem_euclid(secs)).unwrap_or(t)
}

/// `t` rounded up to a multiple of `secs` seconds since the epoch.
pub fn ceil(t: OffsetDateTime, secs: i64) -> OffsetDateTime {
    let f = floor(t, secs);
    if f == t {
        t
    } else {
        f + time::Duration::seconds(secs)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn floor_and_ceil_round_to_the_bucket() {
        let t = datetime!(2026-11-22 10:15:42.5 UTC);
        assert_eq!(floor(t, 60), datetime!(2026-11-22 10:15 UTC));
        assert_eq!(floor(t, 3_600), datetime!(2026-11-22 10:00 UTC));
        assert_eq!(ceil(t, 3_600), datetime!(2026-11-22 11:00 UTC));
        let h = datetime!(2026-11-22 10:00 UTC);
        assert_eq!(ceil(h, 3_600), h);
    }
}
