//! The real release binaries (`cargo lambda build --release`, run by scripts/test) under a
//! Lambda Runtime API emulator: they answer fixture events, and a misconfigured binary reports
//! an init error through the Runtime API instead of dying silently.

use std::time::Duration;

use integration_tests::app::{STRONG_PASSWORD, TEST_PEM, settings};
use integration_tests::authorizer_events::{AuthKind, event as auth_event, subject};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use integration_tests::runtime_api::{Report, RuntimeApi, spawn};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::token::now_unix;
use shared::{KeySet, SigningKey, TokenIssuer};

fn key() -> SigningKey {
    SigningKey::ed25519_from_pem(TEST_PEM, None).unwrap()
}

fn jwks() -> String {
    let mut set = KeySet::default();
    set.insert(key().verification_key()).unwrap();
    serde_json::to_string(&set.to_jwks()).unwrap()
}

fn token_env() -> Vec<(&'static str, String)> {
    let s = settings();
    vec![
        ("JWT_ISSUER", s.issuer),
        ("JWT_AUDIENCE", s.audience),
        ("JWT_PUBLIC_KEYS", jwks()),
    ]
}

fn response_body(report: Report) -> Value {
    match report {
        Report::Response { body, .. } => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn the_release_authorizer_allows_good_tokens_and_fails_bad_ones_with_exactly_unauthorized() {
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("authorizer", &api, &token_env());
    let issuer = TokenIssuer::new(key(), settings(), 900);
    let token = issuer.issue(&subject(&["user"]), now_unix()).unwrap().token;
    let good = auth_event(
        AuthKind::Token,
        "GET",
        "/items",
        Some(&format!("Bearer {}", token.expose_secret())),
    );
    let body = response_body(api.invoke(good).await);
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(body["context"]["email"], "ada@example.com");

    let bad = auth_event(AuthKind::V2, "GET", "/items", Some("Bearer not.a.token"));
    match api.invoke(bad).await {
        Report::Error { body, .. } => {
            assert_eq!(body["errorMessage"], "Unauthorized");
            assert_eq!(body["errorType"], "Unauthorized");
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
    // Still serving after a refusal.
    let simple = auth_event(
        AuthKind::V2,
        "GET",
        "/items",
        Some(&format!("Bearer {}", token.expose_secret())),
    );
    assert_eq!(
        response_body(api.invoke(simple).await)["isAuthorized"],
        true
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_release_auth_api_answers_api_gateway_events_against_dynamodb() {
    let store = fresh_store(&endpoint()).await;
    let mut api = RuntimeApi::start().await;
    let mut env = auth_api_env(store.table());
    env.push(("JWT_SIGNING_KEY", TEST_PEM.to_owned()));
    let mut child = spawn("auth-api", &api, &env);

    let health = response_body(
        api.invoke(event_json(Event::get(Kind::RestV1, "/health")))
            .await,
    );
    assert_eq!(health["statusCode"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(health["body"].as_str().unwrap()).unwrap(),
        json!({"status": "ok"})
    );

    let session = sign_in(&mut api, Kind::HttpV2, Kind::FunctionUrl).await;
    let token = session["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid;
    assert_eq!(kid.as_deref(), Some(key().kid()));

    // A session's refresh runs DynamoDB transactions in the release binary.
    let refresh = |token: &Value| {
        event_json(Event::post_json(
            Kind::RestV1,
            "/refresh",
            &json!({"refresh_token": token}),
        ))
    };
    let refreshed = response_body(api.invoke(refresh(&session["refresh_token"])).await);
    assert_eq!(refreshed["statusCode"], 200, "{refreshed}");
    let logout = Event::post_json(
        Kind::HttpV2,
        "/logout",
        &json!({"refresh_token": session["refresh_token"]}),
    );
    let logged_out = response_body(api.invoke(event_json(logout)).await);
    assert_eq!(logged_out["statusCode"], 204, "{logged_out}");
    let successor: Value = serde_json::from_str(refreshed["body"].as_str().unwrap()).unwrap();
    let after = response_body(api.invoke(refresh(&successor["refresh_token"])).await);
    assert_eq!(
        after["statusCode"], 401,
        "logout ended the session: {after}"
    );
    child.kill().await.unwrap();
}

fn ssm_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SSM").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL_SSM is not set: run `scripts/test`, which starts an SSM server (moto)"
        )
    })
}

fn auth_api_env(table: &str) -> Vec<(&'static str, String)> {
    let mut env = token_env();
    env.extend([
        ("USERS_TABLE", table.to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("BCRYPT_ALLOW_LOW_COST", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        ("AWS_ENDPOINT_URL_SSM", ssm_endpoint()),
    ]);
    env
}

#[tokio::test]
async fn the_release_auth_api_reads_its_signing_key_from_an_ssm_secure_string() {
    let sdk = auth_api::sdk::from_env(&shared::config::ProcessEnv).unwrap();
    // moto loads its SSM backend on the first request, which can take seconds on a cold
    // machine: the test's own client waits longer than the Lambda's 2.5 s bound. This first
    // call also warms moto up for the binary's GetParameter.
    let patient = aws_sdk_ssm::config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(60))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .endpoint_url(ssm_endpoint())
            .timeout_config(patient)
            .build(),
    );
    let name = format!("/test/signing-key-{}", uuid::Uuid::new_v4().simple());
    ssm.put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(TEST_PEM)
        .overwrite(true)
        .send()
        .await
        .expect("put the parameter");

    let store = fresh_store(&endpoint()).await;
    let mut env = auth_api_env(store.table());
    env.push(("JWT_SIGNING_KEY_PARAMETER", name));
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("auth-api", &api, &env);
    let token = sign_up(&mut api, Kind::RestV1, Kind::RestV1).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
    assert_eq!(
        kid.as_deref(),
        Some(key().kid()),
        "signed with the key from SSM"
    );
    child.kill().await.unwrap();

    // A parameter that does not exist is an init error that names the variable.
    let mut env = auth_api_env(store.table());
    env.push((
        "JWT_SIGNING_KEY_PARAMETER",
        "/test/no-such-parameter".to_owned(),
    ));
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("auth-api", &api, &env);
    match api.next_report().await {
        Report::InitError { body, .. } => {
            let message = body["errorMessage"].as_str().unwrap();
            assert!(message.contains("JWT_SIGNING_KEY_PARAMETER"), "{message}");
            assert!(message.contains("/test/no-such-parameter"), "{message}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    let _ = child.wait().await;
}

/// Registers and logs in through the binary (register and login sent as `register_kind`
/// and `login_kind` events); returns the access token.
async fn sign_up(api: &mut RuntimeApi, register_kind: Kind, login_kind: Kind) -> String {
    sign_in(api, register_kind, login_kind).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Like [`sign_up`], but returns the whole login answer (access and refresh token).
async fn sign_in(api: &mut RuntimeApi, register_kind: Kind, login_kind: Kind) -> Value {
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let register = Event::post_json(register_kind, "/register", &credentials);
    let registered = response_body(api.invoke(event_json(register)).await);
    assert_eq!(registered["statusCode"], 201, "{registered}");
    let login = Event::post_json(login_kind, "/login", &credentials);
    let login = response_body(api.invoke(event_json(login)).await);
    assert_eq!(login["statusCode"], 200, "{login}");
    serde_json::from_str(login["body"].as_str().unwrap()).unwrap()
}

/// The Lambda payload of an event built from the fixtures.
fn event_json(event: Event) -> Value {
    event.to_json()
}

#[tokio::test]
async fn misconfigured_binaries_report_an_init_error_naming_the_variable() {
    let cases = [
        ("authorizer", "JWT_ISSUER"),
        ("auth-api", "USERS_TABLE"),
        ("auth-api", "AWS_ACCESS_KEY_ID"),
    ];
    for (function, missing) in cases {
        let mut api = RuntimeApi::start().await;
        let mut env = token_env();
        env.push(("USERS_TABLE", "users".to_owned()));
        env.retain(|(k, _)| *k != missing);
        // Blank is unset, for the variables spawn() gives every function.
        env.push((missing, String::new()));
        let mut child = spawn(function, &api, &env);
        match api.next_report().await {
            Report::InitError {
                error_type_header,
                body,
            } => {
                assert_eq!(error_type_header.as_deref(), Some("Runtime.InitError"));
                let message = body["errorMessage"].as_str().unwrap();
                assert!(message.contains(missing), "{function}: {message}");
            }
            other => panic!("{function}: expected an init error, got {other:?}"),
        }
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the binary exits after its init error")
            .unwrap();
        assert!(!status.success(), "{function} must exit non-zero");
    }
}
