//! Per-tenant limits: what they are (defaults merged with a tenant's
//! overrides), the rate check (GCRA, the same arithmetic the Redis script of
//! `crate::redis` runs), concurrent ingest streams, and the cardinality of
//! services and endpoints with its overflow bucket.
//!
//! In-process state, reaching out only through seams: the rate limiter
//! delegates to a shared budget (Redis) when configured, falling back to its
//! local one; the cardinality guard reads a tenant's stored catalogue once
//! and asks the shared catalogue about names it has not seen.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    domain::{Event, TenantId, TenantLimits},
    store::{Store, StoreError},
};

mod shared;

pub use shared::{Charge, Fits, SharedBudget, SharedCatalogue, SharedStreams, SharedUnavailable};

/// Name of the bucket that takes services and endpoints past a tenant's
/// cardinality limit. The original name is kept in an attribute.
pub const OVERFLOW: &str = "_overflow";
/// Attribute holding the service name an overflowed event was sent with.
pub const OVERFLOW_SERVICE_ATTR: &str = "pulsyon.overflow.service";
/// Attribute holding the endpoint an overflowed event was sent with.
pub const OVERFLOW_ENDPOINT_ATTR: &str = "pulsyon.overflow.endpoint";

/// Which limit refused a batch or a stream. Stored by name as the reason of
/// `throttled` outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThrottleCause {
    /// The writer's queue stayed full (the server, not the tenant, is the limit).
    Overload,
    /// The tenant's events per second.
    EventRate,
    /// The tenant's bytes per second.
    ByteRate,
    /// The tenant's concurrent streams.
    Streams,
    /// No database connection was free for what admission reads (the
    /// server, not the tenant, is the limit).
    DatabaseBusy,
}

impl ThrottleCause {
    /// Every cause.
    pub const ALL: [ThrottleCause; 5] = [
        ThrottleCause::Overload,
        ThrottleCause::EventRate,
        ThrottleCause::ByteRate,
        ThrottleCause::Streams,
        ThrottleCause::DatabaseBusy,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleCause::Overload => "overload",
            ThrottleCause::EventRate => "event_rate",
            ThrottleCause::ByteRate => "byte_rate",
            ThrottleCause::Streams => "streams",
            ThrottleCause::DatabaseBusy => "database_busy",
        }
    }

    /// The cause stored as `name` ('' is an overload: rows written before causes were kept).
    pub fn parse(name: &str) -> Option<ThrottleCause> {
        if name.is_empty() {
            return Some(ThrottleCause::Overload);
        }
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A refusal by a tenant limit: which, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    /// The limit.
    pub cause: ThrottleCause,
    /// When the same batch would pass.
    pub retry_after: Duration,
}

/// One step of the generic cell rate algorithm for one dimension, in seconds.
/// `tat` is the theoretical arrival time (when the bucket is full again);
/// a cost of `n` passes if, after it, the bucket would not be more than
/// `burst` in debt beyond what `n` itself needs. A cost above the burst
/// passes only on a full bucket (and leaves it in debt), so a large batch is
/// delayed, never refused forever. Returns the new `tat`, or the wait.
pub fn gcra(tat: f64, now: f64, cost: f64, rate: f64, burst: f64) -> Result<f64, f64> {
    let tat = tat.max(now);
    let interval = 1.0 / rate;
    // Room needed now: the cost, but never more than the whole burst.
    let need = cost.min(burst);
    let allow_at = tat - (burst - need) * interval;
    if now + 1e-9 < allow_at {
        return Err(allow_at - now);
    }
    Ok(tat + cost * interval)
}

/// The local (per-process) rate budget of every tenant.
#[derive(Debug, Default)]
pub struct LocalRates {
    /// Per tenant: the theoretical arrival time of events and of bytes, in
    /// seconds on `clock`'s scale.
    state: Mutex<HashMap<TenantId, (f64, f64)>>,
}

