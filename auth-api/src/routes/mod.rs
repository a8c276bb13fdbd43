//! The route table and the handlers behind it.

use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use shared::Subject;
use uuid::Uuid;

use crate::App;
use crate::error::ApiError;
use accounts::model::credentials::Email;
use accounts::model::session::{RefreshToken, SessionFamily};
use accounts::model::user::UserRecord;

pub mod account;
pub mod health;
pub mod jwks;
pub mod login;
pub mod me;
pub mod mfa;
pub mod password;
pub mod recovery;
pub mod register;
pub mod sessions;
pub mod verify;

/// A route of this API: one method on one path (which may hold a `{parameter}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    Verify,
    Health,
    Me,
    DeleteAccount,
    Jwks,
    Discovery,
    Refresh,
    Logout,
    LogoutAll,
    Password,
    EmailVerify,
    EmailVerifyResend,
    PasswordForgot,
    PasswordReset,
    Sessions,
    EndSession,
    LoginMfa,
    MfaEnroll,
    MfaConfirm,
    MfaDisable,
    MfaRecoveryCodes,
}

/// The routes a path names, with the value of its `{parameter}` if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch {
    pub routes: Vec<Route>,
    pub parameter: Option<String>,
}

impl PathMatch {
    /// The route for `method`, if the path has one.
    pub fn route(&self, method: &str) -> Option<Route> {
        self.routes.iter().copied().find(|r| r.method() == method)
    }

    /// The path's methods, e.g. `DELETE, GET` (for CORS preflights).
    pub fn methods(&self) -> String {
        let mut methods: Vec<&str> = self.routes.iter().map(|r| r.method()).collect();
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    /// Every method the path answers, for `Allow`: its own and the CORS preflight's.
    pub fn allow(&self) -> String {
        format!("{}, OPTIONS", self.methods())
    }
}

impl Route {
    /// The routes for a path (stage already removed), if any.
    pub fn matching(path: &str) -> Option<PathMatch> {
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        let mut found = PathMatch {
            routes: Vec::new(),
            parameter: None,
        };
        for route in Self::ALL {
            if let Some(parameter) = template_match(route.path(), path) {
                found.routes.push(route);
                found.parameter = parameter;
            }
        }
        (!found.routes.is_empty()).then_some(found)
    }

    /// The route for a method and path, if any.
    pub fn find(method: &str, path: &str) -> Option<Self> {
        Self::matching(path)?.route(method)
    }

    /// The one method this route answers.
    pub fn method(self) -> &'static str {
        match self {
            Route::Register
            | Route::Login
            | Route::Refresh
            | Route::Logout
            | Route::LogoutAll
            | Route::Password
            | Route::EmailVerify
            | Route::EmailVerifyResend
            | Route::PasswordForgot
            | Route::PasswordReset
            | Route::LoginMfa
            | Route::MfaEnroll
            | Route::MfaConfirm
            | Route::MfaDisable
            | Route::MfaRecoveryCodes => "POST",
            Route::Verify
            | Route::Health
            | Route::Me
            | Route::Jwks
            | Route::Discovery
            | Route::Sessions => "GET",
            Route::DeleteAccount | Route::EndSession => "DELETE",
        }
    }

