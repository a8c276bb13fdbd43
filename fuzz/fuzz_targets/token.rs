//! Token parsing on arbitrary strings: access tokens (EdDSA and HS256 verifiers), bearer
//! headers and refresh tokens. Nothing unsigned is accepted; nothing panics.
#![no_main]

use std::sync::LazyLock;

use accounts::model::session::RefreshToken;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use shared::config::TokenSettings;
use shared::{KeySet, SigningKey, TokenVerifier, bearer_token};

fn verifier(key: SigningKey) -> TokenVerifier {
    let settings = TokenSettings {
        issuer: "https://auth.fuzz".into(),
        audience: "fuzz".into(),
    };
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).expect("one key");
    TokenVerifier::new(keys, settings, 30)
}

static VERIFIERS: LazyLock<[TokenVerifier; 2]> = LazyLock::new(|| {
    [
        verifier(SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid")),
        verifier(
            SigningKey::hs256(SecretString::from("a-fuzzing-secret-of-32-bytes-or-more"), None)
                .expect("a secret"),
        ),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for verifier in VERIFIERS.iter() {
        assert!(verifier.verify(text).is_err());
    }
    if let Some(token) = bearer_token(text) {
        assert!(VERIFIERS[0].verify(token).is_err());
    }
    if let Some(token) = RefreshToken::parse(text) {
        assert_eq!(text.len(), 43);
        let _ = token.hash();
    }
});
