//! `pulsyon-seed --shape varied`: traffic whose shapes the classic seed does
//! not make, with the failures past the happy path injected at known times.
//!
//! Nine services of different kinds: a busy storefront with twelve endpoints
//! (one of them carrying 3% of its traffic), a quiet ledger (4 requests a
//! minute), a fast edge cache (p95 about 60 ms), steady order and inventory
//! services, a bursty feed (3x spikes of a minute or two), heavy-tailed media
//! and accounts services with 4xx noise, and a quiet bursty notifier. Every
//! rate follows the daily cycle. Background 5xx of 0.5 to 1.5%.
//!
//! Injected (each printed as a JSON line with its onset, end, the moment it
//! became clearly abnormal and the delay it must be found within):
//! - `hidden_endpoint`: the storefront's gift-card endpoint fails 90% of its
//!   requests for 20 minutes (the service's error rate barely moves);
//! - `quiet_down`: the ledger answers only 5xx for 20 minutes;
//! - `relative_latency`: the edge cache four times slower for 20 minutes
//!   (p95 about 240 ms, under the 500 ms threshold);
//! - `ramp`: the orders service's 5xx share climbs from its background to 20%
//!   over 30 minutes, then stays 10 minutes; clearly abnormal once it is twice
//!   the error-rate threshold (10%);
//! - `traffic_drop`: the inventory service down to 3% of its traffic for 20 minutes.
//!
//! The noisy services (feed, media, accounts, notifier) get nothing: any
//! incident on them is a false one.

use std::time::{Duration, SystemTime};

use crate::Rng;
use pulsyon_client::Event;

use super::{Source, at_minute, daily_factor, rfc3339};

/// One endpoint: method, route, share of its service's traffic, median latency (ms).
type Route = (&'static str, &'static str, f64, f64);

/// A kind of service.
struct Profile {
    name: &'static str,
    /// Requests a minute on average (before the daily cycle and bursts).
    rpm: f64,
    routes: &'static [Route],
    /// Spread of the log-normal latency.
    sigma: f64,
    /// Share of requests in a heavy (Pareto) tail.
    tail: f64,
    /// Background 5xx share.
    errors: f64,
    /// 4xx share.
    client_errors: f64,
    /// Whether it has traffic spikes.
    bursty: bool,
}

const GIFT_CARDS: &str = "/api/v2/gift-cards/{id}";

