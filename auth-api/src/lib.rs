//! auth-api: the HTTP face of the account flows (`accounts`): one lambda_http handler that
//! reads a request once, calls one flow, and renders its outcome. Answers REST API (v1),
//! HTTP API (v2) and function-URL events alike.

use std::time::Instant;

use accounts::error::Error;
use accounts::store::Store;
use lambda_http::{Body, Request, Response};
use shared::metrics::Metric;

pub mod app;
pub mod config;
pub mod federation;
pub mod hooks;
pub mod http;
pub mod routes;

pub use app::App;
use http::problem::ApiError;
use http::reply::Reply;
use http::request;
use http::routes::Route;

impl<S: Store> App<S> {
    /// Answers one request. Every outcome, client error or not, is an HTTP response: an `Err`
    /// would reach API Gateway as a 502.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let path = request::route_path(&req);
        let matched = Route::matching(&path);
        let method = req.method().as_str();
        let route = matched.as_ref().and_then(|m| m.route(method));
        let parameter = matched.as_ref().and_then(|m| m.parameter.clone());
        let result = match (&matched, route) {
            (None, _) if path == http::lambda::MALFORMED_EVENT_PATH => {
                Err(ApiError::MalformedBody(
                    "The request could not be read: its body is marked base64 but is not, or its \
                 path or Host header is not a valid URL."
                        .into(),
                ))
            }
            (None, _) => Err(ApiError::NotFound),
            (Some(matched), _) if req.method() == ::http::Method::OPTIONS => {
                self.browser.preflight(matched, &req).map(|response| Reply {
                    response,
                    user_id: None,
                })
            }
            // The hosted pages answer even this with a page.
            (Some(matched), None) if matched.routes.iter().any(|r| r.page()) => {
                Ok(routes::pages::method_not_allowed(self, &matched.allow()))
            }
            // The OAuth endpoints answer even this as RFC 6749 errors.
            (Some(matched), None) if matched.routes.iter().any(|r| r.oauth()) => {
                let mut err = http::oauth::OAuthError::invalid_request(format!(
                    "this endpoint accepts {}",
                    matched.allow()
                ));
                err.allow = Some(matched.methods());
                Err(err.into())
            }
            (Some(matched), None) => Err(ApiError::MethodNotAllowed {
                allow: matched.allow(),
            }),
            // Boxed: the largest route's state would otherwise sit inline in this future, on
            // the stack of whichever thread polls it.
            (Some(_), Some(route)) => {
                // The events its changes emit name where the request came from.
                let info = request::client(&req).session_info();
                let origin = accounts::model::event::Origin {
                    source_ip: info.source_ip,
                    user_agent: info.user_agent,
                };
                Box::pin(origin.scope(self.dispatch(route, parameter.as_deref(), &req))).await
            }
        };
        let route = route.or_else(|| matched.as_ref().and_then(|m| m.routes.first().copied()));
        let (mut response, user_id) = match result {
            Ok(reply) => (reply.response, reply.user_id),
            Err(err) => {
                match err.account_error() {
                    Some(Error::StoreUnavailable(_)) => {
                        shared::metrics::count(Metric::StoreFailures);
                    }
                    Some(Error::Internal(_)) => {
                        shared::metrics::count(Metric::InternalErrors);
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
                (Metric::Latency, latency_ms),
                (Metric::Requests, 1.0),
                (Metric::ServerErrors, server_error),
            ],
        );
        tracing::info!(
            route = route.map_or("unmatched", Route::name),
            method = %req.method(),
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            user_id = user_id.as_deref(),
            request_id = request::request_id(&req),
            "request"
        );
        response
    }
}

impl<S: Store> App<S> {
    /// The OpenID Provider's routes: the hosted pages and the OAuth endpoints.
    async fn dispatch_openid(
        &self,
        route: Route,
        parameter: &str,
        req: &Request,
        client: &accounts::model::client::Client,
    ) -> Result<Reply, ApiError> {
        use routes::{oauth, pages};
        let page = |reply: Reply| -> Result<Reply, ApiError> { Ok(reply) };
        match route {
            Route::OAuthAuthorize | Route::OAuthAuthorizePost => {
                page(http::on_heap(|| pages::authorize(self, req, client)).await)
            }
            Route::OAuthLoginPage => {
                page(http::on_heap(|| pages::login_page_get(self, req, client)).await)
            }
            Route::OAuthLogin => page(http::on_heap(|| pages::login_post(self, req, client)).await),
            Route::OAuthConsent => page(http::on_heap(|| pages::consent(self, req, client)).await),
            Route::OAuthRegisterPage => {
                page(http::on_heap(|| pages::register_get(self, req, client)).await)
            }
            Route::OAuthRegister => {
                page(http::on_heap(|| pages::register_post(self, req, client)).await)
            }
            Route::OAuthForgotPage => {
                page(http::on_heap(|| pages::forgot_get(self, req, client)).await)
            }
            Route::OAuthForgot => {
                page(http::on_heap(|| pages::forgot_post(self, req, client)).await)
            }
            Route::OAuthLogoutPage => {
                page(http::on_heap(|| pages::logout_get(self, req, client)).await)
            }
            Route::OAuthLogout => {
                page(http::on_heap(|| pages::logout_post(self, req, client)).await)
            }
            Route::OAuthUserinfo | Route::OAuthUserinfoPost => {
                http::on_heap(|| oauth::userinfo(self, req)).await
            }
            Route::OAuthRevoke => http::on_heap(|| oauth::revoke(self, req, client)).await,
            Route::OAuthIntrospect => http::on_heap(|| oauth::introspect(self, req, client)).await,
            Route::OAuthToken => http::on_heap(|| oauth::token(self, req, client)).await,
            Route::OAuthDeviceAuthorization => {
                http::on_heap(|| oauth::device_authorization(self, req, client)).await
            }
            Route::OAuthDevicePage => {
                page(http::on_heap(|| pages::device_get(self, req, client)).await)
            }
            Route::OAuthDevice => {
                page(http::on_heap(|| pages::device_post(self, req, client)).await)
            }
            Route::OAuthFederate => page(
                http::on_heap(|| routes::federation::start(self, req, client, parameter)).await,
            ),
            Route::OAuthCallback | Route::OAuthCallbackPost => page(
                http::on_heap(|| routes::federation::callback(self, req, client, parameter)).await,
            ),
            _ => Err(ApiError::internal(
                "a route the OpenID dispatcher does not serve",
            )),
        }
    }
}

impl<S: Store> App<S> {
    /// Reads who is asking once (the client; the caller where the table says the authorizer
    /// stands in front), then hands the request to its route.
    async fn dispatch(
        &self,
        route: Route,
        parameter: Option<&str>,
        req: &Request,
    ) -> Result<Reply, ApiError> {
        let client = &request::client(req);
        let caller = match route.protected() {
            true => Some(request::caller(req)?),
            false => None,
        };
        let caller = || {
            caller
                .as_ref()
                .ok_or_else(|| ApiError::internal("the route table does not protect this route"))
        };
        let id = parameter.unwrap_or_default();
        use routes::{account, consents, mfa, passkeys, password, recovery, sessions};
        match route {
            Route::Register => {
                http::on_heap(|| routes::register::register(self, req, client)).await
            }
            Route::Login => http::on_heap(|| routes::login::login(self, req, client)).await,
            Route::LoginMfa => http::on_heap(|| mfa::login_mfa(self, req, client)).await,
            Route::Verify => routes::verify::verify(self, req),
            Route::Health => Ok(routes::health::health()),
            Route::Jwks => routes::jwks::jwks(self),
            Route::Discovery => routes::jwks::discovery(self),
            Route::OAuthToken
            | Route::OAuthAuthorize
            | Route::OAuthLoginPage
            | Route::OAuthLogin
            | Route::OAuthConsent
            | Route::OAuthRegisterPage
            | Route::OAuthRegister
            | Route::OAuthForgotPage
            | Route::OAuthForgot
            | Route::OAuthLogoutPage
            | Route::OAuthLogout
            | Route::OAuthUserinfo
            | Route::OAuthUserinfoPost
            | Route::OAuthRevoke
            | Route::OAuthIntrospect
            | Route::OAuthAuthorizePost
            | Route::OAuthDeviceAuthorization
            | Route::OAuthDevicePage
            | Route::OAuthDevice
            | Route::OAuthFederate
            | Route::OAuthCallback
            | Route::OAuthCallbackPost => {
                http::on_heap(|| self.dispatch_openid(route, id, req, client)).await
            }
            Route::FederationExchange => {
                http::on_heap(|| routes::federation::exchange(self, req, client)).await
            }
            Route::Identities => {
                let caller = caller()?;
                http::on_heap(|| routes::identities::list(self, client, caller)).await
            }
            Route::UnlinkIdentity => {
                let caller = caller()?;
                http::on_heap(|| routes::identities::unlink(self, client, caller, id)).await
            }
            Route::LinkIdentity => {
                let caller = caller()?;
                http::on_heap(|| routes::identities::start_link(self, client, caller, id)).await
            }
            Route::OAuthPasskeyScript => Ok(http::pages::passkey_script()),
            Route::Refresh => http::on_heap(|| sessions::refresh(self, req, client)).await,
            Route::Logout => http::on_heap(|| sessions::logout(self, req, client)).await,
            Route::EmailVerify => http::on_heap(|| recovery::verify_email(self, req, client)).await,
            Route::EmailVerifyResend => http::on_heap(|| recovery::resend(self, req, client)).await,
            Route::PasswordForgot => http::on_heap(|| recovery::forgot(self, req, client)).await,
            Route::PasswordReset => http::on_heap(|| recovery::reset(self, req, client)).await,
            Route::Me => {
                let caller = caller()?;
                http::on_heap(|| account::me(self, caller)).await
            }
            Route::DeleteAccount => {
                let caller = caller()?;
                http::on_heap(|| account::delete(self, req, client, caller)).await
            }
            Route::LogoutAll => {
                let caller = caller()?;
                http::on_heap(|| sessions::logout_all(self, client, caller)).await
            }
            Route::Password => {
                let caller = caller()?;
                http::on_heap(|| password::change(self, req, client, caller)).await
            }
            Route::Sessions => {
                let caller = caller()?;
                http::on_heap(|| sessions::list(self, caller)).await
            }
            Route::Consents => {
                let caller = caller()?;
                http::on_heap(|| consents::list(self, caller)).await
            }
            Route::RevokeConsent => {
                let caller = caller()?;
                http::on_heap(|| consents::revoke(self, client, caller, id)).await
            }
            Route::EndSession => {
                let caller = caller()?;
                http::on_heap(|| sessions::end(self, client, caller, id)).await
            }
            Route::MfaEnroll => {
                let caller = caller()?;
                http::on_heap(|| mfa::enroll(self, req, client, caller)).await
            }
            Route::MfaConfirm => {
                let caller = caller()?;
                http::on_heap(|| mfa::confirm(self, req, client, caller)).await
            }
            Route::MfaDisable => {
                let caller = caller()?;
                http::on_heap(|| mfa::disable(self, req, client, caller)).await
            }
            Route::MfaRecoveryCodes => {
                let caller = caller()?;
                http::on_heap(|| mfa::renew_recovery_codes(self, req, client, caller)).await
            }
            Route::PasskeyLoginOptions => {
                http::on_heap(|| passkeys::login_options(self, req)).await
            }
            Route::PasskeyLogin => http::on_heap(|| passkeys::login(self, req, client)).await,
            Route::LoginMfaPasskeyOptions => {
                http::on_heap(|| passkeys::second_factor_options(self, req, client)).await
            }
            Route::PasskeyRegisterOptions => {
                let caller = caller()?;
                http::on_heap(|| passkeys::register_options(self, req, client, caller)).await
            }
            Route::PasskeyRegister => {
                let caller = caller()?;
                http::on_heap(|| passkeys::register(self, req, client, caller)).await
            }
            Route::Passkeys => {
                let caller = caller()?;
                http::on_heap(|| passkeys::list(self, client, caller)).await
            }
            Route::RenamePasskey => {
                let caller = caller()?;
                http::on_heap(|| passkeys::rename(self, req, client, caller, id)).await
            }
            Route::DeletePasskey => {
                let caller = caller()?;
                http::on_heap(|| passkeys::remove(self, req, client, caller, id)).await
            }
        }
    }
}
