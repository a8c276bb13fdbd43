//! The OpenID Provider over both stores: the authorization code flow with PKCE through the
//! hosted pages, ID tokens, userinfo, refresh, consent, single sign-on, logout, revocation and
//! introspection; and the attacks its RFCs name (open redirects, code injection and reuse,
//! PKCE downgrade, CSRF, consent bypass, mix-up).

use accounts::model::registry::ClientType;
use accounts::store::Store;
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, post, register_user, send, with_clock};
use integration_tests::events::{Event, Kind};
use integration_tests::oidc::{
    Browser, POST_LOGOUT, Pkce, REDIRECT, authorization, claims, client_query, exchange, header,
    hidden_inputs, input_names, register_app, token,
};
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";
const SCOPE: &str = "openid email offline_access api:read";

async fn register_ada<S: Store>(app: &App<S>) -> String {
    register_user(app, EMAIL).await
}

/// An RFC 6749 §5.2 error with this code.
fn oauth_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json()["error"], code, "{}", answer.text);
}

/// A page that sends nobody anywhere: HTML, no `Location`, the pages' headers.
fn stays(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert!(
        answer.header("location").is_none(),
        "redirected: {answer:?}"
    );
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    page_headers(answer);
}

/// What every page and redirect of the hosted pages carries.
fn page_headers(answer: &Answer) {
    let csp = answer.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Script only where passkeys are offered, and then only this origin's passkey.js, which
    // may call this origin only.
    if csp.contains("script-src") {
        assert!(
            csp.ends_with("; script-src 'self'; connect-src 'self'"),
            "{csp}"
        );
        assert!(
            answer
                .text
                .contains("<script src=\"passkey.js\" defer></script>")
        );
        assert_eq!(
            answer.text.matches("<script").count(),
            1,
            "no inline script"
        );
    } else {
        assert!(!answer.text.contains("<script"), "no script at all: {csp}");
    }
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert_eq!(answer.header("x-frame-options"), Some("DENY"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
}

async fn the_code_flow_signs_in_with_pkce_and_issues_checked_tokens<S: Store>(app: App<S>) {
    let user_id = register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let request = authorization(id, &pkce, SCOPE);
    let mut browser = Browser::default();

    // No session: to the sign-in page, which carries the request along.
    let start = browser.get(&app, "/oauth2/authorize", &request).await;
    assert_eq!(start.status, 303, "{}", start.text);
    page_headers(&start);
    let location = start.header("location").unwrap().to_owned();
    assert!(location.starts_with("login?"), "{location}");
    let page = browser.follow(&app, &location).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page_headers(&page);
    assert_eq!(input_names(&page.text), ["email", "password"]);
    assert!(page.text.contains("<label for=\"email\">"), "labels");
    // login_hint fills in the email.
    let mut hinted = request.clone();
    hinted.push(("login_hint".into(), EMAIL.into()));
    let hinted = Browser::default().get(&app, "/oauth2/login", &hinted).await;
    assert!(
        hinted.text.contains(&format!("value=\"{EMAIL}\"")),
        "{}",
        hinted.text
    );
    assert!(page.text.contains("href=\"register?"), "{}", page.text);
    assert!(page.text.contains("href=\"forgot?"), "{}", page.text);
    // The one script: passkey.js (passkeys are on in the test app), nothing inline.
    assert_eq!(page.text.matches("<script").count(), 1, "{}", page.text);
    let hidden = hidden_inputs(&page.text);
    let csrf = hidden.iter().find(|(n, _)| n == "csrf").unwrap().1.clone();
    assert_eq!(browser.cookies.get("__Host-csrf"), Some(&csrf));
    let csrf_cookie = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-csrf="))
        .unwrap();
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(csrf_cookie.contains(attribute), "{csrf_cookie}");
    }

    let done = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    // The form may lead to the client: its origin is allowed after the form, nothing else.
    let csp = done.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let sso = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-sso="))
        .expect("the SSO cookie")
        .clone();
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age="] {
        assert!(sso.contains(attribute), "{sso}");
    }
    assert!(!sso.contains("Domain="), "{sso}");
    let query = client_query(&done);
    assert_eq!(query["state"], "st-8d1f");
    assert_eq!(query["iss"], "https://auth.test");
    let code = query["code"].clone();

    let tokens = exchange(&app, id, &code, &pkce).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.header("cache-control"), Some("no-store"));
    let tokens = tokens.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], SCOPE);
    let id_token = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(header(id_token)["typ"], "JWT");
    assert_eq!(header(access)["typ"], "at+jwt");
    let id_claims = claims(id_token);
    assert_eq!(id_claims["iss"], "https://auth.test");
    assert_eq!(id_claims["sub"], user_id.as_str());
    assert_eq!(id_claims["aud"], id);
    assert_eq!(id_claims["nonce"], "nonce-5a7e");
    assert_eq!(id_claims["email"], EMAIL);
    assert_eq!(id_claims["email_verified"], false);
    assert_eq!(id_claims["amr"], json!(["pwd"]));
    assert!(id_claims["auth_time"].as_i64().unwrap() <= id_claims["iat"].as_i64().unwrap());
    assert_eq!(
        id_claims["at_hash"],
        shared::at_hash(jsonwebtoken::Algorithm::EdDSA, access)
    );
    // The ID token verifies with the published key, as an ID token and not an access token.
    let verified = shared::verify_id_token_hint(
        app.verifier.keys(),
        app.accounts.issuer.settings(),
        id_token,
    )
    .unwrap();
    assert_eq!(verified.sid, id_claims["sid"].as_str().map(str::to_owned));
    assert!(app.verifier.verify(id_token).is_err());
    let access_claims = app.verifier.verify(access).unwrap();
    assert_eq!(access_claims.client_id.as_deref(), Some(id));
    assert_eq!(access_claims.scope.as_deref(), Some(SCOPE));
    assert_eq!(access_claims.sid, verified.sid);

    let userinfo = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/userinfo").bearer(access),
    )
    .await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
    assert_eq!(
        userinfo.json(),
        json!({"sub": user_id, "email": EMAIL, "email_verified": false})
    );

    // The client's refresh token rotates at the token endpoint, and nowhere else.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let at_json_api = post(&app, "/refresh", json!({"refresh_token": refresh}), None).await;
    at_json_api.problem(401);
    let refreshed = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let refreshed = refreshed.json();
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    assert_eq!(
        claims(refreshed["id_token"].as_str().unwrap())["sub"],
        user_id.as_str()
    );
    // Asking for less is allowed; for more is not.
    let narrower = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            (
                "refresh_token",
                refreshed["refresh_token"].as_str().unwrap(),
            ),
            ("scope", "openid api:write"),
        ],
    )
    .await;
    oauth_error(&narrower, 400, "invalid_scope");

    // The SSO cookie is no refresh token either.
    let cookie = browser.cookies["__Host-sso"].clone();
    post(&app, "/refresh", json!({"refresh_token": cookie}), None)
        .await
        .problem(401);

    // Single sign-on: the next authorization needs no password. This one is POSTed (OpenID
    // Connect Core §3.1.2.1), its scopes in another order.
    let again = Pkce::new();
    let mut request = authorization(id, &again, "api:read offline_access email openid");
    request.retain(|(k, _)| k != "state");
    request.push(("state".into(), "st-post".into()));
    let second = browser.post(&app, "/oauth2/authorize", &request).await;
    assert_eq!(second.status, 303, "{}", second.text);
    let second_query = client_query(&second);
    assert_eq!(second_query["state"], "st-post");
    let code = second_query["code"].clone();
    let second_tokens = exchange(&app, id, &code, &again).await.json();
    assert_eq!(
        claims(second_tokens["id_token"].as_str().unwrap())["sid"],
        id_claims["sid"],
        "the same session"
    );
}

