//! The device authorization grant (RFC 8628) over both stores: the device's request, the user
//! code on the hosted page with the normal sign-in, the confirmation, the polls with every
//! RFC 8628 error, one set of tokens per device code even under parallel polls, and the
//! limits on user code lookups.

use std::sync::Arc;

use accounts::model::registry::{ClientRecord, ClientSpec, ClientType, GrantType, parse_scopes};
use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, register_user, send, with_clock};
use integration_tests::events::{Event, Kind, encode};
use integration_tests::oidc::{Browser, claims, hidden_inputs, input_names, token};
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";
const SCOPE: &str = "openid email offline_access api:read";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn register_ada<S: Store>(app: &App<S>) -> String {
    register_user(app, EMAIL).await
}

/// A command-line tool: a public, third-party client with `grants`.
async fn register_cli<S: Store>(app: &App<S>, grants: Vec<GrantType>) -> ClientRecord {
    let (client, _) = ClientRecord::create(
        ClientSpec {
            name: Some("Deploy CLI".into()),
            client_type: Some(ClientType::Public),
            scopes: Some(parse_scopes("api:read").unwrap()),
            grant_types: Some(grants),
            first_party: Some(false),
            ..ClientSpec::default()
        },
        "tests",
        app.accounts.clock.now_ms(),
    )
    .unwrap();
    app.accounts.store.create_client(&client).await.unwrap();
    client
}

async fn form_post<S: Store>(app: &App<S>, path: &str, form: &[(&str, &str)]) -> Answer {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    send(
        app,
        Event::new(Kind::RestV1, "POST", path)
            .body(&body.join("&"))
            .header("content-type", "application/x-www-form-urlencoded"),
    )
    .await
}

