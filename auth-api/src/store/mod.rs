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

/// Consecutive failed logins for one email (registered or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginAttempts {
    pub failures: u32,
    /// Unix milliseconds until which logins are refused, once failures reach the threshold.
    pub locked_until_ms: Option<i64>,
}

/// Failed logins before backoff starts.
pub const BACKOFF_THRESHOLD: u32 = 5;
/// Longest backoff.
pub const BACKOFF_CAP_MS: i64 = 15 * 60 * 1000;
/// A failure counter is forgotten after a day without failures.
pub const ATTEMPTS_TTL_SECONDS: i64 = 24 * 60 * 60;

impl LoginAttempts {
    /// The lock that `failures` consecutive failures earn, from `now_ms`: none below the
    /// threshold, then 1 s doubling per failure up to 15 minutes.
    pub fn lock_after(failures: u32, now_ms: i64) -> Option<i64> {
        let over = failures.checked_sub(BACKOFF_THRESHOLD)?;
        let delay = 1000_i64.checked_shl(over.min(20)).unwrap_or(BACKOFF_CAP_MS);
        Some(now_ms + delay.min(BACKOFF_CAP_MS))
    }
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

    /// The user with this email, read consistently (a user just created is found), and the
    /// email's failed-login record, in one read.
    fn find_user_for_login(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<(Option<UserRecord>, LoginAttempts), StoreError>> + Send;

    /// Counts one more failed login for `email` atomically (never read-modify-write) and, at
    /// the threshold, sets the lock. Returns the new record.
    fn record_login_failure(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> impl Future<Output = Result<LoginAttempts, StoreError>> + Send;

    /// Forgets the failed logins of `email` (after a successful login).
    fn clear_login_failures(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_the_threshold_and_doubles_to_the_cap() {
        let now = 1_000_000;
        assert_eq!(LoginAttempts::lock_after(4, now), None);
        assert_eq!(LoginAttempts::lock_after(5, now), Some(now + 1_000));
        assert_eq!(LoginAttempts::lock_after(6, now), Some(now + 2_000));
        assert_eq!(LoginAttempts::lock_after(14, now), Some(now + 512_000));
        assert_eq!(
            LoginAttempts::lock_after(15, now),
            Some(now + BACKOFF_CAP_MS)
        );
        assert_eq!(
            LoginAttempts::lock_after(u32::MAX, now),
            Some(now + BACKOFF_CAP_MS)
        );
    }
}
