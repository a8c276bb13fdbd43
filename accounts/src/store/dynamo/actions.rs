//! Mail-borne tokens: an item per token, the live one's hash on the user item, spent by one
//! transaction that deletes the token and acts on the user; and the mail and token-check
//! windows.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use secrecy::{ExposeSecret, SecretString};

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use super::errors::{classify, internal};
use super::events::put_event;
use super::items::*;
use crate::model::backoff::{Source, Window};
use crate::model::credentials::Email;
use crate::model::event::{AccountEvent, EventType};
use crate::model::link::{ActionRecord, Purpose};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;
use crate::store::traits::{ActionStore, MailWindows, StoreError};

fn action_key(hash: &TokenHash) -> Item {
    Item::from([
        ("pk".to_owned(), s(format!("ACTION#{}", hash.to_hex()))),
        ("sk".to_owned(), s("ACTION")),
    ])
}

/// The user attribute holding the live token of `purpose`.
fn live_attribute(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::VerifyEmail => "verify_token",
        Purpose::ResetPassword => "reset_token",
    }
}

fn action_item(record: &ActionRecord) -> Item {
    let mut item = action_key(&record.hash);
    item.extend([
        ("entity".to_owned(), s("action")),
        ("purpose".to_owned(), s(record.purpose.as_str())),
        ("user_id".to_owned(), s(record.user_id.to_string())),
        ("email".to_owned(), s(record.email.as_str())),
        ("created_at_ms".to_owned(), n(record.created_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(record.expires_at)),
        ("gsi1pk".to_owned(), s(tokens_of(record.user_id))),
    ]);
    item
}

fn action_from_item(hash: &TokenHash, item: &Item) -> Result<ActionRecord, StoreError> {
    Ok(ActionRecord {
        hash: *hash,
        purpose: Purpose::parse(string_attr(item, "purpose")?)
            .ok_or_else(|| corrupt(item, "purpose is unknown"))?,
        user_id: uuid_attr(item, "user_id")?,
        email: email_attr(item)?,
        created_at_ms: required_number(item, "created_at_ms")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
    })
}

impl DynamoStore {
    /// Deletes the token of `record` (it must still exist, for its purpose) and applies
    /// `update` (an `UPDATE` expression) to its user, only while the token is the user's live
    /// one: all or nothing.
    async fn spend(
        &self,
        record: &ActionRecord,
        update: &str,
        values: Vec<(&str, AttributeValue)>,
        event: EventType,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(action_key(&record.hash)))
            .condition_expression("attribute_exists(pk) AND purpose = :purpose")
            .expression_attribute_values(":purpose", s(record.purpose.as_str()))
            .build()
            .map_err(internal)?;
        let mut act = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&record.email)))
            .update_expression(update)
            .condition_expression(format!(
                "user_id = :user_id AND {} = :hash",
                live_attribute(record.purpose)
            ))
            .expression_attribute_values(":user_id", s(record.user_id.to_string()))
            .expression_attribute_values(":hash", s(record.hash.to_hex()));
        for (name, value) in values {
            act = act.expression_attribute_values(name, value);
        }
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder()
                .update(act.build().map_err(internal)?)
                .build(),
            put_event(&AccountEvent::user(event, record.user_id), &self.table)?,
        ])
        .await
    }

    /// Writes a new user's transaction, `items`, whose first is the user's put: `EmailTaken`
    /// when its condition fails. Parallel registrations of one address meet in the mail
    /// counters, where DynamoDB cancels the losers with TransactionConflict before any
    /// condition is judged: tried again, so each is judged on the account's condition
    /// (exactly one creates it, the others find it taken), not answered 503.
    pub(super) async fn create_with(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let Err(err) = result else {
                return Ok(());
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    e.cancellation_reasons().to_vec()
                }
                _ => Vec::new(),
            };
            if reasons
                .first()
                .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                return Err(StoreError::EmailTaken);
            }
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if !conflict || attempt >= REGISTRATION_ATTEMPTS {
                return Err(classify(err));
            }
            tokio::time::sleep(std::time::Duration::from_millis(
                20 * u64::from(attempt) + u64::from(rand::random::<u8>() % 20),
            ))
            .await;
        }
    }
}

/// Tries of a registration's transaction that other writes to its mail counters cancel.
const REGISTRATION_ATTEMPTS: u32 = 4;

