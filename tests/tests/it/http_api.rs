//! The zero-Lambda variant (template-http-api.yaml) over local-api, real HTTP throughout:
//! API Gateway's built-in JWT authorizer emulated as AWS documents it, with the keys fetched
//! from local-api's own discovery document, and payload 2.0 events reaching auth-api.

use std::sync::Arc;

use accounts::store::{MemoryStore, Store};
use integration_tests::app::STRONG_PASSWORD;
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::local::{HTTP_TEMPLATE, LocalApi};
use reqwest::Client;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::config::TokenSettings;
use shared::token::now_unix;
use shared::{SigningKey, Subject, TokenIssuer};

const RSA_PEM: &str = include_str!("../../fixtures/rsa-2048.pem");
const OTHER_RSA_PEM: &str = include_str!("../../fixtures/rsa-2048-other.pem");

async fn spawn<S: Store + 'static>(
    store: S,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut local_api::template::GatewaySpec),
) -> LocalApi<S> {
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| *k == "JWT_SIGNING_KEY") {
        env.push(("JWT_SIGNING_KEY", RSA_PEM));
    }
    LocalApi::spawn_template(
        HTTP_TEMPLATE,
        store,
        &env,
        tweak,
        Arc::new(shared::SystemClock),
    )
    .await
}

/// Registers and signs in; returns (user id, token response).
async fn sign_in(
    http: &Client,
    api: &LocalApi<impl Store + 'static>,
    email: &str,
) -> (String, Value) {
    let user_id = api.register(http, email).await;
    (user_id, api.login(http, email, STRONG_PASSWORD).await)
}

async fn me(
    http: &Client,
    api: &LocalApi<impl Store + 'static>,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = http.get(api.at("/me"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

async fn status_of_me(http: &Client, api: &LocalApi<impl Store + 'static>, token: &str) -> u16 {
    me(http, api, Some(&format!("Bearer {token}")))
        .await
        .status()
        .as_u16()
}

/// A token for `user_id` signed with `key` under `settings` at `now`, roles `roles`.
fn token(
    key: SigningKey,
    settings: TokenSettings,
    user_id: &str,
    roles: &[&str],
    now: i64,
) -> String {
    let subject = Subject {
        user_id: user_id.parse().unwrap(),
        email: "ada@example.com".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        email_verified: false,
        session_id: None,
        method: Default::default(),
    };
    TokenIssuer::new(key, settings, 900)
        .issue(&subject, now)
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

async fn the_whole_account_lifecycle_runs_behind_the_jwt_authorizer<S: Store + 'static>(store: S) {
    let api = spawn(store, &[], |_| {}).await;
    let http = Client::new();
    let (user_id, session) = sign_in(&http, &api, "ada@example.com").await;
    let access = session["access_token"].as_str().unwrap();

    // The claims reach auth-api through requestContext.authorizer.jwt.
    let answer = me(&http, &api, Some(&format!("Bearer {access}"))).await;
    assert_eq!(answer.status(), 200);
    let profile: Value = answer.json().await.unwrap();
    assert_eq!(profile["user_id"], user_id);
    let sessions: Value = http
        .get(api.at("/sessions"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"][0]["current"], true, "{sessions}");

    // Cookies arrive as payload 2.0's cookies array: the refresh cookie works.
    let refresh_cookie = format!(
        "__Host-refresh_token={}",
        session["refresh_token"].as_str().unwrap()
    );
    let refreshed = http
        .post(api.at("/refresh"))
        .header("cookie", refresh_cookie)
        .header("origin", api.url.as_str())
        .header("x-requested-with", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);

    let change = json!({"current_password": STRONG_PASSWORD, "new_password": "purple elephant juggling seventeen oranges"});
    let changed = http
        .post(api.at("/password"))
        .bearer_auth(access)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let fresh: Value = changed.json().await.unwrap();
    let delete = http
        .delete(api.at("/me"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .json(&json!({"password": "purple elephant juggling seventeen oranges"}))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
}

#[tokio::test]
async fn the_whole_account_lifecycle_runs_behind_the_jwt_authorizer_in_memory() {
    the_whole_account_lifecycle_runs_behind_the_jwt_authorizer(MemoryStore::new()).await;
}

#[tokio::test]
async fn the_whole_account_lifecycle_runs_behind_the_jwt_authorizer_over_dynamodb() {
    let store = fresh_store(&endpoint()).await;
    the_whole_account_lifecycle_runs_behind_the_jwt_authorizer(store).await;
}

/// What HTTP API's JWT authorizer refuses: 401 `{"message":"Unauthorized"}` with a
/// `WWW-Authenticate` challenge, before auth-api is reached.
#[tokio::test]
async fn the_jwt_authorizer_refuses_what_api_gateway_refuses() {
    let api = spawn(MemoryStore::new(), &[], |_| {}).await;
    let http = Client::new();
    let (user_id, session) = sign_in(&http, &api, "ada@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let settings = api.config.settings.clone();
    let rsa = || SigningKey::from_pem(RSA_PEM, None).unwrap();
    let now = now_unix();

    let missing = me(&http, &api, None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"message": "Unauthorized"})
    );

    // A character inside the signature changed (the last one may carry only padding bits, so
    // changing it can leave the signature as it was).
    let mut tampered = access.to_owned();
    let at = tampered.len() - 20;
    let replacement = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, replacement);
    let wrong_audience = TokenSettings {
        audience: "another-api".into(),
        ..settings.clone()
    };
    let wrong_issuer = TokenSettings {
        issuer: "http://127.0.0.1:1".into(),
        ..settings.clone()
    };
    let refused = [
        ("tampered", tampered),
        (
            "expired",
            token(rsa(), settings.clone(), &user_id, &["user"], now - 3600),
        ),
        (
            "not yet valid",
            token(rsa(), settings.clone(), &user_id, &["user"], now + 600),
        ),
        (
            "another audience",
            token(rsa(), wrong_audience, &user_id, &["user"], now),
        ),
        (
            "another issuer",
            token(rsa(), wrong_issuer, &user_id, &["user"], now),
        ),
        (
            "a key not in the JWKS",
            token(
                SigningKey::from_pem(OTHER_RSA_PEM, None).unwrap(),
                settings.clone(),
                &user_id,
                &["user"],
                now,
            ),
        ),
        (
            // HTTP API verifies RSA signatures only.
            "EdDSA",
            token(
                SigningKey::ed25519_generate(None).unwrap(),
                settings.clone(),
                &user_id,
                &["user"],
                now,
            ),
        ),
        ("not a JWT", "not.a.token".to_owned()),
    ];
    for (what, bad) in refused {
        let answer = me(&http, &api, Some(&format!("Bearer {bad}"))).await;
        assert_eq!(answer.status(), 401, "{what}");
        let challenge = answer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        assert_eq!(
            answer.json::<Value>().await.unwrap(),
            json!({"message": "Unauthorized"}),
            "{what}"
        );
    }

    // An audience matched by client_id alone passes, as AWS documents.
    let by_client_id = TokenSettings {
        audience: "another-api".into(),
        ..settings.clone()
    };
    let subject = Subject {
        user_id: user_id.parse().unwrap(),
        email: "ada@example.com".into(),
        roles: vec!["user".into()],
        email_verified: false,
        session_id: None,
        method: Default::default(),
    };
    let client_token = TokenIssuer::new(rsa(), by_client_id, 900)
        .with_client_id(settings.audience.clone())
        .issue(&subject, now)
        .unwrap()
        .token;
    assert_eq!(
        status_of_me(&http, &api, client_token.expose_secret()).await,
        200
    );
    // The token alone, without the Bearer prefix, is taken too.
    assert_eq!(me(&http, &api, Some(access)).await.status(), 200);
    // Unknown routes are an HTTP API's 404, not a REST API's 403.
    let unknown = http.get(api.at("/nowhere")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        json!({"message": "Not Found"})
    );
}

/// A route with `AuthorizationScopes` needs one of them in the token's `scope` (our tokens
/// carry the roles there): 403 `{"message":"Forbidden"}` otherwise.
#[tokio::test]
async fn authorization_scopes_are_checked_against_the_token_s_scope() {
    let admin_only = |spec: &mut local_api::template::GatewaySpec| {
        for route in &mut spec.routes {
            if route.path == "/me" && route.method == "GET" {
                route.scopes = vec!["admin".into()];
            }
            if route.path == "/sessions" && route.method == "GET" {
                route.scopes = vec!["user".into(), "admin".into()];
            }
        }
    };
    let api = spawn(MemoryStore::new(), &[], admin_only).await;
    let http = Client::new();
    let (user_id, session) = sign_in(&http, &api, "ada@example.com").await;
    let user = session["access_token"].as_str().unwrap();

    let refused = me(&http, &api, Some(&format!("Bearer {user}"))).await;
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"message": "Forbidden"})
    );
    let sessions = http
        .get(api.at("/sessions"))
        .bearer_auth(user)
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.status(), 200, "user is one of the scopes");

    let rsa = SigningKey::from_pem(RSA_PEM, None).unwrap();
    let admin = token(
        rsa,
        api.config.settings.clone(),
        &user_id,
        &["user", "admin"],
        now_unix(),
    );
    assert_eq!(status_of_me(&http, &api, &admin).await, 200);
}

