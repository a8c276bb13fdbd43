//! Two-factor sign-in with an authenticator app (TOTP): enrollment, confirmation, the login's
//! second step, turning it off and new recovery codes.

use http::StatusCode;
use lambda_http::Request;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::{Reply, audit, caller, client_info, token_reply, token_reply_with_codes};
use crate::App;
use crate::body::JsonObject;
use crate::error::{ApiError, FieldError};
use crate::routes::login::PasswordCheck;
use crate::routes::recovery::send_notice;
use accounts::mail::MailDelivery;
use accounts::model::mfa::{
    CHALLENGE_ATTEMPTS, CHALLENGE_TTL_SECONDS, Code, ENROLLMENT_TTL_SECONDS, MfaAdmission,
    MfaChallenge, MfaKey, MfaState, TotpSecret, qr_data_uri, recovery_codes,
};
use accounts::model::session::{RefreshToken, SessionFamily};
use accounts::model::user::UserRecord;
use accounts::recovery::Notice;
use accounts::store::{Store, StoreError};

/// The key TOTP secrets are sealed with; without one, two-factor sign-in cannot work.
fn key<S>(app: &App<S>) -> Result<&MfaKey, ApiError> {
    app.mfa_key
        .as_ref()
        .ok_or_else(|| ApiError::internal("MFA_ENCRYPTION_KEY is not configured"))
}

/// The body's `field`, a code as typed: six digits, or a recovery code.
fn code_field(body: &mut JsonObject, field: &'static str) -> Result<Code, FieldError> {
    let text = body.take_string(field)?;
    Code::parse(&text).ok_or_else(|| {
        FieldError::new(
            field,
            "must be the 6-digit code of your authenticator app or a recovery code",
        )
    })
}

/// The body's optional `code`: `None` when absent (or null), a field error when malformed.
pub(crate) fn optional_code(body: &mut JsonObject) -> Result<Option<Code>, FieldError> {
    match code_field(body, "code") {
        Ok(code) => Ok(Some(code)),
        Err(e) if e.message == "is required" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks a second-factor code of `user`, as every door does: counted first against the
/// account's consecutive wrong codes (429 `mfa-locked` while locked: however many arrive at
/// once, no more are checked than the lock allows), then checked. A right one spends it (the
/// state returned) and ends the count; a wrong one is audited as `failed_event` and counts as a
/// failed check of `check` (the login backoff) too; the one that starts the lock mails the
/// owner. `None`: wrong.
pub(crate) async fn check_code<S: Store>(
    app: &App<S>,
    req: &Request,
    user: &UserRecord,
    code: &Code,
    check: &PasswordCheck,
    failed_event: &'static str,
    now_ms: i64,
) -> Result<Option<MfaState>, ApiError> {
    let key = key(app)?;
    let counted = match app.store.admit_mfa_code(user.user_id, now_ms).await? {
        MfaAdmission::Admitted(counted) => counted,
        MfaAdmission::Refused {
            retry_after_seconds,
        } => {
            return Err(ApiError::MfaLocked {
                retry_after_seconds,
            });
        }
    };
    let user_id = user.user_id.to_string();
    let Some(spent) = user.mfa.spend(key, user.user_id, code, now_ms / 1000) else {
        audit(failed_event, Some(&user_id), req);
        check.failed(Some(&user_id), req);
        if counted.starts_lock() {
            audit("mfa_locked", Some(&user_id), req);
            send_notice(app, &user.email, Some(&user_id), Notice::MfaLocked, req).await;
        }
        return Ok(None);
    };
    app.store.forget_mfa_failures(user.user_id).await?;
    if matches!(code, Code::Recovery(_)) {
        audit("recovery_code_used", Some(&user_id), req);
    }
    Ok(Some(spent))
}

/// For a sensitive change by a user with two-factor sign-in (password change, deletion): a
/// current `code` is needed as well as the password (403 `mfa-code-required` without one,
/// `wrong-code` for a wrong one), and is spent at once. `Ok(())` for a user without.
pub(crate) async fn require_code<S: Store>(
    app: &App<S>,
    req: &Request,
    user: &UserRecord,
    code: Option<Code>,
    check: &PasswordCheck,
    failed_event: &'static str,
    now_ms: i64,
) -> Result<(), ApiError> {
    if !user.mfa.enabled() {
        return Ok(());
    }
    let Some(code) = code else {
        return Err(ApiError::MfaCodeRequired);
    };
    let spent = check_code(app, req, user, &code, check, failed_event, now_ms)
        .await?
        .ok_or(ApiError::WrongCode)?;
    // Spent before the change: a code works once, whatever happens next.
    app.store
        .save_mfa(user, &spent, None)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::WrongCode,
            other => other.into(),
        })
}

