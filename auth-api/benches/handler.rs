//! Whole requests through the auth-api handler, over the in-memory store, at the production
//! floor of bcrypt cost 10: a login, a login for an unknown email, a login with a wrong
//! password (these two must cost the same), and a registration.

// A benchmark that cannot set up should stop loudly, as a test would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use accounts::flows::Accounts;
use accounts::model::session::SessionSettings;
use accounts::passwords::Passwords;
use accounts::store::{AttemptStore, MemoryStore};
use auth_api::App;
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};
use shared::config::TokenSettings;
use shared::{KeySet, SigningKey, TokenIssuer, TokenVerifier};

const PASSWORD: &str = "correct horse battery staple";
const COST: u32 = 10;

fn app() -> App<MemoryStore> {
    let mut recovery: accounts::recovery::Recovery = Default::default();
    // Every registration comes from one (unknown) address here.
    recovery.settings.registrations_per_source_per_hour = u32::MAX;
    let settings = TokenSettings {
        issuer: "https://auth.bench".into(),
        audience: "bench-api".into(),
    };
    let key = SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid");
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    App {
        accounts: Accounts {
            store: MemoryStore::new(),
            issuer: TokenIssuer::new(key, settings.clone(), 900),
            passwords: Passwords::new(COST).unwrap(),
            sessions: SessionSettings::default(),
            clock: std::sync::Arc::new(shared::SystemClock),
            recovery,
            mfa_key: Some(accounts::model::mfa::MfaKey::generate()),
            client_token_ttl_seconds: 3600,
            passkeys: None,
            hooks: Default::default(),
            federation: Default::default(),
        },
        verifier: TokenVerifier::new(keys, settings, 30),
        browser: Default::default(),
        published_scopes: Vec::new(),
        pages: auth_api::http::pages::Branding::default(),
    }
}

fn post(path: &str, email: &str, password: &str) -> Request {
    let body = serde_json::json!({"email": email, "password": password}).to_string();
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = app();
    let status = |req| runtime.block_on(app.handle(req)).status().as_u16();
    assert_eq!(status(post("/register", "ada@example.com", PASSWORD)), 201);

    let mut group = c.benchmark_group("auth-api handler, bcrypt cost 10");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));
    group.bench_function("login", |b| {
        b.iter(|| {
            assert_eq!(
                status(black_box(post("/login", "ada@example.com", PASSWORD))),
                200
            )
        })
    });
    // Different emails, so the backoff never engages; each is unknown or wrong once.
    let n = AtomicU64::new(0);
    group.bench_function("login unknown email", |b| {
        b.iter(|| {
            let email = format!("nobody{}@example.com", n.fetch_add(1, Ordering::Relaxed));
            assert_eq!(status(black_box(post("/login", &email, PASSWORD))), 401)
        })
    });
    let wrong = "wrong horse battery staple";
    let ada = accounts::model::credentials::Email::parse("ada@example.com").unwrap();
    // The source the backoff counts these requests under (they carry no request context).
    let source = auth_api::http::request::client(&post("/login", "ada@example.com", wrong))
        .source()
        .clone();
    group.bench_function("login wrong password", |b| {
        b.iter(|| {
            assert_eq!(
                status(black_box(post("/login", "ada@example.com", wrong))),
                401
            );
            // Forget the failure (a microsecond), so the backoff never engages.
            runtime
                .block_on(app.accounts.store.forget_login_failures(
                    &ada,
                    &source,
                    true,
                    shared::token::now_unix_ms(),
                ))
                .unwrap();
        })
    });
    // A user with two-factor sign-in on: its wrong passwords must cost what anyone's do, and
    // its right password (the password step, answering mfa_required) what a login does.
    assert_eq!(status(post("/register", "mfa@example.com", PASSWORD)), 201);
    let mfa_email = accounts::model::credentials::Email::parse("mfa@example.com").unwrap();
    runtime.block_on(async {
        use accounts::store::{MfaStore, UserStore};
        let source = auth_api::http::request::client(&post("/login", "mfa@example.com", PASSWORD))
            .source()
            .clone();
        let (user, _) = app
            .accounts
            .store
            .find_user_for_login(&mfa_email, &source)
            .await
            .unwrap();
        let user = user.unwrap();
        let key = app.accounts.mfa_key.as_ref().unwrap();
        let sealed = key
            .seal(user.user_id, &accounts::model::mfa::TotpSecret::generate())
            .unwrap();
        let on = accounts::model::mfa::MfaState {
            secret: Some(sealed),
            ..Default::default()
        };
        app.accounts.store.save_mfa(&user, &on, None).await.unwrap();
    });
    group.bench_function("login password step, two-factor user", |b| {
        b.iter(|| {
            assert_eq!(
                status(black_box(post("/login", "mfa@example.com", PASSWORD))),
                200
            );
            // The step stays counted until a code completes it; forget it (a microsecond),
            // so the backoff never engages.
            runtime
                .block_on(app.accounts.store.forget_login_failures(
                    &mfa_email,
                    &source,
                    true,
                    shared::token::now_unix_ms(),
                ))
                .unwrap();
        })
    });
    group.bench_function("login wrong password, two-factor user", |b| {
        b.iter(|| {
            assert_eq!(
                status(black_box(post("/login", "mfa@example.com", wrong))),
                401
            );
            runtime
                .block_on(app.accounts.store.forget_login_failures(
                    &mfa_email,
                    &source,
                    true,
                    shared::token::now_unix_ms(),
                ))
                .unwrap();
        })
    });
    group.bench_function("register", |b| {
        b.iter(|| {
            let email = format!("new{}@example.com", n.fetch_add(1, Ordering::Relaxed));
            assert_eq!(status(black_box(post("/register", &email, PASSWORD))), 201)
        })
    });
    group.finish();

    legacy_logins(c, &runtime);
    costly_hash_logins(c, &runtime);
    token_endpoint(c, &runtime);
    code_exchange(c, &runtime);
    passkey_sign_in(c, &runtime);

    // bcrypt alone, as the peer's bcryptjs compareSync is measured.
    let hash = bcrypt::hash(PASSWORD, COST).unwrap();
    c.bench_function("bcrypt verify cost 10", |b| {
        b.iter(|| assert!(bcrypt::verify(black_box(PASSWORD), black_box(&hash)).unwrap()))
    });
}

