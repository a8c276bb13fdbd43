//! OAuth 2.1 at the token endpoint: the `client_credentials` grant (RFC 6749 §4.4), for
//! services that call the protected APIs as themselves.
//!
//! Client authentication is counted per client_id and per source address before the secret
//! is compared, as a password check is: of any number of parallel requests no more are
//! compared than the windows allow. A check that succeeds is taken back out.

use secrecy::{ExposeSecret, SecretString};
use shared::IssuedToken;

use super::Accounts;
use crate::audit::{Event, record_client};
use crate::error::Error;
use crate::model::client::Client;
use crate::model::registry::{
    ClientId, ClientRecord, ClientType, GrantType, Scope, parse_scopes, scope_text,
};
use crate::store::Store;

/// Failed client authentications a client_id may have in its window (5 minutes) before
/// the token endpoint answers 429 for it. Checks in flight count until they succeed.
pub const CLIENT_FAILURE_LIMIT: u32 = 20;
/// Failed client authentications one source address may have in the window, whichever
/// client_ids they named.
pub const SOURCE_FAILURE_LIMIT: u32 = 50;

/// How a client proved who it is: its id and secret, from an `Authorization: Basic` header
/// (`client_secret_basic`) or the form (`client_secret_post`).
pub struct ClientAuthentication {
    pub client_id: String,
    pub secret: SecretString,
}

/// A token for a machine client.
pub struct ClientToken {
    pub access: IssuedToken,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl<S: Store> Accounts<S> {
    /// The `client_credentials` grant: the client authenticated, the scopes asked for (all
    /// the client may have when `scope` is `None`) checked, an access token for the client.
    pub async fn client_credentials(
        &self,
        auth: &ClientAuthentication,
        scope: Option<&str>,
        client: &Client,
    ) -> Result<ClientToken, Error> {
        let registered = self.authenticate_client(auth, client).await?;
        if !registered.allows(GrantType::ClientCredentials) {
            return Err(Error::UnauthorizedClient);
        }
        let scopes = granted_scopes(&registered, scope)?;
        let now = self.clock.now_ms() / 1000;
        let access = self.issuer.issue_for_client(
            registered.client_id.as_str(),
            &scope_text(&scopes),
            self.client_token_ttl_seconds,
            now,
        )?;
        record_client(
            Event::ClientTokenIssued,
            Some(registered.client_id.as_str()),
            None,
            client,
        );
        Ok(ClientToken {
            scope: access.claims.scope.clone().unwrap_or_default(),
            access,
        })
    }

    /// The registered, enabled, confidential client whose secret `auth` holds. An unknown,
    /// disabled or public client and a wrong secret are all [`Error::InvalidClient`].
    pub async fn authenticate_client(
        &self,
        auth: &ClientAuthentication,
        client: &Client,
    ) -> Result<ClientRecord, Error> {
        let now_ms = self.clock.now_ms();
        let Some(id) = ClientId::parse(&auth.client_id) else {
            client_auth_failed(None, client, "malformed_client_id");
            return Err(Error::InvalidClient);
        };
        let source = client.source();
        let (counted, found) = tokio::join!(
            self.store.count_client_check(&id, source, now_ms),
            self.store.find_client(&id),
        );
        let (by_client, by_source) = counted?;
        let found = found?;
        let over = by_client
            .over(CLIENT_FAILURE_LIMIT, now_ms)
            .into_iter()
            .chain(by_source.over(SOURCE_FAILURE_LIMIT, now_ms))
            .max();
        // Only a registered client's id is logged: what a caller sends as a client_id may be
        // its secret, pasted into the wrong place.
        let known = found.as_ref().map(|c| &c.client_id);
        if let Some(retry_after_seconds) = over {
            client_auth_failed(known, client, "too_many_attempts");
            return Err(Error::TooManyClientAttempts {
                retry_after_seconds,
            });
        }
        // An unknown client is answered without a comparison: the two DynamoDB calls, the
        // same for both, dwarf a SHA-256, and the answer is the same.
        let matched = found
            .as_ref()
            .is_some_and(|c| c.secret_matches(auth.secret.expose_secret(), now_ms));
        let registered = match found {
            Some(c) if matched && !c.disabled && c.client_type == ClientType::Confidential => c,
            Some(c) if c.disabled => {
                client_auth_failed(Some(&id), client, "client_disabled");
                return Err(Error::InvalidClient);
            }
            Some(_) => {
                client_auth_failed(Some(&id), client, "wrong_secret");
                return Err(Error::InvalidClient);
            }
            None => {
                client_auth_failed(None, client, "unknown_client");
                return Err(Error::InvalidClient);
            }
        };
        self.store
            .take_back_client_check(&id, source, now_ms)
            .await?;
        Ok(registered)
    }
}

fn client_auth_failed(id: Option<&ClientId>, client: &Client, reason: &'static str) {
    record_client(
        Event::ClientAuthFailed,
        id.map(ClientId::as_str),
        Some(reason),
        client,
    );
}

/// The scopes a token gets: those asked for, each one the client may have; all of the
/// client's when none are asked for (RFC 6749 §3.3 lets the server choose a default).
pub fn granted_scopes(client: &ClientRecord, asked: Option<&str>) -> Result<Vec<Scope>, Error> {
    let Some(asked) = asked else {
        return Ok(client.scopes.clone());
    };
    let scopes = parse_scopes(asked).map_err(Error::InvalidScope)?;
    if let Some(refused) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return Err(Error::InvalidScope(format!(
            "the client may not ask for scope {:?}",
            refused.as_str()
        )));
    }
    Ok(scopes)
}
