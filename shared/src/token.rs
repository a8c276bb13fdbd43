//! Access tokens: claims, issuing and verification.
//!
//! Access tokens are JWTs with header `typ: at+jwt` (RFC 9068) and a `kid` naming the key.
//! Verification selects the key by `kid` and checks with that key's own algorithm only.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use secrecy::SecretString;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{KeySet, SigningKey};

/// Clock skew tolerated on `exp` and `nbf`, in seconds. Chosen on purpose: jsonwebtoken's
/// default is 60 s and ignores `nbf`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// The `typ` header of access tokens (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Longest token looked at. Ours are well under 1 KiB; anything far larger is hostile.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The role every new user has.
pub const DEFAULT_ROLE: &str = "user";

/// The issuer and audience every token carries and every verifier demands (`JWT_ISSUER`,
/// `JWT_AUDIENCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id (a UUID), never the email; or, in a machine client's token, its
    /// client_id.
    pub sub: String,
    /// The user's email; a machine client's token has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// The user's roles; a machine client's token has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Whether the user proved they read mail at `email`. Tokens issued before this claim
    /// existed lack it: they count as unverified.
    #[serde(default)]
    pub email_verified: bool,
    /// The session (refresh family) the token was issued in, when it was issued in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// RFC 9068 `client_id`: the client the token was issued to (`JWT_CLIENT_ID`, default the
    /// audience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// RFC 9068 `scope`: in a user's token the roles, space-separated, so gateways' built-in
    /// JWT authorizers can require one per route; in a machine client's token the scopes it
    /// was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8176 authentication methods: `["pwd"]`, or `["pwd","otp"]` after a TOTP or recovery
    /// code. Tokens issued before this claim existed lack it (empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Claims of the deployment's own (its `customize-access-token` hook), never under a
    /// name of the ones above ([`RESERVED_CLAIMS`]).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, CustomClaim>,
}

/// Names a deployment's own claim may not have: the token's standard claims, the ID
/// token's, and the authorizers' context keys.
pub const RESERVED_CLAIMS: [&str; 24] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "scope",
    "roles",
    "amr",
    "sid",
    "client_id",
    "email",
    "email_verified",
    "typ",
    "principal",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "acr",
    "cnf",
    "act",
    "may_act",
];

/// A claim of the deployment's own: text, a whole number or a flag (what an API Gateway
/// authorizer context can carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CustomClaim {
    Flag(bool),
    Integer(i64),
    Text(String),
}

impl AccessClaims {
    /// Whether the sign-in that led to this token included a second factor: a code after
    /// the password (`otp`), or any sign-in marked multi-factor (`mfa`: a passkey with user
    /// verification, or a password and a passkey).
    pub fn used_mfa(&self) -> bool {
        self.amr.iter().any(|m| m == AMR_OTP || m == AMR_MFA)
    }

    /// Who the token speaks for: a user's token carries an email and at least one role; a
    /// machine client's has neither, and its `sub` is its `client_id`. A token that is
    /// neither is refused by [`TokenVerifier`].
    pub fn principal(&self) -> Option<Principal> {
        if !self.email.is_empty() {
            (!self.roles.is_empty()).then_some(Principal::User)
        } else if self.roles.is_empty() && self.client_id.as_deref() == Some(self.sub.as_str()) {
            Some(Principal::Client)
        } else {
            None
        }
    }

    /// The token's scopes (`scope`, space-separated).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }
}

/// Who an access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A person who signed in.
    User,
    /// A machine client (the `client_credentials` grant).
    Client,
}

impl Principal {
    pub fn as_str(self) -> &'static str {
        match self {
            Principal::User => "user",
            Principal::Client => "client",
        }
    }
}