const FLEET: &[Profile] = &[
    Profile {
        name: "storefront",
        rpm: 300.0,
        routes: &[
            ("GET", "/", 0.20, 35.0),
            ("GET", "/api/v2/products/{id}", 0.18, 25.0),
            ("GET", "/api/v2/products", 0.12, 60.0),
            ("GET", "/api/v2/search", 0.10, 80.0),
            ("GET", "/api/v2/cart", 0.09, 20.0),
            ("POST", "/api/v2/cart/items", 0.07, 30.0),
            ("GET", "/api/v2/reviews/{id}", 0.06, 40.0),
            ("GET", "/api/v2/categories", 0.05, 15.0),
            ("POST", "/api/v2/checkout", 0.04, 150.0),
            ("GET", "/api/v2/account", 0.03, 30.0),
            ("GET", GIFT_CARDS, 0.03, 45.0),
            ("GET", "/api/v2/stores/{id}", 0.03, 25.0),
        ],
        sigma: 0.55,
        tail: 0.005,
        errors: 0.008,
        client_errors: 0.04,
        bursty: false,
    },
    Profile {
        name: "ledger",
        rpm: 4.0,
        routes: &[
            ("POST", "/v1/entries", 0.7, 90.0),
            ("GET", "/v1/balances/{account}", 0.3, 30.0),
        ],
        sigma: 0.4,
        tail: 0.0,
        errors: 0.01,
        client_errors: 0.02,
        bursty: false,
    },
    Profile {
        name: "edge-cache",
        rpm: 100.0,
        routes: &[("GET", "/cache/{key}", 1.0, 25.0)],
        sigma: 0.5,
        tail: 0.0,
        errors: 0.005,
        client_errors: 0.01,
        bursty: false,
    },
    Profile {
        name: "orders",
        rpm: 120.0,
        routes: &[
            ("POST", "/orders", 0.4, 110.0),
            ("GET", "/orders/{id}", 0.6, 30.0),
        ],
        sigma: 0.5,
        tail: 0.002,
        errors: 0.012,
        client_errors: 0.03,
        bursty: false,
    },
    Profile {
        name: "inventory",
        rpm: 90.0,
        routes: &[
            ("GET", "/stock/{sku}", 0.8, 12.0),
            ("PUT", "/stock/{sku}", 0.2, 35.0),
        ],
        sigma: 0.45,
        tail: 0.0,
        errors: 0.006,
        client_errors: 0.02,
        bursty: false,
    },
    Profile {
        name: "feed",
        rpm: 80.0,
        routes: &[
            ("GET", "/feed", 0.7, 120.0),
            ("GET", "/feed/{id}", 0.3, 40.0),
        ],
        sigma: 0.7,
        tail: 0.01,
        errors: 0.01,
        client_errors: 0.08,
        bursty: true,
    },
    Profile {
        name: "media",
        rpm: 60.0,
        routes: &[
            ("GET", "/media/{id}", 0.8, 70.0),
            ("POST", "/media", 0.2, 400.0),
        ],
        sigma: 0.8,
        tail: 0.03,
        errors: 0.015,
        client_errors: 0.05,
        bursty: false,
    },
    Profile {
        name: "accounts",
        rpm: 40.0,
        routes: &[("POST", "/login", 0.5, 150.0), ("GET", "/me", 0.5, 20.0)],
        sigma: 0.6,
        tail: 0.02,
        errors: 0.01,
        client_errors: 0.12,
        bursty: false,
    },
    Profile {
        name: "notifier",
        rpm: 10.0,
        routes: &[("POST", "/notify", 1.0, 60.0)],
        sigma: 0.6,
        tail: 0.01,
        errors: 0.01,
        client_errors: 0.03,
        bursty: true,
    },
];

/// Requests a second of the whole fleet on average: `--rate` scales every
/// service by `rate / NATURAL_RATE`.
pub fn natural_rate() -> f64 {
    FLEET.iter().map(|p| p.rpm).sum::<f64>() / 60.0
}

/// Names of the fleet's services.
pub fn service_names() -> Vec<&'static str> {
    FLEET.iter().map(|p| p.name).collect()
}

/// A failure injected into the varied history.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// `hidden_endpoint`, `quiet_down`, `relative_latency`, `ramp` or `traffic_drop`.
    pub kind: &'static str,
    /// Index of the service in the fleet.
    service: usize,
    /// The endpoint it hits, when one.
    pub endpoint: Option<&'static str>,
    /// Onset.
    pub start: SystemTime,
    /// End (exclusive).
    pub end: SystemTime,
    /// When the failure became clearly abnormal (the onset, but for a ramp).
    pub abnormal_at: SystemTime,
    /// How soon after `abnormal_at` it must be found.
    pub bound: Duration,
}

impl Injection {
    /// The service's name.
    pub fn service(&self) -> &'static str {
        FLEET[self.service].name
    }

    fn json(&self) -> String {
        serde_json::json!({
            "kind": self.kind,
            "service": self.service(),
            "endpoint": self.endpoint,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
            "abnormal_at": rfc3339(self.abnormal_at),
            "bound_secs": self.bound.as_secs(),
        })
        .to_string()
    }

    /// The 5xx share the failure gives a request of `route` at `t`, if it changes it.
    fn error_share(&self, t: SystemTime, route: &str, background: f64) -> Option<f64> {
        match self.kind {
            "hidden_endpoint" if Some(route) == self.endpoint => Some(0.9),
            "quiet_down" => Some(1.0),
            "ramp" => {
                let done = t
                    .duration_since(self.start)
                    .unwrap_or_default()
                    .as_secs_f64();
                Some(background + (RAMP_TOP - background) * (done / RAMP.as_secs_f64()).min(1.0))
            }
            _ => None,
        }
    }
}