impl LocalRates {
    /// Charges `events` and `bytes` to `tenant` at `now` (seconds); both
    /// dimensions pass or neither is charged.
    pub fn check(
        &self,
        tenant: TenantId,
        limits: &TenantLimits,
        events: u64,
        bytes: u64,
        now: f64,
    ) -> Result<(), Throttled> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.len() > 100_000 {
            // Forget tenants whose buckets are full again (nothing to remember).
            state.retain(|_, (e, b)| *e > now || *b > now);
        }
        let (etat, btat) = state.get(&tenant).copied().unwrap_or((now, now));
        let e = gcra(
            etat,
            now,
            events as f64,
            limits.events_per_sec,
            limits.events_burst as f64,
        );
        let b = gcra(
            btat,
            now,
            bytes as f64,
            limits.bytes_per_sec,
            limits.bytes_burst as f64,
        );
        match (e, b) {
            (Ok(e), Ok(b)) => {
                state.insert(tenant, (e, b));
                Ok(())
            }
            (Err(wait), _) => Err(Throttled {
                cause: ThrottleCause::EventRate,
                retry_after: Duration::from_secs_f64(wait),
            }),
            (_, Err(wait)) => Err(Throttled {
                cause: ThrottleCause::ByteRate,
                retry_after: Duration::from_secs_f64(wait),
            }),
        }
    }
}

/// The ingest rate limits: the shared budget when there is one and it
/// answers, else this process's own.
#[derive(Debug)]
pub struct RateLimiter {
    /// This process's budget (the only one without a shared budget).
    local: LocalRates,
    /// The budget of every process, if configured.
    shared: Option<Arc<dyn SharedBudget>>,
    /// The local budget's clock.
    epoch: Instant,
    /// When the last fallback warning was logged (one per 10 s at most).
    last_warning: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter on `shared` (or local only).
    pub fn new(shared: Option<Arc<dyn SharedBudget>>) -> RateLimiter {
        RateLimiter {
            local: LocalRates::default(),
            shared,
            epoch: Instant::now(),
            last_warning: Mutex::new(None),
        }
    }

    /// Charges a batch of `events` (`bytes` encoded) to `tenant`.
    pub async fn check(
        &self,
        tenant: TenantId,
        limits: &TenantLimits,
        events: u64,
        bytes: u64,
    ) -> Result<(), Throttled> {
        if let Some(shared) = &self.shared {
            match shared.charge(tenant, limits, events, bytes).await {
                Ok(verdict) => return verdict,
                Err(err) => {
                    metrics::counter!("pulsyon_rate_limit_fallbacks_total").increment(1);
                    let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
                    if last.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                        *last = Some(Instant::now());
                        tracing::warn!(error = %err, "shared rate budget unreachable; limiting per process");
                    }
                }
            }
        }
        self.local.check(
            tenant,
            limits,
            events,
            bytes,
            self.epoch.elapsed().as_secs_f64(),
        )
    }
}

/// Every per-tenant guard of ingest, built once by the bootstrap.
#[derive(Debug)]
pub struct Guards {
    /// Events and bytes per second.
    pub rates: RateLimiter,
    /// Concurrent streams.
    pub streams: Arc<StreamSlots>,
    /// Services and endpoints.
    pub cardinality: Cardinality,
}

/// Concurrent ingest streams per tenant: in this process, and across
/// processes when there is a shared count (which, when it does not answer,
/// is left to this process's own).
#[derive(Debug, Default)]
pub struct StreamSlots {
    open: Mutex<HashMap<TenantId, u32>>,
    shared: Option<Arc<dyn SharedStreams>>,
}

/// One open stream; closing it (dropping) frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    tenant: TenantId,
    /// Its id in the shared count, when it holds one there.
    shared: Option<String>,
}

impl StreamSlots {
    /// Slots counted across processes by `shared`.
    pub fn with_shared(shared: Option<Arc<dyn SharedStreams>>) -> StreamSlots {
        StreamSlots {
            open: Mutex::default(),
            shared,
        }
    }

    /// A slot for a new stream of `tenant`, if it has fewer than `max` open
    /// (in this process, and in all of them when counted across processes).
    pub async fn open(self: &Arc<Self>, tenant: TenantId, max: u32) -> Option<StreamSlot> {
        let mut slot = self.open_local(tenant, max)?;
        if let Some(shared) = &self.shared {
            let id = uuid::Uuid::now_v7().to_string();
            match shared.acquire(tenant, &id, max).await {
                Ok(true) => slot.shared = Some(id),
                // Dropping `slot` gives the local one back.
                Ok(false) => return None,
                Err(e) => {
                    tracing::debug!(error = %e, "shared stream count unavailable; counting locally");
                }
            }
        }
        Some(slot)
    }

