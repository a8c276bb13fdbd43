//! Signing and verification keys, and JWKS documents (RFC 7517).
//!
//! Every key carries its own algorithm: a token's `alg` header never chooses how it is checked.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Shortest HS256 secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Shortest RSA modulus accepted, in bits (NIST SP 800-131A: 2048 until 2030).
pub const MIN_RSA_BITS: usize = 2048;

/// Key id given to an HS256 secret when `JWT_KEY_ID` is not set.
pub const DEFAULT_HS256_KID: &str = "hs256";

/// Why a key or key set was refused. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("HS256 secret must be at least {MIN_SECRET_BYTES} bytes, got {0}")]
    SecretTooShort(usize),
    #[error("not a PKCS#8 PEM Ed25519 private key ({0})")]
    InvalidPrivateKey(String),
    #[error("not a PEM RSA private key ({0})")]
    InvalidRsaKey(String),
    #[error("RSA keys must have at least {MIN_RSA_BITS} bits, this one has {0}")]
    RsaTooShort(usize),
    #[error("not a valid Ed25519 public key ({0})")]
    InvalidPublicKey(String),
    #[error("not a JWKS document: {0}")]
    InvalidJwks(String),
    #[error("JWKS key #{index}: {problem}")]
    InvalidJwk { index: usize, problem: String },
    #[error("two different keys share the key id {0:?}")]
    DuplicateKid(String),
    #[error("key id must be 1 to 128 visible ASCII characters")]
    InvalidKid,
}

/// A public key in JWK form (RFC 7517): Ed25519 (`OKP`, RFC 8037: `crv`, `x`) or RSA
/// (RFC 7518 section 6.3: `n`, `e`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWKS document: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    let ok = !kid.is_empty() && kid.len() <= 128 && kid.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKid)
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key given as base64url `x`.
pub fn ed25519_thumbprint(x: &str) -> String {
    // Members in lexicographic order, no whitespace, as RFC 7638 section 3 requires.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The RFC 7638 thumbprint of an RSA public key given as base64url `n` and `e`.
pub fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Big-endian bytes without leading zeros (JWK `n` and `e` are written so).
fn unpadded(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A key that accepts tokens: its id, its one algorithm, and the key itself.
#[derive(Clone)]
pub struct VerificationKey {
    kid: String,
    algorithm: Algorithm,
    decoding: DecodingKey,
    /// An Ed25519 key, decompressed once: jsonwebtoken would decompress the point (part of
    /// every EdDSA verification's cost) again for each token.
    ed25519: Option<ed25519_dalek::VerifyingKey>,
    /// The public JWK, for asymmetric keys; symmetric keys are never published.
    jwk: Option<Jwk>,
    /// Identifies the key material, to tell a repeated key from a clash of ids.
    fingerprint: [u8; 32],
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// An Ed25519 public key from its 32 raw bytes.
    pub fn ed25519(kid: String, public: [u8; 32]) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        let point = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| KeyError::InvalidPublicKey("not a point on the curve".into()))?;
        let x = URL_SAFE_NO_PAD.encode(public);
        Ok(Self {
            decoding: DecodingKey::from_ed_der(&public),
            ed25519: Some(point),
            algorithm: Algorithm::EdDSA,
            jwk: Some(Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(x),
                n: None,
                e: None,
                kid: kid.clone(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            }),
            fingerprint: Sha256::digest(public).into(),
            kid,
        })
    }

    /// An RSA public key from its modulus and exponent (big-endian bytes), verifying RS256
    /// only. Moduli under [`MIN_RSA_BITS`] bits are refused.
    pub fn rsa(kid: String, n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        check_kid(&kid)?;
        let (n, e) = (unpadded(n), unpadded(e));
        let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
        if bits < MIN_RSA_BITS {
            return Err(KeyError::RsaTooShort(bits));
        }
        if e.is_empty() || e.len() > 8 || e.last().is_none_or(|b| b % 2 == 0) {
            return Err(KeyError::InvalidPublicKey(
                "the RSA exponent is not a small odd number".into(),
            ));
        }
        let mut material = n.to_vec();
        material.extend_from_slice(e);
        Ok(Self {
            decoding: DecodingKey::from_rsa_raw_components(n, e),
            ed25519: None,
            algorithm: Algorithm::RS256,
            jwk: Some(Jwk {
                kty: "RSA".into(),
                crv: None,
                x: None,
                n: Some(URL_SAFE_NO_PAD.encode(n)),
                e: Some(URL_SAFE_NO_PAD.encode(e)),
                kid: kid.clone(),
                alg: "RS256".into(),
                use_: "sig".into(),
            }),
            fingerprint: Sha256::digest(&material).into(),
            kid,
        })
    }

    /// The key id tokens name in their `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The only algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` (base64url) signs `message` under this key, with the key's own
    /// algorithm. `Err` when the signature is not base64url; a signature of the wrong length is
    /// a bad signature. The same answers as `jsonwebtoken::crypto::verify`.
    pub(crate) fn verify_signature(&self, message: &[u8], signature: &str) -> Result<bool, ()> {
        match &self.ed25519 {
            Some(point) => {
                use ed25519_dalek::Verifier as _;
                let bytes = URL_SAFE_NO_PAD.decode(signature).map_err(|_| ())?;
                Ok(ed25519_dalek::Signature::from_slice(&bytes)
                    .is_ok_and(|s| point.verify(message, &s).is_ok()))
            }
            None => {
                jsonwebtoken::crypto::verify(signature, message, &self.decoding, self.algorithm)
                    .map_err(|_| ())
            }
        }
    }

    /// The public JWK, or `None` for a symmetric key.
    pub fn jwk(&self) -> Option<&Jwk> {
        self.jwk.as_ref()
    }
}

