//! The OAuth endpoints' own wire format: `application/x-www-form-urlencoded` requests, client
//! authentication (RFC 6749 §2.3.1), and errors as RFC 6749 §5.2 JSON, never problem+json.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde_json::json;

use accounts::error::Error;
use accounts::flows::oauth::ClientAuthentication;

/// Largest form body read.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// An RFC 6749 §5.2 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// Too many failed client authentications: 429 with `Retry-After`.
    SlowDown,
    /// RFC 8628 §3.5, each a 400: the user has not decided yet; the device polls too fast
    /// (`slow_down`); the user denied it; its code has expired.
    AuthorizationPending,
    PollSlowDown,
    AccessDenied,
    ExpiredToken,
    ServerError,
    TemporarilyUnavailable,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::SlowDown | Self::PollSlowDown => "slow_down",
            Self::AuthorizationPending => "authorization_pending",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// A refusal of an OAuth endpoint.
#[derive(Debug)]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
    pub retry_after_seconds: Option<u64>,
    /// The method the endpoint allows, when another was used.
    pub allow: Option<String>,
    /// The flow's fault behind a 5xx, logged once by the handler.
    pub fault: Option<Error>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)?;
        if let Some(fault) = &self.fault {
            write!(f, ": {}", shared::error_chain(fault))?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.fault
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after_seconds: None,
            allow: None,
            fault: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, description)
    }

    /// What an account flow's refusal is at the token endpoint.
    pub fn from_account(err: Error) -> Self {
        let mut out = match &err {
            Error::InvalidClient => Self::new(
                OAuthCode::InvalidClient,
                "client authentication failed: unknown client, wrong secret, or the client is \
                 disabled",
            ),
            Error::UnauthorizedClient => Self::new(
                OAuthCode::UnauthorizedClient,
                "the client may not use this grant type",
            ),
            Error::InvalidScope(why) => Self::new(OAuthCode::InvalidScope, why.clone()),
            Error::InvalidGrant(why) => Self::new(OAuthCode::InvalidGrant, *why),
            Error::AuthorizationPending => Self::new(
                OAuthCode::AuthorizationPending,
                "the user has not yet allowed or denied this device",
            ),
            Error::SlowDown { interval_seconds } => Self::new(
                OAuthCode::PollSlowDown,
                format!("polled too soon: wait {interval_seconds} seconds between polls"),
            ),
            Error::DeviceDenied => {
                Self::new(OAuthCode::AccessDenied, "the user denied this device")
            }
            Error::DeviceCodeExpired => Self::new(
                OAuthCode::ExpiredToken,
                "the device code has expired: start again",
            ),
            Error::TooManyClientAttempts {
                retry_after_seconds,
            } => {
                let mut e = Self::new(
                    OAuthCode::SlowDown,
                    "too many failed client authentications: try again later",
                );
                e.retry_after_seconds = Some(*retry_after_seconds);
                e
            }
            Error::StoreUnavailable(_) | Error::Conflict => {
                let mut e = Self::new(
                    OAuthCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable: try again shortly",
                );
                e.retry_after_seconds = Some(1);
                e
            }
            _ => Self::new(OAuthCode::ServerError, "the request could not be completed"),
        };
        if err.is_fault() {
            out.fault = Some(err);
        }
        out
    }

    pub fn status(&self) -> StatusCode {
        match self.code {
            _ if self.allow.is_some() => StatusCode::METHOD_NOT_ALLOWED,
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn is_fault(&self) -> bool {
        self.fault.is_some()
    }

    pub fn into_response(self) -> Response<Body> {
        let body = json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        let mut response = Response::new(Body::Text(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if self.code == OAuthCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the scheme the client may use.
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth2\", charset=\"UTF-8\""),
            );
        }
        if let Some(seconds) = self.retry_after_seconds
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(RETRY_AFTER, value);
        }
        if let Some(allow) = self.allow.as_deref()
            && let Ok(value) = HeaderValue::from_str(allow)
        {
            headers.insert(http::header::ALLOW, value);
        }
        response
    }
}

/// A form body: each parameter once (RFC 6749 §3.2: "parameters MUST NOT be included more
/// than once"), an empty value read as absent (§3.1).
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>);

