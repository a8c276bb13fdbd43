//! The accounts' settings, read once at cold start from the environment (docs/configuration.md).

use aws_types::SdkConfig;
use shared::config::{self, ConfigError, Env, Overlay};

use crate::model::credentials::Email;
use crate::model::link::ActionSettings;
use crate::model::mfa::MfaKey;
use crate::model::session::SessionSettings;
use crate::passwords::MIN_PRODUCTION_COST;
use crate::recovery::{RecoverySettings, valid_url_template};

/// `MFA_ENCRYPTION_KEY`: 32 random bytes, base64 (`openssl rand -base64 32`).
pub fn mfa_key_from_env(env: &dyn Env) -> Result<Option<MfaKey>, ConfigError> {
    config::optional(env, "MFA_ENCRYPTION_KEY")
        .map(|text| {
            MfaKey::from_base64(&text)
                .map_err(|e| ConfigError::new("MFA_ENCRYPTION_KEY", e.to_string()))
        })
        .transpose()
}

/// Passkeys: `WEBAUTHN_RP_ID` (unset: passkeys are off), `WEBAUTHN_ORIGINS` (comma-separated
/// exact origins; default `https://<RP ID>`) and `WEBAUTHN_RP_NAME` (default `app_name`).
/// Refuses an RP ID that does not cover every origin. The decoys of unknown accounts are
/// derived from `mfa_key` when there is one (stable across cold starts), else from a random
/// key of this process.
pub fn passkeys_from_env(
    env: &dyn Env,
    app_name: &str,
    mfa_key: Option<&MfaKey>,
) -> Result<Option<crate::model::passkey::PasskeySettings>, ConfigError> {
    use crate::model::webauthn::RelyingParty;
    let origins = config::optional(env, "WEBAUTHN_ORIGINS");
    let Some(rp_id) = config::optional(env, "WEBAUTHN_RP_ID") else {
        if origins.is_some() {
            return Err(ConfigError::new(
                "WEBAUTHN_RP_ID",
                "is required when WEBAUTHN_ORIGINS is set",
            ));
        }
        return Ok(None);
    };
    let rp_id = rp_id.trim().to_owned();
    let origins: Vec<String> = match origins {
        Some(list) => list
            .split(',')
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        None => vec![format!("https://{rp_id}")],
    };
    let name = config::optional(env, "WEBAUTHN_RP_NAME")
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|| app_name.to_owned());
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "WEBAUTHN_RP_NAME",
            "must be 1 to 100 characters, without control characters",
        ));
    }
    let rp = RelyingParty::new(&rp_id, &name, &origins).map_err(|e| {
        let variable = match e {
            crate::model::webauthn::RpError::BadId(_) => "WEBAUTHN_RP_ID",
            _ => "WEBAUTHN_ORIGINS",
        };
        ConfigError::new(variable, e.to_string())
    })?;
    let decoy_key = match mfa_key {
        Some(key) => key.derive(b"passkey decoys v1"),
        None => {
            let mut key = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            key
        }
    };
    Ok(Some(crate::model::passkey::PasskeySettings {
        rp,
        decoy_key,
    }))
}

