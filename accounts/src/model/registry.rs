//! The client registry: OAuth clients (services, cron jobs, partners, and later the apps that
//! sign users in through the hosted pages), their scopes, grants and secrets.
//!
//! A secret is 256 random bits, shown once and kept only as its SHA-256; during a rotation
//! a client has up to two live secrets, the old one until a chosen end.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::token::{OpaqueToken, TokenHash};

/// Longest scope name.
pub const MAX_SCOPE_LEN: usize = 128;
/// Most scopes one client may be allowed.
pub const MAX_SCOPES: usize = 100;
/// Longest client name.
pub const MAX_NAME_LEN: usize = 100;
/// Most redirect URIs of either kind one client may have.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest redirect URI.
pub const MAX_URI_LEN: usize = 2000;
/// Live secrets a client may have at once: the current one and, during a rotation, the old.
pub const MAX_SECRETS: usize = 2;
/// Length of a client id: unpadded base64url of 16 random bytes.
pub const CLIENT_ID_LEN: usize = 22;
/// Seconds of a failed-client-authentication window, per client_id and per address.
pub const CLIENT_CHECK_WINDOW_SECONDS: i64 = 300;

/// A client's id: 128 random bits, URL-safe. Public: it names the client, it proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A client id as a caller sends it: URL-safe characters, at most 128 (ids of clients
    /// made elsewhere and imported may be longer than ours). Anything else names no client.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= 128
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the failed-authentication window of this id is kept under: its SHA-256, hex.
    /// Whatever a caller sent as a client_id is counted, and a secret pasted into the id's
    /// place must not land in the table as a key.
    pub fn window_key(&self) -> String {
        TokenHash(sha2_of(self.0.as_bytes())).to_hex()
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A scope: `[A-Za-z0-9:._/-]`, 1 to 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > MAX_SCOPE_LEN {
            return Err(format!(
                "a scope has 1 to {MAX_SCOPE_LEN} characters ({} given)",
                text.chars().count()
            ));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":._/-".contains(&b))
        {
            return Err(format!(
                "scope {text:?} may hold only letters, digits and : . _ / -"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A space-separated scope list (RFC 6749 §3.3), each validated, duplicates dropped, in the
/// order given. Empty text is an empty list.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
    let mut scopes: Vec<Scope> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let scope = Scope::parse(word)?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(format!("at most {MAX_SCOPES} scopes"));
    }
    Ok(scopes)
}

/// Scopes as RFC 6749 writes them: space-separated.
pub fn scope_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the client keeps a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// The grants a client may use, by their RFC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantType {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
    DeviceCode,
}

impl GrantType {
    pub const ALL: [Self; 4] = [
        Self::ClientCredentials,
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::DeviceCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// A client secret as handed out: 256 random bits. Never printed.
pub type ClientSecret = OpaqueToken;

/// One live secret, as stored: its hash, when it was made, and when it stops working
/// (`None`: until rotated away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub hash: TokenHash,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds; `None` for the current secret.
    pub expires_at_ms: Option<i64>,
}

impl SecretRecord {
    pub fn live(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|end| end > now_ms)
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub scopes: Vec<Scope>,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub first_party: bool,
    pub disabled: bool,
    /// Live secrets, at most [`MAX_SECRETS`]; none for a public client.
    pub secrets: Vec<SecretRecord>,
    pub created_at_ms: i64,
    pub created_by: String,
    pub updated_at_ms: i64,
    pub updated_by: String,
    /// Bumped by every change: a write names the version it read, so of two concurrent
    /// changes one wins and the other is told to read again.
    pub version: u64,
}

/// What a new client or a change asks for, before validation.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub name: Option<String>,
    pub client_type: Option<ClientType>,
    pub scopes: Option<Vec<Scope>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
}

impl ClientRecord {
    /// A new client from `spec` (a name is required), made by `actor` at `now_ms`, with its
    /// first secret if it is confidential (returned once, never stored).
    pub fn create(
        spec: ClientSpec,
        actor: &str,
        now_ms: i64,
    ) -> Result<(Self, Option<ClientSecret>), String> {
        let name = spec
            .name
            .clone()
            .ok_or_else(|| "a client needs a name".to_owned())?;
        let mut client = Self {
            client_id: ClientId::generate(),
            name,
            client_type: ClientType::Confidential,
            scopes: Vec::new(),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            first_party: false,
            disabled: false,
            secrets: Vec::new(),
            created_at_ms: now_ms,
            created_by: actor.to_owned(),
            updated_at_ms: now_ms,
            updated_by: actor.to_owned(),
            version: 1,
        };
        client.apply(spec)?;
        let secret = (client.client_type == ClientType::Confidential).then(|| {
            let secret = ClientSecret::generate();
            client.secrets.push(SecretRecord {
                hash: secret.hash(),
                created_at_ms: now_ms,
                expires_at_ms: None,
            });
            secret
        });
        Ok((client, secret))
    }

    /// This client changed as `spec` says (what it leaves out stays), by `actor`.
    pub fn updated(&self, spec: ClientSpec, actor: &str, now_ms: i64) -> Result<Self, String> {
        let mut client = self.clone();
        if spec.client_type.is_some_and(|t| t != self.client_type) {
            return Err("a client's type cannot change; create a new client instead".to_owned());
        }
        client.apply(spec)?;
        client.touch(actor, now_ms);
        Ok(client)
    }

    fn apply(&mut self, spec: ClientSpec) -> Result<(), String> {
        if let Some(name) = spec.name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
                return Err(format!("a client name has 1 to {MAX_NAME_LEN} characters"));
            }
            if name.chars().any(char::is_control) {
                return Err("a client name holds no control characters".to_owned());
            }
            self.name = name.to_owned();
        }
        if let Some(kind) = spec.client_type {
            self.client_type = kind;
        }
        if let Some(scopes) = spec.scopes {
            if scopes.len() > MAX_SCOPES {
                return Err(format!("at most {MAX_SCOPES} scopes"));
            }
            let mut unique: Vec<Scope> = Vec::new();
            for scope in scopes {
                if !unique.contains(&scope) {
                    unique.push(scope);
                }
            }
            self.scopes = unique;
        }
        if let Some(grants) = spec.grant_types {
            if grants.is_empty() {
                return Err("a client needs at least one grant type".to_owned());
            }
            let mut unique: Vec<GrantType> = Vec::new();
            for grant in grants {
                if !unique.contains(&grant) {
                    unique.push(grant);
                }
            }
            self.grant_types = unique;
        }
        if let Some(uris) = spec.redirect_uris {
            self.redirect_uris = redirect_uris(uris)?;
        }
        if let Some(uris) = spec.post_logout_redirect_uris {
            self.post_logout_redirect_uris = redirect_uris(uris)?;
        }
        if let Some(first_party) = spec.first_party {
            self.first_party = first_party;
        }
        if self.client_type == ClientType::Public
            && self.grant_types.contains(&GrantType::ClientCredentials)
        {
            return Err(
                "a public client keeps no secret, so it cannot use client_credentials".to_owned(),
            );
        }
        Ok(())
    }

    fn touch(&mut self, actor: &str, now_ms: i64) {
        self.updated_at_ms = now_ms;
        self.updated_by = actor.to_owned();
        self.version += 1;
    }

    /// This client with a new current secret (returned once); the old one keeps working
    /// until `old_valid_until_ms` (`None` or a time already past: it stops now). Secrets
    /// already ended are dropped.
    pub fn rotated(
        &self,
        old_valid_until_ms: Option<i64>,
        actor: &str,
        now_ms: i64,
    ) -> Result<(Self, ClientSecret), String> {
        if self.client_type == ClientType::Public {
            return Err("a public client has no secret to rotate".to_owned());
        }
        let mut client = self.clone();
        let secret = ClientSecret::generate();
        // The current secret becomes the old one; an older one still in its grace period ends
        // now, so at most two are ever live.
        let old = client
            .secrets
            .iter()
            .find(|s| s.expires_at_ms.is_none())
            .cloned();
        client.secrets = old
            .into_iter()
            .filter_map(|mut old| {
                let end = old_valid_until_ms.filter(|end| *end > now_ms)?;
                old.expires_at_ms = Some(end);
                Some(old)
            })
            .collect();
        client.secrets.push(SecretRecord {
            hash: secret.hash(),
            created_at_ms: now_ms,
            expires_at_ms: None,
        });
        client.touch(actor, now_ms);
        Ok((client, secret))
    }

    /// This client disabled or enabled.
    pub fn with_disabled(&self, disabled: bool, actor: &str, now_ms: i64) -> Self {
        let mut client = self.clone();
        client.disabled = disabled;
        client.touch(actor, now_ms);
        client
    }

    /// Whether `secret` is one of this client's live secrets, compared in constant time
    /// against each of them.
    pub fn secret_matches(&self, secret: &str, now_ms: i64) -> bool {
        // A secret of the wrong shape is still hashed and compared, so the time taken does
        // not tell a malformed secret from a wrong one.
        let hash = match OpaqueToken::parse(secret) {
            Some(token) => token.hash(),
            None => TokenHash(sha2_of(secret.as_bytes())),
        };
        let mut matched = subtle::Choice::from(0);
        for stored in &self.secrets {
            let same = stored.hash.0.ct_eq(&hash.0);
            matched |= same & subtle::Choice::from(u8::from(stored.live(now_ms)));
        }
        matched.into()
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

fn sha2_of(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Redirect URIs as registered: exact strings, absolute, no fragment, at most
/// [`MAX_REDIRECT_URIS`].
fn redirect_uris(uris: Vec<String>) -> Result<Vec<String>, String> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(format!("at most {MAX_REDIRECT_URIS} redirect URIs"));
    }
    let mut unique: Vec<String> = Vec::new();
    for uri in uris {
        let scheme_ok = uri.starts_with("https://")
            || uri.starts_with("http://")
            || uri
                .split_once(':')
                .is_some_and(|(scheme, _)| is_private_scheme(scheme));
        if uri.len() > MAX_URI_LEN
            || !scheme_ok
            || uri.contains('#')
            || uri.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "redirect URI {uri:?} must be an absolute http(s) URI or an app's private-use \
                 scheme (com.example.app:/path), without a fragment, at most {MAX_URI_LEN} \
                 characters"
            ));
        }
        if !unique.contains(&uri) {
            unique.push(uri);
        }
    }
    Ok(unique)
}

