//! WebAuthn Level 3 for a relying party that asks for no attestation: the options it sends
//! (in the JSON encodings `PublicKeyCredential.parseCreationOptionsFromJSON` and
//! `parseRequestOptionsFromJSON` take) and the checks of what comes back (W3C WebAuthn §7.1
//! registration, §7.2 authentication). Pure: no I/O, no time, no randomness but what the
//! caller passes in.
//!
//! Signatures: ES256 (P-256), EdDSA (Ed25519) and RS256, the algorithms authenticators offer.
//! Attestation statements are not verified: this relying party asks for `none` and trusts no
//! authenticator maker, so a statement could change nothing; the key and flags it relies on are
//! in the authenticator data, which every assertion then signs.

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cbor::{self, Value};

/// base64url with or without padding, as browsers and libraries send it.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest credential id the spec allows.
pub const MAX_CREDENTIAL_ID: usize = 1023;
/// Milliseconds a ceremony may take, sent as `timeout` (the challenge lives as long).
pub const CEREMONY_TIMEOUT_MS: i64 = 300_000;
/// COSE algorithm identifiers, in order of preference.
pub const ALG_EDDSA: i64 = -8;
pub const ALG_ES256: i64 = -7;
pub const ALG_RS256: i64 = -257;
const ALGORITHMS: [i64; 3] = [ALG_EDDSA, ALG_ES256, ALG_RS256];
/// The transports a credential may name (WebAuthn §5.8.4); others are dropped.
const TRANSPORTS: [&str; 6] = ["usb", "nfc", "ble", "smart-card", "hybrid", "internal"];

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;

/// Who the passkeys are for: the registrable domain they are bound to and the exact origins
/// whose pages may use them.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    id: String,
    name: String,
    origins: Vec<String>,
    id_hash: [u8; 32],
}

/// A relying-party setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpError {
    #[error("the RP ID must be a lower-case domain name without scheme, port or path: {0:?}")]
    BadId(String),
    #[error("at least one origin is needed")]
    NoOrigins,
    #[error(
        "{0:?} is not an origin (https://host[:port], or http://localhost[:port]) \
         whose host is the RP ID or under it"
    )]
    BadOrigin(String),
}

