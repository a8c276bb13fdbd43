//! Sign-in through other identity providers: the providers a deployment trusts
//! (`FEDERATION_PROVIDERS`), the identity an upstream provider asserts, and the rules that
//! decide what a sign-in with it may do: sign in to the account the identity is linked to,
//! create an account, link to an existing one, or nothing until the user has signed in to
//! that account and links from there.
//!
//! The rules (the contract):
//! - an identity is its provider and the provider's stable subject: `sub`, or for
//!   Microsoft's multi-tenant endpoints `tid` and `oid` (never `email`, which a Microsoft
//!   tenant lets its admins set to anything);
//! - an email counts as vouched for only when the provider says it is verified **and** the
//!   deployment marked the provider `trusted_email`; Microsoft's never counts;
//! - a first sign-in links to an existing account with the same email only when the email is
//!   vouched for **and** the account's own email is verified: otherwise an attacker who
//!   registered the victim's address first (or a provider that lets anyone claim any address)
//!   could take the account over;
//! - the provider's second factor counts (`amr` gets `mfa`) only for a `trusted_mfa` provider.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use shared::config::{self, ConfigError, Env};
use uuid::Uuid;

use crate::model::credentials::Email;
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;

pub use shared::token::AMR_FEDERATED;

/// How long a sign-in at a provider may take, from leaving to coming back.
pub const STATE_TTL_MS: i64 = 600_000;

/// How long a finished sign-in waits for `/federation/exchange`.
pub const GRANT_TTL_MS: i64 = 60_000;

/// A sign-in at a provider under way: what its callback needs, kept under the hash of the
/// `state` sent along, taken once.
#[derive(Clone)]
pub struct FederationState {
    pub hash: TokenHash,
    pub provider: String,
    /// Sent to an OpenID provider; its ID token must carry it back.
    pub nonce: String,
    /// The PKCE code verifier (its S256 challenge was sent).
    pub verifier: SecretString,
    /// The hash of the starting browser's binding cookie: only that browser may finish
    /// (a callback in another browser is a login CSRF).
    pub binding: TokenHash,
    /// The hosted pages' journey (their query, carried on), or none: the JSON API's
    /// sign-in, which ends on `FEDERATION_APP_URL`.
    pub journey: Option<String>,
    /// A link from this signed-in user's account instead of a sign-in.
    pub link: Option<Uuid>,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for FederationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederationState")
            .field("provider", &self.provider)
            .field("journey", &self.journey.is_some())
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// An upstream identity linked to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub user_id: Uuid,
    /// The address the provider gave when it was linked, if any (shown, never trusted).
    pub email: Option<String>,
    pub linked_at_ms: i64,
}

/// What a [`FederationGrant`]'s one-time code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantPurpose {
    /// A finished sign-in, for `/federation/exchange`.
    SignIn,
    /// A signed-in user's ticket to start linking a provider (`/oauth2/federate/{provider}
    /// ?link_ticket=…`).
    Link,
}

/// A one-time code kept under its hash and taken once: a finished federated sign-in waiting
/// to be exchanged for tokens (the JSON API's), or a ticket to link a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationGrant {
    pub hash: TokenHash,
    pub user_id: Uuid,
    pub provider: String,
    pub amr: Vec<String>,
    pub purpose: GrantPurpose,
    pub expires_at_ms: i64,
}

/// How a provider is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenID Connect: discovery, the code flow with PKCE and a nonce, an ID token.
    Oidc,
    /// GitHub: OAuth 2.0, then its user and verified-email API (it issues no ID token).
    Github,
    /// Sign in with Apple: OpenID Connect whose client secret is a JWT signed with the
    /// team's key, answered by `form_post`.
    Apple,
}

/// One provider a deployment trusts.
#[derive(Clone)]
pub struct Provider {
    /// In routes and identities: `[a-z0-9-]`, 1 to 32.
    pub id: String,
    /// On the sign-in page's button.
    pub name: String,
    pub kind: ProviderKind,
    /// The issuer URL (its discovery document is under it); GitHub's and Apple's are known.
    pub issuer: String,
    pub client_id: String,
    /// The client secret (Apple: the team's private key, PEM); in AWS read from SSM.
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    /// The provider's verified email may link to an existing verified account.
    pub trusted_email: bool,
    /// The provider's own second factor counts as this deployment's.
    pub trusted_mfa: bool,
    /// Apple: the team and key ids the client secret JWT names.
    pub apple_team_id: Option<String>,
    pub apple_key_id: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("trusted_email", &self.trusted_email)
            .field("trusted_mfa", &self.trusted_mfa)
            .finish_non_exhaustive()
    }
}

