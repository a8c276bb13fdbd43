//! `POST /refresh`, `POST /logout`, `POST /logout-all`, `GET /sessions` and
//! `DELETE /sessions/{id}`: the life of a session.

use accounts::error::Error;
use accounts::model::client::{Caller, Client};
use accounts::model::session::RefreshToken;
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::app::App;
use crate::http::body::JsonObject;
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

/// The refresh token a request presents, and whether it came in the cookie. `None`: a
/// string that cannot be one of ours, or no cookie where only the cookie is read.
struct Presented {
    token: Option<RefreshToken>,
    from_cookie: bool,
}

/// The refresh cookie, where the transport reads it and the request has one (after the CSRF
/// checks: 403 when they fail); otherwise, where the transport reads bodies, the body's
/// `refresh_token` (400 if it is missing or not a string).
fn presented_token<S>(app: &App<S>, req: &Request) -> Result<Presented, ApiError> {
    let browser = &app.browser;
    if let Some(text) = browser.refresh_cookie(req) {
        browser.check_csrf(req)?;
        return Ok(Presented {
            token: RefreshToken::parse(text.expose_secret()),
            from_cookie: true,
        });
    }
    if !browser.transport.in_body() {
        return Ok(Presented {
            token: None,
            from_cookie: true,
        });
    }
    let mut body = JsonObject::from_request(req, &["refresh_token"])?;
    let text = body
        .take_string("refresh_token")
        .map_err(|e| ApiError::Validation(vec![e]))?;
    Ok(Presented {
        token: RefreshToken::parse(&text),
        from_cookie: false,
    })
}

/// `POST /refresh {"refresh_token"}` (or the refresh cookie) → 200 with a new access token
/// and the token's successor; the presented token is spent. A cookie that is no longer good
/// is cleared.
pub async fn refresh<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let presented = presented_token(app, req)?;
    let result = match presented.token {
        Some(token) => app.accounts.refresh(token, client).await,
        None => Err(Error::InvalidRefreshToken),
    };
    match result {
        Ok(signed_in) => Ok(Reply::signed_in(&app.browser, &signed_in)),
        Err(Error::InvalidRefreshToken) if presented.from_cookie => {
            let mut response = ApiError::from(Error::InvalidRefreshToken).into_response();
            app.browser.clear_refresh_cookie(&mut response);
            Ok(Reply {
                response,
                user_id: None,
            })
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /logout {"refresh_token"}` (or the refresh cookie) → 204; the token's session is
/// revoked and the cookie cleared. An unknown, spent or revoked token also gives 204 (RFC
/// 7009): there is nothing left to end.
pub async fn logout<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let presented = presented_token(app, req)?;
    let user_id = app.accounts.logout(presented.token, client).await?;
    let mut reply = Reply::no_content(user_id.map(|id| id.to_string()));
    if presented.from_cookie {
        app.browser.clear_refresh_cookie(&mut reply.response);
    }
    Ok(reply)
}

/// `POST /logout-all` (protected) → 204; every session of the caller ends, and this
/// browser's refresh cookie is cleared.
pub async fn logout_all<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    app.accounts.logout_everywhere(caller, client).await?;
    let mut reply = Reply::no_content(Some(caller.user_id.to_string()));
    app.browser.clear_refresh_cookie(&mut reply.response);
    Ok(reply)
}

/// One session as its owner sees it.
#[derive(Serialize)]
struct SessionView {
    id: String,
    created_at: String,
    last_refreshed_at: Option<String>,
    expires_at: String,
    user_agent: Option<String>,
    source_ip: Option<String>,
    current: bool,
}

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

fn rfc3339_ms(ms: i64) -> Result<String, ApiError> {
    accounts::model::session::rfc3339_seconds(ms)
        .ok_or_else(|| ApiError::internal("a session time is out of range"))
}

/// `GET /sessions` (protected) → 200 the caller's live sessions, newest first; the one the
/// access token belongs to is `current`.
pub async fn list<S: Store>(app: &App<S>, caller: &Caller) -> Result<Reply, ApiError> {
    let sessions = app
        .accounts
        .sessions_of(caller)
        .await?
        .into_iter()
        .map(|s| {
            Ok(SessionView {
                id: s.id.to_string(),
                created_at: rfc3339_ms(s.created_at_ms)?,
                last_refreshed_at: s.last_refreshed_at_ms.map(rfc3339_ms).transpose()?,
                expires_at: rfc3339_ms(s.ends_at * 1000)?,
                user_agent: s.user_agent,
                source_ip: s.source_ip,
                current: s.current,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Reply::json(
        StatusCode::OK,
        &SessionList { sessions },
        Some(caller.user_id.to_string()),
    ))
}

/// `DELETE /sessions/{id}` (protected) → 204; that session of the caller ends. Someone else's
/// session, or no session at all, is the same 404. Ending the current session clears this
/// browser's refresh cookie.
pub async fn end<S: Store>(
    app: &App<S>,
    client: &Client,
    caller: &Caller,
    id: &str,
) -> Result<Reply, ApiError> {
    app.accounts.end_session(caller, client, id).await?;
    let mut reply = Reply::no_content(Some(caller.user_id.to_string()));
    if caller.session.is_some() && uuid::Uuid::parse_str(id).ok() == caller.session {
        app.browser.clear_refresh_cookie(&mut reply.response);
    }
    Ok(reply)
}
