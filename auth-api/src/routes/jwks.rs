use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};

use super::Reply;
use crate::App;
use crate::error::ApiError;

/// `GET /.well-known/jwks.json` → the public keys tokens are verified with (the signing key's
/// and any extra accepted keys), for other services to verify access tokens themselves.
/// A shared HS256 secret is never published: 404 then.
pub fn jwks<S>(app: &App<S>) -> Result<Reply, ApiError> {
    let jwks = app.verifier.keys().to_jwks();
    if jwks.keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut reply = Reply::json(StatusCode::OK, &jwks, None);
    let headers = reply.response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Public and stable between rotations; rotation publishes the new key well before use.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(reply)
}
