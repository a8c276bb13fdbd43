use lambda_http::Request;
use secrecy::SecretString;

use super::{Reply, audit, token_reply};
use crate::App;
use crate::body::JsonObject;
use crate::error::ApiError;
use accounts::model::backoff::{
    Admission, BACKOFF_THRESHOLD, EMAIL_FAILURE_LIMIT, LoginAttempts, Source,
};
use accounts::model::credentials::Email;
use accounts::model::session::SessionFamily;
use accounts::model::user::UserRecord;
use accounts::store::Store;

/// A password check the backoff let through: what to undo or report once its result is known.
pub(crate) struct PasswordCheck {
    email: Email,
    source: Source,
    attempts: LoginAttempts,
    email_counted: bool,
}

impl PasswordCheck {
    /// Counts the check **before** bcrypt runs (so that parallel guesses cannot outrun the
    /// counters): first per (email, source), then, unless the user signed in from this source
    /// lately, per email. 429 with `Retry-After` when either refuses.
    pub(crate) async fn admit<S: Store>(
        app: &App<S>,
        email: &Email,
        user: Option<&UserRecord>,
        seen: LoginAttempts,
        source: Source,
        req: &Request,
        now_ms: i64,
    ) -> Result<Self, ApiError> {
        let attempts = match app
            .store
            .admit_login_attempt(email, &source, seen, now_ms)
            .await?
        {
            Admission::Admitted(attempts) => attempts,
            Admission::Refused {
                retry_after_seconds,
            } => {
                return Err(ApiError::TooManyAttempts {
                    retry_after_seconds,
                });
            }
        };
        let trusted = user.is_some_and(|u| u.trusts(&source));
        if !trusted {
            let window = app.store.count_email_failure(email, now_ms).await?;
            if let Some(retry_after_seconds) = window.over(EMAIL_FAILURE_LIMIT, now_ms) {
                if window.count == EMAIL_FAILURE_LIMIT + 1 {
                    let user_id = user.map(|u| u.user_id.to_string());
                    audit("email_limit_reached", user_id.as_deref(), req);
                }
                return Err(ApiError::TooManyAttempts {
                    retry_after_seconds,
                });
            }
        }
        Ok(Self {
            email: email.clone(),
            source,
            attempts,
            email_counted: !trusted,
        })
    }

    /// The check failed: it stays counted. Writes `backoff_started` when it was the one that
    /// starts the lock.
    pub(crate) fn failed(&self, user_id: Option<&str>, req: &Request) {
        if self.attempts.failures == BACKOFF_THRESHOLD {
            audit("backoff_started", user_id, req);
        }
    }

