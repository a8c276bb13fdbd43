//! A signed-in user changes their password.

use secrecy::SecretString;

use super::password_check::PasswordCheck;
use super::{Accounts, SignedIn, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::{Caller, Client};
use crate::model::credentials::NewPassword;
use crate::model::mfa::Code;
use crate::model::session::SessionFamily;
use crate::recovery::Notice;
use crate::store::Store;

impl<S: Store> Accounts<S> {
    /// Replaces the caller's password: a new session begins, every other one ends, and the
    /// owner is mailed. The current password is checked with the login backoff, so a stolen
    /// access token cannot guess it freely; a two-factor user also gives a current `code`, so
    /// that a stolen token and a phished password do not make a lasting, MFA-marked session.
    pub async fn change_password(
        &self,
        caller: &Caller,
        client: &Client,
        current: SecretString,
        new: NewPassword,
        code: Option<Code>,
    ) -> Result<SignedIn, Error> {
        let (user, check, now_ms) = PasswordCheck::confirm_caller(
            self,
            caller,
            client,
            current,
            Event::PasswordChangeFailed,
            Error::WrongCurrentPassword,
        )
        .await?;
        self.require_code(
            client,
            &user,
            code,
            &check,
            Event::PasswordChangeFailed,
            now_ms,
        )
        .await?;
        let new_hash = self.passwords.hash(new).await?;
        let (token, mut family, record) = SessionFamily::begin(
            &user,
            user.session_epoch + 1,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        // A second factor counts only when this request passed one.
        if user.mfa.enabled() {
            family.method = shared::SignInMethod::PasswordAndCode;
        }
        let custom = self.first_party_claims(&user, &family, client).await?;
        self.store
            .change_password(&user, &new_hash, &family, &record)
            .await?;
        check.succeeded(self, now_ms).await?;
        let user_id = user.user_id.to_string();
        audit(Event::PasswordChanged, Some(&user_id), client);
        self.send_notice(&user.email, Some(&user_id), Notice::PasswordChanged, client)
            .await;
        self.signed_in(
            &user,
            &family,
            token,
            record.expires_at,
            now_ms / 1000,
            custom,
        )
    }
}
