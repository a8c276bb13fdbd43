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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = std::sync::Arc::new(std::sync::Mutex::new(GitHubState::default()));
        let shared = state.clone();
        let server = serve(listener, move |parts, body| {
            let (status, location, answer) = github_answer(&shared, parts, body);
            let mut headers = vec![("content-type", "application/json".to_owned())];
            headers.extend(location.map(|l| ("location", l)));
            (status, headers, answer)
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

/// The team's private key Apple would hand out (.p8) and its public half's coordinates.
pub const APPLE_TEAM_KEY: &str = include_str!("../fixtures/apple-team-key.p8");
const APPLE_TEAM_X: &str = "ZFXBKdVzwA0qMxxnB0t-gpGwMCInPD4A86lN_Bft5DE";
const APPLE_TEAM_Y: &str = "_3HBmet5tXmBrwaGcnOEs-8Z59Ovd-H-G-mewS6OU8E";
/// The server's own ID token key, and another team's key to sign a wrong client secret.
pub const APPLE_OTHER_KEY: &str = include_str!("../fixtures/apple-server-key.p8");
const APPLE_SERVER_X: &str = "74ANvU3kBxl2F_lfC2m1ac2yhRg0-KWf1Iqr676Evtc";
const APPLE_SERVER_Y: &str = "53w-VLoLltfW8geCerGA48smBXawyGRDVqKWV2IH6gQ";
pub const APPLE_TEAM_ID: &str = "ABCDE12345";
pub const APPLE_KEY_ID: &str = "KEY1234567";
pub const APPLE_CLIENT_ID: &str = "com.example.web";

/// A server shaped like Sign in with Apple: OpenID Connect whose authorization endpoint
/// answers with a form the browser posts back (`response_mode=form_post`), whose token
/// endpoint takes as client secret a JWT the team signed (ES256: `iss` the team, `sub` the
/// client, `aud` the issuer, `kid` the key), and whose ID tokens say `email_verified` as the
/// string `"true"`.
pub struct AppleShaped {
    pub issuer: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for AppleShaped {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Default)]
struct AppleState {
    /// Codes given: the nonce and PKCE challenge each was asked with.
    codes: std::collections::HashMap<String, (String, String)>,
}

impl AppleShaped {
    /// Signs in `email` (subject `001234.apple`) to whoever comes.
    pub async fn start(email: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let state = std::sync::Mutex::new(AppleState::default());
        let base = issuer.clone();
        let server = serve(listener, move |parts, body| {
            let (status, kind, answer) = apple_answer(&state, &base, email, parts, body);
            (status, vec![("content-type", kind.to_owned())], answer)
        });
        Self { issuer, server }
    }
}

fn apple_answer(
    state: &std::sync::Mutex<AppleState>,
    base: &str,
    email: &str,
    parts: &http::request::Parts,
    body: &[u8],
) -> (u16, &'static str, String) {
    use base64::Engine as _;
    use sha2::Digest;
    const JSON: &str = "application/json";
    let query = form_of(parts.uri.query().unwrap_or(""));
    match (parts.method.as_str(), parts.uri.path()) {
        ("GET", "/.well-known/openid-configuration") => (
            200,
            JSON,
            json!({"issuer": base, "authorization_endpoint": format!("{base}/auth/authorize"),
                   "token_endpoint": format!("{base}/auth/token"),
                   "jwks_uri": format!("{base}/auth/keys")})
            .to_string(),
        ),
        ("GET", "/auth/keys") => (
            200,
            JSON,
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "apple-server", "alg": "ES256",
                             "use": "sig", "x": APPLE_SERVER_X, "y": APPLE_SERVER_Y}]})
            .to_string(),
        ),
        ("GET", "/auth/authorize") => {
            if query.get("response_mode").map(String::as_str) != Some("form_post") {
                return (400, JSON, json!({"error": "invalid_request"}).to_string());
            }
            let code = uuid::Uuid::new_v4().simple().to_string();
            state.lock().unwrap().codes.insert(
                code.clone(),
                (
                    query.get("nonce").cloned().unwrap_or_default(),
                    query.get("code_challenge").cloned().unwrap_or_default(),
                ),
            );
            let page = format!(
                "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"code\" \
                 value=\"{code}\"><input type=\"hidden\" name=\"state\" value=\"{}\"></form>",
                query.get("redirect_uri").cloned().unwrap_or_default(),
                query.get("state").cloned().unwrap_or_default()
            );
            (200, "text/html", page)
        }
        ("POST", "/auth/token") => {
            let form = form_of(&String::from_utf8_lossy(body));
            let error = |e: &str| (400, JSON, json!({"error": e}).to_string());
            // The client secret: a JWT of the team's key.
            let Some(secret) = form.get("client_secret") else {
                return error("invalid_client");
            };
            let key =
                jsonwebtoken::DecodingKey::from_ec_components(APPLE_TEAM_X, APPLE_TEAM_Y).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            validation.set_audience(&[base]);
            validation.set_issuer(&[APPLE_TEAM_ID]);
            let header = jsonwebtoken::decode_header(secret).ok();
            let checked = jsonwebtoken::decode::<Value>(secret, &key, &validation).ok();
            let good = checked.is_some_and(|c| c.claims["sub"] == APPLE_CLIENT_ID)
                && header.and_then(|h| h.kid).as_deref() == Some(APPLE_KEY_ID)
                && form.get("client_id").map(String::as_str) == Some(APPLE_CLIENT_ID);
            if !good {
                return error("invalid_client");
            }
            let Some((nonce, challenge)) = form
                .get("code")
                .and_then(|c| state.lock().unwrap().codes.remove(c))
            else {
                return error("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return error("invalid_grant");
            }
            let now = shared::token::now_unix();
            let der = accounts::model::federation::apple_key_der(APPLE_OTHER_KEY).unwrap();
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some("apple-server".into());
            let id_token = jsonwebtoken::encode(
                &header,
                &json!({"iss": base, "aud": APPLE_CLIENT_ID, "sub": "001234.apple", "iat": now,
                        "exp": now + 600, "nonce": nonce, "email": email,
                        "email_verified": "true", "is_private_email": "false"}),
                &jsonwebtoken::EncodingKey::from_ec_der(&der),
            )
            .unwrap();
            (
                200,
                JSON,
                json!({"access_token": "a.apple", "token_type": "Bearer", "expires_in": 3600,
                       "id_token": id_token})
                .to_string(),
            )
        }
        _ => (404, JSON, "{}".into()),
    }
}

/// An answer of a test server: status, headers, body.
type Answered = (u16, Vec<(&'static str, String)>, String);

/// Serves `answer` on `listener` (HTTP/1.1), each request read whole, until aborted.
fn serve(
    listener: tokio::net::TcpListener,
    answer: impl Fn(&http::request::Parts, &[u8]) -> Answered + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let (status, headers, text) = answer(&parts, &body);
                            let mut response = hyper::Response::new(Full::new(Bytes::from(text)));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            for (name, value) in headers {
                                response.headers_mut().insert(name, value.parse().unwrap());
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
    })
}
