//! The auth-api handler on arbitrary Lambda payloads (API Gateway v1, v2 and function-URL
//! events as JSON): whatever arrives, the answer is never a panic and never a 5xx.
#![no_main]

use std::sync::{LazyLock, Once};

use auth_api::App;
use accounts::flows::Accounts;
use accounts::passwords::Passwords;
use accounts::model::session::SessionSettings;
use accounts::store::MemoryStore;
use libfuzzer_sys::fuzz_target;
use shared::config::TokenSettings;
use shared::{KeySet, SigningKey, TokenIssuer, TokenVerifier};

static APP: LazyLock<App<MemoryStore>> = LazyLock::new(|| {
    let settings = TokenSettings {
        issuer: "https://auth.fuzz".into(),
        audience: "fuzz".into(),
    };
    let key = SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid");
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).expect("one key");
    App {
        accounts: Accounts {
            store: MemoryStore::new(),
            issuer: TokenIssuer::new(key, settings.clone(), 900),
            passwords: Passwords::new(4).expect("cost 4"),
            sessions: SessionSettings::default(),
            clock: std::sync::Arc::new(shared::SystemClock),
            recovery: Default::default(),
            mfa_key: Some(accounts::model::mfa::MfaKey::generate()),
            client_token_ttl_seconds: 3600,
            passkeys: None,
            hooks: Default::default(),
            federation: Default::default(),
        },
        verifier: TokenVerifier::new(keys, settings, 30),
        // Every browser path: CORS on, cookie and body transports.
        browser: auth_api::http::browser::BrowserSettings::new(
            auth_api::http::browser::AllowedOrigins::parse("https://app.example.com").expect("an origin"),
            auth_api::http::browser::RefreshTransport::Both,
        )
        .expect("origins without a wildcard"),
        published_scopes: Vec::new(),
        pages: auth_api::http::pages::Branding::default(),
    }
});

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

static QUIET_PANICS: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    // auth-api catches lambda_http's panics on events it cannot convert, on purpose
    // (auth_api::http::lambda), and answers 400. libfuzzer-sys's hook would abort on those caught
    // panics too; without it, a panic nobody catches still aborts the run (libfuzzer-sys
    // wraps each input in catch_unwind and aborts when it unwinds).
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = auth_api::http::lambda::request_from_json(text) else {
        return;
    };
    let response = RUNTIME.block_on(APP.handle(request));
    assert!(response.status().as_u16() < 500, "{}", response.status());
});