/// One entry of `FEDERATION_PROVIDERS`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    id: String,
    name: String,
    #[serde(default)]
    kind: Option<ProviderKind>,
    #[serde(default)]
    issuer: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    trusted_email: bool,
    #[serde(default)]
    trusted_mfa: bool,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
}

const GITHUB_ISSUER: &str = "https://github.com";
const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// Whether `url` may be an issuer: https, or plain http to this machine (local providers).
fn issuer_allowed(url: &str) -> bool {
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|host| {
            url.strip_prefix(host)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    let https = url.strip_prefix("https://").is_some_and(|rest| {
        !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['?', '#'])
    });
    (https || local) && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `FEDERATION_PROVIDERS`: a JSON array of providers (none when unset or empty), their
/// client secrets from `FEDERATION_SECRETS` (a JSON object by provider id; in AWS read from
/// SSM) where the array has none.
pub fn providers_from_env(env: &dyn Env) -> Result<Vec<Provider>, ConfigError> {
    const VARIABLE: &str = "FEDERATION_PROVIDERS";
    let Some(text) = config::optional(env, VARIABLE).filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let entries: Vec<ProviderEntry> = serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(VARIABLE, format!("must be a JSON array of providers ({e})"))
    })?;
    let mut providers: Vec<Provider> = Vec::with_capacity(entries.len());
    for entry in entries {
        let provider = provider_of(entry).map_err(|why| ConfigError::new(VARIABLE, why))?;
        if providers.iter().any(|p| p.id == provider.id) {
            return Err(ConfigError::new(
                VARIABLE,
                format!("the id {} is used twice", provider.id),
            ));
        }
        providers.push(provider);
    }
    if let Some(text) = config::optional(env, "FEDERATION_SECRETS").filter(|t| !t.trim().is_empty())
    {
        let secrets: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
            .map_err(|_| {
                ConfigError::new(
                    "FEDERATION_SECRETS",
                    "must be a JSON object of client secrets by provider id",
                )
            })?;
        for (id, secret) in secrets {
            let provider = providers.iter_mut().find(|p| p.id == id).ok_or_else(|| {
                ConfigError::new(
                    "FEDERATION_SECRETS",
                    format!("names {id}, which FEDERATION_PROVIDERS does not"),
                )
            })?;
            if provider.client_secret.is_none() && !secret.is_empty() {
                provider.client_secret = Some(SecretString::from(secret));
            }
        }
    }
    for provider in providers.iter().filter(|p| p.kind == ProviderKind::Apple) {
        let key = provider.client_secret.as_ref().ok_or_else(|| {
            ConfigError::new(
                "FEDERATION_SECRETS",
                format!(
                    "{}: Apple needs the team's private key (.p8, PEM)",
                    provider.id
                ),
            )
        })?;
        if apple_key_der(key.expose_secret()).is_none() {
            return Err(ConfigError::new(
                "FEDERATION_SECRETS",
                format!(
                    "{}: Apple's secret must be the team's private key, a PKCS#8 PEM (.p8)",
                    provider.id
                ),
            ));
        }
    }
    Ok(providers)
}

/// The DER of a PKCS#8 PEM private key (Apple's `.p8`), if `pem` is one.
pub fn apple_key_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")?
        .strip_suffix("-----END PRIVATE KEY-----")?;
    let text: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    // It must sign: ES256 with a P-256 key, what Apple takes.
    let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &serde_json::json!({}),
        &key,
    )
    .ok()?;
    Some(der)
}