#[derive(Serialize)]
struct Enrollment<'a> {
    /// The secret in base32, for apps where it is typed in.
    secret: &'a str,
    otpauth_uri: &'a str,
    /// The otpauth URI as a QR code: an SVG image in a `data:` URI.
    qr_code: &'a str,
    /// Seconds left to confirm it with a code.
    expires_in: i64,
}

/// `POST /mfa/totp/enroll {"password"}` (protected) → 200 a new TOTP secret, its otpauth URI
/// and QR code, not yet active: `/mfa/totp/confirm` with its first code turns it on. The
/// password is checked again (with the login backoff). 409 if two-factor sign-in is on.
pub async fn enroll<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, email) = caller(req)?;
    let mut body = JsonObject::from_request(req, &["password"])?;
    let password = SecretString::from(
        body.take_string("password")
            .map_err(|e| ApiError::Validation(vec![e]))?,
    );
    let key = key(app)?;
    let (user, check, now_ms) = PasswordCheck::confirm_caller(
        app,
        req,
        (user_id, &email),
        password,
        "mfa_enroll_failed",
        ApiError::WrongPassword,
    )
    .await?;
    if user.mfa.enabled() {
        check.succeeded(app, now_ms).await?;
        return Err(ApiError::MfaAlreadyEnabled);
    }
    if !user.email_verified && !matches!(app.recovery.mail, MailDelivery::Disabled) {
        // Whoever registered someone else's address first must not put a second factor of
        // theirs in front of the account the owner takes back with a reset.
        check.succeeded(app, now_ms).await?;
        return Err(ApiError::EmailNotVerified);
    }
    let secret = TotpSecret::generate();
    let sealed = key
        .seal(user.user_id, &secret)
        .map_err(ApiError::internal)?;
    let now = now_ms / 1000;
    let pending = MfaState {
        pending: Some((sealed, now + ENROLLMENT_TTL_SECONDS)),
        ..user.mfa.clone()
    };
    app.store.save_mfa(&user, &pending, None).await?;
    check.succeeded(app, now_ms).await?;
    let uri = secret.otpauth_uri(&app.recovery.settings.app_name, &user.email);
    let qr = qr_data_uri(&uri).map_err(ApiError::internal)?;
    audit(
        "mfa_enrollment_started",
        Some(&user.user_id.to_string()),
        req,
    );
    Ok(Reply::json(
        StatusCode::OK,
        &Enrollment {
            secret: &secret.base32(),
            otpauth_uri: &uri,
            qr_code: &qr,
            expires_in: ENROLLMENT_TTL_SECONDS,
        },
        Some(user.user_id.to_string()),
    ))
}

/// `POST /mfa/totp/confirm {"code"}` (protected) → 200: the enrolled secret is active once
/// its current code is right; the answer carries 10 recovery codes (shown this once) and
/// tokens of a new session that passed the second factor; every other session ends. Wrong
/// codes count toward the login backoff.
pub async fn confirm<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, email) = caller(req)?;
    let mut body = JsonObject::from_request(req, &["code"])?;
    let code = code_field(&mut body, "code").map_err(|e| ApiError::Validation(vec![e]))?;
    let key = key(app)?;
    let (user, seen, source) = PasswordCheck::caller_account(app, req, (user_id, &email)).await?;
    if user.mfa.enabled() {
        return Err(ApiError::MfaAlreadyEnabled);
    }
    let now_ms = app.clock.now_ms();
    let now = now_ms / 1000;
    let Some((sealed, _)) = user.mfa.pending.clone().filter(|(_, until)| *until > now) else {
        return Err(ApiError::MfaEnrollmentMissing);
    };
    let check = PasswordCheck::admit(app, &email, Some(&user), seen, source, req, now_ms).await?;
    let secret = key
        .open(user.user_id, &sealed)
        .map_err(ApiError::internal)?;
    let step = match &code {
        Code::Totp(digits) => secret.check(digits, now, user.mfa.last_step),
        // No recovery code exists before the first confirmation.
        Code::Recovery(_) => None,
    };
    let Some(step) = step else {
        audit("mfa_confirm_failed", Some(&user.user_id.to_string()), req);
        check.failed(Some(&user.user_id.to_string()), req);
        return Err(ApiError::WrongCode);
    };
    let (codes, hashes) = recovery_codes();
    let enabled = MfaState {
        secret: Some(sealed),
        pending: None,
        last_step: step,
        recovery: hashes,
        revision: user.mfa.revision,
    };
    let reply = replace_state(app, req, &user, &enabled, true, Some(&codes), now_ms).await?;
    check.succeeded(app, now_ms).await?;
    let user_id = user.user_id.to_string();
    audit("mfa_enabled", Some(&user_id), req);
    send_notice(app, &user.email, Some(&user_id), Notice::MfaEnabled, req).await;
    Ok(reply)
}

