//! Machine clients: the client registry and `POST /oauth2/token` (client_credentials), over
//! both stores; what the authorizers make of the tokens.

use std::sync::Arc;

use accounts::model::registry::{ClientRecord, ClientSpec, ClientType, GrantType, parse_scopes};
use accounts::store::Store;
use auth_api::App;
use authorizer::session::SessionCheck;
use authorizer::{Authorizer, V2Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use integration_tests::app::{Answer, send, with_clock};
use integration_tests::events::{Event, Kind};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::{Clock, Principal};

const FORM: &str = "application/x-www-form-urlencoded";

/// A confidential client allowed `scopes`, registered in the app's store: (client, secret).
async fn register<S: Store>(app: &App<S>, scopes: &str) -> (ClientRecord, String) {
    let (client, secret) = ClientRecord::create(
        ClientSpec {
            name: Some("billing".into()),
            scopes: Some(parse_scopes(scopes).unwrap()),
            ..ClientSpec::default()
        },
        "tests",
        app.accounts.clock.now_ms(),
    )
    .unwrap();
    app.accounts.store.create_client(&client).await.unwrap();
    let secret = secret.unwrap().encode().expose_secret().to_owned();
    (client, secret)
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn token_event(form: &str) -> Event {
    Event::new(Kind::RestV1, "POST", "/oauth2/token")
        .body(form)
        .header("content-type", FORM)
}

async fn token_basic<S: Store>(app: &App<S>, id: &str, secret: &str, form: &str) -> Answer {
    send(
        app,
        token_event(form).header("authorization", &basic(id, secret)),
    )
    .await
}

/// An RFC 6749 §5.2 error: the status, JSON (never problem+json), no-store, the code.
fn oauth_error(answer: &Answer, status: u16, code: &str) -> Value {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    body
}

async fn a_machine_client_gets_a_token_by_either_authentication_and_scope<S: Store>(app: App<S>) {
    let (client, secret) = register(&app, "orders:read orders:write").await;
    let id = client.client_id.as_str();

    // client_secret_basic, no scope asked: every scope the client may have.
    let answer = token_basic(&app, id, &secret, "grant_type=client_credentials").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "orders:read orders:write");
    assert!(body.get("refresh_token").is_none());
    let claims = app
        .verifier
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.principal(), Some(Principal::Client));
    assert_eq!(claims.sub, id);
    assert_eq!(claims.client_id.as_deref(), Some(id));
    assert_eq!(claims.scope.as_deref(), Some("orders:read orders:write"));
    assert!(claims.email.is_empty() && claims.roles.is_empty() && claims.sid.is_none());

    // client_secret_post, one scope.
    let form = format!(
        "grant_type=client_credentials&scope=orders%3Aread&client_id={id}&client_secret={secret}"
    );
    let answer = send(&app, token_event(&form)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["scope"], "orders:read");

    // Basic with the id and secret form-encoded first (RFC 6749 §2.3.1): same thing here.
    let answer = token_basic(
        &app,
        id,
        &secret,
        "grant_type=client_credentials&scope=orders:write+orders:read",
    )
    .await;
    assert_eq!(answer.json()["scope"], "orders:write orders:read");

    // A scope the client may not have, or that is not a scope at all.
    for scope in ["admin", "orders:read%20admin", "orders%22read"] {
        let answer = token_basic(
            &app,
            id,
            &secret,
            &format!("grant_type=client_credentials&scope={scope}"),
        )
        .await;
        oauth_error(&answer, 400, "invalid_scope");
    }
}

async fn unknown_clients_wrong_secrets_and_disabled_clients_are_alike<S: Store>(app: App<S>) {
    let (client, secret) = register(&app, "a").await;
    let id = client.client_id.as_str();
    let form = "grant_type=client_credentials";
    let wrong = token_basic(&app, id, "x", form).await;
    let unknown = token_basic(&app, "nobody", &secret, form).await;
    let disabled_client = client.with_disabled(true, "tests", app.accounts.clock.now_ms());
    app.accounts
        .store
        .save_client(&disabled_client)
        .await
        .unwrap();
    let disabled = token_basic(&app, id, &secret, form).await;
    let bodies: Vec<Value> = [&wrong, &unknown, &disabled]
        .iter()
        .map(|a| {
            // Basic was used: 401 with the Basic challenge.
            assert!(a.header("www-authenticate").unwrap().starts_with("Basic"));
            oauth_error(a, 401, "invalid_client")
        })
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // Enabled again, the secret works again.
    let enabled = disabled_client.with_disabled(false, "tests", app.accounts.clock.now_ms());
    app.accounts.store.save_client(&enabled).await.unwrap();
    assert_eq!(token_basic(&app, id, &secret, form).await.status, 200);
}

