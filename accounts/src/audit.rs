//! The audit trail: one structured log line per thing that happened to an account, naming the
//! event, the user and where the request came from. Never a secret.

use shared::metrics::Metric;

use crate::model::client::Client;

/// What happened. The names (`as_str`) are what log queries and the docs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Registered,
    RegistrationEmailTaken,
    RegistrationLimitReached,
    LoginSucceeded,
    LoginFailed,
    LoginRefusedDisabled,
    LoginRefusedUnverified,
    LoginMfaRequired,
    LoginMfaFailed,
    /// A login backoff began for an (email, source).
    BackoffStarted,
    /// The per-email limit of failures from unfamiliar addresses was reached.
    EmailLimitReached,
    LoggedOut,
    LoggedOutEverywhere,
    SessionEnded,
    RefreshReused,
    PasswordChanged,
    PasswordChangeFailed,
    AccountDeleted,
    AccountDeleteFailed,
    VerificationSent,
    VerificationNotSent,
    EmailVerified,
    ResetRequested,
    ResetNotSent,
    PasswordReset,
    NoticeNotSent,
    MfaEnrollmentStarted,
    MfaEnrollFailed,
    MfaConfirmFailed,
    MfaEnabled,
    MfaDisabled,
    MfaDisableFailed,
    MfaLocked,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    RecoveryCodesFailed,
    /// A machine client got an access token.
    ClientTokenIssued,
    /// A machine client's authentication failed (or was refused for too many failures).
    ClientAuthFailed,
    AuthorizationCodeIssued,
    AuthorizationCodeReused,
    ConsentGranted,
    ConsentDenied,
    OidcTokensIssued,
    OidcLoggedOut,
    ConsentRevoked,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyRenamed,
    /// A sign-in, or its second step, with a passkey.
    PasskeySignedIn,
    /// A passkey's response was refused (`reason` says why).
    PasskeyRefused,
    /// The password or code before adding or removing a passkey was wrong.
    PasskeyChangeFailed,
    /// A device asked for a device code (RFC 8628).
    DeviceAuthorizationStarted,
    /// The user allowed a device on the device page.
    DeviceApproved,
    /// The user denied a device.
    DeviceDenied,
    /// A device polled and got its tokens: its session began.
    DeviceTokensIssued,
    /// A user code on the device page was unknown, expired or decided (`reason` `unknown`),
    /// or lookups were over their limit (`limited`).
    UserCodeRefused,
    /// The `before-user-created` hook denied a registration.
    RegistrationDenied,
    /// A hook failed, timed out or answered out of contract (`reason` says which).
    HookFailed,
    /// A sign-in at another provider began.
    FederationStarted,
    /// A sign-in at another provider came back and signed the user in.
    FederatedSignedIn,
    /// A sign-in at another provider could not be completed (`reason` says why: `state`,
    /// `cancelled`, `id_token`, `unreachable`, …).
    FederationFailed,
    /// A first sign-in at another provider made a new account.
    FederatedRegistered,
    /// An identity at another provider was linked to an account.
    IdentityLinked,
    /// A first sign-in at another provider found an account of its email that it may not
    /// link to: the user must sign in to it first.
    FederationLinkRefused,
    /// The user unlinked an identity at another provider.
    IdentityUnlinked,
}

