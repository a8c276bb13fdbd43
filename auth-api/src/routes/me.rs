use http::StatusCode;
use lambda_http::Request;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::Reply;
use crate::error::ApiError;
use crate::store::UserStore;
use crate::{App, store_error};

#[derive(Serialize)]
struct Profile {
    user_id: String,
    email: String,
    roles: Vec<String>,
    created_at: String,
}

/// The `sub` the API Gateway authorizer put in the request context. Only API Gateway can set
/// it: nothing the client sends (headers, body, query) is read.
fn authorizer_sub(req: &Request) -> Option<String> {
    let fields = match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => &ctx.authorizer.fields,
        RequestContext::ApiGatewayV2(ctx) => &ctx.authorizer.as_ref()?.fields,
        _ => return None,
    };
    fields.get("sub")?.as_str().map(str::to_owned)
}

/// `GET /me` (protected by the authorizer) → the caller's profile.
pub async fn me<S: UserStore>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let sub = authorizer_sub(req).ok_or_else(|| {
        tracing::warn!("GET /me arrived without an authorizer context: protect it in the API");
        ApiError::InvalidToken
    })?;
    let user_id = Uuid::parse_str(&sub).map_err(|_| ApiError::InvalidToken)?;
    let user = app
        .store
        .find_user_by_id(user_id)
        .await
        .map_err(store_error)?
        .ok_or(ApiError::UserNotFound)?;
    Ok(Reply::json(
        StatusCode::OK,
        &Profile {
            user_id: user.user_id.to_string(),
            email: user.email.to_string(),
            roles: user.roles,
            created_at: user
                .created_at
                .format(&Rfc3339)
                .map_err(|_| ApiError::Internal)?,
        },
        Some(sub),
    ))
}