/// Writes `mfa` over `user`'s state with a new session (of the next epoch: every other
/// session ends) that passed the second factor or not, and answers with its tokens.
async fn replace_state<S: Store>(
    app: &App<S>,
    req: &Request,
    user: &UserRecord,
    mfa: &MfaState,
    passed_mfa: bool,
    codes: Option<&[String]>,
    now_ms: i64,
) -> Result<Reply, ApiError> {
    let (token, mut family, record) = SessionFamily::begin(
        user,
        user.session_epoch + 1,
        now_ms,
        app.sessions.first_token_ttl(),
        client_info(req),
    );
    family.mfa = passed_mfa;
    app.store
        .save_mfa(user, mfa, Some((&family, &record)))
        .await
        .map_err(|e| match e {
            // A code spent, or the account changed, by a concurrent request.
            StoreError::Conflict => ApiError::WrongCode,
            other => other.into(),
        })?;
    token_reply_with_codes(
        app,
        user,
        &family,
        &token,
        record.expires_at,
        now_ms / 1000,
        codes,
    )
}

/// The password and a current code, checked for a change to two-factor sign-in: the user as
/// read, the counted check, the state with the code spent, and the time.
async fn confirm_password_and_code<S: Store>(
    app: &App<S>,
    req: &Request,
    failed_event: &'static str,
) -> Result<(UserRecord, PasswordCheck, MfaState, i64), ApiError> {
    let (user_id, email) = caller(req)?;
    let mut body = JsonObject::from_request(req, &["password", "code"])?;
    let mut errors = Vec::new();
    let password = body
        .take_string("password")
        .map_err(|e| errors.push(e))
        .ok();
    let code = code_field(&mut body, "code")
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(password), Some(code)) = (password, code) else {
        return Err(ApiError::Validation(errors));
    };
    key(app)?;
    let (user, check, now_ms) = PasswordCheck::confirm_caller(
        app,
        req,
        (user_id, &email),
        SecretString::from(password),
        failed_event,
        ApiError::WrongPassword,
    )
    .await?;
    if !user.mfa.enabled() {
        check.succeeded(app, now_ms).await?;
        return Err(ApiError::MfaNotEnabled);
    }
    let spent = check_code(app, req, &user, &code, &check, failed_event, now_ms)
        .await?
        .ok_or(ApiError::WrongCode)?;
    Ok((user, check, spent, now_ms))
}

/// `POST /mfa/totp/disable {"password","code"}` (protected) → 200: two-factor sign-in is off,
/// its secret and recovery codes gone; every other session ends and the answer carries the
/// tokens of a new one. `code` may be a recovery code.
pub async fn disable<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user, check, spent, now_ms) =
        confirm_password_and_code(app, req, "mfa_disable_failed").await?;
    let off = MfaState {
        last_step: spent.last_step,
        revision: user.mfa.revision,
        ..MfaState::default()
    };
    let reply = replace_state(app, req, &user, &off, false, None, now_ms).await?;
    check.succeeded(app, now_ms).await?;
    let user_id = user.user_id.to_string();
    audit("mfa_disabled", Some(&user_id), req);
    send_notice(app, &user.email, Some(&user_id), Notice::MfaDisabled, req).await;
    Ok(reply)
}

/// `POST /mfa/recovery-codes {"password","code"}` (protected) → 200 with 10 new recovery
/// codes (the old ones stop working) and the tokens of a new session; every other session
/// ends.
pub async fn regenerate_recovery_codes<S: Store>(
    app: &App<S>,
    req: &Request,
) -> Result<Reply, ApiError> {
    let (user, check, spent, now_ms) =
        confirm_password_and_code(app, req, "recovery_codes_failed").await?;
    let (codes, hashes) = recovery_codes();
    let renewed = MfaState {
        recovery: hashes,
        ..spent
    };
    let reply = replace_state(app, req, &user, &renewed, true, Some(&codes), now_ms).await?;
    check.succeeded(app, now_ms).await?;
    let user_id = user.user_id.to_string();
    audit("recovery_codes_regenerated", Some(&user_id), req);
    send_notice(
        app,
        &user.email,
        Some(&user_id),
        Notice::RecoveryCodesRenewed,
        req,
    )
    .await;
    Ok(reply)
}

