//! Realistic synthetic traffic for Pulsyon: services with their routes,
//! a status mix and log-normal latencies, deterministic for a given seed.
//! Shared by the load generator and history seeding (`seed`, the
//! `pulsyon-seed` binary).

// No panic reachable from input: errors are values (tests may unwrap; clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod seed;

use std::time::SystemTime;

use pulsyon_client::Event;

/// A small, fast, seedable random source (PCG-XSH-RR 64/32); not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        let mut rng = Rng(seed.wrapping_add(0x853c_49e6_748f_ea9b));
        rng.next_u32();
        rng
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.0;
        self.0 = old
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// A uniform value in [0, 1).
    pub fn unit(&mut self) -> f64 {
        f64::from(self.next_u32()) / 4_294_967_296.0
    }

    /// A uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// A standard normal value (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..len)
            .map(|_| HEX[(self.next_u32() & 15) as usize] as char)
            .collect()
    }
}

/// A service and the routes it serves, each with its median latency in ms.
struct Service {
    name: &'static str,
    routes: &'static [(&'static str, &'static str, f64)],
}

const SERVICES: &[Service] = &[
    Service {
        name: "checkout",
        routes: &[
            ("POST", "/api/v1/checkout", 120.0),
            ("GET", "/api/v1/checkout/{id}", 25.0),
        ],
    },
    Service {
        name: "payments",
        routes: &[
            ("POST", "/api/v1/payments", 180.0),
            ("GET", "/api/v1/payments/{id}", 20.0),
        ],
    },
    Service {
        name: "search",
        routes: &[
            ("GET", "/api/v1/search", 45.0),
            ("GET", "/api/v1/suggest", 8.0),
        ],
    },
    Service {
        name: "catalog",
        routes: &[
            ("GET", "/api/v1/products/{id}", 12.0),
            ("GET", "/api/v1/categories", 15.0),
        ],
    },
    Service {
        name: "auth",
        routes: &[
            ("POST", "/api/v1/login", 60.0),
            ("POST", "/api/v1/token/refresh", 10.0),
        ],
    },
    Service {
        name: "cart",
        routes: &[
            ("GET", "/api/v1/cart", 9.0),
            ("PUT", "/api/v1/cart/items/{id}", 18.0),
        ],
    },
    Service {
        name: "shipping",
        routes: &[
            ("GET", "/api/v1/shipping/quote", 70.0),
            ("GET", "/api/v1/shipments/{id}", 22.0),
        ],
    },
    Service {
        name: "recommendations",
        routes: &[("GET", "/api/v1/recommendations", 95.0)],
    },
];

const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "ap-south-1"];
const TIERS: &[&str] = &["free", "pro", "enterprise"];

/// How an injected fault changes the events of a service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    /// Share of requests answered with a 5xx (0 keeps the normal mix).
    pub error_rate: f64,
    /// Factor on every latency (1 keeps it).
    pub latency_factor: f64,
    /// Milliseconds added to every latency.
    pub added_latency_ms: f64,
}

impl Default for Fault {
    fn default() -> Self {
        Fault {
            error_rate: 0.0,
            latency_factor: 1.0,
            added_latency_ms: 0.0,
        }
    }
}

/// Makes events like a fleet of services would report them.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    services: usize,
}

impl Generator {
    /// A generator over the first `services` services (1 to 8), seeded with `seed`.
    pub fn new(seed: u64, services: usize) -> Generator {
        Generator {
            rng: Rng::new(seed),
            services: services.clamp(1, SERVICES.len()),
        }
    }

    /// The names of the services this generator uses.
    pub fn service_names(&self) -> Vec<&'static str> {
        SERVICES[..self.services].iter().map(|s| s.name).collect()
    }

    /// One event at `time`, with a fresh UUIDv7 id.
    pub fn event(&mut self, time: SystemTime) -> Event {
        self.event_with(time, |_| None)
    }

    /// One event at `time`, changed by the fault `fault` gives for its service.
    pub fn event_with(&mut self, time: SystemTime, fault: impl Fn(&str) -> Option<Fault>) -> Event {
        let rng = &mut self.rng;
        let service = &SERVICES[rng.below(self.services)];
        let fault = fault(service.name).unwrap_or_default();
        let (method, route, median) = service.routes[rng.below(service.routes.len())];
        let roll = rng.unit();
        let status = if fault.error_rate > 0.0 {
            if rng.unit() < fault.error_rate {
                [500, 502, 503][rng.below(3)]
            } else {
                200
            }
        } else if roll < 0.90 {
            200
        } else if roll < 0.93 {
            201
        } else if roll < 0.955 {
            404
        } else if roll < 0.975 {
            400
        } else if roll < 0.985 {
            429
        } else if roll < 0.995 {
            500
        } else {
            503
        };
        // Log-normal around the route's median, with a long tail.
        let latency = (median * (0.6 * rng.normal()).exp()).max(0.1) * fault.latency_factor
            + fault.added_latency_ms;
        let mut event = Event {
            event_id: pulsyon_client::new_event_id(),
            time: Some(prost_types::Timestamp::from(time)),
            service: service.name.into(),
            endpoint: route.into(),
            method: method.into(),
            status_code: status,
            latency_ms: (latency * 1000.0).round() / 1000.0,
            trace_id: rng.hex(32),
            request_id: rng.hex(16),
            environment: "production".into(),
            release: format!("v1.{}", rng.below(4)),
            host: format!("{}-{}", service.name, rng.below(6)),
            request_bytes: 200 + rng.below(2_000) as u64,
            response_bytes: 500 + rng.below(20_000) as u64,
            ..Default::default()
        };
        event
            .attributes
            .insert("region".into(), REGIONS[rng.below(REGIONS.len())].into());
        event
            .attributes
            .insert("tier".into(), TIERS[rng.below(TIERS.len())].into());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_traffic_shape() {
        let now = SystemTime::now();
        let mut a = Generator::new(7, 8);
        let mut b = Generator::new(7, 8);
        for _ in 0..100 {
            let (x, y) = (a.event(now), b.event(now));
            assert_eq!(
                (x.service, x.status_code, x.latency_ms),
                (y.service, y.status_code, y.latency_ms)
            );
        }
    }

    #[test]
    fn a_fault_changes_only_its_service() {
        let mut g = Generator::new(3, 2);
        let now = SystemTime::now();
        let fault = |name: &str| {
            (name == "payments").then_some(Fault {
                error_rate: 1.0,
                added_latency_ms: 1_000.0,
                ..Fault::default()
            })
        };
        let events: Vec<Event> = (0..2_000).map(|_| g.event_with(now, fault)).collect();
        for e in &events {
            if e.service == "payments" {
                assert!(e.status_code >= 500 && e.latency_ms >= 1_000.0, "{e:?}");
            } else {
                assert!(e.latency_ms < 1_000.0 || e.status_code < 500);
            }
        }
        assert!(events.iter().any(|e| e.service == "checkout"));
    }

    #[test]
    fn the_status_mix_is_mostly_success() {
        let mut g = Generator::new(1, 8);
        let now = SystemTime::now();
        let events: Vec<Event> = (0..10_000).map(|_| g.event(now)).collect();
        let errors = events.iter().filter(|e| e.status_code >= 500).count();
        let ok = events.iter().filter(|e| e.status_code < 300).count();
        assert!((50..=300).contains(&errors), "{errors}");
        assert!(ok > 9_000, "{ok}");
        assert!(
            events
                .iter()
                .all(|e| e.latency_ms > 0.0 && e.latency_ms.is_finite())
        );
    }
}
