//! Two-factor sign-in: TOTP (RFC 6238) secrets sealed at rest, codes accepted once, recovery
//! codes kept only as hashes, and the short-lived challenge between a login's two steps.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;

use crate::model::credentials::Email;
use crate::model::token::TokenHash;

/// A TOTP secret's length: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// Seconds per code, digits per code, steps of drift accepted either way: what every
/// authenticator app does by default.
pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u8 = 6;
pub const DRIFT_STEPS: u16 = 1;
/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (base32, 80 bits), shown in groups of four.
const RECOVERY_CHARS: usize = 16;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// How long an enrollment may wait for its first code.
pub const ENROLLMENT_TTL_SECONDS: i64 = 15 * 60;
/// How long the second step of a login may wait.
pub const CHALLENGE_TTL_SECONDS: i64 = 5 * 60;
/// Codes one `mfa_token` is checked against: the last one, if wrong, spends it (a new
/// password step is needed, which the login backoff counts).
pub const CHALLENGE_ATTEMPTS: u32 = 5;
/// Consecutive wrong second-factor codes of an account (TOTP and recovery codes, over every
/// token and address) after which its codes are refused for a while.
pub const MFA_LOCK_THRESHOLD: u32 = 10;
/// The first lock; each further wrong code after a lock doubles it, up to [`MFA_LOCK_CAP_MS`].
pub const MFA_LOCK_FIRST_MS: i64 = 15 * 60 * 1000;
/// The longest lock.
pub const MFA_LOCK_CAP_MS: i64 = 24 * 60 * 60 * 1000;
/// The consecutive count is kept this long after its last code (a right code ends it first).
pub const MFA_ATTEMPTS_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Bytes of an MFA encryption key (AES-256).
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// Binds a sealed secret to its purpose and format version.
const SEAL_CONTEXT: &[u8] = b"auth-api totp secret v1\0";

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("the MFA encryption key must be {KEY_BYTES} bytes, base64-encoded")]
    BadKey,
    #[error("a sealed TOTP secret could not be opened (wrong key, or not this user's)")]
    Unseal,
    #[error("a TOTP secret could not be sealed")]
    Seal,
    #[error("the QR code could not be drawn")]
    Qr,
}

/// The key TOTP secrets are sealed with (`MFA_ENCRYPTION_KEY` or its SSM parameter).
/// `Debug` never shows it.
#[derive(Clone)]
pub struct MfaKey {
    cipher: Aes256Gcm,
    /// A key of its own for [`MfaKey::derive`], unrelated to the sealing key.
    prf: [u8; 32],
}

impl std::fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKey(redacted)")
    }
}

impl MfaKey {
    /// A key from its base64 text (standard alphabet, padding optional).
    pub fn from_base64(text: &str) -> Result<Self, MfaError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| MfaError::BadKey)?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| MfaError::BadKey)?;
        Ok(Self::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; KEY_BYTES]) -> Self {
        let mut prf = Sha256::new();
        prf.update(b"auth-api derived values v1\0");
        prf.update(key);
        Self {
            cipher: Aes256Gcm::new(key.into()),
            prf: prf.finalize().into(),
        }
    }

    /// A fresh random key, for local development and tests.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::from_bytes(&key)
    }

    /// A value only this key's holder can compute for `input`, stable across cold starts
    /// (the decoy passkeys of unknown accounts).
    pub fn derive(&self, input: &[u8]) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.prf);
        hash.update(Sha256::digest(input));
        hash.finalize().into()
    }

    /// `secret` sealed for `user_id`: nonce then ciphertext and tag. The user id is
    /// authenticated data, so a sealed secret copied onto another user does not open.
    pub fn seal(&self, user_id: Uuid, secret: &TotpSecret) -> Result<Vec<u8>, MfaError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = [SEAL_CONTEXT, user_id.as_bytes()].concat();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &secret.0,
                    aad: &aad,
                },
            )
            .map_err(|_| MfaError::Seal)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, user_id: Uuid, sealed: &[u8]) -> Result<TotpSecret, MfaError> {
        if sealed.len() < NONCE_BYTES {
            return Err(MfaError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| MfaError::Unseal)?;
        let aad = [SEAL_CONTEXT, user_id.as_bytes()].concat();
        let secret = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| MfaError::Unseal)?;
        let secret: [u8; SECRET_BYTES] = secret.try_into().map_err(|_| MfaError::Unseal)?;
        Ok(TotpSecret(secret))
    }
}

