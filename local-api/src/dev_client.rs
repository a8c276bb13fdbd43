//! local-api's development OAuth client: registered (or, in a table that has one, given a new
//! secret) at start-up, so a machine token is one curl away from the first minute.

use accounts::model::registry::{
    ClientRecord, ClientSecret, ClientSpec, ClientType, GrantType, Scope, parse_scopes,
};
use accounts::store::{ClientStore, StoreError};
use shared::config::{self, ConfigError, Env};

/// The development client's name: how a restart over a kept table finds it again.
pub const DEV_CLIENT_NAME: &str = "local-api development client";
/// `LOCAL_CLIENT_SCOPES` unless set.
pub const DEFAULT_SCOPES: &str = "api:read api:write";

/// `LOCAL_CLIENT_SCOPES`: the development client's scopes.
pub fn scopes_from_env(env: &dyn Env) -> Result<Vec<Scope>, ConfigError> {
    let text =
        config::optional(env, "LOCAL_CLIENT_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.into());
    parse_scopes(&text).map_err(|why| ConfigError::new("LOCAL_CLIENT_SCOPES", why))
}

/// Registers the development client with `scopes`, or gives the one a kept table holds a new
/// secret (its old one stops: it was printed by an earlier run, and only the hash was kept)
/// and these scopes. Returns the client and its secret, shown once.
pub async fn register<S: ClientStore>(
    store: &S,
    scopes: Vec<Scope>,
    now_ms: i64,
) -> Result<(ClientRecord, ClientSecret), StoreError> {
    const ACTOR: &str = "local-api";
    let existing = store
        .list_clients()
        .await?
        .into_iter()
        .find(|c| c.name == DEV_CLIENT_NAME && c.client_type == ClientType::Confidential);
    let spec = ClientSpec {
        name: Some(DEV_CLIENT_NAME.into()),
        client_type: Some(ClientType::Confidential),
        scopes: Some(scopes),
        grant_types: Some(vec![GrantType::ClientCredentials]),
        first_party: Some(true),
        ..ClientSpec::default()
    };
    if let Some(client) = existing {
        let updated = client
            .updated(spec, ACTOR, now_ms)
            .map_err(|e| StoreError::Internal(e.into()))?;
        let (rotated, secret) = updated
            .rotated(None, ACTOR, now_ms)
            .map_err(|e| StoreError::Internal(e.into()))?;
        // Saved as one change from the version read.
        let rotated = ClientRecord {
            version: client.version + 1,
            ..rotated
        };
        store.save_client(&rotated).await?;
        return Ok((rotated, secret));
    }
    let (client, secret) =
        ClientRecord::create(spec, ACTOR, now_ms).map_err(|e| StoreError::Internal(e.into()))?;
    let secret = secret.ok_or_else(|| StoreError::Internal("a confidential client".into()))?;
    store.create_client(&client).await?;
    Ok((client, secret))
}

/// The development app's name: a first-party public client that signs users in through the
/// hosted pages (the example single-page app, a CLI on a loopback port).
pub const DEV_APP_NAME: &str = "local-api development app";

/// Registers the development app, or brings the one a kept table holds up to date: a public,
/// first-party client of the authorization code grant (PKCE) and refresh tokens, with
/// `redirect_uris` and `post_logout_redirect_uris`, and `scopes` for the APIs.
pub async fn register_app<S: ClientStore>(
    store: &S,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    scopes: Vec<Scope>,
    now_ms: i64,
) -> Result<ClientRecord, StoreError> {
    const ACTOR: &str = "local-api";
    let existing = store
        .list_clients()
        .await?
        .into_iter()
        .find(|c| c.name == DEV_APP_NAME && c.client_type == ClientType::Public);
    let spec = ClientSpec {
        name: Some(DEV_APP_NAME.into()),
        client_type: Some(ClientType::Public),
        scopes: Some(scopes),
        grant_types: Some(vec![
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::DeviceCode,
        ]),
        redirect_uris: Some(redirect_uris),
        post_logout_redirect_uris: Some(post_logout_redirect_uris),
        first_party: Some(true),
    };
    if let Some(client) = existing {
        let updated = client
            .updated(spec, ACTOR, now_ms)
            .map_err(|e| StoreError::Internal(e.into()))?;
        store.save_client(&updated).await?;
        return Ok(updated);
    }
    let (client, _) =
        ClientRecord::create(spec, ACTOR, now_ms).map_err(|e| StoreError::Internal(e.into()))?;
    store.create_client(&client).await?;
    Ok(client)
}

/// The development app's loopback redirect URI (RFC 8252 §7.3): any port matches, for CLIs
/// and tests that listen wherever they can.
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";
