//! Service level objectives: what one promises, and the arithmetic of how it
//! stands (attainment, error budget, burn rates, exhaustion) from exact
//! counts of good and bad requests. Pure.

use std::time::Duration;

use time::OffsetDateTime;

use super::{
    TenantId,
    rules::{Kind, Severity},
};

named_enum! {
/// What an objective promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectiveKind {
    /// The share of requests that do not fail.
    Availability = "availability",
    /// The share of requests served within a threshold.
    Latency = "latency",
}
}

/// The periods an objective may have, in days.
pub const PERIOD_DAYS: [u32; 2] = [28, 30];

/// The windows a status reports a burn rate for, each ending now: the
/// short and long windows of the alerting scheme below.
pub const BURN_WINDOWS: [Duration; 7] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3_600),
    Duration::from_secs(2 * 3_600),
    Duration::from_secs(6 * 3_600),
    Duration::from_secs(86_400),
    Duration::from_secs(3 * 86_400),
];

/// The multi-window, multi-burn-rate scheme of the SRE workbook for a
/// 30-day period: (long window, short window, burn rate, severity). Both
/// windows must burn faster than the rate; the rates scale with the period
/// (a rate spends the same share of the budget per hour whatever its length).
pub const BURN_ALERTS: [(Duration, Duration, f64, Severity); 4] = [
    (
        Duration::from_secs(3_600),
        Duration::from_secs(5 * 60),
        14.4,
        Severity::Critical,
    ),
    (
        Duration::from_secs(6 * 3_600),
        Duration::from_secs(30 * 60),
        6.0,
        Severity::Critical,
    ),
    (
        Duration::from_secs(86_400),
        Duration::from_secs(2 * 3_600),
        3.0,
        Severity::Warning,
    ),
    (
        Duration::from_secs(3 * 86_400),
        Duration::from_secs(6 * 3_600),
        1.0,
        Severity::Warning,
    ),
];

/// The window whose burn rate projects when the budget runs out.
pub const PROJECTION_WINDOW: Duration = Duration::from_secs(3_600);

/// A service level objective of a service (or one endpoint of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Identifier.
    pub objective_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// The service.
    pub service: String,
    /// One endpoint ('' for the whole service).
    pub endpoint: String,
    /// What it promises.
    pub kind: ObjectiveKind,
    /// The share of good requests promised, in (0, 100).
    pub target_percent: f64,
    /// The rolling period, days (28 or 30).
    pub period_days: u32,
    /// Availability: 4xx answers are failures too.
    pub count_4xx: bool,
    /// Latency: good within this many milliseconds.
    pub latency_threshold_ms: f64,
    /// When it was set.
    pub created_at: OffsetDateTime,
}

impl ObjectiveKind {
    /// The kind of the burn-rate alert of an objective of this kind.
    pub fn alert_kind(self) -> Kind {
        match self {
            ObjectiveKind::Availability => Kind::AvailabilityBurn,
            ObjectiveKind::Latency => Kind::LatencyBurn,
        }
    }
}

impl Objective {
    /// The rolling period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.period_days) * 86_400)
    }

    /// The share of requests that may be bad (the error budget's rate).
    pub fn allowed_bad_share(&self) -> f64 {
        (100.0 - self.target_percent) / 100.0
    }
}

/// Requests and bad requests over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests.
    pub requests: u64,
    /// Bad requests.
    pub bad: u64,
}

impl Tally {
    /// The share of bad requests (0 without requests).
    pub fn bad_share(&self) -> f64 {
        match self.requests {
            0 => 0.0,
            n => self.bad as f64 / n as f64,
        }
    }
}

/// One window's burn rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burn {
    /// The window, ending now.
    pub window: Duration,
    /// Its requests and bad requests.
    pub tally: Tally,
    /// The bad share over the share the objective allows.
    pub rate: f64,
}

/// How an objective stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Over the period.
    pub period: Tally,
    /// The share of good requests, percent (100 without requests).
    pub attainment_percent: f64,
    /// The error budget left, percent of the budget (below 0 once overspent).
    pub budget_left_percent: f64,
    /// Bad requests the period may still hold (below 0 once overspent).
    pub budget_left_requests: i64,
    /// The budget left in minutes of the period.
    pub budget_left_minutes: f64,
    /// Per window of [`BURN_WINDOWS`].
    pub burns: Vec<Burn>,
    /// When the budget runs out at the projection window's pace (None: not
    /// being spent).
    pub exhausted_at: Option<OffsetDateTime>,
}