/// The ramp climbs to this 5xx share over [`RAMP`].
const RAMP_TOP: f64 = 0.20;
const RAMP: Duration = Duration::from_secs(30 * 60);
/// The share from which a ramp is clearly abnormal: twice the error-rate threshold.
const RAMP_ABNORMAL: f64 = 0.10;

fn index(name: &str) -> usize {
    FLEET.iter().position(|p| p.name == name).unwrap_or(0)
}

/// The failures of a history of `span` ending at `end`: at 1/5, 3/10, 9/20,
/// 3/5 and 3/4 of the span, moved by up to an hour by the seed (so that two
/// seeds meet them at other points of the daily cycle).
pub fn schedule(end: SystemTime, span: Duration, seed: u64) -> Vec<Injection> {
    let start = end - span;
    let mut rng = Rng::new(seed ^ 0x1e55_0f1a);
    let mut at = |share: f64| {
        let jitter = Duration::from_secs(rng.below(3_600) as u64);
        at_minute(start + span.mul_f64(share) + jitter)
    };
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let plain = |kind, service: &str, endpoint, start: SystemTime, bound| Injection {
        kind,
        service: index(service),
        endpoint,
        start,
        end: start + minutes(20),
        abnormal_at: start,
        bound,
    };
    let ramp_start = at(0.6);
    let orders = &FLEET[index("orders")];
    let abnormal = RAMP.mul_f64((RAMP_ABNORMAL - orders.errors) / (RAMP_TOP - orders.errors));
    vec![
        plain(
            "hidden_endpoint",
            "storefront",
            Some(GIFT_CARDS),
            at(0.2),
            Duration::from_secs(60),
        ),
        plain("quiet_down", "ledger", None, at(0.3), minutes(5)),
        plain(
            "relative_latency",
            "edge-cache",
            None,
            at(0.45),
            Duration::from_secs(60),
        ),
        Injection {
            kind: "ramp",
            service: index("orders"),
            endpoint: None,
            start: ramp_start,
            end: ramp_start + minutes(40),
            abnormal_at: ramp_start + abnormal,
            bound: Duration::from_secs(60),
        },
        plain(
            "traffic_drop",
            "inventory",
            None,
            at(0.75),
            Duration::from_secs(60),
        ),
    ]
}

/// The varied traffic, as a [`Source`] for the seed's sending loop.
pub struct Varied {
    rng: Rng,
    scale: f64,
    injections: Vec<Injection>,
    /// Per service: its spikes (start, end), sorted.
    bursts: Vec<Vec<(SystemTime, SystemTime)>>,
}

impl Varied {
    /// The traffic of [end - span, end) at `rate` events/s on average, seeded.
    pub fn new(seed: u64, rate: f64, end: SystemTime, span: Duration, incidents: bool) -> Varied {
        let mut rng = Rng::new(seed);
        let start = end - span;
        // A spike of 1 to 2 minutes at three times the rate, every 90 minutes
        // on average, for the bursty services.
        let bursts = FLEET
            .iter()
            .map(|p| {
                let mut spikes = Vec::new();
                if p.bursty {
                    let mut t = start;
                    loop {
                        let gap = -(1.0 - rng.unit()).ln() * 90.0 * 60.0;
                        t += Duration::from_secs_f64(gap);
                        if t >= end {
                            break;
                        }
                        let length = Duration::from_secs(60 + rng.below(61) as u64);
                        spikes.push((t, t + length));
                        t += length;
                    }
                }
                spikes
            })
            .collect();
        Varied {
            rng,
            scale: rate / natural_rate(),
            injections: if incidents {
                schedule(end, span, seed)
            } else {
                Vec::new()
            },
            bursts,
        }
    }

