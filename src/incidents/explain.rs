//! The sentences people read: an alert's explanation (observed, baseline,
//! threshold, window) and an incident's title. One place, so the detector's
//! log, the store's titles, Watch and the backtest say the same thing.

use time::OffsetDateTime;

use crate::domain::{
    incident::{Alert, Grouping},
    objective::{self, BurningPair, Objective, ObjectiveKind, Standing},
    rules::{Kind, Severity},
};

/// The sentence explaining a reading of `kind` over `window_secs`.
pub fn sentence(
    kind: Kind,
    observed: f64,
    baseline: f64,
    no_baseline: bool,
    threshold: f64,
    window_secs: u64,
) -> String {
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    match kind {
        Kind::ErrorRate if no_baseline => format!(
            "error rate {} over {window_secs}s, no healthy baseline yet (a new service, or failing since it started), threshold {}",
            pct(observed),
            pct(threshold)
        ),
        Kind::ErrorRate => format!(
            "error rate {} over {window_secs}s, baseline {}, threshold {}",
            pct(observed),
            pct(baseline),
            pct(threshold)
        ),
        Kind::LatencyP95 => format!(
            "p95 latency {observed:.0} ms over {window_secs}s, baseline {baseline:.0} ms, threshold {threshold:.0} ms"
        ),
        Kind::TrafficDrop => format!(
            "{observed:.1} requests/min over {window_secs}s, baseline {baseline:.1}/min, floor {threshold:.1}/min"
        ),
        Kind::ReceiverFailing => format!(
            "receiver failed every delivery attempt for {} (fallback after {}): its notifications are not arriving",
            span(observed),
            span(threshold)
        ),
        // An objective's alert says more in its `detail`; this is what its
        // fields alone say.
        Kind::AvailabilityBurn | Kind::LatencyBurn => format!(
            "{} error budget burning at {observed:.1}x over {}, alert above {threshold:.1}x",
            if kind == Kind::LatencyBurn {
                "latency"
            } else {
                "availability"
            },
            span(window_secs as f64)
        ),
    }
}

/// `secs` as people read a span: `45 s`, `12 min`, `3.5 h`.
fn span(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7_200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3_600.0),
    }
}

/// A burn window as the SRE workbook names it: `5m`, `1h`, `3d`.
fn window(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{}m", s / 60),
    }
}

/// The sentence explaining an alert.
pub fn alert(a: &Alert) -> String {
    if !a.detail.is_empty() {
        return a.detail.clone();
    }
    sentence(
        a.kind,
        a.observed,
        a.baseline,
        a.no_baseline,
        a.threshold,
        a.window_secs.max(0) as u64,
    )
}

/// What an objective's burn-rate alert says: the pair of windows that burns
/// and its factor, the budget spent and left, the burn rate per window, and
/// when the budget runs out at the last hour's pace.
pub fn objective_burn(
    o: &Objective,
    s: &Standing,
    pair: &BurningPair,
    now: OffsetDateTime,
) -> String {
    let what = match o.kind {
        ObjectiveKind::Availability => "availability",
        ObjectiveKind::Latency => "latency",
    };
    let level = match pair.severity {
        Severity::Critical => "page",
        _ => "ticket",
    };
    let windows: Vec<String> = s
        .burns
        .iter()
        .map(|b| format!("{} {:.1}x", window(b.window), b.rate))
        .collect();
    let runs_out = match s.exhausted_at {
        Some(at) if at <= now => "the budget is spent".to_owned(),
        Some(at) => format!(
            "at the last hour's pace the budget runs out in {}",
            match (at - now).as_seconds_f64() {
                s if s >= 2.0 * 86_400.0 => format!("{:.1} days", s / 86_400.0),
                s => span(s),
            }
        ),
        None => "nothing bad in the last hour".to_owned(),
    };
    format!(
        "{what} objective {}% over {} days: error budget burning at {:.1}x over {} and {:.1}x over {} ({level} above {:.1}x); {:.1}% of the budget spent, {} bad requests left; {runs_out}; burn rate {}",
        o.target_percent,
        o.period_days,
        objective::rate_of(s, pair.long),
        window(pair.long),
        objective::rate_of(s, pair.short),
        window(pair.short),
        pair.factor,
        100.0 - s.budget_left_percent,
        s.budget_left_requests.max(0),
        windows.join(", ")
    )
}

/// The title of the incident `a` opens, escalates or reopens: the grouping's
/// own, or the subject and the alert's explanation.
pub fn title(a: &Alert, grouping: Grouping) -> String {
    if let Grouping::AllServices { services } = grouping {
        return format!(
            "all {services} services stopped sending at once: one sender (or its path to Pulsyon) stopped, not {services} outages"
        );
    }
    let subject = if a.endpoint.is_empty() {
        a.service.clone()
    } else {
        format!("{} {}", a.service, a.endpoint)
    };
    format!("{subject}: {}", alert(a))
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{TenantId, rules::Severity};

    fn error_alert(endpoint: &str, no_baseline: bool) -> Alert {
        Alert {
            alert_id: 0,
            tenant_id: TenantId(1),
            incident_id: None,
            service: "api".into(),
            endpoint: endpoint.into(),
            kind: Kind::ErrorRate,
            severity: Severity::Critical,
            observed: 0.3,
            baseline: 0.004,
            no_baseline,
            threshold: 0.05,
            window_secs: 90,
            fired_at: OffsetDateTime::UNIX_EPOCH,
            cleared_at: None,
            detail: String::new(),
        }
    }

    #[test]
    fn titles_name_the_subject_and_explain_the_numbers() {
        assert_eq!(
            title(&error_alert("", false), Grouping::Service),
            "api: error rate 30.0% over 90s, baseline 0.4%, threshold 5.0%"
        );
        assert_eq!(
            title(&error_alert("/pay", true), Grouping::Service),
            "api /pay: error rate 30.0% over 90s, no healthy baseline yet (a new service, or failing since it started), threshold 5.0%"
        );
        assert!(
            title(
                &error_alert("", false),
                Grouping::AllServices { services: 8 }
            )
            .starts_with("all 8 services stopped sending at once")
        );
    }
}
