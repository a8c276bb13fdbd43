//! The table and the calls every concern shares.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, ReturnValue, TransactWriteItem, WriteRequest,
};

use crate::store::traits::StoreError;

use super::errors::{classify, condition_failed, internal, written};

/// Name of the index that finds users by id.
pub const USER_ID_INDEX: &str = "gsi1";

/// Name of the table's TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// An item as the SDK reads and writes it.
pub(super) type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
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
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(internal)?;
        self.batch_get_request(keys).await
    }

    pub(super) async fn batch_get_request(
        &self,
        keys: KeysAndAttributes,
    ) -> Result<Vec<Item>, StoreError> {
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
    pub(super) async fn batch_get_attributes(
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
    pub(super) async fn get_consistent(&self, key: Item) -> Result<Option<Item>, StoreError> {
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
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
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
    pub(super) async fn query_index(&self, key: &str) -> Result<Vec<Item>, StoreError> {
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

    /// Every item of the base table's partition `pk` (all pages), read consistently.
    pub(super) async fn query_partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .consistent_read(true)
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
    pub(super) async fn delete_all(&self, keys: Vec<Item>) -> Result<(), StoreError> {
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

    pub(super) fn sk_of(item: &Item) -> Option<&str> {
        item.get("sk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
}

impl DynamoStore {
    /// Puts `item` unless its key exists; `Conflict` if it does.
    pub(super) async fn put_new(&self, item: Item) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // The hash of 256 random bits: a clash is a bug, not a race.
        match written(result)? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }

    /// Deletes the item at `key` and returns it, if it was there: of concurrent takes, one.
    pub(super) async fn take(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes),
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(classify(err)),
        }
    }
}
