//! auth-api configuration, read once at cold start (docs/configuration.md).

use accounts::model::credentials::Email;
use accounts::model::mfa::MfaKey;
use accounts::model::session::SessionSettings;
use accounts::recovery::RecoverySettings;
use accounts::settings::{
    self, bcrypt_cost_from_env, mfa_key_from_env, recovery_from_env, ses_from_address,
    sessions_from_env,
};
use aws_types::SdkConfig;
use shared::config::{self, ConfigError, Env};
use shared::{TokenIssuer, TokenVerifier};

use crate::http::browser::{AllowedOrigins, BrowserSettings, RefreshTransport};

/// Everything auth-api reads from its environment.
#[derive(Debug)]
pub struct Config {
    /// `USERS_TABLE`.
    pub users_table: String,
    pub issuer: TokenIssuer,
    pub verifier: TokenVerifier,
    /// `BCRYPT_COST`, default 12.
    pub bcrypt_cost: u32,
    /// `REFRESH_TOKEN_TTL_SECONDS` and `REFRESH_REUSE_GRACE_SECONDS`.
    pub sessions: SessionSettings,
    /// The recovery flows' settings (docs/configuration.md).
    pub recovery: RecoverySettings,
    /// `SES_FROM_ADDRESS`: the verified SES identity mail is sent from; unset, no mail is sent.
    pub ses_from_address: Option<Email>,
    /// `CORS_ALLOWED_ORIGINS` and `REFRESH_TOKEN_TRANSPORT`.
    pub browser: BrowserSettings,
    /// `MFA_ENCRYPTION_KEY`: seals TOTP secrets; unset, two-factor sign-in is unavailable.
    pub mfa_key: Option<MfaKey>,
    /// `CLIENT_TOKEN_TTL_SECONDS`, default 3600.
    pub client_token_ttl_seconds: u64,
    /// `WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`, `WEBAUTHN_RP_NAME`: passkeys; `None`: off.
    pub passkeys: Option<accounts::model::passkey::PasskeySettings>,
    /// `PUBLISHED_SCOPES`, space-separated; default none.
    pub published_scopes: Vec<String>,
    /// `BRAND_NAME`, `BRAND_COLOR`, `BRAND_LOGO_URL`: the hosted pages' look.
    pub pages: crate::http::pages::Branding,
    /// `HOOK_*`: the synchronous hooks, without their transport.
    pub hooks: accounts::hooks::Hooks,
    /// `FEDERATION_*`: sign-in through other providers, without their client.
    pub federation: accounts::federation::Federation,
}

/// `PUBLISHED_SCOPES`: scopes for discovery's `scopes_supported`, space-separated, each a
/// valid scope.
pub fn published_scopes_from_env(env: &dyn Env) -> Result<Vec<String>, ConfigError> {
    let Some(text) = config::optional(env, "PUBLISHED_SCOPES") else {
        return Ok(Vec::new());
    };
    accounts::model::registry::parse_scopes(&text)
        .map(|scopes| scopes.iter().map(|s| s.as_str().to_owned()).collect())
        .map_err(|why| ConfigError::new("PUBLISHED_SCOPES", why))
}

impl Config {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let users_table = config::required(env, "USERS_TABLE")?;
        let key = config::signing_key_from_env(env)?;
        let verifier = config::verifier_from_env(env, Some(&key))?;
        let issuer = config::issuer_from_env(env, key)?;
        let recovery = recovery_from_env(env)?;
        let mfa_key = mfa_key_from_env(env)?;
        let passkeys = settings::passkeys_from_env(env, &recovery.app_name, mfa_key.as_ref())?;
        Ok(Self {
            users_table,
            issuer,
            verifier,
            bcrypt_cost: bcrypt_cost_from_env(env)?,
            sessions: sessions_from_env(env)?,
            recovery,
            ses_from_address: ses_from_address(env)?,
            browser: browser_from_env(env)?,
            mfa_key,
            client_token_ttl_seconds: accounts::settings::client_token_ttl_from_env(env)?,
            passkeys,
            published_scopes: published_scopes_from_env(env)?,
            pages: crate::http::pages::Branding::from_env(env)?,
            hooks: accounts::hooks::hooks_from_env(env)?,
            federation: settings::federation_from_env(env, None)?,
        })
    }
}

/// `CORS_ALLOWED_ORIGINS` (comma-separated exact origins, or `*` without cookies; unset: no
/// CORS) and `REFRESH_TOKEN_TRANSPORT` (`body`, the default, `cookie` or `both`).
pub fn browser_from_env(env: &dyn Env) -> Result<BrowserSettings, ConfigError> {
    const ORIGINS: &str = "CORS_ALLOWED_ORIGINS";
    let origins = config::optional(env, ORIGINS)
        .map(|raw| AllowedOrigins::parse(&raw).map_err(|m| ConfigError::new(ORIGINS, m)))
        .transpose()?
        .unwrap_or_default();
    let transport = config::optional(env, "REFRESH_TOKEN_TRANSPORT")
        .map(|raw| {
            RefreshTransport::parse(&raw)
                .map_err(|m| ConfigError::new("REFRESH_TOKEN_TRANSPORT", m))
        })
        .transpose()?
        .unwrap_or_default();
    BrowserSettings::new(origins, transport).map_err(|m| ConfigError::new(ORIGINS, m))
}

/// [`Config::from_env`], with the secrets SSM parameters name read from SSM
/// ([`accounts::settings::with_ssm_secrets`]).
pub async fn load(env: &dyn Env, sdk: &SdkConfig) -> Result<Config, ConfigError> {
    settings::with_ssm_secrets(env, sdk, Config::from_env).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_complete_hs256_environment_loads() {
        let env = HashMap::from([
            ("USERS_TABLE", "users"),
            ("JWT_ISSUER", "https://auth.example"),
            ("JWT_AUDIENCE", "api"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("ACCESS_TOKEN_TTL_SECONDS", "300"),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.users_table, "users");
        assert_eq!(config.issuer.ttl_seconds(), 300);
        assert_eq!(config.verifier.keys().len(), 1);
        assert_eq!(config.sessions, SessionSettings::default());
    }

    #[test]
    fn browser_settings_are_read_and_a_wildcard_never_meets_the_cookie() {
        let none = browser_from_env(&HashMap::<&str, &str>::new()).unwrap();
        assert_eq!(none, BrowserSettings::default());
        assert_eq!(none.transport, RefreshTransport::Body);
        let env = HashMap::from([
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com,http://localhost:5173",
            ),
            ("REFRESH_TOKEN_TRANSPORT", "Cookie"),
        ]);
        let settings = browser_from_env(&env).unwrap();
        assert_eq!(settings.transport, RefreshTransport::Cookie);
        assert!(settings.allowed_origins.allows("http://localhost:5173"));
        for (name, value) in [
            ("REFRESH_TOKEN_TRANSPORT", "header"),
            ("CORS_ALLOWED_ORIGINS", "https://app.example.com/"),
        ] {
            let env = HashMap::from([(name, value)]);
            assert_eq!(browser_from_env(&env).unwrap_err().variable, name);
        }
        let env = HashMap::from([
            ("CORS_ALLOWED_ORIGINS", "*"),
            ("REFRESH_TOKEN_TRANSPORT", "both"),
        ]);
        assert_eq!(
            browser_from_env(&env).unwrap_err().variable,
            "CORS_ALLOWED_ORIGINS"
        );
    }

    #[test]
    fn the_table_name_is_required() {
        let env = HashMap::from([("JWT_ISSUER", "i")]);
        assert_eq!(Config::from_env(&env).unwrap_err().variable, "USERS_TABLE");
    }
}