/// `FEDERATION_PROVIDERS` (with `FEDERATION_SECRETS`) and `FEDERATION_APP_URL` (where a
/// JSON API sign-in at a provider ends; `default_app_url` when unset, and required with a
/// provider otherwise). The providers' client is the door's to add.
pub fn federation_from_env(
    env: &dyn Env,
    default_app_url: Option<&str>,
) -> Result<crate::federation::Federation, ConfigError> {
    let providers = crate::model::federation::providers_from_env(env)?;
    let app_url = config::optional(env, "FEDERATION_APP_URL")
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .or_else(|| default_app_url.map(str::to_owned));
    if let Some(url) = &app_url {
        let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|host| {
                url.strip_prefix(host)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        let fine = (url.starts_with("https://") || local)
            && !url.contains('#')
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fine {
            return Err(ConfigError::new(
                "FEDERATION_APP_URL",
                "must be an https:// URL without a fragment (http:// only to 127.0.0.1 or localhost)",
            ));
        }
    } else if !providers.is_empty() {
        return Err(ConfigError::new(
            "FEDERATION_APP_URL",
            "is required with FEDERATION_PROVIDERS: the JSON API's sign-ins end there",
        ));
    }
    Ok(crate::federation::Federation {
        providers,
        app_url,
        upstream: None,
    })
}

/// What `read` makes of `env`, but the secrets named by SSM SecureString parameters are read
/// from them (one `GetParameter` each, concurrently, at cold start):
/// `JWT_SIGNING_KEY_PARAMETER` for `JWT_SIGNING_KEY`, `MFA_ENCRYPTION_KEY_PARAMETER` for
/// `MFA_ENCRYPTION_KEY`. An error in a value read from SSM names the parameter.
pub async fn with_ssm_secrets<T>(
    env: &dyn Env,
    sdk: &SdkConfig,
    read_config: impl Fn(&dyn Env) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let signing = from_parameter(env, "JWT_SIGNING_KEY_PARAMETER", "JWT_SIGNING_KEY")?;
    let mfa = from_parameter(env, "MFA_ENCRYPTION_KEY_PARAMETER", "MFA_ENCRYPTION_KEY")?;
    let hook = from_parameter(env, "HOOK_SECRET_PARAMETER", "HOOK_SECRET")?;
    let federation = from_parameter(env, "FEDERATION_SECRETS_PARAMETER", "FEDERATION_SECRETS")?;
    if signing.is_none() && mfa.is_none() && hook.is_none() && federation.is_none() {
        return read_config(env);
    }
    let client = aws_sdk_ssm::Client::new(sdk);
    let read = |wanted: Option<Secret>| {
        let client = client.clone();
        async move {
            match wanted {
                Some(secret) => {
                    let value = read_parameter(&client, secret.parameter, &secret.name).await?;
                    Ok(Some((secret, value)))
                }
                None => Ok(None),
            }
        }
    };
    let (signing, mfa, hook, federation) =
        tokio::join!(read(signing), read(mfa), read(hook), read(federation));
    let read: Vec<(Secret, String)> = [signing?, mfa?, hook?, federation?]
        .into_iter()
        .flatten()
        .collect();
    let mut overlay = Overlay::new(env);
    for (secret, value) in &read {
        overlay.set(secret.variable, value.clone());
    }
    read_config(&overlay).map_err(|e| {
        match read
            .iter()
            .find(|(secret, _)| secret.variable == e.variable)
        {
            Some((secret, _)) => ConfigError::new(
                secret.parameter,
                format!("SSM parameter {}: {}", secret.name, e.problem),
            ),
            None => e,
        }
    })
}

/// A secret to read from SSM: the variable naming the parameter, the variable it stands for,
/// and the parameter's name.
struct Secret {
    parameter: &'static str,
    variable: &'static str,
    name: String,
}

fn from_parameter(
    env: &dyn Env,
    parameter: &'static str,
    variable: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    let Some(name) = config::optional(env, parameter) else {
        return Ok(None);
    };
    if config::optional(env, variable).is_some() {
        return Err(ConfigError::new(
            parameter,
            format!("set either {parameter} or {variable}, not both"),
        ));
    }
    Ok(Some(Secret {
        parameter,
        variable,
        name,
    }))
}

async fn read_parameter(
    client: &aws_sdk_ssm::Client,
    parameter: &'static str,
    name: &str,
) -> Result<String, ConfigError> {
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            ConfigError::new(
                parameter,
                format!(
                    "cannot read SSM parameter {name}: {}",
                    shared::error_chain(&e)
                ),
            )
        })?;
    output
        .parameter
        .and_then(|p| p.value)
        .ok_or_else(|| ConfigError::new(parameter, format!("SSM parameter {name} has no value")))
}