async fn a_client_without_the_grant_is_unauthorized<S: Store>(app: App<S>) {
    let (client, secret) = ClientRecord::create(
        ClientSpec {
            name: Some("web".into()),
            client_type: Some(ClientType::Confidential),
            grant_types: Some(vec![GrantType::AuthorizationCode]),
            ..ClientSpec::default()
        },
        "tests",
        app.accounts.clock.now_ms(),
    )
    .unwrap();
    app.accounts.store.create_client(&client).await.unwrap();
    let secret = secret.unwrap().encode().expose_secret().to_owned();
    let answer = token_basic(
        &app,
        client.client_id.as_str(),
        &secret,
        "grant_type=client_credentials",
    )
    .await;
    oauth_error(&answer, 400, "unauthorized_client");
}

async fn a_rotated_secret_works_until_its_end_and_not_after<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    let (client, old) = register(&app, "a").await;
    let id = client.client_id.as_str().to_owned();
    let form = "grant_type=client_credentials";
    let now = clock.now_ms();
    let (rotated, new) = client.rotated(Some(now + 60_000), "tests", now).unwrap();
    app.accounts.store.save_client(&rotated).await.unwrap();
    let new = new.encode().expose_secret().to_owned();
    // Tokens throughout: both secrets until the old one's end, then only the new.
    for step in 0..6 {
        assert_eq!(
            token_basic(&app, &id, &new, form).await.status,
            200,
            "{step}"
        );
        let old_answer = token_basic(&app, &id, &old, form).await;
        if step < 3 {
            assert_eq!(old_answer.status, 200, "{step}: {}", old_answer.text);
        } else {
            oauth_error(&old_answer, 401, "invalid_client");
        }
        clock.advance_ms(25_000);
    }
    // A save from a stale read is refused, nothing written.
    let stale = client.with_disabled(true, "tests", now);
    assert!(app.accounts.store.save_client(&stale).await.is_err());
    assert_eq!(token_basic(&app, &id, &new, form).await.status, 200);
}

/// Twenty failures per client in its window: of 30 wrong secrets at once exactly 20 are
/// compared and refused as `invalid_client`, the rest get 429 `slow_down` with
/// `Retry-After`, and then the right secret waits too. A success is taken back out.
async fn parallel_wrong_secrets_meet_the_limit<S: Store + 'static>(app: App<S>) {
    let (app, clock) = with_clock(app);
    let (client, secret) = register(&app, "a").await;
    let id = client.client_id.as_str().to_owned();
    let form = "grant_type=client_credentials";
    // Successes do not count: more than the limit of them in a row is fine.
    for _ in 0..25 {
        assert_eq!(token_basic(&app, &id, &secret, form).await.status, 200);
    }
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let app = Arc::clone(&app);
        let id = id.clone();
        tasks.spawn(async move {
            token_basic(
                &app,
                &id,
                &format!("wrong-{i}"),
                "grant_type=client_credentials",
            )
            .await
        });
    }
    let (mut refused, mut limited) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        match answer.status {
            401 => refused += 1,
            429 => {
                oauth_error(&answer, 429, "slow_down");
                assert!(
                    answer
                        .header("retry-after")
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                        >= 1
                );
                limited += 1;
            }
            other => panic!("{other}: {}", answer.text),
        }
    }
    assert_eq!((refused, limited), (20, 10));
    assert_eq!(token_basic(&app, &id, &secret, form).await.status, 429);
    // Another client from another address is not affected.
    let (other, other_secret) = register(&app, "a").await;
    let elsewhere = send(
        &app,
        token_event(form)
            .header(
                "authorization",
                &basic(other.client_id.as_str(), &other_secret),
            )
            .from_source("198.51.100.7"),
    )
    .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
    // The window ends.
    clock.advance_ms(301_000);
    assert_eq!(token_basic(&app, &id, &secret, form).await.status, 200);
}