impl RelyingParty {
    /// Checks that `id` is a domain name and that it covers every origin (WebAuthn §5.1.4.1:
    /// the origin's host is the RP ID or a subdomain of it; secure contexts only).
    pub fn new(id: &str, name: &str, origins: &[String]) -> Result<Self, RpError> {
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if id.is_empty() || id.len() > 253 || !id.split('.').all(valid_label) {
            return Err(RpError::BadId(id.to_owned()));
        }
        if origins.is_empty() {
            return Err(RpError::NoOrigins);
        }
        for origin in origins {
            let host = origin_host(origin).ok_or_else(|| RpError::BadOrigin(origin.clone()))?;
            let covered = host == id || host.ends_with(&format!(".{id}"));
            if !covered {
                return Err(RpError::BadOrigin(origin.clone()));
            }
        }
        Ok(Self {
            id: id.to_owned(),
            name: name.to_owned(),
            origins: origins.to_vec(),
            id_hash: Sha256::digest(id.as_bytes()).into(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn origins(&self) -> &[String] {
        &self.origins
    }
}

/// The host of an origin this relying party can serve: `https://host[:port]`, or `http://`
/// for `localhost` (browsers treat it as a secure context).
fn origin_host(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    let host = match rest.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().ok().filter(|p| *p > 0)?;
            host
        }
        None => rest,
    };
    let plain = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let secure = scheme == "https" || (scheme == "http" && host == "localhost");
    (plain && secure).then_some(host)
}

/// A credential as the relying party keeps it for a ceremony: its id and the transports it
/// said it uses.
#[derive(Debug, Clone)]
pub struct Descriptor {
    pub credential_id: Vec<u8>,
    pub transports: Vec<String>,
}

fn descriptors(list: &[Descriptor]) -> Json {
    list.iter()
        .map(|d| {
            let mut entry = json!({"type": "public-key", "id": B64URL.encode(&d.credential_id)});
            if !d.transports.is_empty() {
                entry["transports"] = json!(d.transports);
            }
            entry
        })
        .collect()
}

/// `PublicKeyCredentialCreationOptionsJSON`: a discoverable credential preferred, user
/// verification preferred, no attestation, none of `exclude` again.
pub fn creation_options(
    rp: &RelyingParty,
    user_handle: &[u8],
    user_name: &str,
    display_name: &str,
    challenge: &[u8],
    exclude: &[Descriptor],
) -> Json {
    json!({
        "rp": {"id": rp.id, "name": rp.name},
        "user": {
            "id": B64URL.encode(user_handle),
            "name": user_name,
            "displayName": display_name,
        },
        "challenge": B64URL.encode(challenge),
        "pubKeyCredParams": ALGORITHMS
            .iter()
            .map(|alg| json!({"type": "public-key", "alg": alg}))
            .collect::<Vec<_>>(),
        "timeout": CEREMONY_TIMEOUT_MS,
        "excludeCredentials": descriptors(exclude),
        "authenticatorSelection": {
            "residentKey": "preferred",
            "requireResidentKey": false,
            "userVerification": "preferred",
        },
        "attestation": "none",
        "extensions": {"credProps": true},
    })
}

/// `PublicKeyCredentialRequestOptionsJSON`: `allow` empty for a discoverable sign-in (and
/// browser autofill).
pub fn request_options(rp: &RelyingParty, challenge: &[u8], allow: &[Descriptor]) -> Json {
    json!({
        "challenge": B64URL.encode(challenge),
        "timeout": CEREMONY_TIMEOUT_MS,
        "rpId": rp.id,
        "allowCredentials": descriptors(allow),
        "userVerification": "preferred",
    })
}

/// Why a response was refused: the audit's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed")]
    Malformed,
    #[error("wrong_ceremony")]
    WrongCeremony,
    #[error("challenge_mismatch")]
    Challenge,
    #[error("origin_not_allowed")]
    Origin,
    #[error("cross_origin")]
    CrossOrigin,
    #[error("rp_id_mismatch")]
    RpId,
    #[error("user_not_present")]
    UserPresence,
    #[error("unsupported_algorithm")]
    Algorithm,
    #[error("credential_mismatch")]
    CredentialMismatch,
    #[error("bad_signature")]
    Signature,
    #[error("counter_regressed")]
    Counter,
    #[error("backup_eligibility_changed")]
    BackupEligibility,
    #[error("unknown_credential")]
    UnknownCredential,
    #[error("user_mismatch")]
    UserMismatch,
    #[error("user_verification_required")]
    UserVerification,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::WrongCeremony => "wrong_ceremony",
            Refusal::Challenge => "challenge_mismatch",
            Refusal::Origin => "origin_not_allowed",
            Refusal::CrossOrigin => "cross_origin",
            Refusal::RpId => "rp_id_mismatch",
            Refusal::UserPresence => "user_not_present",
            Refusal::Algorithm => "unsupported_algorithm",
            Refusal::CredentialMismatch => "credential_mismatch",
            Refusal::Signature => "bad_signature",
            Refusal::Counter => "counter_regressed",
            Refusal::BackupEligibility => "backup_eligibility_changed",
            Refusal::UnknownCredential => "unknown_credential",
            Refusal::UserMismatch => "user_mismatch",
            Refusal::UserVerification => "user_verification_required",
        }
    }
}

fn b64(text: &str) -> Result<Vec<u8>, Refusal> {
    B64URL.decode(text).map_err(|_| Refusal::Malformed)
}

/// `RegistrationResponseJSON`, what `credential.toJSON()` gives after `create()`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    pub id: String,
    pub raw_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub response: AttestationResponse,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    pub attestation_object: String,
    #[serde(default)]
    pub transports: Vec<String>,
}

/// `AuthenticationResponseJSON`, what `credential.toJSON()` gives after `get()`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationResponse {
    pub id: String,
    pub raw_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub response: AssertionResponse,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    pub authenticator_data: String,
    pub signature: String,
    #[serde(default)]
    pub user_handle: Option<String>,
}

impl AuthenticationResponse {
    /// The credential's id, once `id` and `rawId` agree.
    pub fn credential_id(&self) -> Result<Vec<u8>, Refusal> {
        let id = b64(&self.id)?;
        if id != b64(&self.raw_id)? || id.is_empty() || id.len() > MAX_CREDENTIAL_ID {
            return Err(Refusal::Malformed);
        }
        Ok(id)
    }

