//! User accounts as stored.

use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::backoff::{Source, TRUSTED_SOURCES};
use crate::model::credentials::Email;
use crate::model::token::TokenHash;

/// A stored user.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: Uuid,
    pub email: Email,
    /// bcrypt hash of the password.
    pub password_hash: SecretString,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
    /// Sessions of an older epoch are dead: logout-all and a password change move it on.
    pub session_epoch: u64,
    /// Addresses of the latest successful sign-ins, newest first (at most
    /// [`TRUSTED_SOURCES`]): exempt from the per-email failure limit.
    pub trusted_sources: Vec<String>,
    /// Whether the user has proven they read mail at `email` (a verification or reset link).
    pub email_verified: bool,
    /// The hash of the one live email-verification token, if any.
    pub verify_token: Option<TokenHash>,
    /// The hash of the one live password-reset token, if any.
    pub reset_token: Option<TokenHash>,
    /// Disabled by an operator (`auth-admin users disable`): no login, refresh or account
    /// route works, and every session ended when it was set.
    pub disabled: bool,
    /// The user's name in the system they were imported from, if any (kept, shown in `/me`).
    pub username: Option<String>,
    /// Their display name there, if any.
    pub name: Option<String>,
    /// The hash is the Node.js original's: bcrypt of the password with surrounding white
    /// space trimmed. Login then also tries the trimmed password once, and the first
    /// success stores a hash of the exact password instead.
    pub legacy_password: bool,
    /// Two-factor sign-in (TOTP), sealed.
    pub mfa: crate::model::mfa::MfaState,
    /// How many passkeys the user has: with one and a password, a password sign-in needs a
    /// second factor.
    pub passkeys: u32,
    /// Whether the user knows a password: an account made by a sign-in at another provider
    /// has none until a reset sets one.
    pub has_password: bool,
    /// How many identities at other providers are linked to the user.
    pub identities: u32,
}

impl UserRecord {
    /// A new account with a fresh id: role `user`, session epoch 0, nothing verified, no
    /// trusted sign-in address, neither disabled nor imported.
    pub fn new(email: Email, password_hash: SecretString, created_at: OffsetDateTime) -> Self {
        Self {
            user_id: Uuid::new_v4(),
            email,
            password_hash,
            roles: vec![shared::token::DEFAULT_ROLE.to_owned()],
            created_at,
            session_epoch: 0,
            trusted_sources: Vec::new(),
            email_verified: false,
            verify_token: None,
            reset_token: None,
            disabled: false,
            username: None,
            name: None,
            legacy_password: false,
            mfa: Default::default(),
            passkeys: 0,
            has_password: true,
            identities: 0,
        }
    }

    /// Whether a password sign-in needs a second step: the user has TOTP or a passkey.
    pub fn needs_second_factor(&self) -> bool {
        self.mfa.enabled() || self.passkeys > 0
    }

    /// Whether the user signed in from `source` lately.
    pub fn trusts(&self, source: &Source) -> bool {
        self.trusted_sources.iter().any(|s| s == source.as_str())
    }

    /// The trusted sources once `source` has signed in: it first, at most
    /// [`TRUSTED_SOURCES`]. `None` if `source` is already first.
    pub fn trusted_sources_with(&self, source: &Source) -> Option<Vec<String>> {
        if self.trusted_sources.first().map(String::as_str) == Some(source.as_str()) {
            return None;
        }
        let mut sources = vec![source.as_str().to_owned()];
        sources.extend(
            self.trusted_sources
                .iter()
                .filter(|s| s.as_str() != source.as_str())
                .cloned(),
        );
        sources.truncate(TRUSTED_SOURCES);
        Some(sources)
    }
}
