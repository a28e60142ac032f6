//! Service level objectives against the real server: set, listed, read from
//! the rollups of events sent through the ingest API (attainment, budget,
//! burn rates, exhaustion), refused field by field, and kept to their tenant.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{Server, ServerOpts, TestDb, authed, publish, ts, two_tenants};
use pulsyon::proto::v1::{
    self as pb, admin_client::AdminClient, ingest_client::IngestClient, query_client::QueryClient,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_stand_by_the_rollups_exact_counts_and_refuse_what_does_not_fit() {
    let db = TestDb::new().await;
    let args = ["--detector", "false", "--rollup-interval", "200ms"];
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &args,
        ..Default::default()
    });
    let (key, other) = two_tenants(&db.url);
    let mut ingest = IngestClient::new(server.channel().await);
    publish(&mut ingest, &key, common::batch("slo", 1, events())).await;
    let mut admin = AdminClient::new(server.channel().await);
    let mut query = QueryClient::new(server.channel().await);

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
