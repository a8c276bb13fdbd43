//! The DynamoDB store. Table layout (README "Table layout"):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | user | `EMAIL#<email>` | `USER` | `user_id`, `email`, `password_hash`, `roles` (list), `created_at` (RFC 3339), `entity`, `gsi1pk` = `USER#<user_id>` |
//!
//! | failed logins | `LOGINFAIL#<email>` | `LOGINFAIL` | `failures` (number, moved only by `ADD`), `locked_until_ms`, `expires_at` (TTL, a day after the last failure) |
//!
//! Global secondary index `gsi1` (partition key `gsi1pk`, all attributes) finds a user by id.
//! `expires_at` (Unix seconds) is the table's TTL attribute, for session items.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
    TimeToLiveSpecification,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{ATTEMPTS_TTL_SECONDS, LoginAttempts, StoreError, UserRecord, UserStore};
use crate::domain::Email;

/// Name of the index that finds users by id.
pub const USER_ID_INDEX: &str = "gsi1";

/// Name of the table's TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// SDK configuration with deliberate bounds: a down or slow DynamoDB answers within about
/// 2.5 s, well inside API Gateway's 29 s and the 3 s promised to clients.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}

/// Connect within 500 ms, each attempt within 1 s, the whole operation (retries included)
/// within 2.5 s.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_millis(2500))
        .build()
}

/// Three attempts with short backoff: throttling and blips are retried inside the bound.
pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(400))
}

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

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand, `pk`/`sk`, TTL on `expires_at`) if it does not exist.
    /// For local development and tests; deployed tables come from template.yaml.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(internal)
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(internal)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(USER_ID_INDEX)
                    .key_schema(key("gsi1pk", KeyType::Hash)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(err) => return Err(classify(err)),
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

fn user_key(email: &Email) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("EMAIL#{}", email.as_str())),
        ),
        ("sk".to_owned(), AttributeValue::S("USER".to_owned())),
    ])
}

fn attempts_key(email: &Email) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("LOGINFAIL#{}", email.as_str())),
        ),
        ("sk".to_owned(), AttributeValue::S("LOGINFAIL".to_owned())),
    ])
}

fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn attempts_from_item(item: &HashMap<String, AttributeValue>) -> LoginAttempts {
    LoginAttempts {
        failures: number_attr(item, "failures").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        locked_until_ms: number_attr(item, "locked_until_ms"),
    }
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Internal(Box::new(err))
}

/// Service errors that mean our request or data is wrong are bugs (500); everything else —
/// timeouts, connection failures, throttling, 5xx — is the service being unavailable (503).
fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let is_bug = err.as_service_error().is_some_and(|e| {
        matches!(
            e.code(),
            Some(
                "ValidationException"
                    | "SerializationException"
                    | "MissingAuthenticationTokenException"
            )
        )
    });
    if is_bug {
        StoreError::Internal(Box::new(err))
    } else {
        StoreError::Unavailable(Box::new(err))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stored user item is invalid: {0}")]
struct CorruptItem(String);

fn string_attr<'a>(
    item: &'a HashMap<String, AttributeValue>,
    name: &str,
) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(internal(CorruptItem(format!(
            "attribute {name} missing or not a string"
        )))),
    }
}

fn user_from_item(item: &HashMap<String, AttributeValue>) -> Result<UserRecord, StoreError> {
    let corrupt = |what: &str| internal(CorruptItem(what.to_owned()));
    let roles = match item.get("roles") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .cloned()
                    .map_err(|_| corrupt("roles holds a non-string"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(corrupt("roles missing or not a list")),
    };
    Ok(UserRecord {
        user_id: Uuid::parse_str(string_attr(item, "user_id")?)
            .map_err(|_| corrupt("user_id is not a UUID"))?,
        email: Email::parse(string_attr(item, "email")?)
            .map_err(|_| corrupt("email is not valid"))?,
        password_hash: SecretString::from(string_attr(item, "password_hash")?.to_owned()),
        roles,
        created_at: OffsetDateTime::parse(string_attr(item, "created_at")?, &Rfc3339)
            .map_err(|_| corrupt("created_at is not RFC 3339"))?,
    })
}

impl UserStore for DynamoStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let created_at = user.created_at.format(&Rfc3339).map_err(internal)?;
        let mut item = user_key(&user.email);
        item.extend([
            ("entity".to_owned(), AttributeValue::S("user".to_owned())),
            (
                "user_id".to_owned(),
                AttributeValue::S(user.user_id.to_string()),
            ),
            (
                "gsi1pk".to_owned(),
                AttributeValue::S(format!("USER#{}", user.user_id)),
            ),
            (
                "email".to_owned(),
                AttributeValue::S(user.email.as_str().to_owned()),
            ),
            (
                "password_hash".to_owned(),
                AttributeValue::S(user.password_hash.expose_secret().to_owned()),
            ),
            (
                "roles".to_owned(),
                AttributeValue::L(user.roles.iter().cloned().map(AttributeValue::S).collect()),
            ),
            ("created_at".to_owned(), AttributeValue::S(created_at)),
        ]);
        // One conditional write, no read first: concurrent registrations of one email race
        // inside DynamoDB, where exactly one wins.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::EmailTaken)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(USER_ID_INDEX)
            .key_condition_expression("gsi1pk = :id")
            .expression_attribute_values(":id", AttributeValue::S(format!("USER#{user_id}")))
            .limit(1)
            .send()
            .await
            .map_err(classify)?;
        output
            .items
            .unwrap_or_default()
            .first()
            .map(user_from_item)
            .transpose()
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
    ) -> Result<(Option<UserRecord>, LoginAttempts), StoreError> {
        // One round trip for both items.
        let keys = KeysAndAttributes::builder()
            .keys(user_key(email))
            .keys(attempts_key(email))
            .consistent_read(true)
            .build()
            .map_err(internal)?;
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
        let mut user = None;
        let mut attempts = LoginAttempts::default();
        for item in output
            .responses
            .unwrap_or_default()
            .remove(&self.table)
            .unwrap_or_default()
        {
            match item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some("USER") => user = Some(user_from_item(&item)?),
                Some("LOGINFAIL") => attempts = attempts_from_item(&item),
                _ => {}
            }
        }
        Ok((user, attempts))
    }

    async fn record_login_failure(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> Result<LoginAttempts, StoreError> {
        let expires_at = now_ms / 1000 + ATTEMPTS_TTL_SECONDS;
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(attempts_key(email)))
            .update_expression("ADD failures :one SET expires_at = :ttl")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires_at.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        let mut attempts = attempts_from_item(&output.attributes.unwrap_or_default());
        if let Some(until) = LoginAttempts::lock_after(attempts.failures, now_ms) {
            // Only ever moves the lock later, so racing failures cannot shorten it.
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(attempts_key(email)))
                .update_expression("SET locked_until_ms = :until")
                .condition_expression(
                    "attribute_not_exists(locked_until_ms) OR locked_until_ms < :until",
                )
                .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => attempts.locked_until_ms = Some(until),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(err) => return Err(classify(err)),
            }
        }
        Ok(attempts)
    }

    async fn clear_login_failures(&self, email: &Email) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(attempts_key(email)))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
