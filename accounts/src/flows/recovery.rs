//! Proving an email address and recovering an account, by a single-use link sent by mail;
//! and the notices that tell an owner what happened to their account.

use std::time::Instant;

use uuid::Uuid;

use super::{Accounts, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::Client;
use crate::model::credentials::{Email, NewPassword};
use crate::model::link::{ActionRecord, ActionToken, Purpose};
use crate::model::user::UserRecord;
use crate::recovery::{MAILS_PER_HOUR, MAILS_PER_MINUTE, Notice, TOKEN_CHECKS_PER_HOUR, compose};
use crate::store::{Store, StoreError};
use shared::metrics::Metric;

impl<S: Store> Accounts<S> {
    /// Issues a `purpose` token to `user` and mails it. A mail that is not sent (SES refusing
    /// or down, or no sender configured) is logged with its cause and audited; it is no error
    /// for the client, who can ask again. Store failures are errors.
    pub(crate) async fn send_token(
        &self,
        user: &UserRecord,
        purpose: Purpose,
        client: &Client,
    ) -> Result<(), Error> {
        if !self.mail_on() {
            let not_sent = match purpose {
                Purpose::VerifyEmail => Event::VerificationNotSent,
                Purpose::ResetPassword => Event::ResetNotSent,
            };
            let user_id = user.user_id.to_string();
            tracing::warn!(
                purpose = purpose.as_str(),
                "mail is off (SES_FROM_ADDRESS is not set): no mail sent"
            );
            audit(not_sent, Some(&user_id), client);
            return Ok(());
        }
        let settings = &self.recovery.settings;
        let (token, record) = ActionRecord::issue(
            user,
            purpose,
            self.clock.now_ms(),
            settings.actions.ttl_seconds(purpose),
        );
        self.store.issue_action(&record).await?;
        self.deliver(user, purpose, &token, client).await;
        Ok(())
    }

    /// Mails `user` the link of `token`, issued for `purpose`. A mail that is not sent is
    /// logged with its cause and audited, never an error: the user can ask again.
    pub(crate) async fn deliver(
        &self,
        user: &UserRecord,
        purpose: Purpose,
        token: &ActionToken,
        client: &Client,
    ) {
        let (sent, not_sent) = match purpose {
            Purpose::VerifyEmail => (Event::VerificationSent, Event::VerificationNotSent),
            Purpose::ResetPassword => (Event::ResetRequested, Event::ResetNotSent),
        };
        let user_id = user.user_id.to_string();
        let mail = compose(&self.recovery.settings, purpose, &user.email, token);
        match self.recovery.mail.send(&mail).await {
            Ok(()) => audit(sent, Some(&user_id), client),
            Err(err) => {
                shared::metrics::count(Metric::MailFailures);
                tracing::error!(
                    purpose = purpose.as_str(),
                    error = %shared::error_chain(&err),
                    "mail not sent"
                );
                audit(not_sent, Some(&user_id), client);
            }
        }
    }

    /// Tells the owner of `to` of `notice`, when mail is on. Best-effort: what happened has
    /// happened; a mail that fails is logged (and audited `notice_not_sent`), never answered.
    pub async fn send_notice(
        &self,
        to: &Email,
        user_id: Option<&str>,
        notice: Notice,
        client: &Client,
    ) {
        if !self.mail_on() {
            return;
        }
        let mail = crate::recovery::compose_notice(&self.recovery.settings, notice, to);
        match self.recovery.mail.send(&mail).await {
            Ok(()) => {
                tracing::info!(notice = notice.as_str(), user_id, "notice sent");
            }
            Err(err) => {
                shared::metrics::count(Metric::MailFailures);
                tracing::error!(
                    notice = notice.as_str(),
                    user_id,
                    error = %shared::error_chain(&err),
                    "notice not sent"
                );
                audit(Event::NoticeNotSent, user_id, client);
            }
        }
    }

    /// Counts a mail to `email` (registered or not, so a refusal says nothing about
    /// existence): `TooManyMails` past one a minute or five an hour.
    pub(crate) async fn admit_mail(&self, email: &Email) -> Result<(), Error> {
        let now_ms = self.clock.now_ms();
        // Per mailbox: ada+1@… and ada+2@… land in one inbox.
        let windows = self.store.count_mail(&email.mailbox(), now_ms).await?;
        let retry_after = windows
            .minute
            .over(MAILS_PER_MINUTE, now_ms)
            .into_iter()
            .chain(windows.hour.over(MAILS_PER_HOUR, now_ms))
            .max();
        match retry_after {
            Some(retry_after_seconds) => Err(Error::TooManyMails {
                retry_after_seconds,
            }),
            None => Ok(()),
        }
    }

    /// Counts a link check from the client's address: `TooManyTokenChecks` past twenty an
    /// hour.
    async fn admit_token_check(&self, client: &Client) -> Result<(), Error> {
        let now_ms = self.clock.now_ms();
        let window = self
            .store
            .count_token_check(client.source(), now_ms)
            .await?;
        match window.over(TOKEN_CHECKS_PER_HOUR, now_ms) {
            Some(retry_after_seconds) => Err(Error::TooManyTokenChecks {
                retry_after_seconds,
            }),
            None => Ok(()),
        }
    }

    /// The live token `text` for `purpose`, with its user: `InvalidActionToken` for anything
    /// else (malformed, unknown, expired, superseded, spent, or for the other purpose).
    async fn live_token(
        &self,
        text: &str,
        purpose: Purpose,
    ) -> Result<(ActionRecord, UserRecord), Error> {
        let token = ActionToken::parse(text).ok_or(Error::InvalidActionToken)?;
        let (record, user) = self
            .store
            .find_action(&token.hash())
            .await?
            .ok_or(Error::InvalidActionToken)?;
        let now_ms = self.clock.now_ms();
        let user = user
            .filter(|u| record.purpose == purpose && record.usable_for(u, now_ms))
            .ok_or(Error::InvalidActionToken)?;
        Ok((record, user))
    }

    /// Spends a verification link: the account's email counts as verified. Its user.
    pub async fn verify_email(&self, token: &str, client: &Client) -> Result<UserRecord, Error> {
        self.admit_token_check(client).await?;
        let (record, user) = self.live_token(token, Purpose::VerifyEmail).await?;
        self.store
            .verify_email(&record)
            .await
            .map_err(spent_or_superseded)?;
        audit(
            Event::EmailVerified,
            Some(&user.user_id.to_string()),
            client,
        );
        Ok(user)
    }

    /// An unverified account at `email` gets a new verification mail (the older link stops
    /// working). Nothing tells whether it did, nor how long it took (see [`Self::mail_if`]).
    pub async fn resend_verification(&self, email: &Email, client: &Client) -> Result<(), Error> {
        self.mail_if(email, Purpose::VerifyEmail, |u| !u.email_verified, client)
            .await
    }

    /// An account at `email` gets a reset mail (the older link stops working). Nothing tells
    /// whether it did, nor how long it took (see [`Self::mail_if`]).
    pub async fn forgot_password(&self, email: &Email, client: &Client) -> Result<(), Error> {
        self.mail_if(email, Purpose::ResetPassword, |_| true, client)
            .await
    }

    /// `email` gets a `purpose` mail if it has an account that `wants` it. The same `Ok`
    /// whatever the address, no sooner than the response floor: a mail sent (a known address)
    /// and none (unknown) take the same time.
    async fn mail_if(
        &self,
        email: &Email,
        purpose: Purpose,
        wants: impl Fn(&UserRecord) -> bool,
        client: &Client,
    ) -> Result<(), Error> {
        let started = Instant::now();
        self.admit_mail(email).await?;
        let (user, _) = self
            .store
            .find_user_for_login(email, client.source())
            .await?;
        // After the lookup, an error would tell a known address from an unknown one: logged
        // only.
        if let Some(user) = user.filter(|u| wants(u))
            && let Err(err) = self.send_token(&user, purpose, client).await
        {
            tracing::error!(
                purpose = purpose.as_str(),
                error = %shared::error_chain(&err),
                "mail not issued"
            );
        }
        let floor = self.recovery.settings.response_floor;
        tokio::time::sleep(floor.saturating_sub(started.elapsed())).await;
        Ok(())
    }

    /// Spends a reset link for `new_password`: the password is replaced, every session ends,
    /// the login backoff is cleared and the email counts as verified (the user read the
    /// mail). A new password the rules refuse is `NewPasswordRefused` and leaves the link
    /// unspent. The user whose password it was.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: String,
        client: &Client,
    ) -> Result<Uuid, Error> {
        self.admit_token_check(client).await?;
        let (record, user) = self.live_token(token, Purpose::ResetPassword).await?;
        let new_password = NewPassword::parse(new_password, Some(&user.email))
            .map_err(Error::NewPasswordRefused)?;
        let new_hash = self.passwords.hash(new_password).await?;
        self.store
            .reset_password(&record, &new_hash)
            .await
            .map_err(spent_or_superseded)?;
        let user_id = user.user_id.to_string();
        audit(Event::PasswordReset, Some(&user_id), client);
        // The password is changed: whatever happens to the clean-up, the owner gets their
        // answer. A backoff record left behind only delays their next sign-in from a
        // guessed-at address until it runs out.
        if let Err(err) = self.store.clear_login_failures(&user.email).await {
            tracing::warn!(
                user_id = %user_id,
                error = %shared::error_chain(&err),
                "login backoff not cleared after a password reset"
            );
        }
        Ok(user.user_id)
    }
}

/// A spend that lost to another (or to a newer token) is the same error as any unusable
/// token.
fn spent_or_superseded(err: StoreError) -> Error {
    match err {
        StoreError::Conflict => Error::InvalidActionToken,
        other => other.into(),
    }
}