/// How `o` stands at `now`, given its tallies over the period and over each
/// window of [`BURN_WINDOWS`] (in that order).
pub fn standing(o: &Objective, period: Tally, windows: &[Tally], now: OffsetDateTime) -> Standing {
    let allowed = o.allowed_bad_share();
    let budget = allowed * period.requests as f64;
    // No requests yet (so none bad): the whole budget is left.
    let left_share = match budget > 0.0 {
        true => 1.0 - period.bad as f64 / budget,
        false => 1.0,
    };
    let burns: Vec<Burn> = BURN_WINDOWS
        .iter()
        .zip(windows)
        .map(|(window, tally)| Burn {
            window: *window,
            tally: *tally,
            rate: match allowed > 0.0 {
                true => tally.bad_share() / allowed,
                false => 0.0,
            },
        })
        .collect();
    // Whole requests (the product is a float: 0.1 % of 1,000,000 is 999.99...).
    let left_requests = (budget + 1e-6).floor() as i64 - period.bad as i64;
    let exhausted_at = projection(&burns, left_share, left_requests, now);
    Standing {
        period,
        attainment_percent: 100.0 * (1.0 - period.bad_share()),
        budget_left_percent: 100.0 * left_share,
        budget_left_requests: left_requests,
        budget_left_minutes: allowed * o.period().as_secs_f64() / 60.0 * left_share,
        burns,
        exhausted_at,
    }
}

/// How severe an alert `s` calls for by [`BURN_ALERTS`] (None: none): a
/// page (critical) when a page pair burns, else a ticket (warning) when a
/// ticket pair does.
pub fn alert_level(o: &Objective, s: &Standing) -> Option<Severity> {
    burning_pair(o, s).map(|p| p.severity)
}

/// A pair of [`BURN_ALERTS`] that burns, its factor scaled to the period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurningPair {
    /// The long window.
    pub long: Duration,
    /// The short window.
    pub short: Duration,
    /// The factor both windows' burn rates are over.
    pub factor: f64,
    /// What it calls for.
    pub severity: Severity,
}

/// The most severe pair of [`BURN_ALERTS`] whose two windows both burn
/// over its factor (scaled by period / 30 days), the first of equals.
pub fn burning_pair(o: &Objective, s: &Standing) -> Option<BurningPair> {
    let scale = f64::from(o.period_days) / 30.0;
    let rate = |w: Duration| s.burns.iter().find(|b| b.window == w).map(|b| b.rate);
    let mut found: Option<BurningPair> = None;
    for (long, short, factor, severity) in BURN_ALERTS {
        let factor = factor * scale;
        let over = |w| rate(w).is_some_and(|r| r > factor);
        if over(long) && over(short) && found.is_none_or(|f| severity > f.severity) {
            found = Some(BurningPair {
                long,
                short,
                factor,
                severity,
            });
        }
    }
    found
}

/// The burn rate of `window` in `s` (0 when it was not read).
pub fn rate_of(s: &Standing, window: Duration) -> f64 {
    s.burns
        .iter()
        .find(|b| b.window == window)
        .map_or(0.0, |b| b.rate)
}

