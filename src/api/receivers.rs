//! Notifications' RPCs: Admin's receivers (create, list, update, delete,
//! test) and Incidents' delivery log (list, retry). Checks are
//! `notify::spec`'s; a secret goes in and never comes out (a fingerprint).

use prost_types::Duration as PbDuration;
use tonic::{Response, Status};

use super::{
    convert::timestamp,
    incidents::{incident_id, update_kind_to_pb},
    status::{checked_text, from_store, invalid},
};
use crate::{
    domain::{
        Principal,
        notify::{
            Attempt, Delivery, DeliveryState, NEVER_DUE_YEAR, Receiver, ReceiverKind,
            ReceiverSettings, SmtpTls, WebhookFormat,
        },
    },
    notify::{
        NotifyConfig,
        message::{self, Context},
        send::Senders,
        spec::{self, Draft},
    },
    proto::v1 as pb,
    store::{Store, notify::DeliveryFilter},
};

fn kind_from_pb(kind: i32) -> Option<ReceiverKind> {
    match pb::ReceiverKind::try_from(kind).ok()? {
        pb::ReceiverKind::Webhook => Some(ReceiverKind::Webhook),
        pb::ReceiverKind::Slack => Some(ReceiverKind::Slack),
        pb::ReceiverKind::Pagerduty => Some(ReceiverKind::Pagerduty),
        pb::ReceiverKind::Email => Some(ReceiverKind::Email),
        pb::ReceiverKind::Unspecified => None,
    }
}

fn kind_to_pb(kind: ReceiverKind) -> i32 {
    (match kind {
        ReceiverKind::Webhook => pb::ReceiverKind::Webhook,
        ReceiverKind::Slack => pb::ReceiverKind::Slack,
        ReceiverKind::Pagerduty => pb::ReceiverKind::Pagerduty,
        ReceiverKind::Email => pb::ReceiverKind::Email,
    }) as i32
}

/// The format a request names (`None`: unspecified, keep or default).
fn format_from_pb(value: i32) -> Result<Option<WebhookFormat>, Status> {
    match pb::WebhookFormat::try_from(value) {
        Ok(pb::WebhookFormat::Unspecified) => Ok(None),
        Ok(pb::WebhookFormat::Pulsyon) => Ok(Some(WebhookFormat::Pulsyon)),
        Ok(pb::WebhookFormat::Alertmanager) => Ok(Some(WebhookFormat::Alertmanager)),
        Err(_) => Err(invalid("webhook_format", format!("unknown value {value}"))),
    }
}

fn tls_from_pb(value: i32) -> Result<Option<SmtpTls>, Status> {
    match pb::SmtpTls::try_from(value) {
        Ok(pb::SmtpTls::Unspecified) => Ok(None),
        Ok(pb::SmtpTls::Starttls) => Ok(Some(SmtpTls::Starttls)),
        Ok(pb::SmtpTls::Implicit) => Ok(Some(SmtpTls::Implicit)),
        Ok(pb::SmtpTls::None) => Ok(Some(SmtpTls::None)),
        Err(_) => Err(invalid("smtp_tls", format!("unknown value {value}"))),
    }
}

fn receiver_to_pb(r: &Receiver) -> pb::Receiver {
    pb::Receiver {
        name: r.name.clone(),
        kind: kind_to_pb(r.kind),
        url: r.url.clone(),
        secret_fingerprint: r.secret.fingerprint(),
        webhook_format: match (r.kind, r.settings.format) {
            (ReceiverKind::Webhook, WebhookFormat::Pulsyon) => pb::WebhookFormat::Pulsyon as i32,
            (ReceiverKind::Webhook, WebhookFormat::Alertmanager) => {
                pb::WebhookFormat::Alertmanager as i32
            }
            _ => pb::WebhookFormat::Unspecified as i32,
        },
        email_from: r.settings.email_from.clone(),
        email_to: r.settings.email_to.clone(),
        smtp_username: r.settings.smtp_username.clone(),
        smtp_tls: match (r.kind, r.settings.smtp_tls) {
            (ReceiverKind::Email, SmtpTls::Starttls) => pb::SmtpTls::Starttls as i32,
            (ReceiverKind::Email, SmtpTls::Implicit) => pb::SmtpTls::Implicit as i32,
            (ReceiverKind::Email, SmtpTls::None) => pb::SmtpTls::None as i32,
            _ => pb::SmtpTls::Unspecified as i32,
        },
        created_at: Some(timestamp(r.created_at)),
        last_success_at: r.last_success.map(timestamp),
        last_error: r.last_error.clone(),
    }
}

fn checked(
    result: Result<(crate::store::notify::ReceiverSpec, Option<String>), spec::Invalid>,
) -> Result<(crate::store::notify::ReceiverSpec, Option<String>), Status> {
    result.map_err(|e| invalid(e.field, e.problem))
}

