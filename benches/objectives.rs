//! The cost of the objectives' evaluation (the detector leader's pass over
//! every objective, `detect::objectives::Burning::evaluate`) at `--services`
//! services, each with one availability objective over 30 days, against a
//! scratch database holding a full period of rollups for each: 720 hour rows
//! and 360 minute rows per service, written here (healthy traffic: no alert
//! fires, so the figure is the reading alone). Prints one JSON line:
//! milliseconds of wall time per evaluation (the process and PostgreSQL
//! together, on this machine), this process's CPU per evaluation, and the
//! share of a core each makes at the default 30 s interval.
//! `scripts/bench-objectives.sh` runs it and writes docs/perf/objectives.md.
//!
//!   cargo bench --bench objectives -- --database-url URL --tenant NAME [--services N] [--runs N]

use std::time::{Duration, Instant};

use clap::Parser;
use pulsyon::{
    detect::objectives::Burning,
    domain::objective::{Objective, ObjectiveKind},
    incidents::lifecycle::Policy,
    stats::histogram::Histogram,
    store::{self, Store},
};
use time::OffsetDateTime;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    /// A tenant of that database, without data.
    #[arg(long)]
    tenant: String,
    #[arg(long, default_value_t = 1_000)]
    services: usize,
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

/// This process's CPU time (user and system).
fn cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

/// Rollup rows of every service: `count` healthy requests per step.
async fn rollups(pool: &sqlx::PgPool, tenant: i64, services: usize, now: OffsetDateTime) {
    let mut histogram = Histogram::new();
    histogram.record_n(40.0, 540);
    histogram.record_n(120.0, 60);
    let bytes = histogram.encode();
    for (table, step, steps, count) in [
        ("service_minute", 60i64, 360i64, 600i64),
        ("service_hourly", 3_600, 720, 36_000),
    ] {
        let last = pulsyon::stats::floor(now, step);
        for s in 0..services {
            let sql = format!(
                "INSERT INTO {table} (tenant_id, service, bucket, count, status_2xx, status_4xx, status_5xx, \
                   latency_sum, latency_min, latency_max, latency_p95, histogram) \
                 SELECT $1, $2, $3 - make_interval(secs => g * $4), $5, $5, 0, 0, $5 * 50.0, 40, 120, 120, $6 \
                 FROM generate_series(0, $7 - 1) g ON CONFLICT DO NOTHING"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(format!("service-{s}"))
                .bind(last)
                .bind(step as f64)
                .bind(count)
                .bind(&bytes)
                .bind(steps)
                .execute(pool)
                .await
                .expect("rollup rows");
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let store = Store::connect(
        store::options_from_url(&args.database_url).expect("--database-url"),
        4,
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let pool = sqlx::PgPool::connect(&args.database_url)
        .await
        .expect("database");
    let tenant = store
        .tenant_by_name(&args.tenant)
        .await
        .expect("--tenant")
        .id;
    let now = OffsetDateTime::now_utc();
    let writing = Instant::now();
    rollups(&pool, tenant.0, args.services, now).await;
    for s in 0..args.services {
        store
            .set_objective(&Objective {
                objective_id: 0,
                tenant_id: tenant,
                service: format!("service-{s}"),
                endpoint: String::new(),
                kind: ObjectiveKind::Availability,
                target_percent: 99.9,
                period_days: 30,
                count_4xx: false,
                latency_threshold_ms: 0.0,
                created_at: now,
            })
            .await
            .expect("objective");
    }
    sqlx::query("VACUUM ANALYZE")
        .execute(&pool)
        .await
        .expect("vacuum");
    let setup_secs = writing.elapsed().as_secs_f64();
    let policy = Policy::default();
    let mut burning = Burning::default();
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    // The first pass warms PostgreSQL's caches and the statement cache.
    for run in 0..=args.runs {
        let (started, cpu_before) = (Instant::now(), cpu());
        let done = burning
            .evaluate(&store, &policy, OffsetDateTime::now_utc())
            .await
            .expect("evaluation");
        assert!(done.fired.is_empty(), "healthy traffic fires nothing");
        if run > 0 {
            walls.push(started.elapsed().as_secs_f64() * 1e3);
            cpus.push((cpu() - cpu_before).as_secs_f64() * 1e3);
        }
    }
    let median = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let (wall, own) = (median(walls), median(cpus));
    let interval_ms = 30_000.0;
    println!(
        "{}",
        serde_json::json!({
            "services": args.services,
            "objectives": args.services,
            "runs": args.runs,
            "setup_secs": setup_secs,
            "wall_ms_per_evaluation": wall,
            "wall_ms_per_objective": wall / args.services as f64,
            "process_cpu_ms_per_evaluation": own,
            "core_share_wall_at_30s": wall / interval_ms,
            "core_share_process_at_30s": own / interval_ms,
        })
    );
}
