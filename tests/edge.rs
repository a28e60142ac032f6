//! Black-box tests of the HTTP port's edge (src/web/serve.rs, src/edge):
//! hostile request framing, trickled heads, floods of silent connections
//! and a graceful shutdown, against the real server over raw TCP.

mod common;

use std::time::Duration;

use common::{Server, ServerOpts, TestDb};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A request the server must never answer unless the client meant it: if
/// it is answered after a malformed request, that request's bytes were
/// framed as two.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

/// The statuses of the answers in `bytes`, in order (each framed by its
/// content-length or chunked encoding, as a client would).
fn statuses(mut bytes: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            panic!("a partial answer: {:?}", String::from_utf8_lossy(bytes));
        };
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        bytes = &bytes[end + 4..];
        let mut lines = head.lines();
        let status = common::status_code(lines.next().unwrap());
        out.push(status);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.strip_prefix(&format!("{name}:"))
                    .map(|v| v.trim().to_owned())
            })
        };
        if let Some(len) = header("content-length") {
            bytes = &bytes[len.parse::<usize>().unwrap()..];
        } else if header("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&bytes[..line_end]).trim(), 16)
                        .unwrap();
                bytes = &bytes[line_end + 2 + size + 2..];
                if size == 0 {
                    break;
                }
            }
        }
    }
    out
}

/// Sends `raw` on a fresh connection and reads until the server closes it.
async fn exchange(addr: &str, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut bytes))
        .await
        .expect("the server closes the connection")
        .ok();
    bytes
}

