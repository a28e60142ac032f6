//! Notification benchmark: incident updates written as the detector writes
//! them (through the store), each sent to every receiver of the tenant by
//! the server's `notify` role, received by tests/python/receivers.py (a
//! webhook verifying Standard Webhooks signatures, a Slack-shaped receiver
//! parsing Block Kit, an SMTP server). Measures, from each update's commit
//! to its arrival at each receiver: p50 and p99 per kind; and deliveries per
//! second of the one notify process. With `--hang`, a fourth receiver never
//! answers; with `--fourth`, a fourth receiver answers (the control). `scripts/bench-notify.sh` runs it and writes docs/perf/notifications.md.
//!
//!   cargo bench --bench notify -- --url URL --api-key KEY --database-url URL --tenant NAME \
//!     --record FILE --http-port P --smtp-port P --secret WHSEC [--updates N] [--hang | --fourth]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::Parser;
#[path = "support/mod.rs"]
#[allow(dead_code)] // The other benchmarks' helpers.
mod support;
use pulsyon::{
    domain::incident::Grouping,
    incidents::{self, lifecycle::Policy},
    proto::v1::{self as pb, admin_client::AdminClient},
    store::{self, Store},
};
use support::{bench_alert, percentile};
use tonic::{Request, metadata::MetadataValue};

#[derive(Debug, Parser)]
struct Args {
    /// gRPC URL of the server.
    #[arg(long)]
    url: String,
    /// API key with the `admin` scope.
    #[arg(long)]
    api_key: String,
    /// The server's database, to write updates as the detector does.
    #[arg(long)]
    database_url: String,
    /// The tenant of the key.
    #[arg(long)]
    tenant: String,
    /// The receivers' record (JSON lines).
    #[arg(long)]
    record: String,
    /// The receivers' HTTP port.
    #[arg(long)]
    http_port: u16,
    /// The receivers' SMTP port.
    #[arg(long)]
    smtp_port: u16,
    /// The webhook receiver's secret.
    #[arg(long)]
    secret: String,
    /// Incident updates to write.
    #[arg(long, default_value_t = 1000)]
    updates: usize,
    /// Add a receiver that never answers.
    #[arg(long)]
    hang: bool,
    /// Add a fourth receiver that answers (the control for `--hang`: the
    /// same work planned, none of it held up).
    #[arg(long, conflicts_with = "hang")]
    fourth: bool,
    /// Updates written per second (0: one after another, as fast as the
    /// database takes them).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn authed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value = MetadataValue::try_from(format!("Bearer {key}")).expect("key");
    request.metadata_mut().insert("authorization", value);
    request
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

async fn receivers(args: &Args) {
    let mut admin = AdminClient::connect(args.url.clone())
        .await
        .expect("server");
    let base = format!("http://127.0.0.1:{}", args.http_port);
    let mut made = vec![
        pb::CreateReceiverRequest {
            name: "webhook".into(),
            kind: pb::ReceiverKind::Webhook as i32,
            url: format!("{base}/hook"),
            secret: args.secret.clone(),
            ..Default::default()
        },
        pb::CreateReceiverRequest {
            name: "slack".into(),
            kind: pb::ReceiverKind::Slack as i32,
            url: format!("{base}/slack"),
            ..Default::default()
        },
        pb::CreateReceiverRequest {
            name: "email".into(),
            kind: pb::ReceiverKind::Email as i32,
            url: format!("smtp://127.0.0.1:{}", args.smtp_port),
            smtp_tls: pb::SmtpTls::None as i32,
            email_from: "pulsyon@example.com".into(),
            email_to: vec!["oncall@example.com".into()],
            ..Default::default()
        },
    ];
    if args.hang || args.fourth {
        made.push(pb::CreateReceiverRequest {
            name: "fourth".into(),
            kind: pb::ReceiverKind::Webhook as i32,
            // Not counted among the three (its path is not `/hook`).
            url: format!("{base}{}", if args.hang { "/hang" } else { "/hook?fourth" }),
            secret: args.secret.clone(),
            ..Default::default()
        });
    }
    for r in made {
        admin
            .create_receiver(authed(r, &args.api_key))
            .await
            .expect("CreateReceiver");
    }
}

/// The incident a received message is about, and its kind.
fn incident_of(entry: &serde_json::Value) -> Option<(&'static str, i64)> {
    if entry["kind"] == "email" {
        let id = entry["headers"]["message-id"].as_str()?;
        let n = id.strip_prefix("<pulsyon.incident-")?.split('@').next()?;
        return Some(("email", n.parse().ok()?));
    }
    match entry["path"].as_str()? {
        "/hook" => Some(("webhook", entry["body"]["incident"]["id"].as_i64()?)),
        "/slack" => {
            let text = entry["body"]["text"].as_str()?;
            let n = text.split('#').nth(1)?.split(' ').next()?;
            Some(("slack", n.parse().ok()?))
        }
        _ => None,
    }
}

/// The receivers' record (JSON lines), read from where it stood.
struct Record {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Record {
    fn from_end(path: &Path) -> Record {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Record {
            path: path.to_owned(),
            offset,
            partial: Vec::new(),
        }
    }

