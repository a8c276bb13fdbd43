//! Every way a request can fail, and how each is answered: RFC 9457 problem details.

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;
use shared::TokenError;

use accounts::passwords::HashError;
use accounts::store::StoreError;

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
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("the account changed while the request ran")]
    Conflict,
    #[error("missing or invalid access token")]
    InvalidToken,
    #[error("no such route")]
    NotFound,
    #[error("the token's user does not exist")]
    UserNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
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
    #[error("the password is wrong")]
    WrongPassword,
    /// A browser request from an origin that is not listed (a preflight, or a request the
    /// refresh cookie would authenticate).
    #[error("origin not allowed")]
    OriginNotAllowed,
    #[error("a cookie-authenticated request without X-Requested-With")]
    CsrfHeaderMissing,
    /// `/login/mfa`: the code is wrong or was used already.
    #[error("wrong or used second-factor code")]
    InvalidMfaCode,
    /// `/login/mfa`: the mfa_token is unknown, expired or used.
    #[error("invalid, expired or used mfa_token")]
    InvalidMfaToken,
    /// A protected MFA route: the code is wrong or was used already.
    #[error("wrong or used code")]
    WrongCode,
    /// A sensitive change of a two-factor user came without a current `code`.
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
    /// The store failed, timed out or throttled: worth a retry (503).
    #[error("user store unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// A fault of the deployment or of this code (500). The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// Any cause of an internal error.
pub use accounts::BoxError;

impl ApiError {
    /// An internal error caused by `cause`.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        ApiError::Internal(cause.into())
    }

    /// Whether this is a fault on our side (5xx), whose cause must be logged.
    pub fn is_fault(&self) -> bool {
        matches!(self, ApiError::StoreUnavailable(_) | ApiError::Internal(_))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => ApiError::EmailTaken,
            StoreError::Conflict => ApiError::Conflict,
            StoreError::Unavailable(_) => ApiError::StoreUnavailable(err),
            StoreError::Internal(_) => ApiError::Internal(Box::new(err)),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        ApiError::internal(err)
    }
}

