//! OpenID Connect ID tokens: signed with the access tokens' key, but a different kind of JWT
//! (`typ` `JWT`, `aud` the client, OpenID Connect Core 1.0 §2), so neither can pass for the
//! other: the access-token verifier demands `at+jwt`, and this one refuses it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::keys::KeySet;
use crate::token::{MAX_TOKEN_BYTES, TokenError, TokenIssuer, TokenSettings};

/// The `typ` header of ID tokens.
pub const ID_TOKEN_TYPE: &str = "JWT";

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// When the user last entered a password (Unix seconds).
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The session (OpenID Connect Front-Channel Logout's `sid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// OpenID Connect Core §3.1.3.6 `at_hash`: the left half of the hash of the access token's
/// ASCII text, base64url, the hash being the one of the signature's algorithm. For EdDSA
/// (Ed25519) that is SHA-512, as the OpenID Foundation's conformance suite and the common
/// relying-party libraries compute it.
pub fn at_hash(algorithm: Algorithm, access_token: &str) -> String {
    let digest: Vec<u8> = match algorithm {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => {
            Sha384::digest(access_token.as_bytes()).to_vec()
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::HS512 | Algorithm::EdDSA => {
            Sha512::digest(access_token.as_bytes()).to_vec()
        }
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

impl TokenIssuer {
    /// Signs an ID token with this issuer's key, header `typ` `JWT`.
    pub fn sign_id_token(&self, claims: &IdClaims) -> Result<SecretString, TokenError> {
        let mut header = Header::new(self.key().algorithm());
        header.typ = Some(ID_TOKEN_TYPE.to_owned());
        header.kid = Some(self.key().kid().to_owned());
        jsonwebtoken::encode(&header, claims, self.key().encoding_key())
            .map(SecretString::from)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }
}

/// The claims of an ID token this issuer signed, expired or not (RP-Initiated Logout's
/// `id_token_hint` may have expired): signature by a key of `keys` with that key's own
/// algorithm, `typ` `JWT`, and the issuer are checked; the audience is the caller's to judge.
pub fn verify_id_token_hint(
    keys: &KeySet,
    settings: &TokenSettings,
    token: &str,
) -> Result<IdClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: HintHeader = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::MalformedHeader)?;
    if header.typ.as_deref() != Some(ID_TOKEN_TYPE) {
        return Err(TokenError::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::MissingKid)?;
    let key = keys.get(kid).ok_or(TokenError::UnknownKid)?;
    if header.alg != key.algorithm() || key.jwk().is_none() {
        return Err(TokenError::AlgorithmMismatch);
    }
    let message_len = token.len() - signature.len() - 1;
    let signed = key
        .verify_signature(&token.as_bytes()[..message_len], signature)
        .map_err(|()| TokenError::Malformed)?;
    if !signed {
        return Err(TokenError::BadSignature);
    }
    let claims: IdClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::InvalidClaims)?;
    if claims.iss != settings.issuer {
        return Err(TokenError::WrongIssuer);
    }
    Ok(claims)
}

#[derive(Deserialize)]
struct HintHeader {
    alg: Algorithm,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::{Subject, TokenVerifier};
    use secrecy::ExposeSecret;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "https://auth.example.com".into(),
            audience: "api".into(),
        }
    }

    fn claims() -> IdClaims {
        IdClaims {
            iss: settings().issuer,
            sub: "0b6c4f3e-8f57-4d3c-9a59-7f6f9b3f1c11".into(),
            aud: "client-1".into(),
            exp: 1_000,
            iat: 900,
            auth_time: 890,
            nonce: Some("n-0S6_WzA2Mj".into()),
            amr: vec!["pwd".into()],
            sid: None,
            at_hash: None,
            email: None,
            email_verified: None,
        }
    }

    #[test]
    fn at_hash_matches_the_openid_connect_core_example() {
        // OpenID Connect Core 1.0 appendix A.3 (RS256).
        assert_eq!(
            at_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn an_expired_id_token_is_still_a_hint_but_an_access_token_is_not() {
        let key = SigningKey::ed25519_generate(None).unwrap();
        let mut keys = KeySet::default();
        keys.insert(key.verification_key()).unwrap();
        let issuer = TokenIssuer::new(key, settings(), 60);
        let id_token = issuer.sign_id_token(&claims()).unwrap();
        let found = verify_id_token_hint(&keys, &settings(), id_token.expose_secret()).unwrap();
        assert_eq!(found, claims());

        let subject = Subject {
            user_id: uuid::Uuid::new_v4(),
            email: "a@example.com".into(),
            roles: vec!["user".into()],
            email_verified: true,
            session_id: None,
            method: Default::default(),
        };
        let access = issuer.issue(&subject, 900).unwrap();
        assert_eq!(
            verify_id_token_hint(&keys, &settings(), access.token.expose_secret()),
            Err(TokenError::WrongType)
        );
        // And the access-token verifier refuses the ID token.
        let verifier = TokenVerifier::new(keys.clone(), settings(), 0);
        assert_eq!(
            verifier.verify_at(id_token.expose_secret(), 900),
            Err(TokenError::WrongType)
        );
        // A tampered payload fails the signature.
        let text = id_token.expose_secret();
        let mut parts: Vec<&str> = text.split('.').collect();
        let mut forged = claims();
        forged.sub = "someone-else".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        parts[1] = &payload;
        assert_eq!(
            verify_id_token_hint(&keys, &settings(), &parts.join(".")),
            Err(TokenError::BadSignature)
        );
    }
}
