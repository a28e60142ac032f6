//! Who may do what: API-key scopes, principals, tenants, keys, users and
//! their roles, and the secrets of keys.

use std::fmt;

use sha2::{Digest, Sha256};

use super::{TenantId, TenantLimits};
use time::OffsetDateTime;

named_enum! {
/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send events.
    Ingest = "ingest",
    /// Read data and handle incidents.
    Read = "read",
    /// Manage keys and settings.
    Admin = "admin",
}
}

impl Scope {
    /// Parses a comma-separated list such as `ingest,read`; sorted, without repeats.
    pub fn parse_list(list: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let scope = Scope::parse(name).ok_or_else(|| {
                format!("unknown scope {name:?} (expected ingest, read or admin)")
            })?;
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err("at least one scope is needed (ingest, read, admin)".into());
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of an RPC: the tenant and scopes of its API key.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The tenant every query of this caller is confined to.
    pub tenant_id: TenantId,
    /// The tenant's name, for messages and logs.
    pub tenant_name: String,
    /// The key that authenticated the call.
    pub key_id: uuid::Uuid,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// The limits in force for the tenant (the server's defaults with the
    /// tenant's overrides), as of the key lookup.
    pub limits: TenantLimits,
}

impl Principal {
    /// Whether the caller holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Database identifier.
    pub id: TenantId,
    /// Unique name.
    pub name: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// An API key as stored: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    /// Identifier, used to revoke it.
    pub key_id: uuid::Uuid,
    /// Name of the tenant it belongs to.
    pub tenant_name: String,
    /// Label chosen at creation.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last used, to the minute.
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Whether `name` is a valid tenant name: 1 to 63 of `a-z 0-9 _ -`, starting
/// with a letter or digit (the database checks the same).
pub fn valid_tenant_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
        && !bytes[0].is_ascii_uppercase()
}

named_enum! {
/// What a person (a user of the dashboard) may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads services, incidents and ingest figures.
    Viewer = "viewer",
    /// Also acknowledges and resolves incidents.
    Responder = "responder",
    /// Also manages keys, users, limits and rules.
    Admin = "admin",
}
}

/// A person of a tenant who logs in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Identifier.
    pub user_id: uuid::Uuid,
    /// Login name, unique in the tenant.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created_at: OffsetDateTime,
    /// When the user was disabled; a disabled user cannot log in.
    pub disabled_at: Option<OffsetDateTime>,
}

/// Whether `name` is a valid user name: 1 to 64 of a-z, 0-9, '.', '_', '-'
/// and '@', starting with a letter or digit (an e-mail address fits).
pub fn valid_user_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'@')
        })
}

/// The secret of an API key as shown once to its owner: `pls_` and 64 hex
/// digits (256 random bits). Never logged; only its SHA-256 is stored.
pub struct ApiKeySecret(String);

/// Prefix of every secret, so that a leaked key is easy to recognise and scan for.
pub const SECRET_PREFIX: &str = "pls_";
/// How many characters of a secret are kept to recognise it (`pls_` + 8 hex digits).
pub const DISPLAY_PREFIX_LEN: usize = 12;

impl ApiKeySecret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let mut text = String::with_capacity(SECRET_PREFIX.len() + 64);
        text.push_str(SECRET_PREFIX);
        for b in bytes {
            text.push_str(&format!("{b:02x}"));
        }
        Ok(ApiKeySecret(text))
    }

    /// The secret itself, to show to its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first characters, safe to store and show.
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LEN]
    }

    /// The digest the database keeps.
    pub fn sha256(&self) -> [u8; 32] {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

/// SHA-256 of a presented secret, to look it up.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}
