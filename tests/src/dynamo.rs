//! The real DynamoDB API server (DynamoDB Local, started by `scripts/test`), tables per test,
//! and a proxy in front of it that can be stopped or made to hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use accounts::store::DynamoStore;
use shared::config::ProcessEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The DynamoDB endpoint from `AWS_ENDPOINT_URL_DYNAMODB`. Panics — never skips — when it is
/// not set, saying how to run these tests.
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL_DYNAMODB is not set. These tests need a real DynamoDB API server: \
             run `scripts/test`, which installs and starts DynamoDB Local on 127.0.0.1 and sets it."
        ),
    }
}

/// The access key id of auth-api's calls (letters and digits only: DynamoDB Local refuses
/// any other key id). scripts/test records every call in front of
/// DynamoDB Local and moto, and tests/iam/check_calls.py checks the calls made under this key
/// (and under each release binary's function name, without its dashes) against auth-api's IAM policy in the
/// templates; calls under any other key are the tests' own.
pub const AUTH_API_KEY: &str = "authapi";

/// The access key id of what the tests do for themselves (creating tables, seeding SSM and
/// SES): not checked against any function's policy.
pub const TESTS_KEY: &str = "tests";

/// An SDK configuration as the Lambda makes its own (`accounts::aws`: timeouts, retries,
/// TLS), under the access key id `access_key`.
pub fn sdk_as(access_key: &str) -> aws_types::SdkConfig {
    let base = accounts::aws::from_env(&ProcessEnv)
        .unwrap_or_else(|e| panic!("the SDK's environment, which scripts/test sets: {e}"));
    let credentials = aws_sdk_dynamodb::config::Credentials::new(
        access_key,
        "test",
        None,
        None,
        "integration-tests",
    );
    base.into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .build()
}

/// A client for `endpoint`, configured as the Lambda configures its own, making auth-api's
/// calls ([`AUTH_API_KEY`]).
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    client_as(endpoint, AUTH_API_KEY)
}

/// A client for `endpoint` under the access key id `access_key`.
pub fn client_as(endpoint: &str, access_key: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_as(access_key))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A store on a new, empty table of its own, so tests run in parallel; its calls are
/// auth-api's.
pub async fn fresh_store(endpoint: &str) -> DynamoStore {
    fresh_store_as(endpoint, AUTH_API_KEY).await
}

