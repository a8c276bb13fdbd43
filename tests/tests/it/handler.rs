//! The auth-api handler answering real API Gateway events (REST v1, HTTP API v2, function
//! URL), over the in-memory store.

use accounts::store::MemoryStore;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, test_app};
use integration_tests::events::{ALL_KINDS, Event, Kind};
use serde_json::{Value, json};

async fn send(app: &App<MemoryStore>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

async fn register(app: &App<MemoryStore>, kind: Kind, email: &str, password: &str) -> Answer {
    send(
        app,
        Event::post_json(kind, "/register", &credentials(email, password)),
    )
    .await
}

async fn login(app: &App<MemoryStore>, kind: Kind, email: &str, password: &str) -> Answer {
    send(
        app,
        Event::post_json(kind, "/login", &credentials(email, password)),
    )
    .await
}

/// Registers `email` and returns a fresh access token for it.
async fn signed_up_token(app: &App<MemoryStore>, kind: Kind, email: &str) -> String {
    assert_eq!(
        register(app, kind, email, STRONG_PASSWORD).await.status,
        201
    );
    login(app, kind, email, STRONG_PASSWORD).await.json()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[tokio::test]
async fn register_login_and_verify_work_for_every_event_shape() {
    for kind in ALL_KINDS {
        let app = test_app(MemoryStore::new());
        let registered = register(&app, kind, "  Ada@Example.com ", STRONG_PASSWORD).await;
        assert_eq!(registered.status, 201, "{kind:?}: {}", registered.text);
        let body = registered.json();
        assert_eq!(body["email"], "ada@example.com");
        let user_id = body["user_id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&user_id).is_ok());
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(body.get("password").is_none() && body.get("password_hash").is_none());

        let logged_in = login(&app, kind, "ADA@example.com", STRONG_PASSWORD).await;
        assert_eq!(logged_in.status, 200, "{kind:?}: {}", logged_in.text);
        assert_eq!(logged_in.header("cache-control"), Some("no-store"));
        let tokens = logged_in.json();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        let token = tokens["access_token"].as_str().unwrap();

        let verified = send(&app, Event::get(kind, "/verify").bearer(token)).await;
        assert_eq!(verified.status, 200, "{kind:?}: {}", verified.text);
        let claims = verified.json();
        assert_eq!(claims["sub"], user_id.as_str());
        assert_eq!(claims["email"], "ada@example.com");
        assert_eq!(claims["roles"], json!(["user"]));
        assert_eq!(claims["iss"], "https://auth.test");
        assert_eq!(claims["aud"], "test-api");
    }
}

#[tokio::test]
async fn routes_are_found_behind_named_stages() {
    for kind in [Kind::RestV1, Kind::HttpV2] {
        let app = test_app(MemoryStore::new());
        let answer = send(&app, Event::get(kind, "/health").on_named_stage("prod")).await;
        assert_eq!(answer.status, 200, "{kind:?}: {}", answer.text);
        assert_eq!(answer.json(), json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_are_405_with_allow() {
    let app = test_app(MemoryStore::new());
    for kind in ALL_KINDS {
        send(&app, Event::get(kind, "/nope")).await.problem(404);
        let answer = send(&app, Event::get(kind, "/login")).await;
        answer.problem(405);
        assert_eq!(answer.header("allow"), Some("POST, OPTIONS"));
        let answer = send(&app, Event::post_json(kind, "/health", &json!({}))).await;
        answer.problem(405);
        assert_eq!(answer.header("allow"), Some("GET, OPTIONS"));
        // OPTIONS without an Origin is no preflight: what the route allows, nothing else.
        let answer = send(&app, Event::new(kind, "OPTIONS", "/login").no_body()).await;
        assert_eq!(answer.status, 204);
        assert_eq!(answer.header("allow"), Some("POST, OPTIONS"));
        assert_eq!(answer.header("access-control-allow-origin"), None);
        // With CORS off, a browser's preflight is refused, whatever the origin.
        let preflight = Event::new(kind, "OPTIONS", "/login")
            .no_body()
            .header("Origin", "https://app.example.com");
        send(&app, preflight).await.problem(403);
    }
}

/// Without mail there is no other way to tell the person registering: a taken email is 409
/// (with mail, see recovery.rs: the same answer as a new one).
#[tokio::test]
async fn without_mail_a_duplicate_email_is_409_and_the_first_account_still_logs_in() {
    let mut app = test_app(MemoryStore::new());
    app.accounts.recovery.mail = accounts::mail::MailDelivery::Disabled;
    assert_eq!(
        register(&app, Kind::RestV1, "ada@example.com", STRONG_PASSWORD)
            .await
            .status,
        201
    );
    let again = register(
        &app,
        Kind::RestV1,
        "ADA@example.com",
        "another Strong passphrase 42",
    )
    .await;
    assert_eq!(
        again.problem(409)["type"],
        "urn:problem-type:auth:email-taken"
    );
    assert_eq!(
        login(&app, Kind::RestV1, "ada@example.com", STRONG_PASSWORD)
            .await
            .status,
        200
    );
    let hijack = login(
        &app,
        Kind::RestV1,
        "ada@example.com",
        "another Strong passphrase 42",
    )
    .await;
    assert_eq!(hijack.status, 401);
}

#[tokio::test]
async fn every_field_problem_is_listed_at_once() {
    let app = test_app(MemoryStore::new());
    let answer = register(&app, Kind::HttpV2, "not-an-email", "short").await;
    let errors = answer.field_errors();
    assert!(
        errors["email"][0].contains("name@example.com"),
        "{errors:?}"
    );
    assert!(errors["password"][0].contains("at least 8"), "{errors:?}");
}

#[tokio::test]
async fn a_weak_password_is_refused_with_zxcvbn_feedback() {
    let app = test_app(MemoryStore::new());
    let answer = register(&app, Kind::HttpV2, "ada@example.com", "password1234").await;
    let errors = answer.field_errors();
    assert!(
        errors["password"][0].contains("too easy to guess"),
        "{errors:?}"
    );
    assert!(
        errors["password"][0].len() > "is too easy to guess".len() + 30,
        "carries feedback"
    );
}

#[tokio::test]
async fn passwords_over_72_bytes_are_refused_not_truncated() {
    let app = test_app(MemoryStore::new());
    let base = "Tr0ub4dor&3-correct-horse-battery-staple-zebra-quantum-violet-9f8e7d6c5b";
    assert_eq!(base.len(), 72);
    let too_long = format!("{base}X");
    let answer = register(&app, Kind::RestV1, "ada@example.com", &too_long).await;
    assert!(answer.field_errors()["password"][0].contains("at most 72 bytes"));

    assert_eq!(
        register(&app, Kind::RestV1, "ada@example.com", base)
            .await
            .status,
        201
    );
    // Its first 72 bytes are the real password, yet it does not open the account.
    assert_eq!(
        login(&app, Kind::RestV1, "ada@example.com", &too_long)
            .await
            .status,
        401
    );
    assert_eq!(
        login(&app, Kind::RestV1, "ada@example.com", base)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn passwords_are_used_exactly_as_typed() {
    let app = test_app(MemoryStore::new());
    let spaced = "  correct horse battery staple  ";
    assert_eq!(
        register(&app, Kind::RestV1, "ada@example.com", spaced)
            .await
            .status,
        201
    );
    assert_eq!(
        login(&app, Kind::RestV1, "ada@example.com", spaced)
            .await
            .status,
        200
    );
    assert_eq!(
        login(&app, Kind::RestV1, "ada@example.com", spaced.trim())
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = test_app(MemoryStore::new());
    register(&app, Kind::RestV1, "ada@example.com", STRONG_PASSWORD).await;
    let wrong_password = login(
        &app,
        Kind::RestV1,
        "ada@example.com",
        "wrong horse battery staple",
    )
    .await;
    let unknown_email = login(&app, Kind::RestV1, "nobody@example.com", STRONG_PASSWORD).await;
    let malformed_email = login(&app, Kind::RestV1, "nobody", STRONG_PASSWORD).await;
    wrong_password.problem(401);
    for other in [&unknown_email, &malformed_email] {
        assert_eq!(other.status, wrong_password.status);
        assert_eq!(
            other.text, wrong_password.text,
            "bodies must be byte-identical"
        );
        assert_eq!(other.headers, wrong_password.headers);
    }
}

#[tokio::test]
async fn bad_bodies_get_a_clear_4xx() {
    let app = test_app(MemoryStore::new());
    for kind in ALL_KINDS {
        let post = || Event::new(kind, "POST", "/register");
        let cases: Vec<(Event, u16, &str)> = vec![
            (
                post().no_body().header("content-type", "application/json"),
                400,
                "required",
            ),
            (post().body("{\"email\": "), 400, "not valid JSON"),
            (post().body("[1, 2]"), 400, "JSON object"),
            (post().body("\"text\""), 400, "JSON object"),
            (
                post()
                    .body(&credentials("a@b.co", STRONG_PASSWORD).to_string())
                    .header("content-type", "text/plain"),
                415,
                "application/json",
            ),
            (
                post()
                    .body(&credentials("a@b.co", STRONG_PASSWORD).to_string())
                    .without_header("content-type"),
                415,
                "application/json",
            ),
            (post().base64_body(b"\xff\xfe{}"), 400, "UTF-8"),
            (post().body(&"x".repeat(64 * 1024 + 1)), 413, "65536"),
        ];
        for (event, status, words) in cases {
            let answer = send(&app, event).await;
            let problem = answer.problem(status);
            assert!(
                problem["detail"].as_str().unwrap().contains(words),
                "{kind:?}: {problem}"
            );
        }
    }
}

#[tokio::test]
async fn wrong_types_nesting_and_unknown_fields_are_named() {
    let app = test_app(MemoryStore::new());
    let send_body = |body: Value| send(&app, Event::post_json(Kind::HttpV2, "/register", &body));
    let errors = send_body(json!({"email": 42, "password": ["x"]}))
        .await
        .field_errors();
    assert_eq!(errors["email"], vec!["must be a string"]);
    assert_eq!(errors["password"], vec!["must be a string"]);
    let errors = send_body(json!({"email": {"nested": {"deep": true}}}))
        .await
        .field_errors();
    assert_eq!(errors["email"], vec!["must be a string"]);
    assert_eq!(errors["password"], vec!["is required"]);
    let errors = send_body(json!({"email": "a@b.co", "password": STRONG_PASSWORD, "pasword": "x"}))
        .await
        .field_errors();
    assert!(errors["body"][0].contains("pasword"), "{errors:?}");
    let errors = send(
        &app,
        Event::post_json(Kind::HttpV2, "/login", &json!({"email": null})),
    )
    .await
    .field_errors();
    assert_eq!(errors["email"], vec!["is required"]);
    assert_eq!(errors["password"], vec!["is required"]);
}

#[tokio::test]
async fn a_base64_encoded_json_body_is_accepted() {
    let app = test_app(MemoryStore::new());
    let body = credentials("ada@example.com", STRONG_PASSWORD).to_string();
    let event = Event::new(Kind::HttpV2, "POST", "/register").base64_body(body.as_bytes());
    assert_eq!(send(&app, event).await.status, 201);
}

#[tokio::test]
async fn events_lambda_http_cannot_convert_get_a_400_problem_not_a_panic() {
    let app = test_app(MemoryStore::new());
    for kind in ALL_KINDS {
        let mut not_base64 = Event::new(kind, "POST", "/register").to_json();
        not_base64["body"] = json!("this is not base64!");
        not_base64["isBase64Encoded"] = json!(true);
        let mut bad_host = Event::get(kind, "/health").to_json();
        bad_host["headers"]["host"] = json!("exa mple.com");
        // Found by the auth_api_event fuzzer: a scheme lambda_http cannot put in a URL.
        let mut bad_scheme = Event::get(kind, "/health").to_json();
        bad_scheme["headers"]["x-forwarded-proto"] = json!("_ttps");
        // Found by the fuzzer too: no Host header, and a domain name that is no host name.
        let mut bad_domain = Event::get(kind, "/health").to_json();
        for name in ["host", "Host"] {
            if let Some(headers) = bad_domain["headers"].as_object_mut() {
                headers.remove(name);
            }
            if let Some(headers) = bad_domain["multiValueHeaders"].as_object_mut() {
                headers.remove(name);
            }
        }
        bad_domain["requestContext"]["domainName"] =
            json!("a1b2.execute-api. s-east-1.amazonaws.com");
        for payload in [not_base64, bad_host, bad_scheme, bad_domain] {
            let request = auth_api::http::lambda::request_from_json(&payload.to_string())
                .expect("a well-formed event");
            let answer = Answer::from_response(app.handle(request).await);
            assert_eq!(
                answer.problem(400)["type"],
                "urn:problem-type:auth:malformed-body",
                "{kind:?}: {payload}"
            );
        }
    }
}

#[tokio::test]
async fn verify_refuses_missing_forged_and_foreign_tokens() {
    let app = test_app(MemoryStore::new());
    let token = signed_up_token(&app, Kind::RestV1, "ada@example.com").await;
    let other_app = test_app(MemoryStore::new());
    let foreign = signed_up_token(&other_app, Kind::RestV1, "ada@example.com").await;
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases = [
        Event::get(Kind::RestV1, "/verify"),
        Event::get(Kind::RestV1, "/verify").header("Authorization", "Basic YTpi"),
        Event::get(Kind::RestV1, "/verify").header("Authorization", "Bearer"),
        Event::get(Kind::RestV1, "/verify").bearer(&tampered),
        Event::get(Kind::RestV1, "/verify").bearer(&foreign),
        Event::get(Kind::RestV1, "/verify").bearer("not.a.jwt"),
    ];
    let mut bodies = Vec::new();
    for event in cases {
        let answer = send(&app, event).await;
        answer.problem(401);
        assert!(
            answer
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
        bodies.push(answer.text);
    }
    bodies.dedup();
    assert_eq!(
        bodies.len(),
        1,
        "every refusal looks the same to the client"
    );
    assert_eq!(
        send(&app, Event::get(Kind::RestV1, "/verify").bearer(&token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn verify_answers_from_the_token_never_from_the_request() {
    let app = test_app(MemoryStore::new());
    let token = signed_up_token(&app, Kind::HttpV2, "ada@example.com").await;
    let event = Event::new(Kind::HttpV2, "GET", "/verify")
        .bearer(&token)
        .body(r#"{"email":"mallory@evil.example","roles":["admin"]}"#);
    let claims = send(&app, event).await.json();
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["roles"], json!(["user"]));
}

#[tokio::test]
async fn me_answers_the_profile_of_the_authorizer_subject_only() {
    for kind in ALL_KINDS {
        let app = test_app(MemoryStore::new());
        let ada = register(&app, kind, "ada@example.com", STRONG_PASSWORD)
            .await
            .json();
        register(
            &app,
            kind,
            "grace@example.com",
            "another Strong passphrase 42",
        )
        .await;
        let sub = ada["user_id"].as_str().unwrap();
        // Whatever the client claims in headers or body, the profile is the authorizer's subject.
        let event = Event::get(kind, "/me")
            .authorized_as(sub)
            .header("x-user-id", "grace@example.com")
            .body(r#"{"email":"grace@example.com"}"#);
        let answer = send(&app, event).await;
        assert_eq!(answer.status, 200, "{kind:?}: {}", answer.text);
        let profile = answer.json();
        assert_eq!(profile["user_id"], sub);
        assert_eq!(profile["email"], "ada@example.com");
        assert_eq!(profile["roles"], json!(["user"]));
        assert_eq!(profile["created_at"], ada["created_at"]);
        assert_eq!(profile["email_verified"], false);
        assert_eq!(profile["mfa_enabled"], false);
        assert_eq!(profile["recovery_codes_left"], 0);
        assert_eq!(
            profile.as_object().unwrap().len(),
            7,
            "no password hash, no token, no MFA secret: {profile}"
        );
    }
}

#[tokio::test]
async fn me_without_an_authorizer_context_or_for_a_vanished_user_is_refused() {
    let app = test_app(MemoryStore::new());
    send(&app, Event::get(Kind::RestV1, "/me"))
        .await
        .problem(401);
    send(
        &app,
        Event::get(Kind::RestV1, "/me").authorized_as("not-a-uuid"),
    )
    .await
    .problem(401);
    let gone = send(
        &app,
        Event::get(Kind::HttpV2, "/me").authorized_as(&uuid::Uuid::new_v4().to_string()),
    )
    .await;
    assert_eq!(
        gone.problem(404)["type"],
        "urn:problem-type:auth:user-not-found"
    );
}

#[tokio::test]
async fn jwks_publishes_the_key_that_verifies_issued_tokens() {
    let app = test_app(MemoryStore::new());
    let token = signed_up_token(&app, Kind::HttpV2, "ada@example.com").await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let answer = send(&app, Event::get(Kind::HttpV2, "/.well-known/jwks.json")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/jwk-set+json")
    );
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
    let jwks = answer.json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], kid.as_str());
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none(), "never private material");
    // The published document is enough to verify the token elsewhere.
    let keys = shared::KeySet::from_jwks_json(&answer.text).unwrap();
    let verifier = shared::TokenVerifier::new(keys, integration_tests::app::settings(), 30);
    assert!(verifier.verify(&token).is_ok());
}

#[tokio::test]
async fn jwks_is_404_when_tokens_are_signed_with_a_shared_secret() {
    let mut app = test_app(MemoryStore::new());
    let key = shared::SigningKey::hs256(secrecy::SecretString::from("x".repeat(32)), None).unwrap();
    let mut keys = shared::KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    app.verifier = shared::TokenVerifier::new(keys, integration_tests::app::settings(), 30);
    app.accounts.issuer = shared::TokenIssuer::new(key, integration_tests::app::settings(), 900);
    send(&app, Event::get(Kind::RestV1, "/.well-known/jwks.json"))
        .await
        .problem(404);
}