async fn a_code_is_single_use_and_a_second_use_ends_its_session<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let query = browser
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let code = &query["code"];

    // Ten at once: one gets tokens.
    let attempts = (0..10).map(|_| exchange(&app, id, code, &pkce));
    let answers = join_all_results(attempts).await;
    let won: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for lost in answers.iter().filter(|a| a.status != 200) {
        oauth_error(lost, 400, "invalid_grant");
    }
    // The next use revokes what the first one issued: its refresh token, its session, the
    // SSO session.
    oauth_error(&exchange(&app, id, code, &pkce).await, 400, "invalid_grant");
    let issued = won[0].json();
    let refresh = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", issued["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    oauth_error(&refresh, 400, "invalid_grant");
    let userinfo = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/userinfo")
            .bearer(issued["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(userinfo.status, 401);
    assert_eq!(
        userinfo.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    let start = browser
        .get(
            &app,
            "/oauth2/authorize",
            &authorization(id, &Pkce::new(), SCOPE),
        )
        .await;
    assert!(
        start.header("location").unwrap().starts_with("login?"),
        "the SSO session ended too"
    );
}

async fn codes_are_bound_to_client_redirect_uri_verifier_and_time<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let (app, clock) = with_clock(app);
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let (other, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let mut browser = Browser::default();
    let mut code_for = async |pkce: &Pkce| {
        browser
            .sign_in(
                &app,
                &authorization(id, pkce, SCOPE),
                EMAIL,
                STRONG_PASSWORD,
            )
            .await["code"]
            .clone()
    };
    let pkce = Pkce::new();
    // A wrong verifier, no verifier, another client, another redirect URI: each spends the
    // code (single use, right or wrong) and gets invalid_grant.
    let code = code_for(&pkce).await;
    oauth_error(
        &exchange(&app, id, &code, &Pkce::new()).await,
        400,
        "invalid_grant",
    );
    oauth_error(
        &exchange(&app, id, &code, &pkce).await,
        400,
        "invalid_grant",
    );
    let code = code_for(&pkce).await;
    let without = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    oauth_error(&without, 400, "invalid_grant");
    let code = code_for(&pkce).await;
    let injected = exchange(&app, other.client_id.as_str(), &code, &pkce).await;
    oauth_error(&injected, 400, "invalid_grant");
    let code = code_for(&pkce).await;
    let elsewhere = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/native-callback"),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    oauth_error(&elsewhere, 400, "invalid_grant");
    // A code lives 60 seconds.
    let code = code_for(&pkce).await;
    clock.advance_ms(61_000);
    oauth_error(
        &exchange(&app, id, &code, &pkce).await,
        400,
        "invalid_grant",
    );
    // A confidential client's code needs its secret; a public client needs none, but must be
    // public.
    let (confidential, secret) =
        register_app(&app, ClientType::Confidential, true, "api:read").await;
    let cid = confidential.client_id.as_str();
    let pkce = Pkce::new();
    let query = Browser::default()
        .sign_in(
            &app,
            &authorization(cid, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let unauthenticated = exchange(&app, cid, &query["code"], &pkce).await;
    oauth_error(&unauthenticated, 401, "invalid_client");
    let query = Browser::default()
        .sign_in(
            &app,
            &authorization(cid, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let authenticated = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", cid),
            ("client_secret", secret.as_deref().unwrap()),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(authenticated.status, 200, "{}", authenticated.text);
}

async fn untrusted_requests_are_shown_never_redirected<S: Store>(app: App<S>) {
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let with = |name: &str, value: &str| {
        let mut request = authorization(id, &pkce, SCOPE);
        request.retain(|(k, _)| k != name);
        if !value.is_empty() {
            request.push((name.to_owned(), value.to_owned()));
        }
        request
    };
    for request in [
        with("client_id", "no-such-client"),
        with("client_id", ""),
        with("redirect_uri", "https://evil.test/callback"),
        with("redirect_uri", "https://app.test/callback/../evil"),
        with("redirect_uri", "https://app.test/callback?x=1"),
        with("redirect_uri", "https://app.test.evil.test/callback"),
        with("redirect_uri", ""),
        // Loopback ports vary only for the registered loopback path.
        with("redirect_uri", "http://127.0.0.1:4000/elsewhere"),
    ] {
        let answer = browser.get(&app, "/oauth2/authorize", &request).await;
        stays(&answer, 400);
        // And the same errors with a bad response_type, scope or PKCE are still not sent.
        let mut worse = request.clone();
        worse.retain(|(k, _)| k != "response_type");
        worse.push(("response_type".into(), "token".into()));
        stays(&browser.get(&app, "/oauth2/authorize", &worse).await, 400);
    }
    // The same for the pages that carry a request.
    for page in ["/oauth2/login", "/oauth2/register", "/oauth2/forgot"] {
        let answer = browser
            .get(
                &app,
                page,
                &with("redirect_uri", "https://evil.test/callback"),
            )
            .await;
        stays(&answer, 400);
    }
    // A registered loopback redirect may use any port.
    let loopback = browser
        .get(
            &app,
            "/oauth2/authorize",
            &with("redirect_uri", "http://127.0.0.1:51004/native-callback"),
        )
        .await;
    assert_eq!(loopback.status, 303, "{}", loopback.text);
}

async fn other_errors_go_back_to_the_client_with_state_and_iss<S: Store>(app: App<S>) {
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let with = |name: &str, value: &str| {
        let mut request = authorization(id, &pkce, SCOPE);
        request.retain(|(k, _)| k != name);
        if !value.is_empty() {
            request.push((name.to_owned(), value.to_owned()));
        }
        request
    };
    for (request, error) in [
        (with("response_type", "token"), "unsupported_response_type"),
        (with("response_type", ""), "invalid_request"),
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("code_challenge_method", ""), "invalid_request"),
        (with("code_challenge", ""), "invalid_request"),
        (with("scope", "openid admin:everything"), "invalid_scope"),
        (with("scope", ""), "invalid_scope"),
        (with("prompt", "none"), "login_required"),
        (with("prompt", "none login"), "invalid_request"),
        (with("max_age", "soon"), "invalid_request"),
        (
            with("request", "eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
        ),
        (with("response_mode", "fragment"), "invalid_request"),
    ] {
        let answer = browser.get(&app, "/oauth2/authorize", &request).await;
        assert_eq!(answer.status, 303, "{error}: {}", answer.text);
        let query = client_query(&answer);
        assert_eq!(query["error"], error, "{query:?}");
        assert_eq!(query["state"], "st-8d1f");
        assert_eq!(query["iss"], "https://auth.test");
        assert!(!query.contains_key("code"));
    }
}

async fn every_form_needs_its_csrf_token<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, false, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let request = authorization(id, &pkce, SCOPE);
    let mut victim = Browser::default();
    let page = victim.get(&app, "/oauth2/login", &request).await;
    assert_eq!(page.status, 200);
    // A cross-site form cannot read the token: without it, or with another, nothing happens.
    let mut form = hidden_inputs(&page.text);
    form.retain(|(k, _)| k != "csrf");
    form.push(("email".into(), EMAIL.into()));
    form.push(("password".into(), STRONG_PASSWORD.into()));
    let mut forged = form.clone();
    forged.push(("csrf".into(), "A".repeat(43)));
    for body in [form.clone(), forged] {
        for path in [
            "/oauth2/login",
            "/oauth2/consent",
            "/oauth2/register",
            "/oauth2/forgot",
            "/oauth2/logout",
        ] {
            let answer = victim.post(&app, path, &body).await;
            stays(&answer, 403);
        }
    }
    assert!(!victim.cookies.contains_key("__Host-sso"), "no sign-in");
    // The attacker's own token does not work in the victim's browser (login CSRF).
    let mut attacker = Browser::default();
    let theirs = attacker.get(&app, "/oauth2/login", &request).await;
    let mut planted = hidden_inputs(&theirs.text);
    planted.push(("email".into(), EMAIL.into()));
    planted.push(("password".into(), STRONG_PASSWORD.into()));
    let answer = victim.post(&app, "/oauth2/login", &planted).await;
    stays(&answer, 403);
    assert!(!victim.cookies.contains_key("__Host-sso"));
}

async fn a_third_party_client_needs_consent_once_per_scope<S: Store>(app: App<S>) {
    let user_id = register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, false, "api:read api:write").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let start = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    let page = browser
        .follow(&app, start.header("location").unwrap())
        .await;
    let consent = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    stays(&consent, 200);
    assert!(consent.text.contains("Photo Book"), "{}", consent.text);
    assert!(consent.text.contains("name=\"decision\" value=\"allow\""));
    assert!(consent.text.contains("name=\"decision\" value=\"deny\""));
    assert!(consent.text.contains("api:read"));
    // prompt=none cannot skip it.
    let mut silent = authorization(id, &pkce, SCOPE);
    silent.push(("prompt".into(), "none".into()));
    let refused = browser.get(&app, "/oauth2/authorize", &silent).await;
    assert_eq!(client_query(&refused)["error"], "consent_required");
    // Deny: access_denied, nothing remembered.
    let denied = browser
        .submit(&app, &consent, &[], Some(("decision", "deny")))
        .await;
    assert_eq!(client_query(&denied)["error"], "access_denied");
    // Allow: a code, and the consent is remembered for these scopes.
    let again = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    stays(&again, 200);
    let allowed = browser
        .submit(&app, &again, &[], Some(("decision", "allow")))
        .await;
    let code = client_query(&allowed)["code"].clone();
    assert_eq!(exchange(&app, id, &code, &pkce).await.status, 200);
    let next = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    assert!(client_query(&next).contains_key("code"));
    // The user sees what they allowed, and takes it back: the app asks again.
    let listed = send(
        &app,
        Event::get(Kind::RestV1, "/consents").authorized_as(&user_id),
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    assert_eq!(listed["consents"][0]["client_id"], id);
    assert_eq!(listed["consents"][0]["client_name"], "Photo Book");
    assert_eq!(
        listed["consents"][0]["scopes"],
        json!(["api:read", "email", "offline_access", "openid"])
    );
    let revoke = |client_id: &str| {
        Event::new(Kind::RestV1, "DELETE", &format!("/consents/{client_id}"))
            .no_body()
            .authorized_as(&user_id)
    };
    assert_eq!(send(&app, revoke(id)).await.status, 204);
    send(&app, revoke(id)).await.problem(404);
    send(&app, revoke("not a client")).await.problem(404);
    let asked_again = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    stays(&asked_again, 200);
    let allowed = browser
        .submit(&app, &asked_again, &[], Some(("decision", "allow")))
        .await;
    assert!(client_query(&allowed).contains_key("code"));
    // A new scope asks again; prompt=consent always asks.
    let wider = browser
        .get(
            &app,
            "/oauth2/authorize",
            &authorization(id, &pkce, "openid api:write"),
        )
        .await;
    stays(&wider, 200);
    let mut asked = authorization(id, &pkce, SCOPE);
    asked.push(("prompt".into(), "consent".into()));
    stays(&browser.get(&app, "/oauth2/authorize", &asked).await, 200);
    // An answer without a decision is no answer.
    let mut form = hidden_inputs(&wider.text);
    form.push(("decision".into(), "maybe".into()));
    stays(&browser.post(&app, "/oauth2/consent", &form).await, 400);

    // Parallel grants of different scopes add up.
    let uid = uuid::Uuid::parse_str(&user_id).unwrap();
    let store = &app.accounts.store;
    let scopes: Vec<Vec<String>> = (0..8).map(|i| vec![format!("s{i}")]).collect();
    let grants = scopes
        .iter()
        .map(|s| store.grant_consent(uid, &client.client_id, s, 0));
    for result in join_all_results(grants).await {
        result.unwrap();
    }
    let consent = store
        .find_consent(uid, &client.client_id)
        .await
        .unwrap()
        .unwrap();
    for i in 0..8 {
        assert!(consent.scopes.contains(&format!("s{i}")), "{consent:?}");
    }
    assert!(consent.scopes.contains(&"api:read".to_owned()));
}

async fn join_all_results<T, F: std::future::Future<Output = T>>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<T>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
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
    results.into_iter().map(|r| r.unwrap()).collect()
}

async fn prompt_and_max_age_decide_when_a_password_is_asked_again<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let (app, clock) = with_clock(app);
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    browser
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let with = |name: &str, value: &str| {
        let mut request = authorization(id, &pkce, SCOPE);
        request.push((name.to_owned(), value.to_owned()));
        request
    };
    // prompt=none with a session: a code, silently.
    let silent = browser
        .get(&app, "/oauth2/authorize", &with("prompt", "none"))
        .await;
    assert!(client_query(&silent).contains_key("code"));
    // prompt=login: the password again, and the new sign-in's auth_time.
    let forced = browser
        .get(&app, "/oauth2/authorize", &with("prompt", "login"))
        .await;
    assert!(forced.header("location").unwrap().starts_with("login?"));
    // max_age: within it, no password; past it, the password; prompt=none then fails.
    clock.advance_ms(5_000);
    let fresh = browser
        .get(&app, "/oauth2/authorize", &with("max_age", "60"))
        .await;
    assert!(client_query(&fresh).contains_key("code"));
    let stale = browser
        .get(&app, "/oauth2/authorize", &with("max_age", "1"))
        .await;
    assert!(stale.header("location").unwrap().starts_with("login?"));
    let page = browser
        .follow(&app, stale.header("location").unwrap())
        .await;
    let done = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    let code = client_query(&done)["code"].clone();
    let tokens = exchange(&app, id, &code, &pkce).await.json();
    let id_claims = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_claims["auth_time"], id_claims["iat"], "a new sign-in");
    let mut none_after = with("max_age", "0");
    none_after.push(("prompt".into(), "none".into()));
    clock.advance_ms(2_000);
    let refused = browser.get(&app, "/oauth2/authorize", &none_after).await;
    assert_eq!(client_query(&refused)["error"], "login_required");
}

async fn a_wrong_password_on_the_page_gets_the_json_api_s_answer_and_backoff<S: Store>(
    app: App<S>,
) {
    register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let request = authorization(client.client_id.as_str(), &Pkce::new(), SCOPE);
    let mut browser = Browser::default();
    let page = browser.get(&app, "/oauth2/login", &request).await;
    let wrong = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", "not it at all")],
            None,
        )
        .await;
    stays(&wrong, 401);
    let unknown = browser
        .submit(
            &app,
            &page,
            &[
                ("email", "nobody@example.com"),
                ("password", "not it at all"),
            ],
            None,
        )
        .await;
    stays(&unknown, 401);
    let message = |a: &Answer| {
        let start = a.text.find("role=\"alert\">").unwrap();
        a.text[start..a.text[start..].find("</p>").unwrap() + start].to_owned()
    };
    assert_eq!(message(&wrong), message(&unknown));
    assert!(message(&wrong).contains("The email or password is incorrect."));
    // The typed email stays in the form; the password never comes back.
    assert!(wrong.text.contains(&format!("value=\"{EMAIL}\"")));
    assert!(!wrong.text.contains("not it at all"));
    let mut last = wrong;
    for _ in 0..6 {
        last = browser
            .submit(
                &app,
                &page,
                &[("email", EMAIL), ("password", "not it at all")],
                None,
            )
            .await;
    }
    stays(&last, 429);
    assert!(last.header("retry-after").is_some());
}

async fn logout_ends_the_session_and_goes_only_where_registered<S: Store>(app: App<S>) {
    register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let query = browser
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let logout = |extra: &[(&str, &str)]| {
        let mut q = vec![("id_token_hint".to_owned(), id_token.clone())];
        q.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        q
    };
    // Never to an unregistered address, whatever else is right.
    for uri in [
        "https://evil.test/",
        REDIRECT,
        "https://app.test/signed-out/x",
    ] {
        let answer = browser
            .get(
                &app,
                "/oauth2/logout",
                &logout(&[("post_logout_redirect_uri", uri)]),
            )
            .await;
        stays(&answer, 400);
    }
    // Another client's id with this hint: refused.
    let (other, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let mismatch = browser
        .get(
            &app,
            "/oauth2/logout",
            &logout(&[("client_id", other.client_id.as_str())]),
        )
        .await;
    stays(&mismatch, 400);
    assert!(
        browser.cookies.contains_key("__Host-sso"),
        "still signed in"
    );

    // With the hint of its own session: signed out at once, back to the registered page.
    let answer = browser
        .get(
            &app,
            "/oauth2/logout",
            &logout(&[
                ("post_logout_redirect_uri", POST_LOGOUT),
                ("state", "bye-1"),
            ]),
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(
        answer.header("location"),
        Some(format!("{POST_LOGOUT}?state=bye-1").as_str())
    );
    assert!(
        !browser.cookies.contains_key("__Host-sso"),
        "cookie cleared"
    );
    let refresh = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    oauth_error(&refresh, 400, "invalid_grant");

    // Without a hint, the user is asked, and a POST with the page's token ends the session.
    let query = browser
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    let ask = browser.get(&app, "/oauth2/logout", &[]).await;
    stays(&ask, 200);
    assert!(browser.cookies.contains_key("__Host-sso"));
    let done = browser.submit(&app, &ask, &[], None).await;
    stays(&done, 200);
    assert!(!browser.cookies.contains_key("__Host-sso"));
    let userinfo = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/userinfo")
            .bearer(tokens["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(userinfo.status, 401);
}

async fn logout_everywhere_and_a_password_change_end_the_sso_session<S: Store>(app: App<S>) {
    let user_id = register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    browser
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    assert_eq!(
        post(&app, "/logout-all", json!({}), Some(&user_id))
            .await
            .status,
        204
    );
    let start = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    assert!(start.header("location").unwrap().starts_with("login?"));

    // Signed in again; a password change (elsewhere, through the JSON API) ends it too.
    browser
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let silent = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    assert!(client_query(&silent).contains_key("code"), "signed in");
    let change = json!({
        "current_password": STRONG_PASSWORD,
        "new_password": "purple elephant juggling seventeen oranges",
    });
    let changed = post(&app, "/password", change, Some(&user_id)).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let start = browser
        .get(&app, "/oauth2/authorize", &authorization(id, &pkce, SCOPE))
        .await;
    assert!(start.header("location").unwrap().starts_with("login?"));
}

async fn a_two_factor_user_enters_a_code_on_the_page<S: Store>(app: App<S>) {
    let user_id = register_ada(&app).await;
    let secret = integration_tests_mfa_enroll(&app, &user_id).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let page = browser
        .get(&app, "/oauth2/login", &authorization(id, &pkce, SCOPE))
        .await;
    let step = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    stays(&step, 200);
    assert_eq!(input_names(&step.text), ["code"]);
    assert!(!browser.cookies.contains_key("__Host-sso"), "not yet");
    let wrong = browser
        .submit(&app, &step, &[("code", "000000")], None)
        .await;
    stays(&wrong, 401);
    // The next step's code: the confirmation spent an earlier one.
    let code = totp_at(&secret, 30);
    let done = browser.submit(&app, &wrong, &[("code", &code)], None).await;
    let query = client_query(&done);
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp"])
    );
}

/// On the hosted sign-in page a passkey signs in alone (the page's own form carries the
/// browser's answer), and a user with a password and a passkey confirms with it at the second
/// step, where no code is asked for.
async fn a_passkey_signs_in_on_the_page_alone_and_as_the_second_step<S: Store>(app: App<S>) {
    use integration_tests::app::PASSKEY_ORIGIN;
    use integration_tests::passkeys::SoftKey;
    let user_id = register_ada(&app).await;
    integration_tests::app::verify_from_outbox(&app, EMAIL).await;
    let mut key = SoftKey::new(false);
    let options = post(
        &app,
        "/passkeys/register/options",
        json!({"password": STRONG_PASSWORD}),
        Some(&user_id),
    )
    .await
    .json();
    let credential = key
        .create(PASSKEY_ORIGIN, &options["options"])
        .await
        .unwrap();
    let added = post(
        &app,
        "/passkeys/register",
        json!({"challenge_id": options["challenge_id"], "credential": credential}),
        Some(&user_id),
    )
    .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();

    // Alone: the page offers it (and autofill), and its form takes the answer.
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let page = browser
        .get(&app, "/oauth2/login", &authorization(id, &pkce, SCOPE))
        .await;
    assert!(
        page.text.contains("autocomplete=\"username webauthn\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("id=\"passkey-button\""), "{}", page.text);
    let start = post(&app, "/passkeys/login/options", json!({}), None)
        .await
        .json();
    let answer = key
        .get(PASSKEY_ORIGIN, &start["options"])
        .await
        .unwrap()
        .to_string();
    let challenge_id = start["challenge_id"].as_str().unwrap();
    let fields = [
        ("passkey_challenge_id", challenge_id),
        ("passkey_credential", answer.as_str()),
    ];
    let done = browser.submit(&app, &page, &fields, None).await;
    let query = client_query(&done);
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["swk", "user", "mfa"])
    );
    // The same answer again: refused on the page, which stays.
    let mut again = Browser::default();
    let page = again
        .get(&app, "/oauth2/login", &authorization(id, &pkce, SCOPE))
        .await;
    let replayed = again.submit(&app, &page, &fields, None).await;
    stays(&replayed, 401);
    assert!(
        replayed.text.contains("passkey was not accepted"),
        "{}",
        replayed.text
    );

    // After the password: the second step offers the passkey and asks no code.
    let pkce = Pkce::new();
    let mut browser = Browser::default();
    let page = browser
        .get(&app, "/oauth2/login", &authorization(id, &pkce, SCOPE))
        .await;
    let step = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    stays(&step, 200);
    assert!(input_names(&step.text).is_empty(), "{}", step.text);
    assert!(
        step.text.contains("data-mode=\"second-factor\""),
        "{}",
        step.text
    );
    let mfa_token = hidden_inputs(&step.text)
        .into_iter()
        .find(|(n, _)| n == "mfa_token")
        .unwrap()
        .1;
    let start = post(
        &app,
        "/login/mfa/passkey/options",
        json!({"mfa_token": mfa_token}),
        None,
    )
    .await
    .json();
    let answer = key
        .get(PASSKEY_ORIGIN, &start["options"])
        .await
        .unwrap()
        .to_string();
    let done = browser
        .submit(
            &app,
            &step,
            &[
                (
                    "passkey_challenge_id",
                    start["challenge_id"].as_str().unwrap(),
                ),
                ("passkey_credential", answer.as_str()),
            ],
            None,
        )
        .await;
    let query = client_query(&done);
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "swk", "user", "mfa"])
    );
}

