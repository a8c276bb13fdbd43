//! HTTP API's built-in JWT authorizer, as AWS documents it
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html>):
//! the signing keys come from `{issuer}/.well-known/openid-configuration` and its `jwks_uri`,
//! fetched over HTTP like API Gateway does (here from local-api itself); only RSA keys and
//! RS256 signatures count; `iss` must equal the issuer, `aud` or `client_id` must match an
//! audience, `exp` must be in the future, `nbf` and `iat` in the past; a route with
//! `AuthorizationScopes` needs one of them in the token's `scope` (or `scp`). The claims reach
//! the integration as strings in `requestContext.authorizer.jwt.claims`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// API Gateway keeps a JWKS for a while; a token with an unknown `kid` makes it look again,
/// at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// How long fetching the discovery document or the JWKS may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the authorizer refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtRefusal {
    /// 401: no token, or a token API Gateway does not accept. The reason goes to the log and
    /// to `WWW-Authenticate`'s `error_description`, never the token.
    Unauthorized(String),
    /// 403: valid, but none of the route's scopes.
    InsufficientScope,
}

/// What the integration receives in `requestContext.authorizer.jwt`.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtContext {
    pub claims: Map<String, Value>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Map<String, Value>>,
}

struct Keys {
    fetched: Instant,
    by_kid: HashMap<String, DecodingKey>,
}

pub struct JwtAuthorizer {
    issuer: String,
    audience: Vec<String>,
    http: reqwest::Client,
    keys: Mutex<Option<Keys>>,
}

impl JwtAuthorizer {
    pub fn new(issuer: String, audience: Vec<String>) -> Self {
        Self {
            issuer,
            audience,
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .unwrap_or_default(),
            keys: Mutex::new(None),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks `header` (the `Authorization` value) for a route needing one of `scopes`.
    pub async fn authorize(
        &self,
        header: Option<&str>,
        scopes: &[String],
    ) -> Result<JwtContext, JwtRefusal> {
        let unauthorized = |why: &str| JwtRefusal::Unauthorized(why.to_owned());
        let header = header
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| unauthorized("no token"))?;
        // API Gateway takes the token with or without the Bearer prefix.
        let token = shared::bearer_token(header).unwrap_or(header);
        let jwt_header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthorized("malformed token"))?;
        if jwt_header.alg != Algorithm::RS256 {
            return Err(unauthorized("signing algorithm is not RS256"));
        }
        let kid = jwt_header
            .kid
            .ok_or_else(|| unauthorized("token has no kid"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| JwtRefusal::Unauthorized(format!("token rejected: {}", e.kind_text())))?;
        let claims = data.claims;
        let now = shared::token::now_unix();
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now)
        {
            return Err(unauthorized("token issued in the future"));
        }
        if !self.audience_matches(&claims) {
            return Err(unauthorized("no audience or client_id matches"));
        }
        let token_scopes = token_scopes(&claims);
        if !scopes.is_empty()
            && !token_scopes
                .iter()
                .flatten()
                .any(|s| scopes.iter().any(|wanted| wanted == s))
        {
            return Err(JwtRefusal::InsufficientScope);
        }
        Ok(JwtContext {
            claims: claims
                .into_iter()
                .map(|(k, v)| (k, Value::String(claim_text(&v))))
                .collect(),
            scopes: token_scopes,
        })
    }

    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        let wanted = |s: &str| self.audience.iter().any(|a| a == s);
        let aud = match claims.get("aud") {
            Some(Value::String(s)) => wanted(s),
            Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).any(wanted),
            _ => false,
        };
        aud || claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(wanted)
    }

    /// The RSA key `kid` from the issuer's JWKS, fetched when not known yet.
    async fn key(&self, kid: &str) -> Result<DecodingKey, JwtRefusal> {
        let mut keys = self.keys.lock().await;
        if let Some(known) = keys.as_ref() {
            if let Some(key) = known.by_kid.get(kid) {
                return Ok(key.clone());
            }
            if known.fetched.elapsed() < REFETCH_AFTER {
                return Err(JwtRefusal::Unauthorized("unknown kid".into()));
            }
        }
        let fetched = self.fetch().await.map_err(|e| {
            tracing::warn!(issuer = %self.issuer, error = %e, "JWT authorizer: cannot fetch the issuer's keys");
            JwtRefusal::Unauthorized("the issuer's keys cannot be fetched".into())
        })?;
        let key = fetched.by_kid.get(kid).cloned();
        *keys = Some(fetched);
        key.ok_or_else(|| JwtRefusal::Unauthorized("unknown kid".into()))
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let discovery: Discovery = self.get_json(&url).await?;
        let jwks: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let by_kid = jwks
            .keys
            .iter()
            .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
            .filter_map(|k| {
                let kid = k.get("kid")?.as_str()?;
                let n = k.get("n")?.as_str()?;
                let e = k.get("e")?.as_str()?;
                let key = DecodingKey::from_rsa_components(n, e).ok()?;
                Some((kid.to_owned(), key))
            })
            .collect();
        Ok(Keys {
            fetched: Instant::now(),
            by_kid,
        })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        response
            .json()
            .await
            .map_err(|e| format!("GET {url}: not the JSON expected: {e}"))
    }
}

/// The token's scopes: `scope` (space-separated) or `scp` (a list or a string).
fn token_scopes(claims: &Map<String, Value>) -> Option<Vec<String>> {
    let split = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => Some(split(s)),
        (_, Some(Value::Array(values))) => Some(
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        (_, Some(Value::String(s))) => Some(split(s)),
        _ => None,
    }
}

/// A claim as API Gateway hands it on: strings as they are, arrays as `[a b]`, the rest as
/// JSON text.
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(values) => {
            let items: Vec<String> = values.iter().map(claim_text).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

trait KindText {
    fn kind_text(&self) -> &'static str;
}

impl KindText for jsonwebtoken::errors::Error {
    fn kind_text(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind;
        match self.kind() {
            ErrorKind::ExpiredSignature => "expired",
            ErrorKind::ImmatureSignature => "not yet valid",
            ErrorKind::InvalidIssuer => "wrong issuer",
            ErrorKind::InvalidSignature => "bad signature",
            ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
            _ => "invalid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_reach_the_integration_as_api_gateway_renders_them() {
        assert_eq!(claim_text(&serde_json::json!("a b")), "a b");
        assert_eq!(
            claim_text(&serde_json::json!(["user", "admin"])),
            "[user admin]"
        );
        assert_eq!(claim_text(&serde_json::json!(12)), "12");
        assert_eq!(claim_text(&serde_json::json!(true)), "true");
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            token_scopes(&claims(serde_json::json!({"scope": "user admin"}))),
            Some(vec!["user".to_owned(), "admin".to_owned()])
        );
        assert_eq!(
            token_scopes(&claims(serde_json::json!({"scp": ["a"]}))),
            Some(vec!["a".to_owned()])
        );
        assert_eq!(token_scopes(&claims(serde_json::json!({}))), None);
    }
}
