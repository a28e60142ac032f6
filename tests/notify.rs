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
use pb::Delivery;
use pulsyon::proto::v1::{
    self as pb, admin_client::AdminClient, incidents_client::IncidentsClient,
    ingest_client::IngestClient,
};
use serde_json::Value;
use tonic::{Code, Status, transport::Channel};

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

/// The string at `pointer` of each record.
fn strings(records: &[Value], pointer: &str) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            r.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn emails(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "email")
        .cloned()
        .collect()
}

fn secs(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
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
        let list = incidents_of(&mut incidents, key).await;
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

/// Waits (`secs` at most) for the first delivery `req` lists.
async fn first_delivery(
    incidents: &mut IncidentsClient<Channel>,
    key: &str,
    req: pb::ListDeliveriesRequest,
    secs: u64,
) -> pb::Delivery {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = incidents
            .list_deliveries(authed(req.clone(), key))
            .await
            .unwrap()
            .into_inner();
        if let Some(d) = got.deliveries.first() {
            return d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no delivery in {secs} s: {req:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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
    let public = ["--public-url", "https://pulsyon.example.com"];
    let (db, key, secret, peers, server, _store, mut admin) = setup(&[DETECTING, &public]).await;
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
    acknowledge(&mut incidents, &key, &id, "looking").await;
    let resolve = pb::ResolveIncidentRequest {
        incident_id: id.clone(),
        by: "ana".into(),
        note: "rolled back".into(),
    };
    let resolved = incidents.resolve_incident(authed(resolve, &key)).await;
    resolved.unwrap();
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
    assert_eq!(
        strings(&hooks, "/body/change"),
        ["opened", "acknowledged", "resolved"]
    );
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
    assert_eq!(
        strings(&pd, "/body/event_action"),
        ["trigger", "acknowledge", "resolve"]
    );
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

    // The delivery log: every delivery delivered (its result is recorded
    // just after the receiver answers), each with its attempt.
    let request = pb::ListDeliveriesRequest {
        incident_id: id.clone(),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        let list = incidents
            .list_deliveries(authed(request.clone(), &key))
            .await
            .unwrap()
            .into_inner();
        let done = list.deliveries.len() == 15
            && list
                .deliveries
                .iter()
                .all(|d| d.state == pb::DeliveryState::Delivered as i32);
        if done || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
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
    let tight = [
        "--notify-timeout",
        "1s",
        "--notify-backoff",
        "200ms",
        "--notify-max-backoff",
        "1s",
        "--notify-deadline",
        "10s",
    ];
    let (_db, key, secret, peers, server, _store, mut admin) = setup(&[DETECTING, &tight]).await;
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
    let delivered = pb::DeliveryState::Delivered;
    let flaky_log = first_delivery(&mut incidents, &key, list("flaky", delivered), 30).await;
    let statuses: Vec<i32> = flaky_log.attempt_log.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [500, 500, 500, 204], "{flaky_log:#?}");
    assert!(
        flaky_log.attempt_log[0]
            .error
            .contains("failing on purpose")
    );
    // Retry-After: 1 honoured: the second attempt a second or more after the first.
    let busy = first_delivery(&mut incidents, &key, list("busy", delivered), 30).await;
    let log = &busy.attempt_log;
    assert_eq!(log[0].status, 429);
    let gap = log[1].at.unwrap().seconds * 1_000 + i64::from(log[1].at.unwrap().nanos / 1_000_000)
        - (log[0].at.unwrap().seconds * 1_000 + i64::from(log[0].at.unwrap().nanos / 1_000_000));
    assert!(gap >= 1_000 - 20, "Retry-After not honoured: {gap} ms");
    // The hanging receiver: past its deadline, failed; its attempts timed out.
    let failed = pb::DeliveryState::Failed;
    let failed = first_delivery(&mut incidents, &key, list("hang", failed), 60).await;
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
    let retried = retry(&mut incidents, &key, &failed.delivery_id)
        .await
        .unwrap();
    assert_eq!(retried.state, pb::DeliveryState::Pending as i32);
    first_delivery(&mut incidents, &key, list("hang", delivered), 30).await;
    // A delivery that is not the tenant's (or not at all) is not found.
    let err = retry(&mut incidents, &key, "999999").await.unwrap_err();
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
    let gone = pb::DeleteReceiverRequest {
        name: "mine".into(),
    };
    let err = admin
        .delete_receiver(authed(gone, &other))
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

/// An incident of `service` opened now through the lifecycle (the same
/// transaction and outbox row the detector's alerts make).
async fn open_incident(store: &pulsyon::store::Store, tenant: &str, service: &str) -> i64 {
    let id = store.tenant_by_name(tenant).await.unwrap().id;
    let alert = common::alert(id, service, pulsyon::domain::rules::Severity::Critical);
    let (_, updates) = common::fire(store, &alert, Duration::from_secs(1800))
        .await
        .unwrap();
    updates[0].incident.incident_id
}

/// Acknowledges `incident` as ana.
async fn acknowledge(
    incidents: &mut IncidentsClient<Channel>,
    key: &str,
    incident: impl ToString,
    note: &str,
) {
    let ack = pb::AcknowledgeIncidentRequest {
        incident_id: incident.to_string(),
        by: "ana".into(),
        note: note.into(),
    };
    incidents
        .acknowledge_incident(authed(ack, key))
        .await
        .unwrap();
}

/// The tenant's incidents, newest first.
async fn incidents_of(
    incidents: &mut IncidentsClient<Channel>,
    key: &str,
) -> pb::ListIncidentsResponse {
    let req = pb::ListIncidentsRequest::default();
    let answer = incidents.list_incidents(authed(req, key)).await;
    answer.unwrap().into_inner()
}

/// `RetryDelivery` of `id`: the delivery, pending again.
async fn retry(c: &mut IncidentsClient<Channel>, key: &str, id: &str) -> Result<Delivery, Status> {
    let req = pb::RetryDeliveryRequest {
        delivery_id: id.into(),
    };
    let answer = c.retry_delivery(authed(req, key)).await?;
    Ok(answer.into_inner().delivery.unwrap_or_default())
}

fn hooks_about(records: &[Value], incident: i64) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "http" && r["body"]["incident"]["id"] == incident)
        .cloned()
        .collect()
}

async fn deliveries_of(
    incidents: &mut IncidentsClient<Channel>,
    key: &str,
    incident: i64,
) -> Vec<pb::Delivery> {
    let req = pb::ListDeliveriesRequest {
        incident_id: incident.to_string(),
        ..Default::default()
    };
    incidents
        .list_deliveries(authed(req, key))
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

/// A server of these flags (and private targets allowed).
fn notifying_server(db: &TestDb, flags: &[&[&str]]) -> Server {
    let mut args = vec!["--notify-allow-private-targets"];
    args.extend(flags.iter().flat_map(|f| f.iter().copied()));
    Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &args,
        ..Default::default()
    })
}

/// What most tests start from: a database, tenant `acme`'s key, the
/// webhook secret, the peers, a notifying server, a store, an Admin client.
type Setup = (
    TestDb,
    String,
    String,
    Peers,
    Server,
    pulsyon::store::Store,
    AdminClient<Channel>,
);

/// A server that detects by itself (incidents provoked through ingest).
const DETECTING: &[&str] = &["--detect-interval", "1s", "--rollup-interval", "200ms"];
/// A server whose incidents the test opens itself.
const QUIET: &[&str] = &["--detector", "false"];

/// The set-up with a server of these flags.
async fn setup(flags: &[&[&str]]) -> Setup {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let secret = webhook_secret();
    let peers = Peers::start(&secret);
    let server = notifying_server(&db, flags);
    let store = db.store().await;
    let admin = AdminClient::new(server.channel().await);
    (db, key, secret, peers, server, store, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_the_messages_never_the_incident_and_its_end_sends_them() {
    let (_db, key, secret, peers, server, store, mut admin) = setup(&[QUIET]).await;
    receiver(
        &mut admin,
        &key,
        webhook("hook", peers.url("/hook"), &secret),
    )
    .await;
    let matchers = |service: &str| {
        Some(pb::Matchers {
            services: vec![service.into()],
            ..Default::default()
        })
    };
    let silence = |req: pb::CreateSilenceRequest| {
        let mut admin = admin.clone();
        let key = key.clone();
        async move {
            admin
                .create_silence(authed(req, &key))
                .await
                .unwrap()
                .into_inner()
                .silence
                .unwrap()
        }
    };
    // An hour-long silence of payments*, and a recurring one for search at
    // hours that are not now (a window of one minute, twelve hours away).
    let held = silence(pb::CreateSilenceRequest {
        matchers: matchers("pay*"),
        duration: secs(3600),
        created_by: "ana".into(),
        comment: "deploying".into(),
        ..Default::default()
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let away = (u16::from(now.hour()) * 60 + u16::from(now.minute()) + 12 * 60) % (24 * 60);
    let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    silence(pb::CreateSilenceRequest {
        matchers: matchers("search"),
        duration: secs(3600),
        recurrence: Some(pb::Recurrence {
            weekdays: vec![],
            from: hhmm(away),
            to: hhmm((away + 1) % (24 * 60)),
            time_zone: "UTC".into(),
        }),
        created_by: "ana".into(),
        ..Default::default()
    })
    .await;
    let payments = open_incident(&store, "acme", "payments").await;
    let search = open_incident(&store, "acme", "search").await;
    // The recurring window outside its hours silences nothing: search is sent.
    peers
        .wait_for("search's opening", |r| !hooks_about(r, search).is_empty())
        .await;
    let mut incidents = IncidentsClient::new(server.channel().await);
    // Payments opened (the incident is there), its message held, and its
    // delivery log says by which silence.
    let list = incidents_of(&mut incidents, &key).await;
    assert!(
        list.incidents
            .iter()
            .any(|i| i.incident_id == payments.to_string())
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let suppressed = loop {
        let d = deliveries_of(&mut incidents, &key, payments).await;
        if !d.is_empty() {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "payments' delivery never planned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        suppressed[0].state,
        pb::DeliveryState::Suppressed as i32,
        "{suppressed:#?}"
    );
    assert_eq!(suppressed[0].silence_id, held.silence_id);
    assert!(hooks_about(&peers.received(), payments).is_empty());
    // The silence ends while payments is open: it is sent then.
    admin
        .expire_silence(authed(
            pb::ExpireSilenceRequest {
                silence_id: held.silence_id.clone(),
            },
            &key,
        ))
        .await
        .unwrap();
    let got = peers
        .wait_for("payments once its silence ended", |r| {
            !hooks_about(r, payments).is_empty()
        })
        .await;
    assert_eq!(hooks_about(&got, payments)[0]["body"]["change"], "opened");
    // Bad silences name their field.
    for (req, field) in [
        (
            pb::CreateSilenceRequest {
                created_by: "ana".into(),
                ..Default::default()
            },
            "ends_at",
        ),
        (
            pb::CreateSilenceRequest {
                created_by: "ana".into(),
                duration: secs(60),
                recurrence: Some(pb::Recurrence {
                    from: "09:00".into(),
                    to: "17:00".into(),
                    time_zone: "Mars/Olympus_Mons".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "time_zone",
        ),
        (
            pb::CreateSilenceRequest {
                created_by: "ana".into(),
                matchers: matchers("[a-z]*"),
                duration: secs(60),
                ..Default::default()
            },
            "matchers",
        ),
        (
            pb::CreateSilenceRequest {
                created_by: "ana".into(),
                ends_at: Some(ts(SystemTime::now() + Duration::from_secs(60))),
                duration: secs(60),
                ..Default::default()
            },
            "duration",
        ),
    ] {
        let err = admin.create_silence(authed(req, &key)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(field), "{field}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_choose_receivers_and_an_unacknowledged_incident_escalates_only_when_due() {
    let (_db, key, secret, peers, server, store, mut admin) = setup(&[QUIET]).await;
    for name in ["team", "lead", "ops"] {
        receiver(
            &mut admin,
            &key,
            webhook(name, peers.url(&format!("/hook?{name}")), &secret),
        )
        .await;
    }
    let route = pb::NotificationRoute {
        matchers: Some(pb::Matchers {
            services: vec!["pay*".into()],
            ..Default::default()
        }),
        receivers: vec!["team".into()],
        escalation: vec![pb::EscalationStep {
            after: secs(12),
            receivers: vec!["lead".into()],
        }],
        ..Default::default()
    };
    admin
        .set_routes(authed(
            pb::SetRoutesRequest {
                routes: vec![route.clone()],
                default_receivers: vec!["ops".into()],
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap();
    let listed = admin
        .list_routes(authed(pb::ListRoutesRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.routes[0].receivers, ["team"]);
    assert_eq!(listed.default_receivers, ["ops"]);
    let at = |r: &[Value], who: &str, incident: i64| -> Vec<Value> {
        hooks_about(r, incident)
            .into_iter()
            .filter(|h| h["path"] == format!("/hook?{who}"))
            .collect()
    };
    // Payments (acknowledged at once) and payroll (never): both to the team.
    let payments = open_incident(&store, "acme", "payments").await;
    let payroll = open_incident(&store, "acme", "payroll").await;
    let mut incidents = IncidentsClient::new(server.channel().await);
    acknowledge(&mut incidents, &key, payments, "").await;
    let mail = open_incident(&store, "acme", "mail").await;
    let got = peers
        .wait_for("the team's and the default route's messages", |r| {
            at(r, "team", payments).len() == 2
                && at(r, "team", payroll).len() == 1
                && at(r, "ops", mail).len() == 1
        })
        .await;
    // Nobody else heard yet: the lead's step is 12 s away, mail went to ops only.
    assert!(at(&got, "lead", payroll).is_empty() && at(&got, "team", mail).is_empty());
    let got = peers
        .wait_for("payroll's escalation to the lead", |r| {
            !at(r, "lead", payroll).is_empty()
        })
        .await;
    let escalation = &at(&got, "lead", payroll)[0];
    assert!(
        escalation["body"]["note"]
            .as_str()
            .unwrap()
            .contains("not acknowledged"),
        "{escalation:#?}"
    );
    // Payments was acknowledged before its step: no escalation, ever.
    assert!(at(&got, "lead", payments).is_empty());
    let logged = deliveries_of(&mut incidents, &key, payroll).await;
    assert!(
        logged.iter().any(|d| d.reason == "escalation:0:0"),
        "{logged:#?}"
    );
    // A route naming an unknown receiver, or a bad glob, is refused by field.
    for (bad, field) in [
        (
            pb::NotificationRoute {
                receivers: vec!["nobody".into()],
                ..route.clone()
            },
            "receivers",
        ),
        (
            pb::NotificationRoute {
                matchers: Some(pb::Matchers {
                    services: vec!["{a,b}".into()],
                    ..Default::default()
                }),
                ..route.clone()
            },
            "matchers",
        ),
    ] {
        let err = admin
            .set_routes(authed(
                pb::SetRoutesRequest {
                    routes: vec![bad],
                    default_receivers: vec![],
                    ..Default::default()
                },
                &key,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(field), "{field}: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_window_sends_each_receiver_one_digest_and_every_incident_logs_it() {
    let (_db, key, secret, peers, server, store, mut admin) = setup(&[QUIET]).await;
    let chat = pb::CreateReceiverRequest {
        name: "chat".into(),
        kind: pb::ReceiverKind::Slack as i32,
        url: peers.url("/slack"),
        ..Default::default()
    };
    for req in [webhook("team", peers.url("/hook"), &secret), chat] {
        receiver(&mut admin, &key, req).await;
    }
    let route = pb::NotificationRoute {
        receivers: vec!["team".into(), "chat".into()],
        group: true,
        group_window: secs(3),
        ..Default::default()
    };
    let routes = pb::SetRoutesRequest {
        routes: vec![route],
        default_receivers: vec![],
        ..Default::default()
    };
    admin.set_routes(authed(routes, &key)).await.unwrap();
    // A tenant-wide outage: three incidents within the window.
    let mut opened = Vec::new();
    for service in ["payments", "payroll", "mail"] {
        opened.push(open_incident(&store, "acme", service).await);
    }
    let got = peers
        .wait_for("one digest at each receiver", |r| {
            !at(r, "/hook").is_empty() && !at(r, "/slack").is_empty()
        })
        .await;
    let hooks = at(&got, "/hook");
    assert_eq!(hooks.len(), 1, "one message, not three: {hooks:#?}");
    let body = &hooks[0]["body"];
    assert_eq!(body["change"], "digest");
    let ids: Vec<i64> = body["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["incident"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, opened, "every incident, oldest first");
    // The digest's blocks passed slack_sdk's models at the receiver.
    let slack = at(&got, "/slack");
    assert_eq!(slack.len(), 1);
    assert_eq!(slack[0]["answer"], 200, "{slack:#?}");
    assert_eq!(slack[0]["body"]["blocks"].as_array().unwrap().len(), 4);
    // Each incident's log shows its own delivery, sent within the digest.
    let mut incidents = IncidentsClient::new(server.channel().await);
    let mut digests = std::collections::HashSet::new();
    for id in &opened {
        // The sender records a digest's end (and its members') once the
        // receiver answered: shortly after the receiver has it.
        let deadline = Instant::now() + Duration::from_secs(15);
        let logged = loop {
            let logged = deliveries_of(&mut incidents, &key, *id).await;
            let done = logged
                .iter()
                .filter(|d| d.reason == "update")
                .all(|d| d.state == pb::DeliveryState::Delivered as i32);
            if done || Instant::now() > deadline {
                break logged;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mine: Vec<_> = logged.iter().filter(|d| d.reason == "update").collect();
        assert_eq!(mine.len(), 2, "{logged:#?}");
        for d in mine {
            assert_eq!(d.state, pb::DeliveryState::Delivered as i32, "{d:#?}");
            assert!(!d.digest_id.is_empty(), "{d:#?}");
            digests.insert(d.digest_id.clone());
        }
    }
    assert_eq!(digests.len(), 2, "one digest per receiver");
    // A lone change in a later window goes out as itself.
    acknowledge(&mut incidents, &key, opened[1], "").await;
    let got = peers
        .wait_for("the acknowledgement", |r| at(r, "/hook").len() == 2)
        .await;
    assert_eq!(at(&got, "/hook")[1]["body"]["change"], "acknowledged");
    // A window without grouping, or of nothing, is refused by field.
    for (bad, field) in [
        (
            pb::NotificationRoute {
                group_window: secs(5),
                ..Default::default()
            },
            "routes.group_window",
        ),
        (
            pb::NotificationRoute {
                group: true,
                group_window: secs(0),
                ..Default::default()
            },
            "routes.group_window",
        ),
    ] {
        let req = pb::SetRoutesRequest {
            routes: vec![bad],
            default_receivers: vec![],
            ..Default::default()
        };
        let err = admin.set_routes(authed(req, &key)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(field), "{err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_past_its_threshold_is_an_incident_sent_to_the_fallback() {
    let fast = ["--notify-backoff", "200ms", "--notify-max-backoff", "500ms"];
    let (_db, key, secret, peers, server, store, mut admin) = setup(&[QUIET, &fast]).await;
    for (name, path) in [("hook", "/flaky/100000"), ("ops", "/hook?ops")] {
        receiver(&mut admin, &key, webhook(name, peers.url(path), &secret)).await;
    }
    let routes = pb::SetRoutesRequest {
        routes: vec![],
        default_receivers: vec!["hook".into()],
        fallback_receiver: "ops".into(),
        fallback_after: secs(3),
    };
    admin.set_routes(authed(routes, &key)).await.unwrap();
    let listed = admin
        .list_routes(authed(pb::ListRoutesRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.fallback_receiver, "ops");
    assert_eq!(listed.fallback_after, secs(3));
    let payments = open_incident(&store, "acme", "payments").await;
    let got = peers
        .wait_for("the system's incident at the fallback", |r| {
            !at(r, "/hook?ops").is_empty()
        })
        .await;
    let told = &at(&got, "/hook?ops")[0]["body"];
    assert_eq!(told["change"], "opened", "{told:#?}");
    assert_eq!(told["incident"]["service"], "pulsyon.notify");
    let title = told["incident"]["title"].as_str().unwrap();
    assert!(
        title.contains("hook") && title.contains("failed"),
        "{title}"
    );
    // The payments incident itself never went to the fallback (routes hold).
    assert!(
        hooks_about(&got, payments)
            .iter()
            .all(|h| h["path"] != "/hook?ops")
    );
    let system: i64 = told["incident"]["id"].as_i64().unwrap();
    let mut incidents = IncidentsClient::new(server.channel().await);
    let detail = incidents
        .get_incident(authed(
            pb::GetIncidentRequest {
                incident_id: system.to_string(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let alerts = detail.alerts;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, pb::AlertKind::ReceiverFailing as i32);
    assert_eq!(alerts[0].endpoint, "hook");
    // The receiver mended: its delivery arrives and the system's alert clears.
    let mended = pb::UpdateReceiverRequest {
        name: "hook".into(),
        url: peers.url("/hook?mended"),
        ..Default::default()
    };
    admin.update_receiver(authed(mended, &key)).await.unwrap();
    peers
        .wait_for("the mended receiver's delivery", |r| {
            !at(r, "/hook?mended").is_empty()
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .firing_alerts()
        .await
        .unwrap()
        .iter()
        .any(|a| a.incident_id == Some(system))
    {
        assert!(
            Instant::now() < deadline,
            "the system's alert never cleared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only one system incident, whatever the checks in between.
    let opened = at(&peers.received(), "/hook?ops");
    assert_eq!(opened.len(), 1, "{opened:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notify_processes_never_send_one_delivery_at_once_and_a_killed_ones_are_sent_by_the_other()
 {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let secret = webhook_secret();
    let peers = Peers::start(&secret);
    // Attempts of 1 s, so a killed sender's lease (2 x 1 s + 5 s) passes soon.
    let opts = ["--notify-timeout", "1s"];
    let flags: &[&[&str]] = &[QUIET, &opts];
    let mut servers = [notifying_server(&db, flags), notifying_server(&db, flags)];
    let store = db.store().await;
    let mut admin = AdminClient::new(servers[0].channel().await);
    receiver(
        &mut admin,
        &key,
        webhook("slow", peers.url("/slow"), &secret),
    )
    .await;
    let mut opened = Vec::new();
    for i in 0..40 {
        opened.push(open_incident(&store, "acme", &format!("service-{i}")).await);
    }
    // Each process logs its sender id; the one seen holding a delivery
    // (each takes 300 ms at the receiver) is killed.
    let sender_of = |logs: String| -> Option<uuid::Uuid> {
        let line = logs
            .lines()
            .find(|l| l.contains("notify: sending deliveries"))?;
        let at = line.find("\"sender\":\"")? + "\"sender\":\"".len();
        line[at..at + 36].parse().ok()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let senders = loop {
        if let (Some(x), Some(y)) = (sender_of(servers[0].logs()), sender_of(servers[1].logs())) {
            break [x, y];
        }
        assert!(Instant::now() < deadline, "a process never started sending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pool = common::pool(&db.url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let holder: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT leased_by FROM deliveries WHERE state = 'pending' AND leased_until > now() \
             AND leased_by IS NOT NULL LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .flatten();
        if let Some(i) = holder.and_then(|h| senders.iter().position(|s| *s == h)) {
            break i;
        }
        assert!(Instant::now() < deadline, "no process ever held a delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let a_sender = senders[victim];
    let [a, b] = &mut servers;
    let (a, b) = if victim == 0 { (a, b) } else { (b, a) };
    a.signal(nix::sys::signal::Signal::SIGKILL);
    let before = peers.received();
    a.wait_exit(Duration::from_secs(10));
    // What A died holding: its leases, frozen with it.
    let held: Vec<i64> = sqlx::query_scalar(
        "SELECT delivery_id FROM deliveries WHERE leased_by = $1 AND state = 'pending'",
    )
    .bind(a_sender)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        !held.is_empty(),
        "the killed process held nothing when it died"
    );
    let ids = |records: &[Value]| -> Vec<String> {
        records
            .iter()
            .map(|r| r["headers"]["webhook-id"].as_str().unwrap().to_owned())
            .collect()
    };
    // While both lived, no delivery went out twice.
    let mut seen = ids(&before);
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        n,
        "a delivery sent twice while both processes lived: {before:#?}"
    );
    // Every one arrives, at least once, verified; a repeat carries the same id.
    let got = peers
        .wait_for("every incident's opening", |r| {
            opened.iter().all(|i| !hooks_about(r, *i).is_empty())
        })
        .await;
    assert!(got.iter().all(|r| r["verified"] == true));
    for i in &opened {
        let sent = hooks_about(&got, *i);
        assert!(sent.iter().all(|r| r["headers"]["webhook-id"]
            == format!("pulsyon-{i}-{}", sent[0]["body"]["incident"]["seq"])));
    }
    let mut incidents = IncidentsClient::new(b.channel().await);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in &opened {
        loop {
            let d = deliveries_of(&mut incidents, &key, *i).await;
            if d.iter()
                .all(|d| d.state == pb::DeliveryState::Delivered as i32)
                && !d.is_empty()
            {
                break;
            }
            assert!(Instant::now() < deadline, "incident {i}: {d:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // ...was claimed again by the other once the lease passed, and delivered.
    let retaken: Vec<(i64, i32, String, uuid::Uuid)> = sqlx::query_as(
        "SELECT delivery_id, attempts, state, leased_by FROM deliveries WHERE delivery_id = ANY($1)",
    )
    .bind(&held)
    .fetch_all(&pool)
    .await
    .unwrap();
    for (id, attempts, state, by) in retaken {
        assert_eq!(state, "delivered", "delivery {id}");
        assert!(
            attempts >= 2 && by != a_sender,
            "delivery {id}: {attempts} attempts by {by}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn senders_claiming_at_once_never_take_one_delivery_twice() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    let store = db.store().await;
    let pool = common::pool(&db.url).await;
    let incident = open_incident(&store, "acme", "checkout").await;
    sqlx::query(
        "INSERT INTO receivers (tenant_id, name, kind, url) \
         SELECT tenant_id, 'hook', 'webhook', 'http://127.0.0.1:9/hook' FROM tenants WHERE name = 'acme'",
    )
    .execute(&pool)
    .await
    .unwrap();
    // One due delivery at a time, and eight senders claiming it at once:
    // one takes it, whichever commits first; the others never.
    for round in 0..150i64 {
        let made: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (tenant_id, receiver_id, incident_id, update_seq, change, committed_at, \
               next_at, deadline, message) \
             SELECT tenant_id, receiver_id, $1, $2, 'opened', now(), now(), now() + interval '1 hour', '{}' \
             FROM receivers WHERE name = 'hook' RETURNING delivery_id",
        )
        .bind(incident)
        .bind(round)
        .fetch_one(&pool)
        .await
        .unwrap();
        let mut claims = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = store.clone();
            claims.spawn(async move {
                let sender = uuid::Uuid::now_v7();
                store
                    .claim_deliveries(4, 4, Duration::from_secs(60), sender)
                    .await
            });
        }
        let mut taken = Vec::new();
        while let Some(claimed) = claims.join_next().await {
            taken.extend(
                claimed
                    .unwrap()
                    .unwrap()
                    .into_iter()
                    .map(|c| c.delivery.delivery_id),
            );
        }
        assert_eq!(taken, vec![made], "round {round}");
        sqlx::query(
            "UPDATE deliveries SET state = 'delivered', leased_until = NULL WHERE delivery_id = $1",
        )
        .bind(made)
        .execute(&pool)
        .await
        .unwrap();
    }
}
