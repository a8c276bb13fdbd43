//! The DynamoDB store. Table layout (README "Table layout"):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | user | `EMAIL#<email>` | `USER` | `user_id`, `email`, `password_hash`, `roles` (list), `created_at` (RFC 3339), `entity`, `gsi1pk` = `USER#<user_id>` |
//!
//! | failed logins per source | `LOGINFAIL#<email>` | `SOURCE#<ip>` | `failures`, `locked_until_ms`, `expires_at` (TTL, a day after the last check); written only conditionally on the values read |
//! | failed logins per email | `LOGINFAIL#<email>` | `EMAIL` | `failures` (moved only by `ADD`), `window_ends`, `expires_at` (TTL, the window's end) |
//! | session (refresh family) | `SESSION#<family_id>` | `SESSION` | `user_id`, `email`, `epoch`, `revoked` (bool), `created_at_ms`, `expires_at` (TTL, moved on by each refresh) |
//! | refresh token | `REFRESH#<sha256 hex>` | `REFRESH` | `family_id`, `user_id`, `email`, `issued_at_ms`, `expires_at` (TTL), `token_status` (`active`/`spent`); once spent `spent_at_ms`, `successor` (binary, sealed), `successor_hash` |
//!
//! The user item also holds `session_epoch` (number): sessions of an older epoch are dead.
//! Global secondary index `gsi1` (partition key `gsi1pk`, all attributes) finds a user by id.
//! `expires_at` (Unix seconds) is the table's TTL attribute, for session items.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ReturnValue,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{
    RefreshLookup, RefreshRecord, SessionFamily, Spent, StoreError, UserRecord, UserStore,
};
use crate::backoff::{Admission, EMAIL_WINDOW_SECONDS, EmailFailures, LoginAttempts, Source};
use crate::domain::Email;
use crate::sessions::TokenHash;

/// Name of the index that finds users by id.
pub const USER_ID_INDEX: &str = "gsi1";

/// Name of the table's TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";

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

    /// The items with these keys, read consistently in one round trip.
    async fn batch_get(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let keys = KeysAndAttributes::builder()
            .set_keys(Some(keys))
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
        Ok(output
            .responses
            .unwrap_or_default()
            .remove(&self.table)
            .unwrap_or_default())
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

    fn sk_of(item: &HashMap<String, AttributeValue>) -> Option<&str> {
        item.get("sk")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
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

fn attempts_key(email: &Email, source: &Source) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("LOGINFAIL#{}", email.as_str())),
        ),
        (
            "sk".to_owned(),
            AttributeValue::S(format!("SOURCE#{}", source.as_str())),
        ),
    ])
}

fn email_failures_key(email: &Email) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("LOGINFAIL#{}", email.as_str())),
        ),
        ("sk".to_owned(), AttributeValue::S("EMAIL".to_owned())),
    ])
}

/// How often an admission re-reads and retries after its conditional write lost a race.
/// Each lost race means another check was counted, so the lock is soon what the re-read sees.
const ADMISSION_ROUNDS: usize = 12;

/// Whether `err` is a failed condition of a single-item write.
fn condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

fn family_key(family_id: Uuid) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("SESSION#{family_id}")),
        ),
        ("sk".to_owned(), AttributeValue::S("SESSION".to_owned())),
    ])
}

