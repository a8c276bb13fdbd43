//! What the product logs, through the Lambdas' own log setup (`shared::logging`) at TRACE,
//! over the whole flow against the real DynamoDB API server: every security event is one
//! audit line with the user id and the source IP API Gateway saw, and no secret reaches any
//! line. (That setup lets no crate but ours log at TRACE, where the runtime prints raw events
//! and the SDK whole DynamoDB responses, hashes and all. The release binaries are checked the
//! same way, stdout and stderr, in it/runtime_contract.rs.)

use integration_tests::app::{
    STRONG_PASSWORD, TEST_PEM, link_token, outbox, post, settings, test_app,
};
use integration_tests::dynamo::{Proxy, endpoint, fresh_store};
use integration_tests::logs::Captured;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::{SigningKey, TokenIssuer};

/// The source IP of the REST v1 fixture.
const SOURCE_IP: &str = "203.0.113.7";
/// The private seed of `TEST_PEM` (playing the signing key that must not be logged),
/// base64url (the JWK `d`).
const TEST_SEED_B64URL: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";
const WRONG_PASSWORD: &str = "wrong horse battery staple";
const RESET_PASSWORD: &str = "lantern quartz meadow ninety blossoms";

fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

/// The audit lines of the captured log, as JSON.
fn audit_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "audit")
        .map(|l| l["fields"].clone())
        .collect()
}

