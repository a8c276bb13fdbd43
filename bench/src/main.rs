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
//! `BENCH_ONLY=register` only `/register`'s for new and taken ones; `BENCH_ONLY=calls` only
//! the DynamoDB calls per operation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

mod coldstart;
mod counting;
mod recovery;
mod support;
mod table;
mod throughput;

use support::{env, median};
use table::Verdict;

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
    if std::env::var("BENCH_ONLY").as_deref() == Ok("throughput") {
        let rps = throughput::token_endpoint_rps().await;
        println!("token endpoint over local-api: {rps:.0} requests/s");
        return;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("calls") {
        for c in counting::count_operations().await {
            println!(
                "{}: {} calls ({}), {} round trips, {} write units",
                c.figure, c.calls, c.names, c.round_trips, c.write_units
            );
        }
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
    eprintln!("token endpoint throughput over local-api");
    let token_rps = throughput::token_endpoint_rps().await;
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
        token_rps,
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
