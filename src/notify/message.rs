//! Each receiver kind's message for one incident update, rendered once when
//! the delivery is planned and stored with it, so every attempt sends the
//! same thing. Secrets are not in it: the sender adds the signature, the
//! routing key or the Slack URL at the moment of sending. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

mod digest;

pub use digest::digest;

use crate::domain::{
    incident::{IncidentStatus, Update, UpdateKind},
    notify::{Receiver, ReceiverKind, WebhookFormat},
    rules::Severity,
};

/// A rendered message, as stored in `deliveries.message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A JSON body POSTed to the receiver's URL.
    Http {
        /// The body.
        body: Value,
    },
    /// An email.
    Email {
        /// Its subject.
        subject: String,
        /// Its plain-text body.
        text: String,
        /// Its `Message-ID` (angle brackets included).
        message_id: String,
        /// The incident's thread (the `Message-ID` of its first message);
        /// empty for the first message itself.
        in_reply_to: String,
    },
}

/// What every message needs besides the update.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The dashboard's address as people reach it ('' if unknown).
    pub public_url: &'a str,
    /// Why it is sent: `update`, or an escalation step or repeat
    /// (`escalation:<route>:<step>`, `repeat:<route>:<n>`).
    pub reason: &'a str,
}

impl Context<'_> {
    /// The incident's dashboard page ('' without a public URL).
    pub fn incident_url(&self, incident_id: i64) -> String {
        match self.public_url.trim_end_matches('/') {
            "" => String::new(),
            base => format!("{base}/#/incidents/{incident_id}"),
        }
    }

    /// The domain of Message-IDs: the public URL's host, or `pulsyon.local`.
    fn mail_domain(&self) -> String {
        let rest = self.public_url.split("://").nth(1).unwrap_or("");
        let host = rest.split(['/', ':']).next().unwrap_or("");
        match host {
            "" => "pulsyon.local".into(),
            h => h.to_owned(),
        }
    }
}

/// The identity of a message about update `seq` of `incident_id`, sent for
/// `reason`: the same on every attempt and after any failover
/// (`webhook-id`, and the base of the other ids).
pub fn identity(incident_id: i64, seq: i64, reason: &str) -> String {
    match reason {
        "update" | "" => format!("pulsyon-{incident_id}-{seq}"),
        other => format!("pulsyon-{incident_id}-{seq}-{}", other.replace(':', "-")),
    }
}

fn message_id(update: &Update, ctx: &Context<'_>) -> String {
    identity(update.incident.incident_id, update.seq, ctx.reason)
}

/// PagerDuty's `dedup_key` for an incident: one PagerDuty incident per
/// Pulsyon incident.
pub fn dedup_key(incident_id: i64) -> String {
    format!("pulsyon-incident-{incident_id}")
}

/// The message `receiver` gets for `update`.
pub fn render(update: &Update, receiver: &Receiver, ctx: &Context<'_>) -> Message {
    match receiver.kind {
        ReceiverKind::Webhook => Message::Http {
            body: match receiver.settings.format {
                WebhookFormat::Pulsyon => pulsyon_body(update, ctx),
                WebhookFormat::Alertmanager => alertmanager_body(update, &receiver.name, ctx),
            },
        },
        ReceiverKind::Slack => Message::Http {
            body: slack_body(update, ctx),
        },
        ReceiverKind::Pagerduty => Message::Http {
            body: pagerduty_body(update, ctx),
        },
        ReceiverKind::Email => email(update, ctx),
    }
}

