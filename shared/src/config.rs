//! Configuration from the environment, parsed once at cold start.
//!
//! Every reader takes an [`Env`] so tests can pass a map instead of mutating the process
//! environment. A missing or bad variable is one [`ConfigError`] that names it.

use std::collections::HashMap;

use secrecy::SecretString;

use crate::keys::{KeySet, SigningKey};
pub use crate::token::TokenSettings;
use crate::token::{DEFAULT_LEEWAY_SECONDS, TokenIssuer, TokenVerifier};

/// A source of configuration variables.
pub trait Env {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| (*v).to_owned())
    }
}

/// An environment with some variables set or replaced, e.g. a secret fetched at start-up.
pub struct Overlay<'a> {
    base: &'a dyn Env,
    overrides: HashMap<&'static str, String>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn Env) -> Self {
        Self {
            base,
            overrides: HashMap::new(),
        }
    }

    pub fn set(&mut self, name: &'static str, value: String) {
        self.overrides.insert(name, value);
    }
}

impl Env for Overlay<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.overrides
            .get(name)
            .cloned()
            .or_else(|| self.base.var(name))
    }
}

/// A configuration variable that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    /// The variable at fault.
    pub variable: &'static str,
    /// What is wrong with it. Never contains the value of a secret.
    pub problem: String,
}

impl ConfigError {
    /// A new error for `variable`.
    pub fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// A variable that is set to something other than blank.
pub fn optional(env: &dyn Env, name: &'static str) -> Option<String> {
    env.var(name).filter(|v| !v.trim().is_empty())
}

/// A variable that must be set and not blank.
pub fn required(env: &dyn Env, name: &'static str) -> Result<String, ConfigError> {
    optional(env, name).ok_or_else(|| ConfigError::new(name, "is required but not set"))
}

/// A whole number within `min..=max`, or `default` when unset.
pub fn number(
    env: &dyn Env,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = optional(env, name) else {
        return Ok(default);
    };
    let value: u64 = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, format!("must be a whole number, got {raw:?}")))?;
    if !(min..=max).contains(&value) {
        return Err(ConfigError::new(
            name,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(value)
}

/// A boolean flag: `true`/`1`/`yes` or `false`/`0`/`no`, `false` when unset.
pub fn flag(env: &dyn Env, name: &'static str) -> Result<bool, ConfigError> {
    match optional(env, name)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::new(
            name,
            format!("must be true or false, got {other:?}"),
        )),
    }
}

/// Whether `issuer` can be an OpenID issuer: the public base URL of the auth API, where
/// `{issuer}/.well-known/openid-configuration` is served. https, or http for `localhost` and
/// `127.0.0.1` only; no query, fragment or user info; no trailing slash (the `iss` claim must
/// equal it exactly).
pub fn check_issuer_url(issuer: &str) -> Result<(), String> {
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        if host != "localhost" && host != "127.0.0.1" {
            return Err(format!(
                "{issuer:?} must be an https URL (http only for localhost and 127.0.0.1): \
                 the auth API's public base URL, e.g. https://auth.example.com"
            ));
        }
        rest
    } else {
        return Err(format!(
            "{issuer:?} must be the auth API's public base URL, e.g. https://auth.example.com \
             or its stage URL https://<id>.execute-api.<region>.amazonaws.com/prod"
        ));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || rest.contains(['?', '#', '@']) || rest.chars().any(char::is_whitespace) {
        return Err(format!(
            "{issuer:?} must be a URL with a host and no query, fragment or user"
        ));
    }
    if issuer.ends_with('/') {
        return Err(format!(
            "{issuer:?} must not end with /: tokens' iss must equal it exactly"
        ));
    }
    Ok(())
}

impl TokenSettings {
    /// Reads `JWT_ISSUER` (checked by [`check_issuer_url`]) and `JWT_AUDIENCE`.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let issuer = required(env, "JWT_ISSUER")?;
        check_issuer_url(&issuer).map_err(|m| ConfigError::new("JWT_ISSUER", m))?;
        Ok(Self {
            issuer,
            audience: required(env, "JWT_AUDIENCE")?,
        })
    }
}

