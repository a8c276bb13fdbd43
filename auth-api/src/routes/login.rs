use http::StatusCode;
use lambda_http::Request;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use shared::Subject;
use shared::token::{now_unix, now_unix_ms};

use super::Reply;
use crate::body::JsonObject;
use crate::domain::Email;
use crate::error::ApiError;
use crate::store::{BACKOFF_THRESHOLD, LoginAttempts, UserStore};
use crate::{App, store_error};

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

/// `POST /login {"email","password"}` → 200 with an access token, 401, or 429 while the
/// email is in backoff after repeated failures.
///
/// Unknown email and wrong password give the same body and cost one bcrypt verification
/// each, so neither the answer nor its timing tells whether an account exists.
pub async fn login<S: UserStore>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["email", "password"])?;
    let email = body.take_string("email");
    let password = body.take_string("password");
    let (email, password) = match (email, password) {
        (Ok(e), Ok(p)) => (e, SecretString::from(p)),
        (e, p) => {
            return Err(ApiError::Validation(
                [e.err(), p.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let email = Email::parse(&email).ok();
    let (user, attempts) = match &email {
        Some(email) => app
            .store
            .find_user_for_login(email)
            .await
            .map_err(store_error)?,
        None => (None, LoginAttempts::default()),
    };
    // Locked or not is decided by the email alone, registered or not, so a 429 says nothing
    // about whether an account exists.
    let now_ms = now_unix_ms();
    if let Some(until) = attempts.locked_until_ms.filter(|until| *until > now_ms) {
        let retry_after_seconds = u64::try_from((until - now_ms + 999) / 1000)
            .unwrap_or(1)
            .max(1);
        return Err(ApiError::TooManyAttempts {
            retry_after_seconds,
        });
    }
    let matched = app
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password verification failed");
            ApiError::Internal
        })?;
    let user = match user {
        Some(user) if matched => user,
        found => {
            let user_id = found.map(|u| u.user_id.to_string());
            tracing::info!(
                event = "login_failed",
                user_id = user_id.as_deref(),
                "audit"
            );
            if let Some(email) = &email {
                let after = app
                    .store
                    .record_login_failure(email, now_ms)
                    .await
                    .map_err(store_error)?;
                if after.failures == BACKOFF_THRESHOLD {
                    tracing::info!(
                        event = "backoff_started",
                        user_id = user_id.as_deref(),
                        "audit"
                    );
                }
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    if attempts.failures > 0 {
        app.store
            .clear_login_failures(&user.email)
            .await
            .map_err(store_error)?;
    }
    let subject = Subject {
        user_id: user.user_id,
        email: user.email.to_string(),
        roles: user.roles.clone(),
    };
    let issued = app.issuer.issue(&subject, now_unix()).map_err(|e| {
        tracing::error!(error = %e, "token signing failed");
        ApiError::Internal
    })?;
    let user_id = user.user_id.to_string();
    tracing::info!(event = "login_succeeded", user_id = %user_id, "audit");
    Ok(Reply::json(
        StatusCode::OK,
        &TokenResponse {
            access_token: issued.token.expose_secret(),
            token_type: "Bearer",
            expires_in: issued.expires_in,
        },
        Some(user_id),
    ))
}