/// RFC 8176 `amr` value of a password.
pub const AMR_PASSWORD: &str = "pwd";
/// RFC 8176 `amr` value of a one-time password (a TOTP or recovery code).
pub const AMR_OTP: &str = "otp";
/// RFC 8176 `amr` value of a proof of possession of a hardware-bound key (a device-bound
/// passkey).
pub const AMR_HWK: &str = "hwk";
/// RFC 8176 `amr` value of a proof of possession of a software-secured key (a synced passkey).
pub const AMR_SWK: &str = "swk";
/// RFC 8176 `amr` value of user presence and verification by the authenticator (its PIN or
/// biometric).
pub const AMR_USER: &str = "user";
/// RFC 8176 `amr` value of a multiple-factor authentication.
pub const AMR_MFA: &str = "mfa";
/// This product's `amr` value of a sign-in at another identity provider (RFC 8176 names
/// none; registered values are short lowercase words, as this is).
pub const AMR_FEDERATED: &str = "fed";

/// How the sign-in behind a session was made: what its tokens' `amr` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignInMethod {
    /// A password: `["pwd"]`.
    #[default]
    Password,
    /// A password and a TOTP or recovery code: `["pwd","otp"]`.
    PasswordAndCode,
    /// A password and a passkey: `["pwd","hwk"|"swk",("user"),"mfa"]`.
    PasswordAndPasskey { synced: bool, verified: bool },
    /// A passkey alone: `["hwk"|"swk","user","mfa"]` with user verification, `["hwk"|"swk"]`
    /// without.
    Passkey { synced: bool, verified: bool },
    /// Another identity provider: `["fed"]`, or `["fed","mfa"]` when a provider trusted for
    /// it asserted a second factor.
    Federated { mfa: bool },
}

impl SignInMethod {
    /// RFC 8176 `amr` values.
    pub fn amr(self) -> Vec<String> {
        let key = |synced: bool| if synced { AMR_SWK } else { AMR_HWK };
        let list: Vec<&str> = match self {
            SignInMethod::Password => vec![AMR_PASSWORD],
            SignInMethod::PasswordAndCode => vec![AMR_PASSWORD, AMR_OTP],
            SignInMethod::PasswordAndPasskey { synced, verified } => {
                let mut list = vec![AMR_PASSWORD, key(synced)];
                if verified {
                    list.push(AMR_USER);
                }
                list.push(AMR_MFA);
                list
            }
            SignInMethod::Passkey { synced, verified } => {
                if verified {
                    vec![key(synced), AMR_USER, AMR_MFA]
                } else {
                    vec![key(synced)]
                }
            }
            SignInMethod::Federated { mfa: false } => vec![AMR_FEDERATED],
            SignInMethod::Federated { mfa: true } => vec![AMR_FEDERATED, AMR_MFA],
        };
        list.into_iter().map(str::to_owned).collect()
    }

    /// The method whose [`SignInMethod::amr`] is `amr`, if any.
    pub fn from_amr<S: AsRef<str>>(amr: &[S]) -> Option<Self> {
        let has = |value: &str| amr.iter().any(|m| m.as_ref() == value);
        let method = if has(AMR_FEDERATED) {
            SignInMethod::Federated { mfa: has(AMR_MFA) }
        } else if has(AMR_PASSWORD) && has(AMR_OTP) {
            SignInMethod::PasswordAndCode
        } else if has(AMR_HWK) || has(AMR_SWK) {
            let (synced, verified) = (has(AMR_SWK), has(AMR_USER));
            if has(AMR_PASSWORD) {
                SignInMethod::PasswordAndPasskey { synced, verified }
            } else {
                SignInMethod::Passkey { synced, verified }
            }
        } else if has(AMR_PASSWORD) {
            SignInMethod::Password
        } else {
            return None;
        };
        (method.amr().len() == amr.len()).then_some(method)
    }

    /// Whether the sign-in passed more than one factor.
    pub fn multi_factor(self) -> bool {
        self.amr().iter().any(|m| m == AMR_OTP || m == AMR_MFA)
    }
}

/// Who a token is issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: Uuid,
    pub email: String,
    pub roles: Vec<String>,
    /// Whether the user proved they read mail at `email`.
    pub email_verified: bool,
    /// The session the token belongs to (its `sid` claim).
    pub session_id: Option<Uuid>,
    /// How the sign-in was made (the `amr` claim).
    pub method: SignInMethod,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT. Secret: it is a bearer credential.
    pub token: SecretString,
    pub claims: AccessClaims,
    /// Lifetime in seconds, for the `expires_in` field of a token response.
    pub expires_in: u64,
}

