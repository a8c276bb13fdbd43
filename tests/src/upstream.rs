//! A real upstream OpenID provider for the federation tests: npm `oauth2-mock-server`, run by
//! tests/federation/upstream.mjs, whose claims a test sets per sign-in.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct MockProvider {
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    control: String,
    _child: Child,
}

impl MockProvider {
    /// Starts one. Panics with instructions when Node.js or the package is missing: these
    /// tests never skip.
    pub async fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let tools = std::env::var("NODE_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join(".tools/node"));
        assert!(
            tools.join("node_modules/oauth2-mock-server").is_dir(),
            "{} has no oauth2-mock-server: run scripts/test, which installs it",
            tools.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("tests/federation/upstream.mjs"))
            .env("NODE_TOOLS", &tools)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (scripts/test installs Node.js tools)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the mock provider started within 30 s")
            .expect("its output")
            .expect("one line naming its URLs");
        let started: Value = serde_json::from_str(&line).expect("a JSON line");
        Self {
            issuer: started["issuer"]
                .as_str()
                .expect("issuer")
                .trim_end_matches('/')
                .to_owned(),
            control: started["control"].as_str().expect("control").to_owned(),
            _child: child,
        }
    }

    /// Every token it signs from now on carries `claims` (a null removes one).
    pub async fn answer_with(&self, claims: Value) {
        let sent = reqwest::Client::new()
            .post(&self.control)
            .json(&claims)
            .send()
            .await
            .expect("the mock provider's control answers");
        assert!(sent.status().is_success());
    }
}

/// A server shaped like GitHub's OAuth 2.0 (it has no OpenID Connect): `/login/oauth/
/// authorize` (answers at once with a code), `/login/oauth/access_token` (the client's
/// secret and the PKCE verifier checked, as GitHub does), and the REST API's `/api/v3/user`
/// and `/api/v3/user/emails` (GitHub Enterprise Server's paths) for its access token.
pub struct GitHubShaped {
    pub url: String,
    state: std::sync::Arc<std::sync::Mutex<GitHubState>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct GitHubState {
    /// Codes given, with the PKCE challenge each was asked with.
    codes: std::collections::HashMap<String, Option<String>>,
    tokens: Vec<String>,
    user: Value,
    emails: Value,
}

pub const GITHUB_CLIENT_SECRET: &str = "github-s3cr3t";

impl Drop for GitHubShaped {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GitHubShaped {
    pub async fn start() -> Self {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new(std::sync::Mutex::new(GitHubState::default()));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let (status, location, answer) =
                                    github_answer(&state, &parts, &body);
                                let mut response =
                                    hyper::Response::new(Full::new(Bytes::from(answer)));
                                *response.status_mut() =
                                    hyper::StatusCode::from_u16(status).unwrap();
                                response
                                    .headers_mut()
                                    .insert("content-type", "application/json".parse().unwrap());
                                if let Some(location) = location {
                                    response
                                        .headers_mut()
                                        .insert("location", location.parse().unwrap());
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state, server }
    }

    /// The user its API answers with from now on: `GET /user` and `GET /user/emails`.
    pub fn answer_with(&self, user: Value, emails: Value) {
        let mut state = self.state.lock().unwrap();
        state.user = user;
        state.emails = emails;
    }
}

fn form_of(text: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{text}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn github_answer(
    state: &std::sync::Mutex<GitHubState>,
    parts: &http::request::Parts,
    body: &[u8],
) -> (u16, Option<String>, String) {
    use sha2::Digest;
    let mut state = state.lock().unwrap();
    let path = parts.uri.path();
    let query = form_of(parts.uri.query().unwrap_or(""));
    let bearer = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_owned);
    let authorized = bearer.is_some_and(|t| state.tokens.contains(&t));
    match (parts.method.as_str(), path) {
        ("GET", "/login/oauth/authorize") => {
            let code = uuid::Uuid::new_v4().simple().to_string();
            state
                .codes
                .insert(code.clone(), query.get("code_challenge").cloned());
            let back = format!(
                "{}?code={code}&state={}",
                query.get("redirect_uri").cloned().unwrap_or_default(),
                query.get("state").cloned().unwrap_or_default()
            );
            (302, Some(back), "{}".into())
        }
        ("POST", "/login/oauth/access_token") => {
            let form = form_of(&String::from_utf8_lossy(body));
            // GitHub answers its errors with 200 and an error field.
            let error = |e: &str| (200, None, json!({"error": e}).to_string());
            if form.get("client_secret").map(String::as_str) != Some(GITHUB_CLIENT_SECRET) {
                return error("incorrect_client_credentials");
            }
            let Some(challenge) = form.get("code").and_then(|c| state.codes.remove(c)) else {
                return error("bad_verification_code");
            };
            if let Some(challenge) = challenge {
                use base64::Engine as _;
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()));
                if computed != challenge {
                    return error("bad_verification_code");
                }
            }
            let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
            state.tokens.push(token.clone());
            (
                200,
                None,
                json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"})
                    .to_string(),
            )
        }
        ("GET", "/api/v3/user") if authorized => (200, None, state.user.to_string()),
        ("GET", "/api/v3/user/emails") if authorized => (200, None, state.emails.to_string()),
        ("GET", "/api/v3/user" | "/api/v3/user/emails") => {
            (401, None, json!({"message": "Bad credentials"}).to_string())
        }
        _ => (404, None, json!({"message": "Not Found"}).to_string()),
    }
}
