//! bcrypt on the blocking pool, and the dummy hash that makes unknown emails cost the same
//! time as wrong passwords.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use secrecy::{ExposeSecret, SecretString};

use crate::model::credentials::{MAX_PASSWORD_BYTES, NewPassword};

/// Lowest cost accepted in production.
pub const MIN_PRODUCTION_COST: u32 = 10;

/// The costliest stored hash a login verifies (the template's highest `BcryptCost`): at
/// 1024 MB one verification at 16 takes seconds, at 31 days. A costlier hash (written by hand
/// or by an old import) is not verified at all: its login fails after a dummy check at the
/// configured cost, and the owner resets the password.
pub const MAX_VERIFIED_COST: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("bcrypt failed: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("bcrypt task did not complete: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes and checks passwords at one bcrypt cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    cost: u32,
    /// A well-formed hash of the configured cost that matches no password anyone can send.
    dummy_hash: String,
    /// bcrypt verifications run so far (shared by clones), for tests and benchmarks that
    /// count the work a request did.
    verifications: Arc<AtomicU64>,
}

impl Passwords {
    /// `cost` must be a valid bcrypt cost (4 to 31).
    pub fn new(cost: u32) -> Result<Self, HashError> {
        // Cost only changes the two digits of the prefix; the work done to verify against
        // this hash is that of `cost`, without paying for a cost-`cost` hash at cold start.
        let cheap = bcrypt::hash_with_salt(b"never a valid password", 4, *b"dummy-hash-salt!")?;
        let dummy_hash = cheap.format_for_version(bcrypt::Version::TwoB);
        let dummy_hash = format!("$2b${cost:02}{}", &dummy_hash[6..]);
        Ok(Self {
            cost,
            dummy_hash,
            verifications: Arc::default(),
        })
    }

    /// The configured cost.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// How many bcrypt verifications have run (unknown emails' dummy checks included).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// `password` (which matched `stored`) hashed at the configured cost, when `stored` has
    /// another cost; `None` when it already has this one.
    pub async fn rehash(
        &self,
        password: SecretString,
        stored: &SecretString,
        legacy: bool,
    ) -> Result<Option<SecretString>, HashError> {
        let stored_cost = bcrypt::HashParts::from_str(stored.expose_secret())?.get_cost();
        if stored_cost == self.cost && !legacy {
            return Ok(None);
        }
        let cost = self.cost;
        let hash =
            tokio::task::spawn_blocking(move || bcrypt::hash(password.expose_secret(), cost))
                .await??;
        Ok(Some(SecretString::from(hash)))
    }