/// Why a token was refused. For logs only: clients always get one generic 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("token is not three base64url segments")]
    Malformed,
    #[error("token header is not valid JSON with a supported alg")]
    MalformedHeader,
    #[error("token typ is not at+jwt")]
    WrongType,
    #[error("token header carries a key reference (jku, jwk, x5u, x5c), which is never trusted")]
    ForbiddenHeader,
    #[error("token header lists critical extensions (crit), and none is understood")]
    CriticalExtension,
    #[error("token header has no kid")]
    MissingKid,
    #[error("token kid is not an accepted key")]
    UnknownKid,
    #[error("token alg does not match the algorithm of its key")]
    AlgorithmMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is wrong")]
    WrongIssuer,
    #[error("token audience is wrong")]
    WrongAudience,
    #[error("token lacks the required claim {0}")]
    MissingClaim(String),
    #[error("token claims are not access-token claims")]
    InvalidClaims,
    #[error("token could not be signed: {0}")]
    Signing(String),
}

impl TokenError {
    /// A short stable code for structured logs.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "too_large",
            TokenError::Malformed => "malformed",
            TokenError::MalformedHeader => "malformed_header",
            TokenError::WrongType => "wrong_typ",
            TokenError::ForbiddenHeader => "forbidden_header",
            TokenError::CriticalExtension => "crit",
            TokenError::MissingKid => "missing_kid",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::AlgorithmMismatch => "alg_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongIssuer => "wrong_iss",
            TokenError::WrongAudience => "wrong_aud",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaims => "invalid_claims",
            TokenError::Signing(_) => "signing_failed",
        }
    }
}

/// Signs access tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    key: SigningKey,
    settings: TokenSettings,
    ttl_seconds: u64,
    client_id: String,
}

impl TokenIssuer {
    /// An issuer signing with `key`, tokens living `ttl_seconds`, issued to the audience as
    /// their `client_id`.
    pub fn new(key: SigningKey, settings: TokenSettings, ttl_seconds: u64) -> Self {
        Self {
            client_id: settings.audience.clone(),
            key,
            settings,
            ttl_seconds,
        }
    }

    /// The same issuer, naming `client_id` as the tokens' `client_id`.
    pub fn with_client_id(mut self, client_id: String) -> Self {
        self.client_id = client_id;
        self
    }

    /// The issuer and audience of its tokens.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The `client_id` of first-party user tokens (`JWT_CLIENT_ID`, default the audience).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Lifetime of issued tokens, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    /// Signs a token for `subject`, issued at `now` (Unix seconds).
    pub fn issue(&self, subject: &Subject, now: i64) -> Result<IssuedToken, TokenError> {
        self.issue_delegated(subject, &self.client_id, &subject.roles.join(" "), now)
    }

    /// [`Self::issue`], with claims of the deployment's own.
    pub fn issue_with_claims(
        &self,
        subject: &Subject,
        custom: BTreeMap<String, CustomClaim>,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        let scope = subject.roles.join(" ");
        self.issue_customized(subject, &self.client_id, &scope, custom, now)
    }

    /// Signs a token for `subject` issued to the OAuth client `client_id` (the authorization
    /// code and refresh grants) with the scopes it was granted, issued at `now` (Unix
    /// seconds). Email and roles travel as in every user token, so role rules hold.
    pub fn issue_delegated(
        &self,
        subject: &Subject,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        self.issue_customized(subject, client_id, scope, BTreeMap::new(), now)
    }