/// [`fresh_store`], its calls made under the access key id `access_key`. The table is
/// created under the tests' own key: creating tables is not a function's call.
pub async fn fresh_store_as(endpoint: &str, access_key: &str) -> DynamoStore {
    let table = format!("users-{}", uuid::Uuid::new_v4().simple());
    DynamoStore::new(client_as(endpoint, TESTS_KEY), table.clone())
        .ensure_table()
        .await
        .unwrap_or_else(|e| panic!("cannot create a table at {endpoint}: {e:?}"));
    DynamoStore::new(client_as(endpoint, access_key), table)
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the server.
    Forward,
    /// Accept and never answer: a server that hangs.
    Hang,
    /// Answer with DynamoDB's throttling error (`ProvisionedThroughputExceededException`)
    /// until this proxy has throttled this many requests in all, then forward.
    Throttle(u64),
    /// Answer requests for this operation (`Query`, …) with AWS's `AccessDeniedException`,
    /// as a deployment whose IAM policy lacks the grant would; forward the rest.
    Deny(&'static str),
}

/// DynamoDB's answer to a call the caller's IAM policy does not allow.
const ACCESS_DENIED: &str = "HTTP/1.1 400 Bad Request\r\n\
    Content-Type: application/x-amz-json-1.0\r\n\
    x-amzn-RequestId: DENIED\r\n\
    Content-Length: 138\r\n\r\n\
    {\"__type\":\"com.amazon.coral.service#AccessDeniedException\",\
    \"message\":\"User is not authorized to perform this operation on this resource.\"}";

/// DynamoDB's answer when a table's throughput is exceeded.
const THROTTLED: &str = "HTTP/1.1 400 Bad Request\r\n\
    Content-Type: application/x-amz-json-1.0\r\n\
    x-amzn-RequestId: THROTTLED\r\n\
    Content-Length: 157\r\n\r\n\
    {\"__type\":\"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException\",\
    \"message\":\"The level of configured provisioned throughput was exceeded.\"}";

/// Reads one HTTP/1.1 request or response (headers and `Content-Length` body) from `stream`;
/// `None` when the connection ends first.
async fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of the DynamoDB server. `stop` closes the port and every
/// open connection, as a crashed server would; `start` opens the same port again.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
    throttled: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start_for(endpoint: &str) -> Self {
        let upstream: SocketAddr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("endpoint {endpoint} is not http://IP:PORT"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let proxy = Self {
            addr,
            upstream,
            task: Mutex::new(None),
            throttled: Arc::default(),
        };
        proxy.serve(listener, Mode::Forward);
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered with the throttling error so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }

    fn serve(&self, listener: TcpListener, mode: Mode) {
        let upstream = self.upstream;
        let throttled = Arc::clone(&self.throttled);
        let task = tokio::spawn(async move {
            // Dropping this set (when the task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let throttled = Arc::clone(&throttled);
                connections.spawn(async move {
                    match mode {
                        Mode::Throttle(limit) => {
                            while let Some(request) = read_request(&mut inbound).await {
                                if throttled.fetch_add(1, Ordering::SeqCst) >= limit {
                                    throttled.fetch_sub(1, Ordering::SeqCst);
                                    // The budget is spent: this request and the rest of the
                                    // connection go to the server.
                                    let Ok(mut outbound) = TcpStream::connect(upstream).await
                                    else {
                                        return;
                                    };
                                    if outbound.write_all(&request).await.is_ok() {
                                        let _ = tokio::io::copy_bidirectional(
                                            &mut inbound,
                                            &mut outbound,
                                        )
                                        .await;
                                    }
                                    return;
                                }
                                if inbound.write_all(THROTTLED.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Mode::Forward => {
                            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                        Mode::Hang => {
                            std::future::pending::<()>().await;
                        }
                        Mode::Deny(operation) => {
                            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            let target = format!("x-amz-target: dynamodb_20120810.{operation}")
                                .to_ascii_lowercase();
                            while let Some(request) = read_request(&mut inbound).await {
                                let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
                                let answer = if head.lines().any(|l| l.trim() == target) {
                                    ACCESS_DENIED.as_bytes().to_vec()
                                } else {
                                    if outbound.write_all(&request).await.is_err() {
                                        return;
                                    }
                                    match read_request(&mut outbound).await {
                                        Some(response) => response,
                                        None => return,
                                    }
                                };
                                if inbound.write_all(&answer).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Closes the port and all connections.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port with `mode`.
    pub async fn restart(&self, mode: Mode) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind proxy port");
        self.serve(listener, mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// Scans `table` and checks that nothing is half-written: every refresh token belongs to a
/// session, every session to an existing user with the same id. Returns the item count per
/// kind (`user`, `session`, `refresh`, `loginfail`).
pub async fn assert_consistent(
    endpoint: &str,
    table: &str,
) -> std::collections::BTreeMap<String, usize> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let items = client_as(endpoint, TESTS_KEY)
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan the table")
        .items
        .unwrap_or_default();
    let text = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| panic!("item lacks {name}: {item:?}"))
    };
    let mut kinds = std::collections::BTreeMap::new();
    let mut users = std::collections::HashMap::new();
    let mut sessions = std::collections::HashMap::new();
    let mut tokens = Vec::new();
    for item in &items {
        let pk = text(item, "pk");
        let kind = pk
            .split('#')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        *kinds.entry(kind.clone()).or_insert(0) += 1;
        match kind.as_str() {
            "email" => {
                for name in ["user_id", "email", "password_hash", "created_at", "gsi1pk"] {
                    text(item, name);
                }
                users.insert(text(item, "email"), text(item, "user_id"));
            }
            "session" => {
                sessions.insert(
                    pk["SESSION#".len()..].to_owned(),
                    (text(item, "email"), text(item, "user_id")),
                );
            }
            "refresh" => tokens.push(text(item, "family_id")),
            _ => {}
        }
    }
    for (family, (email, user_id)) in &sessions {
        assert_eq!(
            users.get(email),
            Some(user_id),
            "session {family} has no user"
        );
    }
    for family in tokens {
        assert!(
            sessions.contains_key(&family),
            "a refresh token of missing session {family}"
        );
    }
    let mut renamed = std::collections::BTreeMap::new();
    for (kind, n) in kinds {
        let name = if kind == "email" {
            "user".to_owned()
        } else {
            kind
        };
        renamed.insert(name, n);
    }
    renamed
}

/// Reading a store's lifecycle events as the tests do: auth-api never reads them (they leave
/// through the table's stream), so in DynamoDB the tests read under their own key, and the
/// IAM check holds auth-api's calls alone against its role.
pub trait EventsReader {
    fn read_events(
        &self,
        subject: &accounts::model::event::EventSubject,
    ) -> impl std::future::Future<Output = Vec<accounts::model::event::AccountEvent>> + Send;

    fn read_all_events(
        &self,
    ) -> impl std::future::Future<Output = Vec<accounts::model::event::AccountEvent>> + Send;
}

impl EventsReader for accounts::store::MemoryStore {
    async fn read_events(
        &self,
        subject: &accounts::model::event::EventSubject,
    ) -> Vec<accounts::model::event::AccountEvent> {
        accounts::store::EventStore::events_of(self, subject)
            .await
            .expect("the memory store answers")
    }

    async fn read_all_events(&self) -> Vec<accounts::model::event::AccountEvent> {
        accounts::store::EventStore::all_events(self)
            .await
            .expect("the memory store answers")
    }
}

impl EventsReader for DynamoStore {
    async fn read_events(
        &self,
        subject: &accounts::model::event::EventSubject,
    ) -> Vec<accounts::model::event::AccountEvent> {
        let reader = DynamoStore::new(client_as(&endpoint(), TESTS_KEY), self.table());
        accounts::store::EventStore::events_of(&reader, subject)
            .await
            .expect("DynamoDB Local answers")
    }

    async fn read_all_events(&self) -> Vec<accounts::model::event::AccountEvent> {
        let reader = DynamoStore::new(client_as(&endpoint(), TESTS_KEY), self.table());
        accounts::store::EventStore::all_events(&reader)
            .await
            .expect("DynamoDB Local answers")
    }
}
