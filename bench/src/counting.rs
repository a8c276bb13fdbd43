//! DynamoDB calls, sequential round trips and capacity units per operation, counted by a
//! proxy in front of DynamoDB Local. It reads each HTTP/1.1 exchange whole: the request's
//! `X-Amz-Target`, the time it was sent and the time its answer ended, and asks DynamoDB Local
//! for the capacity each call consumed (`ReturnConsumedCapacity: TOTAL`, added to the body
//! on its way; DynamoDB Local does not check signatures).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::app::{STRONG_PASSWORD, settings, test_app};
use integration_tests::authorizer_events::{AuthKind, event as auth_event, subject};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use integration_tests::runtime_api::{Report, RuntimeApi, spawn};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::token::now_unix;
use shared::{KeySet, SigningKey, TokenIssuer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How long the proxy holds each answer: a round trip to DynamoDB in the same region.
const HELD: Duration = Duration::from_millis(10);

/// Operations that take `ReturnConsumedCapacity`.
const CAPACITY_OPS: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// One DynamoDB call as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub op: String,
    sent: Instant,
    answered: Instant,
    /// Capacity units DynamoDB Local reported for the call.
    units: f64,
}

impl Exchange {
    fn writes(&self) -> bool {
        matches!(
            self.op.as_str(),
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
        )
    }

    /// The capacity units of a write, as DynamoDB Local reports them.
    fn write_units(&self) -> f64 {
        if self.writes() { self.units } else { 0.0 }
    }
}

type Log = Arc<Mutex<Vec<Exchange>>>;

pub struct CountingProxy {
    addr: SocketAddr,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 message: its head (request or status line and headers, lines without their
/// CRLF) and its body.
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    async fn read<R: AsyncBufReadExt + Unpin>(from: &mut R) -> Option<Self> {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if from.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        let mut message = Self {
            head,
            body: Vec::new(),
        };
        assert!(
            message.header("transfer-encoding").is_none(),
            "the proxy reads bodies by Content-Length only"
        );
        let length: usize = message
            .header("content-length")
            .map_or(0, |n| n.parse().expect("a Content-Length"));
        message.body = vec![0; length];
        from.read_exact(&mut message.body).await.ok()?;
        Some(message)
    }

    /// The message with this body, its Content-Length set to match.
    fn with_body(mut self, body: Vec<u8>) -> Self {
        for line in self.head.iter_mut().skip(1) {
            if line.to_ascii_lowercase().starts_with("content-length:") {
                *line = format!("Content-Length: {}", body.len());
            }
        }
        self.body = body;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.head {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The request with `ReturnConsumedCapacity: TOTAL` in its body where the operation takes it.
fn asking_capacity(request: Message, op: &str) -> Message {
    if !CAPACITY_OPS.contains(&op) {
        return request;
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&request.body) else {
        return request;
    };
    body.insert("ReturnConsumedCapacity".into(), json!("TOTAL"));
    let body = serde_json::to_vec(&body).expect("JSON");
    request.with_body(body)
}

/// The capacity units an answer reports (one object, or one per table).
fn consumed(answer: &Message) -> f64 {
    let Ok(body) = serde_json::from_slice::<Value>(&answer.body) else {
        return 0.0;
    };
    let units = |c: &Value| c["CapacityUnits"].as_f64().unwrap_or(0.0);
    match &body["ConsumedCapacity"] {
        Value::Array(all) => all.iter().map(units).sum(),
        one => units(one),
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, log: Log) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, mut client_write) = client.into_split();
    let (server_read, mut server_write) = server.into_split();
    let (mut client_read, mut server_read) =
        (BufReader::new(client_read), BufReader::new(server_read));
    // HTTP/1.1 without pipelining: one exchange at a time per connection.
    while let Some(request) = Message::read(&mut client_read).await {
        let op = request
            .header("x-amz-target")
            .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
            .unwrap_or("")
            .to_owned();
        let request = asking_capacity(request, &op);
        let sent = Instant::now();
        if server_write.write_all(&request.bytes()).await.is_err() {
            return;
        }
        let Some(answer) = Message::read(&mut server_read).await else {
            return;
        };
        // DynamoDB Local answers within a millisecond, less than the scheduling jitter of two
        // calls sent together; held for a network round trip, calls sent together overlap.
        tokio::time::sleep(HELD).await;
        let answered = Instant::now();
        if !op.is_empty() {
            let units = consumed(&answer);
            log.lock().expect("log").push(Exchange {
                op,
                sent,
                answered,
                units,
            });
        }
        if client_write.write_all(&answer.bytes()).await.is_err() {
            return;
        }
    }
}

impl CountingProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let log = Log::default();
        let shared = Arc::clone(&log);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, Arc::clone(&shared)));
            }
        });
        Self { addr, log, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The calls so far, which start again from none.
    pub fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }
}

/// Sequential round trips: the periods in which at least one call was in flight. Calls sent
/// while another was still unanswered share its round trip.
fn round_trips(calls: &[Exchange]) -> u64 {
    let mut spans: Vec<_> = calls.iter().map(|c| (c.sent, c.answered)).collect();
    spans.sort();
    let mut trips = 0;
    let mut busy_until: Option<Instant> = None;
    for (sent, answered) in spans {
        match busy_until {
            Some(until) if sent <= until => busy_until = Some(until.max(answered)),
            _ => {
                trips += 1;
                busy_until = Some(answered);
            }
        }
    }
    trips
}

/// One operation's figures.
pub struct Count {
    pub figure: &'static str,
    pub calls: u64,
    pub round_trips: u64,
    /// Write capacity units, as DynamoDB Local reports them.
    pub write_units: f64,
    /// The calls by name: `"GetItem, PutItem×2"`.
    pub names: String,
}

pub type Calls = Vec<Count>;

fn summary(figure: &'static str, calls: Vec<Exchange>) -> Count {
    let mut by_name = BTreeMap::<&str, u64>::new();
    for call in &calls {
        *by_name.entry(&call.op).or_default() += 1;
    }
    let names = by_name
        .iter()
        .map(|(op, n)| {
            if *n > 1 {
                format!("{op}×{n}")
            } else {
                (*op).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    Count {
        figure,
        calls: calls.len() as u64,
        round_trips: round_trips(&calls),
        write_units: calls
            .iter()
            .map(Exchange::write_units)
            .fold(0.0, |a, b| a + b),
        names,
    }
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
    let mut record = |figure, calls| out.push(summary(figure, calls));
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