/// Turns on TOTP for the user through the JSON API; its secret (base32).
async fn integration_tests_mfa_enroll<S: Store>(app: &App<S>, user_id: &str) -> String {
    integration_tests::app::verify_from_outbox(app, EMAIL).await;
    let enrolled = post(
        app,
        "/mfa/totp/enroll",
        json!({"password": STRONG_PASSWORD}),
        Some(user_id),
    )
    .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.text);
    let secret = enrolled.json()["secret"].as_str().unwrap().to_owned();
    let confirmed = post(
        app,
        "/mfa/totp/confirm",
        json!({"code": totp_at(&secret, -30)}),
        Some(user_id),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    secret
}

fn totp_at(secret: &str, offset_seconds: i64) -> String {
    let secret = accounts::model::mfa::TotpSecret::from_base32(secret).unwrap();
    secret.code_at(shared::token::now_unix() + offset_seconds)
}

async fn revocation_and_introspection_answer_the_client_the_token_was_issued_to<S: Store>(
    app: App<S>,
) {
    register_ada(&app).await;
    let (client, secret) = register_app(&app, ClientType::Confidential, true, "api:read").await;
    let id = client.client_id.as_str();
    let secret = secret.unwrap();
    let (other, other_secret) =
        register_app(&app, ClientType::Confidential, true, "api:read").await;
    let pkce = Pkce::new();
    let query = Browser::default()
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let tokens = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("client_secret", &secret),
            ("code", &query["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
    .json();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let form = |path: &str, pairs: &[(&str, &str)]| {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", integration_tests::events::encode(v)))
            .collect();
        Event::new(Kind::RestV1, "POST", path)
            .body(&body.join("&"))
            .header("content-type", "application/x-www-form-urlencoded")
    };
    let introspect = async |cid: &str, csecret: &str, token: &str| -> Value {
        let answer = send(
            &app,
            form(
                "/oauth2/introspect",
                &[
                    ("client_id", cid),
                    ("client_secret", csecret),
                    ("token", token),
                ],
            ),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()
    };
    let seen = introspect(id, &secret, access).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], id);
    assert_eq!(seen["scope"], SCOPE);
    let seen = introspect(id, &secret, refresh).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["token_type"], "refresh_token");
    // Another client learns nothing of this client's refresh token.
    let other_secret = other_secret.unwrap();
    let foreign = introspect(other.client_id.as_str(), &other_secret, refresh).await;
    assert_eq!(foreign, json!({"active": false}));
    assert_eq!(
        introspect(id, &secret, "not-a-token").await,
        json!({"active": false})
    );
    // A public client may not introspect; a wrong secret is invalid_client.
    let wrong = send(
        &app,
        form(
            "/oauth2/introspect",
            &[
                ("client_id", id),
                ("client_secret", "nope"),
                ("token", access),
            ],
        ),
    )
    .await;
    oauth_error(&wrong, 401, "invalid_client");

    // Another client cannot revoke it (200, nothing happens); its own client can.
    let by_other = send(
        &app,
        form(
            "/oauth2/revoke",
            &[
                ("client_id", other.client_id.as_str()),
                ("client_secret", &other_secret),
                ("token", refresh),
            ],
        ),
    )
    .await;
    assert_eq!(by_other.status, 200);
    assert_eq!(introspect(id, &secret, refresh).await["active"], true);
    let revoked = send(
        &app,
        form(
            "/oauth2/revoke",
            &[
                ("client_id", id),
                ("client_secret", &secret),
                ("token", refresh),
            ],
        ),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(introspect(id, &secret, refresh).await["active"], false);
    assert_eq!(introspect(id, &secret, access).await["active"], false);
    let unknown = send(
        &app,
        form(
            "/oauth2/revoke",
            &[
                ("client_id", id),
                ("client_secret", &secret),
                ("token", "whatever"),
            ],
        ),
    )
    .await;
    assert_eq!(unknown.status, 200);
}

async fn userinfo_needs_an_openid_token<S: Store>(app: App<S>) {
    let user_id = register_ada(&app).await;
    let login = post(
        &app,
        "/login",
        json!({"email": EMAIL, "password": STRONG_PASSWORD}),
        None,
    )
    .await
    .json();
    let json_api_token = login["access_token"].as_str().unwrap();
    let answer = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/userinfo").bearer(json_api_token),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    let none = send(&app, Event::get(Kind::RestV1, "/oauth2/userinfo")).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let forged = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/userinfo").bearer("eyJ0.eyJ0.sig"),
    )
    .await;
    assert_eq!(forged.status, 401);
    // Without scope email: sub only.
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let query = Browser::default()
        .sign_in(
            &app,
            &authorization(id, &pkce, "openid"),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    assert!(tokens.get("refresh_token").is_none(), "no offline_access");
    assert!(
        claims(tokens["id_token"].as_str().unwrap())
            .get("email")
            .is_none()
    );
    let access = tokens["access_token"].as_str().unwrap();
    let answer = send(
        &app,
        Event::new(Kind::RestV1, "POST", "/oauth2/userinfo")
            .no_body()
            .bearer(access),
    )
    .await;
    assert_eq!(answer.json(), json!({"sub": user_id}));
    // RFC 6750 §2.2: the token in a form body, but not in both places.
    let in_form = Event::new(Kind::RestV1, "POST", "/oauth2/userinfo")
        .body(&format!("access_token={access}"))
        .header("content-type", "application/x-www-form-urlencoded");
    let answer = send(&app, in_form.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json(), json!({"sub": user_id}));
    oauth_error(
        &send(&app, in_form.bearer(access)).await,
        400,
        "invalid_request",
    );
}

