//! The vocabulary of Pulsyon: tenants, scopes, principals, API-key secrets,
//! events and the limits a tenant works within; incidents and alerts
//! (`incident`); the rules' kinds, severities and settings (`rules`).
//!
//! Files: `access.rs` (scopes, principals, tenants, keys, users, roles),
//! `event.rs` (events, batches and their fate, reject reasons, outcomes),
//! `limits.rs` (a tenant's limits and their overrides), `notify.rs`
//! (receivers, secrets, deliveries, the retry schedule).
//!
//! Pure types and logic. This module must never depend on tonic, prost, sqlx or
//! redis, nor on any other module of the crate: every other layer maps its
//! own types to these.

/// An enum whose values have stored names: `as_str`, `parse` (an unknown
/// name is `None`, never a default) and `ALL`, from one list.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; <[&str]>::len(&[$($text),+])] = [$($name::$variant),+];

            /// The name as stored, logged and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value of a stored name; `None` for an unknown one.
            pub fn parse(name: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_str() == name)
            }
        }
    };
}

mod access;
mod event;
pub mod incident;
mod limits;
pub mod notify;
pub mod objective;
pub mod rules;

pub use access::*;
pub use event::*;
pub use limits::*;

use std::fmt;

/// Database identifier of a tenant. Every stored row carries one; every query
/// filters by the caller's, taken from its API key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reject_reasons_round_trip_by_name() {
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(RejectReason::parse("nope"), None);
    }

    #[test]
    fn scope_lists_parse_sorted_and_deduplicated() {
        assert_eq!(
            Scope::parse_list("read, ingest,read").unwrap(),
            vec![Scope::Ingest, Scope::Read]
        );
        assert!(Scope::parse_list("").is_err());
        let err = Scope::parse_list("ingest,write").unwrap_err();
        assert!(err.contains("\"write\""), "{err}");
    }

    #[test]
    fn tenant_names_follow_the_documented_rule() {
        for ok in ["default", "a", "team-1", "x_y", &"a".repeat(63)] {
            assert!(valid_tenant_name(ok), "{ok}");
        }
        for bad in ["", "-a", "_a", "Team", "a b", "é", &"a".repeat(64)] {
            assert!(!valid_tenant_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = ApiKeySecret::generate().unwrap();
        let b = ApiKeySecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 4 + 64);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(a.sha256(), hash_secret(a.expose()));
        assert!(!format!("{a:?}").contains(&a.expose()[DISPLAY_PREFIX_LEN..]));
    }

    #[test]
    fn overrides_apply_on_top_and_are_validated() {
        let o = LimitOverrides {
            events_per_sec: Some(5.0),
            max_page_size: Some(20),
            ..LimitOverrides::default()
        };
        o.validate().unwrap();
        let l = TenantLimits::default().with(&o);
        assert_eq!(l.events_per_sec, 5.0);
        assert_eq!(l.max_page_size, 20);
        assert_eq!(l.events_burst, TenantLimits::default().events_burst);
        for (bad, field) in [
            (
                LimitOverrides {
                    events_per_sec: Some(0.0),
                    ..Default::default()
                },
                "events_per_second",
            ),
            (
                LimitOverrides {
                    bytes_per_sec: Some(f64::NAN),
                    ..Default::default()
                },
                "bytes_per_second",
            ),
            (
                LimitOverrides {
                    max_streams: Some(0),
                    ..Default::default()
                },
                "max_streams",
            ),
            (
                LimitOverrides {
                    max_page_size: Some(10_001),
                    ..Default::default()
                },
                "max_page_size",
            ),
            (
                LimitOverrides {
                    max_query_range: Some(Duration::from_secs(1)),
                    ..Default::default()
                },
                "max_query_range",
            ),
        ] {
            assert_eq!(bad.validate().unwrap_err().0, field);
        }
    }
}
