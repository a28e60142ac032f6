//! Authentication and authorisation, for every door: an API key (from an
//! `authorization: Bearer <key>` header, however the door carries headers)
//! becomes a principal (tenant, scopes, limits in force) or a typed
//! `AuthError`. The key's SHA-256 is looked up through a short-lived cache,
//! so that a revocation reaches every process within the TTL. The tenant is
//! never taken from a request body. A key is never logged, not even in part
//! beyond its public prefix. This module knows no transport: each door maps
//! `AuthError` to its own status (`api::status` for gRPC).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::{
    domain::{Principal, Role, Scope, TenantId, TenantLimits, hash_secret},
    store::{
        Store, StoreError,
        keys::KeyLookup,
        users::{SessionInfo, SessionOwner},
    },
};

/// Why a caller is not let in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` header.
    #[error("missing API key: send the header `authorization: Bearer <key>`")]
    Missing,
    /// A header that is not `Bearer <key>`.
    #[error("malformed authorization header{0}")]
    Malformed(&'static str),
    /// No such key.
    #[error("unknown API key")]
    UnknownKey,
    /// The key was revoked.
    #[error("this API key has been revoked")]
    Revoked,
    /// The key lacks the scope the call needs.
    #[error("this API key lacks the `{0}` scope that this call needs")]
    MissingScope(Scope),
    /// The key could not be looked up.
    #[error("{0}")]
    Store(StoreError),
}