/// Whatever arrives, the answer is an RFC 6749 error, never a 5xx or a problem+json.
async fn malformed_requests_get_oauth_errors<S: Store>(app: App<S>) {
    let (client, secret) = register(&app, "a").await;
    let id = client.client_id.as_str();
    let good = basic(id, &secret);
    let cases: Vec<(Event, u16, &str)> = vec![
        (
            Event::post_json(
                Kind::RestV1,
                "/oauth2/token",
                &json!({"grant_type": "client_credentials"}),
            )
            .header("authorization", &good),
            400,
            "invalid_request",
        ),
        (
            token_event("grant_type=client_credentials&grant_type=client_credentials")
                .header("authorization", &good),
            400,
            "invalid_request",
        ),
        (
            token_event("scope=a").header("authorization", &good),
            400,
            "invalid_request",
        ),
        (
            token_event("grant_type=password&username=a&password=b").header("authorization", &good),
            400,
            "unsupported_grant_type",
        ),
        (
            token_event("grant_type=client_credentials").header("authorization", "Basic !!!"),
            401,
            "invalid_client",
        ),
        (
            token_event("grant_type=client_credentials").header(
                "authorization",
                &format!("Basic {}", STANDARD.encode("no-colon")),
            ),
            401,
            "invalid_client",
        ),
        (
            token_event("grant_type=client_credentials").header(
                "authorization",
                &format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe])),
            ),
            401,
            "invalid_client",
        ),
        (
            token_event("grant_type=client_credentials").header("authorization", "Bearer abc"),
            401,
            "invalid_client",
        ),
        (
            token_event(&format!(
                "grant_type=client_credentials&client_secret={secret}"
            ))
            .header("authorization", &good),
            400,
            "invalid_request",
        ),
        (
            token_event("grant_type=client_credentials"),
            401,
            "invalid_client",
        ),
        (
            token_event(&format!("grant_type=client_credentials&client_id={id}")),
            401,
            "invalid_client",
        ),
        (
            token_event("grant_type=client_credentials&client_id=%FF&client_secret=x"),
            400,
            "invalid_request",
        ),
        (
            token_event(&"a=b&".repeat(5000)).header("authorization", &good),
            400,
            "invalid_request",
        ),
        (
            Event::get(Kind::RestV1, "/oauth2/token"),
            405,
            "invalid_request",
        ),
    ];
    for (event, status, code) in cases {
        let answer = send(&app, event).await;
        oauth_error(&answer, status, code);
    }
}

/// A machine token is no user: the account routes refuse it as an invalid token (401), and
/// nothing of the secret or the token reaches the answer.
async fn a_machine_token_has_no_account<S: Store>(app: App<S>) {
    let (client, secret) = register(&app, "a").await;
    let body = token_basic(
        &app,
        client.client_id.as_str(),
        &secret,
        "grant_type=client_credentials",
    )
    .await
    .json();
    let token = body["access_token"].as_str().unwrap();
    let claims = app.verifier.verify(token).unwrap();
    // As the REST authorizer passes it on: principal client, no email.
    let me = send(
        &app,
        Event::get(Kind::RestV1, "/me").authorized_with(json!({
            "principal": "client", "sub": claims.sub, "roles": "", "exp": claims.exp,
            "email_verified": false, "client_id": claims.sub, "scope": "a",
        })),
    )
    .await;
    me.problem(401);
}

