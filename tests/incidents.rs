//! Incidents: the detector driven with a controlled clock against real
//! PostgreSQL (events through the store's write path, rollups caught up),
//! while a real server streams the changes over `Incidents.Watch`; resuming
//! a Watch; tenant isolation of Watch; leader failover between two processes.

mod common;

use std::time::{Duration, SystemTime};

use common::{
    Server, ServerOpts, TestDb, alert, authed, create_tenant, fire, publish, ts, two_tenants,
};
use pulsyon::{
    detect::{DetectConfig, Detector},
    domain::{
        BatchWrite, Event, TenantId,
        incident::UpdateKind,
        rules::{Kind, Severity},
    },
    incidents::lifecycle::Policy,
    proto::v1::{self as pb, incidents_client::IncidentsClient},
    rollup::{self, RollupConfig},
    stats,
    store::Store,
};
use time::OffsetDateTime;
use tokio_stream::StreamExt;
use tonic::{Code, Streaming, transport::Channel};

async fn tenant_id(store: &Store, name: &str) -> TenantId {
    store.tenant_by_name(name).await.unwrap().id
}

/// Events of one service in [at, at + secs): `per_sec` a second, `error_share` of them 503.
fn events(
    service: &str,
    at: OffsetDateTime,
    secs: i64,
    per_sec: i64,
    error_share: f64,
) -> Vec<Event> {
    let n = secs * per_sec;
    (0..n)
        .map(|i| {
            let error = (i as f64 + 0.5) / n as f64 > 1.0 - error_share;
            common::request_event(
                service,
                at + time::Duration::milliseconds(i * 1_000 / per_sec),
                if error { 503 } else { 200 },
                40.0 + (i % 7) as f64,
            )
        })
        .collect()
}

struct Scenario {
    store: Store,
    tenant: TenantId,
    detector: Detector,
    seq: i64,
}

impl Scenario {
    /// The detector of tenant `acme` (created before) on `db`, at sequence 0.
    async fn new(db: &TestDb, config: DetectConfig) -> Scenario {
        let store = db.store().await;
        let tenant = tenant_id(&store, "acme").await;
        let detector = Detector::new(store.clone(), config).await.unwrap();
        Scenario {
            store,
            tenant,
            detector,
            seq: 0,
        }
    }

    async fn write(&mut self, events: Vec<Event>) {
        self.seq += 1;
        let batch = BatchWrite {
            overflowed: 0,
            digest: [0; 32],
            tenant_id: self.tenant,
            producer_id: "scenario".into(),
            seq: self.seq,
            received_at: OffsetDateTime::now_utc(),
            events,
            rejected: vec![],
        };
        self.store.write_batches(&[batch], true).await.unwrap();
        rollup::catch_up(&self.store, &RollupConfig::default())
            .await
            .unwrap();
    }

    /// Runs the clock from `from` for `secs` seconds in 5 s steps, writing
    /// traffic with `error_share` errors; returns the kinds of the updates made.
    async fn run(
        &mut self,
        from: OffsetDateTime,
        secs: i64,
        error_share: f64,
    ) -> Vec<(OffsetDateTime, UpdateKind)> {
        let mut made = Vec::new();
        for step in 0..secs / 5 {
            let t = from + time::Duration::seconds(step * 5);
            self.write(events("payments", t, 5, 4, error_share)).await;
            let tick = self
                .detector
                .tick(t + time::Duration::seconds(5))
                .await
                .unwrap();
            made.extend(tick.updates.iter().map(|u| (u.at, u.kind)));
        }
        made
    }
}

