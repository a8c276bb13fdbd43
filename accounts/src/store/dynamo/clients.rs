//! The client registry: one `CLIENT#<client_id>` item per client, changed only on the version
//! read; and the failed-authentication windows of the token endpoint.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::client::{DynamoStore, Item};
use super::errors::{classify, condition_failed, internal};
use super::events::put_event;
use super::items::*;
use crate::model::backoff::{Source, Window};
use crate::model::event::AccountEvent;
use crate::model::registry::{
    CLIENT_CHECK_WINDOW_SECONDS, ClientId, ClientRecord, ClientType, GrantType, Scope, SecretRecord,
};
use crate::model::token::TokenHash;
use crate::store::traits::{ClientStore, StoreError};

fn client_key(id: &ClientId) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("CLIENT#{}", id.as_str()))),
        ("sk".to_owned(), s("CLIENT")),
    ])
}

fn check_keys(id: &ClientId, source: &Source) -> (Item, Item) {
    (
        HashMap::from([
            (
                "pk".to_owned(),
                s(format!("CLIENTAUTH#{}", id.window_key())),
            ),
            ("sk".to_owned(), s("CLIENTAUTH")),
        ]),
        HashMap::from([
            (
                "pk".to_owned(),
                s(format!("CLIENTAUTHSRC#{}", source.as_str())),
            ),
            ("sk".to_owned(), s("CLIENTAUTHSRC")),
        ]),
    )
}

fn strings<T>(values: &[T], text: impl Fn(&T) -> &str) -> AttributeValue {
    AttributeValue::L(
        values
            .iter()
            .map(|v| AttributeValue::S(text(v).to_owned()))
            .collect(),
    )
}

fn client_item(client: &ClientRecord) -> Item {
    let secrets = client
        .secrets
        .iter()
        .map(|secret| {
            let mut m = HashMap::from([
                ("hash".to_owned(), s(secret.hash.to_hex())),
                ("created_at_ms".to_owned(), n(secret.created_at_ms)),
            ]);
            if let Some(end) = secret.expires_at_ms {
                m.insert("expires_at_ms".to_owned(), n(end));
            }
            AttributeValue::M(m)
        })
        .collect();
    let mut item = client_key(&client.client_id);
    item.extend([
        ("entity".to_owned(), s("client")),
        ("client_id".to_owned(), s(client.client_id.as_str())),
        ("name".to_owned(), s(&client.name)),
        ("client_type".to_owned(), s(client.client_type.as_str())),
        ("scopes".to_owned(), strings(&client.scopes, Scope::as_str)),
        (
            "grant_types".to_owned(),
            strings(&client.grant_types, |g| g.as_str()),
        ),
        (
            "redirect_uris".to_owned(),
            string_list(&client.redirect_uris),
        ),
        (
            "post_logout_redirect_uris".to_owned(),
            string_list(&client.post_logout_redirect_uris),
        ),
        (
            "first_party".to_owned(),
            AttributeValue::Bool(client.first_party),
        ),
        ("disabled".to_owned(), AttributeValue::Bool(client.disabled)),
        ("secrets".to_owned(), AttributeValue::L(secrets)),
        ("created_at_ms".to_owned(), n(client.created_at_ms)),
        ("created_by".to_owned(), s(&client.created_by)),
        ("updated_at_ms".to_owned(), n(client.updated_at_ms)),
        ("updated_by".to_owned(), s(&client.updated_by)),
        ("version".to_owned(), n(client.version)),
    ]);
    item
}

fn bool_attr(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(b)) => Ok(*b),
        _ => Err(corrupt(item, format!("{name} missing or not a boolean"))),
    }
}

fn list_of<T>(
    item: &Item,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, StoreError> {
    string_list_attr(item, name)?
        .unwrap_or_default()
        .iter()
        .map(|text| parse(text).ok_or_else(|| corrupt(item, format!("{name} holds {text:?}"))))
        .collect()
}

fn secret_from(item: &Item, value: &AttributeValue) -> Result<SecretRecord, StoreError> {
    let map = value
        .as_m()
        .map_err(|_| corrupt(item, "secrets holds a non-map"))?;
    let hash = map
        .get("hash")
        .and_then(|v| v.as_s().ok())
        .and_then(|h| TokenHash::from_hex(h))
        .ok_or_else(|| corrupt(item, "a secret's hash is not a SHA-256 hex"))?;
    let number = |name: &str| {
        map.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Ok(SecretRecord {
        hash,
        created_at_ms: number("created_at_ms")
            .ok_or_else(|| corrupt(item, "a secret's created_at_ms is missing"))?,
        expires_at_ms: number("expires_at_ms"),
    })
}

pub(super) fn client_from_item(item: &Item) -> Result<ClientRecord, StoreError> {
    let secrets = match item.get("secrets") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| secret_from(item, v))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
        Some(_) => return Err(corrupt(item, "secrets is not a list")),
    };
    let number = |name: &str| {
        number_attr(item, name).ok_or_else(|| corrupt(item, format!("{name} is missing")))
    };
    Ok(ClientRecord {
        client_id: ClientId::parse(string_attr(item, "client_id")?)
            .ok_or_else(|| corrupt(item, "client_id is malformed"))?,
        name: string_attr(item, "name")?.to_owned(),
        client_type: ClientType::parse(string_attr(item, "client_type")?)
            .ok_or_else(|| corrupt(item, "client_type is unknown"))?,
        scopes: list_of(item, "scopes", |t| Scope::parse(t).ok())?,
        grant_types: list_of(item, "grant_types", GrantType::parse)?,
        redirect_uris: string_list_attr(item, "redirect_uris")?.unwrap_or_default(),
        post_logout_redirect_uris: string_list_attr(item, "post_logout_redirect_uris")?
            .unwrap_or_default(),
        first_party: bool_attr(item, "first_party")?,
        disabled: bool_attr(item, "disabled")?,
        secrets,
        created_at_ms: number("created_at_ms")?,
        created_by: string_attr(item, "created_by")?.to_owned(),
        updated_at_ms: number("updated_at_ms")?,
        updated_by: string_attr(item, "updated_by")?.to_owned(),
        version: u64::try_from(number("version")?)
            .map_err(|_| corrupt(item, "version is negative"))?,
    })
}

