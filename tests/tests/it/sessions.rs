//! Sessions through the auth-api handler: refresh rotation, the retry grace window, reuse
//! detection, logout, logout-all and password change. Every case runs over the in-memory
//! store and over the real DynamoDB API server.

use std::sync::Arc;

use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD};
use integration_tests::events::{Event, Kind};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";

async fn send<S: Store>(app: &App<S>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

async fn login<S: Store>(app: &App<S>, password: &str) -> Answer {
    send(
        app,
        Event::post_json(
            Kind::HttpV2,
            "/login",
            &json!({"email": "ada@example.com", "password": password}),
        ),
    )
    .await
}

/// Registers ada@example.com and returns her user id.
async fn register_ada<S: Store>(app: &App<S>) -> String {
    let answer = send(
        app,
        Event::post_json(
            Kind::RestV1,
            "/register",
            &json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        ),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()["user_id"].as_str().unwrap().to_owned()
}

/// A new session of ada's: the login answer's JSON.
async fn session<S: Store>(app: &App<S>) -> Value {
    let answer = login(app, STRONG_PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

fn refresh_token(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("a refresh token")
}

async fn refresh<S: Store>(app: &App<S>, token: &str) -> Answer {
    send(
        app,
        Event::post_json(Kind::RestV1, "/refresh", &json!({"refresh_token": token})),
    )
    .await
}

async fn logout<S: Store>(app: &App<S>, body: &Value) -> Answer {
    send(app, Event::post_json(Kind::HttpV2, "/logout", body)).await
}

fn assert_refused(answer: &Answer) {
    assert_eq!(
        answer.problem(401)["type"],
        "urn:problem-type:auth:invalid-refresh-token"
    );
}

async fn change_password<S: Store>(app: &App<S>, sub: &str, body: &Value) -> Answer {
    send(
        app,
        Event::post_json(Kind::RestV1, "/password", body).authorized(sub, "ada@example.com"),
    )
    .await
}

over_both_stores!(
    login_returns_a_refresh_token_that_rotates,
    a_retry_within_the_grace_window_gets_the_same_successor,
    reuse_after_the_grace_window_revokes_the_family_and_its_successor,
    concurrent_refreshes_of_one_token_continue_one_family,
    bad_and_expired_refresh_tokens_are_refused,
    logout_revokes_only_its_own_family,
    logout_all_ends_every_session,
    a_password_change_needs_the_current_password_and_ends_other_sessions,
    wrong_current_passwords_meet_the_login_backoff,
    parallel_wrong_guesses_get_at_most_five_password_checks,
    parallel_wrong_current_passwords_get_at_most_five_checks,
    a_guesser_elsewhere_does_not_lock_the_owner_out,
    guesses_spread_over_many_addresses_meet_the_email_limit_but_not_the_owner_at_home,
    a_changed_bcrypt_cost_is_applied_at_the_next_login,
    a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed,
);

async fn login_returns_a_refresh_token_that_rotates<S: Store>(app: App<S>) {
    let sub = register_ada(&app).await;
    let tokens = session(&app).await;
    assert_eq!(tokens["refresh_token_expires_in"], 30 * 24 * 60 * 60);
    let first = refresh_token(&tokens);
    assert_eq!(first.len(), 43, "256 bits, base64url");

    let answer = refresh(&app, first).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let rotated = answer.json();
    let second = refresh_token(&rotated);
    assert_ne!(second, first);
    assert_eq!(rotated["token_type"], "Bearer");
    assert_eq!(rotated["expires_in"], 900);
    let claims = app
        .verifier
        .verify(rotated["access_token"].as_str().unwrap())
        .expect("the new access token verifies");
    assert_eq!(claims.sub, sub);
    assert_eq!(claims.email, "ada@example.com");

    let third = refresh(&app, second).await;
    assert_eq!(third.status, 200, "{}", third.text);
    assert_ne!(refresh_token(&third.json()), second);
}

async fn a_retry_within_the_grace_window_gets_the_same_successor<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let first = session(&app).await;
    let first = refresh_token(&first);
    let answer = refresh(&app, first).await.json();
    let successor = refresh_token(&answer);

    // The client lost the answer and retries: the same successor, a fresh access token.
    let retried = refresh(&app, first).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    let retried = retried.json();
    assert_eq!(refresh_token(&retried), successor);
    assert!(
        app.verifier
            .verify(retried["access_token"].as_str().unwrap())
            .is_ok()
    );
    assert_eq!(refresh(&app, successor).await.status, 200);
}

async fn reuse_after_the_grace_window_revokes_the_family_and_its_successor<S: Store>(
    mut app: App<S>,
) {
    let clock = shared::ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    register_ada(&app).await;
    let other = session(&app).await;
    let stolen = session(&app).await;
    let stolen = refresh_token(&stolen);
    let answer = refresh(&app, stolen).await.json();
    let successor = refresh_token(&answer);

    // Within the grace window (10 s) a retry still gets the successor; just after, reuse.
    clock.advance_ms(app.accounts.sessions.reuse_grace_seconds * 1000);
    assert_eq!(refresh(&app, stolen).await.status, 200);
    clock.advance_ms(1);
    assert_refused(&refresh(&app, stolen).await);
    assert_refused(&refresh(&app, successor).await);
    // Another session of the same user is not touched.
    assert_eq!(refresh(&app, refresh_token(&other)).await.status, 200);
}

async fn concurrent_refreshes_of_one_token_continue_one_family<S: Store + 'static>(app: App<S>) {
    register_ada(&app).await;
    let tokens = session(&app).await;
    let token = refresh_token(&tokens).to_owned();
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, token) = (Arc::clone(&app), token.clone());
        tasks.spawn(async move { refresh(&app, &token).await });
    }
    let mut successors = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.text);
        successors.push(refresh_token(&answer.json()).to_owned());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one token, one successor");
    assert_eq!(refresh(&app, &successors[0]).await.status, 200);
}