fn refresh_key(hash: &TokenHash) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("REFRESH#{}", hash.to_hex())),
        ),
        ("sk".to_owned(), AttributeValue::S("REFRESH".to_owned())),
    ])
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn family_item(family: &SessionFamily) -> HashMap<String, AttributeValue> {
    let mut item = family_key(family.family_id);
    item.extend([
        ("entity".to_owned(), s("session")),
        ("user_id".to_owned(), s(family.user_id.to_string())),
        ("email".to_owned(), s(family.email.as_str())),
        ("epoch".to_owned(), n(family.epoch)),
        ("revoked".to_owned(), AttributeValue::Bool(family.revoked)),
        ("created_at_ms".to_owned(), n(family.created_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(family.expires_at)),
    ]);
    item
}

/// A new (unspent) refresh token item.
fn refresh_item(token: &RefreshRecord) -> HashMap<String, AttributeValue> {
    let mut item = refresh_key(&token.hash);
    item.extend([
        ("entity".to_owned(), s("refresh")),
        ("family_id".to_owned(), s(token.family_id.to_string())),
        ("user_id".to_owned(), s(token.user_id.to_string())),
        ("email".to_owned(), s(token.email.as_str())),
        ("issued_at_ms".to_owned(), n(token.issued_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(token.expires_at)),
        ("token_status".to_owned(), s("active")),
    ]);
    item
}

fn uuid_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(string_attr(item, name)?)
        .map_err(|_| internal(CorruptItem(format!("{name} is not a UUID"))))
}

fn email_attr(item: &HashMap<String, AttributeValue>) -> Result<Email, StoreError> {
    Email::parse(string_attr(item, "email")?)
        .map_err(|_| internal(CorruptItem("email is not valid".to_owned())))
}

fn required_number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, StoreError> {
    number_attr(item, name).ok_or_else(|| {
        internal(CorruptItem(format!(
            "attribute {name} missing or not a number"
        )))
    })
}

fn family_from_item(item: &HashMap<String, AttributeValue>) -> Result<SessionFamily, StoreError> {
    Ok(SessionFamily {
        family_id: Uuid::parse_str(
            string_attr(item, "pk")?
                .strip_prefix("SESSION#")
                .unwrap_or_default(),
        )
        .map_err(|_| internal(CorruptItem("session key is not SESSION#<uuid>".into())))?,
        user_id: uuid_attr(item, "user_id")?,
        email: email_attr(item)?,
        epoch: u64::try_from(required_number(item, "epoch")?)
            .map_err(|_| internal(CorruptItem("epoch is negative".into())))?,
        revoked: matches!(item.get("revoked"), Some(AttributeValue::Bool(true))),
        created_at_ms: required_number(item, "created_at_ms")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
    })
}

fn refresh_from_item(
    hash: &TokenHash,
    item: &HashMap<String, AttributeValue>,
) -> Result<RefreshRecord, StoreError> {
    let spent = match string_attr(item, "token_status")? {
        "active" => None,
        "spent" => {
            let sealed_successor = match item.get("successor") {
                Some(AttributeValue::B(blob)) => <[u8; 32]>::try_from(blob.as_ref()).ok(),
                _ => None,
            }
            .ok_or_else(|| internal(CorruptItem("successor is not 32 bytes".into())))?;
            let successor_hash = TokenHash::from_hex(string_attr(item, "successor_hash")?)
                .ok_or_else(|| internal(CorruptItem("successor_hash is not hex".into())))?;
            Some(Spent {
                at_ms: required_number(item, "spent_at_ms")?,
                sealed_successor,
                successor_hash,
            })
        }
        _ => return Err(internal(CorruptItem("token_status is unknown".into()))),
    };
    Ok(RefreshRecord {
        hash: *hash,
        family_id: uuid_attr(item, "family_id")?,
        user_id: uuid_attr(item, "user_id")?,
        email: email_attr(item)?,
        issued_at_ms: required_number(item, "issued_at_ms")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
        spent,
    })
}

/// The condition that the user item is at `epoch` (a user written before epochs has none).
fn epoch_condition(epoch: u64) -> &'static str {
    if epoch == 0 {
        "user_id = :user_id AND (attribute_not_exists(session_epoch) OR session_epoch = :epoch)"
    } else {
        "user_id = :user_id AND session_epoch = :epoch"
    }
}

