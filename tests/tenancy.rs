//! Tenancy and abuse resistance, black-box: every RPC called with tenant A's
//! key neither returns nor changes anything of tenant B; per-tenant rate,
//! stream, cardinality and query limits (with Redis, one budget for every
//! process; without it, a local fallback); oversized and malformed messages.

mod common;

use std::time::{Duration, SystemTime};

use common::{
    Server, ServerOpts, TestDb, authed, batch, create_tenant, fire, publish, ts, two_tenants,
};
use pulsyon::{
    domain::{
        incident::Alert,
        rules::{Kind, Severity},
    },
    proto::v1::{
        self as pb, admin_client::AdminClient, incidents_client::IncidentsClient,
        ingest_client::IngestClient, query_client::QueryClient,
    },
};
use time::OffsetDateTime;
use tokio_stream::StreamExt;
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;

fn event(service: &str, endpoint: &str, status: u32) -> pb::Event {
    pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(ts(SystemTime::now() - Duration::from_secs(5))),
        service: service.into(),
        endpoint: endpoint.into(),
        method: "GET".into(),
        status_code: status,
        latency_ms: 12.0,
        trace_id: format!("trace-{service}"),
        ..Default::default()
    }
}

fn alert(tenant: pulsyon::domain::TenantId, service: &str) -> Alert {
    Alert {
        alert_id: 0,
        tenant_id: tenant,
        incident_id: None,
        service: service.into(),
        endpoint: String::new(),
        kind: Kind::ErrorRate,
        severity: Severity::Critical,
        observed: 0.4,
        baseline: 0.01,
        no_baseline: false,
        threshold: 0.05,
        window_secs: 90,
        fired_at: OffsetDateTime::now_utc(),
        cleared_at: None,
        detail: String::new(),
    }
}

async fn set_limits(channel: &Channel, key: &str, overrides: pb::TenantLimits) {
    AdminClient::new(channel.clone())
        .set_tenant_limits(authed(
            pb::SetTenantLimitsRequest {
                overrides: Some(overrides),
            },
            key,
        ))
        .await
        .unwrap();
}

async fn try_publish(
    channel: &Channel,
    key: &str,
    batch: pb::EventBatch,
) -> Result<pb::BatchAck, Status> {
    IngestClient::new(channel.clone())
        .publish_events(authed(pb::PublishEventsRequest { batch: Some(batch) }, key))
        .await
        .map(|r| r.into_inner().ack.unwrap())
}

/// The retry delay a RESOURCE_EXHAUSTED status carries.
fn retry_delay(status: &Status) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo with a delay")
}

/// What a call with one tenant's key saw of another tenant.
#[derive(Debug, PartialEq)]
enum Seen {
    /// Nothing of the other tenant (an empty or its own answer).
    Nothing,
    /// Something of the other tenant: a leak.
    Something,
    /// Refused with this code.
    Refused(Code),
}

/// One row's call.
type Call<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Seen> + Send + 'a>>;

/// `Ok(true)`: the answer held nothing of the other tenant.
fn seen(answer: Result<bool, Status>) -> Seen {
    match answer {
        Ok(true) => Seen::Nothing,
        Ok(false) => Seen::Something,
        Err(status) => Seen::Refused(status.code()),
    }
}

async fn ingest_total(channel: &Channel, key: &str) -> pb::IngestMinute {
    QueryClient::new(channel.clone())
        .get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), key))
        .await
        .unwrap()
        .into_inner()
        .total
        .unwrap()
}

/// Tenant B's world (events, a dead letter, an incident, a rule, limits, a
/// key) beside tenant A's empty one, on one server, B's events rolled up.
struct Worlds {
    _db: TestDb,
    _server: Server,
    channel: Channel,
    store: pulsyon::store::Store,
    key_a: String,
    key_b: String,
    a: pulsyon::domain::TenantId,
    b: pulsyon::domain::TenantId,
    b_incident: String,
    b_rule: pb::DetectionRule,
    b_key_id: String,
}

