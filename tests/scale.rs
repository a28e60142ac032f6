//! Scale-out by role over the Redis buffer, with real processes: each test
//! starts its own `redis-server` (append-only, `appendfsync always`) on a free
//! port, its own database and several `pulsyon serve --roles ...` processes.

mod common;

use std::{
    collections::HashSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use common::{Server, ServerOpts, TestDb, authed, create_key, create_tenant, free_port, ts};
use pulsyon::proto::v1::{self as pb, incidents_client::IncidentsClient};
use tokio_stream::StreamExt;

/// A redis-server of the test's own, append-only with `appendfsync always`.
struct Redis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(port, &dir.path().to_path_buf());
        Redis { child, port, dir }
    }

    fn spawn(port: u16, dir: &PathBuf) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

fn role(db: &TestDb, redis: &Redis, roles: &str, more: &[&str]) -> Server {
    let url = redis.url();
    let mut args: Vec<&str> = vec![
        "--roles",
        roles,
        "--redis-url",
        &url,
        "--buffer-lease",
        "3s",
        "--rollup-interval",
        "200ms",
        "--detect-interval",
        "1s",
    ];
    args.extend_from_slice(more);
    Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &args,
        ..Default::default()
    })
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let pool = common::pool(&db.url).await;
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// Waits (60 s at most) until every event of `ids` is stored, then checks
/// that each is stored exactly once and nothing else is.
async fn assert_stored_once(db: &TestDb, ids: &HashSet<String>, context: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = count(db, "SELECT count(*) FROM api_logs").await;
        if stored >= ids.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} of {} acked events stored:\n{}",
            ids.len(),
            context()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Late duplicates would arrive after the last first copy.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(db, "SELECT count(*) FROM api_logs").await,
        ids.len() as i64,
        "nothing stored twice"
    );
    assert_eq!(
        count(db, "SELECT count(DISTINCT event_id) FROM api_logs").await,
        ids.len() as i64
    );
}

fn event(service: &str, status: u32) -> pulsyon_client::Event {
    pulsyon_client::Event {
        event_id: pulsyon_client::new_event_id(),
        time: Some(ts(SystemTime::now())),
        service: service.into(),
        endpoint: "/pay".into(),
        method: "POST".into(),
        status_code: status,
        latency_ms: 12.0,
        ..Default::default()
    }
}