/// `REFRESH_TOKEN_TTL_SECONDS` (5 minutes to a year, default 30 days),
/// `REFRESH_REUSE_GRACE_SECONDS` (0 to 60, default 10) and `SESSION_MAX_LIFETIME_SECONDS`
/// (5 minutes to 5 years, default 90 days).
pub fn sessions_from_env(env: &dyn Env) -> Result<SessionSettings, ConfigError> {
    let defaults = SessionSettings::default();
    let ttl = config::number(
        env,
        "REFRESH_TOKEN_TTL_SECONDS",
        defaults.refresh_ttl_seconds as u64,
        300,
        366 * 24 * 60 * 60,
    )?;
    let grace = config::number(
        env,
        "REFRESH_REUSE_GRACE_SECONDS",
        defaults.reuse_grace_seconds as u64,
        0,
        60,
    )?;
    let max_lifetime = config::number(
        env,
        "SESSION_MAX_LIFETIME_SECONDS",
        defaults.max_lifetime_seconds as u64,
        300,
        5 * 366 * 24 * 60 * 60,
    )?;
    // Every bound is far below i64::MAX.
    Ok(SessionSettings {
        refresh_ttl_seconds: ttl as i64,
        reuse_grace_seconds: grace as i64,
        max_lifetime_seconds: max_lifetime as i64,
    })
}

/// `SES_FROM_ADDRESS`, if set: an email address.
pub fn ses_from_address(env: &dyn Env) -> Result<Option<Email>, ConfigError> {
    config::optional(env, "SES_FROM_ADDRESS")
        .map(|raw| Email::parse(&raw).map_err(|m| ConfigError::new("SES_FROM_ADDRESS", m)))
        .transpose()
}

/// The recovery flows: `APP_NAME`; the links, from `APP_URL_TEMPLATE` (`{action}` becomes
/// `verify-email` or `reset-password`) or per link `VERIFY_EMAIL_URL_TEMPLATE` and
/// `RESET_PASSWORD_URL_TEMPLATE` (required once `SES_FROM_ADDRESS` is set: real mail needs
/// real links);
/// `VERIFY_TOKEN_TTL_SECONDS`, `RESET_TOKEN_TTL_SECONDS`, `REQUIRE_VERIFIED_EMAIL`,
/// `MAIL_RESPONSE_FLOOR_MS` and `REGISTRATIONS_PER_SOURCE_PER_HOUR`.
pub fn recovery_from_env(env: &dyn Env) -> Result<RecoverySettings, ConfigError> {
    let defaults = RecoverySettings::default();
    let sending = config::optional(env, "SES_FROM_ADDRESS").is_some();
    // One template for both links, `{action}` naming the page; or one per link.
    let app_url = config::optional(env, "APP_URL_TEMPLATE").map(|t| t.trim().to_owned());
    if let Some(template) = &app_url {
        valid_url_template(template)
            .map_err(|problem| ConfigError::new("APP_URL_TEMPLATE", problem))?;
    }
    let url = |name: &'static str, action: &str, default: &str| -> Result<String, ConfigError> {
        let template = match (config::optional(env, name), &app_url) {
            (Some(template), _) => template.trim().to_owned(),
            (None, Some(app)) => app.replace("{action}", action),
            (None, None) if sending => {
                return Err(ConfigError::new(
                    name,
                    "is required once SES_FROM_ADDRESS is set (or APP_URL_TEMPLATE): the link \
                     in the mail, with {token}",
                ));
            }
            (None, None) => default.to_owned(),
        };
        valid_url_template(&template).map_err(|problem| ConfigError::new(name, problem))?;
        Ok(template)
    };
    let app_name = match config::optional(env, "APP_NAME") {
        Some(name) if name.chars().count() > 100 || name.chars().any(char::is_control) => {
            return Err(ConfigError::new(
                "APP_NAME",
                "must be at most 100 characters, without control characters",
            ));
        }
        Some(name) => name.trim().to_owned(),
        None => defaults.app_name.clone(),
    };
    let verify_ttl = config::number(
        env,
        "VERIFY_TOKEN_TTL_SECONDS",
        defaults.actions.verify_ttl_seconds as u64,
        300,
        7 * 24 * 60 * 60,
    )?;
    let reset_ttl = config::number(
        env,
        "RESET_TOKEN_TTL_SECONDS",
        defaults.actions.reset_ttl_seconds as u64,
        300,
        24 * 60 * 60,
    )?;
    let floor = config::number(
        env,
        "MAIL_RESPONSE_FLOOR_MS",
        defaults.response_floor.as_millis() as u64,
        0,
        10_000,
    )?;
    // Every bound is far below i64::MAX.
    Ok(RecoverySettings {
        app_name,
        verify_url: url(
            "VERIFY_EMAIL_URL_TEMPLATE",
            "verify-email",
            &defaults.verify_url,
        )?,
        reset_url: url(
            "RESET_PASSWORD_URL_TEMPLATE",
            "reset-password",
            &defaults.reset_url,
        )?,
        actions: ActionSettings {
            verify_ttl_seconds: verify_ttl as i64,
            reset_ttl_seconds: reset_ttl as i64,
        },
        require_verified_email: config::flag(env, "REQUIRE_VERIFIED_EMAIL")?,
        response_floor: std::time::Duration::from_millis(floor),
        registrations_per_source_per_hour: config::number(
            env,
            "REGISTRATIONS_PER_SOURCE_PER_HOUR",
            u64::from(defaults.registrations_per_source_per_hour),
            1,
            100_000,
        )? as u32,
    })
}

