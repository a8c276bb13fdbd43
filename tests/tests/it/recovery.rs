//! Email verification and password reset through the handler, over both stores, with mail
//! kept in an outbox: every flow, every kind of unusable token, the limits, and that unknown
//! and known addresses get the same answers.

use std::sync::Arc;

use accounts::store::Store;
use auth_api::App;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::app::{Answer, STRONG_PASSWORD, link_token, outbox, with_clock};
use integration_tests::events::{Event, Kind};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";

async fn post<S: Store>(app: &App<S>, path: &str, body: Value) -> Answer {
    let event = Event::post_json(Kind::RestV1, path, &body);
    Answer::from_response(app.handle(event.request()).await)
}

async fn register<S: Store>(app: &App<S>, email: &str) {
    let answer = post(
        app,
        "/register",
        json!({"email": email, "password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}

async fn login<S: Store>(app: &App<S>, email: &str, password: &str) -> Answer {
    post(app, "/login", json!({"email": email, "password": password})).await
}

/// The claims of an access token (not verified: the handler just issued it).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The token of the newest mail to `to` whose subject starts with `subject`.
fn newest_token<S>(app: &App<S>, to: &str, subject: &str) -> String {
    let mail = outbox(app)
        .into_iter()
        .rev()
        .find(|m| m.to == to && m.subject.starts_with(subject))
        .unwrap_or_else(|| panic!("no {subject:?} mail to {to}: {:?}", outbox(app)));
    link_token(&mail.text)
}

fn verification<S>(app: &App<S>, to: &str) -> String {
    newest_token(app, to, "Verify your email")
}

fn reset_mail<S>(app: &App<S>, to: &str) -> String {
    newest_token(app, to, "Reset your")
}

fn assert_unusable(answer: &Answer) {
    assert_eq!(
        answer.problem(400)["type"],
        "urn:problem-type:auth:invalid-link-token",
        "{}",
        answer.text
    );
}

over_both_stores!(
    registration_mails_a_link_that_verifies_the_email_once,
    a_newer_verification_link_replaces_the_older,
    a_reset_replaces_the_password_and_ends_every_session,
    links_that_cannot_act_are_refused_alike_and_a_weak_password_spends_nothing,
    forgot_and_resend_answer_every_address_alike,
    mail_to_an_address_is_limited_whether_it_has_an_account_or_not,
    link_checks_from_one_address_are_limited,
    a_required_verified_email_is_asked_for_only_after_the_right_password,
    registrations_from_one_address_are_limited_even_in_parallel,
    tagged_addresses_count_toward_their_mailbox_s_mail_limit,
    with_mail_a_taken_email_gets_a_new_one_s_answer_and_its_owner_a_mail,
    a_reset_forgets_the_trusted_sign_in_addresses,
);

/// A squatter's (or a thief's) sign-in addresses are trusted, exempt from the email's failure
/// window. Taking the account back with a reset forgets them.
async fn a_reset_forgets_the_trusted_sign_in_addresses<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    register(&app, "ada@example.com").await;
    let email = accounts::model::credentials::Email::parse("ada@example.com").unwrap();
    let source = accounts::model::backoff::Source::new("203.0.113.66");
    let signed_in = post_from(
        &app,
        "/login",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        "203.0.113.66",
    )
    .await;
    assert_eq!(signed_in.status, 200);
    let trusted = async || {
        let (user, _) = app
            .accounts
            .store
            .find_user_for_login(&email, &source)
            .await
            .unwrap();
        user.unwrap().trusted_sources
    };
    assert_eq!(trusted().await, ["203.0.113.66"]);
    clock.advance_ms(61_000);
    let forgot = post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(forgot.status, 202);
    let token = reset_mail(&app, "ada@example.com");
    let reset = post(
        &app,
        "/password/reset",
        json!({"token": token, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    assert!(trusted().await.is_empty());
}

async fn post_from<S: Store>(app: &App<S>, path: &str, body: Value, ip: &str) -> Answer {
    let event = Event::post_json(Kind::RestV1, path, &body).from_source(ip);
    Answer::from_response(app.handle(event.request()).await)
}

/// With mail on, registration tells nobody who has an account: a taken email gets the answer
/// a new one gets (status, header names, body shape), nothing is written, and the owner gets
/// a mail saying someone tried.
async fn with_mail_a_taken_email_gets_a_new_one_s_answer_and_its_owner_a_mail<S: Store>(
    app: App<S>,
) {
    let (app, clock) = with_clock(app);
    let first = post(
        &app,
        "/register",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let new = post(
        &app,
        "/register",
        json!({"email": "grace@example.com", "password": STRONG_PASSWORD}),
    )
    .await;
    clock.advance_ms(61_000);
    let taken = post(
        &app,
        "/register",
        json!({"email": "ADA@example.com", "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(taken.status, new.status, "{}", taken.text);
    let mut taken_headers: Vec<&str> = taken.headers.keys().map(|k| k.as_str()).collect();
    let mut new_headers: Vec<&str> = new.headers.keys().map(|k| k.as_str()).collect();
    taken_headers.sort_unstable();
    new_headers.sort_unstable();
    assert_eq!(taken_headers, new_headers);
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(shape(&taken.json()), shape(&new.json()));
    assert_eq!(taken.json()["email"], "ada@example.com");
    assert_ne!(taken.json()["user_id"], first.json()["user_id"]);
    // Nothing changed: the owner's password still works, the attempt's does not.
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        200
    );
    assert_eq!(
        login(&app, "ada@example.com", NEW_PASSWORD).await.status,
        401
    );
    // The owner is told, with no link to act on.
    let mails: Vec<_> = outbox(&app)
        .into_iter()
        .filter(|m| m.to == "ada@example.com")
        .collect();
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(
        mails[1].subject.starts_with("Someone tried to create"),
        "{mails:?}"
    );
    assert!(
        mails[1].text.contains("reset your password"),
        "{}",
        mails[1].text
    );
    assert!(!mails[1].text.contains("token"), "{}", mails[1].text);
    // Counted toward the address's mail limit, like the verification mail it stands for:
    // a flood of attempts does not flood the owner.
    let again = post(
        &app,
        "/register",
        json!({"email": "ada@example.com", "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(again.status, 201);
    assert_eq!(
        outbox(&app)
            .iter()
            .filter(|m| m.to == "ada@example.com")
            .count(),
        2
    );
}

/// Ten registrations an hour from one address (`REGISTRATIONS_PER_SOURCE_PER_HOUR`): of 20
/// at once exactly 10 are created and mailed; the others get 429 with `Retry-After` and leave
/// nothing behind. Another address is not affected; the next hour opens again.
async fn registrations_from_one_address_are_limited_even_in_parallel<S: Store + 'static>(
    app: App<S>,
) {
    let (app, clock) = with_clock(app);
    assert_eq!(
        app.accounts
            .recovery
            .settings
            .registrations_per_source_per_hour,
        10
    );
    let app = Arc::new(app);
    let register_from = |email: String, ip: &'static str| {
        let app = Arc::clone(&app);
        async move {
            let body = json!({"email": email, "password": STRONG_PASSWORD});
            let event = Event::post_json(Kind::RestV1, "/register", &body).from_source(ip);
            Answer::from_response(app.handle(event.request()).await)
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        tasks.spawn(register_from(
            format!("user{n}@example.com"),
            "198.51.100.9",
        ));
    }
    let answers = tasks.join_all().await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(created, 10);
    for refused in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(
            refused.problem(429)["type"],
            "urn:problem-type:auth:too-many-registrations"
        );
        let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
    }
    // Nothing of the refused ones exists: no account, no mail.
    assert_eq!(outbox(&app).len(), 10);
    let mut signed_in = 0;
    for n in 0..20 {
        let answer = login(&app, &format!("user{n}@example.com"), STRONG_PASSWORD).await;
        if answer.status == 200 {
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, 10);
    assert_eq!(
        register_from("other@example.com".into(), "203.0.113.50")
            .await
            .status,
        201
    );
    clock.advance_ms(3_601_000);
    assert_eq!(
        register_from("later@example.com".into(), "198.51.100.9")
            .await
            .status,
        201
    );
}

/// `victim+1@…`, `victim+2@…` land in victim's inbox: their mails count toward one limit.
async fn tagged_addresses_count_toward_their_mailbox_s_mail_limit<S: Store>(app: App<S>) {
    let forgot = |email: &str| post(&app, "/password/forgot", json!({"email": email}));
    assert_eq!(forgot("victim+1@example.com").await.status, 202);
    let second = forgot("victim+2@example.com").await;
    assert_eq!(
        second.problem(429)["type"],
        "urn:problem-type:auth:too-many-mails"
    );
    assert_eq!(forgot("victim@example.com").await.status, 429);
    // Another mailbox is another count.
    assert_eq!(forgot("other+1@example.com").await.status, 202);
}

async fn registration_mails_a_link_that_verifies_the_email_once<S: Store>(app: App<S>) {
    register(&app, "ada@example.com").await;
    let mails = outbox(&app);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "ada@example.com");
    assert!(mails[0].text.contains("for 24 hours"), "{}", mails[0].text);
    assert!(mails[0].html.contains("href=\""));
    let before = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    assert_eq!(
        claims(before["access_token"].as_str().unwrap())["email_verified"],
        false
    );

    let token = verification(&app, "ada@example.com");
    let verified = post(&app, "/email/verify", json!({"token": token})).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(
        verified.json(),
        json!({"email": "ada@example.com", "email_verified": true})
    );
    assert_unusable(&post(&app, "/email/verify", json!({"token": token})).await);
    let after = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    assert_eq!(
        claims(after["access_token"].as_str().unwrap())["email_verified"],
        true
    );
    // A verified account gets no more verification mail.
    let (app, clock) = with_clock(app);
    clock.advance_ms(61_000);
    let resent = post(
        &app,
        "/email/verify/resend",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(resent.status, 202);
    assert_eq!(outbox(&app).len(), 1);
}

async fn a_newer_verification_link_replaces_the_older<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    register(&app, "ada@example.com").await;
    let first = verification(&app, "ada@example.com");
    clock.advance_ms(61_000);
    let resent = post(
        &app,
        "/email/verify/resend",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(resent.status, 202, "{}", resent.text);
    let second = verification(&app, "ada@example.com");
    assert_ne!(first, second);
    assert_unusable(&post(&app, "/email/verify", json!({"token": first})).await);
    assert_eq!(
        post(&app, "/email/verify", json!({"token": second}))
            .await
            .status,
        200
    );
}

async fn a_reset_replaces_the_password_and_ends_every_session<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    register(&app, "ada@example.com").await;
    // One mail a minute to an address: the verification mail was this minute's.
    clock.advance_ms(61_000);
    let session = login(&app, "ada@example.com", STRONG_PASSWORD).await.json();
    let forgot = post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(forgot.status, 202, "{}", forgot.text);
    let token = reset_mail(&app, "ada@example.com");
    assert!(outbox(&app).last().unwrap().text.contains("for 30 minutes"));
    let reset = post(
        &app,
        "/password/reset",
        json!({"token": token, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    let refresh = post(
        &app,
        "/refresh",
        json!({"refresh_token": session["refresh_token"]}),
    )
    .await;
    assert_eq!(refresh.status, 401, "every session ended");
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        401
    );
    let fresh = login(&app, "ada@example.com", NEW_PASSWORD).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(
        claims(fresh.json()["access_token"].as_str().unwrap())["email_verified"],
        true,
        "reading the mail proved the address"
    );
    assert_unusable(
        &post(
            &app,
            "/password/reset",
            json!({"token": token, "new_password": "another fine password 99!"}),
        )
        .await,
    );
}

async fn links_that_cannot_act_are_refused_alike_and_a_weak_password_spends_nothing<S: Store>(
    app: App<S>,
) {
    let (app, clock) = with_clock(app);
    register(&app, "ada@example.com").await;
    let verify = verification(&app, "ada@example.com");
    clock.advance_ms(61_000);
    post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    let reset = reset_mail(&app, "ada@example.com");
    let reset_with = |token: &str| json!({"token": token, "new_password": NEW_PASSWORD});
    // Malformed, unknown, and for the other purpose.
    for token in ["", "abc", &"A".repeat(43), &verify] {
        assert_unusable(&post(&app, "/password/reset", reset_with(token)).await);
    }
    assert_unusable(&post(&app, "/email/verify", json!({"token": reset})).await);
    // A weak password is a validation error, and the link still works afterwards.
    let weak = post(
        &app,
        "/password/reset",
        json!({"token": reset, "new_password": "password1"}),
    )
    .await;
    assert!(weak.field_errors().contains_key("new_password"));
    // Expired: 30 minutes later.
    clock.advance_ms(30 * 60 * 1000);
    assert_unusable(&post(&app, "/password/reset", reset_with(&reset)).await);
    // Superseded: a newer reset link replaces this one.
    clock.advance_ms(61_000);
    post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    let newer = reset_mail(&app, "ada@example.com");
    clock.advance_ms(61_000);
    post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    let newest = reset_mail(&app, "ada@example.com");
    assert_unusable(&post(&app, "/password/reset", reset_with(&newer)).await);
    assert_eq!(
        post(&app, "/password/reset", reset_with(&newest))
            .await
            .status,
        204
    );
}

async fn forgot_and_resend_answer_every_address_alike<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    register(&app, "ada@example.com").await;
    clock.advance_ms(61_000);
    for path in ["/password/forgot", "/email/verify/resend"] {
        let known = post(&app, path, json!({"email": "ada@example.com"})).await;
        let unknown = post(&app, path, json!({"email": "nobody@example.com"})).await;
        assert_eq!(known.status, 202, "{path}: {}", known.text);
        assert_eq!(
            (known.status, &known.text),
            (unknown.status, &unknown.text),
            "{path}"
        );
        assert_eq!(known.headers, unknown.headers, "{path}");
        clock.advance_ms(61_000);
    }
    let sent: Vec<String> = outbox(&app).into_iter().map(|m| m.to).collect();
    assert_eq!(sent, ["ada@example.com"; 3], "mail only to the account");
    // A malformed address is a 400 for both routes, naming the field.
    for path in ["/password/forgot", "/email/verify/resend"] {
        let answer = post(&app, path, json!({"email": "not an address"})).await;
        assert!(answer.field_errors().contains_key("email"), "{path}");
    }
}

async fn mail_to_an_address_is_limited_whether_it_has_an_account_or_not<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    register(&app, "ada@example.com").await;
    clock.advance_ms(61_000);
    for email in ["ada@example.com", "nobody@example.com"] {
        let forgot = || post(&app, "/password/forgot", json!({"email": email}));
        assert_eq!(forgot().await.status, 202, "{email}");
        let again = forgot().await;
        assert_eq!(
            again.problem(429)["type"],
            "urn:problem-type:auth:too-many-mails",
            "{email}"
        );
        let retry: u64 = again.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    // Five an hour, refused requests counted too: ada's verification mail, one reset mail and
    // the refused one so far.
    for _ in 0..2 {
        clock.advance_ms(61_000);
        let answer = post(
            &app,
            "/password/forgot",
            json!({"email": "ada@example.com"}),
        )
        .await;
        assert_eq!(answer.status, 202);
    }
    clock.advance_ms(61_000);
    let sixth = post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    sixth.problem(429);
    let retry: u64 = sixth.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 60, "until the hour's window ends: {retry}");
}

async fn link_checks_from_one_address_are_limited<S: Store>(app: App<S>) {
    let bad = json!({"token": "A".repeat(43)});
    for _ in 0..20 {
        assert_unusable(&post(&app, "/email/verify", bad.clone()).await);
    }
    let limited = post(&app, "/email/verify", bad).await;
    assert_eq!(
        limited.problem(429)["type"],
        "urn:problem-type:auth:too-many-token-checks"
    );
    assert!(limited.header("retry-after").is_some());
}

async fn a_required_verified_email_is_asked_for_only_after_the_right_password<S: Store>(
    mut app: App<S>,
) {
    app.accounts.recovery.settings.require_verified_email = true;
    register(&app, "ada@example.com").await;
    assert_eq!(
        login(&app, "ada@example.com", NEW_PASSWORD).await.status,
        401
    );
    let refused = login(&app, "ada@example.com", STRONG_PASSWORD).await;
    assert_eq!(
        refused.problem(403)["type"],
        "urn:problem-type:auth:email-not-verified"
    );
    let token = verification(&app, "ada@example.com");
    assert_eq!(
        post(&app, "/email/verify", json!({"token": token}))
            .await
            .status,
        200
    );
    assert_eq!(
        login(&app, "ada@example.com", STRONG_PASSWORD).await.status,
        200
    );
}

/// Forgetting the failed logins comes after the reset has committed: when it fails (here as
/// AWS fails a call the role may not make: AccessDenied), the owner still gets 204 and the
/// new password works.
#[tokio::test]
async fn a_committed_reset_answers_204_even_if_forgetting_failed_logins_fails() {
    use integration_tests::dynamo::{Mode, Proxy, endpoint, fresh_store};
    let proxy = Proxy::start_for(&endpoint()).await;
    let store = fresh_store(&proxy.url()).await;
    let (app, clock) = with_clock(integration_tests::app::test_app(store));
    register(&app, "ada@example.com").await;
    clock.advance_ms(61_000);
    // A failed login leaves a record for the reset to forget.
    assert_eq!(
        login(&app, "ada@example.com", "not the password")
            .await
            .status,
        401
    );
    let forgot = post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(forgot.status, 202, "{}", forgot.text);
    let token = reset_mail(&app, "ada@example.com");
    proxy.restart(Mode::Deny("Query")).await;
    let reset = post(
        &app,
        "/password/reset",
        json!({"token": token, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    proxy.restart(Mode::Forward).await;
    assert_eq!(
        login(&app, "ada@example.com", NEW_PASSWORD).await.status,
        200
    );
}
