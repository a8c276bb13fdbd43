//! The account's self-service through the auth-api handler: the session list, ending one
//! session, and deleting the account. Every case runs over the in-memory store and over the
//! real DynamoDB API server.

use std::sync::Arc;

use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD};
use integration_tests::events::{Event, Kind};
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";

async fn send<S: Store>(app: &App<S>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

fn credentials(password: &str) -> Value {
    json!({"email": EMAIL, "password": password})
}

async fn register<S: Store>(app: &App<S>) -> String {
    let answer = send(
        app,
        Event::post_json(Kind::RestV1, "/register", &credentials(STRONG_PASSWORD)),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["user_id"].as_str().unwrap().to_owned()
}

/// A login from this user agent and address: its tokens and the session id (`sid`).
async fn login_from<S: Store>(app: &App<S>, user_agent: &str, ip: &str) -> (Value, String) {
    let answer = send(
        app,
        Event::post_json(Kind::RestV1, "/login", &credentials(STRONG_PASSWORD))
            .header("User-Agent", user_agent)
            .from_source(ip),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let tokens = answer.json();
    let claims = send(
        app,
        Event::get(Kind::HttpV2, "/verify").bearer(tokens["access_token"].as_str().unwrap()),
    )
    .await
    .json();
    let sid = claims["sid"]
        .as_str()
        .expect("access tokens carry sid")
        .to_owned();
    (tokens, sid)
}

async fn list<S: Store>(app: &App<S>, sub: &str, sid: &str) -> Vec<Value> {
    let answer = send(
        app,
        Event::get(Kind::RestV1, "/sessions").authorized_in_session(sub, EMAIL, sid),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    answer.json()["sessions"].as_array().unwrap().clone()
}

async fn refresh<S: Store>(app: &App<S>, tokens: &Value) -> Answer {
    send(
        app,
        Event::post_json(
            Kind::RestV1,
            "/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        ),
    )
    .await
}

async fn the_session_list_shows_each_login_s_client_and_the_current_one<S: Store>(app: App<S>) {
    let sub = register(&app).await;
    let (laptop, laptop_sid) =
        login_from(&app, "Mozilla/5.0 (X11; Linux x86_64)", "198.51.100.7").await;
    let (phone, phone_sid) = login_from(&app, "MyApp/2.1 (iPhone)", "203.0.113.9").await;
    assert_ne!(laptop_sid, phone_sid);
    let refreshed = refresh(&app, &laptop).await;
    assert_eq!(refreshed.status, 200);

    let sessions = list(&app, &sub, &phone_sid).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    // Newest first: the phone's.
    assert_eq!(sessions[0]["id"], phone_sid.as_str());
    assert_eq!(sessions[0]["user_agent"], "MyApp/2.1 (iPhone)");
    assert_eq!(sessions[0]["source_ip"], "203.0.113.9");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[0]["last_refreshed_at"], Value::Null);
    assert_eq!(sessions[1]["id"], laptop_sid.as_str());
    assert_eq!(sessions[1]["user_agent"], "Mozilla/5.0 (X11; Linux x86_64)");
    assert_eq!(sessions[1]["source_ip"], "198.51.100.7");
    assert_eq!(sessions[1]["current"], false);
    assert!(sessions[1]["last_refreshed_at"].is_string());
    for session in &sessions {
        for field in ["created_at", "expires_at"] {
            let text = session[field].as_str().unwrap();
            assert!(text.ends_with('Z') && text.len() == 20, "{field}: {text}");
        }
    }
    // A refreshed token keeps its session id.
    let new_access = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = send(
        &app,
        Event::get(Kind::RestV1, "/verify").bearer(&new_access),
    )
    .await
    .json();
    assert_eq!(claims["sid"], laptop_sid.as_str());

    // Logged out sessions are not live: not listed.
    let out = send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/logout",
            &json!({"refresh_token": phone["refresh_token"]}),
        ),
    )
    .await;
    assert_eq!(out.status, 204);
    let sessions = list(&app, &sub, &laptop_sid).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
}

async fn ending_one_session_leaves_the_other_and_no_one_else_s_can_be_ended<S: Store>(app: App<S>) {
    let sub = register(&app).await;
    let (laptop, laptop_sid) = login_from(&app, "laptop", "198.51.100.7").await;
    let (phone, phone_sid) = login_from(&app, "phone", "203.0.113.9").await;
    let end = |id: &str, as_sub: &str| {
        Event::new(Kind::RestV1, "DELETE", &format!("/sessions/{id}"))
            .no_body()
            .authorized_in_session(as_sub, EMAIL, &laptop_sid)
    };
    let ended = send(&app, end(&phone_sid, &sub)).await;
    assert_eq!(ended.status, 204, "{}", ended.text);
    refresh(&app, &phone).await.problem(401);
    assert_eq!(refresh(&app, &laptop).await.status, 200);
    // Again: still the caller's, so 204 (nothing left to end).
    assert_eq!(send(&app, end(&phone_sid, &sub)).await.status, 204);

    // Someone else's session, an unknown one and a malformed id: the same 404.
    let stranger = uuid::Uuid::new_v4().to_string();
    let answers = [
        send(&app, end(&laptop_sid, &stranger)).await,
        send(&app, end(&uuid::Uuid::new_v4().to_string(), &sub)).await,
        send(&app, end("not-a-session", &sub)).await,
    ];
    let bodies: Vec<Value> = answers.iter().map(|a| a.problem(404)).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(bodies[0]["type"], "urn:problem-type:auth:session-not-found");
    assert_eq!(list(&app, &sub, &laptop_sid).await.len(), 1, "untouched");
}

fn delete_me(sub: &str, password: &str) -> Event {
    Event::new(Kind::RestV1, "DELETE", "/me")
        .body(&json!({"password": password}).to_string())
        .header("Content-Type", "application/json")
        .authorized(sub, EMAIL)
}

async fn deleting_the_account_needs_the_password_and_frees_the_email<S: Store>(app: App<S>) {
    let sub = register(&app).await;
    let (tokens, _) = login_from(&app, "laptop", "198.51.100.7").await;
    let wrong = send(&app, delete_me(&sub, "not my password at all")).await;
    assert_eq!(
        wrong.problem(403)["type"],
        "urn:problem-type:auth:wrong-password"
    );
    assert_eq!(refresh(&app, &tokens).await.status, 200, "still there");
    let tokens = refresh(&app, &tokens).await.json();

    let deleted = send(&app, delete_me(&sub, STRONG_PASSWORD)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    refresh(&app, &tokens).await.problem(401);
    send(
        &app,
        Event::get(Kind::RestV1, "/me").authorized(&sub, EMAIL),
    )
    .await
    .problem(404);
    send(
        &app,
        Event::post_json(Kind::RestV1, "/login", &credentials(STRONG_PASSWORD)),
    )
    .await
    .problem(401);
    // The email registers again at once, as a new account.
    let again = register(&app).await;
    assert_ne!(again, sub);
    // The old account's token cannot delete or reach the new one.
    send(&app, delete_me(&sub, STRONG_PASSWORD))
        .await
        .problem(404);
    send(
        &app,
        Event::get(Kind::RestV1, "/me").authorized(&sub, EMAIL),
    )
    .await
    .problem(404);
}

async fn parallel_wrong_passwords_on_delete_get_at_most_five_checks<S: Store + 'static>(
    mut app: App<S>,
) {
    // Time stands still: the 1 s lock must not run out while a loaded machine works.
    app.accounts.clock = Arc::new(shared::ManualClock::starting_now());
    let sub = register(&app).await;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (app, sub) = (Arc::clone(&app), sub.clone());
        tasks.spawn(async move { send(&app, delete_me(&sub, &format!("wrong guess {i}"))).await });
    }
    let (mut refused, mut paused) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        match answer.unwrap().status {
            403 => refused += 1,
            429 => paused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((refused, paused), (5, 15));
    // Even the right password waits now: the account stays.
    send(&app, delete_me(&sub, STRONG_PASSWORD))
        .await
        .problem(429);
}

over_both_stores!(
    the_session_list_shows_each_login_s_client_and_the_current_one,
    ending_one_session_leaves_the_other_and_no_one_else_s_can_be_ended,
    deleting_the_account_needs_the_password_and_frees_the_email,
    parallel_wrong_passwords_on_delete_get_at_most_five_checks,
);
