//! The vocabulary of notifications: receivers, their write-only secrets,
//! deliveries and their attempts, and the retry schedule. Free of I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;

use super::{
    TenantId,
    incident::UpdateKind,
    rules::{Kind, Severity},
};

named_enum! {
/// Where a receiver's messages go and in what shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiverKind {
    /// An HTTP POST of a JSON body, signed per Standard Webhooks.
    Webhook = "webhook",
    /// A Slack incoming webhook (Block Kit message).
    Slack = "slack",
    /// PagerDuty's Events API v2.
    Pagerduty = "pagerduty",
    /// An email through an SMTP server.
    Email = "email",
}
}

named_enum! {
/// The body a webhook receiver gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Pulsyon's own JSON (docs/notifications.md).
    #[default]
    Pulsyon = "pulsyon",
    /// Alertmanager's webhook payload, version 4.
    Alertmanager = "alertmanager",
}
}

named_enum! {
/// How an email receiver's connection to its SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded by STARTTLS (required, not opportunistic).
    #[default]
    Starttls = "starttls",
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit = "implicit",
    /// No TLS: only where the operator allows private targets (tests, a
    /// relay on the same host).
    None = "none",
}
}

named_enum! {
/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not yet accepted by its receiver; due at `next_at`.
    Pending = "pending",
    /// Held by a silence: sent if the silence ends while its incident is
    /// still open, else never.
    Suppressed = "suppressed",
    /// Accepted by its receiver.
    Delivered = "delivered",
    /// Not accepted before its deadline (or its receiver was deleted):
    /// listed, and sent again by a retry.
    Failed = "failed",
}
}

/// A secret of a receiver: kept, used to send, never shown, logged or
/// written into a delivery (only its fingerprint).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret as given.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the sender that needs it and the store.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What the doors show instead: `sha256:` and the first 12 hex digits
    /// of its digest ('' when there is no secret).
    pub fn fingerprint(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

/// Kind-specific settings of a receiver, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiverSettings {
    /// Webhook: the body's format.
    pub format: WebhookFormat,
    /// Email: the sender's address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email_from: String,
    /// Email: the recipients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_to: Vec<String>,
    /// Email: the user the SMTP server knows (the password is the secret).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub smtp_username: String,
    /// Email: TLS to the SMTP server.
    pub smtp_tls: SmtpTls,
}

/// A receiver of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    /// Identifier.
    pub receiver_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// Unique per tenant.
    pub name: String,
    /// Its kind.
    pub kind: ReceiverKind,
    /// Where to send: the webhook's or PagerDuty's URL, `smtp://host:port`;
    /// for Slack the URL is the secret, and this is its origin only.
    pub url: String,
    /// Signing key, routing key, Slack URL or SMTP password.
    pub secret: Secret,
    /// Kind-specific settings.
    pub settings: ReceiverSettings,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// The time of its latest delivered message, if any.
    pub last_success: Option<OffsetDateTime>,
    /// The latest failed attempt's error, if any came after the last success.
    pub last_error: String,
}

/// One (incident update x receiver) to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Identifier.
    pub delivery_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// To which receiver.
    pub receiver_id: i64,
    /// The receiver's name.
    pub receiver_name: String,
    /// Of which incident.
    pub incident_id: i64,
    /// The outbox row it tells of (0 for an escalation or a repeat).
    pub update_seq: i64,
    /// `update`, `escalation:<route>:<step>`, `repeat:<route>:<n>` or
    /// `digest:<first delivery>`.
    pub reason: String,
    /// What changed.
    pub change: UpdateKind,
    /// When the update committed.
    pub committed_at: OffsetDateTime,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending).
    pub next_at: OffsetDateTime,
    /// When it becomes `failed` if still not accepted.
    pub deadline: OffsetDateTime,
    /// When its receiver accepted it.
    pub delivered_at: Option<OffsetDateTime>,
    /// The latest attempt's error ('' if none failed or it was delivered).
    pub last_error: String,
    /// The silence that held it, if one did.
    pub silence_id: Option<i64>,
    /// The digest it was sent in (held in a group window), if it was.
    pub digest_id: Option<i64>,
}

/// When a delivery that waits for a group window's digest is due by itself:
/// never (a date no clock reaches).
pub const NEVER_DUE_YEAR: i32 = 9999;

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: i32,
    /// When it started.
    pub at: OffsetDateTime,
    /// Whether the receiver accepted it.
    pub ok: bool,
    /// The HTTP status or SMTP reply code (0: no answer).
    pub status: i32,
    /// How long it took.
    pub latency_ms: f64,
    /// What went wrong, bounded ('' when accepted).
    pub error: String,
}

/// The longest error text kept for an attempt.
pub const MAX_ERROR_CHARS: usize = 500;

/// `text` cut to [`MAX_ERROR_CHARS`] characters.
pub fn bounded_error(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// When to try again after `attempts` failed attempts: exponential from
/// `base` up to `max`, with `jitter` (0..1, drawn by the caller) spreading
/// it over its upper half, and never sooner than a receiver's
/// `Retry-After` (even past `max`: the delivery's deadline still ends it).
pub fn retry_delay(
    attempts: u32,
    base: Duration,
    max: Duration,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let spread = capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(after) => spread.max(after),
        None => spread,
    }
}

