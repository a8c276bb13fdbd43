//! Every way a request can fail, and how each is answered, in one place: RFC 9457 problem
//! details, for the HTTP face's own refusals and for every [`accounts::error::Error`].

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

use accounts::error::Error;

use crate::http::oauth::OAuthError;

/// One problem with one field of the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body failed validation")]
    Validation(Vec<FieldError>),
    #[error("request body is not usable: {0}")]
    MalformedBody(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("request body too large")]
    PayloadTooLarge { limit: usize },
    #[error("missing or invalid access token")]
    InvalidToken,
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// A browser request from an origin that is not listed (a preflight, or a request the
    /// refresh cookie would authenticate).
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("a cookie-authenticated request without X-Requested-With")]
    CsrfHeaderMissing,
    /// What an account flow refused or failed with.
    #[error(transparent)]
    Account(#[from] Error),
    /// A refusal of an OAuth endpoint, answered as RFC 6749 §5.2 JSON.
    #[error(transparent)]
    OAuth(Box<OAuthError>),
}

impl From<OAuthError> for ApiError {
    fn from(err: OAuthError) -> Self {
        ApiError::OAuth(Box::new(err))
    }
}

/// Any cause of an internal error.
pub use accounts::error::BoxError;

impl ApiError {
    /// An internal error of the HTTP face, caused by `cause`.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        ApiError::Account(Error::internal(cause))
    }

    /// Whether this is a fault on our side (5xx), whose cause must be logged.
    pub fn is_fault(&self) -> bool {
        match self {
            ApiError::Account(e) => e.is_fault(),
            ApiError::OAuth(e) => e.is_fault(),
            _ => false,
        }
    }

    /// The account flow's error behind this one, if any (for the fault metrics).
    pub fn account_error(&self) -> Option<&Error> {
        match self {
            ApiError::Account(e) => Some(e),
            ApiError::OAuth(e) => e.fault.as_ref(),
            _ => None,
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::OriginNotAllowed | ApiError::CsrfHeaderMissing => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Account(e) => account_status(e),
            ApiError::OAuth(e) => e.status(),
        }
    }

    fn slug_title_detail(&self) -> (&'static str, &'static str, String) {
        match self {
            ApiError::Validation(_) => (
                "validation-failed",
                "Validation failed",
                "One or more fields are invalid; see errors.".into(),
            ),
            ApiError::MalformedBody(why) => {
                ("malformed-body", "Malformed request body", why.clone())
            }
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as JSON with Content-Type: application/json.".into(),
            ),
            ApiError::PayloadTooLarge { limit } => (
                "payload-too-large",
                "Payload too large",
                format!("The request body must be at most {limit} bytes."),
            ),
            ApiError::InvalidToken => (
                "invalid-token",
                "Unauthorized",
                "A valid access token is required (Authorization: Bearer <token>).".into(),
            ),
            ApiError::NotFound => (
                "not-found",
                "Not found",
                "No route matches this path.".into(),
            ),
            ApiError::MethodNotAllowed { allow } => (
                "method-not-allowed",
                "Method not allowed",
                format!("This route accepts: {allow}."),
            ),
            ApiError::OriginNotAllowed => (
                "origin-not-allowed",
                "Origin not allowed",
                "This origin may not call this API from a browser, or a request the refresh \
                 cookie would authenticate came without an allowed Origin header."
                    .into(),
            ),
            ApiError::CsrfHeaderMissing => (
                "csrf-header-missing",
                "X-Requested-With required",
                "A request the refresh cookie authenticates must carry an X-Requested-With \
                 header (any value), which a cross-site form cannot send."
                    .into(),
            ),
            ApiError::Account(e) => account_slug_title_detail(e),
            ApiError::OAuth(e) => ("oauth", "OAuth error", e.description.clone()),
        }
    }

    /// The problem+json response. Carries no internals: causes are logged, not sent.
    pub fn into_response(self) -> Response<Body> {
        if let ApiError::OAuth(e) = self {
            return e.into_response();
        }
        let status = self.status();
        let (slug, title, detail) = self.slug_title_detail();
        let mut body = json!({
            "type": format!("urn:problem-type:auth:{slug}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        match &self {
            ApiError::Validation(errors) => body["errors"] = json!(errors),
            ApiError::Account(Error::NewPasswordRefused(problems)) => {
                let errors: Vec<FieldError> = problems
                    .iter()
                    .map(|m| FieldError::new("new_password", m.clone()))
                    .collect();
                body["errors"] = json!(errors);
            }
            _ => {}
        }
        let mut response = Response::new(Body::Text(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            ApiError::MethodNotAllowed { allow } => {
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    headers.insert(ALLOW, value);
                }
            }
            ApiError::Account(Error::StoreUnavailable(_)) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            ApiError::Account(
                Error::TooManyMails {
                    retry_after_seconds,
                }
                | Error::TooManyTokenChecks {
                    retry_after_seconds,
                }
                | Error::TooManyRegistrations {
                    retry_after_seconds,
                    ..
                }
                | Error::MfaLocked {
                    retry_after_seconds,
                }
                | Error::TooManyAttempts {
                    retry_after_seconds,
                },
            ) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            ApiError::InvalidToken => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer error="invalid_token""#),
                );
            }
            _ => {}
        }
        response
    }
}

