//! auth-api: register, login, sessions (refresh, logout), password change, verify, `/me`,
//! JWKS and health as one lambda_http handler over a
//! [`Store`]. Answers REST API (v1), HTTP API (v2) and function-URL events alike.

use std::sync::Arc;
use std::time::Instant;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::{Clock, TokenIssuer, TokenVerifier};

pub mod body;
pub mod browser;
pub mod config;
pub mod error;
pub mod lambda;
pub mod routes;

use accounts::model::session::SessionSettings;
use accounts::passwords::Passwords;
use accounts::store::Store;
use error::ApiError;
use routes::Route;
use shared::metrics::Unit::{Count, Milliseconds};

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
    pub recovery: accounts::recovery::Recovery,
    /// CORS origins and where the refresh token travels.
    pub browser: browser::BrowserSettings,
    /// Seals TOTP secrets; `None`: two-factor sign-in is unavailable (503).
    pub mfa_key: Option<accounts::model::mfa::MfaKey>,
}

impl<S: Store> App<S> {
    /// Answers one request. Every outcome, client error or not, is an HTTP response: an `Err`
    /// would reach API Gateway as a 502.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let path = route_path(&req);
        let matched = Route::matching(&path);
        let method = req.method().as_str();
        let route = matched.as_ref().and_then(|m| m.route(method));
        let parameter = matched.as_ref().and_then(|m| m.parameter.clone());
        let result = match (&matched, route) {
            (None, _) if path == lambda::MALFORMED_EVENT_PATH => Err(ApiError::MalformedBody(
                "The request could not be read: its body is marked base64 but is not, or its \
                 path or Host header is not a valid URL."
                    .into(),
            )),
            (None, _) => Err(ApiError::NotFound),
            (Some(matched), _) if req.method() == http::Method::OPTIONS => {
                self.browser.preflight(matched, &req)
            }
            (Some(matched), None) => Err(ApiError::MethodNotAllowed {
                allow: matched.allow(),
            }),
            // Boxed: the largest route's state would otherwise sit inline in this future, on
            // the stack of whichever thread polls it.
            (Some(_), Some(route)) => {
                Box::pin(self.dispatch(route, parameter.as_deref(), &req)).await
            }
        };
        let route = route.or_else(|| matched.as_ref().and_then(|m| m.routes.first().copied()));
        let (mut response, user_id) = match result {
            Ok(reply) => (reply.response, reply.user_id),
            Err(err) => {
                match &err {
                    ApiError::StoreUnavailable(_) => {
                        shared::metrics::emit(&[], &[("StoreFailures", 1.0, Count)]);
                    }
                    ApiError::Internal(_) => {
                        shared::metrics::emit(&[], &[("InternalErrors", 1.0, Count)]);
                    }
                    _ => {}
                }
                // The one place a fault's cause is logged, with its whole chain.
                if err.is_fault() {
                    tracing::error!(
                        route = route.map_or("unmatched", Route::name),
                        error = %shared::error_chain(&err),
                        "request failed"
                    );
                }
                (err.into_response(), None)
            }
        };
        self.browser.decorate(&req, &mut response);
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let server_error = if response.status().is_server_error() {
            1.0
        } else {
            0.0
        };
        shared::metrics::emit(
            &[("Route", route.map_or("unmatched", Route::name))],
            &[
                ("Latency", latency_ms, Milliseconds),
                ("Requests", 1.0, Count),
                ("ServerErrors", server_error, Count),
            ],
        );
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

impl<S: Store> App<S> {
    async fn dispatch(
        &self,
        route: Route,
        parameter: Option<&str>,
        req: &Request,
    ) -> Result<routes::Reply, ApiError> {
        match route {
            Route::Register => routes::register::register(self, req).await,
            Route::Login => routes::login::login(self, req).await,
            Route::Verify => routes::verify::verify(self, req),
            Route::Health => Ok(routes::health::health()),
            Route::Me => routes::me::me(self, req).await,
            Route::DeleteAccount => routes::account::delete_account(self, req).await,
            Route::Jwks => routes::jwks::jwks(self),
            Route::Discovery => routes::jwks::discovery(self),
            Route::Refresh => routes::sessions::refresh(self, req).await,
            Route::Logout => routes::sessions::logout(self, req).await,
            Route::LogoutAll => routes::sessions::logout_all(self, req).await,
            Route::Password => routes::password::change_password(self, req).await,
            Route::EmailVerify => routes::recovery::verify_email(self, req).await,
            Route::EmailVerifyResend => routes::recovery::resend(self, req).await,
            Route::PasswordForgot => routes::recovery::forgot(self, req).await,
            Route::PasswordReset => routes::recovery::reset(self, req).await,
            Route::Sessions => routes::sessions::list_sessions(self, req).await,
            Route::EndSession => {
                routes::sessions::end_session(self, req, parameter.unwrap_or_default()).await
            }
            Route::LoginMfa => routes::mfa::login_mfa(self, req).await,
            Route::MfaEnroll => routes::mfa::enroll(self, req).await,
            Route::MfaConfirm => routes::mfa::confirm(self, req).await,
            Route::MfaDisable => routes::mfa::disable(self, req).await,
            Route::MfaRecoveryCodes => routes::mfa::regenerate_recovery_codes(self, req).await,
        }
    }
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
