//! Signed page tokens. A page token carries a query's resolved range and
//! position; signed with HMAC-SHA256 under a secret every process shares
//! (`server_secrets`), it cannot be forged or altered to reach past a
//! tenant's limits, and any process verifies a token another issued.
//!
//! Never accept a token whose tag does not verify; never put the secret in
//! a message or a log.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tonic::Status;

use super::status::invalid;

/// Bytes of the tag kept in a token (128 bits).
const TAG_BYTES: usize = 16;

/// Signs and verifies page tokens.
#[derive(Clone)]
pub struct PageTokens {
    /// HMAC-SHA256 keyed with the shared secret, cloned for each tag.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(..)")
    }
}

impl PageTokens {
    /// Tokens under `secret` (32 bytes or more; HMAC takes a key of any
    /// length, so an error here is a bug of the crate's).
    pub fn new(secret: &[u8]) -> Result<PageTokens, hmac::digest::InvalidLength> {
        Ok(PageTokens {
            mac: Hmac::<Sha256>::new_from_slice(secret)?,
        })
    }

    fn tag(&self, body: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// `body` with its tag; an empty body (no next page) stays empty.
    pub fn sign(&self, body: String) -> String {
        if body.is_empty() {
            return body;
        }
        let tag = self.tag(&body);
        let hex: String = tag[..TAG_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{body}~{hex}")
    }

    /// The body of a token this server signed; `""` for an empty token.
    pub fn open<'a>(&self, token: &'a str) -> Result<&'a str, Status> {
        if token.is_empty() {
            return Ok(token);
        }
        let bad = || invalid("page_token", "not a token this server issued");
        let (body, hex) = token.rsplit_once('~').ok_or_else(bad)?;
        if hex.len() != 2 * TAG_BYTES || !hex.is_ascii() {
            return Err(bad());
        }
        let mut got = [0u8; TAG_BYTES];
        for (i, byte) in got.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        // Compared in constant time, so timing says nothing of the tag.
        if !bool::from(self.tag(body)[..TAG_BYTES].ct_eq(&got)) {
            return Err(bad());
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe".
        let tokens = PageTokens::new(b"Jefe").unwrap();
        let tag = tokens.tag("what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_token_opens_and_any_change_is_refused() {
        let tokens = PageTokens::new(&[7; 32]).unwrap();
        let signed = tokens.sign("18f3a.2a".into());
        assert_eq!(tokens.open(&signed).unwrap(), "18f3a.2a");
        assert_eq!(tokens.open("").unwrap(), "");
        assert_eq!(tokens.sign(String::new()), "");
        let altered = signed.replacen("18f3a", "18f3b", 1);
        for bad in [
            altered.as_str(),
            "18f3a.2a",
            "18f3a.2a~00",
            &signed[..signed.len() - 1],
        ] {
            let err = tokens.open(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        }
        // Another server secret: refused.
        assert!(PageTokens::new(&[8; 32]).unwrap().open(&signed).is_err());
    }
}