async fn registration_and_reset_pages_use_the_json_api_s_rules<S: Store>(app: App<S>) {
    let (app, clock) = with_clock(app);
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let request = authorization(client.client_id.as_str(), &Pkce::new(), SCOPE);
    let mut browser = Browser::default();
    let page = browser.get(&app, "/oauth2/register", &request).await;
    stays(&page, 200);
    assert_eq!(input_names(&page.text), ["email", "password"]);
    let weak = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", "password")],
            None,
        )
        .await;
    stays(&weak, 400);
    let made = browser
        .submit(
            &app,
            &page,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    stays(&made, 200);
    assert_eq!(
        input_names(&made.text),
        ["email", "password"],
        "the sign-in form"
    );
    let done = browser
        .submit(
            &app,
            &made,
            &[("email", EMAIL), ("password", STRONG_PASSWORD)],
            None,
        )
        .await;
    assert!(client_query(&done).contains_key("code"));
    // Past the one-mail-a-minute limit of the verification mail.
    clock.advance_ms(61_000);
    let forgot = browser.get(&app, "/oauth2/forgot", &request).await;
    stays(&forgot, 200);
    assert_eq!(input_names(&forgot.text), ["email"]);
    let known = browser
        .submit(&app, &forgot, &[("email", EMAIL)], None)
        .await;
    let unknown = browser
        .submit(&app, &forgot, &[("email", "nobody@example.com")], None)
        .await;
    assert_eq!(known.status, 200);
    assert_eq!(
        known.text, unknown.text,
        "the same answer for every address"
    );
}

