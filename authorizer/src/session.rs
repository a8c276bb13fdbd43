//! Session checks (`AUTHORIZER_CHECK_SESSION=true`): a valid token is refused once its
//! session has ended, its user is disabled or deleted.
//!
//! This crate knows neither DynamoDB nor auth-api's table: a [`SessionLookup`] answers for a
//! token's session (the `session-authorizer` binary reads the table; local-api reads its own
//! store). Answers are kept for at most `AUTHORIZER_SESSION_CACHE_SECONDS` per warm process,
//! so a revocation reaches protected routes within that plus API Gateway's own cache TTL.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::config::{self, ConfigError, Env};
use shared::{AccessClaims, Clock};

/// `AUTHORIZER_SESSION_CACHE_SECONDS` unless set.
pub const DEFAULT_SESSION_CACHE_SECONDS: u64 = 10;
/// Longer would stretch the revocation bound past what the setting is for.
pub const MAX_SESSION_CACHE_SECONDS: u64 = 300;
/// At most this many sessions are remembered; past it, the cache starts afresh.
pub const SESSION_CACHE_CAPACITY: usize = 4096;
/// The longest a session lookup may take before the token is refused. The DynamoDB client
/// gives up sooner (2.5 s over its attempts); this bounds any lookup.
pub const SESSION_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What the session store says of a token's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Live,
    /// Refused, with the reason logged (`session_revoked`, `user_disabled`, …).
    Ended(&'static str),
}

/// The session store could not answer (unavailable, timed out, corrupt item).
#[derive(Debug, thiserror::Error)]
#[error("the session check failed")]
pub struct LookupError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Answers for a token's session.
pub trait SessionLookup: Sync {
    /// The standing of session `sid` of the token's user (`claims.sub`, `claims.email`).
    fn standing(
        &self,
        claims: &AccessClaims,
        sid: &str,
    ) -> impl Future<Output = Result<Standing, LookupError>> + Send;

    /// The standing of machine client `client_id`: live while it exists and is enabled.
    fn client_standing(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Standing, LookupError>> + Send;
}

/// `AUTHORIZER_CHECK_SESSION` and `AUTHORIZER_SESSION_CACHE_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCheckSettings {
    pub enabled: bool,
    pub cache_seconds: u64,
}

impl SessionCheckSettings {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: config::flag(env, "AUTHORIZER_CHECK_SESSION")?,
            cache_seconds: config::number(
                env,
                "AUTHORIZER_SESSION_CACHE_SECONDS",
                DEFAULT_SESSION_CACHE_SECONDS,
                0,
                MAX_SESSION_CACHE_SECONDS,
            )?,
        })
    }
}

/// The session check's warm-process state: recent answers, and the time.
#[derive(Debug)]
pub struct SessionCheck {
    ttl_ms: i64,
    clock: Arc<dyn Clock>,
    /// `sub/sid` → (until, standing).
    answers: Mutex<HashMap<String, (i64, Standing)>>,
}

impl SessionCheck {
    pub fn new(cache_seconds: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            // At most MAX_SESSION_CACHE_SECONDS.
            ttl_ms: i64::try_from(cache_seconds.min(MAX_SESSION_CACHE_SECONDS)).unwrap_or(0) * 1000,
            clock,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// The standing of the token's session: remembered if asked within the TTL, else looked
    /// up, within [`SESSION_CHECK_TIMEOUT`]. `Ok((standing, from the cache))`.
    pub async fn standing<L: SessionLookup>(
        &self,
        lookup: &L,
        claims: &AccessClaims,
        sid: &str,
    ) -> Result<(Standing, bool), LookupError> {
        let key = format!("{}/{sid}", claims.sub);
        self.remembered(key, lookup.standing(claims, sid)).await
    }

    /// The standing of a machine client's token: its client, remembered like a session
    /// (so a disabled or deleted client is refused within the same bound).
    pub async fn client_standing<L: SessionLookup>(
        &self,
        lookup: &L,
        client_id: &str,
    ) -> Result<(Standing, bool), LookupError> {
        // `client/` cannot begin a user's key: those begin with a UUID.
        let key = format!("client/{client_id}");
        self.remembered(key, lookup.client_standing(client_id))
            .await
    }

    async fn remembered(
        &self,
        key: String,
        lookup: impl Future<Output = Result<Standing, LookupError>>,
    ) -> Result<(Standing, bool), LookupError> {
        let now = self.clock.now_ms();
        if self.ttl_ms > 0 {
            let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((until, standing)) = answers.get(&key)
                && *until > now
            {
                return Ok((*standing, true));
            }
        }
        let standing = tokio::time::timeout(SESSION_CHECK_TIMEOUT, lookup)
            .await
            .map_err(|elapsed| LookupError(Box::new(elapsed)))??;
        if self.ttl_ms > 0 {
            let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
            if answers.len() >= SESSION_CACHE_CAPACITY {
                answers.retain(|_, (until, _)| *until > now);
                if answers.len() >= SESSION_CACHE_CAPACITY {
                    answers.clear();
                }
            }
            answers.insert(key, (now + self.ttl_ms, standing));
        }
        Ok((standing, false))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use shared::ManualClock;

    use super::*;

    /// A lookup that counts its calls and answers what it is told; the real ones (the store's)
    /// are tested over both stores in tests/tests/it/revocation.rs.
    struct Scripted {
        calls: AtomicU64,
        answer: Mutex<Result<Standing, ()>>,
        delay: Duration,
    }

    impl Scripted {
        fn new(answer: Result<Standing, ()>) -> Self {
            Self {
                calls: AtomicU64::new(0),
                answer: Mutex::new(answer),
                delay: Duration::ZERO,
            }
        }
        fn answer(&self, answer: Result<Standing, ()>) {
            *self.answer.lock().unwrap() = answer;
        }
    }

    impl SessionLookup for Scripted {
        async fn standing(&self, _: &AccessClaims, _: &str) -> Result<Standing, LookupError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let answer = *self.answer.lock().unwrap();
            answer.map_err(|()| LookupError("store down".into()))
        }

        async fn client_standing(&self, _: &str) -> Result<Standing, LookupError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = *self.answer.lock().unwrap();
            answer.map_err(|()| LookupError("store down".into()))
        }
    }

