//! Revocation that reaches the gateway: local-api with the session-checking authorizer
//! (`AUTHORIZER_CHECK_SESSION`) in front of protected routes, over the in-memory store and
//! over DynamoDB Local, real HTTP throughout. API Gateway's own cache is off (TTL 0) unless a
//! test says otherwise, so what is measured is the authorizer's answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accounts::model::credentials::Email;
use accounts::store::{DynamoStore, MemoryStore, Store};
use integration_tests::app::STRONG_PASSWORD;
use integration_tests::dynamo::{Mode, Proxy, endpoint, fresh_store};
use integration_tests::local::LocalApi;
use reqwest::Client;
use serde_json::{Value, json};
use shared::ManualClock;

const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";

async fn dynamo() -> DynamoStore {
    fresh_store(&endpoint()).await
}

fn memory() -> MemoryStore {
    MemoryStore::new()
}

/// local-api over `store`, session checks on with answers kept `cache_seconds`, API
/// Gateway's cache off.
async fn spawn<S: Store + 'static>(
    store: S,
    cache_seconds: &str,
    clock: ManualClock,
) -> LocalApi<S> {
    LocalApi::spawn_with_clock(
        store,
        &[
            ("AUTHORIZER_CHECK_SESSION", "true"),
            ("AUTHORIZER_SESSION_CACHE_SECONDS", cache_seconds),
        ],
        |spec| spec.authorizer_ttl = 0,
        Arc::new(clock),
    )
    .await
}

struct Session {
    access: String,
    refresh: String,
}

async fn register(http: &Client, api: &LocalApi<impl Store + 'static>, email: &str) -> String {
    api.register(http, email).await
}

