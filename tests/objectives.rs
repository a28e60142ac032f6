//! Service level objectives against the real server: set, listed, read from
//! the rollups of events sent through the ingest API (attainment, budget,
//! burn rates, exhaustion), refused field by field, and kept to their tenant;
//! their burn-rate alerts as one incident per objective (ticket, page,
//! resolved) from errors sent through the ingest API.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{Server, ServerOpts, TestDb, authed, publish, ts, two_tenants};
use pulsyon::proto::v1::{
    self as pb, admin_client::AdminClient, incidents_client::IncidentsClient,
    ingest_client::IngestClient, query_client::QueryClient,
};
use tonic::{Code, transport::Channel};

const DAY: i64 = 86_400;

fn period(days: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: days * DAY,
        nanos: 0,
    })
}

/// 2,000 requests of `checkout` over the last two minutes: 1,920 fine in
/// 20 ms, 20 answered 404, 10 answered 503, 50 fine but in 500 ms.
fn events() -> Vec<pb::Event> {
    let now = SystemTime::now();
    (0..2_000u32)
        .map(|i| {
            let (status, latency) = match i {
                0..10 => (503, 20.0),
                10..30 => (404, 20.0),
                30..80 => (200, 500.0),
                _ => (200, 20.0),
            };
            pb::Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                time: Some(ts(now - Duration::from_millis(u64::from(i) * 50))),
                service: "checkout".into(),
                endpoint: "/pay".into(),
                status_code: status,
                latency_ms: latency,
                ..Default::default()
            }
        })
        .collect()
}

fn availability(count_4xx: bool) -> pb::SetObjectiveRequest {
    pb::SetObjectiveRequest {
        service: "checkout".into(),
        kind: pb::ObjectiveKind::Availability as i32,
        target_percent: 99.0,
        period: period(30),
        count_4xx,
        ..Default::default()
    }
}

/// `SetObjective`: the objective as stored.
async fn set_one(
    admin: &mut AdminClient<Channel>,
    key: &str,
    req: pb::SetObjectiveRequest,
) -> pb::Objective {
    let answer = admin.set_objective(authed(req, key)).await.unwrap();
    answer.into_inner().objective.unwrap()
}

/// `Admin.ListObjectives` of the tenant.
async fn admin_list(admin: &mut AdminClient<Channel>, key: &str) -> Vec<pb::Objective> {
    let req = pb::ListObjectivesRequest::default();
    let answer = admin.list_objectives(authed(req, key)).await.unwrap();
    answer.into_inner().objectives
}