async fn start<S: Store>(app: &App<S>, client_id: &str, scope: &str) -> Value {
    let answer = form_post(
        app,
        "/oauth2/device_authorization",
        &[("client_id", client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    answer.json()
}

async fn poll<S: Store>(app: &App<S>, client_id: &str, device_code: &str) -> Answer {
    token(
        app,
        &[
            ("grant_type", GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ],
    )
    .await
}

/// An RFC 6749 §5.2 error with this code.
fn oauth_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json()["error"], code, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

/// The user code of a device authorization, as the link carries it.
fn link_query(device: &Value) -> Vec<(String, String)> {
    vec![(
        "user_code".to_owned(),
        device["user_code"].as_str().unwrap().to_owned(),
    )]
}

/// A browser signs in through the device page's link and lands on the confirmation.
async fn sign_in_for<S: Store>(app: &App<S>, browser: &mut Browser, device: &Value) -> Answer {
    let start = browser
        .get(app, "/oauth2/device", &link_query(device))
        .await;
    assert_eq!(start.status, 303, "{}", start.text);
    let location = start.header("location").unwrap().to_owned();
    assert!(location.starts_with("login?user_code="), "{location}");
    let page = browser.follow(app, &location).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(input_names(&page.text).contains(&"password".to_owned()));
    let hidden = hidden_inputs(&page.text);
    assert!(
        hidden
            .iter()
            .any(|(n, v)| n == "user_code" && v == device["user_code"].as_str().unwrap())
    );
    // The sign-in form sends the browser nowhere but here.
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self';"), "{csp}");
    let signed_in = browser
        .submit(
            app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    let location = signed_in.header("location").unwrap().to_owned();
    assert!(location.starts_with("device?user_code="), "{location}");
    assert!(browser.cookies.contains_key("__Host-sso"));
    browser.follow(app, &location).await
}

async fn a_cli_signs_in_with_a_device_code_on_the_page<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    let user_id = register_ada(&app).await;
    let cli = register_cli(&app, vec![GrantType::DeviceCode, GrantType::RefreshToken]).await;
    let id = cli.client_id.as_str();

    let device = start(&app, id, SCOPE).await;
    let user_code = device["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code.bytes().enumerate().all(|(i, b)| if i == 4 {
            b == b'-'
        } else {
            b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)
        }),
        "{user_code}"
    );
    assert_eq!(
        device["verification_uri"],
        "https://auth.test/oauth2/device"
    );
    assert_eq!(
        device["verification_uri_complete"],
        format!("https://auth.test/oauth2/device?user_code={user_code}")
    );
    assert_eq!(device["expires_in"], 600);
    assert_eq!(device["interval"], 5);
    let device_code = device["device_code"].as_str().unwrap();
    assert_eq!(device_code.len(), 43, "256 bits");

    // Before the user decides: pending; sooner than the interval: slow down, by 5 s more.
    oauth_error(
        &poll(&app, id, device_code).await,
        400,
        "authorization_pending",
    );
    clock.advance_ms(4_000);
    let fast = poll(&app, id, device_code).await;
    oauth_error(&fast, 400, "slow_down");
    assert!(
        fast.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds")
    );
    // The interval runs from the last poll, too fast or not.
    clock.advance_ms(6_000);
    oauth_error(&poll(&app, id, device_code).await, 400, "slow_down");
    clock.advance_ms(15_000);
    oauth_error(
        &poll(&app, id, device_code).await,
        400,
        "authorization_pending",
    );

    // The user: the link, the normal sign-in, the confirmation naming the app and its scopes.
    let mut browser = Browser::default();
    let confirm = sign_in_for(&app, &mut browser, &device).await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(
        confirm.text.contains("Allow Deploy CLI on your device?"),
        "{}",
        confirm.text
    );
    assert!(
        confirm.text.contains(user_code),
        "the code is shown to compare"
    );
    assert!(confirm.text.contains("see your email address"));
    assert!(confirm.text.contains("stay signed in when you are away"));
    assert!(confirm.text.contains("name=\"decision\" value=\"allow\""));
    assert!(confirm.text.contains("name=\"decision\" value=\"deny\""));
    let done = browser
        .submit(&app, &confirm, &[], Some(("decision", "allow")))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(
        done.text.contains("Your device is connected"),
        "{}",
        done.text
    );
    // Decided: the code is no longer for anyone to enter.
    let again = browser
        .get(&app, "/oauth2/device", &link_query(&device))
        .await;
    assert_eq!(again.status, 400, "{}", again.text);

    clock.advance_ms(15_000);
    let tokens = poll(&app, id, device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let tokens = tokens.json();
    assert_eq!(tokens["scope"], SCOPE);
    let id_claims = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["sub"], user_id.as_str());
    assert_eq!(id_claims["aud"], id);
    assert_eq!(id_claims["email"], EMAIL);
    assert_eq!(id_claims["amr"], json!(["pwd"]));
    let access = app
        .verifier
        .verify_at(
            tokens["access_token"].as_str().unwrap(),
            app.accounts.clock.now_ms() / 1000,
        )
        .unwrap();
    assert_eq!(access.client_id.as_deref(), Some(id));
    assert_eq!(access.sub, user_id);
    // The device's session is its own: the browser's goes on when the device's ends.
    assert_eq!(access.sid.as_deref(), id_claims["sid"].as_str());
    let sessions = send(
        &app,
        Event::get(Kind::RestV1, "/sessions").authorized(&user_id, EMAIL),
    )
    .await
    .json();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        2,
        "{sessions}"
    );

    // Once: the device code is spent.
    clock.advance_ms(15_000);
    oauth_error(&poll(&app, id, device_code).await, 400, "invalid_grant");
    // Its refresh token rotates at the token endpoint.
    let refreshed = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);

    // The device's session ends on its own; the browser's goes on.
    let sid = id_claims["sid"].as_str().unwrap();
    let ended = send(
        &app,
        Event::new(Kind::RestV1, "DELETE", &format!("/sessions/{sid}")).authorized(&user_id, EMAIL),
    )
    .await;
    assert_eq!(ended.status, 204, "{}", ended.text);

    // A second device: the browser's session is reused, straight to the confirmation; deny.
    let second = start(&app, id, "api:read").await;
    let confirm = browser
        .get(&app, "/oauth2/device", &link_query(&second))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(confirm.text.contains("use the API with scope api:read"));
    let denied = browser
        .submit(&app, &confirm, &[], Some(("decision", "deny")))
        .await;
    assert_eq!(denied.status, 200, "{}", denied.text);
    assert!(denied.text.contains("Access denied"));
    let second_code = second["device_code"].as_str().unwrap();
    oauth_error(&poll(&app, id, second_code).await, 400, "access_denied");
    clock.advance_ms(5_000);
    oauth_error(&poll(&app, id, second_code).await, 400, "access_denied");

    // Without openid and offline_access: an access token only.
    let third = start(&app, id, "api:read").await;
    let page = browser.get(&app, "/oauth2/device", &[]).await;
    assert_eq!(input_names(&page.text), ["user_code"]);
    // Typed in lower case with a space: forgiven.
    let typed = third["user_code"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .replace('-', " ");
    let confirm = browser
        .submit(&app, &page, &[("user_code", &typed)], None)
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    browser
        .submit(&app, &confirm, &[], Some(("decision", "allow")))
        .await;
    let third_tokens = poll(&app, id, third["device_code"].as_str().unwrap()).await;
    assert_eq!(third_tokens.status, 200, "{}", third_tokens.text);
    let third_tokens = third_tokens.json();
    assert!(third_tokens.get("id_token").is_none());
    assert!(third_tokens.get("refresh_token").is_none());
}