    /// The user handle, when the authenticator gave one (a discoverable credential does).
    pub fn user_handle(&self) -> Result<Option<Vec<u8>>, Refusal> {
        match self.response.user_handle.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => b64(text).map(Some),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: Option<bool>,
}

/// §7.1 steps 5–12 / §7.2 steps 7–15: the client data is of this ceremony, this challenge
/// and an allowed origin, in a top-level page. Its SHA-256, for the signature.
fn check_client_data(
    rp: &RelyingParty,
    raw: &str,
    ceremony: &str,
    challenge: &[u8],
) -> Result<[u8; 32], Refusal> {
    let bytes = b64(raw)?;
    let data: ClientData = serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)?;
    if data.kind != ceremony {
        return Err(Refusal::WrongCeremony);
    }
    let sent = b64(&data.challenge).map_err(|_| Refusal::Challenge)?;
    if sent.len() != challenge.len() || !bool::from(sent.ct_eq(challenge)) {
        return Err(Refusal::Challenge);
    }
    if !rp.origins.contains(&data.origin) {
        return Err(Refusal::Origin);
    }
    if data.cross_origin == Some(true) {
        return Err(Refusal::CrossOrigin);
    }
    Ok(Sha256::digest(&bytes).into())
}

/// Authenticator data (§6.1), as far as this relying party reads it.
struct AuthData {
    flags: u8,
    sign_count: u32,
    /// The new credential: its id and COSE public key (at registration only).
    attested: Option<(Vec<u8>, Vec<u8>)>,
}

fn parse_auth_data(rp: &RelyingParty, bytes: &[u8]) -> Result<AuthData, Refusal> {
    if bytes.len() < 37 {
        return Err(Refusal::Malformed);
    }
    if !bool::from(bytes[..32].ct_eq(&rp.id_hash)) {
        return Err(Refusal::RpId);
    }
    let flags = bytes[32];
    let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
    if flags & FLAG_UP == 0 {
        return Err(Refusal::UserPresence);
    }
    if flags & FLAG_BS != 0 && flags & FLAG_BE == 0 {
        return Err(Refusal::Malformed);
    }
    let attested = if flags & FLAG_AT != 0 {
        let rest = &bytes[37..];
        if rest.len() < 18 {
            return Err(Refusal::Malformed);
        }
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        if len == 0 || len > MAX_CREDENTIAL_ID {
            return Err(Refusal::Malformed);
        }
        let id = rest.get(18..18 + len).ok_or(Refusal::Malformed)?;
        let key_bytes = &rest[18 + len..];
        let (_, used) = cbor::decode_prefix(key_bytes).map_err(|_| Refusal::Malformed)?;
        Some((id.to_vec(), key_bytes[..used].to_vec()))
    } else {
        None
    };
    Ok(AuthData {
        flags,
        sign_count,
        attested,
    })
}

/// A credential public key this relying party can verify with.
enum PublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
    Rs256(rsa::RsaPublicKey),
}

