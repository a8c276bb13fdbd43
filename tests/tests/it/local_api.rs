//! local-api end to end over real HTTP: the gateway from template.yaml, the real authorizer in
//! front of protected routes, its cache, and the real auth-api behind.

use accounts::store::{MemoryStore, Store};
use auth_api::http::routes::Route;
use integration_tests::app::STRONG_PASSWORD;
use integration_tests::authorizer_events::subject;
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::local::{LocalApi, TEMPLATE};
use local_api::template::{self, RouteSpec};
use reqwest::Client;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::token::now_unix;

const RULES: &str = r#"{"GET /me": ["admin"], "* /*": ["user"]}"#;

fn memory() -> MemoryStore {
    MemoryStore::new()
}

/// Registers and logs in over HTTP; returns (user id, access token).
async fn sign_up(
    http: &Client,
    api: &LocalApi<impl Store + 'static>,
    email: &str,
) -> (String, String) {
    let user_id = api.register(http, email).await;
    let tokens = api.login(http, email, STRONG_PASSWORD).await;
    (user_id, tokens["access_token"].as_str().unwrap().to_owned())
}

async fn get(
    http: &Client,
    api: &LocalApi<impl Store + 'static>,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = http.get(api.at(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[test]
fn the_deployed_template_serves_exactly_the_router_s_routes_with_their_protection() {
    let spec = template::parse(TEMPLATE).unwrap();
    let mut from_router: Vec<RouteSpec> = Route::ALL
        .iter()
        .map(|r| RouteSpec {
            method: r.method().into(),
            path: r.path().into(),
            protected: r.protected(),
            scopes: Vec::new(),
        })
        .collect();
    from_router.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    let (preflights, mut from_template): (Vec<RouteSpec>, Vec<RouteSpec>) = spec
        .routes
        .iter()
        .cloned()
        .partition(|r| r.method == "OPTIONS");
    from_template.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    assert_eq!(from_template, from_router);
    // Every path answers CORS preflights, and never behind the authorizer (a browser sends
    // no Authorization header with a preflight).
    let mut preflight_paths: Vec<&str> = preflights.iter().map(|r| r.path.as_str()).collect();
    preflight_paths.sort();
    let mut paths: Vec<&str> = Route::ALL.iter().map(|r| r.path()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(preflight_paths, paths);
    assert!(preflights.iter().all(|r| !r.protected));
    let protected: Vec<&str> = from_template
        .iter()
        .filter(|r| r.protected)
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        protected,
        [
            "/consents",
            "/consents/{client_id}",
            "/identities",
            "/identities/link/{provider}",
            "/identities/{id}",
            "/logout-all",
            "/me",
            "/me",
            "/mfa/recovery-codes",
            "/mfa/totp/confirm",
            "/mfa/totp/disable",
            "/mfa/totp/enroll",
            "/passkeys",
            "/passkeys/register",
            "/passkeys/register/options",
            "/passkeys/{id}",
            "/passkeys/{id}",
            "/password",
            "/sessions",
            "/sessions/{id}"
        ]
    );
    assert_eq!(spec.authorizer_ttl, 300);
    assert_eq!(spec.stage, "prod");
}

#[tokio::test]
async fn sessions_work_over_http_and_account_routes_need_a_token() {
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let http = Client::new();
    let (_, _) = sign_up(&http, &api, "ada@example.com").await;
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let tokens: Value = http
        .post(api.at("/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refreshed = http
        .post(api.at("/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();

    for path in ["/logout-all", "/password"] {
        let refused = http
            .post(api.at(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{path} without a token");
    }
    let access = refreshed["access_token"].as_str().unwrap();
    let ended = http
        .post(api.at("/logout-all"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let after = http
        .post(api.at("/refresh"))
        .json(&json!({"refresh_token": refreshed["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    api.stop().await;
}

#[test]
fn a_template_local_api_cannot_follow_is_a_clear_error() {
    let broken = [
        ("Resources: {}", "exactly one AWS::Serverless::Api"),
        ("not: [valid", "not valid YAML"),
        (
            &TEMPLATE.replace("/sessions/{id}:", "/sessions/{proxy+}:"),
            "greedy path parameters",
        ),
        (&TEMPLATE.replace("type: token", "type: request"), "TOKEN"),
        (
            &TEMPLATE.replace("Binary: auth-api", "Binary: other"),
            "auth-api",
        ),
        (
            &TEMPLATE.replace(
                "            delete:\n              security: [{TokenAuthorizer: []}]",
                "            delete:\n              security: [{OtherAuthorizer: []}]",
            ),
            "not the document's authorizer",
        ),
    ];
    for (text, words) in broken {
        let err = template::parse(text).unwrap_err().to_string();
        assert!(err.contains(words), "{words}: {err}");
    }
}

#[tokio::test]
async fn register_login_and_a_protected_route_work_over_http() {
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let http = Client::new();
    let (user_id, token) = sign_up(&http, &api, "ada@example.com").await;
    let (status, profile) = get(&http, &api, "/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(profile["user_id"], user_id);
    assert_eq!(profile["email"], "ada@example.com");
    let (status, health) = get(&http, &api, "/health", None).await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    api.stop().await;
}

#[tokio::test]
async fn missing_or_tampered_tokens_get_api_gateways_401() {
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let http = Client::new();
    let (_, token) = sign_up(&http, &api, "ada@example.com").await;
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for token in [None, Some(tampered.as_str()), Some("not-a-jwt")] {
        let (status, body) = get(&http, &api, "/me", token).await;
        assert_eq!((status, body), (401, json!({"message": "Unauthorized"})));
    }
    let basic = http
        .get(api.at("/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(basic.headers()["x-amzn-errortype"], "UnauthorizedException");
    // Routes the API does not have are API Gateway's 403, not the function's 404.
    let (status, body) = get(&http, &api, "/nope", None).await;
    assert_eq!(
        (status, body),
        (403, json!({"message": "Missing Authentication Token"}))
    );
}

#[tokio::test]
async fn a_role_the_rules_refuse_gets_403() {
    let api = LocalApi::spawn(memory(), &[("AUTHORIZER_RULES", RULES)], |_| {}).await;
    let http = Client::new();
    let (_, token) = sign_up(&http, &api, "ada@example.com").await;
    let (status, body) = get(&http, &api, "/me", Some(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "User is not authorized to access this resource with an explicit deny"
    );
}

/// The REST emulation's authorizer admits a machine token where a rule names one of its
/// scopes (auth-api then refuses it: a client has no account) and refuses it where a rule
/// names only roles (the gateway's explicit deny).
#[tokio::test]
async fn the_rest_gateway_admits_a_machine_token_by_scope_and_refuses_it_without() {
    let rules = r#"{"GET /me": ["scope:api:read", "user"], "GET /sessions": ["user"]}"#;
    let api = LocalApi::spawn(memory(), &[("AUTHORIZER_RULES", rules)], |_| {}).await;
    let http = Client::new();
    let token = api.machine_token(&http, "api:read").await;
    let me = http
        .get(api.at("/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(
        me.headers()["content-type"],
        "application/problem+json",
        "past the gateway: auth-api's own answer"
    );
    let (status, body) = get(&http, &api, "/sessions", Some(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "User is not authorized to access this resource with an explicit deny"
    );
    let without = api.machine_token(&http, "api:write").await;
    let (status, _) = get(&http, &api, "/me", Some(&without)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn one_cached_decision_serves_two_protected_routes_correctly() {
    // /verify protected too, so two protected routes share one cached answer per token.
    let protect_verify = |spec: &mut local_api::template::GatewaySpec| {
        for route in &mut spec.routes {
            if route.path == "/verify" {
                route.protected = true;
            }
        }
    };
    let api = LocalApi::spawn(memory(), &[("AUTHORIZER_RULES", RULES)], protect_verify).await;
    let http = Client::new();
    let (user_id, user_token) = sign_up(&http, &api, "ada@example.com").await;

    let (status, claims) = get(&http, &api, "/verify", Some(&user_token)).await;
    assert_eq!(status, 200);
    assert_eq!(claims["sub"], user_id);
    assert_eq!(api.gateway.authorizer_calls(), 1);
    // The answer cached for /verify also refuses /me for this token, without a new call.
    assert_eq!(get(&http, &api, "/me", Some(&user_token)).await.0, 403);
    assert_eq!(get(&http, &api, "/verify", Some(&user_token)).await.0, 200);
    assert_eq!(api.gateway.authorizer_calls(), 1);

    // An admin's token (issued by the same key, in the same session) is allowed on both,
    // also from one call.
    let mut admin = subject(&["user", "admin"]);
    admin.user_id = user_id.parse().unwrap();
    admin.email = "ada@example.com".into();
    admin.session_id = Some(claims["sid"].as_str().unwrap().parse().unwrap());
    let admin_token = api.config.issuer().issue(&admin, now_unix()).unwrap().token;
    let admin_token = admin_token.expose_secret();
    assert_eq!(get(&http, &api, "/me", Some(admin_token)).await.0, 200);
    assert_eq!(get(&http, &api, "/verify", Some(admin_token)).await.0, 200);
    assert_eq!(api.gateway.authorizer_calls(), 2);
}

#[tokio::test]
async fn a_zero_ttl_turns_the_cache_off() {
    let api = LocalApi::spawn(memory(), &[], |spec| spec.authorizer_ttl = 0).await;
    let http = Client::new();
    let (_, token) = sign_up(&http, &api, "ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(get(&http, &api, "/me", Some(&token)).await.0, 200);
    }
    assert_eq!(api.gateway.authorizer_calls(), 3);
}

#[tokio::test]
async fn binary_bodies_reach_auth_api_base64_encoded() {
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let response = Client::new()
        .post(api.at("/register"))
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe, b'{', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("UTF-8"),
        "{problem}"
    );
}

#[tokio::test]
async fn the_same_flow_works_against_dynamodb() {
    let api = LocalApi::spawn(fresh_store(&endpoint()).await, &[], |_| {}).await;
    let http = Client::new();
    let (user_id, token) = sign_up(&http, &api, "ada@example.com").await;
    let (status, profile) = get(&http, &api, "/me", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(profile["user_id"], user_id);
    assert_eq!(get(&http, &api, "/me", None).await.0, 401);
}

/// Sends `raw` as the whole HTTP/1.1 request and returns the response's status line and body.
async fn raw_request(api: &LocalApi<impl Store + 'static>, raw: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = api.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_request_lambda_http_cannot_convert_gets_a_400_problem_over_local_api() {
    // lambda_http panics converting a Host header that is not a URL authority; Lambda's entry
    // answers such an event with a 400 problem, and local-api goes through the same entry.
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let body = r#"{"email":"ada@example.com","password":"correct horse battery staple"}"#;
    let raw = format!(
        "POST /login HTTP/1.1\r\nHost: exa mple.com\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = raw_request(&api, &raw).await;
    assert!(status.starts_with("HTTP/1.1 400"), "{status}: {body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 400);
    // The server is still up and answering.
    let http = Client::new();
    assert_eq!(get(&http, &api, "/health", None).await.0, 200);
    api.stop().await;
}

#[tokio::test]
async fn verify_forget_and_reset_over_local_api_from_its_outbox() {
    let clock = shared::ManualClock::starting_now();
    let api = LocalApi::spawn_with_clock(
        memory(),
        &[("MAIL_RESPONSE_FLOOR_MS", "0")],
        |_| {},
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let http = Client::new();
    let post = |path: &str, body: Value| {
        let request = http.post(api.at(path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let outbox = || async {
        let (status, mails) = get(&http, &api, "/_local/outbox", None).await;
        assert_eq!(status, 200);
        mails.as_array().unwrap().clone()
    };
    let credentials = |password: &str| json!({"email": "ada@example.com", "password": password});
    assert_eq!(post("/register", credentials(STRONG_PASSWORD)).await.0, 201);
    let session = post("/login", credentials(STRONG_PASSWORD)).await.1;
    let mails = outbox().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["to"], "ada@example.com");
    for field in ["subject", "text", "html", "sent_at"] {
        assert!(mails[0][field].is_string(), "{field}: {}", mails[0]);
    }
    let token = integration_tests::app::link_token(mails[0]["text"].as_str().unwrap());
    let verified = post("/email/verify", json!({"token": token})).await;
    assert_eq!(
        verified,
        (
            200,
            json!({"email": "ada@example.com", "email_verified": true})
        )
    );

    clock.advance_ms(61_000);
    assert_eq!(
        post("/password/forgot", json!({"email": "ada@example.com"}))
            .await
            .0,
        202
    );
    let mails = outbox().await;
    assert_eq!(mails.len(), 2, "newest last");
    let token = integration_tests::app::link_token(mails[1]["text"].as_str().unwrap());
    let new_password = "lantern quartz meadow ninety blossoms";
    let reset = post(
        "/password/reset",
        json!({"token": token, "new_password": new_password}),
    )
    .await;
    assert_eq!(reset.0, 204, "{reset:?}");
    let refresh = post(
        "/refresh",
        json!({"refresh_token": session["refresh_token"]}),
    )
    .await;
    assert_eq!(refresh.0, 401, "the old session ended");
    assert_eq!(post("/login", credentials(STRONG_PASSWORD)).await.0, 401);
    assert_eq!(post("/login", credentials(new_password)).await.0, 200);
    // Not a route of the deployed API: the template does not have it.
    let spec = template::parse(TEMPLATE).unwrap();
    assert!(spec.routes.iter().all(|r| r.path != "/_local/outbox"));
    api.stop().await;
}

const PAGE: &str = "http://127.0.0.1:3001";

/// An OPTIONS preflight from `origin` for `route`, as a browser sends it.
async fn preflight(
    http: &Client,
    api: &LocalApi<impl Store + 'static>,
    route: Route,
    origin: &str,
) -> reqwest::Response {
    http.request(
        reqwest::Method::OPTIONS,
        api.at(&route
            .path()
            .replace("{id}", &uuid::Uuid::new_v4().to_string())),
    )
    .header("origin", origin)
    .header("access-control-request-method", route.method())
    .header(
        "access-control-request-headers",
        "authorization,content-type,x-requested-with",
    )
    .send()
    .await
    .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn preflights_for_every_route_admit_a_listed_origin_without_the_authorizer() {
    let api = LocalApi::spawn(
        memory(),
        &[
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com, http://127.0.0.1:3001",
            ),
            ("REFRESH_TOKEN_TRANSPORT", "cookie"),
        ],
        |_| {},
    )
    .await;
    let http = Client::new();
    for route in Route::ALL {
        let answer = preflight(&http, &api, route, PAGE).await;
        let path = route.path();
        assert_eq!(answer.status(), 204, "{path}");
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(PAGE),
            "{path}"
        );
        assert_eq!(
            header(&answer, "access-control-allow-credentials"),
            Some("true")
        );
        let methods = header(&answer, "access-control-allow-methods").unwrap();
        assert!(
            methods.split(", ").any(|m| m == route.method()),
            "{path}: {methods}"
        );
        let allowed = header(&answer, "access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for wanted in ["authorization", "content-type", "x-requested-with"] {
            assert!(allowed.contains(wanted), "{path}: {allowed}");
        }
        assert_eq!(header(&answer, "vary"), Some("Origin"));
        assert_eq!(header(&answer, "access-control-max-age"), Some("7200"));
    }
    assert_eq!(
        api.gateway.authorizer_calls(),
        0,
        "no preflight reached the authorizer"
    );
}

#[tokio::test]
async fn actual_answers_carry_cors_for_listed_origins_and_nothing_for_others() {
    let api = LocalApi::spawn(
        memory(),
        &[
            ("CORS_ALLOWED_ORIGINS", PAGE),
            ("REFRESH_TOKEN_TRANSPORT", "both"),
        ],
        |_| {},
    )
    .await;
    let http = Client::new();
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let (_, access) = sign_up(&http, &api, "ada@example.com").await;
    // Successes and problems alike, public and protected, from auth-api.
    let listed = [
        http.post(api.at("/login")).json(&credentials),
        http.post(api.at("/login"))
            .json(&json!({"email": "ada@example.com"})),
        http.get(api.at("/me")).bearer_auth(&access),
        http.get(api.at("/health")),
        http.post(api.at("/register")).body("not json"),
    ];
    for request in listed {
        let answer = request.header("origin", PAGE).send().await.unwrap();
        let status = answer.status();
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(PAGE),
            "{status}"
        );
        assert_eq!(
            header(&answer, "access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(header(&answer, "vary"), Some("Origin"));
        let exposed = header(&answer, "access-control-expose-headers").unwrap();
        assert!(exposed.contains("Retry-After"), "{exposed}");
    }
    for origin in [
        "https://evil.example",
        "http://127.0.0.1:3002",
        "null",
        "http://127.0.0.1:3001.evil.example",
    ] {
        let refused = preflight(&http, &api, Route::Login, origin).await;
        assert_eq!(refused.status(), 403, "{origin}");
        assert_eq!(
            header(&refused, "content-type"),
            Some("application/problem+json")
        );
        let login = http
            .post(api.at("/login"))
            .header("origin", origin)
            .json(&credentials)
            .send()
            .await
            .unwrap();
        for response in [&refused, &login] {
            for name in [
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-expose-headers",
                "access-control-allow-methods",
            ] {
                assert_eq!(header(response, name), None, "{origin}: {name}");
            }
            assert_eq!(header(response, "vary"), Some("Origin"));
        }
    }
}

#[tokio::test]
async fn the_gateway_s_own_answers_carry_cors_headers_as_the_template_deploys_them() {
    let http = Client::new();
    let on = LocalApi::spawn(memory(), &[("CORS_ALLOWED_ORIGINS", PAGE)], |_| {}).await;
    let off = LocalApi::spawn(memory(), &[], |_| {}).await;
    for (api, cors) in [(&on, true), (&off, false)] {
        let answers = [
            // The authorizer's 401: no token, then a bad one.
            http.get(api.at("/me")),
            http.get(api.at("/me")).bearer_auth("not.a.token"),
            // An unknown route: MISSING_AUTHENTICATION_TOKEN.
            http.get(api.at("/nope")),
        ];
        for request in answers {
            let answer = request.header("origin", PAGE).send().await.unwrap();
            assert!(answer.status() == 401 || answer.status() == 403);
            let expected = cors.then_some(PAGE);
            assert_eq!(header(&answer, "access-control-allow-origin"), expected);
            assert_eq!(header(&answer, "vary"), cors.then_some("Origin"));
        }
    }
    // With rules, a Deny is the gateway's ACCESS_DENIED 403: CORS headers too.
    let ruled = LocalApi::spawn(
        memory(),
        &[("CORS_ALLOWED_ORIGINS", PAGE), ("AUTHORIZER_RULES", RULES)],
        |_| {},
    )
    .await;
    let (_, access) = sign_up(&http, &ruled, "ada@example.com").await;
    let denied = http
        .get(ruled.at("/me"))
        .bearer_auth(&access)
        .header("origin", PAGE)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(
        header(&denied, "x-amzn-errortype"),
        Some("AccessDeniedException")
    );
    assert_eq!(header(&denied, "access-control-allow-origin"), Some(PAGE));
}

#[tokio::test]
async fn sessions_are_listed_and_ended_over_http_through_the_authorizer() {
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let http = Client::new();
    let (_, first_access) = sign_up(&http, &api, "ada@example.com").await;
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let second: Value = http
        .post(api.at("/login"))
        .header("user-agent", "second-device/1.0")
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, listed) = get(&http, &api, "/sessions", Some(&first_access)).await;
    assert_eq!(status, 200, "{listed}");
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    // The authorizer passed the token's sid on: the first login's session is current.
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(sessions[0]["user_agent"], "second-device/1.0");
    assert_eq!(sessions[0]["source_ip"], "127.0.0.1");
    let other_id = sessions[0]["id"].as_str().unwrap();

    let ended = http
        .delete(api.at(&format!("/sessions/{other_id}")))
        .bearer_auth(&first_access)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    let refused = http
        .post(api.at("/refresh"))
        .json(&json!({"refresh_token": second["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Without a token, the gateway refuses the path-parameter route itself.
    let anonymous = http
        .delete(api.at(&format!("/sessions/{other_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let (_, listed) = get(&http, &api, "/sessions", Some(&first_access)).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
}

/// The outbox holds every reset link: it answers only under the address local-api listens
/// on or `localhost`, never under a name a web page rebound to 127.0.0.1 (DNS rebinding).
#[tokio::test]
async fn the_outbox_answers_only_its_own_host_names() {
    let api = LocalApi::spawn(memory(), &[], |_| {}).await;
    let http = Client::new();
    let port = api.url.rsplit(':').next().unwrap().to_owned();
    for (host, status) in [
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("evil.example:{port}"), 421),
        (format!("localhost.evil.example:{port}"), 421),
        (format!("127.0.0.1.nip.io:{port}"), 421),
    ] {
        let answer = http
            .get(api.at("/_local/outbox"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), status, "{host}");
        let text = answer.text().await.unwrap();
        if status == 421 {
            assert!(!text.contains('['), "{text}");
        }
    }
}

/// The example page: refused under a foreign name, and its `config.js` is valid script that
/// names the API under the host the browser used, whatever that header holds.
#[tokio::test]
async fn the_example_page_answers_only_its_own_host_names_and_escapes_config_js() {
    use http::Method;
    use local_api::hosts::LocalHosts;
    use local_api::web::WebRoot;
    let root = WebRoot {
        dir: std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/web")),
        api_port: 3000,
        hosts: LocalHosts::new("127.0.0.1"),
        spa: Some(local_api::web::Spa {
            dir: std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/spa")),
            authority: "http://127.0.0.1:3000".into(),
            client_id: "dev-app</script>".into(),
        }),
    };
    let status = |host: &'static str, path: &'static str| {
        let root = &root;
        async move {
            root.answer(&Method::GET, path, Some(host))
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("127.0.0.1:3001", "/").await, 200);
    assert_eq!(status("localhost:3001", "/config.js").await, 200);
    assert_eq!(status("evil.example:3001", "/").await, 421);
    assert_eq!(status("evil.example:3001", "/config.js").await, 421);
    assert_eq!(status("localhost\";alert(1);\"", "/config.js").await, 421);
    let body = root
        .answer(&Method::GET, "/config.js", Some("localhost:3001"))
        .await
        .into_body();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    let script = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        script.contains(r#"window.AUTH_API_URL = "http://localhost:3000";"#),
        "{script}"
    );
    // The single-page app under /spa/: its files, and a config.js naming the provider and
    // the development app, escaped.
    assert_eq!(status("localhost:3001", "/spa/").await, 200);
    assert_eq!(status("localhost:3001", "/spa/callback.html").await, 200);
    assert_eq!(
        status("localhost:3001", "/spa/vendor/oidc-client-ts.min.js").await,
        200
    );
    assert_eq!(status("localhost:3001", "/spa/../Cargo.toml").await, 404);
    assert_eq!(status("evil.example:3001", "/spa/").await, 421);
    let body = root
        .answer(&Method::GET, "/spa/config.js", Some("localhost:3001"))
        .await
        .into_body();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    let script = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        script.contains(r#"window.AUTH_AUTHORITY = "http://127.0.0.1:3000";"#)
            && script.contains(r#"window.AUTH_CLIENT_ID = "dev-app\u003c/script>";"#),
        "{script}"
    );
}

/// `GET /_local/events` lists what a deployment would deliver, oldest first: the account's
/// creation and its sign-in, from the address local-api saw, with no secret in them; on
/// DynamoDB Local as in memory.
#[tokio::test]
async fn local_api_lists_the_events_its_changes_emitted() {
    let in_memory = LocalApi::spawn(memory(), &[], |_| {}).await;
    events_of_a_sign_up(&in_memory).await;
    in_memory.stop().await;
    // local-api's own key: its scan of the events is no call of a deployed function.
    let on_dynamodb = LocalApi::spawn(
        integration_tests::dynamo::fresh_store_as(
            &integration_tests::dynamo::endpoint(),
            "localapi",
        )
        .await,
        &[],
        |_| {},
    )
    .await;
    events_of_a_sign_up(&on_dynamodb).await;
    on_dynamodb.stop().await;
}

async fn events_of_a_sign_up(api: &LocalApi<impl Store + 'static>) {
    let http = Client::new();
    let (user_id, access) = sign_up(&http, api, "ada@example.com").await;
    let (status, events) = get(&http, api, "/_local/events", None).await;
    assert_eq!(status, 200);
    let events = events.as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["user.created", "session.created"], "{events:?}");
    for event in events {
        assert_eq!(event["user_id"], user_id.as_str());
        assert_eq!(event["source_ip"], "127.0.0.1", "{event}");
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    }
    assert_eq!(events[0]["data"], json!({"email": "ada@example.com"}));
    assert_eq!(events[1]["data"]["amr"], json!(["pwd"]));
    let text = serde_json::to_string(events).unwrap();
    assert!(!text.contains(STRONG_PASSWORD) && !text.contains(&access));
}

/// A `customize-access-token` hook configured by its variables alone: its claims are in the
/// token local-api's auth-api signs, and reach what a backend behind the gateway gets from
/// the authorizer (its request context), by their names; protected routes go on working.
#[tokio::test]
async fn a_hook_s_claims_reach_the_authorizer_context_over_local_api() {
    use integration_tests::http_peer::{read_request, respond, standard_webhooks_signed};
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/claims", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some((headers, body)) = read_request(&mut socket).await else {
                    return;
                };
                if !standard_webhooks_signed(SECRET, &headers, &body) {
                    respond(&mut socket, "401 Unauthorized", "{}").await;
                    return;
                }
                let answer = json!({"claims": {"tenant": "acme", "seats": 5, "beta": true}});
                respond(&mut socket, "200 OK", &answer.to_string()).await;
            });
        }
    });
    let api = LocalApi::spawn(
        memory(),
        &[
            ("HOOK_CUSTOMIZE_ACCESS_TOKEN", hook.as_str()),
            ("HOOK_SECRET", SECRET),
        ],
        |_| {},
    )
    .await;
    let http = Client::new();
    let (user_id, token) = sign_up(&http, &api, "ada@example.com").await;
    let context = api
        .gateway
        .authorizer_context(&format!("Bearer {token}"), "GET", "/me")
        .await
        .expect("the authorizer allows the token");
    assert_eq!(context["tenant"], "acme", "{context}");
    assert_eq!(context["seats"], 5, "{context}");
    assert_eq!(context["beta"], true, "{context}");
    assert_eq!(context["principalId"], user_id.as_str());
    assert_eq!(context["sub"], user_id.as_str());
    let (status, me) = get(&http, &api, "/me", Some(&token)).await;
    assert_eq!(status, 200, "{me}");
    assert!(
        api.gateway
            .authorizer_context("Bearer not-a-token", "GET", "/me")
            .await
            .is_none()
    );
    api.stop().await;
}