fn provider_of(entry: ProviderEntry) -> Result<Provider, String> {
    let id_ok = (1..=32).contains(&entry.id.len())
        && entry
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return Err(format!(
            "a provider's id must be 1 to 32 of a-z, 0-9 and -: {:?}",
            entry.id
        ));
    }
    let id = entry.id;
    let name = entry.name.trim().to_owned();
    if !(1..=64).contains(&name.chars().count()) || name.chars().any(char::is_control) {
        return Err(format!("{id}: name must be 1 to 64 characters"));
    }
    let kind = entry.kind.unwrap_or(ProviderKind::Oidc);
    let issuer = match (kind, entry.issuer) {
        (_, Some(issuer)) => issuer.trim().trim_end_matches('/').to_owned(),
        (ProviderKind::Github, None) => GITHUB_ISSUER.to_owned(),
        (ProviderKind::Apple, None) => APPLE_ISSUER.to_owned(),
        (ProviderKind::Oidc, None) => return Err(format!("{id}: issuer is required")),
    };
    if !issuer_allowed(&issuer) {
        return Err(format!(
            "{id}: issuer must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
        ));
    }
    let client_id = entry.client_id.trim().to_owned();
    if client_id.is_empty()
        || client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{id}: client_id is required"));
    }
    let scopes = entry.scopes.unwrap_or_else(|| {
        match kind {
            ProviderKind::Oidc => vec!["openid", "email", "profile"],
            ProviderKind::Github => vec!["read:user", "user:email"],
            ProviderKind::Apple => vec!["openid", "email", "name"],
        }
        .into_iter()
        .map(str::to_owned)
        .collect()
    });
    let scope_ok = |s: &String| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    };
    if !scopes.iter().all(scope_ok) {
        return Err(format!(
            "{id}: each scope is printable ASCII without spaces"
        ));
    }
    if kind != ProviderKind::Github && !scopes.iter().any(|s| s == "openid") {
        return Err(format!(
            "{id}: an OpenID Connect provider needs the openid scope"
        ));
    }
    let (apple_team_id, apple_key_id) = match kind {
        ProviderKind::Apple => {
            let ten = |v: Option<String>, what: &str| {
                v.filter(|v| v.len() == 10 && v.chars().all(|c| c.is_ascii_alphanumeric()))
                    .ok_or_else(|| format!("{id}: Apple needs {what} (10 letters and digits)"))
            };
            (
                Some(ten(entry.team_id, "team_id")?),
                Some(ten(entry.key_id, "key_id")?),
            )
        }
        _ if entry.team_id.is_some() || entry.key_id.is_some() => {
            return Err(format!("{id}: team_id and key_id are Apple's only"));
        }
        _ => (None, None),
    };
    Ok(Provider {
        id,
        name,
        kind,
        issuer,
        client_id,
        client_secret: entry
            .client_secret
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
        scopes,
        trusted_email: entry.trusted_email,
        trusted_mfa: entry.trusted_mfa,
        apple_team_id,
        apple_key_id,
    })
}

/// Microsoft's multi-tenant endpoints: their tokens' `iss` names the user's tenant.
fn is_microsoft(issuer: &str) -> bool {
    issuer
        .strip_prefix("https://login.microsoftonline.com/")
        .is_some()
}

/// The `iss` an ID token must carry: the discovered issuer, whose `{tenantid}` (Microsoft's
/// multi-tenant endpoints) is the token's own `tid`. `None` when the token has no `tid` to
/// put there.
pub fn expected_issuer(discovered: &str, claims: &Value) -> Option<String> {
    if discovered.contains("{tenantid}") {
        let tid = claims["tid"].as_str().filter(|t| is_tenant_id(t))?;
        Some(discovered.replace("{tenantid}", tid))
    } else {
        Some(discovered.to_owned())
    }
}

/// A tenant id: a GUID (what Microsoft issues).
fn is_tenant_id(text: &str) -> bool {
    Uuid::parse_str(text).is_ok() && text.len() == 36
}

/// Who the upstream provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The provider's id (ours).
    pub provider: String,
    /// The provider's stable subject.
    pub subject: String,
    /// The address the provider gave, if any.
    pub email: Option<Email>,
    /// Whether this deployment takes the address as the user's (see the module's rules).
    pub email_vouched: bool,
    /// The provider asserted a second factor, and is trusted for it.
    pub mfa: bool,
}

/// Why an upstream answer gives no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the provider's answer has no usable subject")]
    NoSubject,
}

