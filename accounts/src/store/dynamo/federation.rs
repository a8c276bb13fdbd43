//! Sign-in through other providers: one `FEDSTATE#<hash>` item per sign-in under way and one
//! `FEDGRANT#<hash>` item per finished one waiting for its exchange, each taken by one
//! conditional delete; one `IDENTITY#<provider>#<subject>` item per linked identity, found
//! by its user through `gsi1` (`IDENTITIES#<user_id>`).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::{classify, condition_failed, internal};
use super::events::put_event;
use super::items::*;
use super::users::user_item;
use crate::model::event::AccountEvent;
use crate::model::federation::{FederationGrant, FederationState, GrantPurpose, Identity};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;
use crate::store::traits::{FederationStore, StoreError};

fn state_key(hash: &TokenHash) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("FEDSTATE#{}", hash.to_hex()))),
        ("sk".to_owned(), s("FEDSTATE")),
    ])
}

fn grant_key(hash: &TokenHash) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("FEDGRANT#{}", hash.to_hex()))),
        ("sk".to_owned(), s("FEDGRANT")),
    ])
}

fn identity_key(provider: &str, subject: &str) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            s(crate::model::federation::identity_key(provider, subject)),
        ),
        ("sk".to_owned(), s("IDENTITY")),
    ])
}

/// Seconds, for DynamoDB's TTL, from milliseconds.
fn ttl(expires_at_ms: i64) -> AttributeValue {
    n(expires_at_ms.div_euclid(1000) + 1)
}

fn state_item(state: &FederationState) -> Item {
    let mut item = state_key(&state.hash);
    item.extend([
        ("entity".to_owned(), s("federation_state")),
        ("provider".to_owned(), s(state.provider.as_str())),
        ("nonce".to_owned(), s(state.nonce.as_str())),
        ("verifier".to_owned(), s(state.verifier.expose_secret())),
        ("binding".to_owned(), s(state.binding.to_hex())),
        ("expires_at_ms".to_owned(), n(state.expires_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), ttl(state.expires_at_ms)),
    ]);
    if let Some(journey) = &state.journey {
        item.insert("journey".to_owned(), s(journey.as_str()));
    }
    if let Some(user_id) = state.link {
        item.insert("link_user".to_owned(), s(user_id.to_string()));
    }
    item
}

fn state_from_item(hash: &TokenHash, item: &Item) -> Result<FederationState, StoreError> {
    Ok(FederationState {
        hash: *hash,
        provider: string_attr(item, "provider")?.to_owned(),
        nonce: string_attr(item, "nonce")?.to_owned(),
        verifier: SecretString::from(string_attr(item, "verifier")?.to_owned()),
        binding: optional_hash_attr(item, "binding")?
            .ok_or_else(|| corrupt(item, "binding is missing"))?,
        journey: optional_string(item, "journey"),
        link: match item.get("link_user") {
            Some(_) => Some(uuid_attr(item, "link_user")?),
            None => None,
        },
        expires_at_ms: required_number(item, "expires_at_ms")?,
    })
}

fn grant_item(grant: &FederationGrant) -> Item {
    let mut item = grant_key(&grant.hash);
    item.extend([
        ("entity".to_owned(), s("federation_grant")),
        ("user_id".to_owned(), s(grant.user_id.to_string())),
        ("provider".to_owned(), s(grant.provider.as_str())),
        ("amr".to_owned(), string_list(&grant.amr)),
        (
            "purpose".to_owned(),
            s(match grant.purpose {
                GrantPurpose::SignIn => "sign_in",
                GrantPurpose::Link => "link",
            }),
        ),
        ("expires_at_ms".to_owned(), n(grant.expires_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), ttl(grant.expires_at_ms)),
    ]);
    item
}

fn grant_from_item(hash: &TokenHash, item: &Item) -> Result<FederationGrant, StoreError> {
    Ok(FederationGrant {
        hash: *hash,
        user_id: uuid_attr(item, "user_id")?,
        provider: string_attr(item, "provider")?.to_owned(),
        amr: string_list_attr(item, "amr")?.unwrap_or_default(),
        purpose: match optional_string(item, "purpose").as_deref() {
            None | Some("sign_in") => GrantPurpose::SignIn,
            Some("link") => GrantPurpose::Link,
            Some(_) => return Err(corrupt(item, "purpose is unknown")),
        },
        expires_at_ms: required_number(item, "expires_at_ms")?,
    })
}