    /// [`Self::issue_delegated`], with claims of the deployment's own (their names checked
    /// by the caller against [`RESERVED_CLAIMS`]).
    pub fn issue_customized(
        &self,
        subject: &Subject,
        client_id: &str,
        scope: &str,
        custom: BTreeMap<String, CustomClaim>,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        let ttl = i64::try_from(self.ttl_seconds).unwrap_or(i64::MAX);
        let claims = AccessClaims {
            sub: subject.user_id.to_string(),
            email: subject.email.clone(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            jti: Uuid::new_v4().to_string(),
            roles: subject.roles.clone(),
            email_verified: subject.email_verified,
            sid: subject.session_id.map(|id| id.to_string()),
            client_id: Some(client_id.to_owned()),
            scope: Some(scope.to_owned()),
            amr: subject.method.amr(),
            custom,
        };
        Ok(IssuedToken {
            token: self.sign(&claims)?,
            claims,
            expires_in: self.ttl_seconds,
        })
    }

    /// Signs a token for the machine client `client_id` with `scope` (space-separated),
    /// living `ttl_seconds` from `now` (Unix seconds): no email, no roles, no session.
    pub fn issue_for_client(
        &self,
        client_id: &str,
        scope: &str,
        ttl_seconds: u64,
        now: i64,
    ) -> Result<IssuedToken, TokenError> {
        let ttl = i64::try_from(ttl_seconds).unwrap_or(i64::MAX);
        let claims = AccessClaims {
            sub: client_id.to_owned(),
            email: String::new(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            jti: Uuid::new_v4().to_string(),
            roles: Vec::new(),
            email_verified: false,
            sid: None,
            client_id: Some(client_id.to_owned()),
            scope: Some(scope.to_owned()),
            amr: Vec::new(),
            custom: BTreeMap::new(),
        };
        Ok(IssuedToken {
            token: self.sign(&claims)?,
            claims,
            expires_in: ttl_seconds,
        })
    }

    /// Signs exactly `claims` with this issuer's key and access-token header. [`Self::issue`]
    /// is the normal way to make a token; this exists for tokens whose claims are set by hand.
    pub fn sign(&self, claims: &AccessClaims) -> Result<SecretString, TokenError> {
        let mut header = Header::new(self.key.algorithm());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.key.kid().to_owned());
        jsonwebtoken::encode(&header, claims, self.key.encoding_key())
            .map(SecretString::from)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }
}

/// Verifies access tokens against a key set, issuer and audience.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: KeySet,
    settings: TokenSettings,
    leeway: i64,
    cache: Option<Arc<VerifiedCache>>,
}

/// Tokens whose signature and claims were checked already, with their claims. A token is an
/// immutable string: the same bytes verify the same way for the life of the process, so a
/// second sight needs only the time checks. Never printed: its keys are bearer tokens.
struct VerifiedCache {
    capacity: usize,
    entries: Mutex<HashMap<Box<str>, AccessClaims>>,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl VerifiedCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, AccessClaims>> {
        // Each operation is one map call: a panic cannot leave it half-changed.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, token: &str) -> Option<AccessClaims> {
        self.entries().get(token).cloned()
    }

    fn insert(&self, token: &str, claims: &AccessClaims, now: i64) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.exp >= now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token.into(), claims.clone());
    }
}

impl TokenVerifier {
    /// A verifier accepting `keys`, demanding `settings`' issuer and audience, with `leeway`
    /// seconds of clock skew on `exp` and `nbf`.
    pub fn new(keys: KeySet, settings: TokenSettings, leeway: u64) -> Self {
        Self {
            keys,
            settings,
            leeway: i64::try_from(leeway).unwrap_or(i64::MAX),
            cache: None,
        }
    }

