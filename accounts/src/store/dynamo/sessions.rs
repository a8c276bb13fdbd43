//! Sessions: a family item per login and an item per refresh token, written in transactions.

use crate::model::backoff::Source;
use crate::model::user::UserRecord;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use uuid::Uuid;

use super::client::DynamoStore;
use super::errors::internal;
use super::events::put_event;
use super::items::*;
use crate::model::credentials::Email;
use crate::model::event::{AccountEvent, EventType, SessionEnd};
use crate::model::session::{
    AccountState, RefreshLookup, RefreshRecord, SessionFamily, SessionState, Spent,
};
use crate::model::token::TokenHash;
use crate::store::traits::{SessionStore, StoreError};

impl SessionStore for DynamoStore {
    async fn start_session(
        &self,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        self.transact(vec![
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
            put_event(&AccountEvent::session_created(family), &self.table)?,
        ])
        .await
    }

    async fn start_signed_in_session(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        token: &RefreshRecord,
        source: &Source,
        trusted: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let forget = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(attempts_key(&user.email, source)))
            .build()
            .map_err(internal)?;
        let mut items = vec![
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
            TransactWriteItem::builder().delete(forget).build(),
            put_event(&AccountEvent::session_created(family), &self.table)?,
        ];
        if let Some(sources) = trusted {
            let trust = Update::builder()
                .table_name(&self.table)
                .set_key(Some(user_key(&user.email)))
                .update_expression("SET trusted_sources = :sources")
                .condition_expression("user_id = :user_id")
                .expression_attribute_values(":sources", string_list(sources))
                .expression_attribute_values(":user_id", s(user.user_id.to_string()))
                .build()
                .map_err(internal)?;
            items.push(TransactWriteItem::builder().update(trust).build());
        }
        self.transact(items).await
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshLookup>, StoreError> {
        let Some(item) = self.get_consistent(refresh_key(hash)).await? else {
            return Ok(None);
        };
        let token = refresh_from_item(hash, &item)?;
        let mut lookup = RefreshLookup {
            family: None,
            user: None,
            token,
        };
        for item in self
            .batch_get(vec![
                family_key(lookup.token.family_id),
                user_key(&lookup.token.email),
            ])
            .await?
        {
            match Self::sk_of(&item) {
                Some("SESSION") => lookup.family = Some(family_from_item(&item)?),
                Some("USER") => lookup.user = Some(user_from_item(&item)?),
                _ => {}
            }
        }
        Ok(Some(lookup))
    }

    async fn rotate_refresh(
        &self,
        spent_hash: &TokenHash,
        spent: &Spent,
        successor: &RefreshRecord,
        epoch: u64,
    ) -> Result<(), StoreError> {
        let spend = Update::builder()
            .table_name(&self.table)
            .set_key(Some(refresh_key(spent_hash)))
            .update_expression(
                "SET token_status = :spent, spent_at_ms = :at, successor = :sealed, \
                 successor_hash = :successor_hash",
            )
            .condition_expression("token_status = :active AND family_id = :family_id")
            .expression_attribute_values(":spent", s("spent"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":at", n(spent.at_ms))
            .expression_attribute_values(
                ":sealed",
                AttributeValue::B(Blob::new(spent.sealed_successor.to_vec())),
            )
            .expression_attribute_values(":successor_hash", s(spent.successor_hash.to_hex()))
            .expression_attribute_values(":family_id", s(successor.family_id.to_string()))
            .build()
            .map_err(internal)?;
        let extend_family = Update::builder()
            .table_name(&self.table)
            .set_key(Some(family_key(successor.family_id)))
            .update_expression("SET expires_at = :expires_at, last_refreshed_at_ms = :at")
            .condition_expression("revoked = :false AND epoch = :epoch")
            .expression_attribute_values(":expires_at", n(successor.expires_at))
            .expression_attribute_values(":at", n(spent.at_ms))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":epoch", n(epoch))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            TransactWriteItem::builder().update(spend).build(),
            put(refresh_item(successor), &self.table)?,
            TransactWriteItem::builder().update(extend_family).build(),
            user_at_epoch(&self.table, successor, epoch)?,
        ])
        .await
    }

    async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionFamily>, StoreError> {
        self.query_index(&sessions_of(user_id))
            .await?
            .iter()
            .map(family_from_item)
            .collect()
    }

    async fn find_session(&self, family_id: Uuid) -> Result<Option<SessionFamily>, StoreError> {
        self.get_consistent(family_key(family_id))
            .await?
            .map(|item| family_from_item(&item))
            .transpose()
    }

    async fn session_state(
        &self,
        family_id: Uuid,
        email: &Email,
    ) -> Result<(Option<SessionState>, Option<AccountState>), StoreError> {
        let mut found = (None, None);
        for item in self
            .batch_get_attributes(
                vec![family_key(family_id), user_key(email)],
                SESSION_STATE_ATTRIBUTES,
            )
            .await?
        {
            match Self::sk_of(&item) {
                Some("SESSION") => found.0 = Some(session_state_from_item(&item)?),
                Some("USER") => found.1 = Some(account_state_from_item(&item)?),
                _ => {}
            }
        }
        Ok(found)
    }

    async fn revoke_family(
        &self,
        family_id: Uuid,
        user_id: Uuid,
        end: SessionEnd,
    ) -> Result<(), StoreError> {
        let revoke = Update::builder()
            .table_name(&self.table)
            .set_key(Some(family_key(family_id)))
            .update_expression("SET revoked = :true")
            .condition_expression(
                "user_id = :user_id AND (attribute_not_exists(revoked) OR revoked = :false)",
            )
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":user_id", s(user_id.to_string()))
            .build()
            .map_err(internal)?;
        let items = vec![
            TransactWriteItem::builder().update(revoke).build(),
            put_event(
                &AccountEvent::session_ended(user_id, family_id, end),
                &self.table,
            )?,
        ];
        for _ in 0..3 {
            match self.transact(items.clone()).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) => {
                    // Revoked already, gone, or someone else's: nothing left to revoke. A
                    // transaction that only collided with another write (a rotation) is tried
                    // again: a revocation is never lost.
                    let still_live = self
                        .get_consistent(family_key(family_id))
                        .await?
                        .is_some_and(|item| {
                            item.get("revoked").and_then(|v| v.as_bool().ok()) != Some(&true)
                                && item.get("user_id").and_then(|v| v.as_s().ok())
                                    == Some(&user_id.to_string())
                        });
                    if !still_live {
                        return Ok(());
                    }
                }
                Err(err) => return Err(err),
            }
        }
        #[derive(Debug, thiserror::Error)]
        #[error("a session's revocation kept colliding with other writes")]
        struct Contended;
        Err(StoreError::Unavailable(Box::new(Contended)))
    }

    async fn revoke_all_sessions(&self, email: &Email, user_id: Uuid) -> Result<bool, StoreError> {
        let end_all = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(email)))
            .update_expression("ADD session_epoch :one REMOVE trusted_sources")
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":user_id", s(user_id.to_string()))
            .build()
            .map_err(internal)?;
        let event = AccountEvent::user(EventType::SessionRevoked, user_id).with("all", true);
        match self
            .transact(vec![
                TransactWriteItem::builder().update(end_all).build(),
                put_event(&event, &self.table)?,
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(err) => Err(err),
        }
    }
}
