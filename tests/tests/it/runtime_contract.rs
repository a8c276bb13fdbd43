//! The real release binaries (`cargo lambda build --release`, run by scripts/test) under a
//! Lambda Runtime API emulator: they answer fixture events, and a misconfigured binary reports
//! an init error through the Runtime API instead of dying silently.

use std::time::Duration;

use integration_tests::app::{STRONG_PASSWORD, TEST_PEM, post, settings};
use integration_tests::authorizer_events::{AuthKind, event as auth_event, subject};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use integration_tests::runtime_api::{Report, RuntimeApi, spawn};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::token::now_unix;
use shared::{KeySet, SigningKey, TokenIssuer};

fn key() -> SigningKey {
    SigningKey::ed25519_from_pem(TEST_PEM, None).unwrap()
}

fn jwks() -> String {
    let mut set = KeySet::default();
    set.insert(key().verification_key()).unwrap();
    serde_json::to_string(&set.to_jwks()).unwrap()
}

fn token_env() -> Vec<(&'static str, String)> {
    let s = settings();
    vec![
        ("JWT_ISSUER", s.issuer),
        ("JWT_AUDIENCE", s.audience),
        ("JWT_PUBLIC_KEYS", jwks()),
    ]
}

fn response_body(report: Report) -> Value {
    match report {
        Report::Response { body, .. } => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn the_release_authorizer_allows_good_tokens_and_fails_bad_ones_with_exactly_unauthorized() {
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("authorizer", &api, &token_env());
    let issuer = TokenIssuer::new(key(), settings(), 900);
    let token = issuer.issue(&subject(&["user"]), now_unix()).unwrap().token;
    let good = auth_event(
        AuthKind::Token,
        "GET",
        "/items",
        Some(&format!("Bearer {}", token.expose_secret())),
    );
    let body = response_body(api.invoke(good).await);
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(body["context"]["email"], "ada@example.com");

    let bad = auth_event(AuthKind::V2, "GET", "/items", Some("Bearer not.a.token"));
    match api.invoke(bad).await {
        Report::Error { body, .. } => {
            assert_eq!(body["errorMessage"], "Unauthorized");
            assert_eq!(body["errorType"], "Unauthorized");
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
    // Still serving after a refusal.
    let simple = auth_event(
        AuthKind::V2,
        "GET",
        "/items",
        Some(&format!("Bearer {}", token.expose_secret())),
    );
    assert_eq!(
        response_body(api.invoke(simple).await)["isAuthorized"],
        true
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_release_auth_api_answers_api_gateway_events_against_dynamodb() {
    let store = fresh_store(&endpoint()).await;
    let mut api = RuntimeApi::start().await;
    let mut env = auth_api_env(store.table());
    env.push(("JWT_SIGNING_KEY", TEST_PEM.to_owned()));
    let mut child = spawn("auth-api", &api, &env);

    let health = response_body(
        api.invoke(event_json(Event::get(Kind::RestV1, "/health")))
            .await,
    );
    assert_eq!(health["statusCode"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(health["body"].as_str().unwrap()).unwrap(),
        json!({"status": "ok"})
    );

    let session = sign_in(&mut api, Kind::HttpV2, Kind::FunctionUrl).await;
    let token = session["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid;
    assert_eq!(kid.as_deref(), Some(key().kid()));

    // A session's refresh runs DynamoDB transactions in the release binary.
    let refresh = |token: &Value| {
        event_json(Event::post_json(
            Kind::RestV1,
            "/refresh",
            &json!({"refresh_token": token}),
        ))
    };
    let refreshed = response_body(api.invoke(refresh(&session["refresh_token"])).await);
    assert_eq!(refreshed["statusCode"], 200, "{refreshed}");
    let logout = Event::post_json(
        Kind::HttpV2,
        "/logout",
        &json!({"refresh_token": session["refresh_token"]}),
    );
    let logged_out = response_body(api.invoke(event_json(logout)).await);
    assert_eq!(logged_out["statusCode"], 204, "{logged_out}");
    let successor: Value = serde_json::from_str(refreshed["body"].as_str().unwrap()).unwrap();
    let after = response_body(api.invoke(refresh(&successor["refresh_token"])).await);
    assert_eq!(
        after["statusCode"], 401,
        "logout ended the session: {after}"
    );
    child.kill().await.unwrap();
}

/// The release session-authorizer and a machine client's token: allowed while its client is
/// enabled, `Unauthorized` once it is disabled (the client read with the binary's own
/// permissions, which scripts/test checks against the template's policy).
#[tokio::test]
async fn the_release_session_authorizer_refuses_tokens_of_a_disabled_client() {
    use accounts::store::ClientStore;
    let store = fresh_store(&endpoint()).await;
    let (client, _) = accounts::model::registry::ClientRecord::create(
        accounts::model::registry::ClientSpec {
            name: Some("billing".into()),
            ..Default::default()
        },
        "tests",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    store.create_client(&client).await.unwrap();
    let token = shared::TokenIssuer::new(key(), integration_tests::app::settings(), 900)
        .issue_for_client(
            client.client_id.as_str(),
            "orders:read",
            900,
            shared::token::now_unix(),
        )
        .unwrap()
        .token;
    let bearer = format!("Bearer {}", secrecy::ExposeSecret::expose_secret(&token));
    let mut env = token_env();
    env.extend([
        ("AUTHORIZER_CHECK_SESSION", "true".to_owned()),
        ("AUTHORIZER_SESSION_CACHE_SECONDS", "0".to_owned()),
        ("USERS_TABLE", store.table().to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
    ]);
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("session-authorizer", &api, &env);
    let allowed = response_body(
        api.invoke(auth_event(AuthKind::Token, "GET", "/items", Some(&bearer)))
            .await,
    );
    assert_eq!(
        allowed["policyDocument"]["Statement"][0]["Effect"], "Allow",
        "{allowed}"
    );
    assert_eq!(allowed["context"]["principal"], "client");
    assert_eq!(allowed["context"]["scope"], "orders:read");
    let disabled = client.with_disabled(true, "tests", shared::token::now_unix_ms());
    store.save_client(&disabled).await.unwrap();
    match api
        .invoke(auth_event(AuthKind::Token, "GET", "/items", Some(&bearer)))
        .await
    {
        Report::Error { body, .. } => assert_eq!(body["errorMessage"], "Unauthorized"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    child.kill().await.unwrap();
}

/// The release session-authorizer against DynamoDB Local: a live session's token is allowed;
/// once the session ends it fails with exactly `Unauthorized`; with DynamoDB unreachable it
/// refuses within the bound with an error that is not `Unauthorized` (API Gateway's
/// uncached `AUTHORIZER_CONFIGURATION_ERROR`), naming no internals.
#[tokio::test]
async fn the_release_session_authorizer_refuses_ended_sessions_and_fails_closed() {
    let store = fresh_store(&endpoint()).await;
    let app = integration_tests::app::test_app(store.clone());
    let ada = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    assert_eq!(post(&app, "/register", ada.clone(), None).await.status, 201);
    let session = post(&app, "/login", ada, None).await.json();
    // The same session, in a token signed with the key the binary is given.
    let access = session["access_token"].as_str().unwrap();
    let claims = app.verifier.verify(access).unwrap();
    let token = integration_tests::app::same_session_token(&app, access, key());
    let bearer = format!("Bearer {token}");
    let mut env = token_env();
    env.extend([
        ("AUTHORIZER_CHECK_SESSION", "true".to_owned()),
        ("AUTHORIZER_SESSION_CACHE_SECONDS", "0".to_owned()),
        ("USERS_TABLE", store.table().to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
    ]);

    let mut api = RuntimeApi::start().await;
    let mut child = spawn("session-authorizer", &api, &env);
    let allowed = response_body(
        api.invoke(auth_event(AuthKind::Token, "GET", "/items", Some(&bearer)))
            .await,
    );
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(allowed["context"]["sid"], claims.sid.clone().unwrap());

    let logout = json!({"refresh_token": session["refresh_token"]});
    assert_eq!(post(&app, "/logout", logout, None).await.status, 204);
    for kind in [AuthKind::Token, AuthKind::Request, AuthKind::V2] {
        match api
            .invoke(auth_event(kind, "GET", "/items", Some(&bearer)))
            .await
        {
            Report::Error { body, .. } => assert_eq!(body["errorMessage"], "Unauthorized"),
            other => panic!("{kind:?}: expected Unauthorized, got {other:?}"),
        }
    }
    child.kill().await.unwrap();

    // DynamoDB unreachable: a port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_DYNAMODB");
    env.push(("AWS_ENDPOINT_URL_DYNAMODB", format!("http://{closed}")));
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("session-authorizer", &api, &env);
    let started = std::time::Instant::now();
    match api
        .invoke(auth_event(AuthKind::Token, "GET", "/items", Some(&bearer)))
        .await
    {
        Report::Error { body, .. } => {
            assert_eq!(body["errorMessage"], "Service Unavailable");
            assert_eq!(body["errorType"], "SessionCheckUnavailable");
        }
        other => panic!("expected a failed invocation, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    child.kill().await.unwrap();
}

fn ssm_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SSM").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL_SSM is not set: run `scripts/test`, which starts an SSM server (moto)"
        )
    })
}

fn auth_api_env(table: &str) -> Vec<(&'static str, String)> {
    let mut env = token_env();
    env.extend([
        ("USERS_TABLE", table.to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("BCRYPT_ALLOW_LOW_COST", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        ("AWS_ENDPOINT_URL_SSM", ssm_endpoint()),
    ]);
    env
}

#[tokio::test]
async fn the_release_auth_api_reads_its_signing_key_from_an_ssm_secure_string() {
    let sdk = accounts::aws::from_env(&shared::config::ProcessEnv).unwrap();
    // moto loads its SSM backend on the first request, which can take seconds on a cold
    // machine: the test's own client waits longer than the Lambda's 2.5 s bound. This first
    // call also warms moto up for the binary's GetParameter.
    let patient = aws_sdk_ssm::config::timeout::TimeoutConfig::builder()
        .operation_timeout(Duration::from_secs(60))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .endpoint_url(ssm_endpoint())
            .timeout_config(patient)
            .build(),
    );
    let name = format!("/test/signing-key-{}", uuid::Uuid::new_v4().simple());
    ssm.put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(TEST_PEM)
        .overwrite(true)
        .send()
        .await
        .expect("put the parameter");

    let store = fresh_store(&endpoint()).await;
    let mut env = auth_api_env(store.table());
    env.push(("JWT_SIGNING_KEY_PARAMETER", name));
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("auth-api", &api, &env);
    let token = sign_up(&mut api, Kind::RestV1, Kind::RestV1).await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
    assert_eq!(
        kid.as_deref(),
        Some(key().kid()),
        "signed with the key from SSM"
    );
    child.kill().await.unwrap();

    // A parameter that does not exist is an init error that names the variable.
    let mut env = auth_api_env(store.table());
    env.push((
        "JWT_SIGNING_KEY_PARAMETER",
        "/test/no-such-parameter".to_owned(),
    ));
    let mut api = RuntimeApi::start().await;
    let mut child = spawn("auth-api", &api, &env);
    match api.next_report().await {
        Report::InitError { body, .. } => {
            let message = body["errorMessage"].as_str().unwrap();
            assert!(message.contains("JWT_SIGNING_KEY_PARAMETER"), "{message}");
            assert!(message.contains("/test/no-such-parameter"), "{message}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    let _ = child.wait().await;
}

/// Registers and logs in through the binary (register and login sent as `register_kind`
/// and `login_kind` events); returns the access token.
async fn sign_up(api: &mut RuntimeApi, register_kind: Kind, login_kind: Kind) -> String {
    sign_in(api, register_kind, login_kind).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Like [`sign_up`], but returns the whole login answer (access and refresh token).
async fn sign_in(api: &mut RuntimeApi, register_kind: Kind, login_kind: Kind) -> Value {
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let register = Event::post_json(register_kind, "/register", &credentials);
    let registered = response_body(api.invoke(event_json(register)).await);
    assert_eq!(registered["statusCode"], 201, "{registered}");
    let login = Event::post_json(login_kind, "/login", &credentials);
    let login = response_body(api.invoke(event_json(login)).await);
    assert_eq!(login["statusCode"], 200, "{login}");
    serde_json::from_str(login["body"].as_str().unwrap()).unwrap()
}

/// The Lambda payload of an event built from the fixtures.
fn event_json(event: Event) -> Value {
    event.to_json()
}

#[tokio::test]
async fn misconfigured_binaries_report_an_init_error_naming_the_variable() {
    let cases = [
        ("authorizer", "JWT_ISSUER"),
        ("session-authorizer", "AUTHORIZER_CHECK_SESSION"),
        ("session-authorizer", "USERS_TABLE"),
        ("auth-api", "USERS_TABLE"),
        ("auth-api", "AWS_ACCESS_KEY_ID"),
        ("events", "WEBHOOK_SECRET"),
    ];
    for (function, missing) in cases {
        let mut api = RuntimeApi::start().await;
        let mut env = token_env();
        env.push(("USERS_TABLE", "users".to_owned()));
        env.push(("AUTHORIZER_CHECK_SESSION", "true".to_owned()));
        env.push(("WEBHOOK_URLS", "https://hooks.example.com/auth".to_owned()));
        if function == "authorizer" {
            // The stateless binary refuses to start when asked to check sessions, so that
            // is this case's only missing piece.
            env.retain(|(k, _)| *k != "AUTHORIZER_CHECK_SESSION");
        }
        env.retain(|(k, _)| *k != missing);
        // Blank is unset, for the variables spawn() gives every function.
        env.push((missing, String::new()));
        let mut child = spawn(function, &api, &env);
        match api.next_report().await {
            Report::InitError {
                error_type_header,
                body,
            } => {
                assert_eq!(error_type_header.as_deref(), Some("Runtime.InitError"));
                let message = body["errorMessage"].as_str().unwrap();
                assert!(message.contains(missing), "{function}: {message}");
            }
            other => panic!("{function}: expected an init error, got {other:?}"),
        }
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("the binary exits after its init error")
            .unwrap();
        assert!(!status.success(), "{function} must exit non-zero");
    }

    // Asked to check sessions, the stateless binary refuses to start rather than not check.
    let mut api = RuntimeApi::start().await;
    let mut env = token_env();
    env.push(("AUTHORIZER_CHECK_SESSION", "true".to_owned()));
    let _child = spawn("authorizer", &api, &env);
    match api.next_report().await {
        Report::InitError { body, .. } => {
            let message = body["errorMessage"].as_str().unwrap();
            assert!(message.contains("AUTHORIZER_CHECK_SESSION"), "{message}");
            assert!(message.contains("session-authorizer"), "{message}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
}

/// Everything `child` writes to stdout and stderr (Lambda sends both to CloudWatch), read as
/// it comes (a full pipe would stall the function); the text once the child is stopped.
struct Output {
    child: tokio::process::Child,
    readers: Vec<tokio::task::JoinHandle<Vec<u8>>>,
}

impl Output {
    fn capture(mut child: tokio::process::Child) -> Self {
        use tokio::io::AsyncReadExt;
        fn drain(
            mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        ) -> tokio::task::JoinHandle<Vec<u8>> {
            tokio::spawn(async move {
                let mut out = Vec::new();
                let _ = pipe.read_to_end(&mut out).await;
                out
            })
        }
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Self {
            child,
            readers: vec![stdout, stderr],
        }
    }

    async fn stop(mut self) -> String {
        self.child.kill().await.unwrap();
        let mut text = String::new();
        for reader in self.readers {
            text.push_str(&String::from_utf8_lossy(&reader.await.unwrap()));
            text.push('\n');
        }
        text
    }
}

/// Asserts that none of `secrets` occurs in `log`, naming the first offending line.
fn assert_no_secret(function: &str, log: &str, secrets: &[(&str, String)]) {
    // Piped output is not a terminal: plain text, no colour codes for a log store to keep.
    if let Some(line) = log.lines().find(|l| l.contains('\u{1b}')) {
        panic!("{function}: ANSI escapes in piped output: {line:?}");
    }
    for (what, secret) in secrets {
        if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
            panic!(
                "{function}: {what} reached the log at TRACE: {}",
                &line[..line.len().min(400)]
            );
        }
    }
}

/// An MFA encryption key, 32 bytes of base64, for the release auth-api.
const MFA_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

#[tokio::test]
async fn at_trace_no_secret_reaches_stdout_or_stderr_of_the_release_binaries() {
    const NEW_PASSWORD: &str = "purple elephant juggling seventeen oranges";
    const WRONG_PASSWORD: &str = "wrong horse battery staple";
    let store = fresh_store(&endpoint()).await;
    let mut api = RuntimeApi::start().await;
    let mut env = auth_api_env(store.table());
    env.push(("JWT_SIGNING_KEY", TEST_PEM.to_owned()));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()));
    // RUST_LOG directives cannot lift the cap either.
    env.push(("RUST_LOG", "trace,lambda_runtime=trace".to_owned()));
    // Both transports: the refresh token also travels in Cookie and Set-Cookie headers.
    env.push(("REFRESH_TOKEN_TRANSPORT", "both".to_owned()));
    env.push(("CORS_ALLOWED_ORIGINS", "https://app.example.com".to_owned()));
    env.push(("MFA_ENCRYPTION_KEY", MFA_KEY.to_owned()));
    let output = Output::capture(spawn("auth-api", &api, &env));

    let mut call =
        async |event: Event| -> Value { response_body(api.invoke(event_json(event)).await) };
    let ada = |password: &str| json!({"email": "ada@example.com", "password": password});
    let registered = call(Event::post_json(
        Kind::RestV1,
        "/register",
        &ada(STRONG_PASSWORD),
    ))
    .await;
    assert_eq!(registered["statusCode"], 201, "{registered}");
    let sub =
        serde_json::from_str::<Value>(registered["body"].as_str().unwrap()).unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let wrong = call(Event::post_json(
        Kind::HttpV2,
        "/login",
        &ada(WRONG_PASSWORD),
    ))
    .await;
    assert_eq!(wrong["statusCode"], 401, "{wrong}");
    let login = call(Event::post_json(
        Kind::FunctionUrl,
        "/login",
        &ada(STRONG_PASSWORD),
    ))
    .await;
    let session: Value = serde_json::from_str(login["body"].as_str().unwrap()).unwrap();
    let access = session["access_token"].as_str().unwrap().to_owned();
    let refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = call(Event::post_json(
        Kind::RestV1,
        "/refresh",
        &json!({"refresh_token": refresh}),
    ))
    .await;
    let rotated: Value = serde_json::from_str(refreshed["body"].as_str().unwrap()).unwrap();
    // The browser's way: the cookie, from a listed origin, then a refused cross-site try.
    let from_page = |kind: Kind, path: &str, token: &Value| {
        Event::new(kind, "POST", path)
            .no_body()
            .header(
                "Cookie",
                &format!("__Host-refresh_token={}", token.as_str().unwrap()),
            )
            .header("Origin", "https://app.example.com")
            .header("X-Requested-With", "fetch")
    };
    let by_cookie = call(from_page(
        Kind::HttpV2,
        "/refresh",
        &rotated["refresh_token"],
    ))
    .await;
    assert_eq!(by_cookie["statusCode"], 200, "{by_cookie}");
    let by_cookie: Value = serde_json::from_str(by_cookie["body"].as_str().unwrap()).unwrap();
    let cross_site = call(
        from_page(Kind::RestV1, "/logout", &by_cookie["refresh_token"])
            .header("Origin", "https://evil.example"),
    )
    .await;
    assert_eq!(cross_site["statusCode"], 403, "{cross_site}");
    let preflight = call(
        Event::new(Kind::RestV1, "OPTIONS", "/refresh")
            .no_body()
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", "POST"),
    )
    .await;
    assert_eq!(preflight["statusCode"], 204, "{preflight}");
    let verify = call(Event::get(Kind::HttpV2, "/verify").bearer(&access)).await;
    assert_eq!(verify["statusCode"], 200, "{verify}");
    let me = call(
        Event::get(Kind::RestV1, "/me")
            .bearer(&access)
            .authorized_as(&sub),
    )
    .await;
    assert_eq!(me["statusCode"], 200, "{me}");
    let change = json!({"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD});
    let changed = call(
        Event::post_json(Kind::RestV1, "/password", &change)
            .bearer(&access)
            .authorized_as(&sub),
    )
    .await;
    assert_eq!(changed["statusCode"], 200, "{changed}");
    let changed: Value = serde_json::from_str(changed["body"].as_str().unwrap()).unwrap();
    let logout = json!({"refresh_token": changed["refresh_token"]});
    assert_eq!(
        call(Event::post_json(Kind::HttpV2, "/logout", &logout)).await["statusCode"],
        204
    );
    let everywhere = Event::post_json(Kind::RestV1, "/logout-all", &json!({}))
        .bearer(&access)
        .authorized_as(&sub);
    assert_eq!(call(everywhere).await["statusCode"], 204);
    // Two-factor sign-in, for another user: the enrollment's secret, URI and QR code, the
    // recovery codes and the mfa_token are secrets too.
    let bob = json!({"email": "bob@example.com", "password": STRONG_PASSWORD});
    let registered = call(Event::post_json(Kind::RestV1, "/register", &bob)).await;
    let bob_id =
        serde_json::from_str::<Value>(registered["body"].as_str().unwrap()).unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let as_bob = |path: &str, body: &Value| {
        Event::post_json(Kind::RestV1, path, body).authorized(&bob_id, "bob@example.com")
    };
    let enrolled = call(as_bob(
        "/mfa/totp/enroll",
        &json!({"password": STRONG_PASSWORD}),
    ))
    .await;
    assert_eq!(enrolled["statusCode"], 200, "{enrolled}");
    let enrolled: Value = serde_json::from_str(enrolled["body"].as_str().unwrap()).unwrap();
    let totp = accounts::model::mfa::TotpSecret::from_base32(enrolled["secret"].as_str().unwrap())
        .unwrap();
    let code = totp.code_at(now_unix());
    let confirmed = call(as_bob("/mfa/totp/confirm", &json!({"code": code}))).await;
    assert_eq!(confirmed["statusCode"], 200, "{confirmed}");
    let confirmed: Value = serde_json::from_str(confirmed["body"].as_str().unwrap()).unwrap();
    let step = call(Event::post_json(Kind::HttpV2, "/login", &bob)).await;
    let step: Value = serde_json::from_str(step["body"].as_str().unwrap()).unwrap();
    let wrong_code = json!({"mfa_token": step["mfa_token"], "code": "000000"});
    let refused = call(Event::post_json(Kind::HttpV2, "/login/mfa", &wrong_code)).await;
    assert_eq!(refused["statusCode"], 401, "{refused}");
    let recovery = json!({"mfa_token": step["mfa_token"], "code": confirmed["recovery_codes"][0]});
    let second = call(Event::post_json(Kind::HttpV2, "/login/mfa", &recovery)).await;
    assert_eq!(second["statusCode"], 200, "{second}");
    let mut mfa_secrets = vec![
        (
            "a TOTP secret",
            enrolled["secret"].as_str().unwrap().to_owned(),
        ),
        (
            "an otpauth URI",
            enrolled["otpauth_uri"].as_str().unwrap().to_owned(),
        ),
        (
            "a QR code",
            enrolled["qr_code"].as_str().unwrap()[30..90].to_owned(),
        ),
        (
            "an mfa_token",
            step["mfa_token"].as_str().unwrap().to_owned(),
        ),
        ("the MFA key", MFA_KEY.to_owned()),
    ];
    for code in confirmed["recovery_codes"].as_array().unwrap() {
        mfa_secrets.push(("a recovery code", code.as_str().unwrap().to_owned()));
    }
    // A session that stays live, for the session-checking authorizer below.
    let last = call(Event::post_json(Kind::HttpV2, "/login", &ada(NEW_PASSWORD))).await;
    assert_eq!(last["statusCode"], 200, "{last}");
    let last: Value = serde_json::from_str(last["body"].as_str().unwrap()).unwrap();
    // A machine client: its secret (in a Basic header and in a form), a wrong secret and
    // its token.
    let (machine, machine_secret) = accounts::model::registry::ClientRecord::create(
        accounts::model::registry::ClientSpec {
            name: Some("billing".into()),
            scopes: Some(accounts::model::registry::parse_scopes("orders:read").unwrap()),
            ..Default::default()
        },
        "tests",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    accounts::store::ClientStore::create_client(&store, &machine)
        .await
        .unwrap();
    let machine_secret = machine_secret.unwrap().encode().expose_secret().to_owned();
    let form = "application/x-www-form-urlencoded";
    let form_type = form;
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{machine_secret}", machine.client_id),
    );
    let by_basic = call(
        Event::new(Kind::RestV1, "POST", "/oauth2/token")
            .body("grant_type=client_credentials")
            .header("content-type", form)
            .header("Authorization", &format!("Basic {basic}")),
    )
    .await;
    assert_eq!(by_basic["statusCode"], 200, "{by_basic}");
    let machine_token: Value = serde_json::from_str(by_basic["body"].as_str().unwrap()).unwrap();
    let by_post = call(
        Event::new(Kind::HttpV2, "POST", "/oauth2/token")
            .body(&format!(
                "grant_type=client_credentials&client_id={}&client_secret={machine_secret}",
                machine.client_id
            ))
            .header("content-type", form),
    )
    .await;
    assert_eq!(by_post["statusCode"], 200, "{by_post}");
    const WRONG_CLIENT_SECRET: &str = "a-wrong-client-secret-0123456789";
    let refused_client = call(
        Event::new(Kind::RestV1, "POST", "/oauth2/token")
            .body(&format!(
                "grant_type=client_credentials&client_id={}&client_secret={WRONG_CLIENT_SECRET}",
                machine.client_id
            ))
            .header("content-type", form),
    )
    .await;
    assert_eq!(refused_client["statusCode"], 401, "{refused_client}");
    mfa_secrets.extend([
        ("a client secret", machine_secret.clone()),
        ("a Basic credential", basic.clone()),
        ("a wrong client secret", WRONG_CLIENT_SECRET.to_owned()),
        (
            "a machine token",
            machine_token["access_token"].as_str().unwrap().to_owned(),
        ),
    ]);
    // A sign-in at an OpenID client through the hosted pages: the CSRF token, the SSO
    // cookie, the code, the PKCE verifier and the client's tokens are secrets too.
    use integration_tests::oidc::{Pkce, authorization, hidden_inputs, parse_query};
    let (app_client, _) = accounts::model::registry::ClientRecord::create(
        accounts::model::registry::ClientSpec {
            name: Some("Photo Book".into()),
            client_type: Some(accounts::model::registry::ClientType::Public),
            grant_types: Some(vec![
                accounts::model::registry::GrantType::AuthorizationCode,
                accounts::model::registry::GrantType::RefreshToken,
            ]),
            redirect_uris: Some(vec![integration_tests::oidc::REDIRECT.into()]),
            first_party: Some(true),
            ..Default::default()
        },
        "tests",
        shared::token::now_unix_ms(),
    )
    .unwrap();
    accounts::store::ClientStore::create_client(&store, &app_client)
        .await
        .unwrap();
    let pkce = Pkce::new();
    let request = authorization(
        app_client.client_id.as_str(),
        &pkce,
        "openid email offline_access",
    );
    let pairs: Vec<(&str, &str)> = request
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = call(Event::get(Kind::RestV1, "/oauth2/login").query(&pairs)).await;
    assert_eq!(page["statusCode"], 200, "{page}");
    let mut form = hidden_inputs(page["body"].as_str().unwrap());
    let csrf = form.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    form.push(("email".into(), "ada@example.com".into()));
    form.push(("password".into(), NEW_PASSWORD.into()));
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{k}={}", integration_tests::events::encode(v)))
        .collect();
    let signed_in = call(
        Event::new(Kind::RestV1, "POST", "/oauth2/login")
            .body(&body.join("&"))
            .header("content-type", form_type)
            .header("Cookie", &format!("__Host-csrf={csrf}")),
    )
    .await;
    assert_eq!(signed_in["statusCode"], 303, "{signed_in}");
    let header = |answer: &Value, name: &str| -> Vec<String> {
        let multi = answer["multiValueHeaders"][name]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let single = answer["headers"][name].as_str().map(str::to_owned);
        multi
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .chain(single)
            .collect()
    };
    let location = header(&signed_in, "location").remove(0);
    let code = parse_query(location.split_once('?').unwrap().1)
        .into_iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1;
    let sso = header(&signed_in, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with("__Host-sso="))
        .unwrap();
    let sso = sso["__Host-sso=".len()..sso.find(';').unwrap()].to_owned();
    let exchanged = call(
        Event::new(Kind::HttpV2, "POST", "/oauth2/token")
            .body(&format!(
                "grant_type=authorization_code&client_id={}&code={code}&redirect_uri={}&code_verifier={}",
                app_client.client_id,
                integration_tests::events::encode(integration_tests::oidc::REDIRECT),
                pkce.verifier
            ))
            .header("content-type", form_type),
    )
    .await;
    assert_eq!(exchanged["statusCode"], 200, "{exchanged}");
    let oidc_tokens: Value = serde_json::from_str(exchanged["body"].as_str().unwrap()).unwrap();
    mfa_secrets.extend([
        ("a CSRF token", csrf),
        ("an SSO cookie", sso),
        ("an authorization code", code),
        ("a PKCE verifier", pkce.verifier.clone()),
    ]);
    for name in ["access_token", "refresh_token", "id_token"] {
        mfa_secrets.push((
            "an OpenID client's token",
            oidc_tokens[name].as_str().unwrap().to_owned(),
        ));
    }
    // A body lambda_http cannot convert (marked base64, but not): its panic goes to stderr.
    let mut broken = Event::post_json(Kind::RestV1, "/login", &ada(NEW_PASSWORD)).to_json();
    broken["isBase64Encoded"] = json!(true);
    let answer = response_body(api.invoke(broken).await);
    assert_eq!(answer["statusCode"], 400, "{answer}");
    let auth_log = output.stop().await;

    // The authorizer, with each event shape carrying the access token.
    let mut env = token_env();
    env.push(("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()));
    let mut api = RuntimeApi::start().await;
    let output = Output::capture(spawn("authorizer", &api, &env));
    let issuer = TokenIssuer::new(key(), settings(), 900);
    let token = issuer.issue(&subject(&["user"]), now_unix()).unwrap().token;
    let token = token.expose_secret().to_owned();
    for kind in [AuthKind::Token, AuthKind::Request, AuthKind::V2] {
        let allowed = auth_event(kind, "GET", "/items", Some(&format!("Bearer {token}")));
        assert!(matches!(api.invoke(allowed).await, Report::Response { .. }));
        let forged = format!("Bearer {token}x");
        let refused = auth_event(kind, "GET", "/items", Some(&forged));
        assert!(matches!(api.invoke(refused).await, Report::Error { .. }));
    }
    let authorizer_log = output.stop().await;

    // The session-checking authorizer, reading the table: a live session's token and one of
    // a session the password change ended.
    env.extend([
        ("AUTHORIZER_CHECK_SESSION", "true".to_owned()),
        ("AUTHORIZER_SESSION_CACHE_SECONDS", "0".to_owned()),
        ("USERS_TABLE", store.table().to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        ("RUST_LOG", "trace".to_owned()),
    ]);
    let mut api = RuntimeApi::start().await;
    let output = Output::capture(spawn("session-authorizer", &api, &env));
    let live = last["access_token"].as_str().unwrap().to_owned();
    for kind in [AuthKind::Token, AuthKind::Request, AuthKind::V2] {
        let allowed = auth_event(kind, "GET", "/items", Some(&format!("Bearer {live}")));
        let answer = api.invoke(allowed).await;
        assert!(matches!(answer, Report::Response { .. }), "{answer:?}");
        let ended = auth_event(kind, "GET", "/items", Some(&format!("Bearer {access}")));
        assert!(matches!(api.invoke(ended).await, Report::Error { .. }));
    }
    let session_authorizer_log = output.stop().await;
    assert!(
        session_authorizer_log.contains("session_epoch_old"),
        "{session_authorizer_log}"
    );

    // The level really was verbose: the runtime's and the SDK's DEBUG lines are there.
    assert!(auth_log.contains("\"level\":\"DEBUG\""), "{auth_log}");
    assert!(
        authorizer_log.contains("authorizer decision"),
        "{authorizer_log}"
    );

    let mut secrets: Vec<(&str, String)> = [STRONG_PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]
        .iter()
        .map(|p| ("a password", (*p).to_owned()))
        .collect();
    for (what, value) in [
        ("an access token", &session["access_token"]),
        ("a refresh token", &session["refresh_token"]),
        ("an access token", &rotated["access_token"]),
        ("a refresh token", &rotated["refresh_token"]),
        ("an access token", &by_cookie["access_token"]),
        ("a refresh token", &by_cookie["refresh_token"]),
        ("an access token", &changed["access_token"]),
        ("a refresh token", &changed["refresh_token"]),
        ("an access token", &last["access_token"]),
        ("a refresh token", &last["refresh_token"]),
    ] {
        secrets.push((what, value.as_str().unwrap().to_owned()));
    }
    // A token's signature alone identifies it; so does its payload.
    secrets.push((
        "an access token's signature",
        access.rsplit('.').next().unwrap().to_owned(),
    ));
    secrets.push(("a bcrypt hash", "$2b$04$".to_owned()));
    secrets.push(("the signing key", "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v".to_owned()));
    assert_no_secret("auth-api", &auth_log, &secrets);
    assert_no_secret("auth-api", &auth_log, &mfa_secrets);
    let token_secrets = [
        ("the access token", token.clone()),
        (
            "its signature",
            token.rsplit('.').next().unwrap().to_owned(),
        ),
    ];
    assert_no_secret("authorizer", &authorizer_log, &token_secrets);
    assert_no_secret("session-authorizer", &session_authorizer_log, &secrets);

    // The metrics ride on the same stdout, as Embedded Metric Format lines.
    let api_metrics = emf_documents("auth-api", &auth_log);
    assert!(api_metrics.iter().all(|d| d["Function"] == "auth-api"));
    assert_eq!(metric_total(&api_metrics, "LoginFailed", &[]), 1.0);
    assert!(metric_total(&api_metrics, "LoginSucceeded", &[]) >= 2.0);
    assert!(metric_total(&api_metrics, "Registrations", &[]) >= 2.0);
    assert!(metric_total(&api_metrics, "MfaFailed", &[]) >= 1.0);
    let logins = metric_total(&api_metrics, "Requests", &[("Route", "login")]);
    assert!(logins >= 3.0, "{logins}");
    assert!(api_metrics.iter().any(|d| d["Latency"].is_number()));
    let machine_id = machine.client_id.to_string();
    assert_eq!(
        metric_total(
            &api_metrics,
            "ClientTokensIssued",
            &[("ClientId", machine_id.as_str())]
        ),
        2.0
    );
    assert_eq!(metric_total(&api_metrics, "ClientAuthFailed", &[]), 1.0);
    let decisions = emf_documents("authorizer", &authorizer_log);
    assert_eq!(
        metric_total(&decisions, "Decisions", &[("Decision", "allow")]),
        3.0
    );
    assert_eq!(
        metric_total(&decisions, "Decisions", &[("Decision", "unauthorized")]),
        3.0
    );
    assert!(
        decisions
            .iter()
            .all(|d| d["Reason"].as_str().is_some_and(|r| !r.is_empty())),
        "every decision names its reason"
    );
    let checked = emf_documents("session-authorizer", &session_authorizer_log);
    assert_eq!(
        metric_total(
            &checked,
            "Decisions",
            &[
                ("Decision", "unauthorized"),
                ("Reason", "session_epoch_old")
            ]
        ),
        3.0
    );
}

/// Checks every Embedded Metric Format line of `log` against the specification
/// (CloudWatch_Embedded_Metric_Format_Specification): `_aws` with a millisecond `Timestamp`
/// and `CloudWatchMetrics` directives, each naming a namespace, dimension sets of at most 30
/// members that are string members of the document, and metrics of a known unit that are
/// number members. Returns the documents.
fn emf_documents(function: &str, log: &str) -> Vec<Value> {
    const UNITS: [&str; 4] = ["Count", "Milliseconds", "Microseconds", "None"];
    let mut documents = Vec::new();
    for line in log.lines().filter(|l| l.contains("\"_aws\"")) {
        let doc: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{function}: an EMF line is not JSON ({e}): {line}"));
        let aws = &doc["_aws"];
        let timestamp = aws["Timestamp"].as_i64().expect("Timestamp, a number");
        assert!(timestamp > 1_600_000_000_000, "milliseconds: {timestamp}");
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics");
        assert!(!directives.is_empty());
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("Namespace");
            assert!((1..=255).contains(&namespace.len()), "{namespace}");
            for set in directive["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(set.len() <= 30, "{line}");
                for name in set {
                    let name = name.as_str().expect("dimension names are strings");
                    assert!(
                        doc[name].is_string(),
                        "{function}: dimension {name} missing: {line}"
                    );
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics");
            assert!((1..=100).contains(&metrics.len()));
            for metric in metrics {
                let name = metric["Name"].as_str().expect("metric Name");
                assert!(
                    doc[name].is_number(),
                    "{function}: metric {name} missing: {line}"
                );
                let unit = metric["Unit"].as_str().unwrap_or("None");
                assert!(UNITS.contains(&unit), "{unit}");
            }
        }
        documents.push(doc);
    }
    documents
}

/// The value of `metric` summed over the documents whose dimensions match `filter`.
fn metric_total(documents: &[Value], metric: &str, filter: &[(&str, &str)]) -> f64 {
    documents
        .iter()
        .filter(|d| filter.iter().all(|(k, v)| d[*k] == *v))
        .filter_map(|d| d[metric].as_f64())
        .sum()
}

/// The release event delivery binary under the Runtime API: a stream batch (the fixture's
/// shape is DynamoDB's) goes to the bus, answered with no failures; to a bus that does not
/// exist, the batch names its first record as failed, so Lambda retries from there. At TRACE
/// neither the envelope's address nor the webhook secret reaches its output.
#[tokio::test]
async fn the_release_events_function_delivers_a_stream_batch_and_reports_what_it_cannot() {
    let batch: Value =
        serde_json::from_str(include_str!("../../fixtures/dynamodb-stream-event.json")).unwrap();
    let moto = std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").unwrap_or_else(|_| ssm_endpoint());
    let sdk = accounts::aws::from_env(&shared::config::ProcessEnv).unwrap();
    let bridge = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk)
            .endpoint_url(&moto)
            .build(),
    );
    let bus = format!("release-events-{}", uuid::Uuid::new_v4().simple());
    bridge.create_event_bus().name(&bus).send().await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for (target, expected) in [
        (bus.as_str(), json!({"batchItemFailures": []})),
        (
            "no-such-bus",
            json!({"batchItemFailures": [{"itemIdentifier": "4421584500000000017450439091"}]}),
        ),
    ] {
        let mut api = RuntimeApi::start().await;
        let env = vec![
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", moto.clone()),
            ("EVENT_BUS_NAME", target.to_owned()),
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()),
            ("RUST_LOG", "trace".to_owned()),
            ("WEBHOOK_SECRET", secret.to_owned()),
        ];
        let output = Output::capture(spawn("events", &api, &env));
        let answer = response_body(api.invoke(batch.clone()).await);
        assert_eq!(answer, expected, "{target}");
        let text = output.stop().await;
        assert!(
            !text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "the secret leaked"
        );
        assert!(
            !text.contains("ada@example.com"),
            "an event's data leaked: {text}"
        );
    }
}

/// The release auth-api, at TRACE, through a whole sign-in at another provider (a real
/// OpenID provider here): the provider's code, the state, the binding cookie, the client
/// secret, the app's one-time code and the tokens reach neither stdout nor stderr.
#[tokio::test]
async fn at_trace_a_sign_in_through_a_provider_logs_none_of_its_secrets() {
    use integration_tests::upstream::MockProvider;
    const CLIENT_SECRET: &str = "fed-client-s3cr3t-0b7c41";
    let mock = MockProvider::start().await;
    mock.answer_with(json!({"sub": "9001", "email": "fed@example.com", "email_verified": true}))
        .await;
    let store = fresh_store(&endpoint()).await;
    let mut api = RuntimeApi::start().await;
    let mut env = auth_api_env(store.table());
    env.push(("JWT_SIGNING_KEY", TEST_PEM.to_owned()));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()));
    env.push(("RUST_LOG", "trace,lambda_runtime=trace".to_owned()));
    env.push((
        "FEDERATION_PROVIDERS",
        json!([{"id": "mock", "name": "Mock", "issuer": mock.issuer,
                "client_id": "auth-client", "trusted_email": true}])
        .to_string(),
    ));
    env.push((
        "FEDERATION_SECRETS",
        json!({"mock": CLIENT_SECRET}).to_string(),
    ));
    env.push((
        "FEDERATION_APP_URL",
        "https://app.example.com/signed-in".to_owned(),
    ));
    let output = Output::capture(spawn("auth-api", &api, &env));
    let mut call =
        async |event: Event| -> Value { response_body(api.invoke(event_json(event)).await) };
    let header = |answer: &Value, name: &str| -> String {
        let single = answer["headers"][name].as_str().map(str::to_owned);
        single.unwrap_or_else(|| {
            answer["multiValueHeaders"][name][0]
                .as_str()
                .unwrap()
                .to_owned()
        })
    };

    let started = call(Event::get(Kind::RestV1, "/oauth2/federate/mock")).await;
    assert_eq!(started["statusCode"], 303, "{started}");
    let binding = header(&started, "set-cookie");
    let binding = binding.split(';').next().unwrap().to_owned();
    let location = header(&started, "location");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at_provider = http.get(&location).send().await.unwrap();
    let back = reqwest::Url::parse(at_provider.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let ended = call(
        Event::get(Kind::RestV1, "/oauth2/callback/mock")
            .query(&borrowed)
            .header("Cookie", &binding),
    )
    .await;
    assert_eq!(ended["statusCode"], 303, "{ended}");
    let code = header(&ended, "location")
        .split_once("#code=")
        .unwrap()
        .1
        .to_owned();
    let exchanged = call(Event::post_json(
        Kind::HttpV2,
        "/federation/exchange",
        &json!({"code": code}),
    ))
    .await;
    assert_eq!(exchanged["statusCode"], 200, "{exchanged}");
    let tokens: Value = serde_json::from_str(exchanged["body"].as_str().unwrap()).unwrap();
    let log = output.stop().await;
    assert!(
        log.contains("federated_signed_in"),
        "the audit line is there"
    );
    let value = |name: &str| pairs.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_no_secret(
        "auth-api",
        &log,
        &[
            ("the client secret", CLIENT_SECRET.to_owned()),
            ("the provider's code", value("code")),
            ("the state", value("state")),
            (
                "the binding cookie",
                binding.split_once('=').unwrap().1.to_owned(),
            ),
            ("the app's one-time code", code),
            (
                "the access token",
                tokens["access_token"].as_str().unwrap().to_owned(),
            ),
            (
                "the refresh token",
                tokens["refresh_token"].as_str().unwrap().to_owned(),
            ),
        ],
    );
}
