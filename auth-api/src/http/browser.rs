//! Browsers: CORS for a list of exact origins, the refresh token in an `HttpOnly` cookie, and
//! the checks that make that cookie safe from cross-site requests (docs/browsers.md).

use http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue};
use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};

use crate::http::problem::ApiError;
use crate::http::routes::PathMatch;

/// The refresh token's cookie. `__Host-` makes browsers refuse it unless it is `Secure`, has
/// `Path=/` and no `Domain`, so no sibling subdomain can set or shadow it.
pub const REFRESH_COOKIE: &str = "__Host-refresh_token";

/// The refresh cookie's attributes, whether it is set or cleared.
const COOKIE_ATTRIBUTES: &str = "Path=/; Secure; HttpOnly; SameSite=Strict";

/// The header a cookie-authenticated request must carry: a cross-site form cannot send it,
/// and a cross-origin script can only after a preflight that the origin list decides.
pub const CSRF_HEADER: &str = "x-requested-with";

/// The request headers a listed origin may send.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, X-Requested-With";

/// Response headers a page may read beyond the CORS-safelisted ones (backoff advice).
const EXPOSED_HEADERS: &str = "Retry-After, WWW-Authenticate";

/// How long a browser may reuse a preflight answer (Chromium caps it at 2 hours).
const PREFLIGHT_MAX_AGE_SECONDS: u32 = 7200;

/// Where login, refresh and password change put the refresh token (`REFRESH_TOKEN_TRANSPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshTransport {
    /// In the JSON body, as `refresh_token` (the default).
    #[default]
    Body,
    /// In the `__Host-refresh_token` cookie only; the body never shows it.
    Cookie,
    /// Both: the cookie for browsers, the body for other clients.
    Both,
}

impl RefreshTransport {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "body" => Ok(Self::Body),
            "cookie" => Ok(Self::Cookie),
            "both" => Ok(Self::Both),
            other => Err(format!("must be body, cookie or both, got {other:?}")),
        }
    }

    /// The setting's value, as `REFRESH_TOKEN_TRANSPORT` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::Cookie => "cookie",
            Self::Both => "both",
        }
    }

    /// Whether the JSON body carries the refresh token.
    pub fn in_body(self) -> bool {
        matches!(self, Self::Body | Self::Both)
    }

    /// Whether the refresh token travels in the cookie.
    pub fn in_cookie(self) -> bool {
        matches!(self, Self::Cookie | Self::Both)
    }
}

/// Which origins may call the API from a browser (`CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// No CORS headers at all (the default): only same-origin pages can read answers.
    #[default]
    None,
    /// `*`: any origin, without credentials (refused with cookie transport).
    Any,
    /// These exact origins, each as a browser serializes it (`https://app.example.com`).
    List(Vec<String>),
}

impl AllowedOrigins {
    /// A comma-separated list of exact origins, or `*`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(Self::None);
        }
        if items == ["*"] {
            return Ok(Self::Any);
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let origin = parse_origin(item)?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Self::List(origins))
    }

    /// Whether `origin` (the request's `Origin` header) is listed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::None => false,
            Self::Any => true,
            Self::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    /// The setting's value, as `CORS_ALLOWED_ORIGINS` spells it (empty for none).
    pub fn to_setting(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::Any => "*".into(),
            Self::List(list) => list.join(","),
        }
    }
}

/// One origin as a browser sends it: `scheme://host[:port]`, lower case, without the default
/// port, path, query, fragment or user info.
fn parse_origin(raw: &str) -> Result<String, String> {
    let shown: String = raw.chars().take(100).collect();
    let bad = |why: &str| Err(format!("{shown:?} is not an origin: {why}"));
    if raw == "*" {
        return bad(
            "a wildcard cannot be one of several origins; list exact origins, or use * alone",
        );
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return bad("expected scheme://host[:port], e.g. https://app.example.com");
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return bad("the scheme must be https or http"),
    };
    if rest.is_empty() {
        return bad("the host is missing");
    }
    if rest.contains(['/', '?', '#', '@', '*']) || rest.chars().any(|c| c.is_whitespace()) {
        return bad("an origin has no path (not even a trailing /), query, user or wildcard");
    }
    let rest = rest.to_ascii_lowercase();
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest.as_str(), None),
    };
    if host.is_empty() {
        return bad("the host is missing");
    }
    match port {
        Some(port) if port.parse::<u16>().is_err() => bad("the port is not a number"),
        Some(port) if port == default_port => Ok(format!("{scheme}://{host}")),
        Some(port) => Ok(format!("{scheme}://{host}:{port}")),
        None => Ok(format!("{scheme}://{host}")),
    }
}

