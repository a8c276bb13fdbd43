//! OpenID Connect's authorization code flow: PKCE challenges, redirect URI matching, codes and
//! consent, as kept between the authorization request and the token request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::credentials::Email;
use super::registry::{ClientId, ClientType};
use super::token::TokenHash;

/// Seconds an authorization code lives.
pub const CODE_TTL_SECONDS: i64 = 60;

/// The scope that asks for an ID token.
pub const SCOPE_OPENID: &str = "openid";
/// The scope that puts `email` and `email_verified` in ID tokens and userinfo.
pub const SCOPE_EMAIL: &str = "email";
/// The scope that asks for a refresh token.
pub const SCOPE_OFFLINE_ACCESS: &str = "offline_access";
/// The OpenID Connect scopes every client that signs users in may ask for (offline_access
/// only with the refresh_token grant), beside the API scopes registered for it.
pub const OIDC_SCOPES: [&str; 3] = [SCOPE_OPENID, SCOPE_EMAIL, SCOPE_OFFLINE_ACCESS];

/// Longest `state` or `nonce` kept.
pub const MAX_STATE_LEN: usize = 1024;

/// A PKCE code challenge (RFC 7636), method S256 only: `plain` would let whoever sees the
/// authorization request redeem the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The challenge as sent with its method; the method must be `S256`.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, String> {
        let challenge = challenge.ok_or("code_challenge is required (PKCE with S256)")?;
        match method {
            Some("S256") => {}
            None => return Err("code_challenge_method must be S256".into()),
            Some(other) => {
                return Err(format!(
                    "code_challenge_method {other:?} is not supported; use S256"
                ));
            }
        }
        // S256 challenges are the unpadded base64url of 32 bytes: 43 characters.
        let ok = challenge.len() == 43
            && URL_SAFE_NO_PAD
                .decode(challenge)
                .is_ok_and(|bytes| bytes.len() == 32);
        if !ok {
            return Err("code_challenge must be the base64url SHA-256 of the verifier".into());
        }
        Ok(Self(challenge.to_owned()))
    }

    /// A challenge as stored.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (43 to 128 unreserved characters) hashes to this challenge.
    pub fn verifies(&self, verifier: &str) -> bool {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !well_formed {
            return false;
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// Whether `given` is one of `registered`: exactly; or, for a public client, an RFC 8252
/// §7.3 loopback redirect (`http://127.0.0.1` or `http://[::1]`) that differs from a
/// registered one only in its port, since native apps listen on whatever port is free.
pub fn redirect_uri_matches(registered: &[String], given: &str, client_type: ClientType) -> bool {
    if registered.iter().any(|r| r == given) {
        return true;
    }
    if client_type != ClientType::Public {
        return false;
    }
    let Some((host, path)) = loopback(given) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|r| loopback(r))
        .any(|(h, p)| h == host && p == path)
}

/// A loopback redirect URI without its port: its host and the rest (path and query).
fn loopback(uri: &str) -> Option<(&'static str, &str)> {
    for host in ["127.0.0.1", "[::1]"] {
        let Some(rest) = uri
            .strip_prefix("http://")
            .and_then(|r| r.strip_prefix(host))
        else {
            continue;
        };
        let rest = match rest.strip_prefix(':') {
            Some(port_and_path) => {
                let end = port_and_path
                    .find(['/', '?'])
                    .unwrap_or(port_and_path.len());
                let port = &port_and_path[..end];
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                &port_and_path[end..]
            }
            None => rest,
        };
        if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
            return Some((host, rest));
        }
    }
    None
}

/// An authorization code as stored: only its hash, and everything it was bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub hash: TokenHash,
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub challenge: CodeChallenge,
    /// The granted scopes, space-separated.
    pub scope: String,
    pub nonce: Option<String>,
    pub user_id: Uuid,
    pub email: Email,
    /// The session the code was issued in: its sign-in's time and methods, and what a second
    /// use of the code revokes.
    pub family_id: Uuid,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What spending a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSpend {
    /// Its first use: the code as issued.
    First(CodeRecord),
    /// It was spent before; `issued` once that first use's tokens were issued.
    Again { code: CodeRecord, issued: bool },
    /// No such code (or it has been deleted).
    Unknown,
}

/// The scopes a user allowed a client, as remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub user_id: Uuid,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub updated_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_accepts_only_the_verifier_that_hashes_to_the_challenge() {
        // The challenge computed independently (Python's hashlib and base64).
        let challenge = CodeChallenge::parse(
            Some("OdQzf8Z8zYVta2uDgmykeeqJX18LS2YrxUZ4TGS-RMM"),
            Some("S256"),
        )
        .unwrap();
        assert!(challenge.verifies("dBjftJeZ4CVP-1B0gbrZZbaNPhpfsJs5kbCgc_xoX7k"));
        assert!(!challenge.verifies("dBjftJeZ4CVP-1B0gbrZZbaNPhpfsJs5kbCgc_xoX7K"));
        assert!(!challenge.verifies("short"));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        let c = Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(CodeChallenge::parse(c, Some("plain")).is_err());
        assert!(CodeChallenge::parse(c, None).is_err());
        assert!(CodeChallenge::parse(None, Some("S256")).is_err());
        assert!(CodeChallenge::parse(Some("abc"), Some("S256")).is_err());
    }

    #[test]
    fn loopback_redirects_of_public_clients_may_change_port_only() {
        let registered = vec![
            "http://127.0.0.1/callback".to_owned(),
            "https://app.example/cb".to_owned(),
        ];
        let public = ClientType::Public;
        assert!(redirect_uri_matches(
            &registered,
            "http://127.0.0.1:51234/callback",
            public
        ));
        assert!(redirect_uri_matches(
            &registered,
            "https://app.example/cb",
            public
        ));
        assert!(!redirect_uri_matches(
            &registered,
            "http://127.0.0.1:51234/other",
            public
        ));
        assert!(!redirect_uri_matches(
            &registered,
            "http://127.0.0.1.evil.example/callback",
            public
        ));
        assert!(!redirect_uri_matches(
            &registered,
            "http://127.0.0.1:1@evil.example/callback",
            public
        ));
        assert!(!redirect_uri_matches(
            &registered,
            "https://app.example/cb/",
            public
        ));
        assert!(!redirect_uri_matches(
            &registered,
            "http://127.0.0.1:51234/callback",
            ClientType::Confidential
        ));
    }
}