/// How `id` stands once the rollups hold `requests` requests.
async fn standing(
    query: &mut QueryClient<Channel>,
    key: &str,
    id: &str,
    requests: u64,
) -> pb::ObjectiveStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let req = pb::GetObjectiveRequest {
            objective_id: id.into(),
        };
        let got = query.get_objective(authed(req, key)).await.unwrap();
        let status = got.into_inner().status.unwrap();
        if status.requests == requests {
            return status;
        }
        assert!(Instant::now() < deadline, "never rolled up: {status:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server with `args` on `db`, two tenants' keys, and its clients.
struct Slo {
    _server: Server,
    key: String,
    other: String,
    ingest: IngestClient<Channel>,
    admin: AdminClient<Channel>,
    query: QueryClient<Channel>,
    incidents: IncidentsClient<Channel>,
}

async fn slo_server(db: &TestDb, args: &[&str]) -> Slo {
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: args,
        ..Default::default()
    });
    let (key, other) = two_tenants(&db.url);
    let channel = server.channel().await;
    Slo {
        key,
        other,
        ingest: IngestClient::new(channel.clone()),
        admin: AdminClient::new(channel.clone()),
        query: QueryClient::new(channel.clone()),
        incidents: IncidentsClient::new(channel),
        _server: server,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_stand_by_the_rollups_exact_counts_and_refuse_what_does_not_fit() {
    let db = TestDb::new().await;
    let args = ["--detector", "false", "--rollup-interval", "200ms"];
    // The server lives as long as `_kept`: what `..` leaves is dropped here.
    let Slo {
        _server: _kept,
        key,
        other,
        mut ingest,
        mut admin,
        mut query,
        ..
    } = slo_server(&db, &args).await;
    publish(&mut ingest, &key, common::batch("slo", 1, events())).await;

    // Availability at 99 % over 30 days: 20 bad allowed of 2,000; 10 spent.
    let set = set_one(&mut admin, &key, availability(false)).await;
    let s = standing(&mut query, &key, &set.objective_id, 2_000).await;
    assert_eq!(s.bad_requests, 10);
    assert!((s.attainment_percent - 99.5).abs() < 1e-9, "{s:#?}");
    assert!((s.budget_left_percent - 50.0).abs() < 1e-9, "{s:#?}");
    assert_eq!(s.budget_left_requests, 10);
    // 1 % of 30 days is 432 minutes; half of it left.
    assert!((s.budget_left_minutes - 216.0).abs() < 1e-6, "{s:#?}");
    // Every window holds the two minutes: 0.5 % bad against 1 % allowed.
    assert_eq!(s.burn_rates.len(), 7);
    for b in &s.burn_rates {
        assert_eq!((b.requests, b.bad_requests), (2_000, 10), "{b:#?}");
        assert!((b.burn_rate - 0.5).abs() < 1e-9, "{b:#?}");
    }
    // 10 left at 10 an hour: an hour from now.
    let exhausted = s.exhausted_at.unwrap().seconds;
    let in_an_hour = ts(SystemTime::now()).seconds + 3_600;
    assert!((exhausted - in_an_hour).abs() < 120, "{s:#?}");

    // Set again counting 4xx: the same objective, now overspent.
    let again = set_one(&mut admin, &key, availability(true)).await;
    assert_eq!(again.objective_id, set.objective_id);
    let s = standing(&mut query, &key, &set.objective_id, 2_000).await;
    assert_eq!(s.bad_requests, 30);
    assert!((s.budget_left_percent + 50.0).abs() < 1e-9, "{s:#?}");
    assert!(s.exhausted_at.unwrap().seconds <= ts(SystemTime::now()).seconds);

    // Latency within 100 ms at 95 %: the 50 slow ones are bad, from the histograms.
    let latency = pb::SetObjectiveRequest {
        kind: pb::ObjectiveKind::Latency as i32,
        target_percent: 95.0,
        period: period(28),
        latency_threshold_ms: 100.0,
        ..availability(false)
    };
    let lat = set_one(&mut admin, &key, latency.clone()).await;
    let s = standing(&mut query, &key, &lat.objective_id, 2_000).await;
    assert_eq!(s.bad_requests, 50);
    assert!((s.budget_left_percent - 50.0).abs() < 1e-9, "{s:#?}");
    let req = pb::QueryListObjectivesRequest::default();
    let listed = query.list_objectives(authed(req, &key)).await.unwrap();
    assert_eq!(listed.into_inner().objectives.len(), 2);

    // Bad input, by field.
    let bad = [
        (
            pb::SetObjectiveRequest {
                target_percent: 0.0,
                ..availability(false)
            },
            "target_percent",
        ),
        (
            pb::SetObjectiveRequest {
                target_percent: 100.0,
                ..availability(false)
            },
            "target_percent",
        ),
        (
            pb::SetObjectiveRequest {
                period: period(7),
                ..availability(false)
            },
            "period",
        ),
        (
            pb::SetObjectiveRequest {
                latency_threshold_ms: 0.0,
                ..latency.clone()
            },
            "latency_threshold_ms",
        ),
        (
            pb::SetObjectiveRequest {
                kind: 0,
                ..availability(false)
            },
            "kind",
        ),
        (
            pb::SetObjectiveRequest {
                latency_threshold_ms: 5.0,
                ..availability(false)
            },
            "latency_threshold_ms",
        ),
    ];
    for (req, field) in bad {
        let err = admin.set_objective(authed(req, &key)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {err:?}");
    }
    // A service the tenant never sent: not found, by field.
    let unknown = pb::SetObjectiveRequest {
        service: "nowhere".into(),
        ..availability(false)
    };
    let err = admin
        .set_objective(authed(unknown, &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("service"), "{err:?}");

    // Another tenant: checkout is not its service; the objectives are not its.
    let err = admin
        .set_objective(authed(availability(false), &other))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let theirs = pb::GetObjectiveRequest {
        objective_id: set.objective_id.clone(),
    };
    let err = query
        .get_objective(authed(theirs, &other))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let gone = pb::DeleteObjectiveRequest {
        objective_id: set.objective_id.clone(),
    };
    let answer = admin.delete_objective(authed(gone.clone(), &other)).await;
    assert_eq!(answer.unwrap_err().code(), Code::NotFound);
    assert!(admin_list(&mut admin, &other).await.is_empty());

    // Deleted by its tenant's admin: gone from both lists.
    admin.delete_objective(authed(gone, &key)).await.unwrap();
    let left = admin_list(&mut admin, &key).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].objective_id, lat.objective_id);
}

/// `n` requests of `ledger` over the last 100 s, every `bad_every`-th
/// answered 503 (none when 0), all in 20 ms.
fn traffic(n: u32, bad_every: u32) -> Vec<pb::Event> {
    let now = SystemTime::now();
    (0..n)
        .map(|i| pb::Event {
            event_id: uuid::Uuid::now_v7().to_string(),
            time: Some(ts(
                now - Duration::from_micros(u64::from(i) * 100_000_000 / u64::from(n))
            )),
            service: "ledger".into(),
            endpoint: "/post".into(),
            status_code: if bad_every > 0 && i % bad_every == bad_every - 1 {
                503
            } else {
                200
            },
            latency_ms: 20.0,
            ..Default::default()
        })
        .collect()
}

/// The tenant's incidents, and the first one with its alerts, once `done`
/// holds of them (the detector's leader reads objectives every second).
async fn incident_when(
    incidents: &mut IncidentsClient<Channel>,
    key: &str,
    what: &str,
    done: impl Fn(&pb::GetIncidentResponse) -> bool,
) -> (usize, pb::GetIncidentResponse) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let req = pb::ListIncidentsRequest::default();
        let listed = incidents.list_incidents(authed(req, key)).await.unwrap();
        let listed = listed.into_inner().incidents;
        if let Some(first) = listed.first() {
            let req = pb::GetIncidentRequest {
                incident_id: first.incident_id.clone(),
            };
            let got = incidents.get_incident(authed(req, key)).await.unwrap();
            let got = got.into_inner();
            if done(&got) {
                return (listed.len(), got);
            }
            assert!(Instant::now() < deadline, "{what}: {got:#?}");
        }
        assert!(Instant::now() < deadline, "{what}: no incident");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burning_objective_is_one_incident_from_ticket_to_page_to_resolved() {
    let db = TestDb::new().await;
    let args = [
        "--detect-interval",
        "1s",
        "--objective-interval",
        "1s",
        "--rollup-interval",
        "200ms",
        "--incident-resolve-after",
        "1s",
    ];
    let Slo {
        _server: _kept,
        key,
        mut ingest,
        mut admin,
        mut query,
        mut incidents,
        ..
    } = slo_server(&db, &args).await;
    let burn = i32::from(pb::AlertKind::AvailabilityBurn);

    // 0.5 % of 1,000 requests fail against 0.1 % allowed: a burn rate of 5
    // in every window, over the ticket pairs' 3 and under the pages' 6 and
    // 14.4 (and far under the error-rate rule's 5 % bar).
    publish(
        &mut ingest,
        &key,
        common::batch("burn", 1, traffic(1_000, 200)),
    )
    .await;
    let ledger = pb::SetObjectiveRequest {
        service: "ledger".into(),
        target_percent: 99.9,
        ..availability(false)
    };
    let set = set_one(&mut admin, &key, ledger).await;
    let s = standing(&mut query, &key, &set.objective_id, 1_000).await;
    assert!((s.burn_rates[0].burn_rate - 5.0).abs() < 1e-9, "{s:#?}");
    let warning = i32::from(pb::Severity::Warning);
    let (count, ticket) = incident_when(&mut incidents, &key, "a ticket", |i| {
        i.incident.as_ref().is_some_and(|i| i.severity == warning)
    })
    .await;
    assert_eq!(count, 1);
    let incident = ticket.incident.clone().unwrap();
    assert_eq!(incident.service, "ledger");
    assert_eq!(ticket.alerts.len(), 1, "{ticket:#?}");
    let alert = &ticket.alerts[0];
    assert_eq!((alert.kind, alert.severity), (burn, warning));
    assert!((alert.observed - 5.0).abs() < 1e-9, "{alert:#?}");
    assert!((alert.threshold - 3.0).abs() < 1e-9, "{alert:#?}");
    for said in [
        "availability objective 99.9% over 30 days",
        "5.0x over 1d and 5.0x over 2h (ticket above 3.0x)",
        "500.0% of the budget spent, 0 bad requests left; the budget is spent",
        "burn rate 5m 5.0x, 30m 5.0x, 1h 5.0x, 2h 5.0x, 6h 5.0x, 1d 5.0x, 3d 5.0x",
    ] {
        assert!(alert.explanation.contains(said), "{said}: {alert:#?}");
    }

    // Faster: 10 of 500 more fail, 15 of 1,500 in all (10x): the page pair
    // of 6 h and 30 min burns, the same incident escalates to critical.
    publish(
        &mut ingest,
        &key,
        common::batch("burn", 2, traffic(500, 50)),
    )
    .await;
    let critical = i32::from(pb::Severity::Critical);
    let (count, page) = incident_when(&mut incidents, &key, "a page", |i| {
        i.incident.as_ref().is_some_and(|i| i.severity == critical)
    })
    .await;
    assert_eq!(count, 1, "one incident per objective");
    assert_eq!(
        page.incident.as_ref().unwrap().incident_id,
        incident.incident_id
    );
    let last = page.alerts.last().unwrap();
    assert_eq!((last.kind, last.severity), (burn, critical));
    let said = "10.0x over 6h and 10.0x over 30m (page above 6.0x)";
    assert!(last.explanation.contains(said), "{last:#?}");
    assert!(
        page.alerts[0].cleared_at.is_some(),
        "the ticket is replaced: {page:#?}"
    );

    // 20,000 good requests: 15 bad of 21,500 is 0.7x, under every pair's
    // factor. The alert clears and the incident resolves by itself.
    for seq in 3..7 {
        publish(
            &mut ingest,
            &key,
            common::batch("burn", seq, traffic(5_000, 0)),
        )
        .await;
    }
    let resolved = i32::from(pb::IncidentStatus::Resolved);
    let (count, done) = incident_when(&mut incidents, &key, "resolved", |i| {
        i.incident.as_ref().is_some_and(|i| i.status == resolved)
    })
    .await;
    assert_eq!(count, 1, "one incident per objective");
    assert_eq!(done.incident.unwrap().incident_id, incident.incident_id);
    assert!(
        done.alerts
            .iter()
            .all(|a| a.cleared_at.is_some() && a.kind == burn)
    );
}