#[tokio::test]
async fn every_security_event_is_one_audit_line_and_no_secret_reaches_the_log_at_trace() {
    let captured = Captured::default();
    let writer = captured.clone();
    // What AWS_LAMBDA_LOG_LEVEL=TRACE and AWS_LAMBDA_LOG_FORMAT=JSON give the Lambdas.
    shared::logging::init_with(move || writer.clone(), Some("TRACE"), true);

    let mut app = test_app(fresh_store(&endpoint()).await);
    let key = SigningKey::ed25519_from_pem(TEST_PEM, None).unwrap();
    let mut keys = shared::KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    app.verifier = shared::TokenVerifier::new(keys, settings(), 30);
    app.accounts.issuer = TokenIssuer::new(key, settings(), 900);
    let clock = shared::ManualClock::starting_now();
    app.accounts.clock = std::sync::Arc::new(clock.clone());
    let ada = |password| credentials("ada@example.com", password);

    let registered = post(&app, "/register", ada(STRONG_PASSWORD), None).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let sub = registered.json()["user_id"].as_str().unwrap().to_owned();
    let verify_token = link_token(&outbox(&app)[0].text);
    let verified = post(&app, "/email/verify", json!({"token": verify_token}), None).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(
        post(&app, "/login", ada(WRONG_PASSWORD), None).await.status,
        401
    );
    let session = post(&app, "/login", ada(STRONG_PASSWORD), None)
        .await
        .json();
    let first = json!({"refresh_token": session["refresh_token"]});
    let rotated = post(&app, "/refresh", first.clone(), None).await.json();
    clock.advance_ms((app.accounts.sessions.reuse_grace_seconds + 1) * 1000);
    assert_eq!(post(&app, "/refresh", first, None).await.status, 401);
    let other = post(&app, "/login", ada(STRONG_PASSWORD), None)
        .await
        .json();
    let logout = json!({"refresh_token": other["refresh_token"]});
    assert_eq!(post(&app, "/logout", logout, None).await.status, 204);
    assert_eq!(
        post(&app, "/logout-all", json!({}), Some(&sub))
            .await
            .status,
        204
    );
    let change = json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD});
    let changed = post(&app, "/password", change, Some(&sub)).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let changed = changed.json();
    clock.advance_ms(61_000);
    let forgot = post(
        &app,
        "/password/forgot",
        json!({"email": "ada@example.com"}),
        None,
    )
    .await;
    assert_eq!(forgot.status, 202, "{}", forgot.text);
    let reset_token = link_token(&outbox(&app).last().unwrap().text);
    let reset = json!({"token": reset_token, "new_password": RESET_PASSWORD});
    assert_eq!(post(&app, "/password/reset", reset, None).await.status, 204);
    for _ in 0..5 {
        let nobody = credentials("nobody@example.com", WRONG_PASSWORD);
        assert_eq!(post(&app, "/login", nobody, None).await.status, 401);
    }
    // A machine client: its secret, a wrong one and its token never reach the log either.
    let (client, client_secret) = accounts::model::registry::ClientRecord::create(
        accounts::model::registry::ClientSpec {
            name: Some("billing".into()),
            ..Default::default()
        },
        "tests",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    accounts::store::ClientStore::create_client(&app.accounts.store, &client)
        .await
        .unwrap();
    let client_secret = client_secret.unwrap().encode().expose_secret().to_owned();
    let token_request = |secret: &str| {
        integration_tests::events::Event::new(
            integration_tests::events::Kind::RestV1,
            "POST",
            "/oauth2/token",
        )
        .body(&format!(
            "grant_type=client_credentials&client_id={}&client_secret={secret}",
            client.client_id
        ))
        .header("content-type", "application/x-www-form-urlencoded")
    };
    let machine = integration_tests::app::send(&app, token_request(&client_secret)).await;
    assert_eq!(machine.status, 200, "{}", machine.text);
    let machine = machine.json();
    let wrong_client_secret = "wrong-client-secret-0123456789";
    let refused = integration_tests::app::send(&app, token_request(wrong_client_secret)).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    // Id and secret swapped: the secret arrives as a client_id, counted but never logged.
    let swapped = integration_tests::events::Event::new(
        integration_tests::events::Kind::RestV1,
        "POST",
        "/oauth2/token",
    )
    .body(&format!(
        "grant_type=client_credentials&client_id={client_secret}&client_secret={}",
        client.client_id
    ))
    .header("content-type", "application/x-www-form-urlencoded");
    let swapped = integration_tests::app::send(&app, swapped).await;
    assert_eq!(swapped.status, 401, "{}", swapped.text);

    // A user signs in at an OpenID client through the hosted pages: the code, the PKCE
    // verifier, the CSRF token, the SSO cookie and every token stay out of the log.
    use integration_tests::oidc::{Browser, Pkce, authorization, exchange, register_app, token};
    let (app_client, _) = register_app(
        &app,
        accounts::model::registry::ClientType::Public,
        true,
        "api:read",
    )
    .await;
    let app_id = app_client.client_id.as_str().to_owned();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let scope = "openid email offline_access";
    let query = browser
        .sign_in(
            &app,
            &authorization(&app_id, &pkce, scope),
            "ada@example.com",
            RESET_PASSWORD,
        )
        .await;
    let oidc = exchange(&app, &app_id, &query["code"], &pkce).await;
    assert_eq!(oidc.status, 200, "{}", oidc.text);
    let oidc = oidc.json();
    let rotated_oidc = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &app_id),
            ("refresh_token", oidc["refresh_token"].as_str().unwrap()),
        ],
    )
    .await
    .json();
    let userinfo = integration_tests::app::send(
        &app,
        integration_tests::events::Event::get(
            integration_tests::events::Kind::RestV1,
            "/oauth2/userinfo",
        )
        .bearer(rotated_oidc["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
    let reused = exchange(&app, &app_id, &query["code"], &pkce).await;
    assert_eq!(reused.status, 400, "{}", reused.text);

    // A CLI signs in with a device code: the device code, the user code (a wrong one too) and
    // the tokens stay out of the log.
    let (cli, _) = accounts::model::registry::ClientRecord::create(
        accounts::model::registry::ClientSpec {
            name: Some("Deploy CLI".into()),
            client_type: Some(accounts::model::registry::ClientType::Public),
            grant_types: Some(vec![
                accounts::model::registry::GrantType::DeviceCode,
                accounts::model::registry::GrantType::RefreshToken,
            ]),
            ..Default::default()
        },
        "tests",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    accounts::store::ClientStore::create_client(&app.accounts.store, &cli)
        .await
        .unwrap();
    let cli_id = cli.client_id.as_str().to_owned();
    let device = integration_tests::app::send(
        &app,
        integration_tests::events::Event::new(
            integration_tests::events::Kind::RestV1,
            "POST",
            "/oauth2/device_authorization",
        )
        .body(&format!("client_id={cli_id}&scope=openid+offline_access"))
        .header("content-type", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(device.status, 200, "{}", device.text);
    let device = device.json();
    let user_code = device["user_code"].as_str().unwrap().to_owned();
    let mut device_browser = Browser::default();
    let wrong_code = "ZZZZ-ZZZZ";
    let wrong = device_browser
        .get(
            &app,
            "/oauth2/device",
            &[("user_code".into(), wrong_code.into())],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    let to_login = device_browser
        .get(
            &app,
            "/oauth2/device",
            &[("user_code".into(), user_code.clone())],
        )
        .await;
    let login_page = device_browser
        .follow(&app, to_login.header("location").unwrap())
        .await;
    let to_confirm = device_browser
        .submit(
            &app,
            &login_page,
            &[("email", "ada@example.com"), ("password", RESET_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(to_confirm.status, 303, "{}", to_confirm.text);
    let confirm = device_browser
        .follow(&app, to_confirm.header("location").unwrap())
        .await;
    let allowed = device_browser
        .submit(&app, &confirm, &[], Some(("decision", "allow")))
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    let device_tokens = token(
        &app,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &cli_id),
            ("device_code", device["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(device_tokens.status, 200, "{}", device_tokens.text);
    let device_tokens = device_tokens.json();

    // A passkey is added, signs in, and a response from another origin is refused: no
    // challenge, credential, signature or key reaches the log.
    let mut key = integration_tests::passkeys::SoftKey::new(true);
    let options = post(
        &app,
        "/passkeys/register/options",
        json!({"password": RESET_PASSWORD}),
        Some(&sub),
    )
    .await;
    assert_eq!(options.status, 200, "{}", options.text);
    let options = options.json();
    let created = key
        .create(integration_tests::app::PASSKEY_ORIGIN, &options["options"])
        .await
        .unwrap();
    let added = post(
        &app,
        "/passkeys/register",
        json!({"challenge_id": options["challenge_id"], "credential": created}),
        Some(&sub),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let sign_in_options = post(&app, "/passkeys/login/options", json!({}), None)
        .await
        .json();
    let asserted = key
        .get(
            integration_tests::app::PASSKEY_ORIGIN,
            &sign_in_options["options"],
        )
        .await
        .unwrap();
    let passkey_session = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": sign_in_options["challenge_id"], "credential": asserted}),
        None,
    )
    .await;
    assert_eq!(passkey_session.status, 200, "{}", passkey_session.text);
    let elsewhere_options = post(&app, "/passkeys/login/options", json!({}), None)
        .await
        .json();
    let elsewhere = key
        .get("https://evil.auth.test", &elsewhere_options["options"])
        .await
        .unwrap();
    let refused = post(
        &app,
        "/passkeys/login",
        json!({"challenge_id": elsewhere_options["challenge_id"], "credential": elsewhere}),
        None,
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    // A store that stops answering: the 503's cause is logged once, with its whole chain.
    let proxy = Proxy::start_for(&endpoint()).await;
    let faulty = test_app(fresh_store(&proxy.url()).await);
    proxy.stop().await;
    let unavailable = post(&faulty, "/login", ada(STRONG_PASSWORD), None).await;
    assert_eq!(unavailable.status, 503, "{}", unavailable.text);

    let text = captured.text();
    let faults: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "request failed")
        .map(|l| l["fields"].clone())
        .collect();
    assert_eq!(faults.len(), 1, "one fault, logged once: {faults:?}");
    let chain = faults[0]["error"].as_str().unwrap();
    assert!(
        chain.starts_with("user store unavailable: ") && chain.matches(": ").count() >= 2,
        "the whole cause chain: {chain}"
    );
    assert!(
        !unavailable.text.contains("dispatch") && !unavailable.text.contains("127.0.0.1"),
        "no internals in the answer: {}",
        unavailable.text
    );
    assert!(
        text.contains(r#""level":"DEBUG""#) && text.contains(r#""rpc.service":"DynamoDB""#),
        "the capture must include the SDK's own lines, at DEBUG"
    );
    assert!(
        !text.contains(r#""level":"TRACE""#),
        "no crate but ours logs at TRACE, and ours log nothing there"
    );

    let events = audit_events(&text);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "registered",
            "verification_sent",
            "email_verified",
            "login_failed",
            "login_succeeded",
            "refresh_reused",
            "login_succeeded",
            "logged_out",
            "logged_out_everywhere",
            "password_changed",
            "reset_requested",
            "password_reset",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "backoff_started",
            "client_token_issued",
            "client_auth_failed",
            "client_auth_failed",
            "login_succeeded",
            "authorization_code_issued",
            "oidc_tokens_issued",
            "authorization_code_reused",
            "device_authorization_started",
            "user_code_refused",
            "login_succeeded",
            "device_approved",
            "device_tokens_issued",
            "passkey_added",
            "passkey_signed_in",
            "passkey_refused",
        ]
    );
    assert_eq!(events[25]["client_id"], cli_id.as_str());
    assert_eq!(events[26]["reason"], "unknown");
    for event in &events[27..] {
        assert_eq!(event["user_id"], sub.as_str(), "{event}");
    }
    for event in &events[28..30] {
        assert_eq!(event["client_id"], cli_id.as_str(), "{event}");
    }
    assert_eq!(events[32]["reason"], "origin_not_allowed");
    for event in &events {
        assert_eq!(event["source_ip"], SOURCE_IP, "{event}");
    }
    for event in &events[..12] {
        assert_eq!(event["user_id"], sub.as_str(), "{event}");
    }
    for event in &events[21..25] {
        assert_eq!(event["user_id"], sub.as_str(), "{event}");
    }
    for event in &events[22..25] {
        assert_eq!(event["client_id"], app_id.as_str(), "{event}");
    }
    for event in &events[12..21] {
        assert!(
            event.get("user_id").is_none(),
            "unknown email has no user: {event}"
        );
    }

    let mut secrets: Vec<(String, String)> = [
        STRONG_PASSWORD,
        NEW_PASSWORD,
        WRONG_PASSWORD,
        RESET_PASSWORD,
    ]
    .iter()
    .map(|p| ("a password".to_owned(), (*p).to_owned()))
    .collect();
    for tokens in [&session, &rotated, &other, &changed] {
        for name in ["access_token", "refresh_token"] {
            secrets.push((name.to_owned(), tokens[name].as_str().unwrap().to_owned()));
        }
    }
    secrets.push((
        "the signing key".into(),
        "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v".into(),
    ));
    secrets.push(("the signing key seed".into(), TEST_SEED_B64URL.into()));
    secrets.push(("a bcrypt hash".into(), "$2b$".into()));
    secrets.push(("the verification token".into(), verify_token));
    secrets.push(("the reset token".into(), reset_token));
    secrets.push(("a client secret".into(), client_secret));
    secrets.push(("a wrong client secret".into(), wrong_client_secret.into()));
    secrets.push((
        "a machine token".into(),
        machine["access_token"].as_str().unwrap().to_owned(),
    ));
    secrets.push(("an authorization code".into(), query["code"].clone()));
    secrets.push(("a PKCE verifier".into(), pkce.verifier.clone()));
    for cookie in ["__Host-csrf", "__Host-sso"] {
        secrets.push((cookie.into(), browser.cookies[cookie].clone()));
    }
    for tokens in [&oidc, &rotated_oidc] {
        for name in ["access_token", "refresh_token", "id_token"] {
            secrets.push((name.to_owned(), tokens[name].as_str().unwrap().to_owned()));
        }
    }
    for (what, value) in [
        ("a registration challenge_id", &options["challenge_id"]),
        ("a registration challenge", &options["options"]["challenge"]),
        ("a sign-in challenge_id", &sign_in_options["challenge_id"]),
        (
            "a sign-in challenge",
            &sign_in_options["options"]["challenge"],
        ),
        ("a credential id", &created["id"]),
        (
            "an attestation object",
            &created["response"]["attestationObject"],
        ),
        (
            "a registration's client data",
            &created["response"]["clientDataJSON"],
        ),
        (
            "an assertion's signature",
            &asserted["response"]["signature"],
        ),
        (
            "an assertion's client data",
            &asserted["response"]["clientDataJSON"],
        ),
        (
            "an assertion's authenticator data",
            &asserted["response"]["authenticatorData"],
        ),
        ("a refused signature", &elsewhere["response"]["signature"]),
        (
            "a passkey session's access token",
            &passkey_session.json()["access_token"],
        ),
        (
            "a passkey session's refresh token",
            &passkey_session.json()["refresh_token"],
        ),
        ("a device code", &device["device_code"]),
        ("a user code", &device["user_code"]),
        ("a device's access token", &device_tokens["access_token"]),
        ("a device's refresh token", &device_tokens["refresh_token"]),
        ("a device's ID token", &device_tokens["id_token"]),
    ] {
        secrets.push((what.to_owned(), value.as_str().unwrap().to_owned()));
    }
    // The credential's public key, as the store keeps it (inside the attestation object).
    let attestation = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        created["response"]["attestationObject"].as_str().unwrap(),
    )
    .unwrap();
    let public_key = &attestation[attestation.len() - 32..];
    secrets.push((
        "the public key's tail".into(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, public_key)[..20]
            .to_owned(),
    ));
    // The user code as typed and without its dash, the wrong one too.
    secrets.push(("a user code, bare".into(), user_code.replace('-', "")));
    secrets.push(("a wrong user code".into(), wrong_code.into()));
    secrets.push((
        "a wrong user code, bare".into(),
        wrong_code.replace('-', ""),
    ));
    for (what, secret) in &secrets {
        if let Some(line) = text.lines().find(|l| l.contains(secret.as_str())) {
            eprintln!("offending line: {}", &line[..line.len().min(600)]);
        }
        assert!(
            !text.contains(secret.as_str()),
            "{what} reached the log ({} bytes of log captured)",
            text.len()
        );
    }
}