/// A TOTP secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    pub fn generate() -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self(secret)
    }

    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes)
    }

    fn totp(&self) -> Option<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(DRIFT_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::new(self.0.to_vec().into_boxed_slice()))
            .build()
            .ok()
    }

    /// A secret from its base32 (as [`TotpSecret::base32`] writes it); what an authenticator
    /// app does with the `secret` of an enrollment.
    pub fn from_base32(text: &str) -> Option<Self> {
        let text = text.trim_end_matches('=').to_ascii_uppercase();
        let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &text)?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The secret in base32 (no padding), as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &self.0)
    }

    /// The `otpauth://` URI authenticator apps read from the QR code.
    pub fn otpauth_uri(&self, issuer: &str, account: &Email) -> String {
        let label = format!("{issuer}:{}", account.as_str());
        format!(
            "otpauth://totp/{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(&label),
            self.base32(),
            percent_encode(issuer)
        )
    }

    /// The code at `now` (Unix seconds).
    pub fn code_at(&self, now: i64) -> String {
        self.totp()
            .map(|t| t.generate(u64::try_from(now).unwrap_or(0)).to_string())
            .unwrap_or_default()
    }

    /// The time step `code` belongs to, if it is this secret's code at `now` give or take
    /// one step, and later than `after_step` (a step already used is refused: RFC 6238 §5.2).
    pub fn check(&self, code: &str, now: i64, after_step: u64) -> Option<u64> {
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp()?;
        let now = u64::try_from(now).ok()?;
        let origin = now / STEP_SECONDS;
        // Each step of the window checked, so a code used at step s cannot be replayed as
        // the same code matching s again.
        (origin.saturating_sub(u64::from(DRIFT_STEPS))..=origin + u64::from(DRIFT_STEPS))
            .filter(|step| *step > after_step)
            .find(|step| totp.check(code, step * STEP_SECONDS) == Some(*step))
    }
}

/// What the otpauth URI's label and issuer keep as they are: RFC 3986's unreserved
/// characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// `text` as a QR code, an SVG image in a `data:` URI, ready for an `<img src>`.
pub fn qr_data_uri(text: &str) -> Result<String, MfaError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|_| MfaError::Qr)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg.as_bytes())
    ))
}

/// Fresh recovery codes, as shown to the user (`ABCD-EFGH-JKLM-NPQR`), and their hashes, as
/// stored.
pub fn recovery_codes() -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CHARS];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| char::from(BASE32[usize::from(b % 32)]))
                .collect();
            let shown = chars
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            let hash = recovery_hash(&chars);
            (shown, hash)
        })
        .unzip()
}

/// The stored form of a recovery code: SHA-256 of its 16 characters, hex. 80 random bits
/// each, so a fast hash is enough (no guessing a code from its hash).
fn recovery_hash(normalized: &str) -> String {
    Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A code as the user typed it.
#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    /// Six digits from the authenticator app (spaces dropped).
    Totp(String),
    /// A recovery code, by its hash.
    Recovery(String),
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Code::Totp(_) => "Code::Totp(redacted)",
            Code::Recovery(_) => "Code::Recovery(redacted)",
        })
    }
}

impl Code {
    /// Six digits (spaces allowed), or a recovery code (case, dashes and spaces ignored).
    pub fn parse(input: &str) -> Option<Self> {
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if compact.len() == usize::from(DIGITS) && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Code::Totp(compact));
        }
        let upper = compact.to_ascii_uppercase();
        (upper.len() == RECOVERY_CHARS && upper.bytes().all(|b| BASE32.contains(&b)))
            .then(|| Code::Recovery(recovery_hash(&upper)))
    }
}

/// A user's two-factor state, as stored (sealed; no code in clear).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaState {
    /// The active TOTP secret, sealed. `Some` means two-factor sign-in is on.
    pub secret: Option<Vec<u8>>,
    /// An enrollment waiting for its first code, sealed, and until when (Unix seconds).
    pub pending: Option<(Vec<u8>, i64)>,
    /// The last TOTP time step accepted: no code of it or before is accepted again.
    pub last_step: u64,
    /// Hashes of the unused recovery codes.
    pub recovery: Vec<String>,
    /// Moved on by every write, which is conditional on the value read: of concurrent uses
    /// of one code, or of one recovery code, exactly one succeeds.
    pub revision: u64,
}

impl MfaState {
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// The state after spending `code` at `now`, if it is right: the TOTP step moved on, or
    /// the recovery code gone. `None` when the code is wrong, used, or there is no secret.
    pub fn spend(&self, key: &MfaKey, user_id: Uuid, code: &Code, now: i64) -> Option<Self> {
        let mut next = self.clone();
        match code {
            Code::Totp(digits) => {
                let secret = key.open(user_id, self.secret.as_deref()?).ok()?;
                next.last_step = secret.check(digits, now, self.last_step)?;
            }
            Code::Recovery(hash) => {
                let before = next.recovery.len();
                next.recovery.retain(|h| h != hash);
                if next.recovery.len() == before || self.secret.is_none() {
                    return None;
                }
            }
        }
        Some(next)
    }
}

