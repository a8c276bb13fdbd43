//! The `before-user-created` hook over both stores, against a real HTTP hook server that
//! checks each request's Standard Webhooks signature: allow, deny (the user sees the hook's
//! message; nothing is written, no event), and every failure (a timeout, an error status, an
//! answer out of contract) closed by default, open when configured.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use accounts::hooks::{HookFailure, HookTarget, Hooks};
use accounts::model::credentials::Email;
use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{STRONG_PASSWORD, post};
use integration_tests::dynamo::EventsReader;
use integration_tests::http_peer::{read_request, respond, standard_webhooks_signed};
use serde_json::{Value, json};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A hook server: answers by the email's local part (`deny`, `slow`, `broken`, `odd`, else
/// allow), and keeps each request's body and whether its signature verified.
async fn hook_server() -> (String, Arc<Mutex<Vec<(Value, bool)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/before-user-created",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let Some((headers, body)) = read_request(&mut socket).await else {
                    return;
                };
                let request: Value = serde_json::from_str(&body).unwrap();
                kept.lock().unwrap().push((
                    request.clone(),
                    standard_webhooks_signed(SECRET, &headers, &body),
                ));
                let email = request["email"].as_str().unwrap_or("");
                let local = email.split('@').next().unwrap_or("");
                if request["type"] == "customize-access-token" {
                    let answer = match local {
                        "tenant" => {
                            json!({"claims": {"tenant": "acme", "plan_level": 3, "beta": true}})
                        }
                        "reserved" => json!({"claims": {"roles": "admin"}}),
                        _ => json!({"claims": {}}),
                    }
                    .to_string();
                    respond(&mut socket, "200 OK", &answer).await;
                    return;
                }
                let (status, answer) = match local {
                    "deny" => (
                        "200 OK",
                        json!({"decision": "deny", "message": "Sign up with your work address."})
                            .to_string(),
                    ),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        ("200 OK", json!({"decision": "allow"}).to_string())
                    }
                    "broken" => ("500 Internal Server Error", "{}".to_owned()),
                    "odd" => ("200 OK", json!({"decision": "maybe"}).to_string()),
                    _ => ("200 OK", json!({"decision": "allow"}).to_string()),
                };
                respond(&mut socket, status, &answer).await;
            });
        }
    });
    (url, seen)
}

fn with_hook<S>(mut app: App<S>, url: &str, failure: HookFailure) -> App<S> {
    app.accounts.hooks = auth_api::hooks::with_transports(
        Hooks {
            before_user_created: Some(HookTarget::Https(url.to_owned())),
            customize_access_token: None,
            secret: Some(accounts::webhook::WebhookSecret::parse(SECRET).unwrap()),
            timeout_ms: 500,
            failure,
            transport: None,
        },
        None,
    )
    .unwrap();
    app
}

async fn register<S: Store>(app: &App<S>, email: &str) -> integration_tests::app::Answer {
    post(
        app,
        "/register",
        json!({"email": email, "password": STRONG_PASSWORD}),
        None,
    )
    .await
}

