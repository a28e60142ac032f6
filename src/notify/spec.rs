//! A receiver as a door writes it, checked: each problem names its field.
//! Destinations are checked here as written (a literal address, and the
//! addresses a name resolves to now) and again at every send (`target.rs`).

use crate::{
    domain::notify::{
        Matchers, ReceiverKind, ReceiverSettings, Recurrence, Routes, Secret, SmtpTls,
    },
    store::notify::ReceiverSpec,
};

use super::{sign, target};

/// PagerDuty's Events API v2, when a receiver names no URL.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// A field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The request's field.
    pub field: &'static str,
    /// The problem.
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        field,
        problem: problem.into(),
    }
}

/// A receiver's fields as a request gives them.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// The name.
    pub name: String,
    /// The kind.
    pub kind: Option<ReceiverKind>,
    /// The URL.
    pub url: String,
    /// The secret ('' for none, or to generate a webhook's).
    pub secret: String,
    /// Kind-specific settings.
    pub settings: ReceiverSettings,
}

/// Whether `name` is a receiver name: 1 to 64 of letters, digits, `-_.`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The receiver `draft` describes, and the webhook secret generated for it
/// (if none was given); `allow_private`: `--notify-allow-private-targets`.
pub async fn check(
    draft: Draft,
    allow_private: bool,
) -> Result<(ReceiverSpec, Option<String>), Invalid> {
    if !valid_name(&draft.name) {
        return Err(invalid(
            "name",
            "1 to 64 of letters, digits, '-', '_' and '.'",
        ));
    }
    let kind = draft.kind.ok_or_else(|| {
        invalid(
            "kind",
            "required: RECEIVER_KIND_WEBHOOK, RECEIVER_KIND_SLACK, RECEIVER_KIND_PAGERDUTY or RECEIVER_KIND_EMAIL",
        )
    })?;
    if draft.url.len() > 2048 || draft.secret.len() > 2048 {
        return Err(invalid("url", "at most 2048 bytes (the secret too)"));
    }
    let mut generated = None;
    let (url, secret) = match kind {
        ReceiverKind::Webhook => {
            let url = http_url(&draft.url, "url", allow_private).await?;
            let secret = match draft.secret.as_str() {
                "" => {
                    let made = sign::generate().map_err(|e| invalid("secret", e))?;
                    generated = Some(made.clone());
                    made
                }
                given => {
                    sign::key_of(given).map_err(|e| invalid("secret", e))?;
                    given.to_owned()
                }
            };
            (url, secret)
        }
        ReceiverKind::Slack => {
            // The incoming webhook's URL is the secret; its origin is shown.
            let full = http_url(&draft.url, "url", allow_private).await?;
            let (host, port) = target::host_port(&full, 443).map_err(|e| invalid("url", e))?;
            let scheme = full.split("://").next().unwrap_or("https");
            (format!("{scheme}://{host}:{port}"), full)
        }
        ReceiverKind::Pagerduty => {
            let url = match draft.url.as_str() {
                "" => PAGERDUTY_EVENTS_URL.to_owned(),
                given => http_url(given, "url", allow_private).await?,
            };
            if draft.secret.trim().is_empty() {
                return Err(invalid("secret", "required: the integration's routing key"));
            }
            (url, draft.secret.trim().to_owned())
        }
        ReceiverKind::Email => (email(&draft, allow_private).await?, draft.secret.clone()),
    };
    let mut settings = draft.settings;
    if kind != ReceiverKind::Email {
        let email_set = !settings.email_from.is_empty()
            || !settings.email_to.is_empty()
            || !settings.smtp_username.is_empty()
            || settings.smtp_tls != SmtpTls::default();
        if email_set {
            return Err(invalid(
                "email_from",
                "only an email receiver has email settings",
            ));
        }
    }
    if kind != ReceiverKind::Webhook && settings.format != Default::default() {
        return Err(invalid(
            "webhook_format",
            "only a webhook receiver has a format",
        ));
    }
    settings.email_to.sort();
    settings.email_to.dedup();
    let spec = ReceiverSpec {
        name: draft.name,
        kind,
        url,
        secret: Secret::new(secret),
        settings,
    };
    Ok((spec, generated))
}

