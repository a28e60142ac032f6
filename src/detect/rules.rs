//! Detection rules: pure functions from a short window and a baseline to an
//! observation that fires or not, and the hysteresis that keeps alerts from
//! flapping. No I/O; the numbers come from the rollups. The rules'
//! vocabulary (kinds, severities, settings) is `domain::rules`.

use crate::{
    domain::rules::{Kind, Settings, Severity},
    stats::histogram::Histogram,
};

/// What a window shows for one subject (a service, or one of its endpoints).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Seconds of traffic the window covers.
    pub seconds: f64,
    /// Requests.
    pub requests: u64,
    /// 5xx responses.
    pub errors: u64,
    /// p95 latency, milliseconds (0 without requests).
    pub p95_ms: f64,
    /// The latencies.
    pub latency: Histogram,
    /// Requests of the current minute so far (the window's newest part).
    pub latest_requests: u64,
    /// Seconds of the current minute so far.
    pub latest_seconds: f64,
    /// Latencies of the current minute so far.
    pub latest_latency: Histogram,
}

/// The subject's usual behaviour: medians over the previous hours' minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baseline {
    /// Median 5xx share of the healthy minutes with traffic (at most
    /// [`HEALTHY_ERROR_SHARE`]): a baseline never learns a failure as normal.
    pub error_rate: f64,
    /// Minutes `error_rate` was made of.
    pub error_minutes: u32,
    /// Median p95 of the minutes with traffic, milliseconds.
    pub p95_ms: f64,
    /// The same over the long baseline (a day): what a slow drift is measured against.
    pub p95_long_ms: f64,
    /// Median requests a minute, over every minute (silent ones count as 0).
    pub requests_per_minute: f64,
    /// Minutes the baseline was made of.
    pub minutes: u32,
    /// Requests of the [`EVIDENCE_MINUTES`] just before the window: with the
    /// window, the longer evidence a low-volume subject's error rate is read over.
    pub before_requests: u64,
    /// 5xx of the same minutes.
    pub before_errors: u64,
}

/// A rule's reading of a window: the value, what it was compared with, and
/// whether (and how badly) it is bad.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The rule.
    pub kind: Kind,
    /// The observed value (ratio, milliseconds, requests a minute).
    pub observed: f64,
    /// The baseline it was compared with.
    pub baseline: f64,
    /// The threshold it had to cross (for traffic drop: the floor).
    pub threshold: f64,
    /// There was no healthy baseline: the absolute bar alone decided.
    pub no_baseline: bool,
    /// `Some` when the window is bad.
    pub bad: Option<Severity>,
    /// Seconds of traffic the reading was made over (the window, the longer
    /// evidence window, or the current minute so far).
    pub seconds: f64,
}

/// Fewest minutes of history before the baseline counts.
pub const MIN_BASELINE_MINUTES: u32 = 10;

/// Minutes whose 5xx share is above this are left out of the error baseline.
pub const HEALTHY_ERROR_SHARE: f64 = 0.05;

/// The error-rate bar of a subject without a healthy baseline (a new
/// service, or one failing from its first minutes): the rule's threshold,
/// but at least this, beyond chance like every reading.
pub const NO_BASELINE_ERROR_BAR: f64 = 0.10;

/// How unlikely the error count is if the true rate were `rate`: standard
/// deviations above the binomial mean (normal approximation, continuity corrected).
pub fn significance(errors: u64, requests: u64, rate: f64) -> f64 {
    let n = requests as f64;
    let mean = n * rate;
    let sd = (n * rate * (1.0 - rate)).sqrt();
    if sd <= 0.0 {
        return f64::INFINITY;
    }
    (errors as f64 - 0.5 - mean) / sd
}

/// Standard deviations a count must lie above what the bar's rate gives:
/// about 1 in 160 at the bar itself, and far rarer for a subject behaving as
/// usual, whose true rate is well below the bar.
pub const MIN_Z: f64 = 2.5;