/// Whether `claims[name]` says true (a flag, or Apple's `"true"`).
fn truthy(claims: &Value, name: &str) -> bool {
    match &claims[name] {
        Value::Bool(flag) => *flag,
        Value::String(text) => text == "true",
        _ => false,
    }
}

/// A stable subject: 1 to 255 printable characters.
fn subject_ok(text: &str) -> bool {
    (1..=255).contains(&text.len()) && !text.chars().any(char::is_control)
}

/// The identity in a checked ID token's `claims` from `provider` (the signature, `iss`,
/// `aud`, `exp` and `nonce` already checked by the caller).
pub fn oidc_identity(
    provider: &Provider,
    claims: &Value,
) -> Result<UpstreamIdentity, IdentityError> {
    let microsoft = is_microsoft(&provider.issuer);
    let subject = if microsoft {
        // The object id within its tenant: stable, unlike email (nOAuth).
        let tid = claims["tid"].as_str().filter(|t| is_tenant_id(t));
        let oid = claims["oid"]
            .as_str()
            .filter(|o| Uuid::parse_str(o).is_ok());
        match (tid, oid) {
            (Some(tid), Some(oid)) => format!("{tid}:{oid}"),
            _ => return Err(IdentityError::NoSubject),
        }
    } else {
        claims["sub"]
            .as_str()
            .filter(|s| subject_ok(s))
            .ok_or(IdentityError::NoSubject)?
            .to_owned()
    };
    let email = claims["email"].as_str().and_then(|e| Email::parse(e).ok());
    let email_vouched =
        !microsoft && provider.trusted_email && email.is_some() && truthy(claims, "email_verified");
    let mfa = provider.trusted_mfa
        && claims["amr"].as_array().is_some_and(|amr| {
            amr.iter()
                .filter_map(Value::as_str)
                .any(|m| matches!(m, "mfa" | "otp" | "hwk" | "swk" | "sms" | "fido"))
        });
    Ok(UpstreamIdentity {
        provider: provider.id.clone(),
        subject,
        email,
        email_vouched,
        mfa,
    })
}

/// The identity GitHub's API gives: `user` (`GET /user`: its numeric `id`) and `emails`
/// (`GET /user/emails`: the primary address, and whether GitHub verified it).
pub fn github_identity(
    provider: &Provider,
    user: &Value,
    emails: &Value,
) -> Result<UpstreamIdentity, IdentityError> {
    let subject = user["id"]
        .as_u64()
        .ok_or(IdentityError::NoSubject)?
        .to_string();
    let primary = emails
        .as_array()
        .and_then(|all| all.iter().find(|e| e["primary"] == Value::Bool(true)));
    let email = primary
        .and_then(|e| e["email"].as_str())
        .and_then(|e| Email::parse(e).ok());
    let verified = primary.is_some_and(|e| e["verified"] == Value::Bool(true));
    Ok(UpstreamIdentity {
        provider: provider.id.clone(),
        subject,
        email_vouched: provider.trusted_email && verified && email.is_some(),
        email,
        // GitHub says nothing of how its user signed in.
        mfa: false,
    })
}

/// What a sign-in with an upstream identity may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linking {
    /// The identity is linked to this account: sign in to it.
    SignIn(Uuid),
    /// No account has this email: create one (its email verified when vouched for).
    Create { email: Email, email_verified: bool },
    /// Link the identity to this account (same email, vouched for and verified on both
    /// sides), then sign in to it.
    Link(Uuid),
    /// An account has this email, but the link cannot be proven: the user signs in to it
    /// first and links from there.
    SignInFirst,
    /// The provider gave no address to make an account with.
    NoEmail,
}

/// The decision for `identity`, linked to `owner` (if any), where `existing` is the account
/// with the identity's email (if any).
pub fn decide(
    identity: &UpstreamIdentity,
    owner: Option<Uuid>,
    existing: Option<&UserRecord>,
) -> Linking {
    if let Some(owner) = owner {
        return Linking::SignIn(owner);
    }
    let Some(email) = &identity.email else {
        return Linking::NoEmail;
    };
    match existing {
        None => Linking::Create {
            email: email.clone(),
            email_verified: identity.email_vouched,
        },
        Some(account) if identity.email_vouched && account.email_verified => {
            Linking::Link(account.user_id)
        }
        Some(_) => Linking::SignInFirst,
    }
}