fn put(
    item: HashMap<String, AttributeValue>,
    table: &str,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn attempts_from_item(item: &HashMap<String, AttributeValue>) -> LoginAttempts {
    LoginAttempts {
        failures: number_attr(item, "failures").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        locked_until_ms: number_attr(item, "locked_until_ms"),
        // A stored record always has a positive expiry; 0 would read as "no record".
        expires_at: number_attr(item, TTL_ATTRIBUTE).unwrap_or(1).max(1),
    }
}

fn attempts_item(
    email: &Email,
    source: &Source,
    attempts: &LoginAttempts,
) -> HashMap<String, AttributeValue> {
    let mut item = attempts_key(email, source);
    item.extend([
        ("entity".to_owned(), s("loginfail")),
        ("failures".to_owned(), n(attempts.failures)),
        (TTL_ATTRIBUTE.to_owned(), n(attempts.expires_at)),
    ]);
    if let Some(until) = attempts.locked_until_ms {
        item.insert("locked_until_ms".to_owned(), n(until));
    }
    item
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Internal(Box::new(err))
}

/// Service errors that mean our request, data or deployment is wrong are bugs (500): a bad
/// request, a missing table, a refused permission or unknown credentials will not mend by
/// retrying. Everything else (timeouts, connection failures, throttling, 5xx) is the service
/// being unavailable (503, worth a retry).
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
                    | "ResourceNotFoundException"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
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

/// The list of strings `name`; a missing attribute is `None`.
fn string_list_attr(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let corrupt = |what: String| internal(CorruptItem(what));
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .cloned()
                    .map_err(|_| corrupt(format!("{name} holds a non-string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(corrupt(format!("{name} is not a list"))),
    }
}

fn string_list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
}

fn user_from_item(item: &HashMap<String, AttributeValue>) -> Result<UserRecord, StoreError> {
    let corrupt = |what: &str| internal(CorruptItem(what.to_owned()));
    let roles = string_list_attr(item, "roles")?.ok_or_else(|| corrupt("roles is missing"))?;
    Ok(UserRecord {
        user_id: Uuid::parse_str(string_attr(item, "user_id")?)
            .map_err(|_| corrupt("user_id is not a UUID"))?,
        email: Email::parse(string_attr(item, "email")?)
            .map_err(|_| corrupt("email is not valid"))?,
        password_hash: SecretString::from(string_attr(item, "password_hash")?.to_owned()),
        roles,
        created_at: OffsetDateTime::parse(string_attr(item, "created_at")?, &Rfc3339)
            .map_err(|_| corrupt("created_at is not RFC 3339"))?,
        session_epoch: number_attr(item, "session_epoch")
            .map_or(Ok(0), u64::try_from)
            .map_err(|_| corrupt("session_epoch is negative"))?,
        trusted_sources: string_list_attr(item, "trusted_sources")?.unwrap_or_default(),
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
            ("roles".to_owned(), string_list(&user.roles)),
            ("created_at".to_owned(), AttributeValue::S(created_at)),
            ("session_epoch".to_owned(), n(user.session_epoch)),
        ]);
        if !user.trusted_sources.is_empty() {
            item.insert(
                "trusted_sources".to_owned(),
                string_list(&user.trusted_sources),
            );
        }
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
        source: &Source,
    ) -> Result<(Option<UserRecord>, LoginAttempts), StoreError> {
        // One round trip for both items.
        let mut user = None;
        let mut attempts = LoginAttempts::default();
        for item in self
            .batch_get(vec![user_key(email), attempts_key(email, source)])
            .await?
        {
            match Self::sk_of(&item) {
                Some("USER") => user = Some(user_from_item(&item)?),
                Some(sk) if sk.starts_with("SOURCE#") => attempts = attempts_from_item(&item),
                _ => {}
            }
        }
        Ok((user, attempts))
    }

    async fn admit_login_attempt(
        &self,
        email: &Email,
        source: &Source,
        seen: LoginAttempts,
        now_ms: i64,
    ) -> Result<Admission, StoreError> {
        // Compare-and-set: write the next record only if the stored one is still the one the
        // decision was made on. A loser reads again and decides on what the winner wrote.
        let mut seen = seen;
        for _ in 0..ADMISSION_ROUNDS {
            let next = match seen.admit(now_ms) {
                Admission::Admitted(next) => next,
                refused => return Ok(refused),
            };
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attempts_item(email, source, &next)));
            let put = if seen.expires_at == 0 {
                put.condition_expression("attribute_not_exists(pk)")
            } else {
                put.condition_expression("failures = :failures AND expires_at = :expires_at")
                    .expression_attribute_values(":failures", n(seen.failures))
                    .expression_attribute_values(":expires_at", n(seen.expires_at))
            };
            match put.send().await {
                Ok(_) => return Ok(Admission::Admitted(next)),
                Err(err) if condition_failed(&err) => {}
                Err(err) => return Err(classify(err)),
            }
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(attempts_key(email, source)))
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
            seen = output
                .item
                .as_ref()
                .map(attempts_from_item)
                .unwrap_or_default();
        }
        // Still losing races: as many checks as that are running at once already.
        Ok(Admission::Refused {
            retry_after_seconds: 1,
        })
    }

    async fn count_email_failure(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> Result<EmailFailures, StoreError> {
        let now = now_ms / 1000;
        for _ in 0..3 {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(email_failures_key(email)))
                .update_expression("ADD failures :one")
                .condition_expression("window_ends > :now")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(now))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match counted {
                Ok(output) => {
                    let item = output.attributes.unwrap_or_default();
                    return Ok(EmailFailures {
                        count: number_attr(&item, "failures")
                            .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)),
                        window_ends: required_number(&item, "window_ends")?,
                    });
                }
                Err(err) if condition_failed(&err) => {}
                Err(err) => return Err(classify(err)),
            }
            // No window, or it has ended (DynamoDB deletes lazily): start a new one, unless a
            // concurrent request just did.
            let window_ends = now + EMAIL_WINDOW_SECONDS;
            let mut item = email_failures_key(email);
            item.extend([
                ("entity".to_owned(), s("loginfail")),
                ("failures".to_owned(), n(1)),
                ("window_ends".to_owned(), n(window_ends)),
                (TTL_ATTRIBUTE.to_owned(), n(window_ends)),
            ]);
            let started = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR window_ends <= :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match started {
                Ok(_) => {
                    return Ok(EmailFailures {
                        count: 1,
                        window_ends,
                    });
                }
                Err(err) if condition_failed(&err) => {}
                Err(err) => return Err(classify(err)),
            }
        }
        #[derive(Debug, thiserror::Error)]
        #[error("the per-email failure window kept changing under concurrent writes")]
        struct Contended;
        Err(StoreError::Unavailable(Box::new(Contended)))
    }

    async fn forget_login_failures(
        &self,
        email: &Email,
        source: &Source,
        email_counted: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let forget_source = async {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(attempts_key(email, source)))
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        };
        let uncount_email = async {
            if !email_counted {
                return Ok(());
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(email_failures_key(email)))
                .update_expression("ADD failures :minus_one")
                .condition_expression("window_ends > :now AND failures > :zero")
                .expression_attribute_values(":minus_one", n(-1))
                .expression_attribute_values(":now", n(now_ms / 1000))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            match result {
                Err(err) if !condition_failed(&err) => Err(classify(err)),
                _ => Ok(()),
            }
        };
        let (a, b) = tokio::join!(forget_source, uncount_email);
        a.and(b)
    }

    async fn set_trusted_sources(
        &self,
        user: &UserRecord,
        sources: &[String],
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("SET trusted_sources = :sources")
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":sources", string_list(sources))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .send()
            .await;
        match result {
            Err(err) if !condition_failed(&err) => Err(classify(err)),
            _ => Ok(()),
        }
    }

    async fn rehash_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("SET password_hash = :new_hash")
            .condition_expression("user_id = :user_id AND password_hash = :old_hash")
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .expression_attribute_values(":old_hash", s(user.password_hash.expose_secret()))
            .expression_attribute_values(":new_hash", s(new_hash.expose_secret()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Err(StoreError::Conflict),
            Err(err) => Err(classify(err)),
        }
    }

    async fn start_session(
        &self,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        self.transact(vec![
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
        ])
        .await
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshLookup>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(refresh_key(hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let token = refresh_from_item(hash, &item)?;
        let mut lookup = RefreshLookup {
            family: None,
            user: None,
            token,
        };
        for item in self
            .batch_get(vec![
                family_key(lookup.token.family_id),
                user_key(&lookup.token.email),
            ])
            .await?
        {
            match Self::sk_of(&item) {
                Some("SESSION") => lookup.family = Some(family_from_item(&item)?),
                Some("USER") => lookup.user = Some(user_from_item(&item)?),
                _ => {}
            }
        }
        Ok(Some(lookup))
    }

    async fn rotate_refresh(
        &self,
        spent_hash: &TokenHash,
        spent: &Spent,
        successor: &RefreshRecord,
        epoch: u64,
    ) -> Result<(), StoreError> {
        let spend = Update::builder()
            .table_name(&self.table)
            .set_key(Some(refresh_key(spent_hash)))
            .update_expression(
                "SET token_status = :spent, spent_at_ms = :at, successor = :sealed, \
                 successor_hash = :successor_hash",
            )
            .condition_expression("token_status = :active AND family_id = :family_id")
            .expression_attribute_values(":spent", s("spent"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":at", n(spent.at_ms))
            .expression_attribute_values(
                ":sealed",
                AttributeValue::B(Blob::new(spent.sealed_successor.to_vec())),
            )
            .expression_attribute_values(":successor_hash", s(spent.successor_hash.to_hex()))
            .expression_attribute_values(":family_id", s(successor.family_id.to_string()))
            .build()
            .map_err(internal)?;
        let extend_family = Update::builder()
            .table_name(&self.table)
            .set_key(Some(family_key(successor.family_id)))
            .update_expression("SET expires_at = :expires_at")
            .condition_expression("revoked = :false AND epoch = :epoch")
            .expression_attribute_values(":expires_at", n(successor.expires_at))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":epoch", n(epoch))
            .build()
            .map_err(internal)?;
        let user_at_epoch = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&successor.email)))
            .condition_expression(epoch_condition(epoch))
            .expression_attribute_values(":user_id", s(successor.user_id.to_string()))
            .expression_attribute_values(":epoch", n(epoch))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            TransactWriteItem::builder().update(spend).build(),
            put(refresh_item(successor), &self.table)?,
            TransactWriteItem::builder().update(extend_family).build(),
            TransactWriteItem::builder()
                .condition_check(user_at_epoch)
                .build(),
        ])
        .await
    }

    async fn revoke_family(&self, family_id: Uuid) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(family_key(family_id)))
            .update_expression("SET revoked = :true")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Err(err)
                if !err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(classify(err))
            }
            _ => Ok(()),
        }
    }

    async fn revoke_all_sessions(&self, email: &Email, user_id: Uuid) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(email)))
            .update_expression("ADD session_epoch :one")
            .condition_expression("user_id = :user_id")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":user_id", s(user_id.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn change_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        if family.epoch != user.session_epoch + 1 {
            return Err(StoreError::Conflict);
        }
        let condition = format!(
            "{} AND password_hash = :old_hash",
            epoch_condition(user.session_epoch)
        );
        let update_user = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .update_expression("SET password_hash = :new_hash, session_epoch = :new_epoch")
            .condition_expression(condition)
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .expression_attribute_values(":epoch", n(user.session_epoch))
            .expression_attribute_values(":old_hash", s(user.password_hash.expose_secret()))
            .expression_attribute_values(":new_hash", s(new_hash.expose_secret()))
            .expression_attribute_values(":new_epoch", n(family.epoch))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            TransactWriteItem::builder().update(update_user).build(),
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
        ])
        .await
    }
}
