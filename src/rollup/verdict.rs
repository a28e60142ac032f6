//! The health verdict of a service over a window, and the per-minute
//! objective behind uptime. Pure: the numbers come from the rollups.
//!
//! Rules, first match wins:
//! 1. fewer than `min_requests` requests in the window: no verdict;
//! 2. error rate (5xx share) at or above `down_error_rate`: down;
//! 3. traffic stopped: nothing in the last `silence` while the rest of the
//!    window averaged at least `silence_min_rate` requests a minute: down;
//! 4. error rate above `max_error_rate`: degraded;
//! 5. p95 latency above `max_p95_ms`: degraded;
//! 6. otherwise healthy.
//!
//! A minute meets the objective when its error rate is at most
//! `max_error_rate` and its p95 at most `max_p95_ms`; uptime is the share of
//! minutes with traffic that meet it.

/// What a service is held to.
#[derive(Debug, Clone, PartialEq)]
pub struct Objectives {
    /// Fewest requests in a window for a verdict.
    pub min_requests: u64,
    /// Highest acceptable 5xx share.
    pub max_error_rate: f64,
    /// 5xx share from which the service counts as down.
    pub down_error_rate: f64,
    /// Highest acceptable p95 latency, milliseconds.
    pub max_p95_ms: f64,
    /// Minutes of silence at the end of a window that mean traffic stopped.
    pub silence_minutes: u64,
    /// Requests a minute before the silence for it to count.
    pub silence_min_rate: f64,
}

impl Objectives {
    /// What a minute must meet to count towards uptime.
    pub fn minute(&self) -> crate::store::rollups::MinuteObjective {
        crate::store::rollups::MinuteObjective {
            max_error_rate: self.max_error_rate,
            max_p95_ms: self.max_p95_ms,
        }
    }
}

impl Default for Objectives {
    fn default() -> Self {
        Objectives {
            min_requests: 10,
            max_error_rate: 0.05,
            down_error_rate: 0.5,
            max_p95_ms: 1_000.0,
            silence_minutes: 5,
            silence_min_rate: 1.0,
        }
    }
}

/// Verdict of a verdict (mirrors `pulsyon.v1.HealthStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough data.
    Unknown,
    /// Within the objectives.
    Healthy,
    /// An objective is missed.
    Degraded,
    /// Not serving.
    Down,
}

/// The numbers a verdict is made from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    /// Length of the window in minutes.
    pub minutes: u64,
    /// Requests in the window.
    pub requests: u64,
    /// 5xx responses in the window.
    pub errors: u64,
    /// Requests in the last `silence_minutes` of the window.
    pub recent_requests: u64,
    /// p95 latency over the window, milliseconds.
    pub p95_ms: f64,
}

impl WindowStats {
    /// 5xx share, 0 when there were no requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The verdict and the rule that decided it, in words.
pub fn judge(s: &WindowStats, o: &Objectives) -> (Verdict, String) {
    if s.requests < o.min_requests {
        return (
            Verdict::Unknown,
            format!(
                "{} requests in the window, fewer than the {} a verdict needs",
                s.requests, o.min_requests
            ),
        );
    }
    let rate = s.error_rate();
    if rate >= o.down_error_rate {
        return (
            Verdict::Down,
            format!("error rate {} >= {}", pct(rate), pct(o.down_error_rate)),
        );
    }
    let before_minutes = s.minutes.saturating_sub(o.silence_minutes);
    if before_minutes > 0 && s.recent_requests == 0 {
        let before_rate = (s.requests - s.recent_requests) as f64 / before_minutes as f64;
        if before_rate >= o.silence_min_rate {
            return (
                Verdict::Down,
                format!(
                    "no requests in the last {} minutes after {:.1} a minute before",
                    o.silence_minutes, before_rate
                ),
            );
        }
    }
    if rate > o.max_error_rate {
        return (
            Verdict::Degraded,
            format!("error rate {} > {}", pct(rate), pct(o.max_error_rate)),
        );
    }
    if s.p95_ms > o.max_p95_ms {
        return (
            Verdict::Degraded,
            format!("p95 latency {:.1} ms > {:.0} ms", s.p95_ms, o.max_p95_ms),
        );
    }
    (
        Verdict::Healthy,
        format!(
            "error rate {} <= {} and p95 latency {:.1} ms <= {:.0} ms",
            pct(rate),
            pct(o.max_error_rate),
            s.p95_ms,
            o.max_p95_ms
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(requests: u64, errors: u64, recent: u64, p95: f64) -> WindowStats {
        WindowStats {
            minutes: 60,
            requests,
            errors,
            recent_requests: recent,
            p95_ms: p95,
        }
    }

    #[test]
    fn each_rule_decides_in_order() {
        let o = Objectives::default();
        let verdict = |s: WindowStats| judge(&s, &o);
        assert_eq!(verdict(stats(3, 3, 3, 10.0)).0, Verdict::Unknown);
        let (status, why) = verdict(stats(1_000, 600, 100, 10.0));
        assert_eq!(
            (status, why.as_str()),
            (Verdict::Down, "error rate 60.0% >= 50.0%")
        );
        let (status, why) = verdict(stats(1_000, 0, 0, 10.0));
        assert_eq!(status, Verdict::Down);
        assert!(
            why.starts_with("no requests in the last 5 minutes"),
            "{why}"
        );
        let (status, why) = verdict(stats(1_000, 72, 100, 10.0));
        assert_eq!(
            (status, why.as_str()),
            (Verdict::Degraded, "error rate 7.2% > 5.0%")
        );
        let (status, why) = verdict(stats(1_000, 10, 100, 1_500.0));
        assert_eq!(
            (status, why.as_str()),
            (Verdict::Degraded, "p95 latency 1500.0 ms > 1000 ms")
        );
        assert_eq!(verdict(stats(1_000, 10, 100, 150.0)).0, Verdict::Healthy);
        // Too little traffic before a quiet spell is not an outage.
        assert_eq!(verdict(stats(20, 0, 0, 10.0)).0, Verdict::Healthy);
    }
}
