//! `POST /register`: a new account with an email and a password.

use accounts::model::client::Client;
use accounts::model::credentials::{Email, NewPassword};
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::app::App;
use crate::http::body::{Fields, JsonObject};
use crate::http::problem::{ApiError, FieldError};
use crate::http::reply::Reply;

#[derive(Serialize)]
struct Registered {
    user_id: String,
    email: String,
    created_at: String,
}

/// `POST /register {"email","password"}` → 201, 400 with every field problem, or 429. With
/// mail on, a taken email gets exactly a new one's answer (status, headers, body shape, work)
/// and its owner a mail instead; without mail, 409.
pub async fn register<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["email", "password"])?;
    let mut fields = Fields::default();
    let email = fields.take(
        body.take_string("email")
            .and_then(|raw| Email::parse(&raw).map_err(|m| FieldError::new("email", m))),
    );
    let password = fields
        .take(body.take_string("password"))
        .and_then(|raw| fields.take_all("password", NewPassword::parse(raw, email.as_ref())));
    let (Some(email), Some(password)) = (email, password) else {
        return Err(fields.into_error());
    };
    let registration = app.accounts.register(email, password, client).await?;
    let user = &registration.user;
    Ok(Reply::json(
        StatusCode::CREATED,
        &Registered {
            user_id: user.user_id.to_string(),
            email: user.email.to_string(),
            created_at: registration
                .created_at
                .format(&Rfc3339)
                .map_err(ApiError::internal)?,
        },
        registration.created.then(|| user.user_id.to_string()),
    ))
}