    fn open_local(self: &Arc<Self>, tenant: TenantId, max: u32) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(tenant).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            slots: self.clone(),
            tenant,
            shared: None,
        })
    }

    /// Streams of `tenant` open now.
    pub fn count(&self, tenant: TenantId) -> u32 {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&tenant).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let (Some(id), Some(shared)) = (self.shared.take(), &self.slots.shared) {
            shared.release(self.tenant, id);
        }
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

/// The services and endpoints a tenant has, as far as this process knows
/// (seeded from the catalogue on first use, then kept from what it admits).
#[derive(Debug, Default)]
pub struct Known {
    /// Service name -> its endpoints.
    services: HashMap<String, HashSet<String>>,
}

impl Known {
    /// Seeds from stored (service, endpoint) pairs; an empty endpoint only
    /// records the service.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Known {
        let mut known = Known::default();
        for (service, endpoint) in pairs {
            let endpoints = known.services.entry(service).or_default();
            if !endpoint.is_empty() {
                endpoints.insert(endpoint);
            }
        }
        known
    }

    /// Puts `event` within `limits`: a service past `max_services` becomes the
    /// overflow service (and its endpoint the overflow endpoint), an endpoint
    /// past `max_endpoints` of its service the overflow endpoint. The original
    /// names go into attributes. Returns whether the event was rewritten.
    pub fn admit(&mut self, event: &mut Event, limits: &TenantLimits) -> bool {
        // The common case, without allocating: a known endpoint of a known service.
        if self
            .services
            .get(&event.service)
            .is_some_and(|endpoints| endpoints.contains(&event.endpoint))
        {
            return false;
        }
        let mut rewritten = false;
        if !self.services.contains_key(&event.service) {
            if self.services.len() >= limits.max_services as usize && event.service != OVERFLOW {
                let service = std::mem::replace(&mut event.service, OVERFLOW.to_owned());
                let endpoint = std::mem::replace(&mut event.endpoint, OVERFLOW.to_owned());
                set_attribute(event, OVERFLOW_SERVICE_ATTR, service);
                set_attribute(event, OVERFLOW_ENDPOINT_ATTR, endpoint);
                rewritten = true;
            }
            self.services.entry(event.service.clone()).or_default();
        }
        let endpoints = self.services.entry(event.service.clone()).or_default();
        if !endpoints.contains(&event.endpoint) {
            if endpoints.len() >= limits.max_endpoints as usize && event.endpoint != OVERFLOW {
                let endpoint = std::mem::replace(&mut event.endpoint, OVERFLOW.to_owned());
                set_attribute(event, OVERFLOW_ENDPOINT_ATTR, endpoint);
                rewritten = true;
            }
            endpoints.insert(event.endpoint.clone());
        }
        rewritten
    }
}

impl Known {
    /// Whether `event`'s service and endpoint are known here.
    fn knows(&self, event: &Event) -> bool {
        self.services
            .get(&event.service)
            .is_some_and(|endpoints| endpoints.contains(&event.endpoint))
    }

    /// Puts `event` where the shared catalogue decided (`service_ok`,
    /// `endpoint_ok`: under the limits), and remembers it; whether it was
    /// rewritten to the overflow bucket.
    fn apply(&mut self, event: &mut Event, service_ok: bool, endpoint_ok: bool) -> bool {
        let mut rewritten = false;
        if !service_ok {
            let service = std::mem::replace(&mut event.service, OVERFLOW.to_owned());
            let endpoint = std::mem::replace(&mut event.endpoint, OVERFLOW.to_owned());
            set_attribute(event, OVERFLOW_SERVICE_ATTR, service);
            set_attribute(event, OVERFLOW_ENDPOINT_ATTR, endpoint);
            rewritten = true;
        } else if !endpoint_ok {
            let endpoint = std::mem::replace(&mut event.endpoint, OVERFLOW.to_owned());
            set_attribute(event, OVERFLOW_ENDPOINT_ATTR, endpoint);
            rewritten = true;
        }
        self.services
            .entry(event.service.clone())
            .or_default()
            .insert(event.endpoint.clone());
        rewritten
    }
}

/// The cardinality guard of ingest: per tenant, the services and endpoints
/// this process knows, seeded from the store on a tenant's first batch; a
/// new one is decided by the shared catalogue when there is one (so the
/// limits hold across processes), else here.
#[derive(Debug)]
pub struct Cardinality {
    store: Store,
    /// Per tenant; never held across an await, so one tenant's first batch
    /// (a catalogue read) does not stall the others.
    known: Mutex<HashMap<TenantId, Known>>,
    shared: Option<Arc<dyn SharedCatalogue>>,
}