    /// The bcrypt hash of a new password, computed off the async executor.
    pub async fn hash(&self, password: NewPassword) -> Result<SecretString, HashError> {
        let cost = self.cost;
        let hash = tokio::task::spawn_blocking(move || {
            // At most 72 bytes and no NUL (NewPassword's rules), so every byte counts: bcrypt
            // only drops its own trailing NUL terminator at exactly 72 bytes.
            bcrypt::hash(password.secret().expose_secret(), cost)
        })
        .await??;
        Ok(SecretString::from(hash))
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it checks against the
    /// dummy hash so that both cases cost one full bcrypt verification.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<SecretString>,
    ) -> Result<bool, HashError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| SecretString::from(self.dummy_hash.clone()));
        let matched = tokio::task::spawn_blocking(move || {
            let candidate = password.expose_secret().as_bytes();
            // No stored password is longer than 72 bytes or holds a NUL, so such a candidate
            // cannot match; it is still checked (as a stand-in) to take the same time.
            let usable = candidate.len() <= MAX_PASSWORD_BYTES && !candidate.contains(&0);
            let candidate: &[u8] = if usable { candidate } else { b"\x01unusable" };
            bcrypt::verify(candidate, hash.expose_secret()).map(|ok| ok && usable)
        })
        .await??;
        Ok(matched && known)
    }

    /// The dummy hash at `cost` instead of the configured one: verifying against it costs
    /// what a real hash of that cost does.
    fn dummy_at(&self, cost: u32) -> SecretString {
        SecretString::from(format!("$2b${cost:02}{}", &self.dummy_hash[6..]))
    }

    /// A login's check, whose work depends only on the submitted password, never on the
    /// account: one verification at the configured cost (a cheaper stored hash, e.g. an
    /// imported one, is padded with dummy verifications at costs c, c+1, … K−1, which add up
    /// to one at cost K); and, when the password has surrounding white space, a second one —
    /// for an account imported from the Node.js original (`legacy`), whose hashes are of the
    /// trimmed password, against the trimmed password; for anyone else against the dummy.
    pub async fn verify_login(
        &self,
        password: SecretString,
        hash: Option<SecretString>,
        legacy: bool,
    ) -> Result<LoginMatch, HashError> {
        let trimmed = {
            let exact = password.expose_secret();
            let trimmed = exact.trim();
            (trimmed.len() != exact.len()).then(|| SecretString::from(trimmed.to_owned()))
        };
        if self.verify_padded(password, hash.clone()).await? {
            return Ok(LoginMatch::Exact);
        }
        let Some(trimmed) = trimmed else {
            return Ok(LoginMatch::None);
        };
        match hash.filter(|_| legacy) {
            Some(hash) => Ok(if self.verify_padded(trimmed, Some(hash)).await? {
                LoginMatch::Trimmed
            } else {
                LoginMatch::None
            }),
            None => {
                self.verify(trimmed, None).await?;
                Ok(LoginMatch::None)
            }
        }
    }

    /// [`Passwords::verify`], then dummy verifications up to the configured cost when the
    /// stored hash is cheaper.
    async fn verify_padded(
        &self,
        password: SecretString,
        hash: Option<SecretString>,
    ) -> Result<bool, HashError> {
        let stored_cost = hash
            .as_ref()
            .and_then(|h| bcrypt::HashParts::from_str(h.expose_secret()).ok())
            .map_or(self.cost, |parts| parts.get_cost());
        if stored_cost > MAX_VERIFIED_COST.max(self.cost) {
            tracing::warn!(
                stored_cost,
                "a stored password hash is too costly to verify: the login fails; reset the \
                 password"
            );
            self.verify(password, None).await?;
            return Ok(false);
        }
        let matched = self.verify(password, hash).await?;
        for cost in stored_cost.max(4)..self.cost {
            let dummy = self.dummy_at(cost);
            tokio::task::spawn_blocking(move || {
                bcrypt::verify(b"\x01padding", dummy.expose_secret())
            })
            .await??;
        }
        Ok(matched)
    }

    #[cfg(test)]
    fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }
}

/// How a login's password matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMatch {
    /// Exactly as stored.
    Exact,
    /// Only with its surrounding white space trimmed, against a hash imported from the
    /// Node.js original (which trimmed before hashing).
    Trimmed,
    None,
}