impl PublicKey {
    /// A COSE_Key (RFC 9053) of one of [`ALGORITHMS`].
    fn from_cose(bytes: &[u8]) -> Result<Self, Refusal> {
        let key = cbor::decode(bytes).map_err(|_| Refusal::Malformed)?;
        let int = |label| key.get_int(label).and_then(Value::as_int);
        let bytes_at = |label| key.get_int(label).and_then(Value::as_bytes);
        match (int(1), int(3)) {
            (Some(2), Some(ALG_ES256)) => {
                let (Some(1), Some(x), Some(y)) = (int(-1), bytes_at(-2), bytes_at(-3)) else {
                    return Err(Refusal::Algorithm);
                };
                if x.len() != 32 || y.len() != 32 {
                    return Err(Refusal::Malformed);
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map(PublicKey::Es256)
                    .map_err(|_| Refusal::Malformed)
            }
            (Some(1), Some(ALG_EDDSA)) => {
                let (Some(6), Some(x)) = (int(-1), bytes_at(-2)) else {
                    return Err(Refusal::Algorithm);
                };
                let x: [u8; 32] = x.try_into().map_err(|_| Refusal::Malformed)?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map(PublicKey::EdDsa)
                    .map_err(|_| Refusal::Malformed)
            }
            (Some(3), Some(ALG_RS256)) => {
                let (Some(n), Some(e)) = (bytes_at(-1), bytes_at(-2)) else {
                    return Err(Refusal::Malformed);
                };
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                )
                .map_err(|_| Refusal::Malformed)?;
                if rsa::traits::PublicKeyParts::size(&key) < 256 {
                    return Err(Refusal::Algorithm);
                }
                Ok(PublicKey::Rs256(key))
            }
            _ => Err(Refusal::Algorithm),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Refusal> {
        let verified = match self {
            PublicKey::Es256(key) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            PublicKey::EdDsa(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
            PublicKey::Rs256(key) => {
                let digest = Sha256::digest(message);
                key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                    .is_ok()
            }
        };
        verified.then_some(()).ok_or(Refusal::Signature)
    }
}

/// A credential a registration created, verified.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub credential_id: Vec<u8>,
    /// The COSE_Key, as the authenticator gave it.
    pub public_key: Vec<u8>,
    pub algorithm: i64,
    pub sign_count: u32,
    pub user_verified: bool,
    /// The credential may be synced to other devices (a synced passkey).
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub transports: Vec<String>,
}

/// §7.1: checks a registration response against the `challenge` its options carried.
pub fn verify_registration(
    rp: &RelyingParty,
    challenge: &[u8],
    response: &RegistrationResponse,
) -> Result<NewCredential, Refusal> {
    if response.kind != "public-key" {
        return Err(Refusal::Malformed);
    }
    check_client_data(
        rp,
        &response.response.client_data_json,
        "webauthn.create",
        challenge,
    )?;
    let object = cbor::decode(&b64(&response.response.attestation_object)?)
        .map_err(|_| Refusal::Malformed)?;
    let (Some(_fmt), Some(Value::Map(_)), Some(auth_data)) = (
        object.get_text("fmt").and_then(Value::as_text),
        object.get_text("attStmt"),
        object.get_text("authData").and_then(Value::as_bytes),
    ) else {
        return Err(Refusal::Malformed);
    };
    let data = parse_auth_data(rp, auth_data)?;
    let Some((credential_id, public_key)) = data.attested else {
        return Err(Refusal::Malformed);
    };
    let id = b64(&response.id)?;
    if id != credential_id || b64(&response.raw_id)? != credential_id {
        return Err(Refusal::CredentialMismatch);
    }
    let key = cbor::decode(&public_key).map_err(|_| Refusal::Malformed)?;
    let algorithm = key
        .get_int(3)
        .and_then(Value::as_int)
        .ok_or(Refusal::Malformed)?;
    PublicKey::from_cose(&public_key)?;
    let mut transports: Vec<String> = response
        .response
        .transports
        .iter()
        .filter(|t| TRANSPORTS.contains(&t.as_str()))
        .cloned()
        .collect();
    transports.sort();
    transports.dedup();
    Ok(NewCredential {
        credential_id,
        public_key,
        algorithm,
        sign_count: data.sign_count,
        user_verified: data.flags & FLAG_UV != 0,
        backup_eligible: data.flags & FLAG_BE != 0,
        backed_up: data.flags & FLAG_BS != 0,
        transports,
    })
}

/// What an assertion proves, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assertion {
    pub user_verified: bool,
    pub sign_count: u32,
    pub backed_up: bool,
}

/// The stored side of a credential that an assertion is checked against.
pub struct StoredKey<'a> {
    pub public_key: &'a [u8],
    pub sign_count: u32,
    pub backup_eligible: bool,
}

/// §7.2 steps 7–21: checks an assertion of `stored` against `challenge`: the client data,
/// the authenticator data, the signature, and that the signature counter went forward (for a
/// credential whose stored counter is above 0: one at 0 has no counter).
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &[u8],
    stored: &StoredKey<'_>,
    response: &AuthenticationResponse,
) -> Result<Assertion, Refusal> {
    if response.kind != "public-key" {
        return Err(Refusal::Malformed);
    }
    let client_hash = check_client_data(
        rp,
        &response.response.client_data_json,
        "webauthn.get",
        challenge,
    )?;
    let auth_bytes = b64(&response.response.authenticator_data)?;
    let data = parse_auth_data(rp, &auth_bytes)?;
    if (data.flags & FLAG_BE != 0) != stored.backup_eligible {
        return Err(Refusal::BackupEligibility);
    }
    let mut message = auth_bytes;
    message.extend_from_slice(&client_hash);
    PublicKey::from_cose(stored.public_key)?
        .verify(&message, &b64(&response.response.signature)?)?;
    if (data.sign_count != 0 || stored.sign_count != 0) && data.sign_count <= stored.sign_count {
        return Err(Refusal::Counter);
    }
    Ok(Assertion {
        user_verified: data.flags & FLAG_UV != 0,
        sign_count: data.sign_count,
        backed_up: data.flags & FLAG_BS != 0,
    })
}

