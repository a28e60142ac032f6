//! Authentication and authorisation of every `pulsyon.v1` call.
//!
//! A call carries `authorization: Bearer <key>`; the key's SHA-256 is looked up
//! (through a short-lived cache, so that a revocation reaches every process
//! within the TTL) and gives the caller's tenant and scopes. The tenant is
//! never taken from a request body. A key is never logged, not even in part
//! beyond its public prefix.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tonic::{Request, Status};
use uuid::Uuid;

use crate::{
    domain::{Principal, Scope, TenantLimits, hash_secret},
    store::{Store, keys::KeyLookup},
};

/// Most cached lookups; past it, expired entries are dropped first, then all.
const CACHE_CAPACITY: usize = 10_000;

/// A cached lookup (`None`: no such key) and when it was made.
type CacheEntry = (Option<KeyLookup>, Instant);

/// Checks API keys against the store, with a TTL cache.
#[derive(Debug)]
pub struct Authenticator {
    /// Where keys are looked up.
    store: Store,
    /// How long a lookup (positive or negative) is trusted.
    ttl: Duration,
    /// Lookups by key digest; `None` records an unknown key.
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    /// The server's default limits, under each tenant's overrides.
    defaults: TenantLimits,
}

impl Authenticator {
    /// A new authenticator whose cached answers live for `ttl`.
    /// Limit overrides arrive with the key, so a change of a tenant's limits
    /// reaches every process within the same TTL.
    pub fn new(store: Store, ttl: Duration, defaults: TenantLimits) -> Authenticator {
        Authenticator {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
            defaults,
        }
    }

    /// The server's default limits.
    pub fn default_limits(&self) -> &TenantLimits {
        &self.defaults
    }

    /// The caller of `request`, if its key is valid and holds `scope`.
    pub async fn authorize<T>(
        &self,
        request: &Request<T>,
        scope: Scope,
    ) -> Result<Principal, Status> {
        Ok(self.authorize_stream(request, scope).await?.0)
    }

    /// Whether the `authorization` header among `headers` holds a valid key
    /// with `scope` (for [`super::preauth`], before a body is read).
    pub async fn check_headers(
        &self,
        headers: &tonic::codegen::http::HeaderMap,
        scope: Scope,
    ) -> Result<(), Status> {
        let value = headers.get("authorization").map(|v| v.to_str());
        let digest = hash_secret(bearer_text(value)?);
        self.check(&digest, scope, self.ttl).await.map(|_| ())
    }

    /// As [`Authenticator::authorize`], with the key's check for a long
    /// stream: [`Authenticator::revoked`] ends when the key stops working.
    pub async fn authorize_stream<T>(
        &self,
        request: &Request<T>,
        scope: Scope,
    ) -> Result<(Principal, KeyCheck), Status> {
        let digest = hash_secret(bearer(request)?);
        let principal = self.check(&digest, scope, self.ttl).await?;
        Ok((principal, KeyCheck { digest, scope }))
    }