fn start(db: &TestDb, extra: &'static [&'static str]) -> Server {
    Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: extra,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_smuggling_shapes_are_refused_or_framed_exactly_once() {
    let db = TestDb::new().await;
    let server = start(&db, &[]);
    let addr = server.http.as_str();
    let get = |headers: &str| format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{headers}\r\n");
    // (shape, bytes sent, the statuses a correct server answers)
    let cases: Vec<(&str, String, Vec<u16>)> = vec![
        // Content-Length is digits only (RFC 9110 8.6): a sign is refused,
        // never read as 2 (which would answer the smuggled request).
        (
            "plus-signed length",
            get("content-length: +2\r\n") + "ab" + SMUGGLED,
            vec![400],
        ),
        (
            "minus-signed length",
            get("content-length: -2\r\n") + "ab" + SMUGGLED,
            vec![400],
        ),
        (
            "two different lengths",
            get("content-length: 2\r\ncontent-length: 3\r\n") + "ab" + SMUGGLED,
            vec![400],
        ),
        (
            "comma-joined different lengths",
            get("content-length: 2, 3\r\n") + "ab" + SMUGGLED,
            vec![400],
        ),
        // Both: framed by the chunked coding alone (RFC 9112 6.1), the
        // connection closed after the answer; the rest is never a request.
        (
            "a length and chunked",
            get("content-length: 2\r\ntransfer-encoding: chunked\r\n") + "ab" + SMUGGLED,
            vec![200],
        ),
        (
            "chunked then another coding",
            get("transfer-encoding: chunked, identity\r\n") + "0\r\n\r\n" + SMUGGLED,
            vec![400],
        ),
        (
            "obs-fold",
            get("x-folded: a\r\n b\r\n") + SMUGGLED,
            vec![400],
        ),
        (
            "space before the colon",
            get("content-length : 2\r\n") + "ab" + SMUGGLED,
            vec![400],
        ),
        (
            "over-long head",
            get(&format!("x-long: {}\r\n", "a".repeat(200 * 1024))),
            vec![431],
        ),
        // Whitespace around a field value is not part of it (RFC 9110 5.5):
        // a length of 2, then the next request, each answered once.
        (
            "space-padded length",
            get("content-length:  2 \r\n") + "ab" + SMUGGLED,
            vec![200, 404],
        ),
        (
            "the same length twice",
            get("content-length: 2\r\ncontent-length: 2\r\n") + "ab" + SMUGGLED,
            vec![200, 404],
        ),
        // Bare LF line ends, absolute-form targets and HTTP/1.0 keep-alive
        // are requests of their own, framed like any other.
        (
            "bare LF",
            "GET /healthz HTTP/1.1\nhost: x\n\n".to_owned() + SMUGGLED,
            vec![200, 404],
        ),
        (
            "absolute-form target",
            "GET http://other.example/healthz HTTP/1.1\r\nhost: x\r\n\r\n".to_owned() + SMUGGLED,
            vec![200, 404],
        ),
        (
            "HTTP/1.0 keep-alive",
            "GET /healthz HTTP/1.0\r\nconnection: keep-alive\r\n\r\n".to_owned() + SMUGGLED,
            vec![200, 404],
        ),
    ];
    let mut wrong = Vec::new();
    for (shape, raw, want) in cases {
        let got = statuses(&exchange(addr, raw.as_bytes()).await);
        if got != want {
            wrong.push(format!("{shape}: answered {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Each refusal is hyper's: the server is still there.
    assert_eq!(
        statuses(&exchange(addr, SMUGGLED.replace("/smuggled", "/healthz").as_bytes()).await),
        vec![200]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_head_trickled_a_byte_at_a_time_is_cut_off_at_the_header_deadline() {
    let db = TestDb::new().await;
    let server = start(&db, &["--first-request-timeout", "2s"]);
    let mut stream = TcpStream::connect(&server.http).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // The next head, one byte every 250 ms: 60 bytes would take 15 s.
    let head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed_after = None;
    for (i, byte) in head.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            closed_after = Some(i);
            break;
        }
        // A read that returns means the server answered or closed.
        match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(i);
                break;
            }
            Ok(Ok(n)) => {
                // hyper may answer 408 before closing: never the request itself.
                assert!(
                    !buf[..n].starts_with(b"HTTP/1.1 200"),
                    "the trickled request was served"
                );
            }
            Err(_) => {}
        }
    }
    let sent = closed_after.expect("the connection was closed before the head was whole");
    assert!(sent < head.len() - 1, "closed only after {sent} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_past_the_bound_cannot_keep_a_real_client_or_ingest_out() {
    use pulsyon::proto::v1 as pb;
    let db = TestDb::new().await;
    let key = common::create_tenant(&db.url, "acme");
    let server = start(
        &db,
        &[
            "--http-max-connections",
            "300",
            "--first-request-timeout",
            "120s",
        ],
    );
    // Twice the bound of connections that never send a byte.
    let mut silent = Vec::new();
    for _ in 0..600 {
        silent.push(TcpStream::connect(&server.http).await.unwrap());
    }
    // A real client on a fresh connection is answered: the oldest silent
    // connection made room.
    for _ in 0..3 {
        let got = statuses(
            &exchange(
                &server.http,
                b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await,
        );
        assert_eq!(got, vec![200]);
    }
    // The gRPC port and ingest are unaffected.
    let mut ingest = pb::ingest_client::IngestClient::new(server.channel().await);
    let event = pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(common::ts(std::time::SystemTime::now())),
        service: "checkout".into(),
        status_code: 200,
        latency_ms: 1.0,
        ..Default::default()
    };
    let batch = pb::EventBatch {
        producer_id: "edge".into(),
        seq: 1,
        events: vec![event],
    };
    let ack = common::publish(&mut ingest, &key, batch).await;
    assert_eq!(ack.accepted, 1);
    // Evictions are counted; the silent connections evicted read their end.
    let (_, _, metrics) = common::http(&server.http, "GET", "/metrics", &[], "").await;
    let evicted: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("pulsyon_connections_closed_total{")
                && l.contains("port=\"http\"")
                && l.contains("reason=\"evicted\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no eviction counted:\n{metrics}"));
    assert!(evicted >= 300.0, "{evicted} evictions");
    let mut first = silent.swap_remove(0);
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(30), first.read(&mut buf))
        .await
        .expect("the oldest silent connection was closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

/// Logs in to the dashboard with an API key; returns the cookie to send.
async fn login_with_key(addr: &str, key: &str) -> String {
    let body = serde_json::json!({ "api_key": key }).to_string();
    let (status, headers, text) = common::http(
        addr,
        "POST",
        "/api/v1/session",
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let cookie = common::header(&headers, "set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_json_reads_past_its_bound_get_429_while_another_tenant_is_served() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use pulsyon::proto::v1 as pb;
    // 2,000 connections at once from this process.
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let db = TestDb::new().await;
    let (key_a, key_b) = common::two_tenants(&db.url);
    let server = start(
        &db,
        &[
            "--limit-concurrent-queries",
            "2",
            "--db-read-connections",
            "4",
        ],
    );
    let addr = server.http.clone();
    let (a, b) = (
        login_with_key(&addr, &key_a).await,
        login_with_key(&addr, &key_b).await,
    );
    // A's incident lists hang on a lock, holding its two query slots.
    let pg = common::pool(&db.url).await;
    let mut locker = pg.begin().await.unwrap();
    sqlx::query("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let get = |cookie: String, path: &'static str| {
        let addr = addr.clone();
        tokio::spawn(
            async move { common::http(&addr, "GET", path, &[("cookie", &cookie)], "").await },
        )
    };
    let hanging: Vec<_> = (0..2)
        .map(|_| get(a.clone(), "/api/v1/incidents"))
        .collect();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_type = 'client backend'",
        )
        .fetch_one(&pg)
        .await
        .unwrap();
        if waiting >= 2 {
            break;
        }
        assert!(
            hanging.iter().all(|h| !h.is_finished()),
            "a list did not wait for the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 2,000 more reads by A at once: each refused with 429 and Retry-After.
    let burst: Vec<_> = (0..2_000)
        .map(|_| get(a.clone(), "/api/v1/overview"))
        .collect();
    let mut refused = 0;
    for call in burst {
        let (status, headers, body) = call.await.unwrap();
        assert_eq!(status, 429, "{body}");
        assert!(body.contains("too many concurrent queries"), "{body}");
        assert!(
            common::header(&headers, "retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
        );
        refused += 1;
    }
    assert_eq!(refused, 2_000);

    // B's dashboard and ingest are served meanwhile.
    let (status, _, body) = get(b.clone(), "/api/v1/overview").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let mut ingest = pb::ingest_client::IngestClient::new(server.channel().await);
    let event = pb::Event {
        event_id: uuid::Uuid::now_v7().to_string(),
        time: Some(common::ts(std::time::SystemTime::now())),
        service: "billing".into(),
        status_code: 200,
        latency_ms: 1.0,
        ..Default::default()
    };
    let batch = pb::EventBatch {
        producer_id: "b".into(),
        seq: 1,
        events: vec![event],
    };
    assert_eq!(
        common::publish(&mut ingest, &key_b, batch).await.accepted,
        1
    );

    // Once the lock goes, A's lists finish and its slots are free again.
    locker.rollback().await.unwrap();
    for call in hanging {
        assert_eq!(call.await.unwrap().0, 200);
    }
    assert_eq!(get(a, "/api/v1/overview").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_large_json_answer_is_written_lets_it_arrive_whole() {
    use pulsyon::proto::v1 as pb;
    let db = TestDb::new().await;
    let key = common::create_tenant(&db.url, "acme");
    let mut server = start(&db, &[]);
    // A thousand services make the overview a JSON answer of some 300 KB.
    let mut ingest = pb::ingest_client::IngestClient::new(server.channel().await);
    let events = (0..1_000)
        .map(|i| pb::Event {
            event_id: uuid::Uuid::now_v7().to_string(),
            time: Some(common::ts(std::time::SystemTime::now())),
            service: format!("service-{i:04}-with-a-long-name-to-make-the-answer-large"),
            endpoint: "/api/v1/things/{id}".into(),
            status_code: 200,
            latency_ms: 10.0,
            ..Default::default()
        })
        .collect();
    let batch = pb::EventBatch {
        producer_id: "p".into(),
        seq: 1,
        events,
    };
    assert_eq!(
        common::publish(&mut ingest, &key, batch).await.accepted,
        1_000
    );
    let cookie = login_with_key(&server.http, &key).await;
    let request = format!(
        "GET /api/v1/overview?range=1h HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n"
    );
    // Until the rollups hold every service.
    loop {
        let (_, _, body) = common::http(
            &server.http,
            "GET",
            "/api/v1/overview?range=1h",
            &[("cookie", &cookie)],
            "",
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["services"].as_array().is_some_and(|s| s.len() == 1_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A client with a small window reads the head and a little, then the
    // server is told to stop while most of the answer is still unwritten.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.http.parse().unwrap()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = vec![0u8; 4096];
    let n = stream.read(&mut bytes).await.unwrap();
    bytes.truncate(n);
    assert!(
        bytes.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    server.signal(nix::sys::signal::Signal::SIGTERM);
    // Until the port stops accepting: its shutdown has begun, this
    // connection's included.
    while TcpStream::connect(&server.http).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut rest))
        .await
        .expect("the answer ends")
        .unwrap();
    bytes.extend_from_slice(&rest);
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .expect("a length")
        .parse()
        .unwrap();
    assert!(length > 200_000, "a large answer: {length} bytes");
    assert_eq!(body.len(), length, "the whole answer arrived");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["services"].as_array().unwrap().len(), 1_000);
    let status = server
        .wait_exit(Duration::from_secs(60))
        .expect("the server exits");
    assert!(status.success(), "{status}");
}
