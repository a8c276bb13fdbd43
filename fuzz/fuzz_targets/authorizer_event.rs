//! The authorizer handler on arbitrary event JSON: it must answer (a response or exactly
//! `Unauthorized`), never panic, and never allow a request without a signed token.
#![no_main]

use std::sync::LazyLock;

use authorizer::{Authorizer, V2Response};
use libfuzzer_sys::fuzz_target;
use shared::config::TokenSettings;
use shared::{KeySet, SigningKey, TokenVerifier};

static AUTHORIZER: LazyLock<Authorizer> = LazyLock::new(|| {
    let settings = TokenSettings {
        issuer: "https://auth.fuzz".into(),
        audience: "fuzz".into(),
    };
    let mut keys = KeySet::default();
    keys.insert(SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid").verification_key())
        .expect("one key");
    Authorizer::new(TokenVerifier::new(keys, settings, 30), None, V2Response::Simple)
});

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    // No token in this corpus is signed by the key above: every answer must be a refusal.
    assert!(AUTHORIZER.decide(event).is_err());
});
