//! Passkeys (WebAuthn): adding one, signing in with one (alone, or as the second step after a
//! password), listing, renaming and removing them. The ceremony's state stays on the server:
//! the client gets a random `challenge_id`, the store keeps its hash and the challenge, and
//! each is taken once.

use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use shared::SignInMethod;
use uuid::Uuid;

use super::password_check::PasswordCheck;
use super::{Accounts, SignedIn, audit};
use crate::audit::{Event, record_refusal};
use crate::error::Error;
use crate::model::client::{Caller, Client};
use crate::model::credentials::Email;
use crate::model::mfa::Code;
use crate::model::passkey::{
    Ceremony, MAX_PASSKEYS, Passkey, PasskeyChallenge, PasskeyName, PasskeySettings,
};
use crate::model::session::SessionFamily;
use crate::model::token::OpaqueToken;
use crate::model::user::UserRecord;
use crate::model::webauthn::{
    self, AuthenticationResponse, CEREMONY_TIMEOUT_MS, Descriptor, Refusal, RegistrationResponse,
    StoredKey,
};
use crate::recovery::Notice;
use crate::store::{Store, StoreError};

/// The options of a ceremony and the id that finishes it.
pub struct PasskeyOptions {
    /// Sent back with the browser's response; single use.
    pub challenge_id: OpaqueToken,
    /// `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`.
    pub options: serde_json::Value,
    /// Seconds the ceremony may take.
    pub expires_in: i64,
}

/// How the caller proves again who they are before adding or removing a passkey.
pub enum Reauthentication {
    Password(SecretString),
    /// A current TOTP or recovery code, for a user with two-factor sign-in.
    Code(Code),
}

const CEREMONY_SECONDS: i64 = CEREMONY_TIMEOUT_MS / 1000;

impl<S: Store> Accounts<S> {
    fn passkey_settings(&self) -> Result<&PasskeySettings, Error> {
        self.passkeys.as_ref().ok_or(Error::PasskeysUnavailable)
    }