    /// Resolves, with the status to end the stream with, once the key of
    /// `check` is revoked, deleted or loses its scope. It looks again every
    /// half TTL and trusts a cached answer for at most half a TTL, so an open
    /// stream ends within `--key-cache-ttl` of a revocation on any process.
    /// A database that cannot answer ends nothing.
    pub async fn revoked(&self, check: KeyCheck) -> Status {
        let half = (self.ttl / 2).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(half).await;
            match self.check(&check.digest, check.scope, half).await {
                Ok(_) => {}
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) =>
                {
                    metrics::counter!("pulsyon_streams_ended_total", "reason" => "revoked_key")
                        .increment(1);
                    return status;
                }
                Err(_) => {}
            }
        }
    }

    async fn check(
        &self,
        digest: &[u8; 32],
        scope: Scope,
        max_age: Duration,
    ) -> Result<Principal, Status> {
        let lookup = self.lookup(digest, max_age).await?;
        let Some(lookup) = lookup else {
            metrics::counter!("pulsyon_auth_failures_total", "reason" => "unknown_key")
                .increment(1);
            return Err(Status::unauthenticated("unknown API key"));
        };
        if lookup.revoked {
            metrics::counter!("pulsyon_auth_failures_total", "reason" => "revoked_key")
                .increment(1);
            return Err(Status::unauthenticated("this API key has been revoked"));
        }
        if !lookup.principal.has(scope) {
            metrics::counter!("pulsyon_auth_failures_total", "reason" => "missing_scope")
                .increment(1);
            return Err(Status::permission_denied(format!(
                "this API key lacks the `{scope}` scope that this call needs"
            )));
        }
        let mut principal = lookup.principal;
        principal.limits = self.defaults.with(&lookup.overrides);
        Ok(principal)
    }

    /// Forgets every cached lookup of `key_id` (after a revocation here;
    /// other processes notice within the TTL).
    pub fn forget_key(&self, key_id: Uuid) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (lookup, _)| lookup.as_ref().is_none_or(|l| l.principal.key_id != key_id));
    }

    /// Forgets every cached lookup of `tenant`'s keys (after a change of its
    /// limits here; other processes notice within the TTL).
    pub fn forget_tenant(&self, tenant: crate::domain::TenantId) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (lookup, _)| {
            lookup
                .as_ref()
                .is_none_or(|l| l.principal.tenant_id != tenant)
        });
    }

    async fn lookup(
        &self,
        digest: &[u8; 32],
        max_age: Duration,
    ) -> Result<Option<KeyLookup>, Status> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((lookup, at)) = cache.get(digest)
                && at.elapsed() < max_age
            {
                return Ok(lookup.clone());
            }
        }
        let lookup = self
            .store
            .lookup_key(digest)
            .await
            .map_err(super::status::from_store)?;
        if let Some(found) = &lookup
            && !found.revoked
            && let Err(err) = self.store.touch_key(found.principal.key_id).await
        {
            tracing::debug!(error = %err, "could not record key use");
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            let ttl = self.ttl;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(*digest, (lookup.clone(), Instant::now()));
        Ok(lookup)
    }
}

/// What a long stream needs to check its key again: the secret's digest
/// (never the secret) and the scope the stream needs.
#[derive(Debug, Clone)]
pub struct KeyCheck {
    /// SHA-256 of the key's secret.
    digest: [u8; 32],
    /// The scope of the stream's calls.
    scope: Scope,
}

/// The secret of an `authorization: Bearer <key>` header.
fn bearer<T>(request: &Request<T>) -> Result<&str, Status> {
    bearer_text(
        request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().map_err(|_| ())),
    )
}

/// The secret of an `authorization` header's value (`None`: no header;
/// `Some(Err)`: not text).
fn bearer_text<E>(value: Option<Result<&str, E>>) -> Result<&str, Status> {
    let value = value.ok_or_else(|| {
        metrics::counter!("pulsyon_auth_failures_total", "reason" => "missing_key").increment(1);
        Status::unauthenticated("missing API key: send the header `authorization: Bearer <key>`")
    })?;
    let text = value.map_err(|_| Status::unauthenticated("malformed authorization header"))?;
    let (scheme, secret) = text.split_once(' ').ok_or_else(|| {
        Status::unauthenticated("malformed authorization header: expected `Bearer <key>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(Status::unauthenticated(
            "malformed authorization header: expected `Bearer <key>`",
        ));
    }
    Ok(secret.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(header: Option<&str>) -> Request<()> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        req
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(
            bearer(&request_with(Some("Bearer pls_abc"))).unwrap(),
            "pls_abc"
        );
        assert_eq!(
            bearer(&request_with(Some("bearer  pls_abc "))).unwrap(),
            "pls_abc"
        );
        for bad in [
            None,
            Some("pls_abc"),
            Some("Basic pls_abc"),
            Some("Bearer "),
        ] {
            let status = bearer(&request_with(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }
}
