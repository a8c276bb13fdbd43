//! `DELETE /me`: a user deletes their own account.

use lambda_http::Request;
use secrecy::SecretString;

use super::{Reply, audit, caller};
use crate::App;
use crate::body::JsonObject;
use crate::error::ApiError;
use crate::routes::login::PasswordCheck;
use accounts::store::Store;

/// `DELETE /me {"password","code"?}` (protected) → 204: the account, its sessions, refresh
/// tokens and pending mail tokens are deleted, and the email can register again at once. The
/// password is checked again, with the login backoff, so a stolen access token cannot delete
/// the account; a two-factor user also gives a current `code`. The access token itself lives until it expires, but every route that reads the
/// user then answers 404.
pub async fn delete_account<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, email) = caller(req)?;
    let mut body = JsonObject::from_request(req, &["password", "code"])?;
    let mut errors = Vec::new();
    let password = body
        .take_string("password")
        .map_err(|e| errors.push(e))
        .ok();
    let code = super::mfa::optional_code(&mut body)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let (Some(password), true) = (password, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let password = SecretString::from(password);

    let (user, check, now_ms) = PasswordCheck::confirm_caller(
        app,
        req,
        (user_id, &email),
        password,
        "account_delete_failed",
        ApiError::WrongPassword,
    )
    .await?;
    let user_id_text = user.user_id.to_string();
    super::mfa::require_code(
        app,
        req,
        &user,
        code,
        &check,
        "account_delete_failed",
        now_ms,
    )
    .await?;
    app.store.delete_user(&user).await?;
    check.succeeded(app, now_ms).await?;
    audit("account_deleted", Some(&user_id_text), req);
    let mut reply = Reply::no_content(Some(user_id_text));
    app.browser.clear_refresh_cookie(&mut reply.response);
    Ok(reply)
}