/// The set of keys a verifier accepts, selected by `kid`. Several keys allow rotation.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl KeySet {
    /// Parses a JWKS document of Ed25519 and RSA public keys. A key without `kid` gets its
    /// RFC 7638 thumbprint. Private members, other key types and algorithms, and RSA keys
    /// under 2048 bits are refused.
    pub fn from_jwks_json(json: &str) -> Result<Self, KeyError> {
        let raw: RawJwks =
            serde_json::from_str(json).map_err(|e| KeyError::InvalidJwks(e.to_string()))?;
        if raw.keys.is_empty() {
            return Err(KeyError::InvalidJwks("it has no keys".into()));
        }
        let mut set = KeySet::default();
        for (index, key) in raw.keys.iter().enumerate() {
            let invalid = |problem: &str| KeyError::InvalidJwk {
                index,
                problem: problem.to_owned(),
            };
            let text = |name: &str| key.get(name).and_then(|v| v.as_str());
            if key.contains_key("d") {
                return Err(invalid(
                    "contains private key material (\"d\"); publish only public keys",
                ));
            }
            if !matches!(text("use"), None | Some("sig")) {
                return Err(invalid("use must be sig"));
            }
            let base64 = |name: &str| -> Result<Vec<u8>, KeyError> {
                let value = text(name).ok_or_else(|| invalid(&format!("{name} is missing")))?;
                URL_SAFE_NO_PAD
                    .decode(value)
                    .map_err(|_| invalid(&format!("{name} is not base64url")))
            };
            let kid = match key.get("kid") {
                None => None,
                Some(serde_json::Value::String(kid)) => Some(kid.clone()),
                Some(_) => return Err(invalid("kid must be a string")),
            };
            let vk = match (text("kty"), text("crv")) {
                (Some("OKP"), Some("Ed25519")) => {
                    if !matches!(text("alg"), None | Some("EdDSA")) {
                        return Err(invalid("alg must be EdDSA for an Ed25519 key"));
                    }
                    let bytes: [u8; 32] = base64("x")?
                        .try_into()
                        .map_err(|_| invalid("x must be 32 bytes of base64url"))?;
                    let kid =
                        kid.unwrap_or_else(|| ed25519_thumbprint(&URL_SAFE_NO_PAD.encode(bytes)));
                    VerificationKey::ed25519(kid, bytes)
                }
                (Some("RSA"), _) => {
                    if !matches!(text("alg"), None | Some("RS256")) {
                        return Err(invalid("alg must be RS256 for an RSA key"));
                    }
                    let (n, e) = (base64("n")?, base64("e")?);
                    let kid = kid.unwrap_or_else(|| {
                        rsa_thumbprint(
                            &URL_SAFE_NO_PAD.encode(unpadded(&n)),
                            &URL_SAFE_NO_PAD.encode(unpadded(&e)),
                        )
                    });
                    VerificationKey::rsa(kid, &n, &e)
                }
                _ => {
                    return Err(invalid(
                        "only Ed25519 (kty OKP, crv Ed25519) and RSA (kty RSA) keys are supported",
                    ));
                }
            }
            .map_err(|e| invalid(&e.to_string()))?;
            set.insert(vk)?;
        }
        Ok(set)
    }

    /// Adds a key. The same key twice is kept once; two keys with one id are refused.
    pub fn insert(&mut self, key: VerificationKey) -> Result<(), KeyError> {
        match self.keys.iter().find(|k| k.kid == key.kid) {
            Some(existing) if existing.fingerprint == key.fingerprint => Ok(()),
            Some(_) => Err(KeyError::DuplicateKid(key.kid)),
            None => {
                self.keys.push(key);
                Ok(())
            }
        }
    }

    /// Adds every key of `other`.
    pub fn merge(&mut self, other: KeySet) -> Result<(), KeyError> {
        other.keys.into_iter().try_for_each(|k| self.insert(k))
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public keys as a JWKS document; symmetric keys are left out.
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.iter().filter_map(|k| k.jwk.clone()).collect(),
        }
    }
}

