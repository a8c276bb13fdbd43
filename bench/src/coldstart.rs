//! Spawn → first answer, under the Runtime API emulator, and the peak RSS at that moment.

use integration_tests::app::{STRONG_PASSWORD, TEST_PEM, settings};
use integration_tests::authorizer_events::{AuthKind, event as auth_event, subject};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use integration_tests::runtime_api::{Report, RuntimeApi, bootstrap, spawn_command};
use secrecy::{ExposeSecret, SecretString};
use shared::token::now_unix;
use shared::{KeySet, SigningKey, TokenIssuer};
use tokio::process::Command;

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{env, median};

/// Cold-start results: median milliseconds and largest peak RSS (bytes) per figure.
#[derive(Debug, Default)]
pub struct ColdStarts {
    pub ms: HashMap<&'static str, f64>,
    pub rss: HashMap<&'static str, u64>,
}

const NODE_SECRET: &str = "a-string-secret-of-at-least-32-bytes!!";

/// Peak resident set size of a running process, from `/proc/<pid>/status` `VmHWM`.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One cold start: queue `event`, spawn, wait for the answer.
async fn once(
    command: Command,
    function: &str,
    env: &[(&str, String)],
    event: &Value,
) -> (f64, u64) {
    let mut api = RuntimeApi::start().await;
    api.queue(event.clone()).await;
    let started = Instant::now();
    let mut child = spawn_command(command, function, &api, env);
    let report = api.next_report().await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let rss = child.id().map_or(0, peak_rss);
    let _ = child.kill().await;
    if !matches!(&report, Report::Response { body, .. } if body.get("statusCode").is_none_or(|s| s == 200))
    {
        let mut logs = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            use tokio::io::AsyncReadExt;
            let _ = stdout.read_to_string(&mut logs).await;
        }
        eprintln!("{function} logs:\n{logs}");
    }
    match &report {
        Report::Response { body, .. } => {
            let ok = body.get("statusCode").is_none_or(|s| s == 200)
                && body
                    .get("policyDocument")
                    .is_none_or(|p| p["Statement"][0]["Effect"] == "Allow");
            assert!(ok, "{function}: unexpected answer {body}");
        }
        other => panic!("{function}: expected an answer, got {other:?}"),
    }
    (ms, rss)
}

async fn series(
    runs: usize,
    command: impl Fn() -> Command,
    function: &str,
    env: &[(&str, String)],
    event: &Value,
) -> (f64, u64) {
    // One unmeasured run first: the page cache then holds the binary, as on a warm host.
    once(command(), function, env, event).await;
    let mut times = Vec::with_capacity(runs);
    let mut peak = 0;
    for _ in 0..runs {
        let (ms, rss) = once(command(), function, env, event).await;
        times.push(ms);
        peak = peak.max(rss);
    }
    (median(&mut times), peak)
}

