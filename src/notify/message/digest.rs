//! One message for the deliveries a receiver's group window held (oldest
//! first), made from their stored messages, so a tenant-wide outage is one
//! message per receiver, not forty. Pure.

use serde_json::{Map, Value, json};

use super::Message;
use crate::domain::notify::{Receiver, ReceiverKind, WebhookFormat};

/// Slack allows 50 blocks in a message: a header, the updates, a last line.
const SLACK_UPDATES: usize = 48;

/// The digest `receiver` gets for `members`, identified by `id` (the same
/// on every attempt).
pub fn digest(receiver: &Receiver, members: &[Message], id: &str) -> Message {
    let bodies = || {
        members.iter().filter_map(|m| match m {
            Message::Http { body } => Some(body),
            Message::Email { .. } => None,
        })
    };
    let n = members.len();
    match receiver.kind {
        ReceiverKind::Webhook => Message::Http {
            body: match receiver.settings.format {
                WebhookFormat::Pulsyon => json!({
                    "version": "1",
                    "id": id,
                    "change": "digest",
                    "count": n,
                    "updates": bodies().cloned().collect::<Vec<_>>(),
                }),
                WebhookFormat::Alertmanager => alertmanager(bodies(), id),
            },
        },
        ReceiverKind::Slack => Message::Http {
            body: slack(bodies(), n),
        },
        ReceiverKind::Email => email(members, id),
        // Never grouped (each change is an event on the incident's key).
        ReceiverKind::Pagerduty => members
            .first()
            .cloned()
            .unwrap_or(Message::Http { body: Value::Null }),
    }
}

/// The entries every map of `maps` has with the same value.
fn common<'a>(mut maps: impl Iterator<Item = &'a Value>) -> Value {
    let Some(Value::Object(first)) = maps.next() else {
        return json!({});
    };
    let mut out: Map<String, Value> = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    Value::Object(out)
}

/// Alertmanager's payload v4 with every held message's alerts: firing
/// while any is.
fn alertmanager<'a>(bodies: impl Iterator<Item = &'a Value>, id: &str) -> Value {
    let bodies: Vec<&Value> = bodies.collect();
    let alerts: Vec<Value> = bodies
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .collect();
    let firing = alerts.iter().any(|a| a["status"] == "firing");
    let first = bodies.first().copied().unwrap_or(&Value::Null);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{digest=\"{id}\"}}"),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": first["receiver"],
        "groupLabels": {},
        "commonLabels": common(alerts.iter().map(|a| &a["labels"])),
        "commonAnnotations": common(alerts.iter().map(|a| &a["annotations"])),
        "externalURL": first["externalURL"],
        "alerts": alerts,
    })
}

/// A Slack message: a header, one section per update (its one-line text
/// and its button's link), and how many more when they do not fit.
fn slack<'a>(bodies: impl Iterator<Item = &'a Value>, n: usize) -> Value {
    let title = format!("{n} incident updates");
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": title}})];
    for b in bodies.take(SLACK_UPDATES) {
        let line: String = b["text"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(2900)
            .collect();
        let url = b["blocks"]
            .as_array()
            .and_then(|blocks| blocks.iter().find(|x| x["type"] == "actions"))
            .and_then(|a| a["elements"][0]["url"].as_str());
        let text = match url {
            Some(u) => format!("<{u}|{line}>"),
            None => line,
        };
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if n > SLACK_UPDATES {
        let more = format!("and {} more", n - SLACK_UPDATES);
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
    }
    json!({"text": title, "blocks": blocks})
}

/// One email with every held message's text, in a thread of its own.
fn email(members: &[Message], id: &str) -> Message {
    let mut domain = "pulsyon.local";
    let mut texts = Vec::new();
    for m in members {
        if let Message::Email {
            text, message_id, ..
        } = m
        {
            texts.push(text.as_str());
            if let Some(d) = message_id.rsplit('@').next() {
                domain = d.trim_end_matches('>');
            }
        }
    }
    Message::Email {
        subject: format!("[Pulsyon] {} incident updates", members.len()),
        text: texts.join("\n----------------------------------------\n\n"),
        message_id: format!("<{id}@{domain}>"),
        in_reply_to: String::new(),
    }
}