impl Event {
    /// Every event, for checks over all of them.
    pub const ALL: [Event; 65] = [
        Event::Registered,
        Event::RegistrationEmailTaken,
        Event::RegistrationLimitReached,
        Event::LoginSucceeded,
        Event::LoginFailed,
        Event::LoginRefusedDisabled,
        Event::LoginRefusedUnverified,
        Event::LoginMfaRequired,
        Event::LoginMfaFailed,
        Event::BackoffStarted,
        Event::EmailLimitReached,
        Event::LoggedOut,
        Event::LoggedOutEverywhere,
        Event::SessionEnded,
        Event::RefreshReused,
        Event::PasswordChanged,
        Event::PasswordChangeFailed,
        Event::AccountDeleted,
        Event::AccountDeleteFailed,
        Event::VerificationSent,
        Event::VerificationNotSent,
        Event::EmailVerified,
        Event::ResetRequested,
        Event::ResetNotSent,
        Event::PasswordReset,
        Event::NoticeNotSent,
        Event::MfaEnrollmentStarted,
        Event::MfaEnrollFailed,
        Event::MfaConfirmFailed,
        Event::MfaEnabled,
        Event::MfaDisabled,
        Event::MfaDisableFailed,
        Event::MfaLocked,
        Event::RecoveryCodeUsed,
        Event::RecoveryCodesRegenerated,
        Event::RecoveryCodesFailed,
        Event::ClientTokenIssued,
        Event::ClientAuthFailed,
        Event::AuthorizationCodeIssued,
        Event::AuthorizationCodeReused,
        Event::ConsentGranted,
        Event::ConsentDenied,
        Event::OidcTokensIssued,
        Event::OidcLoggedOut,
        Event::ConsentRevoked,
        Event::PasskeyAdded,
        Event::PasskeyRemoved,
        Event::PasskeyRenamed,
        Event::PasskeySignedIn,
        Event::PasskeyRefused,
        Event::PasskeyChangeFailed,
        Event::DeviceAuthorizationStarted,
        Event::DeviceApproved,
        Event::DeviceDenied,
        Event::DeviceTokensIssued,
        Event::UserCodeRefused,
        Event::RegistrationDenied,
        Event::HookFailed,
        Event::FederationStarted,
        Event::FederatedSignedIn,
        Event::FederationFailed,
        Event::FederatedRegistered,
        Event::IdentityLinked,
        Event::FederationLinkRefused,
        Event::IdentityUnlinked,
    ];

    /// The name in the log line's `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Registered => "registered",
            Event::RegistrationEmailTaken => "registration_email_taken",
            Event::RegistrationLimitReached => "registration_limit_reached",
            Event::LoginSucceeded => "login_succeeded",
            Event::LoginFailed => "login_failed",
            Event::LoginRefusedDisabled => "login_refused_disabled",
            Event::LoginRefusedUnverified => "login_refused_unverified",
            Event::LoginMfaRequired => "login_mfa_required",
            Event::LoginMfaFailed => "login_mfa_failed",
            Event::BackoffStarted => "backoff_started",
            Event::EmailLimitReached => "email_limit_reached",
            Event::LoggedOut => "logged_out",
            Event::LoggedOutEverywhere => "logged_out_everywhere",
            Event::SessionEnded => "session_ended",
            Event::RefreshReused => "refresh_reused",
            Event::PasswordChanged => "password_changed",
            Event::PasswordChangeFailed => "password_change_failed",
            Event::AccountDeleted => "account_deleted",
            Event::AccountDeleteFailed => "account_delete_failed",
            Event::VerificationSent => "verification_sent",
            Event::VerificationNotSent => "verification_not_sent",
            Event::EmailVerified => "email_verified",
            Event::ResetRequested => "reset_requested",
            Event::ResetNotSent => "reset_not_sent",
            Event::PasswordReset => "password_reset",
            Event::NoticeNotSent => "notice_not_sent",
            Event::MfaEnrollmentStarted => "mfa_enrollment_started",
            Event::MfaEnrollFailed => "mfa_enroll_failed",
            Event::MfaConfirmFailed => "mfa_confirm_failed",
            Event::MfaEnabled => "mfa_enabled",
            Event::MfaDisabled => "mfa_disabled",
            Event::MfaDisableFailed => "mfa_disable_failed",
            Event::MfaLocked => "mfa_locked",
            Event::RecoveryCodeUsed => "recovery_code_used",
            Event::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Event::RecoveryCodesFailed => "recovery_codes_failed",
            Event::ClientTokenIssued => "client_token_issued",
            Event::ClientAuthFailed => "client_auth_failed",
            Event::AuthorizationCodeIssued => "authorization_code_issued",
            Event::AuthorizationCodeReused => "authorization_code_reused",
            Event::ConsentGranted => "consent_granted",
            Event::ConsentDenied => "consent_denied",
            Event::OidcTokensIssued => "oidc_tokens_issued",
            Event::OidcLoggedOut => "oidc_logged_out",
            Event::ConsentRevoked => "consent_revoked",
            Event::PasskeyAdded => "passkey_added",
            Event::PasskeyRemoved => "passkey_removed",
            Event::PasskeyRenamed => "passkey_renamed",
            Event::PasskeySignedIn => "passkey_signed_in",
            Event::PasskeyRefused => "passkey_refused",
            Event::PasskeyChangeFailed => "passkey_change_failed",
            Event::DeviceAuthorizationStarted => "device_authorization_started",
            Event::DeviceApproved => "device_approved",
            Event::DeviceDenied => "device_denied",
            Event::DeviceTokensIssued => "device_tokens_issued",
            Event::UserCodeRefused => "user_code_refused",
            Event::RegistrationDenied => "registration_denied",
            Event::HookFailed => "hook_failed",
            Event::FederationStarted => "federation_started",
            Event::FederatedSignedIn => "federated_signed_in",
            Event::FederationFailed => "federation_failed",
            Event::FederatedRegistered => "federated_registered",
            Event::IdentityLinked => "identity_linked",
            Event::FederationLinkRefused => "federation_link_refused",
            Event::IdentityUnlinked => "identity_unlinked",
        }
    }

    /// The metric this event counts toward, for the ones alarms and the dashboard watch.
    pub fn metric(self) -> Option<Metric> {
        Some(match self {
            Event::LoginSucceeded | Event::PasskeySignedIn | Event::FederatedSignedIn => {
                Metric::LoginSucceeded
            }
            Event::PasskeyRefused => Metric::PasskeysRefused,
            Event::LoginFailed | Event::LoginRefusedDisabled => Metric::LoginFailed,
            Event::LoginMfaFailed => Metric::MfaFailed,
            Event::BackoffStarted | Event::EmailLimitReached => Metric::BackoffStarted,
            Event::Registered | Event::FederatedRegistered => Metric::Registrations,
            Event::RefreshReused => Metric::RefreshReuse,
            Event::MfaEnabled => Metric::MfaEnabled,
            Event::PasswordReset => Metric::PasswordResets,
            Event::ClientAuthFailed => Metric::ClientAuthFailed,
            Event::AuthorizationCodeIssued => Metric::CodesIssued,
            Event::AuthorizationCodeReused => Metric::CodeReuse,
            Event::DeviceTokensIssued => Metric::DeviceTokensIssued,
            Event::UserCodeRefused => Metric::UserCodesRefused,
            Event::HookFailed => Metric::HookFailures,
            _ => return None,
        })
    }
}

