//! Users: one item each, keyed by email; `gsi1` finds them by id.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use secrecy::{ExposeSecret, SecretString};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::client::{DynamoStore, Item, USER_ID_INDEX};
use super::errors::{classify, internal, written};
use super::events::put_event;
use super::items::*;
use crate::model::backoff::{LoginAttempts, Source};
use crate::model::credentials::Email;
use crate::model::event::{AccountEvent, EventType};
use crate::model::session::{RefreshRecord, SessionFamily};
use crate::model::user::UserRecord;
use crate::store::traits::{StoreError, UserStore};

impl UserStore for DynamoStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        // One conditional write with its event, no read first: concurrent registrations of
        // one email race inside DynamoDB, where exactly one wins.
        self.create_with(vec![
            put(user_item(user)?, &self.table)?,
            put_event(&AccountEvent::user_created(user), &self.table)?,
        ])
        .await
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(USER_ID_INDEX)
            .key_condition_expression("gsi1pk = :id")
            .expression_attribute_values(":id", AttributeValue::S(format!("USER#{user_id}")))
            .limit(1)
            .send()
            .await
            .map_err(classify)?;
        output
            .items
            .unwrap_or_default()
            .first()
            .map(user_from_item)
            .transpose()
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
        source: &Source,
    ) -> Result<(Option<UserRecord>, LoginAttempts), StoreError> {
        // One round trip for both items.
        let mut user = None;
        let mut attempts = LoginAttempts::default();
        for item in self
            .batch_get(vec![user_key(email), attempts_key(email, source)])
            .await?
        {
            match Self::sk_of(&item) {
                Some("USER") => user = Some(user_from_item(&item)?),
                Some(sk) if sk.starts_with("SOURCE#") => attempts = attempts_from_item(&item),
                _ => {}
            }
        }
        Ok((user, attempts))
    }

    async fn set_trusted_sources(
        &self,
        user: &UserRecord,
        sources: &[String],
    ) -> Result<(), StoreError> {
        let result = self
            .update_user(user)
            .update_expression("SET trusted_sources = :sources")
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":sources", string_list(sources))
            .send()
            .await;
        // A user deleted or replaced meanwhile keeps nothing of this one's.
        written(result).map(|_| ())
    }

    async fn rehash_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
    ) -> Result<(), StoreError> {
        let result = self
            .update_user(user)
            // A hash of the exact password: no longer the Node.js original's.
            .update_expression("SET password_hash = :new_hash REMOVE legacy_password")
            .condition_expression("user_id = :user_id AND password_hash = :old_hash")
            .expression_attribute_values(":old_hash", s(user.password_hash.expose_secret()))
            .expression_attribute_values(":new_hash", s(new_hash.expose_secret()))
            .send()
            .await;
        if written(result)? {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn change_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        if family.epoch != user.session_epoch + 1 {
            return Err(StoreError::Conflict);
        }
        let condition = format!(
            "{} AND password_hash = :old_hash",
            epoch_condition(user.session_epoch)
        );
        let update_user = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression(
                "SET password_hash = :new_hash, session_epoch = :new_epoch \
                 REMOVE legacy_password, trusted_sources",
            )
            .condition_expression(condition)
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .expression_attribute_values(":epoch", n(user.session_epoch))
            .expression_attribute_values(":old_hash", s(user.password_hash.expose_secret()))
            .expression_attribute_values(":new_hash", s(new_hash.expose_secret()))
            .expression_attribute_values(":new_epoch", n(family.epoch))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            TransactWriteItem::builder().update(update_user).build(),
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
            put_event(
                &AccountEvent::user(EventType::UserPasswordChanged, user.user_id),
                &self.table,
            )?,
        ])
        .await
    }
}

impl DynamoStore {
    /// An `UpdateItem` of `user`'s item, with `:user_id` bound for its condition.
    fn update_user(&self, user: &UserRecord) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
    }
}

impl crate::store::AccountStore for DynamoStore {
    async fn delete_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .condition_expression(epoch_condition(user.session_epoch))
            .expression_attribute_values(":user_id", AttributeValue::S(user.user_id.to_string()))
            .expression_attribute_values(":epoch", n(user.session_epoch))
            .build()
            .map_err(internal)?;
        // The account and its event, together; the event outlives it (it is no token of
        // the user's, so the clean-up below leaves it).
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            put_event(&AccountEvent::user_deleted(user), &self.table)?,
        ])
        .await?;
        // The account is gone; what remains of it is dead (every lookup checks the user id).
        let mut keys = Vec::new();
        for index_key in [
            sessions_of(user.user_id),
            tokens_of(user.user_id),
            identities_of(user.user_id),
        ] {
            for item in self.query_index(&index_key).await? {
                if let (Some(pk), Some(sk)) = (item.get("pk"), item.get("sk")) {
                    keys.push(super::client::Item::from([
                        ("pk".to_owned(), pk.clone()),
                        ("sk".to_owned(), sk.clone()),
                    ]));
                }
            }
        }
        self.delete_all(keys).await
    }
}

/// A user's item, as created (its live verification token included, when it has one).
pub(super) fn user_item(user: &UserRecord) -> Result<Item, StoreError> {
    let created_at = user.created_at.format(&Rfc3339).map_err(internal)?;
    let mut item = user_key(&user.email);
    item.extend([
        ("entity".to_owned(), AttributeValue::S("user".to_owned())),
        (
            "user_id".to_owned(),
            AttributeValue::S(user.user_id.to_string()),
        ),
        (
            "gsi1pk".to_owned(),
            AttributeValue::S(format!("USER#{}", user.user_id)),
        ),
        (
            "email".to_owned(),
            AttributeValue::S(user.email.as_str().to_owned()),
        ),
        (
            "password_hash".to_owned(),
            AttributeValue::S(user.password_hash.expose_secret().to_owned()),
        ),
        ("roles".to_owned(), string_list(&user.roles)),
        ("created_at".to_owned(), AttributeValue::S(created_at)),
        ("session_epoch".to_owned(), n(user.session_epoch)),
        (
            "email_verified".to_owned(),
            AttributeValue::Bool(user.email_verified),
        ),
    ]);
    if !user.trusted_sources.is_empty() {
        item.insert(
            "trusted_sources".to_owned(),
            string_list(&user.trusted_sources),
        );
    }
    if user.disabled {
        item.insert("disabled".to_owned(), AttributeValue::Bool(true));
    }
    if user.legacy_password {
        item.insert("legacy_password".to_owned(), AttributeValue::Bool(true));
    }
    if !user.has_password {
        item.insert("no_password".to_owned(), AttributeValue::Bool(true));
    }
    if user.identities > 0 {
        item.insert("identities".to_owned(), n(user.identities));
    }
    for (name, value) in [("username", &user.username), ("name", &user.name)] {
        if let Some(value) = value {
            item.insert(name.to_owned(), AttributeValue::S(value.clone()));
        }
    }
    if let Some(hash) = &user.verify_token {
        item.insert("verify_token".to_owned(), s(hash.to_hex()));
    }
    Ok(item)
}