/// An http(s) URL whose host is allowed.
async fn http_url(url: &str, field: &'static str, allow_private: bool) -> Result<String, Invalid> {
    let url = url.trim();
    let https = url.starts_with("https://");
    if !https && !url.starts_with("http://") {
        return Err(invalid(field, "an https:// (or http://) URL"));
    }
    let (host, port) =
        target::host_port(url, if https { 443 } else { 80 }).map_err(|e| invalid(field, e))?;
    target::check_host(&host, port, allow_private)
        .await
        .map_err(|e| invalid(field, e))?;
    Ok(url.to_owned())
}

/// An email receiver's URL (`smtp://host[:port]`), its addresses checked.
async fn email(draft: &Draft, allow_private: bool) -> Result<String, Invalid> {
    let s = &draft.settings;
    let url = draft.url.trim();
    if !url.starts_with("smtp://") {
        return Err(invalid("url", "smtp://host[:port] (TLS is smtp_tls's)"));
    }
    if s.smtp_tls == SmtpTls::None && !allow_private {
        return Err(invalid(
            "smtp_tls",
            "SMTP_TLS_NONE sends mail in the clear: only where the operator allows private targets (--notify-allow-private-targets)",
        ));
    }
    let (host, port) = target::host_port(url, super::send::default_port(s.smtp_tls))
        .map_err(|e| invalid("url", e))?;
    target::check_host(&host, port, allow_private)
        .await
        .map_err(|e| invalid("url", e))?;
    s.email_from
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| invalid("email_from", format!("not an address: {e}")))?;
    if s.email_to.is_empty() {
        return Err(invalid("email_to", "at least one recipient"));
    }
    for to in &s.email_to {
        to.parse::<lettre::message::Mailbox>()
            .map_err(|e| invalid("email_to", format!("{to:?} is not an address: {e}")))?;
    }
    if s.smtp_username.is_empty() != draft.secret.is_empty() {
        return Err(invalid(
            "smtp_username",
            "an SMTP user and password go together",
        ));
    }
    Ok(url.to_owned())
}

/// Checks a glob of a route or a silence (`field` names it in errors).
pub fn check_glob(field: &'static str, glob: &str) -> Result<(), Invalid> {
    if glob.len() > 256 {
        return Err(invalid(field, format!("{glob:?}: at most 256 bytes")));
    }
    if glob.contains(['[', ']', '{', '}', '\\']) {
        return Err(invalid(
            field,
            format!("{glob:?}: a glob takes `*` and `?` only (no classes, braces or escapes)"),
        ));
    }
    Ok(())
}

/// Checks matchers (`field` is `routes[i].matchers` or `matchers`).
pub fn check_matchers(field: &'static str, m: &Matchers) -> Result<(), Invalid> {
    for g in m.services.iter().chain(&m.endpoints) {
        check_glob(field, g)?;
    }
    if m.services.len() + m.endpoints.len() > 100 {
        return Err(invalid(field, "at most 100 globs"));
    }
    Ok(())
}

/// Checks a tenant's routes against its receivers' names.
pub fn check_routes(routes: &Routes, receivers: &[String]) -> Result<(), Invalid> {
    if routes.routes.len() > 100 {
        return Err(invalid("routes", "at most 100 routes"));
    }
    let known = |field: &'static str, names: &[String]| -> Result<(), Invalid> {
        match names.iter().find(|n| !receivers.contains(n)) {
            Some(n) => Err(invalid(field, format!("no receiver named {n:?}"))),
            None => Ok(()),
        }
    };
    for route in &routes.routes {
        check_matchers("routes.matchers", &route.matchers)?;
        if route.receivers.is_empty() && route.escalation.is_empty() {
            return Err(invalid(
                "routes.receivers",
                "a route names at least one receiver",
            ));
        }
        known("routes.receivers", &route.receivers)?;
        let mut last = 0;
        for step in &route.escalation {
            if step.after_secs == 0 || step.after_secs < last {
                return Err(invalid(
                    "routes.escalation.after",
                    "each step after the one before it, and after more than 0 s",
                ));
            }
            last = step.after_secs;
            known("routes.escalation.receivers", &step.receivers)?;
        }
        if route.repeat_secs != 0 && route.repeat_secs < 60 {
            return Err(invalid("routes.repeat_interval", "at least 1 minute"));
        }
        if route.group_secs > 3_600 {
            return Err(invalid("routes.group_window", "at most 1 hour"));
        }
    }
    if !routes.fallback_receiver.is_empty() {
        known(
            "fallback_receiver",
            std::slice::from_ref(&routes.fallback_receiver),
        )?;
    }
    known("default_receivers", &routes.default_receivers)
}