impl Form {
    /// The form of `req`: `application/x-www-form-urlencoded` (charset UTF-8 if named), at
    /// most [`MAX_FORM_BYTES`].
    pub fn from_request(req: &Request) -> Result<Self, OAuthError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut parts = content_type.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let charset_ok = parts.all(|p| match p.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                let value = value.trim().trim_matches('"');
                value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        });
        if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") || !charset_ok {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded (UTF-8)",
            ));
        }
        let bytes: &[u8] = match req.body() {
            Body::Empty => b"",
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => b"",
        };
        if bytes.len() > MAX_FORM_BYTES {
            return Err(OAuthError::invalid_request(format!(
                "the body is larger than {MAX_FORM_BYTES} bytes"
            )));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        Self::parse(text)
    }

    /// Parses `name=value&…`, `+` as a space and `%XX` decoded to UTF-8.
    pub fn parse(text: &str) -> Result<Self, OAuthError> {
        let mut fields = HashMap::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)
                .ok_or_else(|| OAuthError::invalid_request("a parameter name is not UTF-8"))?;
            let value = decode(value).ok_or_else(|| {
                OAuthError::invalid_request(format!("parameter {name} is not UTF-8"))
            })?;
            if fields.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is given more than once"
                )));
            }
            fields.insert(name, value);
        }
        Ok(Self(fields))
    }

    /// The parameter's value; an empty one is absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The parameter, or `invalid_request` naming it.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter {name} is missing")))
    }

    /// Every parameter with a value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// `+` and `%XX`, as `application/x-www-form-urlencoded` writes them; `None` if the bytes are
/// not UTF-8.
fn decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The client's credentials, from `Authorization: Basic` (`client_secret_basic`, id and
/// secret each form-encoded first, RFC 6749 §2.3.1) or the form (`client_secret_post`); using
/// both, or neither, is `invalid_request`/`invalid_client`.
pub fn client_authentication(
    req: &Request,
    form: &Form,
) -> Result<ClientAuthentication, OAuthError> {
    let header = req.headers().get(AUTHORIZATION);
    let in_form = form.contains("client_secret");
    match header {
        Some(value) => {
            let fail = |why: &str| OAuthError::new(OAuthCode::InvalidClient, why.to_owned());
            if in_form {
                return Err(OAuthError::invalid_request(
                    "the client authenticated twice: use the Authorization header or \
                     client_secret in the body, not both",
                ));
            }
            let value = value
                .to_str()
                .map_err(|_| fail("the Authorization header is not ASCII"))?;
            let (scheme, encoded) = value
                .trim()
                .split_once(' ')
                .ok_or_else(|| fail("the Authorization header is not Basic credentials"))?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(fail("client authentication uses the Basic scheme"));
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| fail("the Basic credentials are not base64 of UTF-8"))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| fail("the Basic credentials are not client_id:client_secret"))?;
            let id = decode(id).ok_or_else(|| fail("the client_id is not form-encoded UTF-8"))?;
            let secret =
                decode(secret).ok_or_else(|| fail("the secret is not form-encoded UTF-8"))?;
            if let Some(named) = form.get("client_id")
                && named != id
            {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the one in the Authorization header",
                ));
            }
            Ok(ClientAuthentication {
                client_id: id,
                secret: SecretString::from(secret),
            })
        }
        None => {
            let id = form.get("client_id");
            let secret = form.get("client_secret");
            match (id, secret) {
                (Some(id), Some(secret)) => Ok(ClientAuthentication {
                    client_id: id.to_owned(),
                    secret: SecretString::from(secret.to_owned()),
                }),
                _ => Err(OAuthError::new(
                    OAuthCode::InvalidClient,
                    "client authentication is required: HTTP Basic (client_secret_basic) or \
                     client_id and client_secret in the body (client_secret_post)",
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_refuse_repeats() {
        let form = Form::parse("a=1+2&b=%C3%A9&c=&scope=x%20y").unwrap();
        assert_eq!(form.get("a"), Some("1 2"));
        assert_eq!(form.get("b"), Some("é"));
        assert_eq!(form.get("c"), None);
        assert!(form.contains("c"));
        assert_eq!(form.get("scope"), Some("x y"));
        assert!(Form::parse("a=1&a=2").is_err());
        assert!(Form::parse("a=%FF").is_err());
        assert!(Form::parse("").unwrap().get("a").is_none());
    }
}
