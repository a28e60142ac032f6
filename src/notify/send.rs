//! One sender per receiver kind: an HTTP POST (webhook, Slack, PagerDuty)
//! through reqwest, an email through lettre. Each attempt is bounded in
//! time, reads at most `MAX_ANSWER` bytes of an answer, follows no redirect,
//! and reaches only addresses [`super::target`] allows. Secrets are added
//! here, at the moment of sending, and never appear in an outcome.

use std::time::{Duration, Instant};

use lettre::{
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
        response::Response,
    },
};

use super::{message::Message, sign, target};
use crate::domain::notify::{Receiver, ReceiverKind, SmtpTls, bounded_error};

/// The most of an answer's body read (for the attempt's error text).
const MAX_ANSWER: usize = 4 * 1024;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Accepted.
    pub ok: bool,
    /// The HTTP status or SMTP reply code (0: no answer).
    pub status: i32,
    /// What went wrong ('' when accepted); bounded, no secret in it.
    pub error: String,
    /// The receiver asked to wait this long (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// Another attempt would fail the same way (a 4xx other than 408 and
    /// 429, a permanent SMTP reply, a refused target).
    pub permanent: bool,
    /// How long it took.
    pub latency: Duration,
}

impl Outcome {
    fn failed(status: i32, error: String, permanent: bool, started: Instant) -> Outcome {
        Outcome {
            ok: false,
            status,
            error: bounded_error(&error),
            retry_after: None,
            permanent,
            latency: started.elapsed(),
        }
    }
}

/// The senders of a process.
#[derive(Debug, Clone)]
pub struct Senders {
    http: reqwest::Client,
    timeout: Duration,
    allow_private: bool,
}

impl Senders {
    /// Senders whose attempts last at most `timeout`.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Senders, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(target::CheckedResolver {
                allow_private,
            }))
            .user_agent(concat!("Pulsyon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Senders {
            http,
            timeout,
            allow_private,
        })
    }

    /// Sends `message` (whose identity is `id`) to `receiver`, once.
    pub async fn send(&self, receiver: &Receiver, id: &str, message: &Message) -> Outcome {
        let started = Instant::now();
        match message {
            Message::Http { body } => self.post(receiver, id, body, started).await,
            Message::Email {
                subject,
                text,
                message_id,
                in_reply_to,
            } => {
                let mail = Mail {
                    subject,
                    text,
                    message_id,
                    in_reply_to,
                };
                self.mail(receiver, mail, started).await
            }
        }
    }

    /// The URL an HTTP receiver is posted to.
    fn url_of(receiver: &Receiver) -> &str {
        match receiver.kind {
            // A Slack incoming webhook's URL is its secret.
            ReceiverKind::Slack => receiver.secret.expose(),
            _ => &receiver.url,
        }
    }

    async fn post(
        &self,
        receiver: &Receiver,
        id: &str,
        body: &serde_json::Value,
        started: Instant,
    ) -> Outcome {
        let url = Self::url_of(receiver);
        if let Err(e) = target::check_literal(url, self.allow_private) {
            return Outcome::failed(0, e, true, started);
        }
        let mut body = body.clone();
        if receiver.kind == ReceiverKind::Pagerduty {
            body["routing_key"] = receiver.secret.expose().into();
        }
        let bytes = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => return Outcome::failed(0, format!("body: {e}"), true, started),
        };
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json");
        if receiver.kind == ReceiverKind::Webhook {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let signature = sign::key_of(receiver.secret.expose())
                .and_then(|key| sign::signature(&key, id, now, &bytes));
            match signature {
                Ok(sig) => {
                    request = request
                        .header("webhook-id", id)
                        .header("webhook-timestamp", now.to_string())
                        .header("webhook-signature", sig);
                }
                Err(e) => return Outcome::failed(0, e, true, started),
            }
        }
        match request.body(bytes).send().await {
            Ok(answer) => answered(answer, started).await,
            // reqwest's error names the URL; a Slack URL is a secret.
            Err(e) => Outcome::failed(0, describe_http_error(&e, receiver), false, started),
        }
    }

    async fn mail(&self, receiver: &Receiver, mail: Mail<'_>, started: Instant) -> Outcome {
        let s = &receiver.settings;
        let email = match mail.build(&s.email_from, &s.email_to) {
            Ok(m) => m,
            Err(e) => return Outcome::failed(0, e, true, started),
        };
        let (host, port) = match target::host_port(&receiver.url, default_port(s.smtp_tls)) {
            Ok(hp) => hp,
            Err(e) => return Outcome::failed(0, e, true, started),
        };
        // Resolved and checked here; the session connects to the address
        // checked and verifies the certificate against the host's name.
        let addr = match target::resolve(&host, port, self.allow_private).await {
            Ok(addrs) => addrs[0],
            Err(e) => return Outcome::failed(0, e, true, started),
        };
        let credentials = (!s.smtp_username.is_empty()).then(|| {
            Credentials::new(s.smtp_username.clone(), receiver.secret.expose().to_owned())
        });
        let session = Session {
            addr,
            host: &host,
            tls: s.smtp_tls,
            credentials,
        };
        let sent = tokio::time::timeout(self.timeout, session.send(&email)).await;
        match sent {
            Ok(Ok(reply)) => Outcome {
                ok: true,
                status: i32::from(u16::from(reply.code())),
                error: String::new(),
                retry_after: None,
                permanent: false,
                latency: started.elapsed(),
            },
            Ok(Err(SmtpFailure::Smtp(e))) => {
                let status = e.status().map(|c| i32::from(u16::from(c))).unwrap_or(0);
                Outcome::failed(status, format!("SMTP: {e}"), e.is_permanent(), started)
            }
            Ok(Err(SmtpFailure::Connect(e))) => {
                Outcome::failed(0, format!("SMTP: cannot connect: {e}"), false, started)
            }
            Err(_) => Outcome::failed(
                0,
                format!("SMTP: no answer within {:?}", self.timeout),
                false,
                started,
            ),
        }
    }
}

