//! OAuth 2.1's token endpoint (`POST /oauth2/token`: grants `client_credentials`,
//! `authorization_code` with PKCE, `refresh_token`, and RFC 8628's device code), the device
//! authorization endpoint, OpenID Connect's userinfo, revocation (RFC 7009) and
//! introspection (RFC 7662).

use accounts::flows::authorize::OidcTokens;
use accounts::flows::oauth::ClientToken;
use accounts::flows::tokens::Introspection;
use accounts::model::client::Client;
use accounts::model::oidc::{SCOPE_EMAIL, SCOPE_OPENID};
use accounts::model::registry::ClientRecord;
use accounts::store::Store;
use http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use lambda_http::Request;
use secrecy::ExposeSecret;
use serde_json::json;
use shared::AccessClaims;

use crate::app::App;
use crate::http::oauth::{Form, OAuthCode, OAuthError, client_authentication};
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

pub async fn token<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let form = Form::from_request(req)?;
    let grant = form.required("grant_type")?;
    match grant {
        "client_credentials" => {
            let auth = client_authentication(req, &form)?;
            let issued = app
                .accounts
                .client_credentials(&auth, form.get("scope"), client)
                .await
                .map_err(OAuthError::from_account)?;
            Ok(token_reply(&issued))
        }
        "authorization_code" => {
            let registered = grant_client(app, req, &form, client).await?;
            let tokens = app
                .accounts
                .exchange_code(
                    &registered,
                    form.required("code")?,
                    form.get("redirect_uri"),
                    form.get("code_verifier"),
                    client,
                )
                .await
                .map_err(OAuthError::from_account)?;
            Ok(oidc_token_reply(&tokens))
        }
        "refresh_token" => {
            let registered = grant_client(app, req, &form, client).await?;
            let tokens = app
                .accounts
                .refresh_for_client(
                    &registered,
                    form.required("refresh_token")?,
                    form.get("scope"),
                    client,
                )
                .await
                .map_err(OAuthError::from_account)?;
            Ok(oidc_token_reply(&tokens))
        }
        DEVICE_CODE_GRANT => {
            let registered = grant_client(app, req, &form, client).await?;
            let tokens = app
                .accounts
                .poll_device(&registered, form.required("device_code")?, client)
                .await
                .map_err(OAuthError::from_account)?;
            Ok(oidc_token_reply(&tokens))
        }
        other => Err(OAuthError::new(
            OAuthCode::UnsupportedGrantType,
            format!(
                "grant_type {other:?} is not supported here; use authorization_code, \
                 refresh_token, client_credentials or {DEVICE_CODE_GRANT}"
            ),
        )
        .into()),
    }
}

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1): a public client by its `client_id`,
/// a confidential one by its secret, with `scope`; → the device code, the user code and
/// where the user enters it.
pub async fn device_authorization<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let form = Form::from_request(req)?;
    let registered = grant_client(app, req, &form, client).await?;
    let issued = app
        .accounts
        .device_authorization(&registered, form.get("scope"), client)
        .await
        .map_err(OAuthError::from_account)?;
    let verification_uri = format!("{}/oauth2/device", app.accounts.issuer.settings().issuer);
    let user_code = issued.user_code.display();
    let body = json!({
        "device_code": issued.device_code.encode().expose_secret(),
        "user_code": user_code,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "verification_uri": verification_uri,
        "expires_in": issued.expires_in,
        "interval": issued.interval,
    });
    let mut reply = Reply::json(StatusCode::OK, &body, None);
    let headers = reply.response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(reply)
}

/// RFC 6749 §5.1: the token, never cached.
fn token_reply(issued: &ClientToken) -> Reply {
    let body = json!({
        "access_token": issued.access.token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": issued.access.expires_in,
        "scope": issued.scope,
    });
    let mut reply = Reply::json(StatusCode::OK, &body, None);
    let headers = reply.response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    reply
}

/// The client of a code or refresh grant (or of revocation): a confidential client by its
/// secret, a public client by its `client_id` alone.
async fn grant_client<S: Store>(
    app: &App<S>,
    req: &Request,
    form: &Form,
    client: &Client,
) -> Result<ClientRecord, OAuthError> {
    let authenticates = req.headers().contains_key(AUTHORIZATION) || form.contains("client_secret");
    let auth = match authenticates {
        true => Some(client_authentication(req, form)?),
        false => None,
    };
    app.accounts
        .authenticate_any_client(form.get("client_id"), auth.as_ref(), client)
        .await
        .map_err(OAuthError::from_account)
}

/// RFC 6749 §5.1 with OpenID Connect's `id_token`, never cached.
fn oidc_token_reply(tokens: &OidcTokens) -> Reply {
    let mut body = json!({
        "access_token": tokens.access.token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": tokens.access.expires_in,
        "scope": tokens.scope,
    });
    if let Some(refresh) = &tokens.refresh {
        body["refresh_token"] = json!(refresh.encode().expose_secret());
    }
    if let Some(id_token) = &tokens.id_token {
        body["id_token"] = json!(id_token.expose_secret());
    }
    let mut reply = Reply::json(StatusCode::OK, &body, Some(tokens.user_id.to_string()));
    let headers = reply.response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    reply
}

