//! scripts/bench's harness. Measures what criterion cannot: cold starts of the release
//! binaries and of the Node.js peer under the same Lambda Runtime API emulator, their peak RSS,
//! binary sizes and DynamoDB round trips per operation (counted by a proxy, not assumed). Then
//! reads criterion's results and the peer's micro-benchmarks, prints one table and writes it
//! into BENCHMARKS.md.
//!
//! Inputs (environment): `LAMBDA_BUILD_DIR` (release bootstraps), `AWS_ENDPOINT_URL_DYNAMODB`,
//! `BENCH_NODE_MODULES` (the peer's node_modules), `BENCH_NODE_MICRO` (its JSON results),
//! `BENCH_CRITERION_DIR`, `BENCH_RUNS` (cold starts per figure, default 20), `BENCH_OUT`.
//! With `BENCH_ONLY=coldstart` it measures only our binaries' cold starts and prints them
//! (needs `LAMBDA_BUILD_DIR` and DynamoDB only): a quick check while working on start-up;
//! `BENCH_ONLY=forgot` only `/password/forgot`'s times for known and unknown addresses;
//! `BENCH_ONLY=register` only `/register`'s for new and taken ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

mod counting;
mod recovery;
mod table;

use table::Verdict;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench"))
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let lambda_dir = PathBuf::from(env("LAMBDA_BUILD_DIR"));
    if std::env::var("BENCH_ONLY").as_deref() == Ok("coldstart") {
        let cold = coldstart::measure_all(runs, None).await;
        let mut figures: Vec<_> = cold.ms.iter().collect();
        figures.sort_by(|a, b| a.0.cmp(b.0));
        for (figure, ms) in figures {
            println!("cold start to first answer, {figure}: {ms:.1} ms (median of {runs})");
        }
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("register") {
        let (new, taken) = recovery::register_times().await;
        println!(
            "/register: new {new:.1} ms, taken {taken:.1} ms, ratio {:.2}",
            taken / new
        );
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("forgot") {
        let (unknown, known) = recovery::forgot_times().await;
        println!(
            "/password/forgot: unknown {unknown:.1} ms, known {known:.1} ms, ratio {:.2}",
            unknown / known
        );
        return;
    }
    let criterion = criterion_medians(Path::new(&env("BENCH_CRITERION_DIR")));
    let node: Value = serde_json::from_str(
        &std::fs::read_to_string(env("BENCH_NODE_MICRO")).expect("the peer's micro results"),
    )
    .expect("the peer's micro results are JSON");
    let node_modules = env("BENCH_NODE_MODULES");

    eprintln!("cold starts: {runs} runs per figure");
    let cold = coldstart::measure_all(runs, Some(&node_modules)).await;
    eprintln!("DynamoDB round trips");
    let calls = counting::count_operations().await;
    eprintln!("/password/forgot, known and unknown addresses");
    let forgot = recovery::forgot_times().await;
    eprintln!("/register, new and taken addresses");
    let register = recovery::register_times().await;
    eprintln!("session-checking decisions reading DynamoDB Local");
    let session_read_us = session_read_decision_us(200).await;

    let size = |function: &str| {
        std::fs::metadata(lambda_dir.join(function).join("bootstrap"))
            .map(|m| m.len())
            .unwrap_or_else(|e| panic!("{function} bootstrap: {e}"))
    };
    let rows = table::rows(&table::Inputs {
        criterion: &criterion,
        node: &node,
        cold: &cold,
        calls: &calls,
        authorizer_bytes: size("authorizer"),
        session_authorizer_bytes: size("session-authorizer"),
        auth_api_bytes: size("auth-api"),
        forgot,
        register,
        session_read_us,
    });
    let markdown = table::markdown(&rows);
    println!("{markdown}");
    let failed = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Missed))
        .count();
    let machine = table::machine(&node);
    if let Ok(out) = std::env::var("BENCH_OUT") {
        table::write_into(Path::new(&out), &machine, &markdown);
        eprintln!("wrote the table into {out}");
    }
    eprintln!("{failed} budget(s) missed");
}

/// Median time in nanoseconds of every criterion benchmark under `dir`, by its full id.
fn criterion_medians(dir: &Path) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.ends_with("new/benchmark.json") {
                let read = |p: &Path| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
                };
                let (Some(meta), Some(estimates)) =
                    (read(&p), read(&p.with_file_name("estimates.json")))
                else {
                    continue;
                };
                if let (Some(id), Some(median)) = (
                    meta["full_id"].as_str(),
                    estimates["median"]["point_estimate"].as_f64(),
                ) {
                    out.insert(id.to_owned(), median);
                }
            }
        }
    }
    out
}

/// Median of `values` (which must not be empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

mod coldstart {
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

    use super::*;

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
        app.passwords = accounts::passwords::Passwords::new(10).expect("cost 10");
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
            ("AWS_ACCESS_KEY_ID", super::env("AWS_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", super::env("AWS_SECRET_ACCESS_KEY")),
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
            ("AWS_ACCESS_KEY_ID", super::env("AWS_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", super::env("AWS_SECRET_ACCESS_KEY")),
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
}

/// Median microseconds of a warm session-checking decision that reads the session from
/// DynamoDB Local (no session cache): one consistent BatchGetItem on the loopback, plus the
/// token's check.
async fn session_read_decision_us(runs: usize) -> f64 {
    use std::sync::Arc;

    use authorizer::session::SessionCheck;
    use integration_tests::app::STRONG_PASSWORD;
    use integration_tests::dynamo::{endpoint, fresh_store};
    use integration_tests::events::{Event, Kind};

    let store = fresh_store(&endpoint()).await;
    let app = integration_tests::app::test_app(store.clone());
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let registered = app
        .handle(Event::post_json(Kind::RestV1, "/register", &credentials).request())
        .await;
    assert_eq!(registered.status(), 201);
    let login = app
        .handle(Event::post_json(Kind::RestV1, "/login", &credentials).request())
        .await;
    let session: Value = match login.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("login JSON"),
        other => panic!("login answered {other:?}"),
    };
    let token = session["access_token"].as_str().expect("an access token");
    let authorizer = authorizer::Authorizer::new(
        app.verifier.clone().with_cache(0),
        None,
        authorizer::V2Response::Simple,
    );
    let check = SessionCheck::new(0, Arc::new(shared::SystemClock));
    let clock = shared::SystemClock;
    let lookup = session_authorizer::StoreLookup {
        store: &store,
        sessions: accounts::model::session::SessionSettings::default(),
        clock: &clock,
    };
    let event = json!({
        "type": "TOKEN",
        "authorizationToken": format!("Bearer {token}"),
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/items",
    });
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs + 10 {
        let started = Instant::now();
        let answer = authorizer
            .decide_checked(event.clone(), &check, &lookup)
            .await;
        times.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(answer.is_ok(), "the session is live");
    }
    // The first ten warm the connection pool.
    median(&mut times[10..])
}