async fn wrong_methods_and_malformed_requests_get_clear_answers<S: Store>(app: App<S>) {
    let page = send(
        &app,
        Event::new(Kind::RestV1, "DELETE", "/oauth2/login").no_body(),
    )
    .await;
    stays(&page, 405);
    assert_eq!(page.header("allow"), Some("GET, POST, OPTIONS"));
    let endpoint = send(&app, Event::get(Kind::RestV1, "/oauth2/revoke")).await;
    oauth_error(&endpoint, 405, "invalid_request");
    // A parameter given twice (RFC 6749 §3.1): refused before anything is looked up.
    let repeated = send(
        &app,
        Event::get(Kind::RestV1, "/oauth2/authorize")
            .query(&[("client_id", "a"), ("client_id", "b")]),
    )
    .await;
    stays(&repeated, 400);
    assert!(
        repeated.text.contains("more than once"),
        "{}",
        repeated.text
    );
    let grant = token(&app, &[("grant_type", "password")]).await;
    oauth_error(&grant, 400, "unsupported_grant_type");
    let unknown = token(
        &app,
        &[("grant_type", "authorization_code"), ("client_id", "x")],
    )
    .await;
    oauth_error(&unknown, 401, "invalid_client");
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let no_code = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client.client_id.as_str()),
        ],
    )
    .await;
    oauth_error(&no_code, 400, "invalid_request");
}

