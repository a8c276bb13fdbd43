//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the secret, and the
//! `webhook-signature` of a message, shared by event webhooks and HTTP hooks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A Standard Webhooks secret: `whsec_` and the base64 of its key. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl WebhookSecret {
    /// `whsec_<base64>` (the prefix may be left out); at least 16 bytes of key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "must be whsec_ and the base64 of the key".to_owned())?;
        if key.len() < 16 {
            return Err("its key must be at least 16 bytes".to_owned());
        }
        Ok(Self(key))
    }

    /// `webhook-signature` of `body` sent as message `id` at Unix second `timestamp`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            // HMAC takes a key of any length.
            Err(_) => return String::new(),
        };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// Whether `url` may receive a signed request (a webhook or a hook): HTTPS, or plain HTTP to
/// this machine (local-api, tests).
pub fn url_allowed(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty();
    }
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|host| {
            url.strip_prefix(host)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_specification_s_vector() {
        // The Standard Webhooks libraries' own test vector.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(format!("{secret:?}"), "WebhookSecret([REDACTED])");
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
    }

    #[test]
    fn urls_are_https_or_this_machine() {
        assert!(url_allowed("https://hooks.example.com/auth"));
        assert!(url_allowed("http://127.0.0.1:8080/hook"));
        assert!(url_allowed("http://localhost/hook"));
        assert!(!url_allowed("http://hooks.example.com/auth"));
        assert!(!url_allowed("http://127.0.0.1.evil.example/hook"));
        assert!(!url_allowed("https://"));
        assert!(!url_allowed("ftp://example.com"));
    }
}