/// An account's consecutive second-factor codes, counted **before** each is checked (so that
/// parallel guesses cannot outrun the count) and forgotten by a right one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaAttempts {
    /// Codes counted since the last right one.
    pub failures: u32,
    /// Unix milliseconds until which every code is refused.
    pub locked_until_ms: Option<i64>,
    /// Unix seconds after which the record is void (0: no record).
    pub expires_at: i64,
}

/// The answer to "may this code be checked?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaAdmission {
    /// It may, and this is the record with it counted.
    Admitted(MfaAttempts),
    /// The second factor is locked: not before this many seconds.
    Refused { retry_after_seconds: u64 },
}

impl MfaAttempts {
    /// The record as it stands at `now_ms`: an expired one counts as none.
    pub fn current(self, now_ms: i64) -> Self {
        if self.expires_at * 1000 <= now_ms {
            Self::default()
        } else {
            self
        }
    }

    /// Whether a code may be checked at `now_ms`, and the record with it counted. The
    /// [`MFA_LOCK_THRESHOLD`]th counted code sets the lock that holds if it is wrong: 15
    /// minutes, doubling with each further one, up to a day.
    pub fn admit(self, now_ms: i64) -> MfaAdmission {
        let current = self.current(now_ms);
        if let Some(until) = current.locked_until_ms.filter(|until| *until > now_ms) {
            return MfaAdmission::Refused {
                retry_after_seconds: crate::model::backoff::seconds_until(until, now_ms),
            };
        }
        let failures = current.failures.saturating_add(1);
        MfaAdmission::Admitted(Self {
            failures,
            locked_until_ms: Self::lock_after(failures, now_ms).or(current.locked_until_ms),
            expires_at: now_ms / 1000 + MFA_ATTEMPTS_TTL_SECONDS,
        })
    }

    /// The lock that `failures` counted codes earn from `now_ms`, should the last be wrong.
    pub fn lock_after(failures: u32, now_ms: i64) -> Option<i64> {
        let over = failures.checked_sub(MFA_LOCK_THRESHOLD)?;
        let lock = MFA_LOCK_FIRST_MS
            .checked_shl(over.min(20))
            .unwrap_or(MFA_LOCK_CAP_MS)
            .min(MFA_LOCK_CAP_MS);
        Some(now_ms + lock)
    }

    /// Whether this admitted record is the one whose wrong code starts the first lock (the
    /// owner is mailed then, once).
    pub fn starts_lock(&self) -> bool {
        self.failures == MFA_LOCK_THRESHOLD
    }
}

