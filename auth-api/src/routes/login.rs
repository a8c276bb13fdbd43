//! `POST /login`: sign-in with an email and a password.

use accounts::flows::login::LoginOutcome;
use accounts::model::client::Client;
use accounts::store::Store;
use lambda_http::Request;
use secrecy::SecretString;

use crate::app::App;
use crate::http::body::{Fields, JsonObject};
use crate::http::problem::ApiError;
use crate::http::reply::Reply;
use crate::routes::mfa::second_factor_required;

/// `POST /login {"email","password"}` → 200 with an access token and a refresh token (a new
/// session), 401, or 429 while (email, source) or the email is in backoff. For a user with
/// two-factor sign-in, 200 `{"mfa_required":true,"mfa_token"}` instead of tokens: the code
/// goes to `/login/mfa`.
pub async fn login<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["email", "password"])?;
    let mut fields = Fields::default();
    let email = fields.take(body.take_string("email"));
    let password = fields.take(body.take_string("password"));
    let (Some(email), Some(password)) = (email, password) else {
        return Err(fields.into_error());
    };
    match app
        .accounts
        .login(&email, SecretString::from(password), client)
        .await?
    {
        LoginOutcome::SignedIn(signed_in) => Ok(Reply::signed_in(&app.browser, &signed_in)),
        LoginOutcome::SecondFactorRequired(challenge) => Ok(second_factor_required(&challenge)),
    }
}
