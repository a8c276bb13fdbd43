//! `POST /email/verify`, `/email/verify/resend`, `/password/forgot` and `/password/reset`:
//! proving an email address and recovering an account, by a single-use link sent by mail.

use std::time::Instant;

use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use super::{Reply, audit};
use crate::App;
use crate::body::JsonObject;
use crate::error::{ApiError, FieldError};
use accounts::model::credentials::{Email, NewPassword};
use accounts::model::link::{ActionRecord, ActionToken, Purpose};

use accounts::mail::MailDelivery;
use accounts::model::user::UserRecord;
use accounts::recovery::{
    MAILS_PER_HOUR, MAILS_PER_MINUTE, Notice, TOKEN_CHECKS_PER_HOUR, compose,
};
use accounts::store::{Store, StoreError};

/// What `/password/forgot` and `/email/verify/resend` answer, whatever happened.
const ACCEPTED: &str =
    "If an account with this email exists and needs it, a mail with a link is on its way.";

/// Issues a `purpose` token to `user` and mails it. A mail that is not sent (SES refusing or
/// down, or no sender configured) is logged with its cause and audited; it is no error for the
/// client, who can ask again. Store failures are errors.
pub(crate) async fn send_token<S: Store>(
    app: &App<S>,
    user: &UserRecord,
    purpose: Purpose,
    req: &Request,
) -> Result<(), ApiError> {
    let (sent, not_sent) = match purpose {
        Purpose::VerifyEmail => ("verification_sent", "verification_not_sent"),
        Purpose::ResetPassword => ("reset_requested", "reset_not_sent"),
    };
    let user_id = user.user_id.to_string();
    if matches!(app.recovery.mail, MailDelivery::Disabled) {
        tracing::warn!(
            purpose = purpose.as_str(),
            "mail is off (SES_FROM_ADDRESS is not set): no mail sent"
        );
        audit(not_sent, Some(&user_id), req);
        return Ok(());
    }
    let settings = &app.recovery.settings;
    let (token, record) = ActionRecord::issue(
        user,
        purpose,
        app.clock.now_ms(),
        settings.actions.ttl_seconds(purpose),
    );
    app.store.issue_action(&record).await?;
    let mail = compose(settings, purpose, &user.email, &token);
    match app.recovery.mail.send(&mail).await {
        Ok(()) => audit(sent, Some(&user_id), req),
        Err(err) => {
            if !matches!(app.recovery.mail, accounts::mail::MailDelivery::Disabled) {
                shared::metrics::emit(&[], &[("MailFailures", 1.0, shared::metrics::Unit::Count)]);
            }
            tracing::error!(
                purpose = purpose.as_str(),
                error = %shared::error_chain(&err),
                "mail not sent"
            );
            audit(not_sent, Some(&user_id), req);
        }
    }
    Ok(())
}

/// Tells the owner of `to` of `notice`, when mail is on. Best-effort: what happened has
/// happened; a mail that fails is logged (and audited `notice_not_sent`), never answered.
pub(crate) async fn send_notice<S: Store>(
    app: &App<S>,
    to: &Email,
    user_id: Option<&str>,
    notice: Notice,
    req: &Request,
) {
    if matches!(app.recovery.mail, MailDelivery::Disabled) {
        return;
    }
    let mail = accounts::recovery::compose_notice(&app.recovery.settings, notice, to);
    match app.recovery.mail.send(&mail).await {
        Ok(()) => {
            tracing::info!(notice = notice.as_str(), user_id, "notice sent");
        }
        Err(err) => {
            shared::metrics::emit(&[], &[("MailFailures", 1.0, shared::metrics::Unit::Count)]);
            tracing::error!(
                notice = notice.as_str(),
                user_id,
                error = %shared::error_chain(&err),
                "notice not sent"
            );
            audit("notice_not_sent", user_id, req);
        }
    }
}

/// Counts a mail to `email` (registered or not, so a 429 says nothing about existence):
/// 429 past one a minute or five an hour.
pub(crate) async fn admit_mail<S: Store>(app: &App<S>, email: &Email) -> Result<(), ApiError> {
    let now_ms = app.clock.now_ms();
    // Per mailbox: ada+1@… and ada+2@… land in one inbox.
    let windows = app.store.count_mail(&email.mailbox(), now_ms).await?;
    let retry_after = windows
        .minute
        .over(MAILS_PER_MINUTE, now_ms)
        .into_iter()
        .chain(windows.hour.over(MAILS_PER_HOUR, now_ms))
        .max();
    match retry_after {
        Some(retry_after_seconds) => Err(ApiError::TooManyMails {
            retry_after_seconds,
        }),
        None => Ok(()),
    }
}

/// Counts a link check from the request's source address: 429 past twenty an hour.
async fn admit_token_check<S: Store>(app: &App<S>, req: &Request) -> Result<(), ApiError> {
    let now_ms = app.clock.now_ms();
    let window = app
        .store
        .count_token_check(&super::source(req), now_ms)
        .await?;
    match window.over(TOKEN_CHECKS_PER_HOUR, now_ms) {
        Some(retry_after_seconds) => Err(ApiError::TooManyTokenChecks {
            retry_after_seconds,
        }),
        None => Ok(()),
    }
}