/// The signing key: `JWT_SECRET` (HS256) or `JWT_SIGNING_KEY` (Ed25519 PKCS#8 PEM), with the
/// optional `JWT_KEY_ID`.
pub fn signing_key_from_env(env: &dyn Env) -> Result<SigningKey, ConfigError> {
    let kid = optional(env, "JWT_KEY_ID");
    match (
        optional(env, "JWT_SECRET"),
        optional(env, "JWT_SIGNING_KEY"),
    ) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "JWT_SECRET",
            "set either JWT_SECRET (HS256) or JWT_SIGNING_KEY (EdDSA or RS256), not both",
        )),
        (Some(secret), None) => SigningKey::hs256(SecretString::from(secret), kid)
            .map_err(|e| ConfigError::new("JWT_SECRET", e.to_string())),
        (None, Some(pem)) => SigningKey::from_pem(&pem, kid)
            .map_err(|e| ConfigError::new("JWT_SIGNING_KEY", e.to_string())),
        (None, None) => Err(ConfigError::new(
            "JWT_SIGNING_KEY",
            "is required (a PEM private key: Ed25519, or RSA of at least 2048 bits), or set \
             JWT_SECRET for HS256",
        )),
    }
}

/// The accepted verification keys: `JWT_PUBLIC_KEYS` (a JWKS document) or `JWT_SECRET`.
///
/// `own` is the signing key of the caller, if it has one: its public half is always accepted.
pub fn key_set_from_env(env: &dyn Env, own: Option<&SigningKey>) -> Result<KeySet, ConfigError> {
    let jwks = optional(env, "JWT_PUBLIC_KEYS");
    if let Some(own) = own {
        let mut keys = KeySet::default();
        keys.insert(own.verification_key())
            .map_err(|e| ConfigError::new("JWT_KEY_ID", e.to_string()))?;
        if let Some(jwks) = jwks {
            if own.is_symmetric() {
                return Err(ConfigError::new(
                    "JWT_PUBLIC_KEYS",
                    "cannot be combined with JWT_SECRET (HS256)",
                ));
            }
            let extra = KeySet::from_jwks_json(&jwks)
                .map_err(|e| ConfigError::new("JWT_PUBLIC_KEYS", e.to_string()))?;
            // The authorizer is given the same JWKS: a signing key missing from it would sign
            // tokens every protected route refuses (docs/deploy.md, "Key rotation").
            if extra.get(own.kid()).is_none() {
                return Err(ConfigError::new(
                    "JWT_PUBLIC_KEYS",
                    format!(
                        "does not contain the signing key (kid {}): the authorizer, given the \
                         same JWKS, would refuse every token signed with it. Publish its public \
                         JWK first, then sign with it (docs/deploy.md, \"Key rotation\")",
                        own.kid()
                    ),
                ));
            }
            keys.merge(extra)
                .map_err(|e| ConfigError::new("JWT_PUBLIC_KEYS", e.to_string()))?;
        }
        return Ok(keys);
    }
    match (optional(env, "JWT_SECRET"), jwks) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "JWT_SECRET",
            "set either JWT_SECRET (HS256) or JWT_PUBLIC_KEYS (EdDSA), not both",
        )),
        (Some(secret), None) => {
            let key = SigningKey::hs256(SecretString::from(secret), optional(env, "JWT_KEY_ID"))
                .map_err(|e| ConfigError::new("JWT_SECRET", e.to_string()))?;
            let mut keys = KeySet::default();
            keys.insert(key.verification_key())
                .map_err(|e| ConfigError::new("JWT_KEY_ID", e.to_string()))?;
            Ok(keys)
        }
        (None, Some(jwks)) => KeySet::from_jwks_json(&jwks)
            .map_err(|e| ConfigError::new("JWT_PUBLIC_KEYS", e.to_string())),
        (None, None) => Err(ConfigError::new(
            "JWT_PUBLIC_KEYS",
            "is required (a JWKS document of accepted public keys), or set JWT_SECRET for HS256",
        )),
    }
}

/// A verifier for tokens from `JWT_PUBLIC_KEYS`/`JWT_SECRET`, `JWT_ISSUER` and `JWT_AUDIENCE`.
pub fn verifier_from_env(
    env: &dyn Env,
    own: Option<&SigningKey>,
) -> Result<TokenVerifier, ConfigError> {
    let settings = TokenSettings::from_env(env)?;
    let keys = key_set_from_env(env, own)?;
    Ok(TokenVerifier::new(keys, settings, DEFAULT_LEEWAY_SECONDS))
}

