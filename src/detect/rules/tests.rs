//! The rules' arithmetic, case by case.

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
    let r = |p95: f64, b: Baseline| read(Kind::LatencyP95, &s, &window(450, 0, p95), &b).unwrap();
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
