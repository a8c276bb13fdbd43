//! `GET /me` and `DELETE /me`: the caller's own account.

use accounts::model::client::{Caller, Client};
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use secrecy::SecretString;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::app::App;
use crate::http::body::{Fields, JsonObject, optional_code};
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

#[derive(Serialize)]
struct Profile {
    user_id: String,
    email: String,
    roles: Vec<String>,
    email_verified: bool,
    /// Whether sign-in asks for an authenticator code.
    mfa_enabled: bool,
    /// Unused recovery codes left (0 without two-factor sign-in).
    recovery_codes_left: usize,
    created_at: String,
    /// Kept from the system the account was imported from.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// `GET /me` (protected) → the caller's profile.
pub async fn me<S: Store>(app: &App<S>, caller: &Caller) -> Result<Reply, ApiError> {
    let user = app.accounts.profile(caller).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &Profile {
            user_id: user.user_id.to_string(),
            email: user.email.to_string(),
            roles: user.roles,
            email_verified: user.email_verified,
            mfa_enabled: user.mfa.enabled(),
            recovery_codes_left: user.mfa.recovery.len(),
            created_at: user
                .created_at
                .format(&Rfc3339)
                .map_err(ApiError::internal)?,
            username: user.username,
            name: user.name,
        },
        Some(caller.user_id.to_string()),
    ))
}

/// `DELETE /me {"password","code"?}` (protected) → 204: the account, its sessions, refresh
/// tokens and pending mail tokens are deleted, and this browser's refresh cookie cleared. The
/// access token itself lives until it expires, but every route that reads the user then
/// answers 404.
pub async fn delete<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["password", "code"])?;
    let mut fields = Fields::default();
    let password = fields.take(body.take_string("password"));
    let code = fields.take(optional_code(&mut body)).flatten();
    let (Some(password), true) = (password, fields.clean()) else {
        return Err(fields.into_error());
    };
    app.accounts
        .delete_account(caller, client, SecretString::from(password), code)
        .await?;
    let mut reply = Reply::no_content(Some(caller.user_id.to_string()));
    app.browser.clear_refresh_cookie(&mut reply.response);
    Ok(reply)
}