/// The chance of a count at least that high at the bar's rate, below which it
/// is beyond chance: the one-sided tail of [`MIN_Z`]. For the error rate of
/// the window.
pub const MAX_CHANCE: f64 = 0.0062;

/// The same for the longer evidence window: stricter, since it is read for
/// every quiet subject, where a few errors weigh most.
pub const EVIDENCE_MAX_CHANCE: f64 = 0.001;

/// The same for latency: stricter still, since heavy-tailed services put a
/// few very slow requests in any small window.
pub const LATENCY_MAX_CHANCE: f64 = 0.0002;

/// Minutes just before the window that the longer evidence window adds.
pub const EVIDENCE_MINUTES: u32 = 3;

/// Fewest requests the longer evidence window needs.
pub const EVIDENCE_MIN_REQUESTS: u64 = 5;

/// Latency and traffic drop also read the current minute on its own, from
/// this many seconds into it: a sharp change shows there before it weighs on
/// the whole window.
pub const LATEST_MIN_SECONDS: f64 = 20.0;

/// Fewest requests the baseline must expect in what traffic drop reads: fewer
/// and a quiet subject's ordinary lulls would read as drops.
pub const TRAFFIC_MIN_EXPECTED: f64 = 20.0;

/// P(X >= k) for X binomial(n, p).
pub fn binomial_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // ln of the probability of exactly k, then the terms above it by their ratio.
    let (kf, nf) = (k as f64, n as f64);
    let ln_choose: f64 = (1..=k)
        .map(|j| ((nf - kf + j as f64) / j as f64).ln())
        .sum();
    let mut term = (ln_choose + kf * p.ln() + (nf - kf) * (1.0 - p).ln()).exp();
    let odds = p / (1.0 - p);
    let mut sum = 0.0;
    let mut i = k;
    while i <= n {
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
        term *= (nf - i as f64) / (i as f64 + 1.0) * odds;
        i += 1;
    }
    sum.min(1.0)
}

/// Whether `k` of `n` is beyond chance at the rate `p`, that is less likely
/// than `max_chance`: the exact binomial tail for small counts (where the
/// normal approximation would call two errors in five requests significant),
/// the normal approximation above.
pub fn beyond_chance(k: u64, n: u64, p: f64, max_chance: f64) -> bool {
    if n <= 2_000 {
        binomial_tail(k, n, p) <= max_chance
    } else {
        significance(k, n, p) >= z_of(max_chance)
    }
}

/// The one-sided normal quantile of a small tail probability (Abramowitz and
/// Stegun 26.2.23, within 5e-4).
fn z_of(tail: f64) -> f64 {
    let t = (-2.0 * tail.clamp(1e-300, 0.5).ln()).sqrt();
    t - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
        / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t)
}

/// Bad above `bar`: critical from `critical_at`, warning below it.
fn graded(observed: f64, bar: f64, critical_at: f64) -> Option<Severity> {
    if observed <= bar {
        None
    } else if observed >= critical_at {
        Some(Severity::Critical)
    } else {
        Some(Severity::Warning)
    }
}

/// Reads a window with one rule; `None` when there is too little data to say.
pub fn read(kind: Kind, s: &Settings, w: &Window, b: &Baseline) -> Option<Reading> {
    let mut reading = grade(kind, s, w, b)?;
    if let (Some(_), Some(forced)) = (reading.bad, s.severity) {
        reading.bad = Some(forced);
    }
    Some(reading)
}

