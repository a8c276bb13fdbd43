//! Two-factor sign-in with an authenticator app (TOTP): enrollment, confirmation, the login's
//! second step, turning it off, new recovery codes, and the code check every door shares.

use secrecy::SecretString;

use super::password_check::PasswordCheck;
use super::{Accounts, SignedIn, audit};
use crate::audit::Event;
use crate::error::Error;
use crate::model::client::{Caller, Client};
use crate::model::event::{AccountEvent, EventType};
use crate::model::mfa::{
    CHALLENGE_ATTEMPTS, CHALLENGE_TTL_SECONDS, Code, ENROLLMENT_TTL_SECONDS, MfaAdmission,
    MfaChallenge, MfaState, TotpSecret, qr_data_uri, recovery_codes,
};
use crate::model::session::SessionFamily;
use crate::model::token::OpaqueToken;
use crate::model::user::UserRecord;
use crate::recovery::Notice;
use crate::store::{Store, StoreError};

/// The password step of a two-factor user's sign-in passed: the single-use token for the
/// second step.
pub struct SecondFactorRequired {
    pub user_id: uuid::Uuid,
    pub mfa_token: OpaqueToken,
    /// Seconds the token lives.
    pub expires_in: i64,
    /// What can finish it: `totp` (a code, or a recovery code), `webauthn` (a passkey).
    pub methods: Vec<&'static str>,
}

/// A new authenticator, not yet active: confirmation with its first code turns it on.
pub struct Enrollment {
    pub user_id: uuid::Uuid,
    /// The secret in base32, for apps where it is typed in.
    pub secret: String,
    pub otpauth_uri: String,
    /// The otpauth URI as a QR code: an SVG image in a `data:` URI.
    pub qr_code: String,
    /// Seconds left to confirm it.
    pub expires_in: i64,
}

impl<S: Store> Accounts<S> {
    /// Checks a second-factor code of `user`, as every door does: counted first against the
    /// account's consecutive wrong codes (`MfaLocked` while locked: however many arrive at
    /// once, no more are checked than the lock allows), then checked. A right one is spent
    /// (the state returned) and ends the count; a wrong one is audited as `failed_event` and
    /// counts as a failed check of `check` (the login backoff) too; the one that starts the
    /// lock mails the owner. `None`: wrong.
    pub async fn check_code(
        &self,
        client: &Client,
        user: &UserRecord,
        code: &Code,
        check: &PasswordCheck,
        failed_event: Event,
        now_ms: i64,
    ) -> Result<Option<MfaState>, Error> {
        let key = self.mfa_key()?;
        let counted = match self.store.admit_mfa_code(user.user_id, now_ms).await? {
            MfaAdmission::Admitted(counted) => counted,
            MfaAdmission::Refused {
                retry_after_seconds,
            } => {
                return Err(Error::MfaLocked {
                    retry_after_seconds,
                });
            }
        };
        let user_id = user.user_id.to_string();
        let Some(spent) = user.mfa.spend(key, user.user_id, code, now_ms / 1000) else {
            audit(failed_event, Some(&user_id), client);
            check.failed(self, Some(&user_id), client).await;
            if counted.starts_lock() {
                audit(Event::MfaLocked, Some(&user_id), client);
                self.emit(&AccountEvent::user(EventType::MfaLocked, user.user_id))
                    .await;
                self.send_notice(&user.email, Some(&user_id), Notice::MfaLocked, client)
                    .await;
            }
            return Ok(None);
        };
        self.store.forget_mfa_failures(user.user_id).await?;
        if matches!(code, Code::Recovery(_)) {
            audit(Event::RecoveryCodeUsed, Some(&user_id), client);
        }
        Ok(Some(spent))
    }