    /// The same verifier, remembering up to `capacity` verified tokens (0: none), so a token
    /// seen again costs a lookup and the time checks instead of a signature check.
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = (capacity > 0).then(|| {
            Arc::new(VerifiedCache {
                capacity,
                entries: Mutex::new(HashMap::new()),
            })
        });
        self
    }

    /// The accepted keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Checks `token` completely, at the system's current time, and returns its claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_at(token, now_unix())
    }

    /// Checks `token` completely as of `now` (Unix seconds) and returns its claims.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let Some(cache) = &self.cache else {
            return self.verify_uncached(token, now);
        };
        if let Some(claims) = cache.get(token) {
            // Exactly the checks jsonwebtoken makes of `exp` and `nbf`.
            if claims.exp < now.saturating_sub(self.leeway) {
                return Err(TokenError::Expired);
            }
            if claims.nbf > now.saturating_add(self.leeway) {
                return Err(TokenError::NotYetValid);
            }
            return Ok(claims);
        }
        let claims = self.verify_uncached(token, now)?;
        cache.insert(token, &claims, now);
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        let well_formed = token.split('.').count() == 3
            && token.split('.').all(|segment| {
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !well_formed {
            return Err(TokenError::Malformed);
        }
        let header_json = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .ok_or(TokenError::MalformedHeader)?;
        let header: JoseHeader =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::MalformedHeader)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::WrongType);
        }
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(TokenError::ForbiddenHeader);
        }
        // RFC 7515 section 4.1.11: a recipient must refuse a token naming a critical extension
        // it does not understand, and this verifier understands none.
        if header.crit.is_some() {
            return Err(TokenError::CriticalExtension);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::MissingKid)?;
        let key = self.keys.get(kid).ok_or(TokenError::UnknownKid)?;
        if header.alg != key.algorithm() {
            return Err(TokenError::AlgorithmMismatch);
        }
        // The signature over `header.payload`, with the key's own algorithm; then the claims,
        // decoded once. Every claim AccessClaims holds is required (exp, nbf, iss, aud, sub
        // among them): a token without one fails to decode.
        let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let signed = key
            .verify_signature(message.as_bytes(), signature)
            // An error here is a signature that is not base64url.
            .map_err(|()| TokenError::Malformed)?;
        if !signed {
            return Err(TokenError::BadSignature);
        }
        let payload = message
            .split_once('.')
            .map(|(_, payload)| payload)
            .ok_or(TokenError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: AccessClaims = serde_json::from_slice(&json).map_err(|_| {
            missing_required_claim(token).map_or(TokenError::InvalidClaims, |c| {
                TokenError::MissingClaim(c.into())
            })
        })?;
        // The checks, in jsonwebtoken's order: expiry, not-before, issuer, audience.
        if claims.exp < now.saturating_sub(self.leeway) {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(self.leeway) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss != self.settings.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.settings.audience {
            return Err(TokenError::WrongAudience);
        }
        // A user's token names its email; a machine client's has none and is its own
        // client_id. Anything else would let a missing email pass for a client.
        if claims.principal().is_none() {
            return Err(TokenError::InvalidClaims);
        }
        Ok(claims)
    }
}

/// The JOSE header members verification looks at. The ones that could point verification at
/// a key the token brings along are only checked for presence.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    alg: Algorithm,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    jku: Option<IgnoredAny>,
    #[serde(default)]
    jwk: Option<IgnoredAny>,
    #[serde(default)]
    x5u: Option<IgnoredAny>,
    #[serde(default)]
    x5c: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

fn missing_required_claim(token: &str) -> Option<&'static str> {
    let claims: serde_json::Map<String, serde_json::Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    ["exp", "nbf", "iss", "aud", "sub"]
        .into_iter()
        .find(|c| !claims.contains_key(*c))
}

/// The token in an `Authorization` header value `Bearer <token>`: the scheme is
/// case-insensitive and surrounding spaces are tolerated. Anything else is no token.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let value = header_value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