/// `CLIENT_TOKEN_TTL_SECONDS`: how long a machine client's access token lives (default 3600,
/// 60 to 86400). A service caches its token and asks again shortly before it ends.
pub fn client_token_ttl_from_env(env: &dyn Env) -> Result<u64, ConfigError> {
    config::number(env, "CLIENT_TOKEN_TTL_SECONDS", 3600, 60, 86_400)
}

/// `BCRYPT_COST` (4 to 31, default 12). Below 10 only with `BCRYPT_ALLOW_LOW_COST=true`,
/// which exists for tests and local development.
pub fn bcrypt_cost_from_env(env: &dyn Env) -> Result<u32, ConfigError> {
    let cost = config::number(env, "BCRYPT_COST", 12, 4, 31)? as u32;
    if cost < MIN_PRODUCTION_COST && !config::flag(env, "BCRYPT_ALLOW_LOW_COST")? {
        return Err(ConfigError::new(
            "BCRYPT_COST",
            format!(
                "{cost} is below {MIN_PRODUCTION_COST}, too cheap to protect passwords; \
                 set BCRYPT_ALLOW_LOW_COST=true only for tests"
            ),
        ));
    }
    Ok(cost)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_low_bcrypt_cost_needs_explicit_permission() {
        let env = HashMap::from([("BCRYPT_COST", "4")]);
        assert_eq!(
            bcrypt_cost_from_env(&env).unwrap_err().variable,
            "BCRYPT_COST"
        );
        let env = HashMap::from([("BCRYPT_COST", "4"), ("BCRYPT_ALLOW_LOW_COST", "true")]);
        assert_eq!(bcrypt_cost_from_env(&env), Ok(4));
        assert_eq!(bcrypt_cost_from_env(&HashMap::<&str, &str>::new()), Ok(12));
    }

    #[test]
    fn session_lifetimes_are_read_and_bounded() {
        let env = HashMap::from([
            ("REFRESH_TOKEN_TTL_SECONDS", "3600"),
            ("REFRESH_REUSE_GRACE_SECONDS", "0"),
        ]);
        assert_eq!(
            sessions_from_env(&env),
            Ok(SessionSettings {
                refresh_ttl_seconds: 3600,
                reuse_grace_seconds: 0,
                max_lifetime_seconds: 90 * 24 * 60 * 60,
            })
        );
        let env = HashMap::from([("REFRESH_TOKEN_TTL_SECONDS", "10")]);
        assert_eq!(
            sessions_from_env(&env).unwrap_err().variable,
            "REFRESH_TOKEN_TTL_SECONDS"
        );
        let env = HashMap::from([("REFRESH_REUSE_GRACE_SECONDS", "600")]);
        assert_eq!(
            sessions_from_env(&env).unwrap_err().variable,
            "REFRESH_REUSE_GRACE_SECONDS"
        );
        let env = HashMap::from([("SESSION_MAX_LIFETIME_SECONDS", "86400")]);
        assert_eq!(sessions_from_env(&env).unwrap().max_lifetime_seconds, 86400);
        let env = HashMap::from([("SESSION_MAX_LIFETIME_SECONDS", "10")]);
        assert_eq!(
            sessions_from_env(&env).unwrap_err().variable,
            "SESSION_MAX_LIFETIME_SECONDS"
        );
    }

    #[test]
    fn recovery_settings_are_read_and_real_mail_needs_real_links() {
        let defaults = recovery_from_env(&HashMap::<&str, &str>::new()).unwrap();
        assert_eq!(defaults, RecoverySettings::default());
        let sending = HashMap::from([("SES_FROM_ADDRESS", "auth@example.com")]);
        assert_eq!(
            recovery_from_env(&sending).unwrap_err().variable,
            "VERIFY_EMAIL_URL_TEMPLATE"
        );
        let env = HashMap::from([
            ("SES_FROM_ADDRESS", "auth@example.com"),
            (
                "VERIFY_EMAIL_URL_TEMPLATE",
                "https://app.example/verify?t={token}",
            ),
            (
                "RESET_PASSWORD_URL_TEMPLATE",
                "https://app.example/reset?t={token}",
            ),
            ("APP_NAME", "Acme"),
            ("RESET_TOKEN_TTL_SECONDS", "900"),
            ("REQUIRE_VERIFIED_EMAIL", "true"),
            ("MAIL_RESPONSE_FLOOR_MS", "0"),
        ]);
        let settings = recovery_from_env(&env).unwrap();
        assert_eq!(settings.app_name, "Acme");
        assert_eq!(settings.actions.reset_ttl_seconds, 900);
        assert!(settings.require_verified_email);
        assert_eq!(
            ses_from_address(&env).unwrap().unwrap().as_str(),
            "auth@example.com"
        );
        let bad = HashMap::from([("RESET_PASSWORD_URL_TEMPLATE", "http://app.example/{token}")]);
        assert_eq!(
            recovery_from_env(&bad).unwrap_err().variable,
            "RESET_PASSWORD_URL_TEMPLATE"
        );
        let one = HashMap::from([
            ("SES_FROM_ADDRESS", "auth@example.com"),
            (
                "APP_URL_TEMPLATE",
                "https://app.example/{action}?token={token}",
            ),
            (
                "RESET_PASSWORD_URL_TEMPLATE",
                "https://app.example/r/{token}",
            ),
        ]);
        let settings = recovery_from_env(&one).unwrap();
        assert_eq!(
            settings.verify_url,
            "https://app.example/verify-email?token={token}"
        );
        assert_eq!(
            settings.reset_url, "https://app.example/r/{token}",
            "a specific one wins"
        );
        let bad = HashMap::from([("APP_URL_TEMPLATE", "https://app.example/{action}")]);
        assert_eq!(
            recovery_from_env(&bad).unwrap_err().variable,
            "APP_URL_TEMPLATE"
        );
        let bad = HashMap::from([("SES_FROM_ADDRESS", "not an address")]);
        assert_eq!(
            ses_from_address(&bad).unwrap_err().variable,
            "SES_FROM_ADDRESS"
        );
    }
}