/// An issuer for access tokens from the signing key, `JWT_ISSUER`, `JWT_AUDIENCE`,
/// `ACCESS_TOKEN_TTL_SECONDS` (default 900, 60 to 86400) and `JWT_CLIENT_ID` (default the
/// audience).
pub fn issuer_from_env(env: &dyn Env, key: SigningKey) -> Result<TokenIssuer, ConfigError> {
    let settings = TokenSettings::from_env(env)?;
    let ttl = number(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 86_400)?;
    let issuer = TokenIssuer::new(key, settings, ttl);
    Ok(match optional(env, "JWT_CLIENT_ID") {
        Some(client_id) => issuer.with_client_id(client_id.trim().to_owned()),
        None => issuer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_missing_required_variable_is_named_in_the_error() {
        let err = TokenSettings::from_env(&env(&[("JWT_ISSUER", "https://auth")])).unwrap_err();
        assert_eq!(err.variable, "JWT_AUDIENCE");
        assert!(err.to_string().contains("JWT_AUDIENCE: is required"));
    }

    #[test]
    fn blank_counts_as_missing() {
        let err = required(&env(&[("USERS_TABLE", "  ")]), "USERS_TABLE").unwrap_err();
        assert_eq!(err.variable, "USERS_TABLE");
    }

    #[test]
    fn numbers_outside_their_range_or_not_numbers_are_refused() {
        let e = env(&[("N", "5"), ("M", "ten")]);
        assert_eq!(number(&e, "N", 1, 1, 10), Ok(5));
        assert!(
            number(&e, "N", 1, 6, 10)
                .unwrap_err()
                .problem
                .contains("between 6 and 10")
        );
        assert!(
            number(&e, "M", 1, 1, 10)
                .unwrap_err()
                .problem
                .contains("whole number")
        );
        assert_eq!(number(&e, "UNSET", 7, 1, 10), Ok(7));
    }

    #[test]
    fn flags_accept_only_clear_words() {
        let e = env(&[("A", "TRUE"), ("B", "0"), ("C", "maybe")]);
        assert_eq!(flag(&e, "A"), Ok(true));
        assert_eq!(flag(&e, "B"), Ok(false));
        assert_eq!(flag(&e, "UNSET"), Ok(false));
        assert!(flag(&e, "C").is_err());
    }

    #[test]
    fn a_short_secret_refuses_to_start_without_echoing_it() {
        let e = env(&[("JWT_SECRET", "too-short-secret")]);
        let err = signing_key_from_env(&e).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        assert!(err.problem.contains("32 bytes"));
        assert!(!err.to_string().contains("too-short-secret"));
    }

    #[test]
    fn secret_and_signing_key_together_are_refused() {
        let e = env(&[
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("JWT_SIGNING_KEY", "pem"),
        ]);
        assert!(
            signing_key_from_env(&e)
                .unwrap_err()
                .problem
                .contains("not both")
        );
    }

    #[test]
    fn a_verifier_needs_some_keys() {
        let e = env(&[
            ("JWT_ISSUER", "https://auth.example"),
            ("JWT_AUDIENCE", "a"),
        ]);
        assert_eq!(
            verifier_from_env(&e, None).unwrap_err().variable,
            "JWT_PUBLIC_KEYS"
        );
    }

    #[test]
    fn a_garbage_signing_key_names_its_variable() {
        let e = env(&[(
            "JWT_SIGNING_KEY",
            "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----",
        )]);
        assert_eq!(
            signing_key_from_env(&e).unwrap_err().variable,
            "JWT_SIGNING_KEY"
        );
    }

    #[test]
    fn the_issuer_must_be_an_https_base_url_or_local_http() {
        for good in [
            "https://auth.example.com",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://127.0.0.1",
        ] {
            assert_eq!(check_issuer_url(good), Ok(()), "{good}");
        }
        for bad in [
            "auth.example.com",
            "http://auth.example.com",
            "http://localhost.evil.example",
            "https://",
            "https://auth.example.com/",
            "https://auth.example.com?x=1",
            "https://user@auth.example.com",
            "ftp://auth.example.com",
        ] {
            assert!(check_issuer_url(bad).is_err(), "{bad}");
        }
        let e = env(&[
            ("JWT_ISSUER", "http://auth.example.com"),
            ("JWT_AUDIENCE", "a"),
        ]);
        assert_eq!(
            TokenSettings::from_env(&e).unwrap_err().variable,
            "JWT_ISSUER"
        );
    }
}
