//! Lambda's Invoke API, for one function, in front of the Runtime API emulator: what the AWS
//! SDK's `Invoke` reaches, so a real function binary answers a real SDK call. (`cargo lambda
//! watch` serves Invoke too, but finds functions by their binary's name, not their ARN, and
//! builds them itself.)
//!
//! `POST /2015-03-31/functions/{name or ARN}/invocations`: the payload is handed to the
//! function; its result comes back as Lambda's `RequestResponse` answer: 200 with the result,
//! or with `X-Amz-Function-Error: Unhandled` when it failed. One invocation at a time, as one
//! execution environment runs them. A function that never answers gives the caller nothing
//! until its own timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::Child;
use tokio::sync::Mutex;

use crate::runtime_api::{Report, RuntimeApi};

/// How long an invocation waits for the function (Lambda's own function timeout).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(15);

pub struct InvokeFront {
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl InvokeFront {
    /// Serves the function `arn` (also reachable by its bare name) of `api`.
    pub async fn start(arn: &str, api: RuntimeApi) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let api = Arc::new(Mutex::new(api));
        let arn: Arc<str> = arn.into();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let api = Arc::clone(&api);
                let arn = Arc::clone(&arn);
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| invoke(Arc::clone(&api), Arc::clone(&arn), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, server }
    }

    /// `http://host:port`, an SDK endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for InvokeFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn answer(
    status: StatusCode,
    headers: &[(&'static str, &str)],
    body: &Value,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, value.parse().expect("a header value"));
    }
    response
}

/// `%XX` escapes decoded (the SDK escapes an ARN's colons in the path).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn invoke(
    api: Arc<Mutex<RuntimeApi>>,
    arn: Arc<str>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let name = match (method, segments.as_slice()) {
        (Method::POST, ["2015-03-31", "functions", name, "invocations"]) => percent_decoded(name),
        _ => {
            return Ok(answer(
                StatusCode::NOT_FOUND,
                &[("x-amzn-errortype", "UnknownOperationException")],
                &json!({"message": "not an Invoke request"}),
            ));
        }
    };
    let bare = arn.rsplit(':').next().unwrap_or_default();
    if name != *arn && name != bare {
        return Ok(answer(
            StatusCode::NOT_FOUND,
            &[("x-amzn-errortype", "ResourceNotFoundException")],
            &json!({"Type": "User", "message": format!("Function not found: {name}")}),
        ));
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            &[("x-amzn-errortype", "InvalidRequestContentException")],
            &json!({"Type": "User", "message": "Could not parse request body into json"}),
        ));
    };
    let report = api
        .lock()
        .await
        .answer_within(payload, FUNCTION_TIMEOUT)
        .await;
    let executed = ("x-amz-executed-version", "$LATEST");
    Ok(match report {
        Some(Report::Response { body, .. }) => answer(StatusCode::OK, &[executed], &body),
        Some(Report::Error { body, .. } | Report::InitError { body, .. }) => answer(
            StatusCode::OK,
            &[executed, ("x-amz-function-error", "Unhandled")],
            &body,
        ),
        None => answer(
            StatusCode::OK,
            &[executed, ("x-amz-function-error", "Unhandled")],
            &json!({"errorMessage": "Task timed out", "errorType": "Sandbox.Timedout"}),
        ),
    })
}

/// `upstream` behind scripts/test's call recorder (tests/iam/record_calls.py), appending to
/// `$IAM_CALLS_DIR/lambda.jsonl`, so the calls are checked against the templates' IAM
/// policies like every other AWS call: the recorder's URL, and its process (stopped when
/// dropped). Panics when `IAM_CALLS_DIR` is unset: these tests never skip the check.
pub async fn recorded(upstream: &str) -> (String, Child) {
    let dir = std::env::var("IAM_CALLS_DIR").unwrap_or_else(|_| {
        panic!(
            "IAM_CALLS_DIR is not set: run `scripts/test`, which records every AWS call there \
             and checks them against the templates' IAM policies"
        )
    });
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("address").port()
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("iam/record_calls.py");
    let child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(upstream)
        .arg(PathBuf::from(dir).join("lambda.jsonl"))
        .kill_on_drop(true)
        .spawn()
        .expect("start the call recorder");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (url, child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the call recorder did not start on port {port}");
}

/// A function played by the test, speaking the Runtime API to `runtime` (its
/// `AWS_LAMBDA_RUNTIME_API`): each event in turn is answered by `answer`, `Ok` as the result,
/// `Err` as the function's error. For answers no real hook gives (out of contract, failing).
pub fn scripted_function(
    runtime: String,
    answer: impl Fn(&Value) -> Result<Value, Value> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let base = format!("http://{runtime}/2018-06-01/runtime/invocation");
        loop {
            let Ok(next) = http.get(format!("{base}/next")).send().await else {
                return;
            };
            let Some(id) = next
                .headers()
                .get("lambda-runtime-aws-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
            else {
                return;
            };
            let event: Value = next.json().await.unwrap_or(Value::Null);
            let (outcome, body) = match answer(&event) {
                Ok(result) => ("response", result),
                Err(error) => ("error", error),
            };
            let sent = http
                .post(format!("{base}/{id}/{outcome}"))
                .json(&body)
                .send()
                .await;
            if sent.is_err() {
                return;
            }
        }
    })
}