/// Writes the audit line for `event` (and counts its metric, if it has one).
pub fn record(event: Event, user_id: Option<&str>, client: &Client) {
    tracing::info!(
        event = event.as_str(),
        user_id,
        source_ip = client.address(),
        "audit"
    );
    if let Some(metric) = event.metric() {
        shared::metrics::count(metric);
    }
}

/// Writes the audit line for a refusal `event` with its `reason` (never a secret: a fixed
/// word).
pub fn record_refusal(event: Event, user_id: Option<&str>, reason: &'static str, client: &Client) {
    tracing::info!(
        event = event.as_str(),
        user_id,
        reason,
        source_ip = client.address(),
        "audit"
    );
    if let Some(metric) = event.metric() {
        shared::metrics::count(metric);
    }
}

/// Writes the audit line for `event` of a user at an OAuth client (the authorization code
/// flow): both ids, neither a secret.
pub fn record_user_at_client(event: Event, user_id: &str, client_id: &str, client: &Client) {
    tracing::info!(
        event = event.as_str(),
        user_id,
        client_id,
        source_ip = client.address(),
        "audit"
    );
    if let Some(metric) = event.metric() {
        shared::metrics::count(metric);
    }
}

/// Writes the audit line for a machine client's `event` (`client_id` where the request named
/// a well-formed one; `reason` for a refusal), and counts its metric: tokens issued per client.
pub fn record_client(
    event: Event,
    client_id: Option<&str>,
    reason: Option<&'static str>,
    client: &Client,
) {
    tracing::info!(
        event = event.as_str(),
        client_id,
        reason,
        source_ip = client.address(),
        "audit"
    );
    match (event, client_id) {
        (Event::ClientTokenIssued, Some(id)) => {
            shared::metrics::emit(&[("ClientId", id)], &[(Metric::ClientTokensIssued, 1.0)]);
        }
        _ => {
            if let Some(metric) = event.metric() {
                shared::metrics::count(metric);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_watched_events_count_toward_the_metrics_the_alarms_name() {
        // FailedLoginSpikeAlarm and RefreshReuseAlarm watch these (tests/it/openapi.rs ties
        // every alarm's metric to shared::metrics::Metric).
        assert_eq!(Event::LoginFailed.metric(), Some(Metric::LoginFailed));
        assert_eq!(
            Event::LoginRefusedDisabled.metric(),
            Some(Metric::LoginFailed)
        );
        assert_eq!(Event::RefreshReused.metric(), Some(Metric::RefreshReuse));
    }

    #[test]
    fn every_event_has_its_own_name() {
        let names: HashSet<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), Event::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }
}