async fn worlds() -> Worlds {
    let db = TestDb::new().await;
    let (key_a, key_b) = two_tenants(&db.url);
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let channel = server.channel().await;
    let store = db.store().await;
    let b = store.tenant_by_name("globex").await.unwrap().id;
    let a = store.tenant_by_name("acme").await.unwrap().id;
    let (mut ingest, mut query, mut admin) = (
        IngestClient::new(channel.clone()),
        QueryClient::new(channel.clone()),
        AdminClient::new(channel.clone()),
    );

    // Tenant B's world: events, a dead letter, an incident, a rule, limits, keys.
    let mut bad = event("b-secret", "/", 200);
    bad.status_code = 42;
    let ack = publish(
        &mut ingest,
        &key_b,
        batch("b", 1, vec![event("b-secret", "/pay", 500), bad]),
    )
    .await;
    assert_eq!((ack.accepted, ack.rejections.len()), (1, 1));
    let (b_incident, _) = fire(&store, &alert(b, "b-secret"), Duration::from_secs(600))
        .await
        .unwrap();
    let b_incident = b_incident.incident_id.unwrap().to_string();
    let b_rule = pb::DetectionRule {
        kind: pb::AlertKind::ErrorRate as i32,
        service: "b-secret".into(),
        enabled: true,
        threshold: 0.2,
        ..Default::default()
    };
    admin
        .set_detection_rule(authed(
            pb::SetDetectionRuleRequest {
                rule: Some(b_rule.clone()),
            },
            &key_b,
        ))
        .await
        .unwrap();
    set_limits(
        &channel,
        &key_b,
        pb::TenantLimits {
            max_page_size: Some(77),
            ..Default::default()
        },
    )
    .await;
    let b_keys = admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &key_b))
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    let b_key_id = b_keys[0].key_id.clone();
    // Wait until B's events are rolled up, so that a leak would show.
    for _ in 0..300 {
        let m = query
            .get_metrics(authed(
                pb::GetMetricsRequest {
                    service: "b-secret".into(),
                    ..Default::default()
                },
                &key_b,
            ))
            .await
            .unwrap()
            .into_inner();
        if m.points.iter().map(|p| p.count).sum::<u64>() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    Worlds {
        _db: db,
        _server: server,
        channel,
        store,
        key_a,
        key_b,
        a,
        b,
        b_incident,
        b_rule,
        b_key_id,
    }
}

