use std::collections::HashMap;

use std::sync::Arc;

use accounts::flows::Accounts;
use accounts::mail::{MailDelivery, Outbox, SentMail};
use accounts::model::session::SessionSettings;
use accounts::passwords::Passwords;
use accounts::recovery::{Recovery, RecoverySettings};
use accounts::store::Store;
use auth_api::App;
use http::HeaderMap;
use lambda_http::{Body, Response};
use serde_json::Value;
use shared::config::TokenSettings;
use shared::{KeySet, SigningKey, TokenIssuer, TokenVerifier};

/// RFC 8037 appendix A.1's Ed25519 test key: public test material, never a real secret.
pub const TEST_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";

/// Passes the strength rules (zxcvbn score 4).
pub const STRONG_PASSWORD: &str = "correct horse battery staple";

pub fn settings() -> TokenSettings {
    TokenSettings {
        issuer: "https://auth.test".into(),
        audience: "test-api".into(),
    }
}

/// The relying party of the test app: RP ID `auth.test`, pages at [`PASSKEY_ORIGIN`] and
/// `https://app.auth.test`.
pub fn passkey_settings() -> accounts::model::passkey::PasskeySettings {
    accounts::model::passkey::PasskeySettings {
        rp: accounts::model::webauthn::RelyingParty::new(
            "auth.test",
            "Auth Test",
            &[
                PASSKEY_ORIGIN.to_owned(),
                "https://app.auth.test".to_owned(),
            ],
        )
        .expect("a valid relying party"),
        decoy_key: [7; 32],
    }
}

/// The origin the test app's passkey pages are on.
pub const PASSKEY_ORIGIN: &str = "https://auth.test";

/// The app with a fresh Ed25519 key and bcrypt cost 4 (the lowest; fine for tests only).
pub fn test_app<S: Store>(store: S) -> App<S> {
    let key = SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid");
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).expect("one key");
    App {
        accounts: Accounts {
            store,
            issuer: TokenIssuer::new(key, settings(), 900),
            passwords: Passwords::new(4).expect("cost 4 is valid"),
            sessions: SessionSettings::default(),
            clock: std::sync::Arc::new(shared::SystemClock),
            recovery: Recovery {
                mail: MailDelivery::Outbox(Arc::new(Outbox::new())),
                // Tests of timing are benchmarks; here answers come at once.
                settings: RecoverySettings {
                    response_floor: std::time::Duration::ZERO,
                    ..RecoverySettings::default()
                },
            },
            mfa_key: Some(accounts::model::mfa::MfaKey::generate()),
            client_token_ttl_seconds: 3600,
            passkeys: Some(passkey_settings()),
            hooks: Default::default(),
            federation: Default::default(),
        },
        verifier: TokenVerifier::new(keys, settings(), 30),
        browser: Default::default(),
        published_scopes: Vec::new(),
        pages: auth_api::http::pages::Branding::default(),
    }
}

/// Sends `event` to the app; the answer read whole.
pub async fn send<S: Store>(app: &App<S>, event: crate::events::Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

/// Sends `body` to `path` as a REST API POST event; with `sub`, as the authorizer's caller
/// (ada@example.com's email).
pub async fn post<S: Store>(app: &App<S>, path: &str, body: Value, sub: Option<&str>) -> Answer {
    let mut event = crate::events::Event::post_json(crate::events::Kind::RestV1, path, &body);
    if let Some(sub) = sub {
        event = event.authorized(sub, "ada@example.com");
    }
    Answer::from_response(app.handle(event.request()).await)
}

/// A new access token of the same user and session as `access` (issued by `app`), signed
/// with `key`: what a release binary given only `key` must accept while the session lives.
pub fn same_session_token<S>(app: &App<S>, access: &str, key: SigningKey) -> String {
    use secrecy::ExposeSecret as _;
    let claims = app.verifier.verify(access).expect("app's own access token");
    let subject = shared::Subject {
        user_id: claims.sub.parse().expect("a UUID sub"),
        email: claims.email.clone(),
        roles: claims.roles.clone(),
        email_verified: claims.email_verified,
        session_id: claims
            .sid
            .as_deref()
            .map(|s| s.parse().expect("a UUID sid")),
        method: shared::SignInMethod::from_amr(&claims.amr).unwrap_or_default(),
    };
    TokenIssuer::new(key, settings(), 900)
        .issue(&subject, shared::token::now_unix())
        .expect("a token")
        .token
        .expose_secret()
        .to_owned()
}

/// The mail `app` kept in its outbox, oldest first (empty if its mail goes elsewhere).
pub fn outbox<S>(app: &App<S>) -> Vec<SentMail> {
    match &app.accounts.recovery.mail {
        MailDelivery::Outbox(outbox) => outbox.sent(),
        _ => Vec::new(),
    }
}

/// Verifies `email` with the link of the newest verification mail `app` kept: what its owner
/// does by opening the mail (two-factor enrollment needs a verified address when mail is on).
pub async fn verify_from_outbox<S: accounts::store::Store>(app: &App<S>, email: &str) {
    let mail = outbox(app)
        .into_iter()
        .rev()
        .find(|m| m.to == email && m.subject.starts_with("Verify your email"))
        .unwrap_or_else(|| panic!("no verification mail to {email}"));
    let body = serde_json::json!({"token": link_token(&mail.text)});
    let event =
        crate::events::Event::post_json(crate::events::Kind::RestV1, "/email/verify", &body);
    let answer = Answer::from_response(app.handle(event.request()).await);
    assert_eq!(answer.status, 200, "verify {email}: {}", answer.text);
}

/// The token in the link of a mail's text (`…token=<43 characters>`).
pub fn link_token(text: &str) -> String {
    let start = text.find("token=").expect("a link with a token") + "token=".len();
    text[start..start + 43].to_owned()
}

/// A response taken apart for assertions.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn from_response(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let text = match body {
            Body::Empty => String::new(),
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8(b).expect("responses are UTF-8"),
            _ => String::new(),
        };
        Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        for member in ["type", "title", "detail"] {
            assert!(body[member].is_string(), "problem lacks {member}: {body}");
        }
        assert_eq!(body["status"], status);
        body
    }

    /// The `errors` of a validation problem, as field → messages.
    pub fn field_errors(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for e in self.problem(400)["errors"].as_array().expect("errors list") {
            out.entry(e["field"].as_str().unwrap().to_owned())
                .or_default()
                .push(e["message"].as_str().unwrap().to_owned());
        }
        out
    }
}

/// `app` on a [`shared::ManualClock`] starting now, and the clock, to move time by hand.
pub fn with_clock<S>(mut app: App<S>) -> (App<S>, shared::ManualClock) {
    let clock = shared::ManualClock::starting_now();
    app.accounts.clock = std::sync::Arc::new(clock.clone());
    (app, clock)
}

/// Registers `email` with [`STRONG_PASSWORD`] through `POST /register`; its user id.
pub async fn register_user<S: Store>(app: &App<S>, email: &str) -> String {
    let answer = post(
        app,
        "/register",
        serde_json::json!({"email": email, "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["user_id"].as_str().unwrap().to_owned()
}
