//! Refresh rotation with reuse detection, and sign-out by refresh token.

use uuid::Uuid;

use super::{Accounts, SignedIn, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::Client;
use crate::model::event::SessionEnd;
use crate::model::session::{
    LiveRefresh, RefreshLookup, RefreshRecord, RefreshToken, SessionFamily, Spent, TokenUse,
};
use crate::model::user::UserRecord;
use crate::store::{Store, StoreError};

/// How often a refresh re-reads and retries after losing a race on its token.
const ROTATION_ATTEMPTS: usize = 3;

/// A refresh token spent for its successor.
pub(crate) struct Rotated {
    pub user: UserRecord,
    pub family: SessionFamily,
    pub successor: RefreshToken,
    /// When the successor expires (Unix seconds).
    pub expires_at: i64,
    pub token_use: TokenUse,
    /// Unix seconds.
    pub now: i64,
}

impl<S: Store> Accounts<S> {
    /// Spends `presented` for a new access token and its successor in the same session.
    /// Re-presenting a spent token within the grace window gives the same successor again;
    /// later, the whole session is revoked (one of its holders is not the owner).
    /// `InvalidRefreshToken` for anything that is not a live token of a live session.
    pub async fn refresh(
        &self,
        presented: RefreshToken,
        client: &Client,
    ) -> Result<SignedIn, Error> {
        let rotated = self
            .rotate(presented, client, |u| *u == TokenUse::Api)
            .await?;
        // Asked after the rotation: a refused refresh can be retried within the grace
        // window, which hands the same successor over again.
        let custom = self
            .first_party_claims(&rotated.user, &rotated.family, client)
            .await?;
        self.signed_in(
            &rotated.user,
            &rotated.family,
            rotated.successor,
            rotated.expires_at,
            rotated.now,
            custom,
        )
    }

    /// Spends `presented`, a live token of a live session whose use `door` accepts, for its
    /// successor (the same one again within the grace window). A token of another door is
    /// refused untouched, as if unknown.
    pub(crate) async fn rotate(
        &self,
        presented: RefreshToken,
        client: &Client,
        door: impl Fn(&TokenUse) -> bool,
    ) -> Result<Rotated, Error> {
        let hash = presented.hash();
        for _ in 0..ROTATION_ATTEMPTS {
            let now_ms = self.clock.now_ms();
            let now = now_ms / 1000;
            let LiveRefresh {
                token,
                family,
                user,
            } = self
                .store
                .find_refresh(&hash)
                .await?
                .and_then(|found| found.live(&self.sessions, now_ms))
                .filter(|found| door(&found.token.token_use))
                .ok_or(Error::InvalidRefreshToken)?;
            match &token.spent {
                None => {
                    let successor = RefreshToken::generate();
                    let record = RefreshRecord {
                        hash: successor.hash(),
                        family_id: family.family_id,
                        user_id: user.user_id,
                        email: user.email.clone(),
                        issued_at_ms: now_ms,
                        expires_at: self.sessions.token_expiry(now, family.created_at_ms),
                        spent: None,
                        token_use: token.token_use.clone(),
                    };
                    let spent = Spent {
                        at_ms: now_ms,
                        sealed_successor: presented.seal(&successor),
                        successor_hash: record.hash,
                    };
                    match self
                        .store
                        .rotate_refresh(&hash, &spent, &record, family.epoch)
                        .await
                    {
                        Ok(()) => {
                            return Ok(Rotated {
                                user,
                                family,
                                successor,
                                expires_at: record.expires_at,
                                token_use: record.token_use,
                                now,
                            });
                        }
                        // Someone else moved the token, session or user on: look again.
                        Err(StoreError::Conflict) => continue,
                        Err(err) => return Err(err.into()),
                    }
                }
                Some(spent) if now_ms - spent.at_ms <= self.sessions.reuse_grace_seconds * 1000 => {
                    // A retry: the same successor again, never a second one.
                    let successor = presented.unseal(&spent.sealed_successor);
                    if successor.hash() != spent.successor_hash {
                        return Err(Error::internal(
                            "a spent refresh token's sealed successor does not match its hash",
                        ));
                    }
                    let expires_at = self
                        .sessions
                        .token_expiry(spent.at_ms / 1000, family.created_at_ms);
                    return Ok(Rotated {
                        user,
                        family,
                        successor,
                        expires_at,
                        token_use: token.token_use,
                        now,
                    });
                }
                Some(_) => {
                    // A spent token after the grace window: one of its holders is not the
                    // owner.
                    self.store
                        .revoke_family(family.family_id, user.user_id, SessionEnd::RefreshReused)
                        .await?;
                    audit(
                        Event::RefreshReused,
                        Some(&user.user_id.to_string()),
                        client,
                    );
                    return Err(Error::InvalidRefreshToken);
                }
            }
        }
        tracing::warn!("refresh lost {ROTATION_ATTEMPTS} races in a row");
        Err(Error::Conflict)
    }

    /// Ends the session of `presented`. An unknown, spent or revoked token is no error (RFC
    /// 7009): there is nothing left to end. The user whose session it was, if any.
    pub async fn logout(
        &self,
        presented: Option<RefreshToken>,
        client: &Client,
    ) -> Result<Option<Uuid>, Error> {
        let Some(presented) = presented else {
            return Ok(None);
        };
        let found = self.store.find_refresh(&presented.hash()).await?;
        let Some(RefreshLookup {
            family: Some(family),
            ..
        }) = found
        else {
            return Ok(None);
        };
        if !family.revoked {
            self.store
                .revoke_family(family.family_id, family.user_id, SessionEnd::Logout)
                .await?;
            audit(Event::LoggedOut, Some(&family.user_id.to_string()), client);
        }
        Ok(Some(family.user_id))
    }
}