    /// For a sensitive change by a user with two-factor sign-in (password change, deletion):
    /// a current `code` is needed as well as the password (`MfaCodeRequired` without one,
    /// `WrongCode` for a wrong one), and is spent at once. `Ok(())` for a user without.
    pub async fn require_code(
        &self,
        client: &Client,
        user: &UserRecord,
        code: Option<Code>,
        check: &PasswordCheck,
        failed_event: Event,
        now_ms: i64,
    ) -> Result<(), Error> {
        if !user.mfa.enabled() {
            return Ok(());
        }
        let Some(code) = code else {
            return Err(Error::MfaCodeRequired);
        };
        let spent = self
            .check_code(client, user, &code, check, failed_event, now_ms)
            .await?
            .ok_or(Error::WrongCode)?;
        // Spent before the change: a code works once, whatever happens next.
        self.store
            .save_mfa(user, &spent, None)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Error::WrongCode,
                other => other.into(),
            })
    }

    /// Starts an enrollment after the caller's password (checked with the login backoff): a
    /// new TOTP secret, not yet active. `MfaAlreadyEnabled` if two-factor sign-in is on.
    pub async fn enroll_totp(
        &self,
        caller: &Caller,
        client: &Client,
        password: SecretString,
    ) -> Result<Enrollment, Error> {
        let key = self.mfa_key()?;
        let (user, check, now_ms) = PasswordCheck::confirm_caller(
            self,
            caller,
            client,
            password,
            Event::MfaEnrollFailed,
            Error::WrongPassword,
        )
        .await?;
        if user.mfa.enabled() {
            check.succeeded(self, now_ms).await?;
            return Err(Error::MfaAlreadyEnabled);
        }
        if !user.email_verified && self.mail_on() {
            // Whoever registered someone else's address first must not put a second factor of
            // theirs in front of the account the owner takes back with a reset.
            check.succeeded(self, now_ms).await?;
            return Err(Error::EmailNotVerified);
        }
        let secret = TotpSecret::generate();
        let sealed = key.seal(user.user_id, &secret).map_err(Error::internal)?;
        let now = now_ms / 1000;
        let pending = MfaState {
            pending: Some((sealed, now + ENROLLMENT_TTL_SECONDS)),
            ..user.mfa.clone()
        };
        self.store.save_mfa(&user, &pending, None).await?;
        check.succeeded(self, now_ms).await?;
        let uri = secret.otpauth_uri(&self.recovery.settings.app_name, &user.email);
        let qr_code = qr_data_uri(&uri).map_err(Error::internal)?;
        audit(
            Event::MfaEnrollmentStarted,
            Some(&user.user_id.to_string()),
            client,
        );
        Ok(Enrollment {
            user_id: user.user_id,
            secret: secret.base32(),
            otpauth_uri: uri,
            qr_code,
            expires_in: ENROLLMENT_TTL_SECONDS,
        })
    }

    /// Turns the enrolled secret on once its current `code` is right: 10 recovery codes
    /// (shown this once) and a new session that passed the second factor; every other
    /// session ends. Wrong codes count toward the login backoff.
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        client: &Client,
        code: Code,
    ) -> Result<SignedIn, Error> {
        let key = self.mfa_key()?;
        let (user, seen) = PasswordCheck::caller_account(self, caller, client).await?;
        if user.mfa.enabled() {
            return Err(Error::MfaAlreadyEnabled);
        }
        let now_ms = self.clock.now_ms();
        let now = now_ms / 1000;
        let Some((sealed, _)) = user.mfa.pending.clone().filter(|(_, until)| *until > now) else {
            return Err(Error::MfaEnrollmentMissing);
        };
        let check =
            PasswordCheck::admit(self, &caller.email, Some(&user), seen, client, now_ms).await?;
        let secret = key.open(user.user_id, &sealed).map_err(Error::internal)?;
        let step = match &code {
            Code::Totp(digits) => secret.check(digits, now, user.mfa.last_step),
            // No recovery code exists before the first confirmation.
            Code::Recovery(_) => None,
        };
        let user_id = user.user_id.to_string();
        let Some(step) = step else {
            audit(Event::MfaConfirmFailed, Some(&user_id), client);
            check.failed(self, Some(&user_id), client).await;
            return Err(Error::WrongCode);
        };
        let (codes, hashes) = recovery_codes();
        let enabled = MfaState {
            secret: Some(sealed),
            pending: None,
            last_step: step,
            recovery: hashes,
            revision: user.mfa.revision,
        };
        let signed_in = self
            .replace_mfa_state(client, &user, &enabled, true, Some(codes), now_ms)
            .await?;
        check.succeeded(self, now_ms).await?;
        audit(Event::MfaEnabled, Some(&user_id), client);
        self.send_notice(&user.email, Some(&user_id), Notice::MfaEnabled, client)
            .await;
        Ok(signed_in)
    }

    /// Turns two-factor sign-in off after the password and a current code (a recovery code
    /// will do): its secret and recovery codes go, every other session ends, and a new one
    /// begins.
    pub async fn disable_totp(
        &self,
        caller: &Caller,
        client: &Client,
        password: SecretString,
        code: Code,
    ) -> Result<SignedIn, Error> {
        let (user, check, spent, now_ms) = self
            .confirm_password_and_code(caller, client, password, code, Event::MfaDisableFailed)
            .await?;
        let off = MfaState {
            last_step: spent.last_step,
            revision: user.mfa.revision,
            ..MfaState::default()
        };
        let signed_in = self
            .replace_mfa_state(client, &user, &off, false, None, now_ms)
            .await?;
        check.succeeded(self, now_ms).await?;
        let user_id = user.user_id.to_string();
        audit(Event::MfaDisabled, Some(&user_id), client);
        self.send_notice(&user.email, Some(&user_id), Notice::MfaDisabled, client)
            .await;
        Ok(signed_in)
    }

    /// Ten new recovery codes (the old ones stop working) after the password and a current
    /// code, with a new session; every other session ends.
    pub async fn renew_recovery_codes(
        &self,
        caller: &Caller,
        client: &Client,
        password: SecretString,
        code: Code,
    ) -> Result<SignedIn, Error> {
        let (user, check, spent, now_ms) = self
            .confirm_password_and_code(caller, client, password, code, Event::RecoveryCodesFailed)
            .await?;
        let (codes, hashes) = recovery_codes();
        let renewed = MfaState {
            recovery: hashes,
            ..spent
        };
        let signed_in = self
            .replace_mfa_state(client, &user, &renewed, true, Some(codes), now_ms)
            .await?;
        check.succeeded(self, now_ms).await?;
        let user_id = user.user_id.to_string();
        audit(Event::RecoveryCodesRegenerated, Some(&user_id), client);
        self.send_notice(
            &user.email,
            Some(&user_id),
            Notice::RecoveryCodesRenewed,
            client,
        )
        .await;
        Ok(signed_in)
    }

    /// Writes `mfa` over `user`'s state with a new session (of the next epoch: every other
    /// session ends) that passed the second factor or not.
    async fn replace_mfa_state(
        &self,
        client: &Client,
        user: &UserRecord,
        mfa: &MfaState,
        passed_mfa: bool,
        codes: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<SignedIn, Error> {
        let (token, mut family, record) = SessionFamily::begin(
            user,
            user.session_epoch + 1,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        if passed_mfa {
            family.method = shared::SignInMethod::PasswordAndCode;
        }
        let custom = self.first_party_claims(user, &family, client).await?;
        self.store
            .save_mfa(user, mfa, Some((&family, &record)))
            .await
            .map_err(|e| match e {
                // A code spent, or the account changed, by a concurrent request.
                StoreError::Conflict => Error::WrongCode,
                other => other.into(),
            })?;
        let mut signed_in = self.signed_in(
            user,
            &family,
            token,
            record.expires_at,
            now_ms / 1000,
            custom,
        )?;
        signed_in.recovery_codes = codes;
        Ok(signed_in)
    }

    /// The password and a current code, checked for a change to two-factor sign-in: the user
    /// as read, the counted check, the state with the code spent, and the time.
    async fn confirm_password_and_code(
        &self,
        caller: &Caller,
        client: &Client,
        password: SecretString,
        code: Code,
        failed_event: Event,
    ) -> Result<(UserRecord, PasswordCheck, MfaState, i64), Error> {
        self.mfa_key()?;
        let (user, check, now_ms) = PasswordCheck::confirm_caller(
            self,
            caller,
            client,
            password,
            failed_event,
            Error::WrongPassword,
        )
        .await?;
        if !user.mfa.enabled() {
            check.succeeded(self, now_ms).await?;
            return Err(Error::MfaNotEnabled);
        }
        let spent = self
            .check_code(client, &user, &code, &check, failed_event, now_ms)
            .await?
            .ok_or(Error::WrongCode)?;
        Ok((user, check, spent, now_ms))
    }

    /// The password step of a login for a user with two-factor sign-in: no tokens yet, a
    /// single-use token for the second step, bound to the user as they are now.
    pub(crate) async fn challenge(
        &self,
        user: &UserRecord,
        client: &Client,
        now_ms: i64,
    ) -> Result<SecondFactorRequired, Error> {
        let token = OpaqueToken::generate();
        let challenge = MfaChallenge {
            hash: token.hash(),
            user_id: user.user_id,
            email: user.email.clone(),
            epoch: user.session_epoch,
            expires_at: now_ms / 1000 + CHALLENGE_TTL_SECONDS,
        };
        self.store.begin_mfa_challenge(&challenge).await?;
        audit(
            Event::LoginMfaRequired,
            Some(&user.user_id.to_string()),
            client,
        );
        Ok(SecondFactorRequired {
            user_id: user.user_id,
            mfa_token: token,
            expires_in: CHALLENGE_TTL_SECONDS,
            methods: self.second_factor_methods(user),
        })
    }

    /// The live second step of a password sign-in that `mfa_token` names, and its user as now
    /// (and their failed-login record), while still the one the password step found and
    /// `method` (the way this step finishes) is theirs: `InvalidMfaToken` otherwise.
    pub(crate) async fn second_step(
        &self,
        mfa_token: &str,
        client: &Client,
        method: impl Fn(&UserRecord) -> bool,
    ) -> Result<
        (
            MfaChallenge,
            UserRecord,
            crate::model::backoff::LoginAttempts,
        ),
        Error,
    > {
        let token = OpaqueToken::parse(mfa_token).ok_or(Error::InvalidMfaToken)?;
        let now = self.clock.now_ms() / 1000;
        let challenge = self
            .store
            .find_mfa_challenge(&token.hash())
            .await?
            .filter(|c| c.expires_at > now)
            .ok_or(Error::InvalidMfaToken)?;
        let (user, seen) = self
            .store
            .find_user_for_login(&challenge.email, client.source())
            .await?;
        let user = user
            .filter(|u| {
                u.user_id == challenge.user_id
                    && u.session_epoch == challenge.epoch
                    && !u.disabled
                    && method(u)
            })
            .ok_or(Error::InvalidMfaToken)?;
        Ok((challenge, user, seen))
    }

    /// The second step of sign-in: `mfa_token` (as sent) and a `code` → a session that passed
    /// the second factor. `InvalidMfaCode` for a wrong or used code, `InvalidMfaToken` for an
    /// unknown, expired or used token, `TooManyAttempts` in backoff. Each code is accepted
    /// once; wrong codes count toward the login backoff of the email and source, like wrong
    /// passwords.
    pub async fn login_second_factor(
        &self,
        mfa_token: &str,
        code: Code,
        client: &Client,
    ) -> Result<SignedIn, Error> {
        self.mfa_key()?;
        let (challenge, user, seen) = self
            .second_step(mfa_token, client, |u| u.mfa.enabled())
            .await?;
        // Counted before the code is checked: an mfa_token is checked against at most
        // CHALLENGE_ATTEMPTS codes, however many arrive at once.
        let attempt = self
            .store
            .count_challenge_attempt(&challenge.hash)
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        let now_ms = self.clock.now_ms();
        let check =
            PasswordCheck::admit(self, &challenge.email, Some(&user), seen, client, now_ms).await?;
        let user_id = user.user_id.to_string();
        let Some(spent) = self
            .check_code(client, &user, &code, &check, Event::LoginMfaFailed, now_ms)
            .await?
        else {
            if attempt >= CHALLENGE_ATTEMPTS {
                // Its last code was wrong: the mfa_token is spent, and a new password step
                // (which the login backoff counts) is needed for more.
                self.store.spend_mfa_challenge(&challenge.hash).await?;
            }
            return Err(Error::InvalidMfaCode);
        };
        let (refresh, mut family, mut record) = SessionFamily::begin(
            &user,
            challenge.epoch,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        record.token_use = client.first_token_use();
        family.method = shared::SignInMethod::PasswordAndCode;
        let custom = self.first_party_claims(&user, &family, client).await?;
        match self
            .store
            .complete_mfa_challenge(&challenge, &user, &spent, &family, &record)
            .await
        {
            Ok(()) => {}
            // The challenge, or the code, served a concurrent request first.
            Err(StoreError::Conflict) => {
                audit(Event::LoginMfaFailed, Some(&user_id), client);
                return Err(Error::InvalidMfaCode);
            }
            Err(other) => return Err(other.into()),
        }
        check.signed_in(self, &user, now_ms).await?;
        audit(Event::LoginSucceeded, Some(&user_id), client);
        self.signed_in(
            &user,
            &family,
            refresh,
            record.expires_at,
            now_ms / 1000,
            custom,
        )
    }
}