/// Calls every route of `service` (`Query.`, `Incidents.`, `Admin.`) with
/// tenant A's key, each a row of (route, what A must see).
async fn rows_of(w: &Worlds, service: &str) {
    // Every read of A's and every change A asks of B's things, as rows of
    // (route, what A must see): nothing of B, or a refusal.
    let (q, inc, adm) = (
        QueryClient::new(w.channel.clone()),
        IncidentsClient::new(w.channel.clone()),
        AdminClient::new(w.channel.clone()),
    );
    let ka = w.key_a.as_str();
    let rows: Vec<(&str, Seen, Call<'_>)> = vec![
        ("Query.ListServices", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                seen(
                    q.list_services(authed(pb::ListServicesRequest {}, ka))
                        .await
                        .map(|r| r.into_inner().services.is_empty()),
                )
            })
        }),
        ("Query.QueryEvents (all)", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                seen(
                    q.query_events(authed(pb::QueryEventsRequest::default(), ka))
                        .await
                        .map(|r| r.into_inner().events.is_empty()),
                )
            })
        }),
        ("Query.QueryEvents (B's service)", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                let req = pb::QueryEventsRequest {
                    service: "b-secret".into(),
                    ..Default::default()
                };
                seen(
                    q.query_events(authed(req, ka))
                        .await
                        .map(|r| r.into_inner().events.is_empty()),
                )
            })
        }),
        ("Query.QueryEvents (B's trace)", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                let req = pb::QueryEventsRequest {
                    trace_id: "trace-b-secret".into(),
                    ..Default::default()
                };
                seen(
                    q.query_events(authed(req, ka))
                        .await
                        .map(|r| r.into_inner().events.is_empty()),
                )
            })
        }),
        (
            "Query.GetServiceHealth (B's service)",
            Seen::Refused(Code::NotFound),
            {
                let mut q = q.clone();
                Box::pin(async move {
                    let req = pb::GetServiceHealthRequest {
                        service: "b-secret".into(),
                        ..Default::default()
                    };
                    seen(
                        q.get_service_health(authed(req, ka))
                            .await
                            .map(|r| r.into_inner().services.is_empty()),
                    )
                })
            },
        ),
        ("Query.GetServiceHealth (all)", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                seen(
                    q.get_service_health(authed(pb::GetServiceHealthRequest::default(), ka))
                        .await
                        .map(|r| r.into_inner().services.is_empty()),
                )
            })
        }),
        ("Query.GetMetrics (B's service)", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                let req = pb::GetMetricsRequest {
                    service: "b-secret".into(),
                    ..Default::default()
                };
                seen(
                    q.get_metrics(authed(req, ka))
                        .await
                        .map(|r| r.into_inner().points.iter().map(|p| p.count).sum::<u64>() == 0),
                )
            })
        }),
        ("Query.ListFailedEvents", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                seen(
                    q.list_failed_events(authed(pb::ListFailedEventsRequest::default(), ka))
                        .await
                        .map(|r| r.into_inner().failed_events.is_empty()),
                )
            })
        }),
        ("Query.GetIngestStats", Seen::Nothing, {
            let mut q = q.clone();
            Box::pin(async move {
                seen(
                    q.get_ingest_stats(authed(pb::GetIngestStatsRequest::default(), ka))
                        .await
                        .map(|r| r.into_inner().total.is_none_or(|t| t.received == 0)),
                )
            })
        }),
        ("Incidents.ListIncidents", Seen::Nothing, {
            let mut i = inc.clone();
            Box::pin(async move {
                seen(
                    i.list_incidents(authed(pb::ListIncidentsRequest::default(), ka))
                        .await
                        .map(|r| r.into_inner().incidents.is_empty()),
                )
            })
        }),
        (
            "Incidents.GetIncident (B's)",
            Seen::Refused(Code::NotFound),
            {
                let (mut i, id) = (inc.clone(), w.b_incident.clone());
                Box::pin(async move {
                    seen(
                        i.get_incident(authed(pb::GetIncidentRequest { incident_id: id }, ka))
                            .await
                            .map(|_| false),
                    )
                })
            },
        ),
        (
            "Incidents.AcknowledgeIncident (B's)",
            Seen::Refused(Code::NotFound),
            {
                let (mut i, id) = (inc.clone(), w.b_incident.clone());
                Box::pin(async move {
                    let req = pb::AcknowledgeIncidentRequest {
                        incident_id: id,
                        by: "mallory".into(),
                        note: String::new(),
                    };
                    seen(i.acknowledge_incident(authed(req, ka)).await.map(|_| false))
                })
            },
        ),
        (
            "Incidents.ResolveIncident (B's)",
            Seen::Refused(Code::NotFound),
            {
                let (mut i, id) = (inc.clone(), w.b_incident.clone());
                Box::pin(async move {
                    let req = pb::ResolveIncidentRequest {
                        incident_id: id,
                        by: "mallory".into(),
                        note: String::new(),
                    };
                    seen(i.resolve_incident(authed(req, ka)).await.map(|_| false))
                })
            },
        ),
        ("Incidents.GetIncidentSummary", Seen::Nothing, {
            let mut i = inc.clone();
            Box::pin(async move {
                seen(
                    i.get_incident_summary(authed(pb::GetIncidentSummaryRequest::default(), ka))
                        .await
                        .map(|r| {
                            let s = r.into_inner();
                            (s.open, s.opened_in_window) == (0, 0)
                                && s.most_incident_prone_service.is_empty()
                        }),
                )
            })
        }),
        ("Admin.ListApiKeys (with revoked)", Seen::Nothing, {
            let mut m = adm.clone();
            Box::pin(async move {
                let req = pb::ListApiKeysRequest {
                    include_revoked: true,
                };
                seen(m.list_api_keys(authed(req, ka)).await.map(|r| {
                    let keys = r.into_inner().api_keys;
                    !keys.is_empty() && keys.iter().all(|k| k.tenant == "acme")
                }))
            })
        }),
        ("Admin.RevokeApiKey (B's)", Seen::Refused(Code::NotFound), {
            let (mut m, id) = (adm.clone(), w.b_key_id.clone());
            Box::pin(async move {
                seen(
                    m.revoke_api_key(authed(pb::RevokeApiKeyRequest { key_id: id }, ka))
                        .await
                        .map(|_| false),
                )
            })
        }),
        (
            "Admin.CreateTenant (B's name)",
            Seen::Refused(Code::AlreadyExists),
            {
                let mut m = adm.clone();
                Box::pin(async move {
                    let req = pb::CreateTenantRequest {
                        name: "globex".into(),
                    };
                    seen(m.create_tenant(authed(req, ka)).await.map(|_| false))
                })
            },
        ),
        ("Admin.ListDetectionRules (B's service)", Seen::Nothing, {
            let mut m = adm.clone();
            Box::pin(async move {
                let req = pb::ListDetectionRulesRequest {
                    service: "b-secret".into(),
                };
                seen(
                    m.list_detection_rules(authed(req, ka))
                        .await
                        .map(|r| r.into_inner().overrides.is_empty()),
                )
            })
        }),
        ("Admin.DeleteDetectionRule (B's)", Seen::Nothing, {
            let mut m = adm.clone();
            Box::pin(async move {
                let req = pb::DeleteDetectionRuleRequest {
                    kind: pb::AlertKind::ErrorRate as i32,
                    service: "b-secret".into(),
                };
                seen(
                    m.delete_detection_rule(authed(req, ka))
                        .await
                        .map(|r| !r.into_inner().deleted),
                )
            })
        }),
        ("Admin.BacktestDetection", Seen::Nothing, {
            let mut m = adm.clone();
            Box::pin(async move {
                seen(
                    m.backtest_detection(authed(pb::BacktestDetectionRequest::default(), ka))
                        .await
                        .map(|r| r.into_inner().incidents.is_empty()),
                )
            })
        }),
        ("Admin.GetTenantLimits", Seen::Nothing, {
            let mut m = adm.clone();
            Box::pin(async move {
                seen(
                    m.get_tenant_limits(authed(pb::GetTenantLimitsRequest {}, ka))
                        .await
                        .map(|r| r.into_inner().overrides == Some(pb::TenantLimits::default())),
                )
            })
        }),
    ];
    let mut called = 0;
    for (route, expected, call) in rows {
        if route.starts_with(service) {
            assert_eq!(call.await, expected, "{route} with tenant A's key");
            called += 1;
        }
    }
    assert!(called > 0, "no rows for {service}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_with_one_tenants_key_see_nothing_of_another_tenant() {
    let w = worlds().await;
    rows_of(&w, "Query.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_with_one_tenants_key_neither_see_nor_change_another_tenants() {
    let w = worlds().await;
    let (a, b, store, key_a, key_b, b_incident) =
        (w.a, w.b, &w.store, &w.key_a, &w.key_b, &w.b_incident);
    let mut incidents = IncidentsClient::new(w.channel.clone());
    // A subscriber of A, before anything else happens.
    let mut watch = incidents
        .watch(authed(
            pb::WatchRequest {
                send_snapshot: true,
                ..Default::default()
            },
            key_a,
        ))
        .await
        .unwrap()
        .into_inner();

    rows_of(&w, "Incidents.").await;
    let b_view = incidents
        .get_incident(authed(
            pb::GetIncidentRequest {
                incident_id: b_incident.clone(),
            },
            key_b,
        ))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(
        b_view.status,
        pb::IncidentStatus::Open as i32,
        "B's incident is untouched"
    );
    assert!(b_view.acknowledged_by.is_empty());
    // Watch: the snapshot holds nothing of B; B's next change never arrives,
    // A's does.
    let first = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            first.payload,
            Some(pb::watch_response::Payload::SnapshotDone(_))
        ),
        "{first:?}"
    );
    fire(store, &alert(b, "b-other"), Duration::from_secs(600))
        .await
        .unwrap();
    fire(store, &alert(a, "a-own"), Duration::from_secs(600))
        .await
        .unwrap();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match message.payload {
            Some(pb::watch_response::Payload::Heartbeat(_)) => continue,
            Some(pb::watch_response::Payload::Update(u)) => {
                assert_eq!(u.incident.unwrap().service, "a-own");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_with_one_tenants_key_neither_sees_nor_changes_another_tenants() {
    let w = worlds().await;
    let (channel, key_a, key_b, b_rule) = (&w.channel, &w.key_a, &w.key_b, &w.b_rule);
    let mut admin = AdminClient::new(w.channel.clone());
    rows_of(&w, "Admin.").await;
    // What A changed of its own is its own: B's incident, key, rule and
    // limits are as B left them.
    admin
        .set_detection_rule(authed(
            pb::SetDetectionRuleRequest {
                rule: Some(pb::DetectionRule {
                    threshold: 0.9,
                    ..b_rule.clone()
                }),
            },
            key_a,
        ))
        .await
        .unwrap();
    set_limits(
        channel,
        key_a,
        pb::TenantLimits {
            max_page_size: Some(5),
            ..Default::default()
        },
    )
    .await;
    admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), key_b))
        .await
        .expect("B's key still works");
    let b_rules = admin
        .list_detection_rules(authed(
            pb::ListDetectionRulesRequest {
                service: "b-secret".into(),
            },
            key_b,
        ))
        .await
        .unwrap()
        .into_inner()
        .overrides;
    assert_eq!(b_rules.len(), 1);
    assert_eq!(b_rules[0].threshold, 0.2, "B's rule unchanged");
    let b_limits = admin
        .get_tenant_limits(authed(pb::GetTenantLimitsRequest {}, key_b))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b_limits.effective.unwrap().max_page_size, Some(77));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_is_refused_with_a_retry_delay_while_another_is_unaffected() {
    let db = TestDb::new().await;
    let (key_a, key_b) = two_tenants(&db.url);
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let channel = server.channel().await;
    // One event a second with a burst of 10: the second batch cannot pass.
    set_limits(
        &channel,
        &key_a,
        pb::TenantLimits {
            events_per_second: Some(1.0),
            events_burst: Some(10),
            ..Default::default()
        },
    )
    .await;
    let events = |n: usize| (0..n).map(|_| event("api", "/", 200)).collect::<Vec<_>>();
    let ack = try_publish(&channel, &key_a, batch("a", 1, events(10)))
        .await
        .unwrap();
    assert_eq!(ack.accepted, 10);
    let status = try_publish(&channel, &key_a, batch("a", 2, events(5)))
        .await
        .unwrap_err();
    let delay = retry_delay(&status);
    assert!(
        delay >= Duration::from_secs(1),
        "five events at one a second need seconds: {delay:?}"
    );
    assert!(status.message().contains("rate"), "{}", status.message());

    // The other tenant is unaffected.
    let ack = try_publish(&channel, &key_b, batch("b", 1, events(200)))
        .await
        .unwrap();
    assert_eq!(ack.accepted, 200);

    // A stream is ended the same way.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::StreamEventsRequest {
        batch: Some(batch("a-stream", 1, events(5))),
    })
    .await
    .unwrap();
    let mut responses = IngestClient::new(channel.clone())
        .stream_events(authed(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            &key_a,
        ))
        .await
        .unwrap()
        .into_inner();
    let status = tokio::time::timeout(Duration::from_secs(30), responses.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    retry_delay(&status);
    drop(tx);

    // Counted: received = stored + throttled, by cause.
    let mut total = ingest_total(&channel, &key_a).await;
    for _ in 0..100 {
        if total.throttled == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        total = ingest_total(&channel, &key_a).await;
    }
    assert_eq!(
        (total.received, total.stored, total.throttled),
        (20, 10, 10)
    );
    assert_eq!(
        total.throttled_by_cause,
        [pb::ThrottleCount {
            cause: pb::ThrottleCause::EventRate as i32,
            count: 10
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_two_processes_share_one_tenants_rate_budget() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    // A prefix of its own: tests share one Redis.
    let prefix = format!("pulsyon-test-{}", uuid::Uuid::now_v7().simple());
    let args = [
        "--detector",
        "false",
        "--redis-url",
        "redis://127.0.0.1:6379",
        "--redis-key-prefix",
        &prefix,
    ];
    let one = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &args,
        ..Default::default()
    });
    let two = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &args,
        ..Default::default()
    });
    let (c1, c2) = (one.channel().await, two.channel().await);
    set_limits(
        &c1,
        &key,
        pb::TenantLimits {
            events_per_second: Some(1.0),
            events_burst: Some(10),
            ..Default::default()
        },
    )
    .await;
    let events = |n: usize| (0..n).map(|_| event("api", "/", 200)).collect::<Vec<_>>();
    // Process one spends the budget...
    let ack = try_publish(&c1, &key, batch("p", 1, events(10)))
        .await
        .unwrap();
    assert_eq!(ack.accepted, 10);
    // ...and process two, which never charged this tenant itself, refuses.
    let status = try_publish(&c2, &key, batch("p", 2, events(5)))
        .await
        .unwrap_err();
    assert!(retry_delay(&status) >= Duration::from_secs(1));
    assert!(
        !two.logs().contains("limiting per process"),
        "no fallback was needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_falls_back_to_local_limits_with_a_warning_and_a_metric() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    // Nothing listens on this port.
    let url = format!("redis://127.0.0.1:{}", common::free_port());
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false", "--redis-url", &url],
        ..Default::default()
    });
    let channel = server.channel().await;
    set_limits(
        &channel,
        &key,
        pb::TenantLimits {
            events_per_second: Some(1.0),
            events_burst: Some(10),
            ..Default::default()
        },
    )
    .await;
    let events = |n: usize| (0..n).map(|_| event("api", "/", 200)).collect::<Vec<_>>();
    let ack = try_publish(&channel, &key, batch("p", 1, events(10)))
        .await
        .unwrap();
    assert_eq!(ack.accepted, 10, "ingest goes on without Redis");
    let status = try_publish(&channel, &key, batch("p", 2, events(5)))
        .await
        .unwrap_err();
    retry_delay(&status);
    let metrics = common::http_get(&format!("http://{}/metrics", server.http)).await;
    let fallbacks: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pulsyon_rate_limit_fallbacks_total "))
        .expect("the fallback counter")
        .trim()
        .parse()
        .unwrap();
    assert!(fallbacks >= 2.0, "{fallbacks}");
    assert!(server.logs().contains("limiting per process"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cardinality_and_query_sizes_are_limited_per_tenant() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let channel = server.channel().await;
    set_limits(
        &channel,
        &key,
        pb::TenantLimits {
            max_streams: Some(1),
            max_services: Some(2),
            max_endpoints_per_service: Some(2),
            max_page_size: Some(5),
            max_query_range: Some(prost_types::Duration {
                seconds: 3_600,
                nanos: 0,
            }),
            ..Default::default()
        },
    )
    .await;

    // Streams: the second concurrent one is refused with a retry delay.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::StreamEventsRequest {
        batch: Some(batch("s", 1, vec![event("a", "/1", 200)])),
    })
    .await
    .unwrap();
    let mut first = IngestClient::new(channel.clone())
        .stream_events(authed(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    let ack = first.next().await.unwrap().unwrap();
    assert_eq!(ack.ack.unwrap().accepted, 1);
    let (_tx2, rx2) = tokio::sync::mpsc::channel::<pb::StreamEventsRequest>(1);
    let status = IngestClient::new(channel.clone())
        .stream_events(authed(
            tokio_stream::wrappers::ReceiverStream::new(rx2),
            &key,
        ))
        .await
        .unwrap_err();
    retry_delay(&status);
    assert!(status.message().contains("streams"), "{}", status.message());
    drop(tx);
    assert!(first.next().await.is_none(), "the first stream ends");

    // Cardinality: a third service and a third endpoint go to the overflow bucket.
    let ack = try_publish(
        &channel,
        &key,
        batch(
            "c",
            1,
            vec![
                event("a", "/2", 200),
                event("a", "/3", 200),
                event("b", "/1", 200),
                event("c", "/9", 200),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(ack.accepted, 4, "overflowed events are stored, not refused");
    let pg = common::pool(&db.url).await;
    let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT service, endpoint, attributes FROM api_logs ORDER BY service, endpoint",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    let names: Vec<(&str, &str)> = rows
        .iter()
        .map(|(s, e, _)| (s.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("_overflow", "_overflow"),
            ("a", "/1"),
            ("a", "/2"),
            ("a", "_overflow"),
            ("b", "/1")
        ]
    );
    assert_eq!(rows[0].2["pulsyon.overflow.service"], "c");
    assert_eq!(rows[0].2["pulsyon.overflow.endpoint"], "/9");
    assert_eq!(rows[3].2["pulsyon.overflow.endpoint"], "/3");
    let total = ingest_total(&channel, &key).await;
    assert_eq!((total.stored, total.overflowed), (5, 2));

    // Query sizes.
    let mut query = QueryClient::new(channel.clone());
    let status = query
        .query_events(authed(
            pb::QueryEventsRequest {
                page_size: 6,
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("page_size"),
        "{}",
        status.message()
    );
    let page = query
        .query_events(authed(pb::QueryEventsRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.events.len(),
        5,
        "the default page shrinks to the limit"
    );
    let status = query
        .query_events(authed(
            pb::QueryEventsRequest {
                range: Some(pb::TimeRange {
                    start: Some(ts(SystemTime::now() - Duration::from_secs(7_200))),
                    end: None,
                }),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("range"), "{}", status.message());

    // A bad override names its field.
    let status = AdminClient::new(channel.clone())
        .set_tenant_limits(authed(
            pb::SetTenantLimitsRequest {
                overrides: Some(pb::TenantLimits {
                    events_per_second: Some(-1.0),
                    ..Default::default()
                }),
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("overrides.events_per_second"),
        "{}",
        status.message()
    );
}

/// Sends `body` as the raw protobuf of a unary call to `path`.
async fn raw_call(channel: &Channel, key: &str, path: &'static str, body: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    grpc.unary::<Vec<u8>, Vec<u8>, common::RawCodec>(
        authed(body, key),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        common::RawCodec,
    )
    .await
    .map(|_| ())
    .expect_err("the server refuses it")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_messages_get_invalid_argument_and_the_server_stays_up() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let channel = server.channel().await;

    // Not protobuf at all, a truncated field, a wrong wire type.
    for (path, body) in [
        (
            "/pulsyon.v1.Ingest/PublishEvents",
            vec![0xff, 0xff, 0xff, 0xff],
        ),
        ("/pulsyon.v1.Ingest/PublishEvents", vec![0x0a, 0x10, 0x01]),
        ("/pulsyon.v1.Query/QueryEvents", vec![0x0d, 0x01]),
        (
            "/pulsyon.v1.Admin/CreateTenant",
            vec![0x0a, 0x02, 0xc3, 0x28],
        ),
        ("/pulsyon.v1.Incidents/GetIncident", vec![0x08]),
    ] {
        let status = raw_call(&channel, &key, path, body.clone()).await;
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{path} {body:?}: {status:?}"
        );
        assert!(
            status.message().contains("malformed"),
            "{}",
            status.message()
        );
    }

    // Oversized: a batch above 16 MiB is refused whole, by its size.
    let mut big = event("api", "/", 200);
    big.attributes.insert("blob".into(), "x".repeat(17 << 20));
    let status = try_publish(&channel, &key, batch("big", 1, vec![big]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("at most"), "{}", status.message());

    // An event too large for its own limits is a per-event rejection.
    let mut large = event("api", "/", 200);
    large
        .attributes
        .insert("blob".into(), "x".repeat(200 << 10));
    let ack = try_publish(
        &channel,
        &key,
        batch("big", 2, vec![large, event("api", "/", 200)]),
    )
    .await
    .unwrap();
    assert_eq!((ack.accepted, ack.rejections.len()), (1, 1));

    // Still serving.
    let ack = try_publish(&channel, &key, batch("ok", 1, vec![event("api", "/", 200)]))
        .await
        .unwrap();
    assert_eq!(ack.accepted, 1);
    assert!(!server.logs().contains("panicked"));
}
