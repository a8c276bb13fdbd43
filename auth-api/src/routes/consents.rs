//! `GET /consents` and `DELETE /consents/{client_id}`: the apps a user allowed to act for
//! them (through the hosted consent page), and taking that back.

use accounts::model::client::{Caller, Client};
use accounts::store::Store;
use http::StatusCode;
use serde::Serialize;

use crate::app::App;
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

#[derive(Serialize)]
struct ConsentView {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    updated_at: String,
}

#[derive(Serialize)]
struct ConsentList {
    consents: Vec<ConsentView>,
}

/// `GET /consents` (protected) → 200 every app the caller allowed anything, and what.
pub async fn list<S: Store>(app: &App<S>, caller: &Caller) -> Result<Reply, ApiError> {
    let consents = app
        .accounts
        .consents_of(caller)
        .await?
        .into_iter()
        .map(|(consent, name)| {
            Ok(ConsentView {
                client_id: consent.client_id.to_string(),
                client_name: name,
                scopes: consent.scopes,
                updated_at: accounts::model::session::rfc3339_seconds(consent.updated_at_ms)
                    .ok_or_else(|| ApiError::internal("a consent time is out of range"))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Reply::json(
        StatusCode::OK,
        &ConsentList { consents },
        Some(caller.user_id.to_string()),
    ))
}

/// `DELETE /consents/{client_id}` (protected) → 204: the app must ask again. 404 if the
/// caller allowed it nothing.
pub async fn revoke<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
    client_id: &str,
) -> Result<Reply, ApiError> {
    app.accounts
        .revoke_consent(caller, client_id, client)
        .await?;
    Ok(Reply::no_content(Some(caller.user_id.to_string())))
}