    /// Whether a password sign-in of `user` needs a second step, and by which methods.
    pub(crate) fn second_factor_methods(&self, user: &UserRecord) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if user.mfa.enabled() {
            methods.push("totp");
        }
        if user.passkeys > 0 && self.passkeys.is_some() {
            methods.push("webauthn");
        }
        methods
    }

    /// A fresh challenge for `ceremony`, stored: its id (for the client) and its bytes.
    async fn begin_ceremony(
        &self,
        ceremony: Ceremony,
        now_ms: i64,
    ) -> Result<(OpaqueToken, [u8; 32]), Error> {
        let id = OpaqueToken::generate();
        let mut challenge = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        self.store
            .save_passkey_challenge(&PasskeyChallenge {
                hash: id.hash(),
                challenge,
                ceremony,
                expires_at: now_ms / 1000 + CEREMONY_SECONDS,
            })
            .await?;
        Ok((id, challenge))
    }

    /// Takes the challenge `challenge_id` names, if it is live.
    async fn take_ceremony(&self, challenge_id: &str) -> Result<PasskeyChallenge, Error> {
        let id = OpaqueToken::parse(challenge_id).ok_or(Error::PasskeyChallengeInvalid)?;
        let now = self.clock.now_ms() / 1000;
        self.store
            .take_passkey_challenge(&id.hash())
            .await?
            .filter(|c| c.expires_at > now)
            .ok_or(Error::PasskeyChallengeInvalid)
    }

    /// Checks the caller's password, or a current code of a two-factor user, with the login
    /// backoff (and the code lock): the account as read once it matched.
    async fn reauthenticate(
        &self,
        caller: &Caller,
        client: &Client,
        proof: Reauthentication,
    ) -> Result<UserRecord, Error> {
        match proof {
            Reauthentication::Password(password) => {
                let (user, check, now_ms) = PasswordCheck::confirm_caller(
                    self,
                    caller,
                    client,
                    password,
                    Event::PasskeyChangeFailed,
                    Error::WrongPassword,
                )
                .await?;
                check.succeeded(self, now_ms).await?;
                Ok(user)
            }
            Reauthentication::Code(code) => {
                let (user, seen) = PasswordCheck::caller_account(self, caller, client).await?;
                if !user.mfa.enabled() {
                    return Err(Error::MfaNotEnabled);
                }
                let now_ms = self.clock.now_ms();
                let check =
                    PasswordCheck::admit(self, &caller.email, Some(&user), seen, client, now_ms)
                        .await?;
                self.require_code(
                    client,
                    &user,
                    Some(code),
                    &check,
                    Event::PasskeyChangeFailed,
                    now_ms,
                )
                .await?;
                check.succeeded(self, now_ms).await?;
                // Read again: spending the code moved the account's two-factor revision on.
                Ok(PasswordCheck::caller_account(self, caller, client).await?.0)
            }
        }
    }

    /// The options to add a passkey, after the caller proved who they are again.
    pub async fn passkey_registration_options(
        &self,
        caller: &Caller,
        client: &Client,
        proof: Reauthentication,
    ) -> Result<PasskeyOptions, Error> {
        let settings = self.passkey_settings()?;
        let user = self.reauthenticate(caller, client, proof).await?;
        if !user.email_verified && self.mail_on() {
            // As for TOTP: whoever registered someone else's address must not put a passkey
            // of theirs in front of the account the owner takes back with a reset.
            return Err(Error::EmailNotVerified);
        }
        let existing = self.store.list_passkeys(user.user_id).await?;
        if existing.len() >= MAX_PASSKEYS as usize {
            return Err(Error::TooManyPasskeys);
        }
        let now_ms = self.clock.now_ms();
        let (challenge_id, challenge) = self
            .begin_ceremony(
                Ceremony::Register {
                    user_id: user.user_id,
                    epoch: user.session_epoch,
                },
                now_ms,
            )
            .await?;
        let exclude: Vec<Descriptor> = existing.iter().map(Passkey::descriptor).collect();
        let display = user.name.as_deref().unwrap_or(user.email.as_str());
        Ok(PasskeyOptions {
            challenge_id,
            options: webauthn::creation_options(
                &settings.rp,
                user.user_id.as_bytes(),
                user.email.as_str(),
                display,
                &challenge,
                &exclude,
            ),
            expires_in: CEREMONY_SECONDS,
        })
    }

    /// Adds the passkey the browser created for the options of `challenge_id`.
    pub async fn register_passkey(
        &self,
        caller: &Caller,
        client: &Client,
        challenge_id: &str,
        response: &RegistrationResponse,
        name: PasskeyName,
    ) -> Result<Passkey, Error> {
        let settings = self.passkey_settings()?;
        let ceremony = self.take_ceremony(challenge_id).await?;
        let Ceremony::Register { user_id, epoch } = ceremony.ceremony else {
            return Err(Error::PasskeyChallengeInvalid);
        };
        if user_id != caller.user_id {
            return Err(Error::PasskeyChallengeInvalid);
        }
        let (user, _) = PasswordCheck::caller_account(self, caller, client).await?;
        if user.session_epoch != epoch {
            return Err(Error::PasskeyChallengeInvalid);
        }
        let user_id_text = user.user_id.to_string();
        let credential = webauthn::verify_registration(&settings.rp, &ceremony.challenge, response)
            .map_err(|refusal| {
                record_refusal(
                    Event::PasskeyRefused,
                    Some(&user_id_text),
                    refusal.as_str(),
                    client,
                );
                Error::PasskeyNotCreated(refusal)
            })?;
        let now_ms = self.clock.now_ms();
        let passkey = Passkey {
            id: webauthn::passkey_id(&credential.credential_id),
            credential_id: credential.credential_id,
            user_id: user.user_id,
            name,
            public_key: credential.public_key,
            algorithm: credential.algorithm,
            sign_count: credential.sign_count,
            backup_eligible: credential.backup_eligible,
            backed_up: credential.backed_up,
            transports: credential.transports,
            created_at_ms: now_ms,
            last_used_at_ms: None,
        };
        match self.store.add_passkey(&user, &passkey).await {
            Ok(()) => {}
            // Disabled, signed out everywhere, at the limit, or this credential already.
            Err(StoreError::Conflict) => return Err(Error::PasskeyChallengeInvalid),
            Err(other) => return Err(other.into()),
        }
        audit(Event::PasskeyAdded, Some(&user_id_text), client);
        self.send_notice(
            &user.email,
            Some(&user_id_text),
            Notice::PasskeyAdded,
            client,
        )
        .await;
        Ok(passkey)
    }

    /// Audits a refused response and gives the error that answers it.
    fn refused(&self, refusal: Refusal, user_id: Option<&str>, client: &Client) -> Error {
        record_refusal(Event::PasskeyRefused, user_id, refusal.as_str(), client);
        Error::PasskeyRefused(refusal)
    }

    /// The options to sign in with a passkey: with no email, for any discoverable passkey
    /// (and browser autofill); with one, for that account's passkeys. An email of no account
    /// (or of one without passkeys, or disabled) gets a decoy credential, the same for that
    /// email every time, so the answer does not tell which accounts exist.
    pub async fn passkey_login_options(
        &self,
        email: Option<&str>,
    ) -> Result<PasskeyOptions, Error> {
        let settings = self.passkey_settings()?;
        let now_ms = self.clock.now_ms();
        let (ceremony, allow) = match email {
            None => (
                Ceremony::SignIn {
                    user: None,
                    by_email: false,
                },
                Vec::new(),
            ),
            Some(raw) => {
                let email = Email::parse(raw).ok();
                let user = match &email {
                    Some(email) => self.store.find_user(email).await?,
                    None => None,
                }
                .filter(|u| !u.disabled && u.passkeys > 0);
                match user {
                    Some(user) => {
                        let passkeys = self.store.list_passkeys(user.user_id).await?;
                        let allow: Vec<Descriptor> =
                            passkeys.iter().map(Passkey::descriptor).collect();
                        (
                            Ceremony::SignIn {
                                user: Some((user.user_id, user.session_epoch)),
                                by_email: true,
                            },
                            allow,
                        )
                    }
                    None => {
                        let decoy = decoy_credential(settings, raw);
                        // The same reads as for an account with passkeys.
                        self.store
                            .list_passkeys(Uuid::from_slice(&decoy[..16]).unwrap_or_default())
                            .await?;
                        (
                            Ceremony::SignIn {
                                user: None,
                                by_email: true,
                            },
                            vec![Descriptor {
                                credential_id: decoy.to_vec(),
                                transports: vec!["hybrid".into(), "internal".into()],
                            }],
                        )
                    }
                }
            }
        };
        let (challenge_id, challenge) = self.begin_ceremony(ceremony, now_ms).await?;
        Ok(PasskeyOptions {
            challenge_id,
            options: webauthn::request_options(&settings.rp, &challenge, &allow),
            expires_in: CEREMONY_SECONDS,
        })
    }

    /// Checks an assertion for `ceremony` by one of `user_id`'s passkeys and counts it: the
    /// passkey (as it was) and what the assertion proved.
    async fn check_assertion(
        &self,
        settings: &PasskeySettings,
        ceremony: &PasskeyChallenge,
        user_id: Uuid,
        response: &AuthenticationResponse,
        client: &Client,
    ) -> Result<(Passkey, webauthn::Assertion), Error> {
        let user_text = user_id.to_string();
        let refuse = |refusal| self.refused(refusal, Some(&user_text), client);
        let credential_id = response.credential_id().map_err(refuse)?;
        let passkey = self
            .store
            .find_passkey(user_id, &webauthn::passkey_id(&credential_id))
            .await?
            .filter(|p| p.credential_id == credential_id)
            .ok_or_else(|| refuse(Refusal::UnknownCredential))?;
        let stored = StoredKey {
            public_key: &passkey.public_key,
            sign_count: passkey.sign_count,
            backup_eligible: passkey.backup_eligible,
        };
        let assertion =
            webauthn::verify_assertion(&settings.rp, &ceremony.challenge, &stored, response)
                .map_err(refuse)?;
        let now_ms = self.clock.now_ms();
        match self
            .store
            .record_passkey_use(&passkey, assertion.sign_count, assertion.backed_up, now_ms)
            .await
        {
            Ok(()) => Ok((passkey, assertion)),
            // Another assertion of this passkey counted first with the same counter: one of
            // the two is a clone's.
            Err(StoreError::Conflict) => Err(refuse(Refusal::Counter)),
            Err(other) => Err(other.into()),
        }
    }

    /// Signs in with a passkey: the response to the options of `challenge_id`. A new
    /// session whose `amr` says which kind of passkey and whether the authenticator verified
    /// the user.
    pub async fn login_with_passkey(
        &self,
        challenge_id: &str,
        response: &AuthenticationResponse,
        client: &Client,
    ) -> Result<SignedIn, Error> {
        let settings = self.passkey_settings()?;
        let ceremony = self.take_ceremony(challenge_id).await?;
        let Ceremony::SignIn { user, by_email } = ceremony.ceremony else {
            return Err(Error::PasskeyChallengeInvalid);
        };
        let handle = response
            .user_handle()
            .map_err(|r| self.refused(r, None, client))?;
        let handle_user = handle.as_deref().map(Uuid::from_slice);
        let (user_id, epoch) = match (user, handle_user) {
            (Some((id, epoch)), None) => (id, Some(epoch)),
            (Some((id, epoch)), Some(Ok(named))) if named == id => (id, Some(epoch)),
            (None, Some(Ok(named))) if !by_email => (named, None),
            (Some(_), _) => return Err(self.refused(Refusal::UserMismatch, None, client)),
            _ => return Err(self.refused(Refusal::UnknownCredential, None, client)),
        };
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or_else(|| self.refused(Refusal::UnknownCredential, None, client))?;
        let (passkey, assertion) = self
            .check_assertion(settings, &ceremony, user.user_id, response, client)
            .await?;
        let user_text = user.user_id.to_string();
        if user.disabled {
            audit(Event::LoginRefusedDisabled, Some(&user_text), client);
            return Err(Error::InvalidCredentials);
        }
        if epoch.is_some_and(|e| e != user.session_epoch) {
            return Err(Error::PasskeyChallengeInvalid);
        }
        if self.recovery.settings.require_verified_email && !user.email_verified {
            audit(Event::LoginRefusedUnverified, Some(&user_text), client);
            return Err(Error::EmailNotVerified);
        }
        let now_ms = self.clock.now_ms();
        let (token, mut family, mut record) = SessionFamily::begin(
            &user,
            user.session_epoch,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        family.method = SignInMethod::Passkey {
            synced: passkey.backup_eligible,
            verified: assertion.user_verified,
        };
        record.token_use = client.first_token_use();
        let custom = self.first_party_claims(&user, &family, client).await?;
        self.store.start_session(&family, &record).await?;
        if let Some(sources) = user.trusted_sources_with(client.source()) {
            self.store.set_trusted_sources(&user, &sources).await?;
        }
        audit(Event::PasskeySignedIn, Some(&user_text), client);
        self.signed_in(
            &user,
            &family,
            token,
            record.expires_at,
            now_ms / 1000,
            custom,
        )
    }

    /// The options for a passkey as the second step of a password sign-in.
    pub async fn second_factor_passkey_options(
        &self,
        mfa_token: &str,
        client: &Client,
    ) -> Result<PasskeyOptions, Error> {
        let settings = self.passkey_settings()?;
        let (challenge, user, _) = self
            .second_step(mfa_token, client, |u| u.passkeys > 0)
            .await?;
        let passkeys = self.store.list_passkeys(user.user_id).await?;
        let allow: Vec<Descriptor> = passkeys.iter().map(Passkey::descriptor).collect();
        let now_ms = self.clock.now_ms();
        let (challenge_id, bytes) = self
            .begin_ceremony(
                Ceremony::SecondFactor {
                    mfa_token: challenge.hash,
                },
                now_ms,
            )
            .await?;
        Ok(PasskeyOptions {
            challenge_id,
            options: webauthn::request_options(&settings.rp, &bytes, &allow),
            expires_in: CEREMONY_SECONDS,
        })
    }

    /// The second step of a password sign-in with a passkey: a session whose `amr` has both.
    /// Refusals count toward the login backoff and the `mfa_token`'s attempts, as wrong codes
    /// do.
    pub async fn login_second_factor_passkey(
        &self,
        mfa_token: &str,
        challenge_id: &str,
        response: &AuthenticationResponse,
        client: &Client,
    ) -> Result<SignedIn, Error> {
        let settings = self.passkey_settings()?;
        let (challenge, user, seen) = self
            .second_step(mfa_token, client, |u| u.passkeys > 0)
            .await?;
        let attempt = self
            .store
            .count_challenge_attempt(&challenge.hash)
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        let ceremony = self.take_ceremony(challenge_id).await?;
        if ceremony.ceremony
            != (Ceremony::SecondFactor {
                mfa_token: challenge.hash,
            })
        {
            return Err(Error::PasskeyChallengeInvalid);
        }
        let now_ms = self.clock.now_ms();
        let check =
            PasswordCheck::admit(self, &challenge.email, Some(&user), seen, client, now_ms).await?;
        let user_text = user.user_id.to_string();
        let (passkey, assertion) = match self
            .check_assertion(settings, &ceremony, user.user_id, response, client)
            .await
        {
            Ok(checked) => checked,
            Err(err) => {
                if matches!(err, Error::PasskeyRefused(_)) {
                    audit(Event::LoginMfaFailed, Some(&user_text), client);
                    check.failed(self, Some(&user_text), client).await;
                    if attempt >= crate::model::mfa::CHALLENGE_ATTEMPTS {
                        self.store.spend_mfa_challenge(&challenge.hash).await?;
                    }
                }
                return Err(err);
            }
        };
        let (refresh, mut family, mut record) = SessionFamily::begin(
            &user,
            challenge.epoch,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        record.token_use = client.first_token_use();
        family.method = SignInMethod::PasswordAndPasskey {
            synced: passkey.backup_eligible,
            verified: assertion.user_verified,
        };
        let custom = self.first_party_claims(&user, &family, client).await?;
        match self
            .store
            .complete_mfa_challenge(&challenge, &user, &user.mfa, &family, &record)
            .await
        {
            Ok(()) => {}
            // The mfa_token served a concurrent request first.
            Err(StoreError::Conflict) => return Err(Error::InvalidMfaToken),
            Err(other) => return Err(other.into()),
        }
        check.signed_in(self, &user, now_ms).await?;
        audit(Event::PasskeySignedIn, Some(&user_text), client);
        self.signed_in(
            &user,
            &family,
            refresh,
            record.expires_at,
            now_ms / 1000,
            custom,
        )
    }

    /// The caller's passkeys, oldest first.
    pub async fn passkeys_of(
        &self,
        caller: &Caller,
        client: &Client,
    ) -> Result<Vec<Passkey>, Error> {
        self.passkey_settings()?;
        let (user, _) = PasswordCheck::caller_account(self, caller, client).await?;
        Ok(self.store.list_passkeys(user.user_id).await?)
    }

    /// Renames one of the caller's passkeys: it, renamed.
    pub async fn rename_passkey(
        &self,
        caller: &Caller,
        client: &Client,
        id: &str,
        name: PasskeyName,
    ) -> Result<Passkey, Error> {
        self.passkey_settings()?;
        if !webauthn::is_passkey_id(id) {
            return Err(Error::PasskeyNotFound);
        }
        let (user, _) = PasswordCheck::caller_account(self, caller, client).await?;
        match self.store.rename_passkey(user.user_id, id, &name).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(Error::PasskeyNotFound),
            Err(other) => return Err(other.into()),
        }
        audit(
            Event::PasskeyRenamed,
            Some(&user.user_id.to_string()),
            client,
        );
        self.store
            .find_passkey(user.user_id, id)
            .await?
            .ok_or(Error::PasskeyNotFound)
    }

    /// Removes one of the caller's passkeys after they proved who they are again.
    pub async fn remove_passkey(
        &self,
        caller: &Caller,
        client: &Client,
        id: &str,
        proof: Reauthentication,
    ) -> Result<(), Error> {
        self.passkey_settings()?;
        let user = self.reauthenticate(caller, client, proof).await?;
        if !webauthn::is_passkey_id(id) {
            return Err(Error::PasskeyNotFound);
        }
        match self.store.remove_passkey(&user, id).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(Error::PasskeyNotFound),
            Err(other) => return Err(other.into()),
        }
        let user_id = user.user_id.to_string();
        audit(Event::PasskeyRemoved, Some(&user_id), client);
        self.send_notice(&user.email, Some(&user_id), Notice::PasskeyRemoved, client)
            .await;
        Ok(())
    }
}

/// The decoy credential id of an email with no passkeys: stable for that email, unguessable
/// without the deployment's key.
fn decoy_credential(settings: &PasskeySettings, email: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(settings.decoy_key);
    hash.update(Sha256::digest(email.trim().to_lowercase().as_bytes()));
    hash.finalize().into()
}