async fn next_update(stream: &mut Streaming<pb::WatchResponse>) -> pb::IncidentUpdate {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("an update within 30 s")
            .expect("the stream is open")
            .expect("no error");
        match message.payload {
            Some(pb::watch_response::Payload::Update(u)) => return u,
            Some(pb::watch_response::Payload::Heartbeat(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The next update that changes the incident's lifecycle, skipping alerts
/// that join it (an endpoint's alert joins its service's incident).
async fn next_change(stream: &mut Streaming<pb::WatchResponse>) -> pb::IncidentUpdate {
    loop {
        let u = next_update(stream).await;
        if u.kind != pb::UpdateKind::AlertAdded as i32 && u.kind != pb::UpdateKind::Escalated as i32
        {
            return u;
        }
    }
}

/// A Watch resumed after `seq` is refused: resync required.
async fn assert_resync_required(channel: Channel, key: &str, seq: u64) {
    let request = pb::WatchRequest {
        resume_after_seq: seq,
        ..Default::default()
    };
    let err = IncidentsClient::new(channel)
        .watch(authed(request, key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().starts_with("resync required"),
        "{}",
        err.message()
    );
}

async fn get_incident(
    client: &mut IncidentsClient<Channel>,
    incident_id: &str,
    key: &str,
) -> Result<pb::GetIncidentResponse, tonic::Status> {
    let request = pb::GetIncidentRequest {
        incident_id: incident_id.into(),
    };
    Ok(client
        .get_incident(authed(request, key))
        .await?
        .into_inner())
}

async fn watch(channel: Channel, key: &str, req: pb::WatchRequest) -> Streaming<pb::WatchResponse> {
    IncidentsClient::new(channel)
        .watch(authed(req, key))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_spike_opens_an_incident_that_resolves_reopens_and_is_streamed() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    // The server only streams: this test's detector, with its own clock, decides.
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false", "--watch-heartbeat", "1s"],
        ..Default::default()
    });
    let config = DetectConfig {
        lifecycle: Policy {
            resolve_after: Duration::from_secs(120),
            ..Policy::default()
        },
        ..DetectConfig::default()
    };
    let mut s = Scenario::new(&db, config).await;
    let mut stream = watch(server.channel().await, &key, pb::WatchRequest::default()).await;

    // Two and a half hours of steady traffic with 1% errors: the baseline.
    let start = stats::floor(OffsetDateTime::now_utc(), 60) - time::Duration::hours(4);
    for m in 0..150 {
        s.write(events(
            "payments",
            start + time::Duration::minutes(m),
            60,
            2,
            0.01,
        ))
        .await;
    }
    let spike = start + time::Duration::minutes(150);
    assert!(
        s.run(spike - time::Duration::minutes(2), 120, 0.01)
            .await
            .is_empty(),
        "nothing before the spike"
    );

    // The spike: 40% errors.
    let made = s.run(spike, 120, 0.4).await;
    let (opened_at, kind) = made.first().copied().expect("the spike opens an incident");
    assert_eq!(kind, UpdateKind::Opened);
    assert!(
        opened_at - spike <= time::Duration::seconds(60),
        "found {} after onset",
        opened_at - spike
    );
    let opened = next_update(&mut stream).await;
    assert_eq!(opened.kind, pb::UpdateKind::Opened as i32);
    let alert = opened.alert.as_ref().unwrap();
    assert_eq!(alert.kind, pb::AlertKind::ErrorRate as i32);
    assert!(
        alert.explanation.starts_with("error rate "),
        "{}",
        alert.explanation
    );
    assert!(alert.observed > alert.threshold && alert.observed > alert.baseline);
    let incident = opened.incident.unwrap();
    assert_eq!(
        (incident.service.as_str(), incident.status),
        ("payments", pb::IncidentStatus::Open as i32)
    );

    // Recovery: the alert clears, and after the clear period the incident resolves by itself.
    let recovery = spike + time::Duration::minutes(2);
    let made = s.run(recovery, 8 * 60, 0.01).await;
    assert_eq!(
        made.iter().map(|m| m.1).collect::<Vec<_>>(),
        [UpdateKind::Resolved]
    );
    let resolved = next_change(&mut stream).await;
    assert_eq!(resolved.kind, pb::UpdateKind::Resolved as i32);
    assert_eq!(resolved.actor, "pulsyon");
    assert_eq!(
        resolved.incident.as_ref().unwrap().incident_id,
        incident.incident_id
    );

    // A relapse soon after reopens the same incident.
    let relapse = recovery + time::Duration::minutes(8);
    let made = s.run(relapse, 90, 0.5).await;
    assert_eq!(made.first().map(|m| m.1), Some(UpdateKind::Reopened));
    let reopened = next_change(&mut stream).await;
    assert_eq!(reopened.kind, pb::UpdateKind::Reopened as i32);
    let again = reopened.incident.unwrap();
    assert_eq!(
        (again.incident_id.as_str(), again.reopen_count),
        (incident.incident_id.as_str(), 1)
    );

    // Acknowledge and resolve by hand, both streamed.
    let mut client = IncidentsClient::new(server.channel().await);
    let acked = client
        .acknowledge_incident(authed(
            pb::AcknowledgeIncidentRequest {
                incident_id: incident.incident_id.clone(),
                by: "ana".into(),
                note: "looking".into(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(
        (acked.status, acked.acknowledged_by.as_str()),
        (pb::IncidentStatus::Acknowledged as i32, "ana")
    );
    let update = next_change(&mut stream).await;
    assert_eq!(
        (update.kind, update.note.as_str()),
        (pb::UpdateKind::Acknowledged as i32, "looking")
    );
    let err = client
        .acknowledge_incident(authed(
            pb::AcknowledgeIncidentRequest {
                incident_id: incident.incident_id.clone(),
                by: String::new(),
                note: String::new(),
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    client
        .resolve_incident(authed(
            pb::ResolveIncidentRequest {
                incident_id: incident.incident_id.clone(),
                by: "ana".into(),
                note: "rolled back".into(),
            },
            &key,
        ))
        .await
        .unwrap();
    let update = next_change(&mut stream).await;
    assert_eq!(
        (update.kind, update.actor.as_str()),
        (pb::UpdateKind::Resolved as i32, "ana")
    );

    // The timeline holds every change in order; one incident for one cause.
    let got = client
        .get_incident(authed(
            pb::GetIncidentRequest {
                incident_id: incident.incident_id.clone(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<i32> = got
        .timeline
        .iter()
        .map(|u| u.kind)
        .filter(|k| {
            *k != pb::UpdateKind::AlertAdded as i32 && *k != pb::UpdateKind::Escalated as i32
        })
        .collect();
    use pb::UpdateKind as K;
    assert_eq!(
        kinds,
        [
            K::Opened,
            K::Resolved,
            K::Reopened,
            K::Acknowledged,
            K::Resolved
        ]
        .map(|k| k as i32)
    );
    assert!(got.timeline.windows(2).all(|w| w[0].seq < w[1].seq));
    // 50% errors escalated it to critical.
    assert_eq!(
        got.incident.unwrap().severity,
        pb::Severity::Critical as i32
    );
    assert!(got.alerts.iter().all(|a| a.cleared_at.is_some()));
    let list = client
        .list_incidents(authed(pb::ListIncidentsRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.incidents.len(), 1);
    let summary = client
        .get_incident_summary(authed(pb::GetIncidentSummaryRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.open, summary.most_incident_prone_service.as_str()),
        (0, "payments")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_watch_gets_exactly_the_missed_updates_then_live_ones_and_only_its_tenants() {
    let db = TestDb::new().await;
    let (key_a, key_b) = two_tenants(&db.url);
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let store = db.store().await;
    let (a, b) = (
        tenant_id(&store, "acme").await,
        tenant_id(&store, "globex").await,
    );
    let reopen = Duration::from_secs(600);

    // A's first incident, and B's, before anyone watches.
    let (_, first) = fire(&store, &alert(a, "api", Severity::Warning), reopen)
        .await
        .unwrap();
    fire(&store, &alert(b, "api", Severity::Critical), reopen)
        .await
        .unwrap();
    let since = first[0].seq;
    // Missed by the subscriber: an escalation of A's, and B's noise.
    fire(&store, &alert(a, "api", Severity::Critical), reopen)
        .await
        .unwrap();
    fire(&store, &alert(b, "db", Severity::Warning), reopen)
        .await
        .unwrap();
    fire(&store, &alert(a, "web", Severity::Warning), reopen)
        .await
        .unwrap();

    let mut stream = watch(
        server.channel().await,
        &key_a,
        pb::WatchRequest {
            resume_after_seq: since as u64,
            ..Default::default()
        },
    )
    .await;
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(next_update(&mut stream).await);
    }
    use pb::UpdateKind as K;
    let got: Vec<(i32, &str)> = replayed
        .iter()
        .map(|u| (u.kind, u.incident.as_ref().unwrap().service.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (K::AlertAdded as i32, "api"),
            (K::Escalated as i32, "api"),
            (K::Opened as i32, "web")
        ]
    );
    assert!(replayed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(replayed[0].seq > since as u64);

    // Live: B's update is not A's business; A's arrives.
    fire(&store, &alert(b, "api", Severity::Critical), reopen)
        .await
        .unwrap();
    let (_, live) = fire(&store, &alert(a, "db", Severity::Info), reopen)
        .await
        .unwrap();
    let next = next_update(&mut stream).await;
    assert_eq!(next.seq, live[0].seq as u64);
    assert_eq!(next.incident.unwrap().service, "db");

    // B's own watch sees B's incidents only, from a snapshot.
    let mut b_stream = watch(
        server.channel().await,
        &key_b,
        pb::WatchRequest {
            send_snapshot: true,
            ..Default::default()
        },
    )
    .await;
    let mut services = Vec::new();
    loop {
        let m = b_stream.next().await.unwrap().unwrap();
        match m.payload.unwrap() {
            pb::watch_response::Payload::Snapshot(i) => services.push(i.service),
            pb::watch_response::Payload::SnapshotDone(_) => break,
            other => panic!("{other:?}"),
        }
    }
    services.sort();
    assert_eq!(services, ["api", "db"]);

    // A's key cannot read, acknowledge or resolve B's incident.
    let b_incident = store.open_incidents(b).await.unwrap()[0]
        .incident_id
        .to_string();
    let mut client = IncidentsClient::new(server.channel().await);
    let err = get_incident(&mut client, &b_incident, &key_a)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .resolve_incident(authed(
            pb::ResolveIncidentRequest {
                incident_id: b_incident,
                by: "mallory".into(),
                note: String::new(),
            },
            &key_a,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A sequence the outbox no longer holds: resync required.
    sqlx::query("DELETE FROM incident_updates WHERE seq <= $1")
        .bind(since + 1)
        .execute(&common::pool(&db.url).await)
        .await
        .unwrap();
    assert_resync_required(server.channel().await, &key_a, 1).await;
}

/// A server that detects nothing (updates are written through the store),
/// and tenant acme with its key.
async fn one_tenant_without_detector() -> (TestDb, Server, Store, TenantId, String) {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let store = db.store().await;
    let acme = tenant_id(&store, "acme").await;
    (db, server, store, acme, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_resolved_past_the_retention_go_with_their_updates_and_a_resume_before_them_must_resync()
 {
    let (db, server, store, a, key) = one_tenant_without_detector().await;
    let reopen = Duration::from_secs(600);
    let now = OffsetDateTime::now_utc();

    // Still open (its updates come first); then one resolved long ago; then
    // one resolved recently.
    let (_, open) = fire(&store, &alert(a, "api", Severity::Warning), reopen)
        .await
        .unwrap();
    let (_, old) = fire(&store, &alert(a, "db", Severity::Warning), reopen)
        .await
        .unwrap();
    let old_id = old[0].incident.incident_id;
    let resolved_old = store
        .close_by_hand(a, old_id, true, "alice", "", now)
        .await
        .unwrap();
    let (_, recent) = fire(&store, &alert(a, "web", Severity::Warning), reopen)
        .await
        .unwrap();
    let recent_id = recent[0].incident.incident_id;
    store
        .close_by_hand(a, recent_id, true, "alice", "", now)
        .await
        .unwrap();
    let pool = common::pool(&db.url).await;
    sqlx::query(
        "UPDATE incidents SET resolved_at = now() - interval '500 days' WHERE incident_id = $1",
    )
    .bind(old_id)
    .execute(&pool)
    .await
    .unwrap();

    let pruned = pulsyon::incidents::retention::prune(&store, Duration::from_secs(400 * 86_400))
        .await
        .unwrap();
    assert_eq!(pruned, 1, "the one incident resolved 500 days ago");

    // The old incident is gone with its alert and its updates; the others stay whole.
    let count = |sql: &'static str, id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    for sql in [
        "SELECT count(*) FROM incidents WHERE incident_id = $1",
        "SELECT count(*) FROM alerts WHERE incident_id = $1",
        "SELECT count(*) FROM incident_updates WHERE incident_id = $1",
    ] {
        assert_eq!(count(sql, old_id).await, 0, "{sql}");
    }
    assert_eq!(
        count(
            "SELECT count(*) FROM incident_updates WHERE incident_id = $1",
            recent_id
        )
        .await,
        2,
        "opened and resolved"
    );
    let mut client = IncidentsClient::new(server.channel().await);
    let err = get_incident(&mut client, &old_id.to_string(), &key)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let timeline = get_incident(&mut client, &open[0].incident.incident_id.to_string(), &key)
        .await
        .unwrap()
        .timeline;
    assert_eq!(timeline.len(), 1, "the open incident keeps its update");

    // Resuming below the pruned updates would skip them: resync required;
    // resuming after the last of them loses nothing.
    let pruned = store.outbox_pruned_through().await.unwrap();
    assert_eq!(pruned, resolved_old.seq);
    assert!(
        open[0].seq < pruned,
        "the oldest kept update is older still"
    );
    assert_resync_required(server.channel().await, &key, (pruned - 1) as u64).await;
    let mut stream = watch(
        server.channel().await,
        &key,
        pb::WatchRequest {
            resume_after_seq: pruned as u64,
            ..Default::default()
        },
    )
    .await;
    let first = next_update(&mut stream).await;
    assert_eq!(first.incident.unwrap().incident_id, recent_id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_failing_from_its_first_minute_opens_an_incident_that_says_it_had_no_baseline() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    let mut s = Scenario::new(&db, DetectConfig::default()).await;
    let (store, tenant) = (s.store.clone(), s.tenant);
    // A new deploy, broken from its first request: half of them fail.
    let first = stats::floor(OffsetDateTime::now_utc(), 60) - time::Duration::minutes(30);
    let made = s.run(first, 60, 0.5).await;
    let (opened_at, kind) = made
        .first()
        .copied()
        .expect("the broken service opens an incident");
    assert_eq!(kind, UpdateKind::Opened);
    assert!(
        opened_at - first <= time::Duration::seconds(60),
        "found {} after its first events",
        opened_at - first
    );
    let open = store.open_incidents(tenant).await.unwrap();
    assert_eq!(open.len(), 1);
    let alert = store
        .firing_alerts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == Kind::ErrorRate)
        .expect("the firing alert");
    assert!(alert.no_baseline, "{alert:?}");
    let text = pulsyon::incidents::explain::alert(&alert);
    assert!(text.contains("no healthy baseline yet"), "{text}");

    // Fifteen more minutes of the same failure: the baseline does not learn
    // it as normal, so the incident stays open.
    let made = s
        .run(first + time::Duration::minutes(1), 15 * 60, 0.5)
        .await;
    assert!(
        made.iter().all(|(_, k)| *k != UpdateKind::Resolved),
        "{made:?}"
    );
    assert_eq!(store.open_incidents(tenant).await.unwrap().len(), 1);
}

/// `secs` seconds of a busy service from `at`: 10 requests a second over ten
/// endpoints, one of which (`/gift-cards/{id}`, 3% of the traffic) fails
/// `hidden_failing` of its requests; 1% background errors elsewhere.
fn busy(at: OffsetDateTime, secs: i64, hidden_failing: f64) -> Vec<Event> {
    let mut out = events("storefront", at, secs, 10, 0.0);
    let (mut hidden, mut other) = (0u64, 0u64);
    for (i, e) in out.iter_mut().enumerate() {
        if i % 100 < 3 {
            e.endpoint = "/gift-cards/{id}".into();
            hidden += 1;
            let failing = (hidden % 10) as f64 / 10.0 < hidden_failing;
            e.status_code = if failing { 503 } else { 200 };
        } else {
            e.endpoint = format!("/route-{}", i % 9);
            other += 1;
            e.status_code = if other % 100 == 0 { 503 } else { 200 };
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_hidden_by_its_service_average_opens_an_incident_a_watch_receives() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false", "--watch-heartbeat", "1s"],
        ..Default::default()
    });
    let mut s = Scenario::new(&db, DetectConfig::default()).await;
    let mut stream = watch(server.channel().await, &key, pb::WatchRequest::default()).await;
    let start = stats::floor(OffsetDateTime::now_utc(), 60) - time::Duration::hours(4);
    for m in 0..150 {
        s.write(busy(start + time::Duration::minutes(m), 60, 0.0))
            .await;
    }
    // The gift-card endpoint fails 90% of its requests: 2.7% of the
    // service's traffic, under its 5% bar.
    let onset = start + time::Duration::minutes(150);
    let mut opened_at = None;
    for step in 0..24 {
        let t = onset + time::Duration::seconds(step * 5);
        s.write(busy(t, 5, 0.9)).await;
        let tick = s
            .detector
            .tick(t + time::Duration::seconds(5))
            .await
            .unwrap();
        if let Some(u) = tick.updates.first() {
            opened_at.get_or_insert(u.at);
        }
    }
    let opened_at = opened_at.expect("the failing endpoint opens an incident");
    assert!(
        opened_at - onset <= time::Duration::seconds(60),
        "found {} after onset",
        opened_at - onset
    );
    let opened = next_update(&mut stream).await;
    assert_eq!(opened.kind, pb::UpdateKind::Opened as i32);
    let alert = opened.alert.as_ref().unwrap();
    assert_eq!(alert.endpoint, "/gift-cards/{id}");
    assert_eq!(alert.kind, pb::AlertKind::ErrorRate as i32);
    assert!(alert.observed > alert.threshold, "{alert:?}");
    let incident = opened.incident.unwrap();
    assert_eq!(incident.service, "storefront");
    assert!(
        incident.title.contains("/gift-cards/{id}"),
        "the title names the endpoint: {}",
        incident.title
    );
    // The service as a whole stays under its bar: only the endpoint fired.
    let firing = s.store.firing_alerts().await.unwrap();
    assert!(
        firing.iter().all(|a| a.endpoint == "/gift-cards/{id}"),
        "{firing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_new_service_opens_nothing() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    let mut s = Scenario::new(&db, DetectConfig::default()).await;
    let first = stats::floor(OffsetDateTime::now_utc(), 60) - time::Duration::minutes(30);
    let made = s.run(first, 15 * 60, 0.02).await;
    assert!(made.is_empty(), "{made:?}");
}

/// Thirty minutes of steady healthy traffic of `services`, then the clock
/// run for four minutes in 5 s steps with traffic from `going_on` only.
/// Returns the incidents left unresolved with their alerts' services.
async fn silence_after_history(
    services: &[&str],
    going_on: &[&str],
) -> Vec<(pulsyon::domain::incident::Incident, Vec<String>)> {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    let mut s = Scenario::new(&db, DetectConfig::default()).await;
    let (store, tenant) = (s.store.clone(), s.tenant);
    let first = stats::floor(OffsetDateTime::now_utc(), 60) - time::Duration::minutes(40);
    for m in 0..30 {
        let t = first + time::Duration::minutes(m);
        let batch = services
            .iter()
            .flat_map(|svc| events(svc, t, 60, 1, 0.0))
            .collect();
        s.write(batch).await;
    }
    let stop = first + time::Duration::minutes(30);
    for step in 0..(4 * 60 / 5) {
        let t = stop + time::Duration::seconds(step * 5);
        let batch: Vec<Event> = going_on
            .iter()
            .flat_map(|svc| events(svc, t, 5, 1, 0.0))
            .collect();
        if !batch.is_empty() {
            s.write(batch).await;
        }
        s.detector
            .tick(t + time::Duration::seconds(5))
            .await
            .unwrap();
    }
    let firing = store.firing_alerts().await.unwrap();
    let mut open = Vec::new();
    for incident in store.open_incidents(tenant).await.unwrap() {
        let mut alerted: Vec<String> = firing
            .iter()
            .filter(|a| a.incident_id == Some(incident.incident_id))
            .map(|a| {
                assert_eq!(a.kind, Kind::TrafficDrop, "{a:?}");
                a.service.clone()
            })
            .collect();
        alerted.sort();
        alerted.dedup();
        open.push((incident, alerted));
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_of_a_tenant_going_silent_at_once_is_one_incident_not_one_per_service() {
    let open = silence_after_history(&["api", "billing", "search"], &[]).await;
    assert_eq!(open.len(), 1, "{open:#?}");
    let (incident, alerted) = &open[0];
    assert_eq!(incident.service, "", "{incident:?}");
    assert_eq!(incident.severity, Severity::Critical);
    assert!(
        incident
            .title
            .starts_with("all 3 services stopped sending at once"),
        "{}",
        incident.title
    );
    assert_eq!(alerted, &["api", "billing", "search"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_service_going_silent_while_the_others_go_on_is_its_own_incident() {
    let open = silence_after_history(&["api", "billing", "search"], &["api", "search"]).await;
    assert_eq!(open.len(), 1, "{open:#?}");
    let (incident, alerted) = &open[0];
    assert_eq!(incident.service, "billing", "{incident:?}");
    assert_eq!(alerted, &["billing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_past_the_newest_sequence_must_resync_instead_of_waiting_silently() {
    let (_db, server, store, a, key) = one_tenant_without_detector().await;
    let (_, opened) = fire(
        &store,
        &alert(a, "api", Severity::Warning),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let newest = opened.last().unwrap().seq;
    // Resuming after the newest update is whole: the next update arrives.
    let mut stream = watch(
        server.channel().await,
        &key,
        pb::WatchRequest {
            resume_after_seq: newest as u64,
            ..Default::default()
        },
    )
    .await;
    // A sequence this server never sent: the subscriber would miss every
    // update until the global sequence passed it.
    for beyond in [newest + 1, newest + 1_000_000] {
        let request = pb::WatchRequest {
            resume_after_seq: beyond as u64,
            ..Default::default()
        };
        let err = IncidentsClient::new(server.channel().await)
            .watch(authed(request, &key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(
            err.message().starts_with("resync required") && err.message().contains("newest"),
            "{}",
            err.message()
        );
    }
    let (_, more) = fire(
        &store,
        &alert(a, "db", Severity::Warning),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let next = next_update(&mut stream).await;
    assert_eq!(next.seq, more[0].seq as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_reads_a_live_update_as_the_hub_encoded_it() {
    use std::io::{BufRead, BufReader};
    let (_db, server, store, a, key) = one_tenant_without_detector().await;
    let mut grpcurl = std::process::Command::new(common::grpcurl())
        .args([
            "-plaintext",
            "-max-time",
            "60",
            "-H",
            &format!("authorization: Bearer {key}"),
            &server.grpc,
            "pulsyon.v1.Incidents/Watch",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = grpcurl.stdout.take().unwrap();
    // grpcurl decodes through reflection, independently of the generated code.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = String::new();
    let mut until = async |needle: &str| loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no {needle} within 30 s:\n{printed}"))
            .unwrap_or_else(|| panic!("grpcurl ended before {needle}:\n{printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if line.contains(needle) {
            return;
        }
    };
    // The stream starts with a heartbeat: subscribed, so the update is live.
    until("\"heartbeat\"").await;
    let (_, updates) = fire(
        &store,
        &alert(a, "checkout", Severity::Critical),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    until("\"update\"").await;
    until("\"explanation\"").await;
    until("}").await;
    let _ = grpcurl.kill();
    let _ = grpcurl.wait();
    assert!(
        printed.contains(&format!("\"seq\": \"{}\"", updates[0].seq)),
        "{printed}"
    );
    assert!(printed.contains("\"service\": \"checkout\""), "{printed}");
    assert!(
        printed.contains("\"kind\": \"UPDATE_KIND_OPENED\""),
        "{printed}"
    );
    assert!(
        printed.contains("\"severity\": \"SEVERITY_CRITICAL\""),
        "{printed}"
    );
}

async fn is_leader(server: &Server) -> bool {
    let body = common::http_get(&format!("http://{}/metrics", server.http)).await;
    body.lines()
        .find(|l| l.starts_with("pulsyon_detector_leader"))
        .and_then(|l| l.rsplit(' ').next())
        .is_some_and(|v| v == "1")
}

async fn leader_of(servers: &[Server]) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        for (i, s) in servers.iter().enumerate() {
            if is_leader(s).await {
                return i;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no process leads");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_dies_another_process_takes_over_and_no_incident_is_duplicated() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let opts = || ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detect-interval", "1s", "--rollup-interval", "200ms"],
        ..Default::default()
    };
    let mut servers = vec![Server::start(opts()), Server::start(opts())];
    let leader = leader_of(&servers).await;
    let follower = 1 - leader;
    let mut ingest = pb::ingest_client::IngestClient::new(servers[follower].channel().await);
    // Two hours of history, then errors from now on: an incident opens.
    let now = SystemTime::now();
    let mut seq = 0;
    for m in (1..=130).rev() {
        let at = now - Duration::from_secs(m * 60);
        seq += 1;
        let batch = pb::EventBatch {
            producer_id: "failover".into(),
            seq,
            events: (0..30)
                .map(|i| pb::Event {
                    event_id: uuid::Uuid::now_v7().to_string(),
                    time: Some(ts(at + Duration::from_secs(i * 2))),
                    service: "payments".into(),
                    endpoint: "/pay".into(),
                    status_code: 200,
                    latency_ms: 20.0,
                    ..Default::default()
                })
                .collect(),
        };
        publish(&mut ingest, &key, batch).await;
    }
    let errors = |seq: u64| pb::EventBatch {
        producer_id: "failover".into(),
        seq,
        events: (0..30)
            .map(|_| pb::Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                time: Some(ts(SystemTime::now())),
                service: "payments".into(),
                endpoint: "/pay".into(),
                status_code: 503,
                latency_ms: 20.0,
                ..Default::default()
            })
            .collect(),
    };
    let pool = common::pool(&db.url).await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count("SELECT count(*) FROM incidents").await == 0 {
        assert!(std::time::Instant::now() < deadline, "no incident opened");
        seq += 1;
        publish(&mut ingest, &key, errors(seq)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Kill the leader; the other process takes over while the errors go on.
    servers[leader].signal(nix::sys::signal::Signal::SIGKILL);
    servers[leader].wait_exit(Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !is_leader(&servers[follower]).await {
        assert!(std::time::Instant::now() < deadline, "no process took over");
        seq += 1;
        publish(&mut ingest, &key, errors(seq)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for _ in 0..10 {
        seq += 1;
        publish(&mut ingest, &key, errors(seq)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        count("SELECT count(*) FROM incidents").await,
        1,
        "one incident for one cause"
    );
    assert_eq!(
        count(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM alerts WHERE cleared_at IS NULL \
             GROUP BY service, endpoint, kind) AS firing"
        )
        .await,
        1,
        "the new leader did not fire an alert already firing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_rules_are_overridden_per_tenant_and_service_through_admin() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let reader = common::create_key(&db.url, "acme", "read");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let mut admin = pb::admin_client::AdminClient::new(server.channel().await);
    let rule = |service: &str, threshold: f64| pb::SetDetectionRuleRequest {
        rule: Some(pb::DetectionRule {
            kind: pb::AlertKind::ErrorRate as i32,
            service: service.into(),
            enabled: true,
            threshold,
            ..Default::default()
        }),
    };
    // Tenant-wide 10%, then 20% for payments; the rest keeps the defaults.
    admin
        .set_detection_rule(authed(rule("", 0.1), &key))
        .await
        .unwrap();
    let effective = admin
        .set_detection_rule(authed(rule("payments", 0.2), &key))
        .await
        .unwrap()
        .into_inner()
        .effective
        .unwrap();
    assert_eq!((effective.threshold, effective.fire_after), (0.2, 2));
    let lister = admin.clone();
    let listed = |service: &str| {
        let mut admin = lister.clone();
        let key = key.clone();
        let service = service.to_owned();
        async move {
            admin
                .list_detection_rules(authed(pb::ListDetectionRulesRequest { service }, &key))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let error_rate = |r: &pb::ListDetectionRulesResponse| {
        r.effective
            .iter()
            .find(|e| e.kind == pb::AlertKind::ErrorRate as i32)
            .unwrap()
            .threshold
    };
    assert_eq!(error_rate(&listed("payments").await), 0.2);
    assert_eq!(error_rate(&listed("search").await), 0.1);
    assert_eq!(listed("").await.overrides.len(), 2);

    let err = admin
        .set_detection_rule(authed(rule("", 2.0), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("rule: threshold"),
        "{}",
        err.message()
    );
    let err = admin
        .set_detection_rule(authed(rule("", 0.1), &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let delete = pb::DeleteDetectionRuleRequest {
        kind: pb::AlertKind::ErrorRate as i32,
        service: "payments".into(),
    };
    let gone = admin
        .delete_detection_rule(authed(delete.clone(), &key))
        .await
        .unwrap()
        .into_inner();
    assert!(gone.deleted);
    let again = admin
        .delete_detection_rule(authed(delete, &key))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.deleted);
    assert_eq!(error_rate(&listed("payments").await), 0.1);

    // The relative latency bar: its defaults listed, set per service, and
    // refused on a rule that has none.
    let latency = |r: &pb::ListDetectionRulesResponse| {
        let e = r
            .effective
            .iter()
            .find(|e| e.kind == pb::AlertKind::LatencyP95 as i32)
            .unwrap();
        (e.relative_factor, e.relative_min_ms)
    };
    assert_eq!(latency(&listed("edge").await), (Some(2.5), Some(50.0)));
    let relative = |kind: pb::AlertKind, factor: f64| pb::SetDetectionRuleRequest {
        rule: Some(pb::DetectionRule {
            kind: kind as i32,
            service: "edge".into(),
            enabled: true,
            relative_factor: Some(factor),
            ..Default::default()
        }),
    };
    admin
        .set_detection_rule(authed(relative(pb::AlertKind::LatencyP95, 0.0), &key))
        .await
        .unwrap();
    assert_eq!(latency(&listed("edge").await), (Some(0.0), Some(50.0)));
    let err = admin
        .set_detection_rule(authed(relative(pb::AlertKind::ErrorRate, 2.0), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("relative_factor"),
        "{}",
        err.message()
    );

    // Another tenant's rules are its own.
    let other = create_tenant(&db.url, "globex");
    let theirs = admin
        .list_detection_rules(authed(pb::ListDetectionRulesRequest::default(), &other))
        .await
        .unwrap()
        .into_inner();
    assert!(theirs.overrides.is_empty());
    assert_eq!(error_rate(&theirs), 0.05);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_finds_the_spike_writes_nothing_and_tries_candidate_rules() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let mut s = Scenario::new(&db, DetectConfig::default()).await;
    let (store, tenant) = (s.store.clone(), s.tenant);
    // Three hours ago: 150 steady minutes, a 10-minute spike of 40% errors, 20 calm minutes.
    let start = stats::floor(OffsetDateTime::now_utc(), 60) - time::Duration::hours(3);
    for m in 0..180 {
        let share = if (150..160).contains(&m) { 0.4 } else { 0.01 };
        s.write(events(
            "payments",
            start + time::Duration::minutes(m),
            60,
            2,
            share,
        ))
        .await;
    }
    let spike = start + time::Duration::minutes(150);
    let from = start + time::Duration::minutes(140);
    let to = start + time::Duration::minutes(180);

    let outcome =
        pulsyon::detect::backtest::replay(&store, Some(tenant), from, to, &Default::default())
            .await
            .unwrap();
    assert_eq!(outcome.incidents.len(), 1, "{:?}", outcome.incidents);
    let found = &outcome.incidents[0];
    assert_eq!(found.service, "payments");
    assert!(found.opened_at >= spike && found.opened_at - spike <= time::Duration::seconds(60));
    assert!(found.resolved_at.is_some(), "it resolves after the spike");
    assert_eq!(found.alerts[0].kind, Kind::ErrorRate);
    let written: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM incidents) + (SELECT count(*) FROM alerts)",
    )
    .fetch_one(&common::pool(&db.url).await)
    .await
    .unwrap();
    assert_eq!(written, 0, "a backtest writes nothing");

    // Through the RPC, with a candidate threshold above the spike: nothing opens.
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let mut admin = pb::admin_client::AdminClient::new(server.channel().await);
    let request = |candidates: Vec<pb::DetectionRule>| pb::BacktestDetectionRequest {
        range: Some(pb::TimeRange {
            start: Some(prost_types::Timestamp {
                seconds: from.unix_timestamp(),
                nanos: 0,
            }),
            end: Some(prost_types::Timestamp {
                seconds: to.unix_timestamp(),
                nanos: 0,
            }),
        }),
        candidate_rules: candidates,
    };
    let same = admin
        .backtest_detection(authed(request(vec![]), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.incidents.len(), 1);
    assert!(
        same.incidents[0].alerts[0]
            .explanation
            .starts_with("error rate")
    );
    let strict = pb::DetectionRule {
        kind: pb::AlertKind::ErrorRate as i32,
        enabled: true,
        threshold: 0.6,
        ..Default::default()
    };
    let tuned = admin
        .backtest_detection(authed(request(vec![strict]), &key))
        .await
        .unwrap()
        .into_inner();
    assert!(
        tuned.incidents.iter().all(|i| i
            .alerts
            .iter()
            .all(|a| a.kind != pb::AlertKind::ErrorRate as i32)),
        "{:?}",
        tuned.incidents
    );
    let bad = pb::DetectionRule {
        kind: pb::AlertKind::ErrorRate as i32,
        threshold: 3.0,
        ..Default::default()
    };
    let err = admin
        .backtest_detection(authed(request(vec![bad]), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with("candidate_rules[0]"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_alert_of_each_listed_incident_is_read_in_one_go() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    create_tenant(&db.url, "globex");
    let store = db.store().await;
    let (a, b) = (
        tenant_id(&store, "acme").await,
        tenant_id(&store, "globex").await,
    );
    let now = OffsetDateTime::now_utc();
    let at =
        |alert: pulsyon::domain::incident::Alert, secs_ago: i64| pulsyon::domain::incident::Alert {
            fired_at: now - time::Duration::seconds(secs_ago),
            ..alert
        };
    // Checkout: an error-rate alert, then a latency one joins its incident.
    let (first, _) = fire(
        &store,
        &at(alert(a, "checkout", Severity::Warning), 60),
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    let (latest, _) = fire(
        &store,
        &pulsyon::domain::incident::Alert {
            kind: Kind::LatencyP95,
            observed: 900.0,
            ..at(alert(a, "checkout", Severity::Critical), 10)
        },
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    assert_eq!(first.incident_id, latest.incident_id, "one incident");
    let (search, _) = fire(
        &store,
        &at(alert(a, "search", Severity::Warning), 30),
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    let ids = [latest.incident_id.unwrap(), search.incident_id.unwrap()];
    let mut newest = store.newest_alerts(a, &ids).await.unwrap();
    newest.sort_by_key(|x| x.incident_id);
    let got: Vec<_> = newest.iter().map(|x| (x.incident_id, x.alert_id)).collect();
    assert_eq!(
        got,
        vec![
            (latest.incident_id, latest.alert_id),
            (search.incident_id, search.alert_id)
        ]
    );
    assert_eq!(newest[0].kind, Kind::LatencyP95);
    // Another tenant reads nothing of them; no ids, nothing.
    assert!(store.newest_alerts(b, &ids).await.unwrap().is_empty());
    assert!(store.newest_alerts(a, &[]).await.unwrap().is_empty());
}
