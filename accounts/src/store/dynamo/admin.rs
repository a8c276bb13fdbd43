//! What operators do: read and list users, change their roles and status, and keep a record
//! of it (`ADMINAUDIT#<day>` items).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::client::DynamoStore;
use super::errors::{classify, internal};
use super::events::put_event;
use super::items::*;
use crate::model::credentials::Email;
use crate::model::event::AccountEvent;
use crate::model::user::UserRecord;
use crate::store::traits::{AdminAudit, AdminStore, StoreError, UserPage};

/// The page token: the scan's last key, as JSON (`{"pk":…,"sk":…}`).
fn encode_start(key: &HashMap<String, AttributeValue>) -> Option<String> {
    let pk = key.get("pk")?.as_s().ok()?;
    let sk = key.get("sk")?.as_s().ok()?;
    serde_json::to_string(&serde_json::json!({"pk": pk, "sk": sk})).ok()
}

fn decode_start(token: &str) -> Result<HashMap<String, AttributeValue>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Start {
        pk: String,
        sk: String,
    }
    #[derive(Debug, thiserror::Error)]
    #[error("a user listing's page token is not one this store made")]
    struct BadStart;
    let start: Start = serde_json::from_str(token).map_err(|_| internal(BadStart))?;
    Ok(HashMap::from([
        ("pk".to_owned(), s(start.pk)),
        ("sk".to_owned(), s(start.sk)),
    ]))
}

impl DynamoStore {
    /// `update` of one item with the event it emits, in one transaction: `false` (nothing
    /// written) when its condition fails.
    async fn update_with_event(
        &self,
        update: Update,
        event: &AccountEvent,
    ) -> Result<bool, StoreError> {
        match self
            .transact(vec![
                TransactWriteItem::builder().update(update).build(),
                put_event(event, &self.table)?,
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

impl AdminStore for DynamoStore {
    async fn find_user(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        self.get_consistent(user_key(email))
            .await?
            .map(|item| user_from_item(&item))
            .transpose()
    }

    async fn list_users(&self, start: Option<&str>, limit: usize) -> Result<UserPage, StoreError> {
        let mut users = Vec::new();
        let mut next = start.map(decode_start).transpose()?;
        // Scan's Limit counts items read before the filter: keep reading until the page is
        // full or the table ends.
        loop {
            let wanted = limit.saturating_sub(users.len()).clamp(1, 1000);
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("entity = :user")
                .expression_attribute_values(":user", s("user"))
                .limit(i32::try_from(wanted).unwrap_or(1000))
                .set_exclusive_start_key(next.take())
                .send()
                .await
                .map_err(classify)?;
            for item in output.items.unwrap_or_default() {
                users.push(user_from_item(&item)?);
            }
            next = output.last_evaluated_key.filter(|k| !k.is_empty());
            if next.is_none() || users.len() >= limit {
                break;
            }
        }
        Ok(UserPage {
            users,
            next: next.as_ref().and_then(encode_start),
        })
    }

    async fn set_roles(&self, user: &UserRecord, roles: &[String]) -> Result<bool, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("SET #roles = :roles")
            .condition_expression("user_id = :user_id")
            .expression_attribute_names("#roles", "roles")
            .expression_attribute_values(":roles", string_list(roles))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .build()
            .map_err(internal)?;
        self.update_with_event(update, &AccountEvent::roles_changed(user.user_id, roles))
            .await
    }

    async fn set_disabled(&self, user: &UserRecord, disabled: bool) -> Result<bool, StoreError> {
        let update = if disabled {
            "SET disabled = :disabled ADD session_epoch :one REMOVE trusted_sources"
        } else {
            "SET disabled = :disabled"
        };
        let mut request = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression(update)
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":disabled", AttributeValue::Bool(disabled))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()));
        if disabled {
            request = request.expression_attribute_values(":one", n(1));
        }
        let event = AccountEvent::disabled_changed(user.user_id, disabled);
        self.update_with_event(request.build().map_err(internal)?, &event)
            .await
    }

    async fn record_admin_action(&self, entry: &AdminAudit) -> Result<(), StoreError> {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(entry.at_ms) * 1_000_000)
            .map_err(internal)?;
        // Fixed width (milliseconds always three digits), so sort keys sort by time: RFC 3339
        // as `time` writes it drops trailing zeros, and "….5Z" sorts after "….51Z".
        let stamp = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        );
        let day = stamp.get(..10).unwrap_or("unknown").to_owned();
        let mut item = HashMap::from([
            ("pk".to_owned(), s(format!("ADMINAUDIT#{day}"))),
            (
                "sk".to_owned(),
                s(format!("{stamp}#{}", uuid::Uuid::new_v4())),
            ),
            ("entity".to_owned(), s("admin_audit")),
            ("action".to_owned(), s(entry.action.as_str())),
            ("operator".to_owned(), s(entry.operator.as_str())),
            (
                "operator_confirmed".to_owned(),
                AttributeValue::Bool(entry.operator_confirmed),
            ),
            ("outcome".to_owned(), s(entry.outcome.as_str())),
            ("at_ms".to_owned(), n(entry.at_ms)),
            ("detail".to_owned(), s(entry.detail.as_str())),
        ]);
        if let Some(user_id) = &entry.user_id {
            item.insert("user_id".to_owned(), s(user_id.as_str()));
        }
        if let Some(email) = &entry.email {
            item.insert("email".to_owned(), s(email.as_str()));
        }
        if let Some(client_id) = &entry.client_id {
            item.insert("client_id".to_owned(), s(client_id.as_str()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
