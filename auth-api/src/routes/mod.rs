//! The route table and the handlers behind it.

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

pub mod health;
pub mod jwks;
pub mod login;
pub mod me;
pub mod register;
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
            _ => None,
        }
    }

    /// The one method this route answers, as sent in `Allow`.
    pub fn method(self) -> &'static str {
        match self {
            Route::Register | Route::Login => "POST",
            Route::Verify | Route::Health | Route::Me | Route::Jwks => "GET",
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
