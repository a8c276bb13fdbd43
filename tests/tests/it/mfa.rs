//! Two-factor sign-in through the auth-api handler: enrollment, confirmation, the login's
//! second step, recovery codes, turning it off; replay, expiry, races and the backoff. Every
//! case runs over the in-memory store and over the real DynamoDB API server, on a clock the
//! test moves (codes change every 30 s).

use std::sync::Arc;

use accounts::model::mfa::TotpSecret;
use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD};
use integration_tests::events::{Event, Kind};
use serde_json::{Value, json};
use shared::{Clock, ManualClock};

const EMAIL: &str = "ada@example.com";

/// An app whose clock the test moves, at a fixed start.
fn on_clock<S: Store>(mut app: App<S>) -> (App<S>, ManualClock) {
    let clock = ManualClock::at(1_900_000_000_000);
    app.accounts.clock = Arc::new(clock.clone());
    (app, clock)
}

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
    // With mail on, a second factor needs a verified address.
    integration_tests::app::verify_from_outbox(app, EMAIL).await;
    answer.json()["user_id"].as_str().unwrap().to_owned()
}

async fn login<S: Store>(app: &App<S>) -> Answer {
    send(
        app,
        Event::post_json(Kind::RestV1, "/login", &credentials(STRONG_PASSWORD)),
    )
    .await
}

