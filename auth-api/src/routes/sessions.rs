//! `POST /refresh`, `POST /logout`, `POST /logout-all`, `GET /sessions` and
//! `DELETE /sessions/{id}`: the life of a session.

use http::StatusCode;
use lambda_http::Request;
use secrecy::ExposeSecret;
use serde::Serialize;
use uuid::Uuid;

use super::{Reply, audit, caller, caller_session, token_reply};
use crate::App;
use crate::body::JsonObject;
use crate::browser::problem_clearing_cookie;
use crate::error::ApiError;
use accounts::model::session::RefreshToken;
use accounts::model::session::{RefreshLookup, RefreshRecord, Spent};
use accounts::store::{Store, StoreError};

/// How often a refresh re-reads and retries after losing a race on its token.
const ROTATION_ATTEMPTS: usize = 3;

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
/// and the token's successor; the presented token is spent. Re-presenting a spent token within
/// the grace window gives the same successor again; later, the whole family is revoked. A
/// cookie that is no longer good is cleared.
pub async fn refresh<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let presented = presented_token(app, req)?;
    let result = match presented.token {
        Some(token) => rotate(app, req, token).await,
        None => Err(ApiError::InvalidRefreshToken),
    };
    match result {
        Err(ApiError::InvalidRefreshToken) if presented.from_cookie => Ok(problem_clearing_cookie(
            &app.browser,
            ApiError::InvalidRefreshToken,
        )),
        other => other,
    }
}

async fn rotate<S: Store>(
    app: &App<S>,
    req: &Request,
    presented: RefreshToken,
) -> Result<Reply, ApiError> {
    let hash = presented.hash();
    for _ in 0..ROTATION_ATTEMPTS {
        let now_ms = app.clock.now_ms();
        let now = now_ms / 1000;
        let RefreshLookup {
            token,
            family,
            user,
        } = app
            .store
            .find_refresh(&hash)
            .await?
            .ok_or(ApiError::InvalidRefreshToken)?;
        // DynamoDB deletes expired items lazily, so expiry is checked here.
        if token.expires_at <= now {
            return Err(ApiError::InvalidRefreshToken);
        }
        let Some(family) = family.filter(|f| {
            !f.revoked && f.expires_at > now && !app.sessions.session_over(f.created_at_ms, now_ms)
        }) else {
            return Err(ApiError::InvalidRefreshToken);
        };
        let Some(user) = user.filter(|u| {
            u.user_id == token.user_id && u.session_epoch == family.epoch && !u.disabled
        }) else {
            return Err(ApiError::InvalidRefreshToken);
        };
        match &token.spent {
            None => {
                let successor = RefreshToken::generate();
                let record = RefreshRecord {
                    hash: successor.hash(),
                    family_id: family.family_id,
                    user_id: user.user_id,
                    email: user.email.clone(),
                    issued_at_ms: now_ms,
                    expires_at: app.sessions.token_expiry(now, family.created_at_ms),
                    spent: None,
                };
                let spent = Spent {
                    at_ms: now_ms,
                    sealed_successor: presented.seal(&successor),
                    successor_hash: record.hash,
                };
                match app
                    .store
                    .rotate_refresh(&hash, &spent, &record, family.epoch)
                    .await
                {
                    Ok(()) => {
                        return token_reply(
                            app,
                            &user,
                            &family,
                            &successor,
                            record.expires_at,
                            now,
                        );
                    }
                    // Someone else moved the token, family or user on: look again.
                    Err(StoreError::Conflict) => continue,
                    Err(err) => return Err(err.into()),
                }
            }
            Some(spent) if now_ms - spent.at_ms <= app.sessions.reuse_grace_seconds * 1000 => {
                // A retry: the same successor again, never a second one.
                let successor = presented.unseal(&spent.sealed_successor);
                if successor.hash() != spent.successor_hash {
                    return Err(ApiError::internal(
                        "a spent refresh token's sealed successor does not match its hash",
                    ));
                }
                let expires_at = app
                    .sessions
                    .token_expiry(spent.at_ms / 1000, family.created_at_ms);
                return token_reply(app, &user, &family, &successor, expires_at, now);
            }
            Some(_) => {
                // A spent token after the grace window: one of its holders is not the owner.
                app.store.revoke_family(family.family_id).await?;
                audit("refresh_reused", Some(&user.user_id.to_string()), req);
                return Err(ApiError::InvalidRefreshToken);
            }
        }
    }
    tracing::warn!("refresh lost {ROTATION_ATTEMPTS} races in a row");
    Err(ApiError::Conflict)
}

