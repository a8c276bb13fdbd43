//! Passkeys as stored, and the server-side state of a WebAuthn ceremony.

use uuid::Uuid;

use super::token::TokenHash;
use super::webauthn::{Descriptor, RelyingParty};

/// Passkeys one account may hold.
pub const MAX_PASSKEYS: u32 = 20;
/// Characters of a passkey's name.
pub const MAX_NAME_CHARS: usize = 64;
/// The name of a passkey added without one.
pub const DEFAULT_NAME: &str = "Passkey";

/// A user's passkey: a WebAuthn credential and what the user calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    /// The API's name for it ([`super::webauthn::passkey_id`] of the credential id).
    pub id: String,
    pub credential_id: Vec<u8>,
    pub user_id: Uuid,
    pub name: PasskeyName,
    /// The COSE_Key the authenticator gave.
    pub public_key: Vec<u8>,
    pub algorithm: i64,
    pub sign_count: u32,
    /// May be synced to the user's other devices (a synced passkey); fixed at registration.
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub transports: Vec<String>,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

impl Passkey {
    /// How a ceremony names it to the browser.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            credential_id: self.credential_id.clone(),
            transports: self.transports.clone(),
        }
    }
}

/// A passkey's name: 1 to [`MAX_NAME_CHARS`] characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    pub fn parse(raw: &str) -> Option<Self> {
        let name = raw.trim();
        let fits = !name.is_empty()
            && name.chars().count() <= MAX_NAME_CHARS
            && !name.chars().any(char::is_control);
        fits.then(|| Self(name.to_owned()))
    }

    pub fn default_name() -> Self {
        Self(DEFAULT_NAME.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a challenge was issued for, and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ceremony {
    /// A signed-in user adds a passkey: bound to them as they were (id, session epoch).
    Register { user_id: Uuid, epoch: u64 },
    /// A sign-in with a passkey: for the account of the email given, as it was, if it exists
    /// (`None`: a discoverable sign-in, or an email of no account with passkeys).
    SignIn {
        user: Option<(Uuid, u64)>,
        /// Whether an email was given: then only that account's passkeys count.
        by_email: bool,
    },
    /// The second step of a password sign-in (the `mfa_token`'s hash).
    SecondFactor { mfa_token: TokenHash },
}

impl Ceremony {
    pub fn kind(&self) -> &'static str {
        match self {
            Ceremony::Register { .. } => "register",
            Ceremony::SignIn { .. } => "sign_in",
            Ceremony::SecondFactor { .. } => "second_factor",
        }
    }
}

/// A ceremony's challenge, kept by the server only: the client holds the random
/// `challenge_id`, of which the store knows the hash. Single use; lives as long as the
/// ceremony may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallenge {
    pub hash: TokenHash,
    pub challenge: [u8; 32],
    pub ceremony: Ceremony,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Passkeys' settings: the relying party, and the key of the decoys that make an unknown
/// account's options look like a known one's.
#[derive(Debug, Clone)]
pub struct PasskeySettings {
    pub rp: RelyingParty,
    pub decoy_key: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(PasskeyName::parse("  Laptop ").unwrap().as_str(), "Laptop");
        assert!(PasskeyName::parse("").is_none());
        assert!(PasskeyName::parse("   ").is_none());
        assert!(PasskeyName::parse("a\u{0}b").is_none());
        assert!(PasskeyName::parse(&"é".repeat(64)).is_some());
        assert!(PasskeyName::parse(&"é".repeat(65)).is_none());
    }
}
