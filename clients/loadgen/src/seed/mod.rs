//! `pulsyon-seed`: realistic history sent through a running server's ingest
//! API (the SDK), not written by SQL, so that it takes the path real events
//! take: validation, the writer, the rollups.
//!
//! Traffic follows a daily cycle (Poisson arrivals whose rate swings by 40%
//! around `--rate`), from the generator the load generator uses. Five
//! incidents are injected at known times, printed as JSON lines on stdout:
//! an error spike, a latency degradation, a slow drift (latency growing by
//! up to 1.5 s over two hours), an outage, and a broken deploy: a new service
//! (`ratings`, no history before it) failing half its requests from its
//! first minute for 20 minutes, then healthy to the end.
//!
//! `--shape varied` sends another fleet instead (`varied`): busy, quiet, fast,
//! bursty and heavy-tailed services, with the failures past the happy path.

mod args;
pub mod varied;

pub use args::{SeedArgs, Shape};

use std::{
    io::IsTerminal,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use pulsyon_client::{Client, ClientOptions, Stats};
use time::OffsetDateTime;

use crate::{Fault, Generator, Rng};

/// The file under the server's data directory where its embedded default
/// keeps its first key (the server's `config::KEY_FILE`).
const KEY_FILE: &str = "api-key";

/// The fault of an injected incident at `t`: a slow drift ramps up from
/// nothing to its full added latency over its span; the others are steady.
pub fn fault_at(i: &Injected, t: SystemTime) -> Fault {
    if i.kind != "slow_drift" {
        return i.fault;
    }
    let span = i
        .end
        .duration_since(i.start)
        .unwrap_or_default()
        .as_secs_f64();
    let done = t.duration_since(i.start).unwrap_or_default().as_secs_f64();
    let share = if span > 0.0 {
        (done / span).min(1.0)
    } else {
        1.0
    };
    Fault {
        latency_factor: 1.0 + (i.fault.latency_factor - 1.0) * share,
        added_latency_ms: i.fault.added_latency_ms * share,
        ..i.fault
    }
}

/// An incident injected into the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    /// `error_spike`, `latency_degradation`, `slow_drift`, `outage` or `broken_deploy`.
    pub kind: &'static str,
    /// The service it hits.
    pub service: &'static str,
    /// Onset.
    pub start: SystemTime,
    /// End (exclusive).
    pub end: SystemTime,
    /// What it does to the service's events.
    pub fault: Fault,
}

/// A time in RFC 3339.
fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Where the seed's events come from: the arrival rate at a time, the events
/// of one arrival, and the injected incidents as JSON lines.
pub trait Source {
    /// Events a second at `t`.
    fn rate(&self, t: SystemTime) -> f64;
    /// The events of one arrival at `t` (none when a failure swallowed it).
    fn events_at(&mut self, t: SystemTime) -> Vec<pulsyon_client::Event>;
    /// The injected incidents, one JSON object each.
    fn injected(&self) -> Vec<String>;
}

impl Injected {
    fn json(&self) -> String {
        let rfc = rfc3339;
        format!(
            "{{\"kind\":\"{}\",\"service\":\"{}\",\"start\":\"{}\",\"end\":\"{}\",\"error_rate\":{},\"latency_factor\":{},\"added_latency_ms\":{}}}",
            self.kind,
            self.service,
            rfc(self.start),
            rfc(self.end),
            self.fault.error_rate,
            self.fault.latency_factor,
            self.fault.added_latency_ms
        )
    }
}

fn at_minute(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs / 60 * 60)
}

/// The service a broken deploy brings: new, so it has no baseline.
pub const NEW_SERVICE: &str = "ratings";

