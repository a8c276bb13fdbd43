//! The conversation with an upstream identity provider: its endpoints (OpenID Connect
//! discovery, or GitHub's known ones), the authorization request (code flow, PKCE S256, a
//! nonce), redeeming the code, and checking what comes back: an ID token's signature (the
//! provider's JWKS, an asymmetric algorithm the key itself names), `iss` (Microsoft's
//! tenant-aware form), `aud`/`azp`, `exp`, `iat` and `nonce`; or GitHub's user and verified
//! addresses. The identity it yields goes to [`crate::model::federation`]'s rules.
//!
//! HTTP is the door's ([`UpstreamHttp`]): this module knows URLs and JSON only. What the
//! provider sends (codes, tokens, secrets) is never logged here.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::model::federation::{
    Provider, ProviderKind, UpstreamIdentity, expected_issuer, github_identity, oidc_identity,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long discovered endpoints and keys are kept.
const CACHE_MS: i64 = 3_600_000;
/// A key id the cached set does not have is looked up again at most this often.
const KEY_REFRESH_MS: i64 = 60_000;
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY_SECONDS: i64 = 60;

/// An HTTP answer: its status and its JSON body (`Null` when it had none or no JSON).
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Value,
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<HttpAnswer, UpstreamError>> + Send + 'a>>;

/// How the provider is reached (the door's HTTPS client): no redirects followed, bounded in
/// time and size, nothing of the request or the answer logged.
pub trait UpstreamHttp: Send + Sync {
    /// `GET url`, with `Authorization: Bearer` when given, `Accept: application/json`.
    fn get(&self, url: String, bearer: Option<SecretString>) -> Answer<'_>;
    /// `POST url` of `form` (`application/x-www-form-urlencoded`), `Accept:
    /// application/json`.
    fn post_form(&self, url: String, form: Vec<(&'static str, SecretString)>) -> Answer<'_>;
}

/// Why an upstream sign-in could not be completed. Its text never holds what the provider
/// sent.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the provider could not be reached")]
    Unreachable(#[source] BoxError),
    #[error("the provider answered status {0}")]
    Status(u16),
    #[error("the provider's answer is out of protocol: {0}")]
    Malformed(&'static str),
    #[error("the provider's ID token is refused: {0}")]
    IdToken(&'static str),
    #[error("the provider refused the code ({0})")]
    Refused(String),
}

impl UpstreamError {
    /// A fixed word for the audit line.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Unreachable(_) => "unreachable",
            UpstreamError::Status(_) => "status",
            UpstreamError::Malformed(_) => "malformed",
            UpstreamError::IdToken(_) => "id_token",
            UpstreamError::Refused(_) => "refused",
        }
    }
}

/// A provider's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer as discovered (Microsoft's multi-tenant form keeps `{tenantid}`).
    pub issuer: String,
    pub authorization: String,
    pub token: String,
    /// OpenID Connect: the ID tokens' keys.
    pub jwks_uri: Option<String>,
    /// GitHub: its REST API's base.
    pub api: Option<String>,
}

/// Sign-in through other providers: the deployment's providers and how they are reached.
#[derive(Debug, Default, Clone)]
pub struct Federation {
    pub providers: Vec<Provider>,
    /// `FEDERATION_APP_URL`: where a JSON API sign-in ends, `#code=…` appended.
    pub app_url: Option<String>,
    /// The providers' client (the door adds its HTTPS transport); `None` with no provider.
    pub upstream: Option<Arc<Upstream>>,
}

/// The upstream providers' client: endpoints and keys cached per provider.
pub struct Upstream {
    http: Arc<dyn UpstreamHttp>,
    endpoints: Mutex<HashMap<String, (Endpoints, i64)>>,
    keys: Mutex<HashMap<String, (JwkSet, i64)>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").finish_non_exhaustive()
    }
}