#[derive(Serialize)]
struct MfaRequired<'a> {
    mfa_required: bool,
    mfa_token: &'a str,
    mfa_token_expires_in: i64,
}

/// The password step of a login for a user with two-factor sign-in: no tokens yet, a
/// single-use `mfa_token` for `/login/mfa`, bound to the user as they are now.
pub(crate) async fn challenge<S: Store>(
    app: &App<S>,
    req: &Request,
    user: &UserRecord,
    now_ms: i64,
) -> Result<Reply, ApiError> {
    let token = RefreshToken::generate();
    let challenge = MfaChallenge {
        hash: token.hash(),
        user_id: user.user_id,
        email: user.email.clone(),
        epoch: user.session_epoch,
        expires_at: now_ms / 1000 + CHALLENGE_TTL_SECONDS,
    };
    app.store.begin_mfa_challenge(&challenge).await?;
    audit("login_mfa_required", Some(&user.user_id.to_string()), req);
    let encoded = token.encode();
    Ok(Reply::json(
        StatusCode::OK,
        &MfaRequired {
            mfa_required: true,
            mfa_token: encoded.expose_secret(),
            mfa_token_expires_in: CHALLENGE_TTL_SECONDS,
        },
        Some(user.user_id.to_string()),
    ))
}

/// `POST /login/mfa {"mfa_token","code"}` → 200 with the usual tokens (a session that passed
/// the second factor), 401 for a wrong or used code or an unknown, expired or used
/// `mfa_token`, 429 in backoff. Each code is accepted once; wrong codes count toward the
/// login backoff of the email and source, like wrong passwords.
pub async fn login_mfa<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["mfa_token", "code"])?;
    let mut errors = Vec::new();
    let token = body
        .take_string("mfa_token")
        .map_err(|e| errors.push(e))
        .ok();
    let code = code_field(&mut body, "code")
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(token), Some(code)) = (token, code) else {
        return Err(ApiError::Validation(errors));
    };
    key(app)?;
    let token = RefreshToken::parse(&token).ok_or(ApiError::InvalidMfaToken)?;
    let now_ms = app.clock.now_ms();
    let challenge = app
        .store
        .find_mfa_challenge(&token.hash())
        .await?
        .filter(|c| c.expires_at > now_ms / 1000)
        .ok_or(ApiError::InvalidMfaToken)?;
    // Counted before the code is checked: an mfa_token is checked against at most
    // CHALLENGE_ATTEMPTS codes, however many arrive at once.
    let attempt = app
        .store
        .count_challenge_attempt(&challenge.hash)
        .await?
        .ok_or(ApiError::InvalidMfaToken)?;
    let source = super::source(req);
    let (user, seen) = app
        .store
        .find_user_for_login(&challenge.email, &source)
        .await?;
    let user = user
        .filter(|u| {
            u.user_id == challenge.user_id
                && u.session_epoch == challenge.epoch
                && !u.disabled
                && u.mfa.enabled()
        })
        .ok_or(ApiError::InvalidMfaToken)?;
    let check = PasswordCheck::admit(
        app,
        &challenge.email,
        Some(&user),
        seen,
        source,
        req,
        now_ms,
    )
    .await?;
    let user_id = user.user_id.to_string();
    let Some(spent) =
        check_code(app, req, &user, &code, &check, "login_mfa_failed", now_ms).await?
    else {
        if attempt >= CHALLENGE_ATTEMPTS {
            // Its last code was wrong: the mfa_token is spent, and a new password step (which
            // the login backoff counts) is needed for more.
            app.store.spend_mfa_challenge(&challenge.hash).await?;
        }
        return Err(ApiError::InvalidMfaCode);
    };
    let (refresh, mut family, record) = SessionFamily::begin(
        &user,
        challenge.epoch,
        now_ms,
        app.sessions.first_token_ttl(),
        client_info(req),
    );
    family.mfa = true;
    match app
        .store
        .complete_mfa_challenge(&challenge, &user, &spent, &family, &record)
        .await
    {
        Ok(()) => {}
        // The challenge, or the code, served a concurrent request first.
        Err(StoreError::Conflict) => {
            audit("login_mfa_failed", Some(&user_id), req);
            return Err(ApiError::InvalidMfaCode);
        }
        Err(other) => return Err(other.into()),
    }
    let (forgotten, trusted) = tokio::join!(
        check.succeeded(app, now_ms),
        super::login::trust_source(app, &user, check.source())
    );
    forgotten?;
    trusted?;
    audit("login_succeeded", Some(&user_id), req);
    token_reply(
        app,
        &user,
        &family,
        &refresh,
        record.expires_at,
        now_ms / 1000,
    )
}