/// `POST /logout {"refresh_token"}` (or the refresh cookie) → 204; the token's family is
/// revoked and the cookie cleared. An unknown, spent or revoked token also gives 204 (RFC
/// 7009): there is nothing left to end.
pub async fn logout<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let presented = presented_token(app, req)?;
    let mut reply = revoke_presented(app, req, presented.token).await?;
    if presented.from_cookie {
        app.browser.clear_refresh_cookie(&mut reply.response);
    }
    Ok(reply)
}

async fn revoke_presented<S: Store>(
    app: &App<S>,
    req: &Request,
    presented: Option<RefreshToken>,
) -> Result<Reply, ApiError> {
    let Some(presented) = presented else {
        return Ok(Reply::no_content(None));
    };
    let found = app.store.find_refresh(&presented.hash()).await?;
    let Some(RefreshLookup {
        family: Some(family),
        ..
    }) = found
    else {
        return Ok(Reply::no_content(None));
    };
    let user_id = family.user_id.to_string();
    if !family.revoked {
        app.store.revoke_family(family.family_id).await?;
        audit("logged_out", Some(&user_id), req);
    }
    Ok(Reply::no_content(Some(user_id)))
}

/// `POST /logout-all` (protected) → 204; every session of the caller ends, and this
/// browser's refresh cookie is cleared.
pub async fn logout_all<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, email) = caller(req)?;
    let found = app.store.revoke_all_sessions(&email, user_id).await?;
    if !found {
        return Err(ApiError::UserNotFound);
    }
    let user_id = user_id.to_string();
    audit("logged_out_everywhere", Some(&user_id), req);
    let mut reply = Reply::no_content(Some(user_id));
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
pub async fn list_sessions<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let (user_id, email) = caller(req)?;
    let current = caller_session(req);
    let (user, families) = tokio::try_join!(
        app.store.find_user_by_id(user_id),
        app.store.list_sessions(user_id),
    )?;
    let user = user
        .filter(|u| u.email == email)
        .ok_or(ApiError::UserNotFound)?;
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    let now_ms = app.clock.now_ms();
    let mut live: Vec<_> = families
        .into_iter()
        .filter(|f| f.is_live(&app.sessions, user.session_epoch, now_ms))
        .collect();
    live.sort_by_key(|f| std::cmp::Reverse(f.created_at_ms));
    let sessions = live
        .into_iter()
        .map(|f| {
            let ends = f.ends_at(&app.sessions);
            Ok(SessionView {
                id: f.family_id.to_string(),
                created_at: rfc3339_ms(f.created_at_ms)?,
                last_refreshed_at: f.last_refreshed_at_ms.map(rfc3339_ms).transpose()?,
                expires_at: rfc3339_ms(ends * 1000)?,
                user_agent: f.client.user_agent,
                source_ip: f.client.source_ip,
                current: current == Some(f.family_id),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Reply::json(
        StatusCode::OK,
        &SessionList { sessions },
        Some(user_id.to_string()),
    ))
}

/// `DELETE /sessions/{id}` (protected) → 204; that session of the caller ends (its refresh
/// token stops working; its access tokens live until they expire). Someone else's session, or
/// no session at all, is the same 404: the answer tells nothing about other users.
pub async fn end_session<S: Store>(
    app: &App<S>,
    req: &Request,
    id: &str,
) -> Result<Reply, ApiError> {
    let (user_id, _) = caller(req)?;
    let family_id = Uuid::parse_str(id).map_err(|_| ApiError::SessionNotFound)?;
    let family = app
        .store
        .find_session(family_id)
        .await?
        .filter(|f| f.user_id == user_id)
        .ok_or(ApiError::SessionNotFound)?;
    app.store.revoke_family(family.family_id).await?;
    let user_id = user_id.to_string();
    audit("session_ended", Some(&user_id), req);
    let mut reply = Reply::no_content(Some(user_id));
    if caller_session(req) == Some(family_id) {
        app.browser.clear_refresh_cookie(&mut reply.response);
    }
    Ok(reply)
}
