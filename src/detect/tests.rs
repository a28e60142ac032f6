//! The detector's evaluation, one promise per test: when an alert fires,
//! clears, escalates, groups, and what is not read at all.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::*;
use crate::domain::{
    TenantId,
    incident::Grouping,
    rules::{Kind, Overrides, Severity},
};

const TENANT: TenantId = TenantId(7);

fn service(name: &str) -> Subject {
    Subject {
        tenant: TENANT,
        service: name.into(),
        endpoint: String::new(),
    }
}

fn endpoint(name: &str, path: &str) -> Subject {
    Subject {
        endpoint: path.into(),
        ..service(name)
    }
}

/// Two hours of a healthy service: 100 requests a minute, 1% errors.
fn steady() -> Baseline {
    Baseline {
        error_rate: 0.01,
        error_minutes: 120,
        p95_ms: 100.0,
        p95_long_ms: 100.0,
        requests_per_minute: 100.0,
        minutes: 120,
        before_requests: 300,
        before_errors: 3,
    }
}

/// A minute of traffic with `errors` of `requests` failing.
fn minute(requests: u64, errors: u64) -> Window {
    Window {
        seconds: 60.0,
        requests,
        errors,
        p95_ms: 100.0,
        ..Window::default()
    }
}

struct Run {
    state: State,
    config: DetectConfig,
    overrides: Overrides,
    now: OffsetDateTime,
}

impl Run {
    fn new() -> Run {
        Run {
            state: State::default(),
            config: DetectConfig::default(),
            overrides: Overrides::new(),
            now: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        }
    }

    /// One evaluation; fired alerts are remembered as the detector does.
    fn step(
        &mut self,
        baselines: &HashMap<Subject, Baseline>,
        windows: &HashMap<Subject, Window>,
    ) -> Vec<Effect> {
        self.now += time::Duration::seconds(5);
        let effects = self.state.evaluate(
            baselines,
            windows,
            60,
            &self.overrides,
            &self.config,
            self.now,
        );
        for effect in &effects {
            match effect {
                Effect::Fire(alert, _) => {
                    self.state
                        .firing
                        .insert((Subject::of_alert(alert), alert.kind), (1, alert.severity));
                }
                Effect::Clear(subject, kind) => {
                    self.state.firing.remove(&(subject.clone(), *kind));
                }
            }
        }
        effects
    }
}

fn fired(effects: &[Effect]) -> Vec<(String, Kind, Severity, Grouping)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Fire(a, g) => Some((a.service.clone(), a.kind, a.severity, *g)),
            Effect::Clear(..) => None,
        })
        .collect()
}

fn cleared(effects: &[Effect]) -> Vec<(Subject, Kind)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Clear(s, k) => Some((s.clone(), *k)),
            Effect::Fire(..) => None,
        })
        .collect()
}

#[test]
fn an_error_spike_fires_after_two_bad_evaluations_and_clears_after_six_good_ones() {
    let mut run = Run::new();
    let baselines = HashMap::from([(service("checkout"), steady())]);
    let bad = HashMap::from([(service("checkout"), minute(100, 50))]);
    assert!(
        run.step(&baselines, &bad).is_empty(),
        "one bad reading is not enough"
    );
    assert_eq!(
        fired(&run.step(&baselines, &bad)),
        vec![(
            "checkout".into(),
            Kind::ErrorRate,
            Severity::Critical,
            Grouping::Service
        )]
    );
    assert!(
        run.step(&baselines, &bad).is_empty(),
        "a firing alert fires once"
    );
    let good = HashMap::from([(service("checkout"), minute(100, 1))]);
    for _ in 0..5 {
        assert!(run.step(&baselines, &good).is_empty());
    }
    assert_eq!(
        cleared(&run.step(&baselines, &good)),
        vec![(service("checkout"), Kind::ErrorRate)]
    );
}