async fn exists<S: Store>(app: &App<S>, email: &str) -> bool {
    app.accounts
        .store
        .find_user(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .is_some()
}

async fn before_user_created_allows_denies_and_fails_closed<S: Store + EventsReader>(app: App<S>) {
    let (url, seen) = hook_server().await;
    let app = with_hook(app, &url, HookFailure::Closed);

    let allowed = register(&app, "ada@example.com").await;
    assert_eq!(allowed.status, 201, "{}", allowed.text);
    let denied = register(&app, "deny@example.com").await;
    let problem = denied.problem(400);
    assert_eq!(problem["type"], "urn:problem-type:auth:registration-denied");
    assert_eq!(problem["detail"], "Sign up with your work address.");
    assert!(!exists(&app, "deny@example.com").await, "nothing written");
    for email in ["slow@example.com", "broken@example.com", "odd@example.com"] {
        let failed = register(&app, email).await;
        let problem = failed.problem(503);
        assert_eq!(
            problem["type"], "urn:problem-type:auth:hook-unavailable",
            "{email}"
        );
        assert!(!exists(&app, email).await, "{email}: nothing written");
    }
    // The hook was asked with the address, the method and the client's address, signed.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    for (request, signed) in &seen {
        assert!(signed, "{request}");
        assert_eq!(request["type"], "before-user-created");
        assert_eq!(request["method"], "password");
        assert_eq!(request["source_ip"], "203.0.113.7");
        assert!(request.get("password").is_none(), "never the password");
    }
    // Only the allowed registration emitted its event.
    let events = app.accounts.store.read_all_events().await;
    let created: Vec<&str> = events
        .iter()
        .filter(|e| e.kind.as_str() == "user.created")
        .map(|e| e.data["email"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["ada@example.com"]);

    // The hosted registration page asks the same hook and shows its message.
    let (client, _) = integration_tests::oidc::register_app(
        &app,
        accounts::model::registry::ClientType::Public,
        true,
        "api:read",
    )
    .await;
    let pkce = integration_tests::oidc::Pkce::new();
    let request =
        integration_tests::oidc::authorization(client.client_id.as_str(), &pkce, "openid");
    let mut browser = integration_tests::oidc::Browser::default();
    let page = browser.get(&app, "/oauth2/register", &request).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let refused = browser
        .submit(
            &app,
            &page,
            &[("email", "deny@example.org"), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(refused.text.contains("Sign up with your work address."));
}

async fn before_user_created_fails_open_when_configured<S: Store>(app: App<S>) {
    let (url, _) = hook_server().await;
    let app = with_hook(app, &url, HookFailure::Open);
    let slow = register(&app, "slow@example.com").await;
    assert_eq!(slow.status, 201, "{}", slow.text);
    // A denial is still a denial.
    register(&app, "deny@example.com").await.problem(400);
}

/// `customize-access-token`: its claims in every access token of a sign-in and a refresh,
/// asked with the user and the sign-in's methods; an answer claiming a reserved name refuses
/// the sign-in (503) before any session is written.
async fn customize_access_token_adds_the_deployment_s_claims<S: Store + EventsReader>(app: App<S>) {
    let (url, seen) = hook_server().await;
    let mut app = app;
    app.accounts.hooks = auth_api::hooks::with_transports(
        Hooks {
            before_user_created: None,
            customize_access_token: Some(HookTarget::Https(url)),
            secret: Some(accounts::webhook::WebhookSecret::parse(SECRET).unwrap()),
            timeout_ms: 500,
            failure: HookFailure::Closed,
            transport: None,
        },
        None,
    )
    .unwrap();
    for email in ["tenant@example.com", "reserved@example.com"] {
        assert_eq!(register(&app, email).await.status, 201);
    }
    let credentials = json!({"email": "tenant@example.com", "password": STRONG_PASSWORD});
    let session = post(&app, "/login", credentials, None).await;
    assert_eq!(session.status, 200, "{}", session.text);
    let claims = app
        .verifier
        .verify(session.json()["access_token"].as_str().unwrap())
        .unwrap();
    use shared::CustomClaim;
    assert_eq!(claims.custom["tenant"], CustomClaim::Text("acme".into()));
    assert_eq!(claims.custom["plan_level"], CustomClaim::Integer(3));
    assert_eq!(claims.custom["beta"], CustomClaim::Flag(true));
    assert_eq!(claims.roles, ["user"], "its own claims stay its own");
    let refreshed = post(
        &app,
        "/refresh",
        json!({"refresh_token": session.json()["refresh_token"]}),
        None,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let again = app
        .verifier
        .verify(refreshed.json()["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(again.custom, claims.custom);
    let asked = seen.lock().unwrap().clone();
    let (request, signed) = &asked[0];
    assert!(signed);
    assert_eq!(request["type"], "customize-access-token");
    assert_eq!(request["amr"], json!(["pwd"]));
    assert_eq!(request["roles"], json!(["user"]));
    assert_eq!(request["client_id"], "test-api");

    // A reserved name: refused before any session exists.
    let refused = post(
        &app,
        "/login",
        json!({"email": "reserved@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(
        refused.problem(503)["type"],
        "urn:problem-type:auth:hook-unavailable"
    );
    let user = app
        .accounts
        .store
        .find_user(&Email::parse("reserved@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<&str> = app
        .accounts
        .store
        .read_events(&accounts::model::event::EventSubject::User(user.user_id))
        .await
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["user.created"], "no session began");
}

over_both_stores!(
    before_user_created_allows_denies_and_fails_closed,
    before_user_created_fails_open_when_configured,
    customize_access_token_adds_the_deployment_s_claims,
);
