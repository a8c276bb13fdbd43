//! Item keys and attribute codecs: how records become items and items records.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use secrecy::SecretString;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::client::{Item, TTL_ATTRIBUTE};
use super::errors::internal;
use crate::model::backoff::{LoginAttempts, Source};
use crate::model::credentials::Email;
use crate::model::mfa::MfaState;
use crate::model::registry::ClientId;
use crate::model::session::{
    AccountState, ClientInfo, RefreshRecord, SessionFamily, SessionState, Spent, TokenUse,
};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;
use crate::store::traits::StoreError;

pub(super) fn user_key(email: &Email) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("EMAIL#{}", email.as_str())),
        ),
        ("sk".to_owned(), AttributeValue::S("USER".to_owned())),
    ])
}

pub(super) fn attempts_key(email: &Email, source: &Source) -> Item {
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

pub(super) fn email_failures_key(email: &Email) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("LOGINFAIL#{}", email.as_str())),
        ),
        ("sk".to_owned(), AttributeValue::S("EMAIL".to_owned())),
    ])
}

pub(super) fn family_key(family_id: Uuid) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("SESSION#{family_id}")),
        ),
        ("sk".to_owned(), AttributeValue::S("SESSION".to_owned())),
    ])
}

pub(super) fn refresh_key(hash: &TokenHash) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("REFRESH#{}", hash.to_hex())),
        ),
        ("sk".to_owned(), AttributeValue::S("REFRESH".to_owned())),
    ])
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn family_item(family: &SessionFamily) -> Item {
    let mut item = family_key(family.family_id);
    item.extend([
        ("entity".to_owned(), s("session")),
        ("user_id".to_owned(), s(family.user_id.to_string())),
        ("email".to_owned(), s(family.email.as_str())),
        ("epoch".to_owned(), n(family.epoch)),
        ("revoked".to_owned(), AttributeValue::Bool(family.revoked)),
        ("created_at_ms".to_owned(), n(family.created_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(family.expires_at)),
        ("gsi1pk".to_owned(), s(sessions_of(family.user_id))),
    ]);
    if let Some(at) = family.last_refreshed_at_ms {
        item.insert("last_refreshed_at_ms".to_owned(), n(at));
    }
    if let Some(user_agent) = &family.client.user_agent {
        item.insert("user_agent".to_owned(), s(user_agent.as_str()));
    }
    if let Some(ip) = &family.client.source_ip {
        item.insert("source_ip".to_owned(), s(ip.as_str()));
    }
    if family.method != shared::SignInMethod::Password {
        item.insert("amr".to_owned(), s(family.method.amr().join(" ")));
    }
    item
}

/// `gsi1pk` of a user's sessions: they are listed by it.
pub(super) fn sessions_of(user_id: Uuid) -> String {
    format!("SESSIONS#{user_id}")
}

/// `gsi1pk` of a user's linked identities (other providers' accounts).
pub(super) fn identities_of(user_id: Uuid) -> String {
    format!("IDENTITIES#{user_id}")
}

/// `gsi1pk` of the user's refresh tokens and mail tokens: an account's deletion finds them by
/// it (apart from the sessions, which a listing reads; there are far more tokens).
pub(super) fn tokens_of(user_id: Uuid) -> String {
    format!("TOKENS#{user_id}")
}

/// A new (unspent) refresh token item.
pub(super) fn refresh_item(token: &RefreshRecord) -> Item {
    let mut item = refresh_key(&token.hash);
    item.extend([
        ("entity".to_owned(), s("refresh")),
        ("family_id".to_owned(), s(token.family_id.to_string())),
        ("user_id".to_owned(), s(token.user_id.to_string())),
        ("email".to_owned(), s(token.email.as_str())),
        ("issued_at_ms".to_owned(), n(token.issued_at_ms)),
        (TTL_ATTRIBUTE.to_owned(), n(token.expires_at)),
        ("token_status".to_owned(), s("active")),
        ("gsi1pk".to_owned(), s(tokens_of(token.user_id))),
    ]);
    match &token.token_use {
        TokenUse::Api => {}
        TokenUse::Browser => {
            item.insert("token_use".to_owned(), s("browser"));
        }
        TokenUse::Client { client_id, scope } => {
            item.insert("token_use".to_owned(), s("client"));
            item.insert("client_id".to_owned(), s(client_id.as_str()));
            item.insert("scope".to_owned(), s(scope.as_str()));
        }
    }
    item
}

/// A refresh token's use; tokens written before uses existed are the JSON API's.
fn token_use_from_item(item: &Item) -> Result<TokenUse, StoreError> {
    match optional_string(item, "token_use").as_deref() {
        None => Ok(TokenUse::Api),
        Some("browser") => Ok(TokenUse::Browser),
        Some("client") => Ok(TokenUse::Client {
            client_id: ClientId::parse(string_attr(item, "client_id")?)
                .ok_or_else(|| corrupt(item, "client_id is malformed"))?,
            scope: optional_string(item, "scope").unwrap_or_default(),
        }),
        Some(_) => Err(corrupt(item, "token_use is unknown")),
    }
}

pub(super) fn uuid_attr(item: &Item, name: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(string_attr(item, name)?)
        .map_err(|_| corrupt(item, format!("{name} is not a UUID")))
}

pub(super) fn email_attr(item: &Item) -> Result<Email, StoreError> {
    Email::parse(string_attr(item, "email")?).map_err(|_| corrupt(item, "email is not valid"))
}

pub(super) fn required_number(item: &Item, name: &str) -> Result<i64, StoreError> {
    number_attr(item, name)
        .ok_or_else(|| corrupt(item, format!("attribute {name} missing or not a number")))
}

pub(super) fn family_from_item(item: &Item) -> Result<SessionFamily, StoreError> {
    Ok(SessionFamily {
        family_id: Uuid::parse_str(
            string_attr(item, "pk")?
                .strip_prefix("SESSION#")
                .unwrap_or_default(),
        )
        .map_err(|_| corrupt(item, "session key is not SESSION#<uuid>"))?,
        user_id: uuid_attr(item, "user_id")?,
        email: email_attr(item)?,
        epoch: u64::try_from(required_number(item, "epoch")?)
            .map_err(|_| corrupt(item, "epoch is negative"))?,
        revoked: matches!(item.get("revoked"), Some(AttributeValue::Bool(true))),
        created_at_ms: required_number(item, "created_at_ms")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
        last_refreshed_at_ms: number_attr(item, "last_refreshed_at_ms"),
        client: ClientInfo {
            user_agent: optional_string(item, "user_agent"),
            source_ip: optional_string(item, "source_ip"),
        },
        method: sign_in_method(item),
    })
}

/// Every attribute the session-checking authorizer reads (of a session item and a user item);
/// template.yaml grants it exactly these (`dynamodb:Attributes`).
pub const SESSION_STATE_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "user_id",
    "epoch",
    "revoked",
    "created_at_ms",
    TTL_ATTRIBUTE,
    "session_epoch",
    "disabled",
];

