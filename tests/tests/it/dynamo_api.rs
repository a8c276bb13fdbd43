//! auth-api against the real DynamoDB API server: races, enumeration, and a server that stops
//! or hangs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accounts::store::DynamoStore;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, test_app};
use integration_tests::dynamo::{Mode, Proxy, assert_consistent, client, endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use serde_json::json;

/// What clients are promised when DynamoDB fails: an answer within this time.
const FAILURE_BOUND: Duration = Duration::from_secs(3);

async fn send(app: &App<DynamoStore>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

async fn status(app: &App<DynamoStore>, event: Event) -> u16 {
    send(app, event).await.status
}

/// Sends `event` to an app whose DynamoDB is down or hanging: the answer must be a 503 problem
/// with `Retry-After`, no internals, within the promised bound.
async fn assert_bounded_503(app: &App<DynamoStore>, event: Event) {
    let started = Instant::now();
    let answer = send(app, event).await;
    let took = started.elapsed();
    let problem = answer.problem(503).to_string();
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(took < FAILURE_BOUND, "503 took {took:?}");
    assert!(!problem.contains("127.0.0.1"), "no internals: {problem}");
    assert!(
        !problem.to_lowercase().contains("dispatch"),
        "no internals: {problem}"
    );
}

fn register_event(email: &str, password: &str) -> Event {
    Event::post_json(
        Kind::RestV1,
        "/register",
        &json!({"email": email, "password": password}),
    )
}

fn login_event(email: &str, password: &str) -> Event {
    Event::post_json(
        Kind::HttpV2,
        "/login",
        &json!({"email": email, "password": password}),
    )
}

/// The app on a fresh table where ada@example.com is registered with `STRONG_PASSWORD`.
async fn app_with_ada() -> App<DynamoStore> {
    let app = test_app(fresh_store(&endpoint()).await);
    let registered = send(&app, register_event("ada@example.com", STRONG_PASSWORD)).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    app
}

#[tokio::test]
async fn fifty_concurrent_registrations_of_one_email_create_exactly_one_account() {
    let mut app = test_app(fresh_store(&endpoint()).await);
    // Fifty from one address: above the per-address limit, which this test is not about.
    app.accounts
        .recovery
        .settings
        .registrations_per_source_per_hour = 100;
    // Without mail, so that the losers are told (409); with mail every racer gets 201 and
    // still exactly one account exists (recovery.rs).
    app.accounts.recovery.mail = accounts::mail::MailDelivery::Disabled;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let app = Arc::clone(&app);
        // Each racer has its own password: only the winner's may open the account.
        let password = format!("{STRONG_PASSWORD} {i}");
        tasks.spawn(async move {
            let answer = send(&app, register_event("race@example.com", &password)).await;
            (answer, password)
        });
    }
    let mut created = Vec::new();
    let mut conflicts = 0;
    while let Some(result) = tasks.join_next().await {
        let (answer, password) = result.unwrap();
        match answer.status {
            201 => created.push((answer.json(), password)),
            409 => conflicts += 1,
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!((created.len(), conflicts), (1, 49));
    let (winner, password) = &created[0];
    let token = send(&app, login_event("race@example.com", password)).await;
    assert_eq!(token.status, 200);
    let verified = send(
        &app,
        Event::get(Kind::RestV1, "/verify").bearer(token.json()["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(verified.json()["sub"], winner["user_id"]);
    let loser = send(
        &app,
        login_event("race@example.com", &format!("{password}x")),
    )
    .await;
    assert_eq!(loser.status, 401);
}

#[tokio::test]
async fn a_73_byte_password_cannot_log_in_to_the_account_of_its_first_72_bytes() {
    let app = test_app(fresh_store(&endpoint()).await);
    let base = "Tr0ub4dor&3-correct-horse-battery-staple-zebra-quantum-violet-9f8e7d6c5b";
    assert_eq!(base.len(), 72);
    assert_eq!(
        status(&app, register_event("ada@example.com", base)).await,
        201
    );
    let longer = format!("{base}!");
    send(&app, register_event("bob@example.com", &longer))
        .await
        .problem(400);
    assert_eq!(
        status(&app, login_event("ada@example.com", &longer)).await,
        401
    );
    assert_eq!(
        status(&app, login_event("ada@example.com", base)).await,
        200
    );
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_identical_answers() {
    let app = app_with_ada().await;
    let wrong = send(
        &app,
        login_event("ada@example.com", "wrong horse battery staple"),
    )
    .await;
    let unknown = send(&app, login_event("nobody@example.com", STRONG_PASSWORD)).await;
    wrong.problem(401);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.text, wrong.text);
    assert_eq!(unknown.headers, wrong.headers);
}

#[tokio::test]
async fn a_stopped_server_gives_a_bounded_503_and_service_resumes_when_it_is_back() {
    let proxy = Proxy::start_for(&endpoint()).await;
    let store = fresh_store(&proxy.url()).await;
    let app = test_app(store.clone());
    assert_eq!(
        status(&app, register_event("ada@example.com", STRONG_PASSWORD)).await,
        201
    );
    let session = send(&app, login_event("ada@example.com", STRONG_PASSWORD))
        .await
        .json();
    let refresh = json!({"refresh_token": session["refresh_token"]});
    let sub = app
        .verifier
        .verify(session["access_token"].as_str().unwrap())
        .unwrap()
        .sub;

    proxy.stop().await;
    for event in [
        register_event("bob@example.com", STRONG_PASSWORD),
        login_event("ada@example.com", STRONG_PASSWORD),
        Event::post_json(Kind::RestV1, "/refresh", &refresh),
        Event::post_json(Kind::HttpV2, "/logout", &refresh),
        Event::post_json(Kind::RestV1, "/logout-all", &json!({})).authorized(&sub, "ada@example.com"),
        Event::post_json(
            Kind::RestV1,
            "/password",
            &json!({"current_password": STRONG_PASSWORD, "new_password": "purple elephant juggling seventeen oranges"}),
        )
        .authorized(&sub, "ada@example.com"),
    ] {
        assert_bounded_503(&app, event).await;
    }
    // Health does not depend on the store.
    assert_eq!(status(&app, Event::get(Kind::HttpV2, "/health")).await, 200);

    proxy.restart(Mode::Forward).await;
    // Nothing the refused requests began was kept: one user, one session, one token.
    let kinds = assert_consistent(&endpoint(), store.table()).await;
    assert_eq!(kinds.get("user"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("session"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("refresh"), Some(&1), "{kinds:?}");
    // The session was neither spent nor ended, and the password did not change.
    let refreshed = send(&app, Event::post_json(Kind::RestV1, "/refresh", &refresh)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        status(&app, login_event("ada@example.com", STRONG_PASSWORD)).await,
        200
    );
    // The refused registration left nothing behind: the email is still free.
    assert_eq!(
        status(&app, register_event("bob@example.com", STRONG_PASSWORD)).await,
        201
    );
    let direct = DynamoStore::new(client(&endpoint()), store.table());
    let bob = accounts::model::credentials::Email::parse("bob@example.com").unwrap();
    use accounts::store::UserStore as _;
    let anywhere = accounts::model::backoff::Source::new("192.0.2.1");
    assert!(
        direct
            .find_user_for_login(&bob, &anywhere)
            .await
            .unwrap()
            .0
            .is_some()
    );
    assert_consistent(&endpoint(), store.table()).await;
}

#[tokio::test]
async fn a_hanging_server_gives_a_503_within_the_bound() {
    let proxy = Proxy::start_for(&endpoint()).await;
    let app = test_app(fresh_store(&proxy.url()).await);
    proxy.restart(Mode::Hang).await;
    for event in [
        register_event("ada@example.com", STRONG_PASSWORD),
        login_event("ada@example.com", STRONG_PASSWORD),
    ] {
        assert_bounded_503(&app, event).await;
    }
}

/// A missing table is a broken deployment, not an outage: a 500 problem without `Retry-After`
/// (a 503 would invite clients to retry what cannot mend), and no table name or SDK text.
#[tokio::test]
async fn a_missing_table_is_a_500_not_a_retryable_503() {
    let table = format!("missing-{}", uuid::Uuid::new_v4().simple());
    let app = test_app(DynamoStore::new(client(&endpoint()), &table));
    for event in [
        register_event("ada@example.com", STRONG_PASSWORD),
        login_event("ada@example.com", STRONG_PASSWORD),
    ] {
        let answer = send(&app, event).await;
        let problem = answer.problem(500).to_string();
        assert_eq!(answer.header("retry-after"), None);
        assert!(!problem.contains(&table), "no internals: {problem}");
        assert!(
            !problem.contains("ResourceNotFound"),
            "no internals: {problem}"
        );
    }
}

#[tokio::test]
async fn the_sixth_wrong_password_meets_backoff_for_known_and_unknown_emails_alike() {
    let mut app = app_with_ada().await;
    let clock = shared::ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    for email in ["ada@example.com", "nobody@example.com"] {
        for attempt in 1..=5 {
            let answer = send(&app, login_event(email, "wrong horse battery staple")).await;
            assert_eq!(answer.status, 401, "{email} attempt {attempt}");
        }
        // Even the right password waits out the backoff.
        let locked = send(&app, login_event(email, STRONG_PASSWORD)).await;
        let problem = locked.problem(429);
        assert_eq!(problem["type"], "urn:problem-type:auth:too-many-attempts");
        assert_eq!(locked.header("retry-after"), Some("1"));
    }
    // Known and unknown emails look the same while locked.
    let known = send(&app, login_event("ada@example.com", STRONG_PASSWORD)).await;
    let unknown = send(&app, login_event("nobody@example.com", STRONG_PASSWORD)).await;
    assert_eq!((known.status, &known.text), (unknown.status, &unknown.text));

    clock.advance_ms(1000);
    assert_eq!(
        status(&app, login_event("ada@example.com", STRONG_PASSWORD)).await,
        200
    );
    // Success reset the count: one more failure is a plain 401, not a lock.
    assert_eq!(
        status(
            &app,
            login_event("ada@example.com", "wrong horse battery staple")
        )
        .await,
        401
    );
    assert_eq!(
        status(&app, login_event("ada@example.com", STRONG_PASSWORD)).await,
        200
    );
}

#[tokio::test]
async fn throttling_is_retried_within_the_bound_and_then_is_a_503() {
    let proxy = Proxy::start_for(&endpoint()).await;
    let store = fresh_store(&proxy.url()).await;
    let app = test_app(store.clone());

    // Two throttled attempts, then the server: the SDK's retries absorb them.
    proxy.restart(Mode::Throttle(2)).await;
    let started = Instant::now();
    assert_eq!(
        status(&app, register_event("ada@example.com", STRONG_PASSWORD)).await,
        201
    );
    assert!(started.elapsed() < FAILURE_BOUND);
    assert_eq!(proxy.throttled(), 2, "both throttled attempts were retried");

    // Throttled on every attempt: a bounded 503 after the last retry.
    proxy.restart(Mode::Throttle(u64::MAX)).await;
    let before = proxy.throttled();
    assert_bounded_503(&app, login_event("ada@example.com", STRONG_PASSWORD)).await;
    // A login's account read and its count go out together: three attempts each.
    assert_eq!(
        proxy.throttled() - before,
        6,
        "three attempts of each call, then give up"
    );

    proxy.restart(Mode::Forward).await;
    assert_eq!(
        status(&app, login_event("ada@example.com", STRONG_PASSWORD)).await,
        200
    );
}
