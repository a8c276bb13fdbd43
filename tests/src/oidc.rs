//! The authorization code flow driven as a browser drives it: a cookie jar, the hosted pages'
//! forms read from their HTML (hidden inputs included), redirects followed by hand so each can
//! be checked. For the integration tests and the log test.

use std::collections::HashMap;

use accounts::model::registry::{ClientRecord, ClientSpec, ClientType, GrantType, parse_scopes};
use accounts::store::Store;
use auth_api::App;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::{Answer, send};
use crate::events::{Event, Kind, encode};

pub const FORM: &str = "application/x-www-form-urlencoded";
/// The redirect URI the test clients register.
pub const REDIRECT: &str = "https://app.test/callback";
pub const POST_LOGOUT: &str = "https://app.test/signed-out";

/// A client that signs users in: `public` or confidential (then with its secret),
/// `first_party` or not, allowed `scopes`, the code and refresh grants.
pub async fn register_app<S: Store>(
    app: &App<S>,
    client_type: ClientType,
    first_party: bool,
    scopes: &str,
) -> (ClientRecord, Option<String>) {
    let (client, secret) = ClientRecord::create(
        ClientSpec {
            name: Some("Photo Book".into()),
            client_type: Some(client_type),
            scopes: Some(parse_scopes(scopes).unwrap()),
            grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
            redirect_uris: Some(vec![
                REDIRECT.into(),
                "http://127.0.0.1/native-callback".into(),
            ]),
            post_logout_redirect_uris: Some(vec![POST_LOGOUT.into()]),
            first_party: Some(first_party),
        },
        "tests",
        app.accounts.clock.now_ms(),
    )
    .unwrap();
    app.accounts.store.create_client(&client).await.unwrap();
    let secret = secret.map(|s| secrecy::ExposeSecret::expose_secret(&s.encode()).to_owned());
    (client, secret)
}

/// A PKCE pair (RFC 7636, S256).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
            + &URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The parameters of an authorization request for `client_id`.
pub fn authorization(client_id: &str, pkce: &Pkce, scope: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-8d1f"),
        ("nonce", "nonce-5a7e"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A browser: cookies kept per name as the pages set and clear them.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
    /// Every `Set-Cookie` seen, as sent.
    pub set_cookies: Vec<String>,
}

impl Browser {
    fn with_cookies(&self, event: Event) -> Event {
        if self.cookies.is_empty() {
            return event;
        }
        let header: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        event.header("cookie", &header.join("; "))
    }

    fn keep(&mut self, answer: &Answer) {
        for value in answer.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap().to_owned();
            let (pair, _) = text.split_once(';').unwrap_or((&text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(text);
        }
    }

    /// `GET path?query`.
    pub async fn get<S: Store>(
        &mut self,
        app: &App<S>,
        path: &str,
        query: &[(String, String)],
    ) -> Answer {
        let pairs: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let event = self.with_cookies(Event::get(Kind::RestV1, path).query(&pairs));
        let answer = send(app, event).await;
        self.keep(&answer);
        answer
    }

    /// `GET` of a relative `Location` of ours (`login?…`), under /oauth2/.
    pub async fn follow<S: Store>(&mut self, app: &App<S>, location: &str) -> Answer {
        let (path, query) = location.split_once('?').unwrap_or((location, ""));
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/oauth2/{path}")
        };
        self.get(app, &path, &parse_query(query)).await
    }

    /// `POST path` of a form.
    pub async fn post<S: Store>(
        &mut self,
        app: &App<S>,
        path: &str,
        form: &[(String, String)],
    ) -> Answer {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let event = self.with_cookies(
            Event::new(Kind::RestV1, "POST", path)
                .body(&body.join("&"))
                .header("content-type", FORM),
        );
        let answer = send(app, event).await;
        self.keep(&answer);
        answer
    }

    /// Submits the page's form (the one with `action`), its hidden inputs kept, `fields` set
    /// (a hidden input of the same name takes the value, as a script setting it would), and
    /// the submit button `button` (name, value) if given.
    pub async fn submit<S: Store>(
        &mut self,
        app: &App<S>,
        page: &Answer,
        fields: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Answer {
        let action = form_action(&page.text).expect("the page has a form");
        let mut form = hidden_inputs(&page.text);
        for (name, value) in fields {
            match form.iter_mut().find(|(n, _)| n == name) {
                Some(hidden) => hidden.1 = (*value).to_owned(),
                None => form.push(((*name).to_owned(), (*value).to_owned())),
            }
        }
        if let Some((name, value)) = button {
            form.push((name.to_owned(), value.to_owned()));
        }
        self.post(app, &format!("/oauth2/{action}"), &form).await
    }

    /// The whole sign-in: the authorization request, the sign-in form filled with `email` and
    /// `password`, and the redirect back to the client. The query the client gets.
    pub async fn sign_in<S: Store>(
        &mut self,
        app: &App<S>,
        request: &[(String, String)],
        email: &str,
        password: &str,
    ) -> HashMap<String, String> {
        let start = self.get(app, "/oauth2/authorize", request).await;
        assert_eq!(start.status, 303, "{}", start.text);
        let location = start.header("location").unwrap();
        if location.starts_with(REDIRECT) {
            // Signed in already: straight back to the client.
            return client_query(&start);
        }
        let page = self.follow(app, location).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let done = self
            .submit(
                app,
                &page,
                &[("email", email), ("password", password)],
                None,
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.text);
        client_query(&done)
    }
}

/// The query a redirect to the client carries, checked to go to [`REDIRECT`].
pub fn client_query(answer: &Answer) -> HashMap<String, String> {
    let location = answer
        .header("location")
        .unwrap_or_else(|| panic!("no redirect: {} {}", answer.status, answer.text));
    let (base, query) = location.split_once('?').expect("a query");
    assert_eq!(base, REDIRECT, "{location}");
    parse_query(query).into_iter().collect()
}

pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `<input type="hidden">` of the page, as (name, value).
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in html.split("<input type=\"hidden\" ").skip(1) {
        let name = attribute(piece, "name").unwrap();
        let value = attribute(piece, "value").unwrap_or_default();
        out.push((name, value));
    }
    out
}

/// The names of the page's visible inputs.
pub fn input_names(html: &str) -> Vec<String> {
    html.split("<input ")
        .skip(1)
        .filter(|p| !p.starts_with("type=\"hidden\""))
        .filter_map(|p| attribute(p, "name"))
        .collect()
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let tag = format!(" {}", &tag[..tag.find('>').unwrap_or(tag.len())]);
    let start = tag
        .find(&format!(" {name}=\""))
        .map(|i| i + name.len() + 3)?;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The `action` of the page's form.
pub fn form_action(html: &str) -> Option<String> {
    let start = html.find("<form method=\"post\" action=\"")? + 28;
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// `POST /oauth2/token` with `form`.
pub async fn token<S: Store>(app: &App<S>, form: &[(&str, &str)]) -> Answer {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    send(
        app,
        Event::new(Kind::RestV1, "POST", "/oauth2/token")
            .body(&body.join("&"))
            .header("content-type", FORM),
    )
    .await
}

/// The code exchange of a public client.
pub async fn exchange<S: Store>(app: &App<S>, client_id: &str, code: &str, pkce: &Pkce) -> Answer {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

/// The claims of a JWT, unchecked (the tests check what they need).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The header of a JWT.
pub fn header(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}
