//! The detector's cost per evaluation at 1,000 services x 20 endpoints
//! (scripts/bench-detection.sh runs it): windows from the last two minutes'
//! rows, every rule with its hysteresis, and the baselines (once a minute,
//! from two hours of rows). Pure computation on synthetic rows; prints one
//! JSON line.

use std::{collections::HashMap, time::Instant};

use pulsyon::{
    detect::{DetectConfig, State, baselines, windows},
    stats::histogram::Histogram,
    store::detect::MinuteRow,
};
use time::{Duration, OffsetDateTime};

const SERVICES: usize = 1_000;
const ENDPOINTS: usize = 20;
const RUNS: usize = 7;

fn rows(from: OffsetDateTime, minutes: i64, histograms: bool) -> Vec<MinuteRow> {
    let mut out = Vec::new();
    let mut seed = 1u64;
    for m in 0..minutes {
        let bucket = from + Duration::minutes(m);
        for s in 0..SERVICES {
            for e in 0..=ENDPOINTS {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let count = if e == 0 { 600 } else { 30 } + (seed >> 60) as i64;
                let mut histogram = Histogram::new();
                if histograms {
                    histogram.record_n(40.0, count as u64 * 9 / 10);
                    histogram.record_n(120.0, count as u64 / 10);
                }
                out.push(MinuteRow {
                    tenant_id: 1,
                    service: format!("service-{s}"),
                    endpoint: if e == 0 {
                        String::new()
                    } else {
                        format!("/api/v1/route-{e}/{{id}}")
                    },
                    bucket,
                    count,
                    status_5xx: count / 100,
                    p95_ms: 120.0,
                    histogram,
                });
            }
        }
    }
    out
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let now = OffsetDateTime::now_utc();
    let minute = now
        - Duration::seconds(i64::from(now.second()))
        - Duration::nanoseconds(i64::from(now.nanosecond()));
    let window_from = minute - Duration::minutes(1);
    let config = DetectConfig::default();
    let history = rows(window_from - Duration::hours(2), 120, false);
    let recent = rows(window_from, 2, true);
    let overrides = HashMap::new();

    let (mut b_ms, mut w_ms, mut e_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut state = State::default();
    let mut subjects = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let base = baselines(
            &history,
            window_from - Duration::hours(24),
            window_from - Duration::hours(2),
            window_from,
        );
        b_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let win = windows(&recent, window_from, now);
        w_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let effects = state.evaluate(
            &base,
            &win,
            (now - window_from).whole_seconds() as i32,
            &overrides,
            &config,
            now,
        );
        e_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(
            effects.is_empty(),
            "healthy synthetic traffic fires nothing"
        );
        subjects = base.len();
    }
    let (b, w, e) = (median(b_ms), median(w_ms), median(e_ms));
    let interval_ms = config.interval.as_secs_f64() * 1e3;
    println!(
        "{}",
        serde_json::json!({
            "services": SERVICES,
            "endpoints": ENDPOINTS,
            "subjects": subjects,
            "baseline_rows": history.len(),
            "runs": RUNS,
            "baselines_ms": (b * 10.0).round() / 10.0,
            "windows_ms": (w * 10.0).round() / 10.0,
            "evaluate_ms": (e * 10.0).round() / 10.0,
            "share_of_interval": (w + e) / interval_ms,
            "baselines_share": b / interval_ms,
        })
    );
}