fn grade(kind: Kind, s: &Settings, w: &Window, b: &Baseline) -> Option<Reading> {
    if !s.enabled {
        return None;
    }
    // Error rate alone reads a subject without a healthy baseline (against
    // an absolute bar); the other rules have nothing to compare with.
    if kind != Kind::ErrorRate && b.minutes < MIN_BASELINE_MINUTES {
        return None;
    }
    match kind {
        Kind::ErrorRate => {
            let healthy =
                b.minutes >= MIN_BASELINE_MINUTES && b.error_minutes >= MIN_BASELINE_MINUTES;
            let (bar, threshold) = if healthy {
                (
                    s.threshold.max(b.error_rate * s.baseline_factor),
                    s.threshold,
                )
            } else {
                let bar = s.threshold.max(NO_BASELINE_ERROR_BAR);
                (bar, bar)
            };
            let reading = |errors: u64, requests: u64, seconds: f64, max_chance: f64| {
                let observed = errors as f64 / requests.max(1) as f64;
                // Above the bar by more than chance: a handful of errors in a
                // small window is noise, not an incident.
                let bad = graded(observed, bar, s.critical_at)
                    .filter(|_| beyond_chance(errors, requests, bar, max_chance));
                Reading {
                    kind,
                    observed,
                    baseline: if healthy { b.error_rate } else { 0.0 },
                    threshold,
                    no_baseline: !healthy,
                    bad,
                    seconds,
                }
            };
            let short = ((w.requests as f64) >= s.min_requests)
                .then(|| reading(w.errors, w.requests, w.seconds, MAX_CHANCE));
            // The longer evidence: the window and the minutes before it, for a
            // subject too quiet to show much in one window, or failing more
            // each minute (a ramp). It counts while the window itself still
            // shows the failure (or is empty), so an ended failure clears.
            let still_failing = w.requests == 0 || w.errors as f64 / w.requests as f64 > bar;
            let long_requests = w.requests + b.before_requests;
            let long =
                (b.before_requests > 0 && long_requests >= EVIDENCE_MIN_REQUESTS && still_failing)
                    .then(|| {
                        reading(
                            w.errors + b.before_errors,
                            long_requests,
                            w.seconds + f64::from(EVIDENCE_MINUTES) * 60.0,
                            EVIDENCE_MAX_CHANCE,
                        )
                    });
            match (short, long) {
                (Some(short), _) if short.bad.is_some() => Some(short),
                (_, Some(long)) if long.bad.is_some() => Some(long),
                (short, long) => short.or(long),
            }
        }
        Kind::LatencyP95 => {
            if (w.requests as f64) < s.min_requests {
                return None;
            }
            // The lower of the recent and the day-long baseline: a slow drift
            // drags the recent one along, not the other.
            let base = if b.p95_long_ms > 0.0 {
                b.p95_ms.min(b.p95_long_ms)
            } else {
                b.p95_ms
            };
            let absolute = s.threshold.max(base * s.baseline_factor);
            // A fast service several times slower than usual is a regression
            // even under the absolute threshold.
            let relative = if s.relative_factor > 0.0 && base > 0.0 {
                (base * s.relative_factor).max(base + s.relative_min)
            } else {
                f64::INFINITY
            };
            let bar = absolute.min(relative);
            let reading = |latency: &Histogram, observed: f64, seconds: f64| {
                // The p95 is above the bar when more than 5% of requests are;
                // it counts when that share is beyond chance, not a few slow
                // requests in a small window.
                let slow = latency.count_above(bar);
                let bad = graded(observed, bar, s.critical_at)
                    .filter(|_| beyond_chance(slow, latency.count(), 0.05, LATENCY_MAX_CHANCE));
                Reading {
                    kind,
                    observed,
                    baseline: base,
                    threshold: if relative < absolute {
                        bar
                    } else {
                        s.threshold
                    },
                    no_baseline: false,
                    bad,
                    seconds,
                }
            };
            let whole = reading(&w.latency, w.p95_ms, w.seconds);
            if whole.bad.is_none()
                && w.latest_seconds >= LATEST_MIN_SECONDS
                && (w.latest_latency.count() as f64) >= s.min_requests
            {
                let p95 = w.latest_latency.quantile(0.95).unwrap_or(0.0);
                let latest = reading(&w.latest_latency, p95, w.latest_seconds);
                if latest.bad.is_some() {
                    return Some(latest);
                }
            }
            Some(whole)
        }
        Kind::TrafficDrop => {
            if b.requests_per_minute < s.min_requests || w.seconds <= 0.0 {
                return None;
            }
            let floor = b.requests_per_minute * s.threshold;
            let reading = |requests: u64, seconds: f64| {
                let observed = requests as f64 * 60.0 / seconds;
                Reading {
                    kind,
                    observed,
                    baseline: b.requests_per_minute,
                    threshold: floor,
                    no_baseline: false,
                    bad: (observed < floor).then_some(Severity::Critical),
                    seconds,
                }
            };
            let expects = |seconds: f64| b.requests_per_minute * seconds / 60.0;
            if expects(w.seconds) < TRAFFIC_MIN_EXPECTED {
                return None;
            }
            let whole = reading(w.requests, w.seconds);
            if whole.bad.is_some() {
                return Some(whole);
            }
            // The current minute alone, once the baseline expects enough of it.
            if w.latest_seconds >= LATEST_MIN_SECONDS
                && expects(w.latest_seconds) >= TRAFFIC_MIN_EXPECTED
            {
                let latest = reading(w.latest_requests, w.latest_seconds);
                if latest.bad.is_some() {
                    return Some(latest);
                }
            }
            Some(whole)
        }
    }
}