over_both_stores!(
    a_passkey_signs_in_on_the_page_alone_and_as_the_second_step,
    the_code_flow_signs_in_with_pkce_and_issues_checked_tokens,
    a_code_is_single_use_and_a_second_use_ends_its_session,
    codes_are_bound_to_client_redirect_uri_verifier_and_time,
    untrusted_requests_are_shown_never_redirected,
    other_errors_go_back_to_the_client_with_state_and_iss,
    every_form_needs_its_csrf_token,
    a_third_party_client_needs_consent_once_per_scope,
    prompt_and_max_age_decide_when_a_password_is_asked_again,
    a_wrong_password_on_the_page_gets_the_json_api_s_answer_and_backoff,
    logout_ends_the_session_and_goes_only_where_registered,
    logout_everywhere_and_a_password_change_end_the_sso_session,
    a_two_factor_user_enters_a_code_on_the_page,
    revocation_and_introspection_answer_the_client_the_token_was_issued_to,
    userinfo_needs_an_openid_token,
    registration_and_reset_pages_use_the_json_api_s_rules,
    wrong_methods_and_malformed_requests_get_clear_answers,
);

/// A store that stops answering: every hosted page and OAuth endpoint answers a bounded 503
/// (a page, or RFC 6749 JSON), with no internals, and nothing half-written.
#[tokio::test]
async fn a_stopped_store_gives_bounded_503s_on_the_pages_and_endpoints() {
    use integration_tests::dynamo::{Mode, Proxy, endpoint, fresh_store};
    let proxy = Proxy::start_for(&endpoint()).await;
    let app = integration_tests::app::test_app(fresh_store(&proxy.url()).await);
    register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let request = authorization(id, &pkce, SCOPE);
    let mut browser = Browser::default();
    let page = browser.get(&app, "/oauth2/login", &request).await;
    assert_eq!(page.status, 200);
    let query = Browser::default()
        .sign_in(&app, &request, EMAIL, STRONG_PASSWORD)
        .await;

    proxy.stop().await;
    let started = std::time::Instant::now();
    let on_pages = [
        browser.get(&app, "/oauth2/authorize", &request).await,
        browser
            .submit(
                &app,
                &page,
                &[("email", EMAIL), ("password", STRONG_PASSWORD)],
                None,
            )
            .await,
    ];
    for answer in &on_pages {
        stays(answer, 503);
        assert!(answer.header("retry-after").is_some());
        assert!(!answer.text.contains("dispatch") && !answer.text.contains("127.0.0.1"));
    }
    let exchanged = exchange(&app, id, &query["code"], &pkce).await;
    oauth_error(&exchanged, 503, "temporarily_unavailable");
    assert!(!exchanged.text.contains("127.0.0.1"), "{}", exchanged.text);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded: {:?}",
        started.elapsed()
    );
    proxy.restart(Mode::Forward).await;
    // The refused exchange did not spend the code.
    assert_eq!(exchange(&app, id, &query["code"], &pkce).await.status, 200);
}

