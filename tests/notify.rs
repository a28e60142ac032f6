//! Notifications against real peers (tests/python/receivers.py in
//! tools/venv-peers, installed by scripts/test.sh): an SMTP server
//! (aiosmtpd), a webhook receiver verifying signatures with the
//! `standardwebhooks` package, Slack bodies parsed by `slack_sdk`'s Block
//! Kit models, PagerDuty events checked field by field.

mod common;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use base64::Engine;
use common::{Server, ServerOpts, TestDb, authed, create_key, create_tenant, publish, ts};
use pulsyon::proto::v1::{
    self as pb, admin_client::AdminClient, incidents_client::IncidentsClient,
    ingest_client::IngestClient,
};
use serde_json::Value;
use tonic::{Code, transport::Channel};

/// The peers' process and what they received.
struct Peers {
    child: Child,
    record: PathBuf,
    http: u16,
    smtp: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peers {
    fn start(secret: &str) -> Peers {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python = root.join("tools/venv-peers/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test.sh (it installs the peers)",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("received.jsonl");
        let mut child = Command::new(python)
            .arg(root.join("tests/python/receivers.py"))
            .arg(&record)
            .arg(secret)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Value = serde_json::from_str(&line).unwrap();
        Peers {
            child,
            record,
            http: ports["http"].as_u64().unwrap() as u16,
            smtp: ports["smtp"].as_u64().unwrap() as u16,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `want` holds of what was received (60 s at most).
    async fn wait_for(&self, what: &str, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.received();
            if want(&got) {
                return got;
            }
            assert!(Instant::now() < deadline, "never received {what}: {got:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn at(records: &[Value], path: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["path"] == path)
        .cloned()
        .collect()
}

fn emails(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "email")
        .cloned()
        .collect()
}

fn webhook_secret() -> String {
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";

async fn receiver(
    admin: &mut AdminClient<Channel>,
    key: &str,
    req: pb::CreateReceiverRequest,
) -> pb::CreateReceiverResponse {
    admin
        .create_receiver(authed(req, key))
        .await
        .unwrap()
        .into_inner()
}

fn webhook(name: &str, url: String, secret: &str) -> pb::CreateReceiverRequest {
    pb::CreateReceiverRequest {
        name: name.into(),
        kind: pb::ReceiverKind::Webhook as i32,
        url,
        secret: secret.into(),
        ..Default::default()
    }
}

/// Two hours of healthy history then errors until an incident opens;
/// returns its id.
async fn provoke_incident(server: &Server, key: &str, service: &str) -> String {
    let mut ingest = IngestClient::new(server.channel().await);
    let now = SystemTime::now();
    let event = |at: SystemTime, status: u32| pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(ts(at)),
        service: service.into(),
        endpoint: "/pay".into(),
        status_code: status,
        latency_ms: 20.0,
        ..Default::default()
    };
    let mut seq = 0;
    for m in (1..=130).rev() {
        let at = now - Duration::from_secs(m * 60);
        seq += 1;
        let events = (0..30)
            .map(|i| event(at + Duration::from_secs(i * 2), 200))
            .collect();
        publish(&mut ingest, key, common::batch("provoke", seq, events)).await;
    }
    let mut incidents = IncidentsClient::new(server.channel().await);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = incidents
            .list_incidents(authed(pb::ListIncidentsRequest::default(), key))
            .await
            .unwrap()
            .into_inner();
        if let Some(i) = list.incidents.first() {
            return i.incident_id.clone();
        }
        assert!(Instant::now() < deadline, "no incident opened");
        seq += 1;
        let events = (0..30).map(|_| event(SystemTime::now(), 503)).collect();
        publish(&mut ingest, key, common::batch("provoke", seq, events)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn changes_of(records: &[Value], path: &str, field: &str) -> Vec<String> {
    at(records, path)
        .iter()
        .filter(|r| r["answer"].as_u64().is_some_and(|a| a < 300))
        .filter_map(|r| r["body"][field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_reaches_every_receiver_kind_and_its_acknowledgement_and_resolution_follow_in_order()
 {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let secret = webhook_secret();
    let peers = Peers::start(&secret);
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &[
            "--detect-interval",
            "1s",
            "--rollup-interval",
            "200ms",
            "--notify-allow-private-targets",
            "--public-url",
            "https://pulsyon.example.com",
        ],
        ..Default::default()
    });
    let mut admin = AdminClient::new(server.channel().await);
    receiver(
        &mut admin,
        &key,
        webhook("hook", peers.url("/hook"), &secret),
    )
    .await;
    let mut am = webhook("alertmanager", peers.url("/hook"), &secret);
    am.webhook_format = pb::WebhookFormat::Alertmanager as i32;
    receiver(&mut admin, &key, am).await;
    receiver(
        &mut admin,
        &key,
        pb::CreateReceiverRequest {
            name: "slack".into(),
            kind: pb::ReceiverKind::Slack as i32,
            url: peers.url("/slack"),
            ..Default::default()
        },
    )
    .await;
    let pagerduty = receiver(
        &mut admin,
        &key,
        pb::CreateReceiverRequest {
            name: "pagerduty".into(),
            kind: pb::ReceiverKind::Pagerduty as i32,
            url: peers.url("/pagerduty"),
            secret: ROUTING_KEY.into(),
            ..Default::default()
        },
    )
    .await;
    let fingerprint = pagerduty.receiver.unwrap().secret_fingerprint;
    assert!(fingerprint.starts_with("sha256:"), "{fingerprint}");
    receiver(
        &mut admin,
        &key,
        pb::CreateReceiverRequest {
            name: "mail".into(),
            kind: pb::ReceiverKind::Email as i32,
            url: format!("smtp://127.0.0.1:{}", peers.smtp),
            smtp_tls: pb::SmtpTls::None as i32,
            email_from: "pulsyon@example.com".into(),
            email_to: vec!["oncall@example.com".into()],
            ..Default::default()
        },
    )
    .await;

    let id = provoke_incident(&server, &key, "payments").await;
    let opened = |r: &[Value]| {
        changes_of(r, "/hook", "change").contains(&"opened".to_owned())
            && at(r, "/slack").len() == 1
            && at(r, "/pagerduty").len() == 1
            && emails(r).len() == 1
    };
    peers
        .wait_for("the opened incident everywhere", opened)
        .await;
    let mut incidents = IncidentsClient::new(server.channel().await);
    let ack = pb::AcknowledgeIncidentRequest {
        incident_id: id.clone(),
        by: "ana".into(),
        note: "looking".into(),
    };
    incidents
        .acknowledge_incident(authed(ack, &key))
        .await
        .unwrap();
    let resolve = pb::ResolveIncidentRequest {
        incident_id: id.clone(),
        by: "ana".into(),
        note: "rolled back".into(),
    };
    incidents
        .resolve_incident(authed(resolve, &key))
        .await
        .unwrap();
    let all = |r: &[Value]| {
        at(r, "/slack").len() == 3
            && at(r, "/pagerduty").len() == 3
            && emails(r).len() == 3
            && changes_of(r, "/hook", "change").len() == 3
            && changes_of(r, "/hook", "status").len() == 3
    };
    let got = peers
        .wait_for("acknowledged and resolved everywhere", all)
        .await;

    // The webhook: verified by standardwebhooks, in order, ids stable per update.
    let hooks: Vec<Value> = at(&got, "/hook")
        .into_iter()
        .filter(|r| r["body"]["version"] == "1")
        .collect();
    assert!(hooks.iter().all(|h| h["verified"] == true), "{hooks:#?}");
    let order: Vec<&str> = hooks
        .iter()
        .map(|h| h["body"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["opened", "acknowledged", "resolved"]);
    assert_eq!(
        hooks[0]["body"]["incident"]["url"],
        format!("https://pulsyon.example.com/#/incidents/{id}")
    );
    assert_eq!(hooks[1]["body"]["actor"], "ana");
    assert_eq!(hooks[0]["headers"]["webhook-id"], hooks[0]["body"]["id"]);
    // The Alertmanager format: firing, firing, resolved.
    let am: Vec<&str> = at(&got, "/hook")
        .iter()
        .filter(|r| r["body"]["version"] == "4")
        .map(|r| r["body"]["status"].as_str().unwrap().to_owned())
        .map(|s| if s == "firing" { "firing" } else { "resolved" })
        .collect();
    assert_eq!(am, ["firing", "firing", "resolved"]);
    // Slack: every body's blocks parsed by slack_sdk.
    assert!(
        at(&got, "/slack").iter().all(|r| r["answer"] == 200),
        "{got:#?}"
    );
    // PagerDuty: trigger, acknowledge, resolve of one dedup_key with the routing key.
    let pd = at(&got, "/pagerduty");
    assert!(pd.iter().all(|r| r["answer"] == 202), "{pd:#?}");
    let actions: Vec<&str> = pd
        .iter()
        .map(|r| r["body"]["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    assert!(
        pd.iter()
            .all(|r| r["body"]["dedup_key"] == format!("pulsyon-incident-{id}"))
    );
    assert!(pd.iter().all(|r| r["body"]["routing_key"] == ROUTING_KEY));
    assert_eq!(pd[0]["body"]["payload"]["source"], "payments");
    // Email: one thread.
    let mails = emails(&got);
    let first = mails[0]["headers"]["message-id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        first,
        format!("<pulsyon.incident-{id}@pulsyon.example.com>")
    );
    for m in &mails[1..] {
        assert_eq!(m["headers"]["in-reply-to"], first);
        assert_eq!(m["headers"]["references"], first);
    }
    assert!(mails[2]["body"].as_str().unwrap().contains("[Resolved]"));

    // The delivery log: every delivery delivered, each with its attempt.
    let list = incidents
        .list_deliveries(authed(
            pb::ListDeliveriesRequest {
                incident_id: id.clone(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.deliveries.len(), 15, "{list:#?}");
    for d in &list.deliveries {
        assert_eq!(d.state, pb::DeliveryState::Delivered as i32, "{d:#?}");
        assert!(
            !d.attempt_log.is_empty() && d.attempt_log.last().unwrap().ok,
            "{d:#?}"
        );
    }

    // Secrets: never in an answer, a log line or a delivery record.
    let listed = admin
        .list_receivers(authed(pb::ListReceiversRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    let shown = format!("{listed:?} {list:?}");
    let pool = common::pool(&db.url).await;
    let stored: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(message::text || last_error, ' '), '') FROM deliveries",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let logs = server.logs();
    for s in [secret.as_str(), ROUTING_KEY, "/slack"] {
        assert!(!shown.contains(s), "{s} in an answer");
        assert!(!stored.contains(s), "{s} in a delivery record");
        assert!(!logs.contains(s), "{s} in the log");
    }
    let slack = listed.receivers.iter().find(|r| r.name == "slack").unwrap();
    assert_eq!(slack.url, format!("http://127.0.0.1:{}", peers.http));
    assert!(slack.last_success_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receivers_are_retried_alone_and_a_failed_delivery_is_sent_again_by_hand() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let secret = webhook_secret();
    let peers = Peers::start(&secret);
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &[
            "--detect-interval",
            "1s",
            "--rollup-interval",
            "200ms",
            "--notify-allow-private-targets",
            "--notify-timeout",
            "1s",
            "--notify-backoff",
            "200ms",
            "--notify-max-backoff",
            "1s",
            "--notify-deadline",
            "10s",
        ],
        ..Default::default()
    });
    let mut admin = AdminClient::new(server.channel().await);
    for (name, path) in [
        ("flaky", "/flaky/3"),
        ("busy", "/busy"),
        ("hang", "/hang"),
        ("fine", "/hook"),
    ] {
        receiver(&mut admin, &key, webhook(name, peers.url(path), &secret)).await;
    }
    let id = provoke_incident(&server, &key, "payments").await;
    let got = peers
        .wait_for("the opened incident at the healthy receivers", |r| {
            at(r, "/flaky/3").len() == 4 && at(r, "/busy").len() == 2 && !at(r, "/hook").is_empty()
        })
        .await;
    // Every attempt of the flaky receiver carried the same id; the last verified.
    let flaky = at(&got, "/flaky/3");
    assert!(
        flaky
            .iter()
            .all(|r| r["headers"]["webhook-id"] == flaky[0]["headers"]["webhook-id"])
    );
    assert_eq!(flaky[3]["verified"], true);
    let mut incidents = IncidentsClient::new(server.channel().await);
    let list = |receiver: &str, state: pb::DeliveryState| pb::ListDeliveriesRequest {
        incident_id: id.clone(),
        receiver: receiver.into(),
        state: state as i32,
        page_size: 0,
    };
    // The flaky delivery: delivered, with its four attempts listed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let flaky_log = loop {
        let got = incidents
            .list_deliveries(authed(list("flaky", pb::DeliveryState::Delivered), &key))
            .await
            .unwrap()
            .into_inner();
        if let Some(d) = got.deliveries.first() {
            break d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the flaky delivery never delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let statuses: Vec<i32> = flaky_log.attempt_log.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [500, 500, 500, 204], "{flaky_log:#?}");
    assert!(
        flaky_log.attempt_log[0]
            .error
            .contains("failing on purpose")
    );
    // Retry-After: 1 honoured: the second attempt a second or more after the first.
    let busy = incidents
        .list_deliveries(authed(list("busy", pb::DeliveryState::Delivered), &key))
        .await
        .unwrap()
        .into_inner();
    let log = &busy.deliveries[0].attempt_log;
    assert_eq!(log[0].status, 429);
    let gap = log[1].at.unwrap().seconds * 1_000 + i64::from(log[1].at.unwrap().nanos / 1_000_000)
        - (log[0].at.unwrap().seconds * 1_000 + i64::from(log[0].at.unwrap().nanos / 1_000_000));
    assert!(gap >= 1_000 - 20, "Retry-After not honoured: {gap} ms");
    // The hanging receiver: past its deadline, failed; its attempts timed out.
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let got = incidents
            .list_deliveries(authed(list("hang", pb::DeliveryState::Failed), &key))
            .await
            .unwrap()
            .into_inner();
        if let Some(d) = got.deliveries.first() {
            break d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the hanging delivery never failed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(failed.last_error.contains("deadline passed"), "{failed:#?}");
    assert!(
        failed
            .attempt_log
            .iter()
            .all(|a| !a.ok && a.error.contains("no answer in time")),
        "{failed:#?}"
    );
    // Pointed somewhere that answers, and sent again by hand: delivered.
    admin
        .update_receiver(authed(
            pb::UpdateReceiverRequest {
                name: "hang".into(),
                url: peers.url("/hook"),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap();
    let retried = incidents
        .retry_delivery(authed(
            pb::RetryDeliveryRequest {
                delivery_id: failed.delivery_id.clone(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert_eq!(retried.state, pb::DeliveryState::Pending as i32);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = incidents
            .list_deliveries(authed(list("hang", pb::DeliveryState::Delivered), &key))
            .await
            .unwrap()
            .into_inner();
        if !got.deliveries.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the retried delivery never delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A delivery that is not the tenant's (or not at all) is not found.
    let err = incidents
        .retry_delivery(authed(
            pb::RetryDeliveryRequest {
                delivery_id: "999999".into(),
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_refuse_private_targets_and_bad_fields_and_stay_in_their_tenant() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let other = create_tenant(&db.url, "globex");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let mut admin = AdminClient::new(server.channel().await);
    let refused = |field: &'static str| {
        move |err: tonic::Status| {
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            assert!(err.message().contains(field), "{field}: {err:?}");
            err
        }
    };
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let err = admin
            .create_receiver(authed(webhook("private", url.into(), ""), &key))
            .await
            .map_err(refused("url"))
            .unwrap_err();
        assert!(
            err.message().contains("--notify-allow-private-targets"),
            "{err:?}"
        );
    }
    let cases: Vec<(pb::CreateReceiverRequest, &str)> = vec![
        (
            pb::CreateReceiverRequest {
                name: "x".into(),
                kind: 9,
                url: "https://example.com/".into(),
                ..Default::default()
            },
            "kind",
        ),
        (webhook("x", "not a url".into(), ""), "url"),
        (
            webhook("bad name", "https://example.com/".into(), ""),
            "name",
        ),
        (
            webhook("x", "https://example.com/".into(), "plain"),
            "secret",
        ),
        (
            pb::CreateReceiverRequest {
                webhook_format: 7,
                ..webhook("x", "https://example.com/".into(), "")
            },
            "webhook_format",
        ),
        (
            pb::CreateReceiverRequest {
                email_from: "a@example.com".into(),
                ..webhook("x", "https://example.com/".into(), "")
            },
            "email_from",
        ),
    ];
    for (req, field) in cases {
        let _ = admin
            .create_receiver(authed(req, &key))
            .await
            .map_err(refused(field))
            .unwrap_err();
    }
    // One tenant's receivers are invisible to another.
    let made = receiver(
        &mut admin,
        &key,
        webhook("mine", "https://example.com/hook".into(), ""),
    )
    .await;
    assert!(made.generated_secret.starts_with("whsec_"));
    let theirs = admin
        .list_receivers(authed(pb::ListReceiversRequest {}, &other))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.receivers.is_empty());
    let err = admin
        .delete_receiver(authed(
            pb::DeleteReceiverRequest {
                name: "mine".into(),
            },
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // A key without the admin scope cannot manage receivers.
    let reader = create_key(&db.url, "acme", "read");
    let err = admin
        .list_receivers(authed(pb::ListReceiversRequest {}, &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}