impl From<TokenError> for ApiError {
    /// Only signing reaches here: a refused token is answered where it is verified.
    fn from(err: TokenError) -> Self {
        ApiError::internal(err)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::MalformedBody(_) | ApiError::InvalidActionToken => {
                StatusCode::BAD_REQUEST
            }
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::EmailTaken | ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::InvalidCredentials
            | ApiError::InvalidToken
            | ApiError::InvalidRefreshToken
            | ApiError::InvalidMfaCode
            | ApiError::InvalidMfaToken => StatusCode::UNAUTHORIZED,
            ApiError::MfaAlreadyEnabled
            | ApiError::MfaNotEnabled
            | ApiError::MfaEnrollmentMissing => StatusCode::CONFLICT,
            ApiError::WrongCurrentPassword
            | ApiError::WrongPassword
            | ApiError::AccountDisabled
            | ApiError::EmailNotVerified
            | ApiError::OriginNotAllowed
            | ApiError::CsrfHeaderMissing
            | ApiError::MfaCodeRequired
            | ApiError::WrongCode => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::UserNotFound | ApiError::SessionNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyAttempts { .. }
            | ApiError::TooManyMails { .. }
            | ApiError::TooManyTokenChecks { .. }
            | ApiError::TooManyRegistrations { .. }
            | ApiError::MfaLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            ApiError::EmailTaken => (
                "email-taken",
                "Email already registered",
                "An account with this email already exists.".into(),
            ),
            ApiError::InvalidCredentials => (
                "invalid-credentials",
                "Invalid credentials",
                "The email or password is incorrect.".into(),
            ),
            ApiError::InvalidRefreshToken => (
                "invalid-refresh-token",
                "Invalid refresh token",
                "The refresh token is unknown, expired, spent or revoked; log in again.".into(),
            ),
            ApiError::WrongCurrentPassword => (
                "wrong-current-password",
                "Wrong current password",
                "current_password does not match the account's password.".into(),
            ),
            ApiError::Conflict => (
                "conflict",
                "Conflict",
                "The account changed while this request ran; nothing was changed. Retry.".into(),
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
            ApiError::UserNotFound => (
                "user-not-found",
                "User not found",
                "The account this token was issued to no longer exists.".into(),
            ),
            ApiError::MethodNotAllowed { allow } => (
                "method-not-allowed",
                "Method not allowed",
                format!("This route accepts: {allow}."),
            ),
            ApiError::TooManyMails {
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
            ApiError::TooManyTokenChecks {
                retry_after_seconds,
            } => (
                "too-many-token-checks",
                "Too many link checks",
                format!("Too many links were checked from this address; retry in {retry_after_seconds} s."),
            ),
            ApiError::TooManyRegistrations {
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
            ApiError::InvalidActionToken => (
                "invalid-link-token",
                "Invalid link",
                "This link is invalid, has expired, was replaced by a newer one or was used already; ask for a new one.".into(),
            ),
            ApiError::EmailNotVerified => (
                "email-not-verified",
                "Email not verified",
                "This account's email address is not verified yet: open the link in the verification mail, or ask for a new one at /email/verify/resend.".into(),
            ),
            ApiError::SessionNotFound => (
                "session-not-found",
                "Session not found",
                "You have no session with this id.".into(),
            ),
            ApiError::AccountDisabled => (
                "account-disabled",
                "Account disabled",
                "This account has been disabled by an administrator.".into(),
            ),
            ApiError::WrongPassword => (
                "wrong-password",
                "Wrong password",
                "password does not match the account's password.".into(),
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
            ApiError::InvalidMfaCode => (
                "invalid-mfa-code",
                "Invalid code",
                "The code is wrong, or was used already; enter the current code of your \
                 authenticator app, or an unused recovery code."
                    .into(),
            ),
            ApiError::InvalidMfaToken => (
                "invalid-mfa-token",
                "Invalid mfa_token",
                "The mfa_token is unknown, has expired or was used; log in again.".into(),
            ),
            ApiError::WrongCode => (
                "wrong-code",
                "Wrong code",
                "code is not the current code of your authenticator app nor an unused recovery \
                 code (or it was used already)."
                    .into(),
            ),
            ApiError::MfaCodeRequired => (
                "mfa-code-required",
                "Second-factor code required",
                "This account has two-factor sign-in: send the current code of your \
                 authenticator app, or an unused recovery code, as code."
                    .into(),
            ),
            ApiError::MfaLocked {
                retry_after_seconds,
            } => (
                "mfa-locked",
                "Second-factor codes paused",
                format!(
                    "Too many wrong second-factor codes were entered for this account: every code \
                     is refused for now; retry in {retry_after_seconds} s."
                ),
            ),
            ApiError::MfaAlreadyEnabled => (
                "mfa-already-enabled",
                "Two-factor sign-in already on",
                "Turn it off first (/mfa/totp/disable) to enroll another authenticator.".into(),
            ),
            ApiError::MfaNotEnabled => (
                "mfa-not-enabled",
                "Two-factor sign-in is off",
                "Enroll an authenticator first (/mfa/totp/enroll, then /mfa/totp/confirm).".into(),
            ),
            ApiError::MfaEnrollmentMissing => (
                "mfa-enrollment-missing",
                "No enrollment to confirm",
                "No enrollment waits for its first code, or it expired; start again at \
                 /mfa/totp/enroll."
                    .into(),
            ),
            ApiError::TooManyAttempts {
                retry_after_seconds,
            } => (
                "too-many-attempts",
                "Too many failed logins",
                format!(
                    "Password checks for this account are paused after repeated failures; retry in {retry_after_seconds} s."
                ),
            ),
            ApiError::StoreUnavailable(_) => (
                "service-unavailable",
                "Service unavailable",
                "The user store is unavailable right now; retry shortly.".into(),
            ),
            ApiError::Internal(_) => (
                "internal-error",
                "Internal server error",
                "The request could not be completed.".into(),
            ),
        }
    }

    /// The problem+json response. Carries no internals: causes are logged, not sent.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let (slug, title, detail) = self.slug_title_detail();
        let mut body = json!({
            "type": format!("urn:problem-type:auth:{slug}"),
            "title": title,
            "status": status.as_u16(),
            "detail": detail,
        });
        if let ApiError::Validation(errors) = &self {
            body["errors"] = json!(errors);
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
            ApiError::StoreUnavailable(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            ApiError::TooManyMails {
                retry_after_seconds,
            }
            | ApiError::TooManyTokenChecks {
                retry_after_seconds,
            }
            | ApiError::TooManyRegistrations {
                retry_after_seconds,
                ..
            }
            | ApiError::MfaLocked {
                retry_after_seconds,
            } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            }
            ApiError::TooManyAttempts {
                retry_after_seconds,
            } => {
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