    /// A stable name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Route::Register => "register",
            Route::Login => "login",
            Route::Verify => "verify",
            Route::Health => "health",
            Route::Me => "me",
            Route::DeleteAccount => "delete_account",
            Route::Jwks => "jwks",
            Route::Discovery => "discovery",
            Route::Refresh => "refresh",
            Route::Logout => "logout",
            Route::LogoutAll => "logout_all",
            Route::Password => "password",
            Route::EmailVerify => "email_verify",
            Route::EmailVerifyResend => "email_verify_resend",
            Route::PasswordForgot => "password_forgot",
            Route::PasswordReset => "password_reset",
            Route::Sessions => "sessions",
            Route::EndSession => "end_session",
            Route::LoginMfa => "login_mfa",
            Route::MfaEnroll => "mfa_enroll",
            Route::MfaConfirm => "mfa_confirm",
            Route::MfaDisable => "mfa_disable",
            Route::MfaRecoveryCodes => "mfa_recovery_codes",
        }
    }

    /// Every route, for checks that the template and the router agree.
    pub const ALL: [Route; 23] = [
        Route::Register,
        Route::Login,
        Route::Verify,
        Route::Health,
        Route::Me,
        Route::DeleteAccount,
        Route::Jwks,
        Route::Discovery,
        Route::Refresh,
        Route::Logout,
        Route::LogoutAll,
        Route::Password,
        Route::EmailVerify,
        Route::EmailVerifyResend,
        Route::PasswordForgot,
        Route::PasswordReset,
        Route::Sessions,
        Route::EndSession,
        Route::LoginMfa,
        Route::MfaEnroll,
        Route::MfaConfirm,
        Route::MfaDisable,
        Route::MfaRecoveryCodes,
    ];

    /// Whether API Gateway must put the authorizer in front of this route: these routes act
    /// for the caller the authorizer names.
    pub fn protected(self) -> bool {
        matches!(
            self,
            Route::Me
                | Route::DeleteAccount
                | Route::LogoutAll
                | Route::Password
                | Route::Sessions
                | Route::EndSession
                | Route::MfaEnroll
                | Route::MfaConfirm
                | Route::MfaDisable
                | Route::MfaRecoveryCodes
        )
    }

    /// The path this route is served at, as template.yaml and openapi.yaml write it.
    pub fn path(self) -> &'static str {
        match self {
            Route::Register => "/register",
            Route::Login => "/login",
            Route::Verify => "/verify",
            Route::Health => "/health",
            Route::Me | Route::DeleteAccount => "/me",
            Route::Jwks => "/.well-known/jwks.json",
            Route::Discovery => "/.well-known/openid-configuration",
            Route::Refresh => "/refresh",
            Route::Logout => "/logout",
            Route::LogoutAll => "/logout-all",
            Route::Password => "/password",
            Route::EmailVerify => "/email/verify",
            Route::EmailVerifyResend => "/email/verify/resend",
            Route::PasswordForgot => "/password/forgot",
            Route::PasswordReset => "/password/reset",
            Route::Sessions => "/sessions",
            Route::EndSession => "/sessions/{id}",
            Route::LoginMfa => "/login/mfa",
            Route::MfaEnroll => "/mfa/totp/enroll",
            Route::MfaConfirm => "/mfa/totp/confirm",
            Route::MfaDisable => "/mfa/totp/disable",
            Route::MfaRecoveryCodes => "/mfa/recovery-codes",
        }
    }
}

