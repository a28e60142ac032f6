//! What the benchmark clients share: percentiles, a process's memory and
//! CPU from /proc, and the incident updates they write and wait for.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use pulsyon::{
    domain::{
        TenantId,
        incident::{Alert, Grouping},
        rules::{Kind, Severity},
    },
    incidents::{self, lifecycle::Policy},
    store::{self, Store},
};

/// The `q` quantile of sorted values (nearest rank; 0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Resident memory of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time the process has used (user and system), in milliseconds.
/// /proc counts it in USER_HZ, which Linux fixes at 100 a second.
pub fn cpu_ms(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces): utime is
            // the 14th field of the line, stime the 15th.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) * 10.0)
        })
        .unwrap_or(0.0)
}

/// A firing error-rate alert of `service`, stamped now.
pub fn bench_alert(tenant_id: TenantId, service: String) -> Alert {
    Alert {
        alert_id: 0,
        tenant_id,
        incident_id: None,
        service,
        endpoint: String::new(),
        kind: Kind::ErrorRate,
        severity: Severity::Warning,
        observed: 0.3,
        baseline: 0.01,
        no_baseline: false,
        threshold: 0.05,
        window_secs: 90,
        fired_at: time::OffsetDateTime::now_utc(),
        cleared_at: None,
        detail: String::new(),
    }
}

/// What writing the updates cost.
pub struct Written {
    /// Server CPU per update over the updates, their fan-out and the waits between.
    pub server_cpu_ms_per_update: f64,
    /// Each update's transaction, stamp to commit, in ms.
    pub commit_ms: Vec<f64>,
}

/// Writes `updates` incident updates of `tenant` one a second, as the
/// detector fires alerts (each into its service `bench-<k>`, stamped before
/// its transaction), after one of `warmup_tenant` that warms the
/// connection; then waits (30 s at most) until `received` reaches `expected`.
pub async fn write_updates(
    database_url: &str,
    (tenant, warmup_tenant): (&str, &str),
    updates: usize,
    pid: u32,
    (received, expected): (&AtomicUsize, usize),
) -> Written {
    let store = Store::connect(
        store::options_from_url(database_url).expect("--database-url"),
        2,
        Duration::from_secs(10),
    )
    .await
    .expect("database");
    let tenant = store.tenant_by_name(tenant).await.expect("--tenant").id;
    let warmup = store
        .tenant_by_name(warmup_tenant)
        .await
        .expect("--warmup-tenant")
        .id;
    // As the detector fires one: into its service's incident, default lifecycle.
    let policy = Policy::default();
    incidents::fire(
        &store,
        &bench_alert(warmup, "warmup".into()),
        Grouping::Service,
        &policy,
    )
    .await
    .expect("writing the warm-up update");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = cpu_ms(pid);
    let mut commit_ms = Vec::with_capacity(updates);
    for k in 0..updates {
        let alert = bench_alert(tenant, format!("bench-{k}"));
        let writing = Instant::now();
        incidents::fire(&store, &alert, Grouping::Service, &policy)
            .await
            .expect("writing an update");
        commit_ms.push(writing.elapsed().as_secs_f64() * 1_000.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Written {
        server_cpu_ms_per_update: (cpu_ms(pid) - cpu_before) / updates.max(1) as f64,
        commit_ms,
    }
}
