//! The DynamoDB store. Table layout (README "Table layout"):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | user | `EMAIL#<email>` | `USER` | `user_id`, `email`, `password_hash`, `roles` (list), `created_at` (RFC 3339), `entity`, `gsi1pk` = `USER#<user_id>`, `session_epoch`, `trusted_sources` (list) |
//! | failed logins per source | `LOGINFAIL#<email>` | `SOURCE#<ip>` | `failures`, `locked_until_ms`, `expires_at` (TTL, a day after the last check); written only conditionally on the values read |
//! | failed logins per email | `LOGINFAIL#<email>` | `EMAIL` | `count` (moved only by `ADD`), `expires_at` (the window's end, and the TTL) |
//! | session (refresh family) | `SESSION#<family_id>` | `SESSION` | `user_id`, `email`, `epoch`, `revoked` (bool), `created_at_ms`, `expires_at` (TTL, moved on by each refresh), `last_refreshed_at_ms`, `user_agent`, `source_ip`, `gsi1pk` = `SESSIONS#<user_id>` |
//! | refresh token | `REFRESH#<sha256 hex>` | `REFRESH` | `family_id`, `user_id`, `email`, `issued_at_ms`, `expires_at` (TTL), `token_status` (`active`/`spent`); once spent `spent_at_ms`, `successor` (binary, sealed), `successor_hash`; `gsi1pk` = `TOKENS#<user_id>` |
//!
//! Global secondary index `gsi1` (partition key `gsi1pk`, all attributes) finds a user by id
//! (`USER#`), their sessions (`SESSIONS#`) and their tokens (`TOKENS#`).
//! `expires_at` (Unix seconds) is the table's TTL attribute.
//!
//! One file per concern: `items` (keys and attribute codecs), `errors` (how SDK errors map to
//! [`StoreError`]), `schema` (the table itself), and one per trait: `users`, `attempts`,
//! `sessions`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, TransactWriteItem, WriteRequest,
};

use super::StoreError;

mod actions;
mod admin;
mod attempts;
mod errors;
mod items;
mod mfa;
mod schema;
mod sessions;
mod users;

use errors::{classify, internal};
pub use items::SESSION_STATE_ATTRIBUTES;
pub use schema::{TTL_ATTRIBUTE, USER_ID_INDEX};

/// An item as the SDK reads and writes it.
type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The DynamoDB client, for tools that read other tables (auth-admin's import).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The items with these keys, read consistently in one round trip.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(internal)?;
        self.batch_get_request(keys).await
    }

    async fn batch_get_request(&self, keys: KeysAndAttributes) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(classify)?;
        if output
            .unprocessed_keys
            .as_ref()
            .is_some_and(|u| u.values().any(|k| !k.keys.is_empty()))
        {
            #[derive(Debug, thiserror::Error)]
            #[error("DynamoDB left keys of a BatchGetItem unprocessed (throttled)")]
            struct Unprocessed;
            return Err(StoreError::Unavailable(Box::new(Unprocessed)));
        }
        Ok(output
            .responses
            .unwrap_or_default()
            .remove(&self.table)
            .unwrap_or_default())
    }

    /// Only `attributes` of the items with these keys, read consistently in one round trip.
    async fn batch_get_attributes(
        &self,
        keys: Vec<Item>,
        attributes: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        let mut projection = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true);
        let mut names = Vec::with_capacity(attributes.len());
        for (i, attribute) in attributes.iter().enumerate() {
            // Placeholders for all: some attribute names are DynamoDB reserved words.
            projection = projection.expression_attribute_names(format!("#a{i}"), *attribute);
            names.push(format!("#a{i}"));
        }
        let keys = projection
            .projection_expression(names.join(", "))
            .build()
            .map_err(internal)?;
        self.batch_get_request(keys).await
    }

    /// The item at `key`, read consistently.
    async fn get_consistent(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item)
    }

    /// Writes `items` all or nothing. A failed condition, or a concurrent transaction on one
    /// of the items, is a `Conflict`.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let lost_a_race = match err.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                        e.cancellation_reasons().iter().any(|r| {
                            matches!(
                                r.code(),
                                Some("ConditionalCheckFailed" | "TransactionConflict")
                            )
                        })
                    }
                    _ => false,
                };
                if lost_a_race {
                    Err(StoreError::Conflict)
                } else {
                    Err(classify(err))
                }
            }
        }
    }

    /// Every item whose `gsi1pk` is `key` (all pages). The index is eventually consistent: an
    /// item written a moment ago may be missing.
    async fn query_index(&self, key: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(USER_ID_INDEX)
                .key_condition_expression("gsi1pk = :key")
                .expression_attribute_values(":key", AttributeValue::S(key.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes the items at `keys`, 25 a request, retrying what DynamoDB leaves unprocessed a
    /// few times. Not atomic: for clean-ups whose items are already dead.
    async fn delete_all(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(internal)
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0..4 {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(classify)?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                #[derive(Debug, thiserror::Error)]
                #[error("DynamoDB left deletes of a BatchWriteItem unprocessed (throttled)")]
                struct Unprocessed;
                return Err(StoreError::Unavailable(Box::new(Unprocessed)));
            }
        }
        Ok(())
    }

    fn sk_of(item: &Item) -> Option<&str> {
        item.get("sk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
}