    fn claims(sub: &str) -> AccessClaims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://auth.example", "aud": "api", "sub": sub, "email": "a@example.com",
            "roles": ["user"], "iat": 0, "nbf": 0, "exp": 1, "jti": "j", "sid": "s"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn answers_are_kept_for_the_ttl_per_user_and_session_then_asked_again() {
        let clock = ManualClock::at(1_000_000);
        let check = SessionCheck::new(10, Arc::new(clock.clone()));
        let lookup = Scripted::new(Ok(Standing::Live));
        let ada = claims("ada");
        assert_eq!(
            check.standing(&lookup, &ada, "s1").await.unwrap(),
            (Standing::Live, false)
        );
        lookup.answer(Ok(Standing::Ended("session_revoked")));
        clock.advance_ms(9_999);
        assert_eq!(
            check.standing(&lookup, &ada, "s1").await.unwrap(),
            (Standing::Live, true)
        );
        // Another session, or the same id under another subject, is asked for anew.
        assert_eq!(
            check.standing(&lookup, &ada, "s2").await.unwrap().0,
            Standing::Ended("session_revoked")
        );
        let (_, cached) = check.standing(&lookup, &claims("bob"), "s1").await.unwrap();
        assert!(!cached);
        clock.advance_ms(1);
        assert_eq!(
            check.standing(&lookup, &ada, "s1").await.unwrap(),
            (Standing::Ended("session_revoked"), false)
        );
        assert_eq!(lookup.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_client_is_remembered_apart_from_any_session() {
        let clock = ManualClock::at(0);
        let check = SessionCheck::new(10, Arc::new(clock.clone()));
        let lookup = Scripted::new(Ok(Standing::Live));
        assert_eq!(
            check.client_standing(&lookup, "svc").await.unwrap(),
            (Standing::Live, false)
        );
        lookup.answer(Ok(Standing::Ended("client_disabled")));
        assert_eq!(
            check.client_standing(&lookup, "svc").await.unwrap(),
            (Standing::Live, true)
        );
        clock.advance_ms(10_000);
        assert_eq!(
            check.client_standing(&lookup, "svc").await.unwrap(),
            (Standing::Ended("client_disabled"), false)
        );
    }

    #[tokio::test]
    async fn a_zero_ttl_asks_every_time_and_failures_are_never_kept() {
        let check = SessionCheck::new(0, Arc::new(ManualClock::at(0)));
        let lookup = Scripted::new(Ok(Standing::Live));
        for _ in 0..3 {
            check.standing(&lookup, &claims("ada"), "s").await.unwrap();
        }
        assert_eq!(lookup.calls.load(Ordering::SeqCst), 3);

        let check = SessionCheck::new(10, Arc::new(ManualClock::at(0)));
        lookup.answer(Err(()));
        assert!(check.standing(&lookup, &claims("ada"), "s").await.is_err());
        lookup.answer(Ok(Standing::Live));
        assert_eq!(
            check.standing(&lookup, &claims("ada"), "s").await.unwrap(),
            (Standing::Live, false)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_hangs_is_a_failure_at_the_bound() {
        let check = SessionCheck::new(10, Arc::new(ManualClock::at(0)));
        let mut lookup = Scripted::new(Ok(Standing::Live));
        lookup.delay = Duration::from_secs(3600);
        let started = tokio::time::Instant::now();
        assert!(check.standing(&lookup, &claims("ada"), "s").await.is_err());
        assert_eq!(started.elapsed(), SESSION_CHECK_TIMEOUT);
    }
}
