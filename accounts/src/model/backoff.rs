//! Login backoff: how many password checks an email may get, and from where.
//!
//! Two counters, both counted **before** bcrypt runs, so that however many requests arrive at
//! once, no more password checks run than the counters allow:
//! - a strict one per (email, source address): [`BACKOFF_THRESHOLD`] checks, then a lock of
//!   1 s that doubles with each further failure up to [`BACKOFF_CAP_MS`]. A success resets it.
//!   An attacker at one address cannot lock the owner out at another.
//! - a loose one per email: at most [`EMAIL_FAILURE_LIMIT`] failed checks in a
//!   [`EMAIL_WINDOW_SECONDS`] window from addresses the account has not signed in from, against
//!   attacks spread over many addresses. Addresses with a recent successful sign-in
//!   ([`TRUSTED_SOURCES`] of them) are exempt, so the owner keeps signing in from home.
//!
//! Unknown emails are counted exactly like known ones (no user, so no trusted address).

use std::fmt;

/// Password checks per (email, source) before the lock starts.
pub const BACKOFF_THRESHOLD: u32 = 5;
/// Longest lock.
pub const BACKOFF_CAP_MS: i64 = 15 * 60 * 1000;
/// A per-source record is forgotten a day after its last counted check.
pub const ATTEMPTS_TTL_SECONDS: i64 = 24 * 60 * 60;
/// Failed checks per email and window from addresses it has not signed in from.
pub const EMAIL_FAILURE_LIMIT: u32 = 100;
/// Length of the per-email window.
pub const EMAIL_WINDOW_SECONDS: i64 = 24 * 60 * 60;
/// How many recent sign-in addresses a user keeps as trusted.
pub const TRUSTED_SOURCES: usize = 5;

/// Where a password guess comes from: the client address API Gateway saw
/// (`requestContext.identity.sourceIp`, or `requestContext.http.sourceIp` for payload 2.0).
/// Never `X-Forwarded-For`, which the client writes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Source(String);

impl Source {
    /// A source from an address text: kept only if it looks like an IPv4 or IPv6 address, so
    /// that it can go into a key.
    pub fn new(ip: &str) -> Self {
        let ip = ip.trim();
        let plausible = !ip.is_empty()
            && ip.len() <= 45
            && ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':');
        Self(if plausible {
            ip.to_ascii_lowercase()
        } else {
            "unknown".to_owned()
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Source").field(&self.0).finish()
    }
}

/// Counted password checks for one (email, source), as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginAttempts {
    pub failures: u32,
    /// Unix milliseconds until which checks are refused.
    pub locked_until_ms: Option<i64>,
    /// Unix seconds after which the record is void (0: no record). DynamoDB deletes expired
    /// items lazily, up to days late, so expiry is checked here too.
    pub expires_at: i64,
}

/// The answer to "may this password check run?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It may, and this is the record with it counted.
    Admitted(LoginAttempts),
    /// Not before this many seconds.
    Refused { retry_after_seconds: u64 },
}

impl LoginAttempts {
    /// The record as it stands at `now_ms`: an expired one counts as none.
    pub fn current(self, now_ms: i64) -> Self {
        if self.expires_at * 1000 <= now_ms {
            Self::default()
        } else {
            self
        }
    }

    /// Whether a check may run at `now_ms`, and the record with it counted.
    pub fn admit(self, now_ms: i64) -> Admission {
        let current = self.current(now_ms);
        if let Some(until) = current.locked_until_ms.filter(|until| *until > now_ms) {
            return Admission::Refused {
                retry_after_seconds: seconds_until(until, now_ms),
            };
        }
        let failures = current.failures.saturating_add(1);
        Admission::Admitted(Self {
            failures,
            locked_until_ms: Self::lock_after(failures, now_ms).or(current.locked_until_ms),
            expires_at: now_ms / 1000 + ATTEMPTS_TTL_SECONDS,
        })
    }