/// A test message for `receiver`, from an example incident (TestReceiver).
pub fn render_test(receiver: &Receiver, ctx: &Context<'_>, now: OffsetDateTime) -> Message {
    let incident = crate::domain::incident::Incident {
        incident_id: 0,
        tenant_id: receiver.tenant_id,
        service: "pulsyon-test".into(),
        title: format!("Test message to receiver {}", receiver.name),
        severity: Severity::Info,
        status: IncidentStatus::Resolved,
        opened_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: Some(now),
        resolved_by: Some("pulsyon".into()),
        reopen_count: 0,
        alert_count: 0,
        last_seq: 0,
    };
    let update = Update {
        seq: now.unix_timestamp(),
        kind: UpdateKind::Resolved,
        at: now,
        incident,
        alert: None,
        actor: "pulsyon".into(),
        note: "a test message: nothing is wrong".into(),
    };
    render(&update, receiver, ctx)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// "Opened", "Acknowledged", ...: the change as people read it.
fn change_title(kind: UpdateKind) -> &'static str {
    match kind {
        UpdateKind::Opened => "Opened",
        UpdateKind::AlertAdded => "Alert added",
        UpdateKind::Escalated => "Escalated",
        UpdateKind::Acknowledged => "Acknowledged",
        UpdateKind::Resolved => "Resolved",
        UpdateKind::Reopened => "Reopened",
    }
}

/// One line for people: `[Opened] #12 checkout: error rate 31 % (critical)`.
fn summary(update: &Update) -> String {
    let i = &update.incident;
    format!(
        "[{}] #{} {} ({})",
        change_title(update.kind),
        i.incident_id,
        i.title,
        i.severity.as_str()
    )
}

/// Pulsyon's webhook body (docs/notifications.md).
fn pulsyon_body(update: &Update, ctx: &Context<'_>) -> Value {
    let i = &update.incident;
    let alert = update.alert.as_ref().map(|a| {
        json!({
            "service": a.service, "endpoint": a.endpoint, "kind": a.kind.as_str(),
            "severity": a.severity.as_str(), "observed": a.observed, "baseline": a.baseline,
            "threshold": a.threshold, "window_secs": a.window_secs,
        })
    });
    json!({
        "version": "1",
        "id": message_id(update, ctx),
        "change": update.kind.as_str(),
        "at": rfc3339(update.at),
        "actor": update.actor,
        "note": update.note,
        "incident": {
            "id": i.incident_id, "seq": update.seq, "title": i.title, "service": i.service,
            "severity": i.severity.as_str(), "status": i.status.as_str(),
            "opened_at": rfc3339(i.opened_at),
            "acknowledged_at": i.acknowledged_at.map(rfc3339),
            "acknowledged_by": i.acknowledged_by,
            "resolved_at": i.resolved_at.map(rfc3339),
            "resolved_by": i.resolved_by,
            "reopen_count": i.reopen_count, "alert_count": i.alert_count,
            "url": ctx.incident_url(i.incident_id),
        },
        "alert": alert,
    })
}

/// Alertmanager's webhook payload, version 4: one alert, the incident.
fn alertmanager_body(update: &Update, receiver: &str, ctx: &Context<'_>) -> Value {
    let i = &update.incident;
    let resolved = i.status == IncidentStatus::Resolved;
    let status = if resolved { "resolved" } else { "firing" };
    let labels = json!({
        "alertname": "PulsyonIncident",
        "incident_id": i.incident_id.to_string(),
        "service": i.service,
        "severity": i.severity.as_str(),
    });
    let annotations = json!({
        "summary": i.title,
        "description": format!("{} (change: {})", summary(update), update.kind.as_str()),
    });
    let ends_at = match i.resolved_at {
        Some(t) if resolved => rfc3339(t),
        _ => "0001-01-01T00:00:00Z".into(),
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{incident_id=\"{}\"}}", i.incident_id),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": { "incident_id": i.incident_id.to_string() },
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": ctx.public_url,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(i.opened_at),
            "endsAt": ends_at,
            "generatorURL": ctx.incident_url(i.incident_id),
            "fingerprint": format!("{:016x}", i.incident_id),
        }],
    })
}

