use super::*;
use crate::domain::{
    TenantId,
    incident::Incident,
    notify::{ReceiverSettings, Secret},
};

fn update(kind: UpdateKind, seq: i64) -> Update {
    let at = time::macros::datetime!(2026-12-07 10:00 UTC);
    Update {
        seq,
        kind,
        at,
        incident: Incident {
            incident_id: 12,
            tenant_id: TenantId(1),
            service: "checkout".into(),
            title: "checkout: error rate 31 %".into(),
            severity: Severity::Critical,
            status: match kind {
                UpdateKind::Resolved => IncidentStatus::Resolved,
                UpdateKind::Acknowledged => IncidentStatus::Acknowledged,
                _ => IncidentStatus::Open,
            },
            opened_at: at,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: (kind == UpdateKind::Resolved).then_some(at),
            resolved_by: None,
            reopen_count: 0,
            alert_count: 1,
            last_seq: seq,
        },
        alert: None,
        actor: "ana".into(),
        note: String::new(),
    }
}

fn receiver(kind: ReceiverKind) -> Receiver {
    Receiver {
        receiver_id: 1,
        tenant_id: TenantId(1),
        name: "ops".into(),
        kind,
        url: "https://hooks.example.com/x".into(),
        secret: Secret::new("whsec_x".into()),
        settings: ReceiverSettings::default(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        last_success: None,
        last_error: String::new(),
    }
}

const CTX: Context<'static> = Context {
    public_url: "https://pulsyon.example.com/",
    reason: "update",
};

/// An email's subject, text, Message-ID and In-Reply-To.
fn email_of(m: Message) -> (String, String, String, String) {
    match m {
        Message::Email {
            subject,
            text,
            message_id,
            in_reply_to,
        } => (subject, text, message_id, in_reply_to),
        Message::Http { .. } => panic!("not an email"),
    }
}

fn body(m: Message) -> Value {
    match m {
        Message::Http { body } => body,
        Message::Email { .. } => panic!("not an HTTP message"),
    }
}

#[test]
fn pagerduty_triggers_acknowledges_and_resolves_one_dedup_key() {
    let r = receiver(ReceiverKind::Pagerduty);
    let open = body(render(&update(UpdateKind::Opened, 5), &r, &CTX));
    assert_eq!(open["event_action"], "trigger");
    assert_eq!(open["dedup_key"], "pulsyon-incident-12");
    assert_eq!(open["payload"]["severity"], "critical");
    assert_eq!(open["payload"]["source"], "checkout");
    assert!(
        open.get("routing_key").is_none(),
        "the key is added when sending"
    );
    let ack = body(render(&update(UpdateKind::Acknowledged, 6), &r, &CTX));
    assert_eq!(
        ack,
        json!({"event_action": "acknowledge", "dedup_key": "pulsyon-incident-12"})
    );
    let done = body(render(&update(UpdateKind::Resolved, 7), &r, &CTX));
    assert_eq!(done["event_action"], "resolve");
}

#[test]
fn emails_of_one_incident_are_one_thread() {
    let r = receiver(ReceiverKind::Email);
    let (_, _, first, in_reply_to) = email_of(render(&update(UpdateKind::Opened, 5), &r, &CTX));
    assert_eq!(first, "<pulsyon.incident-12@pulsyon.example.com>");
    assert_eq!(in_reply_to, "");
    let (_, _, message_id, in_reply_to) =
        email_of(render(&update(UpdateKind::Resolved, 9), &r, &CTX));
    assert_eq!(message_id, "<pulsyon-12-9@pulsyon.example.com>");
    assert_eq!(in_reply_to, first);
}

