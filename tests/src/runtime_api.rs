//! A small Lambda Runtime API emulator: it hands events to a real `bootstrap` binary and
//! records what the binary answers, so the release binaries can be tested as Lambda runs them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Notify, mpsc};

/// What the function sent back to the Runtime API.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Response {
        request_id: String,
        body: Value,
    },
    Error {
        request_id: String,
        body: Value,
    },
    InitError {
        error_type_header: Option<String>,
        body: Value,
    },
}

struct State {
    events: Mutex<VecDeque<(String, Value)>>,
    event_ready: Notify,
    reports: mpsc::UnboundedSender<Report>,
}

pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    reports: mpsc::UnboundedReceiver<Report>,
    server: tokio::task::JoinHandle<()>,
    next_id: u64,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            events: Mutex::new(VecDeque::new()),
            event_ready: Notify::new(),
            reports: tx,
        });
        let server_state = Arc::clone(&state);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&server_state);
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(Arc::clone(&state), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            reports: rx,
            server,
            next_id: 0,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event and waits (bounded) for the function's answer to it.
    pub async fn invoke(&mut self, event: Value) -> Report {
        self.queue(event).await;
        self.next_report().await
    }

    /// Queues an event for the function's next `/invocation/next`, without waiting; its
    /// request id back.
    pub async fn queue(&mut self, event: Value) -> String {
        self.next_id += 1;
        let id = format!("req-{}", self.next_id);
        self.state
            .events
            .lock()
            .await
            .push_back((id.clone(), event));
        self.state.event_ready.notify_one();
        id
    }

    /// Queues an event and waits up to `within` for the function's answer to it (the report
    /// of an earlier event, answered late, is passed over): `None` when it did not answer.
    pub async fn answer_within(&mut self, event: Value, within: Duration) -> Option<Report> {
        let id = self.queue(event).await;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let report = tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .ok()??;
            let answered = match &report {
                Report::Response { request_id, .. } | Report::Error { request_id, .. } => {
                    *request_id == id
                }
                Report::InitError { .. } => true,
            };
            if answered {
                return Some(report);
            }
        }
    }

    /// The next report, or a panic after 20 s.
    pub async fn next_report(&mut self) -> Report {
        tokio::time::timeout(Duration::from_secs(20), self.reports.recv())
            .await
            .expect("the function answered within 20 s")
            .expect("the emulator is running")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let error_type_header = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => loop {
            if let Some((id, event)) = state.events.lock().await.pop_front() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis()
                    + 30_000;
                let mut response = reply(StatusCode::OK, &event.to_string());
                let headers = response.headers_mut();
                headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                headers.insert(
                    "lambda-runtime-deadline-ms",
                    deadline.to_string().parse().unwrap(),
                );
                headers.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:test"
                        .parse()
                        .unwrap(),
                );
                headers.insert(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000".parse().unwrap(),
                );
                headers.insert("content-type", "application/json".parse().unwrap());
                return Ok(response);
            }
            state.event_ready.notified().await;
        },
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let _ = state.reports.send(Report::Response {
                request_id: (*id).to_owned(),
                body: json(),
            });
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        (Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let _ = state.reports.send(Report::Error {
                request_id: (*id).to_owned(),
                body: json(),
            });
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let _ = state.reports.send(Report::InitError {
                error_type_header,
                body: json(),
            });
            Ok(reply(StatusCode::ACCEPTED, "{}"))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, "{}")),
    }
}

/// Where `scripts/test` put the release binaries (`cargo lambda build --release`). Panics with
/// instructions when unset: these tests never skip.
pub fn bootstrap(function: &str) -> PathBuf {
    let dir = std::env::var("LAMBDA_BUILD_DIR").unwrap_or_else(|_| {
        panic!(
            "LAMBDA_BUILD_DIR is not set. The runtime contract tests run the release binaries: \
             run `scripts/test`, which builds them with `cargo lambda build --release`."
        )
    });
    let path = PathBuf::from(dir).join(function).join("bootstrap");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test",
        path.display()
    );
    path
}

/// Starts a release bootstrap binary against `api`, with `env` on top of the variables Lambda
/// always sets.
pub fn spawn(function: &str, api: &RuntimeApi, env: &[(&str, String)]) -> Child {
    spawn_command(Command::new(bootstrap(function)), function, api, env)
}

/// Starts `command` as the Lambda function `function` against `api`: only the variables Lambda
/// always sets, and `env` on top.
pub fn spawn_command(
    mut command: Command,
    function: &str,
    api: &RuntimeApi,
    env: &[(&str, String)],
) -> Child {
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        // The execution role's credentials, named after the function without its dashes
        // (DynamoDB Local takes letters and digits only): scripts/test records each call
        // with its access key id, and tests/iam/check_calls.py checks it against that
        // function's IAM policy (DynamoDB Local runs with -sharedDb: one database for every
        // key).
        .env("AWS_ACCESS_KEY_ID", function.replace('-', ""))
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_SESSION_TOKEN", "test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("start the bootstrap binary")
}
