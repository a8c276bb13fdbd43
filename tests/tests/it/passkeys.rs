//! Passkeys through the auth-api handler, with 1Password's software authenticator and WebAuthn
//! client on the other side: adding one, signing in with it (discoverable, by email, as the
//! second step after a password), renaming and removing it, and every refusal: another
//! origin or RP ID, a replayed or expired challenge, a counter gone back, another user's or a
//! removed credential, a disabled user, an account changed between options and finish, and
//! parallel finishes of one challenge. Every case runs over both stores.

use std::sync::Arc;

use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, PASSKEY_ORIGIN, STRONG_PASSWORD};
use integration_tests::events::{Event, Kind};
use integration_tests::passkeys::SoftKey;
use serde_json::{Value, json};
use shared::ManualClock;

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

async fn send<S: Store>(app: &App<S>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

async fn post<S: Store>(app: &App<S>, path: &str, body: Value) -> Answer {
    send(app, Event::post_json(Kind::RestV1, path, &body)).await
}

/// A protected route with a JSON body, as the authorizer passes `sub` (of `email`) on.
async fn protected<S: Store>(
    app: &App<S>,
    (sub, email): (&str, &str),
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut event = Event::new(Kind::RestV1, method, path).authorized(sub, email);
    if let Some(body) = body {
        event = event
            .header("content-type", "application/json")
            .body(&body.to_string());
    }
    send(app, event).await
}

/// Registers `email` with a verified address: its user id.
async fn account<S: Store>(app: &App<S>, email: &str) -> String {
    let answer = post(
        app,
        "/register",
        json!({"email": email, "password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    integration_tests::app::verify_from_outbox(app, email).await;
    answer.json()["user_id"].as_str().unwrap().to_owned()
}

/// Adds a passkey of `key` to the account, at `origin`: the 201's body.
async fn add_passkey<S: Store>(
    app: &App<S>,
    who: (&str, &str),
    key: &mut SoftKey,
    origin: &str,
) -> Answer {
    let options = protected(
        app,
        who,
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await;
    assert_eq!(options.status, 200, "{}", options.text);
    let options = options.json();
    let credential = key.create(origin, &options["options"]).await.unwrap();
    protected(
        app,
        who,
        "POST",
        "/passkeys/register",
        Some(json!({
            "challenge_id": options["challenge_id"],
            "credential": credential,
            "name": "Laptop",
        })),
    )
    .await
}

/// Sign-in options, with or without an email.
async fn login_options<S: Store>(app: &App<S>, email: Option<&str>) -> Value {
    let body = match email {
        Some(email) => json!({"email": email}),
        None => json!({}),
    };
    let answer = post(app, "/passkeys/login/options", body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

/// Signs in with `key` at `origin` for the options `options`.
async fn sign_in<S: Store>(app: &App<S>, key: &mut SoftKey, options: &Value) -> Answer {
    let credential = key.get(PASSKEY_ORIGIN, &options["options"]).await.unwrap();
    post(
        app,
        "/passkeys/login",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await
}

/// The access token's claims, as /verify reads them.
async fn claims<S: Store>(app: &App<S>, tokens: &Value) -> Value {
    send(
        app,
        Event::get(Kind::HttpV2, "/verify").bearer(tokens["access_token"].as_str().unwrap()),
    )
    .await
    .json()
}

async fn adding_a_passkey_and_signing_in_with_it<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let who = (ada.as_str(), ADA);
    let mut key = SoftKey::new(false);
    let added = add_passkey(&app, who, &mut key, PASSKEY_ORIGIN).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let passkey = added.json();
    assert_eq!(passkey["name"], "Laptop");
    assert_eq!(passkey["id"].as_str().unwrap().len(), 43);
    assert_eq!(passkey["last_used_at"], Value::Null);

    let listed = protected(&app, who, "GET", "/passkeys", None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["passkeys"][0]["id"], passkey["id"]);

    // Discoverable: no email, no credential list; the authenticator names the user.
    let options = login_options(&app, None).await;
    assert_eq!(options["options"]["allowCredentials"], json!([]));
    assert_eq!(options["options"]["rpId"], "auth.test");
    let signed_in = sign_in(&app, &mut key, &options).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let tokens = signed_in.json();
    assert!(tokens["refresh_token"].is_string());
    let claims = claims(&app, &tokens).await;
    assert_eq!(claims["sub"], ada.as_str());
    assert_eq!(claims["amr"], json!(["swk", "user", "mfa"]));

    // By email: the account's credentials are listed, and only they will do.
    let options = login_options(&app, Some(ADA)).await;
    let allowed = options["options"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    let signed_in = sign_in(&app, &mut key, &options).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);

    let listed = protected(&app, who, "GET", "/passkeys", None).await.json();
    assert!(listed["passkeys"][0]["last_used_at"].is_string());
    // The refresh token of a passkey session works like any other.
    let refreshed = post(
        &app,
        "/refresh",
        json!({"refresh_token": signed_in.json()["refresh_token"]}),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        self::claims(&app, &refreshed.json()).await["amr"],
        json!(["swk", "user", "mfa"])
    );
}

async fn options_for_an_email_look_the_same_whether_or_not_its_account_has_passkeys<S: Store>(
    app: App<S>,
) {
    account(&app, BOB).await;
    let unknown = login_options(&app, Some("nobody@example.com")).await;
    let again = login_options(&app, Some("nobody@example.com")).await;
    let without = login_options(&app, Some(BOB)).await;
    let shape = |options: &Value| {
        let mut keys: Vec<String> = options["options"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        (
            keys,
            options["options"]["allowCredentials"]
                .as_array()
                .unwrap()
                .len(),
        )
    };
    assert_eq!(shape(&unknown), shape(&without));
    assert_eq!(shape(&unknown).1, 1);
    // The same decoy for the same email, every time; another for another.
    assert_eq!(
        unknown["options"]["allowCredentials"],
        again["options"]["allowCredentials"]
    );
    assert_ne!(
        unknown["options"]["allowCredentials"],
        without["options"]["allowCredentials"]
    );
    assert_ne!(unknown["challenge_id"], again["challenge_id"]);
    assert_ne!(
        unknown["options"]["challenge"],
        again["options"]["challenge"]
    );
}

async fn a_passkey_is_a_second_factor_after_the_password<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(false);
    let added = add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN).await;
    assert_eq!(added.status, 201, "{}", added.text);

    let password = post(
        &app,
        "/login",
        json!({"email": ADA, "password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(password.status, 200);
    let step = password.json();
    assert_eq!(step["mfa_required"], true);
    assert_eq!(step["methods"], json!(["webauthn"]));
    assert!(step.get("access_token").is_none());
    let mfa_token = step["mfa_token"].as_str().unwrap();

    let options = post(
        &app,
        "/login/mfa/passkey/options",
        json!({"mfa_token": mfa_token}),
    )
    .await;
    assert_eq!(options.status, 200, "{}", options.text);
    let options = options.json();
    assert_eq!(
        options["options"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let credential = key.get(PASSKEY_ORIGIN, &options["options"]).await.unwrap();
    // A code and a passkey at once is refused.
    let both = post(
        &app,
        "/login/mfa",
        json!({"mfa_token": mfa_token, "code": "123456", "challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(both.status, 400);
    let finished = post(
        &app,
        "/login/mfa",
        json!({"mfa_token": mfa_token, "challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(finished.status, 200, "{}", finished.text);
    assert_eq!(
        claims(&app, &finished.json()).await["amr"],
        json!(["pwd", "swk", "user", "mfa"])
    );
    // The mfa_token served once.
    let again = post(
        &app,
        "/login/mfa/passkey/options",
        json!({"mfa_token": mfa_token}),
    )
    .await;
    assert_eq!(
        again.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-token"
    );
}

async fn renaming_and_removing_a_passkey<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let bob = account(&app, BOB).await;
    let mut key = SoftKey::new(false);
    let id = add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/passkeys/{id}");

    let renamed = protected(
        &app,
        (&ada, ADA),
        "PATCH",
        &path,
        Some(json!({"name": " Phone "})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.json()["name"], "Phone");
    let bad_name = protected(&app, (&ada, ADA), "PATCH", &path, Some(json!({"name": ""}))).await;
    assert_eq!(bad_name.status, 400);

    // Someone else's, unknown and malformed ids: the same 404.
    for (who, path) in [
        ((bob.as_str(), BOB), path.clone()),
        ((ada.as_str(), ADA), format!("/passkeys/{}", "A".repeat(43))),
        ((ada.as_str(), ADA), "/passkeys/not-an-id".to_owned()),
    ] {
        let answer = protected(&app, who, "PATCH", &path, Some(json!({"name": "x"}))).await;
        assert_eq!(
            answer.problem(404)["type"],
            "urn:problem-type:auth:passkey-not-found",
            "{path}"
        );
        let answer = protected(
            &app,
            who,
            "DELETE",
            &path,
            Some(json!({"password": STRONG_PASSWORD})),
        )
        .await;
        assert_eq!(
            answer.problem(404)["type"],
            "urn:problem-type:auth:passkey-not-found",
            "{path}"
        );
    }

    let wrong = protected(
        &app,
        (&ada, ADA),
        "DELETE",
        &path,
        Some(json!({"password": "not the password at all"})),
    )
    .await;
    assert_eq!(wrong.status, 403);
    let removed = protected(
        &app,
        (&ada, ADA),
        "DELETE",
        &path,
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(
        protected(&app, (&ada, ADA), "GET", "/passkeys", None)
            .await
            .json()["passkeys"],
        json!([])
    );
    // The removed credential signs in no more; without passkeys a password is enough again.
    let options = login_options(&app, None).await;
    assert_eq!(
        sign_in(&app, &mut key, &options).await.problem(401)["type"],
        "urn:problem-type:auth:passkey-refused"
    );
    let password = post(
        &app,
        "/login",
        json!({"email": ADA, "password": STRONG_PASSWORD}),
    )
    .await;
    assert!(password.json()["access_token"].is_string());
}

async fn responses_for_another_origin_or_rp_id_are_refused<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(false);
    // A page under the RP ID but not among the origins.
    let elsewhere = add_passkey(&app, (&ada, ADA), &mut key, "https://evil.auth.test").await;
    assert_eq!(
        elsewhere.problem(400)["type"],
        "urn:problem-type:auth:passkey-not-created"
    );

    // An allowed origin whose authenticator data is for another RP ID.
    let options = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await
    .json();
    let mut other_rp = options["options"].clone();
    other_rp["rp"]["id"] = json!("app.auth.test");
    let credential = key
        .create("https://app.auth.test", &other_rp)
        .await
        .unwrap();
    let refused = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register",
        Some(json!({"challenge_id": options["challenge_id"], "credential": credential})),
    )
    .await;
    assert_eq!(
        refused.problem(400)["type"],
        "urn:problem-type:auth:passkey-not-created"
    );

    // The same at sign-in.
    let mut key = SoftKey::new(false);
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );
    let options = login_options(&app, None).await;
    let credential = key
        .get("https://evil.auth.test", &options["options"])
        .await
        .unwrap();
    let refused = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(
        refused.problem(401)["type"],
        "urn:problem-type:auth:passkey-refused"
    );
}

async fn a_challenge_works_once_and_not_after_it_expired<S: Store>(mut app: App<S>) {
    let clock = ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(false);
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );

    let options = login_options(&app, None).await;
    let credential = key.get(PASSKEY_ORIGIN, &options["options"]).await.unwrap();
    let body = json!({"challenge_id": options["challenge_id"], "credential": credential});
    assert_eq!(
        post(&app, "/passkeys/login", body.clone()).await.status,
        200
    );
    let replayed = post(&app, "/passkeys/login", body).await;
    assert_eq!(
        replayed.problem(400)["type"],
        "urn:problem-type:auth:invalid-passkey-challenge"
    );

    let options = login_options(&app, None).await;
    let credential = key.get(PASSKEY_ORIGIN, &options["options"]).await.unwrap();
    clock.advance_ms(301_000);
    let late = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(
        late.problem(400)["type"],
        "urn:problem-type:auth:invalid-passkey-challenge"
    );
    // A registration challenge does not finish a sign-in.
    let options = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await
    .json();
    let sign_in_options = login_options(&app, None).await;
    let credential = key
        .get(PASSKEY_ORIGIN, &sign_in_options["options"])
        .await
        .unwrap();
    let crossed = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(
        crossed.problem(400)["type"],
        "urn:problem-type:auth:invalid-passkey-challenge"
    );
}

async fn a_signature_counter_that_goes_back_is_refused<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(true);
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );
    for _ in 0..2 {
        let options = login_options(&app, None).await;
        assert_eq!(sign_in(&app, &mut key, &options).await.status, 200);
    }
    // A clone of the authenticator, taken before those sign-ins: its counter is behind.
    for passkey in &mut key.store_mut().0 {
        passkey.counter = Some(1);
    }
    let options = login_options(&app, None).await;
    let refused = sign_in(&app, &mut key, &options).await;
    assert_eq!(
        refused.problem(401)["type"],
        "urn:problem-type:auth:passkey-refused"
    );
}

async fn another_users_credential_or_a_disabled_user_is_refused<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let bob = account(&app, BOB).await;
    let mut ada_key = SoftKey::new(false);
    let mut bob_key = SoftKey::new(false);
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut ada_key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );
    assert_eq!(
        add_passkey(&app, (&bob, BOB), &mut bob_key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );

    // Bob's options, Ada's authenticator: the client finds no allowed credential of its
    // own; a response made for Ada's options does not finish Bob's.
    let bob_options = login_options(&app, Some(BOB)).await;
    assert!(
        ada_key
            .get(PASSKEY_ORIGIN, &bob_options["options"])
            .await
            .is_err()
    );
    let ada_options = login_options(&app, Some(ADA)).await;
    let ada_credential = ada_key
        .get(PASSKEY_ORIGIN, &ada_options["options"])
        .await
        .unwrap();
    let crossed = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": bob_options["challenge_id"], "credential": ada_credential}),
    )
    .await;
    assert_eq!(crossed.status, 401, "{}", crossed.text);

    let user = app
        .accounts
        .store
        .find_user(&accounts::model::credentials::Email::parse(ADA).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(app.accounts.store.set_disabled(&user, true).await.unwrap());
    let options = login_options(&app, None).await;
    let refused = sign_in(&app, &mut ada_key, &options).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
}

async fn an_account_changed_between_options_and_finish_is_refused<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(false);
    let options = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await
    .json();
    let credential = key
        .create(PASSKEY_ORIGIN, &options["options"])
        .await
        .unwrap();
    let ended = protected(&app, (&ada, ADA), "POST", "/logout-all", None).await;
    assert_eq!(ended.status, 204, "{}", ended.text);
    let refused = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register",
        Some(json!({"challenge_id": options["challenge_id"], "credential": credential})),
    )
    .await;
    assert_eq!(
        refused.problem(400)["type"],
        "urn:problem-type:auth:invalid-passkey-challenge"
    );

    // By email, the options are bound to the account as it was.
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );
    let options = login_options(&app, Some(ADA)).await;
    let credential = key.get(PASSKEY_ORIGIN, &options["options"]).await.unwrap();
    protected(&app, (&ada, ADA), "POST", "/logout-all", None).await;
    let refused = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
    )
    .await;
    assert_eq!(
        refused.problem(400)["type"],
        "urn:problem-type:auth:invalid-passkey-challenge"
    );
}

async fn ten_parallel_finishes_of_one_challenge_sign_in_once<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(false);
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );
    let options = login_options(&app, None).await;
    let credential = key.get(PASSKEY_ORIGIN, &options["options"]).await.unwrap();
    let body = json!({"challenge_id": options["challenge_id"], "credential": credential});
    let answers = futures_join(&app, &body).await;
    let ok = answers.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 400),
        "{answers:?}"
    );
}

async fn futures_join<S: Store>(app: &App<S>, body: &Value) -> Vec<u16> {
    let requests = (0..10).map(|_| post(app, "/passkeys/login", body.clone()));
    let mut statuses = Vec::new();
    let all = std::pin::pin!(join_all(requests));
    for answer in all.await {
        statuses.push(answer.status);
    }
    statuses
}

/// Runs the futures concurrently on this task (as many requests in flight at once).
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => out[i] = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

async fn without_user_verification_a_passkey_is_one_factor<S: Store>(app: App<S>) {
    let ada = account(&app, ADA).await;
    let mut key = SoftKey::new(false);
    assert_eq!(
        add_passkey(&app, (&ada, ADA), &mut key, PASSKEY_ORIGIN)
            .await
            .status,
        201
    );
    key.verify_user(false);
    let options = login_options(&app, None).await;
    let signed_in = sign_in(&app, &mut key, &options).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let claims = claims(&app, &signed_in.json()).await;
    assert_eq!(claims["amr"], json!(["swk"]));
    let token = signed_in.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let verified = app.verifier.verify(&token).unwrap();
    assert!(!verified.used_mfa(), "an @mfa rule must refuse this token");
}

async fn adding_a_passkey_needs_the_password_and_a_verified_address<S: Store>(app: App<S>) {
    let answer = post(
        &app,
        "/register",
        json!({"email": ADA, "password": STRONG_PASSWORD}),
    )
    .await;
    let ada = answer.json()["user_id"].as_str().unwrap().to_owned();
    let unverified = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await;
    assert_eq!(unverified.status, 403, "{}", unverified.text);
    integration_tests::app::verify_from_outbox(&app, ADA).await;
    let wrong = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": "the wrong password, surely"})),
    )
    .await;
    assert_eq!(
        wrong.problem(403)["type"],
        "urn:problem-type:auth:wrong-password"
    );
    let nothing = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({})),
    )
    .await;
    assert_eq!(nothing.status, 400);
    // A code instead of the password is for two-factor users only.
    let code = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"code": "123456"})),
    )
    .await;
    assert_eq!(code.status, 409, "{}", code.text);
    // Garbage where a credential goes: a 400 naming the field.
    let options = protected(
        &app,
        (&ada, ADA),
        "POST",
        "/passkeys/register/options",
        Some(json!({"password": STRONG_PASSWORD})),
    )
    .await
    .json();
    for credential in [json!({}), json!({"id": 1}), json!("text")] {
        let answer = protected(
            &app,
            (&ada, ADA),
            "POST",
            "/passkeys/register",
            Some(json!({"challenge_id": options["challenge_id"], "credential": credential})),
        )
        .await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert!(
            answer.field_errors().contains_key("credential"),
            "{}",
            answer.text
        );
    }
}

over_both_stores!(
    adding_a_passkey_and_signing_in_with_it,
    options_for_an_email_look_the_same_whether_or_not_its_account_has_passkeys,
    a_passkey_is_a_second_factor_after_the_password,
    renaming_and_removing_a_passkey,
    responses_for_another_origin_or_rp_id_are_refused,
    a_challenge_works_once_and_not_after_it_expired,
    a_signature_counter_that_goes_back_is_refused,
    another_users_credential_or_a_disabled_user_is_refused,
    an_account_changed_between_options_and_finish_is_refused,
    ten_parallel_finishes_of_one_challenge_sign_in_once,
    without_user_verification_a_passkey_is_one_factor,
    adding_a_passkey_needs_the_password_and_a_verified_address,
);