fn identity_item(identity: &Identity) -> Item {
    let mut item = identity_key(&identity.provider, &identity.subject);
    item.extend([
        ("entity".to_owned(), s("identity")),
        ("gsi1pk".to_owned(), s(identities_of(identity.user_id))),
        ("user_id".to_owned(), s(identity.user_id.to_string())),
        ("provider".to_owned(), s(identity.provider.as_str())),
        ("subject".to_owned(), s(identity.subject.as_str())),
        ("linked_at_ms".to_owned(), n(identity.linked_at_ms)),
    ]);
    if let Some(email) = &identity.email {
        item.insert("email".to_owned(), s(email.as_str()));
    }
    item
}

fn identity_from_item(item: &Item) -> Result<Identity, StoreError> {
    Ok(Identity {
        provider: string_attr(item, "provider")?.to_owned(),
        subject: string_attr(item, "subject")?.to_owned(),
        user_id: uuid_attr(item, "user_id")?,
        email: optional_string(item, "email"),
        linked_at_ms: required_number(item, "linked_at_ms")?,
    })
}

impl FederationStore for DynamoStore {
    async fn save_federation_state(&self, state: &FederationState) -> Result<(), StoreError> {
        self.put_new(state_item(state)).await
    }

    async fn take_federation_state(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<FederationState>, StoreError> {
        self.take(state_key(hash))
            .await?
            .map(|item| state_from_item(hash, &item))
            .transpose()
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(identity_key(provider, subject)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        output.item.as_ref().map(identity_from_item).transpose()
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<Identity>, StoreError> {
        let mut found = self
            .query_index(&identities_of(user_id))
            .await?
            .iter()
            .map(identity_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        found.sort_by_key(|i| i.linked_at_ms);
        Ok(found)
    }

    async fn create_federated_user(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let created = AccountEvent::user_created(user);
        let linked = AccountEvent::identity_change(identity, true);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(vec![
                put(user_item(user)?, &self.table)?,
                put(identity_item(identity), &self.table)?,
                put_event(&created, &self.table)?,
                put_event(&linked, &self.table)?,
            ]))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        let failed = |index: usize| match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                .cancellation_reasons()
                .get(index)
                .is_some_and(|r| r.code() == Some("ConditionalCheckFailed")),
            _ => false,
        };
        if failed(0) {
            Err(StoreError::EmailTaken)
        } else if failed(1) {
            Err(StoreError::Conflict)
        } else {
            Err(classify(err))
        }
    }

    async fn link_identity(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        if identity.user_id != user.user_id {
            return Err(StoreError::Conflict);
        }
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("ADD identities :one")
            .condition_expression(format!(
                "{} AND (attribute_not_exists(disabled) OR disabled <> :true)",
                epoch_condition(user.session_epoch)
            ))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .expression_attribute_values(":epoch", n(user.session_epoch))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            put(identity_item(identity), &self.table)?,
            TransactWriteItem::builder().update(count).build(),
            put_event(&AccountEvent::identity_change(identity, true), &self.table)?,
        ])
        .await
    }

    async fn unlink_identity(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(identity_key(&identity.provider, &identity.subject)))
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .build()
            .map_err(internal)?;
        // Counted off the user only while another way to sign in remains: a password, a
        // passkey, or another identity (the count is the user item's, so concurrent
        // unlinks of the last two cannot both pass).
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("ADD identities :minus")
            .condition_expression(
                "user_id = :user_id AND (attribute_not_exists(no_password) \
                 OR identities > :one OR passkeys > :zero)",
            )
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(internal)?;
        let removed = Identity {
            user_id: user.user_id,
            ..identity.clone()
        };
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
            put_event(&AccountEvent::identity_change(&removed, false), &self.table)?,
        ])
        .await
    }

    async fn forget_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(identity_key(&identity.provider, &identity.subject)))
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":user_id", s(identity.user_id.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }

    async fn save_federation_grant(&self, grant: &FederationGrant) -> Result<(), StoreError> {
        self.put_new(grant_item(grant)).await
    }

    async fn take_federation_grant(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<FederationGrant>, StoreError> {
        self.take(grant_key(hash))
            .await?
            .map(|item| grant_from_item(hash, &item))
            .transpose()
    }
}
