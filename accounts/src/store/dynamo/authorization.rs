//! The authorization code flow: one `CODE#<hash>` item per code, spent by one conditional
//! update; tokens added to a live session in a transaction; one `CONSENT#<user_id>` /
//! `CLIENT#<client_id>` item per consent, whose scopes grow by `ADD` to a string set.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem};
use uuid::Uuid;

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::{classify, condition_failed, internal, written};
use super::items::*;
use crate::model::oidc::{CodeChallenge, CodeRecord, CodeSpend, Consent};
use crate::model::registry::ClientId;
use crate::model::session::RefreshRecord;
use crate::model::token::TokenHash;
use crate::store::traits::{AuthorizationStore, StoreError};

fn code_key(hash: &TokenHash) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("CODE#{}", hash.to_hex()))),
        ("sk".to_owned(), s("CODE")),
    ])
}

fn consent_key(user_id: Uuid, client_id: &ClientId) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("CONSENT#{user_id}"))),
        ("sk".to_owned(), s(format!("CLIENT#{}", client_id.as_str()))),
    ])
}

fn code_item(code: &CodeRecord) -> Item {
    let mut item = code_key(&code.hash);
    item.extend([
        ("entity".to_owned(), s("code")),
        ("client_id".to_owned(), s(code.client_id.as_str())),
        ("redirect_uri".to_owned(), s(&code.redirect_uri)),
        ("code_challenge".to_owned(), s(code.challenge.as_str())),
        ("scope".to_owned(), s(&code.scope)),
        ("user_id".to_owned(), s(code.user_id.to_string())),
        ("email".to_owned(), s(code.email.as_str())),
        ("family_id".to_owned(), s(code.family_id.to_string())),
        (TTL_ATTRIBUTE.to_owned(), n(code.expires_at)),
    ]);
    if let Some(nonce) = &code.nonce {
        item.insert("nonce".to_owned(), s(nonce));
    }
    item
}

fn code_from_item(hash: &TokenHash, item: &Item) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        hash: *hash,
        client_id: ClientId::parse(string_attr(item, "client_id")?)
            .ok_or_else(|| corrupt(item, "client_id is malformed"))?,
        redirect_uri: string_attr(item, "redirect_uri")?.to_owned(),
        challenge: CodeChallenge::from_stored(string_attr(item, "code_challenge")?.to_owned()),
        scope: optional_string(item, "scope").unwrap_or_default(),
        nonce: optional_string(item, "nonce"),
        user_id: uuid_attr(item, "user_id")?,
        email: email_attr(item)?,
        family_id: uuid_attr(item, "family_id")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
    })
}

fn consent_from_item(user_id: Uuid, item: &Item) -> Result<Consent, StoreError> {
    let client_id = string_attr(item, "sk")?
        .strip_prefix("CLIENT#")
        .and_then(ClientId::parse)
        .ok_or_else(|| corrupt(item, "a consent's sk is not CLIENT#<client_id>"))?;
    let mut scopes = match item.get("scopes") {
        Some(AttributeValue::Ss(set)) => set.clone(),
        _ => Vec::new(),
    };
    scopes.sort();
    Ok(Consent {
        user_id,
        client_id,
        scopes,
        updated_at_ms: number_attr(item, "updated_at_ms").unwrap_or_default(),
    })
}

impl AuthorizationStore for DynamoStore {
    async fn save_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(code_item(code)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // The hash of 256 random bits: a clash is a bug, not a race.
        match written(result)? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }

    async fn spend_code(&self, hash: &TokenHash, now_ms: i64) -> Result<CodeSpend, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(code_key(hash)))
            .update_expression("SET spent_at_ms = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(spent_at_ms)")
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.ok_or_else(|| internal(MissingAttributes))?;
                Ok(CodeSpend::First(code_from_item(hash, &item)?))
            }
            Err(err) if condition_failed(&err) => {
                match self.get_consistent(code_key(hash)).await? {
                    Some(item) => Ok(CodeSpend::Again {
                        issued: item.contains_key("issued_at_ms"),
                        code: code_from_item(hash, &item)?,
                    }),
                    None => Ok(CodeSpend::Unknown),
                }
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn mark_code_issued(&self, hash: &TokenHash) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(code_key(hash)))
            .update_expression("SET issued_at_ms = spent_at_ms")
            .condition_expression("attribute_exists(spent_at_ms)")
            .send()
            .await;
        // A code that expired and was deleted meanwhile has nothing left to mark.
        written(result).map(|_| ())
    }

    async fn add_refresh(&self, token: &RefreshRecord, epoch: u64) -> Result<(), StoreError> {
        let family_live = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(family_key(token.family_id)))
            .condition_expression("revoked = :false AND epoch = :epoch")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":epoch", n(epoch))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            put(refresh_item(token), &self.table)?,
            TransactWriteItem::builder()
                .condition_check(family_live)
                .build(),
            user_at_epoch(&self.table, token, epoch)?,
        ])
        .await
    }

    async fn find_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        self.get_consistent(consent_key(user_id, client_id))
            .await?
            .map(|item| consent_from_item(user_id, &item))
            .transpose()
    }

    async fn list_consents(&self, user_id: Uuid) -> Result<Vec<Consent>, StoreError> {
        self.query_partition(&format!("CONSENT#{user_id}"))
            .await?
            .iter()
            .map(|item| consent_from_item(user_id, item))
            .collect()
    }

    async fn revoke_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(consent_key(user_id, client_id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        written(result)
    }

    async fn grant_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
        scopes: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(consent_key(user_id, client_id)))
            .expression_attribute_values(":entity", s("consent"))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":tokens", s(tokens_of(user_id)));
        // A string set cannot be empty: consent to no scope at all only touches the item.
        update = if scopes.is_empty() {
            update.update_expression("SET entity = :entity, updated_at_ms = :now, gsi1pk = :tokens")
        } else {
            update
                .update_expression(
                    "SET entity = :entity, updated_at_ms = :now, gsi1pk = :tokens ADD scopes :scopes",
                )
                .expression_attribute_values(":scopes", AttributeValue::Ss(scopes.to_vec()))
        };
        update.send().await.map_err(classify)?;
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("UpdateItem with ReturnValues ALL_NEW returned no attributes")]
struct MissingAttributes;
