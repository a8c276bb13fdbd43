//! Lifecycle events through the JSON API, over both stores: what a user's requests emit, in
//! order, from the address API Gateway saw; a refused request emits nothing; a login
//! backoff's lock is one `login.locked`.

use accounts::model::backoff::BACKOFF_THRESHOLD;
use accounts::model::event::{EventSubject, EventType};
use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{STRONG_PASSWORD, post};
use integration_tests::dynamo::EventsReader;
use serde_json::json;

const EMAIL: &str = "ada@example.com";

async fn types_of<S: Store + EventsReader>(app: &App<S>, user_id: &str) -> Vec<&'static str> {
    app.accounts
        .store
        .read_events(&EventSubject::User(uuid::Uuid::parse_str(user_id).unwrap()))
        .await
        .iter()
        .map(|e| e.kind.as_str())
        .collect()
}

async fn a_user_s_requests_emit_their_events_in_order<S: Store + EventsReader>(app: App<S>) {
    let credentials = |password: &str| json!({"email": EMAIL, "password": password});
    let registered = post(&app, "/register", credentials(STRONG_PASSWORD), None).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let user_id = registered.json()["user_id"].as_str().unwrap().to_owned();
    // The same email again: answered as a registration (nothing tells the address has an
    // account), but nothing is created, so nothing is emitted.
    let again = post(&app, "/register", credentials(STRONG_PASSWORD), None).await;
    let decoy = again.json()["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(decoy, user_id);
    if let Ok(decoy) = uuid::Uuid::parse_str(&decoy) {
        let none = app
            .accounts
            .store
            .read_events(&EventSubject::User(decoy))
            .await;
        assert!(none.is_empty(), "{none:?}");
    }
    let session = post(&app, "/login", credentials(STRONG_PASSWORD), None).await;
    assert_eq!(session.status, 200, "{}", session.text);
    let refresh = session.json()["refresh_token"].as_str().unwrap().to_owned();
    let out = post(&app, "/logout", json!({"refresh_token": refresh}), None).await;
    assert_eq!(out.status, 204, "{}", out.text);
    // Logging out twice ends nothing more.
    post(&app, "/logout", json!({"refresh_token": refresh}), None).await;
    assert_eq!(
        types_of(&app, &user_id).await,
        ["user.created", "session.created", "session.revoked"]
    );
    let events = app
        .accounts
        .store
        .read_events(&EventSubject::User(
            uuid::Uuid::parse_str(&user_id).unwrap(),
        ))
        .await;
    for event in &events {
        // The REST fixture's address and agent.
        assert_eq!(
            event.origin.source_ip.as_deref(),
            Some("203.0.113.7"),
            "{event:?}"
        );
        let text = event.envelope().to_string();
        assert!(!text.contains(STRONG_PASSWORD) && !text.contains(&refresh));
    }
    assert_eq!(events[2].data["reason"], "logout");
    assert_eq!(events[1].data["session_id"], events[2].data["session_id"]);

    // Wrong passwords until the backoff: one login.locked, with the lock.
    for _ in 0..BACKOFF_THRESHOLD {
        let wrong = post(
            &app,
            "/login",
            credentials("wrong horse battery staple"),
            None,
        )
        .await;
        assert_eq!(wrong.status, 401, "{}", wrong.text);
    }
    let locked = post(&app, "/login", credentials(STRONG_PASSWORD), None).await;
    assert_eq!(locked.status, 429, "{}", locked.text);
    let types = types_of(&app, &user_id).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::LoginLocked.as_str())
            .count(),
        1,
        "{types:?}"
    );
}

over_both_stores!(a_user_s_requests_emit_their_events_in_order);