async fn bad_and_expired_refresh_tokens_are_refused<S: Store>(mut app: App<S>) {
    register_ada(&app).await;
    for token in ["", "abc", &"A".repeat(43), &"*".repeat(43)] {
        assert_refused(&refresh(&app, token).await);
    }
    let missing = send(&app, Event::post_json(Kind::RestV1, "/refresh", &json!({}))).await;
    assert_eq!(missing.field_errors().len(), 1);
    let wrong_type = send(
        &app,
        Event::post_json(Kind::RestV1, "/refresh", &json!({"refresh_token": 42})),
    )
    .await;
    assert!(wrong_type.field_errors().contains_key("refresh_token"));

    app.accounts.sessions.refresh_ttl_seconds = 0;
    let tokens = session(&app).await;
    assert_refused(&refresh(&app, refresh_token(&tokens)).await);
}

async fn logout_revokes_only_its_own_family<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let phone = session(&app).await;
    let laptop = session(&app).await;
    let answer = logout(&app, &json!({"refresh_token": refresh_token(&phone)})).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert!(answer.text.is_empty());
    assert_refused(&refresh(&app, refresh_token(&phone)).await);
    assert_eq!(refresh(&app, refresh_token(&laptop)).await.status, 200);

    // Logging out twice, or with a token that is not ours, changes nothing and says nothing.
    for body in [
        json!({"refresh_token": refresh_token(&phone)}),
        json!({"refresh_token": "not a token"}),
    ] {
        assert_eq!(logout(&app, &body).await.status, 204);
    }
    assert!(
        logout(&app, &json!({}))
            .await
            .field_errors()
            .contains_key("refresh_token")
    );
    assert!(
        logout(&app, &json!({"token": "x"}))
            .await
            .field_errors()
            .contains_key("body")
    );
}

