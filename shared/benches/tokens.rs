//! Token sign and verify, EdDSA, RS256 (RSA 2048) and HS256, through the same issuer and
//! verifier the Lambdas use; and a bare Ed25519 signature check, the floor under every EdDSA
//! verification.

// A benchmark that cannot set up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer, Verifier};
use secrecy::{ExposeSecret, SecretString};
use shared::config::TokenSettings;
use shared::token::now_unix;
use shared::{KeySet, SigningKey, Subject, TokenIssuer, TokenVerifier};

fn pair(key: SigningKey) -> (TokenIssuer, TokenVerifier, String) {
    let settings = TokenSettings {
        issuer: "https://auth.bench".into(),
        audience: "bench-api".into(),
    };
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    let issuer = TokenIssuer::new(key, settings.clone(), 3600);
    let token = issuer.issue(&subject(), now_unix()).unwrap().token;
    let verifier = TokenVerifier::new(keys, settings, 30);
    (issuer, verifier, token.expose_secret().to_owned())
}

fn subject() -> Subject {
    Subject {
        user_id: uuid::Uuid::from_u128(0x6f1d7a42_3c1b_4d8e_9a57_2b9e0c4d1f00),
        email: "ada@example.com".into(),
        roles: vec!["user".into()],
        email_verified: false,
        session_id: None,
        method: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let secret = SecretString::from("a-bench-secret-of-at-least-32-bytes!!");
    for (name, key) in [
        (
            "EdDSA",
            SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid"),
        ),
        (
            "RS256",
            SigningKey::from_pem(include_str!("../../tests/fixtures/rsa-2048.pem"), None).unwrap(),
        ),
        ("HS256", SigningKey::hs256(secret.clone(), None).unwrap()),
    ] {
        let (issuer, verifier, token) = pair(key);
        assert!(verifier.verify(&token).is_ok());
        c.bench_function(&format!("token sign {name}"), |b| {
            b.iter(|| issuer.issue(black_box(&subject()), black_box(now_unix())))
        });
        c.bench_function(&format!("token verify {name}"), |b| {
            b.iter(|| verifier.verify(black_box(&token)).unwrap())
        });
    }

    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let message = [42u8; 300];
    let signature = key.sign(&message);
    let public = key.verifying_key();
    c.bench_function("ed25519 signature check alone", |b| {
        b.iter(|| {
            public
                .verify(black_box(&message), black_box(&signature))
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
