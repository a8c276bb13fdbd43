//! The real DynamoDB API server (DynamoDB Local, started by `scripts/test`), tables per test,
//! and a proxy in front of it that can be stopped or made to hang.

use std::net::SocketAddr;
use std::sync::Mutex;

use auth_api::store::DynamoStore;
use auth_api::store::dynamo::load_sdk_config;
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

/// A client for `endpoint`, with the same timeouts and retries as the Lambda.
pub async fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let base = load_sdk_config().await;
    let config = aws_sdk_dynamodb::config::Builder::from(&base)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A store on a new, empty table of its own, so tests run in parallel.
pub async fn fresh_store(endpoint: &str) -> DynamoStore {
    let table = format!("users-{}", uuid::Uuid::new_v4().simple());
    let store = DynamoStore::new(client(endpoint).await, table);
    store
        .ensure_table()
        .await
        .unwrap_or_else(|e| panic!("cannot create a table at {endpoint}: {e:?}"));
    store
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the server.
    Forward,
    /// Accept and never answer: a server that hangs.
    Hang,
}

/// A TCP proxy on 127.0.0.1 in front of the DynamoDB server. `stop` closes the port and every
/// open connection, as a crashed server would; `start` opens the same port again.
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
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
        };
        proxy.serve(listener, Mode::Forward);
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: TcpListener, mode: Mode) {
        let upstream = self.upstream;
        let task = tokio::spawn(async move {
            // Dropping this set (when the task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    match mode {
                        Mode::Forward => {
                            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        }
                        Mode::Hang => {
                            std::future::pending::<()>().await;
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
