//! The incident lifecycle as pure decisions: what a firing alert does to its
//! incident (join, escalate, reopen within the window, open) and when a quiet
//! incident resolves by itself. The store's transactions and the backtest's
//! replay both ask these functions, so the live detector and a replay follow
//! one policy. No I/O.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::{
    incident::{Decision, Existing},
    rules::Severity,
};

/// The lifecycle's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// An alert this soon after its incident resolved reopens it.
    pub reopen_within: Duration,
    /// An incident resolves by itself once its alerts stayed clear this long.
    pub resolve_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            reopen_within: Duration::from_secs(30 * 60),
            resolve_after: Duration::from_secs(5 * 60),
        }
    }
}

/// What an alert of `severity` firing at `at` does, given what exists.
pub fn on_alert(
    existing: &Existing,
    severity: Severity,
    at: OffsetDateTime,
    policy: &Policy,
) -> Decision {
    if let Some((incident_id, current)) = existing.open {
        return Decision::Join {
            incident_id,
            escalate: severity > current,
        };
    }
    match existing.last_resolved {
        Some((incident_id, resolved_at)) if at - resolved_at <= policy.reopen_within => {
            Decision::Reopen { incident_id }
        }
        _ => Decision::Open,
    }
}

/// Whether an unresolved incident resolves by itself at `now`: every alert
/// of it clear, the last one for at least `resolve_after`.
pub fn due_to_resolve(
    all_clear: bool,
    last_clear: Option<OffsetDateTime>,
    now: OffsetDateTime,
    policy: &Policy,
) -> bool {
    all_clear && last_clear.is_some_and(|c| now - c >= policy.resolve_after)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::domain::incident::UpdateKind;

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn minutes(m: i64) -> time::Duration {
        time::Duration::minutes(m)
    }

    #[test]
    fn an_alert_joins_the_open_incident_and_escalates_only_when_more_severe() {
        let open = Existing {
            open: Some((7, Severity::Warning)),
            last_resolved: Some((3, AT - minutes(1))),
        };
        let p = Policy::default();
        let join = on_alert(&open, Severity::Warning, AT, &p);
        assert_eq!(
            join,
            Decision::Join {
                incident_id: 7,
                escalate: false
            }
        );
        assert_eq!(join.updates(), [UpdateKind::AlertAdded]);
        assert_eq!(on_alert(&open, Severity::Info, AT, &p), join);
        let worse = on_alert(&open, Severity::Critical, AT, &p);
        assert_eq!(
            worse,
            Decision::Join {
                incident_id: 7,
                escalate: true
            }
        );
        assert_eq!(
            worse.updates(),
            [UpdateKind::AlertAdded, UpdateKind::Escalated]
        );
    }

    #[test]
    fn an_alert_reopens_within_the_window_and_opens_a_new_incident_after_it() {
        let p = Policy::default();
        let resolved = |ago: i64| Existing {
            open: None,
            last_resolved: Some((3, AT - minutes(ago))),
        };
        assert_eq!(
            on_alert(&resolved(10), Severity::Warning, AT, &p),
            Decision::Reopen { incident_id: 3 }
        );
        // The window's edge still reopens; past it is a new incident.
        assert_eq!(
            on_alert(&resolved(30), Severity::Warning, AT, &p),
            Decision::Reopen { incident_id: 3 }
        );
        assert_eq!(
            on_alert(&resolved(31), Severity::Warning, AT, &p),
            Decision::Open
        );
        assert_eq!(
            on_alert(&Existing::default(), Severity::Critical, AT, &p),
            Decision::Open
        );
        assert_eq!(Decision::Open.updates(), [UpdateKind::Opened]);
        assert_eq!(
            Decision::Reopen { incident_id: 3 }.updates(),
            [UpdateKind::Reopened]
        );
    }

    #[test]
    fn an_incident_resolves_once_every_alert_stayed_clear_for_the_period() {
        let p = Policy::default();
        assert!(due_to_resolve(true, Some(AT - minutes(5)), AT, &p));
        assert!(due_to_resolve(true, Some(AT - minutes(60)), AT, &p));
        assert!(!due_to_resolve(true, Some(AT - minutes(4)), AT, &p));
        // An alert still firing keeps it open however old the others' clears.
        assert!(!due_to_resolve(false, Some(AT - minutes(60)), AT, &p));
        assert!(!due_to_resolve(true, None, AT, &p));
    }
}