/// With an RSA signing key, ID tokens are RS256 (what every relying party supports) and
/// verify with the published key.
#[tokio::test]
async fn an_rsa_key_signs_rs256_id_tokens() {
    use accounts::store::MemoryStore;
    let mut app = integration_tests::app::test_app(MemoryStore::new());
    let key =
        shared::SigningKey::from_pem(include_str!("../../fixtures/rsa-2048.pem"), None).unwrap();
    let mut keys = shared::KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    app.verifier = shared::TokenVerifier::new(keys, integration_tests::app::settings(), 30);
    app.accounts.issuer = shared::TokenIssuer::new(key, integration_tests::app::settings(), 900);
    register_ada(&app).await;
    let (client, _) = register_app(&app, ClientType::Public, true, "api:read").await;
    let id = client.client_id.as_str();
    let pkce = Pkce::new();
    let query = Browser::default()
        .sign_in(
            &app,
            &authorization(id, &pkce, SCOPE),
            EMAIL,
            STRONG_PASSWORD,
        )
        .await;
    let tokens = exchange(&app, id, &query["code"], &pkce).await.json();
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(header(id_token)["alg"], "RS256");
    let checked = shared::verify_id_token_hint(
        app.verifier.keys(),
        app.accounts.issuer.settings(),
        id_token,
    )
    .unwrap();
    assert_eq!(
        checked.at_hash,
        Some(shared::at_hash(
            jsonwebtoken::Algorithm::RS256,
            tokens["access_token"].as_str().unwrap()
        ))
    );
}
