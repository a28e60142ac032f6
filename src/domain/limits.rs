//! The limits a tenant works within, and its overrides of the defaults.

use std::time::Duration;

/// Highest page size an override may set (QueryEvents, ListFailedEvents...).
pub const MAX_PAGE_SIZE_CEILING: u32 = 10_000;
/// Longest query range an override may set.
pub const MAX_QUERY_RANGE_CEILING: Duration = Duration::from_secs(31 * 86_400);

/// The limits in force for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantLimits {
    /// Sustained events per second.
    pub events_per_sec: f64,
    /// Events that may arrive at once above the sustained rate.
    pub events_burst: u64,
    /// Sustained encoded bytes per second.
    pub bytes_per_sec: f64,
    /// Bytes that may arrive at once above the sustained rate.
    pub bytes_burst: u64,
    /// Concurrent `StreamEvents` streams per server process.
    pub max_streams: u32,
    /// Distinct services; further ones go to the overflow bucket.
    pub max_services: u32,
    /// Distinct endpoints per service; further ones go to the overflow bucket.
    pub max_endpoints: u32,
    /// Longest time range of one query.
    pub max_query_range: Duration,
    /// Largest page of one query.
    pub max_page_size: u32,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            events_per_sec: 100_000.0,
            events_burst: 200_000,
            bytes_per_sec: (64 << 20) as f64,
            bytes_burst: 128 << 20,
            max_streams: 64,
            max_services: 1_000,
            max_endpoints: 500,
            max_query_range: Duration::from_secs(7 * 86_400),
            max_page_size: 1_000,
        }
    }
}

/// A tenant's overrides of the defaults; `None` follows the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitOverrides {
    /// See [`TenantLimits::events_per_sec`].
    pub events_per_sec: Option<f64>,
    /// See [`TenantLimits::events_burst`].
    pub events_burst: Option<u64>,
    /// See [`TenantLimits::bytes_per_sec`].
    pub bytes_per_sec: Option<f64>,
    /// See [`TenantLimits::bytes_burst`].
    pub bytes_burst: Option<u64>,
    /// See [`TenantLimits::max_streams`].
    pub max_streams: Option<u32>,
    /// See [`TenantLimits::max_services`].
    pub max_services: Option<u32>,
    /// See [`TenantLimits::max_endpoints`].
    pub max_endpoints: Option<u32>,
    /// See [`TenantLimits::max_query_range`].
    pub max_query_range: Option<Duration>,
    /// See [`TenantLimits::max_page_size`].
    pub max_page_size: Option<u32>,
}

impl LimitOverrides {
    /// Checks each set value; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let rate = |name, v: Option<f64>| match v {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                Err((name, "must be a number above 0".to_owned()))
            }
            _ => Ok(()),
        };
        rate("events_per_second", self.events_per_sec)?;
        rate("bytes_per_second", self.bytes_per_sec)?;
        for (name, v) in [
            ("events_burst", self.events_burst),
            ("bytes_burst", self.bytes_burst),
        ] {
            if v == Some(0) || v.is_some_and(|v| v > i64::MAX as u64) {
                return Err((name, "must be at least 1".to_owned()));
            }
        }
        for (name, v) in [
            ("max_streams", self.max_streams),
            ("max_services", self.max_services),
            ("max_endpoints_per_service", self.max_endpoints),
        ] {
            if v == Some(0) || v.is_some_and(|v| v > i32::MAX as u32) {
                return Err((name, "must be at least 1".to_owned()));
            }
        }
        if let Some(n) = self.max_page_size
            && !(1..=MAX_PAGE_SIZE_CEILING).contains(&n)
        {
            return Err((
                "max_page_size",
                format!("must be 1 to {MAX_PAGE_SIZE_CEILING}"),
            ));
        }
        if let Some(d) = self.max_query_range
            && !(Duration::from_secs(60)..=MAX_QUERY_RANGE_CEILING).contains(&d)
        {
            return Err(("max_query_range", "must be 1 minute to 31 days".to_owned()));
        }
        Ok(())
    }
}

impl TenantLimits {
    /// These limits with `o` applied on top.
    pub fn with(&self, o: &LimitOverrides) -> TenantLimits {
        TenantLimits {
            events_per_sec: o.events_per_sec.unwrap_or(self.events_per_sec),
            events_burst: o.events_burst.unwrap_or(self.events_burst),
            bytes_per_sec: o.bytes_per_sec.unwrap_or(self.bytes_per_sec),
            bytes_burst: o.bytes_burst.unwrap_or(self.bytes_burst),
            max_streams: o.max_streams.unwrap_or(self.max_streams),
            max_services: o.max_services.unwrap_or(self.max_services),
            max_endpoints: o.max_endpoints.unwrap_or(self.max_endpoints),
            max_query_range: o.max_query_range.unwrap_or(self.max_query_range),
            max_page_size: o.max_page_size.unwrap_or(self.max_page_size),
        }
    }
}
