//! The dashboard's HTTP side against the real server: every JSON route
//! across tenants and roles, the pages' security headers, and the incident
//! event stream's exact resume after `Last-Event-ID`. (The pages in a real
//! browser: tests/web, run by scripts/test-web.sh.)

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use common::{
    BIN, Server, ServerOpts, TestDb, alert, create_tenant, header, http, publish, ts, two_tenants,
};
use pulsyon::{
    domain::rules::Severity,
    proto::v1::{self as pb, ingest_client::IngestClient},
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery staple";

fn user(db: &str, tenant: &str, role: &str, name: &str) {
    let mut child = Command::new(BIN)
        .args(["user", "create", "--tenant", tenant, "--role", role])
        .args(["--password-stdin", name, "--database-url", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Logs in and returns the cookie to send.
async fn login(addr: &str, tenant: &str, name: &str) -> String {
    let body = serde_json::json!({ "tenant": tenant, "user": name, "password": PASSWORD });
    let (status, headers, text) = http(
        addr,
        "POST",
        "/api/v1/session",
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    header(&headers, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn get(addr: &str, cookie: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = http(addr, "GET", path, &[("cookie", cookie)], "").await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

async fn post(addr: &str, cookie: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, _, text) = http(
        addr,
        "POST",
        path,
        &[("cookie", cookie), ("content-type", "application/json")],
        body,
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A batch of `n` events of `service`, the last `bad` of them invalid (a
/// status code out of range: rejected into the dead letters).
fn batch(producer: &str, seq: u64, service: &str, n: usize, bad: usize) -> pb::EventBatch {
    pb::EventBatch {
        producer_id: producer.into(),
        seq,
        events: (0..n)
            .map(|i| pb::Event {
                event_id: uuid::Uuid::now_v7().to_string(),
                time: Some(ts(SystemTime::now())),
                service: service.into(),
                endpoint: "/items/{id}".into(),
                method: "GET".into(),
                status_code: if i >= n - bad {
                    999
                } else if i % 10 == 0 {
                    503
                } else {
                    200
                },
                latency_ms: 10.0 + i as f64,
                ..Default::default()
            })
            .collect(),
    }
}

/// Two tenants with a service, an incident and a dead letter each, and
/// sessions of acme's viewer and responder and globex's responder.
struct TwoTenants {
    _db: TestDb,
    server: Server,
    /// acme's incident and globex's.
    ia: String,
    ib: String,
    vera: String,
    rob: String,
    gus: String,
}

async fn two_tenant_dashboard() -> TwoTenants {
    let db = TestDb::new().await;
    let (key_a, key_b) = two_tenants(&db.url);
    user(&db.url, "acme", "viewer", "vera");
    user(&db.url, "acme", "responder", "rob");
    user(&db.url, "globex", "responder", "gus");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false", "--rollup-interval", "200ms"],
        ..Default::default()
    });
    let addr = server.http.clone();
    let addr = addr.as_str();
    let mut ingest = IngestClient::new(server.channel().await);
    publish(&mut ingest, &key_a, batch("a", 1, "checkout", 50, 2)).await;
    publish(&mut ingest, &key_b, batch("b", 1, "warehouse", 40, 1)).await;
    let store = db.store().await;
    let a = store.tenant_by_name("acme").await.unwrap().id;
    let b = store.tenant_by_name("globex").await.unwrap().id;
    let (fired_a, _) = common::fire(
        &store,
        &alert(a, "checkout", Severity::Critical),
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    let (fired_b, _) = common::fire(
        &store,
        &alert(b, "warehouse", Severity::Critical),
        Duration::from_secs(300),
    )
    .await
    .unwrap();
    let (ia, ib) = (
        fired_a.incident_id.unwrap().to_string(),
        fired_b.incident_id.unwrap().to_string(),
    );
    // An objective of acme's checkout: 80 % of its requests not 5xx.
    let objective = pulsyon::domain::objective::Objective {
        objective_id: 0,
        tenant_id: a,
        service: "checkout".into(),
        endpoint: String::new(),
        kind: pulsyon::domain::objective::ObjectiveKind::Availability,
        target_percent: 80.0,
        period_days: 30,
        count_4xx: false,
        latency_threshold_ms: 0.0,
        created_at: time::OffsetDateTime::now_utc(),
    };
    store.set_objective(&objective).await.unwrap();

    let vera = login(addr, "acme", "vera").await;
    let rob = login(addr, "acme", "rob").await;
    let gus = login(addr, "globex", "gus").await;
    TwoTenants {
        _db: db,
        server,
        ia,
        ib,
        vera,
        rob,
        gus,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_route_answers_only_for_the_sessions_tenant() {
    let t = two_tenant_dashboard().await;
    let addr = t.server.http.as_str();
    let (ia, ib, vera, gus) = (t.ia.clone(), t.ib.clone(), t.vera.clone(), t.gus.clone());
    // Every route refuses a request without a session.
    let routes = [
        "/api/v1/overview".to_string(),
        "/api/v1/incidents".into(),
        format!("/api/v1/incidents/{ia}"),
        "/api/v1/services/checkout".into(),
        "/api/v1/ingest".into(),
        "/api/v1/failed/1".into(),
        "/api/v1/incidents/stream".into(),
        "/api/v1/objectives".into(),
    ];
    for route in &routes {
        let (status, body) = get(addr, "pulsyon_session=forged", route).await;
        assert_eq!(status, 401, "{route}: {body}");
        let (status, _, _) = http(addr, "GET", route, &[], "").await;
        assert_eq!(status, 401, "{route}");
    }
    let (status, _) = post(
        addr,
        "",
        &format!("/api/v1/incidents/{ia}/acknowledge"),
        "{}",
    )
    .await;
    assert_eq!(status, 401);

    // The overview lists the session's tenant's services only, once the
    // rollups have them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let overview = loop {
        let (status, body) = get(addr, &vera, "/api/v1/overview?range=1h").await;
        assert_eq!(status, 200, "{body}");
        if body["services"][0]["requests"].as_u64() == Some(48) {
            break body;
        }
        assert!(Instant::now() < deadline, "no rollups: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names: Vec<&str> = overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout"]);
    let checkout = &overview["services"][0];
    assert_eq!(checkout["errors"], 5);
    assert!(checkout["latency"]["p95_ms"].as_f64().unwrap() > 10.0);
    assert!(!checkout["buckets"].as_array().unwrap().is_empty());
    let (status, body) = get(addr, &gus, "/api/v1/overview?range=7d").await;
    assert_eq!(status, 200);
    assert_eq!(body["services"][0]["service"], "warehouse");
    assert_eq!(body["services"].as_array().unwrap().len(), 1);
    let (status, _) = get(addr, &vera, "/api/v1/overview?range=2h").await;
    assert_eq!(status, 400, "an unknown range is refused");

    // Incidents: each tenant's own; another tenant's is not found.
    let (_, body) = get(addr, &vera, "/api/v1/incidents").await;
    let listed: Vec<&str> = body["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ia.as_str()]);
    assert!(
        body["incidents"][0]["explanation"]
            .as_str()
            .unwrap()
            .contains("threshold"),
        "{body}"
    );
    assert!(body["seq"].as_i64().unwrap() > 0);
    let (status, body) = get(addr, &vera, &format!("/api/v1/incidents/{ia}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alerts"][0]["kind"], "error_rate");
    assert_eq!(body["timeline"][0]["kind"], "opened");
    let (status, _) = get(addr, &vera, &format!("/api/v1/incidents/{ib}")).await;
    assert_eq!(status, 404, "another tenant's incident does not exist here");
    let (status, _) = get(addr, &vera, "/api/v1/incidents/nope").await;
    assert_eq!(status, 400);

    // Services: its own with endpoints and recent 5xx; another's is not found.
    let (status, body) = get(addr, &vera, "/api/v1/services/checkout?range=24h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["health"]["requests"], 48);
    assert_eq!(body["endpoints"][0]["endpoint"], "/items/{id}");
    assert_eq!(body["recent_errors"].as_array().unwrap().len(), 5);
    assert_eq!(body["incidents"][0]["id"], ia.as_str());
    assert!(!body["series"].as_array().unwrap().is_empty());
    let (status, _) = get(addr, &vera, "/api/v1/services/warehouse").await;
    assert_eq!(status, 404);

    // Ingest: its own outcomes and dead letters; another's letter is not found.
    let (status, body) = get(addr, &vera, "/api/v1/ingest").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"]["received"], 50);
    assert_eq!(body["total"]["stored"], 48);
    assert_eq!(
        body["total"]["rejected_by_reason"]["invalid_status_code"],
        2
    );
    assert!(body["queue"]["capacity_bytes"].as_u64().unwrap() > 0);
    let letters = body["failed"].as_array().unwrap();
    assert_eq!(letters.len(), 2);
    assert!(
        letters[0].get("payload_hex").is_none(),
        "lists leave payloads out"
    );
    let id_a = letters[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = get(addr, &vera, &format!("/api/v1/failed/{id_a}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["payload_hex"].as_str().unwrap().is_empty());
    let (status, _) = get(addr, &gus, &format!("/api/v1/failed/{id_a}")).await;
    assert_eq!(status, 404);

    // Objectives: acme's, standing by its rollups (5 answered 503 of 48
    // against 20 % allowed: 9.6 bad, 52 % of the budget spent); globex has none.
    let deadline = Instant::now() + Duration::from_secs(30);
    let o = loop {
        let (status, body) = get(addr, &vera, "/api/v1/objectives").await;
        assert_eq!(status, 200, "{body}");
        let o = body["objectives"][0].clone();
        if o["requests"].as_u64() == Some(48) || Instant::now() > deadline {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (o["service"].as_str(), o["kind"].as_str()),
        (Some("checkout"), Some("availability"))
    );
    assert_eq!(
        (o["requests"].as_u64(), o["bad_requests"].as_u64()),
        (Some(48), Some(5)),
        "{o}"
    );
    let left = 100.0 * (1.0 - 5.0 / 9.6);
    assert!(
        (o["budget_left_percent"].as_f64().unwrap() - left).abs() < 1e-6,
        "{o}"
    );
    assert_eq!(o["burn_rates"].as_array().unwrap().len(), 7, "{o}");
    assert!(o["alert"].is_null(), "the detector is off: {o}");
    let (status, body) = get(addr, &gus, "/api/v1/objectives").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objectives"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_tenants_responders_act_on_its_incidents_and_by_their_name() {
    let t = two_tenant_dashboard().await;
    let addr = t.server.http.as_str();
    let (ia, vera, rob, gus) = (t.ia.clone(), t.vera.clone(), t.rob.clone(), t.gus.clone());
    // Acting: a viewer may not; another tenant's responder finds nothing;
    // the tenant's responder acknowledges, under their name.
    let ack = format!("/api/v1/incidents/{ia}/acknowledge");
    let (status, body) = post(addr, &vera, &ack, r#"{"note": "mine"}"#).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = post(addr, &gus, &ack, "{}").await;
    assert_eq!(status, 404);
    let (status, _, _) = http(
        addr,
        "POST",
        &ack,
        &[("cookie", &rob), ("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(status, 415, "a body that is not JSON is refused");
    let (status, _, _) = http(
        addr,
        "POST",
        &ack,
        &[
            ("cookie", &rob),
            ("content-type", "application/json"),
            ("origin", "http://elsewhere.example"),
        ],
        "{}",
    )
    .await;
    assert_eq!(status, 403, "a change from another origin is refused");
    let (status, body) = post(addr, &rob, &ack, r#"{"note": "looking"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["incident"]["status"], "acknowledged");
    assert_eq!(body["incident"]["acknowledged_by"], "rob");
    let (status, body) = post(
        addr,
        &rob,
        &format!("/api/v1/incidents/{ia}/resolve"),
        r#"{"note": "fixed"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["incident"]["resolved_by"], "rob");
    let (_, body) = get(addr, &vera, &format!("/api/v1/incidents/{ia}")).await;
    let notes: Vec<&str> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["note"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["", "looking", "fixed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_are_embedded_with_strict_headers_compressed_and_revalidated() {
    let db = TestDb::new().await;
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let addr = server.http.as_str();
    // The pages: embedded, strict headers, compressed on request, revalidated by ETag.
    let (status, headers, page) = http(addr, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains("/assets/app.js"));
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    let etag = header(&headers, "etag").unwrap().to_owned();
    let (status, _, _) = http(addr, "GET", "/", &[("if-none-match", &etag)], "").await;
    assert_eq!(status, 304);
    let (status, headers, _) = http(
        addr,
        "GET",
        "/assets/app.js",
        &[("accept-encoding", "gzip")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    // The probes are where they were.
    let (status, _, body) = http(addr, "GET", "/healthz", &[], "").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = http(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("pulsyon_"), "{body}");
}

/// A server whose only incident updates are the test's, with a heartbeat
/// every second.
fn feed_server(db: &TestDb) -> Server {
    Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false", "--watch-heartbeat", "1s"],
        ..Default::default()
    })
}

/// A raw event-stream client: reads what arrives until `want` update ids
/// were seen or `limit` passes.
struct Events {
    stream: tokio::net::TcpStream,
    text: String,
}

impl Events {
    async fn open(addr: &str, cookie: &str, query: &str, last_event_id: Option<i64>) -> Events {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!(
            "GET /api/v1/incidents/stream{query} HTTP/1.1\r\nhost: {addr}\r\ncookie: {cookie}\r\naccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("last-event-id: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut events = Events {
            stream,
            text: String::new(),
        };
        events.read_until(|t| t.contains("\r\n\r\n")).await;
        assert!(events.text.starts_with("HTTP/1.1 200"), "{}", events.text);
        assert!(events.text.contains("text/event-stream"));
        events
    }

    async fn read_until(&mut self, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 8192];
        while !done(&self.text) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; got: {}", self.text);
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) => panic!("the stream ended; got: {}", self.text),
                Ok(Ok(n)) => self.text.push_str(&String::from_utf8_lossy(&buf[..n])),
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("timed out; got: {}", self.text),
            }
        }
    }

    /// The ids of the update events received so far, in order.
    fn ids(&self) -> Vec<i64> {
        self.text
            .split("\nevent: update\n")
            .filter_map(|before| before.rsplit("id: ").next()?.trim().parse().ok())
            .collect()
    }

    async fn until_ids(&mut self, n: usize) -> Vec<i64> {
        self.read_until(|t| t.matches("\nevent: update\n").count() >= n)
            .await;
        self.ids()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_exactly_after_the_last_event_id() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    create_tenant(&db.url, "globex");
    user(&db.url, "acme", "viewer", "vera");
    let server = feed_server(&db);
    let addr = server.http.as_str();
    let store = db.store().await;
    let a = store.tenant_by_name("acme").await.unwrap().id;
    let b = store.tenant_by_name("globex").await.unwrap().id;
    let cookie = login(addr, "acme", "vera").await;
    let fire = |tenant, service: &'static str| {
        let store = store.clone();
        async move {
            common::fire(
                &store,
                &alert(tenant, service, Severity::Critical),
                Duration::from_secs(300),
            )
            .await
            .unwrap()
            .1
            .last()
            .unwrap()
            .seq
        }
    };

    // The page's start: the list's sequence, then the stream after it.
    let (_, list) = get(addr, &cookie, "/api/v1/incidents").await;
    let start = list["seq"].as_i64().unwrap();
    assert_eq!(start, 0);
    let first = fire(a, "s1").await;
    // A list read before any update starts at 0: the update written since
    // asks the page to reload rather than miss it.
    let mut late = Events::open(addr, &cookie, "?after=0", None).await;
    late.read_until(|t| t.contains("event: resync")).await;
    let (_, list) = get(addr, &cookie, "/api/v1/incidents").await;
    assert_eq!(list["seq"].as_i64(), Some(first));
    let mut events = Events::open(addr, &cookie, &format!("?after={first}"), None).await;
    let mut expected = Vec::new();
    for service in ["s2", "s3"] {
        expected.push(fire(a, service).await);
        fire(b, "other-tenant").await;
    }
    assert_eq!(events.until_ids(2).await, expected);

    // Dropped between updates: three more are written meanwhile (and the
    // other tenant's), then the client reconnects with Last-Event-ID.
    let last = *expected.last().unwrap();
    drop(events);
    let mut missed = Vec::new();
    for service in ["s4", "s5", "s6"] {
        missed.push(fire(a, service).await);
        fire(b, "other-tenant").await;
    }
    // The URL still names the first start: the header wins, as a browser's
    // reconnect sends it.
    let mut events = Events::open(addr, &cookie, &format!("?after={first}"), Some(last)).await;
    assert_eq!(
        events.until_ids(3).await,
        missed,
        "each missed update once, in order"
    );
    let live = fire(a, "s7").await;
    let mut all = missed.clone();
    all.push(live);
    assert_eq!(events.until_ids(4).await, all, "then live, no duplicate");
    events.read_until(|t| t.contains(": heartbeat")).await;

    // A resume point this server never sent: resync.
    let mut future = Events::open(addr, &cookie, "", Some(live + 1_000)).await;
    future.read_until(|t| t.contains("event: resync")).await;
    let (status, _, _) = http(
        addr,
        "GET",
        "/api/v1/incidents/stream",
        &[("cookie", &cookie), ("last-event-id", "x")],
        "",
    )
    .await;
    assert_eq!(status, 400);
}

/// An HTTP/1.1 client that reads answers by their framing (content-length,
/// or chunks checked strictly), on one connection.
struct Framed {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Framed {
    async fn connect(addr: &str) -> Framed {
        Framed {
            stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, head: &str) {
        self.stream.write_all(head.as_bytes()).await.unwrap();
    }

    /// Reads until `n` bytes are buffered; false if the connection ended first.
    async fn fill(&mut self, n: usize) -> bool {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let read = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
                .await
                .expect("timed out")
                .unwrap();
            if read == 0 {
                return false;
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
        true
    }

    /// Takes bytes up to and including `end`.
    async fn take_through(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(end.len()).position(|w| w == end) {
                return self.buf.drain(..i + end.len()).collect();
            }
            let want = self.buf.len() + 1;
            assert!(self.fill(want).await, "the connection ended");
        }
    }

    /// An answer's status and headers (names lowercased).
    async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let head = String::from_utf8(self.take_through(b"\r\n\r\n").await).unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status.parse().unwrap(), headers)
    }

    /// The next chunk of a chunked body (empty: the last one).
    async fn chunk(&mut self) -> Vec<u8> {
        let line = self.take_through(b"\r\n").await;
        let size = std::str::from_utf8(&line[..line.len() - 2]).unwrap();
        let size = usize::from_str_radix(size, 16).unwrap_or_else(|_| panic!("size {size:?}"));
        assert!(
            self.fill(size + 2).await,
            "the connection ended inside a chunk"
        );
        let data: Vec<u8> = self.buf.drain(..size + 2).collect();
        assert_eq!(&data[size..], b"\r\n", "a chunk ends with CRLF");
        data[..size].to_vec()
    }

    /// The body of an answer whose head was read.
    async fn body_of(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        if let Some(len) = header(headers, "content-length") {
            let len: usize = len.parse().unwrap();
            assert!(self.fill(len).await, "the connection ended inside a body");
            return self.buf.drain(..len).collect();
        }
        assert_eq!(
            header(headers, "transfer-encoding"),
            Some("chunked"),
            "{headers:?}"
        );
        let mut body = Vec::new();
        loop {
            let chunk = self.chunk().await;
            if chunk.is_empty() {
                return body;
            }
            body.extend(chunk);
        }
    }

    /// The next answer's body (its status 200).
    async fn body(&mut self) -> Vec<u8> {
        let (status, headers) = self.head().await;
        assert_eq!(status, 200, "{headers:?}");
        self.body_of(&headers).await
    }

    /// Chunks until their text holds `want`.
    async fn text_until(&mut self, want: &str) -> String {
        let mut text = String::new();
        while !text.contains(want) {
            let chunk = self.chunk().await;
            assert!(!chunk.is_empty(), "the body ended; got: {text}");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        text
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_answer_in_order_and_carry_event_streams() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");
    user(&db.url, "acme", "viewer", "vera");
    let server = feed_server(&db);
    let addr = server.http.as_str();
    let store = db.store().await;
    let acme = store.tenant_by_name("acme").await.unwrap().id;
    let cookie = login(addr, "acme", "vera").await;
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\ncookie: {cookie}\r\n\r\n");
    let stream_request = get("/api/v1/incidents/stream");

    // A stream first on its connection: chunks, security headers.
    let mut first = Framed::connect(addr).await;
    first.send(&stream_request).await;
    let (status, headers) = first.head().await;
    assert_eq!(status, 200);
    for (name, value) in [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-store"),
        ("transfer-encoding", "chunked"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(header(&headers, name), Some(value), "{name}: {headers:?}");
    }
    assert!(header(&headers, "content-security-policy").is_some());
    assert!(header(&headers, "date").is_some());
    assert!(
        first
            .text_until(": heartbeat")
            .await
            .starts_with("retry: 1000\n\n")
    );

    // One kept-alive connection: a HEAD (a length, no body), two requests
    // sent at once (answered in order), a refused stream (the connection
    // stays), then the stream.
    let mut later = Framed::connect(addr).await;
    later
        .send(&format!("HEAD / HTTP/1.1\r\nhost: {addr}\r\n\r\n"))
        .await;
    let (status, headers) = later.head().await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-length").is_some_and(|n| n != "0"),
        "{headers:?}"
    );
    later
        .send(&format!("{}{}", get("/api/v1/session"), get("/healthz")))
        .await;
    let who: Value = serde_json::from_slice(&later.body().await).unwrap();
    assert_eq!(who["actor"], "vera", "{who}");
    assert_eq!(later.body().await, b"ok\n");
    later
        .send(&format!(
            "GET /api/v1/incidents/stream HTTP/1.1\r\nhost: {addr}\r\n\r\n"
        ))
        .await;
    let (status, headers) = later.head().await;
    assert_eq!(status, 401);
    let error: Value = serde_json::from_slice(&later.body_of(&headers).await).unwrap();
    assert!(error["error"].is_string(), "{error}");
    later.send(&stream_request).await;
    let (status, headers) = later.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("text/event-stream"));
    later.text_until(": heartbeat").await;

    // A connection whose first request's body is chunked.
    let mut chunked = Framed::connect(addr).await;
    let login =
        serde_json::json!({ "tenant": "acme", "user": "vera", "password": PASSWORD }).to_string();
    chunked
        .send(&format!(
            "POST /api/v1/session HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n{:x}\r\n{login}\r\n0\r\n\r\n",
            login.len()
        ))
        .await;
    let (status, headers) = chunked.head().await;
    assert_eq!(status, 200);
    chunked.body_of(&headers).await;
    chunked.send(&stream_request).await;
    let (status, _) = chunked.head().await;
    assert_eq!(status, 200);
    chunked.text_until(": heartbeat").await;

    // One update reaches all three, alike.
    let seq = common::fire(
        &store,
        &alert(acme, "checkout", Severity::Critical),
        Duration::from_secs(300),
    )
    .await
    .unwrap()
    .1
    .last()
    .unwrap()
    .seq;
    let want = format!("id: {seq}\nevent: update\n");
    let event = |t: &str| {
        t[t.find(&want).unwrap()..]
            .split("\n\n")
            .next()
            .unwrap()
            .to_owned()
    };
    let a = event(&first.text_until(&want).await);
    assert_eq!(a, event(&later.text_until(&want).await));
    assert_eq!(a, event(&chunked.text_until(&want).await));
    // Three streams, over HTTP/1.1.
    let (_, _, metrics) = http(addr, "GET", "/metrics", &[], "").await;
    let line = "pulsyon_dashboard_streams_total{http=\"1.1\"} 3";
    assert!(metrics.contains(line), "{line} in:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_pages_are_the_tenants_and_silence_this_holds_an_incidents_messages() {
    let t = two_tenant_dashboard().await;
    let addr = t.server.http.as_str();
    let (ia, vera, rob, gus) = (t.ia.clone(), t.vera.clone(), t.rob.clone(), t.gus.clone());
    user(&t._db.url, "acme", "admin", "ada");
    let ada = login(addr, "acme", "ada").await;
    let store = t._db.store().await;
    let acme = store.tenant_by_name("acme").await.unwrap().id;
    let secret = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1zaG93";
    let spec = pulsyon::store::notify::ReceiverSpec {
        name: "team".into(),
        kind: pulsyon::domain::notify::ReceiverKind::Webhook,
        url: "https://hooks.example.com/team".into(),
        secret: pulsyon::domain::notify::Secret::new(secret.into()),
        settings: Default::default(),
    };
    store.create_receiver(acme, &spec).await.unwrap();
    // Receivers and routes are the admins'; the secret shows as its fingerprint.
    let (status, _) = get(addr, &vera, "/api/v1/notifications").await;
    assert_eq!(status, 403);
    let (status, page) = get(addr, &ada, "/api/v1/notifications").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["receivers"][0]["name"], "team");
    assert!(
        page["receivers"][0]["secret_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(!page.to_string().contains("c2VjcmV0"), "{page}");
    // "Silence this": a responder's, of their tenant's incident only.
    let this = format!("/api/v1/incidents/{ia}/silence");
    let (status, _) = post(addr, &vera, &this, "{}").await;
    assert_eq!(status, 403);
    let (status, _) = post(addr, &gus, &this, "{}").await;
    assert_eq!(status, 404, "another tenant's incident is not found");
    let (status, made) = post(addr, &rob, &this, r#"{"comment": "on it"}"#).await;
    assert_eq!(status, 201, "{made}");
    let silence = made["silence"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["silence"]["until_resolved_incident_id"], ia);
    assert_eq!(made["silence"]["created_by"], "rob");
    let (status, _) = post(addr, &rob, &this, r#"{"comment": 1}"#).await;
    assert_eq!(status, 400, "a body of the wrong shape is refused");
    // The acknowledgement is planned, held by the silence, and shown so.
    let ack = format!("/api/v1/incidents/{ia}/acknowledge");
    assert_eq!(post(addr, &rob, &ack, "{}").await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let (status, body) = get(addr, &vera, &format!("/api/v1/incidents/{ia}/deliveries")).await;
        assert_eq!(status, 200, "{body}");
        if let Some(d) = body["deliveries"].as_array().unwrap().first() {
            break d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the acknowledgement was never planned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held["state"], "suppressed", "{held}");
    assert_eq!(held["silence_id"], silence.as_str());
    assert_eq!(held["change"], "acknowledged");
    let (_, other) = get(addr, &gus, &format!("/api/v1/incidents/{ia}/deliveries")).await;
    assert_eq!(other["deliveries"], serde_json::json!([]), "{other}");
    // Current while its incident is open; over once it resolves.
    let (_, page) = get(addr, &ada, "/api/v1/notifications").await;
    assert_eq!(page["silences"][0]["current"], true, "{page}");
    let resolve = format!("/api/v1/incidents/{ia}/resolve");
    assert_eq!(post(addr, &rob, &resolve, "{}").await.0, 200);
    let (_, page) = get(addr, &ada, "/api/v1/notifications").await;
    assert_eq!(page["silences"][0]["current"], false, "{page}");
    assert!(page["silences"][0]["expired_at"].is_null(), "{page}");
    // Ended by a responder of the tenant only.
    let end = format!("/api/v1/silences/{silence}/expire");
    assert_eq!(post(addr, &gus, &end, "").await.0, 404);
    let (status, ended) = post(addr, &rob, &end, "").await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["silence"]["current"], false);
    let (_, page) = get(addr, &ada, "/api/v1/notifications").await;
    assert_eq!(page["silences"][0]["id"], silence.as_str());
    assert!(page["silences"][0]["expired_at"].is_string(), "{page}");
}
