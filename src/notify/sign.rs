//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the
//! receiver's secret is `whsec_` and the base64 of its key; a message is
//! signed as HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`,
//! sent as `webhook-signature: v1,<base64>`. HMAC from the `hmac` crate.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{KeyInit, Mac};

/// The prefix of a signing secret.
pub const PREFIX: &str = "whsec_";

/// The key a `whsec_` secret holds, or why it is not one.
pub fn key_of(secret: &str) -> Result<Vec<u8>, String> {
    let Some(encoded) = secret.strip_prefix(PREFIX) else {
        return Err(format!("a webhook secret starts with {PREFIX}"));
    };
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| format!("a webhook secret is {PREFIX} and base64"))?;
    if !(24..=64).contains(&key.len()) {
        return Err("a webhook secret's key is 24 to 64 bytes".into());
    }
    Ok(key)
}

/// A new secret: 32 random bytes.
pub fn generate() -> Result<String, String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` value for `id`, `timestamp` (seconds) and `body`.
/// (HMAC takes keys of any length: the error is never seen.)
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|e| format!("signing key: {e}"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The example of the Standard Webhooks specification.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_and_generated_in_their_form() {
        assert!(key_of("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(key_of("whsec_!!!").is_err());
        assert!(key_of("whsec_c2hvcnQ=").is_err());
        let made = generate().unwrap();
        assert_eq!(key_of(&made).unwrap().len(), 32);
    }
}