/// Whether `path` fits `template` (`/sessions/{id}`): `Some(parameter)` if it does, the
/// parameter being the value in the `{…}` segment, if the template has one.
fn template_match(template: &str, path: &str) -> Option<Option<String>> {
    let mut parameter = None;
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(parameter),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                parameter = Some(g.to_owned());
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// A successful answer, and the user it concerned (for the request log line).
pub struct Reply {
    pub response: Response<Body>,
    pub user_id: Option<String>,
}

impl Reply {
    /// A JSON response that is never cached (it carries credentials or personal data).
    pub fn json(status: StatusCode, body: &impl Serialize, user_id: Option<String>) -> Self {
        let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
        let mut response = Response::new(Body::Text(text));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        Self { response, user_id }
    }
}

impl Reply {
    /// 204 No Content.
    pub fn no_content(user_id: Option<String>) -> Self {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        Self { response, user_id }
    }
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    /// Absent when the refresh token travels only in its cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    refresh_token_expires_in: i64,
    /// New recovery codes, shown this once (MFA confirmation and regeneration).
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_codes: Option<&'a [String]>,
}

/// 200 with a fresh access token for `user` in session `session_id` and the refresh token
/// `refresh`, which expires
/// at `refresh_expires_at` (Unix seconds): in the body, in the `HttpOnly` cookie, or both, as
/// `REFRESH_TOKEN_TRANSPORT` says.
pub(crate) fn token_reply<S>(
    app: &App<S>,
    user: &UserRecord,
    family: &SessionFamily,
    refresh: &RefreshToken,
    refresh_expires_at: i64,
    now: i64,
) -> Result<Reply, ApiError> {
    token_reply_with_codes(app, user, family, refresh, refresh_expires_at, now, None)
}

/// [`token_reply`], with new recovery codes in the body.
pub(crate) fn token_reply_with_codes<S>(
    app: &App<S>,
    user: &UserRecord,
    family: &SessionFamily,
    refresh: &RefreshToken,
    refresh_expires_at: i64,
    now: i64,
    recovery_codes: Option<&[String]>,
) -> Result<Reply, ApiError> {
    let subject = Subject {
        user_id: user.user_id,
        email: user.email.to_string(),
        roles: user.roles.clone(),
        email_verified: user.email_verified,
        session_id: Some(family.family_id),
        mfa: family.mfa,
    };
    let issued = app.issuer.issue(&subject, now)?;
    let refresh_text = refresh.encode();
    let transport = app.browser.transport;
    let lifetime = (refresh_expires_at - now).max(0);
    let mut reply = Reply::json(
        StatusCode::OK,
        &TokenResponse {
            access_token: issued.token.expose_secret(),
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: transport.in_body().then(|| refresh_text.expose_secret()),
            refresh_token_expires_in: lifetime,
            recovery_codes,
        },
        Some(user.user_id.to_string()),
    );
    if transport.in_cookie() {
        app.browser
            .set_refresh_cookie(&mut reply, &refresh_text, lifetime);
    }
    Ok(reply)
}

/// The caller as the API Gateway authorizer named it (`sub` and `email` of the request
/// context). Only API Gateway can set these: nothing the client sends is read. A protected
/// route that arrives without them was deployed without the authorizer in front: 401.
pub(crate) fn caller(req: &Request) -> Result<(Uuid, Email), ApiError> {
    let field = |name: &str| authorizer_field(req, name);
    let (Some(sub), Some(email)) = (field("sub"), field("email")) else {
        tracing::warn!(
            path = req.uri().path(),
            "a protected route arrived without an authorizer context: protect it in the API"
        );
        return Err(ApiError::InvalidToken);
    };
    let user_id = Uuid::parse_str(sub).map_err(|_| ApiError::InvalidToken)?;
    let email = Email::parse(email).map_err(|_| ApiError::InvalidToken)?;
    Ok((user_id, email))
}

/// The session of the caller's access token (`sid`, passed on by the authorizer), if any.
pub(crate) fn caller_session(req: &Request) -> Option<Uuid> {
    Uuid::parse_str(authorizer_field(req, "sid")?).ok()
}

/// A string the authorizer put in the request context: a Lambda authorizer's context, or
/// (HTTP API's built-in JWT authorizer) the token's claims.
fn authorizer_field<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.authorizer.fields.get(name)?.as_str(),
        RequestContext::ApiGatewayV2(ctx) => {
            let authorizer = ctx.authorizer.as_ref()?;
            match authorizer.fields.get(name) {
                Some(value) => value.as_str(),
                None => authorizer
                    .jwt
                    .as_ref()?
                    .claims
                    .get(name)
                    .map(String::as_str),
            }
        }
        _ => None,
    }
}

/// What a new session records of its client: the user agent and the address.
pub(crate) fn client_info(req: &Request) -> accounts::model::session::ClientInfo {
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    accounts::model::session::ClientInfo::new(user_agent, source_ip(req))
}

/// Where a request comes from, for the counters keyed by source: the client address API
/// Gateway saw (never `X-Forwarded-For`, which the client writes); `unknown` when it gave
/// none (then all such requests share one counter).
pub fn source(req: &Request) -> accounts::model::backoff::Source {
    accounts::model::backoff::Source::new(source_ip(req).unwrap_or(""))
}

/// The client's address as API Gateway saw it.
pub(crate) fn source_ip(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        _ => None,
    }
}

/// One structured audit line: what happened, to which user, from where. Never a secret.
pub(crate) fn audit(event: &'static str, user_id: Option<&str>, req: &Request) {
    tracing::info!(event, user_id, source_ip = source_ip(req), "audit");
    if let Some(metric) = metric_of(event) {
        shared::metrics::emit(&[], &[(metric, 1.0, shared::metrics::Unit::Count)]);
    }
}

/// The metric an audit event counts toward, for the ones alarms and the dashboard watch.
fn metric_of(event: &str) -> Option<&'static str> {
    Some(match event {
        "login_succeeded" => "LoginSucceeded",
        "login_failed" | "login_refused_disabled" => "LoginFailed",
        "login_mfa_failed" => "MfaFailed",
        "backoff_started" | "email_limit_reached" => "BackoffStarted",
        "registered" => "Registrations",
        "refresh_reused" => "RefreshReuse",
        "mfa_enabled" => "MfaEnabled",
        "password_reset" => "PasswordResets",
        _ => return None,
    })
}
