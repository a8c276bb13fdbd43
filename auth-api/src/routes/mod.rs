//! The route table and the handlers behind it.

use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use shared::Subject;
use uuid::Uuid;

use crate::App;
use crate::domain::Email;
use crate::error::ApiError;
use crate::sessions::RefreshToken;
use crate::users::UserRecord;

pub mod health;
pub mod jwks;
pub mod login;
pub mod me;
pub mod password;
pub mod recovery;
pub mod register;
pub mod sessions;
pub mod verify;

/// A route of this API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    Verify,
    Health,
    Me,
    Jwks,
    Refresh,
    Logout,
    LogoutAll,
    Password,
    EmailVerify,
    EmailVerifyResend,
    PasswordForgot,
    PasswordReset,
}

impl Route {
    /// The route for a path (stage already removed), if any.
    pub fn from_path(path: &str) -> Option<Self> {
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        match path {
            "/register" => Some(Route::Register),
            "/login" => Some(Route::Login),
            "/verify" => Some(Route::Verify),
            "/health" => Some(Route::Health),
            "/me" => Some(Route::Me),
            "/.well-known/jwks.json" => Some(Route::Jwks),
            "/refresh" => Some(Route::Refresh),
            "/logout" => Some(Route::Logout),
            "/logout-all" => Some(Route::LogoutAll),
            "/password" => Some(Route::Password),
            "/email/verify" => Some(Route::EmailVerify),
            "/email/verify/resend" => Some(Route::EmailVerifyResend),
            "/password/forgot" => Some(Route::PasswordForgot),
            "/password/reset" => Some(Route::PasswordReset),
            _ => None,
        }
    }

    /// The one method this route answers, as sent in `Allow`.
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
            | Route::PasswordReset => "POST",
            Route::Verify | Route::Health | Route::Me | Route::Jwks => "GET",
        }
    }

    /// Every method this route answers, for `Allow`: its own and the CORS preflight's.
    pub fn allow(self) -> &'static str {
        match self.method() {
            "GET" => "GET, OPTIONS",
            _ => "POST, OPTIONS",
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
            Route::Jwks => "jwks",
            Route::Refresh => "refresh",
            Route::Logout => "logout",
            Route::LogoutAll => "logout_all",
            Route::Password => "password",
            Route::EmailVerify => "email_verify",
            Route::EmailVerifyResend => "email_verify_resend",
            Route::PasswordForgot => "password_forgot",
            Route::PasswordReset => "password_reset",
        }
    }

    /// Every route, for checks that the template and the router agree.
    pub const ALL: [Route; 14] = [
        Route::Register,
        Route::Login,
        Route::Verify,
        Route::Health,
        Route::Me,
        Route::Jwks,
        Route::Refresh,
        Route::Logout,
        Route::LogoutAll,
        Route::Password,
        Route::EmailVerify,
        Route::EmailVerifyResend,
        Route::PasswordForgot,
        Route::PasswordReset,
    ];

    /// Whether API Gateway must put the authorizer in front of this route: these routes act
    /// for the caller the authorizer names.
    pub fn protected(self) -> bool {
        matches!(self, Route::Me | Route::LogoutAll | Route::Password)
    }

    /// The path this route is served at.
    pub fn path(self) -> &'static str {
        match self {
            Route::Register => "/register",
            Route::Login => "/login",
            Route::Verify => "/verify",
            Route::Health => "/health",
            Route::Me => "/me",
            Route::Jwks => "/.well-known/jwks.json",
            Route::Refresh => "/refresh",
            Route::Logout => "/logout",
            Route::LogoutAll => "/logout-all",
            Route::Password => "/password",
            Route::EmailVerify => "/email/verify",
            Route::EmailVerifyResend => "/email/verify/resend",
            Route::PasswordForgot => "/password/forgot",
            Route::PasswordReset => "/password/reset",
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
}

/// 200 with a fresh access token for `user` and the refresh token `refresh`, which expires
/// at `refresh_expires_at` (Unix seconds): in the body, in the `HttpOnly` cookie, or both, as
/// `REFRESH_TOKEN_TRANSPORT` says.
pub(crate) fn token_reply<S>(
    app: &App<S>,
    user: &UserRecord,
    refresh: &RefreshToken,
    refresh_expires_at: i64,
    now: i64,
) -> Result<Reply, ApiError> {
    let subject = Subject {
        user_id: user.user_id,
        email: user.email.to_string(),
        roles: user.roles.clone(),
        email_verified: user.email_verified,
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
    let fields = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => Some(&ctx.authorizer.fields),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().map(|a| &a.fields),
        _ => None,
    };
    let field = |name: &str| fields?.get(name)?.as_str();
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

/// The client's address as API Gateway saw it.
fn source_ip(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        _ => None,
    }
}

/// One structured audit line: what happened, to which user, from where. Never a secret.
pub(crate) fn audit(event: &'static str, user_id: Option<&str>, req: &Request) {
    tracing::info!(event, user_id, source_ip = source_ip(req), "audit");
}
