//! One whole session-checking decision: event JSON in, session checked, response JSON out.
//! The session is in auth-api's in-memory store, so what is measured is this process's work;
//! the DynamoDB read is measured against DynamoDB Local by scripts/bench's harness.

// A benchmark that cannot set up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use accounts::model::credentials::Email;
use accounts::model::session::{ClientInfo, SessionFamily, SessionSettings};
use accounts::model::user::UserRecord;
use accounts::store::{MemoryStore, SessionStore, UserStore};
use authorizer::session::SessionCheck;
use authorizer::{Authorizer, DEFAULT_TOKEN_CACHE, V2Response};
use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::{ExposeSecret, SecretString};
use session_authorizer::StoreLookup;
use shared::config::TokenSettings;
use shared::token::now_unix;
use shared::{KeySet, SigningKey, Subject, SystemClock, TokenIssuer, TokenVerifier};

struct Setup {
    authorizer: Authorizer,
    event: String,
    store: MemoryStore,
}

/// A live session in a memory store, a token of it, and an authorizer remembering `cache`
/// verified tokens.
fn setup(runtime: &tokio::runtime::Runtime, cache: usize) -> Setup {
    let settings = TokenSettings {
        issuer: "https://auth.bench".into(),
        audience: "bench-api".into(),
    };
    let key = SigningKey::ed25519_generate(None).unwrap();
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    let store = MemoryStore::new();
    let user = UserRecord::new(
        Email::parse("ada@example.com").unwrap(),
        SecretString::from("$2b$04$unused"),
        time::OffsetDateTime::now_utc(),
    );
    let now_ms = now_unix() * 1000;
    let (_, family, record) = SessionFamily::begin(&user, 0, now_ms, 3600, ClientInfo::default());
    runtime.block_on(async {
        store.create_user(&user).await.unwrap();
        store.start_session(&family, &record).await.unwrap();
    });
    let subject = Subject {
        user_id: user.user_id,
        email: "ada@example.com".into(),
        roles: vec!["user".into()],
        email_verified: false,
        session_id: Some(family.family_id),
        method: Default::default(),
    };
    let token = TokenIssuer::new(key, settings.clone(), 3600)
        .issue(&subject, now_unix())
        .unwrap()
        .token;
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
    Setup {
        authorizer,
        event,
        store,
    }
}

fn bench(c: &mut Criterion) {
    // The Lambda's own runtime flavour; block_on adds well under a microsecond.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let clock = SystemClock;
    let decide = |setup: &Setup, check: &SessionCheck| {
        let lookup = StoreLookup {
            store: &setup.store,
            sessions: SessionSettings::default(),
            clock: &clock,
        };
        let event = serde_json::from_str(&setup.event).unwrap();
        let response = runtime
            .block_on(setup.authorizer.decide_checked(event, check, &lookup))
            .unwrap();
        serde_json::to_string(&response).unwrap()
    };
    for (label, cache) in [("new", 0), ("seen", DEFAULT_TOKEN_CACHE)] {
        let setup = setup(&runtime, cache);
        let cached = SessionCheck::new(10, Arc::new(SystemClock));
        decide(&setup, &cached);
        c.bench_function(
            &format!("session authorizer decision EdDSA {label} token, session cached"),
            |b| b.iter(|| decide(black_box(&setup), black_box(&cached))),
        );
        let uncached = SessionCheck::new(0, Arc::new(SystemClock));
        c.bench_function(
            &format!("session authorizer decision EdDSA {label} token, session read (memory)"),
            |b| b.iter(|| decide(black_box(&setup), black_box(&uncached))),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
