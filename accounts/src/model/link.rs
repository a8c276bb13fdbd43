//! Single-use tokens sent by mail: one to verify an email address, one to reset a password.
//!
//! A token is 256 random bits (the same opaque format as refresh tokens), stored only as its
//! SHA-256. Each user has at most one live token per purpose: issuing a newer one makes the
//! older stop working. A token is spent by the one write that acts on it, and expires (TTL in
//! the table, and checked here, since DynamoDB deletes lazily).

use uuid::Uuid;

use crate::model::credentials::Email;
use crate::model::token::OpaqueToken;
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;

/// An action token: the same 256-bit, 43-character format as a refresh token.
pub type ActionToken = OpaqueToken;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    /// The stable name stored with the token.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "verify_email" => Some(Purpose::VerifyEmail),
            "reset_password" => Some(Purpose::ResetPassword),
            _ => None,
        }
    }

    /// `user`'s live token for this purpose: a newer one replaces it, spending it removes it.
    pub fn live_token(self, user: &UserRecord) -> Option<&TokenHash> {
        match self {
            Purpose::VerifyEmail => user.verify_token.as_ref(),
            Purpose::ResetPassword => user.reset_token.as_ref(),
        }
    }
}

/// An issued token, known by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub hash: TokenHash,
    pub purpose: Purpose,
    pub user_id: Uuid,
    pub email: Email,
    pub created_at_ms: i64,
    /// Unix seconds (the table's TTL attribute).
    pub expires_at: i64,
}

impl ActionRecord {
    /// A new token for `purpose` to `user`, issued at `now_ms`, living `ttl_seconds`.
    pub fn issue(
        user: &UserRecord,
        purpose: Purpose,
        now_ms: i64,
        ttl_seconds: i64,
    ) -> (ActionToken, ActionRecord) {
        let token = ActionToken::generate();
        let record = ActionRecord {
            hash: token.hash(),
            purpose,
            user_id: user.user_id,
            email: user.email.clone(),
            created_at_ms: now_ms,
            expires_at: now_ms / 1000 + ttl_seconds,
        };
        (token, record)
    }

    /// Whether this token can still act for `user` at `now_ms`: not expired, for this user,
    /// and the user's live token for its purpose (a newer one supersedes it).
    pub fn usable_for(&self, user: &UserRecord, now_ms: i64) -> bool {
        self.expires_at * 1000 > now_ms
            && self.user_id == user.user_id
            && self.purpose.live_token(user) == Some(&self.hash)
    }
}

/// How long tokens live (`VERIFY_TOKEN_TTL_SECONDS`, `RESET_TOKEN_TTL_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSettings {
    pub verify_ttl_seconds: i64,
    pub reset_ttl_seconds: i64,
}

impl Default for ActionSettings {
    fn default() -> Self {
        Self {
            verify_ttl_seconds: 24 * 60 * 60,
            reset_ttl_seconds: 30 * 60,
        }
    }
}

impl ActionSettings {
    pub fn ttl_seconds(&self, purpose: Purpose) -> i64 {
        match purpose {
            Purpose::VerifyEmail => self.verify_ttl_seconds,
            Purpose::ResetPassword => self.reset_ttl_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn user() -> UserRecord {
        UserRecord::new(
            Email::parse("ada@example.com").unwrap(),
            "$2b$04$x".to_owned().into(),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn a_token_acts_only_while_live_unexpired_and_for_its_user() {
        let mut ada = user();
        let now = 1_795_424_047_000;
        let (_, record) = ActionRecord::issue(&ada, Purpose::ResetPassword, now, 1800);
        assert!(!record.usable_for(&ada, now), "not yet the live token");
        ada.reset_token = Some(record.hash);
        assert!(record.usable_for(&ada, now));
        assert!(record.usable_for(&ada, now + 1_799_999));
        assert!(!record.usable_for(&ada, now + 1_800_000), "expired");
        // A newer token supersedes it; the other purpose's slot does not count.
        let (_, newer) = ActionRecord::issue(&ada, Purpose::ResetPassword, now, 1800);
        ada.reset_token = Some(newer.hash);
        assert!(!record.usable_for(&ada, now));
        ada.verify_token = Some(record.hash);
        assert!(!record.usable_for(&ada, now));
        let mut other = user();
        other.reset_token = Some(newer.hash);
        assert!(!newer.usable_for(&other, now), "another user's token");
    }

    #[test]
    fn purposes_round_trip_their_stored_names() {
        for purpose in [Purpose::VerifyEmail, Purpose::ResetPassword] {
            assert_eq!(Purpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(Purpose::parse("refresh"), None);
    }
}
