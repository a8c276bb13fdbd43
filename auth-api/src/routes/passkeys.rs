//! Passkeys: `/passkeys/register/options`, `/passkeys/register`, `/passkeys/login/options`,
//! `/passkeys/login`, `GET /passkeys`, `PATCH`/`DELETE /passkeys/{id}` and
//! `/login/mfa/passkey/options`.

use accounts::flows::passkey::{PasskeyOptions, Reauthentication};
use accounts::model::client::{Caller, Client};
use accounts::model::passkey::{Passkey, PasskeyName};
use accounts::model::session::rfc3339_seconds;
use accounts::model::webauthn::{AuthenticationResponse, RegistrationResponse};
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::app::App;
use crate::http::body::{Fields, JsonObject, optional_code};
use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::Reply;

#[derive(Serialize)]
struct OptionsView<'a> {
    challenge_id: &'a str,
    options: &'a serde_json::Value,
    expires_in: i64,
}

fn options_reply(options: &PasskeyOptions, user_id: Option<String>) -> Reply {
    let id = options.challenge_id.encode();
    Reply::json(
        StatusCode::OK,
        &OptionsView {
            challenge_id: id.expose_secret(),
            options: &options.options,
            expires_in: options.expires_in,
        },
        user_id,
    )
}

#[derive(Serialize)]
struct PasskeyView {
    id: String,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    /// A synced passkey (backup eligible): it may be on the user's other devices.
    synced: bool,
    backed_up: bool,
    transports: Vec<String>,
}

fn view(passkey: &Passkey) -> Result<PasskeyView, ApiError> {
    let time = |ms| rfc3339_seconds(ms).ok_or_else(|| ApiError::internal("a time out of range"));
    Ok(PasskeyView {
        id: passkey.id.clone(),
        name: passkey.name.as_str().to_owned(),
        created_at: time(passkey.created_at_ms)?,
        last_used_at: passkey.last_used_at_ms.map(time).transpose()?,
        synced: passkey.backup_eligible,
        backed_up: passkey.backed_up,
        transports: passkey.transports.clone(),
    })
}

/// `{"password"}` or, for a two-factor user, `{"code"}`: one of them.
fn reauthentication(req: &Request) -> Result<Reauthentication, ApiError> {
    let mut body = JsonObject::from_request(req, &["password", "code"])?;
    let mut fields = Fields::default();
    let password = fields.take(body.take_optional_string("password")).flatten();
    let code = fields.take(optional_code(&mut body)).flatten();
    if !fields.clean() {
        return Err(fields.into_error());
    }
    match (password, code) {
        (Some(password), _) => Ok(Reauthentication::Password(SecretString::from(password))),
        (None, Some(code)) => Ok(Reauthentication::Code(code)),
        (None, None) => Err(ApiError::Validation(vec![FieldError::new(
            "password",
            "is required (or code, the current code of a two-factor user)",
        )])),
    }
}

/// The body's `field` as a WebAuthn JSON response of type `T`.
fn credential<T: serde::de::DeserializeOwned>(
    body: &mut JsonObject,
    field: &'static str,
    what: &str,
) -> Result<T, FieldError> {
    let value = body.take_object(field)?;
    serde_json::from_value(value)
        .map_err(|e| FieldError::new(field, format!("must be a WebAuthn {what}: {e}")))
}

/// `POST /passkeys/register/options {"password"|"code"}` (protected) → 200
/// `{"challenge_id","options","expires_in"}`, `options` a
/// `PublicKeyCredentialCreationOptionsJSON`.
pub async fn register_options<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let proof = reauthentication(req)?;
    let options = app
        .accounts
        .passkey_registration_options(caller, client, proof)
        .await?;
    Ok(options_reply(&options, Some(caller.user_id.to_string())))
}