/// The scenario every topology runs: the Rust SDK through each ingest URL
/// (one client each), `mid_load` called partway; every acked event stored
/// exactly once; then an error spike through an ingest process opens an
/// incident that a Watch on `watcher` receives.
async fn scenario(
    db: &TestDb,
    ingest: &[String],
    watcher: &Server,
    (key, reader): (&str, &str),
    mut mid_load: impl FnMut(),
) {
    let mut watch = IncidentsClient::new(watcher.channel().await)
        .watch(authed(pb::WatchRequest::default(), reader))
        .await
        .unwrap()
        .into_inner();
    let mut clients = Vec::new();
    for grpc in ingest {
        clients.push(
            pulsyon_client::Client::connect(&format!("http://{grpc}"), key)
                .await
                .unwrap(),
        );
    }
    let mut ids = HashSet::new();
    for round in 0..40 {
        for client in &clients {
            for _ in 0..250 {
                let e = event("checkout", 200);
                ids.insert(e.event_id.clone());
                client.send(e).await.unwrap();
            }
        }
        if round == 15 {
            mid_load();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for client in &clients {
        client.flush().await.unwrap();
    }
    let stats: pulsyon_client::Stats = clients.iter().map(|c| c.stats()).sum();
    assert_eq!(stats.acked, ids.len() as u64, "{stats:?}");
    assert_eq!(stats.dropped, 0);
    assert_stored_once(db, &ids, String::new).await;

    let spike = clients.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let opened = loop {
        for _ in 0..60 {
            spike.send(event("payments", 503)).await.unwrap();
        }
        spike.flush().await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), watch.next()).await {
            Ok(Some(Ok(pb::WatchResponse {
                payload: Some(pb::watch_response::Payload::Update(u)),
            }))) => break u,
            Ok(Some(Ok(_))) | Err(_) => {}
            other => panic!("the watch ended: {other:?}"),
        }
        assert!(Instant::now() < deadline, "no incident");
    };
    assert_eq!(opened.kind, pb::UpdateKind::Opened as i32);
    assert_eq!(opened.incident.unwrap().service, "payments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_roles_store_every_acked_event_once_through_a_writer_killed_mid_load() {
    let db = TestDb::new().await;
    let redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    let reader = create_key(&db.url, "acme", "read");
    let mut writers = [
        role(&db, &redis, "writer", &[]),
        role(&db, &redis, "writer", &[]),
    ];
    let ingest = [
        role(&db, &redis, "ingest", &[]),
        role(&db, &redis, "ingest", &[]),
    ];
    let watcher = role(&db, &redis, "detect,query", &[]);
    // The scenario, one writer killed (SIGKILL) while the SDK sends.
    let urls = [ingest[0].grpc.clone(), ingest[1].grpc.clone()];
    scenario(&db, &urls, &watcher, (&key, &reader), || {
        writers[0].signal(nix::sys::signal::Signal::SIGKILL);
        writers[0].wait_exit(Duration::from_secs(10));
    })
    .await;
    let owners = count(
        &db,
        "SELECT count(DISTINCT owner) FROM buffer_shards WHERE lease_until > now()",
    )
    .await;
    assert_eq!(owners, 1, "the surviving writer holds every shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_with_every_role_runs_the_same_scenario() {
    let db = TestDb::new().await;
    let key = create_tenant(&db.url, "acme");
    let reader = create_key(&db.url, "acme", "read");
    let all = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--rollup-interval", "200ms", "--detect-interval", "1s"],
        ..Default::default()
    });
    scenario(
        &db,
        std::slice::from_ref(&all.grpc),
        &all,
        (&key, &reader),
        || {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_after_commit_an_acked_batch_is_already_in_postgresql() {
    let db = TestDb::new().await;
    let redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    let _writer = role(&db, &redis, "writer", &[]);
    let ingest = role(&db, &redis, "ingest", &["--ack-after", "commit"]);
    let mut client = pb::ingest_client::IngestClient::new(ingest.channel().await);
    let pool = common::pool(&db.url).await;
    for seq in 1..=20u64 {
        let events: Vec<pb::Event> = (0..50)
            .map(|_| pb::Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                time: Some(ts(SystemTime::now())),
                service: "checkout".into(),
                endpoint: "/pay".into(),
                status_code: 200,
                latency_ms: 3.0,
                ..Default::default()
            })
            .collect();
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id.parse().unwrap()).collect();
        let ack = common::publish(
            &mut client,
            &key,
            pb::EventBatch {
                producer_id: "commit-acks".into(),
                seq,
                events,
            },
        )
        .await;
        assert_eq!(ack.durability, pb::Durability::Committed as i32);
        assert_eq!(ack.accepted, 50);
        // At the moment of the ack, the rows are there.
        let there: i64 =
            sqlx::query_scalar("SELECT count(*) FROM api_logs WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(there, 50, "batch {seq} acked before its commit");
    }
    // The default level answers once the batch is in Redis, and says so.
    let buffered = role(&db, &redis, "ingest", &[]);
    let mut client = pb::ingest_client::IngestClient::new(buffered.channel().await);
    let ack = common::publish(
        &mut client,
        &key,
        pb::EventBatch {
            producer_id: "buffered-acks".into(),
            seq: 1,
            events: vec![pb::Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                time: Some(ts(SystemTime::now())),
                service: "checkout".into(),
                status_code: 200,
                ..Default::default()
            }],
        },
    )
    .await;
    assert_eq!(ack.durability, pb::Durability::Buffered as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_entry_is_kept_acknowledged_counted_and_trimmed() {
    let db = TestDb::new().await;
    let redis = Redis::start();
    create_tenant(&db.url, "acme");
    // No writer yet: an entry read by a consumer that never acknowledges it
    // (a writer that died) stays pending.
    let stream = "pulsyon:buffer:{0}";
    redis.cli(&["XGROUP", "CREATE", stream, "writers", "0", "MKSTREAM"]);
    let garbage = redis.cli(&["XADD", stream, "*", "b", "not a record"]);
    redis.cli(&[
        "XREADGROUP",
        "GROUP",
        "writers",
        "ghost",
        "COUNT",
        "1",
        "STREAMS",
        stream,
        ">",
    ]);
    assert_eq!(redis.cli(&["XLEN", stream]), "1");
    let writer = role(&db, &redis, "writer", &["--buffer-shards", "1"]);
    // The writer claims it, cannot read it as a batch: kept, acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&db, "SELECT count(*) FROM buffer_poison").await == 0 {
        assert!(Instant::now() < deadline, "{}", writer.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool = common::pool(&db.url).await;
    let (entry, record): (String, Vec<u8>) =
        sqlx::query_as("SELECT entry_id, record FROM buffer_poison")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (entry.as_str(), record.as_slice()),
        (garbage.as_str(), &b"not a record"[..])
    );
    let metrics = common::http_get(&format!("http://{}/metrics", writer.http)).await;
    assert!(
        metrics.contains("pulsyon_buffer_poison_total 1"),
        "{metrics}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.cli(&["XLEN", stream]) != "0" {
        assert!(
            Instant::now() < deadline,
            "the acknowledged entry is trimmed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_removes_only_entries_below_the_oldest_pending_one() {
    use pulsyon::redis::buffer::{Buffer, BufferConfig};
    let redis = Redis::start();
    let buffer = Buffer::connect(
        BufferConfig {
            urls: vec![redis.url()],
            cluster: false,
            prefix: "pulsyon".into(),
            shards: 1,
            max_entries: 1_000,
            max_deliveries: 5,
            lease: Duration::from_secs(10),
            ack_after_commit: false,
            allow_volatile: false,
        },
        std::sync::Arc::new(pulsyon::wire::record::BufferRecord),
        None,
    )
    .await
    .unwrap();
    let stream = buffer.key(0);
    let add = |n: u32| {
        (0..n)
            .map(|i| redis.cli(&["XADD", &stream, "*", "b", &i.to_string()]))
            .collect::<Vec<_>>()
    };
    let read = |consumer: &str, n: u32| {
        redis.cli(&[
            "XREADGROUP",
            "GROUP",
            "writers",
            consumer,
            "COUNT",
            &n.to_string(),
            "STREAMS",
            &stream,
            ">",
        ]);
    };
    // Three delivered and acknowledged, two delivered and pending (a dead
    // consumer's), one acknowledged after them, two never delivered.
    let first = add(3);
    read("a", 3);
    for id in &first {
        redis.cli(&["XACK", &stream, "writers", id]);
    }
    let pending = add(2);
    read("dead", 2);
    let after = add(1);
    read("a", 1);
    redis.cli(&["XACK", &stream, "writers", &after[0]]);
    let undelivered = add(2);
    assert_eq!(redis.cli(&["XLEN", &stream]), "8");
    buffer.trim_shard(0).await.unwrap();
    let left = redis.cli(&["XRANGE", &stream, "-", "+"]);
    for id in &first {
        assert!(
            !left.contains(id.as_str()),
            "an acknowledged entry below the mark stays: {left}"
        );
    }
    for id in pending.iter().chain(&after).chain(&undelivered) {
        assert!(left.contains(id.as_str()), "{id} was trimmed: {left}");
    }
    // The pending ones acknowledged: the mark moves to the last delivered.
    for id in &pending {
        redis.cli(&["XACK", &stream, "writers", id]);
    }
    buffer.trim_shard(0).await.unwrap();
    let left = redis.cli(&["XRANGE", &stream, "-", "+"]);
    for id in &pending {
        assert!(!left.contains(id.as_str()), "{left}");
    }
    for id in &undelivered {
        assert!(
            left.contains(id.as_str()),
            "an undelivered entry was trimmed: {left}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_keeps_nothing_on_disk_is_refused_as_the_buffer() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut volatile = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--appendonly", "no", "--save", ""])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}");
    let out = Command::new(common::BIN)
        .args(["serve", "--roles", "ingest", "--redis-url", &url])
        .args([
            "--database-url",
            &db.url,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("keeps nothing on disk") && stderr.contains("--allow-volatile-buffer"),
        "{stderr}"
    );
    // Allowed, it runs (and says so loudly).
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &[
            "--roles",
            "ingest",
            "--redis-url",
            &url,
            "--allow-volatile-buffer",
        ],
        ..Default::default()
    });
    assert!(
        server.logs().contains("allow-volatile-buffer"),
        "{}",
        server.logs()
    );
    // Without Redis at all, ingest without writer is a configuration error.
    let out = Command::new(common::BIN)
        .args(["serve", "--roles", "ingest", "--database-url", &db.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--redis-url"), "{stderr}");
    let _ = volatile.kill();
    let _ = volatile.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_loses_no_acked_event() {
    let db = TestDb::new().await;
    let mut redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    let _writer = role(&db, &redis, "writer", &[]);
    let ingest = role(&db, &redis, "ingest", &[]);
    let client = pulsyon_client::Client::connect_with(
        &format!("http://{}", ingest.grpc),
        &key,
        pulsyon_client::ClientOptions {
            max_backoff: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ready = || async {
        let (status, _, _) = common::http(&ingest.http, "GET", "/readyz", &[], "").await;
        status
    };
    // Ready once its first database ping answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready().await != 200 {
        assert!(Instant::now() < deadline, "never ready:\n{}", ingest.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ids = HashSet::new();
    for round in 0..30 {
        for _ in 0..200 {
            let e = event("checkout", 200);
            ids.insert(e.event_id.clone());
            client.send(e).await.unwrap();
        }
        if round == 10 {
            // Redis dies (no shutdown: what it acknowledged is in its AOF).
            let _ = redis.child.kill();
            let _ = redis.child.wait();
            // Ingest refuses with a retryable error, and its health says so.
            let deadline = Instant::now() + Duration::from_secs(10);
            while ready().await != 503 {
                assert!(Instant::now() < deadline, "readyz still 200 without Redis");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut raw = pb::ingest_client::IngestClient::new(ingest.channel().await);
            let refused = raw
                .publish_events(authed(
                    pb::PublishEventsRequest {
                        batch: Some(pb::EventBatch {
                            producer_id: "probe".into(),
                            seq: 1,
                            events: vec![pb::Event {
                                event_id: uuid::Uuid::now_v7().to_string(),
                                time: Some(ts(SystemTime::now())),
                                service: "checkout".into(),
                                status_code: 200,
                                ..Default::default()
                            }],
                        }),
                    },
                    &key,
                ))
                .await
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        }
        if round == 18 {
            redis.child = Redis::spawn(redis.port, &redis.dir.path().to_path_buf());
            let deadline = Instant::now() + Duration::from_secs(20);
            while ready().await != 200 {
                assert!(Instant::now() < deadline, "readyz not back with Redis");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    client.flush().await.unwrap();
    let stats = client.stats();
    assert_eq!(stats.acked, ids.len() as u64, "{stats:?}");
    assert_stored_once(&db, &ids, String::new).await;
}

/// A Redis Cluster of three masters (no replicas), each append-only.
struct Cluster {
    nodes: Vec<Redis>,
}

impl Cluster {
    fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let port = free_port();
                let child = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args([
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                    ])
                    .args([
                        "--appendonly",
                        "yes",
                        "--appendfsync",
                        "always",
                        "--save",
                        "",
                    ])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(Instant::now() < deadline, "redis-server did not start");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Redis { child, port, dir }
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        Cluster { nodes }
    }

    fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(Redis::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the master that serves `key`.
    fn owner(&self, key: &str) -> u16 {
        let slot: u64 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .unwrap();
        *self
            .nodes
            .iter()
            .map(|n| &n.port)
            .find(|port| {
                let mine = Command::new("redis-cli")
                    .args([
                        "-p",
                        &port.to_string(),
                        "CLUSTER",
                        "COUNTKEYSINSLOT",
                        &slot.to_string(),
                    ])
                    .output()
                    .unwrap();
                // The owner answers for its slot; the others hold no key of it.
                String::from_utf8_lossy(&mine.stdout).trim() != "0"
            })
            .expect("a node holds the key")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_the_shards_spread_over_the_masters_and_nothing_is_lost_or_doubled() {
    let db = TestDb::new().await;
    let cluster = Cluster::start();
    let urls = cluster.urls();
    let start = |roles: &'static str| {
        Server::start(ServerOpts {
            database_url: Some(&db.url),
            extra_args: &[
                "--roles",
                roles,
                "--redis-url",
                &urls,
                "--redis-cluster",
                "--buffer-lease",
                "3s",
            ],
            ..Default::default()
        })
    };
    let _writers = [start("writer"), start("writer")];
    let ingest = start("ingest");
    // Several tenants: their batches land on several shards.
    let mut ids = HashSet::new();
    let mut clients = Vec::new();
    for t in 0..6 {
        let key = create_tenant(&db.url, &format!("tenant{t}"));
        clients.push(
            pulsyon_client::Client::connect(&format!("http://{}", ingest.grpc), &key)
                .await
                .unwrap(),
        );
    }
    for _ in 0..10 {
        for client in &clients {
            for _ in 0..100 {
                let e = event("checkout", 200);
                ids.insert(e.event_id.clone());
                client.send(e).await.unwrap();
            }
        }
    }
    for client in &clients {
        client.flush().await.unwrap();
    }
    let stats: pulsyon_client::Stats = clients.iter().map(|c| c.stats()).sum();
    assert_eq!(stats.acked, ids.len() as u64, "{stats:?}");
    assert_stored_once(&db, &ids, String::new).await;
    // Every shard's stream exists (its consumer group made it); they lie on
    // every master.
    let masters: HashSet<u16> = (0..8)
        .map(|shard| cluster.owner(&format!("pulsyon:buffer:{{{shard}}}")))
        .collect();
    assert_eq!(masters.len(), 3, "the shards sit on {masters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_process_killed_mid_load_the_sdk_goes_on_through_the_other() {
    let db = TestDb::new().await;
    let redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    let _writer = role(&db, &redis, "writer", &[]);
    let mut ingest = [
        role(&db, &redis, "ingest", &[]),
        role(&db, &redis, "ingest", &[]),
    ];
    let urls = format!("http://{},http://{}", ingest[0].grpc, ingest[1].grpc);
    let client = pulsyon_client::Client::connect_with(
        &urls,
        &key,
        pulsyon_client::ClientOptions {
            max_backoff: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut ids = HashSet::new();
    for round in 0..30 {
        for _ in 0..200 {
            let e = event("checkout", 200);
            ids.insert(e.event_id.clone());
            client.send(e).await.unwrap();
        }
        if round == 10 {
            // Kill the process that serves the stream (the one appending),
            // once it has appended: on a slow machine the SDK's first batch
            // may not have gone out yet.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let appended = loop {
                let mut appended = Vec::new();
                for node in &ingest {
                    let metrics = common::http_get(&format!("http://{}/metrics", node.http)).await;
                    appended.push(
                        metrics
                            .lines()
                            .find_map(|l| l.strip_prefix("pulsyon_buffer_appended_total "))
                            .and_then(|v| v.trim().parse::<f64>().ok())
                            .unwrap_or(0.0),
                    );
                }
                if appended.iter().any(|&n| n > 0.0) {
                    break appended;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no batch appended: {appended:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let serving = if appended[0] >= appended[1] { 0 } else { 1 };
            ingest[serving].signal(nix::sys::signal::Signal::SIGKILL);
            ingest[serving].wait_exit(Duration::from_secs(10));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    client.flush().await.unwrap();
    let stats = client.stats();
    assert_eq!(stats.acked, ids.len() as u64, "{stats:?}");
    assert_stored_once(&db, &ids, String::new).await;
    let _ = &ingest[1];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_concurrent_streams_are_counted_across_ingest_processes() {
    use tokio_stream::wrappers::ReceiverStream;
    let db = TestDb::new().await;
    let redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    // Two processes with every role (each its own queue), one limit of 1 stream.
    let nodes = [
        role(&db, &redis, "all", &["--limit-streams", "1"]),
        role(&db, &redis, "all", &["--limit-streams", "1"]),
    ];
    let channels = [nodes[0].channel().await, nodes[1].channel().await];
    let open = |channel: tonic::transport::Channel| {
        let key = key.clone();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamEventsRequest>(1);
            let answer = pb::ingest_client::IngestClient::new(channel)
                .stream_events(authed(ReceiverStream::new(rx), &key))
                .await;
            (tx, answer)
        }
    };
    let (held_tx, held) = open(channels[0].clone()).await;
    let held = held.expect("the first stream opens");
    // The tenant's one stream is open on the other process: refused here.
    let (_tx, refused) = open(channels[1].clone()).await;
    let refused = refused.expect_err("a second stream across processes");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("stream"), "{refused:?}");
    // Closed there, a stream opens here.
    drop(held_tx);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_tx, answer) = open(channels[1].clone()).await;
        if answer.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_service_limit_holds_across_ingest_processes() {
    let db = TestDb::new().await;
    let redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    let nodes = [
        role(&db, &redis, "all", &["--limit-services", "2"]),
        role(&db, &redis, "all", &["--limit-services", "2"]),
    ];
    let batch = |seq: u64, service: &str| pb::EventBatch {
        producer_id: "catalogue".into(),
        seq,
        events: (0..5)
            .map(|_| pb::Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                time: Some(ts(SystemTime::now())),
                service: service.into(),
                endpoint: "/x".into(),
                status_code: 200,
                ..Default::default()
            })
            .collect(),
    };
    // Both processes know "alpha"; then "beta" arrives through one and
    // "gamma" through the other, which by itself knows only one service:
    // past the tenant's limit of 2 in all, "gamma" goes to the overflow bucket.
    let mut a = pb::ingest_client::IngestClient::new(nodes[0].channel().await);
    let mut b = pb::ingest_client::IngestClient::new(nodes[1].channel().await);
    common::publish(&mut b, &key, batch(1, "alpha")).await;
    common::publish(&mut a, &key, batch(2, "alpha")).await;
    common::publish(&mut a, &key, batch(3, "beta")).await;
    common::publish(&mut b, &key, batch(4, "gamma")).await;
    let services = |name: &'static str| {
        let db = &db;
        async move {
            count(
                db,
                &format!("SELECT count(*) FROM api_logs WHERE service = '{name}'"),
            )
            .await
        }
    };
    assert_eq!(services("alpha").await, 10);
    assert_eq!(services("beta").await, 5);
    assert_eq!(services("gamma").await, 0, "the third service fits nowhere");
    assert_eq!(services("_overflow").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_never_commits_becomes_poison_after_its_deliveries() {
    use pulsyon::ingest::RecordCodec;
    let db = TestDb::new().await;
    let redis = Redis::start();
    create_tenant(&db.url, "acme");
    // A readable batch of a tenant that does not exist: every write of it
    // fails, so it is delivered again and again.
    let batch = common::one_event_batch(pulsyon::domain::TenantId(987_654), "ghost", 1);
    let record = pulsyon::wire::record::BufferRecord.encode(&batch, None);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = "pulsyon:buffer:{0}";
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("writers")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let id: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("b")
        .arg(record.as_slice())
        .query_async(&mut conn)
        .await
        .unwrap();
    let writer = role(
        &db,
        &redis,
        "writer",
        &["--buffer-shards", "1", "--buffer-max-deliveries", "3"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&db, "SELECT count(*) FROM buffer_poison").await == 0 {
        assert!(Instant::now() < deadline, "{}", writer.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pool = common::pool(&db.url).await;
    let (entry, deliveries, reason): (String, i32, String) =
        sqlx::query_as("SELECT entry_id, deliveries, reason FROM buffer_poison")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(entry, id);
    assert_eq!(deliveries, 4, "kept after its third failed delivery");
    assert!(reason.contains("delivered"), "{reason}");
    // Acknowledged: nothing of it is pending any more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.cli(&["XPENDING", stream, "writers"]).starts_with('0') {
        assert!(Instant::now() < deadline, "still pending");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_poison_batch_goes_to_its_tenants_dead_letters() {
    use pulsyon::ingest::RecordCodec;
    let db = TestDb::new().await;
    let redis = Redis::start();
    let key = create_tenant(&db.url, "acme");
    let store = db.store().await;
    let tenant = store.tenant_by_name("acme").await.unwrap().id;
    let batch = common::one_event_batch(tenant, "stuck", 7);
    let record = pulsyon::wire::record::BufferRecord.encode(&batch, None);
    let stream = "pulsyon:buffer:{0}";
    redis.cli(&["XGROUP", "CREATE", stream, "writers", "0", "MKSTREAM"]);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("b")
        .arg(record.as_slice())
        .query_async(&mut conn)
        .await
        .unwrap();
    // Delivered once to a consumer that died: with one delivery allowed, the
    // writer that claims it keeps it as poison instead of writing it.
    redis.cli(&[
        "XREADGROUP",
        "GROUP",
        "writers",
        "dead",
        "COUNT",
        "1",
        "STREAMS",
        stream,
        ">",
    ]);
    let writer = role(
        &db,
        &redis,
        "writer,query",
        &["--buffer-shards", "1", "--buffer-max-deliveries", "1"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&db, "SELECT count(*) FROM failed_events").await == 0 {
        assert!(Instant::now() < deadline, "{}", writer.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db, "SELECT count(*) FROM api_logs").await, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM buffer_poison").await, 0);
    // The tenant sees it through the Query API, reason and record included.
    let listed = pulsyon::proto::v1::query_client::QueryClient::new(writer.channel().await)
        .list_failed_events(authed(pb::ListFailedEventsRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    let letter = &listed.failed_events[0];
    assert_eq!(letter.reason, pb::RejectReason::PoisonBatch as i32);
    assert_eq!(letter.payload, record);
    assert!(letter.message.contains("1 events"), "{}", letter.message);
}