/// Every cold-start figure; the Node.js peer's only with its `node_modules`.
pub async fn measure_all(runs: usize, node_modules: Option<&str>) -> ColdStarts {
    let mut out = ColdStarts::default();
    let key = SigningKey::ed25519_from_pem(TEST_PEM, None).expect("the test key");
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).expect("one key");
    let s = settings();
    let token_env = vec![
        ("JWT_ISSUER", s.issuer.clone()),
        ("JWT_AUDIENCE", s.audience.clone()),
        (
            "JWT_PUBLIC_KEYS",
            serde_json::to_string(&keys.to_jwks()).expect("JWKS"),
        ),
    ];

    // The authorizer: a TOKEN event with a valid EdDSA token.
    let token = TokenIssuer::new(key, s.clone(), 3600)
        .issue(&subject(&["user"]), now_unix())
        .expect("a token")
        .token;
    let event = auth_event(
        AuthKind::Token,
        "GET",
        "/items",
        Some(&format!("Bearer {}", token.expose_secret())),
    );
    let (ms, rss) = series(
        runs,
        || Command::new(bootstrap("authorizer")),
        "authorizer",
        &token_env,
        &event,
    )
    .await;
    out.ms.insert("authorizer", ms);
    out.rss.insert("authorizer", rss);

    if let Some(node_modules) = node_modules {
        // The peer: Node's runtime loop loading jsonwebtoken and bcryptjs, verifying an HS256
        // token signed with a string secret, as the original project did.
        let node_token = TokenIssuer::new(
            SigningKey::hs256(SecretString::from(NODE_SECRET), None).expect("a secret"),
            s.clone(),
            3600,
        )
        .issue(&subject(&["user"]), now_unix())
        .expect("a token")
        .token;
        let node_event = auth_event(
            AuthKind::Token,
            "GET",
            "/items",
            Some(&format!("Bearer {}", node_token.expose_secret())),
        );
        let script = std::env::current_dir()
            .expect("cwd")
            .join("bench/node/bootstrap.js");
        let node_env = vec![
            ("NODE_PATH", node_modules.to_owned()),
            ("JWT_SECRET", NODE_SECRET.to_owned()),
            ("JWT_ISSUER", s.issuer.clone()),
            ("JWT_AUDIENCE", s.audience.clone()),
        ];
        let (ms, rss) = series(
            runs,
            || {
                let mut c = Command::new("node");
                c.arg(&script);
                c
            },
            "node-authorizer",
            &node_env,
            &node_event,
        )
        .await;
        out.ms.insert("node", ms);
        out.rss.insert("node", rss);
    }

    // auth-api: a health check, and a login against DynamoDB at bcrypt cost 10.
    let store = fresh_store(&endpoint()).await;
    let mut app = integration_tests::app::test_app(store.clone());
    app.accounts.passwords = accounts::passwords::Passwords::new(10).expect("cost 10");
    let registered = app
        .handle(
            Event::post_json(
                Kind::RestV1,
                "/register",
                &json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
            )
            .request(),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let api_env = vec![
        ("USERS_TABLE", store.table().to_owned()),
        ("JWT_ISSUER", s.issuer.clone()),
        ("JWT_AUDIENCE", s.audience.clone()),
        ("JWT_SIGNING_KEY", TEST_PEM.to_owned()),
        ("BCRYPT_COST", "10".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        // DynamoDB Local keeps tables per access key: the one the table was made with.
        ("AWS_ACCESS_KEY_ID", env("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", env("AWS_SECRET_ACCESS_KEY")),
    ];
    let health = Event::get(Kind::RestV1, "/health").to_json();
    let (ms, rss) = series(
        runs,
        || Command::new(bootstrap("auth-api")),
        "auth-api",
        &api_env,
        &health,
    )
    .await;
    out.ms.insert("auth-api health", ms);
    out.rss.insert("auth-api health", rss);
    let login = Event::post_json(
        Kind::RestV1,
        "/login",
        &json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
    )
    .to_json();
    let (ms, rss) = series(
        runs,
        || Command::new(bootstrap("auth-api")),
        "auth-api",
        &api_env,
        &login,
    )
    .await;
    out.ms.insert("auth-api login", ms);
    out.rss.insert("auth-api login", rss);

    // The session-checking authorizer: the same TOKEN event shape, for a token of a live
    // session in the table, so its first answer includes the DynamoDB read.
    let session = app
        .handle(
            Event::post_json(
                Kind::RestV1,
                "/login",
                &json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
            )
            .request(),
        )
        .await;
    assert_eq!(session.status(), 200);
    let session: Value = match session.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("login JSON"),
        other => panic!("login answered {other:?}"),
    };
    let token = integration_tests::app::same_session_token(
        &app,
        session["access_token"].as_str().expect("an access token"),
        SigningKey::ed25519_from_pem(TEST_PEM, None).expect("the test key"),
    );
    let event = auth_event(
        AuthKind::Token,
        "GET",
        "/items",
        Some(&format!("Bearer {token}")),
    );
    let mut session_env = token_env.clone();
    session_env.extend([
        ("AUTHORIZER_CHECK_SESSION", "true".to_owned()),
        ("USERS_TABLE", store.table().to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        ("AWS_ACCESS_KEY_ID", env("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", env("AWS_SECRET_ACCESS_KEY")),
    ]);
    let (ms, rss) = series(
        runs,
        || Command::new(bootstrap("session-authorizer")),
        "session-authorizer",
        &session_env,
        &event,
    )
    .await;
    out.ms.insert("session-authorizer", ms);
    out.rss.insert("session-authorizer", rss);
    out
}
