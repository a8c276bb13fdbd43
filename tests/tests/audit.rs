//! Audit events: one structured log line per security event, with the user id and the source
//! IP API Gateway saw, and never a secret.

use auth_api::store::MemoryStore;
use integration_tests::app::{STRONG_PASSWORD, post, test_app};
use integration_tests::logs::Captured;
use serde_json::{Value, json};

/// The source IP of the REST v1 fixture.
const SOURCE_IP: &str = "203.0.113.7";
const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";
const WRONG_PASSWORD: &str = "wrong horse battery staple";

/// The audit lines of the captured log, as JSON.
fn audit_events(captured: &Captured) -> Vec<Value> {
    captured
        .text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["fields"]["message"] == "audit")
        .map(|l| l["fields"].clone())
        .collect()
}

fn login_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

#[tokio::test]
async fn every_security_event_is_one_audit_line_with_user_and_source_ip_and_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut app = test_app(MemoryStore::new());
    app.sessions.reuse_grace_seconds = 0;
    let registered = post(
        &app,
        "/register",
        login_body("ada@example.com", STRONG_PASSWORD),
        None,
    )
    .await
    .json();
    let sub = registered["user_id"].as_str().unwrap().to_owned();
    post(
        &app,
        "/login",
        login_body("ada@example.com", WRONG_PASSWORD),
        None,
    )
    .await;
    let mut secrets = vec![STRONG_PASSWORD.to_owned(), NEW_PASSWORD.to_owned()];
    let session = post(
        &app,
        "/login",
        login_body("ada@example.com", STRONG_PASSWORD),
        None,
    )
    .await
    .json();
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let rotated = post(&app, "/refresh", json!({"refresh_token": first}), None)
        .await
        .json();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        post(&app, "/refresh", json!({"refresh_token": first}), None)
            .await
            .status,
        401
    );
    let other = post(
        &app,
        "/login",
        login_body("ada@example.com", STRONG_PASSWORD),
        None,
    )
    .await
    .json();
    let other_refresh = other["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post(
            &app,
            "/logout",
            json!({"refresh_token": other_refresh}),
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
    .await
    .json();
    for _ in 0..5 {
        post(
            &app,
            "/login",
            login_body("nobody@example.com", WRONG_PASSWORD),
            None,
        )
        .await;
    }
    for tokens in [&session, &rotated, &other, &changed] {
        for name in ["access_token", "refresh_token"] {
            secrets.push(tokens[name].as_str().unwrap().to_owned());
        }
    }

    let events = audit_events(&captured);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "registered",
            "login_failed",
            "login_succeeded",
            "refresh_reused",
            "login_succeeded",
            "logged_out",
            "logged_out_everywhere",
            "password_changed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "backoff_started",
        ]
    );
    for event in &events {
        assert_eq!(event["source_ip"], SOURCE_IP, "{event}");
    }
    for event in &events[..8] {
        assert_eq!(event["user_id"], sub.as_str(), "{event}");
    }
    for event in &events[8..] {
        assert!(
            event.get("user_id").is_none(),
            "unknown email has no user: {event}"
        );
    }

    let text = captured.text();
    assert!(text.contains("\"audit\""), "the capture works");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret reached the log");
    }
    assert!(!text.contains("$2b$"), "a bcrypt hash reached the log");
}
