//! Sign-in with an email and a password.

use secrecy::SecretString;

use super::mfa::SecondFactorRequired;
use super::password_check::PasswordCheck;
use super::{Accounts, SignedIn, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::Client;
use crate::model::credentials::Email;
use crate::model::session::SessionFamily;
use crate::model::user::UserRecord;
use crate::store::{Store, StoreError};

/// What a right password leads to.
pub enum LoginOutcome {
    SignedIn(Box<SignedIn>),
    /// The user has two-factor sign-in: no tokens yet.
    SecondFactorRequired(SecondFactorRequired),
}

impl<S: Store> Accounts<S> {
    /// Signs in with `email` (as typed) and `password`: a new session, or, for a user with
    /// two-factor sign-in, a challenge for the second step. `InvalidCredentials`, or
    /// `TooManyAttempts` while (email, source) or the email is in backoff.
    ///
    /// Unknown email and wrong password get the same error and cost one bcrypt verification
    /// each, so neither the answer nor its timing tells whether an account exists.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        client: &Client,
    ) -> Result<LoginOutcome, Error> {
        let Ok(email) = Email::parse(email) else {
            // No account can have this email: nothing to count, the same work and answer.
            self.passwords.verify(password, None).await?;
            audit(Event::LoginFailed, None, client);
            return Err(Error::InvalidCredentials);
        };
        // Read and counted together, and judged by the email and source alone, registered or
        // not, so a refusal says nothing about whether an account exists.
        let now_ms = self.clock.now_ms();
        let (user, admission) = self
            .store
            .read_and_admit_login(&email, client.source(), now_ms)
            .await?;
        let check =
            PasswordCheck::admitted(self, &email, user.as_ref(), admission, client, now_ms).await?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let legacy = user.as_ref().is_some_and(|u| u.legacy_password);
        let matched = self
            .passwords
            .verify_login(password.clone(), stored_hash, legacy)
            .await?
            .matched();
        let user = match user {
            Some(user) if matched && !user.disabled => user,
            found => {
                // A disabled account gets a wrong password's answer, after the same work, and
                // the check counts as failed.
                let disabled = matched && found.as_ref().is_some_and(|u| u.disabled);
                let user_id = found.map(|u| u.user_id.to_string());
                let event = if disabled {
                    Event::LoginRefusedDisabled
                } else {
                    Event::LoginFailed
                };
                audit(event, user_id.as_deref(), client);
                check.failed(self, user_id.as_deref(), client).await;
                return Err(Error::InvalidCredentials);
            }
        };
        if self.recovery.settings.require_verified_email && !user.email_verified {
            // Only after the right password: to anyone else this says nothing.
            check.succeeded(self, now_ms).await?;
            audit(
                Event::LoginRefusedUnverified,
                Some(&user.user_id.to_string()),
                client,
            );
            return Err(Error::EmailNotVerified);
        }
        if !self.second_factor_methods(&user).is_empty() {
            // The password was right; the second step decides. Nothing here differs from a
            // user without two-factor sign-in until the password matched. The check stays
            // counted until the code is right too: forgetting it here would let someone who
            // has the password reset the backoff between code guesses.
            self.rehash_if_needed(&user, password).await?;
            let challenge = self.challenge(&user, client, now_ms).await?;
            return Ok(LoginOutcome::SecondFactorRequired(challenge));
        }
        let (token, family, mut record) = SessionFamily::begin(
            &user,
            user.session_epoch,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        record.token_use = client.first_token_use();
        let custom = self.first_party_claims(&user, &family, client).await?;
        let (started, rehashed) = tokio::join!(
            check.start_session(self, &user, &family, &record, now_ms),
            self.rehash_if_needed(&user, password),
        );
        started?;
        rehashed?;
        audit(
            Event::LoginSucceeded,
            Some(&user.user_id.to_string()),
            client,
        );
        let signed_in = self.signed_in(
            &user,
            &family,
            token,
            record.expires_at,
            now_ms / 1000,
            custom,
        )?;
        Ok(LoginOutcome::SignedIn(Box::new(signed_in)))
    }

    /// After `BCRYPT_COST` changed, a successful login stores the password hashed at the new
    /// cost (one conditional write, only then), and so does the first login of an account
    /// imported from the Node.js original: its hash, of the trimmed password, becomes one of
    /// the exact password, and the legacy mark goes. A lost race (the hash changed meanwhile)
    /// leaves the newer hash.
    async fn rehash_if_needed(
        &self,
        user: &UserRecord,
        password: SecretString,
    ) -> Result<(), Error> {
        let Some(new_hash) = self
            .passwords
            .rehash(password, &user.password_hash, user.legacy_password)
            .await?
        else {
            return Ok(());
        };
        match self.store.rehash_password(user, &new_hash).await {
            Ok(()) => {
                tracing::info!(
                    user_id = %user.user_id,
                    cost = self.passwords.cost(),
                    "password rehashed at the configured bcrypt cost"
                );
                Ok(())
            }
            Err(StoreError::Conflict) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
