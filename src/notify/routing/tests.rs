use time::macros::datetime;

use super::*;
use crate::domain::{
    TenantId,
    notify::{EscalationStep, Route, SilenceKind},
};

fn subject(service: &str, severity: Severity, alerts: &[(&str, Kind)]) -> Subject {
    Subject {
        incident_id: 7,
        service: service.into(),
        severity,
        alerts: alerts.iter().map(|(e, k)| (e.to_string(), *k)).collect(),
        resolved: false,
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn globs_take_stars_and_question_marks() {
    for (p, t) in [
        ("*", ""),
        ("pay*", "payments"),
        ("*ments", "payments"),
        ("p?y*s", "payments"),
        ("/api/*/orders", "/api/v2/orders"),
        ("a*b*c", "aXXbYYc"),
        ("", ""),
    ] {
        assert!(glob(p, t), "{p} ~ {t}");
    }
    for (p, t) in [
        ("pay", "payments"),
        ("p?y", "py"),
        ("a*b*c", "aXXbYY"),
        ("", "x"),
        ("*x", "xy"),
    ] {
        assert!(!glob(p, t), "{p} !~ {t}");
    }
}

#[test]
fn routes_are_tried_in_order_with_continue_and_the_default() {
    let routes = Routes {
        routes: vec![
            Route {
                matchers: Matchers {
                    services: names(&["pay*"]),
                    ..Default::default()
                },
                receivers: names(&["payments-team"]),
                continue_matching: true,
                ..Default::default()
            },
            Route {
                matchers: Matchers {
                    severities: vec![Severity::Critical],
                    ..Default::default()
                },
                receivers: names(&["pager"]),
                changes: vec![UpdateKind::Opened, UpdateKind::Reopened],
                ..Default::default()
            },
            Route {
                matchers: Matchers {
                    kinds: vec![Kind::LatencyP95],
                    endpoints: names(&["/search*"]),
                    ..Default::default()
                },
                receivers: names(&["search-team"]),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let every = names(&["payments-team", "pager", "search-team", "ops"]);
    let pay = subject("payments", Severity::Critical, &[("", Kind::ErrorRate)]);
    assert_eq!(
        chosen(&routes, &pay, UpdateKind::Opened, &every),
        names(&["payments-team", "pager"])
    );
    // The second route sends only openings; the first still the acknowledgement.
    assert_eq!(
        chosen(&routes, &pay, UpdateKind::Acknowledged, &every),
        names(&["payments-team"])
    );
    let search = subject(
        "search",
        Severity::Warning,
        &[("/search/q", Kind::LatencyP95)],
    );
    assert_eq!(
        chosen(&routes, &search, UpdateKind::Resolved, &every),
        names(&["search-team"])
    );
    // No route matches: the default route, every receiver when it names none.
    let other = subject("mail", Severity::Warning, &[("", Kind::ErrorRate)]);
    assert_eq!(chosen(&routes, &other, UpdateKind::Opened, &every), every);
    let named = Routes {
        default_receivers: names(&["ops"]),
        ..routes.clone()
    };
    assert_eq!(
        chosen(&named, &other, UpdateKind::Opened, &every),
        names(&["ops"])
    );
    // Another alert joining is never sent by the default.
    assert!(chosen(&named, &other, UpdateKind::AlertAdded, &every).is_empty());
    // No routes at all: every sent change to every receiver.
    assert_eq!(
        chosen(&Routes::default(), &other, UpdateKind::Resolved, &every),
        every
    );
}

/// The names `select` picks.
fn chosen(routes: &Routes, s: &Subject, change: UpdateKind, every: &[String]) -> Vec<String> {
    select(routes, s, change, every)
        .into_iter()
        .map(|r| r.name)
        .collect()
}

#[test]
fn a_receiver_is_held_by_the_window_of_the_first_route_naming_it() {
    let routes = Routes {
        routes: vec![
            Route {
                receivers: names(&["team"]),
                group_secs: 10,
                continue_matching: true,
                ..Default::default()
            },
            Route {
                receivers: names(&["team", "pager"]),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let s = subject("payments", Severity::Critical, &[("", Kind::ErrorRate)]);
    let got = select(&routes, &s, UpdateKind::Opened, &[]);
    let windows: Vec<(&str, u64)> = got
        .iter()
        .map(|r| (r.name.as_str(), r.group_secs))
        .collect();
    assert_eq!(windows, [("team", 10), ("pager", 0)]);
}

#[test]
fn escalation_steps_and_repeats_fall_due_with_time() {
    let routes = Routes {
        routes: vec![Route {
            receivers: names(&["team"]),
            escalation: vec![
                EscalationStep {
                    after_secs: 300,
                    receivers: names(&["lead"]),
                },
                EscalationStep {
                    after_secs: 900,
                    receivers: names(&["director"]),
                },
            ],
            repeat_secs: 600,
            ..Default::default()
        }],
        ..Default::default()
    };
    let s = subject("payments", Severity::Critical, &[]);
    assert!(due(&routes, &s, 60).is_empty());
    let at_5m = due(&routes, &s, 300);
    assert_eq!(
        at_5m,
        vec![Due {
            reason: "escalation:0:0".into(),
            receivers: names(&["lead"])
        }]
    );
    let at_16m: Vec<String> = due(&routes, &s, 960)
        .into_iter()
        .map(|d| d.reason)
        .collect();
    assert_eq!(at_16m, ["escalation:0:0", "escalation:0:1", "repeat:0:1"]);
}

fn silence(matchers: Matchers) -> Silence {
    Silence {
        silence_id: 1,
        tenant_id: TenantId(1),
        matchers,
        kind: SilenceKind::Silence,
        starts_at: datetime!(2026-12-01 00:00 UTC),
        ends_at: Some(datetime!(2026-12-31 00:00 UTC)),
        recurrence: None,
        until_resolved: None,
        created_by: "ana".into(),
        comment: "".into(),
        created_at: datetime!(2026-12-01 00:00 UTC),
        expired_at: None,
    }
}

#[test]
fn silences_hold_only_what_they_match_while_active() {
    let s = subject("payments", Severity::Critical, &[("", Kind::ErrorRate)]);
    let now = datetime!(2026-12-07 10:00 UTC);
    let mut sil = silence(Matchers {
        services: names(&["pay*"]),
        ..Default::default()
    });
    assert!(silences(&sil, &s, now));
    assert!(!silences(
        &sil,
        &subject("mail", Severity::Critical, &[]),
        now
    ));
    assert!(!silences(&sil, &s, datetime!(2027-01-01 00:00 UTC)));
    sil.expired_at = Some(datetime!(2026-12-07 09:00 UTC));
    assert!(!silences(&sil, &s, now));
    // Until this incident resolves.
    let mut until = silence(Matchers::default());
    until.ends_at = None;
    until.until_resolved = Some(7);
    assert!(silences(&until, &s, now));
    assert!(!silences(
        &until,
        &Subject {
            resolved: true,
            ..s.clone()
        },
        now
    ));
    assert!(!silences(
        &until,
        &Subject {
            incident_id: 8,
            ..s.clone()
        },
        now
    ));
}

#[test]
fn recurring_windows_follow_weekdays_and_hours_in_their_time_zone() {
    // Weeknights 22:00 to 06:00 in Paris (UTC+1 in December).
    let nights = Recurrence {
        weekdays: vec![1, 2, 3, 4, 5],
        from_minute: 22 * 60,
        to_minute: 6 * 60,
        time_zone: "Europe/Paris".into(),
    };
    // Monday 2026-12-07 21:30 UTC = 22:30 Paris: in.
    assert!(in_hours(&nights, datetime!(2026-12-07 21:30 UTC)));
    // Tuesday 04:00 UTC = 05:00 Paris, the Monday night's tail: in.
    assert!(in_hours(&nights, datetime!(2026-12-08 04:00 UTC)));
    // Monday 12:00 UTC: out.
    assert!(!in_hours(&nights, datetime!(2026-12-07 12:00 UTC)));
    // Saturday 2026-12-12 22:30 Paris: not a weekday it starts on.
    assert!(!in_hours(&nights, datetime!(2026-12-12 21:30 UTC)));
    // Business hours in New York (UTC-5): 09:00-17:00.
    let office = Recurrence {
        weekdays: vec![],
        from_minute: 9 * 60,
        to_minute: 17 * 60,
        time_zone: "America/New_York".into(),
    };
    assert!(in_hours(&office, datetime!(2026-12-07 15:00 UTC)));
    assert!(!in_hours(&office, datetime!(2026-12-07 13:00 UTC)));
    assert!(valid_time_zone("Europe/Paris"));
    assert!(!valid_time_zone("Mars/Olympus_Mons"));
}
