//! What the HTTP face reads of a request, once: the route path, the request id, the client,
//! and the caller the authorizer named.

use accounts::model::client::{Caller, Client};
use accounts::model::credentials::Email;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use uuid::Uuid;

use crate::http::problem::ApiError;

/// The client of `req`: the address API Gateway saw (`requestContext.identity.sourceIp`, or
/// `requestContext.http.sourceIp` for payload 2.0; never `X-Forwarded-For`, which the client
/// writes) and its `User-Agent`.
pub fn client(req: &Request) -> Client {
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    Client::new(source_ip(req), user_agent)
}

fn source_ip(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref(),
        _ => None,
    }
}

/// The caller as the API Gateway authorizer named it (`sub`, `email` and `sid` of the request
/// context). Only API Gateway can set these: nothing the client sends is read. A protected
/// route that arrives without them was deployed without the authorizer in front:
/// `InvalidToken` (401).
pub fn caller(req: &Request) -> Result<Caller, ApiError> {
    let field = |name: &str| authorizer_field(req, name);
    let (Some(sub), Some(email)) = (field("sub"), field("email")) else {
        tracing::warn!(
            path = req.uri().path(),
            "a protected route arrived without an authorizer context: protect it in the API"
        );
        return Err(ApiError::InvalidToken);
    };
    Ok(Caller {
        user_id: Uuid::parse_str(sub).map_err(|_| ApiError::InvalidToken)?,
        email: Email::parse(email).map_err(|_| ApiError::InvalidToken)?,
        session: field("sid").and_then(|sid| Uuid::parse_str(sid).ok()),
    })
}

/// A string the authorizer put in the request context: a Lambda authorizer's context, or
/// (HTTP API's built-in JWT authorizer) the token's claims.
fn authorizer_field<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.authorizer.fields.get(name)?.as_str(),
        RequestContext::ApiGatewayV2(ctx) => {
            let authorizer = ctx.authorizer.as_ref()?;
            match authorizer.fields.get(name) {
                Some(value) => value.as_str(),
                None => authorizer
                    .jwt
                    .as_ref()?
                    .claims
                    .get(name)
                    .map(String::as_str),
            }
        }
        _ => None,
    }
}

/// The route path without the API Gateway stage. lambda_http puts a REST stage in front of
/// the path (`/prod/login`), and HTTP API named stages arrive inside `rawPath` too.
pub fn route_path(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(_)) if !req.raw_http_path().is_empty() => {
            req.raw_http_path().to_owned()
        }
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            let raw = if req.raw_http_path().is_empty() {
                req.uri().path()
            } else {
                req.raw_http_path()
            };
            match ctx.stage.as_deref() {
                Some(stage) if stage != "$default" => {
                    let prefix = format!("/{stage}");
                    match raw.strip_prefix(&prefix) {
                        Some(rest) if rest.starts_with('/') => rest.to_owned(),
                        Some("") => "/".to_owned(),
                        _ => raw.to_owned(),
                    }
                }
                _ => raw.to_owned(),
            }
        }
        _ => req.uri().path().to_owned(),
    }
}

/// API Gateway's id of the request, for the log line.
pub fn request_id(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.request_id.clone(),
        RequestContext::ApiGatewayV2(ctx) => ctx.request_id.clone(),
        _ => None,
    }
}
