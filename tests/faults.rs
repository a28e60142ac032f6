//! Faults under load, through the Rust SDK: the server killed with SIGKILL and
//! restarted, PostgreSQL restarted. Nothing acknowledged is lost, nothing is
//! stored twice.

mod common;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use common::{Server, ServerOpts, TestDb, create_tenant, free_port, pool};
use pulsyon_client::{Client, ClientOptions};
use pulsyon_loadgen::Generator;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Sends events as fast as the client takes them until `until`, then closes (waiting for every ack).
fn load(client: Arc<Client>, until: Instant) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut generator = Generator::new(42, 8);
        let mut sent = 0;
        while Instant::now() < until {
            client
                .send(generator.event(SystemTime::now()))
                .await
                .expect("send");
            sent += 1;
            if sent % 200 == 0 {
                // Keep the load steady rather than maximal, so the test stays light on 2 cores.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        client.close().await.expect("close waits for every ack");
        sent
    })
}

/// Waits (up to a minute) until `done` holds of the client's counters: a
/// test waits for progress, never for a fixed time.
async fn until(client: &Client, what: &str, done: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(client) {
        assert!(
            Instant::now() < deadline,
            "waited a minute for {what}: {:?}",
            client.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_stored_exactly(url: &str, client: &Client, sent: u64) {
    let stats = client.stats();
    assert_eq!(stats.sent, sent, "{stats:?}");
    assert_eq!(stats.acked, sent, "every event acknowledged: {stats:?}");
    assert_eq!((stats.rejected, stats.dropped), (0, 0), "{stats:?}");
    let pg = pool(url).await;
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM api_logs")
            .fetch_one(&pg)
            .await
            .unwrap();
    assert_eq!(rows as u64, stats.acked, "stored = acknowledged: {stats:?}");
    assert_eq!(rows, distinct, "no event stored twice");
}

fn options() -> ClientOptions {
    ClientOptions {
        batch_size: 200,
        max_backoff: Duration::from_millis(500),
        ..Default::default()
    }
}

/// A database, a server on a fixed address (so that it can restart there) and an SDK client.
struct Setup {
    db: TestDb,
    addr: String,
    first: Server,
    client: Arc<Client>,
}

async fn setup() -> Setup {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let addr = format!("127.0.0.1:{}", free_port());
    let first = Server::start(ServerOpts {
        database_url: Some(&db.url),
        grpc_addr: Some(&addr),
        ..Default::default()
    });
    let client = Arc::new(
        Client::connect_with(&format!("http://{addr}"), &key, options())
            .await
            .unwrap(),
    );
    Setup {
        db,
        addr,
        first,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_under_load_loses_and_duplicates_nothing() {
    let Setup {
        db,
        addr,
        mut first,
        client,
    } = setup().await;
    let started = Instant::now();
    let producer = load(client.clone(), started + Duration::from_secs(22));

    until(&client, "load flowing before the kill", |c| {
        c.stats().acked >= 2_000
    })
    .await;
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    // The SDK notices the server is gone before it comes back.
    until(&client, "the SDK to see the stream break", |c| {
        c.last_error().is_some()
    })
    .await;
    let _second = Server::start(ServerOpts {
        database_url: Some(&db.url),
        grpc_addr: Some(&addr),
        ..Default::default()
    });

    let sent = producer.await.unwrap();
    let stats = client.stats();
    assert!(stats.reconnects >= 1, "the SDK reconnected: {stats:?}");
    assert_stored_exactly(&db.url, &client, sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_nothing_acknowledged() {
    // A private PostgreSQL for this test alone, so restarting it disturbs no other test.
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = root.path().join("pg");
    let mut cluster = pulsyon::store::embedded::Cluster::start(&data_dir, "postgres")
        .await
        .unwrap();
    let url = format!(
        "postgres://pulsyon@localhost/pulsyon?host={}",
        data_dir.join("run").display()
    );
    let key = create_tenant(&url, "acme");
    let server = Server::start(ServerOpts {
        database_url: Some(&url),
        ..Default::default()
    });
    let mut health = HealthClient::new(server.channel().await);
    let client = Arc::new(
        Client::connect_with(&format!("http://{}", server.grpc), &key, options())
            .await
            .unwrap(),
    );
    let producer = load(client.clone(), Instant::now() + Duration::from_secs(14));

    until(&client, "load flowing before the stop", |c| {
        c.stats().acked >= 1_000
    })
    .await;
    cluster.stop().await;
    // Meanwhile the server says it cannot serve.
    let mut saw_not_serving = false;
    for _ in 0..100 {
        let status = health
            .check(HealthCheckRequest {
                service: "pulsyon.v1.Ingest".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == ServingStatus::NotServing as i32 {
            saw_not_serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_not_serving,
        "health turned NOT_SERVING while PostgreSQL was down"
    );
    // The outage lasted until the server saw it (NOT_SERVING above).
    let mut cluster = pulsyon::store::embedded::Cluster::start(&data_dir, "postgres")
        .await
        .unwrap();

    let sent = producer.await.unwrap();
    assert_stored_exactly(&url, &client, sent).await;
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        ServingStatus::Serving as i32,
        "the server recovered by itself"
    );
    drop(server);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_or_closes_every_stream_and_loses_nothing() {
    let Setup {
        db,
        addr,
        mut first,
        client,
    } = setup().await;
    let producer = load(client.clone(), Instant::now() + Duration::from_secs(10));

    until(&client, "load flowing before SIGTERM", |c| {
        c.stats().acked >= 500
    })
    .await;
    first.signal(nix::sys::signal::Signal::SIGTERM);
    let status = first
        .wait_exit(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    let ended = client
        .last_error()
        .expect("the stream was ended by the server");
    // The server ends each stream with UNAVAILABLE, then closes the
    // connection; a client still writing its next batch can meet the closed
    // socket before it reads those trailers (an h2 broken pipe). Either way
    // the stream ended and the SDK retries; what counts is that nothing is lost.
    let closed_while_writing =
        ended.code() == tonic::Code::Unknown && ended.message().contains("h2 protocol error");
    assert!(
        ended.code() == tonic::Code::Unavailable || closed_while_writing,
        "{ended:?}"
    );
    let logs = first.logs();
    assert!(
        logs.contains("writer drained"),
        "the writer answered what it held:\n{logs}"
    );

    let _second = Server::start(ServerOpts {
        database_url: Some(&db.url),
        grpc_addr: Some(&addr),
        ..Default::default()
    });
    let sent = producer.await.unwrap();
    assert_stored_exactly(&db.url, &client, sent).await;
}
