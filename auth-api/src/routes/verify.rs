use http::StatusCode;
use http::header::AUTHORIZATION;
use lambda_http::Request;

use crate::app::App;
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

/// `GET /verify` with `Authorization: Bearer <token>` → 200 with the token's claims, taken from
/// the verified token alone, or 401. No store access.
pub fn verify<S>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(shared::bearer_token)
        .ok_or_else(|| {
            tracing::info!(reason = "no_bearer_token", "token refused");
            ApiError::InvalidToken
        })?;
    let claims = app
        .verifier
        .verify_at(token, app.accounts.clock.now())
        .map_err(|e| {
            tracing::info!(reason = e.code(), "token refused");
            ApiError::InvalidToken
        })?;
    let user_id = claims.sub.clone();
    Ok(Reply::json(StatusCode::OK, &claims, Some(user_id)))
}