    /// Appends the entries recorded since the last read.
    fn read_new(&mut self, into: &mut Vec<serde_json::Value>) {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let mut bytes = std::mem::take(&mut self.partial);
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            self.partial = bytes;
            return;
        }
        let read = file.read_to_end(&mut bytes).unwrap_or(0);
        self.offset += read as u64;
        // A line the receivers are still writing waits for the next read.
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(whole);
        into.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice(l).ok()),
        );
    }
}

async fn store_pool(url: &str) -> sqlx::PgPool {
    sqlx::PgPool::connect(url).await.expect("database")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    receivers(&args).await;
    let store = Store::connect(
        store::options_from_url(&args.database_url).expect("--database-url"),
        2,
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let tenant = store
        .tenant_by_name(&args.tenant)
        .await
        .expect("--tenant")
        .id;
    let policy = Policy::default();
    // What the receivers recorded before this run is not read again (a
    // whole record re-read every poll took this machine's CPU from the
    // deliveries it measures, more with every run).
    let mut record = Record::from_end(Path::new(&args.record));
    // Each update's commit time (as the writer sees its transaction end).
    let mut committed: HashMap<i64, f64> = HashMap::new();
    let writing = Instant::now();
    for k in 0..args.updates {
        if args.rate > 0.0 {
            let due = writing + Duration::from_secs_f64(k as f64 / args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let alert = bench_alert(tenant, format!("bench-{k}"));
        let (_, updates) = incidents::fire(&store, &alert, Grouping::Service, &policy)
            .await
            .expect("writing an update");
        committed.insert(updates[0].incident.incident_id, now_secs());
    }
    let write_secs = writing.elapsed().as_secs_f64();
    let expected = args.updates * 3;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut received: Vec<serde_json::Value> = Vec::new();
    while Instant::now() < deadline {
        record.read_new(&mut received);
        let ours = received
            .iter()
            .filter(|e| incident_of(e).is_some_and(|(_, i)| committed.contains_key(&i)))
            .count();
        if ours >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut by_kind: HashMap<&str, Vec<f64>> = HashMap::new();
    let (mut first, mut last) = (f64::MAX, 0f64);
    for e in &received {
        let Some((kind, incident)) = incident_of(e) else {
            continue;
        };
        let (Some(at), Some(t)) = (committed.get(&incident), e["t"].as_f64()) else {
            continue;
        };
        by_kind.entry(kind).or_default().push((t - at) * 1_000.0);
        first = first.min(t);
        last = last.max(t);
    }
    let mut all: Vec<f64> = by_kind.values().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let mut kinds = serde_json::Map::new();
    for (kind, mut ms) in by_kind {
        ms.sort_by(f64::total_cmp);
        kinds.insert(
            kind.to_owned(),
            serde_json::json!({"received": ms.len(), "p50_ms": percentile(&ms, 0.5), "p99_ms": percentile(&ms, 0.99)}),
        );
    }
    let span = (last - first).max(1e-3);
    // Attempts that failed, by error (the hanging receiver's, and any other).
    let failures: Vec<(String, i64)> = sqlx::query_as(
        "SELECT left(a.error, 120), count(*) FROM delivery_attempts a \
         JOIN tenants t ON t.tenant_id = a.tenant_id WHERE t.name = $1 AND NOT a.ok \
         GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    )
    .bind(&args.tenant)
    .fetch_all(&store_pool(&args.database_url).await)
    .await
    .expect("attempts");
    println!(
        "{}",
        serde_json::json!({
            "updates": args.updates,
            "hang": args.hang,
            "rate": args.rate,
            "expected": expected,
            "received": all.len(),
            "write_secs": write_secs,
            "p50_ms": percentile(&all, 0.5),
            "p99_ms": percentile(&all, 0.99),
            "deliveries_per_sec": all.len() as f64 / span,
            "kinds": kinds,
            "failed_attempts": failures,
        })
    );
    // The fourth receiver goes with its run (a hanging one's pending
    // deliveries with it): the next run then has one hanging receiver at
    // most, its own, not every one before it still being retried.
    if args.hang || args.fourth {
        let mut admin = AdminClient::connect(args.url.clone())
            .await
            .expect("server");
        let gone = pb::DeleteReceiverRequest {
            name: "fourth".into(),
        };
        admin
            .delete_receiver(authed(gone, &args.api_key))
            .await
            .expect("DeleteReceiver");
    }
}