async fn login(
    http: &Client,
    api: &LocalApi<impl Store + 'static>,
    email: &str,
    password: &str,
) -> Session {
    let tokens = api.login(http, email, password).await;
    Session {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// The status of `GET /me` with `token`.
async fn me(http: &Client, api: &LocalApi<impl Store + 'static>, token: &str) -> u16 {
    http.get(api.at("/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn send(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// Every way a session ends refuses its still-unexpired access token on the very next
/// protected request, and leaves other sessions and users alone.
async fn every_way_a_session_ends_refuses_its_token_at_once<S: Store + 'static>(store: S) {
    let api = spawn(store, "0", ManualClock::starting_now()).await;
    let http = Client::new();
    let ada = "ada@example.com";
    register(&http, &api, ada).await;
    let bystander = {
        register(&http, &api, "bob@example.com").await;
        login(&http, &api, "bob@example.com", STRONG_PASSWORD).await
    };

    // Logout ends the one session; another session of the same user lives on.
    let phone = login(&http, &api, ada, STRONG_PASSWORD).await;
    let laptop = login(&http, &api, ada, STRONG_PASSWORD).await;
    assert_eq!(me(&http, &api, &phone.access).await, 200);
    let logout = http
        .post(api.at("/logout"))
        .json(&json!({"refresh_token": phone.refresh}));
    assert_eq!(send(logout).await, 204);
    assert_eq!(me(&http, &api, &phone.access).await, 401, "after logout");
    assert_eq!(me(&http, &api, &laptop.access).await, 200);

    // Ending a session from the session list.
    let tablet = login(&http, &api, ada, STRONG_PASSWORD).await;
    let sessions: Value = http
        .get(api.at("/sessions"))
        .bearer_auth(&laptop.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tablet_sid = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    let end = http
        .delete(api.at(&format!("/sessions/{tablet_sid}")))
        .bearer_auth(&laptop.access);
    assert_eq!(send(end).await, 204);
    assert_eq!(me(&http, &api, &tablet.access).await, 401, "session ended");
    assert_eq!(me(&http, &api, &laptop.access).await, 200);

    // Logout-all ends every session of the user, the caller's own included.
    let other = login(&http, &api, ada, STRONG_PASSWORD).await;
    let all = http
        .post(api.at("/logout-all"))
        .bearer_auth(&laptop.access)
        .json(&json!({}));
    assert_eq!(send(all).await, 204);
    assert_eq!(me(&http, &api, &laptop.access).await, 401, "logout-all");
    assert_eq!(me(&http, &api, &other.access).await, 401, "logout-all");

    // A password change ends the other sessions; the new token works.
    let before = login(&http, &api, ada, STRONG_PASSWORD).await;
    let changing = login(&http, &api, ada, STRONG_PASSWORD).await;
    let changed = http
        .post(api.at("/password"))
        .bearer_auth(&changing.access)
        .json(&json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let fresh: Value = changed.json().await.unwrap();
    assert_eq!(
        me(&http, &api, &before.access).await,
        401,
        "password change"
    );
    assert_eq!(
        me(&http, &api, &changing.access).await,
        401,
        "password change"
    );
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&http, &api, &fresh).await, 200);

    // Disabling the account (auth-admin's store call).
    let user = api
        .gateway
        .store()
        .find_user(&Email::parse(ada).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(api.gateway.store().set_disabled(&user, true).await.unwrap());
    assert_eq!(me(&http, &api, &fresh).await, 401, "disabled");
    assert!(
        api.gateway
            .store()
            .set_disabled(&user, false)
            .await
            .unwrap()
    );

    // Deleting the account; registering the email again does not revive its tokens.
    let last = login(&http, &api, ada, NEW_PASSWORD).await;
    let keep = login(&http, &api, ada, NEW_PASSWORD).await;
    let delete = http
        .delete(api.at("/me"))
        .bearer_auth(&last.access)
        .json(&json!({"password": NEW_PASSWORD}));
    assert_eq!(send(delete).await, 204);
    assert_eq!(me(&http, &api, &keep.access).await, 401, "deleted");
    register(&http, &api, ada).await;
    assert_eq!(
        me(&http, &api, &keep.access).await,
        401,
        "deleted, then new"
    );

    assert_eq!(me(&http, &api, &bystander.access).await, 200);
}

#[tokio::test]
async fn every_way_a_session_ends_refuses_its_token_at_once_in_memory() {
    every_way_a_session_ends_refuses_its_token_at_once(memory()).await;
}

#[tokio::test]
async fn every_way_a_session_ends_refuses_its_token_at_once_over_dynamodb() {
    every_way_a_session_ends_refuses_its_token_at_once(dynamo().await).await;
}

/// With a cache TTL, a revocation reaches the gateway once the answer kept for it is older
/// than the TTL, not before: the documented bound, measured on a moved clock.
#[tokio::test]
async fn with_a_session_cache_a_revocation_reaches_the_gateway_after_its_ttl() {
    let clock = ManualClock::starting_now();
    let api = spawn(dynamo().await, "10", clock.clone()).await;
    let http = Client::new();
    register(&http, &api, "ada@example.com").await;
    let session = login(&http, &api, "ada@example.com", STRONG_PASSWORD).await;
    assert_eq!(me(&http, &api, &session.access).await, 200);
    let logout = http
        .post(api.at("/logout"))
        .json(&json!({"refresh_token": session.refresh}));
    assert_eq!(send(logout).await, 204);
    assert_eq!(me(&http, &api, &session.access).await, 200, "kept 10 s");
    clock.advance_ms(9_000);
    assert_eq!(me(&http, &api, &session.access).await, 200, "kept 10 s");
    clock.advance_ms(1_001);
    assert_eq!(me(&http, &api, &session.access).await, 401, "after 10 s");
}

/// Tokens the session check cannot place are refused: none names a session (`sid`), or one
/// names a session of somebody else.
#[tokio::test]
async fn tokens_without_a_session_of_their_own_are_refused() {
    let api = spawn(memory(), "0", ManualClock::starting_now()).await;
    let http = Client::new();
    let ada_id = register(&http, &api, "ada@example.com").await;
    register(&http, &api, "bob@example.com").await;
    let bob = login(&http, &api, "bob@example.com", STRONG_PASSWORD).await;
    let bob_claims = api
        .gateway
        .app()
        .verifier
        .verify(&bob.access)
        .expect("bob's token verifies");

    let subject = |session_id| shared::Subject {
        user_id: ada_id.parse().unwrap(),
        email: "ada@example.com".into(),
        roles: vec!["user".into()],
        email_verified: false,
        session_id,
        method: Default::default(),
    };
    let now = shared::token::now_unix();
    let no_sid = api.config.issuer().issue(&subject(None), now).unwrap();
    let bobs_sid = bob_claims.sid.as_deref().unwrap().parse().unwrap();
    let borrowed = api
        .config
        .issuer()
        .issue(&subject(Some(bobs_sid)), now)
        .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(me(&http, &api, no_sid.token.expose_secret()).await, 401);
    assert_eq!(me(&http, &api, borrowed.token.expose_secret()).await, 401);
    assert_eq!(me(&http, &api, &bob.access).await, 200);
}

/// DynamoDB gone or hanging: the authorizer refuses (fails closed) within its bound, with
/// API Gateway's `AUTHORIZER_CONFIGURATION_ERROR` answer as the template sets it (503,
/// `Retry-After`), which is not cached: service resumes when DynamoDB is back.
#[tokio::test]
async fn with_dynamodb_down_protected_routes_are_refused_within_a_bound() {
    let proxy = Proxy::start_for(&endpoint()).await;
    let store = fresh_store(&proxy.url()).await;
    let api = spawn(store, "0", ManualClock::starting_now()).await;
    let http = Client::new();
    register(&http, &api, "ada@example.com").await;
    let session = login(&http, &api, "ada@example.com", STRONG_PASSWORD).await;
    assert_eq!(me(&http, &api, &session.access).await, 200);

    for mode in ["stopped", "hanging"] {
        if mode == "stopped" {
            proxy.stop().await;
        } else {
            proxy.restart(Mode::Hang).await;
        }
        let started = Instant::now();
        let answer = http
            .get(api.at("/me"))
            .bearer_auth(&session.access)
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(answer.status(), 503, "{mode}");
        assert_eq!(answer.headers()["retry-after"], "1", "{mode}");
        assert!(
            took < Duration::from_secs(5),
            "{mode}: refused after {took:?}"
        );
        let body = answer.text().await.unwrap();
        assert!(
            !body.contains("dynamo") && !body.contains("127.0.0.1"),
            "{body}"
        );
    }

    proxy.restart(Mode::Forward).await;
    assert_eq!(me(&http, &api, &session.access).await, 200, "back");
}