/// When the budget left runs out at the projection window's rate of bad
/// requests: now if it is spent already, None if nothing bad happens.
fn projection(
    burns: &[Burn],
    left_share: f64,
    left_requests: i64,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let recent = burns.iter().find(|b| b.window == PROJECTION_WINDOW)?;
    if left_share <= 0.0 {
        return Some(now);
    }
    if recent.tally.bad == 0 {
        return None;
    }
    let per_sec = recent.tally.bad as f64 / PROJECTION_WINDOW.as_secs_f64();
    let secs = left_requests as f64 / per_sec;
    Some(now + time::Duration::seconds_f64(secs.min(400.0 * 86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(target: f64) -> Objective {
        Objective {
            objective_id: 1,
            tenant_id: TenantId(1),
            service: "checkout".into(),
            endpoint: String::new(),
            kind: ObjectiveKind::Availability,
            target_percent: target,
            period_days: 30,
            count_4xx: false,
            latency_threshold_ms: 0.0,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn tally(requests: u64, bad: u64) -> Tally {
        Tally { requests, bad }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-07 12:00 UTC);

    #[test]
    fn the_budget_is_what_the_target_allows_of_the_periods_requests() {
        // 99.9 % of 1,000,000: 1,000 bad allowed; 250 spent.
        let s = standing(
            &objective(99.9),
            tally(1_000_000, 250),
            &[tally(0, 0); 7],
            NOW,
        );
        assert!((s.attainment_percent - 99.975).abs() < 1e-9);
        assert!((s.budget_left_percent - 75.0).abs() < 1e-9);
        assert_eq!(s.budget_left_requests, 750);
        // 0.1 % of 30 days is 43.2 minutes; three quarters left.
        assert!((s.budget_left_minutes - 32.4).abs() < 1e-9);
        assert_eq!(s.exhausted_at, None, "nothing bad in the last hour");
    }

    #[test]
    fn burn_rates_compare_each_windows_bad_share_with_the_allowed_one() {
        let windows = [
            tally(1_000, 15),
            tally(6_000, 60),
            tally(12_000, 12),
            tally(24_000, 24),
            tally(72_000, 72),
            tally(288_000, 0),
            tally(0, 0),
        ];
        let s = standing(&objective(99.9), tally(1_000_000, 100), &windows, NOW);
        let rates: Vec<f64> = s
            .burns
            .iter()
            .map(|b| (b.rate * 1e6).round() / 1e6)
            .collect();
        assert_eq!(rates, [15.0, 10.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        // 900 left at 12 an hour: 75 hours.
        assert_eq!(s.exhausted_at, Some(NOW + time::Duration::hours(75)));
    }

    #[test]
    fn an_overspent_budget_is_negative_and_exhausted_now() {
        let s = standing(
            &objective(99.0),
            tally(10_000, 150),
            &[tally(100, 5); 7],
            NOW,
        );
        assert!((s.budget_left_percent + 50.0).abs() < 1e-9);
        assert_eq!(s.budget_left_requests, -50);
        assert_eq!(s.exhausted_at, Some(NOW));
    }

    #[test]
    fn a_new_objective_without_requests_has_its_whole_budget() {
        // Set mid-period on a service with no traffic yet: nothing spent.
        let s = standing(
            &objective(99.5),
            Tally::default(),
            &[Tally::default(); 7],
            NOW,
        );
        assert_eq!(s.attainment_percent, 100.0);
        assert_eq!(s.budget_left_percent, 100.0);
        assert!(s.burns.iter().all(|b| b.rate == 0.0));
        assert_eq!(s.exhausted_at, None);
    }

    /// A standing whose windows burn at these rates (by [`BURN_WINDOWS`]).
    fn burning(o: &Objective, rates: [f64; 7]) -> Standing {
        let allowed = o.allowed_bad_share();
        let windows: Vec<Tally> = rates
            .iter()
            .map(|r| tally(1_000_000, (r * allowed * 1_000_000.0).round() as u64))
            .collect();
        standing(o, tally(10_000_000, 0), &windows, NOW)
    }

    #[test]
    fn both_windows_of_a_pair_must_burn_and_a_page_outranks_a_ticket() {
        let o = objective(99.9);
        //            5m    30m   1h    2h   6h   1d   3d
        let page = [15.0, 0.9, 15.0, 0.9, 0.9, 0.9, 0.9];
        assert_eq!(
            alert_level(&o, &burning(&o, page)),
            Some(Severity::Critical)
        );
        // The hour burned, the last five minutes no longer: recovering.
        let over = [0.9, 0.9, 15.0, 0.9, 0.9, 0.9, 0.9];
        assert_eq!(alert_level(&o, &burning(&o, over)), None);
        let slow = [0.5, 6.5, 2.0, 6.5, 6.5, 3.5, 1.5];
        assert_eq!(
            alert_level(&o, &burning(&o, slow)),
            Some(Severity::Critical)
        );
        let ticket = [0.5, 0.5, 2.0, 3.5, 1.5, 3.5, 1.5];
        assert_eq!(
            alert_level(&o, &burning(&o, ticket)),
            Some(Severity::Warning)
        );
        let both = [15.0, 1.0, 15.0, 3.5, 1.5, 3.5, 1.5];
        assert_eq!(
            alert_level(&o, &burning(&o, both)),
            Some(Severity::Critical)
        );
        assert_eq!(alert_level(&o, &burning(&o, [0.9; 7])), None);
    }

    #[test]
    fn the_burning_pair_is_the_most_severe_one_first_of_equals_with_its_scaled_factor() {
        let mut o = objective(99.9);
        //            5m    30m   1h    2h   6h   1d   3d
        let slow = [0.5, 6.5, 2.0, 6.5, 6.5, 3.5, 1.5];
        let pair = burning_pair(&o, &burning(&o, slow)).unwrap();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!((pair.long, pair.short), (minutes(360), minutes(30)));
        assert_eq!((pair.factor, pair.severity), (6.0, Severity::Critical));
        // Both ticket pairs burn: the first, 1 d and 2 h, speaks.
        let ticket = [0.5, 0.5, 2.0, 3.5, 1.5, 3.5, 1.5];
        let pair = burning_pair(&o, &burning(&o, ticket)).unwrap();
        assert_eq!((pair.long, pair.short), (minutes(1_440), minutes(120)));
        assert_eq!(pair.severity, Severity::Warning);
        assert!((rate_of(&burning(&o, ticket), pair.long) - 3.5).abs() < 1e-3);
        o.period_days = 28;
        let pair = burning_pair(&o, &burning(&o, ticket)).unwrap();
        assert!((pair.factor - 2.8).abs() < 1e-9, "{pair:?}");
        assert_eq!(burning_pair(&o, &burning(&o, [0.9; 7])), None);
    }

    #[test]
    fn the_rates_scale_with_the_period() {
        // 14.4 over 30 days spends 2 % of the budget an hour; over 28 days
        // the same share is 13.44.
        let mut o = objective(99.9);
        let at_14 = [14.0, 0.9, 14.0, 0.9, 0.9, 0.9, 0.9];
        assert_eq!(alert_level(&o, &burning(&o, at_14)), None);
        o.period_days = 28;
        assert_eq!(
            alert_level(&o, &burning(&o, at_14)),
            Some(Severity::Critical)
        );
    }
}
