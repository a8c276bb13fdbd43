//! Opaque tokens: 256-bit secrets the server keeps only as SHA-256 hashes (refresh tokens,
//! the links of verification and reset mails, two-factor challenges).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// Length of a token's secret.
pub const SECRET_BYTES: usize = 32;

/// Length of a token as sent: unpadded base64url of 32 bytes.
pub const ENCODED_LEN: usize = 43;

/// Domain separation for the sealing key, so it is unrelated to the stored hash.
const SEAL_CONTEXT: &[u8] = b"auth-api refresh successor seal v1\0";

/// A token's secret. Never printed: `Debug` shows only that it is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken([u8; SECRET_BYTES]);

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpaqueToken([REDACTED])")
    }
}

/// The SHA-256 of a token: how the store knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, as used in item keys.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`TokenHash::to_hex`] output.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl OpaqueToken {
    /// A new token from the operating system's random source.
    pub fn generate() -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self(secret)
    }

    /// A token as a client sends it, or `None` if it cannot be one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ENCODED_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The text handed to the client.
    pub fn encode(&self) -> SecretString {
        SecretString::from(URL_SAFE_NO_PAD.encode(self.0))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0).into())
    }

    fn seal_key(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(SEAL_CONTEXT);
        hasher.update(self.0);
        hasher.finalize().into()
    }

    /// `successor` encrypted so that only this token can recover it. Each token seals exactly
    /// one successor, so XOR with a key derived from the token is a one-time pad.
    pub fn seal(&self, successor: &OpaqueToken) -> [u8; SECRET_BYTES] {
        let key = self.seal_key();
        std::array::from_fn(|i| successor.0[i] ^ key[i])
    }

    /// Recovers what [`OpaqueToken::seal`] sealed with this token.
    pub fn unseal(&self, sealed: &[u8; SECRET_BYTES]) -> OpaqueToken {
        let key = self.seal_key();
        OpaqueToken(std::array::from_fn(|i| sealed[i] ^ key[i]))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_token_round_trips_through_its_text() {
        let token = OpaqueToken::generate();
        let text = token.encode();
        assert_eq!(text.expose_secret().len(), ENCODED_LEN);
        assert_eq!(OpaqueToken::parse(text.expose_secret()), Some(token));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let valid = OpaqueToken::generate().encode().expose_secret().to_owned();
        assert!(OpaqueToken::parse("").is_none());
        assert!(OpaqueToken::parse(&valid[1..]).is_none());
        assert!(OpaqueToken::parse(&format!("{valid}A")).is_none());
        assert!(OpaqueToken::parse(&format!("{}+", &valid[1..])).is_none());
        assert!(OpaqueToken::parse(&format!("{}é", &valid[2..])).is_none());
    }

    #[test]
    fn only_the_sealing_token_unseals_the_successor() {
        let old = OpaqueToken::generate();
        let successor = OpaqueToken::generate();
        let sealed = old.seal(&successor);
        assert_eq!(old.unseal(&sealed), successor);
        assert_ne!(OpaqueToken::generate().unseal(&sealed), successor);
        assert_ne!(sealed, successor.0, "sealing changed nothing");
    }

    #[test]
    fn the_seal_key_is_not_the_stored_hash() {
        let token = OpaqueToken::generate();
        assert_ne!(token.seal_key(), token.hash().0);
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let hash = OpaqueToken::generate().hash();
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(TokenHash::from_hex("zz"), None);
        assert_eq!(TokenHash::from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let token = OpaqueToken::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(token.encode().expose_secret()));
    }
}