/// The incidents of a history of `span` ending at `end`, over `services`:
/// at 1/4, 1/2, 3/5 and 3/4 of the span, each on its own service when there
/// are enough; at 9/10 the new service's broken deploy.
pub fn schedule(end: SystemTime, span: Duration, services: &[&'static str]) -> Vec<Injected> {
    let start = end - span;
    let pick = |i: usize| services[i % services.len()];
    let at = |share: f64| at_minute(start + span.mul_f64(share));
    let minutes = |m: u64| Duration::from_secs(m * 60);
    vec![
        Injected {
            kind: "error_spike",
            service: pick(1),
            start: at(0.25),
            end: at(0.25) + minutes(20),
            fault: Fault {
                error_rate: 0.35,
                ..Fault::default()
            },
        },
        Injected {
            kind: "latency_degradation",
            service: pick(2),
            start: at(0.5),
            end: at(0.5) + minutes(30),
            fault: Fault {
                latency_factor: 6.0,
                added_latency_ms: 400.0,
                ..Fault::default()
            },
        },
        Injected {
            kind: "slow_drift",
            service: pick(3),
            start: at(0.6),
            end: at(0.6) + minutes(120),
            fault: Fault {
                added_latency_ms: 1_500.0,
                ..Fault::default()
            },
        },
        Injected {
            kind: "outage",
            service: pick(0),
            start: at(0.75),
            end: at(0.75) + minutes(15),
            fault: Fault {
                error_rate: 1.0,
                ..Fault::default()
            },
        },
        Injected {
            kind: "broken_deploy",
            service: NEW_SERVICE,
            start: at(0.9),
            end: at(0.9) + minutes(20),
            fault: Fault {
                error_rate: 0.5,
                ..Fault::default()
            },
        },
    ]
}

/// The classic fleet: the load generator's services, evenly loaded, with
/// the five incidents of [`schedule`].
struct Classic {
    generator: Generator,
    incidents: Vec<Injected>,
    rate: f64,
    services: usize,
    arrivals: Rng,
}

impl Source for Classic {
    fn rate(&self, t: SystemTime) -> f64 {
        self.rate * daily_factor(t)
    }

    fn events_at(&mut self, t: SystemTime) -> Vec<pulsyon_client::Event> {
        let incidents = &self.incidents;
        let fault = |service: &str| {
            incidents
                .iter()
                .find(|i| i.service == service && i.start <= t && t < i.end)
                .map(|i| fault_at(i, t))
        };
        let mut events = vec![self.generator.event_with(t, fault)];
        // After its deploy the new service gets a share like any other's.
        let deploy = incidents.iter().find(|i| i.kind == "broken_deploy");
        if let Some(d) = deploy.filter(|d| d.start <= t)
            && self.arrivals.below(self.services.max(1)) == 0
        {
            let fault = if t < d.end { d.fault } else { Fault::default() };
            let mut event = self.generator.event_with(t, |_| Some(fault));
            event.service = d.service.into();
            event.endpoint = "/api/v1/ratings".into();
            event.method = "GET".into();
            event.host = format!("{}-0", d.service);
            events.push(event);
        }
        events
    }

    fn injected(&self) -> Vec<String> {
        self.incidents.iter().map(Injected::json).collect()
    }
}

/// The daily cycle: a factor on the average rate, 0.6 to 1.4, highest mid-afternoon UTC.
pub fn daily_factor(t: SystemTime) -> f64 {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let day = (secs % 86_400.0) / 86_400.0;
    1.0 + 0.4 * (2.0 * std::f64::consts::PI * (day - 0.375)).sin()
}

fn total(clients: &[Arc<Client>]) -> Stats {
    clients.iter().map(|c| c.stats()).sum()
}

/// A text progress bar: `[#####-----]  50%  1,234 events  5,678/s`.
fn bar(share: f64, events: u64, rate: f64) -> String {
    const WIDTH: usize = 30;
    let filled = ((share.clamp(0.0, 1.0)) * WIDTH as f64) as usize;
    format!(
        "[{}{}] {:>3.0}%  {events} events  {rate:.0}/s",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        share * 100.0
    )
}

fn api_key(args: &SeedArgs) -> anyhow::Result<String> {
    if let Some(key) = &args.api_key {
        return Ok(key.clone());
    }
    let path = args.data_dir.join(KEY_FILE);
    let key = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no --api-key given and cannot read {}; pass --api-key or PULSYON_API_KEY",
            path.display()
        )
    })?;
    Ok(key.trim().to_owned())
}