    /// The lock that `failures` counted checks earn, from `now_ms`: none below the threshold,
    /// then 1 s doubling per check up to 15 minutes.
    pub fn lock_after(failures: u32, now_ms: i64) -> Option<i64> {
        let over = failures.checked_sub(BACKOFF_THRESHOLD)?;
        let delay = 1000_i64.checked_shl(over.min(20)).unwrap_or(BACKOFF_CAP_MS);
        Some(now_ms + delay.min(BACKOFF_CAP_MS))
    }
}

/// A count in a fixed time window (failed checks of one email, mails sent to one address,
/// token checks from one address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Counted in this window, the current one included.
    pub count: u32,
    /// Unix seconds when the window ends.
    pub window_ends: i64,
}

impl Window {
    /// `Some(retry after)` once the window holds more than `limit`.
    pub fn over(&self, limit: u32, now_ms: i64) -> Option<u64> {
        (self.count > limit).then(|| seconds_until(self.window_ends * 1000, now_ms))
    }
}

/// Whole seconds from `now_ms` to `until_ms`, at least 1.
pub(crate) fn seconds_until(until_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_424_047_000;

    #[test]
    fn the_lock_starts_at_the_threshold_and_doubles_to_the_cap() {
        assert_eq!(LoginAttempts::lock_after(4, NOW), None);
        assert_eq!(LoginAttempts::lock_after(5, NOW), Some(NOW + 1_000));
        assert_eq!(LoginAttempts::lock_after(6, NOW), Some(NOW + 2_000));
        assert_eq!(LoginAttempts::lock_after(14, NOW), Some(NOW + 512_000));
        assert_eq!(
            LoginAttempts::lock_after(15, NOW),
            Some(NOW + BACKOFF_CAP_MS)
        );
        assert_eq!(
            LoginAttempts::lock_after(u32::MAX, NOW),
            Some(NOW + BACKOFF_CAP_MS)
        );
    }

    #[test]
    fn five_checks_are_admitted_then_the_lock_refuses_until_it_runs_out() {
        let mut record = LoginAttempts::default();
        for n in 1..=BACKOFF_THRESHOLD {
            match record.admit(NOW) {
                Admission::Admitted(next) => {
                    assert_eq!(next.failures, n);
                    record = next;
                }
                refused => panic!("check {n} refused: {refused:?}"),
            }
        }
        assert_eq!(record.locked_until_ms, Some(NOW + 1_000));
        assert_eq!(
            record.admit(NOW + 999),
            Admission::Refused {
                retry_after_seconds: 1
            }
        );
        let Admission::Admitted(sixth) = record.admit(NOW + 1_000) else {
            panic!("the lock ran out");
        };
        assert_eq!(sixth.locked_until_ms, Some(NOW + 1_000 + 2_000));
    }

    #[test]
    fn an_expired_record_counts_as_none_even_if_it_is_still_stored() {
        let stale = LoginAttempts {
            failures: 40,
            locked_until_ms: Some(NOW + BACKOFF_CAP_MS),
            expires_at: NOW / 1000,
        };
        assert_eq!(stale.current(NOW), LoginAttempts::default());
        let Admission::Admitted(fresh) = stale.admit(NOW) else {
            panic!("an expired lock does not hold");
        };
        assert_eq!(fresh.failures, 1);
        assert_eq!(fresh.locked_until_ms, None);
    }

    #[test]
    fn sources_are_addresses_or_unknown() {
        assert_eq!(Source::new("203.0.113.7").as_str(), "203.0.113.7");
        assert_eq!(Source::new("2001:DB8::1").as_str(), "2001:db8::1");
        for junk in [
            "",
            "  ",
            "evil#LOGINFAIL",
            "1.2.3.4, 5.6.7.8",
            &"1".repeat(46),
        ] {
            assert_eq!(Source::new(junk).as_str(), "unknown", "{junk:?}");
        }
    }
}
