//! Account recovery and email verification: what the mails say, where their links lead, how
//! long their tokens live, and how sending is limited.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::mail::{Mail, MailDelivery};
use crate::model::credentials::Email;
use crate::model::link::{ActionSettings, ActionToken, Purpose};

/// Mails to one address per minute, and per hour (verification and reset together).
pub const MAILS_PER_MINUTE: u32 = 1;
pub const MAILS_PER_HOUR: u32 = 5;
/// Token checks (`/email/verify`, `/password/reset`) per source address and hour.
pub const TOKEN_CHECKS_PER_HOUR: u32 = 20;

/// How the recovery flows are set up (docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySettings {
    /// `APP_NAME`: the product named in the mails.
    pub app_name: String,
    /// `VERIFY_EMAIL_URL_TEMPLATE`: the verification link, `{token}` replaced by the token.
    pub verify_url: String,
    /// `RESET_PASSWORD_URL_TEMPLATE`: the reset link, likewise.
    pub reset_url: String,
    pub actions: ActionSettings,
    /// `REQUIRE_VERIFIED_EMAIL`: login refuses an unverified account (after the password).
    pub require_verified_email: bool,
    /// `MAIL_RESPONSE_FLOOR_MS`: `/password/forgot` and `/email/verify/resend` answer no
    /// sooner than this, so that a mail sent (to a known address) and none (unknown) take the
    /// same time.
    pub response_floor: Duration,
    /// `REGISTRATIONS_PER_SOURCE_PER_HOUR`: `/register` calls one client address may make in
    /// an hour (each new address gets a mail), counted before anything is written.
    pub registrations_per_source_per_hour: u32,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            app_name: "Serverless Auth".into(),
            // The token in the fragment: it never reaches a server's log, a proxy, analytics
            // or a Referer. local-api's example page reads it there.
            verify_url: "http://localhost:3001/verify-email#token={token}".into(),
            reset_url: "http://localhost:3001/reset-password#token={token}".into(),
            actions: ActionSettings::default(),
            require_verified_email: false,
            response_floor: Duration::from_millis(1000),
            registrations_per_source_per_hour: 10,
        }
    }
}

/// The recovery flows' state: where mail goes, and the settings.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub mail: MailDelivery,
    pub settings: RecoverySettings,
}