/// A verified access token from `Authorization: Bearer`, or, on a POST without that header,
/// the form's `access_token` (RFC 6750 §2.2); using both is `invalid_request`.
fn bearer_claims<S>(app: &App<S>, req: &Request) -> Result<AccessClaims, Box<Reply>> {
    let header = req.headers().get(AUTHORIZATION);
    let in_form = match (req.method() == http::Method::POST, req.body().is_empty()) {
        (true, false) => Some(Form::from_request(req).map_err(|e| Box::new(oauth_reply(e)))?),
        _ => None,
    };
    let from_form = in_form.as_ref().and_then(|f| f.get("access_token"));
    let token = match (header, from_form) {
        (Some(_), Some(_)) => {
            return Err(Box::new(oauth_reply(OAuthError::invalid_request(
                "the access token is sent twice",
            ))));
        }
        (Some(value), None) => value.to_str().ok().and_then(shared::bearer_token),
        (None, from_form) => from_form,
    };
    let Some(token) = token else {
        return Err(Box::new(bearer_refusal(StatusCode::UNAUTHORIZED, None)));
    };
    app.verifier
        .verify_at(token, app.accounts.clock.now_ms() / 1000)
        .map_err(|_| {
            Box::new(bearer_refusal(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
            ))
        })
}

fn oauth_reply(err: OAuthError) -> Reply {
    Reply {
        response: err.into_response(),
        user_id: None,
    }
}

fn bearer_refusal(status: StatusCode, error: Option<&'static str>) -> Reply {
    let (challenge, body) = match error {
        Some(error) => (
            format!("Bearer error=\"{error}\""),
            json!({ "error": error, "error_description": "the access token is not valid" }),
        ),
        None => (
            "Bearer".to_owned(),
            json!({ "error": "invalid_request", "error_description": "an access token is required" }),
        ),
    };
    let mut reply = Reply::json(status, &body, None);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        reply.response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    reply
}

/// `GET`/`POST /oauth2/userinfo` (OpenID Connect Core §5.3): the user of an access token
/// with scope `openid`, as they are now.
pub async fn userinfo<S: Store>(app: &App<S>, req: &Request) -> Result<Reply, ApiError> {
    let claims = match bearer_claims(app, req) {
        Ok(claims) => claims,
        Err(reply) => return Ok(*reply),
    };
    if !claims.scopes().any(|s| s == SCOPE_OPENID) {
        let mut reply = Reply::json(
            StatusCode::FORBIDDEN,
            &json!({ "error": "insufficient_scope", "error_description": "the token lacks scope openid" }),
            None,
        );
        reply.response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
        );
        return Ok(reply);
    }
    let Some(user) = app
        .accounts
        .userinfo(&claims)
        .await
        .map_err(OAuthError::from_account)?
    else {
        return Ok(bearer_refusal(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
        ));
    };
    let mut body = json!({ "sub": user.user_id.to_string() });
    if claims.scopes().any(|s| s == SCOPE_EMAIL) {
        body["email"] = json!(user.email.as_str());
        body["email_verified"] = json!(user.email_verified);
    }
    Ok(Reply::json(
        StatusCode::OK,
        &body,
        Some(user.user_id.to_string()),
    ))
}

/// `POST /oauth2/revoke` (RFC 7009): `token` (and `token_type_hint`, not needed), by the
/// client it was issued to. 200 whether or not there was anything to revoke.
pub async fn revoke<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let form = Form::from_request(req)?;
    let registered = grant_client(app, req, &form, client).await?;
    let token = form.required("token")?;
    let access = app
        .verifier
        .verify_at(token, app.accounts.clock.now_ms() / 1000)
        .ok();
    app.accounts
        .revoke_token(&registered, token, access.as_ref())
        .await
        .map_err(OAuthError::from_account)?;
    let mut reply = Reply::json(StatusCode::OK, &json!({}), None);
    reply
        .response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(reply)
}

/// `POST /oauth2/introspect` (RFC 7662), for confidential clients: whether `token` is active,
/// and what it is.
pub async fn introspect<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let form = Form::from_request(req)?;
    let auth = client_authentication(req, &form)?;
    let registered = app
        .accounts
        .authenticate_client(&auth, client)
        .await
        .map_err(OAuthError::from_account)?;
    let token = form.required("token")?;
    let access = app
        .verifier
        .verify_at(token, app.accounts.clock.now_ms() / 1000)
        .ok();
    let found = app
        .accounts
        .introspect(&registered, token, access)
        .await
        .map_err(OAuthError::from_account)?;
    let body = match found {
        Introspection::Inactive => json!({ "active": false }),
        Introspection::Access(claims) => {
            let mut body = json!({
                "active": true,
                "token_type": "Bearer",
                "sub": claims.sub,
                "client_id": claims.client_id,
                "scope": claims.scope,
                "exp": claims.exp,
                "iat": claims.iat,
                "nbf": claims.nbf,
                "iss": claims.iss,
                "aud": claims.aud,
                "jti": claims.jti,
            });
            if !claims.email.is_empty() {
                body["username"] = json!(claims.email);
            }
            body
        }
        Introspection::Refresh {
            user_id,
            client_id,
            scope,
            expires_at,
            issued_at,
        } => json!({
            "active": true,
            "token_type": "refresh_token",
            "sub": user_id.to_string(),
            "client_id": client_id,
            "scope": scope,
            "exp": expires_at,
            "iat": issued_at,
            "iss": app.accounts.issuer.settings().issuer,
        }),
    };
    Ok(Reply::json(StatusCode::OK, &body, None))
}