/// The status of what an account flow refused or failed with.
pub(crate) fn account_status(err: &Error) -> StatusCode {
    match err {
        Error::InvalidActionToken
        | Error::NewPasswordRefused(_)
        | Error::PasskeyChallengeInvalid
        | Error::PasskeyNotCreated(_) => StatusCode::BAD_REQUEST,
        Error::PasskeyRefused(_) => StatusCode::UNAUTHORIZED,
        Error::TooManyPasskeys => StatusCode::CONFLICT,
        Error::PasskeysUnavailable | Error::PasskeyNotFound => StatusCode::NOT_FOUND,
        Error::EmailTaken
        | Error::Conflict
        | Error::MfaAlreadyEnabled
        | Error::MfaNotEnabled
        | Error::MfaEnrollmentMissing => StatusCode::CONFLICT,
        Error::InvalidCredentials
        | Error::InvalidRefreshToken
        | Error::InvalidMfaCode
        | Error::InvalidMfaToken => StatusCode::UNAUTHORIZED,
        Error::WrongCurrentPassword
        | Error::WrongPassword
        | Error::AccountDisabled
        | Error::EmailNotVerified
        | Error::MfaCodeRequired
        | Error::WrongCode => StatusCode::FORBIDDEN,
        Error::UserNotFound
        | Error::SessionNotFound
        | Error::ConsentNotFound
        | Error::IdentityNotFound => StatusCode::NOT_FOUND,
        Error::LastSignInMethod | Error::IdentityTaken => StatusCode::CONFLICT,
        // The token endpoint answers these as RFC 6749 errors (http::oauth); here only for
        // completeness.
        Error::InvalidClient => StatusCode::UNAUTHORIZED,
        Error::UnauthorizedClient
        | Error::InvalidScope(_)
        | Error::InvalidGrant(_)
        | Error::AuthorizationPending
        | Error::SlowDown { .. }
        | Error::DeviceDenied
        | Error::DeviceCodeExpired
        | Error::UserCodeInvalid
        | Error::RegistrationDenied(_) => StatusCode::BAD_REQUEST,
        Error::HookUnavailable | Error::FederationUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Error::UnknownProvider => StatusCode::NOT_FOUND,
        Error::FederationStateInvalid
        | Error::FederationCancelled
        | Error::FederationRefused
        | Error::FederationNoEmail
        | Error::FederationCodeInvalid => StatusCode::BAD_REQUEST,
        Error::FederationSignInFirst => StatusCode::CONFLICT,
        Error::FederationNeedsSecondFactor => StatusCode::FORBIDDEN,
        Error::TooManyClientAttempts { .. } | Error::TooManyUserCodes { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        Error::TooManyAttempts { .. }
        | Error::TooManyMails { .. }
        | Error::TooManyTokenChecks { .. }
        | Error::TooManyRegistrations { .. }
        | Error::MfaLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The problem type, title and detail of what an account flow refused or failed with.
pub(crate) fn account_slug_title_detail(err: &Error) -> (&'static str, &'static str, String) {
    match err {
        Error::InvalidClient => (
            "invalid-client",
            "Invalid client",
            "Client authentication failed.".into(),
        ),
        Error::UnauthorizedClient => (
            "unauthorized-client",
            "Unauthorized client",
            "The client may not use this grant.".into(),
        ),
        Error::InvalidScope(why) => ("invalid-scope", "Invalid scope", why.clone()),
        Error::InvalidGrant(why) => ("invalid-grant", "Invalid grant", (*why).to_owned()),
        // The token endpoint answers these four as RFC 8628 errors.
        Error::AuthorizationPending => (
            "authorization-pending",
            "Authorization pending",
            "The user has not yet allowed or denied the device.".into(),
        ),
        Error::SlowDown { interval_seconds } => (
            "slow-down",
            "Slow down",
            format!("Wait {interval_seconds} seconds between polls."),
        ),
        Error::DeviceDenied => (
            "access-denied",
            "Access denied",
            "The user denied the device.".into(),
        ),
        Error::DeviceCodeExpired => (
            "expired-token",
            "Expired",
            "The device code has expired.".into(),
        ),
        Error::RegistrationDenied(message) => (
            "registration-denied",
            "Registration denied",
            message.clone(),
        ),
        Error::HookUnavailable => (
            "hook-unavailable",
            "Unavailable",
            "A check of this deployment is unavailable right now; retry shortly.".into(),
        ),
        Error::UnknownProvider => (
            "unknown-provider",
            "Unknown provider",
            "This deployment signs in with no provider of that name.".into(),
        ),
        Error::FederationStateInvalid => (
            "federation-expired",
            "Sign-in expired",
            "This sign-in expired, was finished already, or was started in another browser. \
             Start it again."
                .into(),
        ),
        Error::FederationCancelled => (
            "federation-cancelled",
            "Sign-in cancelled",
            "The sign-in at the provider was cancelled.".into(),
        ),
        Error::FederationRefused => (
            "federation-refused",
            "Sign-in refused",
            "The provider's answer could not be verified. Start the sign-in again.".into(),
        ),
        Error::FederationUnavailable => (
            "federation-unavailable",
            "Provider unavailable",
            "The provider could not be reached; retry shortly.".into(),
        ),
        Error::FederationSignInFirst => (
            "federation-sign-in-first",
            "Sign in to your account first",
            "An account with this email exists. Sign in to it the way you usually do, then \
             link this provider from your account."
                .into(),
        ),
        Error::FederationNeedsSecondFactor => (
            "federation-second-factor",
            "Two-step sign-in needed",
            "This account uses two-step sign-in, which this provider cannot stand in for. Sign \
             in with your password and your second step."
                .into(),
        ),
        Error::FederationNoEmail => (
            "federation-no-email",
            "No email address",
            "The provider shared no email address, which an account needs.".into(),
        ),
        Error::IdentityTaken => (
            "identity-taken",
            "Linked elsewhere",
            "That account at the provider is linked to another account here. Unlink it there \
             first."
                .into(),
        ),
        Error::IdentityNotFound => (
            "identity-not-found",
            "Identity not found",
            "No linked identity of yours has this id.".into(),
        ),
        Error::LastSignInMethod => (
            "last-sign-in-method",
            "Last way to sign in",
            "This provider is the account's only way to sign in. Set a password (reset it by \
             mail) or link another provider first."
                .into(),
        ),
        Error::FederationCodeInvalid => (
            "invalid-code",
            "Invalid code",
            "The sign-in code is unknown, used or expired; sign in again.".into(),
        ),
        Error::UserCodeInvalid => (
            "user-code-invalid",
            "Unknown code",
            "That code is not valid, has expired, or was used already. Check the code your \
             device shows."
                .into(),
        ),
        Error::TooManyUserCodes {
            retry_after_seconds,
        } => (
            "too-many-user-codes",
            "Too many codes",
            format!(
                "Too many codes were entered. Try again in {} minutes.",
                retry_after_seconds.div_ceil(60)
            ),
        ),
        Error::TooManyClientAttempts {
            retry_after_seconds,
        } => (
            "too-many-client-attempts",
            "Too many attempts",
            format!("Too many failed client authentications; retry in {retry_after_seconds} s."),
        ),
        Error::NewPasswordRefused(_) => (
            "validation-failed",
            "Validation failed",
            "One or more fields are invalid; see errors.".into(),
        ),
        Error::EmailTaken => (
            "email-taken",
            "Email already registered",
            "An account with this email already exists.".into(),
        ),
        Error::InvalidCredentials => (
            "invalid-credentials",
            "Invalid credentials",
            "The email or password is incorrect.".into(),
        ),
        Error::InvalidRefreshToken => (
            "invalid-refresh-token",
            "Invalid refresh token",
            "The refresh token is unknown, expired, spent or revoked; log in again.".into(),
        ),
        Error::WrongCurrentPassword => (
            "wrong-current-password",
            "Wrong current password",
            "current_password does not match the account's password.".into(),
        ),
        Error::Conflict => (
            "conflict",
            "Conflict",
            "The account changed while this request ran; nothing was changed. Retry.".into(),
        ),
        Error::UserNotFound => (
            "user-not-found",
            "User not found",
            "The account this token was issued to no longer exists.".into(),
        ),
        Error::TooManyMails {
            retry_after_seconds,
        } => (
            "too-many-mails",
            "Too many mails",
            format!(
                "Mail to this address is limited to {} a minute and {} an hour; retry in \
                 {retry_after_seconds} s.",
                accounts::recovery::MAILS_PER_MINUTE,
                accounts::recovery::MAILS_PER_HOUR
            ),
        ),
        Error::TooManyTokenChecks {
            retry_after_seconds,
        } => (
            "too-many-token-checks",
            "Too many link checks",
            format!("Too many links were checked from this address; retry in {retry_after_seconds} s."),
        ),
        Error::TooManyRegistrations {
            limit,
            retry_after_seconds,
        } => (
            "too-many-registrations",
            "Too many registrations",
            format!(
                "At most {limit} registrations an hour come from one address; retry in \
                 {retry_after_seconds} s."
            ),
        ),
        Error::InvalidActionToken => (
            "invalid-link-token",
            "Invalid link",
            "This link is invalid, has expired, was replaced by a newer one or was used already; ask for a new one.".into(),
        ),
        Error::EmailNotVerified => (
            "email-not-verified",
            "Email not verified",
            "This account's email address is not verified yet: open the link in the verification mail, or ask for a new one at /email/verify/resend.".into(),
        ),
        Error::SessionNotFound => (
            "session-not-found",
            "Session not found",
            "You have no session with this id.".into(),
        ),
        Error::PasskeysUnavailable => (
            "passkeys-unavailable",
            "Passkeys are not enabled",
            "This deployment has no WebAuthn relying party (WEBAUTHN_RP_ID): passkeys are off."
                .into(),
        ),
        Error::PasskeyChallengeInvalid => (
            "invalid-passkey-challenge",
            "Invalid challenge_id",
            "The challenge_id is unknown, has expired or was used, or the account changed since \
             its options were made: ask for new options and try again."
                .into(),
        ),
        Error::PasskeyRefused(_) => (
            "passkey-refused",
            "Passkey refused",
            "The passkey's response was not accepted; sign in another way or try again.".into(),
        ),
        Error::PasskeyNotCreated(_) => (
            "passkey-not-created",
            "Passkey not added",
            "The authenticator's response was not accepted for this site: ask for new options \
             and try again."
                .into(),
        ),
        Error::PasskeyNotFound => (
            "passkey-not-found",
            "Passkey not found",
            "You have no passkey with this id.".into(),
        ),
        Error::TooManyPasskeys => (
            "too-many-passkeys",
            "Too many passkeys",
            format!(
                "An account may hold {} passkeys: remove one first.",
                accounts::model::passkey::MAX_PASSKEYS
            ),
        ),
        Error::ConsentNotFound => (
            "consent-not-found",
            "Consent not found",
            "You have allowed no app with this client_id anything.".into(),
        ),
        Error::AccountDisabled => (
            "account-disabled",
            "Account disabled",
            "This account has been disabled by an administrator.".into(),
        ),
        Error::WrongPassword => (
            "wrong-password",
            "Wrong password",
            "password does not match the account's password.".into(),
        ),
        Error::InvalidMfaCode => (
            "invalid-mfa-code",
            "Invalid code",
            "The code is wrong, or was used already; enter the current code of your \
             authenticator app, or an unused recovery code."
                .into(),
        ),
        Error::InvalidMfaToken => (
            "invalid-mfa-token",
            "Invalid mfa_token",
            "The mfa_token is unknown, has expired or was used; log in again.".into(),
        ),
        Error::WrongCode => (
            "wrong-code",
            "Wrong code",
            "code is not the current code of your authenticator app nor an unused recovery \
             code (or it was used already)."
                .into(),
        ),
        Error::MfaCodeRequired => (
            "mfa-code-required",
            "Second-factor code required",
            "This account has two-factor sign-in: send the current code of your \
             authenticator app, or an unused recovery code, as code."
                .into(),
        ),
        Error::MfaLocked {
            retry_after_seconds,
        } => (
            "mfa-locked",
            "Second-factor codes paused",
            format!(
                "Too many wrong second-factor codes were entered for this account: every code \
                 is refused for now; retry in {retry_after_seconds} s."
            ),
        ),
        Error::MfaAlreadyEnabled => (
            "mfa-already-enabled",
            "Two-factor sign-in already on",
            "Turn it off first (/mfa/totp/disable) to enroll another authenticator.".into(),
        ),
        Error::MfaNotEnabled => (
            "mfa-not-enabled",
            "Two-factor sign-in is off",
            "Enroll an authenticator first (/mfa/totp/enroll, then /mfa/totp/confirm).".into(),
        ),
        Error::MfaEnrollmentMissing => (
            "mfa-enrollment-missing",
            "No enrollment to confirm",
            "No enrollment waits for its first code, or it expired; start again at \
             /mfa/totp/enroll."
                .into(),
        ),
        Error::TooManyAttempts {
            retry_after_seconds,
        } => (
            "too-many-attempts",
            "Too many failed logins",
            format!(
                "Password checks for this account are paused after repeated failures; retry in {retry_after_seconds} s."
            ),
        ),
        Error::StoreUnavailable(_) => (
            "service-unavailable",
            "Service unavailable",
            "The user store is unavailable right now; retry shortly.".into(),
        ),
        Error::Internal(_) => (
            "internal-error",
            "Internal server error",
            "The request could not be completed.".into(),
        ),
    }
}
