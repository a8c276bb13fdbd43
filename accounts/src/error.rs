//! Every way an account flow can fail. The doors map each to their own answer (the JSON API
//! to RFC 9457 problems, in one place); the names say what happened, not how to answer it.

use shared::TokenError;

use crate::passwords::HashError;
use crate::store::StoreError;

/// A boxed cause, for errors that wrap whatever a dependency failed with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("the password is wrong")]
    WrongPassword,
    /// A new password the rules refuse, found only once the account is known (a reset): each
    /// problem, for the `new_password` field.
    #[error("the new password is refused")]
    NewPasswordRefused(Vec<String>),
    #[error("the account changed while the request ran")]
    Conflict,
    #[error("the caller's account does not exist")]
    UserNotFound,
    #[error("too many failed logins")]
    TooManyAttempts { retry_after_seconds: u64 },
    #[error("too many mails asked for this address")]
    TooManyMails { retry_after_seconds: u64 },
    #[error("too many link checks from this address")]
    TooManyTokenChecks { retry_after_seconds: u64 },
    #[error("too many registrations from this address")]
    TooManyRegistrations {
        limit: u32,
        retry_after_seconds: u64,
    },
    #[error("invalid, expired or spent link token")]
    InvalidActionToken,
    #[error("the email address is not verified")]
    EmailNotVerified,
    #[error("no such session of the caller")]
    SessionNotFound,
    #[error("the account is disabled")]
    AccountDisabled,
    /// At sign-in: the code is wrong or was used already.
    #[error("wrong or used second-factor code")]
    InvalidMfaCode,
    /// At sign-in: the mfa_token is unknown, expired or used.
    #[error("invalid, expired or used mfa_token")]
    InvalidMfaToken,
    /// A change to the account: the code is wrong or was used already.
    #[error("wrong or used code")]
    WrongCode,
    /// A sensitive change of a two-factor user came without a current code.
    #[error("a second-factor code is required")]
    MfaCodeRequired,
    /// Too many consecutive wrong second-factor codes: every code is refused for a while.
    #[error("second-factor codes are paused for this account")]
    MfaLocked { retry_after_seconds: u64 },
    #[error("two-factor sign-in is already on")]
    MfaAlreadyEnabled,
    #[error("two-factor sign-in is off")]
    MfaNotEnabled,
    #[error("no enrollment waits for its first code")]
    MfaEnrollmentMissing,
    /// Passkeys are not set up here (no `WEBAUTHN_RP_ID`).
    #[error("passkeys are not enabled")]
    PasskeysUnavailable,
    /// A passkey ceremony's `challenge_id` is unknown, expired, used, of another ceremony or
    /// user, or the account changed since its options (password change, logout-all).
    #[error("invalid, expired or used passkey challenge")]
    PasskeyChallengeInvalid,
    /// A passkey's response failed a check (its reason is audited, not shown).
    #[error("passkey refused: {0}")]
    PasskeyRefused(crate::model::webauthn::Refusal),
    /// A new passkey's registration response failed a check.
    #[error("passkey not added: {0}")]
    PasskeyNotCreated(crate::model::webauthn::Refusal),
    #[error("no such passkey of the caller")]
    PasskeyNotFound,
    #[error("the account has as many passkeys as it may")]
    TooManyPasskeys,
    /// A machine client's authentication failed: unknown, disabled or public client, or a
    /// wrong secret (one answer for all).
    #[error("client authentication failed")]
    InvalidClient,
    /// The client may not use the grant it asked for.
    #[error("the client may not use this grant")]
    UnauthorizedClient,
    /// A scope asked for is malformed or not allowed to the client.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// Too many failed client authentications for this client or from this address.
    #[error("too many failed client authentications")]
    TooManyClientAttempts { retry_after_seconds: u64 },
    /// An authorization code or refresh token at the token endpoint is unknown, expired,
    /// spent, or bound to another client, redirect URI or PKCE verifier (RFC 6749
    /// `invalid_grant`).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// RFC 8628 §3.5: the user has not yet allowed or denied the device.
    #[error("the device authorization is pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5: the device polled sooner than its interval allows; the interval is now
    /// `interval_seconds`.
    #[error("the device polls too fast")]
    SlowDown { interval_seconds: i64 },
    /// RFC 8628 §3.5: the user denied the device.
    #[error("the user denied the device")]
    DeviceDenied,
    /// RFC 8628 §3.5: the device code has expired.
    #[error("the device code has expired")]
    DeviceCodeExpired,
    /// The user code on the device page names no pending grant (malformed, unknown,
    /// expired, already decided).
    #[error("no pending device authorization has this user code")]
    UserCodeInvalid,
    /// The `before-user-created` hook denied the registration, with this message for the
    /// user.
    #[error("registration denied by the deployment's hook")]
    RegistrationDenied(String),
    /// A hook failed and failures close: the change was not made.
    #[error("a hook is unavailable")]
    HookUnavailable,
    /// Too many user codes were looked up from this address, or from all together.
    #[error("too many user codes entered")]
    TooManyUserCodes { retry_after_seconds: u64 },
    /// The caller allowed that client nothing.
    #[error("no such consent of the caller")]
    ConsentNotFound,
    /// No provider of this deployment has this id.
    #[error("no such identity provider")]
    UnknownProvider,
    /// A provider's callback names no sign-in under way in this browser: expired, used,
    /// started elsewhere, or never started (a login CSRF).
    #[error("no sign-in at this provider is under way in this browser")]
    FederationStateInvalid,
    /// The user (or the provider) cancelled the sign-in at the provider.
    #[error("the sign-in at the provider was cancelled")]
    FederationCancelled,
    /// The provider's answer could not be trusted or used (a refused code, an ID token that
    /// does not check out, no usable subject).
    #[error("the provider's answer was refused")]
    FederationRefused,
    /// The provider could not be reached or failed: worth a retry.
    #[error("the provider is unavailable")]
    FederationUnavailable,
    /// An account has this email, and the provider's word is not enough to link to it: the
    /// user signs in to that account first and links the provider from there.
    #[error("an account with this email exists; sign in to it first")]
    FederationSignInFirst,
    /// The account has a second factor, and the provider (not trusted for one, or without
    /// asserting one) cannot stand in for it: the user signs in with their password.
    #[error("the account's second factor is needed")]
    FederationNeedsSecondFactor,
    /// The provider shared no email address to make an account with.
    #[error("the provider shared no email address")]
    FederationNoEmail,
    /// The identity at the provider is linked to another account already.
    #[error("the identity is linked to another account")]
    IdentityTaken,
    /// The caller has no identity with this id.
    #[error("no such identity of the caller")]
    IdentityNotFound,
    /// The identity is the account's last way to sign in (no password, passkey or other
    /// identity).
    #[error("the last way to sign in cannot be removed")]
    LastSignInMethod,
    /// The one-time code of a finished federated sign-in is unknown, used or expired.
    #[error("the sign-in code is unknown, used or expired")]
    FederationCodeInvalid,
    /// The store failed, timed out or throttled: worth a retry.
    #[error("user store unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// A fault of the deployment or of this code. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    /// An internal error caused by `cause`.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Error::Internal(cause.into())
    }

    /// Whether this is a fault on our side, whose cause must be logged.
    pub fn is_fault(&self) -> bool {
        matches!(self, Error::StoreUnavailable(_) | Error::Internal(_))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => Error::EmailTaken,
            StoreError::Conflict => Error::Conflict,
            StoreError::Unavailable(_) => Error::StoreUnavailable(err),
            StoreError::Internal(_) => Error::Internal(Box::new(err)),
        }
    }
}

impl From<HashError> for Error {
    fn from(err: HashError) -> Self {
        Error::internal(err)
    }
}

impl From<TokenError> for Error {
    /// Only signing reaches here: a refused token is answered where it is verified.
    fn from(err: TokenError) -> Self {
        Error::internal(err)
    }
}