impl AuthError {
    /// Whether the key itself is refused (not the lookup failing): a stream
    /// open with it must end.
    pub fn refuses_key(&self) -> bool {
        matches!(
            self,
            AuthError::UnknownKey | AuthError::Revoked | AuthError::MissingScope(_)
        )
    }
}

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

    /// The caller whose headers carry `authorization: Bearer <key>` or,
    /// without it, `x-api-key: <key>` (as OpenTelemetry exporters can send);
    /// each value `None` when absent, `Some(Err)` when not text. Ok if the
    /// key is valid and holds `scope`, with the key's check for a long
    /// stream: [`Authenticator::revoked`] ends when the key stops working.
    pub async fn authenticate<E>(
        &self,
        authorization: Option<Result<&str, E>>,
        api_key: Option<Result<&str, E>>,
        scope: Scope,
    ) -> Result<(Principal, KeyCheck), AuthError> {
        let secret = match (authorization, api_key) {
            (None, Some(key)) => key.map_err(|_| AuthError::Malformed(" (x-api-key)"))?,
            (header, _) => bearer_secret(header)?,
        };
        self.authenticate_key(secret, scope).await
    }

    /// As [`Authenticator::authenticate`], for a key given as it is.
    pub async fn authenticate_key(
        &self,
        secret: &str,
        scope: Scope,
    ) -> Result<(Principal, KeyCheck), AuthError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(AuthError::Malformed(": an empty key"));
        }
        let digest = hash_secret(secret);
        let principal = self.check(&digest, scope, self.ttl).await?;
        Ok((principal, KeyCheck { digest, scope }))
    }

    /// Resolves, with why, once the key of `check` is revoked, deleted or
    /// loses its scope. It looks again every half TTL and trusts a cached
    /// answer for at most half a TTL, so an open stream ends within
    /// `--key-cache-ttl` of a revocation on any process. A database that
    /// cannot answer ends nothing.
    pub async fn revoked(&self, check: KeyCheck) -> AuthError {
        let half = (self.ttl / 2).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(half).await;
            match self.check(&check.digest, check.scope, half).await {
                Err(err) if err.refuses_key() => {
                    metrics::counter!("pulsyon_streams_ended_total", "reason" => "revoked_key")
                        .increment(1);
                    return err;
                }
                Ok(_) | Err(_) => {}
            }
        }
    }

    async fn check(
        &self,
        digest: &[u8; 32],
        scope: Scope,
        max_age: Duration,
    ) -> Result<Principal, AuthError> {
        let lookup = self.lookup(digest, max_age).await?;
        let Some(lookup) = lookup else {
            metrics::counter!("pulsyon_auth_failures_total", "reason" => "unknown_key")
                .increment(1);
            return Err(AuthError::UnknownKey);
        };
        if lookup.revoked {
            metrics::counter!("pulsyon_auth_failures_total", "reason" => "revoked_key")
                .increment(1);
            return Err(AuthError::Revoked);
        }
        if !lookup.principal.has(scope) {
            metrics::counter!("pulsyon_auth_failures_total", "reason" => "missing_scope")
                .increment(1);
            return Err(AuthError::MissingScope(scope));
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
    ) -> Result<Option<KeyLookup>, AuthError> {
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
            .map_err(AuthError::Store)?;
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

/// The secret of an `authorization` header's value (`None`: no header;
/// `Some(Err)`: not text).
pub fn bearer_secret<E>(value: Option<Result<&str, E>>) -> Result<&str, AuthError> {
    let value = value.ok_or_else(|| {
        metrics::counter!("pulsyon_auth_failures_total", "reason" => "missing_key").increment(1);
        AuthError::Missing
    })?;
    let text = value.map_err(|_| AuthError::Malformed(""))?;
    let expected = AuthError::Malformed(": expected `Bearer <key>`");
    let Some((scheme, secret)) = text.split_once(' ') else {
        return Err(expected);
    };
    if !scheme.eq_ignore_ascii_case("bearer") || secret.trim().is_empty() {
        return Err(expected);
    }
    Ok(secret.trim())
}

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
    Length,
    /// The system's random source failed.
    #[error("no random salt: {0}")]
    Random(getrandom::Error),
    /// The hash could not be computed.
    #[error("hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Fewest characters of a password.
pub const MIN_PASSWORD: usize = 12;
/// Most characters of a password (Argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD: usize = 256;

/// The Argon2id hash of `password` in PHC form (algorithm, parameters, salt
/// and hash in one string), with a fresh random salt. The only form a
/// password is ever stored in.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(PasswordError::Length);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches a hash made by [`hash_password`] (false for a
/// hash that does not parse).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new password to show its user once: 20 characters from an alphabet
/// without look-alikes (about 115 random bits).
pub fn generate_password() -> Result<String, PasswordError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(PasswordError::Random)?;
    // 256 is not a multiple of the alphabet's 56 letters: the first 224
    // values map evenly, the rest are drawn again.
    let mut out = String::with_capacity(20);
    let mut pool = bytes.to_vec();
    while out.len() < 20 {
        let Some(b) = pool.pop() else {
            let mut more = [0u8; 20];
            getrandom::fill(&mut more).map_err(PasswordError::Random)?;
            pool.extend_from_slice(&more);
            continue;
        };
        if usize::from(b) < 224 {
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// Why a login or a session is refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong tenant, user, password or key, or a disabled user: one answer
    /// for all, so that a caller learns nothing of which.
    #[error("wrong credentials")]
    Refused,
    /// The API key may not read (an ingest-only key).
    #[error("this API key lacks the `read` scope that the dashboard needs")]
    KeyCannotRead,
    /// Too many failed logins of this user lately; retry after the delay.
    #[error("too many failed logins; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// No session, or it expired or ended.
    #[error("no session: log in")]
    NoSession,
    /// The store failed.
    #[error("{0}")]
    Store(StoreError),
    /// The password machinery failed.
    #[error("{0}")]
    Password(PasswordError),
}

/// A session just made: the token for the cookie (shown once) and what it is.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie's value: 256 random bits in hex.
    pub token: String,
    /// The session.
    pub info: SessionInfo,
}

/// Failed logins tolerated per user within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// How long failed logins count against a user.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Logins to the dashboard: a user's password or an API key becomes a
/// session; a session token becomes the session. Failed password logins are
/// counted per (tenant, user) in this process: past [`MAX_FAILURES`] within
/// [`FAILURE_WINDOW`] the user's logins are refused unchecked until the
/// window ends.
#[derive(Debug)]
pub struct Logins {
    store: Store,
    keys: std::sync::Arc<Authenticator>,
    lifetime: Duration,
    failures: Mutex<HashMap<(String, String), (u32, Instant)>>,
    /// A hash to check a password against when the user does not exist, so
    /// that an unknown user costs the same time as a wrong password.
    decoy: String,
}

impl Logins {
    /// Logins whose sessions last `lifetime`.
    pub fn new(
        store: Store,
        keys: std::sync::Arc<Authenticator>,
        lifetime: Duration,
    ) -> Result<Logins, PasswordError> {
        Ok(Logins {
            store,
            keys,
            lifetime,
            failures: Mutex::new(HashMap::new()),
            decoy: hash_password(&generate_password()?)?,
        })
    }

    fn throttled(&self, who: &(String, String)) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, since) = *failures.get(who)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed());
        match left {
            Some(left) if count >= MAX_FAILURES => Some(left),
            Some(_) => None,
            None => {
                failures.remove(who);
                None
            }
        }
    }

    fn failed(&self, who: (String, String)) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= CACHE_CAPACITY {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        if failures.len() >= CACHE_CAPACITY {
            // Bounded memory under a spray of names: keep the throttled ones.
            failures.retain(|_, (count, _)| *count >= MAX_FAILURES);
        }
        let entry = failures.entry(who).or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    /// Logs a user in with their password.
    pub async fn with_password(
        &self,
        tenant: &str,
        user: &str,
        password: &str,
    ) -> Result<NewSession, LoginError> {
        let who = (tenant.to_owned(), user.to_owned());
        if let Some(left) = self.throttled(&who) {
            return Err(LoginError::Throttled(left));
        }
        let found = match self.store.tenant_by_name(tenant).await {
            Ok(t) => self
                .store
                .user_credentials(t.id, user)
                .await
                .map_err(LoginError::Store)?
                .map(|(u, hash)| (t, u, hash)),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(LoginError::Store(e)),
        };
        let hash = found
            .as_ref()
            .map(|(_, _, h)| h.clone())
            .unwrap_or_else(|| self.decoy.clone());
        let password = password.to_owned();
        // Argon2 takes tens of milliseconds of CPU: off the async workers.
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        match found {
            Some((tenant, user, _)) if matches && user.disabled_at.is_none() => {
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&who);
                self.open(
                    (tenant.id, &tenant.name),
                    SessionOwner::User(user.user_id),
                    user.role,
                    &user.name,
                )
                .await
            }
            _ => {
                self.failed(who);
                Err(LoginError::Refused)
            }
        }
    }

    /// Logs in with an API key: `admin` keys as admins, `read` keys as
    /// responders (a `read` key may acknowledge and resolve incidents).
    pub async fn with_key(&self, secret: &str) -> Result<NewSession, LoginError> {
        let principal = match self.keys.authenticate_key(secret, Scope::Read).await {
            Ok((principal, _)) => principal,
            Err(AuthError::MissingScope(_)) => return Err(LoginError::KeyCannotRead),
            Err(AuthError::Store(e)) => return Err(LoginError::Store(e)),
            Err(_) => return Err(LoginError::Refused),
        };
        let role = if principal.scopes.contains(&Scope::Admin) {
            Role::Admin
        } else {
            Role::Responder
        };
        // The key's public prefix, as `pulsyon key create` shows it.
        let prefix: String = secret.trim().chars().take(12).collect();
        self.open(
            (principal.tenant_id, &principal.tenant_name),
            SessionOwner::Key(principal.key_id),
            role,
            &format!("key:{prefix}"),
        )
        .await
    }

    async fn open(
        &self,
        tenant: (TenantId, &str),
        owner: SessionOwner,
        role: Role,
        actor: &str,
    ) -> Result<NewSession, LoginError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| LoginError::Password(PasswordError::Random(e)))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires_at = time::OffsetDateTime::now_utc() + self.lifetime;
        let session_id = self
            .store
            .create_session(
                tenant.0,
                owner,
                role,
                actor,
                &hash_secret(&token),
                expires_at,
            )
            .await
            .map_err(LoginError::Store)?;
        let info = SessionInfo {
            session_id,
            tenant_id: tenant.0,
            tenant_name: tenant.1.to_owned(),
            actor: actor.to_owned(),
            role,
            expires_at,
            revoked: false,
        };
        Ok(NewSession { token, info })
    }

    /// The live session of a cookie's token.
    pub async fn session(&self, token: &str) -> Result<SessionInfo, LoginError> {
        match self
            .store
            .lookup_session(&hash_secret(token))
            .await
            .map_err(LoginError::Store)?
        {
            Some(s) if !s.revoked && s.expires_at > time::OffsetDateTime::now_utc() => Ok(s),
            _ => Err(LoginError::NoSession),
        }
    }

    /// Ends the session of a cookie's token.
    pub async fn logout(&self, token: &str) -> Result<(), LoginError> {
        let session = self.session(token).await?;
        self.store
            .revoke_session(session.tenant_id, session.session_id)
            .await
            .map_err(LoginError::Store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_is_stored_as_an_argon2id_hash_that_only_it_matches() {
        let hash = super::hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(super::verify_password("correct horse battery", &hash));
        assert!(!super::verify_password("correct horse batterx", &hash));
        assert!(!super::verify_password(
            "correct horse battery",
            "not a hash"
        ));
        // A fresh salt each time.
        assert_ne!(hash, super::hash_password("correct horse battery").unwrap());
        assert!(matches!(
            super::hash_password("short"),
            Err(super::PasswordError::Length)
        ));
        let generated = super::generate_password().unwrap();
        assert_eq!(generated.len(), 20);
        assert!(super::hash_password(&generated).is_ok());
        assert_ne!(generated, super::generate_password().unwrap());
    }
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        fn secret(h: Option<&str>) -> Result<&str, AuthError> {
            bearer_secret(h.map(Ok::<_, ()>))
        }
        assert_eq!(secret(Some("Bearer pls_abc")).unwrap(), "pls_abc");
        assert_eq!(secret(Some("bearer  pls_abc ")).unwrap(), "pls_abc");
        assert!(matches!(secret(None), Err(AuthError::Missing)));
        for bad in ["pls_abc", "Basic pls_abc", "Bearer "] {
            assert!(
                matches!(secret(Some(bad)), Err(AuthError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            bearer_secret(Some(Err(()))),
            Err(AuthError::Malformed(""))
        ));
    }
}