/// Checks a recurrence.
pub fn check_recurrence(r: &Recurrence) -> Result<(), Invalid> {
    if !super::routing::valid_time_zone(&r.time_zone) {
        return Err(invalid(
            "recurrence.time_zone",
            format!(
                "{:?} is not an IANA time zone (such as Europe/Paris)",
                r.time_zone
            ),
        ));
    }
    if r.weekdays.iter().any(|d| !(1..=7).contains(d)) {
        return Err(invalid("recurrence.weekdays", "1 (Monday) to 7 (Sunday)"));
    }
    if r.from_minute >= 24 * 60 || r.to_minute >= 24 * 60 || r.from_minute == r.to_minute {
        return Err(invalid("recurrence.to", "two different times of day"));
    }
    Ok(())
}

/// Minutes after midnight of `HH:MM`.
pub fn minute_of_day(field: &'static str, text: &str) -> Result<u16, Invalid> {
    let bad = || invalid(field, format!("{text:?} is not a time of day (HH:MM)"));
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: ReceiverKind, url: &str) -> Draft {
        Draft {
            name: "ops".into(),
            kind: Some(kind),
            url: url.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn private_and_metadata_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let err = check(draft(ReceiverKind::Webhook, url), false)
                .await
                .unwrap_err();
            assert_eq!(err.field, "url");
            assert!(
                err.problem.contains("--notify-allow-private-targets"),
                "{err:?}"
            );
            assert!(check(draft(ReceiverKind::Webhook, url), true).await.is_ok());
        }
    }

    #[tokio::test]
    async fn each_problem_names_its_field() {
        let mut d = draft(ReceiverKind::Webhook, "http://127.0.0.1/h");
        d.name = "bad name".into();
        assert_eq!(check(d, true).await.unwrap_err().field, "name");
        let mut d = draft(ReceiverKind::Webhook, "ftp://x/");
        assert_eq!(check(d.clone(), true).await.unwrap_err().field, "url");
        d.kind = None;
        assert_eq!(check(d, true).await.unwrap_err().field, "kind");
        let mut d = draft(ReceiverKind::Webhook, "http://127.0.0.1/h");
        d.secret = "not-whsec".into();
        assert_eq!(check(d, true).await.unwrap_err().field, "secret");
        let d = draft(ReceiverKind::Pagerduty, "");
        assert_eq!(check(d, true).await.unwrap_err().field, "secret");
        let mut d = draft(ReceiverKind::Email, "smtp://127.0.0.1:2525");
        d.settings.smtp_tls = SmtpTls::None;
        d.settings.email_from = "pulsyon@example.com".into();
        assert_eq!(check(d.clone(), true).await.unwrap_err().field, "email_to");
        assert_eq!(check(d.clone(), false).await.unwrap_err().field, "smtp_tls");
        d.settings.email_to = vec!["ops@example.com".into()];
        assert!(check(d, true).await.is_ok());
        let mut d = draft(ReceiverKind::Slack, "http://127.0.0.1/services/T/B/x");
        d.settings.email_from = "a@example.com".into();
        assert_eq!(check(d, true).await.unwrap_err().field, "email_from");
    }

    #[tokio::test]
    async fn a_webhook_secret_is_generated_and_a_slack_url_kept_secret() {
        let (spec, made) = check(draft(ReceiverKind::Webhook, "http://127.0.0.1/h"), true)
            .await
            .unwrap();
        assert_eq!(Some(spec.secret.expose().to_owned()), made);
        let (spec, made) = check(
            draft(ReceiverKind::Slack, "http://127.0.0.1:8080/services/T/B/x"),
            true,
        )
        .await
        .unwrap();
        assert_eq!(made, None);
        assert_eq!(spec.url, "http://127.0.0.1:8080");
        assert_eq!(spec.secret.expose(), "http://127.0.0.1:8080/services/T/B/x");
    }
}
