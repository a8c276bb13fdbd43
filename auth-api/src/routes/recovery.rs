//! `POST /email/verify`, `/email/verify/resend`, `/password/forgot` and `/password/reset`:
//! proving an email address and recovering an account, by a single-use link sent by mail.

use accounts::model::client::Client;
use accounts::model::credentials::Email;
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use serde_json::json;

use crate::app::App;
use crate::http::body::{Fields, JsonObject};
use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::Reply;

/// What `/password/forgot` and `/email/verify/resend` answer, whatever happened.
const ACCEPTED: &str =
    "If an account with this email exists and needs it, a mail with a link is on its way.";

/// The `email` of the body: 400 if it is missing or malformed.
fn email_of(req: &Request) -> Result<Email, ApiError> {
    let mut body = JsonObject::from_request(req, &["email"])?;
    let raw = body
        .take_string("email")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    Email::parse(&raw).map_err(|m| ApiError::Validation(vec![FieldError::new("email", m)]))
}

/// The same 202 for every address.
fn accepted() -> Reply {
    Reply::json(StatusCode::ACCEPTED, &json!({ "message": ACCEPTED }), None)
}

/// `POST /email/verify {"token"}` → 200 `{"email","email_verified":true}`; the token is spent.
pub async fn verify_email<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["token"])?;
    let token = body
        .take_string("token")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let user = app.accounts.verify_email(&token, client).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &json!({ "email": user.email.as_str(), "email_verified": true }),
        Some(user.user_id.to_string()),
    ))
}

/// `POST /email/verify/resend {"email"}` → 202, the same for every address and in the same
/// time; an unverified account gets a new verification mail.
pub async fn resend<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let email = email_of(req)?;
    app.accounts.resend_verification(&email, client).await?;
    Ok(accepted())
}

/// `POST /password/forgot {"email"}` → 202, the same for every address and in the same time;
/// an account gets a reset mail.
pub async fn forgot<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let email = email_of(req)?;
    app.accounts.forgot_password(&email, client).await?;
    Ok(accepted())
}

/// `POST /password/reset {"token","new_password"}` → 204: the password is replaced and every
/// session ends. A new password that breaks the rules is a 400 and leaves the token unspent.
pub async fn reset<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["token", "new_password"])?;
    let mut fields = Fields::default();
    let token = fields.take(body.take_string("token"));
    let new_password = fields.take(body.take_string("new_password"));
    let (Some(token), Some(new_password)) = (token, new_password) else {
        return Err(fields.into_error());
    };
    let user_id = app
        .accounts
        .reset_password(&token, new_password, client)
        .await?;
    Ok(Reply::no_content(Some(user_id.to_string())))
}
