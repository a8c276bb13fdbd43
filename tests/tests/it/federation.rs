//! Sign-in through another identity provider, against a real OpenID provider running here
//! (npm oauth2-mock-server: discovery, JWKS, RS256 ID tokens, the code flow with PKCE and
//! nonce), over both stores: the JSON API's path (off to the provider, back through the
//! callback, the app's one-time code exchanged for tokens), the linking rules, and every
//! forged, stale, replayed or cross-browser answer refused.

use accounts::model::event::EventSubject;
use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, post, send, verify_from_outbox};
use integration_tests::dynamo::EventsReader;
use integration_tests::events::{Event, Kind};
use integration_tests::upstream::MockProvider;
use serde_json::{Value, json};

const APP_URL: &str = "https://app.example.com/signed-in";

/// `app` signing in with `mock` as provider `mock` (client `auth-client`, trusted for
/// email as `trusted_email` says).
fn with_provider<S>(app: App<S>, mock: &MockProvider, trusted_email: bool) -> App<S> {
    with_providers(
        app,
        json!([{"id": "mock", "name": "Mock", "issuer": mock.issuer,
            "client_id": "auth-client", "client_secret": "s3cr3t-client",
            "trusted_email": trusted_email}]),
    )
}

/// `app` signing in with `providers` (`FEDERATION_PROVIDERS`), ending on [`APP_URL`].
fn with_providers<S>(app: App<S>, providers: Value) -> App<S> {
    with_providers_and_secrets(app, providers, json!({}))
}

/// [`with_providers`], with `secrets` (`FEDERATION_SECRETS`).
fn with_providers_and_secrets<S>(mut app: App<S>, providers: Value, secrets: Value) -> App<S> {
    let env = std::collections::HashMap::from([
        ("FEDERATION_PROVIDERS", providers.to_string()),
        ("FEDERATION_SECRETS", secrets.to_string()),
        ("FEDERATION_APP_URL", APP_URL.to_owned()),
    ]);
    let env: std::collections::HashMap<&str, &str> =
        env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.accounts.federation = auth_api::federation::with_upstream(
        accounts::settings::federation_from_env(&env, None).unwrap(),
    )
    .unwrap();
    app
}

fn get(path: &str, query: &[(&str, &str)], cookie: Option<&str>) -> Event {
    let mut event = Event::get(Kind::RestV1, path).query(query);
    if let Some(cookie) = cookie {
        event = event.header("cookie", cookie);
    }
    event
}

/// The binding cookie a start set (`name=value`).
fn binding(answer: &Answer) -> String {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-fed="))
        .and_then(|c| c.split(';').next())
        .expect("the binding cookie")
        .to_owned()
}

/// The provider's answer to its authorization request (it signs in at once): the callback's
/// query pairs.
async fn at_provider(location: &str) -> Vec<(String, String)> {
    at_provider_for("mock", location).await
}

/// [`at_provider`] for provider `id`.
async fn at_provider_for(id: &str, location: &str) -> Vec<(String, String)> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(location).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302, "{location}");
    let back = answer.headers()["location"].to_str().unwrap();
    let back = reqwest::Url::parse(back).unwrap();
    assert_eq!(back.path(), format!("/oauth2/callback/{id}"));
    back.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Starts a JSON API sign-in and brings the provider's answer back to the callback in the
/// same browser: the callback's answer.
async fn sign_in_at_mock<S: Store>(app: &App<S>) -> Answer {
    let started = send(app, get("/oauth2/federate/mock", &[], None)).await;
    assert_eq!(started.status, 303, "{}", started.text);
    let cookie = binding(&started);
    let back = at_provider(started.header("location").unwrap()).await;
    let pairs: Vec<(&str, &str)> = back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    send(app, get("/oauth2/callback/mock", &pairs, Some(&cookie))).await
}

/// The one-time code of a callback that ended on the app.
fn app_code(ended: &Answer) -> String {
    assert_eq!(ended.status, 303, "{}", ended.text);
    let location = ended.header("location").unwrap();
    let code = location
        .strip_prefix(&format!("{APP_URL}#code="))
        .unwrap_or_else(|| panic!("{location}"));
    code.to_owned()
}

fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// A first sign-in makes an account (its email verified: the provider vouches for it), the
/// app's code gives the usual tokens once (amr `fed`), and the next sign-in finds the same
/// account; a callback replayed is refused.
async fn a_first_sign_in_makes_an_account_and_the_next_finds_it<S: Store + EventsReader>(
    app: App<S>,
) {
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    mock.answer_with(
        json!({"sub": "248289761001", "email": "Ada@Example.com", "email_verified": true}),
    )
    .await;
    let ended = sign_in_at_mock(&app).await;
    let code = app_code(&ended);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let claims = claims_of(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["amr"], json!(["fed"]));
    let user_id = claims["sub"].as_str().unwrap().to_owned();
    // The code works once.
    let again = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(
        again.problem(400)["type"],
        "urn:problem-type:auth:invalid-code"
    );
    // Its refresh token is a session's like any other.
    let refreshed = post(
        &app,
        "/refresh",
        json!({"refresh_token": tokens.json()["refresh_token"]}),
        None,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        claims_of(refreshed.json()["access_token"].as_str().unwrap())["amr"],
        json!(["fed"])
    );

    // The next sign-in, even with another address at the provider, is the same account.
    mock.answer_with(
        json!({"sub": "248289761001", "email": "ada.new@example.com", "email_verified": true}),
    )
    .await;
    let code = app_code(&sign_in_at_mock(&app).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(
        claims_of(tokens.json()["access_token"].as_str().unwrap())["sub"],
        user_id.as_str()
    );
    let kinds: Vec<String> = app
        .accounts
        .store
        .read_events(&EventSubject::User(user_id.parse().unwrap()))
        .await
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "user.created",
            "identity.linked",
            "session.created",
            "session.created"
        ]
    );
}

