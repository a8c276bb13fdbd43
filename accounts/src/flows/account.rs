//! The caller's own account: reading it, deleting it.

use secrecy::SecretString;

use super::password_check::PasswordCheck;
use super::{Accounts, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::{Caller, Client};
use crate::model::mfa::Code;
use crate::model::user::UserRecord;
use crate::store::Store;

impl<S: Store> Accounts<S> {
    /// The caller's account: `UserNotFound` once it is gone, `AccountDisabled` while disabled.
    pub async fn profile(&self, caller: &Caller) -> Result<UserRecord, Error> {
        let user = self
            .store
            .find_user_by_id(caller.user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        Ok(user)
    }

    /// Deletes the caller's account, its sessions, refresh tokens and pending mail tokens;
    /// the email can register again at once. The password is checked again, with the login
    /// backoff, so a stolen access token cannot delete the account; a two-factor user also
    /// gives a current `code`.
    pub async fn delete_account(
        &self,
        caller: &Caller,
        client: &Client,
        password: SecretString,
        code: Option<Code>,
    ) -> Result<(), Error> {
        let (user, check, now_ms) = PasswordCheck::confirm_caller(
            self,
            caller,
            client,
            password,
            Event::AccountDeleteFailed,
            Error::WrongPassword,
        )
        .await?;
        self.require_code(
            client,
            &user,
            code,
            &check,
            Event::AccountDeleteFailed,
            now_ms,
        )
        .await?;
        self.store.delete_user(&user).await?;
        check.succeeded(self, now_ms).await?;
        audit(
            Event::AccountDeleted,
            Some(&user.user_id.to_string()),
            client,
        );
        Ok(())
    }
}