impl ActionStore for DynamoStore {
    async fn issue_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        let make_live = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&record.email)))
            .update_expression(format!("SET {} = :hash", live_attribute(record.purpose)))
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":hash", s(record.hash.to_hex()))
            .expression_attribute_values(":user_id", s(record.user_id.to_string()))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            put(action_item(record), &self.table)?,
            TransactWriteItem::builder().update(make_live).build(),
        ])
        .await
    }

    async fn find_action(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(ActionRecord, Option<UserRecord>)>, StoreError> {
        let Some(item) = self.get_consistent(action_key(hash)).await? else {
            return Ok(None);
        };
        let record = action_from_item(hash, &item)?;
        let user = self
            .batch_get(vec![user_key(&record.email)])
            .await?
            .first()
            .map(user_from_item)
            .transpose()?;
        Ok(Some((record, user)))
    }

    async fn verify_email(&self, record: &ActionRecord) -> Result<(), StoreError> {
        if record.purpose != Purpose::VerifyEmail {
            return Err(StoreError::Conflict);
        }
        self.spend(
            record,
            "SET email_verified = :true REMOVE verify_token",
            vec![(":true", AttributeValue::Bool(true))],
            EventType::UserEmailVerified,
        )
        .await
    }

    async fn reset_password(
        &self,
        record: &ActionRecord,
        new_hash: &SecretString,
    ) -> Result<(), StoreError> {
        if record.purpose != Purpose::ResetPassword {
            return Err(StoreError::Conflict);
        }
        self.spend(
            record,
            "SET password_hash = :new_hash, email_verified = :true \
             ADD session_epoch :one \
             REMOVE reset_token, legacy_password, trusted_sources, no_password",
            vec![
                (":new_hash", s(new_hash.expose_secret())),
                (":true", AttributeValue::Bool(true)),
                (":one", n(1)),
            ],
            EventType::UserPasswordReset,
        )
        .await
    }

    async fn create_user_with_link(
        &self,
        user: &UserRecord,
        link: &ActionRecord,
        mailbox: &Email,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let count = |window: &str, seconds: i64| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(Item::from([
                    ("pk".to_owned(), s(format!("MAILSENT#{}", mailbox.as_str()))),
                    ("sk".to_owned(), s(window)),
                ])))
                .update_expression(
                    "ADD #count :one SET entity = :entity, \
                     expires_at = if_not_exists(expires_at, :ends)",
                )
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":entity", s("mailsent"))
                .expression_attribute_values(":ends", n(now_ms / 1000 + seconds))
                .build()
                .map_err(internal)
                .map(|update| TransactWriteItem::builder().update(update).build())
        };
        self.create_with(vec![
            put(super::users::user_item(user)?, &self.table)?,
            put(action_item(link), &self.table)?,
            count("MINUTE", 60)?,
            count("HOUR", 3600)?,
            put_event(&AccountEvent::user_created(user), &self.table)?,
        ])
        .await
    }

    async fn count_mail(&self, email: &Email, now_ms: i64) -> Result<MailWindows, StoreError> {
        let key = |window: &str| {
            Item::from([
                ("pk".to_owned(), s(format!("MAILSENT#{}", email.as_str()))),
                ("sk".to_owned(), s(window)),
            ])
        };
        let (minute, hour) = tokio::join!(
            self.count_in_window(key("MINUTE"), "mailsent", now_ms, 60),
            self.count_in_window(key("HOUR"), "mailsent", now_ms, 3600),
        );
        Ok(MailWindows {
            minute: minute?,
            hour: hour?,
        })
    }

    async fn count_token_check(&self, source: &Source, now_ms: i64) -> Result<Window, StoreError> {
        let key = Item::from([
            (
                "pk".to_owned(),
                s(format!("TOKENCHECK#{}", source.as_str())),
            ),
            ("sk".to_owned(), s("TOKENCHECK")),
        ]);
        self.count_in_window(key, "tokencheck", now_ms, 3600).await
    }

    async fn count_registration(&self, source: &Source, now_ms: i64) -> Result<Window, StoreError> {
        let key = Item::from([
            ("pk".to_owned(), s(format!("REGISTER#{}", source.as_str()))),
            ("sk".to_owned(), s("REGISTER")),
        ]);
        self.count_in_window(key, "register", now_ms, 3600).await
    }
}