/// `POST /oauth2/token` with client_credentials: a secret's SHA-256, the two counters, the
/// token signed (EdDSA). No bcrypt: a machine client's request costs microseconds.
fn token_endpoint(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    use accounts::model::registry::{ClientRecord, ClientSpec, parse_scopes};
    use accounts::store::ClientStore;
    use secrecy::ExposeSecret;
    let app = app();
    let (client, secret) = ClientRecord::create(
        ClientSpec {
            name: Some("bench".into()),
            scopes: Some(parse_scopes("orders:read orders:write").unwrap()),
            ..ClientSpec::default()
        },
        "bench",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    runtime
        .block_on(app.accounts.store.create_client(&client))
        .unwrap();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                client.client_id,
                secret.unwrap().encode().expose_secret()
            )
        )
    );
    let request = || {
        http::Request::builder()
            .method("POST")
            .uri("/oauth2/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &basic)
            .body(Body::from(
                "grant_type=client_credentials&scope=orders:read",
            ))
            .unwrap()
    };
    c.bench_function("auth-api token endpoint, client_credentials", |b| {
        b.iter(|| {
            let status = runtime.block_on(app.handle(black_box(request()))).status();
            assert_eq!(status.as_u16(), 200);
        })
    });
}

/// `POST /oauth2/token` with authorization_code: the code spent, its PKCE verifier checked,
/// the session and user read, a refresh token added to the session, the code marked issued,
/// an access token and an ID token signed (EdDSA). Each iteration spends a fresh code.
fn code_exchange(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    use accounts::model::oidc::{CodeChallenge, CodeRecord};
    use accounts::model::registry::{ClientRecord, ClientSpec, ClientType, GrantType};
    use accounts::model::session::{ClientInfo, SessionFamily};
    use accounts::model::token::OpaqueToken;
    use accounts::model::user::UserRecord;
    use accounts::store::{AuthorizationStore, ClientStore, SessionStore, UserStore};
    use base64::Engine as _;
    use secrecy::ExposeSecret;
    use sha2::Digest as _;
    const REDIRECT: &str = "https://app.bench/callback";
    let app = app();
    let store = &app.accounts.store;
    let (client, _) = ClientRecord::create(
        ClientSpec {
            name: Some("bench app".into()),
            client_type: Some(ClientType::Public),
            grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
            redirect_uris: Some(vec![REDIRECT.into()]),
            first_party: Some(true),
            ..ClientSpec::default()
        },
        "bench",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    let user = UserRecord::new(
        accounts::model::credentials::Email::parse("ada@example.com").unwrap(),
        "$2b$10$abcdefghijklmnopqrstuu5Zp3Jh4y8pXbL3J1kT9m1wX8n2e6Qy2"
            .to_owned()
            .into(),
        time::OffsetDateTime::now_utc(),
    );
    let now_ms = shared::token::now_unix_ms();
    let (_, family, record) = SessionFamily::begin(&user, 0, now_ms, 86_400, ClientInfo::default());
    runtime.block_on(async {
        store.create_client(&client).await.unwrap();
        store.create_user(&user).await.unwrap();
        store.start_session(&family, &record).await.unwrap();
    });
    let verifier = "b".repeat(64);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let fresh_code = || {
        let code = OpaqueToken::generate();
        let saved = CodeRecord {
            hash: code.hash(),
            client_id: client.client_id.clone(),
            redirect_uri: REDIRECT.into(),
            challenge: CodeChallenge::from_stored(challenge.clone()),
            scope: "openid email offline_access".into(),
            nonce: Some("n".into()),
            user_id: user.user_id,
            email: user.email.clone(),
            family_id: family.family_id,
            expires_at: shared::token::now_unix() + 3600,
        };
        runtime.block_on(store.save_code(&saved)).unwrap();
        let body = format!(
            "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={verifier}",
            client.client_id,
            code.encode().expose_secret(),
            "https%3A%2F%2Fapp.bench%2Fcallback",
        );
        http::Request::builder()
            .method("POST")
            .uri("/oauth2/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    c.bench_function(
        "auth-api code exchange, authorization_code with PKCE",
        |b| {
            b.iter_batched(
                fresh_code,
                |request| {
                    let status = runtime.block_on(app.handle(black_box(request))).status();
                    assert_eq!(status.as_u16(), 200);
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

/// Accounts imported from the Node.js original: a `$2a$` hash at cost 10 of the trimmed
/// password, here under a configured cost of 11, so a wrong password against it is padded
/// with a dummy check at cost 10. A login's work must depend only on the submitted password:
/// the same for an unknown email and a wrong password of an imported account, with or without
/// surrounding white space (which makes two checks for everyone).
fn legacy_logins(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    const LEGACY_COST: u32 = 10;
    let mut app = app();
    app.accounts.passwords = Passwords::new(LEGACY_COST + 1).unwrap();
    let hash = bcrypt::hash_with_result("hunter2 rocks", LEGACY_COST)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let user = accounts::model::user::UserRecord {
        username: Some("legacy".into()),
        legacy_password: true,
        mfa: Default::default(),
        ..accounts::model::user::UserRecord::new(
            accounts::model::credentials::Email::parse("legacy@example.com").unwrap(),
            hash.into(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    };
    use accounts::store::UserStore as _;
    runtime
        .block_on(app.accounts.store.create_user(&user))
        .unwrap();
    let status = |req| runtime.block_on(app.handle(req)).status().as_u16();
    let source = auth_api::http::request::client(&post("/login", "legacy@example.com", "x"))
        .source()
        .clone();

    let mut group = c.benchmark_group("legacy logins, bcrypt cost 11, imported hash cost 10");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));
    let n = AtomicU64::new(0);
    for (name, password) in [
        ("plain password", "wrong horse battery staple"),
        (
            "password with surrounding white space",
            " wrong horse battery staple ",
        ),
    ] {
        group.bench_function(format!("unknown email, {name}"), |b| {
            b.iter(|| {
                let email = format!("nobody{}@example.com", n.fetch_add(1, Ordering::Relaxed));
                assert_eq!(status(black_box(post("/login", &email, password))), 401)
            })
        });
        group.bench_function(format!("imported account, wrong {name}"), |b| {
            b.iter(|| {
                assert_eq!(
                    status(black_box(post("/login", "legacy@example.com", password))),
                    401
                );
                runtime
                    .block_on(app.accounts.store.forget_login_failures(
                        &user.email,
                        &source,
                        true,
                        shared::token::now_unix_ms(),
                    ))
                    .unwrap();
            })
        });
    }
    group.finish();
}

/// An account whose stored hash is costlier than the configured cost (an import at cost 11
/// under 10): until its owner's next successful login, each of its logins costs more than an
/// unknown email's (import refuses hashes above --max-cost, so the gap is bounded); that login
/// rehashes it at the configured cost, and from then on a wrong password costs what anyone's
/// does.
fn costly_hash_logins(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let app = app();
    let hash = bcrypt::hash(PASSWORD, COST + 1).unwrap();
    let user = accounts::model::user::UserRecord::new(
        accounts::model::credentials::Email::parse("costly@example.com").unwrap(),
        hash.into(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    use accounts::store::UserStore as _;
    runtime
        .block_on(app.accounts.store.create_user(&user))
        .unwrap();
    let status = |req| runtime.block_on(app.handle(req)).status().as_u16();
    let wrong = "wrong horse battery staple";
    let source = auth_api::http::request::client(&post("/login", "costly@example.com", wrong))
        .source()
        .clone();
    let mut group = c.benchmark_group("costly stored hash, bcrypt cost 10, stored cost 11");
    group
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));
    let n = AtomicU64::new(0);
    group.bench_function("unknown email", |b| {
        b.iter(|| {
            let email = format!("nobody{}@example.com", n.fetch_add(1, Ordering::Relaxed));
            assert_eq!(status(black_box(post("/login", &email, wrong))), 401)
        })
    });
    let mut wrong_password = |name: &str| {
        group.bench_function(name, |b| {
            b.iter(|| {
                assert_eq!(
                    status(black_box(post("/login", "costly@example.com", wrong))),
                    401
                );
                runtime
                    .block_on(app.accounts.store.forget_login_failures(
                        &user.email,
                        &source,
                        true,
                        shared::token::now_unix_ms(),
                    ))
                    .unwrap();
            })
        });
    };
    wrong_password("wrong password, before its owner's next login");
    // The owner signs in: the hash is rehashed at cost 10.
    assert_eq!(status(post("/login", "costly@example.com", PASSWORD)), 200);
    wrong_password("wrong password, after its owner's next login");
    group.finish();
}

/// `POST /passkeys/login` with a discoverable ES256 passkey: the challenge taken once, the
/// client data and authenticator data checked, the P-256 signature verified, the use
/// recorded, a session started and an access token signed (EdDSA). Each iteration asks for
/// fresh options first (outside the measurement) and signs them as an authenticator would.
fn passkey_sign_in(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    use accounts::model::passkey::{Passkey, PasskeyName, PasskeySettings};
    use accounts::model::user::UserRecord;
    use accounts::model::webauthn::{RelyingParty, passkey_id};
    use accounts::store::{PasskeyStore, UserStore};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::ecdsa::signature::Signer as _;
    use sha2::Digest as _;
    const ORIGIN: &str = "https://auth.bench";
    let mut app = app();
    app.accounts.passkeys = Some(PasskeySettings {
        rp: RelyingParty::new("auth.bench", "Bench", &[ORIGIN.to_owned()]).unwrap(),
        decoy_key: [7; 32],
    });
    let key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
    let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
    cose.extend_from_slice(point.x().unwrap());
    cose.extend_from_slice(&[0x22, 0x58, 0x20]);
    cose.extend_from_slice(point.y().unwrap());
    let user = UserRecord::new(
        accounts::model::credentials::Email::parse("pat@example.com").unwrap(),
        "$2b$10$abcdefghijklmnopqrstuu5Zp3Jh4y8pXbL3J1kT9m1wX8n2e6Qy2"
            .to_owned()
            .into(),
        time::OffsetDateTime::now_utc(),
    );
    let credential_id = vec![9u8; 32];
    let passkey = Passkey {
        id: passkey_id(&credential_id),
        credential_id: credential_id.clone(),
        user_id: user.user_id,
        name: PasskeyName::parse("bench key").unwrap(),
        public_key: cose,
        algorithm: -7,
        sign_count: 0,
        backup_eligible: true,
        backed_up: true,
        transports: vec!["internal".into()],
        created_at_ms: shared::token::now_unix_ms(),
        last_used_at_ms: None,
    };
    runtime.block_on(async {
        app.accounts.store.create_user(&user).await.unwrap();
        app.accounts
            .store
            .add_passkey(&user, &passkey)
            .await
            .unwrap();
    });
    // Up, user verified, backup eligible, backed up; no counter (a synced passkey's).
    let mut authenticator_data = sha2::Sha256::digest(b"auth.bench").to_vec();
    authenticator_data.extend_from_slice(&[0x01 | 0x04 | 0x08 | 0x10, 0, 0, 0, 0]);
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let signed_request = || {
        let options = runtime.block_on(
            app.handle(
                http::Request::builder()
                    .method("POST")
                    .uri("/passkeys/login/options")
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .unwrap(),
            ),
        );
        assert_eq!(options.status().as_u16(), 200);
        let options: serde_json::Value = serde_json::from_slice(options.body()).unwrap();
        let challenge = options["options"]["challenge"].as_str().unwrap();
        let client_data = format!(
            r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":false}}"#
        );
        let mut message = authenticator_data.clone();
        message.extend_from_slice(&sha2::Sha256::digest(client_data.as_bytes()));
        let signature: p256::ecdsa::Signature = key.sign(&message);
        let body = serde_json::json!({
            "challenge_id": options["challenge_id"],
            "credential": {
                "id": b64(&credential_id),
                "rawId": b64(&credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(client_data.as_bytes()),
                    "authenticatorData": b64(&authenticator_data),
                    "signature": b64(signature.to_der().as_bytes()),
                    "userHandle": b64(user.user_id.as_bytes()),
                },
                "clientExtensionResults": {},
            },
        });
        http::Request::builder()
            .method("POST")
            .uri("/passkeys/login")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    c.bench_function("auth-api passkey sign-in, ES256", |b| {
        b.iter_batched(
            signed_request,
            |request| {
                let status = runtime.block_on(app.handle(black_box(request))).status();
                assert_eq!(status.as_u16(), 200);
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