/// A Slack message in Block Kit: a header, the facts, the note, a button.
fn slack_body(update: &Update, ctx: &Context<'_>) -> Value {
    let i = &update.incident;
    let header: String = summary(update).chars().take(150).collect();
    let field =
        |name: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")});
    let service = if i.service.is_empty() {
        "every service"
    } else {
        &i.service
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header}}),
        json!({"type": "section", "fields": [
            field("Service", service),
            field("Severity", i.severity.as_str()),
            field("Status", i.status.as_str()),
            field("Change", change_title(update.kind)),
        ]}),
    ];
    let by = match (update.actor.as_str(), update.note.as_str()) {
        ("", "") => String::new(),
        (actor, "") => format!("by {actor}"),
        ("", note) => note.to_owned(),
        (actor, note) => format!("by {actor}: {note}"),
    };
    if !by.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": by}]}));
    }
    let url = ctx.incident_url(i.incident_id);
    if !url.is_empty() {
        blocks.push(json!({"type": "actions", "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Open the incident"},
            "url": url,
        }]}));
    }
    json!({"text": summary(update), "blocks": blocks})
}

/// PagerDuty Events API v2 (without `routing_key`, which the sender adds):
/// trigger on opened, escalated and reopened; acknowledge; resolve.
fn pagerduty_body(update: &Update, ctx: &Context<'_>) -> Value {
    let i = &update.incident;
    let action = match update.kind {
        UpdateKind::Acknowledged => "acknowledge",
        UpdateKind::Resolved => "resolve",
        _ => "trigger",
    };
    let dedup = dedup_key(i.incident_id);
    if action != "trigger" {
        return json!({"event_action": action, "dedup_key": dedup});
    }
    let severity = match i.severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    };
    let source = if i.service.is_empty() {
        "pulsyon"
    } else {
        &i.service
    };
    let summary: String = summary(update).chars().take(1024).collect();
    let mut body = json!({
        "event_action": action,
        "dedup_key": dedup,
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity,
            "timestamp": rfc3339(update.at),
            "group": i.service,
            "class": update.alert.as_ref().map(|a| a.kind.as_str()).unwrap_or("incident"),
            "component": update.alert.as_ref().map(|a| a.endpoint.as_str()).unwrap_or(""),
            "custom_details": {
                "incident_id": i.incident_id, "change": update.kind.as_str(),
                "alert_count": i.alert_count, "reopen_count": i.reopen_count,
            },
        },
        "client": "Pulsyon",
    });
    let url = ctx.incident_url(i.incident_id);
    if !url.is_empty() {
        body["client_url"] = json!(url);
        body["links"] = json!([{"href": url, "text": "The incident in Pulsyon"}]);
    }
    body
}

/// An email; every message of one incident is in one thread.
fn email(update: &Update, ctx: &Context<'_>) -> Message {
    let i = &update.incident;
    let domain = ctx.mail_domain();
    let thread = format!("<pulsyon.incident-{}@{domain}>", i.incident_id);
    let first = update.kind == UpdateKind::Opened && matches!(ctx.reason, "update" | "");
    let message_id = match first {
        true => thread.clone(),
        false => format!("<{}@{domain}>", message_id(update, ctx)),
    };
    let mut text = format!(
        "{}\n\nService: {}\nSeverity: {}\nStatus: {}\nOpened: {}\nAlerts: {}\n",
        summary(update),
        if i.service.is_empty() {
            "every service"
        } else {
            &i.service
        },
        i.severity.as_str(),
        i.status.as_str(),
        rfc3339(i.opened_at),
        i.alert_count,
    );
    if !update.actor.is_empty() {
        text.push_str(&format!("By: {}\n", update.actor));
    }
    if !update.note.is_empty() {
        text.push_str(&format!("Note: {}\n", update.note));
    }
    let url = ctx.incident_url(i.incident_id);
    if !url.is_empty() {
        text.push_str(&format!("\n{url}\n"));
    }
    Message::Email {
        subject: format!(
            "[Pulsyon] #{} {} ({})",
            i.incident_id,
            i.title,
            i.severity.as_str()
        ),
        text,
        message_id,
        in_reply_to: if first { String::new() } else { thread },
    }
}

#[cfg(test)]
mod tests;
