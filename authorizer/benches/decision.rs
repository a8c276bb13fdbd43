//! One whole authorizer decision: event JSON in, response JSON out.

// A benchmark that cannot set up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use authorizer::{Authorizer, DEFAULT_TOKEN_CACHE, V2Response};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::{ExposeSecret, SecretString};
use shared::config::TokenSettings;
use shared::token::now_unix;
use shared::{KeySet, SigningKey, Subject, TokenIssuer, TokenVerifier};

/// An authorizer for `key`, remembering `cache` verified tokens, and a TOKEN event for it.
fn setup(key: SigningKey, cache: usize) -> (Authorizer, String) {
    let settings = TokenSettings {
        issuer: "https://auth.bench".into(),
        audience: "bench-api".into(),
    };
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    let issuer = TokenIssuer::new(key, settings.clone(), 3600);
    let subject = Subject {
        user_id: uuid::Uuid::new_v4(),
        email: "ada@example.com".into(),
        roles: vec!["user".into()],
        email_verified: false,
        session_id: None,
        method: Default::default(),
    };
    let token = issuer.issue(&subject, now_unix()).unwrap().token;
    let event = serde_json::json!({
        "type": "TOKEN",
        "authorizationToken": format!("Bearer {}", token.expose_secret()),
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/items",
    })
    .to_string();
    let authorizer = Authorizer::new(
        TokenVerifier::new(keys, settings, 30).with_cache(cache),
        None,
        V2Response::Simple,
    );
    (authorizer, event)
}

fn decide(authorizer: &Authorizer, event: &str) -> String {
    let event = serde_json::from_str(event).unwrap();
    serde_json::to_string(&authorizer.decide(event).unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let secret = || {
        SigningKey::hs256(
            SecretString::from("a-bench-secret-of-at-least-32-bytes!!"),
            None,
        )
        .unwrap()
    };
    // A token the authorizer has not seen: the whole signature check every time.
    let (eddsa, eddsa_event) = setup(
        SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid"),
        0,
    );
    let (hs256, hs256_event) = setup(secret(), 0);
    c.bench_function("authorizer decision EdDSA new token", |b| {
        b.iter(|| decide(black_box(&eddsa), black_box(&eddsa_event)))
    });
    c.bench_function("authorizer decision HS256 new token", |b| {
        b.iter(|| decide(black_box(&hs256), black_box(&hs256_event)))
    });
    // The same token again, as a warm Lambda sees it across requests: the default cache.
    let (eddsa, eddsa_event) = setup(
        SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid"),
        DEFAULT_TOKEN_CACHE,
    );
    let (hs256, hs256_event) = setup(secret(), DEFAULT_TOKEN_CACHE);
    c.bench_function("authorizer decision EdDSA seen token", |b| {
        b.iter(|| decide(black_box(&eddsa), black_box(&eddsa_event)))
    });
    c.bench_function("authorizer decision HS256 seen token", |b| {
        b.iter(|| decide(black_box(&hs256), black_box(&hs256_event)))
    });
    rules(c);
}

/// A seen token through rules: a user's token by a role rule, a machine client's by a scope
/// rule beside it. What a rule costs over the signature check's cache, per kind of token.
fn rules(c: &mut Criterion) {
    let settings = TokenSettings {
        issuer: "https://auth.bench".into(),
        audience: "bench-api".into(),
    };
    let key = SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid");
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    let issuer = TokenIssuer::new(key, settings.clone(), 3600);
    let rules = authorizer::rules::Rules::parse(
        r#"{"GET /orders/*": ["scope:orders:read", "user"], "POST /orders/*": ["scope:orders:write"], "* /admin/*": ["admin", "@mfa"]}"#,
    )
    .unwrap();
    let authorizer = Authorizer::new(
        TokenVerifier::new(keys, settings, 30).with_cache(DEFAULT_TOKEN_CACHE),
        Some(rules),
        V2Response::Iam,
    );
    let user = issuer
        .issue(
            &Subject {
                user_id: uuid::Uuid::new_v4(),
                email: "ada@example.com".into(),
                roles: vec!["user".into()],
                email_verified: false,
                session_id: None,
                method: Default::default(),
            },
            now_unix(),
        )
        .unwrap()
        .token;
    let client = issuer
        .issue_for_client("bench-client", "orders:read", 3600, now_unix())
        .unwrap()
        .token;
    let event = |token: &SecretString| {
        serde_json::json!({
            "type": "TOKEN",
            "authorizationToken": format!("Bearer {}", token.expose_secret()),
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/orders/7",
        })
        .to_string()
    };
    let (user_event, client_event) = (event(&user), event(&client));
    c.bench_function("authorizer decision EdDSA seen token, role rule", |b| {
        b.iter(|| decide(black_box(&authorizer), black_box(&user_event)))
    });
    c.bench_function("authorizer decision EdDSA seen token, scope rule", |b| {
        b.iter(|| decide(black_box(&authorizer), black_box(&client_event)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
