//! The account flows, one file each. Every flow takes typed inputs and who is asking (a
//! [`Client`], or a [`Caller`] for the signed-in), and returns an outcome or an [`Error`]:
//! never a request or a reply, so any door (the JSON API, a hosted page, a token endpoint)
//! calls the same flow.
//!
//! [`Client`]: crate::model::client::Client
//! [`Caller`]: crate::model::client::Caller
//! [`Error`]: crate::error::Error

use std::sync::Arc;

use shared::{Clock, IssuedToken, Subject, TokenIssuer};

pub(crate) use crate::audit::record as audit;
use crate::error::Error;
use crate::model::mfa::MfaKey;
use crate::model::session::{BrowserSession, RefreshToken, SessionFamily, SessionSettings};
use crate::model::user::UserRecord;
use crate::passwords::Passwords;
use crate::recovery::Recovery;

pub mod account;
pub mod authorize;
pub mod device;
pub mod federation;
pub mod login;
pub mod mfa;
pub mod oauth;
pub mod passkey;
pub mod password;
pub mod password_check;
pub mod recovery;
pub mod refresh;
pub mod register;
pub mod sessions;
pub mod tokens;

/// The accounts and what their flows need, built once at cold start.
pub struct Accounts<S> {
    pub store: S,
    pub issuer: TokenIssuer,
    pub passwords: Passwords,
    pub sessions: SessionSettings,
    /// The time, for every expiry, window and lock (a [`shared::SystemClock`] in Lambda).
    pub clock: Arc<dyn Clock>,
    /// Mail and the recovery flows' settings.
    pub recovery: Recovery,
    /// Seals TOTP secrets; `None`: two-factor sign-in is unavailable.
    pub mfa_key: Option<MfaKey>,
    /// Lifetime of machine clients' access tokens (`CLIENT_TOKEN_TTL_SECONDS`).
    pub client_token_ttl_seconds: u64,
    /// Passkeys' relying party; `None`: passkeys are off (no `WEBAUTHN_RP_ID`).
    pub passkeys: Option<crate::model::passkey::PasskeySettings>,
    /// The deployment's synchronous hooks (none by default).
    pub hooks: crate::hooks::Hooks,
    /// Sign-in through other identity providers (none by default).
    pub federation: crate::federation::Federation,
}

/// A session began or went on: the tokens to hand over.
pub struct SignedIn {
    /// The session, as begun or gone on (the hosted pages continue an authorization in it).
    pub session: Box<BrowserSession>,
    pub access: IssuedToken,
    pub refresh: RefreshToken,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: i64,
    /// New recovery codes, shown this once (two-factor confirmation and renewal).
    pub recovery_codes: Option<Vec<String>>,
}

/// Who the tokens of `family` speak for: `user` as they are now, in that session.
pub(crate) fn subject(user: &UserRecord, family: &SessionFamily) -> Subject {
    Subject {
        user_id: user.user_id,
        email: user.email.to_string(),
        roles: user.roles.clone(),
        email_verified: user.email_verified,
        session_id: Some(family.family_id),
        method: family.method,
    }
}

impl<S> Accounts<S> {
    /// The key TOTP secrets are sealed with; without one, two-factor sign-in cannot work.
    pub(crate) fn mfa_key(&self) -> Result<&MfaKey, Error> {
        self.mfa_key
            .as_ref()
            .ok_or_else(|| Error::internal("MFA_ENCRYPTION_KEY is not configured"))
    }

    /// The deployment's own claims for the first-party tokens of `user` signing in as
    /// `family` says (its `customize-access-token` hook; none without one). Asked before
    /// the session is written, so a refusal leaves nothing behind.
    pub(crate) async fn first_party_claims(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        client: &crate::model::client::Client,
    ) -> Result<std::collections::BTreeMap<String, shared::CustomClaim>, Error> {
        self.claims_for(user, family, self.issuer.client_id(), client)
            .await
    }

    /// As [`Accounts::first_party_claims`], for the tokens of the OAuth client `client_id`.
    pub(crate) async fn claims_for(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        client_id: &str,
        client: &crate::model::client::Client,
    ) -> Result<std::collections::BTreeMap<String, shared::CustomClaim>, Error> {
        self.hooks
            .custom_claims(user, &family.method.amr(), client_id, client)
            .await
    }

    /// Whether mail is sent at all (`SES_FROM_ADDRESS`, or local-api's outbox).
    pub fn mail_on(&self) -> bool {
        !matches!(self.recovery.mail, crate::mail::MailDelivery::Disabled)
    }

    /// The tokens of `family` for `user`: a fresh access token, and `refresh`, which expires
    /// at `refresh_expires_at` (Unix seconds).
    pub(crate) fn signed_in(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        refresh: RefreshToken,
        refresh_expires_at: i64,
        now: i64,
        custom: std::collections::BTreeMap<String, shared::CustomClaim>,
    ) -> Result<SignedIn, Error> {
        Ok(SignedIn {
            session: Box::new(BrowserSession {
                user: user.clone(),
                family: family.clone(),
            }),
            access: self
                .issuer
                .issue_with_claims(&subject(user, family), custom, now)?,
            refresh,
            refresh_expires_in: (refresh_expires_at - now).max(0),
            recovery_codes: None,
        })
    }
}

impl<S: crate::store::EventStore> Accounts<S> {
    /// Writes `event`, which follows a change already committed (a lock that began with a
    /// failed check): a store failure is logged and counted, never the request's failure.
    pub(crate) async fn emit(&self, event: &crate::model::event::AccountEvent) {
        if let Err(err) = self.store.emit(event).await {
            shared::metrics::count(shared::metrics::Metric::StoreFailures);
            tracing::error!(
                event = event.kind.as_str(),
                error = %shared::error_chain(&err),
                "an event was not written"
            );
        }
    }
}
