//! `GET /identities` and `DELETE /identities/{id}`: the user's accounts at other identity
//! providers, and unlinking one (never the last way to sign in).

use accounts::model::client::{Caller, Client};
use accounts::store::Store;
use http::StatusCode;
use serde::Serialize;

use crate::app::App;
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

#[derive(Serialize)]
struct IdentityView {
    id: String,
    provider: String,
    provider_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    linked_at: String,
}

#[derive(Serialize)]
struct IdentityList {
    identities: Vec<IdentityView>,
}

/// `GET /identities` (protected) → 200 the caller's linked identities, oldest first.
pub async fn list<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let identities = app
        .accounts
        .identities(caller, client)
        .await?
        .into_iter()
        .map(|identity| {
            Ok(IdentityView {
                linked_at: accounts::model::session::rfc3339_seconds(identity.linked_at_ms)
                    .ok_or_else(|| ApiError::internal("a link time is out of range"))?,
                id: identity.id,
                provider: identity.provider,
                provider_name: identity.provider_name,
                email: identity.email,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Reply::json(
        StatusCode::OK,
        &IdentityList { identities },
        Some(caller.user_id.to_string()),
    ))
}

/// `DELETE /identities/{id}` (protected) → 204; 404 when the caller has no such identity,
/// 409 when it is the account's last way to sign in.
pub async fn unlink<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    app.accounts.unlink(caller, id, client).await?;
    Ok(Reply::no_content(Some(caller.user_id.to_string())))
}

#[derive(Serialize)]
struct LinkStart {
    url: String,
}

/// `POST /identities/link/{provider}` (protected) → 200 `{"url"}`: where the caller's
/// browser goes to link `provider` to their account (once, within ten minutes). 404 for a
/// provider this deployment does not have.
pub async fn start_link<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
    provider: &str,
) -> Result<Reply, ApiError> {
    let ticket = app.accounts.start_link(caller, provider, client).await?;
    let url = format!(
        "{}/oauth2/federate/{provider}?link_ticket={ticket}",
        app.accounts.issuer.settings().issuer
    );
    Ok(Reply::json(
        StatusCode::OK,
        &LinkStart { url },
        Some(caller.user_id.to_string()),
    ))
}
