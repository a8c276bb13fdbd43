//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`: what anyone
//! needs to verify our access tokens, API Gateway's built-in JWT authorizers included.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use accounts::model::oidc::OIDC_SCOPES;

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
/// Discovery 1.0 names).
#[derive(Serialize)]
struct Discovery<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    end_session_endpoint: String,
    device_authorization_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 4],
    code_challenge_methods_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    /// OpenID Connect's scopes, and what `PUBLISHED_SCOPES` lists: the registered clients'
    /// own scopes are not published.
    scopes_supported: Vec<&'a str>,
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'a str; 1],
    claims_supported: [&'static str; 18],
    prompt_values_supported: [&'static str; 3],
    authorization_response_iss_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    claims_parameter_supported: bool,
}

/// `GET /.well-known/openid-configuration` → `issuer` and `jwks_uri`, which API Gateway's
/// built-in JWT authorizers (and OIDC libraries) read to find the keys, and the OpenID
/// Provider's endpoints. 404 under HS256, like the JWKS.
pub fn discovery<S>(app: &App<S>) -> Result<Reply, ApiError> {
    let jwks = app.verifier.keys().to_jwks();
    if jwks.keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    let issuer = app.accounts.issuer.settings().issuer.as_str();
    let alg = jwks
        .keys
        .iter()
        .find(|k| k.kid == app.accounts.issuer.key().kid())
        .map_or("RS256", |k| k.alg.as_str());
    let mut scopes: Vec<&str> = OIDC_SCOPES.to_vec();
    scopes.extend(app.published_scopes.iter().map(String::as_str));
    let document = Discovery {
        issuer,
        authorization_endpoint: format!("{issuer}/oauth2/authorize"),
        token_endpoint: format!("{issuer}/oauth2/token"),
        userinfo_endpoint: format!("{issuer}/oauth2/userinfo"),
        end_session_endpoint: format!("{issuer}/oauth2/logout"),
        device_authorization_endpoint: format!("{issuer}/oauth2/device_authorization"),
        revocation_endpoint: format!("{issuer}/oauth2/revoke"),
        introspection_endpoint: format!("{issuer}/oauth2/introspect"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        response_types_supported: ["code"],
        response_modes_supported: ["query"],
        grant_types_supported: [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        revocation_endpoint_auth_methods_supported: [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: [
            "client_secret_basic",
            "client_secret_post",
        ],
        scopes_supported: scopes,
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: [alg],
        claims_supported: [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "auth_time",
            "nonce",
            "amr",
            "at_hash",
            "email",
            "email_verified",
            "roles",
            "scope",
            "client_id",
            "sid",
            "typ",
        ],
        prompt_values_supported: ["none", "login", "consent"],
        authorization_response_iss_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        claims_parameter_supported: false,
    };
    let mut reply = Reply::json(StatusCode::OK, &document, None);
    public_cache(&mut reply);
    Ok(reply)
}