/// Whether `template` is a link template: an https URL (http only when its host is exactly
/// `localhost` or `127.0.0.1`: the URL is parsed, so `http://localhost.evil.example` is not
/// taken for `http://localhost`) with exactly one `{token}`, in the path, query or fragment
/// (and, in `APP_URL_TEMPLATE`, any `{action}`).
pub fn valid_url_template(template: &str) -> Result<(), String> {
    let (scheme, rest) = template
        .split_once("://")
        .ok_or("must be an https URL (http only for localhost and 127.0.0.1)")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') || authority.contains('{') {
        return Err("must name its host plainly: no user info, no {token} in the host".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
    .to_ascii_lowercase();
    let local = matches!(host.as_str(), "localhost" | "127.0.0.1");
    let scheme_ok = match scheme {
        "https" => !host.is_empty(),
        "http" => local,
        _ => false,
    };
    if !scheme_ok {
        return Err("must be an https URL (http only for localhost and 127.0.0.1)".into());
    }
    if template.matches("{token}").count() != 1 {
        return Err("must contain {token} exactly once".into());
    }
    if template
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '<' || c == '>')
    {
        return Err("must not contain spaces, quotes or angle brackets".into());
    }
    Ok(())
}

/// Lifetimes as people say them: "24 hours", "30 minutes".
fn lifetime(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds % 3600 == 0 {
        plural(seconds / 3600, "hour")
    } else {
        plural((seconds + 59) / 60, "minute")
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The mail that carries `token` for `purpose` to `to`.
pub fn compose(
    settings: &RecoverySettings,
    purpose: Purpose,
    to: &Email,
    token: &ActionToken,
) -> Mail {
    let encoded = token.encode();
    let (template, subject, action, not_you) = match purpose {
        Purpose::VerifyEmail => (
            &settings.verify_url,
            format!("Verify your email for {}", settings.app_name),
            "confirm that this address is yours",
            "If you did not create an account, ignore this mail: nothing happens without the link.",
        ),
        Purpose::ResetPassword => (
            &settings.reset_url,
            format!("Reset your {} password", settings.app_name),
            "choose a new password",
            "If you did not ask for this, ignore this mail: your password has not changed.",
        ),
    };
    let link = template.replace("{token}", encoded.expose_secret());
    let valid_for = lifetime(settings.actions.ttl_seconds(purpose));
    let text = format!(
        "Hello,\n\nOpen this link to {action} for {app}:\n\n{link}\n\nThe link works once, \
         for {valid_for}.\n\n{not_you}\n",
        app = settings.app_name,
    );
    let html = format!(
        "<p>Hello,</p><p>Open this link to {action} for {app}:</p>\
         <p><a href=\"{href}\">{href}</a></p><p>The link works once, for {valid_for}.</p>\
         <p>{not_you}</p>",
        app = escape_html(&settings.app_name),
        href = escape_html(&link),
    );
    Mail {
        to: to.clone(),
        subject,
        text,
        html,
    }
}

/// A mail that tells the owner of an account what happened to it: no link, no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Someone tried to register the address, which has an account already.
    RegistrationAttempt,
    /// The password was changed (from a signed-in session).
    PasswordChanged,
    /// Two-factor sign-in was turned on.
    MfaEnabled,
    /// Two-factor sign-in was turned off.
    MfaDisabled,
    /// New recovery codes were made; the old ones stopped working.
    RecoveryCodesRenewed,
    /// Too many wrong second-factor codes: codes are refused for a while.
    MfaLocked,
    /// A passkey was added to the account.
    PasskeyAdded,
    /// A passkey was removed from the account.
    PasskeyRemoved,
    /// An account at another identity provider was linked.
    IdentityLinked,
    /// An account at another identity provider was unlinked.
    IdentityUnlinked,
}

impl Notice {
    /// A stable name for logs and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::RegistrationAttempt => "registration_attempt",
            Notice::PasswordChanged => "password_changed",
            Notice::MfaEnabled => "mfa_enabled",
            Notice::MfaDisabled => "mfa_disabled",
            Notice::RecoveryCodesRenewed => "recovery_codes_renewed",
            Notice::MfaLocked => "mfa_locked",
            Notice::PasskeyAdded => "passkey_added",
            Notice::PasskeyRemoved => "passkey_removed",
            Notice::IdentityLinked => "identity_linked",
            Notice::IdentityUnlinked => "identity_unlinked",
        }
    }
}

