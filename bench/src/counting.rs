//! DynamoDB round trips per operation, counted by a proxy that reads each request's
//! `X-Amz-Target` header on its way to the server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use integration_tests::app::{STRONG_PASSWORD, settings, test_app};
use integration_tests::authorizer_events::{AuthKind, event as auth_event, subject};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use integration_tests::runtime_api::{Report, RuntimeApi, spawn};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::token::now_unix;
use shared::{KeySet, SigningKey, TokenIssuer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NEEDLE: &[u8] = b"x-amz-target: dynamodb_20120810.";

/// Calls seen per operation name since the last [`CountingProxy::take`].
type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct CountingProxy {
    addr: SocketAddr,
    counts: Counts,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let counts = Counts::default();
        let shared = Arc::clone(&counts);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = async move {
                        let mut seen: Vec<u8> = Vec::new();
                        let mut pos = 0;
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            seen.extend(buf[..n].iter().map(u8::to_ascii_lowercase));
                            pos = count_targets(&seen, pos, &counts);
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let responses = async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    };
                    tokio::join!(requests, responses);
                });
            }
        });
        Self { addr, counts, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counts so far, which start again from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().expect("counts"))
    }
}

/// Counts every complete `X-Amz-Target` header in `seen` after `from`; returns where to
/// continue.
fn count_targets(seen: &[u8], mut from: usize, counts: &Counts) -> usize {
    while let Some(i) = seen[from..].windows(NEEDLE.len()).position(|w| w == NEEDLE) {
        let start = from + i + NEEDLE.len();
        let Some(len) = seen[start..].iter().position(|&b| b == b'\r') else {
            return from; // the header line is not complete yet
        };
        let op = String::from_utf8_lossy(&seen[start..start + len]).into_owned();
        *counts.lock().expect("counts").entry(op).or_default() += 1;
        from = start + len;
    }
    seen.len().saturating_sub(NEEDLE.len()).max(from)
}

/// Round trips per operation: `(figure, calls, "Op, Op")`.
pub type Calls = Vec<(&'static str, u64, String)>;

fn summary(counts: BTreeMap<String, u64>) -> (u64, String) {
    let total = counts.values().sum();
    let names = counts
        .iter()
        .map(|(op, n)| {
            if *n > 1 {
                format!("{op}×{n}")
            } else {
                op.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    (total, names)
}

pub async fn count_operations() -> Calls {
    let upstream: SocketAddr = endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("AWS_ENDPOINT_URL_DYNAMODB is http://host:port");
    let proxy = CountingProxy::start(upstream).await;
    let app = test_app(fresh_store(&proxy.endpoint()).await);
    proxy.take(); // the table's creation
    let mut out = Calls::new();
    let mut record = |figure, counts| {
        let (n, names) = summary(counts);
        out.push((figure, n, names));
    };
    let send = |event: Event| app.handle(event.request());
    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});

    let answer = send(Event::post_json(Kind::RestV1, "/register", &credentials)).await;
    assert_eq!(answer.status(), 201);
    record("register", proxy.take());

    let answer = send(Event::post_json(Kind::RestV1, "/login", &credentials)).await;
    assert_eq!(answer.status(), 200);
    record("login, first from this address", proxy.take());
    // A returning user at a known address: the account read with the check's count, then
    // one write of the session with its clean-ups.
    let answer = send(Event::post_json(Kind::RestV1, "/login", &credentials)).await;
    assert_eq!(answer.status(), 200);
    record("login, again from the same address", proxy.take());
    let tokens = body_json(answer.into_body());

    let access = tokens["access_token"].as_str().expect("a token");
    let answer = send(Event::get(Kind::RestV1, "/verify").bearer(access)).await;
    assert_eq!(answer.status(), 200);
    record("verify", proxy.take());

    // The session-checking decision: one read for a session not yet known, none while its
    // answer is kept.
    {
        let authorizer =
            authorizer::Authorizer::new(app.verifier.clone(), None, authorizer::V2Response::Simple);
        let check =
            authorizer::session::SessionCheck::new(10, std::sync::Arc::new(shared::SystemClock));
        let clock = shared::SystemClock;
        let lookup = session_authorizer::StoreLookup {
            store: &app.accounts.store,
            sessions: app.accounts.sessions,
            clock: &clock,
        };
        let event = json!({
            "type": "TOKEN",
            "authorizationToken": format!("Bearer {access}"),
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/items",
        });
        for figure in [
            "session-checking authorizer decision, session read",
            "session-checking authorizer decision, session cached",
        ] {
            let answer = authorizer
                .decide_checked(event.clone(), &check, &lookup)
                .await;
            assert!(answer.is_ok(), "the session is live");
            record(figure, proxy.take());
        }
    }

    let refresh = json!({"refresh_token": tokens["refresh_token"]});
    let answer = send(Event::post_json(Kind::RestV1, "/refresh", &refresh)).await;
    assert_eq!(answer.status(), 200);
    record("refresh", proxy.take());

    // The release authorizer, pointed at the proxy: it must never call DynamoDB.
    let key = SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid");
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).expect("one key");
    let s = settings();
    let token = TokenIssuer::new(key, s.clone(), 900)
        .issue(&subject(&["user"]), now_unix())
        .expect("a token")
        .token;
    let env = vec![
        ("JWT_ISSUER", s.issuer),
        ("JWT_AUDIENCE", s.audience),
        (
            "JWT_PUBLIC_KEYS",
            serde_json::to_string(&keys.to_jwks()).expect("JWKS"),
        ),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint()),
    ];
    let mut runtime = RuntimeApi::start().await;
    let mut child = spawn("authorizer", &runtime, &env);
    let event = auth_event(
        AuthKind::Token,
        "GET",
        "/items",
        Some(&format!("Bearer {}", token.expose_secret())),
    );
    assert!(matches!(
        runtime.invoke(event).await,
        Report::Response { .. }
    ));
    let _ = child.kill().await;
    record(
        "authorizer (release binary, cold start included)",
        proxy.take(),
    );
    out
}

fn body_json(body: lambda_http::Body) -> Value {
    match body {
        lambda_http::Body::Text(t) => serde_json::from_str(&t).expect("JSON"),
        lambda_http::Body::Binary(b) => serde_json::from_slice(&b).expect("JSON"),
        _ => Value::Null,
    }
}