#[test]
fn webhook_bodies_name_the_change_and_link_the_incident() {
    let mut r = receiver(ReceiverKind::Webhook);
    let b = body(render(&update(UpdateKind::Opened, 5), &r, &CTX));
    assert_eq!(b["id"], "pulsyon-12-5");
    assert_eq!(b["change"], "opened");
    assert_eq!(
        b["incident"]["url"],
        "https://pulsyon.example.com/#/incidents/12"
    );
    r.settings.format = WebhookFormat::Alertmanager;
    let am = body(render(&update(UpdateKind::Resolved, 7), &r, &CTX));
    assert_eq!(am["version"], "4");
    assert_eq!(am["status"], "resolved");
    assert_eq!(am["alerts"][0]["labels"]["incident_id"], "12");
    assert_eq!(am["alerts"][0]["endsAt"], "2026-12-07T10:00:00Z");
}

#[test]
fn slack_headers_stay_within_block_kits_bound() {
    let mut u = update(UpdateKind::Opened, 5);
    u.incident.title = "x".repeat(400);
    let b = body(render(&u, &receiver(ReceiverKind::Slack), &CTX));
    let header = b["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    assert_eq!(
        b["blocks"].as_array().unwrap().last().unwrap()["type"],
        "actions"
    );
}

#[test]
fn an_escalation_has_an_identity_of_its_own_in_the_thread() {
    let r = receiver(ReceiverKind::Email);
    let ctx = Context {
        reason: "escalation:0:1",
        ..CTX
    };
    let (_, _, message_id, in_reply_to) =
        email_of(render(&update(UpdateKind::Opened, 5), &r, &ctx));
    assert_eq!(
        message_id,
        "<pulsyon-12-5-escalation-0-1@pulsyon.example.com>"
    );
    assert_eq!(in_reply_to, "<pulsyon.incident-12@pulsyon.example.com>");
    assert_eq!(identity(12, 5, "update"), "pulsyon-12-5");
}

#[test]
fn a_digest_carries_every_held_message_in_each_receivers_form() {
    let updates = [
        update(UpdateKind::Opened, 1),
        update(UpdateKind::Resolved, 2),
    ];
    let of = |kind: ReceiverKind, format: WebhookFormat| {
        let mut r = receiver(kind);
        r.settings.format = format;
        let members: Vec<Message> = updates.iter().map(|u| render(u, &r, &CTX)).collect();
        digest(&r, &members, "pulsyon-12-0-digest-7")
    };
    let pulsyon = body(of(ReceiverKind::Webhook, WebhookFormat::Pulsyon));
    assert_eq!(pulsyon["change"], "digest");
    assert_eq!(pulsyon["count"], 2);
    assert_eq!(pulsyon["updates"][1]["change"], "resolved");
    let am = body(of(ReceiverKind::Webhook, WebhookFormat::Alertmanager));
    assert_eq!(am["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(am["status"], "firing", "one of its alerts still fires");
    assert_eq!(am["commonLabels"]["service"], "checkout");
    let slack = body(of(ReceiverKind::Slack, WebhookFormat::Pulsyon));
    assert_eq!(slack["blocks"].as_array().unwrap().len(), 3);
    assert!(
        slack["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("#/incidents/12|")
    );
    let (subject, text, message_id, in_reply_to) =
        email_of(of(ReceiverKind::Email, WebhookFormat::Pulsyon));
    assert_eq!(subject, "[Pulsyon] 2 incident updates");
    assert!(text.contains("[Opened]") && text.contains("[Resolved]"));
    assert_eq!(message_id, "<pulsyon-12-0-digest-7@pulsyon.example.com>");
    assert!(in_reply_to.is_empty());
}

#[test]
fn a_slack_digest_stays_within_fifty_blocks() {
    let r = receiver(ReceiverKind::Slack);
    let members: Vec<Message> = (1..=60)
        .map(|seq| render(&update(UpdateKind::Opened, seq), &r, &CTX))
        .collect();
    let b = body(digest(&r, &members, "d"));
    let blocks = b["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 50);
    assert_eq!(blocks[49]["elements"][0]["text"], "and 12 more");
}