impl LoginMatch {
    pub fn matched(self) -> bool {
        self != LoginMatch::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_has_the_configured_cost() {
        for cost in [4, 10, 12, 31] {
            let p = Passwords::new(cost).unwrap();
            assert!(p.dummy_hash().starts_with(&format!("$2b${cost:02}$")));
            assert_eq!(p.dummy_hash().len(), 60);
        }
        // Well-formed: bcrypt does the full work against it and says no.
        let p = Passwords::new(4).unwrap();
        assert!(!bcrypt::verify("never a valid password!", p.dummy_hash()).unwrap());
    }

    #[tokio::test]
    async fn a_password_matches_its_hash_and_nothing_else() {
        let p = Passwords::new(4).unwrap();
        let new = NewPassword::parse("correct horse battery staple".into(), None).unwrap();
        let hash = p.hash(new).await.unwrap();
        assert!(hash.expose_secret().starts_with("$2b$04$"));
        let right = SecretString::from("correct horse battery staple");
        let wrong = SecretString::from("correct horse battery stapl");
        assert!(p.verify(right.clone(), Some(hash.clone())).await.unwrap());
        assert!(!p.verify(wrong, Some(hash)).await.unwrap());
        assert!(!p.verify(right, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_hash_too_costly_to_verify_fails_at_the_configured_cost_instead_of_hanging() {
        let p = Passwords::new(4).unwrap();
        let new = NewPassword::parse("correct horse battery staple".into(), None).unwrap();
        let real = p.hash(new).await.unwrap();
        // The same hash marked cost 31: verifying it would take days.
        let costly = SecretString::from(format!("$2b$31{}", &real.expose_secret()[6..]));
        let started = std::time::Instant::now();
        let outcome = p
            .verify_login(
                SecretString::from("correct horse battery staple"),
                Some(costly),
                false,
            )
            .await
            .unwrap();
        assert_eq!(outcome, LoginMatch::None);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            p.verifications(),
            1,
            "one dummy check, as for a wrong password"
        );
    }

    #[tokio::test]
    async fn a_hash_of_another_cost_is_rehashed_at_the_configured_one() {
        let old = Passwords::new(4).unwrap();
        let new = Passwords::new(5).unwrap();
        let password = "correct horse battery staple";
        let hash = old
            .hash(NewPassword::parse(password.into(), None).unwrap())
            .await
            .unwrap();
        assert!(
            old.rehash(password.into(), &hash, false)
                .await
                .unwrap()
                .is_none()
        );
        let rehashed = new
            .rehash(password.into(), &hash, false)
            .await
            .unwrap()
            .unwrap();
        assert!(rehashed.expose_secret().starts_with("$2b$05$"));
        assert!(new.verify(password.into(), Some(rehashed)).await.unwrap());
        assert_eq!(new.verifications(), 1);
    }

    #[tokio::test]
    async fn a_73_byte_password_does_not_match_its_72_byte_prefix() {
        let p = Passwords::new(4).unwrap();
        let base = "Tr0ub4dor&3-correct-horse-battery-staple-zebra-quantum-violet-9f8e7d6c5b";
        assert_eq!(base.len(), 72);
        let hash = p
            .hash(NewPassword::parse(base.into(), None).unwrap())
            .await
            .unwrap();
        let longer = SecretString::from(format!("{base}X"));
        assert!(!p.verify(longer, Some(hash.clone())).await.unwrap());
        assert!(
            p.verify(SecretString::from(base), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_legacy_hash_also_matches_the_trimmed_password_and_the_work_is_the_input_s() {
        let p = Passwords::new(5).unwrap();
        // The original hashed the trimmed password, at a lower cost.
        let legacy = SecretString::from(bcrypt::hash("hunter2 rocks", 4).unwrap());
        let padded = SecretString::from(" hunter2 rocks ");
        let matched = |password: &SecretString, hash: Option<&SecretString>, is_legacy| {
            let (p, password, hash) = (p.clone(), password.clone(), hash.cloned());
            async move { p.verify_login(password, hash, is_legacy).await.unwrap() }
        };
        assert_eq!(
            matched(&padded, Some(&legacy), true).await,
            LoginMatch::Trimmed
        );
        assert_eq!(
            matched(&"hunter2 rocks".into(), Some(&legacy), true).await,
            LoginMatch::Exact
        );
        // Not for an account that is not legacy: white space is part of a password.
        assert_eq!(
            matched(&padded, Some(&legacy), false).await,
            LoginMatch::None
        );
        assert_eq!(matched(&padded, None, false).await, LoginMatch::None);
        // Two checks for a padded password whoever asks, one for any other.
        let before = p.verifications();
        matched(&padded, None, false).await;
        assert_eq!(p.verifications() - before, 2);
        let before = p.verifications();
        matched(&"wrong".into(), Some(&legacy), true).await;
        assert_eq!(p.verifications() - before, 1);
        // A legacy success asks for a hash of the exact password at the configured cost.
        let rehashed = p
            .rehash(padded.clone(), &legacy, true)
            .await
            .unwrap()
            .unwrap();
        assert!(rehashed.expose_secret().starts_with("$2b$05$"));
        assert!(bcrypt::verify(" hunter2 rocks ", rehashed.expose_secret()).unwrap());
    }
}