async fn every_device_error_is_rfc_8628_s<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    register_ada(&app).await;
    let cli = register_cli(&app, vec![GrantType::DeviceCode]).await;
    let id = cli.client_id.as_str();
    let other = register_cli(&app, vec![GrantType::DeviceCode]).await;
    let no_grant = register_cli(&app, vec![GrantType::AuthorizationCode]).await;

    // The device authorization endpoint.
    let refused = form_post(
        &app,
        "/oauth2/device_authorization",
        &[
            ("client_id", no_grant.client_id.as_str()),
            ("scope", "api:read"),
        ],
    )
    .await;
    oauth_error(&refused, 400, "unauthorized_client");
    let unknown = form_post(
        &app,
        "/oauth2/device_authorization",
        &[("client_id", "app_unknown"), ("scope", "api:read")],
    )
    .await;
    oauth_error(&unknown, 401, "invalid_client");
    let scope = form_post(
        &app,
        "/oauth2/device_authorization",
        &[("client_id", id), ("scope", "admin")],
    )
    .await;
    oauth_error(&scope, 400, "invalid_scope");
    // offline_access needs the refresh_token grant, which this client lacks.
    let offline = form_post(
        &app,
        "/oauth2/device_authorization",
        &[("client_id", id), ("scope", "openid offline_access")],
    )
    .await;
    oauth_error(&offline, 400, "invalid_scope");
    let not_a_form = send(
        &app,
        Event::post_json(
            Kind::RestV1,
            "/oauth2/device_authorization",
            &json!({"client_id": id}),
        ),
    )
    .await;
    oauth_error(&not_a_form, 400, "invalid_request");
    let get = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/device_authorization"),
    )
    .await;
    assert_eq!(get.status, 405, "{}", get.text);

    // The token endpoint.
    let device = start(&app, id, "openid").await;
    let code = device["device_code"].as_str().unwrap();
    oauth_error(
        &poll(&app, other.client_id.as_str(), code).await,
        400,
        "invalid_grant",
    );
    oauth_error(
        &poll(&app, no_grant.client_id.as_str(), code).await,
        400,
        "unauthorized_client",
    );
    oauth_error(&poll(&app, id, &"A".repeat(43)).await, 400, "invalid_grant");
    oauth_error(&poll(&app, id, "not a code").await, 400, "invalid_grant");
    let missing = token(&app, &[("grant_type", GRANT), ("client_id", id)]).await;
    oauth_error(&missing, 400, "invalid_request");
    // Another client's polls changed nothing: this one is the first.
    oauth_error(&poll(&app, id, code).await, 400, "authorization_pending");

    // Ten minutes later: expired, on the page and at the token endpoint.
    clock.advance_ms(600_000);
    oauth_error(&poll(&app, id, code).await, 400, "expired_token");
    let mut browser = Browser::default();
    let late = browser
        .get(&app, "/oauth2/device", &link_query(&device))
        .await;
    assert_eq!(late.status, 400, "{}", late.text);
    assert!(
        late.text.contains("That code is not valid"),
        "{}",
        late.text
    );
    assert!(late.header("location").is_none());

    // Malformed and unknown codes: a page, never a redirect; no form without its CSRF token.
    for code in ["BCDF-GHJ", "<script>", "BCDF-GHJK", "B C D F G H J K L"] {
        let page = browser
            .get(&app, "/oauth2/device", &[("user_code".into(), code.into())])
            .await;
        assert_eq!(page.status, 400, "{code}: {}", page.text);
        assert!(!page.text.contains("<script>"));
    }
    let live = start(&app, id, "openid").await;
    let forged = browser
        .post(
            &app,
            "/oauth2/device",
            &[
                (
                    "user_code".into(),
                    live["user_code"].as_str().unwrap().into(),
                ),
                ("decision".into(), "allow".into()),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    oauth_error(
        &poll(&app, id, live["device_code"].as_str().unwrap()).await,
        400,
        "authorization_pending",
    );
    let put = send(&app, Event::new(Kind::RestV1, "PUT", "/oauth2/device")).await;
    assert_eq!(put.status, 405);
}

/// Ten polls at once after approval: exactly one gets tokens, and only one session begins.
async fn ten_parallel_polls_after_approval_yield_one_set_of_tokens<S: Store + 'static>(
    app: App<S>,
) {
    let (app, clock) = with_clock(app);
    let user_id = register_ada(&app).await;
    let cli = register_cli(&app, vec![GrantType::DeviceCode, GrantType::RefreshToken]).await;
    let id = cli.client_id.to_string();
    let device = start(&app, &id, SCOPE).await;
    let mut browser = Browser::default();
    let confirm = sign_in_for(&app, &mut browser, &device).await;
    browser
        .submit(&app, &confirm, &[], Some(("decision", "allow")))
        .await;
    clock.advance_ms(6_000);
    let app = Arc::new(app);
    let code = device["device_code"].as_str().unwrap().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, id, code) = (app.clone(), id.clone(), code.clone());
        tasks.spawn(async move { poll(&app, &id, &code).await });
    }
    let answers = tasks.join_all().await;
    let issued = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(issued, 1, "{answers:?}");
    for answer in answers.iter().filter(|a| a.status != 200) {
        let error = answer.json()["error"].clone();
        assert!(
            error == "slow_down" || error == "invalid_grant",
            "{answer:?}"
        );
    }
    let sessions = send(
        &app,
        Event::get(Kind::RestV1, "/sessions").authorized(&user_id, EMAIL),
    )
    .await
    .json();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        2,
        "{sessions}"
    );
}