/// The browser-facing settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrowserSettings {
    pub allowed_origins: AllowedOrigins,
    pub transport: RefreshTransport,
}

impl BrowserSettings {
    /// Checked together: credentials (the cookie) cannot be shared with any origin.
    pub fn new(
        allowed_origins: AllowedOrigins,
        transport: RefreshTransport,
    ) -> Result<Self, String> {
        if allowed_origins == AllowedOrigins::Any && transport.in_cookie() {
            return Err(
                "* cannot be used with REFRESH_TOKEN_TRANSPORT=cookie or both: browsers never \
                 send credentials to a wildcard; list the exact origins"
                    .into(),
            );
        }
        Ok(Self {
            allowed_origins,
            transport,
        })
    }

    /// Answers a CORS preflight (`OPTIONS`) for a path's routes, without touching any state. A listed
    /// origin gets 204 (its CORS headers come from [`BrowserSettings::decorate`]); an origin
    /// that is not listed a 403 problem with no CORS headers; an `OPTIONS` that is no preflight
    /// 204 with `Allow`.
    pub fn preflight(&self, path: &PathMatch, req: &Request) -> Result<Response<Body>, ApiError> {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = http::StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        match origin(req) {
            None => {
                if let Ok(allow) = HeaderValue::from_str(&path.allow()) {
                    headers.insert(http::header::ALLOW, allow);
                }
            }
            Some(origin) if self.allowed_origins.allows(origin) => {
                if let Ok(methods) = HeaderValue::from_str(&path.methods()) {
                    headers.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, methods);
                }
                headers.insert(
                    http::header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOWED_HEADERS),
                );
                headers.insert(
                    http::header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from(PREFLIGHT_MAX_AGE_SECONDS),
                );
            }
            Some(_) => return Err(ApiError::OriginNotAllowed),
        }
        Ok(response)
    }

    /// Adds the CORS headers to any response of the API, success or problem: the request's
    /// origin with credentials when it is listed, nothing when it is not. `Vary: Origin`
    /// whenever CORS is on, so no cache hands one origin's answer to another.
    pub fn decorate(&self, req: &Request, response: &mut Response<Body>) {
        if self.allowed_origins.is_none() {
            return;
        }
        let headers = response.headers_mut();
        if self.allowed_origins != AllowedOrigins::Any {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(origin) = origin(req).filter(|o| self.allowed_origins.allows(o)) else {
            return;
        };
        let allow_origin = if self.allowed_origins == AllowedOrigins::Any {
            HeaderValue::from_static("*")
        } else {
            match HeaderValue::from_str(origin) {
                Ok(value) => value,
                Err(_) => return,
            }
        };
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.transport.in_cookie() {
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.insert(
            http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }

    /// The refresh token of the cookie, if this transport reads cookies and the request
    /// carries one. Before it is used, the request must pass [`BrowserSettings::check_csrf`].
    pub fn refresh_cookie(&self, req: &Request) -> Option<SecretString> {
        if !self.transport.in_cookie() {
            return None;
        }
        cookie(req.headers(), REFRESH_COOKIE)
    }

    /// A request authenticated by the cookie must come from a page we trust: its `Origin` is
    /// listed (or is the API's own), and it carries `X-Requested-With`, which a cross-site
    /// form cannot send. Either missing: 403, and nothing is read or changed.
    pub fn check_csrf(&self, req: &Request) -> Result<(), ApiError> {
        let trusted = origin(req).is_some_and(|o| {
            self.allowed_origins.allows(o) || own_origin(req).as_deref() == Some(o)
        });
        if !trusted {
            return Err(ApiError::OriginNotAllowed);
        }
        let has_header = req
            .headers()
            .get(HeaderName::from_static(CSRF_HEADER))
            .is_some_and(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace));
        if !has_header {
            return Err(ApiError::CsrfHeaderMissing);
        }
        Ok(())
    }

    /// Sets the refresh cookie on `reply` for `max_age_seconds`.
    pub fn set_refresh_cookie(
        &self,
        response: &mut Response<Body>,
        token: &SecretString,
        max_age_seconds: i64,
    ) {
        let value = format!(
            "{REFRESH_COOKIE}={}; Max-Age={}; {COOKIE_ATTRIBUTES}",
            token.expose_secret(),
            max_age_seconds.max(0)
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }

    /// Tells the browser to drop the refresh cookie (logout, a token that is no longer good).
    /// Nothing in body transport, where there is no cookie.
    pub fn clear_refresh_cookie(&self, response: &mut Response<Body>) {
        let value = format!("{REFRESH_COOKIE}=; Max-Age=0; {COOKIE_ATTRIBUTES}");
        if self.transport.in_cookie()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
}

/// The request's `Origin`, if it sent one (browsers send it on every CORS request and on
/// every POST).
fn origin(req: &Request) -> Option<&str> {
    req.headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty())
}

/// The API's own origin as the client reached it: a page on the same origin as the API needs
/// no listing. API Gateway sets `X-Forwarded-Proto`; the `Host` is what the browser sent.
fn own_origin(req: &Request) -> Option<String> {
    let host = req.headers().get(HOST)?.to_str().ok()?;
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    parse_origin(&format!("{scheme}://{host}")).ok()
}

/// The value of cookie `name` in the request's `Cookie` headers (none when empty).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<SecretString> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| SecretString::from(value.trim().trim_matches('"').to_owned()))
        .filter(|v| !v.expose_secret().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_as_browsers_send_them() {
        let parsed = AllowedOrigins::parse(
            " https://App.Example.com , http://127.0.0.1:3001,https://a.example:443,https://app.example.com",
        )
        .unwrap();
        assert_eq!(
            parsed,
            AllowedOrigins::List(vec![
                "https://app.example.com".into(),
                "http://127.0.0.1:3001".into(),
                "https://a.example".into(),
            ])
        );
        assert!(parsed.allows("https://app.example.com"));
        assert!(!parsed.allows("https://app.example.com.evil.example"));
        assert!(!parsed.allows("http://app.example.com"));
        assert!(!parsed.allows("null"));
        assert_eq!(AllowedOrigins::parse(" , ").unwrap(), AllowedOrigins::None);
        assert_eq!(AllowedOrigins::parse("*").unwrap(), AllowedOrigins::Any);
        assert_eq!(
            AllowedOrigins::parse("http://[::1]:8080").unwrap(),
            AllowedOrigins::List(vec!["http://[::1]:8080".into()])
        );
        for bad in [
            "https://app.example.com/",
            "https://*.example.com",
            "app.example.com",
            "ftp://app.example.com",
            "https://",
            "https://a.example:port",
            "https://a.example,*",
            "https://user@a.example",
            "null",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_wildcard_cannot_share_the_cookie() {
        assert!(BrowserSettings::new(AllowedOrigins::Any, RefreshTransport::Cookie).is_err());
        assert!(BrowserSettings::new(AllowedOrigins::Any, RefreshTransport::Both).is_err());
        assert!(BrowserSettings::new(AllowedOrigins::Any, RefreshTransport::Body).is_ok());
    }

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-refresh_tokenx=2"),
        );
        headers.append(
            COOKIE,
            HeaderValue::from_static("b=3;__Host-refresh_token=abc ; c=4"),
        );
        assert_eq!(
            cookie(&headers, REFRESH_COOKIE).map(|s| s.expose_secret().to_owned()),
            Some("abc".to_owned())
        );
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("__Host-refresh_token="));
        assert!(cookie(&empty, REFRESH_COOKIE).is_none());
    }
}
