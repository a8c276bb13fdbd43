//! Passkeys: one `PASSKEY#<user_id>` / `CRED#<passkey id>` item each, counted on the user item
//! (`passkeys`) in the same transaction; one `WEBAUTHN#<hash>` item per ceremony challenge,
//! taken by one conditional delete.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use uuid::Uuid;

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::{internal, written};
use super::events::put_event;
use super::items::*;
use crate::model::event::{AccountEvent, EventType};
use crate::model::passkey::{Ceremony, MAX_PASSKEYS, Passkey, PasskeyChallenge, PasskeyName};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;
use crate::store::traits::{PasskeyStore, StoreError};

fn challenge_key(hash: &TokenHash) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("WEBAUTHN#{}", hash.to_hex()))),
        ("sk".to_owned(), s("WEBAUTHN")),
    ])
}

fn passkey_key(user_id: Uuid, id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("PASSKEY#{user_id}"))),
        ("sk".to_owned(), s(format!("CRED#{id}"))),
    ])
}

fn blob(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(bytes.to_vec().into())
}

fn blob_attr(item: &Item, name: &str) -> Result<Vec<u8>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(b)) => Ok(b.as_ref().to_vec()),
        _ => Err(corrupt(item, format!("{name} missing or not binary"))),
    }
}

fn challenge_item(challenge: &PasskeyChallenge) -> Item {
    let mut item = challenge_key(&challenge.hash);
    item.extend([
        ("entity".to_owned(), s("webauthn_challenge")),
        ("ceremony".to_owned(), s(challenge.ceremony.kind())),
        ("challenge".to_owned(), blob(&challenge.challenge)),
        (TTL_ATTRIBUTE.to_owned(), n(challenge.expires_at)),
    ]);
    match &challenge.ceremony {
        Ceremony::Register { user_id, epoch } => {
            item.insert("user_id".to_owned(), s(user_id.to_string()));
            item.insert("epoch".to_owned(), n(*epoch));
        }
        Ceremony::SignIn { user, by_email } => {
            item.insert("by_email".to_owned(), AttributeValue::Bool(*by_email));
            if let Some((user_id, epoch)) = user {
                item.insert("user_id".to_owned(), s(user_id.to_string()));
                item.insert("epoch".to_owned(), n(*epoch));
            }
        }
        Ceremony::SecondFactor { mfa_token } => {
            item.insert("mfa_token".to_owned(), s(mfa_token.to_hex()));
        }
    }
    item
}

fn challenge_from_item(hash: &TokenHash, item: &Item) -> Result<PasskeyChallenge, StoreError> {
    let epoch = || {
        required_number(item, "epoch")
            .and_then(|e| u64::try_from(e).map_err(|_| corrupt(item, "epoch is negative")))
    };
    let ceremony = match string_attr(item, "ceremony")? {
        "register" => Ceremony::Register {
            user_id: uuid_attr(item, "user_id")?,
            epoch: epoch()?,
        },
        "sign_in" => Ceremony::SignIn {
            user: match item.get("user_id") {
                Some(_) => Some((uuid_attr(item, "user_id")?, epoch()?)),
                None => None,
            },
            by_email: matches!(item.get("by_email"), Some(AttributeValue::Bool(true))),
        },
        "second_factor" => Ceremony::SecondFactor {
            mfa_token: optional_hash_attr(item, "mfa_token")?
                .ok_or_else(|| corrupt(item, "mfa_token is missing"))?,
        },
        _ => return Err(corrupt(item, "unknown ceremony")),
    };
    Ok(PasskeyChallenge {
        hash: *hash,
        challenge: blob_attr(item, "challenge")?
            .try_into()
            .map_err(|_| corrupt(item, "challenge is not 32 bytes"))?,
        ceremony,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
    })
}

fn passkey_item(passkey: &Passkey) -> Item {
    let mut item = passkey_key(passkey.user_id, &passkey.id);
    item.extend([
        ("entity".to_owned(), s("passkey")),
        ("user_id".to_owned(), s(passkey.user_id.to_string())),
        ("credential_id".to_owned(), blob(&passkey.credential_id)),
        ("name".to_owned(), s(passkey.name.as_str())),
        ("public_key".to_owned(), blob(&passkey.public_key)),
        ("algorithm".to_owned(), n(passkey.algorithm)),
        ("sign_count".to_owned(), n(passkey.sign_count)),
        (
            "backup_eligible".to_owned(),
            AttributeValue::Bool(passkey.backup_eligible),
        ),
        (
            "backed_up".to_owned(),
            AttributeValue::Bool(passkey.backed_up),
        ),
        ("created_at_ms".to_owned(), n(passkey.created_at_ms)),
        // An account's deletion finds its items by this index key.
        ("gsi1pk".to_owned(), s(tokens_of(passkey.user_id))),
    ]);
    if !passkey.transports.is_empty() {
        item.insert("transports".to_owned(), string_list(&passkey.transports));
    }
    if let Some(at) = passkey.last_used_at_ms {
        item.insert("last_used_at_ms".to_owned(), n(at));
    }
    item
}

