//! Registration with an email and a password.

use time::OffsetDateTime;

use super::{Accounts, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::Client;
use crate::model::credentials::{Email, NewPassword};
use crate::model::link::{ActionRecord, Purpose};
use crate::model::user::UserRecord;
use crate::recovery::Notice;
use crate::store::{Store, StoreError};

/// What a registration answers: the account (or, for a taken email with mail on, an unsaved
/// one that looks the same), and whether it was created.
pub struct Registration {
    pub user: UserRecord,
    /// When it was created, to the second.
    pub created_at: OffsetDateTime,
    /// `false`: the email had an account, and its owner got a mail instead.
    pub created: bool,
}

impl<S: Store> Accounts<S> {
    /// Registers `email` with `password`. With mail on, a taken email gets exactly a new
    /// one's answer (fields, work) and its owner a mail instead: registration tells nobody
    /// who has an account. Without mail there is no other way to tell the person
    /// registering, so a taken email is `EmailTaken`. `TooManyRegistrations` past the
    /// client's hourly limit.
    pub async fn register(
        &self,
        email: Email,
        password: NewPassword,
        client: &Client,
    ) -> Result<Registration, Error> {
        // Counted before any work or write: each registration of a new address sends a mail,
        // and addresses that do not exist bounce (SES pauses an account that bounces too much).
        let now_ms = self.clock.now_ms();
        let limit = self.recovery.settings.registrations_per_source_per_hour;
        let window = self
            .store
            .count_registration(client.source(), now_ms)
            .await?;
        if let Some(retry_after_seconds) = window.over(limit, now_ms) {
            if window.count == limit + 1 {
                audit(Event::RegistrationLimitReached, None, client);
            }
            return Err(Error::TooManyRegistrations {
                limit,
                retry_after_seconds,
            });
        }
        // The deployment's own check, before any work or write: a denied registration costs
        // no bcrypt and leaves nothing behind.
        self.hooks
            .before_user_created(&email, "password", client)
            .await?;
        let password_hash = self.passwords.hash(password).await?;
        // Whole seconds: the stored value and the answer agree exactly.
        let now = OffsetDateTime::from_unix_timestamp(self.clock.now()).map_err(Error::internal)?;
        let mut user = UserRecord::new(email, password_hash, now);
        // With mail on, the account is written with its verification link and the mail
        // counted in its mailbox's windows: one write.
        let link = self.mail_on().then(|| {
            let ttl = self
                .recovery
                .settings
                .actions
                .ttl_seconds(Purpose::VerifyEmail);
            ActionRecord::issue(&user, Purpose::VerifyEmail, self.clock.now_ms(), ttl)
        });
        if let Some((_, record)) = &link {
            user.verify_token = Some(record.hash);
        }
        let created = match &link {
            Some((_, record)) => {
                let mailbox = user.email.mailbox();
                self.store
                    .create_user_with_link(&user, record, &mailbox, now_ms)
                    .await
            }
            None => self.store.create_user(&user).await,
        };
        match created {
            Ok(()) => {}
            Err(StoreError::EmailTaken) if self.mail_on() => {
                self.registration_of_taken_email(&user, client).await;
                return Ok(Registration {
                    user,
                    created_at: now,
                    created: false,
                });
            }
            Err(err) => return Err(err.into()),
        }
        audit(Event::Registered, Some(&user.user_id.to_string()), client);
        // The account exists now whatever happens to its mail: a failure is logged and
        // audited, and the user can ask for another. With mail off, send_token logs and
        // audits the mail not sent.
        match &link {
            Some((token, _)) => {
                self.deliver(&user, Purpose::VerifyEmail, token, client)
                    .await
            }
            None => {
                if let Err(err) = self.send_token(&user, Purpose::VerifyEmail, client).await {
                    tracing::error!(error = %shared::error_chain(&err), "verification mail not issued");
                }
            }
        }
        Ok(Registration {
            user,
            created_at: now,
            created: true,
        })
    }

    /// A registration of an email that has an account, with mail on: the owner gets a mail
    /// ("sign in, or reset your password"), counted toward the address's mail limit like the
    /// verification mail it stands in for. Nothing is written.
    async fn registration_of_taken_email(&self, attempted: &UserRecord, client: &Client) {
        audit(Event::RegistrationEmailTaken, None, client);
        match self.admit_mail(&attempted.email).await {
            Ok(()) => {
                self.send_notice(&attempted.email, None, Notice::RegistrationAttempt, client)
                    .await;
            }
            Err(err) if err.is_fault() => {
                tracing::error!(error = %shared::error_chain(&err), "registration notice not sent");
            }
            Err(err) => tracing::info!(error = %err, "registration notice not sent"),
        }
    }
}