/// The current time in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn pair(cache: usize) -> (TokenIssuer, TokenVerifier) {
        let settings = TokenSettings {
            issuer: "https://auth.test".into(),
            audience: "api".into(),
        };
        let key = SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid");
        let mut keys = KeySet::default();
        keys.insert(key.verification_key()).unwrap();
        (
            TokenIssuer::new(key, settings.clone(), 900),
            TokenVerifier::new(keys, settings, 30).with_cache(cache),
        )
    }

    fn token(issuer: &TokenIssuer) -> (String, AccessClaims) {
        let subject = Subject {
            user_id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            roles: vec!["user".into()],
            email_verified: false,
            session_id: None,
            method: SignInMethod::Password,
        };
        let issued = issuer.issue(&subject, now_unix()).unwrap();
        (issued.token.expose_secret().to_owned(), issued.claims)
    }

    #[test]
    fn a_cached_token_gives_the_same_claims_and_a_tampered_one_is_still_refused() {
        let (issuer, verifier) = pair(8);
        let (token, claims) = token(&issuer);
        assert_eq!(verifier.verify(&token), Ok(claims.clone()));
        assert_eq!(verifier.verify(&token), Ok(claims));
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(verifier.verify(&tampered).is_err());
    }

    #[test]
    fn a_cached_token_still_expires() {
        let (issuer, verifier) = pair(8);
        let (token, mut claims) = token(&issuer);
        let cache = verifier.cache.as_ref().unwrap();
        claims.exp = now_unix() - 31;
        cache.insert(&token, &claims, now_unix());
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
        claims.exp = now_unix() + 900;
        claims.nbf = now_unix() + 31;
        cache.insert(&token, &claims, now_unix());
        assert_eq!(verifier.verify(&token), Err(TokenError::NotYetValid));
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let (issuer, verifier) = pair(3);
        for _ in 0..10 {
            let (token, _) = token(&issuer);
            verifier.verify(&token).unwrap();
            assert!(verifier.cache.as_ref().unwrap().entries().len() <= 3);
        }
    }

    #[test]
    fn a_client_token_has_no_email_roles_or_session_and_says_so() {
        let (issuer, verifier) = pair(0);
        let issued = issuer
            .issue_for_client("svc-1", "orders:read orders:write", 3600, now_unix())
            .unwrap();
        let claims = verifier.verify(issued.token.expose_secret()).unwrap();
        assert_eq!(claims.principal(), Some(Principal::Client));
        assert_eq!(claims.sub, "svc-1");
        assert_eq!(claims.client_id.as_deref(), Some("svc-1"));
        assert!(claims.email.is_empty() && claims.roles.is_empty() && claims.sid.is_none());
        assert_eq!(
            claims.scopes().collect::<Vec<_>>(),
            vec!["orders:read", "orders:write"]
        );
        assert_eq!(issued.expires_in, 3600);
        let payload: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(issued.token.expose_secret()).unwrap();
        assert!(payload.get("email").is_none() && payload.get("roles").is_none());
        let (_, user) = token(&issuer);
        assert_eq!(user.principal(), Some(Principal::User));
    }

    #[test]
    fn a_token_without_an_email_that_is_not_its_client_is_refused() {
        let (issuer, verifier) = pair(0);
        let (_, mut claims) = token(&issuer);
        claims.email = String::new();
        let forged = issuer.sign(&claims).unwrap();
        assert_eq!(
            verifier.verify(forged.expose_secret()),
            Err(TokenError::InvalidClaims)
        );
        claims.roles = Vec::new();
        claims.client_id = Some("someone-else".into());
        let forged = issuer.sign(&claims).unwrap();
        assert_eq!(
            verifier.verify(forged.expose_secret()),
            Err(TokenError::InvalidClaims)
        );
    }

    #[test]
    fn bearer_tokens_are_read_leniently_but_only_as_bearer() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("  bEaReR   abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer   "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("abc"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token(""), None);
    }
}

#[cfg(test)]
mod sign_in_method_tests {
    use super::*;

    #[test]
    fn every_method_s_amr_reads_back_as_that_method() {
        let mut all = vec![
            SignInMethod::Password,
            SignInMethod::PasswordAndCode,
            SignInMethod::Federated { mfa: false },
            SignInMethod::Federated { mfa: true },
        ];
        for synced in [false, true] {
            for verified in [false, true] {
                all.push(SignInMethod::PasswordAndPasskey { synced, verified });
                all.push(SignInMethod::Passkey { synced, verified });
            }
        }
        for method in all {
            assert_eq!(
                SignInMethod::from_amr(&method.amr()),
                Some(method),
                "{method:?}"
            );
        }
        assert_eq!(SignInMethod::Federated { mfa: false }.amr(), ["fed"]);
        assert!(!SignInMethod::Federated { mfa: false }.multi_factor());
        assert!(SignInMethod::Federated { mfa: true }.multi_factor());
        assert_eq!(SignInMethod::from_amr(&["fed", "pwd"]), None);
    }
}
