//! Black-box tests of the foundation: the real binary on 127.0.0.1:0 against
//! real PostgreSQL, with the generated clients and the real grpcurl.

mod common;

use std::{process::Command, time::Duration};

use common::{Server, ServerOpts, TestDb, authed, cli, create_key, create_tenant, grpcurl};
use nix::sys::signal::Signal;
use pulsyon::proto::v1::{
    self as pb, admin_client::AdminClient, incidents_client::IncidentsClient,
    ingest_client::IngestClient, query_client::QueryClient,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const SERVICES: [&str; 6] = [
    "",
    "pulsyon.v1.Ingest",
    "pulsyon.v1.Query",
    "pulsyon.v1.Incidents",
    "pulsyon.v1.Admin",
    "opentelemetry.proto.collector.trace.v1.TraceService",
];

async fn wait_serving(server: &Server) -> HealthClient<tonic::transport::Channel> {
    let mut health = HealthClient::new(server.channel().await);
    // The monitor's first ping decides; it runs as soon as the server starts.
    for _ in 0..200 {
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        if status == ServingStatus::Serving as i32 {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server never became SERVING:\n{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_serves_reports_and_lists_only_its_roles_services() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--roles", "query,detect"],
        ..Default::default()
    });
    let mut health = wait_serving(&server).await;
    for (service, served) in [
        ("pulsyon.v1.Query", true),
        ("pulsyon.v1.Incidents", true),
        ("pulsyon.v1.Admin", true),
        ("pulsyon.v1.Ingest", false),
        ("opentelemetry.proto.collector.trace.v1.TraceService", false),
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await;
        match served {
            true => assert_eq!(
                answer.unwrap().into_inner().status,
                ServingStatus::Serving as i32,
                "{service}"
            ),
            false => assert_eq!(answer.unwrap_err().code(), Code::NotFound, "{service}"),
        }
    }
    // Reflection lists what is served; the contract's types stay describable.
    let list = Command::new(grpcurl())
        .args(["-plaintext", &server.grpc, "list"])
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.lines().any(|l| l == "pulsyon.v1.Query"), "{list}");
    assert!(!list.lines().any(|l| l == "pulsyon.v1.Ingest"), "{list}");
    // Ingest is not served here: the call is refused, nothing is admitted.
    let tenant_key = create_tenant(&db.url, "acme");
    let mut ingest = IngestClient::new(server.channel().await);
    let refused = ingest
        .publish_events(authed(
            pb::PublishEventsRequest {
                batch: Some(pb::EventBatch {
                    producer_id: "p".into(),
                    seq: 1,
                    events: vec![],
                }),
            },
            &tenant_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    // Without the web role, the HTTP port has its probes but no dashboard.
    let (status, _, _) = common::http(&server.http, "GET", "/", &[], "").await;
    assert_eq!(status, 404);
    let (status, _, _) = common::http(&server.http, "GET", "/api/v1/overview", &[], "").await;
    assert_eq!(status, 404);
    let (status, _, _) = common::http(&server.http, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200);
    // `pulsyon roles` says what each role starts.
    let (status, stdout, _) = cli(&["roles"]);
    assert!(status.success());
    for role in [
        "ingest", "writer", "detect", "query", "web", "write", "read", "all",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(role)),
            "{role} missing from:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_for_every_service() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    let mut health = wait_serving(&server).await;
    for service in SERVICES {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "pulsyon.v1.Nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let ready = common::http_get(&format!("http://{}/readyz", server.http)).await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = common::http_get(&format!("http://{}/metrics", server.http)).await;
    assert!(metrics.contains("pulsyon_database_up 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_the_services_and_describes_with_comments() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    wait_serving(&server).await;

    let list = Command::new(grpcurl())
        .args(["-plaintext", &server.grpc, "list"])
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let list = String::from_utf8(list.stdout).unwrap();
    for service in [
        "pulsyon.v1.Admin",
        "pulsyon.v1.Incidents",
        "pulsyon.v1.Ingest",
        "pulsyon.v1.Query",
    ] {
        assert!(
            list.lines().any(|l| l == service),
            "{service} missing from:\n{list}"
        );
    }

    let describe = Command::new(grpcurl())
        .args(["-plaintext", &server.grpc, "describe", "pulsyon.v1.Event"])
        .output()
        .unwrap();
    assert!(
        describe.status.success(),
        "{}",
        String::from_utf8_lossy(&describe.stderr)
    );
    let describe = String::from_utf8(describe.stdout).unwrap();
    assert!(describe.contains("message Event {"), "{describe}");
    assert!(
        describe.contains("// The route template, not the raw path"),
        "comments missing:\n{describe}"
    );

    // An authenticated call through grpcurl, as the README shows it.
    let key = create_tenant(&db.url, "grpcurl");
    let call = Command::new(grpcurl())
        .args([
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {key}"),
            &server.grpc,
            "pulsyon.v1.Admin/ListApiKeys",
        ])
        .output()
        .unwrap();
    assert!(
        call.status.success(),
        "{}",
        String::from_utf8_lossy(&call.stderr)
    );
    assert!(String::from_utf8_lossy(&call.stdout).contains("\"tenant\": \"grpcurl\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_authenticate_scopes_authorize_and_never_reach_the_logs() {
    let db = TestDb::new().await;
    let admin_key = create_tenant(&db.url, "acme");
    let ingest_key = create_key(&db.url, "acme", "ingest");
    let other_tenant_key = create_tenant(&db.url, "other");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        rust_log: "debug",
        ..Default::default()
    });
    wait_serving(&server).await;
    let channel = server.channel().await;
    let mut admin = AdminClient::new(channel.clone());
    let mut query = QueryClient::new(channel.clone());

    // No key, a malformed header, an unknown key: UNAUTHENTICATED.
    let err = admin
        .list_api_keys(pb::ListApiKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let mut req = tonic::Request::new(pb::ListApiKeysRequest::default());
    req.metadata_mut()
        .insert("authorization", admin_key.parse().unwrap());
    assert_eq!(
        admin.list_api_keys(req).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let unknown = format!("pls_{}", "0".repeat(64));
    let err = admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &unknown))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A key without the scope: PERMISSION_DENIED, on every service that needs another scope.
    let err = admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &ingest_key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = query
        .list_services(authed(pb::ListServicesRequest {}, &ingest_key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = IncidentsClient::new(channel.clone())
        .list_incidents(authed(pb::ListIncidentsRequest::default(), &ingest_key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // With the scope, a call passes authentication and reaches validation.
    let err = IngestClient::new(channel.clone())
        .publish_events(authed(pb::PublishEventsRequest::default(), &ingest_key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(err.message(), "batch: missing");
    // Keys are listed per tenant, without secrets.
    let keys = admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &admin_key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.api_keys.len(), 2);
    assert!(keys.api_keys.iter().all(|k| k.tenant == "acme"
        && (admin_key.starts_with(&k.prefix) || ingest_key.starts_with(&k.prefix))));
    let ingest_entry = keys
        .api_keys
        .iter()
        .find(|k| ingest_key.starts_with(&k.prefix))
        .unwrap();

    // Another tenant cannot revoke acme's key.
    let err = admin
        .revoke_api_key(authed(
            pb::RevokeApiKeyRequest {
                key_id: ingest_entry.key_id.clone(),
            },
            &other_tenant_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // A revoked key: UNAUTHENTICATED (this process forgets it at once).
    let revoked = admin
        .revoke_api_key(authed(
            pb::RevokeApiKeyRequest {
                key_id: ingest_entry.key_id.clone(),
            },
            &admin_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.api_key.unwrap().revoked_at.is_some());
    let err = IngestClient::new(channel.clone())
        .publish_events(authed(pb::PublishEventsRequest::default(), &ingest_key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("revoked"), "{}", err.message());

    // A key made over the API works; its secret appears only in the response.
    let created = admin
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "reader".into(),
                scopes: vec![pb::Scope::Read as i32],
            },
            &admin_key,
        ))
        .await
        .unwrap()
        .into_inner();
    query
        .list_services(authed(pb::ListServicesRequest {}, &created.secret))
        .await
        .expect("a read key passes Query's check");
    let err = admin
        .create_api_key(authed(
            pb::CreateApiKeyRequest {
                name: "x".into(),
                scopes: vec![],
            },
            &admin_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("scopes"), "{}", err.message());

    let logs = server.logs();
    assert!(logs.contains("api key revoked"), "logs are captured");
    for secret in [
        &admin_key,
        &ingest_key,
        &other_tenant_key,
        &created.secret,
        &unknown,
    ] {
        let secret_part = &secret[12..];
        assert!(!logs.contains(secret_part), "a key reached the logs");
    }
}

#[test]
fn bad_configuration_exits_64_naming_the_setting() {
    // (arguments, environment, the setting the message must name)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        // Ingest without its writer (no buffer between processes yet).
        (&["serve", "--roles", "ingest,query"], &[], "--roles"),
        (&["serve", "--roles", "ingest,wrtier"], &[], "--roles"),
        (&["serve", "--grpc-addr", "nonsense"], &[], "--grpc-addr"),
        (
            &["serve"],
            &[("PULSYON_HTTP_ADDR", "127.0.0.1:http")],
            "--http-addr",
        ),
        (
            &["serve", "--database-url", "mysql://localhost/x"],
            &[],
            "--database-url",
        ),
        (
            &["serve", "--shutdown-grace", "ten"],
            &[],
            "--shutdown-grace",
        ),
        (&["--log-format", "xml", "serve"], &[], "--log-format"),
    ];
    for (args, env, setting) in cases {
        let out = Command::new(common::BIN)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(setting),
            "{args:?}: {stderr:?} does not name {setting}"
        );
        // The problem, first, with what it needs (the possible values, the
        // missing flag) beneath: not the usage text.
        assert!(
            stderr.lines().next().unwrap_or("").contains(setting)
                && !stderr.contains("Usage")
                && stderr.trim().lines().count() <= 2,
            "a clear problem: {stderr:?}"
        );
    }
    let (status, _, stderr) = cli(&[
        "key",
        "create",
        "--tenant",
        "t",
        "--scopes",
        "ingest,everything",
    ]);
    assert_eq!(status.code(), Some(64));
    assert!(
        stderr.contains("--scopes") && stderr.contains("everything"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_health_not_serving_then_exits_zero() {
    let db = TestDb::new().await;
    let mut server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--shutdown-grace", "3s"],
        ..Default::default()
    });
    let mut health = wait_serving(&server).await;
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "pulsyon.v1.Ingest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    server.signal(Signal::SIGTERM);
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a health update after SIGTERM")
        .expect("the stream carries the update before it ends")
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);

    // The open health stream holds the drain until the grace period ends; the
    // process still exits 0 soon after (the bound is generous, not a benchmark).
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("exit after SIGTERM");
    assert!(status.success(), "{status}:\n{}", server.logs());
    let logs = server.logs();
    let order = |needle: &str| {
        logs.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not logged:\n{logs}"))
    };
    assert!(order("shutdown begins") < order("shutdown complete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_working_on_another_process_within_the_cache_ttl() {
    let db = TestDb::new().await;
    let admin_key = create_tenant(&db.url, "acme");
    let reader_key = create_key(&db.url, "acme", "read");
    let opts = || ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--key-cache-ttl", "1s"],
        ..Default::default()
    };
    let (a, b) = (Server::start(opts()), Server::start(opts()));
    wait_serving(&a).await;
    wait_serving(&b).await;
    let mut query_b = QueryClient::new(b.channel().await);
    // B has the reader key cached as valid.
    query_b
        .list_services(authed(pb::ListServicesRequest {}, &reader_key))
        .await
        .expect("valid on B");

    let mut admin_a = AdminClient::new(a.channel().await);
    let keys = admin_a
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &admin_key))
        .await
        .unwrap()
        .into_inner();
    let reader = keys
        .api_keys
        .iter()
        .find(|k| reader_key.starts_with(&k.prefix))
        .unwrap();
    admin_a
        .revoke_api_key(authed(
            pb::RevokeApiKeyRequest {
                key_id: reader.key_id.clone(),
            },
            &admin_key,
        ))
        .await
        .unwrap();

    // B refuses it once its cached answer expires (the documented TTL); the bound here is generous.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = query_b
            .list_services(authed(pb::ListServicesRequest {}, &reader_key))
            .await;
        if let Err(err) = answer {
            assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
            assert!(err.message().contains("revoked"), "{}", err.message());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_written_to_a_file_or_pipe_carry_no_colour_codes() {
    let db = TestDb::new().await;
    // The human-readable format, as a newcomer runs it, with stderr a pipe.
    let out = Command::new(common::BIN)
        .args([
            "--log-format",
            "pretty",
            "migrate",
            "--database-url",
            &db.url,
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("migrations applied"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_zero_against_a_serving_server_and_non_zero_against_a_stopped_one() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        ..Default::default()
    });
    wait_serving(&server).await;
    let check = |addr: &str| {
        Command::new(common::BIN)
            .args(["healthcheck", "--grpc-addr", addr, "--timeout", "2s"])
            .env_remove("PULSYON_GRPC_ADDR")
            .output()
            .unwrap()
    };
    let up = check(&server.grpc);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&up.stdout).trim(), "serving");
    let addr = server.grpc.clone();
    drop(server);
    let down = check(&addr);
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains(&addr),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}