#[test]
fn a_warning_that_gets_worse_is_replaced_by_a_critical_alert() {
    let mut run = Run::new();
    let baselines = HashMap::from([(service("checkout"), steady())]);
    let warning = HashMap::from([(service("checkout"), minute(200, 30))]);
    run.step(&baselines, &warning);
    assert_eq!(
        fired(&run.step(&baselines, &warning))[0].2,
        Severity::Warning
    );
    let critical = HashMap::from([(service("checkout"), minute(200, 120))]);
    let effects = run.step(&baselines, &critical);
    assert_eq!(
        cleared(&effects),
        vec![(service("checkout"), Kind::ErrorRate)]
    );
    assert_eq!(fired(&effects)[0].2, Severity::Critical);
}

#[test]
fn a_new_service_failing_from_its_first_minute_is_read_without_a_baseline() {
    let mut run = Run::new();
    let baselines = HashMap::new();
    let windows = HashMap::from([(service("fresh"), minute(100, 60))]);
    run.step(&baselines, &windows);
    let effects = run.step(&baselines, &windows);
    let alert = effects
        .iter()
        .find_map(|e| match e {
            Effect::Fire(a, _) => Some(a),
            Effect::Clear(..) => None,
        })
        .expect("an alert");
    assert_eq!((alert.kind, alert.no_baseline), (Kind::ErrorRate, true));
    // Nothing but the error rate can be read without a baseline.
    assert_eq!(fired(&effects).len(), 1);
}

#[test]
fn every_steady_service_of_a_tenant_going_silent_fires_grouped_as_one() {
    let mut run = Run::new();
    let baselines = HashMap::from([
        (service("checkout"), steady()),
        (service("search"), steady()),
    ]);
    let silence = HashMap::new();
    run.step(&baselines, &silence);
    let mut got = fired(&run.step(&baselines, &silence));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let all = Grouping::AllServices { services: 2 };
    assert_eq!(
        got,
        vec![
            (
                "checkout".into(),
                Kind::TrafficDrop,
                Severity::Critical,
                all
            ),
            ("search".into(), Kind::TrafficDrop, Severity::Critical, all),
        ]
    );
}

#[test]
fn one_service_going_silent_while_another_goes_on_is_its_own() {
    let mut run = Run::new();
    let baselines = HashMap::from([
        (service("checkout"), steady()),
        (service("search"), steady()),
    ]);
    let windows = HashMap::from([(service("search"), minute(100, 1))]);
    run.step(&baselines, &windows);
    assert_eq!(
        fired(&run.step(&baselines, &windows)),
        vec![(
            "checkout".into(),
            Kind::TrafficDrop,
            Severity::Critical,
            Grouping::Service
        )]
    );
}

#[test]
fn an_endpoint_too_quiet_for_its_own_baseline_is_not_read() {
    let mut run = Run::new();
    let quiet = Baseline {
        requests_per_minute: 1.0,
        ..steady()
    };
    let subject = endpoint("checkout", "/pay");
    let baselines = HashMap::from([(subject.clone(), quiet)]);
    let windows = HashMap::from([(subject, minute(100, 100))]);
    for _ in 0..5 {
        assert!(run.step(&baselines, &windows).is_empty());
    }
}

#[test]
fn a_firing_alert_whose_subject_vanished_clears() {
    let mut run = Run::new();
    run.state
        .firing
        .insert((service("gone"), Kind::ErrorRate), (1, Severity::Warning));
    assert_eq!(
        cleared(&run.step(&HashMap::new(), &HashMap::new())),
        vec![(service("gone"), Kind::ErrorRate)]
    );
}

#[test]
fn a_tenant_override_turns_a_rule_off() {
    let mut run = Run::new();
    run.overrides.insert(
        (TENANT, String::new(), Kind::ErrorRate),
        crate::domain::rules::Override {
            enabled: Some(false),
            ..Default::default()
        },
    );
    let baselines = HashMap::from([(service("checkout"), steady())]);
    let bad = HashMap::from([(service("checkout"), minute(100, 50))]);
    for _ in 0..4 {
        assert!(fired(&run.step(&baselines, &bad)).is_empty());
    }
}
