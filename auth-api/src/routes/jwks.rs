//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: what anyone
//! needs to verify our access tokens, API Gateway's built-in JWT authorizers included.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use crate::app::App;
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

/// Both documents are public and stable between rotations; a rotation publishes the new key
/// well before it signs.
fn public_cache(reply: &mut Reply) {
    reply.response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
}

/// `GET /.well-known/jwks.json` → the public keys tokens are verified with (the signing key's
/// and any extra accepted keys), for other services to verify access tokens themselves.
/// A shared HS256 secret is never published: 404 then.
pub fn jwks<S>(app: &App<S>) -> Result<Reply, ApiError> {
    let jwks = app.verifier.keys().to_jwks();
    if jwks.keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut reply = Reply::json(StatusCode::OK, &jwks, None);
    reply.response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    public_cache(&mut reply);
    Ok(reply)
}

/// The discovery document: only what this service really has (RFC 8414 / OpenID Connect
/// Discovery 1.0 names). The token endpoint serves machine clients (`client_credentials`);
/// users' tokens come from `/login` and `/refresh`. No authorization endpoint and no ID token
/// algorithms are claimed, as neither exists yet (the JWKS says which algorithms access tokens
/// use).
#[derive(Serialize)]
struct Discovery<'a> {
    issuer: &'a str,
    jwks_uri: String,
    token_endpoint: String,
    grant_types_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 2],
    /// Only what `PUBLISHED_SCOPES` lists: the registered clients' scopes are not published.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    scopes_supported: &'a [String],
    subject_types_supported: [&'static str; 1],
    claims_supported: [&'static str; 14],
}

/// `GET /.well-known/openid-configuration` → `issuer` and `jwks_uri`, which API Gateway's
/// built-in JWT authorizers (and OIDC libraries) read to find the keys. 404 under HS256, like
/// the JWKS.
pub fn discovery<S>(app: &App<S>) -> Result<Reply, ApiError> {
    let jwks = app.verifier.keys().to_jwks();
    if jwks.keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    let issuer = app.accounts.issuer.settings().issuer.as_str();
    let document = Discovery {
        issuer,
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/oauth2/token"),
        grant_types_supported: ["client_credentials"],
        token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
        scopes_supported: &app.published_scopes,
        subject_types_supported: ["public"],
        claims_supported: [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "email",
            "email_verified",
            "roles",
            "scope",
            "client_id",
            "sid",
            "typ",
        ],
    };
    let mut reply = Reply::json(StatusCode::OK, &document, None);
    public_cache(&mut reply);
    Ok(reply)
}