    /// The check succeeded: the source's record is forgotten and the email's window gets this
    /// check back.
    pub(crate) async fn succeeded<S: Store>(
        &self,
        app: &App<S>,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        app.store
            .forget_login_failures(&self.email, &self.source, self.email_counted, now_ms)
            .await
            .map_err(ApiError::from)
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// The caller's account, read with its failed-login record for a check to be counted
    /// (`admit`): 404 if it is gone (or its email is another user's now), 403 if disabled.
    pub(crate) async fn caller_account<S: Store>(
        app: &App<S>,
        req: &Request,
        (user_id, email): (uuid::Uuid, &Email),
    ) -> Result<(UserRecord, LoginAttempts, Source), ApiError> {
        let source = super::source(req);
        let (user, seen) = app.store.find_user_for_login(email, &source).await?;
        let user = user
            .filter(|u| u.user_id == user_id)
            .ok_or(ApiError::UserNotFound)?;
        if user.disabled {
            return Err(ApiError::AccountDisabled);
        }
        Ok((user, seen, source))
    }

    /// The caller's own password, checked again before a sensitive change (password change,
    /// account deletion), with the login backoff so a stolen access token cannot guess it:
    /// the user as read and the counted check, once `password` matched. A disabled account is
    /// refused first; a wrong password is audited as `failed_event`, counted, and answered
    /// with `wrong`.
    pub(crate) async fn confirm_caller<S: Store>(
        app: &App<S>,
        req: &Request,
        (user_id, email): (uuid::Uuid, &Email),
        password: SecretString,
        failed_event: &'static str,
        wrong: ApiError,
    ) -> Result<(UserRecord, Self, i64), ApiError> {
        let (user, seen, source) = Self::caller_account(app, req, (user_id, email)).await?;
        let now_ms = app.clock.now_ms();
        let check = Self::admit(app, email, Some(&user), seen, source, req, now_ms).await?;
        let matched = app
            .passwords
            .verify(password, Some(user.password_hash.clone()))
            .await?;
        if !matched {
            let user_id = user.user_id.to_string();
            audit(failed_event, Some(&user_id), req);
            check.failed(Some(&user_id), req);
            return Err(wrong);
        }
        Ok((user, check, now_ms))
    }
}

/// `POST /login {"email","password"}` → 200 with an access token and a refresh token (a new
/// session), 401, or 429 while (email, source) or the email is in backoff. For a user with
/// two-factor sign-in, 200 `{"mfa_required":true,"mfa_token"}` instead of tokens: the code
/// goes to `/login/mfa`.
///
/// Unknown email and wrong password give the same body and cost one bcrypt verification
/// each, so neither the answer nor its timing tells whether an account exists.
pub async fn login<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
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
    let Ok(email) = Email::parse(&email) else {
        // No account can have this email: nothing to count, the same work and answer.
        app.passwords.verify(password, None).await?;
        audit("login_failed", None, req);
        return Err(ApiError::InvalidCredentials);
    };
    let source = super::source(req);
    let (user, seen) = app.store.find_user_for_login(&email, &source).await?;
    // Counted and judged by the email and source alone, registered or not, so a 429 says
    // nothing about whether an account exists.
    let now_ms = app.clock.now_ms();
    let check = PasswordCheck::admit(app, &email, user.as_ref(), seen, source, req, now_ms).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let legacy = user.as_ref().is_some_and(|u| u.legacy_password);
    let matched = app
        .passwords
        .verify_login(password.clone(), stored_hash, legacy)
        .await?
        .matched();
    let user = match user {
        Some(user) if matched && !user.disabled => user,
        found => {
            // A disabled account gets a wrong password's answer, after the same work, and
            // the check counts as failed.
            let disabled = matched && found.as_ref().is_some_and(|u| u.disabled);
            let user_id = found.map(|u| u.user_id.to_string());
            let event = if disabled {
                "login_refused_disabled"
            } else {
                "login_failed"
            };
            audit(event, user_id.as_deref(), req);
            check.failed(user_id.as_deref(), req);
            return Err(ApiError::InvalidCredentials);
        }
    };
    if app.recovery.settings.require_verified_email && !user.email_verified {
        // Only after the right password: to anyone else this says nothing.
        check.succeeded(app, now_ms).await?;
        audit(
            "login_refused_unverified",
            Some(&user.user_id.to_string()),
            req,
        );
        return Err(ApiError::EmailNotVerified);
    }
    if user.mfa.enabled() {
        // The password was right; the second step decides. Nothing here differs from a
        // user without two-factor sign-in until the password matched. The check stays
        // counted until the code is right too: forgetting it here would let someone who has
        // the password reset the backoff between code guesses.
        rehash_if_needed(app, &user, password).await?;
        return super::mfa::challenge(app, req, &user, now_ms).await;
    }
    let (token, family, record) = SessionFamily::begin(
        &user,
        user.session_epoch,
        now_ms,
        app.sessions.first_token_ttl(),
        super::client_info(req),
    );
    let start = async {
        app.store
            .start_session(&family, &record)
            .await
            .map_err(ApiError::from)
    };
    let (started, forgotten, trusted, rehashed) = tokio::join!(
        start,
        check.succeeded(app, now_ms),
        trust_source(app, &user, check.source()),
        rehash_if_needed(app, &user, password),
    );
    started?;
    forgotten?;
    trusted?;
    rehashed?;
    audit("login_succeeded", Some(&user.user_id.to_string()), req);
    token_reply(
        app,
        &user,
        &family,
        &token,
        record.expires_at,
        now_ms / 1000,
    )
}

/// Remembers `source` among the user's latest sign-in addresses (one write, only when it is
/// not already the latest).
pub(crate) async fn trust_source<S: Store>(
    app: &App<S>,
    user: &UserRecord,
    source: &Source,
) -> Result<(), ApiError> {
    match user.trusted_sources_with(source) {
        Some(sources) => app
            .store
            .set_trusted_sources(user, &sources)
            .await
            .map_err(ApiError::from),
        None => Ok(()),
    }
}

/// After `BCRYPT_COST` changed, a successful login stores the password hashed at the new
/// cost (one conditional write, only then), and so does the first login of an account
/// imported from the Node.js original: its hash, of the trimmed password, becomes one of the
/// exact password, and the legacy mark goes. A lost race (the hash changed meanwhile) leaves
/// the newer hash.
async fn rehash_if_needed<S: Store>(
    app: &App<S>,
    user: &UserRecord,
    password: SecretString,
) -> Result<(), ApiError> {
    let Some(new_hash) = app
        .passwords
        .rehash(password, &user.password_hash, user.legacy_password)
        .await?
    else {
        return Ok(());
    };
    match app.store.rehash_password(user, &new_hash).await {
        Ok(()) => {
            tracing::info!(
                user_id = %user.user_id,
                cost = app.passwords.cost(),
                "password rehashed at the configured bcrypt cost"
            );
            Ok(())
        }
        Err(accounts::store::StoreError::Conflict) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