impl Cardinality {
    /// A guard that seeds from `store`.
    pub fn new(store: Store) -> Cardinality {
        Cardinality::with_shared(store, None)
    }

    /// A guard that seeds from `store` and decides new names with `shared`.
    pub fn with_shared(store: Store, shared: Option<Arc<dyn SharedCatalogue>>) -> Cardinality {
        Cardinality {
            store,
            known: Mutex::new(HashMap::new()),
            shared,
        }
    }

    /// Puts every event of a batch of `tenant` within `limits` (see
    /// [`Known::admit`]); returns how many were rewritten to the overflow bucket.
    pub async fn admit(
        &self,
        tenant: TenantId,
        limits: &TenantLimits,
        events: &mut [Event],
    ) -> Result<usize, StoreError> {
        let seeded = self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&tenant);
        let seed = if seeded {
            None
        } else {
            let pairs = self.store.catalogue_pairs(tenant).await?;
            if let Some(shared) = &self.shared
                && let Err(e) = shared.seed(tenant, &pairs).await
            {
                tracing::debug!(error = %e, "shared catalogue not seeded");
            }
            Some(Known::from_pairs(pairs))
        };
        // Names this process does not know yet: the shared catalogue decides.
        let decided: Option<HashMap<(String, String), (bool, bool)>> = match &self.shared {
            None => None,
            Some(shared) => {
                let unknown: Vec<(String, String)> = {
                    let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                    let k = known.get(&tenant).or(seed.as_ref());
                    let mut set: HashSet<(String, String)> = HashSet::new();
                    for e in events.iter() {
                        if e.service != OVERFLOW && !k.is_some_and(|k| k.knows(e)) {
                            set.insert((e.service.clone(), e.endpoint.clone()));
                        }
                    }
                    set.into_iter().collect()
                };
                if unknown.is_empty() {
                    None
                } else {
                    match shared.admit(tenant, &unknown, limits).await {
                        Ok(answers) => Some(unknown.into_iter().zip(answers).collect()),
                        Err(e) => {
                            metrics::counter!("pulsyon_cardinality_fallbacks_total").increment(1);
                            tracing::debug!(error = %e, "shared catalogue unavailable; deciding locally");
                            None
                        }
                    }
                }
            }
        };
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        // Two first batches may both read the catalogue; the first to get here keeps its seed.
        let k = known
            .entry(tenant)
            .or_insert_with(|| seed.unwrap_or_default());
        let mut rewritten = 0;
        for e in events {
            let decision = decided
                .as_ref()
                .and_then(|d| d.get(&(e.service.clone(), e.endpoint.clone())).copied());
            let changed = match decision {
                Some((service_ok, endpoint_ok)) if !k.knows(e) => {
                    k.apply(e, service_ok, endpoint_ok)
                }
                _ => k.admit(e, limits),
            };
            if changed {
                rewritten += 1;
            }
        }
        if rewritten > 0 {
            metrics::counter!("pulsyon_ingest_overflowed_events_total", "tenant" => tenant.to_string())
                .increment(rewritten as u64);
        }
        Ok(rewritten)
    }
}