pub(super) fn session_state_from_item(item: &Item) -> Result<SessionState, StoreError> {
    Ok(SessionState {
        user_id: uuid_attr(item, "user_id")?,
        epoch: u64::try_from(required_number(item, "epoch")?)
            .map_err(|_| corrupt(item, "epoch is negative"))?,
        revoked: matches!(item.get("revoked"), Some(AttributeValue::Bool(true))),
        created_at_ms: required_number(item, "created_at_ms")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
    })
}

pub(super) fn account_state_from_item(item: &Item) -> Result<AccountState, StoreError> {
    Ok(AccountState {
        user_id: uuid_attr(item, "user_id")?,
        session_epoch: number_attr(item, "session_epoch")
            .map_or(Ok(0), u64::try_from)
            .map_err(|_| corrupt(item, "session_epoch is negative"))?,
        disabled: matches!(item.get("disabled"), Some(AttributeValue::Bool(true))),
    })
}

/// A string attribute that may be absent.
pub(super) fn optional_string(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

pub(super) fn refresh_from_item(
    hash: &TokenHash,
    item: &Item,
) -> Result<RefreshRecord, StoreError> {
    let spent = match string_attr(item, "token_status")? {
        "active" => None,
        "spent" => {
            let sealed_successor = match item.get("successor") {
                Some(AttributeValue::B(blob)) => <[u8; 32]>::try_from(blob.as_ref()).ok(),
                _ => None,
            }
            .ok_or_else(|| corrupt(item, "successor is not 32 bytes"))?;
            let successor_hash = TokenHash::from_hex(string_attr(item, "successor_hash")?)
                .ok_or_else(|| corrupt(item, "successor_hash is not hex"))?;
            Some(Spent {
                at_ms: required_number(item, "spent_at_ms")?,
                sealed_successor,
                successor_hash,
            })
        }
        _ => return Err(corrupt(item, "token_status is unknown")),
    };
    Ok(RefreshRecord {
        hash: *hash,
        family_id: uuid_attr(item, "family_id")?,
        user_id: uuid_attr(item, "user_id")?,
        email: email_attr(item)?,
        issued_at_ms: required_number(item, "issued_at_ms")?,
        expires_at: required_number(item, TTL_ATTRIBUTE)?,
        spent,
        token_use: token_use_from_item(item)?,
    })
}

/// The condition that the user item is at `epoch` (a user written before epochs has none).
pub(super) fn epoch_condition(epoch: u64) -> &'static str {
    if epoch == 0 {
        "user_id = :user_id AND (attribute_not_exists(session_epoch) OR session_epoch = :epoch)"
    } else {
        "user_id = :user_id AND session_epoch = :epoch"
    }
}

