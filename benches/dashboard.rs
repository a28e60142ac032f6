//! Dashboard benchmark, against a running server: the first screen's JSON
//! calls one after another over one keep-alive connection (latency per
//! call), then many raw event-stream subscribers (`GET
//! /api/v1/incidents/stream`, one HTTP/1.1 connection each, as browsers
//! hold them): the server's memory per idle subscriber (then on kept-alive
//! connections, then over HTTP/2 with six streams per connection), and the
//! time from each incident update's stamp to its arrival at every
//! subscriber, updates written through the store as the detector writes them.
//! `scripts/bench-dashboard.sh` runs it and writes docs/perf/dashboard.md.
//!
//!   cargo bench --bench dashboard -- --http ADDR --api-key KEY --database-url URL \
//!       --tenant NAME --warmup-tenant NAME --pid PID

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use clap::Parser;
#[path = "support/mod.rs"]
mod support;
use support::{percentile, rss_kib, write_updates};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

#[derive(Debug, Parser)]
struct Args {
    /// The server's HTTP address (host:port).
    #[arg(long)]
    http: String,
    /// API key with the `read` scope (the dashboard's login by key).
    #[arg(long)]
    api_key: String,
    /// The server's database, to write updates as the detector does.
    #[arg(long)]
    database_url: String,
    /// The tenant of the key.
    #[arg(long)]
    tenant: String,
    /// Another tenant, whose update before the measured ones warms the
    /// benchmark's database connection; the subscribers never receive it.
    #[arg(long)]
    warmup_tenant: String,
    /// The server's process id, to read its memory and CPU.
    #[arg(long)]
    pid: u32,
    /// Calls per case.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Uncounted calls first.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Event-stream subscribers.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Idle subscribers in all (the first `subscribers` included) at the
    /// first and the second reading of the memory per idle subscriber.
    #[arg(long, default_value_t = 3_000)]
    memory_from: usize,
    #[arg(long, default_value_t = 5_000)]
    memory_to: usize,
    /// Updates written, one a second.
    #[arg(long, default_value_t = 20)]
    updates: usize,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// What a subscriber's connection carries before its stream.
#[derive(Debug, Clone, Copy)]
enum First {
    /// The stream is its first request.
    Nothing,
    /// Another request first (as a browser reusing a connection).
    Request,
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    async fn open(host: &str) -> Conn {
        let stream = TcpStream::connect(host).await.expect("connecting");
        stream.set_nodelay(true).ok();
        Conn {
            reader: BufReader::new(stream),
            host: host.to_owned(),
        }
    }

    /// Sends a request; returns the status, the headers and the body.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.host,
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        self.exchange(&head).await
    }

    /// Sends a whole request as written; returns the status, the headers and
    /// the body of the answer.
    async fn exchange(&mut self, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("writing");
        let (status, headers) = self.head().await;
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let mut out = Vec::new();
        if let Some(len) = find("content-length") {
            out.resize(len.parse().expect("content-length"), 0);
            self.reader.read_exact(&mut out).await.expect("body");
        } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.expect("chunk");
                let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).await.expect("chunk");
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..size]);
            }
        }
        (status, headers, out)
    }

    /// A new connection subscribed to the event stream, its answer's head
    /// read, after what `first` sends on it first.
    async fn subscribe(host: &str, cookie: &str, first: First) -> Conn {
        let mut conn = Conn::open(host).await;
        match first {
            First::Nothing => {}
            First::Request => {
                let (status, _, _) = conn
                    .call("GET", "/api/v1/session", &[("cookie", cookie)], "")
                    .await;
                assert_eq!(status, 200, "session");
            }
        }
        let request = format!(
            "GET /api/v1/incidents/stream HTTP/1.1\r\nhost: {host}\r\ncookie: {cookie}\r\naccept: text/event-stream\r\n\r\n"
        );
        conn.reader
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("subscribing");
        let (status, _) = conn.head().await;
        assert_eq!(status, 200, "stream");
        conn
    }

    async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let mut line = String::new();
        self.reader.read_line(&mut line).await.expect("status");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.expect("header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        (status, headers)
    }
}

/// Event streams per HTTP/2 connection in the memory measure.
const H2_STREAMS: usize = 6;

/// One HTTP/2 connection (prior knowledge) holding `H2_STREAMS` idle event
/// streams, their answers' heads received.
struct H2Subscriber {
    _client: h2::client::SendRequest<bytes::Bytes>,
    _streams: Vec<h2::RecvStream>,
    _connection: tokio::task::JoinHandle<()>,
}