async fn logout_all_ends_every_session<S: Store>(app: App<S>) {
    let sub = register_ada(&app).await;
    let phone = session(&app).await;
    let laptop = session(&app).await;
    let rotated = refresh(&app, refresh_token(&laptop)).await.json();

    let unprotected = send(
        &app,
        Event::post_json(Kind::RestV1, "/logout-all", &json!({})),
    )
    .await;
    unprotected.problem(401);
    let answer = send(
        &app,
        Event::post_json(Kind::RestV1, "/logout-all", &json!({}))
            .authorized(&sub, "ada@example.com"),
    )
    .await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    for token in [refresh_token(&phone), refresh_token(&rotated)] {
        assert_refused(&refresh(&app, token).await);
    }
    // Signing in again starts a session that works.
    let fresh = session(&app).await;
    assert_eq!(refresh(&app, refresh_token(&fresh)).await.status, 200);

    let stranger = send(
        &app,
        Event::post_json(Kind::RestV1, "/logout-all", &json!({}))
            .authorized(&uuid::Uuid::new_v4().to_string(), "ada@example.com"),
    )
    .await;
    stranger.problem(404);
}

async fn a_password_change_needs_the_current_password_and_ends_other_sessions<S: Store>(
    app: App<S>,
) {
    let sub = register_ada(&app).await;
    let other = session(&app).await;

    let wrong = change_password(
        &app,
        &sub,
        &json!({"current_password": "wrong horse battery staple", "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(
        wrong.problem(403)["type"],
        "urn:problem-type:auth:wrong-current-password"
    );
    let weak = change_password(
        &app,
        &sub,
        &json!({"current_password": STRONG_PASSWORD, "new_password": "password1"}),
    )
    .await;
    assert!(weak.field_errors().contains_key("new_password"));
    let same = change_password(
        &app,
        &sub,
        &json!({"current_password": STRONG_PASSWORD, "new_password": STRONG_PASSWORD}),
    )
    .await;
    assert!(same.field_errors().contains_key("new_password"));
    // Nothing changed so far.
    assert_eq!(refresh(&app, refresh_token(&other)).await.status, 200);
    let other = session(&app).await;

    let changed = change_password(
        &app,
        &sub,
        &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let mine = changed.json();
    assert!(
        app.verifier
            .verify(mine["access_token"].as_str().unwrap())
            .is_ok()
    );

    assert_refused(&refresh(&app, refresh_token(&other)).await);
    assert_eq!(refresh(&app, refresh_token(&mine)).await.status, 200);
    assert_eq!(login(&app, STRONG_PASSWORD).await.status, 401);
    assert_eq!(login(&app, NEW_PASSWORD).await.status, 200);

    let unprotected = send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/password",
            &json!({"current_password": NEW_PASSWORD, "new_password": STRONG_PASSWORD}),
        ),
    )
    .await;
    unprotected.problem(401);
}

async fn wrong_current_passwords_meet_the_login_backoff<S: Store>(app: App<S>) {
    let sub = register_ada(&app).await;
    let guess =
        json!({"current_password": "wrong horse battery staple", "new_password": NEW_PASSWORD});
    for _ in 0..5 {
        change_password(&app, &sub, &guess).await.problem(403);
    }
    let locked = change_password(
        &app,
        &sub,
        &json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    locked.problem(429);
    assert_eq!(locked.header("retry-after"), Some("1"));
    // The same address (the REST fixture's) cannot log in either; the owner elsewhere can.
    let here = send(
        &app,
        login_event(Kind::RestV1, "ada@example.com", STRONG_PASSWORD),
    )
    .await;
    assert_eq!(here.status, 429);
    assert_eq!(login(&app, STRONG_PASSWORD).await.status, 200);
}

fn login_event(kind: Kind, email: &str, password: &str) -> Event {
    Event::post_json(
        kind,
        "/login",
        &json!({"email": email, "password": password}),
    )
}

/// Sends 40 copies of `guess` at once and returns how many got `wrong_status` and how many
/// 429 (each with a `Retry-After`), and how many bcrypt verifications ran meanwhile.
async fn forty_at_once<S: Store + 'static>(
    app: App<S>,
    guess: Event,
    wrong_status: u16,
) -> (usize, usize, u64) {
    let app = Arc::new(app);
    let checks_before = app.accounts.passwords.verifications();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (app, guess) = (Arc::clone(&app), guess.clone());
        tasks.spawn(async move { send(&app, guess).await });
    }
    let (mut refused, mut locked) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        if answer.status == wrong_status {
            refused += 1;
        } else {
            answer.problem(429);
            let seconds: u64 = answer.header("retry-after").unwrap().parse().unwrap();
            assert!(seconds >= 1);
            locked += 1;
        }
    }
    (
        refused,
        locked,
        app.accounts.passwords.verifications() - checks_before,
    )
}