/// RFC 8252 §7.1: a private-use scheme is a reverse domain name, so it holds a dot.
fn is_private_scheme(scheme: &str) -> bool {
    scheme.contains('.')
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b))
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const NOW: i64 = 1_795_424_047_000;

    fn spec(scopes: &str) -> ClientSpec {
        ClientSpec {
            name: Some("billing".into()),
            scopes: Some(parse_scopes(scopes).unwrap()),
            ..ClientSpec::default()
        }
    }

    #[test]
    fn scopes_are_validated_and_deduplicated() {
        let scopes = parse_scopes("orders:read  orders:write orders:read").unwrap();
        assert_eq!(scope_text(&scopes), "orders:read orders:write");
        assert!(parse_scopes("orders read").is_ok());
        assert!(parse_scopes("orders\u{e9}").is_err());
        assert!(parse_scopes("a\"b").is_err());
        assert!(parse_scopes(&"a".repeat(129)).is_err());
        assert!(parse_scopes(&"a".repeat(128)).is_ok());
        assert_eq!(parse_scopes("").unwrap(), vec![]);
    }

    #[test]
    fn a_confidential_client_gets_one_secret_shown_once() {
        let (client, secret) = ClientRecord::create(spec("a"), "ops", NOW).unwrap();
        let secret = secret.expect("a confidential client has a secret");
        assert_eq!(client.client_id.as_str().len(), CLIENT_ID_LEN);
        assert_eq!(client.secrets.len(), 1);
        assert!(client.secret_matches(secret.encode().expose_secret(), NOW));
        assert!(!client.secret_matches("nope", NOW));
        assert!(!client.secret_matches("", NOW));
        let other = ClientSecret::generate();
        assert!(!client.secret_matches(other.encode().expose_secret(), NOW));
    }

    #[test]
    fn a_public_client_has_no_secret_and_no_client_credentials() {
        let mut public = spec("a");
        public.client_type = Some(ClientType::Public);
        assert!(ClientRecord::create(public.clone(), "ops", NOW).is_err());
        public.grant_types = Some(vec![GrantType::AuthorizationCode]);
        let (client, secret) = ClientRecord::create(public, "ops", NOW).unwrap();
        assert!(secret.is_none());
        assert!(client.secrets.is_empty());
        assert!(!client.secret_matches("", NOW));
        assert!(client.rotated(None, "ops", NOW).is_err());
    }

    #[test]
    fn rotation_keeps_the_old_secret_until_its_end_and_never_more_than_two() {
        let (client, first) = ClientRecord::create(spec("a"), "ops", NOW).unwrap();
        let first = first.unwrap().encode();
        let (client, second) = client.rotated(Some(NOW + 60_000), "ops", NOW).unwrap();
        let second = second.encode();
        assert!(client.secret_matches(first.expose_secret(), NOW + 59_999));
        assert!(!client.secret_matches(first.expose_secret(), NOW + 60_000));
        assert!(client.secret_matches(second.expose_secret(), NOW + 60_000));
        let (client, third) = client.rotated(Some(NOW + 60_000), "ops", NOW + 1).unwrap();
        assert_eq!(client.secrets.len(), 2);
        assert!(!client.secret_matches(first.expose_secret(), NOW + 2));
        assert!(client.secret_matches(second.expose_secret(), NOW + 2));
        assert!(client.secret_matches(third.encode().expose_secret(), NOW + 2));
        let (client, _) = client.rotated(None, "ops", NOW + 3).unwrap();
        assert_eq!(client.secrets.len(), 1, "no grace: the old secret ends now");
        assert!(!client.secret_matches(second.expose_secret(), NOW + 3));
        assert_eq!(client.version, 4);
    }

    #[test]
    fn updates_keep_what_they_leave_out_and_refuse_bad_values() {
        let (client, _) = ClientRecord::create(spec("a b"), "ops", NOW).unwrap();
        let changed = client
            .updated(
                ClientSpec {
                    first_party: Some(true),
                    ..ClientSpec::default()
                },
                "ada",
                NOW + 1,
            )
            .unwrap();
        assert_eq!(changed.scopes, client.scopes);
        assert!(changed.first_party);
        assert_eq!(changed.updated_by, "ada");
        assert_eq!(changed.version, client.version + 1);
        for bad in [
            ClientSpec {
                name: Some(" ".into()),
                ..ClientSpec::default()
            },
            ClientSpec {
                grant_types: Some(vec![]),
                ..ClientSpec::default()
            },
            ClientSpec {
                redirect_uris: Some(vec!["/relative".into()]),
                ..ClientSpec::default()
            },
            ClientSpec {
                redirect_uris: Some(vec!["https://a.example/cb#x".into()]),
                ..ClientSpec::default()
            },
            ClientSpec {
                client_type: Some(ClientType::Public),
                ..ClientSpec::default()
            },
        ] {
            assert!(client.updated(bad.clone(), "ops", NOW).is_err(), "{bad:?}");
        }
        let native = client
            .updated(
                ClientSpec {
                    redirect_uris: Some(vec![
                        "com.example.app:/callback".into(),
                        "http://127.0.0.1/callback".into(),
                    ]),
                    ..ClientSpec::default()
                },
                "ops",
                NOW,
            )
            .unwrap();
        assert_eq!(native.redirect_uris.len(), 2);
    }

    #[test]
    fn a_window_key_does_not_hold_the_id() {
        let secret = ClientSecret::generate();
        let pasted = ClientId::parse(secret.encode().expose_secret()).unwrap();
        let key = pasted.window_key();
        assert_eq!(key.len(), 64);
        assert!(!key.contains(pasted.as_str()));
        assert_eq!(key, pasted.window_key());
    }

    #[test]
    fn client_ids_are_url_safe_and_bounded() {
        assert!(ClientId::parse("abc-DEF_1.2~").is_some());
        for bad in ["", "a b", "a/b", "a:b", "é"] {
            assert!(ClientId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(ClientId::parse(&"a".repeat(129)).is_none());
    }
}
