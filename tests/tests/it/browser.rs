//! Browsers through the auth-api handler: the refresh token in its `__Host-` cookie, the CSRF
//! checks a cookie-authenticated request must pass, and body transport left as it was. Every
//! case runs over the in-memory store and over the real DynamoDB API server; CORS over
//! local-api's HTTP is in `local_api.rs`.

use std::sync::Arc;

use accounts::store::Store;
use auth_api::App;
use auth_api::http::browser::{AllowedOrigins, BrowserSettings, RefreshTransport};
use integration_tests::app::{Answer, STRONG_PASSWORD};
use integration_tests::events::{Event, Kind};
use serde_json::json;

const APP_ORIGIN: &str = "https://app.example.com";
const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";

fn cookie_mode<S: Store>(mut app: App<S>, transport: RefreshTransport) -> App<S> {
    app.browser =
        BrowserSettings::new(AllowedOrigins::parse(APP_ORIGIN).unwrap(), transport).unwrap();
    app
}

async fn send<S: Store>(app: &App<S>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

fn credentials() -> serde_json::Value {
    json!({"email": "ada@example.com", "password": STRONG_PASSWORD})
}

/// Registers ada and signs her in from the app's page; returns the login answer.
async fn sign_in<S: Store>(app: &App<S>) -> Answer {
    let registered = send(
        app,
        Event::post_json(Kind::RestV1, "/register", &credentials()),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let login = send(
        app,
        Event::post_json(Kind::RestV1, "/login", &credentials()).header("Origin", APP_ORIGIN),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    login
}

/// The refresh cookie's value set by `answer`, checking every attribute of the cookie.
fn set_cookie(answer: &Answer) -> String {
    let cookies: Vec<&str> = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let (value, attributes) = cookies[0]
        .strip_prefix("__Host-refresh_token=")
        .and_then(|rest| rest.split_once("; "))
        .unwrap_or_else(|| panic!("not the refresh cookie: {}", cookies[0]));
    let lifetime = answer.json()["refresh_token_expires_in"].as_i64().unwrap();
    assert_eq!(
        attributes,
        format!("Max-Age={lifetime}; Path=/; Secure; HttpOnly; SameSite=Strict")
    );
    assert_eq!(value.len(), 43, "{value}");
    value.to_owned()
}

fn clears_cookie(answer: &Answer) -> bool {
    answer.headers.get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap()
            == "__Host-refresh_token=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict"
    })
}

/// `POST path` as the app's page sends it: the cookie, its origin, X-Requested-With, no body.
fn from_page(path: &str, cookie: &str) -> Event {
    Event::new(Kind::RestV1, "POST", path)
        .no_body()
        .header(
            "Cookie",
            &format!("theme=dark; __Host-refresh_token={cookie}"),
        )
        .header("Origin", APP_ORIGIN)
        .header("X-Requested-With", "fetch")
}

async fn cookie_mode_keeps_the_refresh_token_in_its_cookie_only<S: Store>(app: App<S>) {
    let app = cookie_mode(app, RefreshTransport::Cookie);
    let login = sign_in(&app).await;
    assert!(
        login.json().get("refresh_token").is_none(),
        "{}",
        login.text
    );
    assert!(login.json()["access_token"].is_string());
    let first = set_cookie(&login);
    assert!(!login.text.contains(&first));

    // Refresh from the cookie alone (each shape of event carries cookies its own way).
    for kind in [Kind::RestV1, Kind::HttpV2] {
        let cookie = if kind == Kind::RestV1 {
            first.clone()
        } else {
            set_cookie(&send(&app, from_page("/refresh", &first)).await)
        };
        let event = Event::new(kind, "POST", "/refresh")
            .no_body()
            .header("cookie", &format!("__Host-refresh_token={cookie}"))
            .header("origin", APP_ORIGIN)
            .header("x-requested-with", "XMLHttpRequest");
        let refreshed = send(&app, event).await;
        assert_eq!(refreshed.status, 200, "{kind:?}: {}", refreshed.text);
        assert!(refreshed.json().get("refresh_token").is_none());
        assert_ne!(set_cookie(&refreshed), cookie, "a rotated token");
    }

    // A body token is not what cookie transport reads.
    let from_body = send(
        &app,
        Event::post_json(Kind::RestV1, "/refresh", &json!({"refresh_token": first}))
            .header("Origin", APP_ORIGIN)
            .header("X-Requested-With", "fetch"),
    )
    .await;
    from_body.problem(401);
    assert!(clears_cookie(&from_body));
}

async fn password_change_and_logout_set_and_clear_the_cookie<S: Store>(app: App<S>) {
    let app = cookie_mode(app, RefreshTransport::Cookie);
    let login = sign_in(&app).await;
    let old = set_cookie(&login);
    let sub = send(
        &app,
        Event::get(Kind::RestV1, "/verify").bearer(login.json()["access_token"].as_str().unwrap()),
    )
    .await
    .json()["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/password",
            &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .authorized_as(&sub)
        .header("Origin", APP_ORIGIN),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let new = set_cookie(&changed);
    assert!(changed.json().get("refresh_token").is_none());

    // The old session ended with the change: its cookie is refused and cleared.
    let stale = send(&app, from_page("/refresh", &old)).await;
    stale.problem(401);
    assert!(clears_cookie(&stale));

    let out = send(&app, from_page("/logout", &new)).await;
    assert_eq!(out.status, 204);
    assert!(clears_cookie(&out));
    let after = send(&app, from_page("/refresh", &new)).await;
    after.problem(401);
    assert!(clears_cookie(&after));
}

async fn cookie_requests_without_origin_or_custom_header_are_refused_and_change_nothing<
    S: Store,
>(
    app: App<S>,
) {
    let app = cookie_mode(app, RefreshTransport::Cookie);
    let cookie = set_cookie(&sign_in(&app).await);
    for path in ["/refresh", "/logout"] {
        let cases = [
            (
                "no Origin",
                from_page(path, &cookie).without_header("Origin"),
                "origin-not-allowed",
            ),
            (
                "an unlisted Origin",
                from_page(path, &cookie).header("Origin", "https://evil.example"),
                "origin-not-allowed",
            ),
            (
                "a sibling subdomain",
                from_page(path, &cookie).header("Origin", "https://static.example.com"),
                "origin-not-allowed",
            ),
            (
                "the null origin",
                from_page(path, &cookie).header("Origin", "null"),
                "origin-not-allowed",
            ),
            (
                "no X-Requested-With",
                from_page(path, &cookie).without_header("X-Requested-With"),
                "csrf-header-missing",
            ),
            (
                "an empty X-Requested-With",
                from_page(path, &cookie).header("X-Requested-With", " "),
                "csrf-header-missing",
            ),
        ];
        for (what, event, slug) in cases {
            let refused = send(&app, event).await;
            let problem = refused.problem(403);
            assert_eq!(
                problem["type"],
                format!("urn:problem-type:auth:{slug}"),
                "{path} with {what}"
            );
            assert!(
                refused.headers.get("set-cookie").is_none(),
                "{path} with {what}"
            );
        }
    }
    // Nothing was spent or revoked: the cookie still works once.
    let refreshed = send(&app, from_page("/refresh", &cookie)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
}

async fn a_page_on_the_api_s_own_origin_needs_no_listing<S: Store>(app: App<S>) {
    let mut app = cookie_mode(app, RefreshTransport::Cookie);
    app.browser.allowed_origins = AllowedOrigins::None;
    let cookie = set_cookie(&sign_in(&app).await);
    // The fixture's Host; API Gateway says https in X-Forwarded-Proto.
    let event = from_page("/refresh", &cookie)
        .header("Host", "auth.example.net")
        .header("X-Forwarded-Proto", "https")
        .header("Origin", "https://auth.example.net");
    let refreshed = send(&app, event).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert!(
        refreshed
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
    let other_scheme = from_page("/refresh", &set_cookie(&refreshed))
        .header("Host", "auth.example.net")
        .header("X-Forwarded-Proto", "https")
        .header("Origin", "http://auth.example.net");
    send(&app, other_scheme).await.problem(403);
}

async fn reuse_detection_clears_the_cookie<S: Store>(app: App<S>) {
    let mut app = cookie_mode(app, RefreshTransport::Cookie);
    let clock = shared::ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    let first = set_cookie(&sign_in(&app).await);
    let second = send(&app, from_page("/refresh", &first)).await;
    assert_eq!(second.status, 200);
    clock.advance_ms(app.accounts.sessions.reuse_grace_seconds * 1000 + 1);
    // A stolen copy of the first cookie, replayed after the grace window.
    let replayed = send(&app, from_page("/refresh", &first)).await;
    replayed.problem(401);
    assert!(clears_cookie(&replayed));
    // The whole session is gone, the successor too.
    let successor = send(&app, from_page("/refresh", &set_cookie(&second))).await;
    successor.problem(401);
}

async fn both_transports_serve_browsers_and_other_clients<S: Store>(app: App<S>) {
    let app = cookie_mode(app, RefreshTransport::Both);
    let login = sign_in(&app).await;
    let cookie = set_cookie(&login);
    assert_eq!(login.json()["refresh_token"], cookie.as_str());
    // A client without cookies uses the body, with no CSRF header needed.
    let by_body = send(
        &app,
        Event::post_json(Kind::RestV1, "/refresh", &json!({"refresh_token": cookie})),
    )
    .await;
    assert_eq!(by_body.status, 200, "{}", by_body.text);
    let next = by_body.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(set_cookie(&by_body), next);
    // With the cookie, the cookie's checks apply.
    let refused = send(
        &app,
        from_page("/refresh", &next).without_header("X-Requested-With"),
    )
    .await;
    refused.problem(403);
    let by_cookie = send(&app, from_page("/refresh", &next)).await;
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.text);
}

async fn body_transport_is_unchanged_and_ignores_cookies<S: Store>(app: App<S>) {
    let login = sign_in(&app).await;
    assert!(login.headers.get("set-cookie").is_none());
    assert!(login.headers.get("access-control-allow-origin").is_none());
    let token = login.json()["refresh_token"].as_str().unwrap().to_owned();
    // A cookie means nothing here: the body is required, as before.
    let cookie_only = send(&app, from_page("/refresh", &token)).await;
    cookie_only.problem(415);
    let logout = send(&app, from_page("/logout", &token)).await;
    logout.problem(415);
    let refreshed = send(
        &app,
        Event::post_json(Kind::RestV1, "/refresh", &json!({"refresh_token": token})),
    )
    .await;
    assert_eq!(refreshed.status, 200);
    assert!(refreshed.json()["refresh_token"].is_string());
    assert!(refreshed.headers.get("set-cookie").is_none());
}

async fn parallel_refreshes_with_one_cookie_yield_one_successor<S: Store + 'static>(app: App<S>) {
    let app = Arc::new(cookie_mode(app, RefreshTransport::Cookie));
    let cookie = set_cookie(&sign_in(&app).await);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, cookie) = (Arc::clone(&app), cookie.clone());
        tasks.spawn(async move { send(&app, from_page("/refresh", &cookie)).await });
    }
    let mut successors = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        // A racer that lost every retry gets 409 and may try again; none is refused.
        match answer.status {
            200 => successors.push(set_cookie(&answer)),
            409 => {}
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(!successors.is_empty());
    successors.dedup();
    assert_eq!(
        successors.len(),
        1,
        "one successor, handed out again to the retries"
    );
}

over_both_stores!(
    cookie_mode_keeps_the_refresh_token_in_its_cookie_only,
    password_change_and_logout_set_and_clear_the_cookie,
    cookie_requests_without_origin_or_custom_header_are_refused_and_change_nothing,
    a_page_on_the_api_s_own_origin_needs_no_listing,
    reuse_detection_clears_the_cookie,
    both_transports_serve_browsers_and_other_clients,
    body_transport_is_unchanged_and_ignores_cookies,
    parallel_refreshes_with_one_cookie_yield_one_successor,
);
