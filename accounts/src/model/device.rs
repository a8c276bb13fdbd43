//! The device authorization grant (RFC 8628): device codes, user codes, and a grant's state
//! between the device's request, the user's decision on the hosted page, and the device's
//! polls of the token endpoint.

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::credentials::Email;
use super::registry::ClientId;
use super::token::TokenHash;

/// Seconds a device code (and its user code) lives.
pub const DEVICE_CODE_TTL_SECONDS: i64 = 600;
/// Seconds a device waits between polls, at first.
pub const POLL_INTERVAL_SECONDS: i64 = 5;
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECONDS: i64 = 5;
/// The longest interval a grant grows to: a device that keeps polling too fast is slowed,
/// never locked out for longer than its code lives.
pub const MAX_POLL_INTERVAL_SECONDS: i64 = 60;

/// The characters of a user code: upper-case consonants, no vowels (no words) and no
/// look-alikes (RFC 8628 §6.1's example).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code: 20^8 ≈ 2.6 × 10^10 codes.
pub const USER_CODE_LEN: usize = 8;

/// User codes entered (on the page or in a link) from one source address in a window of
/// [`USER_CODE_WINDOW_SECONDS`]: enough for a few people behind one address to make
/// mistakes, too few to guess with.
pub const USER_CODE_LOOKUPS_PER_SOURCE: u32 = 60;
/// User codes entered from all addresses together in a window. Every pending code lives
/// one window, so whatever the number of attackers, a code faces at most this many
/// guesses in its life: a chance below 10^-6 (20,000 / 20^8) of being found.
pub const USER_CODE_LOOKUPS_IN_TOTAL: u32 = 20_000;
/// The windows' length: a device code's life.
pub const USER_CODE_WINDOW_SECONDS: i64 = DEVICE_CODE_TTL_SECONDS;

/// A user code: [`USER_CODE_LEN`] characters of [`USER_CODE_ALPHABET`], shown as
/// `XXXX-XXXX`. It only names a pending grant for the user's browser; what the device
/// polls with is the device code.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode([REDACTED])")
    }
}

impl UserCode {
    /// A new code from the operating system's random source, each character uniform.
    pub fn generate() -> Self {
        let mut code = String::with_capacity(USER_CODE_LEN);
        let mut rng = rand::rngs::OsRng;
        while code.len() < USER_CODE_LEN {
            let mut byte = [0u8; 1];
            rng.fill_bytes(&mut byte);
            // 240 is the largest multiple of 20 below 256: no character is likelier.
            if byte[0] < 240 {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(byte[0] % 20)]));
            }
        }
        Self(code)
    }

    /// A code as a person typed it: case, spaces and dashes do not matter. `None` if it
    /// cannot be one.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > 4 * USER_CODE_LEN {
            return None;
        }
        let code: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid =
            code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (head, tail) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{head}-{tail}")
    }

    /// How the store knows it.
    pub fn hash(&self) -> TokenHash {
        let mut hasher = Sha256::new();
        hasher.update(b"device user code v1\0");
        hasher.update(self.0.as_bytes());
        TokenHash(hasher.finalize().into())
    }
}

/// Where a grant stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    /// Waiting for the user.
    Pending,
    /// Allowed by `user_id` (at `email`), signed in on the browser session `family_id`.
    Approved {
        user_id: Uuid,
        email: Email,
        family_id: Uuid,
    },
    /// The user said no.
    Denied,
    /// Its tokens went to the device: the device code is spent.
    Issued,
}

impl DeviceState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved { .. } => "approved",
            Self::Denied => "denied",
            Self::Issued => "issued",
        }
    }
}

/// A device authorization as stored: the device code's hash, its user code's, and what the
/// device asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    pub hash: TokenHash,
    pub user_code: TokenHash,
    pub client_id: ClientId,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Seconds the device must wait between polls.
    pub interval: i64,
    /// The last poll counted, Unix milliseconds.
    pub last_poll_ms: Option<i64>,
    pub state: DeviceState,
}

impl DeviceGrant {
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at <= now_ms / 1000
    }

    /// Whether a poll at `now_ms` comes sooner than the interval allows.
    pub fn polled_too_soon(&self, now_ms: i64) -> bool {
        self.last_poll_ms
            .is_some_and(|last| now_ms - last < self.interval * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_shown_in_two_halves() {
        for _ in 0..200 {
            let code = UserCode::generate();
            let shown = code.display();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert!(
                shown
                    .bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| USER_CODE_ALPHABET.contains(&b))
            );
            assert_eq!(UserCode::parse(&shown), Some(code));
        }
    }

    #[test]
    fn typing_is_forgiven_but_other_characters_are_not() {
        let code = UserCode::parse("BCDF-GHJK").unwrap();
        assert_eq!(UserCode::parse("bcdf ghjk"), Some(code.clone()));
        assert_eq!(UserCode::parse(" bcdfghjk\n"), Some(code.clone()));
        assert_eq!(code.hash(), UserCode::parse("BCDFGHJK").unwrap().hash());
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "BCDF-GHJ0",
            "ACDF-GHJK",
            "BCDF-GHJÄ",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad}");
        }
        assert_eq!(UserCode::parse(&"B".repeat(100)), None);
        assert_eq!(format!("{code:?}"), "UserCode([REDACTED])");
    }

    #[test]
    fn every_character_of_the_alphabet_turns_up() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(UserCode::generate().0.into_bytes());
        }
        assert_eq!(seen.len(), USER_CODE_ALPHABET.len());
    }

    #[test]
    fn a_poll_inside_the_interval_is_too_soon() {
        let grant = DeviceGrant {
            hash: TokenHash([1; 32]),
            user_code: TokenHash([2; 32]),
            client_id: ClientId::generate(),
            scope: "openid".into(),
            expires_at: 1_000,
            interval: 5,
            last_poll_ms: Some(100_000),
            state: DeviceState::Pending,
        };
        assert!(grant.polled_too_soon(104_999));
        assert!(!grant.polled_too_soon(105_000));
        assert!(!grant.expired(999_999));
        assert!(grant.expired(1_000_000));
    }
}
