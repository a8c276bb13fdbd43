use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::Reply;
use crate::App;
use crate::error::ApiError;
use accounts::store::Store;

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

/// `GET /me` (protected by the authorizer) → the caller's profile.
pub async fn me<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, _) = super::caller(req)?;
    let user = app
        .store
        .find_user_by_id(user_id)
        .await?
        .ok_or(ApiError::UserNotFound)?;
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
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
        Some(user_id.to_string()),
    ))
}