impl H2Subscriber {
    async fn open(host: &str, cookie: &str) -> H2Subscriber {
        let tcp = TcpStream::connect(host).await.expect("connecting");
        tcp.set_nodelay(true).ok();
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.expect("h2 ready");
        let mut streams = Vec::with_capacity(H2_STREAMS);
        for _ in 0..H2_STREAMS {
            let request = hyper::Request::get(format!("http://{host}/api/v1/incidents/stream"))
                .header("cookie", cookie)
                .header("accept", "text/event-stream")
                .body(())
                .expect("request");
            let (response, _) = client.send_request(request, true).expect("sending");
            let response = response.await.expect("answer");
            assert_eq!(response.status(), 200, "h2 stream");
            streams.push(response.into_body());
            client = client.ready().await.expect("h2 ready");
        }
        H2Subscriber {
            _client: client,
            _streams: streams,
            _connection: connection,
        }
    }
}

/// The process's resident memory once it holds still: read every second
/// until three reads in a row are within 256 KiB of the one before (at
/// most a minute). A server just started still gives memory back (threads
/// of its blocking pool end, start-up work is freed) for some seconds.
pub async fn settled_rss_kib(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    let mut still = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = rss_kib(pid);
        still = if now.abs_diff(last) <= 256 {
            still + 1
        } else {
            0
        };
        last = now;
        if still >= 3 {
            break;
        }
    }
    last
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut conn = Conn::open(&args.http).await;
    let login = serde_json::json!({ "api_key": args.api_key }).to_string();
    let (status, headers, body) = conn
        .call(
            "POST",
            "/api/v1/session",
            &[("content-type", "application/json")],
            &login,
        )
        .await;
    assert_eq!(status, 200, "login: {}", String::from_utf8_lossy(&body));
    let cookie = headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .and_then(|(_, v)| v.split(';').next())
        .expect("a session cookie")
        .to_owned();

    // The live feed first, on the server as it started (as the Watch
    // benchmark measures it): raw subscribers, one connection each, opened
    // one after another (each waits for its answer's head). A few streams
    // opened and closed first make the one-off allocations (the hub's group,
    // the first of each path).
    for _ in 0..10 {
        drop(Conn::subscribe(&args.http, &cookie, First::Nothing).await);
    }
    let rss_before = settled_rss_kib(args.pid).await;
    let received = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<(usize, f64)>::new()));
    let started = Instant::now();
    for _ in 0..args.subscribers {
        let mut conn = Conn::subscribe(&args.http, &cookie, First::Nothing).await;
        let (received, latencies) = (received.clone(), latencies.clone());
        let updates = args.updates;
        tokio::spawn(async move {
            let mut mine = Vec::with_capacity(updates);
            let mut line = String::new();
            loop {
                line.clear();
                match conn.reader.read_line(&mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                let Ok(update) = serde_json::from_str::<serde_json::Value>(data) else {
                    continue;
                };
                let (Some(at), Some(service)) = (
                    update["at"].as_str(),
                    update["incident"]["service"].as_str(),
                ) else {
                    continue;
                };
                let at =
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .expect("at");
                let sent =
                    SystemTime::UNIX_EPOCH + Duration::from_nanos(at.unix_timestamp_nanos() as u64);
                let ms = SystemTime::now()
                    .duration_since(sent)
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1_000.0;
                // Only the benchmark's updates count.
                let Some(k) = service
                    .strip_prefix("bench-")
                    .and_then(|k| k.parse::<usize>().ok())
                else {
                    continue;
                };
                mine.push((k, ms));
                received.fetch_add(1, Ordering::Relaxed);
                if mine.len() >= updates {
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .append(&mut mine);
                }
            }
        });
    }
    let subscribe_secs = started.elapsed().as_secs_f64();
    let rss_idle = settled_rss_kib(args.pid).await;

    let expected = args.subscribers * args.updates;
    let written = write_updates(
        &args.database_url,
        (&args.tenant, &args.warmup_tenant),
        args.updates,
        args.pid,
        (&received, expected),
    )
    .await;
    let server_cpu_per_update = written.server_cpu_ms_per_update;
    let commit_max = written.commit_ms.iter().copied().fold(0.0, f64::max);
    let deliveries = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut all: Vec<f64> = deliveries.iter().map(|d| d.1).collect();
    all.sort_by(f64::total_cmp);
    let per_subscriber = rss_idle.saturating_sub(rss_before) as f64 / args.subscribers as f64;

    // Memory per idle subscriber at a larger count: more idle subscribers
    // (kept open, not read), resident memory read at `memory_from` and
    // `memory_to` in all; the slope between them. Below some thousands the
    // allocator's free pages from the start-up work (the Argon2 decoy hash
    // of the logins, database and catalogue reads) absorb new subscribers,
    // and it gives memory back at moments of its own: the first thousand's
    // figure above mostly shows that.
    let mut idle = Vec::new();
    let mut rss_from = 0;
    for n in args.subscribers..args.memory_to {
        if n == args.memory_from {
            rss_from = settled_rss_kib(args.pid).await;
        }
        idle.push(Conn::subscribe(&args.http, &cookie, First::Nothing).await);
    }
    let rss_to = settled_rss_kib(args.pid).await;
    let count = args.memory_to.saturating_sub(args.memory_from).max(1);
    let slope = rss_to.saturating_sub(rss_from) as f64 / count as f64;
    // As many again, each after another request on its connection (as
    // browsers reuse connections).
    for _ in 0..count {
        idle.push(Conn::subscribe(&args.http, &cookie, First::Request).await);
    }
    let rss_reused = settled_rss_kib(args.pid).await;
    let slope_reused = rss_reused.saturating_sub(rss_to) as f64 / count as f64;
    // As many again over HTTP/2 (prior knowledge), `H2_STREAMS` streams per
    // connection, as a browser's tabs share one connection to an origin.
    let mut h2_idle = Vec::new();
    for _ in 0..count.div_ceil(H2_STREAMS) {
        h2_idle.push(H2Subscriber::open(&args.http, &cookie).await);
    }
    let rss_h2 = settled_rss_kib(args.pid).await;
    let slope_h2 = rss_h2.saturating_sub(rss_reused) as f64 / (h2_idle.len() * H2_STREAMS) as f64;
    drop(h2_idle);
    drop(idle);
    println!();
    println!(
        "{{\"subscribers\":{},\"subscribe_secs\":{subscribe_secs:.1},\"rss_before_kib\":{rss_before},\"rss_idle_kib\":{rss_idle},\"kib_per_idle_subscriber_first\":{per_subscriber:.2},\"memory_from\":{},\"memory_to\":{},\"rss_from_kib\":{rss_from},\"rss_to_kib\":{rss_to},\"kib_per_idle_subscriber\":{slope:.2},\"rss_reused_kib\":{rss_reused},\"kib_per_idle_subscriber_reused\":{slope_reused:.2},\"rss_h2_kib\":{rss_h2},\"kib_per_idle_subscriber_h2\":{slope_h2:.2},\"h2_streams_per_connection\":{H2_STREAMS},\"updates\":{},\"deliveries_expected\":{expected},\"deliveries\":{},\"p50_ms\":{:.1},\"p95_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"server_cpu_ms_per_update\":{server_cpu_per_update:.1},\"commit_ms_max\":{commit_max:.1}}}",
        args.subscribers,
        args.memory_from,
        args.memory_to,
        args.updates,
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or_default(),
    );

    // Then the JSON calls, the subscribers still connected, on a new
    // connection: the login's has idled past the port's header deadline
    // (a browser opens another too).
    let mut conn = Conn::open(&args.http).await;
    // The service the detail cases read: the busiest one.
    let (_, _, overview) = conn
        .call(
            "GET",
            "/api/v1/overview?range=1h",
            &[("cookie", &cookie)],
            "",
        )
        .await;
    let overview: serde_json::Value = serde_json::from_slice(&overview).expect("overview");
    let busiest = overview["services"]
        .as_array()
        .and_then(|s| s.iter().max_by_key(|s| s["requests"].as_u64()))
        .and_then(|s| s["service"].as_str())
        .expect("a service")
        .to_owned();

    println!("| call | case | calls | bytes per answer | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let cases: Vec<(String, &str)> = vec![
        ("/api/v1/session".into(), "who is logged in"),
        (
            "/api/v1/overview?range=1h".into(),
            "first screen: every service, 1 h",
        ),
        (
            "/api/v1/overview?range=24h".into(),
            "first screen: every service, 24 h",
        ),
        (
            "/api/v1/overview?range=7d".into(),
            "first screen: every service, 7 d",
        ),
        ("/api/v1/incidents".into(), "first screen: live incidents"),
        (
            format!("/api/v1/services/{busiest}?range=1h"),
            "service detail, 1 h",
        ),
        (
            format!("/api/v1/services/{busiest}?range=24h"),
            "service detail, 24 h",
        ),
        ("/api/v1/ingest?range=1h".into(), "ingest page, 1 h"),
    ];
    for (path, case) in &cases {
        let (mut times, bytes) =
            timed_calls(&mut conn, path, &cookie, args.warmup, args.calls).await;
        times.sort_by(f64::total_cmp);
        let shown = path.split('?').next().unwrap_or(path);
        println!(
            "| `GET {shown}` | {case} | {} | {bytes} | {:.2} | {:.2} | {:.2} | {:.2} |",
            times.len(),
            percentile(&times, 0.50),
            percentile(&times, 0.95),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or_default()
        );
    }
}

/// `warmup` uncounted calls of `path`, then `calls` timed ones (ms, from
/// sending to the parsed JSON), and the size of the last answer.
async fn timed_calls(
    conn: &mut Conn,
    path: &str,
    cookie: &str,
    warmup: usize,
    calls: usize,
) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(calls);
    let mut bytes = 0;
    for i in 0..warmup + calls {
        let started = Instant::now();
        let (status, _, body) = conn.call("GET", path, &[("cookie", cookie)], "").await;
        let ms = started.elapsed().as_secs_f64() * 1_000.0;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<serde_json::Value>(&body).expect("JSON");
        if i >= warmup {
            times.push(ms);
            bytes = body.len();
        }
    }
    (times, bytes)
}