    /// The injected failures.
    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    /// Requests a second of service `i` at `t`.
    fn service_rate(&self, i: usize, t: SystemTime) -> f64 {
        let spike = self.bursts[i]
            .iter()
            .any(|(from, to)| *from <= t && t < *to);
        FLEET[i].rpm / 60.0 * self.scale * daily_factor(t) * if spike { 3.0 } else { 1.0 }
    }

    fn active(&self, service: usize, t: SystemTime) -> impl Iterator<Item = &Injection> {
        self.injections
            .iter()
            .filter(move |i| i.service == service && i.start <= t && t < i.end)
    }

    fn event(&mut self, i: usize, t: SystemTime) -> Option<Event> {
        let p = &FLEET[i];
        let rng = &mut self.rng;
        // The route, by its share.
        let mut pick = rng.unit();
        let route = p
            .routes
            .iter()
            .find(|r| {
                pick -= r.2;
                pick < 0.0
            })
            .unwrap_or(&p.routes[p.routes.len() - 1]);
        let (method, path, _, median) = *route;
        let mut error_share = p.errors;
        let mut latency_factor = 1.0;
        let active: Vec<Injection> = self.active(i, t).cloned().collect();
        let rng = &mut self.rng;
        for inj in &active {
            match inj.kind {
                "traffic_drop" if rng.unit() >= 0.03 => return None,
                "relative_latency" => latency_factor = 4.0,
                _ => {
                    if let Some(share) = inj.error_share(t, path, p.errors) {
                        error_share = share;
                    }
                }
            }
        }
        let roll = rng.unit();
        let status = if roll < error_share {
            [500, 502, 503][rng.below(3)]
        } else if roll < error_share + p.client_errors {
            [400, 404, 409, 429][rng.below(4)]
        } else if method == "POST" {
            201
        } else {
            200
        };
        let mut latency = median * (p.sigma * rng.normal()).exp();
        if p.tail > 0.0 && rng.unit() < p.tail {
            // Pareto (alpha 1.5) from 5 times the median, capped at 50 times.
            let u = rng.unit().max(1e-9);
            latency *= (5.0 * u.powf(-1.0 / 1.5)).min(50.0);
        }
        let latency = (latency.max(0.1) * latency_factor * 1000.0).round() / 1000.0;
        Some(Event {
            event_id: pulsyon_client::new_event_id(),
            time: Some(prost_types::Timestamp::from(t)),
            service: p.name.into(),
            endpoint: path.into(),
            method: method.into(),
            status_code: status,
            latency_ms: latency,
            environment: "production".into(),
            host: format!("{}-{}", p.name, rng.below(4)),
            ..Default::default()
        })
    }
}

impl Source for Varied {
    fn rate(&self, t: SystemTime) -> f64 {
        (0..FLEET.len()).map(|i| self.service_rate(i, t)).sum()
    }

    fn events_at(&mut self, t: SystemTime) -> Vec<Event> {
        // The service of this arrival, by its share of the rate now.
        let rates: Vec<f64> = (0..FLEET.len()).map(|i| self.service_rate(i, t)).collect();
        let mut pick = self.rng.unit() * rates.iter().sum::<f64>();
        let i = rates
            .iter()
            .position(|r| {
                pick -= r;
                pick < 0.0
            })
            .unwrap_or(FLEET.len() - 1);
        self.event(i, t).into_iter().collect()
    }