/// The mail that tells `to` of `notice`.
pub fn compose_notice(settings: &RecoverySettings, notice: Notice, to: &Email) -> Mail {
    let app = &settings.app_name;
    let (subject, what, advice) = match notice {
        Notice::RegistrationAttempt => (
            format!("Someone tried to create a {app} account with your address"),
            format!(
                "Someone tried to create a {app} account with this address, which already has \
                 one."
            ),
            "If it was you: sign in, or reset your password if you forgot it. If it was not \
             you, nothing changed and you need not do anything.",
        ),
        Notice::PasswordChanged => (
            format!("Your {app} password was changed"),
            format!("The password of your {app} account was just changed."),
            "If it was you, nothing more to do. If it was not you, reset your password now \
             (\"Forgot password\") and check your account's sessions.",
        ),
        Notice::MfaEnabled => (
            format!("Two-factor sign-in is on for your {app} account"),
            format!("Two-factor sign-in was just turned on for your {app} account."),
            "If it was not you, reset your password now and contact support: someone else may \
             control your second factor.",
        ),
        Notice::MfaDisabled => (
            format!("Two-factor sign-in is off for your {app} account"),
            format!("Two-factor sign-in was just turned off for your {app} account."),
            "If it was not you, reset your password now and turn two-factor sign-in on again.",
        ),
        Notice::RecoveryCodesRenewed => (
            format!("New recovery codes for your {app} account"),
            format!(
                "New recovery codes were just made for your {app} account; the old ones no \
                 longer work."
            ),
            "If it was not you, reset your password now.",
        ),
        Notice::MfaLocked => (
            format!("Second-factor codes are paused for your {app} account"),
            format!(
                "Too many wrong second-factor codes were entered for your {app} account, after \
                 its password: codes are refused for a while."
            ),
            "If it was not you, someone knows your password: reset it now.",
        ),
        Notice::PasskeyAdded => (
            format!("A passkey was added to your {app} account"),
            format!("A new passkey can now sign in to your {app} account."),
            "If it was not you, reset your password now and remove the passkey from your \
             account's passkeys.",
        ),
        Notice::PasskeyRemoved => (
            format!("A passkey was removed from your {app} account"),
            format!("One of your {app} account's passkeys was just removed."),
            "If it was not you, reset your password now and check your account's passkeys.",
        ),
        Notice::IdentityLinked => (
            format!("A sign-in provider was linked to your {app} account"),
            format!("Your {app} account can now be signed in to through another provider."),
            "If it was not you, reset your password now and unlink the provider from your \
             account.",
        ),
        Notice::IdentityUnlinked => (
            format!("A sign-in provider was unlinked from your {app} account"),
            format!("A provider can no longer sign in to your {app} account."),
            "If it was not you, reset your password now.",
        ),
    };
    Mail {
        to: to.clone(),
        subject,
        text: format!("Hello,\n\n{what}\n\n{advice}\n"),
        html: format!(
            "<p>Hello,</p><p>{}</p><p>{}</p>",
            escape_html(&what),
            escape_html(advice)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_templates_are_https_with_one_token() {
        assert!(valid_url_template("https://app.example/reset?token={token}").is_ok());
        assert!(valid_url_template("http://localhost:3000/v#{token}").is_ok());
        for bad in [
            "http://app.example/reset?token={token}",
            "https://app.example/reset",
            "https://app.example/{token}/{token}",
            "https://app.example/\"{token}",
            "ftp://x/{token}",
        ] {
            assert!(valid_url_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mail_carries_the_link_the_lifetime_and_what_to_do_if_it_was_not_you() {
        let settings = RecoverySettings {
            app_name: "Acme <Shop>".into(),
            reset_url: "https://app.example/reset?token={token}".into(),
            ..RecoverySettings::default()
        };
        let token = ActionToken::generate();
        let to = Email::parse("ada@example.com").unwrap();
        let mail = compose(&settings, Purpose::ResetPassword, &to, &token);
        let link = format!(
            "https://app.example/reset?token={}",
            token.encode().expose_secret()
        );
        assert_eq!(mail.subject, "Reset your Acme <Shop> password");
        assert!(mail.text.contains(&link), "{}", mail.text);
        assert!(mail.text.contains("for 30 minutes"));
        assert!(mail.text.contains("your password has not changed"));
        assert!(mail.html.contains(&format!("href=\"{link}\"")));
        assert!(
            mail.html.contains("Acme &lt;Shop&gt;"),
            "escaped: {}",
            mail.html
        );
        let verify = compose(&settings, Purpose::VerifyEmail, &to, &token);
        assert!(verify.text.contains("for 24 hours"));
    }

    #[test]
    fn link_templates_are_parsed_not_prefix_matched() {
        for good in [
            "https://app.example.com/verify-email#token={token}",
            "https://app.example.com/reset?token={token}",
            "http://localhost:3001/verify-email#token={token}",
            "http://127.0.0.1/x#token={token}",
            "http://LOCALHOST/x#token={token}",
        ] {
            assert_eq!(valid_url_template(good), Ok(()), "{good}");
        }
        for bad in [
            "http://localhost.evil.example/x#token={token}",
            "http://127.0.0.1.nip.io/x#token={token}",
            "http://localhost@evil.example/x#token={token}",
            "https://user@app.example.com/x#token={token}",
            "https://{token}.example.com/x",
            "http://app.example.com/x#token={token}",
            "ftp://app.example.com/x#token={token}",
            "https:///x#token={token}",
            "https://app.example.com/x",
            "app.example.com/x#token={token}",
        ] {
            assert!(valid_url_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_links_carry_the_token_in_the_fragment() {
        let settings = RecoverySettings::default();
        for url in [&settings.verify_url, &settings.reset_url] {
            assert!(url.contains("#token={token}"), "{url}");
            assert!(!url.contains('?'), "{url}");
        }
    }
}
