//! The vocabulary of detection rules: the kinds, severities and the settings
//! (defaults and overrides) of each rule. Pure data; the rules themselves are
//! in `detect::rules`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::TenantId;

named_enum! {
/// What an alert is of: the three detection rules, and the system's own
/// alert that a notification receiver keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 5xx share above a threshold and well above its baseline.
    ErrorRate = "error_rate",
    /// p95 latency above a threshold and well above its baseline.
    LatencyP95 = "latency_p95",
    /// Steady traffic went (nearly) silent.
    TrafficDrop = "traffic_drop",
    /// A notification receiver failed every attempt for longer than its
    /// tenant's fallback threshold (not a detection rule: the notify stage
    /// raises it, and its incident goes to the fallback receiver).
    ReceiverFailing = "receiver_failing",
    /// An availability objective's error budget burns too fast (the
    /// detector's leader evaluates objectives too; not a rule).
    AvailabilityBurn = "availability_burn",
    /// A latency objective's error budget burns too fast.
    LatencyBurn = "latency_burn",
}
}

impl Kind {
    /// The detection rules (what the detector reads and settings tune).
    pub const RULES: [Kind; 3] = [Kind::ErrorRate, Kind::LatencyP95, Kind::TrafficDrop];

    /// Whether it is a detection rule.
    pub fn is_rule(self) -> bool {
        Kind::RULES.contains(&self)
    }
}

named_enum! {
/// Severity of an alert or incident, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Info = "info",
    /// An objective is missed.
    Warning = "warning",
    /// Users are failing now.
    Critical = "critical",
}
}

/// Settings of one rule. Overrides (tenant-wide, then per service) replace
/// the fields they set; see [`Settings::overlay`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Absolute threshold: a ratio (error rate), milliseconds (p95) or, for
    /// traffic drop, the share of the baseline below which traffic counts as dropped.
    pub threshold: f64,
    /// How far above the baseline the value must be (a factor); unused by traffic drop.
    pub baseline_factor: f64,
    /// Fewest requests in the window (error rate, p95), or fewest requests a
    /// minute in the baseline (traffic drop: what counts as steady).
    pub min_requests: f64,
    /// Value from which the alert is critical instead of warning (error
    /// rate, p95); traffic drop is always critical.
    pub critical_at: f64,
    /// Consecutive bad evaluations before the alert fires.
    pub fire_after: u32,
    /// Consecutive good evaluations before it clears.
    pub clear_after: u32,
    /// When set, every alert of the rule has this severity (no grading).
    pub severity: Option<Severity>,
    /// Latency p95: a p95 this many times its baseline is bad even under
    /// `threshold` (0: no relative bar).
    pub relative_factor: f64,
    /// Latency p95: the least rise above the baseline (ms) the relative bar asks for.
    pub relative_min: f64,
}

/// A partial [`Settings`], as stored in `detection_rules.settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Override {
    /// See [`Settings::enabled`].
    pub enabled: Option<bool>,
    /// See [`Settings::threshold`].
    pub threshold: Option<f64>,
    /// See [`Settings::baseline_factor`].
    pub baseline_factor: Option<f64>,
    /// See [`Settings::min_requests`].
    pub min_requests: Option<f64>,
    /// See [`Settings::critical_at`].
    pub critical_at: Option<f64>,
    /// See [`Settings::fire_after`].
    pub fire_after: Option<u32>,
    /// See [`Settings::clear_after`].
    pub clear_after: Option<u32>,
    /// See [`Settings::severity`].
    pub severity: Option<Severity>,
    /// See [`Settings::relative_factor`].
    pub relative_factor: Option<f64>,
    /// See [`Settings::relative_min`].
    pub relative_min: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::defaults(Kind::ErrorRate)
    }
}

impl Settings {
    /// The defaults of a rule.
    pub fn defaults(kind: Kind) -> Settings {
        let base = Settings {
            enabled: true,
            threshold: 0.0,
            baseline_factor: 1.0,
            min_requests: 0.0,
            critical_at: f64::INFINITY,
            fire_after: 2,
            clear_after: 6,
            severity: None,
            relative_factor: 0.0,
            relative_min: 0.0,
        };
        match kind {
            Kind::ErrorRate => Settings {
                threshold: 0.05,
                baseline_factor: 3.0,
                min_requests: 20.0,
                critical_at: 0.25,
                ..base
            },
            Kind::LatencyP95 => Settings {
                threshold: 500.0,
                baseline_factor: 2.0,
                min_requests: 20.0,
                critical_at: 2_000.0,
                relative_factor: 2.5,
                relative_min: 50.0,
                ..base
            },
            Kind::TrafficDrop => Settings {
                threshold: 0.1,
                min_requests: 10.0,
                critical_at: 0.0,
                ..base
            },
            Kind::ReceiverFailing | Kind::AvailabilityBurn | Kind::LatencyBurn => Settings {
                enabled: false,
                ..base
            },
        }
    }

    /// These settings with the fields `o` sets replaced.
    pub fn overlay(mut self, o: &Override) -> Settings {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        take!(
            enabled,
            threshold,
            baseline_factor,
            min_requests,
            critical_at,
            fire_after,
            clear_after,
            relative_factor,
            relative_min
        );
        if o.severity.is_some() {
            self.severity = o.severity;
        }
        self
    }

    /// Whether the settings make sense; the error names the field.
    pub fn check(&self, kind: Kind) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name}: must be a number of at least 0"))
            }
        };
        positive("threshold", self.threshold)?;
        positive("baseline_factor", self.baseline_factor)?;
        positive("min_requests", self.min_requests)?;
        positive("relative_factor", self.relative_factor)?;
        positive("relative_min_ms", self.relative_min)?;
        if self.relative_factor > 0.0 && self.relative_factor < 1.0 {
            return Err("relative_factor: 0 (off) or at least 1".into());
        }
        if self.critical_at.is_nan() || self.critical_at < 0.0 {
            return Err("critical_at: must be at least 0".into());
        }
        if matches!(kind, Kind::ErrorRate | Kind::TrafficDrop) && self.threshold > 1.0 {
            return Err("threshold: a share, 0 to 1, for this rule".into());
        }
        if self.fire_after == 0 || self.clear_after == 0 {
            return Err("fire_after and clear_after: at least 1".into());
        }
        Ok(())
    }
}

/// Rule overrides, tenant-wide (service '') and per service.
pub type Overrides = HashMap<(TenantId, String, Kind), Override>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let o: Override = serde_json::from_str(r#"{"threshold": 0.1, "fire_after": 4}"#).unwrap();
        let s = Settings::defaults(Kind::ErrorRate).overlay(&o);
        assert_eq!((s.threshold, s.fire_after, s.clear_after), (0.1, 4, 6));
        assert!(serde_json::from_str::<Override>(r#"{"treshold": 1}"#).is_err());
        assert!(
            Settings {
                threshold: 2.0,
                ..s.clone()
            }
            .check(Kind::ErrorRate)
            .is_err()
        );
        assert!(s.check(Kind::ErrorRate).is_ok());
    }
}
