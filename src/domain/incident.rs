//! The vocabulary of incidents: alerts, incidents, updates. Free of I/O.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    TenantId,
    rules::{Kind, Severity},
};

named_enum! {
/// Lifecycle status of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Open, nobody acknowledged it.
    Open = "open",
    /// Open, someone acknowledged it.
    Acknowledged = "acknowledged",
    /// Over.
    Resolved = "resolved",
}
}

named_enum! {
/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    /// Opened by its first alert.
    Opened = "opened",
    /// Another alert joined.
    AlertAdded = "alert_added",
    /// The severity rose.
    Escalated = "escalated",
    /// Someone acknowledged it.
    Acknowledged = "acknowledged",
    /// Resolved, by hand or by itself.
    Resolved = "resolved",
    /// An alert shortly after resolution reopened it.
    Reopened = "reopened",
}
}

/// An alert: one rule firing for one subject, with the numbers behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifier (0 before it is stored).
    pub alert_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// The incident it joined.
    pub incident_id: Option<i64>,
    /// The service.
    pub service: String,
    /// The endpoint; '' for the whole service.
    pub endpoint: String,
    /// The rule.
    pub kind: Kind,
    /// How bad.
    pub severity: Severity,
    /// Observed value.
    pub observed: f64,
    /// Baseline it was compared with.
    pub baseline: f64,
    /// There was no healthy baseline yet (a new service, or one failing from
    /// its first minutes): the absolute bar decided, and `baseline` is 0.
    pub no_baseline: bool,
    /// Threshold it crossed.
    pub threshold: f64,
    /// Width of the evaluated window, seconds.
    pub window_secs: i32,
    /// When it fired.
    pub fired_at: OffsetDateTime,
    /// When it cleared.
    pub cleared_at: Option<OffsetDateTime>,
    /// What its fields cannot say, written when it fired: an objective's
    /// budget spent, burn rate per window and exhaustion ('' for the rules,
    /// whose fields say it all).
    pub detail: String,
}

/// Which incident an alert belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// Its service's (the usual case).
    Service,
    /// One incident for the whole tenant: every one of its `services` steady
    /// services went silent at the same evaluation. That is one event (the
    /// sender, or its path to Pulsyon, stopped), not that many outages.
    AllServices {
        /// Steady services that went silent together.
        services: usize,
    },
}

impl Grouping {
    /// The `service` of the incident `alert` belongs to: its own, or ''
    /// for a tenant-wide incident (no event has an empty service).
    pub fn incident_service(self, alert: &Alert) -> &str {
        match self {
            Grouping::Service => &alert.service,
            Grouping::AllServices { .. } => "",
        }
    }
}

/// What exists of the incident an alert belongs to, read (and locked) in
/// the transaction that stores the alert: the lifecycle decides from it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Existing {
    /// The unresolved incident, with its severity.
    pub open: Option<(i64, Severity)>,
    /// The most recently resolved one, with when it resolved.
    pub last_resolved: Option<(i64, OffsetDateTime)>,
}

/// What an alert does to its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Joins the unresolved incident, raising its severity when `escalate`.
    Join {
        /// The incident.
        incident_id: i64,
        /// The alert is more severe than the incident.
        escalate: bool,
    },
    /// Reopens the incident resolved shortly before (a regression).
    Reopen {
        /// The incident.
        incident_id: i64,
    },
    /// Opens a new incident.
    Open,
}

impl Decision {
    /// The updates the decision writes, in order.
    pub fn updates(self) -> &'static [UpdateKind] {
        match self {
            Decision::Join {
                escalate: false, ..
            } => &[UpdateKind::AlertAdded],
            Decision::Join { escalate: true, .. } => {
                &[UpdateKind::AlertAdded, UpdateKind::Escalated]
            }
            Decision::Reopen { .. } => &[UpdateKind::Reopened],
            Decision::Open => &[UpdateKind::Opened],
        }
    }
}

/// An unresolved incident whose alerts have all cleared: a candidate for
/// resolving by itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quiet {
    /// The incident.
    pub incident_id: i64,
    /// When its last alert cleared (its last alert's firing, if none did).
    pub last_clear: OffsetDateTime,
}

/// An incident as it is after a change (also the snapshot kept with each update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Identifier.
    pub incident_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// The service; '' when it is about every service of the tenant at once
    /// (see [`Grouping::AllServices`]).
    pub service: String,
    /// One line, from its strongest alert.
    pub title: String,
    /// Highest severity of its alerts.
    pub severity: Severity,
    /// Lifecycle status.
    pub status: IncidentStatus,
    /// When it opened.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// When it was acknowledged.
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When it was resolved.
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// Times it reopened.
    pub reopen_count: i32,
    /// Alerts grouped into it.
    pub alert_count: i64,
    /// Sequence of its latest update.
    pub last_seq: i64,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<IncidentStatus>,
    /// Only this service.
    pub service: Option<String>,
    /// Only at least this severe.
    pub min_severity: Option<Severity>,
}

impl IncidentFilter {
    /// Whether `i` passes the filter.
    pub fn matches(&self, i: &Incident) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&i.status))
            && self.service.as_ref().is_none_or(|s| *s == i.service)
            && self.min_severity.is_none_or(|m| i.severity >= m)
    }
}

/// One change to an incident, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Monotonic sequence number (commit order).
    pub seq: i64,
    /// What happened.
    pub kind: UpdateKind,
    /// When.
    pub at: OffsetDateTime,
    /// The incident after the change.
    pub incident: Incident,
    /// The alert that caused it, if any.
    pub alert: Option<Alert>,
    /// Who ("pulsyon" for the detector).
    pub actor: String,
    /// The note left with it.
    pub note: String,
}

/// The actor of changes the detector makes.
pub const SYSTEM_ACTOR: &str = "pulsyon";