/// Every string of a receiver's request: bounded, no NUL (refused by its field's name).
macro_rules! texts {
    ($req:expr) => {{
        let r = &$req;
        let fields = [("name", &r.name), ("url", &r.url), ("secret", &r.secret)];
        let more = [
            ("email_from", &r.email_from),
            ("smtp_username", &r.smtp_username),
        ];
        fields
            .into_iter()
            .chain(more)
            .try_for_each(|(field, value)| checked_text(field, value, 2048))
            .and_then(|()| {
                r.email_to
                    .iter()
                    .try_for_each(|to| checked_text("email_to", to, 320))
            })
    }};
}

/// `Admin.CreateReceiver`.
pub async fn create(
    store: &Store,
    config: &NotifyConfig,
    caller: &Principal,
    req: pb::CreateReceiverRequest,
) -> Result<Response<pb::CreateReceiverResponse>, Status> {
    texts!(req)?;
    let draft = Draft {
        name: req.name,
        kind: kind_from_pb(req.kind),
        url: req.url,
        secret: req.secret,
        settings: ReceiverSettings {
            format: format_from_pb(req.webhook_format)?.unwrap_or_default(),
            email_from: req.email_from,
            email_to: req.email_to,
            smtp_username: req.smtp_username,
            smtp_tls: tls_from_pb(req.smtp_tls)?.unwrap_or_default(),
        },
    };
    let (spec, generated) = checked(spec::check(draft, config.allow_private_targets).await)?;
    let receiver = store
        .create_receiver(caller.tenant_id, &spec)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, receiver = %receiver.name, kind = receiver.kind.as_str(), "receiver created");
    Ok(Response::new(pb::CreateReceiverResponse {
        receiver: Some(receiver_to_pb(&receiver)),
        generated_secret: generated.unwrap_or_default(),
    }))
}

/// `Admin.ListReceivers`.
pub async fn list(
    store: &Store,
    caller: &Principal,
) -> Result<Response<pb::ListReceiversResponse>, Status> {
    let receivers = store
        .receivers(caller.tenant_id)
        .await
        .map_err(from_store)?;
    Ok(Response::new(pb::ListReceiversResponse {
        receivers: receivers.iter().map(receiver_to_pb).collect(),
    }))
}

fn known_name(name: &str) -> Result<(), Status> {
    match spec::valid_name(name) {
        true => Ok(()),
        false => Err(invalid("name", "not a receiver name")),
    }
}

/// `Admin.UpdateReceiver`: the stored receiver with the request's fields
/// over it, checked as a new one would be.
pub async fn update(
    store: &Store,
    config: &NotifyConfig,
    caller: &Principal,
    req: pb::UpdateReceiverRequest,
) -> Result<Response<pb::UpdateReceiverResponse>, Status> {
    checked_text("new_name", &req.new_name, 2048)?;
    texts!(req)?;
    known_name(&req.name)?;
    let old = store
        .receiver(caller.tenant_id, &req.name)
        .await
        .map_err(from_store)?;
    let pick = |new: String, old: &str| if new.is_empty() { old.to_owned() } else { new };
    let old_url = match old.kind {
        // A Slack receiver's URL is its secret.
        ReceiverKind::Slack => old.secret.expose().to_owned(),
        _ => old.url.clone(),
    };
    let url = pick(req.url.clone(), &old_url);
    let secret = match (old.kind, req.secret.is_empty()) {
        (ReceiverKind::Slack, _) => String::new(),
        (_, true) => old.secret.expose().to_owned(),
        (_, false) => req.secret,
    };
    let settings = ReceiverSettings {
        format: format_from_pb(req.webhook_format)?.unwrap_or(old.settings.format),
        email_from: pick(req.email_from, &old.settings.email_from),
        email_to: if req.email_to.is_empty() {
            old.settings.email_to.clone()
        } else {
            req.email_to
        },
        smtp_username: pick(req.smtp_username, &old.settings.smtp_username),
        smtp_tls: tls_from_pb(req.smtp_tls)?.unwrap_or(old.settings.smtp_tls),
    };
    let draft = Draft {
        name: pick(req.new_name, &old.name),
        kind: Some(old.kind),
        url,
        secret,
        settings,
    };
    let (spec, _) = checked(spec::check(draft, config.allow_private_targets).await)?;
    let receiver = store
        .update_receiver(caller.tenant_id, &req.name, &spec)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, receiver = %receiver.name, "receiver updated");
    Ok(Response::new(pb::UpdateReceiverResponse {
        receiver: Some(receiver_to_pb(&receiver)),
    }))
}

/// `Admin.DeleteReceiver`.
pub async fn delete(
    store: &Store,
    caller: &Principal,
    req: pb::DeleteReceiverRequest,
) -> Result<Response<pb::DeleteReceiverResponse>, Status> {
    known_name(&req.name)?;
    store
        .delete_receiver(caller.tenant_id, &req.name)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, receiver = %req.name, "receiver deleted");
    Ok(Response::new(pb::DeleteReceiverResponse {}))
}