/// A machine token from the token endpoint passes a route whose `AuthorizationScopes` name
/// one of its scopes (auth-api then refuses it: a client has no account) and is refused with
/// 403 where they do not, as API Gateway's built-in JWT authorizer does.
#[tokio::test]
async fn authorization_scopes_admit_machine_tokens_holding_one() {
    let scoped = |spec: &mut local_api::template::GatewaySpec| {
        for route in &mut spec.routes {
            if route.path == "/me" && route.method == "GET" {
                route.scopes = vec!["api:read".into()];
            }
            if route.path == "/sessions" && route.method == "GET" {
                route.scopes = vec!["admin".into()];
            }
        }
    };
    let api = spawn(MemoryStore::new(), &[], scoped).await;
    let http = Client::new();
    let token = api.machine_token(&http, "api:read").await;
    let me = me(&http, &api, Some(&format!("Bearer {token}"))).await;
    assert_eq!(me.status(), 401);
    assert_eq!(me.headers()["content-type"], "application/problem+json");
    let sessions = http
        .get(api.at("/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.status(), 403);
    assert_eq!(
        sessions.json::<Value>().await.unwrap(),
        json!({"message": "Forbidden"})
    );
}

/// The keys come from the issuer's discovery document over HTTP, as API Gateway fetches them:
/// with an issuer that cannot be reached, no token passes, however well signed.
#[tokio::test]
async fn the_keys_come_from_the_issuer_s_discovery_document() {
    let api = spawn(
        MemoryStore::new(),
        &[("JWT_ISSUER", "http://127.0.0.1:9")],
        |_| {},
    )
    .await;
    let http = Client::new();
    let (_, session) = sign_in(&http, &api, "ada@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let answer = me(&http, &api, Some(&format!("Bearer {access}"))).await;
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("cannot be fetched"), "{challenge}");
}
