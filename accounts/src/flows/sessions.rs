//! The caller's sessions: listing them, ending one, ending all.

use uuid::Uuid;

use super::{Accounts, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::{Caller, Client};
use crate::model::event::SessionEnd;
use crate::store::Store;

/// One live session, as its owner sees it.
pub struct SessionSummary {
    pub id: Uuid,
    pub created_at_ms: i64,
    pub last_refreshed_at_ms: Option<i64>,
    /// When it ends unless refreshed (Unix seconds).
    pub ends_at: i64,
    pub user_agent: Option<String>,
    pub source_ip: Option<String>,
    /// The session of the caller's own access token.
    pub current: bool,
}

impl<S: Store> Accounts<S> {
    /// Ends every session of the caller.
    pub async fn logout_everywhere(&self, caller: &Caller, client: &Client) -> Result<(), Error> {
        let found = self
            .store
            .revoke_all_sessions(&caller.email, caller.user_id)
            .await?;
        if !found {
            return Err(Error::UserNotFound);
        }
        audit(
            Event::LoggedOutEverywhere,
            Some(&caller.user_id.to_string()),
            client,
        );
        Ok(())
    }

    /// The caller's live sessions, newest first.
    pub async fn sessions_of(&self, caller: &Caller) -> Result<Vec<SessionSummary>, Error> {
        let (user, families) = tokio::try_join!(
            self.store.find_user_by_id(caller.user_id),
            self.store.list_sessions(caller.user_id),
        )?;
        let user = user
            .filter(|u| u.email == caller.email)
            .ok_or(Error::UserNotFound)?;
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        let now_ms = self.clock.now_ms();
        let mut live: Vec<_> = families
            .into_iter()
            .filter(|f| f.is_live(&self.sessions, user.session_epoch, now_ms))
            .collect();
        live.sort_by_key(|f| std::cmp::Reverse(f.created_at_ms));
        Ok(live
            .into_iter()
            .map(|f| SessionSummary {
                id: f.family_id,
                created_at_ms: f.created_at_ms,
                last_refreshed_at_ms: f.last_refreshed_at_ms,
                ends_at: f.ends_at(&self.sessions),
                user_agent: f.client.user_agent,
                source_ip: f.client.source_ip,
                current: caller.session == Some(f.family_id),
            })
            .collect())
    }

    /// Ends the caller's session `id` (its refresh token stops working; its access tokens
    /// live until they expire). Someone else's session, or none at all, is the same
    /// `SessionNotFound`: the answer tells nothing about other users.
    pub async fn end_session(
        &self,
        caller: &Caller,
        client: &Client,
        id: &str,
    ) -> Result<(), Error> {
        let family_id = Uuid::parse_str(id).map_err(|_| Error::SessionNotFound)?;
        let family = self
            .store
            .find_session(family_id)
            .await?
            .filter(|f| f.user_id == caller.user_id)
            .ok_or(Error::SessionNotFound)?;
        self.store
            .revoke_family(family.family_id, family.user_id, SessionEnd::Ended)
            .await?;
        audit(
            Event::SessionEnded,
            Some(&caller.user_id.to_string()),
            client,
        );
        Ok(())
    }
}