/// Whether `url` may be one of `issuer`'s endpoints: https, or plain http to this machine
/// only for a provider that is itself on this machine.
fn endpoint_allowed(issuer: &str, url: &str) -> bool {
    let local = |u: &str| {
        ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|host| {
                u.strip_prefix(host)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            })
    };
    let https = url
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    (https || (local(issuer) && local(url)))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Everything but RFC 3986's unreserved characters is encoded in a query value.
const QUERY_VALUE: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` for a URL's query.
fn encoded(text: &str) -> String {
    utf8_percent_encode(text, QUERY_VALUE).to_string()
}

impl Upstream {
    pub fn new(http: Arc<dyn UpstreamHttp>) -> Self {
        Self {
            http,
            endpoints: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// `provider`'s endpoints: GitHub's known ones, or its discovery document's (cached).
    pub async fn endpoints(
        &self,
        provider: &Provider,
        now_ms: i64,
    ) -> Result<Endpoints, UpstreamError> {
        if provider.kind == ProviderKind::Github {
            let api = if provider.issuer == "https://github.com" {
                "https://api.github.com".to_owned()
            } else {
                // GitHub Enterprise Server (and test servers shaped like it).
                format!("{}/api/v3", provider.issuer)
            };
            return Ok(Endpoints {
                issuer: provider.issuer.clone(),
                authorization: format!("{}/login/oauth/authorize", provider.issuer),
                token: format!("{}/login/oauth/access_token", provider.issuer),
                jwks_uri: None,
                api: Some(api),
            });
        }
        if let Ok(cache) = self.endpoints.lock()
            && let Some((found, at)) = cache.get(&provider.id)
            && now_ms - at < CACHE_MS
        {
            return Ok(found.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", provider.issuer);
        let answer = self.http.get(url, None).await?;
        if answer.status != 200 {
            return Err(UpstreamError::Status(answer.status));
        }
        let text = |name: &str| {
            answer.body[name]
                .as_str()
                .map(str::to_owned)
                .ok_or(UpstreamError::Malformed(
                    "the discovery document lacks an endpoint",
                ))
        };
        let issuer = text("issuer")?;
        // The document must be the configured issuer's own (Microsoft's multi-tenant
        // endpoints name the tenant as `{tenantid}`).
        let same = issuer.trim_end_matches('/') == provider.issuer
            || (issuer.contains("{tenantid}")
                && provider
                    .issuer
                    .starts_with("https://login.microsoftonline.com/"));
        if !same {
            return Err(UpstreamError::Malformed(
                "the discovery document names another issuer",
            ));
        }
        let endpoints = Endpoints {
            authorization: text("authorization_endpoint")?,
            token: text("token_endpoint")?,
            jwks_uri: Some(text("jwks_uri")?),
            api: None,
            issuer,
        };
        let urls = [
            &endpoints.authorization,
            &endpoints.token,
            endpoints.jwks_uri.as_ref().unwrap_or(&endpoints.token),
        ];
        if !urls
            .iter()
            .all(|url| endpoint_allowed(&provider.issuer, url))
        {
            return Err(UpstreamError::Malformed(
                "an endpoint is not https (or not on this machine)",
            ));
        }
        if let Ok(mut cache) = self.endpoints.lock() {
            cache.insert(provider.id.clone(), (endpoints.clone(), now_ms));
        }
        Ok(endpoints)
    }

    /// Where the user's browser goes to sign in at `provider`: the code flow with `state`,
    /// `nonce` (OpenID Connect) and the PKCE `challenge` (S256), back to `redirect_uri`.
    pub fn authorization_url(
        endpoints: &Endpoints,
        provider: &Provider,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> String {
        let mut query = vec![
            ("response_type", "code".to_owned()),
            ("client_id", provider.client_id.clone()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("scope", provider.scopes.join(" ")),
            ("state", state.to_owned()),
            ("code_challenge", challenge.to_owned()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if provider.kind != ProviderKind::Github {
            query.push(("nonce", nonce.to_owned()));
        }
        if provider.kind == ProviderKind::Apple {
            // Apple posts the answer back when a scope is asked.
            query.push(("response_mode", "form_post".to_owned()));
        }
        let query: Vec<String> = query
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encoded(&v)))
            .collect();
        let separator = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{}", endpoints.authorization, query.join("&"))
    }

    /// Redeems `code` and returns who signed in: the checked ID token's identity
    /// (OpenID Connect), or GitHub's user and primary address. `client_secret` is the
    /// provider's secret as the token endpoint takes it (Apple's: the signed JWT).
    #[allow(clippy::too_many_arguments)]
    pub async fn identity(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        client_secret: Option<&SecretString>,
        code: &str,
        redirect_uri: &str,
        verifier: &SecretString,
        nonce: &str,
        now_ms: i64,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let mut form = vec![
            ("grant_type", SecretString::from("authorization_code")),
            ("code", SecretString::from(code.to_owned())),
            ("redirect_uri", SecretString::from(redirect_uri.to_owned())),
            ("client_id", SecretString::from(provider.client_id.clone())),
            ("code_verifier", verifier.clone()),
        ];
        if let Some(secret) = client_secret {
            form.push(("client_secret", secret.clone()));
        }
        let answer = self.http.post_form(endpoints.token.clone(), form).await?;
        if let Some(error) = answer.body["error"].as_str() {
            // The provider's own error code: a word from RFC 6749, bounded for the log.
            let word: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            return Err(UpstreamError::Refused(word));
        }
        if answer.status != 200 {
            return Err(UpstreamError::Status(answer.status));
        }
        if provider.kind == ProviderKind::Github {
            let access = answer.body["access_token"]
                .as_str()
                .ok_or(UpstreamError::Malformed("the answer has no access token"))?;
            let access = SecretString::from(access.to_owned());
            let api = endpoints.api.clone().unwrap_or_default();
            let user = self
                .http
                .get(format!("{api}/user"), Some(access.clone()))
                .await?;
            let emails = self
                .http
                .get(format!("{api}/user/emails"), Some(access))
                .await?;
            if user.status != 200 || emails.status != 200 {
                return Err(UpstreamError::Status(if user.status != 200 {
                    user.status
                } else {
                    emails.status
                }));
            }
            return github_identity(provider, &user.body, &emails.body)
                .map_err(|_| UpstreamError::Malformed("GitHub named no user"));
        }
        let token = answer.body["id_token"]
            .as_str()
            .ok_or(UpstreamError::Malformed("the answer has no ID token"))?;
        let claims = self
            .checked_id_token(provider, endpoints, token, nonce, now_ms)
            .await?;
        oidc_identity(provider, &claims)
            .map_err(|_| UpstreamError::IdToken("it names no usable subject"))
    }

    /// The claims of `token`, once its signature, issuer, audience, times and nonce hold.
    pub async fn checked_id_token(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        token: &str,
        nonce: &str,
        now_ms: i64,
    ) -> Result<Value, UpstreamError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| UpstreamError::IdToken("it is not a JWT"))?;
        let asymmetric = matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA
        );
        if !asymmetric {
            return Err(UpstreamError::IdToken(
                "it is not signed with a public-key algorithm",
            ));
        }
        let jwks_uri = endpoints
            .jwks_uri
            .as_deref()
            .ok_or(UpstreamError::Malformed("the provider publishes no keys"))?;
        let jwk = self
            .key(&provider.id, jwks_uri, header.kid.as_deref(), now_ms)
            .await?;
        if let Some(alg) = jwk.common.key_algorithm
            && alg.to_string().parse::<Algorithm>().ok() != Some(header.alg)
        {
            return Err(UpstreamError::IdToken("its algorithm is not its key's"));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| UpstreamError::Malformed("a published key is unusable"))?;
        let mut validation = Validation::new(header.alg);
        // Checked below against this deployment's clock, and with Microsoft's issuer form.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|_| UpstreamError::IdToken("its signature does not verify"))?
            .claims;
        check_claims(
            &endpoints.issuer,
            &provider.client_id,
            &claims,
            nonce,
            now_ms,
        )?;
        Ok(claims)
    }

    /// The provider's key `kid` (or its only key, when the token names none), from the
    /// cached set, looked up again when the set lacks it and has not just been fetched.
    async fn key(
        &self,
        provider: &str,
        jwks_uri: &str,
        kid: Option<&str>,
        now_ms: i64,
    ) -> Result<Jwk, UpstreamError> {
        let pick = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let cached = self
            .keys
            .lock()
            .ok()
            .and_then(|cache| cache.get(provider).cloned());
        if let Some((set, at)) = &cached {
            if let Some(found) = pick(set).filter(|_| now_ms - at < CACHE_MS) {
                return Ok(found);
            }
            if now_ms - at < KEY_REFRESH_MS {
                return Err(UpstreamError::IdToken("its key is not published"));
            }
        }
        let answer = self.http.get(jwks_uri.to_owned(), None).await?;
        if answer.status != 200 {
            return Err(UpstreamError::Status(answer.status));
        }
        let set: JwkSet = serde_json::from_value(answer.body)
            .map_err(|_| UpstreamError::Malformed("the key set is not a JWKS"))?;
        let found = pick(&set);
        if let Ok(mut cache) = self.keys.lock() {
            cache.insert(provider.to_owned(), (set, now_ms));
        }
        found.ok_or(UpstreamError::IdToken("its key is not published"))
    }
}

/// The client secret `provider`'s token endpoint takes: its configured secret, or, for
/// Apple, a JWT signed (ES256) with the team's private key: `iss` the team id, `sub` the
/// client id, `aud` the issuer, valid five minutes, `kid` the key id.
pub fn client_secret_for(
    provider: &Provider,
    now_ms: i64,
) -> Result<Option<SecretString>, UpstreamError> {
    if provider.kind != ProviderKind::Apple {
        return Ok(provider.client_secret.clone());
    }
    let unusable = UpstreamError::Malformed("the Apple key cannot sign");
    let der = provider
        .client_secret
        .as_ref()
        .and_then(|pem| crate::model::federation::apple_key_der(pem.expose_secret()))
        .ok_or(unusable)?;
    let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
    header.kid = provider.apple_key_id.clone();
    let now = now_ms / 1000;
    let claims = serde_json::json!({
        "iss": provider.apple_team_id,
        "iat": now,
        "exp": now + 300,
        "aud": provider.issuer,
        "sub": provider.client_id,
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&der),
    )
    .map(|jwt| Some(SecretString::from(jwt)))
    .map_err(|_| UpstreamError::Malformed("the Apple key cannot sign"))
}

/// `iss` (the discovered issuer, Microsoft's `{tenantid}` filled with the token's `tid`),
/// `aud` (holding our client id; with more than one audience, `azp` ours), `exp` (not past,
/// within the leeway), `iat` (not ahead) and `nonce` (ours).
fn check_claims(
    issuer: &str,
    client_id: &str,
    claims: &Value,
    nonce: &str,
    now_ms: i64,
) -> Result<(), UpstreamError> {
    let refuse = |why| Err(UpstreamError::IdToken(why));
    match expected_issuer(issuer, claims) {
        Some(expected) if claims["iss"].as_str() == Some(expected.as_str()) => {}
        _ => return refuse("its issuer is not the provider"),
    }
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return refuse("it is not for this client");
    }
    if audiences.len() > 1 && claims["azp"].as_str() != Some(client_id) {
        return refuse("it was issued to another party");
    }
    let now = now_ms / 1000;
    match claims["exp"].as_i64() {
        Some(exp) if exp + LEEWAY_SECONDS > now => {}
        _ => return refuse("it has expired"),
    }
    match claims["iat"].as_i64() {
        Some(iat) if iat - LEEWAY_SECONDS <= now => {}
        _ => return refuse("its issue time is missing or ahead"),
    }
    let given = claims["nonce"].as_str().unwrap_or_default();
    let same = given.len() == nonce.len()
        && subtle::ConstantTimeEq::ct_eq(given.as_bytes(), nonce.as_bytes()).into();
    if !same {
        return refuse("its nonce is not this sign-in's");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{EncodingKey, Header};
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example.com";
    const NOW_MS: i64 = 1_800_000_000_000;

    /// Answers by URL; keeps each request (URL, form fields with their values).
    #[derive(Default)]
    struct Fake {
        answers: Mutex<HashMap<String, HttpAnswer>>,
        asked: Mutex<Vec<(String, HashMap<String, String>)>>,
    }

    impl Fake {
        fn answer(&self, url: &str, status: u16, body: Value) {
            self.answers
                .lock()
                .unwrap()
                .insert(url.to_owned(), HttpAnswer { status, body });
        }
        fn asked(&self) -> Vec<(String, HashMap<String, String>)> {
            self.asked.lock().unwrap().clone()
        }
        fn reply(&self, url: String, form: HashMap<String, String>) -> Answer<'_> {
            self.asked.lock().unwrap().push((url.clone(), form));
            let found = self.answers.lock().unwrap().get(&url).cloned();
            Box::pin(async move { found.ok_or(UpstreamError::Status(404)) })
        }
    }

    impl UpstreamHttp for Fake {
        fn get(&self, url: String, bearer: Option<SecretString>) -> Answer<'_> {
            let mut form = HashMap::new();
            if let Some(bearer) = bearer {
                form.insert("bearer".to_owned(), bearer.expose_secret().to_owned());
            }
            self.reply(url, form)
        }
        fn post_form(&self, url: String, form: Vec<(&'static str, SecretString)>) -> Answer<'_> {
            let form = form
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.expose_secret().to_owned()))
                .collect();
            self.reply(url, form)
        }
    }

    struct Key {
        kid: &'static str,
        encoding: EncodingKey,
        jwk: Value,
    }

    fn key(kid: &'static str, seed: u8) -> Key {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().unwrap();
        Key {
            kid,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
                        "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes())}),
        }
    }

    fn sign(key: &Key, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.to_owned());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }

    fn provider(issuer: &str) -> Provider {
        let json = json!([{"id": "idp", "name": "IdP", "issuer": issuer, "client_id": "auth-client",
                           "client_secret": "s3cr3t", "trusted_email": true}]);
        crate::model::federation::providers_from_env(&HashMap::from([(
            "FEDERATION_PROVIDERS",
            json.to_string().as_str(),
        )]))
        .unwrap()
        .remove(0)
    }

    fn discovery(issuer: &str) -> Value {
        json!({"issuer": issuer, "authorization_endpoint": format!("{ISSUER}/authorize"),
               "token_endpoint": format!("{ISSUER}/token"), "jwks_uri": format!("{ISSUER}/jwks")})
    }

    fn claims() -> Value {
        let now = NOW_MS / 1000;
        json!({"iss": ISSUER, "aud": "auth-client", "sub": "248289761001", "iat": now,
               "exp": now + 300, "nonce": "n-0S6_WzA2Mj", "email": "ada@example.com",
               "email_verified": true})
    }

    fn upstream(fake: &Arc<Fake>, keys: &[&Key]) -> Upstream {
        fake.answer(
            &format!("{ISSUER}/.well-known/openid-configuration"),
            200,
            discovery(ISSUER),
        );
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        fake.answer(&format!("{ISSUER}/jwks"), 200, json!({"keys": jwks}));
        Upstream::new(Arc::clone(fake) as Arc<dyn UpstreamHttp>)
    }

    #[tokio::test]
    async fn discovery_must_be_the_issuer_s_own_and_is_cached() {
        let fake = Arc::new(Fake::default());
        let client = upstream(&fake, &[]);
        let idp = provider(ISSUER);
        let found = client.endpoints(&idp, NOW_MS).await.unwrap();
        assert_eq!(found.token, format!("{ISSUER}/token"));
        client.endpoints(&idp, NOW_MS + 1000).await.unwrap();
        assert_eq!(fake.asked().len(), 1, "cached");

        for document in [
            discovery("https://evil.example.com"),
            json!({"issuer": ISSUER, "authorization_endpoint": "http://idp.example.com/authorize",
                   "token_endpoint": format!("{ISSUER}/token"), "jwks_uri": format!("{ISSUER}/jwks")}),
            json!({"issuer": ISSUER}),
        ] {
            let fake = Arc::new(Fake::default());
            fake.answer(
                &format!("{ISSUER}/.well-known/openid-configuration"),
                200,
                document.clone(),
            );
            let client = Upstream::new(fake);
            assert!(
                matches!(
                    client.endpoints(&idp, NOW_MS).await,
                    Err(UpstreamError::Malformed(_))
                ),
                "{document}"
            );
        }
    }

    #[test]
    fn the_authorization_request_carries_state_nonce_and_pkce() {
        let idp = provider(ISSUER);
        let endpoints = Endpoints {
            issuer: ISSUER.into(),
            authorization: format!("{ISSUER}/authorize"),
            token: format!("{ISSUER}/token"),
            jwks_uri: None,
            api: None,
        };
        let url = Upstream::authorization_url(
            &endpoints,
            &idp,
            "https://auth.example.com/oauth2/callback/idp",
            "st&te",
            "n0nce",
            "ch4llenge",
        );
        assert_eq!(
            url,
            "https://idp.example.com/authorize?response_type=code&client_id=auth-client\
             &redirect_uri=https%3A%2F%2Fauth.example.com%2Foauth2%2Fcallback%2Fidp\
             &scope=openid%20email%20profile&state=st%26te&code_challenge=ch4llenge\
             &code_challenge_method=S256&nonce=n0nce"
        );
    }

    #[tokio::test]
    async fn a_code_is_redeemed_with_its_verifier_and_the_id_token_checked() {
        let fake = Arc::new(Fake::default());
        let signing = key("k1", 1);
        let client = upstream(&fake, &[&signing]);
        let idp = provider(ISSUER);
        let endpoints = client.endpoints(&idp, NOW_MS).await.unwrap();
        fake.answer(
            &format!("{ISSUER}/token"),
            200,
            json!({"access_token": "at", "token_type": "Bearer", "id_token": sign(&signing, &claims())}),
        );
        let verifier = SecretString::from("v".repeat(43));
        let identity = client
            .identity(
                &idp,
                &endpoints,
                idp.client_secret.as_ref(),
                "the-code",
                "https://auth.example.com/oauth2/callback/idp",
                &verifier,
                "n-0S6_WzA2Mj",
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(identity.subject, "248289761001");
        assert!(identity.email_vouched);
        let (_, form) = fake
            .asked()
            .into_iter()
            .find(|(url, _)| *url == format!("{ISSUER}/token"))
            .unwrap();
        assert_eq!(form["code"], "the-code");
        assert_eq!(form["code_verifier"], "v".repeat(43));
        assert_eq!(form["client_secret"], "s3cr3t");
        assert_eq!(form["grant_type"], "authorization_code");

        // The provider's refusal, by its error word only.
        fake.answer(
            &format!("{ISSUER}/token"),
            400,
            json!({"error": "invalid_grant", "error_description": "code s3cr3t-code used"}),
        );
        let refused = client
            .identity(&idp, &endpoints, None, "c", "r", &verifier, "n", NOW_MS)
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the provider refused the code (invalid_grant)"
        );
    }

    #[tokio::test]
    async fn every_forged_or_stale_id_token_is_refused() {
        let fake = Arc::new(Fake::default());
        let signing = key("k1", 1);
        let attacker = key("k1", 2);
        let unpublished = key("k9", 3);
        let client = upstream(&fake, &[&signing]);
        let idp = provider(ISSUER);
        let endpoints = client.endpoints(&idp, NOW_MS).await.unwrap();
        let check = |token: String| {
            let client = &client;
            let idp = &idp;
            let endpoints = &endpoints;
            async move {
                client
                    .checked_id_token(idp, endpoints, &token, "n-0S6_WzA2Mj", NOW_MS)
                    .await
            }
        };
        assert!(check(sign(&signing, &claims())).await.is_ok());
        let now = NOW_MS / 1000;
        let altered = |change: Value| {
            let mut c = claims();
            for (k, v) in change.as_object().unwrap() {
                c[k] = v.clone();
            }
            sign(&signing, &c)
        };
        let hs256 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"the public key, as an HMAC secret"),
        )
        .unwrap();
        for (case, token) in [
            (
                "another issuer",
                altered(json!({"iss": "https://evil.example.com"})),
            ),
            ("another audience", altered(json!({"aud": "someone-else"}))),
            (
                "audiences without azp",
                altered(json!({"aud": ["auth-client", "other"]})),
            ),
            (
                "another party",
                altered(json!({"aud": ["auth-client", "other"], "azp": "other"})),
            ),
            ("expired", altered(json!({"exp": now - 120}))),
            ("no expiry", altered(json!({"exp": null}))),
            ("issued in the future", altered(json!({"iat": now + 3600}))),
            ("another nonce", altered(json!({"nonce": "n-replayed"}))),
            ("no nonce", altered(json!({"nonce": null}))),
            ("signed by another key", sign(&attacker, &claims())),
            ("an unpublished key", sign(&unpublished, &claims())),
            ("HS256", hs256),
            ("not a JWT", "not.a.jwt".to_owned()),
        ] {
            assert!(
                matches!(check(token).await, Err(UpstreamError::IdToken(_))),
                "{case}"
            );
        }
        assert!(
            check(altered(
                json!({"aud": ["auth-client", "other"], "azp": "auth-client"})
            ))
            .await
            .is_ok()
        );
        assert!(
            check(altered(json!({"exp": now - 30}))).await.is_ok(),
            "within the leeway"
        );
    }

    #[tokio::test]
    async fn a_rotated_key_is_fetched_once_then_not_again_within_a_minute() {
        let fake = Arc::new(Fake::default());
        let old = key("old", 1);
        let new = key("new", 2);
        let client = upstream(&fake, &[&old]);
        let idp = provider(ISSUER);
        let endpoints = client.endpoints(&idp, NOW_MS).await.unwrap();
        let check = |token: String, at: i64| {
            let client = &client;
            let idp = &idp;
            let endpoints = &endpoints;
            async move {
                client
                    .checked_id_token(idp, endpoints, &token, "n-0S6_WzA2Mj", at)
                    .await
            }
        };
        assert!(check(sign(&old, &claims()), NOW_MS).await.is_ok());
        fake.answer(
            &format!("{ISSUER}/jwks"),
            200,
            json!({"keys": [old.jwk, new.jwk]}),
        );
        // Within a minute of the last fetch an unknown key is not fetched for.
        assert!(check(sign(&new, &claims()), NOW_MS + 1000).await.is_err());
        assert!(check(sign(&new, &claims()), NOW_MS + 61_000).await.is_ok());
        let fetches = fake
            .asked()
            .iter()
            .filter(|(u, _)| u.ends_with("/jwks"))
            .count();
        assert_eq!(fetches, 2);
    }

    #[tokio::test]
    async fn microsoft_tokens_name_their_own_tenant_as_issuer() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        let fake = Arc::new(Fake::default());
        let signing = key("k1", 1);
        fake.answer(
            &format!("{common}/.well-known/openid-configuration"),
            200,
            json!({"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                   "authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                   "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                   "jwks_uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys"}),
        );
        fake.answer(
            "https://login.microsoftonline.com/common/discovery/v2.0/keys",
            200,
            json!({"keys": [signing.jwk]}),
        );
        let client = Upstream::new(Arc::clone(&fake) as Arc<dyn UpstreamHttp>);
        let microsoft = provider(common);
        let endpoints = client.endpoints(&microsoft, NOW_MS).await.unwrap();
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let mut good = claims();
        good["tid"] = json!(tid);
        good["oid"] = json!("00000000-0000-0000-66f3-3332eca7ea81");
        good["iss"] = json!(format!("https://login.microsoftonline.com/{tid}/v2.0"));
        let check = |c: &Value| {
            let token = sign(&signing, c);
            let client = &client;
            let microsoft = &microsoft;
            let endpoints = &endpoints;
            async move {
                client
                    .checked_id_token(microsoft, endpoints, &token, "n-0S6_WzA2Mj", NOW_MS)
                    .await
            }
        };
        assert!(check(&good).await.is_ok());
        let mut other_tenant = good.clone();
        other_tenant["tid"] = json!("11111111-6c67-4c5b-b112-36a304b66dad");
        assert!(
            check(&other_tenant).await.is_err(),
            "iss names another tenant than tid"
        );
        let mut no_tid = good;
        no_tid["tid"] = Value::Null;
        assert!(check(&no_tid).await.is_err());
    }

    #[tokio::test]
    async fn github_is_asked_for_its_user_and_primary_address_with_the_access_token() {
        let fake = Arc::new(Fake::default());
        let client = Upstream::new(Arc::clone(&fake) as Arc<dyn UpstreamHttp>);
        let json = json!([{"id": "gh", "name": "GitHub", "kind": "github", "issuer": "http://127.0.0.1:9", "client_id": "Iv1", "trusted_email": true}]);
        let github = crate::model::federation::providers_from_env(&HashMap::from([(
            "FEDERATION_PROVIDERS",
            json.to_string().as_str(),
        )]))
        .unwrap()
        .remove(0);
        let endpoints = client.endpoints(&github, NOW_MS).await.unwrap();
        assert_eq!(
            endpoints.token,
            "http://127.0.0.1:9/login/oauth/access_token"
        );
        fake.answer(
            &endpoints.token,
            200,
            json!({"access_token": "gho_x", "token_type": "bearer"}),
        );
        fake.answer(
            "http://127.0.0.1:9/api/v3/user",
            200,
            json!({"id": 583231, "login": "octocat"}),
        );
        fake.answer(
            "http://127.0.0.1:9/api/v3/user/emails",
            200,
            json!([{"email": "octo@example.com", "primary": true, "verified": true}]),
        );
        let identity = client
            .identity(
                &github,
                &endpoints,
                None,
                "c",
                "r",
                &SecretString::from("v"),
                "",
                NOW_MS,
            )
            .await
            .unwrap();
        assert_eq!(identity.subject, "583231");
        assert!(identity.email_vouched);
        let asked = fake.asked();
        assert_eq!(asked[1].1["bearer"], "gho_x");
    }
}
