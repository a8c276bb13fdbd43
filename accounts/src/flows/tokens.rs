//! What OAuth clients and resource servers ask of tokens already issued: userinfo (OpenID
//! Connect Core §5.3), revocation (RFC 7009) and introspection (RFC 7662). Access tokens
//! arrive verified (their signature is the HTTP face's to check); refresh tokens as sent.

use shared::AccessClaims;
use uuid::Uuid;

use super::Accounts;
use crate::error::Error;
use crate::model::credentials::Email;
use crate::model::event::SessionEnd;
use crate::model::oidc::SCOPE_OPENID;
use crate::model::registry::ClientRecord;
use crate::model::session::{LiveRefresh, RefreshLookup, RefreshToken, TokenUse};
use crate::model::user::UserRecord;
use crate::store::Store;

/// What introspection tells of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    Inactive,
    /// A live access token: its claims.
    Access(Box<AccessClaims>),
    /// A live refresh token of the asking client.
    Refresh {
        user_id: Uuid,
        client_id: String,
        scope: String,
        expires_at: i64,
        issued_at: i64,
    },
}

impl<S: Store> Accounts<S> {
    /// The user an OpenID access token (scope `openid`) speaks for, as they are now: enabled,
    /// and the token's session still live. `None` for anything else.
    pub async fn userinfo(&self, claims: &AccessClaims) -> Result<Option<UserRecord>, Error> {
        if !claims.scopes().any(|s| s == SCOPE_OPENID) {
            return Ok(None);
        }
        self.live_user_of(claims).await
    }

    /// The user of a verified user access token, if they are enabled and its session (if it
    /// names one) is live.
    async fn live_user_of(&self, claims: &AccessClaims) -> Result<Option<UserRecord>, Error> {
        let Ok(email) = Email::parse(&claims.email) else {
            return Ok(None);
        };
        let Ok(user_id) = Uuid::parse_str(&claims.sub) else {
            return Ok(None);
        };
        let session = claims.sid.as_deref().and_then(|s| Uuid::parse_str(s).ok());
        let (user, family) = tokio::join!(self.store.find_user(&email), async {
            match session {
                Some(id) => self.store.find_session(id).await.map(Some),
                None => Ok(None),
            }
        });
        let Some(user) = user?.filter(|u| u.user_id == user_id && !u.disabled) else {
            return Ok(None);
        };
        let now_ms = self.clock.now_ms();
        match (session, family?) {
            (None, _) => Ok(Some(user)),
            (Some(_), Some(Some(family)))
                if family.user_id == user.user_id
                    && family.is_live(&self.sessions, user.session_epoch, now_ms) =>
            {
                Ok(Some(user))
            }
            _ => Ok(None),
        }
    }

    /// RFC 7009: revokes `token` if it was issued to `registered`: a refresh token, or a
    /// verified access token (`access`), ends the session it belongs to. Anything else is
    /// ignored, so the answer never tells whether a token exists.
    pub async fn revoke_token(
        &self,
        registered: &ClientRecord,
        token: &str,
        access: Option<&AccessClaims>,
    ) -> Result<(), Error> {
        if let Some(claims) = access {
            let ours = claims.client_id.as_deref() == Some(registered.client_id.as_str());
            if let (true, Some(sid)) = (ours, claims.sid.as_deref())
                && let Ok(family_id) = Uuid::parse_str(sid)
                && let Ok(user_id) = Uuid::parse_str(&claims.sub)
            {
                self.store
                    .revoke_family(family_id, user_id, SessionEnd::TokenRevoked)
                    .await?;
            }
            return Ok(());
        }
        let Some(presented) = RefreshToken::parse(token) else {
            return Ok(());
        };
        if let Some(RefreshLookup { token, .. }) =
            self.store.find_refresh(&presented.hash()).await?
            && matches!(&token.token_use, TokenUse::Client { client_id, .. } if *client_id == registered.client_id)
        {
            self.store
                .revoke_family(token.family_id, token.user_id, SessionEnd::TokenRevoked)
                .await?;
        }
        Ok(())
    }

    /// RFC 7662 for `registered` (a confidential client): a verified access token
    /// (`access`) is active while its user is enabled and its session live; a refresh token
    /// only if it was issued to `registered` and is live.
    pub async fn introspect(
        &self,
        registered: &ClientRecord,
        token: &str,
        access: Option<AccessClaims>,
    ) -> Result<Introspection, Error> {
        if let Some(claims) = access {
            let live = match claims.principal() {
                Some(shared::Principal::User) => self.live_user_of(&claims).await?.is_some(),
                Some(shared::Principal::Client) => {
                    let id = crate::model::registry::ClientId::parse(&claims.sub);
                    match id {
                        Some(id) => self
                            .store
                            .find_client(&id)
                            .await?
                            .is_some_and(|c| !c.disabled),
                        None => false,
                    }
                }
                None => false,
            };
            return Ok(if live {
                Introspection::Access(Box::new(claims))
            } else {
                Introspection::Inactive
            });
        }
        let Some(presented) = RefreshToken::parse(token) else {
            return Ok(Introspection::Inactive);
        };
        let now_ms = self.clock.now_ms();
        let Some(LiveRefresh { token, user, .. }) = self
            .store
            .find_refresh(&presented.hash())
            .await?
            .and_then(|found| found.live(&self.sessions, now_ms))
        else {
            return Ok(Introspection::Inactive);
        };
        let TokenUse::Client { client_id, scope } = &token.token_use else {
            return Ok(Introspection::Inactive);
        };
        let live = *client_id == registered.client_id && token.spent.is_none();
        Ok(if live {
            Introspection::Refresh {
                user_id: user.user_id,
                client_id: client_id.to_string(),
                scope: scope.clone(),
                expires_at: token.expires_at,
                issued_at: token.issued_at_ms / 1000,
            }
        } else {
            Introspection::Inactive
        })
    }
}