    fn injected(&self) -> Vec<String> {
        self.injections.iter().map(Injection::json).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> (SystemTime, Duration) {
        (
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            Duration::from_secs(3 * 86_400),
        )
    }

    #[test]
    fn the_failures_fall_inside_the_history_and_two_seeds_place_them_apart() {
        let (end, span) = history();
        let a = schedule(end, span, 1);
        let b = schedule(end, span, 2);
        assert_eq!(
            a.iter().map(|i| i.kind).collect::<Vec<_>>(),
            [
                "hidden_endpoint",
                "quiet_down",
                "relative_latency",
                "ramp",
                "traffic_drop"
            ]
        );
        for i in &a {
            assert!(end - span + Duration::from_secs(3 * 3_600) < i.start && i.end < end);
            assert!(i.start <= i.abnormal_at && i.abnormal_at < i.end);
        }
        assert_ne!(a[0].start, b[0].start);
        // The ramp is clearly abnormal (10%) about 15 minutes in.
        let ramp = &a[3];
        let late = ramp
            .abnormal_at
            .duration_since(ramp.start)
            .unwrap()
            .as_secs();
        assert!((14 * 60..17 * 60).contains(&late), "{late}");
    }

    #[test]
    fn each_failure_changes_what_it_should_and_nothing_else() {
        let (end, span) = history();
        let mut v = Varied::new(7, natural_rate(), end, span, true);
        let inj = v.injections().to_vec();
        let count = |v: &mut Varied, service: &str, t: SystemTime, n: usize| {
            let i = index(service);
            (0..n).filter_map(|_| v.event(i, t)).collect::<Vec<_>>()
        };
        // The hidden endpoint fails; the storefront's other endpoints do not.
        let events = count(&mut v, "storefront", inj[0].start, 20_000);
        let share = |f: &dyn Fn(&Event) -> bool| {
            let of: Vec<_> = events.iter().filter(|e| f(e)).collect();
            of.iter().filter(|e| e.status_code >= 500).count() as f64 / of.len() as f64
        };
        assert!(share(&|e| e.endpoint == GIFT_CARDS) > 0.8);
        assert!(share(&|e| e.endpoint != GIFT_CARDS) < 0.02);
        assert!(share(&|_| true) < 0.05, "the service's rate barely moves");
        // The quiet ledger fails every request.
        assert!(
            count(&mut v, "ledger", inj[1].start, 100)
                .iter()
                .all(|e| e.status_code >= 500)
        );
        // The drop keeps about 3%.
        let kept = count(&mut v, "inventory", inj[4].start, 10_000).len();
        assert!((200..400).contains(&kept), "{kept}");
        // Before the failures, the same services are healthy.
        let before = inj[0].start - Duration::from_secs(3_600);
        assert!(count(&mut v, "inventory", before, 1_000).len() == 1_000);
        let fast: Vec<f64> = count(&mut v, "edge-cache", before, 5_000)
            .iter()
            .map(|e| e.latency_ms)
            .collect();
        let slow: Vec<f64> = count(&mut v, "edge-cache", inj[2].start, 5_000)
            .iter()
            .map(|e| e.latency_ms)
            .collect();
        let p95 = |mut xs: Vec<f64>| {
            xs.sort_by(f64::total_cmp);
            xs[xs.len() * 95 / 100]
        };
        let (fast, slow) = (p95(fast), p95(slow));
        assert!((45.0..80.0).contains(&fast), "{fast}");
        assert!((170.0..320.0).contains(&slow) && slow < 500.0, "{slow}");
    }

    #[test]
    fn bursty_services_spike_and_the_fleet_keeps_its_average() {
        let (end, span) = history();
        let v = Varied::new(3, natural_rate(), end, span, false);
        let feed = index("feed");
        assert!(v.bursts[feed].len() > 20, "{}", v.bursts[feed].len());
        assert!(v.bursts[index("orders")].is_empty());
        let (from, _) = v.bursts[feed][0];
        let inside = v.service_rate(feed, from);
        let outside = v.service_rate(feed, from - Duration::from_secs(1));
        assert!((inside / outside - 3.0).abs() < 0.01);
        assert!(v.injected().is_empty());
    }
}