/// An account of the same email is linked only when the provider vouches for the email and
/// the account's own email is verified; otherwise the user must sign in to it first.
async fn an_existing_account_is_linked_only_on_proof<S: Store + EventsReader>(app: App<S>) {
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    let registered = post(
        &app,
        "/register",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let owner = registered.json()["user_id"].as_str().unwrap().to_owned();
    mock.answer_with(json!({"sub": "1001", "email": "ada@example.com", "email_verified": true}))
        .await;
    // The account's address is not proven: whoever registered it may not be its owner.
    let refused = sign_in_at_mock(&app).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("Sign in to it"), "{}", refused.text);

    verify_from_outbox(&app, "ada@example.com").await;
    // The provider does not say it verified the address: still refused.
    mock.answer_with(json!({"sub": "1001", "email": "ada@example.com", "email_verified": false}))
        .await;
    assert_eq!(sign_in_at_mock(&app).await.status, 409);
    // Vouched for, and verified on both sides: linked.
    mock.answer_with(json!({"sub": "1001", "email": "ada@example.com", "email_verified": true}))
        .await;
    let code = app_code(&sign_in_at_mock(&app).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(
        claims_of(tokens.json()["access_token"].as_str().unwrap())["sub"],
        owner.as_str()
    );
    // The password still works beside it.
    let login = post(
        &app,
        "/login",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(login.status, 200);

    // A provider not trusted for email never links, verified or not.
    let untrusted = MockProvider::start().await;
    let app = with_provider(app, &untrusted, false);
    untrusted
        .answer_with(json!({"sub": "2002", "email": "ada@example.com", "email_verified": true}))
        .await;
    assert_eq!(sign_in_at_mock(&app).await.status, 409);
}

/// Forged or stale ID tokens, a wrong nonce, a callback without this browser's cookie or
/// replayed: refused, nothing made.
async fn forged_stale_and_cross_browser_answers_are_refused<S: Store + 'static>(app: App<S>) {
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    let now = shared::token::now_unix();
    for (case, claims) in [
        ("another issuer", json!({"iss": "http://127.0.0.1:1"})),
        ("another audience", json!({"aud": "someone-else"})),
        ("expired", json!({"exp": now - 3600, "iat": now - 7200})),
        ("another nonce", json!({"nonce": "replayed-nonce"})),
        ("no subject", json!({"sub": null})),
    ] {
        let mut claims = claims;
        claims["email"] = json!("eve@example.com");
        claims["email_verified"] = json!(true);
        if claims.get("sub").is_none() {
            claims["sub"] = json!("666");
        }
        mock.answer_with(claims).await;
        let refused = sign_in_at_mock(&app).await;
        assert_eq!(refused.status, 400, "{case}: {}", refused.text);
        assert!(
            refused
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{case}"
        );
    }
    assert!(
        app.accounts
            .store
            .find_identity("mock", "666")
            .await
            .unwrap()
            .is_none()
    );

    mock.answer_with(json!({"sub": "777", "email": "eve@example.com", "email_verified": true}))
        .await;
    let started = send(&app, get("/oauth2/federate/mock", &[], None)).await;
    let cookie = binding(&started);
    let back = at_provider(started.header("location").unwrap()).await;
    let pairs: Vec<(&str, &str)> = back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Another browser (login CSRF: the attacker's callback in the victim's browser), and
    // none at all: refused, and the state is spent.
    let other = send(&app, get("/oauth2/federate/mock", &[], None)).await;
    let foreign = send(
        &app,
        get("/oauth2/callback/mock", &pairs, Some(&binding(&other))),
    )
    .await;
    assert_eq!(foreign.status, 400, "{}", foreign.text);
    let replayed = send(&app, get("/oauth2/callback/mock", &pairs, Some(&cookie))).await;
    assert_eq!(replayed.status, 400, "the state was taken by the first try");

    // Ten parallel callbacks with one state: one account, one code.
    let started = send(&app, get("/oauth2/federate/mock", &[], None)).await;
    let cookie = binding(&started);
    let back = at_provider(started.header("location").unwrap()).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (app, back, cookie) = (app.clone(), back.clone(), cookie.clone());
        tasks.spawn(async move {
            let pairs: Vec<(&str, &str)> =
                back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            send(&app, get("/oauth2/callback/mock", &pairs, Some(&cookie)))
                .await
                .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 400, 400, 400, 400, 400, 400, 400, 400, 400]);

    // The provider's cancellation, and an unknown provider.
    let started = send(&app, get("/oauth2/federate/mock", &[], None)).await;
    let back = at_provider(started.header("location").unwrap()).await;
    let state = back.iter().find(|(k, _)| k == "state").unwrap().1.clone();
    let cancelled = send(
        &app,
        get(
            "/oauth2/callback/mock",
            &[("error", "access_denied"), ("state", &state)],
            Some(&binding(&started)),
        ),
    )
    .await;
    assert_eq!(cancelled.status, 400);
    assert!(cancelled.text.contains("cancelled"), "{}", cancelled.text);
    assert_eq!(
        send(&app, get("/oauth2/federate/nobody", &[], None))
            .await
            .status,
        404
    );
}

over_both_stores!(
    a_first_sign_in_makes_an_account_and_the_next_finds_it,
    an_existing_account_is_linked_only_on_proof,
    forged_stale_and_cross_browser_answers_are_refused,
);

/// From the hosted pages: the sign-in page offers the provider, the link carries the
/// authorization request there and back, and the request goes on in the browser session
/// the provider's sign-in began (a first-party client: straight back with a code).
async fn the_hosted_pages_continue_their_request_after_the_provider<S: Store>(app: App<S>) {
    use accounts::model::registry::ClientType;
    use integration_tests::oidc::{
        Browser, Pkce, REDIRECT, authorization, claims, client_query, exchange, parse_query,
        register_app,
    };
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    mock.answer_with(json!({"sub": "4242", "email": "grace@example.com", "email_verified": true}))
        .await;
    let (client, _) = register_app(&app, ClientType::Public, true, "openid email").await;
    let pkce = Pkce::new();
    let request = authorization(client.client_id.as_str(), &pkce, "openid email");
    let mut browser = Browser::default();
    let start = browser.get(&app, "/oauth2/authorize", &request).await;
    let page = browser
        .follow(&app, start.header("location").unwrap())
        .await;
    assert!(page.text.contains("Continue with Mock"), "{}", page.text);
    let href = page
        .text
        .split("href=\"")
        .find(|h| h.starts_with("federate/mock?"))
        .and_then(|h| h.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let (_, query) = href.split_once('?').unwrap();
    let off = browser
        .get(&app, "/oauth2/federate/mock", &parse_query(query))
        .await;
    assert_eq!(off.status, 303, "{}", off.text);
    let back = at_provider(off.header("location").unwrap()).await;
    let returned = browser.get(&app, "/oauth2/callback/mock", &back).await;
    assert_eq!(returned.status, 303, "{}", returned.text);
    assert!(browser.cookies.contains_key("__Host-sso"));
    assert!(
        !browser.cookies.contains_key("__Host-fed"),
        "the binding is spent"
    );
    let next = returned.header("location").unwrap();
    let (path, query) = next.split_once('?').unwrap();
    assert_eq!(path, "../authorize");
    let done = browser
        .get(&app, "/oauth2/authorize", &parse_query(query))
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert!(
        done.header("location").unwrap().starts_with(REDIRECT),
        "{:?}",
        done.header("location")
    );
    let params = client_query(&done);
    assert_eq!(params["state"], "st-8d1f");
    let tokens = exchange(&app, client.client_id.as_str(), &params["code"], &pkce).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let id_token = claims(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(id_token["email"], "grace@example.com");
    assert_eq!(id_token["nonce"], "nonce-5a7e");
    assert_eq!(
        claims(tokens.json()["access_token"].as_str().unwrap())["amr"],
        json!(["fed"])
    );
}

over_both_stores!(the_hosted_pages_continue_their_request_after_the_provider);

/// The identities API: listed by their owner, unlinked (the owner told by mail each time),
/// never the account's last way to sign in, and never another user's.
async fn identities_are_listed_and_unlinked_but_never_the_last_way_in<S: Store>(app: App<S>) {
    use integration_tests::app::outbox;
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    let as_user = |event: Event, sub: &str, email: &str| event.authorized(sub, email);

    // An account made by the provider: no password, its one identity stays.
    mock.answer_with(json!({"sub": "5005", "email": "lin@example.com", "email_verified": true}))
        .await;
    let code = app_code(&sign_in_at_mock(&app).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    let lin = claims_of(tokens.json()["access_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = send(
        &app,
        as_user(
            Event::get(Kind::RestV1, "/identities"),
            &lin,
            "lin@example.com",
        ),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let identities = listed.json()["identities"].as_array().unwrap().clone();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["provider"], "mock");
    assert_eq!(identities[0]["provider_name"], "Mock");
    assert_eq!(identities[0]["email"], "lin@example.com");
    let id = identities[0]["id"].as_str().unwrap().to_owned();
    let unlink = |sub: &str, email: &str, id: &str| {
        as_user(
            Event::new(Kind::RestV1, "DELETE", &format!("/identities/{id}")),
            sub,
            email,
        )
    };
    let last = send(&app, unlink(&lin, "lin@example.com", &id)).await;
    assert_eq!(
        last.problem(409)["type"],
        "urn:problem-type:auth:last-sign-in-method"
    );

    // An account with a password, the provider linked to it: unlinked once, by its owner.
    let registered = post(
        &app,
        "/register",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    let ada = registered.json()["user_id"].as_str().unwrap().to_owned();
    verify_from_outbox(&app, "ada@example.com").await;
    mock.answer_with(json!({"sub": "1001", "email": "ada@example.com", "email_verified": true}))
        .await;
    app_code(&sign_in_at_mock(&app).await);
    assert!(
        outbox(&app)
            .iter()
            .any(|m| m.to == "ada@example.com" && m.subject.contains("was linked")),
        "the owner is told of the link"
    );
    let listed = send(
        &app,
        as_user(
            Event::get(Kind::RestV1, "/identities"),
            &ada,
            "ada@example.com",
        ),
    )
    .await;
    let ada_id = listed.json()["identities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not by someone else, not a malformed id.
    assert_eq!(
        send(&app, unlink(&lin, "lin@example.com", &ada_id))
            .await
            .problem(404)["type"],
        "urn:problem-type:auth:identity-not-found"
    );
    assert_eq!(
        send(&app, unlink(&ada, "ada@example.com", "not-an-id"))
            .await
            .status,
        404
    );
    let unlinked = send(&app, unlink(&ada, "ada@example.com", &ada_id)).await;
    assert_eq!(unlinked.status, 204, "{}", unlinked.text);
    assert!(
        outbox(&app)
            .iter()
            .any(|m| m.to == "ada@example.com" && m.subject.contains("was unlinked"))
    );
    let listed = send(
        &app,
        as_user(
            Event::get(Kind::RestV1, "/identities"),
            &ada,
            "ada@example.com",
        ),
    )
    .await;
    assert_eq!(listed.json()["identities"], json!([]));
    assert_eq!(
        send(&app, unlink(&ada, "ada@example.com", &ada_id))
            .await
            .status,
        404
    );
}

over_both_stores!(identities_are_listed_and_unlinked_but_never_the_last_way_in);

/// A JSON API sign-in at the GitHub-shaped server at `url`: the callback's answer.
async fn sign_in_at_github<S: Store>(app: &App<S>, url: &str) -> Answer {
    let started = send(app, get("/oauth2/federate/github", &[], None)).await;
    assert_eq!(started.status, 303, "{}", started.text);
    let location = started.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{url}/login/oauth/authorize?")),
        "{location}"
    );
    assert!(!location.contains("nonce="), "GitHub takes no nonce");
    let cookie = binding(&started);
    let back = at_provider_for("github", &location).await;
    let pairs: Vec<(&str, &str)> = back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    send(app, get("/oauth2/callback/github", &pairs, Some(&cookie))).await
}

/// The GitHub preset against a server shaped like GitHub's OAuth 2.0 and REST API: its
/// numeric id is the identity, its primary address the account's (verified as GitHub says),
/// the client's secret and the PKCE verifier go to its token endpoint; a wrong secret is
/// refused.
async fn github_signs_in_with_its_user_and_primary_address<S: Store>(app: App<S>) {
    use integration_tests::upstream::{GITHUB_CLIENT_SECRET, GitHubShaped};
    let github = GitHubShaped::start().await;
    let configure = |app: App<S>, secret: &str| {
        with_providers(
            app,
            json!([{"id": "github", "name": "GitHub", "kind": "github",
                "issuer": github.url, "client_id": "Iv1.8a61f9b3a7aba766",
                "client_secret": secret, "trusted_email": true}]),
        )
    };
    let app = configure(app, GITHUB_CLIENT_SECRET);
    github.answer_with(
        json!({"id": 583231, "login": "octocat", "email": "public@example.com"}),
        json!([{"email": "old@example.com", "primary": false, "verified": true},
               {"email": "Octo@Example.com", "primary": true, "verified": true}]),
    );
    let code = app_code(&sign_in_at_github(&app, &github.url).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let claims = claims_of(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["email"], "octo@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["amr"], json!(["fed"]));
    let identity = app
        .accounts
        .store
        .find_identity("github", "583231")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        identity.user_id.to_string(),
        claims["sub"].as_str().unwrap()
    );

    // A wrong client secret: GitHub refuses the code, and so does the sign-in.
    let app = configure(app, "not-the-secret");
    let refused = sign_in_at_github(&app, &github.url).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
}

over_both_stores!(github_signs_in_with_its_user_and_primary_address);

/// A device's sign-in through a provider: the device page's link, the sign-in page's
/// provider button carrying the user code, the provider, back to the device's confirmation
/// in the new browser session; the device gets tokens of a federated sign-in.
async fn a_device_is_approved_after_a_sign_in_at_a_provider<S: Store>(app: App<S>) {
    use accounts::model::registry::{
        ClientRecord, ClientSpec, ClientType, GrantType, parse_scopes,
    };
    use integration_tests::oidc::{Browser, parse_query, token};
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    mock.answer_with(json!({"sub": "7007", "email": "dev@example.com", "email_verified": true}))
        .await;
    let (cli, _) = ClientRecord::create(
        ClientSpec {
            name: Some("Deploy CLI".into()),
            client_type: Some(ClientType::Public),
            scopes: Some(parse_scopes("api:read").unwrap()),
            grant_types: Some(vec![GrantType::DeviceCode]),
            first_party: Some(false),
            ..ClientSpec::default()
        },
        "tests",
        app.accounts.clock.now_ms(),
    )
    .unwrap();
    app.accounts.store.create_client(&cli).await.unwrap();
    let id = cli.client_id.as_str();
    let started = send(
        &app,
        Event::new(Kind::RestV1, "POST", "/oauth2/device_authorization")
            .body(&format!("client_id={id}&scope=api%3Aread"))
            .header("content-type", "application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let device = started.json();
    let user_code = device["user_code"].as_str().unwrap().to_owned();

    let mut browser = Browser::default();
    let link = vec![("user_code".to_owned(), user_code.clone())];
    let entry = browser.get(&app, "/oauth2/device", &link).await;
    let login = browser
        .follow(&app, entry.header("location").unwrap())
        .await;
    let href = login
        .text
        .split("href=\"")
        .find(|h| h.starts_with("federate/mock?"))
        .and_then(|h| h.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let (_, query) = href.split_once('?').unwrap();
    assert_eq!(parse_query(query), link, "the button carries the user code");
    let off = browser
        .get(&app, "/oauth2/federate/mock", &parse_query(query))
        .await;
    let back = at_provider(off.header("location").unwrap()).await;
    let returned = browser.get(&app, "/oauth2/callback/mock", &back).await;
    assert_eq!(returned.status, 303, "{}", returned.text);
    let next = returned.header("location").unwrap();
    let (path, query) = next.split_once('?').unwrap();
    assert_eq!(path, "../device");
    let confirm = browser
        .get(&app, "/oauth2/device", &parse_query(query))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    assert!(
        confirm.text.contains("Allow Deploy CLI"),
        "{}",
        confirm.text
    );
    let done = browser
        .submit(&app, &confirm, &[], Some(("decision", "allow")))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let tokens = token(
        &app,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", id),
            ("device_code", device["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let claims = claims_of(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["email"], "dev@example.com");
    assert_eq!(claims["amr"], json!(["fed"]));
}

over_both_stores!(a_device_is_approved_after_a_sign_in_at_a_provider);

/// Linking from a signed-in account, the way the refusal points to: a ticket for the
/// caller, the provider, and the identity linked to that account (whatever the emails say);
/// the ticket works once; an identity linked to another account is refused.
async fn a_signed_in_user_links_a_provider_from_their_account<S: Store>(app: App<S>) {
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    let register = |email: &'static str| {
        let app = &app;
        async move {
            let answer = post(
                app,
                "/register",
                json!({"email": email, "password": STRONG_PASSWORD}),
                None,
            )
            .await;
            answer.json()["user_id"].as_str().unwrap().to_owned()
        }
    };
    let ada = register("ada@example.com").await;
    mock.answer_with(
        json!({"sub": "1001", "email": "ada.other@example.com", "email_verified": false}),
    )
    .await;
    let ticket_for = |sub: String, email: &'static str, provider: &'static str| {
        let app = &app;
        async move {
            send(
                app,
                Event::new(
                    Kind::RestV1,
                    "POST",
                    &format!("/identities/link/{provider}"),
                )
                .no_body()
                .authorized(&sub, email),
            )
            .await
        }
    };
    let started = ticket_for(ada.clone(), "ada@example.com", "mock").await;
    assert_eq!(started.status, 200, "{}", started.text);
    let url = started.json()["url"].as_str().unwrap().to_owned();
    let url = reqwest::Url::parse(&url).unwrap();
    assert_eq!(url.path(), "/oauth2/federate/mock");
    let ticket = url
        .query_pairs()
        .find(|(k, _)| k == "link_ticket")
        .unwrap()
        .1
        .into_owned();
    let link_with = |ticket: String| {
        let app = &app;
        async move {
            let off = send(
                app,
                get("/oauth2/federate/mock", &[("link_ticket", &ticket)], None),
            )
            .await;
            if off.status != 303 {
                return off;
            }
            let cookie = binding(&off);
            let back = at_provider(off.header("location").unwrap()).await;
            let pairs: Vec<(&str, &str)> =
                back.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            send(app, get("/oauth2/callback/mock", &pairs, Some(&cookie))).await
        }
    };
    let linked = link_with(ticket.clone()).await;
    assert_eq!(linked.status, 303, "{}", linked.text);
    assert_eq!(
        linked.header("location"),
        Some(format!("{APP_URL}#linked=mock").as_str())
    );
    let identity = app
        .accounts
        .store
        .find_identity("mock", "1001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.user_id.to_string(), ada);
    // The ticket is spent.
    assert_eq!(link_with(ticket).await.status, 400);
    // The provider now signs in to Ada's account.
    let code = app_code(&sign_in_at_mock(&app).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(
        claims_of(tokens.json()["access_token"].as_str().unwrap())["sub"],
        ada.as_str()
    );
    // Bob cannot take it.
    let bob = register("bob@example.com").await;
    let started = ticket_for(bob, "bob@example.com", "mock").await;
    let url = reqwest::Url::parse(started.json()["url"].as_str().unwrap()).unwrap();
    let ticket = url
        .query_pairs()
        .find(|(k, _)| k == "link_ticket")
        .unwrap()
        .1
        .into_owned();
    let taken = link_with(ticket).await;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert!(
        taken.text.contains("linked to another account"),
        "{}",
        taken.text
    );
    // No such provider.
    let unknown = ticket_for(ada, "ada@example.com", "nobody").await;
    assert_eq!(
        unknown.problem(404)["type"],
        "urn:problem-type:auth:unknown-provider"
    );
}

over_both_stores!(a_signed_in_user_links_a_provider_from_their_account);

/// An account with its own second factor is not entered through a provider that did not
/// vouch for one (403, nothing issued); a provider trusted for it, asserting one, signs in
/// with `amr` `["fed","mfa"]`.
async fn a_second_factor_is_not_skipped_through_a_provider<S: Store>(app: App<S>) {
    let mock = MockProvider::start().await;
    let app = with_provider(app, &mock, true);
    let registered = post(
        &app,
        "/register",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    let ada = registered.json()["user_id"].as_str().unwrap().to_owned();
    verify_from_outbox(&app, "ada@example.com").await;
    let enrolled = post(
        &app,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
        Some(&ada),
    )
    .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text);
    let secret =
        accounts::model::mfa::TotpSecret::from_base32(enrolled.json()["secret"].as_str().unwrap())
            .unwrap();
    let confirmed = post(
        &app,
        "/mfa/totp/confirm",
        json!({"code": secret.code_at(shared::token::now_unix() - 30)}),
        Some(&ada),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);

    mock.answer_with(
        json!({"sub": "1001", "email": "ada@example.com", "email_verified": true,
                            "amr": ["pwd", "mfa"]}),
    )
    .await;
    // Not trusted for MFA: its "mfa" counts for nothing here.
    let refused = sign_in_at_mock(&app).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("two-step sign-in"),
        "{}",
        refused.text
    );
    assert!(refused.header("location").is_none(), "no code for the app");

    // Trusted for it: the provider's second factor stands in for ours.
    let app = with_providers(
        app,
        json!([{"id": "mock", "name": "Mock", "issuer": mock.issuer,
            "client_id": "auth-client", "trusted_email": true, "trusted_mfa": true}]),
    );
    let code = app_code(&sign_in_at_mock(&app).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    let claims = claims_of(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], ada.as_str());
    assert_eq!(claims["amr"], json!(["fed", "mfa"]));
}

/// The before-user-created hook is asked before a provider's first sign-in makes an
/// account, with method `federated:<provider>`; its denial is the user's page, nothing made.
async fn the_registration_hook_decides_a_provider_s_first_sign_in<S: Store>(app: App<S>) {
    use accounts::hooks::{HookFailure, HookTarget, Hooks};
    use integration_tests::http_peer::{read_request, respond};
    let mock = MockProvider::start().await;
    let mut app = with_provider(app, &mock, true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let kept = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let Some((_, body)) = read_request(&mut socket).await else {
                continue;
            };
            let request: Value = serde_json::from_str(&body).unwrap();
            kept.lock().unwrap().push(request);
            let answer = json!({"decision": "deny", "message": "Invitations only."});
            respond(&mut socket, "200 OK", &answer.to_string()).await;
        }
    });
    app.accounts.hooks = auth_api::hooks::with_transports(
        Hooks {
            before_user_created: Some(HookTarget::Https(hook)),
            customize_access_token: None,
            secret: Some(
                accounts::webhook::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                    .unwrap(),
            ),
            timeout_ms: 2000,
            failure: HookFailure::Closed,
            transport: None,
        },
        None,
    )
    .unwrap();
    mock.answer_with(json!({"sub": "3003", "email": "eve@example.com", "email_verified": true}))
        .await;
    let denied = sign_in_at_mock(&app).await;
    assert_eq!(denied.status, 400, "{}", denied.text);
    assert!(denied.text.contains("Invitations only."), "{}", denied.text);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["method"], "federated:mock");
    assert_eq!(asked[0]["email"], "eve@example.com");
    assert!(
        app.accounts
            .store
            .find_identity("mock", "3003")
            .await
            .unwrap()
            .is_none()
    );
}

over_both_stores!(
    a_second_factor_is_not_skipped_through_a_provider,
    the_registration_hook_decides_a_provider_s_first_sign_in,
);

/// Sign in with Apple against a server shaped like it: the answer comes back by
/// `form_post` (a POST to the callback, the binding cookie with it), the token endpoint gets
/// a client secret JWT signed with the team's key, and Apple's string `"true"` counts as a
/// verified email. A client secret signed with another key is refused.
async fn apple_signs_in_with_a_team_signed_secret_and_form_post<S: Store>(app: App<S>) {
    use integration_tests::oidc::hidden_inputs;
    use integration_tests::upstream::{
        APPLE_CLIENT_ID, APPLE_KEY_ID, APPLE_OTHER_KEY, APPLE_TEAM_ID, APPLE_TEAM_KEY, AppleShaped,
    };
    let apple = AppleShaped::start("appleseed@example.com").await;
    let configure = |app: App<S>, key: &str| {
        with_providers_and_secrets(
            app,
            json!([{"id": "apple", "name": "Apple", "kind": "apple",
                "issuer": apple.issuer, "client_id": APPLE_CLIENT_ID, "team_id": APPLE_TEAM_ID,
                "key_id": APPLE_KEY_ID, "trusted_email": true}]),
            json!({"apple": key}),
        )
    };
    let sign_in = async |app: &App<S>| -> Answer {
        let started = send(app, get("/oauth2/federate/apple", &[], None)).await;
        assert_eq!(started.status, 303, "{}", started.text);
        let location = started.header("location").unwrap().to_owned();
        assert!(location.contains("response_mode=form_post"), "{location}");
        // Apple's page: a form the browser posts back to the callback, cross-site.
        let page = reqwest::get(&location).await.unwrap().text().await.unwrap();
        let form = hidden_inputs(&page);
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", integration_tests::events::encode(v)))
            .collect();
        send(
            app,
            Event::new(Kind::RestV1, "POST", "/oauth2/callback/apple")
                .body(&body.join("&"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &binding(&started)),
        )
        .await
    };
    let app = configure(app, APPLE_TEAM_KEY);
    let code = app_code(&sign_in(&app).await);
    let tokens = post(&app, "/federation/exchange", json!({"code": code}), None).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let claims = claims_of(tokens.json()["access_token"].as_str().unwrap());
    assert_eq!(claims["email"], "appleseed@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["amr"], json!(["fed"]));
    assert!(
        app.accounts
            .store
            .find_identity("apple", "001234.apple")
            .await
            .unwrap()
            .is_some()
    );

    // Signed with a key that is not the team's: Apple refuses the client, and we the sign-in.
    let app = configure(app, APPLE_OTHER_KEY);
    assert_eq!(sign_in(&app).await.status, 400);
}

over_both_stores!(apple_signs_in_with_a_team_signed_secret_and_form_post);
