//! Where users live. One trait, a DynamoDB implementation and an in-memory one; both pass the
//! same contract tests (tests/src/store_contract.rs).

use std::future::Future;

use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Email;

pub mod dynamo;
pub mod memory;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// A stored user.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: Uuid,
    pub email: Email,
    /// bcrypt hash of the password.
    pub password_hash: SecretString,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user with this email exists already.
    #[error("a user with this email already exists")]
    EmailTaken,
    /// The backing service failed, timed out or throttled: worth retrying later.
    #[error("user store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A request or stored item was not what this code expects: a bug or a corrupt item.
    #[error("user store failed unexpectedly")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Storage of user accounts.
pub trait UserStore: Send + Sync {
    /// Stores a new user, unless one with the same email exists: then `EmailTaken` and
    /// nothing is written. Atomic: of concurrent creates for one email exactly one succeeds.
    fn create_user(&self, user: &UserRecord)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user with this id. May lag a just-created user by a moment (DynamoDB reads it
    /// through a global secondary index, which is eventually consistent).
    fn find_user_by_id(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    /// The user with this email, read consistently (a user just created is found).
    fn find_user_by_email(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;
}
