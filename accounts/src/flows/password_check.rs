//! A password check under the login backoff: counted before bcrypt runs, judged after. Used
//! by sign-in, by the second step of sign-in, and by every change that asks for the password
//! again.

use secrecy::SecretString;

use super::{Accounts, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::backoff::{
    Admission, BACKOFF_THRESHOLD, EMAIL_FAILURE_LIMIT, LoginAttempts, Source,
};
use crate::model::client::{Caller, Client};
use crate::model::credentials::Email;
use crate::model::event::{AccountEvent, EventType};
use crate::model::session::{RefreshRecord, SessionFamily};
use crate::model::user::UserRecord;
use crate::store::{Store, StoreError};

/// A password check the backoff let through: what to undo or report once its result is known.
pub struct PasswordCheck {
    email: Email,
    source: Source,
    attempts: LoginAttempts,
    email_counted: bool,
}

impl PasswordCheck {
    /// Counts the check **before** bcrypt runs (so that parallel guesses cannot outrun the
    /// counters): first per (email, source), then, unless the user signed in from this source
    /// lately, per email. `TooManyAttempts` when either refuses.
    pub async fn admit<S: Store>(
        accounts: &Accounts<S>,
        email: &Email,
        user: Option<&UserRecord>,
        seen: LoginAttempts,
        client: &Client,
        now_ms: i64,
    ) -> Result<Self, Error> {
        let admission = accounts
            .store
            .admit_login_attempt(email, client.source(), seen, now_ms)
            .await?;
        Self::admitted(accounts, email, user, admission, client, now_ms).await
    }

    /// Judges a check the store has counted (`admission`): refused, or, unless the user signed
    /// in from this source lately, counted per email too.
    pub async fn admitted<S: Store>(
        accounts: &Accounts<S>,
        email: &Email,
        user: Option<&UserRecord>,
        admission: Admission,
        client: &Client,
        now_ms: i64,
    ) -> Result<Self, Error> {
        let source = client.source().clone();
        let attempts = match admission {
            Admission::Admitted(attempts) => attempts,
            Admission::Refused {
                retry_after_seconds,
            } => {
                return Err(Error::TooManyAttempts {
                    retry_after_seconds,
                });
            }
        };
        let trusted = user.is_some_and(|u| u.trusts(&source));
        if !trusted {
            let window = accounts.store.count_email_failure(email, now_ms).await?;
            if let Some(retry_after_seconds) = window.over(EMAIL_FAILURE_LIMIT, now_ms) {
                if window.count == EMAIL_FAILURE_LIMIT + 1 {
                    let user_id = user.map(|u| u.user_id.to_string());
                    audit(Event::EmailLimitReached, user_id.as_deref(), client);
                }
                return Err(Error::TooManyAttempts {
                    retry_after_seconds,
                });
            }
        }
        Ok(Self {
            email: email.clone(),
            source,
            attempts,
            email_counted: !trusted,
        })
    }

    /// The check failed: it stays counted. Audits `backoff_started` when it was the one that
    /// starts the lock.
    /// An account's lock also emits `login.locked`.
    pub async fn failed<S: Store>(
        &self,
        accounts: &Accounts<S>,
        user_id: Option<&str>,
        client: &Client,
    ) {
        if self.attempts.failures == BACKOFF_THRESHOLD {
            audit(Event::BackoffStarted, user_id, client);
            if let Some(id) = user_id.and_then(|id| uuid::Uuid::parse_str(id).ok()) {
                accounts
                    .emit(&AccountEvent::user(EventType::LoginLocked, id))
                    .await;
            }
        }
    }

    /// The check succeeded: the source's record is forgotten and the email's window gets this
    /// check back.
    pub async fn succeeded<S: Store>(
        &self,
        accounts: &Accounts<S>,
        now_ms: i64,
    ) -> Result<(), Error> {
        accounts
            .store
            .forget_login_failures(&self.email, &self.source, self.email_counted, now_ms)
            .await
            .map_err(Error::from)
    }

    /// The check succeeded at sign-in: as [`PasswordCheck::succeeded`], and the source joins
    /// the user's latest sign-in addresses (one write, only when it is not the latest already).
    pub async fn signed_in<S: Store>(
        &self,
        accounts: &Accounts<S>,
        user: &UserRecord,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.forget_and_trust(accounts, user, self.email_counted, now_ms)
            .await
    }

    /// The check succeeded at sign-in and `family` (with its first token `record`) is the new
    /// session: one write starts it, forgets the source's failed checks and, when the source
    /// is not the latest, makes it one of the user's trusted sources; the email's window gets
    /// this check back alongside. A write that meets a concurrent one (another sign-in of the
    /// same user) falls back to one call each.
    pub async fn start_session<S: Store>(
        &self,
        accounts: &Accounts<S>,
        user: &UserRecord,
        family: &SessionFamily,
        record: &RefreshRecord,
        now_ms: i64,
    ) -> Result<(), Error> {
        let trusted = user.trusted_sources_with(&self.source);
        let start = async {
            match accounts
                .store
                .start_signed_in_session(user, family, record, &self.source, trusted.as_deref())
                .await
            {
                Err(StoreError::Conflict) => {
                    let (started, cleaned) = tokio::join!(
                        accounts.store.start_session(family, record),
                        self.forget_and_trust(accounts, user, false, now_ms),
                    );
                    started?;
                    cleaned
                }
                other => other.map_err(Error::from),
            }
        };
        let take_back = async {
            if self.email_counted {
                accounts
                    .store
                    .take_back_email_failure(&self.email, now_ms)
                    .await?;
            }
            Ok::<(), Error>(())
        };
        let (started, taken_back) = tokio::join!(start, take_back);
        started?;
        taken_back
    }

    /// Forgets the source's failed checks (and, if `email_counted`, gives the email's window
    /// this check back) while the source joins the user's trusted ones: a call each.
    async fn forget_and_trust<S: Store>(
        &self,
        accounts: &Accounts<S>,
        user: &UserRecord,
        email_counted: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        let trust = async {
            match user.trusted_sources_with(&self.source) {
                Some(sources) => accounts
                    .store
                    .set_trusted_sources(user, &sources)
                    .await
                    .map_err(Error::from),
                None => Ok(()),
            }
        };
        let forget =
            accounts
                .store
                .forget_login_failures(&self.email, &self.source, email_counted, now_ms);
        let (forgotten, trusted) = tokio::join!(forget, trust);
        forgotten.map_err(Error::from)?;
        trusted
    }

    /// The caller's account, read with its failed-login record for a check to be counted
    /// (`admit`): `UserNotFound` if it is gone (or its email is another user's now),
    /// `AccountDisabled` if disabled.
    pub async fn caller_account<S: Store>(
        accounts: &Accounts<S>,
        caller: &Caller,
        client: &Client,
    ) -> Result<(UserRecord, LoginAttempts), Error> {
        let (user, seen) = accounts
            .store
            .find_user_for_login(&caller.email, client.source())
            .await?;
        let user = user
            .filter(|u| u.user_id == caller.user_id)
            .ok_or(Error::UserNotFound)?;
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        Ok((user, seen))
    }

    /// The caller's own password, checked again before a sensitive change (password change,
    /// account deletion, two-factor changes), with the login backoff so a stolen access token
    /// cannot guess it: the user as read and the counted check, once `password` matched. A
    /// disabled account is refused first; a wrong password is audited as `failed_event`,
    /// counted, and answered with `wrong`.
    pub async fn confirm_caller<S: Store>(
        accounts: &Accounts<S>,
        caller: &Caller,
        client: &Client,
        password: SecretString,
        failed_event: Event,
        wrong: Error,
    ) -> Result<(UserRecord, Self, i64), Error> {
        let (user, seen) = Self::caller_account(accounts, caller, client).await?;
        let now_ms = accounts.clock.now_ms();
        let check = Self::admit(accounts, &caller.email, Some(&user), seen, client, now_ms).await?;
        let matched = accounts
            .passwords
            .verify(password, Some(user.password_hash.clone()))
            .await?;
        if !matched {
            let user_id = user.user_id.to_string();
            audit(failed_event, Some(&user_id), client);
            check.failed(accounts, Some(&user_id), client).await;
            return Err(wrong);
        }
        Ok((user, check, now_ms))
    }
}
