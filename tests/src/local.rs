//! A local-api spawned in process on a free port, reached over real HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use accounts::store::{MemoryStore, Store};
use local_api::template::{self, GatewaySpec};
use local_api::{Gateway, LocalConfig, serve};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::STRONG_PASSWORD;

/// The template SAM deploys.
pub const TEMPLATE: &str = include_str!("../../template.yaml");
/// The zero-Lambda variant: an HTTP API with the built-in JWT authorizer.
pub const HTTP_TEMPLATE: &str = include_str!("../../template-http-api.yaml");

/// local-api over the store `S` (in memory unless a test says otherwise).
pub struct LocalApi<S: Store + 'static = MemoryStore> {
    pub url: String,
    pub gateway: Arc<Gateway<S>>,
    pub config: LocalConfig,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl<S: Store + 'static> LocalApi<S> {
    /// Starts local-api over `store` with `env` as its environment and the real template,
    /// changed by `tweak` where a test needs another gateway shape.
    pub async fn spawn(
        store: S,
        env: &[(&str, &str)],
        tweak: impl FnOnce(&mut GatewaySpec),
    ) -> Self {
        Self::spawn_with_clock(store, env, tweak, Arc::new(shared::SystemClock)).await
    }

    /// Like [`LocalApi::spawn`], with `clock` as the handlers' time.
    pub async fn spawn_with_clock(
        store: S,
        env: &[(&str, &str)],
        tweak: impl FnOnce(&mut GatewaySpec),
        clock: Arc<dyn shared::Clock>,
    ) -> Self {
        Self::spawn_template(TEMPLATE, store, env, tweak, clock).await
    }

    /// Like [`LocalApi::spawn_with_clock`], from the template `text`.
    pub async fn spawn_template(
        text: &str,
        store: S,
        env: &[(&str, &str)],
        tweak: impl FnOnce(&mut GatewaySpec),
        clock: Arc<dyn shared::Clock>,
    ) -> Self {
        let mut spec = template::parse(text).expect("the template parses");
        tweak(&mut spec);
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        let mut with_cost = env.clone();
        with_cost.entry("BCRYPT_COST").or_insert("4");
        with_cost.entry("BCRYPT_ALLOW_LOW_COST").or_insert("true");
        let mut config = LocalConfig::from_env(&with_cost, &spec).expect("local config");
        config.clock = clock;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        config.listening_at(&url);
        let gateway = Arc::new(config.gateway(spec, store).expect("gateway"));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, Arc::clone(&gateway), async {
            let _ = stopped.await;
        }));
        Self {
            url,
            gateway,
            config,
            stop: Some(stop),
            task,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A machine token over HTTP: a client allowed `scopes` registered in the gateway's
    /// store, then `POST /oauth2/token` with its id and secret (HTTP Basic).
    pub async fn machine_token(&self, http: &reqwest::Client, scopes: &str) -> String {
        use accounts::model::registry::{ClientRecord, ClientSpec, parse_scopes};
        use secrecy::ExposeSecret;
        let (client, secret) = ClientRecord::create(
            ClientSpec {
                name: Some("machine".into()),
                scopes: Some(parse_scopes(scopes).expect("scopes")),
                ..ClientSpec::default()
            },
            "tests",
            shared::token::now_unix_ms(),
        )
        .expect("a client");
        self.gateway
            .app()
            .accounts
            .store
            .create_client(&client)
            .await
            .expect("stored");
        let secret = secret.expect("a secret").encode();
        let answer = http
            .post(self.at("/oauth2/token"))
            .basic_auth(client.client_id.as_str(), Some(secret.expose_secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("local-api answers");
        assert_eq!(answer.status(), 200, "the token endpoint");
        let body: Value = answer.json().await.expect("a token response");
        body["access_token"].as_str().expect("a token").to_owned()
    }

    /// Registers `email` (with [`STRONG_PASSWORD`]) over HTTP; the new user's id.
    pub async fn register(&self, http: &reqwest::Client, email: &str) -> String {
        let answer = http
            .post(self.at("/register"))
            .json(&json!({"email": email, "password": STRONG_PASSWORD}))
            .send()
            .await
            .expect("local-api answers");
        assert_eq!(answer.status(), 201, "register {email}");
        let user: Value = answer.json().await.expect("a JSON user");
        user["user_id"].as_str().expect("a user id").to_owned()
    }

    /// Verifies `email` over HTTP with the link of the newest verification mail in
    /// local-api's outbox.
    pub async fn verify(&self, http: &reqwest::Client, email: &str) {
        let mails: Vec<Value> = http
            .get(self.at("/_local/outbox"))
            .send()
            .await
            .expect("local-api answers")
            .json()
            .await
            .expect("the outbox as JSON");
        let text = mails
            .iter()
            .rev()
            .find(|m| {
                m["to"] == email
                    && m["subject"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("Verify"))
            })
            .and_then(|m| m["text"].as_str())
            .unwrap_or_else(|| panic!("no verification mail to {email}"));
        let answer = http
            .post(self.at("/email/verify"))
            .json(&json!({"token": crate::app::link_token(text)}))
            .send()
            .await
            .expect("local-api answers");
        assert_eq!(answer.status(), 200, "verify {email}");
    }

    /// Logs `email` in over HTTP; the token response (200 asserted).
    pub async fn login(&self, http: &reqwest::Client, email: &str, password: &str) -> Value {
        let answer = http
            .post(self.at("/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("local-api answers");
        assert_eq!(answer.status(), 200, "login {email}");
        answer.json().await.expect("a JSON token response")
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl<S: Store + 'static> Drop for LocalApi<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
