//! Watch benchmark: many concurrent `Incidents.Watch` subscribers on one
//! server. Measures the server's memory per idle subscriber, then writes
//! incident updates (through the store, as the detector does) and measures
//! the time from each update's commit-time stamp to its arrival at every
//! subscriber. `scripts/bench-watch.sh` runs it and writes docs/perf/watch.md.
//!
//!   cargo bench --bench watch -- --url URL --api-key KEY --database-url URL --tenant NAME --pid PID

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
use pulsyon::proto::v1::{self as pb, incidents_client::IncidentsClient};
use support::{percentile, rss_kib, write_updates};
use tonic::{
    Request,
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig},
};

#[derive(Debug, Parser)]
struct Args {
    /// gRPC URL of the server.
    #[arg(long)]
    url: String,
    /// API key with the `read` scope.
    #[arg(long)]
    api_key: String,
    /// The server's database, to write updates as the detector does.
    #[arg(long)]
    database_url: String,
    /// The tenant of the key.
    #[arg(long)]
    tenant: String,
    /// Another tenant, whose one update before the measured ones warms the
    /// benchmark's own database connection (a long-running detector's is
    /// warm); the subscribers, all of `--tenant`, never receive it.
    #[arg(long)]
    warmup_tenant: String,
    /// The server's process id, to read its memory.
    #[arg(long)]
    pid: u32,
    /// Concurrent subscribers.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// HTTP/2 connections they share.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Updates written, one a second.
    #[arg(long, default_value_t = 20)]
    updates: usize,
    /// PEM CA that signed the server's certificate (for localhost): connect with TLS.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// Waits until `subscribed` reaches `n` (at most 5 minutes from `started`),
/// then returns the seconds it took.
pub async fn wait_subscribed(subscribed: &AtomicUsize, n: usize, started: Instant) -> f64 {
    while subscribed.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "subscribing took too long"
        );
    }
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let auth: MetadataValue<_> = format!("Bearer {}", args.api_key)
        .parse()
        .expect("--api-key");
    let mut channels = Vec::new();
    let mut endpoint = Channel::from_shared(args.url.clone()).expect("--url");
    if let Some(ca) = &args.tls_ca {
        let ca = std::fs::read(ca).expect("--tls-ca");
        endpoint = endpoint
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )
            .expect("tls");
    }
    for _ in 0..args.connections.max(1) {
        channels.push(endpoint.connect().await.expect("connecting"));
    }
    let rss_before = rss_kib(args.pid);
    let subscribed = Arc::new(AtomicUsize::new(0));
    // (update index, milliseconds) of every delivery.
    let latencies = Arc::new(Mutex::new(Vec::<(usize, f64)>::new()));
    let received = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for i in 0..args.subscribers {
        let mut client = IncidentsClient::new(channels[i % channels.len()].clone());
        let (auth, subscribed, latencies, received) = (
            auth.clone(),
            subscribed.clone(),
            latencies.clone(),
            received.clone(),
        );
        let updates = args.updates;
        tokio::spawn(async move {
            let mut request = Request::new(pb::WatchRequest::default());
            request.metadata_mut().insert("authorization", auth);
            let mut stream = match client.watch(request).await {
                Ok(r) => r.into_inner(),
                Err(status) => panic!("watch: {status}"),
            };
            subscribed.fetch_add(1, Ordering::Relaxed);
            // Kept per subscriber and handed over once, so the measuring
            // client does not serialise 10,000 tasks on one lock per delivery.
            let mut mine = Vec::with_capacity(updates);
            while let Ok(Some(message)) = stream.message().await {
                if let Some(pb::watch_response::Payload::Update(u)) = message.payload {
                    let at = u.time.expect("time");
                    let sent =
                        SystemTime::UNIX_EPOCH + Duration::new(at.seconds as u64, at.nanos as u32);
                    let ms = SystemTime::now()
                        .duration_since(sent)
                        .unwrap_or_default()
                        .as_secs_f64()
                        * 1_000.0;
                    let k = u
                        .incident
                        .as_ref()
                        .and_then(|i| i.service.strip_prefix("bench-"))
                        .and_then(|k| k.parse().ok())
                        .unwrap_or(usize::MAX);
                    mine.push((k, ms));
                    if mine.len() >= updates {
                        latencies
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .append(&mut mine);
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let subscribe_secs = wait_subscribed(&subscribed, args.subscribers, started).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss_kib(args.pid);

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
    let deliveries = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut all: Vec<f64> = deliveries.iter().map(|d| d.1).collect();
    all.sort_by(f64::total_cmp);
    // Each update's own p99, to tell a slow update from a slow tail.
    let per_update: Vec<f64> = (0..args.updates)
        .map(|k| {
            let mut one: Vec<f64> = deliveries
                .iter()
                .filter(|d| d.0 == k)
                .map(|d| d.1)
                .collect();
            one.sort_by(f64::total_cmp);
            percentile(&one, 0.99)
        })
        .collect();
    let per_update_text = per_update
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(",");
    let commit_text = written
        .commit_ms
        .iter()
        .map(|v| format!("{v:.1}"))
        .collect::<Vec<_>>()
        .join(",");
    let per_subscriber = (rss_idle.saturating_sub(rss_before)) as f64 / args.subscribers as f64;
    println!(
        "{{\"subscribers\":{},\"connections\":{},\"subscribe_secs\":{subscribe_secs:.1},\"rss_before_kib\":{rss_before},\"rss_idle_kib\":{rss_idle},\"kib_per_idle_subscriber\":{per_subscriber:.2},\"updates\":{},\"deliveries_expected\":{expected},\"deliveries\":{},\"p50_ms\":{:.1},\"p95_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"p99_per_update_ms\":[{per_update_text}],\"commit_ms\":[{commit_text}],\"server_cpu_ms_per_update\":{server_cpu_per_update:.1}}}",
        args.subscribers,
        args.connections,
        args.updates,
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or_default(),
    );
}