impl DynamoStore {
    /// Writes `client` whole on `condition` (with `:read` bound, if given): a failed
    /// condition is `Conflict`, nothing written.
    async fn put_client(
        &self,
        client: &ClientRecord,
        condition: &str,
        read: Option<AttributeValue>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(client_item(client)))
            .condition_expression(condition)
            .set_expression_attribute_values(read.map(|v| HashMap::from([(":read".to_owned(), v)])))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(classify(err)),
        }
    }
}

impl DynamoStore {
    /// The client's put, on `condition`, with `event`, in one transaction.
    async fn put_client_with_event(
        &self,
        client: &ClientRecord,
        condition: &str,
        values: HashMap<String, AttributeValue>,
        event: &AccountEvent,
    ) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(client_item(client)))
            .condition_expression(condition)
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            TransactWriteItem::builder().put(put).build(),
            put_event(event, &self.table)?,
        ])
        .await
    }
}

impl ClientStore for DynamoStore {
    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.put_client_with_event(
            client,
            "attribute_not_exists(pk)",
            HashMap::new(),
            &AccountEvent::client_created(client),
        )
        .await
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        self.get_consistent(client_key(id))
            .await?
            .as_ref()
            .map(client_from_item)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut clients = Vec::new();
        let mut next = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("entity = :client")
                .expression_attribute_values(":client", s("client"))
                .set_exclusive_start_key(next.take())
                .send()
                .await
                .map_err(classify)?;
            for item in output.items.unwrap_or_default() {
                clients.push(client_from_item(&item)?);
            }
            next = output.last_evaluated_key.filter(|k| !k.is_empty());
            if next.is_none() {
                break;
            }
        }
        clients.sort_by(|a, b| a.name.cmp(&b.name).then(a.client_id.cmp(&b.client_id)));
        Ok(clients)
    }

    async fn save_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let read = n(client.version.saturating_sub(1));
        if client.disabled {
            // Disabled by this save (it was enabled as read): with its event. Otherwise (it
            // was disabled already, or the version moved on) the plain save decides.
            let values = HashMap::from([
                (":read".to_owned(), read.clone()),
                (":false".to_owned(), AttributeValue::Bool(false)),
            ]);
            let disabling = self
                .put_client_with_event(
                    client,
                    "version = :read AND disabled = :false",
                    values,
                    &AccountEvent::client_disabled(client),
                )
                .await;
            match disabling {
                Err(StoreError::Conflict) => {
                    // Still enabled at the version read: the transaction only collided with
                    // another write. Refused as a conflict, so the event is never lost.
                    let stored = self.get_consistent(client_key(&client.client_id)).await?;
                    let still_enabled = stored.as_ref().is_some_and(|item| {
                        number_attr(item, "version")
                            == Some(i64::try_from(client.version.saturating_sub(1)).unwrap_or(-1))
                            && !bool_attr(item, "disabled").unwrap_or(true)
                    });
                    if still_enabled {
                        return Err(StoreError::Conflict);
                    }
                }
                other => return other,
            }
        }
        self.put_client(client, "version = :read", Some(read)).await
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(client_key(id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if condition_failed(&err) => Ok(false),
            Err(err) => Err(classify(err)),
        }
    }

    async fn client_standing(&self, id: &ClientId) -> Result<Option<bool>, StoreError> {
        let items = self
            .batch_get_attributes(vec![client_key(id)], SESSION_STATE_ATTRIBUTES)
            .await?;
        items
            .first()
            .map(|item| bool_attr(item, "disabled"))
            .transpose()
    }

    async fn count_client_check(
        &self,
        id: &ClientId,
        source: &Source,
        now_ms: i64,
    ) -> Result<(Window, Window), StoreError> {
        let (by_client, by_source) = check_keys(id, source);
        let (client, source) = tokio::join!(
            self.count_in_window(by_client, "clientauth", now_ms, CLIENT_CHECK_WINDOW_SECONDS),
            self.count_in_window(by_source, "clientauth", now_ms, CLIENT_CHECK_WINDOW_SECONDS),
        );
        Ok((client?, source?))
    }

    async fn take_back_client_check(
        &self,
        id: &ClientId,
        source: &Source,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (by_client, by_source) = check_keys(id, source);
        let (a, b) = tokio::join!(
            self.take_back_from_window(by_client, now_ms),
            self.take_back_from_window(by_source, now_ms),
        );
        a.and(b)
    }
}