/// Sets `key` in the sorted attribute list (replacing a value sent under it).
fn set_attribute(event: &mut Event, key: &str, value: String) {
    match event
        .attributes
        .binary_search_by(|(k, _)| k.as_str().cmp(key))
    {
        Ok(i) => event.attributes[i].1 = value,
        Err(i) => event.attributes.insert(i, (key.to_owned(), value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(service: &str, endpoint: &str) -> Event {
        Event {
            event_id: uuid::Uuid::nil(),
            time: time::OffsetDateTime::UNIX_EPOCH,
            service: service.into(),
            endpoint: endpoint.into(),
            method: "GET".into(),
            status_code: 200,
            latency_ms: 1.0,
            trace_id: String::new(),
            request_id: String::new(),
            attributes: vec![("a".into(), "1".into()), ("z".into(), "2".into())],
            environment: String::new(),
            release: String::new(),
            host: String::new(),
            request_bytes: 0,
            response_bytes: 0,
        }
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        // 10 per second, burst 5.
        let (rate, burst) = (10.0, 5.0);
        let mut tat = 0.0;
        for _ in 0..5 {
            tat = gcra(tat, 0.0, 1.0, rate, burst).unwrap();
        }
        let wait = gcra(tat, 0.0, 1.0, rate, burst).unwrap_err();
        assert!(
            (wait - 0.1).abs() < 1e-9,
            "one token back after 100 ms: {wait}"
        );
        assert!(gcra(tat, 0.1, 1.0, rate, burst).is_ok());
        // A cost of 3 needs 3 tokens: after 0.1 s there is one.
        assert!(gcra(tat, 0.1, 3.0, rate, burst).is_err());
        assert!(gcra(tat, 0.3, 3.0, rate, burst).is_ok());
    }

    #[test]
    fn gcra_lets_a_cost_above_the_burst_through_a_full_bucket_only() {
        let tat = gcra(0.0, 0.0, 50.0, 10.0, 5.0).expect("a full bucket");
        assert!((tat - 5.0).abs() < 1e-9, "in debt for 5 s");
        let wait = gcra(tat, 1.0, 50.0, 10.0, 5.0).unwrap_err();
        assert!((wait - 4.0).abs() < 1e-9, "{wait}");
    }

    #[test]
    fn local_rates_charge_both_dimensions_or_neither() {
        let rates = LocalRates::default();
        let limits = TenantLimits {
            events_per_sec: 100.0,
            events_burst: 100,
            bytes_per_sec: 1_000.0,
            bytes_burst: 1_000,
            ..TenantLimits::default()
        };
        let (a, b) = (TenantId(1), TenantId(2));
        rates.check(a, &limits, 10, 900, 0.0).unwrap();
        let t = rates.check(a, &limits, 10, 900, 0.0).unwrap_err();
        assert_eq!(t.cause, ThrottleCause::ByteRate);
        // The refused batch charged no events: 90 more still pass.
        rates.check(a, &limits, 90, 0, 0.0).unwrap();
        let t = rates.check(a, &limits, 1, 0, 0.0).unwrap_err();
        assert_eq!(t.cause, ThrottleCause::EventRate);
        assert!(t.retry_after > Duration::ZERO && t.retry_after <= Duration::from_millis(10));
        rates
            .check(b, &limits, 100, 1_000, 0.0)
            .expect("another tenant is unaffected");
    }

    #[tokio::test]
    async fn stream_slots_are_bounded_per_tenant_and_freed_on_drop() {
        let slots = Arc::new(StreamSlots::default());
        let first = slots.open(TenantId(1), 2).await.unwrap();
        let _second = slots.open(TenantId(1), 2).await.unwrap();
        assert!(slots.open(TenantId(1), 2).await.is_none());
        assert!(slots.open(TenantId(2), 2).await.is_some(), "per tenant");
        drop(first);
        assert_eq!(slots.count(TenantId(1)), 1);
        assert!(slots.open(TenantId(1), 2).await.is_some());
    }

    #[test]
    fn services_and_endpoints_past_the_limit_go_to_the_overflow_bucket() {
        let limits = TenantLimits {
            max_services: 2,
            max_endpoints: 2,
            ..TenantLimits::default()
        };
        let mut known = Known::from_pairs([("a".into(), "/1".into())]);
        let mut e = event("b", "/x");
        assert!(!known.admit(&mut e, &limits), "second service fits");
        let mut e = event("c", "/y");
        assert!(known.admit(&mut e, &limits), "third service overflows");
        assert_eq!(
            (e.service.as_str(), e.endpoint.as_str()),
            (OVERFLOW, OVERFLOW)
        );
        let attrs: Vec<&str> = e.attributes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            attrs,
            ["a", OVERFLOW_ENDPOINT_ATTR, OVERFLOW_SERVICE_ATTR, "z"],
            "sorted, originals kept"
        );
        assert_eq!(e.attributes[2].1, "c");
        assert_eq!(e.attributes[1].1, "/y");

        let mut e = event("a", "/2");
        assert!(!known.admit(&mut e, &limits));
        let mut e = event("a", "/3");
        assert!(
            known.admit(&mut e, &limits),
            "third endpoint of a overflows"
        );
        assert_eq!((e.service.as_str(), e.endpoint.as_str()), ("a", OVERFLOW));
        let mut e = event("a", "/1");
        assert!(!known.admit(&mut e, &limits), "known endpoints still pass");
    }
}
