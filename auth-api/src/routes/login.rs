use lambda_http::Request;
use secrecy::SecretString;
use shared::token::now_unix_ms;

use super::{Reply, audit, token_reply};
use crate::body::JsonObject;
use crate::domain::Email;
use crate::error::ApiError;
use crate::store::{BACKOFF_THRESHOLD, LoginAttempts, SessionFamily, UserStore};
use crate::{App, store_error};

/// 429 while `attempts` holds a lock that has not run out yet.
pub(crate) fn refuse_while_locked(attempts: &LoginAttempts, now_ms: i64) -> Result<(), ApiError> {
    match attempts.locked_until_ms {
        Some(until) if until > now_ms => Err(ApiError::TooManyAttempts {
            retry_after_seconds: u64::try_from((until - now_ms + 999) / 1000)
                .unwrap_or(1)
                .max(1),
        }),
        _ => Ok(()),
    }
}

/// `POST /login {"email","password"}` → 200 with an access token and a refresh token (a new
/// session), 401, or 429 while the email is in backoff after repeated failures.
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
    refuse_while_locked(&attempts, now_ms)?;
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
            audit("login_failed", user_id.as_deref(), req);
            if let Some(email) = &email {
                let after = app
                    .store
                    .record_login_failure(email, now_ms)
                    .await
                    .map_err(store_error)?;
                if after.failures == BACKOFF_THRESHOLD {
                    audit("backoff_started", user_id.as_deref(), req);
                }
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    let (token, family, record) = SessionFamily::begin(
        &user,
        user.session_epoch,
        now_ms,
        app.sessions.refresh_ttl_seconds,
    );
    app.store
        .start_session(&family, &record)
        .await
        .map_err(store_error)?;
    if attempts.failures > 0 {
        app.store
            .clear_login_failures(&user.email)
            .await
            .map_err(store_error)?;
    }
    audit("login_succeeded", Some(&user.user_id.to_string()), req);
    token_reply(app, &user, &token, record.expires_at, now_ms / 1000)
}