/// `POST /passkeys/register {"challenge_id","credential","name"?}` (protected) → 201 the new
/// passkey.
pub async fn register<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["challenge_id", "credential", "name"])?;
    let mut fields = Fields::default();
    let challenge_id = fields.take(body.take_string("challenge_id"));
    let response: Option<RegistrationResponse> = fields.take(credential(
        &mut body,
        "credential",
        "RegistrationResponseJSON",
    ));
    let name = match fields.take(body.take_optional_string("name")).flatten() {
        None => Some(PasskeyName::default_name()),
        Some(raw) => {
            let name = PasskeyName::parse(&raw);
            if name.is_none() {
                fields.refuse(
                    "name",
                    "must be 1 to 64 characters, without control characters",
                );
            }
            name
        }
    };
    let (Some(challenge_id), Some(response), Some(name), true) =
        (challenge_id, response, name, fields.clean())
    else {
        return Err(fields.into_error());
    };
    let passkey = app
        .accounts
        .register_passkey(caller, client, &challenge_id, &response, name)
        .await?;
    Ok(Reply::json(
        StatusCode::CREATED,
        &view(&passkey)?,
        Some(caller.user_id.to_string()),
    ))
}

/// `POST /passkeys/login/options {"email"?}` → 200 `{"challenge_id","options","expires_in"}`,
/// `options` a `PublicKeyCredentialRequestOptionsJSON`.
pub async fn login_options<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["email"])?;
    let email = body
        .take_optional_string("email")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let options = app.accounts.passkey_login_options(email.as_deref()).await?;
    Ok(options_reply(&options, None))
}

/// `POST /passkeys/login {"challenge_id","credential"}` → 200 the tokens of a new session, as
/// `/login` answers.
pub async fn login<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["challenge_id", "credential"])?;
    let mut fields = Fields::default();
    let challenge_id = fields.take(body.take_string("challenge_id"));
    let response: Option<AuthenticationResponse> = fields.take(credential(
        &mut body,
        "credential",
        "AuthenticationResponseJSON",
    ));
    let (Some(challenge_id), Some(response)) = (challenge_id, response) else {
        return Err(fields.into_error());
    };
    let signed_in = app
        .accounts
        .login_with_passkey(&challenge_id, &response, client)
        .await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}

/// `POST /login/mfa/passkey/options {"mfa_token"}` → 200 the options for a passkey as the
/// second step of a password sign-in.
pub async fn second_factor_options<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["mfa_token"])?;
    let token = body
        .take_string("mfa_token")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let options = app
        .accounts
        .second_factor_passkey_options(&token, client)
        .await?;
    Ok(options_reply(&options, None))
}

/// `POST /login/mfa {"mfa_token","challenge_id","credential"}`: the second step with a
/// passkey (the body without `code`).
pub async fn second_factor(
    app: &App<impl Store>,
    mut body: JsonObject,
    token: String,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut fields = Fields::default();
    let challenge_id = fields.take(body.take_string("challenge_id"));
    let response: Option<AuthenticationResponse> = fields.take(credential(
        &mut body,
        "credential",
        "AuthenticationResponseJSON",
    ));
    let (Some(challenge_id), Some(response)) = (challenge_id, response) else {
        return Err(fields.into_error());
    };
    let signed_in = app
        .accounts
        .login_second_factor_passkey(&token, &challenge_id, &response, client)
        .await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}

#[derive(Serialize)]
struct PasskeyList {
    passkeys: Vec<PasskeyView>,
}

/// `GET /passkeys` (protected) → 200 the caller's passkeys, oldest first.
pub async fn list<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let passkeys = app
        .accounts
        .passkeys_of(caller, client)
        .await?
        .iter()
        .map(view)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::json(
        StatusCode::OK,
        &PasskeyList { passkeys },
        Some(caller.user_id.to_string()),
    ))
}

/// `PATCH /passkeys/{id} {"name"}` (protected) → 200 the passkey, renamed; 404 for an id that
/// is not one of the caller's passkeys.
pub async fn rename<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["name"])?;
    let raw = body
        .take_string("name")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let name = PasskeyName::parse(&raw).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new(
            "name",
            "must be 1 to 64 characters, without control characters",
        )])
    })?;
    let passkey = app
        .accounts
        .rename_passkey(caller, client, id, name)
        .await?;
    Ok(Reply::json(
        StatusCode::OK,
        &view(&passkey)?,
        Some(caller.user_id.to_string()),
    ))
}

/// `DELETE /passkeys/{id} {"password"|"code"}` (protected) → 204; 404 for an id that is not
/// one of the caller's passkeys.
pub async fn remove<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    let proof = reauthentication(req)?;
    app.accounts
        .remove_passkey(caller, client, id, proof)
        .await?;
    Ok(Reply::no_content(Some(caller.user_id.to_string())))
}
