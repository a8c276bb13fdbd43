//! No secret reaches a log line, even at the most verbose level: the whole flow (register,
//! failed logins, login, refresh, logout, logout-all, password change) against the real
//! DynamoDB API server, with the Lambdas' own log setup (`shared::logging`) at TRACE, captured
//! and searched. (That setup holds the AWS SDK and the HTTP stack at DEBUG, their most
//! verbose level without whole bodies; at TRACE they print DynamoDB responses, hashes and all.)

use integration_tests::app::{STRONG_PASSWORD, TEST_PEM, post, test_app};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::logs::Captured;
use serde_json::json;
use shared::SigningKey;

/// The private seed of `TEST_PEM` (playing the signing key that must not be logged),
/// base64url (the JWK `d`).
const TEST_SEED_B64URL: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";
const WRONG_PASSWORD: &str = "wrong horse battery staple";

#[tokio::test]
async fn no_secret_reaches_the_log_at_trace_level() {
    // SAFETY: this is the only test in this binary, and nothing else reads the environment
    // concurrently.
    unsafe {
        std::env::set_var("AWS_LAMBDA_LOG_LEVEL", "trace");
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    }
    let captured = Captured::default();
    let writer = captured.clone();
    shared::logging::init_with_writer(move || writer.clone());

    let mut app = test_app(fresh_store(&endpoint()).await);
    app.issuer = shared::TokenIssuer::new(
        SigningKey::ed25519_from_pem(TEST_PEM, None).unwrap(),
        integration_tests::app::settings(),
        900,
    );
    let credentials = |password: &str| json!({"email": "ada@example.com", "password": password});
    let registered = post(&app, "/register", credentials(STRONG_PASSWORD), None).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let sub = registered.json()["user_id"].as_str().unwrap().to_owned();
    assert_eq!(
        post(&app, "/login", credentials(WRONG_PASSWORD), None)
            .await
            .status,
        401
    );
    let first = post(&app, "/login", credentials(STRONG_PASSWORD), None)
        .await
        .json();
    let refreshed = post(
        &app,
        "/refresh",
        json!({"refresh_token": first["refresh_token"]}),
        None,
    )
    .await
    .json();
    let second = post(&app, "/login", credentials(STRONG_PASSWORD), None)
        .await
        .json();
    assert_eq!(
        post(
            &app,
            "/logout",
            json!({"refresh_token": second["refresh_token"]}),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        post(&app, "/logout-all", json!({}), Some(&sub))
            .await
            .status,
        204
    );
    let changed = post(
        &app,
        "/password",
        json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
        Some(&sub),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let changed = changed.json();

    let text = captured.text();
    assert!(
        text.contains("aws_smithy") || text.contains("hyper"),
        "the capture must include the SDK's own trace lines"
    );
    assert!(
        text.contains("\"login_succeeded\""),
        "the capture must include audit lines"
    );
    let mut secrets: Vec<(String, String)> = [STRONG_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]
        .iter()
        .map(|p| ("a password".to_owned(), (*p).to_owned()))
        .collect();
    for tokens in [&first, &refreshed, &second, &changed] {
        for name in ["access_token", "refresh_token"] {
            secrets.push((name.to_owned(), tokens[name].as_str().unwrap().to_owned()));
        }
    }
    secrets.push((
        "the signing key".into(),
        "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v".into(),
    ));
    secrets.push(("the signing key seed".into(), TEST_SEED_B64URL.into()));
    secrets.push(("a bcrypt hash".into(), "$2b$".into()));
    for (what, secret) in &secrets {
        if let Some(line) = text.lines().find(|l| l.contains(secret.as_str())) {
            eprintln!("offending line: {}", &line[..line.len().min(600)]);
        }
        assert!(
            !text.contains(secret.as_str()),
            "{what} reached the log ({} bytes of log captured)",
            text.len()
        );
    }
}