/// What an incident must be for a route or a silence to apply; an empty
/// list matches anything. Globs take `*` (any run) and `?` (one character).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Matchers {
    /// The incident's service matches one of these globs ('' is the
    /// tenant-wide incident's service).
    pub services: Vec<String>,
    /// One of the incident's alerts has an endpoint matching one of these
    /// globs ('' is the whole service).
    pub endpoints: Vec<String>,
    /// The incident's severity is one of these.
    pub severities: Vec<Severity>,
    /// One of the incident's alerts is of one of these rules.
    pub kinds: Vec<Kind>,
}

/// Who else hears of an incident nobody acknowledged in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// After this many seconds open and unacknowledged.
    pub after_secs: u64,
    /// These receivers are notified too.
    pub receivers: Vec<String>,
}

/// One route of a tenant's ordered list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    /// Which incidents.
    pub matchers: Matchers,
    /// To whom (receiver names).
    pub receivers: Vec<String>,
    /// Which changes are sent (empty: opened, escalated, acknowledged,
    /// resolved and reopened).
    pub changes: Vec<UpdateKind>,
    /// After matching, go on to the next routes too.
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    /// Not acknowledged in time: notify more receivers, step by step.
    pub escalation: Vec<EscalationStep>,
    /// While open and unacknowledged, send the incident again this often
    /// (seconds; 0: never).
    pub repeat_secs: u64,
    /// Hold changes for this many seconds and send one digest per receiver
    /// (0: each change at once).
    pub group_secs: u64,
}

/// A tenant's routes: tried in order; an incident no route matches goes to
/// `default_receivers` (empty: every receiver of the tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Routes {
    /// In order.
    pub routes: Vec<Route>,
    /// The default route's receivers.
    pub default_receivers: Vec<String>,
    /// Told when another receiver fails every attempt for longer than
    /// `fallback_after_secs` ('' : no one).
    pub fallback_receiver: String,
    /// How long a receiver may fail before the fallback is told (seconds;
    /// 0: the default, 15 minutes).
    pub fallback_after_secs: u64,
}

/// How long a receiver fails before its tenant's fallback is told, unless
/// the tenant's routes say.
pub const DEFAULT_FALLBACK_AFTER_SECS: u64 = 900;

impl Routes {
    /// How long a receiver may fail before the fallback is told.
    pub fn fallback_after(&self) -> u64 {
        match self.fallback_after_secs {
            0 => DEFAULT_FALLBACK_AFTER_SECS,
            s => s,
        }
    }
}

/// Weekdays and a time of day, in a time zone: a recurring window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    /// 1 (Monday) to 7 (Sunday); empty: every day.
    pub weekdays: Vec<u8>,
    /// Start, minutes after midnight.
    pub from_minute: u16,
    /// End, minutes after midnight (before `from_minute`: past midnight).
    pub to_minute: u16,
    /// An IANA time zone (`Europe/Paris`).
    pub time_zone: String,
}

named_enum! {
/// What a silence is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SilenceKind {
    /// A silence.
    Silence = "silence",
    /// Planned work (objectives may leave it out of their budget).
    Maintenance = "maintenance",
}
}

/// A silence: matching incidents still open, and their notifications are
/// held while it is active.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Identifier.
    pub silence_id: i64,
    /// Whose.
    pub tenant_id: TenantId,
    /// Which incidents.
    pub matchers: Matchers,
    /// Silence or maintenance.
    pub kind: SilenceKind,
    /// From then.
    pub starts_at: OffsetDateTime,
    /// Until then (None: until expired, or until its incident resolves).
    pub ends_at: Option<OffsetDateTime>,
    /// Only within these hours (within `starts_at..ends_at`).
    pub recurrence: Option<Recurrence>,
    /// Only while this incident is unresolved.
    pub until_resolved: Option<i64>,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was ended by hand.
    pub expired_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap_and_honour_retry_after() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(retry_delay(1, base, max, 1.0, None), Duration::from_secs(1));
        assert_eq!(retry_delay(3, base, max, 1.0, None), Duration::from_secs(4));
        assert_eq!(retry_delay(3, base, max, 0.0, None), Duration::from_secs(2));
        assert_eq!(retry_delay(30, base, max, 1.0, None), max);
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            retry_delay(1, base, max, 1.0, after),
            Duration::from_secs(7)
        );
        // A Retry-After past the cap is still honoured.
        let far = Some(Duration::from_secs(3_600));
        assert_eq!(
            retry_delay(1, base, max, 1.0, far),
            Duration::from_secs(3_600)
        );
    }

    #[test]
    fn a_secret_shows_only_its_fingerprint() {
        let s = Secret::new("whsec_c2VjcmV0".into());
        assert!(s.fingerprint().starts_with("sha256:"));
        assert_eq!(s.fingerprint().len(), "sha256:".len() + 12);
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
        assert_eq!(Secret::default().fingerprint(), "");
    }

    #[test]
    fn errors_are_bounded() {
        assert_eq!(bounded_error("short"), "short");
        let long = "é".repeat(2 * MAX_ERROR_CHARS);
        assert_eq!(bounded_error(&long).chars().count(), MAX_ERROR_CHARS + 1);
    }

    #[test]
    fn settings_refuse_unknown_fields() {
        let bad = serde_json::from_str::<ReceiverSettings>(r#"{"formt":"pulsyon"}"#);
        assert!(bad.is_err());
        let ok: ReceiverSettings = serde_json::from_str(r#"{"format":"alertmanager"}"#).unwrap();
        assert_eq!(ok.format, WebhookFormat::Alertmanager);
    }
}
