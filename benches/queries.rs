//! Query benchmark: latency of each Query RPC against a running server,
//! measured over `--calls` sequential calls per case; prints a Markdown table.
//! `scripts/bench-queries.sh` seeds the data, runs this and writes
//! docs/perf/queries.md.
//!
//!   cargo bench --bench queries -- --url http://127.0.0.1:50051 --api-key KEY [--calls 200]

use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use pulsyon::proto::v1::{self as pb, query_client::QueryClient};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

#[derive(Debug, Parser)]
struct Args {
    /// gRPC URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    url: String,
    /// API key with the `read` scope.
    #[arg(long, env = "PULSYON_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Calls per case.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Uncounted calls before each case.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn duration(secs: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: secs,
        nanos: 0,
    })
}

fn range(secs: u64) -> Option<pb::TimeRange> {
    let now = SystemTime::now();
    Some(pb::TimeRange {
        start: Some((now - Duration::from_secs(secs)).into()),
        end: Some(now.into()),
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

struct Bench {
    client: QueryClient<Channel>,
    auth: MetadataValue<tonic::metadata::Ascii>,
    calls: usize,
    warmup: usize,
    services: Vec<String>,
}

impl Bench {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        request
    }

    /// Runs `call` `self.calls` times (after the warm-up calls) with the i-th
    /// service, and prints one table row.
    async fn case<F, Fut>(&mut self, rpc: &str, case: &str, call: F)
    where
        F: Fn(QueryClient<Channel>, Request<()>, String) -> Fut,
        Fut: Future<Output = Result<usize, tonic::Status>>,
    {
        let mut took = Vec::with_capacity(self.calls);
        let mut rows = 0;
        for i in 0..self.calls + self.warmup {
            let service = self.services[i % self.services.len()].clone();
            let started = Instant::now();
            match call(self.client.clone(), self.request(()), service).await {
                Ok(n) => rows += n,
                Err(status) => panic!("{rpc} {case}: {status}"),
            }
            if i >= self.warmup {
                took.push(started.elapsed().as_secs_f64() * 1_000.0);
            }
        }
        took.sort_by(f64::total_cmp);
        println!(
            "| {rpc} | {case} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            self.calls,
            rows as f64 / (self.calls + self.warmup) as f64,
            percentile(&took, 0.50),
            percentile(&took, 0.95),
            percentile(&took, 0.99),
            took.last().copied().unwrap_or_default()
        );
    }
}

/// Moves the authorization of `template` onto a request carrying `message`.
fn with_auth<T>(template: Request<()>, message: T) -> Request<T> {
    let (metadata, extensions, ()) = template.into_parts();
    Request::from_parts(metadata, extensions, message)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let channel = Channel::from_shared(args.url.clone())
        .expect("--url")
        .connect()
        .await
        .expect("connecting");
    let auth: MetadataValue<_> = format!("Bearer {}", args.api_key)
        .parse()
        .expect("--api-key");
    let mut client = QueryClient::new(channel);
    let mut listing = Request::new(pb::ListServicesRequest {});
    listing.metadata_mut().insert("authorization", auth.clone());
    let services: Vec<String> = client
        .list_services(listing)
        .await
        .expect("ListServices")
        .into_inner()
        .services
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(!services.is_empty(), "no services: seed first");
    let mut bench = Bench {
        client,
        auth,
        calls: args.calls,
        warmup: args.warmup,
        services,
    };
    println!("| RPC | case | calls | rows per call | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    bench
        .case(
            "QueryEvents",
            "one service, last 1 h, 100 rows",
            |mut c, r, service| async move {
                let req = pb::QueryEventsRequest {
                    service,
                    range: range(3_600),
                    page_size: 100,
                    ..Default::default()
                };
                Ok(c.query_events(with_auth(r, req))
                    .await?
                    .into_inner()
                    .events
                    .len())
            },
        )
        .await;
    bench
        .case(
            "QueryEvents",
            "one service, last 1 h, 100 rows, second page",
            |mut c, r, service| async move {
                let req = pb::QueryEventsRequest {
                    service,
                    range: range(3_600),
                    page_size: 100,
                    ..Default::default()
                };
                let auth = r.metadata().clone();
                let first = c
                    .query_events(with_auth(r, req.clone()))
                    .await?
                    .into_inner();
                let mut second = Request::new(pb::QueryEventsRequest {
                    page_token: first.next_page_token,
                    ..req
                });
                *second.metadata_mut() = auth;
                Ok(c.query_events(second).await?.into_inner().events.len())
            },
        )
        .await;
    bench
        .case(
            "QueryEvents",
            "one service, 5xx only, last 1 h, 100 rows",
            |mut c, r, service| async move {
                let req = pb::QueryEventsRequest {
                    service,
                    status_class: pb::StatusClass::StatusClass5xx as i32,
                    range: range(3_600),
                    page_size: 100,
                    ..Default::default()
                };
                Ok(c.query_events(with_auth(r, req))
                    .await?
                    .into_inner()
                    .events
                    .len())
            },
        )
        .await;
    bench
        .case(
            "QueryEvents",
            "all services, last 24 h, 100 rows",
            |mut c, r, _| async move {
                let req = pb::QueryEventsRequest {
                    range: range(86_400),
                    page_size: 100,
                    ..Default::default()
                };
                Ok(c.query_events(with_auth(r, req))
                    .await?
                    .into_inner()
                    .events
                    .len())
            },
        )
        .await;
    for (label, secs) in [("1 h", 3_600), ("24 h", 86_400), ("7 days", 7 * 86_400)] {
        bench
            .case(
                "GetServiceHealth",
                &format!("all services, {label}"),
                |mut c, r, _| async move {
                    let req = pb::GetServiceHealthRequest {
                        service: String::new(),
                        window: duration(secs),
                    };
                    Ok(c.get_service_health(with_auth(r, req))
                        .await?
                        .into_inner()
                        .services
                        .len())
                },
            )
            .await;
    }
    for (label, step, secs) in [
        ("7 days, hourly", 3_600, 7 * 86_400),
        ("24 h, per minute", 60, 86_400),
        ("7 days, daily", 86_400, 7 * 86_400),
    ] {
        bench
            .case(
                "GetMetrics",
                &format!("one service, {label}"),
                |mut c, r, service| async move {
                    let req = pb::GetMetricsRequest {
                        service,
                        endpoint: String::new(),
                        range: range(secs),
                        step: duration(step),
                    };
                    Ok(c.get_metrics(with_auth(r, req))
                        .await?
                        .into_inner()
                        .points
                        .len())
                },
            )
            .await;
    }
    bench
        .case("ListServices", "every service", |mut c, r, _| async move {
            Ok(c.list_services(with_auth(r, pb::ListServicesRequest {}))
                .await?
                .into_inner()
                .services
                .len())
        })
        .await;
    bench
        .case(
            "ListFailedEvents",
            "last 24 h, 100 rows",
            |mut c, r, _| async move {
                let req = pb::ListFailedEventsRequest::default();
                Ok(c.list_failed_events(with_auth(r, req))
                    .await?
                    .into_inner()
                    .failed_events
                    .len())
            },
        )
        .await;
    bench
        .case(
            "GetIngestStats",
            "last 1 h, 60 minutes",
            |mut c, r, _| async move {
                let req = pb::GetIngestStatsRequest::default();
                Ok(c.get_ingest_stats(with_auth(r, req))
                    .await?
                    .into_inner()
                    .minutes
                    .len())
            },
        )
        .await;
}
