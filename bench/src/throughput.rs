//! Token endpoint throughput over local-api: machine clients' `client_credentials` requests
//! over real HTTP, from concurrent callers, for a fixed time. local-api runs in this harness's
//! own build (the dev profile): the figure is a floor, the criterion time per request (release)
//! is the Lambda's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accounts::model::registry::{ClientRecord, ClientSpec, parse_scopes};
use accounts::store::{ClientStore, MemoryStore};
use integration_tests::local::LocalApi;
use secrecy::ExposeSecret;

/// Callers sending at once.
const CALLERS: usize = 8;
/// How long they send.
const DURATION: Duration = Duration::from_secs(5);

/// Requests per second local-api's token endpoint answered 200 (memory store).
pub async fn token_endpoint_rps() -> f64 {
    let api = LocalApi::spawn(MemoryStore::new(), &[], |_| {}).await;
    let (client, secret) = ClientRecord::create(
        ClientSpec {
            name: Some("bench".into()),
            scopes: Some(parse_scopes("api:read").expect("a scope")),
            ..ClientSpec::default()
        },
        "bench",
        shared::token::now_unix_ms(),
    )
    .expect("a client");
    api.gateway
        .app()
        .accounts
        .store
        .create_client(&client)
        .await
        .expect("stored");
    let secret = secret
        .expect("a secret")
        .encode()
        .expose_secret()
        .to_owned();
    let url = api.at("/oauth2/token");
    let http = reqwest::Client::new();
    let answered = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (http, url, id, secret, answered) = (
            http.clone(),
            url.clone(),
            client.client_id.to_string(),
            secret.clone(),
            Arc::clone(&answered),
        );
        callers.push(tokio::spawn(async move {
            while started.elapsed() < DURATION {
                let answer = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .expect("local-api answers");
                assert_eq!(answer.status(), 200, "the token endpoint");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for caller in callers {
        caller.await.expect("a caller");
    }
    answered.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
