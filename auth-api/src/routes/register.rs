use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Reply;
use crate::App;
use crate::body::JsonObject;
use crate::error::{ApiError, FieldError};
use accounts::mail::MailDelivery;
use accounts::model::credentials::{Email, NewPassword};
use accounts::model::link::Purpose;
use accounts::model::user::UserRecord;
use accounts::recovery::Notice;
use accounts::store::{Store, StoreError};

#[derive(Serialize)]
struct Registered {
    user_id: String,
    email: String,
    created_at: String,
}

/// `POST /register {"email","password"}` → 201, 400 with every field problem, or 429. With
/// mail on, a taken email gets exactly a new one's answer (status, headers, body shape, work)
/// and its owner a mail instead: registration tells nobody who has an account. Without mail
/// there is no other way to tell the person registering, so a taken email gets 409.
pub async fn register<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["email", "password"])?;
    let mut errors = Vec::new();
    let email = body
        .take_string("email")
        .and_then(|raw| Email::parse(&raw).map_err(|m| FieldError::new("email", m)))
        .map_err(|e| errors.push(e))
        .ok();
    let password = match body.take_string("password") {
        Ok(raw) => NewPassword::parse(raw, email.as_ref())
            .map_err(|problems| {
                errors.extend(problems.into_iter().map(|m| FieldError::new("password", m)));
            })
            .ok(),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ApiError::Validation(errors));
    };
    // Counted before any work or write: each registration of a new address sends a mail, and
    // addresses that do not exist bounce (SES pauses an account that bounces too much).
    let now_ms = app.clock.now_ms();
    let limit = app.recovery.settings.registrations_per_source_per_hour;
    let window = app
        .store
        .count_registration(&super::source(req), now_ms)
        .await?;
    if let Some(retry_after_seconds) = window.over(limit, now_ms) {
        if window.count == limit + 1 {
            super::audit("registration_limit_reached", None, req);
        }
        return Err(ApiError::TooManyRegistrations {
            limit,
            retry_after_seconds,
        });
    }

    let password_hash = app.passwords.hash(password).await?;
    // Whole seconds: the stored value and the response agree exactly.
    let now = OffsetDateTime::from_unix_timestamp(app.clock.now()).map_err(ApiError::internal)?;
    let user = UserRecord::new(email, password_hash, now);
    let mail_on = !matches!(app.recovery.mail, MailDelivery::Disabled);
    match app.store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::EmailTaken) if mail_on => {
            return registration_of_taken_email(app, &user, now, req).await;
        }
        Err(err) => return Err(err.into()),
    }
    let user_id = user.user_id.to_string();
    super::audit("registered", Some(&user_id), req);
    // The account exists now whatever happens to its mail: a failure is logged, and the user
    // can ask for another at /email/verify/resend.
    // With mail off there is nothing to count (send_token logs and audits the mail not sent).
    let mail = async {
        if !matches!(app.recovery.mail, MailDelivery::Disabled) {
            super::recovery::admit_mail(app, &user.email).await?;
        }
        super::recovery::send_token(app, &user, Purpose::VerifyEmail, req).await
    };
    match mail.await {
        Err(err) if err.is_fault() => {
            tracing::error!(error = %shared::error_chain(&err), "verification mail not issued");
        }
        Err(err) => tracing::info!(error = %err, "verification mail not issued"),
        Ok(()) => {}
    }
    registered(&user, now, Some(user_id))
}

/// 201 with the account's id, email and creation time.
fn registered(
    user: &UserRecord,
    now: OffsetDateTime,
    logged_user: Option<String>,
) -> Result<Reply, ApiError> {
    Ok(Reply::json(
        StatusCode::CREATED,
        &Registered {
            user_id: user.user_id.to_string(),
            email: user.email.to_string(),
            created_at: now.format(&Rfc3339).map_err(ApiError::internal)?,
        },
        logged_user,
    ))
}

/// A registration of an email that has an account, with mail on: the same answer a new
/// address gets (the unsaved record's fresh id; the same hash, write and mail work before
/// it), and the owner a mail ("sign in, or reset your password"), counted toward the
/// address's mail limit like the verification mail it stands in for. Nothing is written.
async fn registration_of_taken_email<S: Store>(
    app: &App<S>,
    attempted: &UserRecord,
    now: OffsetDateTime,
    req: &Request,
) -> Result<Reply, ApiError> {
    super::audit("registration_email_taken", None, req);
    match super::recovery::admit_mail(app, &attempted.email).await {
        Ok(()) => {
            super::recovery::send_notice(
                app,
                &attempted.email,
                None,
                Notice::RegistrationAttempt,
                req,
            )
            .await;
        }
        Err(err) if err.is_fault() => {
            tracing::error!(error = %shared::error_chain(&err), "registration notice not sent");
        }
        Err(err) => tracing::info!(error = %err, "registration notice not sent"),
    }
    registered(attempted, now, None)
}
