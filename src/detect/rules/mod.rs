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
        Kind::ErrorRate => error_rate(s, w, b),
        Kind::LatencyP95 => latency_p95(s, w, b),
        Kind::TrafficDrop => traffic_drop(s, w, b),
        Kind::ReceiverFailing | Kind::AvailabilityBurn | Kind::LatencyBurn => None,
    }
}

/// The error rate against the higher of the threshold and the baseline's
/// (or, without a healthy baseline, an absolute bar), over the window and,
/// for a quiet or ramping subject, the minutes before it.
fn error_rate(s: &Settings, w: &Window, b: &Baseline) -> Option<Reading> {
    let kind = Kind::ErrorRate;
    let healthy = b.minutes >= MIN_BASELINE_MINUTES && b.error_minutes >= MIN_BASELINE_MINUTES;
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
    let long = (b.before_requests > 0 && long_requests >= EVIDENCE_MIN_REQUESTS && still_failing)
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

/// The p95 latency against the lower of an absolute and a relative bar,
/// over the window and, when it is not bad, the current minute.
fn latency_p95(s: &Settings, w: &Window, b: &Baseline) -> Option<Reading> {
    let kind = Kind::LatencyP95;
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

/// Requests per minute against a share of the baseline's, over the window
/// and the current minute.
fn traffic_drop(s: &Settings, w: &Window, b: &Baseline) -> Option<Reading> {
    let kind = Kind::TrafficDrop;
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
    if w.latest_seconds >= LATEST_MIN_SECONDS && expects(w.latest_seconds) >= TRAFFIC_MIN_EXPECTED {
        let latest = reading(w.latest_requests, w.latest_seconds);
        if latest.bad.is_some() {
            return Some(latest);
        }
    }
    Some(whole)
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
mod tests;
