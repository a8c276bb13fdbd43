//! Successful answers: JSON bodies, 204s, and a signed-in session's tokens.

use accounts::flows::SignedIn;
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::http::browser::BrowserSettings;

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

    /// 200 with the tokens of a session: the access token, and the refresh token in the body,
    /// in the `HttpOnly` cookie, or both, as `REFRESH_TOKEN_TRANSPORT` says.
    pub fn signed_in(browser: &BrowserSettings, signed_in: &SignedIn) -> Self {
        let refresh_text = signed_in.refresh.encode();
        let transport = browser.transport;
        let mut reply = Reply::json(
            StatusCode::OK,
            &TokenResponse {
                access_token: signed_in.access.token.expose_secret(),
                token_type: "Bearer",
                expires_in: signed_in.access.expires_in,
                refresh_token: transport.in_body().then(|| refresh_text.expose_secret()),
                refresh_token_expires_in: signed_in.refresh_expires_in,
                recovery_codes: signed_in.recovery_codes.as_deref(),
            },
            Some(signed_in.session.user.user_id.to_string()),
        );
        if transport.in_cookie() {
            browser.set_refresh_cookie(
                &mut reply.response,
                &refresh_text,
                signed_in.refresh_expires_in,
            );
        }
        reply
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