/// A transaction part that checks that `token`'s user still exists at `epoch`.
pub(super) fn user_at_epoch(
    table: &str,
    token: &RefreshRecord,
    epoch: u64,
) -> Result<TransactWriteItem, StoreError> {
    let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(user_key(&token.email)))
        .condition_expression(epoch_condition(epoch))
        .expression_attribute_values(":user_id", s(token.user_id.to_string()))
        .expression_attribute_values(":epoch", n(epoch))
        .build()
        .map_err(internal)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

pub(super) fn put(item: Item, table: &str) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(super) fn number_attr(item: &Item, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

pub(super) fn attempts_from_item(item: &Item) -> LoginAttempts {
    LoginAttempts {
        failures: number_attr(item, "failures").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        locked_until_ms: number_attr(item, "locked_until_ms"),
        // A stored record always has a positive expiry; 0 would read as "no record".
        expires_at: number_attr(item, TTL_ATTRIBUTE).unwrap_or(1).max(1),
    }
}

pub(super) fn attempts_item(email: &Email, source: &Source, attempts: &LoginAttempts) -> Item {
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

pub(super) fn string_attr<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.as_str()),
        _ => Err(corrupt(
            item,
            format!("attribute {name} missing or not a string"),
        )),
    }
}

/// The token hash (hex) `name`; a missing attribute is `None`.
pub(super) fn optional_hash_attr(item: &Item, name: &str) -> Result<Option<TokenHash>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => TokenHash::from_hex(string_attr(item, name)?)
            .map(Some)
            .ok_or_else(|| corrupt(item, format!("{name} is not a SHA-256 hex"))),
    }
}

/// The list of strings `name`; a missing attribute is `None`.
pub(super) fn string_list_attr(item: &Item, name: &str) -> Result<Option<Vec<String>>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .cloned()
                    .map_err(|_| corrupt(item, format!("{name} holds a non-string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(corrupt(item, format!("{name} is not a list"))),
    }
}

pub(super) fn string_list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
}

