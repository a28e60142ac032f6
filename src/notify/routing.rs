//! Who hears of an incident, pure: routes (matchers, changes, `continue`,
//! the default route), escalation steps and repeats due, and the silence
//! that holds a notification. Time zones are jiff's (its bundled database).

use time::OffsetDateTime;

use crate::domain::{
    incident::UpdateKind,
    notify::{Matchers, Recurrence, Routes, Silence},
    rules::{Kind, Severity},
};

use super::NOTIFIED;

/// What routes and silences match on: an incident and its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// The incident.
    pub incident_id: i64,
    /// Its service ('' for a tenant-wide incident).
    pub service: String,
    /// Its severity.
    pub severity: Severity,
    /// Its alerts' endpoints and rules.
    pub alerts: Vec<(String, Kind)>,
    /// Whether it is resolved.
    pub resolved: bool,
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and
/// `?` any one character (no escapes, no classes).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` take one more character and try again.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `m` matches `s`.
pub fn matches(m: &Matchers, s: &Subject) -> bool {
    let any_glob = |globs: &[String], text: &str| globs.iter().any(|g| glob(g, text));
    (m.services.is_empty() || any_glob(&m.services, &s.service))
        && (m.severities.is_empty() || m.severities.contains(&s.severity))
        && (m.endpoints.is_empty() || s.alerts.iter().any(|(e, _)| any_glob(&m.endpoints, e)))
        && (m.kinds.is_empty() || s.alerts.iter().any(|(_, k)| m.kinds.contains(k)))
}

/// A receiver that hears of a change, and the group window its route holds
/// changes for (seconds; 0: sent at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The receiver's name.
    pub name: String,
    /// The route's group window.
    pub group_secs: u64,
}

/// The receivers that hear of `change` of `s`; `every` is every receiver of
/// the tenant (the default route's when it names none). A receiver two
/// routes name is held by the first's window.
pub fn select(routes: &Routes, s: &Subject, change: UpdateKind, every: &[String]) -> Vec<Selected> {
    let mut out: Vec<Selected> = Vec::new();
    let mut matched = false;
    let to = |names: &[String], group_secs: u64| {
        names
            .iter()
            .map(move |name| Selected {
                name: name.clone(),
                group_secs,
            })
            .collect::<Vec<_>>()
    };
    for route in &routes.routes {
        if !matches(&route.matchers, s) {
            continue;
        }
        matched = true;
        let sent = match route.changes.is_empty() {
            true => NOTIFIED.contains(&change),
            false => route.changes.contains(&change),
        };
        if sent {
            out.extend(to(&route.receivers, route.group_secs));
        }
        if !route.continue_matching {
            break;
        }
    }
    if !matched && NOTIFIED.contains(&change) {
        match routes.default_receivers.is_empty() {
            true => out.extend(to(every, 0)),
            false => out.extend(to(&routes.default_receivers, 0)),
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.name.clone()));
    out
}

/// An escalation step or a repeat that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Its identity per incident: `escalation:<route>:<step>` or
    /// `repeat:<route>:<n>`; sent once each.
    pub reason: String,
    /// To whom.
    pub receivers: Vec<String>,
}

/// What is due for an open, unacknowledged incident `s` open for
/// `open_secs`: each escalation step past its time, and the latest repeat.
pub fn due(routes: &Routes, s: &Subject, open_secs: u64) -> Vec<Due> {
    let mut out = Vec::new();
    for (r, route) in routes.routes.iter().enumerate() {
        if !matches(&route.matchers, s) {
            continue;
        }
        for (i, step) in route.escalation.iter().enumerate() {
            if open_secs >= step.after_secs {
                out.push(Due {
                    reason: format!("escalation:{r}:{i}"),
                    receivers: step.receivers.clone(),
                });
            }
        }
        if route.repeat_secs > 0 && open_secs >= route.repeat_secs {
            out.push(Due {
                reason: format!("repeat:{r}:{}", open_secs / route.repeat_secs),
                receivers: route.receivers.clone(),
            });
        }
        if !route.continue_matching {
            break;
        }
    }
    out
}

/// Whether `tz` is a time zone jiff knows.
pub fn valid_time_zone(tz: &str) -> bool {
    jiff::tz::TimeZone::get(tz).is_ok()
}

/// Whether `now` falls in `r`'s hours (a window past midnight belongs to
/// the weekday it starts on).
pub fn in_hours(r: &Recurrence, now: OffsetDateTime) -> bool {
    let Ok(tz) = jiff::tz::TimeZone::get(&r.time_zone) else {
        return false;
    };
    let Ok(ts) = jiff::Timestamp::from_second(now.unix_timestamp()) else {
        return false;
    };
    let local = ts.to_zoned(tz);
    let minute = u16::from(local.hour() as u8) * 60 + u16::from(local.minute() as u8);
    let today = local.weekday().to_monday_one_offset() as u8;
    let yesterday = if today == 1 { 7 } else { today - 1 };
    let on = |day: u8| r.weekdays.is_empty() || r.weekdays.contains(&day);
    if r.from_minute <= r.to_minute {
        on(today) && (r.from_minute..r.to_minute).contains(&minute)
    } else {
        (on(today) && minute >= r.from_minute) || (on(yesterday) && minute < r.to_minute)
    }
}

/// Whether `silence` holds notifications of `s` at `now`.
pub fn silences(silence: &Silence, s: &Subject, now: OffsetDateTime) -> bool {
    if silence.expired_at.is_some_and(|t| t <= now) || now < silence.starts_at {
        return false;
    }
    if silence.ends_at.is_some_and(|t| t <= now) {
        return false;
    }
    if silence
        .until_resolved
        .is_some_and(|id| id != s.incident_id || s.resolved)
    {
        return false;
    }
    if silence
        .recurrence
        .as_ref()
        .is_some_and(|r| !in_hours(r, now))
    {
        return false;
    }
    matches(&silence.matchers, s)
}

#[cfg(test)]
mod tests;
