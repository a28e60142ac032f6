//! The seams to counts shared across processes (the Redis bridge
//! implements them): a tenant's rate budget, its concurrent streams, its
//! services and endpoints. Each may fail to answer; the caller then limits
//! on its own.

use std::{future::Future, pin::Pin};

use super::Throttled;
use crate::domain::{TenantId, TenantLimits};

/// Why a count shared across processes (the rate budget, the streams, the
/// catalogue) gave no answer; the caller then limits on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared count did not answer: {0}")]
pub struct SharedUnavailable(pub String);

impl From<String> for SharedUnavailable {
    /// The bridge's own description of what failed.
    fn from(why: String) -> SharedUnavailable {
        SharedUnavailable(why)
    }
}

/// The answer of a shared budget: a verdict, or why there is none.
pub type Charge<'a> =
    Pin<Box<dyn Future<Output = Result<Result<(), Throttled>, SharedUnavailable>> + Send + 'a>>;

/// A rate budget shared by every process (the Redis bridge). An `Err` means
/// it could not answer; the caller then uses its local budget.
pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// Charges `events` and `bytes` to `tenant`: both pass, or neither is charged.
    fn charge<'a>(
        &'a self,
        tenant: TenantId,
        limits: &'a TenantLimits,
        events: u64,
        bytes: u64,
    ) -> Charge<'a>;
}

/// The concurrent streams of each tenant across every ingest process (a
/// Redis-backed count with leases, `crate::redis`).
pub trait SharedStreams: Send + Sync + std::fmt::Debug {
    /// Takes slot `id` of `tenant` unless `max` are held in all; an error
    /// when the shared count cannot be read (the caller falls back to its own).
    fn acquire<'a>(
        &'a self,
        tenant: TenantId,
        id: &'a str,
        max: u32,
    ) -> Pin<Box<dyn Future<Output = Result<bool, SharedUnavailable>> + Send + 'a>>;
    /// Gives slot `id` of `tenant` back (in the background).
    fn release(&self, tenant: TenantId, id: String);
}

/// What the shared catalogue answers for each (service, endpoint): whether
/// the service, then the endpoint, fits.
pub type Fits<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<(bool, bool)>, SharedUnavailable>> + Send + 'a>>;

/// Each tenant's services and endpoints across every ingest process (Redis
/// sets, `crate::redis`).
pub trait SharedCatalogue: Send + Sync + std::fmt::Debug {
    /// Records what the store's catalogue holds (idempotent).
    fn seed<'a>(
        &'a self,
        tenant: TenantId,
        pairs: &'a [(String, String)],
    ) -> Pin<Box<dyn Future<Output = Result<(), SharedUnavailable>> + Send + 'a>>;
    /// For each (service, endpoint): whether the service, then the endpoint,
    /// is (now) among the tenant's, within `limits`; an error when the
    /// shared sets cannot be read (the caller decides alone).
    fn admit<'a>(
        &'a self,
        tenant: TenantId,
        pairs: &'a [(String, String)],
        limits: &'a TenantLimits,
    ) -> Fits<'a>;
}