/// `Admin.TestReceiver`: one attempt now, answered with its outcome.
pub async fn test(
    store: &Store,
    config: &NotifyConfig,
    caller: &Principal,
    req: pb::TestReceiverRequest,
) -> Result<Response<pb::TestReceiverResponse>, Status> {
    known_name(&req.name)?;
    let receiver = store
        .receiver(caller.tenant_id, &req.name)
        .await
        .map_err(from_store)?;
    let senders = Senders::new(config.timeout, config.allow_private_targets)
        .map_err(|e| super::status::internal("the HTTP client could not be built", e))?;
    let now = time::OffsetDateTime::now_utc();
    let ctx = Context {
        public_url: &config.public_url,
        reason: "test",
    };
    let test = message::render_test(&receiver, &ctx, now);
    let id = format!("pulsyon-test-{}", now.unix_timestamp_nanos());
    let outcome = senders.send(&receiver, &id, &test).await;
    Ok(Response::new(pb::TestReceiverResponse {
        ok: outcome.ok,
        status: outcome.status,
        error: outcome.error,
        latency: PbDuration::try_from(outcome.latency).ok(),
    }))
}

fn state_to_pb(s: DeliveryState) -> i32 {
    (match s {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Delivered => pb::DeliveryState::Delivered,
        DeliveryState::Failed => pb::DeliveryState::Failed,
        DeliveryState::Suppressed => pb::DeliveryState::Suppressed,
    }) as i32
}

fn delivery_to_pb(d: &Delivery, attempts: &[Attempt]) -> pb::Delivery {
    pb::Delivery {
        delivery_id: d.delivery_id.to_string(),
        incident_id: d.incident_id.to_string(),
        receiver: d.receiver_name.clone(),
        update_seq: d.update_seq,
        change: update_kind_to_pb(d.change),
        committed_at: Some(timestamp(d.committed_at)),
        state: state_to_pb(d.state),
        attempts: d.attempts,
        next_attempt_at: (d.state == DeliveryState::Pending && d.next_at.year() < NEVER_DUE_YEAR)
            .then(|| timestamp(d.next_at)),
        deadline: Some(timestamp(d.deadline)),
        delivered_at: d.delivered_at.map(timestamp),
        last_error: d.last_error.clone(),
        silence_id: d.silence_id.map(|s| s.to_string()).unwrap_or_default(),
        digest_id: d.digest_id.map(|s| s.to_string()).unwrap_or_default(),
        reason: d.reason.clone(),
        attempt_log: attempts
            .iter()
            .map(|a| pb::DeliveryAttempt {
                attempt: a.attempt,
                at: Some(timestamp(a.at)),
                ok: a.ok,
                status: a.status,
                latency_ms: a.latency_ms,
                error: a.error.clone(),
            })
            .collect(),
    }
}

/// `Incidents.ListDeliveries`.
pub async fn list_deliveries(
    store: &Store,
    caller: &Principal,
    req: pb::ListDeliveriesRequest,
) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
    let incident = match req.incident_id.as_str() {
        "" => None,
        id => Some(incident_id(id)?),
    };
    let receiver = match req.receiver.as_str() {
        "" => None,
        name => {
            known_name(name).map_err(|_| invalid("receiver", "not a receiver name"))?;
            Some(name.to_owned())
        }
    };
    let state = match pb::DeliveryState::try_from(req.state) {
        Ok(pb::DeliveryState::Unspecified) => None,
        Ok(pb::DeliveryState::Pending) => Some(DeliveryState::Pending),
        Ok(pb::DeliveryState::Delivered) => Some(DeliveryState::Delivered),
        Ok(pb::DeliveryState::Failed) => Some(DeliveryState::Failed),
        Ok(pb::DeliveryState::Suppressed) => Some(DeliveryState::Suppressed),
        Err(_) => return Err(invalid("state", format!("unknown value {}", req.state))),
    };
    let limit = match req.page_size {
        0 => 100,
        n @ 1..=1000 => i64::from(n),
        _ => return Err(invalid("page_size", "0 to 1000")),
    };
    let filter = DeliveryFilter {
        incident_id: incident,
        receiver,
        state,
        limit,
    };
    let rows = store
        .deliveries(caller.tenant_id, &filter)
        .await
        .map_err(from_store)?;
    Ok(Response::new(pb::ListDeliveriesResponse {
        deliveries: rows.iter().map(|(d, a)| delivery_to_pb(d, a)).collect(),
    }))
}

/// `Incidents.RetryDelivery`.
pub async fn retry_delivery(
    store: &Store,
    config: &NotifyConfig,
    caller: &Principal,
    req: pb::RetryDeliveryRequest,
) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
    let id = super::request::positive_id("delivery_id", "delivery", &req.delivery_id)?;
    let delivery = store
        .retry_delivery(caller.tenant_id, id, config.deadline)
        .await
        .map_err(from_store)?;
    tracing::info!(tenant = %caller.tenant_name, delivery = id, "delivery sent again by hand");
    Ok(Response::new(pb::RetryDeliveryResponse {
        delivery: Some(delivery_to_pb(&delivery, &[])),
    }))
}