fn passkey_from_item(item: &Item) -> Result<Passkey, StoreError> {
    let id = string_attr(item, "sk")?
        .strip_prefix("CRED#")
        .ok_or_else(|| corrupt(item, "a passkey's sk is not CRED#<id>"))?
        .to_owned();
    Ok(Passkey {
        id,
        credential_id: blob_attr(item, "credential_id")?,
        user_id: uuid_attr(item, "user_id")?,
        name: PasskeyName::parse(string_attr(item, "name")?)
            .ok_or_else(|| corrupt(item, "name is not a passkey name"))?,
        public_key: blob_attr(item, "public_key")?,
        algorithm: required_number(item, "algorithm")?,
        sign_count: u32::try_from(required_number(item, "sign_count")?)
            .map_err(|_| corrupt(item, "sign_count is out of range"))?,
        backup_eligible: matches!(
            item.get("backup_eligible"),
            Some(AttributeValue::Bool(true))
        ),
        backed_up: matches!(item.get("backed_up"), Some(AttributeValue::Bool(true))),
        transports: string_list_attr(item, "transports")?.unwrap_or_default(),
        created_at_ms: required_number(item, "created_at_ms")?,
        last_used_at_ms: number_attr(item, "last_used_at_ms"),
    })
}

impl DynamoStore {
    /// The user item's passkey count moved by `by`, under `condition`.
    fn count_passkeys(
        &self,
        user: &UserRecord,
        by: i64,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("ADD passkeys :by")
            .condition_expression(condition)
            .expression_attribute_values(":by", n(by))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()));
        if condition.contains(":epoch") {
            update = update.expression_attribute_values(":epoch", n(user.session_epoch));
        }
        if condition.contains(":max") {
            update = update
                .expression_attribute_values(":max", n(MAX_PASSKEYS))
                .expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(internal)?)
            .build())
    }
}

impl PasskeyStore for DynamoStore {
    async fn save_passkey_challenge(&self, challenge: &PasskeyChallenge) -> Result<(), StoreError> {
        self.put_new(challenge_item(challenge)).await
    }

    async fn take_passkey_challenge(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<PasskeyChallenge>, StoreError> {
        self.take(challenge_key(hash))
            .await?
            .map(|item| challenge_from_item(hash, &item))
            .transpose()
    }

    async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<Passkey>, StoreError> {
        let mut found = self
            .query_partition(&format!("PASSKEY#{user_id}"))
            .await?
            .iter()
            .map(passkey_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by_key(|p| p.created_at_ms);
        Ok(found)
    }

    async fn find_passkey(&self, user_id: Uuid, id: &str) -> Result<Option<Passkey>, StoreError> {
        self.get_consistent(passkey_key(user_id, id))
            .await?
            .map(|item| passkey_from_item(&item))
            .transpose()
    }

    async fn add_passkey(&self, user: &UserRecord, passkey: &Passkey) -> Result<(), StoreError> {
        let condition = format!(
            "{} AND (attribute_not_exists(disabled) OR disabled <> :true) \
             AND (attribute_not_exists(passkeys) OR passkeys < :max)",
            epoch_condition(user.session_epoch)
        );
        self.transact(vec![
            put(passkey_item(passkey), &self.table)?,
            self.count_passkeys(user, 1, &condition)?,
            put_event(&AccountEvent::passkey_added(passkey), &self.table)?,
        ])
        .await
    }

    async fn remove_passkey(&self, user: &UserRecord, id: &str) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(passkey_key(user.user_id, id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(internal)?;
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_passkeys(user, -1, "user_id = :user_id")?,
            put_event(
                &AccountEvent::user(EventType::PasskeyRemoved, user.user_id).with("passkey_id", id),
                &self.table,
            )?,
        ])
        .await
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: &str,
        name: &PasskeyName,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(passkey_key(user_id, id)))
            .update_expression("SET #name = :name")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name.as_str()))
            .send()
            .await;
        match written(result)? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }

    async fn record_passkey_use(
        &self,
        passkey: &Passkey,
        sign_count: u32,
        backed_up: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(passkey_key(passkey.user_id, &passkey.id)))
            .update_expression(
                "SET sign_count = :count, backed_up = :backed_up, last_used_at_ms = :now",
            )
            .condition_expression("sign_count = :read")
            .expression_attribute_values(":count", n(sign_count))
            .expression_attribute_values(":backed_up", AttributeValue::Bool(backed_up))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":read", n(passkey.sign_count))
            .send()
            .await;
        match written(result)? {
            true => Ok(()),
            false => Err(StoreError::Conflict),
        }
    }
}
