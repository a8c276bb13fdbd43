//! Lifecycle events as items: `EVENT#<user_id>` (or `EVENT#CLIENT#<client_id>`) /
//! `<time>#<id>`, written in the transaction of the change that emits them, kept a day
//! (the table's stream delivers them when written; TTL deletions are no events).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde_json::{Map, Value};

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::classify;
use super::items::*;
use crate::model::event::{AccountEvent, EventSubject, EventType, Origin};
use crate::model::registry::ClientId;
use crate::store::traits::{EventStore, StoreError};

/// How long an event item is kept after it is written: its delivery starts at once.
const KEEP_SECONDS: i64 = 86_400;

pub(super) fn event_item(event: &AccountEvent) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".to_owned(), s(event.subject.partition())),
        ("sk".to_owned(), s(event.sort_key())),
        ("entity".to_owned(), s("event")),
        ("event_id".to_owned(), s(&event.id)),
        ("event_type".to_owned(), s(event.kind.as_str())),
        ("at_ms".to_owned(), n(event.at_ms)),
        (
            "data".to_owned(),
            s(Value::Object(event.data.clone()).to_string()),
        ),
        (
            TTL_ATTRIBUTE.to_owned(),
            n(event.at_ms / 1000 + KEEP_SECONDS),
        ),
    ]);
    match &event.subject {
        EventSubject::User(id) => item.insert("user_id".to_owned(), s(id.to_string())),
        EventSubject::Client(id) => item.insert("client_id".to_owned(), s(id.as_str())),
    };
    if let Some(ip) = &event.origin.source_ip {
        item.insert("source_ip".to_owned(), s(ip));
    }
    if let Some(agent) = &event.origin.user_agent {
        item.insert("user_agent".to_owned(), s(agent));
    }
    item
}

/// An event as a put of a transaction (its key is new: a clash is a bug).
pub(super) fn put_event(
    event: &AccountEvent,
    table: &str,
) -> Result<TransactWriteItem, StoreError> {
    put(event_item(event), table)
}

pub(super) fn event_from_item(item: &Item) -> Result<AccountEvent, StoreError> {
    let kind = EventType::parse(string_attr(item, "event_type")?)
        .ok_or_else(|| corrupt(item, "event_type is not a known type"))?;
    let subject = match item.get("user_id") {
        Some(_) => EventSubject::User(uuid_attr(item, "user_id")?),
        None => EventSubject::Client(
            ClientId::parse(string_attr(item, "client_id")?)
                .ok_or_else(|| corrupt(item, "client_id is malformed"))?,
        ),
    };
    let data = match serde_json::from_str::<Value>(string_attr(item, "data")?) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    Ok(AccountEvent {
        id: string_attr(item, "event_id")?.to_owned(),
        kind,
        at_ms: required_number(item, "at_ms")?,
        subject,
        origin: Origin {
            source_ip: optional_string(item, "source_ip"),
            user_agent: optional_string(item, "user_agent"),
        },
        data,
    })
}

/// The event a DynamoDB stream record's `NewImage` holds (the stream's JSON: each attribute
/// `{"S": …}` or `{"N": …}`), or why it is none.
pub fn event_from_stream_image(image: &Value) -> Result<AccountEvent, StoreError> {
    let Some(attributes) = image.as_object() else {
        return Err(StoreError::Internal(
            "a stream image is not an object".into(),
        ));
    };
    let mut item = Item::new();
    for (name, value) in attributes {
        let value = match (value.get("S"), value.get("N"), value.get("BOOL")) {
            (Some(Value::String(text)), _, _) => AttributeValue::S(text.clone()),
            (_, Some(Value::String(number)), _) => AttributeValue::N(number.clone()),
            (_, _, Some(Value::Bool(flag))) => AttributeValue::Bool(*flag),
            // Nothing else is part of an event item.
            _ => continue,
        };
        item.insert(name.clone(), value);
    }
    if item
        .get("entity")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        != Some("event")
    {
        return Err(StoreError::Internal(
            "a stream image is not an event".into(),
        ));
    }
    event_from_item(&item)
}

impl EventStore for DynamoStore {
    async fn events_of(&self, subject: &EventSubject) -> Result<Vec<AccountEvent>, StoreError> {
        self.query_partition(&subject.partition())
            .await?
            .iter()
            .map(event_from_item)
            .collect()
    }

    async fn emit(&self, event: &AccountEvent) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_item(event)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn all_events(&self) -> Result<Vec<AccountEvent>, StoreError> {
        let mut events = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("entity = :event")
                .expression_attribute_values(":event", AttributeValue::S("event".into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in output.items.unwrap_or_default() {
                events.push(event_from_item(&item)?);
            }
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        events.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(events)
    }
}