async fn parallel_wrong_guesses_get_at_most_five_password_checks<S: Store + 'static>(app: App<S>) {
    register_ada(&app).await;
    let guess = login_event(
        Kind::HttpV2,
        "ada@example.com",
        "wrong horse battery staple",
    );
    assert_eq!(
        forty_at_once(app, guess, 401).await,
        (5, 35, 5),
        "5 guesses checked (bcrypt ran 5 times), every other one refused before bcrypt"
    );
}

async fn parallel_wrong_current_passwords_get_at_most_five_checks<S: Store + 'static>(app: App<S>) {
    let sub = register_ada(&app).await;
    let body =
        json!({"current_password": "wrong horse battery staple", "new_password": NEW_PASSWORD});
    let guess =
        Event::post_json(Kind::RestV1, "/password", &body).authorized(&sub, "ada@example.com");
    assert_eq!(forty_at_once(app, guess, 403).await, (5, 35, 5));
}

async fn a_guesser_elsewhere_does_not_lock_the_owner_out<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let guess = |ip: &str| {
        login_event(
            Kind::RestV1,
            "ada@example.com",
            "wrong horse battery staple",
        )
        .from_source(ip)
    };
    for _ in 0..5 {
        assert_eq!(send(&app, guess("198.51.100.66")).await.status, 401);
    }
    // `X-Forwarded-For` is the client's to write: it does not move the guesser elsewhere.
    let spoofed = guess("198.51.100.66").header("X-Forwarded-For", "192.0.2.200");
    assert_eq!(send(&app, spoofed).await.status, 429);
    let owner =
        login_event(Kind::RestV1, "ada@example.com", STRONG_PASSWORD).from_source("192.0.2.200");
    assert_eq!(send(&app, owner).await.status, 200);
    // Unknown emails behave the same.
    let nobody = |ip: &str| {
        login_event(
            Kind::RestV1,
            "nobody@example.com",
            "wrong horse battery staple",
        )
        .from_source(ip)
    };
    for _ in 0..5 {
        assert_eq!(send(&app, nobody("198.51.100.66")).await.status, 401);
    }
    assert_eq!(send(&app, nobody("198.51.100.66")).await.status, 429);
    assert_eq!(send(&app, nobody("192.0.2.200")).await.status, 401);
}

async fn guesses_spread_over_many_addresses_meet_the_email_limit_but_not_the_owner_at_home<
    S: Store,
>(
    app: App<S>,
) {
    register_ada(&app).await;
    let home = "192.0.2.10";
    let ada_home = login_event(Kind::RestV1, "ada@example.com", STRONG_PASSWORD).from_source(home);
    assert_eq!(send(&app, ada_home.clone()).await.status, 200);
    for email in ["ada@example.com", "nobody@example.com"] {
        let wrong = |n: u32| {
            let ip = format!("198.51.{}.{}", 100 + n / 250, n % 250 + 1);
            login_event(Kind::RestV1, email, "wrong horse battery staple").from_source(&ip)
        };
        for n in 0..100 {
            assert_eq!(send(&app, wrong(n)).await.status, 401, "{email} guess {n}");
        }
        let over = send(&app, wrong(100)).await;
        over.problem(429);
        let seconds: u64 = over.header("retry-after").unwrap().parse().unwrap();
        assert!(
            seconds > 23 * 3600,
            "until the day's window ends: {seconds}"
        );
        let right_elsewhere =
            login_event(Kind::RestV1, email, STRONG_PASSWORD).from_source("203.0.113.99");
        assert_eq!(send(&app, right_elsewhere).await.status, 429, "{email}");
    }
    // The owner signs in from the address she signed in from before.
    assert_eq!(send(&app, ada_home).await.status, 200);
}

