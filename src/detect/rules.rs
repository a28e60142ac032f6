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
            if (w.requests as f64) < s.min_requests {
                return None;
            }
            let observed = w.errors as f64 / w.requests as f64;
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
            // Above the bar by more than chance: a handful of errors in a
            // small window is noise, not an incident.
            let bad = graded(observed, bar, s.critical_at)
                .filter(|_| significance(w.errors, w.requests, bar) >= MIN_Z);
            Some(Reading {
                kind,
                observed,
                baseline: if healthy { b.error_rate } else { 0.0 },
                threshold,
                no_baseline: !healthy,
                bad,
            })
        }
        Kind::LatencyP95 => {
            if (w.requests as f64) < s.min_requests {
                return None;
            }
            let observed = w.p95_ms;
            // The lower of the recent and the day-long baseline: a slow drift
            // drags the recent one along, not the other.
            let base = if b.p95_long_ms > 0.0 {
                b.p95_ms.min(b.p95_long_ms)
            } else {
                b.p95_ms
            };
            let bar = s.threshold.max(base * s.baseline_factor);
            // The p95 is above the bar when more than 5% of requests are;
            // it counts when that share is beyond chance, not a few slow
            // requests in a small window.
            let slow = w.latency.count_above(bar);
            let bad = graded(observed, bar, s.critical_at)
                .filter(|_| significance(slow, w.latency.count(), 0.05) >= MIN_Z);
            Some(Reading {
                kind,
                observed,
                baseline: base,
                threshold: s.threshold,
                no_baseline: false,
                bad,
            })
        }
        Kind::TrafficDrop => {
            if b.requests_per_minute < s.min_requests || w.seconds <= 0.0 {
                return None;
            }
            let observed = w.requests as f64 * 60.0 / w.seconds;
            let floor = b.requests_per_minute * s.threshold;
            Some(Reading {
                kind,
                observed,
                baseline: b.requests_per_minute,
                threshold: floor,
                no_baseline: false,
                bad: (observed < floor).then_some(Severity::Critical),
            })
        }
    }
}

/// The sentence that explains a reading.
pub fn explain(r: &Reading, window_secs: u64) -> String {
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    match r.kind {
        Kind::ErrorRate if r.no_baseline => format!(
            "error rate {} over {window_secs}s, no healthy baseline yet (a new service, or failing since it started), threshold {}",
            pct(r.observed),
            pct(r.threshold)
        ),
        Kind::ErrorRate => format!(
            "error rate {} over {window_secs}s, baseline {}, threshold {}",
            pct(r.observed),
            pct(r.baseline),
            pct(r.threshold)
        ),
        Kind::LatencyP95 => format!(
            "p95 latency {:.0} ms over {window_secs}s, baseline {:.0} ms, threshold {:.0} ms",
            r.observed, r.baseline, r.threshold
        ),
        Kind::TrafficDrop => format!(
            "{:.1} requests/min over {window_secs}s, baseline {:.1}/min, floor {:.1}/min",
            r.observed, r.baseline, r.threshold
        ),
    }
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
                explain(&half, 60).contains("no healthy baseline yet"),
                "{}",
                explain(&half, 60)
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
        assert_eq!(bad(400.0), None);
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
        assert!(explain(&silent, 90).starts_with("6.7 requests/min over 90s, baseline 300.0/min"));
        let quiet = Baseline {
            requests_per_minute: 2.0,
            ..baseline()
        };
        assert!(read(Kind::TrafficDrop, &s, &window(0, 0, 0.0), &quiet).is_none());
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