/// The live token `text` for `purpose`, with its user: 400 for anything else (malformed,
/// unknown, expired, superseded, spent, or for the other purpose).
async fn live_token<S: Store>(
    app: &App<S>,
    text: &str,
    purpose: Purpose,
) -> Result<(ActionRecord, UserRecord), ApiError> {
    let token = ActionToken::parse(text).ok_or(ApiError::InvalidActionToken)?;
    let (record, user) = app
        .store
        .find_action(&token.hash())
        .await?
        .ok_or(ApiError::InvalidActionToken)?;
    let now_ms = app.clock.now_ms();
    let user = user
        .filter(|u| record.purpose == purpose && record.usable_for(u, now_ms))
        .ok_or(ApiError::InvalidActionToken)?;
    Ok((record, user))
}

/// A spend that lost to another (or to a newer token) is the same 400 as any unusable token.
fn spent_or_superseded(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict => ApiError::InvalidActionToken,
        other => other.into(),
    }
}

/// The `email` of the body: 400 if it is missing or malformed.
fn email_of(req: &Request) -> Result<Email, ApiError> {
    let mut body = JsonObject::from_request(req, &["email"])?;
    let raw = body
        .take_string("email")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    Email::parse(&raw).map_err(|m| ApiError::Validation(vec![FieldError::new("email", m)]))
}

/// The same 202 for every address, no sooner than the configured floor: a mail sent (a known
/// address) and none (unknown) take the same time.
async fn accepted<S>(app: &App<S>, started: Instant) -> Reply {
    let floor = app.recovery.settings.response_floor;
    tokio::time::sleep(floor.saturating_sub(started.elapsed())).await;
    Reply::json(StatusCode::ACCEPTED, &json!({ "message": ACCEPTED }), None)
}

/// `POST /email/verify {"token"}` → 200 `{"email","email_verified":true}`; the token is spent.
pub async fn verify_email<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["token"])?;
    let text = body
        .take_string("token")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    admit_token_check(app, req).await?;
    let (record, user) = live_token(app, &text, Purpose::VerifyEmail).await?;
    app.store
        .verify_email(&record)
        .await
        .map_err(spent_or_superseded)?;
    let user_id = user.user_id.to_string();
    audit("email_verified", Some(&user_id), req);
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "email": user.email.as_str(), "email_verified": true }),
        Some(user_id),
    ))
}

/// `POST /email/verify/resend {"email"}` → 202, the same for every address; an unverified
/// account gets a new verification mail (the older link stops working).
pub async fn resend<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    mail_if_account(app, req, Purpose::VerifyEmail, |u| !u.email_verified).await
}

/// `POST /password/forgot {"email"}` → 202, the same for every address and in the same time;
/// an account gets a reset mail (the older link stops working).
pub async fn forgot<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    mail_if_account(app, req, Purpose::ResetPassword, |_| true).await
}

/// The body's email gets a `purpose` mail if it has an account that `wants` it; the answer is
/// the same 202 whatever the address, no sooner than the response floor.
async fn mail_if_account<S: Store>(
    app: &App<S>,
    req: &Request,
    purpose: Purpose,
    wants: impl Fn(&UserRecord) -> bool,
) -> Result<Reply, ApiError> {
    let started = Instant::now();
    let email = email_of(req)?;
    admit_mail(app, &email).await?;
    let (user, _) = app
        .store
        .find_user_for_login(&email, &super::source(req))
        .await?;
    // After the lookup, an error would tell a known address from an unknown one: logged only.
    if let Some(user) = user.filter(|u| wants(u))
        && let Err(err) = send_token(app, &user, purpose, req).await
    {
        tracing::error!(
            purpose = purpose.as_str(),
            error = %shared::error_chain(&err),
            "mail not issued"
        );
    }
    Ok(accepted(app, started).await)
}

/// `POST /password/reset {"token","new_password"}` → 204: the password is replaced, every
/// session ends, the login backoff is cleared and the email counts as verified (the user read
/// the mail). A new password that breaks the rules is a 400 and leaves the token unspent.
pub async fn reset<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["token", "new_password"])?;
    let token = body.take_string("token");
    let new_password = body.take_string("new_password");
    let (token, new_password) = match (token, new_password) {
        (Ok(t), Ok(p)) => (t, p),
        (t, p) => {
            return Err(ApiError::Validation(
                [t.err(), p.err()].into_iter().flatten().collect(),
            ));
        }
    };
    admit_token_check(app, req).await?;
    let (record, user) = live_token(app, &token, Purpose::ResetPassword).await?;
    let new_password = NewPassword::parse(new_password, Some(&user.email)).map_err(|problems| {
        ApiError::Validation(
            problems
                .into_iter()
                .map(|m| FieldError::new("new_password", m))
                .collect(),
        )
    })?;
    let new_hash = app.passwords.hash(new_password).await?;
    app.store
        .reset_password(&record, &new_hash)
        .await
        .map_err(spent_or_superseded)?;
    let user_id = user.user_id.to_string();
    audit("password_reset", Some(&user_id), req);
    // The password is changed: whatever happens to the clean-up, the owner gets 204. A
    // backoff record left behind only delays their next sign-in from a guessed-at address
    // until it runs out.
    if let Err(err) = app.store.clear_login_failures(&user.email).await {
        tracing::warn!(
            user_id = %user_id,
            error = %shared::error_chain(&err),
            "login backoff not cleared after a password reset"
        );
    }
    Ok(Reply::no_content(Some(user_id)))
}
