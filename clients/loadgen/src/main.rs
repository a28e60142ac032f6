//! `pulsyon-loadgen`: sends realistic events through the Rust SDK and reports
//! throughput and acknowledgement latency. With `--json`, the last line of
//! stdout is one JSON object with the figures.

// No panic reachable from input: errors are values (tests may unwrap; clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use clap::Parser;

/// The generator allocates many small strings per event; mimalloc keeps that
/// cheap, leaving more of a shared machine to the server being measured.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use pulsyon_client::{Client, ClientOptions, Stats};
use pulsyon_loadgen::{Fault, Generator};

/// Sends realistic events to a Pulsyon server.
#[derive(Debug, Parser)]
#[command(name = "pulsyon-loadgen", version)]
struct Args {
    /// gRPC URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    url: String,
    /// API key with the `ingest` scope.
    #[arg(long, env = "PULSYON_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Concurrent streams (one SDK client each).
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Longest an event waits for its batch to fill, in milliseconds.
    #[arg(long, default_value_t = 20)]
    linger_ms: u64,
    /// Unacknowledged batches per stream.
    #[arg(long, default_value_t = 8)]
    max_in_flight: usize,
    /// Total events to send (unless --duration is given).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Send for this many seconds instead of a count.
    #[arg(long)]
    duration: Option<f64>,
    /// Events per second over all streams; 0 is as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Services to spread events over (1 to 8).
    #[arg(long, default_value_t = 8)]
    services: usize,
    /// The service the fault flags apply to; every service when not given.
    #[arg(long)]
    service: Option<String>,
    /// Share of the faulted service's requests answered with a 5xx (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Milliseconds added to the faulted service's latency.
    #[arg(long, default_value_t = 0.0)]
    latency_ms: f64,
    /// Seed of the traffic shape.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn total(all: &[Stats]) -> Stats {
    all.iter().copied().sum()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.error_rate) || args.latency_ms < 0.0 {
        eprintln!("error: --error-rate is 0 to 1 and --latency-ms at least 0");
        std::process::exit(64);
    }
    let fault = (args.error_rate > 0.0 || args.latency_ms > 0.0).then_some(Fault {
        error_rate: args.error_rate,
        added_latency_ms: args.latency_ms,
        ..Fault::default()
    });
    let faulted = args.service.clone();
    let streams = args.streams.max(1);
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut clients = Vec::new();
    for _ in 0..streams {
        let latencies = latencies.clone();
        let options = ClientOptions {
            batch_size: args.batch_size,
            max_in_flight: args.max_in_flight,
            linger: Duration::from_millis(args.linger_ms),
            on_ack: Some(Arc::new(move |d: Duration| {
                latencies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(d.as_secs_f64() * 1000.0);
            })),
            ..Default::default()
        };
        match Client::connect_with(&args.url, &args.api_key, options).await {
            Ok(client) => clients.push(Arc::new(client)),
            Err(err) => {
                eprintln!("error: {err}");
                std::process::exit(1);
            }
        }
    }

    let started = Instant::now();
    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
    let per_stream_events = args.events.div_ceil(streams as u64);
    let per_stream_rate = args.rate / streams as f64;
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let mut generator = Generator::new(args.seed.wrapping_add(i as u64 * 7919), args.services);
        let faulted = faulted.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let tick = Duration::from_millis(10);
            let mut next_tick = Instant::now();
            loop {
                if deadline.map_or(sent >= per_stream_events, |d| Instant::now() >= d) {
                    break;
                }
                if per_stream_rate > 0.0 {
                    // Send what the rate allows up to now, then wait a tick.
                    let allowed = (started.elapsed().as_secs_f64() * per_stream_rate) as u64;
                    if sent >= allowed {
                        next_tick += tick;
                        tokio::time::sleep_until(next_tick.into()).await;
                        continue;
                    }
                }
                if client
                    .send(generator.event_with(SystemTime::now(), |name| {
                        fault.filter(|_| faulted.as_deref().is_none_or(|f| f == name))
                    }))
                    .await
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            let _ = client.close().await;
        }));
    }

    let progress = {
        let clients = clients.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let s = total(&clients.iter().map(|c| c.stats()).collect::<Vec<_>>());
                eprintln!(
                    "[{:>5.1}s] sent {} acked {} rejected {} retried {} reconnects {} ({} ev/s)",
                    started.elapsed().as_secs_f64(),
                    s.sent,
                    s.acked,
                    s.rejected,
                    s.retried,
                    s.reconnects,
                    s.acked - last
                );
                last = s.acked;
            }
        })
    };
    for task in tasks {
        let _ = task.await;
    }
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    let s = total(&clients.iter().map(|c| c.stats()).collect::<Vec<_>>());
    let mut lat = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lat.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        percentile(&lat, 99.0),
    );
    let eps = s.acked as f64 / seconds;
    eprintln!(
        "done: {} acked, {} rejected, {} duplicates, {} dropped in {seconds:.2}s = {eps:.0} events/s; ack p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms",
        s.acked, s.rejected, s.duplicates, s.dropped
    );
    if args.json {
        println!(
            "{{\"acked\":{},\"rejected\":{},\"duplicates\":{},\"sent\":{},\"retried\":{},\"dropped\":{},\"reconnects\":{},\"streams\":{},\"batch_size\":{},\"seconds\":{:.3},\"events_per_sec\":{:.1},\"ack_p50_ms\":{:.2},\"ack_p95_ms\":{:.2},\"ack_p99_ms\":{:.2}}}",
            s.acked,
            s.rejected,
            s.duplicates,
            s.sent,
            s.retried,
            s.dropped,
            s.reconnects,
            streams,
            args.batch_size,
            seconds,
            eps,
            p50,
            p95,
            p99
        );
    }
    if s.dropped > 0 {
        std::process::exit(2);
    }
}
