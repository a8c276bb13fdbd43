//! `POST /oauth2/token`: OAuth 2.1's token endpoint. Grant `client_credentials` (RFC 6749
//! §4.4) for machine clients.

use accounts::flows::oauth::ClientToken;
use accounts::model::client::Client;
use accounts::store::Store;
use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderValue, StatusCode};
use lambda_http::Request;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::app::App;
use crate::http::oauth::{Form, OAuthCode, OAuthError, client_authentication};
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

pub async fn token<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let form = Form::from_request(req)?;
    let grant = form.required("grant_type")?;
    match grant {
        "client_credentials" => {
            let auth = client_authentication(req, &form)?;
            let issued = app
                .accounts
                .client_credentials(&auth, form.get("scope"), client)
                .await
                .map_err(OAuthError::from_account)?;
            Ok(token_reply(&issued))
        }
        other => Err(OAuthError::new(
            OAuthCode::UnsupportedGrantType,
            format!("grant_type {other:?} is not supported here; use client_credentials"),
        )
        .into()),
    }
}

/// RFC 6749 §5.1: the token, never cached.
fn token_reply(issued: &ClientToken) -> Reply {
    let body = json!({
        "access_token": issued.access.token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": issued.access.expires_in,
        "scope": issued.scope,
    });
    let mut reply = Reply::json(StatusCode::OK, &body, None);
    let headers = reply.response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    reply
}