/// The authorizer admits a machine token where a rule names one of its scopes, refuses it
/// where only roles are named, and passes `principal`, `client_id` and `scope` on; the
/// session-checking authorizer refuses it once its client is disabled or deleted.
async fn the_authorizers_judge_machine_tokens_by_scope_and_client<S: Store>(app: App<S>) {
    let (client, secret) = register(&app, "orders:read").await;
    let id = client.client_id.as_str().to_owned();
    let token = token_basic(&app, &id, &secret, "grant_type=client_credentials")
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rules = authorizer::rules::Rules::parse(
        r#"{"GET /orders/*": ["scope:orders:read", "user"], "POST /orders/*": ["scope:orders:write"], "* /profile": ["user"]}"#,
    )
    .unwrap();
    let authorizer = Authorizer::new(app.verifier.clone(), Some(rules), V2Response::Iam);
    let arn = |method: &str, path: &str| {
        format!("arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/{method}{path}")
    };
    let event = json!({
        "type": "TOKEN",
        "authorizationToken": format!("Bearer {token}"),
        "methodArn": arn("GET", "/orders/7"),
    });
    let answer = serde_json::to_value(authorizer.decide(event.clone()).unwrap()).unwrap();
    let policy = policy::evaluate(&answer["policyDocument"]);
    assert_eq!(policy(&arn("GET", "/orders/7")), Some(true), "{answer}");
    assert_eq!(policy(&arn("POST", "/orders/7")), Some(false), "{answer}");
    assert_eq!(policy(&arn("GET", "/profile")), Some(false), "{answer}");
    let context = &answer["context"];
    assert_eq!(context["principal"], "client");
    assert_eq!(context["sub"], id.as_str());
    assert_eq!(context["client_id"], id.as_str());
    assert_eq!(context["scope"], "orders:read");
    assert!(context.get("email").is_none(), "{context}");

    // The session-checking authorizer: live while the client is enabled.
    let clock = shared::SystemClock;
    let lookup = session_authorizer::StoreLookup {
        store: &app.accounts.store,
        sessions: app.accounts.sessions,
        clock: &clock,
    };
    let check = SessionCheck::new(0, Arc::new(shared::SystemClock));
    assert!(
        authorizer
            .decide_checked(event.clone(), &check, &lookup)
            .await
            .is_ok()
    );
    let disabled = client.with_disabled(true, "tests", app.accounts.clock.now_ms());
    app.accounts.store.save_client(&disabled).await.unwrap();
    assert!(
        authorizer
            .decide_checked(event.clone(), &check, &lookup)
            .await
            .is_err()
    );
    let enabled = disabled.with_disabled(false, "tests", app.accounts.clock.now_ms());
    app.accounts.store.save_client(&enabled).await.unwrap();
    assert!(
        authorizer
            .decide_checked(event.clone(), &check, &lookup)
            .await
            .is_ok()
    );
    assert!(
        app.accounts
            .store
            .delete_client(&client.client_id)
            .await
            .unwrap()
    );
    assert!(
        authorizer
            .decide_checked(event, &check, &lookup)
            .await
            .is_err()
    );
}

/// A tiny evaluator of the policy documents the authorizer writes: the resources of Allow
/// and Deny statements, with `*` matching anything (IAM's wildcard).
mod policy {
    use serde_json::Value;

    fn matches(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((head, tail)) => {
                text.starts_with(head)
                    && (0..=text.len() - head.len()).any(|i| matches(tail, &text[head.len() + i..]))
            }
        }
    }

    /// `Some(true)` allowed, `Some(false)` denied or not allowed.
    pub fn evaluate(document: &Value) -> impl Fn(&str) -> Option<bool> + '_ {
        move |arn| {
            let mut allowed = false;
            for statement in document["Statement"].as_array()? {
                let hit = statement["Resource"]
                    .as_array()?
                    .iter()
                    .any(|r| r.as_str().is_some_and(|r| matches(r, arn)));
                if hit && statement["Effect"] == "Deny" {
                    return Some(false);
                }
                allowed |= hit && statement["Effect"] == "Allow";
            }
            Some(allowed)
        }
    }
}

over_both_stores!(
    a_machine_client_gets_a_token_by_either_authentication_and_scope,
    unknown_clients_wrong_secrets_and_disabled_clients_are_alike,
    a_client_without_the_grant_is_unauthorized,
    a_rotated_secret_works_until_its_end_and_not_after,
    parallel_wrong_secrets_meet_the_limit,
    malformed_requests_get_oauth_errors,
    a_machine_token_has_no_account,
    the_authorizers_judge_machine_tokens_by_scope_and_client,
);
