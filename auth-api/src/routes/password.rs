//! `POST /password`: change the caller's password.

use lambda_http::Request;
use secrecy::SecretString;

use super::{Reply, audit, caller, token_reply};
use crate::App;
use crate::body::JsonObject;
use crate::error::{ApiError, FieldError};
use crate::routes::login::PasswordCheck;
use accounts::model::credentials::NewPassword;
use accounts::model::session::SessionFamily;
use accounts::store::Store;

/// `POST /password {"current_password","new_password","code"?}` (protected) → 200 with a new
/// access token and a new session; every other session of the user ends, and the owner is
/// mailed. The current password is checked with the same backoff as login, so a stolen access
/// token cannot guess it freely; a two-factor user also gives a current `code`, so that a
/// stolen token and a phished password do not make a lasting, MFA-marked session.
pub async fn change_password<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, email) = caller(req)?;
    let mut body = JsonObject::from_request(req, &["current_password", "new_password", "code"])?;
    let mut errors = Vec::new();
    let code = super::mfa::optional_code(&mut body)
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let current = body
        .take_string("current_password")
        .map_err(|e| errors.push(e))
        .ok();
    let new = match body.take_string("new_password") {
        Ok(raw) if current.as_deref() == Some(raw.as_str()) => {
            errors.push(FieldError::new(
                "new_password",
                "must differ from the current password",
            ));
            None
        }
        Ok(raw) => NewPassword::parse(raw, Some(&email))
            .map_err(|problems| {
                errors.extend(
                    problems
                        .into_iter()
                        .map(|m| FieldError::new("new_password", m)),
                );
            })
            .ok(),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let (Some(current), Some(new), true) = (current, new, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let current = SecretString::from(current);

    let (user, check, now_ms) = PasswordCheck::confirm_caller(
        app,
        req,
        (user_id, &email),
        current,
        "password_change_failed",
        ApiError::WrongCurrentPassword,
    )
    .await?;
    let user_id_text = user.user_id.to_string();
    super::mfa::require_code(
        app,
        req,
        &user,
        code,
        &check,
        "password_change_failed",
        now_ms,
    )
    .await?;

    let new_hash = app.passwords.hash(new).await?;
    let (token, mut family, record) = SessionFamily::begin(
        &user,
        user.session_epoch + 1,
        now_ms,
        app.sessions.first_token_ttl(),
        super::client_info(req),
    );
    // A second factor counts only when this request passed one.
    family.mfa = user.mfa.enabled();
    app.store
        .change_password(&user, &new_hash, &family, &record)
        .await?;
    check.succeeded(app, now_ms).await?;
    audit("password_changed", Some(&user_id_text), req);
    super::recovery::send_notice(
        app,
        &user.email,
        Some(&user_id_text),
        accounts::recovery::Notice::PasswordChanged,
        req,
    )
    .await;
    token_reply(
        app,
        &user,
        &family,
        &token,
        record.expires_at,
        now_ms / 1000,
    )
}