/// How a federated sign-in signed in: `fed`, and `mfa` when a trusted provider asserted
/// a second factor.
pub fn method(identity: &UpstreamIdentity) -> shared::SignInMethod {
    shared::SignInMethod::Federated { mfa: identity.mfa }
}

/// The `amr` of a federated sign-in (see [`method`]).
pub fn amr(identity: &UpstreamIdentity) -> Vec<String> {
    method(identity).amr()
}

/// The key of an identity's item: `IDENTITY#<provider>#<subject>`.
pub fn identity_key(provider: &str, subject: &str) -> String {
    format!("IDENTITY#{provider}#{subject}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn providers(json: &str) -> Result<Vec<Provider>, ConfigError> {
        providers_from_env(&HashMap::from([("FEDERATION_PROVIDERS", json)]))
    }

    fn provider(extra: Value) -> Provider {
        let mut entry = json!({"id": "idp", "name": "IdP", "issuer": "https://idp.example.com",
                               "client_id": "auth", "trusted_email": true});
        for (k, v) in extra.as_object().unwrap() {
            entry[k] = v.clone();
        }
        providers(&json!([entry]).to_string()).unwrap().remove(0)
    }

    #[test]
    fn providers_are_read_with_their_defaults_and_checked() {
        assert!(
            providers_from_env(&HashMap::<&str, &str>::new())
                .unwrap()
                .is_empty()
        );
        let read = providers_from_env(&HashMap::from([
            (
                "FEDERATION_PROVIDERS",
                r#"[{"id":"google","name":"Google","issuer":"https://accounts.google.com/",
                 "client_id":"123.apps","client_secret":"s3cr3t","trusted_email":true},
                {"id":"github","name":"GitHub","kind":"github","client_id":"Iv1"},
                {"id":"apple","name":"Apple","kind":"apple","client_id":"com.example",
                 "team_id":"ABCDE12345","key_id":"KEY1234567"}]"#,
            ),
            ("FEDERATION_SECRETS", APPLE_SECRETS),
        ]))
        .unwrap();
        assert_eq!(read[0].issuer, "https://accounts.google.com");
        assert_eq!(read[0].scopes, ["openid", "email", "profile"]);
        assert!(read[0].trusted_email && !read[0].trusted_mfa);
        assert_eq!(read[1].issuer, GITHUB_ISSUER);
        assert_eq!(read[1].scopes, ["read:user", "user:email"]);
        assert_eq!(read[2].issuer, APPLE_ISSUER);
        assert_eq!(read[2].apple_team_id.as_deref(), Some("ABCDE12345"));
        assert!(
            !format!("{read:?}").contains("s3cr3t"),
            "secrets never print"
        );
        for bad in [
            "{",
            r#"{"id":"x"}"#,
            r#"[{"id":"Bad Id","name":"x","issuer":"https://i.example","client_id":"c"}]"#,
            r#"[{"id":"x","name":"","issuer":"https://i.example","client_id":"c"}]"#,
            r#"[{"id":"x","name":"X","client_id":"c"}]"#,
            r#"[{"id":"x","name":"X","issuer":"http://i.example","client_id":"c"}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example?x","client_id":"c"}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example","client_id":""}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example","client_id":"c","scopes":["email"]}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example","client_id":"c","scopes":["a b"]}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example","client_id":"c","extra":1}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example","client_id":"c","team_id":"ABCDE12345"}]"#,
            r#"[{"id":"a","name":"A","kind":"apple","client_id":"c","team_id":"short","key_id":"KEY1234567"}]"#,
            r#"[{"id":"x","name":"X","kind":"saml","issuer":"https://i.example","client_id":"c"}]"#,
            r#"[{"id":"x","name":"X","issuer":"https://i.example","client_id":"c"},
                {"id":"x","name":"Y","issuer":"https://j.example","client_id":"c"}]"#,
        ] {
            let err = providers(bad).unwrap_err();
            assert_eq!(err.variable, "FEDERATION_PROVIDERS", "{bad}");
        }
        // A local upstream (local-api, tests) may be plain http on this machine.
        assert!(providers(r#"[{"id":"local","name":"Local","issuer":"http://127.0.0.1:9000","client_id":"c"}]"#).is_ok());
    }

    /// A P-256 key in PKCS#8 PEM, as Apple hands out (.p8), made for these tests.
    const APPLE_SECRETS: &str = r#"{"apple": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgoUJzhMZVFZ4n0xbp\naZZE4GK2XCCHia6ulpt+AA54A+ehRANCAARkVcEp1XPADSozHGcHS36CkbAwIic8\nPgDzqU38F+3kMf9xwZnrebV5ga8GhnJzhLPvGefTr3fh/hvpnsEujlPB\n-----END PRIVATE KEY-----"}"#;

    #[test]
    fn apple_needs_the_team_s_private_key() {
        let apple = r#"[{"id":"apple","name":"Apple","kind":"apple","client_id":"com.example",
                         "team_id":"ABCDE12345","key_id":"KEY1234567"}]"#;
        for secrets in [
            None,
            Some(r#"{"apple":"not a key"}"#),
            Some(r#"{"apple":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#),
        ] {
            let mut env = HashMap::from([("FEDERATION_PROVIDERS", apple)]);
            if let Some(secrets) = secrets {
                env.insert("FEDERATION_SECRETS", secrets);
            }
            let err = providers_from_env(&env).unwrap_err();
            assert_eq!(err.variable, "FEDERATION_SECRETS", "{secrets:?}");
            assert!(!err.problem.contains("BEGIN"), "the key is never echoed");
        }
        let env = HashMap::from([
            ("FEDERATION_PROVIDERS", apple),
            ("FEDERATION_SECRETS", APPLE_SECRETS),
        ]);
        assert!(providers_from_env(&env).is_ok());
        // Secrets for a provider that is not configured are a mistake.
        let env = HashMap::from([
            ("FEDERATION_PROVIDERS", r#"[]"#),
            ("FEDERATION_SECRETS", r#"{"apple":"x"}"#),
        ]);
        assert!(providers_from_env(&env).is_err());
    }

    #[test]
    fn the_subject_is_sub_or_microsoft_s_tenant_and_object_ids_never_the_email() {
        let idp = provider(json!({}));
        let identity = oidc_identity(
            &idp,
            &json!({"sub": "248289761001", "email": "Ada@Example.com", "email_verified": true}),
        )
        .unwrap();
        assert_eq!(identity.subject, "248289761001");
        assert_eq!(identity.email.unwrap().as_str(), "ada@example.com");
        assert!(identity.email_vouched);
        assert_eq!(
            oidc_identity(&idp, &json!({"email": "a@b.c"})),
            Err(IdentityError::NoSubject)
        );

        let microsoft =
            provider(json!({"issuer": "https://login.microsoftonline.com/common/v2.0"}));
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let oid = "00000000-0000-0000-66f3-3332eca7ea81";
        let claims = json!({"sub": "per-app-pairwise", "tid": tid, "oid": oid,
                            "email": "ceo@victim.example", "email_verified": true});
        let identity = oidc_identity(&microsoft, &claims).unwrap();
        assert_eq!(identity.subject, format!("{tid}:{oid}"));
        assert!(
            !identity.email_vouched,
            "Microsoft's email is never vouched for"
        );
        // The same user with an email changed by their tenant's admin: the same identity.
        let mut changed = claims.clone();
        changed["email"] = json!("someone-else@example.com");
        assert_eq!(
            oidc_identity(&microsoft, &changed).unwrap().subject,
            identity.subject
        );
        let mut no_oid = claims;
        no_oid["oid"] = Value::Null;
        assert_eq!(
            oidc_identity(&microsoft, &no_oid),
            Err(IdentityError::NoSubject)
        );
    }

    #[test]
    fn an_email_is_vouched_for_only_verified_by_a_trusted_provider() {
        let trusted = provider(json!({}));
        let untrusted = provider(json!({"trusted_email": false}));
        let verified = json!({"sub": "1", "email": "a@example.com", "email_verified": true});
        let apple_style = json!({"sub": "1", "email": "a@example.com", "email_verified": "true"});
        let unverified = json!({"sub": "1", "email": "a@example.com", "email_verified": false});
        let silent = json!({"sub": "1", "email": "a@example.com"});
        assert!(oidc_identity(&trusted, &verified).unwrap().email_vouched);
        assert!(oidc_identity(&trusted, &apple_style).unwrap().email_vouched);
        assert!(!oidc_identity(&trusted, &unverified).unwrap().email_vouched);
        assert!(!oidc_identity(&trusted, &silent).unwrap().email_vouched);
        assert!(!oidc_identity(&untrusted, &verified).unwrap().email_vouched);
    }

    #[test]
    fn microsoft_s_issuer_is_the_token_s_own_tenant() {
        let common = "https://login.microsoftonline.com/{tenantid}/v2.0";
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        assert_eq!(
            expected_issuer(common, &json!({"tid": tid})).unwrap(),
            format!("https://login.microsoftonline.com/{tid}/v2.0")
        );
        assert_eq!(expected_issuer(common, &json!({})), None);
        assert_eq!(expected_issuer(common, &json!({"tid": "../evil"})), None);
        assert_eq!(
            expected_issuer("https://accounts.google.com", &json!({"tid": tid})).unwrap(),
            "https://accounts.google.com"
        );
    }

    #[test]
    fn github_s_identity_is_its_numeric_id_and_its_primary_verified_address() {
        let github = provider(json!({"kind": "github", "issuer": null}));
        let user = json!({"id": 583231, "login": "octocat", "email": "public@example.com"});
        let emails = json!([
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": "octo@example.com", "primary": true, "verified": true},
        ]);
        let identity = github_identity(&github, &user, &emails).unwrap();
        assert_eq!(identity.subject, "583231");
        assert_eq!(identity.email.unwrap().as_str(), "octo@example.com");
        assert!(identity.email_vouched);
        let unverified = json!([{"email": "octo@example.com", "primary": true, "verified": false}]);
        assert!(
            !github_identity(&github, &user, &unverified)
                .unwrap()
                .email_vouched
        );
        assert_eq!(
            github_identity(&github, &json!({"login": "octocat"}), &emails),
            Err(IdentityError::NoSubject)
        );
    }

    #[test]
    fn a_first_sign_in_links_only_on_a_vouched_email_and_a_verified_account() {
        let email = Email::parse("ada@example.com").unwrap();
        let identity = |vouched: bool| UpstreamIdentity {
            provider: "idp".into(),
            subject: "1".into(),
            email: Some(email.clone()),
            email_vouched: vouched,
            mfa: false,
        };
        let mut account = UserRecord::new(
            email.clone(),
            String::new().into(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let owner = Uuid::new_v4();
        assert_eq!(
            decide(&identity(false), Some(owner), Some(&account)),
            Linking::SignIn(owner)
        );
        assert_eq!(
            decide(&identity(true), None, None),
            Linking::Create {
                email: email.clone(),
                email_verified: true
            }
        );
        assert_eq!(
            decide(&identity(false), None, None),
            Linking::Create {
                email: email.clone(),
                email_verified: false
            }
        );
        // An account whose own address was never proven: an attacker may have registered it.
        assert_eq!(
            decide(&identity(true), None, Some(&account)),
            Linking::SignInFirst
        );
        account.email_verified = true;
        assert_eq!(
            decide(&identity(true), None, Some(&account)),
            Linking::Link(account.user_id)
        );
        assert_eq!(
            decide(&identity(false), None, Some(&account)),
            Linking::SignInFirst
        );
        let mut nameless = identity(true);
        nameless.email = None;
        assert_eq!(decide(&nameless, None, None), Linking::NoEmail);
    }

    #[test]
    fn a_provider_s_second_factor_counts_only_when_trusted_for_it() {
        let claims = json!({"sub": "1", "amr": ["pwd", "mfa"]});
        let trusted = provider(json!({"trusted_mfa": true}));
        let untrusted = provider(json!({}));
        assert_eq!(
            amr(&oidc_identity(&trusted, &claims).unwrap()),
            ["fed", "mfa"]
        );
        assert_eq!(amr(&oidc_identity(&untrusted, &claims).unwrap()), ["fed"]);
        let single = json!({"sub": "1", "amr": ["pwd"]});
        assert_eq!(amr(&oidc_identity(&trusted, &single).unwrap()), ["fed"]);
        assert_eq!(identity_key("google", "1234"), "IDENTITY#google#1234");
    }
}
