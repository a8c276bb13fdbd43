use http::StatusCode;
use lambda_http::Request;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use shared::Subject;
use shared::token::now_unix;

use super::Reply;
use crate::body::JsonObject;
use crate::domain::Email;
use crate::error::ApiError;
use crate::store::UserStore;
use crate::{App, store_error};

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

/// `POST /login {"email","password"}` → 200 with an access token, or 401.
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
    let user = match Email::parse(&email) {
        Ok(email) => app
            .store
            .find_user_by_email(&email)
            .await
            .map_err(store_error)?,
        Err(_) => None,
    };
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
            return Err(ApiError::InvalidCredentials);
        }
    };
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