async fn lookup<S: Store>(app: &App<S>, code: &str, source: &str) -> Answer {
    send(
        app,
        Event::get(Kind::RestV1, "/oauth2/device")
            .query(&[("user_code", code)])
            .from_source(source),
    )
    .await
}

/// 80 lookups at once from one address: 60 are looked up, 20 refused with 429 and
/// `Retry-After`, the right code among them; another address goes on.
async fn user_code_lookups_are_limited_per_address_even_in_parallel<S: Store + 'static>(
    app: App<S>,
) {
    let cli = register_cli(&app, vec![GrantType::DeviceCode]).await;
    let device = start(&app, cli.client_id.as_str(), "openid").await;
    let right = device["user_code"].as_str().unwrap().to_owned();
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..80 {
        let app = app.clone();
        let code = if i == 79 {
            right.clone()
        } else {
            format!("BCDF-{:04}", i)
        };
        tasks.spawn(async move { lookup(&app, &code, "198.51.100.7").await });
    }
    let answers = tasks.join_all().await;
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(
        limited.len(),
        20,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in &limited {
        let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
        assert!(answer.text.contains("Too many codes"), "{}", answer.text);
    }
    // The other 60 were looked up: 59 wrong, and the right one if it came in time.
    let looked_up = answers
        .iter()
        .filter(|a| a.status == 400 || a.status == 303);
    assert_eq!(looked_up.count(), 60);
    let after = lookup(&app, &right, "198.51.100.7").await;
    assert_eq!(after.status, 429);
    // From another address the right code leads on to the sign-in.
    let elsewhere = lookup(&app, &right, "203.0.113.9").await;
    assert_eq!(elsewhere.status, 303, "{}", elsewhere.text);
}

over_both_stores!(
    a_cli_signs_in_with_a_device_code_on_the_page,
    every_device_error_is_rfc_8628_s,
    ten_parallel_polls_after_approval_yield_one_set_of_tokens,
    user_code_lookups_are_limited_per_address_even_in_parallel,
);

/// However many addresses guess, all of them together get 20,000 lookups in ten minutes
/// (every pending code's life): a code faces fewer than 10^-6 odds of being found. After
/// that even the right code waits. In memory: DynamoDB Local would take minutes for 20,000
/// lookups; the store contract checks both stores count the same windows.
#[tokio::test]
async fn user_code_lookups_are_limited_in_total_over_all_addresses() {
    let app = integration_tests::app::test_app(accounts::store::MemoryStore::new());
    let cli = register_cli(&app, vec![GrantType::DeviceCode]).await;
    let device = start(&app, cli.client_id.as_str(), "openid").await;
    let right = device["user_code"].as_str().unwrap().to_owned();
    for i in 0..20_000u32 {
        let source = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
        let answer = lookup(&app, "BCDF-GHJK", &source).await;
        assert_eq!(answer.status, 400, "lookup {i}");
    }
    let limited = lookup(&app, &right, "192.0.2.1").await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert!(limited.header("retry-after").is_some());
}
