//! local-api: both Lambdas behind a local API Gateway-like front, on one port, with no Docker
//! and no AWS. Routes and their protection come from template.yaml.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use accounts::flows::Accounts;
use accounts::mail::{MailDelivery, Outbox};
use accounts::model::mfa::MfaKey;
use accounts::model::session::SessionSettings;
use accounts::passwords::Passwords;
use accounts::recovery::{Recovery, RecoverySettings};
use accounts::store::Store;
use auth_api::App;
use auth_api::http::browser::{AllowedOrigins, BrowserSettings};
use authorizer::rules::Rules;
use authorizer::session::{SessionCheck, SessionCheckSettings};
use authorizer::{Authorizer, V2Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shared::config::{self, ConfigError, Env, Overlay, TokenSettings};
use shared::{KeySet, SigningKey, TokenIssuer, TokenVerifier};
use tokio::net::TcpListener;

pub mod dev_client;
pub mod events;
pub mod gateway;
pub mod hosts;
pub mod jwt;
pub mod template;
pub mod web;

pub use gateway::Gateway;
use gateway::HttpRequest;
use jwt::JwtAuthorizer;
use template::{ApiKind, GatewaySpec, Setting};

/// Local settings: environment variables first, then the template's parameter defaults, then
/// local defaults. Nothing is required.
pub struct LocalConfig {
    pub key: SigningKey,
    /// The keys tokens are verified with (auth-api's `/verify` and the authorizer alike):
    /// `JWT_PUBLIC_KEYS` when set (it must hold the signing key, as in Lambda), else the
    /// signing key alone.
    pub keys: KeySet,
    /// Whether the key was generated for this run.
    pub ephemeral_key: bool,
    pub settings: TokenSettings,
    pub bcrypt_cost: u32,
    pub rules: Option<Rules>,
    /// Lifetime of issued access tokens (`ACCESS_TOKEN_TTL_SECONDS`).
    pub access_token_ttl_seconds: u64,
    /// `REFRESH_TOKEN_TTL_SECONDS`, `REFRESH_REUSE_GRACE_SECONDS`, `SESSION_MAX_LIFETIME_SECONDS`.
    pub sessions: SessionSettings,
    /// The recovery flows' settings (`APP_NAME`, link templates, token lifetimes, …).
    pub recovery: RecoverySettings,
    /// Where local-api's mail goes: kept in memory, echoed on the console, and listed at
    /// `GET /_local/outbox`.
    pub outbox: Arc<Outbox>,
    /// The time (the system's; tests move a `ManualClock`).
    pub clock: Arc<dyn shared::Clock>,
    /// Whether `JWT_ISSUER` named the issuer; otherwise it is local-api's own URL.
    pub issuer_from_env: bool,
    /// `CORS_ALLOWED_ORIGINS` (else the template's `CorsAllowedOrigins`; main adds the
    /// example page's origins when it serves it and nothing else is set) and
    /// `REFRESH_TOKEN_TRANSPORT` (locally `both`: the example page uses the cookie, curl the
    /// body).
    pub browser: BrowserSettings,
    /// `AUTHORIZER_CHECK_SESSION` (locally on unless set to false: a revoked session is
    /// refused at once) and `AUTHORIZER_SESSION_CACHE_SECONDS` (else the template's
    /// `SessionCacheSeconds`).
    pub session_check: SessionCheckSettings,
    /// `MFA_ENCRYPTION_KEY`, else a key generated for this run (enrollments then last as long
    /// as it, like the in-memory users).
    pub mfa_key: MfaKey,
    /// Whether `mfa_key` was generated for this run.
    pub ephemeral_mfa_key: bool,
    /// `CLIENT_TOKEN_TTL_SECONDS`, default 3600.
    pub client_token_ttl_seconds: u64,
    /// `PUBLISHED_SCOPES`, default none.
    pub published_scopes: Vec<String>,
    /// `BRAND_NAME`, `BRAND_COLOR`, `BRAND_LOGO_URL`.
    pub pages: auth_api::http::pages::Branding,
    /// `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`, `WEBAUTHN_RP_NAME`; unset, main turns passkeys on
    /// for `localhost` once it knows its ports ([`LocalConfig::passkeys_on_localhost`]).
    pub passkeys: Option<accounts::model::passkey::PasskeySettings>,
    /// `HOOK_BEFORE_USER_CREATED`, `HOOK_SECRET`, `HOOK_TIMEOUT_MS`, `HOOK_FAILURE`, as in
    /// auth-api (plain `http://127.0.0.1` URLs allowed), over HTTPS or HTTP.
    pub hooks: accounts::hooks::Hooks,
    /// `FEDERATION_PROVIDERS` (with `FEDERATION_SECRETS`), as in auth-api: a local upstream
    /// may be named by its `http://127.0.0.1` issuer. `FEDERATION_APP_URL` defaults to the
    /// example page ([`LocalConfig::link_to_page_if_unset`]).
    pub federation: accounts::federation::Federation,
    /// Whether `FEDERATION_APP_URL` was set.
    federation_app_url_from_env: bool,
}

impl LocalConfig {
    pub fn from_env(env: &dyn Env, spec: &GatewaySpec) -> Result<Self, ConfigError> {
        let param = |name: &str| spec.parameters.get(name).filter(|v| !v.is_empty()).cloned();
        let (key, ephemeral_key) = if config::optional(env, "JWT_SIGNING_KEY").is_some()
            || config::optional(env, "JWT_SECRET").is_some()
        {
            (config::signing_key_from_env(env)?, false)
        } else {
            // HTTP API's JWT authorizer verifies RS256 only.
            let key = match spec.kind {
                ApiKind::Rest => SigningKey::ed25519_generate(None),
                ApiKind::Http => SigningKey::rsa_generate(None),
            }
            .map_err(|e| ConfigError::new("JWT_SIGNING_KEY", e.to_string()))?;
            (key, true)
        };
        let keys = if config::optional(env, "JWT_PUBLIC_KEYS").is_some() {
            config::key_set_from_env(env, Some(&key))?
        } else {
            let mut own = KeySet::default();
            own.insert(key.verification_key())
                .map_err(|e| ConfigError::new("JWT_KEY_ID", e.to_string()))?;
            own
        };
        let issuer = config::optional(env, "JWT_ISSUER");
        if let Some(issuer) = &issuer {
            config::check_issuer_url(issuer).map_err(|m| ConfigError::new("JWT_ISSUER", m))?;
        }
        let settings = TokenSettings {
            // Unless set, local-api's own URL once it listens (LocalConfig::listening_at):
            // the issuer is where the discovery document is served.
            issuer: issuer
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:3000".into()),
            audience: config::optional(env, "JWT_AUDIENCE")
                .or_else(|| param("JwtAudience"))
                .unwrap_or_else(|| "local-api".into()),
        };
        let bcrypt_cost = match config::optional(env, "BCRYPT_COST") {
            Some(_) => accounts::settings::bcrypt_cost_from_env(env)?,
            None => 10,
        };
        let rules = config::optional(env, "AUTHORIZER_RULES")
            .or_else(|| param("AuthorizerRules"))
            .map(|json| Rules::parse(&json))
            .transpose()?;
        let mfa_key = accounts::settings::mfa_key_from_env(env)?;
        let recovery = accounts::settings::recovery_from_env(env)?;
        let passkeys =
            accounts::settings::passkeys_from_env(env, &recovery.app_name, mfa_key.as_ref())?;
        let access_token_ttl_seconds =
            config::number(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 86_400)?;
        let mut browser_env = Overlay::new(env);
        if config::optional(env, "CORS_ALLOWED_ORIGINS").is_none()
            && let Some(origins) = param("CorsAllowedOrigins")
        {
            browser_env.set("CORS_ALLOWED_ORIGINS", origins);
        }
        if config::optional(env, "REFRESH_TOKEN_TRANSPORT").is_none() {
            browser_env.set("REFRESH_TOKEN_TRANSPORT", "both".into());
        }
        let mut session_env = Overlay::new(env);
        if config::optional(env, "AUTHORIZER_CHECK_SESSION").is_none() {
            session_env.set("AUTHORIZER_CHECK_SESSION", "true".into());
        }
        if config::optional(env, "AUTHORIZER_SESSION_CACHE_SECONDS").is_none()
            && let Some(seconds) = param("SessionCacheSeconds")
        {
            session_env.set("AUTHORIZER_SESSION_CACHE_SECONDS", seconds);
        }
        Ok(Self {
            key,
            keys,
            ephemeral_key,
            settings,
            bcrypt_cost,
            rules,
            access_token_ttl_seconds,
            sessions: accounts::settings::sessions_from_env(env)?,
            recovery,
            outbox: Arc::new(Outbox::echoing()),
            clock: Arc::new(shared::SystemClock),
            issuer_from_env: issuer.is_some(),
            browser: auth_api::config::browser_from_env(&browser_env)?,
            session_check: SessionCheckSettings::from_env(&session_env)?,
            ephemeral_mfa_key: mfa_key.is_none(),
            mfa_key: mfa_key.unwrap_or_else(MfaKey::generate),
            client_token_ttl_seconds: accounts::settings::client_token_ttl_from_env(env)?,
            published_scopes: auth_api::config::published_scopes_from_env(env)?,
            pages: auth_api::http::pages::Branding::from_env(env)?,
            passkeys,
            federation: auth_api::federation::with_upstream(
                accounts::settings::federation_from_env(env, Some("http://localhost/"))?,
            )?,
            federation_app_url_from_env: config::optional(env, "FEDERATION_APP_URL").is_some(),
            hooks: {
                let hooks = accounts::hooks::hooks_from_env(env)?;
                if hooks.any_lambda() {
                    // Wired by main, with the SDK's configuration (credentials, endpoint).
                    hooks
                } else {
                    auth_api::hooks::with_transports(hooks, None)?
                }
            },
        })
    }

    /// Turns passkeys on for pages at `origins` (all on `localhost`, the RP ID: browsers
    /// refuse an IP address as one), unless `WEBAUTHN_RP_ID` chose otherwise. The RP name is
    /// `APP_NAME`'s.
    pub fn passkeys_on_localhost(&mut self, origins: Vec<String>) -> Result<(), ConfigError> {
        if self.passkeys.is_some() {
            return Ok(());
        }
        let rp = accounts::model::webauthn::RelyingParty::new(
            "localhost",
            &self.recovery.app_name,
            &origins,
        )
        .map_err(|e| ConfigError::new("WEBAUTHN_ORIGINS", e.to_string()))?;
        self.passkeys = Some(accounts::model::passkey::PasskeySettings {
            rp,
            decoy_key: self.mfa_key.derive(b"passkey decoys v1"),
        });
        Ok(())
    }

    /// local-api listens at `url`: unless `JWT_ISSUER` says otherwise, that is the issuer,
    /// so `{issuer}/.well-known/openid-configuration` leads back here.
    pub fn listening_at(&mut self, url: &str) {
        if !self.issuer_from_env {
            self.settings.issuer = url.trim_end_matches('/').to_owned();
        }
    }

    /// Points the mails' links at the example page served at `origin` (its verify and reset
    /// screens, which read the token from the fragment), unless `VERIFY_EMAIL_URL_TEMPLATE`,
    /// `RESET_PASSWORD_URL_TEMPLATE` or `APP_URL_TEMPLATE` chose otherwise.
    pub fn link_to_page_if_unset(&mut self, env: &dyn Env, origin: &str) {
        let app_url = config::optional(env, "APP_URL_TEMPLATE").is_some();
        if !app_url && config::optional(env, "VERIFY_EMAIL_URL_TEMPLATE").is_none() {
            self.recovery.verify_url = format!("{origin}/verify-email#token={{token}}");
        }
        if !app_url && config::optional(env, "RESET_PASSWORD_URL_TEMPLATE").is_none() {
            self.recovery.reset_url = format!("{origin}/reset-password#token={{token}}");
        }
        if !self.federation_app_url_from_env {
            self.federation.app_url = Some(format!("{origin}/"));
        }
    }

    /// Allows `origins` (the example page's) when no origin list was configured.
    pub fn allow_origins_if_unset(&mut self, origins: Vec<String>) {
        if self.browser.allowed_origins.is_none() && !origins.is_empty() {
            self.browser.allowed_origins = AllowedOrigins::List(origins);
        }
    }

    /// The issuer local-api's auth-api signs with.
    pub fn issuer(&self) -> TokenIssuer {
        TokenIssuer::new(
            self.key.clone(),
            self.settings.clone(),
            self.access_token_ttl_seconds,
        )
    }

    fn verifier(&self) -> TokenVerifier {
        TokenVerifier::new(
            self.keys.clone(),
            self.settings.clone(),
            shared::token::DEFAULT_LEEWAY_SECONDS,
        )
    }

    /// The gateway with both handlers, over `store`.
    pub fn gateway<S: Store>(
        &self,
        spec: GatewaySpec,
        store: S,
    ) -> Result<Gateway<S>, ConfigError> {
        let passwords = Passwords::new(self.bcrypt_cost)
            .map_err(|e| ConfigError::new("BCRYPT_COST", e.to_string()))?;
        let app = App {
            accounts: Accounts {
                store,
                issuer: self.issuer(),
                passwords,
                sessions: self.sessions,
                clock: Arc::clone(&self.clock),
                recovery: Recovery {
                    mail: MailDelivery::Outbox(Arc::clone(&self.outbox)),
                    settings: self.recovery.clone(),
                },
                mfa_key: Some(self.mfa_key.clone()),
                client_token_ttl_seconds: self.client_token_ttl_seconds,
                passkeys: self.passkeys.clone(),
                hooks: self.hooks.clone(),
                federation: self.federation.clone(),
            },
            verifier: self.verifier(),
            browser: self.browser.clone(),
            published_scopes: self.published_scopes.clone(),
            pages: self.pages.clone(),
        };
        let authorizer = Authorizer::new(self.verifier(), self.rules.clone(), V2Response::Iam);
        // The gateway's own answers as the template deploys them with these settings.
        let parameters = HashMap::from([
            (
                "CorsAllowedOrigins".to_owned(),
                self.browser.allowed_origins.to_setting(),
            ),
            (
                "RefreshTokenTransport".to_owned(),
                self.browser.transport.as_str().to_owned(),
            ),
        ]);
        let responses = spec
            .gateway_responses(&parameters)
            .map_err(|e| ConfigError::new("template", e.to_string()))?;
        let jwt = spec.jwt.as_ref().map(|jwt| {
            let resolve = |setting: &Setting| match setting {
                Setting::Literal(value) => value.clone(),
                // The parameters auth-api is given, as local-api sets them.
                Setting::Parameter(name) if name == "JwtIssuer" => self.settings.issuer.clone(),
                Setting::Parameter(name) if name == "JwtAudience" => self.settings.audience.clone(),
                Setting::Parameter(name) => spec.parameters.get(name).cloned().unwrap_or_default(),
            };
            JwtAuthorizer::new(
                resolve(&jwt.issuer),
                jwt.audience.iter().map(resolve).collect(),
            )
        });
        let session_check = self
            .session_check
            .enabled
            .then(|| SessionCheck::new(self.session_check.cache_seconds, Arc::clone(&self.clock)));
        Ok(Gateway::new(
            spec,
            responses,
            app,
            authorizer,
            session_check,
            jwt,
        ))
    }
}

/// Serves `gateway` on `listener` until `shutdown` completes; in-flight requests finish first.
pub async fn serve<S: Store + 'static>(
    listener: TcpListener,
    gateway: Arc<Gateway<S>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let gateway = Arc::clone(&gateway);
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let gateway = Arc::clone(&gateway);
                        async move { Ok::<_, Infallible>(answer(&gateway, req, peer).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    drop(listener);
    // Let open connections finish what they are doing, briefly.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

async fn answer<S: Store>(
    gateway: &Gateway<S>,
    req: hyper::Request<Incoming>,
    peer: std::net::SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    // One byte over API Gateway's limit is enough to refuse the request.
    let body = match Limited::new(body, 10 * 1024 * 1024 + 1).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::from(vec![0; 10 * 1024 * 1024 + 1]),
    };
    let (response, decision) = gateway
        .handle(HttpRequest {
            method: method.clone(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
            source_ip: peer,
        })
        .await;
    tracing::info!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        authorizer = decision.as_str(),
        "access"
    );
    response
}