async fn a_changed_bcrypt_cost_is_applied_at_the_next_login<S: Store>(mut app: App<S>) {
    register_ada(&app).await;
    let email = accounts::model::credentials::Email::parse("ada@example.com").unwrap();
    let source = accounts::model::backoff::Source::new("192.0.2.1");
    let stored_hash = async |app: &App<S>| {
        let (user, _) = app
            .accounts
            .store
            .find_user_for_login(&email, &source)
            .await
            .unwrap();
        secrecy::ExposeSecret::expose_secret(&user.unwrap().password_hash).to_owned()
    };
    assert!(stored_hash(&app).await.starts_with("$2b$04$"));
    app.accounts.passwords = accounts::passwords::Passwords::new(5).unwrap();
    // A wrong password changes nothing.
    assert_eq!(login(&app, NEW_PASSWORD).await.status, 401);
    assert!(stored_hash(&app).await.starts_with("$2b$04$"));
    assert_eq!(login(&app, STRONG_PASSWORD).await.status, 200);
    assert!(stored_hash(&app).await.starts_with("$2b$05$"));
    assert_eq!(
        login(&app, STRONG_PASSWORD).await.status,
        200,
        "the new hash works"
    );
    // And down again: a costlier hash than the configured cost (an old or imported one)
    // costs its account more time per login than anyone else's until it is rehashed.
    app.accounts.passwords = accounts::passwords::Passwords::new(4).unwrap();
    assert_eq!(login(&app, STRONG_PASSWORD).await.status, 200);
    assert!(stored_hash(&app).await.starts_with("$2b$04$"));
}

async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed<S: Store>(
    mut app: App<S>,
) {
    register_ada(&app).await;
    // Long-lived tokens, so only the session's own age can end it.
    app.accounts.sessions.refresh_ttl_seconds = 366 * 24 * 3600;
    let email = accounts::model::credentials::Email::parse("ada@example.com").unwrap();
    let (user, _) = app
        .accounts
        .store
        .find_user_for_login(&email, &accounts::model::backoff::Source::new("192.0.2.1"))
        .await
        .unwrap();
    let user = user.unwrap();
    let now_ms = shared::token::now_unix_ms();
    let day_ms = 24 * 3600 * 1000;
    let mut tokens = Vec::new();
    for age_days in [89, 91] {
        let (token, family, record) = accounts::model::session::SessionFamily::begin(
            &user,
            user.session_epoch,
            now_ms - age_days * day_ms,
            app.accounts.sessions.refresh_ttl_seconds,
            Default::default(),
        );
        app.accounts
            .store
            .start_session(&family, &record)
            .await
            .unwrap();
        tokens.push(token.encode());
    }
    let young = refresh(&app, secrecy::ExposeSecret::expose_secret(&tokens[0])).await;
    assert_eq!(young.status, 200, "{}", young.text);
    let left = young.json()["refresh_token_expires_in"].as_i64().unwrap();
    assert!(
        (86_000..=86_400).contains(&left),
        "the successor lives only to the session's end, a day away: {left}"
    );
    assert_refused(&refresh(&app, secrecy::ExposeSecret::expose_secret(&tokens[1])).await);
    // A new login's first token lives no longer than the session may.
    app.accounts.sessions.max_lifetime_seconds = 3600;
    assert_eq!(session(&app).await["refresh_token_expires_in"], 3600);
}
