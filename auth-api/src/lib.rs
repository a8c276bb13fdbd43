//! auth-api: register, login, sessions (refresh, logout), password change, verify, `/me`,
//! JWKS and health as one lambda_http handler over a
//! [`Store`]. Answers REST API (v1), HTTP API (v2) and function-URL events alike.

use std::sync::Arc;
use std::time::Instant;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::{Clock, TokenIssuer, TokenVerifier};

pub mod actions;
pub mod backoff;
pub mod body;
pub mod browser;
pub mod config;
pub mod domain;
pub mod error;
pub mod lambda;
pub mod mail;
pub mod passwords;
pub mod recovery;
pub mod routes;
pub mod sdk;
pub mod sessions;
pub mod store;
pub mod users;

use error::ApiError;
use passwords::Passwords;
use routes::Route;
use sessions::SessionSettings;
use store::Store;

/// The handler's state, built once at cold start.
pub struct App<S> {
    pub store: S,
    pub issuer: TokenIssuer,
    pub verifier: TokenVerifier,
    pub passwords: Passwords,
    pub sessions: SessionSettings,
    /// The time, for every expiry, window and lock (a [`shared::SystemClock`] in Lambda).
    pub clock: Arc<dyn Clock>,
    /// Mail and the recovery flows' settings.
    pub recovery: recovery::Recovery,
    /// CORS origins and where the refresh token travels.
    pub browser: browser::BrowserSettings,
}

impl<S: Store> App<S> {
    /// Answers one request. Every outcome, client error or not, is an HTTP response: an `Err`
    /// would reach API Gateway as a 502.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let path = route_path(&req);
        let route = Route::from_path(&path);
        let result = match route {
            None if path == lambda::MALFORMED_EVENT_PATH => Err(ApiError::MalformedBody(
                "The request could not be read: its body is marked base64 but is not, or its \
                 path or Host header is not a valid URL."
                    .into(),
            )),
            None => Err(ApiError::NotFound),
            Some(route) if req.method() == http::Method::OPTIONS => {
                self.browser.preflight(route, &req)
            }
            Some(route) if req.method().as_str() != route.method() => {
                Err(ApiError::MethodNotAllowed {
                    allow: route.allow(),
                })
            }
            Some(Route::Register) => routes::register::register(self, &req).await,
            Some(Route::Login) => routes::login::login(self, &req).await,
            Some(Route::Verify) => routes::verify::verify(self, &req),
            Some(Route::Health) => Ok(routes::health::health()),
            Some(Route::Me) => routes::me::me(self, &req).await,
            Some(Route::Jwks) => routes::jwks::jwks(self),
            Some(Route::Refresh) => routes::sessions::refresh(self, &req).await,
            Some(Route::Logout) => routes::sessions::logout(self, &req).await,
            Some(Route::LogoutAll) => routes::sessions::logout_all(self, &req).await,
            Some(Route::Password) => routes::password::change_password(self, &req).await,
            Some(Route::EmailVerify) => routes::recovery::verify_email(self, &req).await,
            Some(Route::EmailVerifyResend) => routes::recovery::resend(self, &req).await,
            Some(Route::PasswordForgot) => routes::recovery::forgot(self, &req).await,
            Some(Route::PasswordReset) => routes::recovery::reset(self, &req).await,
        };
        let (mut response, user_id) = match result {
            Ok(reply) => (reply.response, reply.user_id),
            Err(err) => {
                // The one place a fault's cause is logged, with its whole chain.
                if err.is_fault() {
                    tracing::error!(
                        route = route.map_or("unmatched", Route::name),
                        error = %error_chain(&err),
                        "request failed"
                    );
                }
                (err.into_response(), None)
            }
        };
        self.browser.decorate(&req, &mut response);
        tracing::info!(
            route = route.map_or("unmatched", Route::name),
            method = %req.method(),
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            user_id = user_id.as_deref(),
            request_id = request_id(&req),
            "request"
        );
        response
    }
}

/// `err` and all its sources, joined with `: `.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The route path without the API Gateway stage. lambda_http puts a REST stage in front of
/// the path (`/prod/login`), and HTTP API named stages arrive inside `rawPath` too.
fn route_path(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(_)) if !req.raw_http_path().is_empty() => {
            req.raw_http_path().to_owned()
        }
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            let raw = if req.raw_http_path().is_empty() {
                req.uri().path()
            } else {
                req.raw_http_path()
            };
            match ctx.stage.as_deref() {
                Some(stage) if stage != "$default" => {
                    let prefix = format!("/{stage}");
                    match raw.strip_prefix(&prefix) {
                        Some(rest) if rest.starts_with('/') => rest.to_owned(),
                        Some("") => "/".to_owned(),
                        _ => raw.to_owned(),
                    }
                }
                _ => raw.to_owned(),
            }
        }
        _ => req.uri().path().to_owned(),
    }
}

fn request_id(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.request_id.clone(),
        RequestContext::ApiGatewayV2(ctx) => ctx.request_id.clone(),
        _ => None,
    }
}