/// Runs `pulsyon-seed`.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let key = api_key(&args)?;
    let end = SystemTime::now();
    let span = Duration::from_secs_f64(args.days * 86_400.0);
    let start = end - span;
    let generator = Generator::new(args.seed, args.services);
    let incidents = if args.incidents && args.shape == Shape::Classic {
        schedule(end, span, &generator.service_names())
    } else {
        Vec::new()
    };
    let mut clients = Vec::new();
    for _ in 0..args.streams {
        let options = ClientOptions {
            batch_size: args.batch_size,
            linger: Duration::from_millis(50),
            ..Default::default()
        };
        let client = Client::connect_with(&args.url, &key, options)
            .await
            .with_context(|| format!("connecting to {}", args.url))?;
        clients.push(Arc::new(client));
    }
    let tty = std::io::stderr().is_terminal();
    let expected = args.rate * span.as_secs_f64();
    let services = match args.shape {
        Shape::Classic => args.services,
        Shape::Varied => varied::service_names().len(),
    };
    eprintln!(
        "seeding {} days of {services} services at {} events/s on average (about {expected:.0} events) into {}",
        args.days, args.rate, args.url
    );

    let mut arrivals = Rng::new(args.seed ^ 0x5eed);
    let mut source: Box<dyn Source> = match args.shape {
        Shape::Classic => Box::new(Classic {
            generator,
            incidents,
            rate: args.rate,
            services: args.services,
            arrivals: Rng::new(args.seed ^ 0xc1a5),
        }),
        Shape::Varied => Box::new(varied::Varied::new(
            args.seed,
            args.rate,
            end,
            span,
            args.incidents,
        )),
    };
    let mut t = start;
    let mut generated: u64 = 0;
    let started = Instant::now();
    let mut last_report = Instant::now();
    while t < end {
        for event in source.events_at(t) {
            let client = &clients[generated as usize % clients.len()];
            if client.send(event).await.is_err() {
                let why = client
                    .last_error()
                    .map(|s| s.message().to_owned())
                    .unwrap_or_else(|| "the stream closed".into());
                anyhow::bail!("sending failed: {why}");
            }
            generated += 1;
        }
        // Exponential gaps at the rate of the moment: Poisson arrivals.
        let gap = -(1.0 - arrivals.unit()).ln() / source.rate(t);
        t += Duration::from_secs_f64(gap);
        if last_report.elapsed() >= Duration::from_millis(if tty { 250 } else { 5_000 }) {
            last_report = Instant::now();
            let share =
                (t.duration_since(start).unwrap_or_default().as_secs_f64()) / span.as_secs_f64();
            let line = bar(
                share,
                generated,
                generated as f64 / started.elapsed().as_secs_f64(),
            );
            if tty {
                eprint!("\r{line}");
            } else {
                eprintln!("{line}");
            }
        }
    }
    for client in &clients {
        let _ = client.close().await;
    }
    let stats = total(&clients);
    let seconds = started.elapsed().as_secs_f64();
    if tty {
        eprintln!("\r{}", bar(1.0, generated, generated as f64 / seconds));
    }
    eprintln!(
        "done: {generated} generated, {} stored, {} rejected, {} dropped in {seconds:.1}s ({:.0} events/s)",
        stats.acked,
        stats.rejected,
        stats.dropped,
        stats.acked as f64 / seconds
    );
    for line in source.injected() {
        println!("{line}");
    }
    if stats.acked + stats.rejected < generated || stats.dropped > 0 {
        anyhow::bail!(
            "{} of {generated} events were not stored",
            generated - stats.acked
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_fall_inside_the_history_on_distinct_services() {
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let span = Duration::from_secs(7 * 86_400);
        let plan = schedule(end, span, &["a", "b", "c", "d"]);
        let services: Vec<&str> = plan.iter().map(|i| i.service).collect();
        assert_eq!(services, ["b", "c", "d", "a", NEW_SERVICE]);
        for i in &plan {
            assert!(end - span < i.start && i.end < end && i.start < i.end);
            assert_eq!(at_minute(i.start), i.start);
        }
        assert!(
            plan[0]
                .json()
                .starts_with("{\"kind\":\"error_spike\",\"service\":\"b\"")
        );
    }

    #[test]
    fn a_slow_drift_ramps_up() {
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let drift = schedule(end, Duration::from_secs(86_400), &["a", "b", "c", "d"])
            .into_iter()
            .find(|i| i.kind == "slow_drift")
            .unwrap();
        let half = drift.start + drift.end.duration_since(drift.start).unwrap() / 2;
        assert_eq!(fault_at(&drift, drift.start).added_latency_ms, 0.0);
        assert_eq!(fault_at(&drift, half).added_latency_ms, 750.0);
        assert_eq!(fault_at(&drift, drift.end).added_latency_ms, 1_500.0);
    }

    #[test]
    fn the_daily_cycle_averages_to_one() {
        let day: f64 = (0..1_440)
            .map(|m| daily_factor(SystemTime::UNIX_EPOCH + Duration::from_secs(m * 60)))
            .sum::<f64>()
            / 1_440.0;
        assert!((day - 1.0).abs() < 1e-9, "{day}");
        assert!(bar(0.5, 10, 2.0).starts_with("[###############---------------]  50%"));
    }
}