pub(super) fn user_from_item(item: &Item) -> Result<UserRecord, StoreError> {
    let roles =
        string_list_attr(item, "roles")?.ok_or_else(|| corrupt(item, "roles is missing"))?;
    Ok(UserRecord {
        user_id: Uuid::parse_str(string_attr(item, "user_id")?)
            .map_err(|_| corrupt(item, "user_id is not a UUID"))?,
        email: Email::parse(string_attr(item, "email")?)
            .map_err(|_| corrupt(item, "email is not valid"))?,
        password_hash: SecretString::from(string_attr(item, "password_hash")?.to_owned()),
        roles,
        created_at: OffsetDateTime::parse(string_attr(item, "created_at")?, &Rfc3339)
            .map_err(|_| corrupt(item, "created_at is not RFC 3339"))?,
        session_epoch: number_attr(item, "session_epoch")
            .map_or(Ok(0), u64::try_from)
            .map_err(|_| corrupt(item, "session_epoch is negative"))?,
        trusted_sources: string_list_attr(item, "trusted_sources")?.unwrap_or_default(),
        email_verified: matches!(item.get("email_verified"), Some(AttributeValue::Bool(true))),
        verify_token: optional_hash_attr(item, "verify_token")?,
        reset_token: optional_hash_attr(item, "reset_token")?,
        disabled: matches!(item.get("disabled"), Some(AttributeValue::Bool(true))),
        username: optional_string(item, "username"),
        name: optional_string(item, "name"),
        legacy_password: matches!(
            item.get("legacy_password"),
            Some(AttributeValue::Bool(true))
        ),
        mfa: mfa_from_item(item)?,
        passkeys: number_attr(item, "passkeys")
            .map_or(Ok(0), u32::try_from)
            .map_err(|_| corrupt(item, "passkeys is out of range"))?,
        has_password: !matches!(item.get("no_password"), Some(AttributeValue::Bool(true))),
        identities: number_attr(item, "identities")
            .map_or(Ok(0), u32::try_from)
            .map_err(|_| corrupt(item, "identities is out of range"))?,
    })
}

/// A user's MFA attributes: `mfa_secret` and `mfa_pending` (binary, sealed),
/// `mfa_pending_until`, `mfa_last_step`, `mfa_recovery` (list of hashes), `mfa_revision`.
pub(super) fn mfa_from_item(item: &Item) -> Result<MfaState, StoreError> {
    let binary = |name: &str| match item.get(name) {
        Some(AttributeValue::B(blob)) => Some(blob.as_ref().to_vec()),
        _ => None,
    };
    let unsigned = |name: &str| {
        number_attr(item, name)
            .map_or(Ok(0), u64::try_from)
            .map_err(|_| corrupt(item, format!("{name} is negative")))
    };
    let pending = match binary("mfa_pending") {
        Some(sealed) => Some((sealed, required_number(item, "mfa_pending_until")?)),
        None => None,
    };
    Ok(MfaState {
        secret: binary("mfa_secret"),
        pending,
        last_step: unsigned("mfa_last_step")?,
        recovery: string_list_attr(item, "mfa_recovery")?.unwrap_or_default(),
        revision: unsigned("mfa_revision")?,
    })
}

/// A stored item this code cannot read, named by its kind (from its sort key).
#[derive(Debug, thiserror::Error)]
#[error("stored {kind} item is invalid: {problem}")]
struct CorruptItem {
    kind: &'static str,
    problem: String,
}

pub(super) fn corrupt(item: &Item, problem: impl Into<String>) -> StoreError {
    let kind = match item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some("USER") => "user",
        Some("SESSION") => "session",
        Some("REFRESH") => "refresh token",
        Some("MFACHALLENGE") => "MFA challenge",
        Some("EMAIL") => "failed-login (per email)",
        Some(sk) if sk.starts_with("SOURCE#") => "failed-login (per source)",
        _ => "unknown",
    };
    internal(CorruptItem {
        kind,
        problem: problem.into(),
    })
}

/// A session's sign-in method: `amr` (space-separated), or, for sessions stored before it,
/// the `mfa` flag of a password-and-code sign-in.
fn sign_in_method(item: &Item) -> shared::SignInMethod {
    if let Some(AttributeValue::S(amr)) = item.get("amr") {
        let amr: Vec<&str> = amr.split(' ').collect();
        return shared::SignInMethod::from_amr(&amr).unwrap_or_default();
    }
    match item.get("mfa") {
        Some(AttributeValue::Bool(true)) => shared::SignInMethod::PasswordAndCode,
        _ => shared::SignInMethod::Password,
    }
}