/// The key that signs access tokens.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verification: VerificationKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.verification.kid)
            .field("algorithm", &self.verification.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An Ed25519 key from PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes it).
    /// Literal `\n` sequences are read as line breaks, for PEMs squeezed into one env line.
    /// Without `kid`, the key id is the RFC 7638 thumbprint of the public key.
    pub fn ed25519_from_pem(pem: &str, kid: Option<String>) -> Result<Self, KeyError> {
        let pem = pem.trim().replace("\\n", "\n");
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
        Self::from_dalek(&key, kid)
    }

    /// A fresh random Ed25519 key, for local development and tests. Fails only for a `kid`
    /// that is not 1 to 128 visible ASCII characters.
    pub fn ed25519_generate(kid: Option<String>) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_dalek(&key, kid)
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey, kid: Option<String>) -> Result<Self, KeyError> {
        let public = key.verifying_key().to_bytes();
        let kid = kid.unwrap_or_else(|| ed25519_thumbprint(&URL_SAFE_NO_PAD.encode(public)));
        let der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            verification: VerificationKey::ed25519(kid, public)?,
        })
    }

    /// A private key from PEM: Ed25519 (PKCS#8) or RSA (PKCS#8 or PKCS#1, at least 2048
    /// bits, signing RS256). Without `kid`, the RFC 7638 thumbprint of the public key.
    pub fn from_pem(pem: &str, kid: Option<String>) -> Result<Self, KeyError> {
        let text = pem.trim().replace("\\n", "\n");
        if text.contains("RSA PRIVATE KEY") {
            return Self::rsa_from_pem(&text, kid);
        }
        match Self::ed25519_from_pem(&text, kid.clone()) {
            Ok(key) => Ok(key),
            Err(ed25519) => match Self::rsa_from_pem(&text, kid) {
                Ok(key) => Ok(key),
                Err(KeyError::InvalidRsaKey(_)) => Err(ed25519),
                Err(other) => Err(other),
            },
        }
    }

    /// An RSA private key from PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`), of at
    /// least [`MIN_RSA_BITS`] bits. It signs RS256.
    pub fn rsa_from_pem(pem: &str, kid: Option<String>) -> Result<Self, KeyError> {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        let pem = pem.trim().replace("\\n", "\n");
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|e| KeyError::InvalidRsaKey(e.to_string()))?;
        Self::from_rsa(&key, kid)
    }

    /// A fresh random RSA key of [`MIN_RSA_BITS`] bits (RS256), for local development and
    /// tests (local-api's HTTP API variant, whose JWT authorizer accepts RSA only).
    pub fn rsa_generate(kid: Option<String>) -> Result<Self, KeyError> {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, MIN_RSA_BITS)
            .map_err(|e| KeyError::InvalidRsaKey(e.to_string()))?;
        Self::from_rsa(&key, kid)
    }

    fn from_rsa(key: &rsa::RsaPrivateKey, kid: Option<String>) -> Result<Self, KeyError> {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        key.validate()
            .map_err(|e| KeyError::InvalidRsaKey(e.to_string()))?;
        let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
        let kid = kid.unwrap_or_else(|| {
            rsa_thumbprint(&URL_SAFE_NO_PAD.encode(&n), &URL_SAFE_NO_PAD.encode(&e))
        });
        let verification = VerificationKey::rsa(kid, &n, &e)?;
        // jsonwebtoken takes RSA keys as PKCS#1 DER.
        let der = key
            .to_pkcs1_der()
            .map_err(|e| KeyError::InvalidRsaKey(e.to_string()))?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        Ok(Self {
            encoding,
            verification,
        })
    }

    /// An HS256 secret of at least 32 bytes.
    pub fn hs256(secret: SecretString, kid: Option<String>) -> Result<Self, KeyError> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(KeyError::SecretTooShort(bytes.len()));
        }
        let kid = kid.unwrap_or_else(|| DEFAULT_HS256_KID.to_owned());
        check_kid(&kid)?;
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            verification: VerificationKey {
                kid,
                algorithm: Algorithm::HS256,
                decoding: DecodingKey::from_secret(bytes),
                ed25519: None,
                jwk: None,
                fingerprint: Sha256::digest(bytes).into(),
            },
        })
    }

    /// The key id written into every token's header.
    pub fn kid(&self) -> &str {
        &self.verification.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.verification.algorithm
    }

    /// Whether this is a shared secret (HS256).
    pub fn is_symmetric(&self) -> bool {
        self.verification.jwk.is_none()
    }

    /// The key that verifies this key's signatures.
    pub fn verification_key(&self) -> VerificationKey {
        self.verification.clone()
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8037 appendix A.1 key; its thumbprint is given in appendix A.3.
    const RFC8037_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";

    #[test]
    fn the_default_kid_is_the_rfc7638_thumbprint() {
        let key = SigningKey::ed25519_from_pem(RFC8037_PEM, None).unwrap();
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let jwk = key.verification_key().jwk().cloned().unwrap();
        assert_eq!(
            jwk.x.as_deref(),
            Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        );
    }

    #[test]
    fn a_pem_with_escaped_newlines_is_accepted() {
        let squeezed = RFC8037_PEM.replace('\n', "\\n");
        let key = SigningKey::ed25519_from_pem(&squeezed, Some("k1".into())).unwrap();
        assert_eq!(key.kid(), "k1");
    }

    #[test]
    fn jwks_round_trips_and_keys_without_kid_get_their_thumbprint() {
        let key = SigningKey::ed25519_from_pem(RFC8037_PEM, None).unwrap();
        let mut set = KeySet::default();
        set.insert(key.verification_key()).unwrap();
        let json = serde_json::to_string(&set.to_jwks()).unwrap();
        let parsed = KeySet::from_jwks_json(&json).unwrap();
        assert_eq!(parsed.to_jwks(), set.to_jwks());

        let no_kid = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let parsed = KeySet::from_jwks_json(no_kid).unwrap();
        assert!(
            parsed
                .get("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
                .is_some()
        );
    }

    #[test]
    fn jwks_with_private_material_or_foreign_keys_is_refused() {
        let private = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#;
        assert!(
            KeySet::from_jwks_json(private)
                .unwrap_err()
                .to_string()
                .contains("private")
        );
        let rsa = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        assert!(KeySet::from_jwks_json(rsa).is_err());
        let short = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}"#;
        assert!(KeySet::from_jwks_json(short).is_err());
        assert!(KeySet::from_jwks_json(r#"{"keys":[]}"#).is_err());
        assert!(KeySet::from_jwks_json("not json").is_err());
    }

    #[test]
    fn two_different_keys_with_one_kid_are_refused_but_a_repeat_is_fine() {
        let a = SigningKey::ed25519_generate(Some("same".into())).unwrap();
        let b = SigningKey::ed25519_generate(Some("same".into())).unwrap();
        let mut set = KeySet::default();
        set.insert(a.verification_key()).unwrap();
        set.insert(a.verification_key()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(
            set.insert(b.verification_key()),
            Err(KeyError::DuplicateKid("same".into()))
        );
    }

    #[test]
    fn hs256_secrets_are_never_published() {
        let key = SigningKey::hs256(SecretString::from("x".repeat(32)), None).unwrap();
        let mut set = KeySet::default();
        set.insert(key.verification_key()).unwrap();
        assert!(set.to_jwks().keys.is_empty());
        assert!(!format!("{key:?}").contains("xxxx"));
    }
}
