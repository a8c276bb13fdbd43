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
    let public = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": issuer.key().kid()});
    for secret in [public.as_slice(), jwk.x.as_bytes()] {
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
