// Test helpers as well as tests may unwrap: a panic is a failing test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use shared::config::TokenSettings;
use shared::token::now_unix;
use shared::{KeySet, SigningKey, Subject, TokenError, TokenIssuer, TokenVerifier};
use uuid::Uuid;

fn settings() -> TokenSettings {
    TokenSettings {
        issuer: "https://auth.example.test".into(),
        audience: "example-api".into(),
    }
}

fn subject() -> Subject {
    Subject {
        user_id: Uuid::new_v4(),
        email: "ada@example.com".into(),
        roles: vec!["user".into()],
        email_verified: false,
        session_id: None,
        method: Default::default(),
    }
}

fn pair(key: SigningKey) -> (TokenIssuer, TokenVerifier) {
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    (
        TokenIssuer::new(key, settings(), 900),
        TokenVerifier::new(keys, settings(), 30),
    )
}

fn ed_pair() -> (TokenIssuer, TokenVerifier) {
    pair(SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid"))
}

fn token(issuer: &TokenIssuer) -> String {
    issuer
        .issue(&subject(), now_unix())
        .unwrap()
        .token
        .expose_secret()
        .to_owned()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Signs arbitrary header and claims JSON with an HMAC secret, to forge tokens.
fn hs256_raw(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let header: Header = serde_json::from_value(header.clone()).unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn good_claims() -> Value {
    let now = now_unix();
    json!({
        "sub": Uuid::new_v4().to_string(), "email": "ada@example.com",
        "iss": "https://auth.example.test", "aud": "example-api",
        "iat": now, "nbf": now, "exp": now + 600, "jti": "j", "roles": ["user"]
    })
}

fn hs_pair() -> (TokenIssuer, TokenVerifier, &'static [u8]) {
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    let key = SigningKey::hs256(
        SecretString::from(String::from_utf8(SECRET.to_vec()).unwrap()),
        None,
    )
    .unwrap();
    let (i, v) = pair(key);
    (i, v, SECRET)
}

#[test]
fn an_issued_eddsa_token_verifies_with_every_claim_intact() {
    let (issuer, verifier) = ed_pair();
    let who = subject();
    let issued = issuer.issue(&who, now_unix()).unwrap();
    let claims = verifier.verify(issued.token.expose_secret()).unwrap();
    assert_eq!(claims, issued.claims);
    assert_eq!(claims.sub, who.user_id.to_string());
    assert_eq!(claims.roles, vec!["user"]);
    assert_eq!(claims.exp - claims.iat, 900);
    let header = jsonwebtoken::decode_header(issued.token.expose_secret()).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(issuer.key().kid()));
}

#[test]
fn hs256_tokens_verify_when_a_secret_is_configured() {
    let (issuer, verifier, _) = hs_pair();
    assert!(verifier.verify(&token(&issuer)).is_ok());
}

#[test]
fn alg_none_is_refused() {
    let (issuer, verifier) = ed_pair();
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": issuer.key().kid()});
    let forged = format!("{}.{}.", b64(&header), b64(&good_claims()));
    assert_eq!(verifier.verify(&forged), Err(TokenError::Malformed));
    let forged = format!("{}.{}.c2ln", b64(&header), b64(&good_claims()));
    assert_eq!(verifier.verify(&forged), Err(TokenError::MalformedHeader));
}

#[test]
fn hs256_signed_with_the_public_key_bytes_is_refused() {
    let (issuer, verifier) = ed_pair();
    let jwk = issuer.key().verification_key().jwk().cloned().unwrap();
    let x = jwk.x.unwrap();
    let public = URL_SAFE_NO_PAD.decode(&x).unwrap();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": issuer.key().kid()});
    for secret in [public.as_slice(), x.as_bytes()] {
        let forged = hs256_raw(&header, &good_claims(), secret);
        assert_eq!(verifier.verify(&forged), Err(TokenError::AlgorithmMismatch));
    }
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let (_, verifier) = ed_pair();
    let (other, _) = ed_pair();
    assert_eq!(verifier.verify(&token(&other)), Err(TokenError::UnknownKid));
    let (_, verifier, secret) = hs_pair();
    let forged = hs256_raw(
        &json!({"alg": "HS256", "typ": "at+jwt"}),
        &good_claims(),
        secret,
    );
    assert_eq!(verifier.verify(&forged), Err(TokenError::MissingKid));
}

#[test]
fn a_token_from_another_key_with_the_same_kid_fails_its_signature() {
    let a = SigningKey::ed25519_generate(Some("k".into())).unwrap();
    let b = SigningKey::ed25519_generate(Some("k".into())).unwrap();
    let (_, verifier) = pair(a);
    let (forger, _) = pair(b);
    assert_eq!(
        verifier.verify(&token(&forger)),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn key_reference_headers_are_never_followed() {
    let (_, verifier, secret) = hs_pair();
    for extra in [
        json!({"jku": "https://evil.example/jwks.json"}),
        json!({"x5u": "https://evil.example/cert.pem"}),
        json!({"jwk": {"kty": "oct", "k": "AAAA"}}),
    ] {
        let mut header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs256"});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let forged = hs256_raw(&header, &good_claims(), secret);
        assert_eq!(
            verifier.verify(&forged),
            Err(TokenError::ForbiddenHeader),
            "{header}"
        );
    }
}

/// `header.claims.signature`, signed with `key` exactly as given: for headers jsonwebtoken's
/// own `Header` cannot hold.
fn signed_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

#[test]
fn a_critical_header_extension_is_refused_whatever_it_names() {
    // RFC 7515 section 4.1.11: `crit` lists extensions the recipient must understand; this
    // verifier understands none, so any `crit` is refused even when the signature is good.
    let (_, verifier, secret) = hs_pair();
    let key = EncodingKey::from_secret(secret);
    let plain = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs256"});
    let good = signed_raw(&plain, &good_claims(), &key, Algorithm::HS256);
    assert!(
        verifier.verify(&good).is_ok(),
        "the raw signer makes good tokens"
    );
    for crit in [
        json!(["exp-ext"]),
        json!(["b64"]),
        json!([]),
        json!("exp-ext"),
    ] {
        let mut header = plain.clone();
        header["crit"] = crit;
        header["exp-ext"] = json!(true);
        let forged = signed_raw(&header, &good_claims(), &key, Algorithm::HS256);
        assert_eq!(
            verifier.verify(&forged),
            Err(TokenError::CriticalExtension),
            "{header}"
        );
    }
}

#[test]
fn only_access_tokens_pass() {
    let (_, verifier, secret) = hs_pair();
    for typ in [json!("JWT"), json!("refresh+jwt"), Value::Null] {
        let mut header = json!({"alg": "HS256", "kid": "hs256"});
        if !typ.is_null() {
            header["typ"] = typ;
        }
        let forged = hs256_raw(&header, &good_claims(), secret);
        assert_eq!(verifier.verify(&forged), Err(TokenError::WrongType));
    }
}

#[test]
fn time_claims_are_enforced_with_the_configured_leeway() {
    let (_, verifier, secret) = hs_pair();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs256"});
    let now = now_unix();
    let with = |k: &str, v: i64| {
        let mut c = good_claims();
        c[k] = json!(v);
        hs256_raw(&header, &c, secret)
    };
    assert_eq!(
        verifier.verify(&with("exp", now - 31)),
        Err(TokenError::Expired)
    );
    assert!(
        verifier.verify(&with("exp", now - 5)).is_ok(),
        "within leeway"
    );
    assert_eq!(
        verifier.verify(&with("nbf", now + 120)),
        Err(TokenError::NotYetValid)
    );
    assert!(
        verifier.verify(&with("nbf", now + 5)).is_ok(),
        "within leeway"
    );
}

#[test]
fn wrong_issuer_audience_or_missing_claims_are_refused() {
    let (_, verifier, secret) = hs_pair();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs256"});
    let mut c = good_claims();
    c["iss"] = json!("https://evil.example");
    assert_eq!(
        verifier.verify(&hs256_raw(&header, &c, secret)),
        Err(TokenError::WrongIssuer)
    );
    let mut c = good_claims();
    c["aud"] = json!("other-api");
    assert_eq!(
        verifier.verify(&hs256_raw(&header, &c, secret)),
        Err(TokenError::WrongAudience)
    );
    for claim in ["exp", "iss", "aud", "nbf", "sub"] {
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            verifier.verify(&hs256_raw(&header, &c, secret)),
            Err(TokenError::MissingClaim(claim.into())),
            "{claim}"
        );
    }
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("roles");
    assert_eq!(
        verifier.verify(&hs256_raw(&header, &c, secret)),
        Err(TokenError::InvalidClaims)
    );
}

#[test]
fn any_changed_byte_or_shape_is_refused() {
    let (issuer, verifier) = ed_pair();
    let good = token(&issuer);
    let parts: Vec<&str> = good.split('.').collect();
    for (i, _) in parts.iter().enumerate() {
        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        let mut bytes = p[i].clone().into_bytes();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        p[i] = String::from_utf8(bytes).unwrap();
        assert!(
            verifier.verify(&p.join(".")).is_err(),
            "segment {i} changed"
        );
    }
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    let two = format!("{}.{}", parts[0], parts[1]);
    let four = format!("{good}.{}", parts[2]);
    let not_b64 = format!("{}.{}.{}+/", parts[0], parts[1], parts[2]);
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(100_000), parts[2]);
    for bad in [stripped, two, four, not_b64, String::new(), "Bearer".into()] {
        assert_eq!(verifier.verify(&bad), Err(TokenError::Malformed), "{bad:?}");
    }
    assert_eq!(verifier.verify(&huge), Err(TokenError::TooLarge));
}

const RSA_PEM: &str = include_str!("../../tests/fixtures/rsa-2048.pem");
const RSA_1024_PEM: &str = include_str!("../../tests/fixtures/rsa-1024.pem");

fn rsa_pair() -> (TokenIssuer, TokenVerifier) {
    pair(SigningKey::from_pem(RSA_PEM, None).unwrap())
}

fn rs256_raw(header: &Value, claims: &Value, pem: &str) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(header), b64(claims));
    // Sign `message` exactly, through jsonwebtoken's own RS256, with a PKCS#1 DER key.
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let der = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_rsa_der(der.as_bytes()),
        Algorithm::RS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[test]
fn an_rs256_token_round_trips_and_names_its_key_by_thumbprint() {
    let (issuer, verifier) = rsa_pair();
    assert_eq!(issuer.key().algorithm(), Algorithm::RS256);
    let issued = issuer.issue(&subject(), now_unix()).unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(issued.token.expose_secret().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    let claims = verifier.verify(issued.token.expose_secret()).unwrap();
    assert_eq!(claims.client_id.as_deref(), Some("example-api"));
    assert_eq!(claims.scope.as_deref(), Some("user"));
    // The published JWK, and its kid the RFC 7638 thumbprint of (e, kty, n).
    let jwk = issuer.key().verification_key().jwk().cloned().unwrap();
    assert_eq!((jwk.kty.as_str(), jwk.alg.as_str()), ("RSA", "RS256"));
    assert_eq!(jwk.e.as_deref(), Some("AQAB"));
    assert_eq!(
        issuer.key().kid(),
        shared::keys::rsa_thumbprint(jwk.n.as_deref().unwrap(), "AQAB")
    );
    let jwks = serde_json::to_string(
        &KeySet::from_jwks_json(&serde_json::to_string(&json!({"keys": [jwk]})).unwrap())
            .unwrap()
            .to_jwks(),
    )
    .unwrap();
    assert!(
        jwks.contains(r#""kty":"RSA""#) && !jwks.contains("crv"),
        "{jwks}"
    );
}

#[test]
fn the_rfc7638_example_key_gets_the_rfc_s_thumbprint() {
    // RFC 7638 section 3.1.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let jwks = json!({"keys": [{"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256"}]});
    let keys = KeySet::from_jwks_json(&jwks.to_string()).unwrap();
    assert!(
        keys.get("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
            .is_some()
    );
}

#[test]
fn rsa_keys_under_2048_bits_are_refused_as_signers_and_in_a_jwks() {
    assert_eq!(
        SigningKey::from_pem(RSA_1024_PEM, None).unwrap_err(),
        shared::keys::KeyError::RsaTooShort(1024)
    );
    // Its public half, published in a JWKS.
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    let short = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_1024_PEM).unwrap();
    let jwks = json!({"keys": [{
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(short.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(short.e().to_bytes_be()),
    }]});
    let err = KeySet::from_jwks_json(&jwks.to_string()).unwrap_err();
    assert!(err.to_string().contains("at least 2048 bits"), "{err}");
    // Private members are refused as for Ed25519.
    let mut private = jwks.clone();
    private["keys"][0]["d"] = json!("AQAB");
    assert!(KeySet::from_jwks_json(&private.to_string()).is_err());
    // An RSA key that claims another algorithm.
    let (issuer, _) = rsa_pair();
    let mut other = serde_json::to_value(issuer.key().verification_key().jwk().unwrap()).unwrap();
    other["alg"] = json!("PS256");
    assert!(KeySet::from_jwks_json(&json!({"keys": [other]}).to_string()).is_err());
}

#[test]
fn algorithm_confusion_is_refused_both_ways() {
    let ed = SigningKey::ed25519_generate(None).unwrap();
    let rsa = SigningKey::from_pem(RSA_PEM, None).unwrap();
    let mut keys = KeySet::default();
    keys.insert(ed.verification_key()).unwrap();
    keys.insert(rsa.verification_key()).unwrap();
    let verifier = TokenVerifier::new(keys, settings(), 30);
    let claims = good_claims();

    // HS256 keyed with the RSA public key (its modulus bytes, its base64url, its JWK text).
    let jwk = rsa.verification_key().jwk().cloned().unwrap();
    let n = jwk.n.clone().unwrap();
    let modulus = URL_SAFE_NO_PAD.decode(&n).unwrap();
    let jwk_text = serde_json::to_string(&jwk).unwrap();
    let hs = json!({"alg": "HS256", "typ": "at+jwt", "kid": rsa.kid()});
    for secret in [modulus.as_slice(), n.as_bytes(), jwk_text.as_bytes()] {
        let forged = hs256_raw(&hs, &claims, secret);
        assert_eq!(
            verifier.verify(&forged).unwrap_err(),
            TokenError::AlgorithmMismatch
        );
    }
    // RS256 claimed for the Ed25519 key's kid, signed with the RSA key.
    let rs_on_ed = rs256_raw(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": ed.kid()}),
        &claims,
        RSA_PEM,
    );
    assert_eq!(
        verifier.verify(&rs_on_ed).unwrap_err(),
        TokenError::AlgorithmMismatch
    );
    // EdDSA claimed for the RSA key's kid, signed with the Ed25519 key.
    let ed_issuer = TokenIssuer::new(ed.clone(), settings(), 900);
    let ed_token = ed_issuer.issue(&subject(), now_unix()).unwrap();
    let parts: Vec<&str> = ed_token.token.expose_secret().split('.').collect();
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": rsa.kid()}).to_string());
    let ed_on_rsa = format!("{header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        verifier.verify(&ed_on_rsa).unwrap_err(),
        TokenError::AlgorithmMismatch
    );
    // The right algorithm and kid, signed by another RSA key: a bad signature.
    let other_pem = include_str!("../../tests/fixtures/rsa-2048-other.pem");
    let foreign = rs256_raw(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": rsa.kid()}),
        &claims,
        other_pem,
    );
    assert!(verifier.verify(&foreign).is_err());
    // And both real keys verify their own tokens: one RSA and one EdDSA key side by side.
    let rsa_issuer = TokenIssuer::new(rsa, settings(), 900);
    for issued in [
        rsa_issuer.issue(&subject(), now_unix()).unwrap(),
        ed_issuer.issue(&subject(), now_unix()).unwrap(),
    ] {
        assert!(verifier.verify(issued.token.expose_secret()).is_ok());
    }
}