/// An email's parts.
struct Mail<'a> {
    subject: &'a str,
    text: &'a str,
    message_id: &'a str,
    in_reply_to: &'a str,
}

impl Mail<'_> {
    fn build(&self, from: &str, to: &[String]) -> Result<lettre::Message, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("email_from {from:?}: {e}"))?;
        let mut builder = lettre::Message::builder()
            .from(from)
            .subject(self.subject)
            .message_id(Some(self.message_id.to_owned()))
            .header(ContentType::TEXT_PLAIN);
        if !self.in_reply_to.is_empty() {
            builder = builder
                .in_reply_to(self.in_reply_to.to_owned())
                .references(self.in_reply_to.to_owned());
        }
        for address in to {
            let mbox: Mailbox = address
                .parse()
                .map_err(|e| format!("email_to {address:?}: {e}"))?;
            builder = builder.to(mbox);
        }
        builder
            .body(self.text.to_owned())
            .map_err(|e| format!("email: {e}"))
    }
}

/// The SMTP port when the URL names none.
pub fn default_port(tls: SmtpTls) -> u16 {
    match tls {
        SmtpTls::Implicit => 465,
        SmtpTls::Starttls => 587,
        SmtpTls::None => 25,
    }
}

/// Why an SMTP session failed.
#[derive(Debug)]
enum SmtpFailure {
    /// No connection.
    Connect(std::io::Error),
    /// The server or the exchange refused (with its reply code, if any).
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for SmtpFailure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        SmtpFailure::Smtp(e)
    }
}

/// One SMTP session: connect to the address checked, TLS as the receiver
/// says, AUTH when it has a user, one message, QUIT.
struct Session<'a> {
    addr: std::net::SocketAddr,
    host: &'a str,
    tls: SmtpTls,
    credentials: Option<Credentials>,
}

impl Session<'_> {
    async fn send(self, email: &lettre::Message) -> Result<Response, SmtpFailure> {
        let hello = ClientId::Domain("pulsyon".into());
        let params = || TlsParameters::new(self.host.to_owned());
        let mut conn = match self.tls {
            SmtpTls::Implicit => {
                AsyncSmtpConnection::connect_tokio1(self.addr, None, &hello, Some(params()?), None)
                    .await?
            }
            SmtpTls::Starttls | SmtpTls::None => {
                // Our own socket, without Nagle's delay: lettre writes a
                // message's end apart from its body, and the server's
                // delayed ACK would hold every message about 40 ms.
                let tcp = tokio::net::TcpStream::connect(self.addr)
                    .await
                    .map_err(SmtpFailure::Connect)?;
                let _ = tcp.set_nodelay(true);
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await?;
                if self.tls == SmtpTls::Starttls {
                    conn.starttls(params()?, &hello).await?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        let reply = conn.send(email.envelope(), &email.formatted()).await?;
        let _ = conn.quit().await;
        Ok(reply)
    }
}

/// The outcome of an HTTP answer: 2xx accepted; 408, 429 and 5xx retried
/// (honouring `Retry-After` in seconds); other statuses permanent.
async fn answered(mut answer: reqwest::Response, started: Instant) -> Outcome {
    let status = answer.status();
    let retry_after = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut text = Vec::new();
    while text.len() < MAX_ANSWER {
        match answer.chunk().await {
            Ok(Some(chunk)) => {
                text.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - text.len())])
            }
            _ => break,
        }
    }
    let code = i32::from(status.as_u16());
    if status.is_success() {
        return Outcome {
            ok: true,
            status: code,
            error: String::new(),
            retry_after: None,
            permanent: false,
            latency: started.elapsed(),
        };
    }
    let retried = status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error();
    let error = match status.is_redirection() {
        true => format!("HTTP {code}: redirects are not followed"),
        false => format!("HTTP {code}: {}", String::from_utf8_lossy(&text).trim()),
    };
    let mut outcome = Outcome::failed(code, error, !retried, started);
    outcome.retry_after = retry_after;
    outcome
}

/// reqwest's error without its URL (a Slack URL is a secret).
fn describe_http_error(e: &reqwest::Error, receiver: &Receiver) -> String {
    let kind = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let text = format!(
        "{kind} ({} receiver {}): {cause}",
        receiver.kind.as_str(),
        receiver.name
    );
    match receiver.secret.is_empty() {
        true => text,
        false => text.replace(receiver.secret.expose(), "[secret]"),
    }
}