/// A credential id as the API names the passkey: the unpadded base64url of its SHA-256 (43
/// characters, whatever the credential id's length).
pub fn passkey_id(credential_id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(credential_id))
}

/// Whether `text` can be a [`passkey_id`]: anything else is answered as unknown without a
/// lookup.
pub fn is_passkey_id(text: &str) -> bool {
    text.len() == 43
        && URL_SAFE_NO_PAD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp() -> RelyingParty {
        RelyingParty::new(
            "example.com",
            "Example",
            &["https://login.example.com".to_owned()],
        )
        .unwrap()
    }

    #[test]
    fn an_rp_id_must_cover_every_origin() {
        let origins = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(RelyingParty::new("example.com", "E", &origins(&["https://example.com"])).is_ok());
        assert!(
            RelyingParty::new(
                "example.com",
                "E",
                &origins(&["https://a.example.com:8443"])
            )
            .is_ok()
        );
        assert!(RelyingParty::new("localhost", "E", &origins(&["http://localhost:3000"])).is_ok());
        for bad in [
            "https://example.org",
            "https://badexample.com",
            "http://example.com",
            "https://example.com/path",
            "https://EXAMPLE.com",
            "example.com",
            "https://example.com:0",
            "https://user@example.com",
        ] {
            assert!(
                RelyingParty::new("example.com", "E", &origins(&[bad])).is_err(),
                "{bad}"
            );
        }
        for bad_id in [
            "",
            "https://example.com",
            "example.com:443",
            "Example.com",
            "a..b",
        ] {
            assert!(RelyingParty::new(bad_id, "E", &origins(&["https://example.com"])).is_err());
        }
        assert_eq!(
            RelyingParty::new("example.com", "E", &[]).unwrap_err(),
            RpError::NoOrigins
        );
    }

    #[test]
    fn options_are_the_level_3_json_shapes() {
        let options = creation_options(&rp(), &[1; 16], "ada@example.com", "Ada", &[7; 32], &[]);
        assert_eq!(options["rp"]["id"], "example.com");
        assert_eq!(options["user"]["id"], "AQEBAQEBAQEBAQEBAQEBAQ");
        assert_eq!(options["attestation"], "none");
        assert_eq!(
            options["authenticatorSelection"]["residentKey"],
            "preferred"
        );
        assert_eq!(
            options["authenticatorSelection"]["userVerification"],
            "preferred"
        );
        assert_eq!(options["pubKeyCredParams"][1]["alg"], -7);
        let request = request_options(
            &rp(),
            &[7; 32],
            &[Descriptor {
                credential_id: vec![9; 20],
                transports: vec!["internal".into()],
            }],
        );
        assert_eq!(request["allowCredentials"][0]["type"], "public-key");
        assert_eq!(request["allowCredentials"][0]["transports"][0], "internal");
    }

    #[test]
    fn authenticator_data_for_another_rp_or_without_presence_is_refused() {
        let mut data = Sha256::digest(b"example.com").to_vec();
        data.extend([FLAG_UV, 0, 0, 0, 1]);
        assert_eq!(
            parse_auth_data(&rp(), &data).err(),
            Some(Refusal::UserPresence)
        );
        data[32] = FLAG_UP;
        assert!(parse_auth_data(&rp(), &data).is_ok());
        data[0] ^= 1;
        assert_eq!(parse_auth_data(&rp(), &data).err(), Some(Refusal::RpId));
        assert_eq!(
            parse_auth_data(&rp(), &data[..20]).err(),
            Some(Refusal::Malformed)
        );
    }

    #[test]
    fn passkey_ids_are_43_characters_of_base64url() {
        let id = passkey_id(b"credential");
        assert!(is_passkey_id(&id));
        assert!(!is_passkey_id("not-an-id"));
        assert!(!is_passkey_id(&format!("{}=", &id[..42])));
    }
}
