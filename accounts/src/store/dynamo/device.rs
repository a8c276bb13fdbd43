//! The device authorization grant: one `DEVICE#<hash>` item per grant, its state moved only
//! by conditional updates; one `USERCODE#<hash>` item naming it; and the user code lookup
//! windows, `USERCODELOOKUP#<ip>` and `USERCODELOOKUP`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::{internal, written};
use super::items::*;
use crate::model::backoff::{Source, Window};
use crate::model::device::{DeviceGrant, DeviceState, USER_CODE_WINDOW_SECONDS};
use crate::model::registry::ClientId;
use crate::model::token::TokenHash;
use crate::store::traits::{DeviceStore, StoreError};

fn grant_key(hash: &TokenHash) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("DEVICE#{}", hash.to_hex()))),
        ("sk".to_owned(), s("DEVICE")),
    ])
}

fn user_code_key(hash: &TokenHash) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("USERCODE#{}", hash.to_hex()))),
        ("sk".to_owned(), s("USERCODE")),
    ])
}

fn grant_item(grant: &DeviceGrant) -> Item {
    let mut item = grant_key(&grant.hash);
    item.extend([
        ("entity".to_owned(), s("device-grant")),
        ("user_code".to_owned(), s(grant.user_code.to_hex())),
        ("client_id".to_owned(), s(grant.client_id.as_str())),
        ("scope".to_owned(), s(&grant.scope)),
        ("poll_interval".to_owned(), n(grant.interval)),
        (TTL_ATTRIBUTE.to_owned(), n(grant.expires_at)),
    ]);
    item.extend(state_attributes(&grant.state));
    if let Some(last) = grant.last_poll_ms {
        item.insert("last_poll_ms".to_owned(), n(last));
    }
    item
}

/// The attributes a state is stored as: `grant_state`, and who approved.
fn state_attributes(state: &DeviceState) -> Item {
    let mut item = HashMap::from([("grant_state".to_owned(), s(state.as_str()))]);
    if let DeviceState::Approved {
        user_id,
        email,
        family_id,
    } = state
    {
        item.extend([
            ("user_id".to_owned(), s(user_id.to_string())),
            ("email".to_owned(), s(email.as_str())),
            ("family_id".to_owned(), s(family_id.to_string())),
        ]);
    }
    item
}

fn grant_from_item(hash: &TokenHash, item: &Item) -> Result<DeviceGrant, StoreError> {
    let state = match string_attr(item, "grant_state")? {
        "pending" => DeviceState::Pending,
        "approved" => DeviceState::Approved {
            user_id: uuid_attr(item, "user_id")?,
            email: email_attr(item)?,
            family_id: uuid_attr(item, "family_id")?,
        },
        "denied" => DeviceState::Denied,
        "issued" => DeviceState::Issued,
        _ => return Err(corrupt(item, "grant_state is not a known state")),
    };
    Ok(DeviceGrant {
        hash: *hash,
        user_code: TokenHash::from_hex(string_attr(item, "user_code")?)
            .ok_or_else(|| corrupt(item, "user_code is not a hash"))?,
        client_id: ClientId::parse(string_attr(item, "client_id")?)
            .ok_or_else(|| corrupt(item, "client_id is malformed"))?,
        scope: optional_string(item, "scope").unwrap_or_default(),
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
        interval: required_number(item, "poll_interval")?,
        last_poll_ms: number_attr(item, "last_poll_ms"),
        state,
    })
}

impl DeviceStore for DynamoStore {
    async fn save_device_grant(&self, grant: &DeviceGrant, now_ms: i64) -> Result<(), StoreError> {
        let mut code = user_code_key(&grant.user_code);
        code.extend([
            ("entity".to_owned(), s("device-user-code")),
            ("device".to_owned(), s(grant.hash.to_hex())),
            (TTL_ATTRIBUTE.to_owned(), n(grant.expires_at)),
        ]);
        // A user code of an ended grant may still be stored (TTL deletes lazily): taken over.
        let code = Put::builder()
            .table_name(&self.table)
            .set_item(Some(code))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now_ms / 1000))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            put(grant_item(grant), &self.table)?,
            TransactWriteItem::builder().put(code).build(),
        ])
        .await
    }

    async fn find_device_grant(&self, hash: &TokenHash) -> Result<Option<DeviceGrant>, StoreError> {
        self.get_consistent(grant_key(hash))
            .await?
            .map(|item| grant_from_item(hash, &item))
            .transpose()
    }

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let Some(item) = self.get_consistent(user_code_key(user_code)).await? else {
            return Ok(None);
        };
        let device = TokenHash::from_hex(string_attr(&item, "device")?)
            .ok_or_else(|| corrupt(&item, "device is not a hash"))?;
        // The user code may have been taken over since by a newer grant: only its own counts.
        Ok(self
            .find_device_grant(&device)
            .await?
            .filter(|grant| grant.user_code == *user_code))
    }

    async fn decide_device_grant(
        &self,
        hash: &TokenHash,
        decision: &DeviceState,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let attributes = state_attributes(decision);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(grant_key(hash)))
            .condition_expression("#grant_state = :pending AND expires_at > :now")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now_ms / 1000));
        let mut sets = Vec::new();
        for (name, value) in attributes {
            sets.push(format!("#{name} = :{name}"));
            update = update
                .expression_attribute_names(format!("#{name}"), &name)
                .expression_attribute_values(format!(":{name}"), value);
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        written(result)
    }

    async fn record_device_poll(
        &self,
        hash: &TokenHash,
        seen: Option<i64>,
        interval: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(grant_key(hash)))
            .update_expression("SET last_poll_ms = :now, poll_interval = :interval")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":interval", n(interval));
        let update = match seen {
            Some(last) => update
                .condition_expression("last_poll_ms = :seen")
                .expression_attribute_values(":seen", n(last)),
            None => update.condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(last_poll_ms)",
            ),
        };
        written(update.send().await)
    }

    async fn spend_device_grant(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(grant_key(hash)))
            .update_expression("SET grant_state = :issued")
            .condition_expression("grant_state = :approved")
            .expression_attribute_values(":issued", s("issued"))
            .expression_attribute_values(":approved", s("approved"))
            .send()
            .await;
        written(result)
    }

    async fn count_user_code_lookup(
        &self,
        source: &Source,
        now_ms: i64,
    ) -> Result<(Window, Window), StoreError> {
        let by_source = HashMap::from([
            (
                "pk".to_owned(),
                s(format!("USERCODELOOKUP#{}", source.as_str())),
            ),
            ("sk".to_owned(), s("USERCODELOOKUP")),
        ]);
        let in_total = HashMap::from([
            ("pk".to_owned(), s("USERCODELOOKUP")),
            ("sk".to_owned(), s("USERCODELOOKUP")),
        ]);
        let (source, total) = tokio::join!(
            self.count_in_window(
                by_source,
                "usercodelookup",
                now_ms,
                USER_CODE_WINDOW_SECONDS
            ),
            self.count_in_window(in_total, "usercodelookup", now_ms, USER_CODE_WINDOW_SECONDS),
        );
        Ok((source?, total?))
    }
}