/// The sentence that explains a reading (the incidents' wording).
pub fn explain(r: &Reading) -> String {
    crate::incidents::explain::sentence(
        r.kind,
        r.observed,
        r.baseline,
        r.no_baseline,
        r.threshold,
        r.seconds.round() as u64,
    )
}

/// Hysteresis of one (subject, rule): counts consecutive bad and good readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hysteresis {
    bad: u32,
    good: u32,
    /// Whether the alert is firing.
    pub firing: bool,
}

/// What a reading changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing.
    None,
    /// The alert fires now.
    Fire,
    /// The firing alert clears now.
    Clear,
}

impl Hysteresis {
    /// The state of an alert already firing (after a leader change).
    pub fn firing() -> Hysteresis {
        Hysteresis {
            firing: true,
            ..Hysteresis::default()
        }
    }

    /// Feeds one reading (`bad` or not; `None` readings count as good).
    pub fn feed(&mut self, bad: bool, s: &Settings) -> Transition {
        if bad {
            self.bad += 1;
            self.good = 0;
            if !self.firing && self.bad >= s.fire_after {
                self.firing = true;
                return Transition::Fire;
            }
        } else {
            self.good += 1;
            self.bad = 0;
            if self.firing && self.good >= s.clear_after {
                self.firing = false;
                return Transition::Clear;
            }
        }
        Transition::None
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Baseline {
        Baseline {
            error_rate: 0.01,
            p95_ms: 120.0,
            p95_long_ms: 0.0,
            requests_per_minute: 300.0,
            minutes: 60,
            error_minutes: 60,
            ..Baseline::default()
        }
    }

    /// A window whose slowest 10% of requests take `p95` ms, the rest 50 ms.
    fn window(requests: u64, errors: u64, p95: f64) -> Window {
        let mut latency = Histogram::new();
        latency.record_n(50.0, requests - requests / 10);
        latency.record_n(p95, requests / 10);
        Window {
            seconds: 90.0,
            requests,
            errors,
            p95_ms: p95,
            latency,
            latest_requests: requests / 3,
            latest_seconds: 30.0,
            latest_latency: Histogram::new(),
        }
    }

    #[test]
    fn error_rate_needs_both_the_threshold_and_the_baseline() {
        let s = Settings::defaults(Kind::ErrorRate);
        let r = |w: Window, b: Baseline| read(Kind::ErrorRate, &s, &w, &b).and_then(|r| r.bad);
        assert_eq!(r(window(450, 5, 100.0), baseline()), None);
        // 6 errors in 60 requests is 10%, but within chance of a 5% bar.
        assert_eq!(r(window(60, 6, 100.0), baseline()), None);
        assert_eq!(
            r(window(450, 45, 100.0), baseline()),
            Some(Severity::Warning)
        );
        assert_eq!(
            r(window(450, 200, 100.0), baseline()),
            Some(Severity::Critical)
        );
        // Above 5% but not well above a noisy baseline of 4%.
        let noisy = Baseline {
            error_rate: 0.04,
            ..baseline()
        };
        assert_eq!(r(window(450, 45, 100.0), noisy), None);
        // Too few requests, or too little history, says nothing.
        assert!(read(Kind::ErrorRate, &s, &window(10, 10, 1.0), &baseline()).is_none());
        // Too little history: the absolute bar reads it (below).
        let young = Baseline {
            minutes: 3,
            ..baseline()
        };
        let reading = read(Kind::ErrorRate, &s, &window(450, 200, 1.0), &young).unwrap();
        assert!(reading.no_baseline);
    }

    #[test]
    fn without_a_healthy_baseline_the_absolute_bar_decides_and_says_so() {
        let s = Settings::defaults(Kind::ErrorRate);
        // A new service: no history at all; or history that was all failing
        // (no healthy minute to learn from).
        for b in [
            Baseline::default(),
            Baseline {
                error_rate: 0.0,
                error_minutes: 0,
                ..baseline()
            },
        ] {
            let half = read(Kind::ErrorRate, &s, &window(90, 45, 1.0), &b).unwrap();
            assert_eq!(half.bad, Some(Severity::Critical), "{b:?}");
            assert!(half.no_baseline);
            assert_eq!(half.threshold, NO_BASELINE_ERROR_BAR);
            assert!(
                explain(&half).contains("no healthy baseline yet"),
                "{}",
                explain(&half)
            );
            // Healthy noise of a new service does not fire: below the bar, or
            // not beyond chance just above it.
            for (requests, errors) in [(90, 3), (30, 4), (200, 12)] {
                let r = read(Kind::ErrorRate, &s, &window(requests, errors, 1.0), &b).unwrap();
                assert_eq!(r.bad, None, "{errors}/{requests}");
            }
            // The other rules have nothing to compare with.
            assert!(
                read(
                    Kind::LatencyP95,
                    &Settings::defaults(Kind::LatencyP95),
                    &window(90, 0, 900.0),
                    &Baseline::default()
                )
                .is_none()
            );
        }
    }

    #[test]
    fn latency_and_traffic_drop() {
        let s = Settings::defaults(Kind::LatencyP95);
        let bad = |p95| {
            read(Kind::LatencyP95, &s, &window(450, 0, p95), &baseline())
                .unwrap()
                .bad
        };
        // 2.5 times the baseline of 120 ms: under both bars.
        assert_eq!(bad(300.0), None);
        assert_eq!(bad(900.0), Some(Severity::Warning));
        assert_eq!(bad(2_500.0), Some(Severity::Critical));
        // Three slow requests in sixty: a p95 above the bar, but by chance.
        let mut few = window(60, 0, 50.0);
        few.latency = Histogram::new();
        few.latency.record_n(50.0, 57);
        few.latency.record_n(900.0, 3);
        few.p95_ms = 900.0;
        assert_eq!(
            read(Kind::LatencyP95, &s, &few, &baseline()).unwrap().bad,
            None
        );
        let s = Settings::defaults(Kind::TrafficDrop);
        let drop = |requests| {
            read(
                Kind::TrafficDrop,
                &s,
                &window(requests, 0, 0.0),
                &baseline(),
            )
        };
        assert_eq!(drop(400).unwrap().bad, None);
        let silent = drop(10).unwrap();
        assert_eq!(silent.bad, Some(Severity::Critical));
        assert!(explain(&silent).starts_with("6.7 requests/min over 90s, baseline 300.0/min"));
        let quiet = Baseline {
            requests_per_minute: 2.0,
            ..baseline()
        };
        assert!(read(Kind::TrafficDrop, &s, &window(0, 0, 0.0), &quiet).is_none());
    }

    #[test]
    fn the_binomial_tail_is_exact_where_the_normal_approximation_is_not() {
        // Two errors in five requests at a 5% bar: the normal approximation
        // calls it beyond chance; it happens once in 44 windows.
        assert!(significance(2, 5, 0.05) >= MIN_Z);
        assert!((binomial_tail(2, 5, 0.05) - 0.0226).abs() < 1e-4);
        assert!(!beyond_chance(2, 5, 0.05, MAX_CHANCE));
        assert!(beyond_chance(5, 5, 0.05, MAX_CHANCE));
        assert!((z_of(0.0062) - 2.5).abs() < 0.01 && (z_of(0.0002) - 3.54).abs() < 0.01);
        assert!((binomial_tail(1, 1, 0.3) - 0.3).abs() < 1e-12);
        assert_eq!(binomial_tail(0, 10, 0.5), 1.0);
        assert_eq!(binomial_tail(11, 10, 0.5), 0.0);
        let sum: f64 = (0..=20)
            .map(|k| binomial_tail(k, 20, 0.2) - binomial_tail(k + 1, 20, 0.2))
            .sum();
        assert!((sum - 1.0).abs() < 1e-9);
        // Far beyond the exact range, the normal approximation decides.
        assert!(beyond_chance(700, 10_000, 0.05, MAX_CHANCE));
        assert!(!beyond_chance(520, 10_000, 0.05, MAX_CHANCE));
    }

    /// A quiet service: 4 requests a minute, 1% errors usually.
    fn quiet(before_requests: u64, before_errors: u64) -> Baseline {
        Baseline {
            requests_per_minute: 4.0,
            before_requests,
            before_errors,
            ..baseline()
        }
    }

    #[test]
    fn a_quiet_service_is_read_over_the_longer_evidence_window() {
        let s = Settings::defaults(Kind::ErrorRate);
        let r = |w: Window, b: Baseline| read(Kind::ErrorRate, &s, &w, &b);
        // Six requests, all failing, after twelve with three failing: too few
        // for the window alone, plain over the four and a half minutes.
        let down = r(window(6, 6, 1.0), quiet(12, 3)).unwrap();
        assert_eq!(down.bad, Some(Severity::Critical));
        assert_eq!(down.seconds, 90.0 + 180.0);
        assert!(explain(&down).contains("over 270s"), "{}", explain(&down));
        // Healthy quiet traffic with a stray error is not an incident.
        assert_eq!(r(window(6, 1, 1.0), quiet(12, 0)).and_then(|r| r.bad), None);
        assert_eq!(r(window(6, 0, 1.0), quiet(12, 2)).and_then(|r| r.bad), None);
        // Nothing at all to read.
        assert!(r(window(0, 0, 1.0), quiet(0, 0)).is_none());
    }

    #[test]
    fn the_longer_window_catches_a_ramp_and_lets_an_ended_failure_clear() {
        let s = Settings::defaults(Kind::ErrorRate);
        let r = |w: Window, b: Baseline| read(Kind::ErrorRate, &s, &w, &b).unwrap();
        // 9% of 90 in the window: above the 5% bar, not beyond chance alone;
        // with the three minutes before it (11% of 180), it is.
        let ramp = Baseline {
            requests_per_minute: 60.0,
            before_requests: 180,
            before_errors: 20,
            ..baseline()
        };
        assert_eq!(
            r(
                window(90, 8, 1.0),
                Baseline {
                    before_requests: 0,
                    ..ramp
                }
            )
            .bad,
            None
        );
        let found = r(window(90, 8, 1.0), ramp);
        assert_eq!(found.bad, Some(Severity::Warning));
        assert_eq!(found.seconds, 270.0);
        // The failure ended: the window is healthy again, the minutes before
        // it are not; the reading is the window's, and good.
        let ended = Baseline {
            before_errors: 90,
            ..ramp
        };
        let after = r(window(90, 1, 1.0), ended);
        assert_eq!((after.bad, after.seconds), (None, 90.0));
    }

    #[test]
    fn a_fast_service_several_times_slower_is_a_regression_under_the_threshold() {
        let s = Settings::defaults(Kind::LatencyP95);
        let fast = Baseline {
            p95_ms: 60.0,
            ..baseline()
        };
        let r =
            |p95: f64, b: Baseline| read(Kind::LatencyP95, &s, &window(450, 0, p95), &b).unwrap();
        let slow = r(240.0, fast);
        assert_eq!(slow.bad, Some(Severity::Warning));
        assert_eq!(slow.threshold, 150.0);
        assert!(
            explain(&slow).contains("baseline 60 ms"),
            "{}",
            explain(&slow)
        );
        // Wobbles are not regressions.
        assert_eq!(r(110.0, fast).bad, None);
        // A few milliseconds more is nothing, however many times the baseline.
        let tiny = Baseline {
            p95_ms: 2.0,
            ..baseline()
        };
        assert_eq!(r(7.0, tiny).bad, None);
        assert_eq!(r(60.0, tiny).bad, Some(Severity::Warning));
        // Far off is critical, as with the absolute bar.
        assert_eq!(r(2_500.0, fast).bad, Some(Severity::Critical));
        // The current minute alone shows a sudden slowdown before the whole
        // window does: a normal minute, then 30 s of slow requests.
        let mut sudden = window(450, 0, 60.0);
        sudden.latest_latency.record_n(240.0, 50);
        let first = read(Kind::LatencyP95, &s, &sudden, &fast).unwrap();
        assert_eq!((first.bad, first.seconds), (Some(Severity::Warning), 30.0));
        // A few slow requests this minute are not enough.
        let mut few = window(450, 0, 60.0);
        few.latest_latency.record_n(50.0, 40);
        few.latest_latency.record_n(240.0, 3);
        assert_eq!(read(Kind::LatencyP95, &s, &few, &fast).unwrap().bad, None);
        // The relative bar can be turned off.
        let off = Settings {
            relative_factor: 0.0,
            ..s.clone()
        };
        let reading = read(Kind::LatencyP95, &off, &window(450, 0, 240.0), &fast).unwrap();
        assert_eq!(reading.bad, None);
    }

    #[test]
    fn a_sharp_traffic_drop_shows_in_the_current_minute_first() {
        let s = Settings::defaults(Kind::TrafficDrop);
        let b = baseline(); // 300 requests a minute
        // The previous minute was normal; 30 s into this one, nothing.
        let w = Window {
            seconds: 90.0,
            requests: 300,
            latest_requests: 0,
            latest_seconds: 30.0,
            ..Window::default()
        };
        let drop = read(Kind::TrafficDrop, &s, &w, &b).unwrap();
        assert_eq!(drop.bad, Some(Severity::Critical));
        assert_eq!(drop.seconds, 30.0);
        // Too early in the minute to say.
        let early = Window {
            requests: 300,
            latest_seconds: 10.0,
            seconds: 70.0,
            ..Window::default()
        };
        assert_eq!(read(Kind::TrafficDrop, &s, &early, &b).unwrap().bad, None);
        // Normal traffic this minute.
        let normal = Window {
            latest_requests: 140,
            ..w
        };
        assert_eq!(read(Kind::TrafficDrop, &s, &normal, &b).unwrap().bad, None);
    }

    #[test]
    fn hysteresis_fires_after_n_bad_and_clears_after_m_good() {
        let s = Settings {
            fire_after: 2,
            clear_after: 3,
            ..Settings::defaults(Kind::ErrorRate)
        };
        let mut h = Hysteresis::default();
        let seq: Vec<Transition> = [
            true, false, true, true, true, false, false, true, false, false, false,
        ]
        .into_iter()
        .map(|bad| h.feed(bad, &s))
        .collect();
        use Transition::*;
        assert_eq!(
            seq,
            [
                None, None, None, Fire, None, None, None, None, None, None, Clear
            ]
        );
    }

    #[test]
    fn the_median_of_odd_and_even_lists() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
