//! Two-factor sign-in with an authenticator app (TOTP): `/mfa/totp/enroll`,
//! `/mfa/totp/confirm`, `/mfa/totp/disable`, `/mfa/recovery-codes` and `/login/mfa`.

use accounts::flows::mfa::SecondFactorRequired;
use accounts::model::client::{Caller, Client};
use accounts::model::mfa::Code;
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::app::App;
use crate::http::body::{Fields, JsonObject, code_field};
use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::Reply;

#[derive(Serialize)]
struct MfaRequired<'a> {
    mfa_required: bool,
    mfa_token: &'a str,
    mfa_token_expires_in: i64,
    methods: &'a [&'static str],
}

/// 200 `{"mfa_required":true,"mfa_token"}`: the password step of a two-factor user passed.
pub fn second_factor_required(challenge: &SecondFactorRequired) -> Reply {
    let encoded = challenge.mfa_token.encode();
    Reply::json(
        StatusCode::OK,
        &MfaRequired {
            mfa_required: true,
            mfa_token: encoded.expose_secret(),
            mfa_token_expires_in: challenge.expires_in,
            methods: &challenge.methods,
        },
        Some(challenge.user_id.to_string()),
    )
}

#[derive(Serialize)]
struct Enrollment<'a> {
    secret: &'a str,
    otpauth_uri: &'a str,
    qr_code: &'a str,
    expires_in: i64,
}

/// `POST /mfa/totp/enroll {"password"}` (protected) → 200 a new TOTP secret, its otpauth URI
/// and QR code, not yet active: `/mfa/totp/confirm` with its first code turns it on. 409 if
/// two-factor sign-in is on.
pub async fn enroll<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["password"])?;
    let password = body
        .take_string("password")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let enrollment = app
        .accounts
        .enroll_totp(caller, client, SecretString::from(password))
        .await?;
    Ok(Reply::json(
        StatusCode::OK,
        &Enrollment {
            secret: &enrollment.secret,
            otpauth_uri: &enrollment.otpauth_uri,
            qr_code: &enrollment.qr_code,
            expires_in: enrollment.expires_in,
        },
        Some(enrollment.user_id.to_string()),
    ))
}

/// `POST /mfa/totp/confirm {"code"}` (protected) → 200: the enrolled secret is active; the
/// answer carries 10 recovery codes (shown this once) and the tokens of a new session that
/// passed the second factor; every other session ends.
pub async fn confirm<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["code"])?;
    let code = code_field(&mut body, "code").map_err(|e| ApiError::Validation(vec![e]))?;
    let signed_in = app.accounts.confirm_totp(caller, client, code).await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}

/// The body's `password` and `code`, both required.
fn password_and_code(req: &Request) -> Result<(SecretString, Code), ApiError> {
    let mut body = JsonObject::from_request(req, &["password", "code"])?;
    let mut fields = Fields::default();
    let password = fields.take(body.take_string("password"));
    let code = fields.take(code_field(&mut body, "code"));
    let (Some(password), Some(code)) = (password, code) else {
        return Err(fields.into_error());
    };
    Ok((SecretString::from(password), code))
}

/// `POST /mfa/totp/disable {"password","code"}` (protected) → 200: two-factor sign-in is off;
/// every other session ends and the answer carries the tokens of a new one. `code` may be a
/// recovery code.
pub async fn disable<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let (password, code) = password_and_code(req)?;
    let signed_in = app
        .accounts
        .disable_totp(caller, client, password, code)
        .await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}

/// `POST /mfa/recovery-codes {"password","code"}` (protected) → 200 with 10 new recovery
/// codes (the old ones stop working) and the tokens of a new session; every other session
/// ends.
pub async fn renew_recovery_codes<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let (password, code) = password_and_code(req)?;
    let signed_in = app
        .accounts
        .renew_recovery_codes(caller, client, password, code)
        .await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}

/// `POST /login/mfa {"mfa_token","code"}` → 200 with the usual tokens (a session that passed
/// the second factor), 401 for a wrong or used code or an unknown, expired or used
/// `mfa_token`, 429 in backoff. With `{"mfa_token","challenge_id","credential"}` instead of
/// `code`: the second step with a passkey (`/login/mfa/passkey/options` gave the options).
pub async fn login_mfa<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body =
        JsonObject::from_request(req, &["mfa_token", "code", "challenge_id", "credential"])?;
    let passkey = body.has("credential") || body.has("challenge_id");
    if passkey && body.has("code") {
        return Err(ApiError::Validation(vec![FieldError::new(
            "code",
            "send code, or challenge_id and credential, not both",
        )]));
    }
    if passkey {
        let token = body
            .take_string("mfa_token")
            .map_err(|e| ApiError::Validation(vec![e]))?;
        return crate::routes::passkeys::second_factor(app, body, token, client).await;
    }
    let mut fields = Fields::default();
    let token = fields.take(body.take_string("mfa_token"));
    let code = fields.take(code_field(&mut body, "code"));
    let (Some(token), Some(code)) = (token, code) else {
        return Err(fields.into_error());
    };
    let signed_in = app
        .accounts
        .login_second_factor(&token, code, client)
        .await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}