/// The second step of a login, waiting for a code: found by the hash of the `mfa_token`
/// handed out by the password step, bound to the user as they were then (id and session
/// epoch), single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub hash: TokenHash,
    pub user_id: Uuid,
    pub email: Email,
    pub epoch: u64,
    /// Unix seconds.
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the 20-byte ASCII secret "12345678901234567890"; the
    /// RFC's 8-digit values, of which a 6-digit code is the last six.
    #[test]
    fn ten_wrong_codes_lock_the_second_factor_for_15_minutes_doubling_to_a_day() {
        const NOW: i64 = 1_900_000_000_000;
        let mut record = MfaAttempts::default();
        for n in 1..=MFA_LOCK_THRESHOLD {
            let MfaAdmission::Admitted(next) = record.admit(NOW) else {
                panic!("code {n} refused");
            };
            assert_eq!(next.starts_lock(), n == MFA_LOCK_THRESHOLD);
            record = next;
        }
        assert_eq!(record.locked_until_ms, Some(NOW + MFA_LOCK_FIRST_MS));
        assert_eq!(
            record.admit(NOW + MFA_LOCK_FIRST_MS - 1),
            MfaAdmission::Refused {
                retry_after_seconds: 1
            }
        );
        let MfaAdmission::Admitted(eleventh) = record.admit(NOW + MFA_LOCK_FIRST_MS) else {
            panic!("the lock ran out");
        };
        assert_eq!(
            eleventh.locked_until_ms,
            Some(NOW + MFA_LOCK_FIRST_MS + 2 * MFA_LOCK_FIRST_MS)
        );
        assert!(!eleventh.starts_lock());
        assert_eq!(
            MfaAttempts::lock_after(MFA_LOCK_THRESHOLD + 7, NOW),
            Some(NOW + MFA_LOCK_CAP_MS)
        );
        assert_eq!(
            MfaAttempts::lock_after(u32::MAX, NOW),
            Some(NOW + MFA_LOCK_CAP_MS)
        );
        assert_eq!(MfaAttempts::lock_after(MFA_LOCK_THRESHOLD - 1, NOW), None);
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        for (time, rfc) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.code_at(time), rfc[2..], "at {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_way_and_never_twice() {
        let secret = TotpSecret::generate();
        let now = 1_900_000_000;
        let step = (now as u64) / STEP_SECONDS;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let code = secret.code_at(now + offset);
            let matched = secret.check(&code, now, 0);
            assert_eq!(matched.is_some(), accepted, "offset {offset}");
        }
        let code = secret.code_at(now);
        assert_eq!(secret.check(&code, now, 0), Some(step));
        assert_eq!(
            secret.check(&code, now, step),
            None,
            "replay of a used step"
        );
        // An older code after a newer one was used: refused too.
        let previous = secret.code_at(now - 30);
        assert_eq!(secret.check(&previous, now, step), None);
        for bad in ["", "12345", "1234567", "abcdef", "12 345"] {
            assert_eq!(secret.check(bad, now, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_for_their_user() {
        let key = MfaKey::generate();
        let user = Uuid::new_v4();
        let secret = TotpSecret::generate();
        let sealed = key.seal(user, &secret).unwrap();
        assert!(
            !sealed.windows(SECRET_BYTES).any(|w| w == secret.0),
            "the secret is not in the sealed bytes"
        );
        assert_eq!(key.open(user, &sealed).unwrap(), secret);
        assert!(key.open(Uuid::new_v4(), &sealed).is_err(), "another user");
        assert!(
            MfaKey::generate().open(user, &sealed).is_err(),
            "another key"
        );
        let mut tampered = sealed.clone();
        tampered[NONCE_BYTES] ^= 1;
        assert!(key.open(user, &tampered).is_err());
        assert!(key.open(user, &sealed[..5]).is_err());
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(MfaKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        for bad in ["", "not base64!", &STANDARD.encode([7u8; 16])] {
            assert!(MfaKey::from_base64(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{:?}", MfaKey::generate()), "MfaKey(redacted)");
        assert_eq!(
            format!("{:?}", TotpSecret::generate()),
            "TotpSecret(redacted)"
        );
    }

    #[test]
    fn recovery_codes_are_parsed_loosely_and_stored_as_hashes() {
        let (shown, hashes) = recovery_codes();
        assert_eq!(shown.len(), RECOVERY_CODES);
        assert_eq!(shown[0].len(), 19);
        let typed = shown[0].to_ascii_lowercase().replace('-', " ");
        assert_eq!(Code::parse(&typed), Some(Code::Recovery(hashes[0].clone())));
        assert!(!hashes[0].contains(&shown[0].replace('-', "")));
        assert_eq!(Code::parse("123 456"), Some(Code::Totp("123456".into())));
        assert_eq!(Code::parse("12345"), None);
        assert_eq!(Code::parse("!!!!-!!!!-!!!!-!!!!"), None);
    }

    #[test]
    fn spending_moves_the_step_on_or_removes_the_recovery_code() {
        let key = MfaKey::generate();
        let user = Uuid::new_v4();
        let secret = TotpSecret::generate();
        let (shown, hashes) = recovery_codes();
        let state = MfaState {
            secret: Some(key.seal(user, &secret).unwrap()),
            recovery: hashes,
            ..MfaState::default()
        };
        let now = 1_900_000_000;
        let code = Code::parse(&secret.code_at(now)).unwrap();
        let after = state.spend(&key, user, &code, now).unwrap();
        assert_eq!(after.last_step, now as u64 / STEP_SECONDS);
        assert!(after.spend(&key, user, &code, now).is_none(), "replay");
        let recovery = Code::parse(&shown[3]).unwrap();
        let after = after.spend(&key, user, &recovery, now).unwrap();
        assert_eq!(after.recovery.len(), RECOVERY_CODES - 1);
        assert!(
            after.spend(&key, user, &recovery, now).is_none(),
            "single use"
        );
    }

    #[test]
    fn the_otpauth_uri_and_qr_code_are_what_apps_read() {
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        let email = Email::parse("ada@example.com").unwrap();
        assert_eq!(
            TotpSecret::from_base32(&secret.base32()),
            Some(secret.clone())
        );
        assert_eq!(TotpSecret::from_base32("not base32!"), None);
        let uri = secret.otpauth_uri("Serverless Auth", &email);
        assert_eq!(
            uri,
            "otpauth://totp/Serverless%20Auth%3Aada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Serverless%20Auth&algorithm=SHA1&digits=6&period=30"
        );
        let qr = qr_data_uri(&uri).unwrap();
        let svg = STANDARD
            .decode(qr.strip_prefix("data:image/svg+xml;base64,").unwrap())
            .unwrap();
        assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    }
}