/// A protected route called as the authorizer would pass `sub` on.
async fn protected<S: Store>(app: &App<S>, sub: &str, path: &str, body: Value) -> Answer {
    send(
        app,
        Event::post_json(Kind::RestV1, path, &body).authorized(sub, EMAIL),
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

/// Enrolls and confirms; returns the secret (as the app holds it) and the confirmation's
/// answer (tokens and recovery codes).
async fn enable<S: Store>(app: &App<S>, clock: &ManualClock, sub: &str) -> (TotpSecret, Value) {
    let enrolled = protected(
        app,
        sub,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text);
    let secret = TotpSecret::from_base32(enrolled.json()["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(clock.now());
    let confirmed = protected(app, sub, "/mfa/totp/confirm", json!({"code": code})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    (secret, confirmed.json())
}

/// The password step of a login for a user with two-factor sign-in: its mfa_token.
async fn password_step<S: Store>(app: &App<S>) -> String {
    let answer = login(app).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the code: {body}"
    );
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn second_step<S: Store>(app: &App<S>, mfa_token: &str, code: &str) -> Answer {
    send(
        app,
        Event::post_json(
            Kind::HttpV2,
            "/login/mfa",
            &json!({"mfa_token": mfa_token, "code": code}),
        ),
    )
    .await
}

async fn enrolling_confirming_and_signing_in_with_a_code<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let before = login(&app).await.json();

    let wrong = protected(
        &app,
        &sub,
        "/mfa/totp/enroll",
        json!({"password": "not the password at all"}),
    )
    .await;
    assert_eq!(
        wrong.problem(403)["type"],
        "urn:problem-type:auth:wrong-password"
    );
    let enrolled = protected(
        &app,
        &sub,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text);
    let body = enrolled.json();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={}", body["secret"].as_str().unwrap())));
    assert!(
        body["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    let secret = TotpSecret::from_base32(body["secret"].as_str().unwrap()).unwrap();
    // Not active yet: the password alone still signs in.
    assert!(login(&app).await.json()["access_token"].is_string());

    let wrong_code = protected(&app, &sub, "/mfa/totp/confirm", json!({"code": "000000"})).await;
    assert_eq!(
        wrong_code.problem(403)["type"],
        "urn:problem-type:auth:wrong-code"
    );
    let code = secret.code_at(clock.now());
    let confirmed = protected(&app, &sub, "/mfa/totp/confirm", json!({"code": code})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let confirmed = confirmed.json();
    assert_eq!(confirmed["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(claims(&app, &confirmed).await["amr"], json!(["pwd", "otp"]));
    // Every other session ended.
    let refresh = json!({"refresh_token": before["refresh_token"]});
    let old = send(&app, Event::post_json(Kind::RestV1, "/refresh", &refresh)).await;
    assert_eq!(old.status, 401, "{}", old.text);
    let again = protected(
        &app,
        &sub,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(
        again.problem(409)["type"],
        "urn:problem-type:auth:mfa-already-enabled"
    );

    // The code used to confirm is spent: the same step is refused at sign-in.
    let token = password_step(&app).await;
    let replay = second_step(&app, &token, &code).await;
    assert_eq!(
        replay.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-code"
    );
    clock.advance_ms(30_000);
    let signed_in = second_step(&app, &token, &secret.code_at(clock.now())).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let tokens = signed_in.json();
    assert_eq!(claims(&app, &tokens).await["amr"], json!(["pwd", "otp"]));
    // A refreshed token keeps amr.
    let refresh = json!({"refresh_token": tokens["refresh_token"]});
    let refreshed = send(&app, Event::post_json(Kind::RestV1, "/refresh", &refresh)).await;
    assert_eq!(
        claims(&app, &refreshed.json()).await["amr"],
        json!(["pwd", "otp"])
    );
    // The mfa_token served its login.
    clock.advance_ms(30_000);
    let reused = second_step(&app, &token, &secret.code_at(clock.now())).await;
    assert_eq!(
        reused.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-token"
    );

    let me = send(
        &app,
        Event::get(Kind::RestV1, "/me").authorized(&sub, EMAIL),
    )
    .await;
    assert_eq!(me.json()["mfa_enabled"], true);
    assert_eq!(me.json()["recovery_codes_left"], 10);
}

async fn recovery_codes_work_once_and_can_be_renewed<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, confirmed) = enable(&app, &clock, &sub).await;
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();

    // Typed loosely: lower case, spaces instead of dashes.
    let typed = codes[0].to_ascii_lowercase().replace('-', " ");
    let token = password_step(&app).await;
    let answer = second_step(&app, &token, &typed).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let token = password_step(&app).await;
    let again = second_step(&app, &token, &codes[0]).await;
    assert_eq!(
        again.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-code"
    );
    let me = send(
        &app,
        Event::get(Kind::RestV1, "/me").authorized(&sub, EMAIL),
    )
    .await;
    assert_eq!(me.json()["recovery_codes_left"], 9);

    // New codes need the password and a code; the old ones stop working.
    clock.advance_ms(30_000);
    let wrong = protected(
        &app,
        &sub,
        "/mfa/recovery-codes",
        json!({"password": STRONG_PASSWORD, "code": "123456"}),
    )
    .await;
    assert_eq!(
        wrong.problem(403)["type"],
        "urn:problem-type:auth:wrong-code"
    );
    let renewed = protected(
        &app,
        &sub,
        "/mfa/recovery-codes",
        json!({"password": STRONG_PASSWORD, "code": secret.code_at(clock.now())}),
    )
    .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let fresh = renewed.json()["recovery_codes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!codes.contains(&fresh));
    let token = password_step(&app).await;
    let old = second_step(&app, &token, &codes[1]).await;
    assert_eq!(
        old.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-code"
    );
    let answer = second_step(&app, &token, &fresh).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

async fn turning_it_off_needs_the_password_and_a_code<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    let code = secret.code_at(clock.now());
    let wrong_password = protected(
        &app,
        &sub,
        "/mfa/totp/disable",
        json!({"password": "not the password at all", "code": code}),
    )
    .await;
    assert_eq!(
        wrong_password.problem(403)["type"],
        "urn:problem-type:auth:wrong-password"
    );
    let off = protected(
        &app,
        &sub,
        "/mfa/totp/disable",
        json!({"password": STRONG_PASSWORD, "code": code}),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(claims(&app, &off.json()).await["amr"], json!(["pwd"]));
    let tokens = login(&app).await.json();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert_eq!(claims(&app, &tokens).await["amr"], json!(["pwd"]));
    let again = protected(
        &app,
        &sub,
        "/mfa/totp/disable",
        json!({"password": STRONG_PASSWORD, "code": code}),
    )
    .await;
    assert_eq!(
        again.problem(409)["type"],
        "urn:problem-type:auth:mfa-not-enabled"
    );
}

async fn mfa_tokens_expire_and_cannot_be_forged<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    let token = password_step(&app).await;
    clock.advance_ms(301_000);
    let late = second_step(&app, &token, &secret.code_at(clock.now())).await;
    assert_eq!(
        late.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-token"
    );

    let token = password_step(&app).await;
    let mut forged = token.clone();
    forged.replace_range(..1, if token.starts_with('A') { "B" } else { "A" });
    for bad in [forged.as_str(), "short", ""] {
        let answer = second_step(&app, bad, &secret.code_at(clock.now())).await;
        assert!(
            matches!(answer.status, 400 | 401),
            "{bad:?}: {}",
            answer.text
        );
    }
    let bad_code = second_step(&app, &token, "12ab56").await;
    assert_eq!(
        bad_code.problem(400)["type"],
        "urn:problem-type:auth:validation-failed"
    );
    // Still good after all that, within its 5 minutes.
    let answer = second_step(&app, &token, &secret.code_at(clock.now())).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// An mfa_token is checked against 5 codes at most: the fifth wrong one spends it (even the
/// right code is refused then), and the wrong codes count toward the login backoff, so the
/// next password step waits.
async fn wrong_codes_spend_the_mfa_token_and_count_toward_the_login_backoff<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    let token = password_step(&app).await;
    for n in 1..=5 {
        let answer = second_step(&app, &token, "000000").await;
        assert_eq!(
            answer.problem(401)["type"],
            "urn:problem-type:auth:invalid-mfa-code",
            "code {n}"
        );
    }
    let spent = second_step(&app, &token, &secret.code_at(clock.now())).await;
    assert_eq!(
        spent.problem(401)["type"],
        "urn:problem-type:auth:invalid-mfa-token"
    );
    // From the address the codes came from (HTTP API events carry their own).
    let again = send(
        &app,
        Event::post_json(Kind::HttpV2, "/login", &credentials(STRONG_PASSWORD)),
    )
    .await;
    assert_eq!(again.status, 429, "{}", again.text);
    assert!(again.header("retry-after").is_some());
}

/// Someone who has the password cannot reset the count of wrong codes by passing the password
/// step again, from the same address: only a whole sign-in clears it.
async fn the_right_password_does_not_reset_the_count_of_wrong_codes<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    const ADDRESS: &str = "203.0.113.77";
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let step = send(
            &app,
            Event::post_json(Kind::RestV1, "/login", &credentials(STRONG_PASSWORD))
                .from_source(ADDRESS),
        )
        .await;
        statuses.push(step.status);
        if step.status != 200 {
            continue;
        }
        let guess = json!({"mfa_token": step.json()["mfa_token"], "code": "000000"});
        let answer = send(
            &app,
            Event::post_json(Kind::RestV1, "/login/mfa", &guess).from_source(ADDRESS),
        )
        .await;
        statuses.push(answer.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

async fn the_password_step_tells_nothing_before_the_password_matched<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    enable(&app, &clock, &sub).await;
    let wrong = |email: &'static str| {
        Event::post_json(
            Kind::RestV1,
            "/login",
            &json!({"email": email, "password": "not the password at all"}),
        )
        .from_source("203.0.113.9")
    };
    let with_mfa = send(&app, wrong(EMAIL)).await;
    let unknown = send(&app, wrong("nobody@example.com")).await;
    assert_eq!(with_mfa.status, 401);
    assert_eq!(with_mfa.text, unknown.text);
    assert_eq!(
        with_mfa.header("content-type"),
        unknown.header("content-type")
    );
}

async fn parallel_uses_of_one_code_have_one_winner<S: Store + 'static>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    let code = secret.code_at(clock.now());
    let app = Arc::new(app);
    // One mfa_token, ten requests; and ten mfa_tokens, one code. Each password step is a
    // counted check until a code completes it, so they come from several addresses (five
    // from one would reach that address's backoff).
    let shared_token = password_step(&app).await;
    let mut tokens = vec![shared_token.clone(); 5];
    for i in 0..5 {
        let step = send(
            &app,
            Event::post_json(Kind::RestV1, "/login", &credentials(STRONG_PASSWORD))
                .from_source(&format!("198.51.100.{i}")),
        )
        .await;
        assert_eq!(step.status, 200, "{}", step.text);
        tokens.push(step.json()["mfa_token"].as_str().unwrap().to_owned());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let (app, code) = (Arc::clone(&app), code.clone());
        tasks.spawn(async move { second_step(&app, &token, &code).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one code, one sign-in: {statuses:?}"
    );
    // The others: a used code or mfa_token (401), or the backoff, which counts each check
    // before it runs (429).
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 401 | 429)),
        "{statuses:?}"
    );
}

over_both_stores!(
    enrolling_confirming_and_signing_in_with_a_code,
    recovery_codes_work_once_and_can_be_renewed,
    turning_it_off_needs_the_password_and_a_code,
    mfa_tokens_expire_and_cannot_be_forged,
    wrong_codes_spend_the_mfa_token_and_count_toward_the_login_backoff,
    one_mfa_token_is_checked_against_five_codes_even_in_parallel,
    ten_wrong_codes_lock_the_second_factor_even_in_parallel,
    a_password_change_and_a_deletion_need_a_code_of_a_two_factor_user,
    the_owner_is_told_of_every_change_to_the_second_factor,
    the_right_password_does_not_reset_the_count_of_wrong_codes,
    the_password_step_tells_nothing_before_the_password_matched,
    parallel_uses_of_one_code_have_one_winner,
    with_mail_an_unverified_address_cannot_enroll_a_second_factor,
);

/// Whoever registers someone else's address first (before its owner) must not put their own
/// second factor in front of the account the owner then takes back with a reset: with mail
/// on, enrollment needs a verified address (403 `email-not-verified`). Without mail there is
/// no way to verify, and enrollment stays open.
async fn with_mail_an_unverified_address_cannot_enroll_a_second_factor<S: Store>(app: App<S>) {
    let answer = send(
        &app,
        Event::post_json(Kind::RestV1, "/register", &credentials(STRONG_PASSWORD)),
    )
    .await;
    let sub = answer.json()["user_id"].as_str().unwrap().to_owned();
    let enroll = || {
        protected(
            &app,
            &sub,
            "/mfa/totp/enroll",
            json!({"password": STRONG_PASSWORD}),
        )
    };
    assert_eq!(
        enroll().await.problem(403)["type"],
        "urn:problem-type:auth:email-not-verified"
    );
    integration_tests::app::verify_from_outbox(&app, EMAIL).await;
    assert_eq!(enroll().await.status, 200);
}

#[tokio::test]
async fn without_mail_an_unverified_address_may_enroll() {
    let mut app = integration_tests::app::test_app(accounts::store::MemoryStore::new());
    app.accounts.recovery.mail = accounts::mail::MailDelivery::Disabled;
    let answer = send(
        &app,
        Event::post_json(Kind::RestV1, "/register", &credentials(STRONG_PASSWORD)),
    )
    .await;
    let sub = answer.json()["user_id"].as_str().unwrap().to_owned();
    let enrolled = protected(
        &app,
        &sub,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text);
}

/// What DynamoDB holds of a user with two-factor sign-in: the secret sealed (neither its
/// bytes nor its base32 appear in the item), recovery codes only as hashes.
#[tokio::test]
async fn the_stored_item_holds_no_secret_and_no_code_in_clear() {
    let store =
        integration_tests::dynamo::fresh_store(&integration_tests::dynamo::endpoint()).await;
    let (app, clock) = on_clock(integration_tests::app::test_app(store.clone()));
    let sub = register(&app).await;
    let enrolled = protected(
        &app,
        &sub,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
    )
    .await
    .json();
    let base32 = enrolled["secret"].as_str().unwrap().to_owned();
    let secret = TotpSecret::from_base32(&base32).unwrap();
    let confirmed = protected(
        &app,
        &sub,
        "/mfa/totp/confirm",
        json!({"code": secret.code_at(clock.now())}),
    )
    .await
    .json();
    let items = integration_tests::dynamo::client_as(
        &integration_tests::dynamo::endpoint(),
        integration_tests::dynamo::TESTS_KEY,
    )
    .scan()
    .table_name(store.table())
    .send()
    .await
    .unwrap()
    .items
    .unwrap_or_default();
    let dump = format!("{items:?}");
    let raw = TotpSecret::from_base32(&base32).map(|_| {
        // The 20 bytes, as the Debug of a Blob would print them.
        let bytes = base32_bytes(&base32);
        format!("{bytes:?}").trim_matches(['[', ']']).to_owned()
    });
    assert!(
        dump.contains("mfa_secret"),
        "the user item has its sealed secret"
    );
    assert!(!dump.contains(&base32), "the base32 secret is not stored");
    assert!(
        !dump.contains(&raw.unwrap()),
        "the secret's bytes are not stored"
    );
    for code in confirmed["recovery_codes"].as_array().unwrap() {
        let code = code.as_str().unwrap();
        assert!(!dump.contains(code) && !dump.contains(&code.replace('-', "")));
    }
}

fn base32_bytes(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|b| *b == c).unwrap() as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Over local-api's HTTP front, with a rule that asks for a second factor on one route: a
/// password-only token is refused there, one of a sign-in with a code is let through. A rule
/// that asks for a role and a second factor admits only tokens with both.
#[tokio::test]
async fn a_route_can_demand_a_second_factor_at_the_gateway() {
    use integration_tests::local::LocalApi;
    use reqwest::Client;

    let rules = r#"{"* /*": ["user"], "GET /sessions": ["@mfa"], "GET /me": ["admin", "@mfa"]}"#;
    let api = LocalApi::spawn(
        accounts::store::MemoryStore::new(),
        &[
            ("AUTHORIZER_RULES", rules),
            ("AUTHORIZER_SESSION_CACHE_SECONDS", "0"),
        ],
        |spec| spec.authorizer_ttl = 0,
    )
    .await;
    let http = Client::new();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = http.post(api.at(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let answer = request.send().await.unwrap();
            (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let sessions = |token: String| {
        let request = http.get(api.at("/sessions")).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        post("/register", None, credentials(STRONG_PASSWORD))
            .await
            .0,
        201
    );
    api.verify(&http, EMAIL).await;
    let (_, tokens) = post("/login", None, credentials(STRONG_PASSWORD)).await;
    let password_only = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sessions(password_only.clone()).await, 403);

    let (status, enrolled) = post(
        "/mfa/totp/enroll",
        Some(&password_only),
        json!({"password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{enrolled}");
    let secret = TotpSecret::from_base32(enrolled["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(shared::token::now_unix());
    let (status, confirmed) = post(
        "/mfa/totp/confirm",
        Some(&password_only),
        json!({"code": code}),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    let with_code = confirmed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sessions(with_code.clone()).await, 200);
    // A second factor does not make a user an admin.
    let me = http.get(api.at("/me")).bearer_auth(&with_code).send().await;
    assert_eq!(me.unwrap().status().as_u16(), 403);
    // Confirming ended the password-only session, at the gateway too.
    assert_eq!(sessions(password_only).await, 401);

    // Signing in again: the password step, then a recovery code.
    let (status, step) = post("/login", None, credentials(STRONG_PASSWORD)).await;
    assert_eq!(
        (status, &step["mfa_required"]),
        (200, &json!(true)),
        "{step}"
    );
    let (status, signed_in) = post(
        "/login/mfa",
        None,
        json!({"mfa_token": step["mfa_token"], "code": confirmed["recovery_codes"][0]}),
    )
    .await;
    assert_eq!(status, 200, "{signed_in}");
    assert_eq!(
        sessions(signed_in["access_token"].as_str().unwrap().to_owned()).await,
        200
    );
}

/// A password step from its own address: the mfa_token.
async fn password_step_from<S: Store>(app: &App<S>, ip: &str) -> String {
    let answer = send(
        app,
        Event::post_json(Kind::RestV1, "/login", &credentials(STRONG_PASSWORD)).from_source(ip),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["mfa_token"].as_str().unwrap().to_owned()
}

/// A guess at /login/mfa from its own address (so the per-address backoff stays out of it).
fn guess<S: Store + 'static>(
    app: &Arc<App<S>>,
    token: &str,
    code: &str,
    ip: String,
) -> impl std::future::Future<Output = Answer> + Send + 'static {
    let app = Arc::clone(app);
    let body = json!({"mfa_token": token, "code": code});
    async move {
        let event = Event::post_json(Kind::RestV1, "/login/mfa", &body).from_source(&ip);
        Answer::from_response(app.handle(event.request()).await)
    }
}

fn problem_type(answer: &Answer) -> String {
    format!(
        "{} {}",
        answer.status,
        answer.json()["type"].as_str().unwrap_or_default()
    )
}

/// 20 wrong codes at once with one mfa_token: exactly 5 are checked, the rest find it spent.
async fn one_mfa_token_is_checked_against_five_codes_even_in_parallel<S: Store + 'static>(
    app: App<S>,
) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    let token = password_step_from(&app, "198.51.100.200").await;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        tasks.spawn(guess(&app, &token, "000000", format!("198.51.100.{i}")));
    }
    let mut outcomes: Vec<String> = tasks.join_all().await.iter().map(problem_type).collect();
    outcomes.sort();
    let checked = outcomes
        .iter()
        .filter(|o| o.ends_with("invalid-mfa-code"))
        .count();
    let spent = outcomes
        .iter()
        .filter(|o| o.ends_with("invalid-mfa-token"))
        .count();
    assert_eq!((checked, spent), (5, 15), "{outcomes:?}");
}

/// 10 consecutive wrong codes of an account, over tokens and addresses, lock its second factor
/// for 15 minutes: of 20 wrong codes at once (four tokens) exactly 10 are checked and 10 get
/// 429 `mfa-locked`; the right code waits too; the owner is mailed once; after the lock a
/// right code signs in.
async fn ten_wrong_codes_lock_the_second_factor_even_in_parallel<
    S: Store + integration_tests::dynamo::EventsReader + 'static,
>(
    app: App<S>,
) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    let mut tokens = Vec::new();
    for t in 0..4 {
        tokens.push(password_step_from(&app, &format!("203.0.113.{t}")).await);
    }
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        tasks.spawn(guess(
            &app,
            &tokens[i % 4],
            "000000",
            format!("198.51.100.{i}"),
        ));
    }
    let answers = tasks.join_all().await;
    let checked = answers.iter().filter(|a| a.status == 401).count();
    let locked: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((checked, locked.len()), (10, 10));
    for answer in &locked {
        assert_eq!(answer.json()["type"], "urn:problem-type:auth:mfa-locked");
        let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((899..=900).contains(&retry), "{retry}");
    }
    // The right code waits too, with a fresh token from a fresh address.
    let token = password_step_from(&app, "203.0.113.50").await;
    let right = guess(
        &app,
        &token,
        &secret.code_at(clock.now()),
        "203.0.113.50".into(),
    )
    .await;
    assert_eq!(right.status, 429, "{}", right.text);
    let paused: Vec<_> = integration_tests::app::outbox(&app)
        .into_iter()
        .filter(|m| m.subject.starts_with("Second-factor codes are paused"))
        .collect();
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(paused[0].to, EMAIL);
    // One lock, one event.
    let events = app
        .accounts
        .store
        .read_events(&accounts::model::event::EventSubject::User(
            uuid::Uuid::parse_str(&sub).unwrap(),
        ))
        .await;
    let locks = events
        .iter()
        .filter(|e| e.kind == accounts::model::event::EventType::MfaLocked)
        .count();
    assert_eq!(locks, 1, "{events:?}");

    clock.advance_ms(15 * 60 * 1000 + 1000);
    let token = password_step_from(&app, "203.0.113.51").await;
    let right = guess(
        &app,
        &token,
        &secret.code_at(clock.now()),
        "203.0.113.51".into(),
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.text);
    // The right code ended the count: one wrong code now locks nothing.
    clock.advance_ms(30_000);
    let token = password_step_from(&app, "203.0.113.52").await;
    let wrong = guess(&app, &token, "000000", "203.0.113.52".into()).await;
    assert_eq!(wrong.status, 401);
    let right = guess(
        &app,
        &token,
        &secret.code_at(clock.now()),
        "203.0.113.52".into(),
    )
    .await;
    assert_eq!(right.status, 200, "{}", right.text);
}

/// A stolen access token plus a phished password are not enough to change the password or
/// delete the account of a two-factor user: a current code is needed too, and is spent.
async fn a_password_change_and_a_deletion_need_a_code_of_a_two_factor_user<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    clock.advance_ms(30_000);
    const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";
    let change = |code: Option<String>| {
        let mut body = json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        protected(&app, &sub, "/password", body)
    };
    assert_eq!(
        change(None).await.problem(403)["type"],
        "urn:problem-type:auth:mfa-code-required"
    );
    assert_eq!(
        change(Some("000000".into())).await.problem(403)["type"],
        "urn:problem-type:auth:wrong-code"
    );
    let code = secret.code_at(clock.now());
    let changed = change(Some(code.clone())).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    // The new session passed the second factor in this request.
    assert!(
        claims(&app, &changed.json()).await["amr"]
            .as_array()
            .unwrap()
            .contains(&json!("otp"))
    );
    let mails = integration_tests::app::outbox(&app);
    assert!(
        mails
            .iter()
            .any(|m| m.subject.contains("password was changed")),
        "{mails:?}"
    );

    let delete = |code: Option<&str>| {
        let mut body = json!({"password": NEW_PASSWORD});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        send(
            &app,
            Event::new(Kind::RestV1, "DELETE", "/me")
                .body(&body.to_string())
                .header("Content-Type", "application/json")
                .authorized(&sub, EMAIL),
        )
    };
    assert_eq!(
        delete(None).await.problem(403)["type"],
        "urn:problem-type:auth:mfa-code-required"
    );
    // The code the change spent does not work twice.
    assert_eq!(
        delete(Some(&code)).await.problem(403)["type"],
        "urn:problem-type:auth:wrong-code"
    );
    clock.advance_ms(30_000);
    let deleted = delete(Some(&secret.code_at(clock.now()))).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
}

/// The owner is mailed when two-factor sign-in is turned on or off and when new recovery codes
/// are made.
async fn the_owner_is_told_of_every_change_to_the_second_factor<S: Store>(app: App<S>) {
    let (app, clock) = on_clock(app);
    let sub = register(&app).await;
    let (secret, _) = enable(&app, &clock, &sub).await;
    let subjects = || {
        integration_tests::app::outbox(&app)
            .into_iter()
            .map(|m| m.subject)
            .collect::<Vec<_>>()
    };
    assert!(
        subjects()
            .iter()
            .any(|s| s.starts_with("Two-factor sign-in is on")),
        "{:?}",
        subjects()
    );
    clock.advance_ms(30_000);
    let renewed = protected(
        &app,
        &sub,
        "/mfa/recovery-codes",
        json!({"password": STRONG_PASSWORD, "code": secret.code_at(clock.now())}),
    )
    .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert!(
        subjects()
            .iter()
            .any(|s| s.starts_with("New recovery codes")),
        "{:?}",
        subjects()
    );
    clock.advance_ms(30_000);
    let off = protected(
        &app,
        &sub,
        "/mfa/totp/disable",
        json!({"password": STRONG_PASSWORD, "code": secret.code_at(clock.now())}),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert!(
        subjects()
            .iter()
            .any(|s| s.starts_with("Two-factor sign-in is off")),
        "{:?}",
        subjects()
    );
}
