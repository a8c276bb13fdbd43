//! The hosted pages' plumbing: server-rendered HTML that works without JavaScript, the
//! branding, the strict headers every page carries, the CSRF cookie and token of every form,
//! and the single sign-on cookie.
//!
//! CSRF: a random token in the `__Host-csrf` cookie (`SameSite=Strict`, `HttpOnly`) is
//! repeated in a hidden input of each form; a POST whose two differ is refused. A page on
//! another site can neither read the cookie nor make the browser send it, which also stops
//! login CSRF (signing a victim in to the attacker's account).

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use accounts::flows::authorize::ClientRedirect;
use accounts::model::token::OpaqueToken;
use shared::config::{self, ConfigError, Env};

use crate::http::browser::cookie;
use crate::http::reply::Reply;

/// The browser's single sign-on session.
pub const SSO_COOKIE: &str = "__Host-sso";
/// The CSRF token's cookie.
pub const CSRF_COOKIE: &str = "__Host-csrf";
/// The hidden input that repeats it.
pub const CSRF_FIELD: &str = "csrf";

/// How long a CSRF cookie lives (a sign-in's pages are done long before).
const CSRF_MAX_AGE_SECONDS: u32 = 2 * 60 * 60;

/// Product name, colour and logo of the hosted pages (`BRAND_NAME`, `BRAND_COLOR`,
/// `BRAND_LOGO_URL`).
#[derive(Debug, Clone)]
pub struct Branding {
    pub name: String,
    /// A CSS colour as `#rgb` or `#rrggbb`.
    pub color: String,
    /// An `https:` image URL.
    pub logo_url: Option<String>,
    /// The stylesheet, and its CSP hash (the pages allow only this inline style).
    style: String,
    style_hash: String,
}

impl Default for Branding {
    fn default() -> Self {
        Self::new("Sign in".into(), "#2f5bea".into(), None)
    }
}

impl Branding {
    pub fn new(name: String, color: String, logo_url: Option<String>) -> Self {
        let style = format!(
            "body{{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 \
             1rem;color:#1d1d1f}}h1{{font-size:1.4rem}}label{{display:block;margin:.8rem 0 \
             .2rem}}input[type=email],input[type=password],input[type=text]{{width:100%;\
             padding:.5rem;box-sizing:border-box;font-size:1rem}}button{{margin-top:1rem;\
             padding:.55rem 1.2rem;font-size:1rem;border:0;border-radius:4px;background:{color};\
             color:#fff;cursor:pointer}}button.secondary{{background:#6b7280}}.error{{color:\
             #b00020;font-weight:600}}.logo{{max-height:48px}}ul{{padding-left:1.2rem}}nav \
             a{{margin-right:1rem}}"
        );
        let style_hash = STANDARD.encode(Sha256::digest(style.as_bytes()));
        Self {
            name,
            color,
            logo_url,
            style,
            style_hash,
        }
    }

    /// The branding of the environment; each variable optional.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let name = config::optional(env, "BRAND_NAME").unwrap_or_else(|| "Sign in".into());
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "BRAND_NAME",
                "must be at most 100 characters, none a control character",
            ));
        }
        let color = config::optional(env, "BRAND_COLOR").unwrap_or_else(|| "#2f5bea".into());
        let hex = color.strip_prefix('#').unwrap_or("");
        if !matches!(hex.len(), 3 | 6) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::new(
                "BRAND_COLOR",
                "must be a colour as #rgb or #rrggbb",
            ));
        }
        let logo_url = config::optional(env, "BRAND_LOGO_URL");
        if let Some(url) = &logo_url {
            let ok = url.starts_with("https://")
                && url.len() <= 2000
                && !url
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b"\"'<>;".contains(&b));
            if !ok {
                return Err(ConfigError::new(
                    "BRAND_LOGO_URL",
                    "must be an https:// URL without spaces, quotes, <, > or ;",
                ));
            }
        }
        Ok(Self::new(name, color, logo_url))
    }

    /// The page's CSP: nothing but this stylesheet and the logo, no framing, forms only to
    /// this origin and, after a form, redirects only to `redirect_origin`. No script at all,
    /// but on the pages that offer passkeys: then this origin's `passkey.js`, which may call
    /// this origin only.
    fn csp(&self, redirect_origin: Option<&str>, script: bool) -> String {
        let img = match self.logo_url.as_deref().and_then(origin_of) {
            Some(origin) => origin,
            None => "'none'".into(),
        };
        let forms = match redirect_origin {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".into(),
        };
        let script = match script {
            true => "; script-src 'self'; connect-src 'self'",
            false => "",
        };
        format!(
            "default-src 'none'; style-src 'sha256-{}'; img-src {img}; form-action {forms}; \
             frame-ancestors 'none'; base-uri 'none'{script}",
            self.style_hash
        )
    }
}

/// `scheme://host[:port]` of an absolute URI (or `scheme:` of a private-use one).
pub fn origin_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let Some(authority) = rest.strip_prefix("//") else {
        return Some(format!("{scheme}:"));
    };
    let end = authority.find(['/', '?', '#']).unwrap_or(authority.len());
    let authority = &authority[..end];
    let safe = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    safe.then(|| format!("{scheme}://{authority}"))
}

/// Text made safe for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page being written: title, body parts, and what it needs from the request.
pub struct Page<'a> {
    branding: &'a Branding,
    title: String,
    body: String,
    status: StatusCode,
    /// The CSRF token the page's forms carry, set as a cookie if the request had none.
    csrf: Option<(SecretString, bool)>,
    redirect_origin: Option<String>,
    cookies: Vec<String>,
    /// Whether the page loads `passkey.js`.
    script: bool,
    /// The next form offers passkeys (for a second step: `true`).
    passkey: Option<bool>,
}

impl<'a> Page<'a> {
    pub fn new(branding: &'a Branding, title: impl Into<String>) -> Self {
        Self {
            branding,
            title: title.into(),
            body: String::new(),
            status: StatusCode::OK,
            csrf: None,
            redirect_origin: None,
            cookies: Vec::new(),
            script: false,
            passkey: None,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The request's CSRF token (a new one if it has none), for the page's forms.
    pub fn with_csrf(mut self, req: &Request) -> Self {
        self.csrf = Some(
            match cookie(req.headers(), CSRF_COOKIE).filter(well_formed) {
                Some(token) => (token, false),
                None => (new_token(), true),
            },
        );
        self
    }

    /// Where the page's forms may end up after their POST (the client's redirect URI).
    pub fn redirects_to(mut self, redirect_uri: &str) -> Self {
        self.redirect_origin = origin_of(redirect_uri);
        self
    }

    pub fn set_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }

    pub fn heading(mut self, text: &str) -> Self {
        let _ = write!(self.body, "<h1>{}</h1>", escape(text));
        self
    }

    pub fn paragraph(mut self, text: &str) -> Self {
        let _ = write!(self.body, "<p>{}</p>", escape(text));
        self
    }

    pub fn error(mut self, text: &str) -> Self {
        let _ = write!(
            self.body,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(text)
        );
        self
    }

    pub fn list(mut self, items: &[String]) -> Self {
        self.body.push_str("<ul>");
        for item in items {
            let _ = write!(self.body, "<li>{}</li>", escape(item));
        }
        self.body.push_str("</ul>");
        self
    }

    /// A link, `href` relative to the page (always one of ours).
    pub fn link(mut self, href: &str, text: &str) -> Self {
        let _ = write!(
            self.body,
            "<p><a href=\"{}\">{}</a></p>",
            escape(href),
            escape(text)
        );
        self
    }

    /// A POST form to `action` (relative), its hidden inputs, its fields, its buttons.
    pub fn form(
        mut self,
        action: &str,
        hidden: &[(&str, &str)],
        fields: &[Field],
        buttons: &[Button],
    ) -> Self {
        let passkey = self.passkey.take();
        let _ = write!(
            self.body,
            "<form method=\"post\" action=\"{}\"{}>",
            escape(action),
            match passkey {
                Some(true) => " id=\"passkey-form\" data-mode=\"second-factor\"",
                Some(false) => " id=\"passkey-form\" data-mode=\"sign-in\"",
                None => "",
            }
        );
        if let Some((token, _)) = &self.csrf {
            let _ = write!(
                self.body,
                "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
                escape(token.expose_secret())
            );
        }
        let passkey_inputs: &[(&str, &str)] = match passkey {
            Some(_) => &[("passkey_challenge_id", ""), ("passkey_credential", "")],
            None => &[],
        };
        for (name, value) in hidden.iter().chain(passkey_inputs) {
            let _ = write!(
                self.body,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            );
        }
        for field in fields {
            let _ = write!(
                self.body,
                "<label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" \
                 type=\"{kind}\" autocomplete=\"{auto}\" value=\"{value}\"{extra} required>",
                name = escape(field.name),
                label = escape(field.label),
                kind = field.kind,
                auto = field.autocomplete,
                value = escape(field.value),
                extra = field.extra,
            );
        }
        for button in buttons {
            let _ = write!(
                self.body,
                "<button type=\"submit\"{name}{class}>{text}</button> ",
                name = match button.name {
                    Some((name, value)) =>
                        format!(" name=\"{}\" value=\"{}\"", escape(name), escape(value)),
                    None => String::new(),
                },
                class = if button.secondary {
                    " class=\"secondary\""
                } else {
                    ""
                },
                text = escape(button.text),
            );
        }
        if let Some(second_factor) = passkey {
            let _ = write!(
                self.body,
                "<button type=\"button\" id=\"passkey-button\" class=\"secondary\" hidden>{}\
                 </button><p id=\"passkey-status\" class=\"error\" role=\"status\"></p>",
                if second_factor {
                    "Use a passkey"
                } else {
                    "Sign in with a passkey"
                }
            );
        }
        self.body.push_str("</form>");
        self
    }

    /// Offers passkeys in the next form: a button (hidden until `passkey.js` finds WebAuthn
    /// in the browser) that fills the form's `passkey_challenge_id` and `passkey_credential`
    /// with the browser's answer and submits it; `second_factor` for the second step of a
    /// sign-in, else a sign-in of its own (with browser autofill).
    pub fn offer_passkey(mut self, second_factor: bool) -> Self {
        self.script = true;
        self.passkey = Some(second_factor);
        self
    }

    pub fn render(self) -> Reply {
        let logo = match &self.branding.logo_url {
            Some(url) => format!(
                "<img class=\"logo\" src=\"{}\" alt=\"{}\">",
                escape(url),
                escape(&self.branding.name)
            ),
            None => String::new(),
        };
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta \
             name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta \
             name=\"referrer\" content=\"no-referrer\"><title>{title} · {brand}</title><style>{style}\
             </style>{script}</head><body><main>{logo}<p>{brand}</p>{body}</main></body></html>",
            title = escape(&self.title),
            brand = escape(&self.branding.name),
            style = self.branding.style,
            script = if self.script {
                "<script src=\"passkey.js\" defer></script>"
            } else {
                ""
            },
            body = self.body,
        );
        let mut response = Response::new(Body::Text(html));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure_headers(
            headers,
            &self
                .branding
                .csp(self.redirect_origin.as_deref(), self.script),
        );
        if let Some((token, true)) = &self.csrf {
            append_cookie(
                headers,
                &format!(
                    "{CSRF_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={CSRF_MAX_AGE_SECONDS}",
                    token.expose_secret()
                ),
            );
        }
        for cookie in &self.cookies {
            append_cookie(headers, cookie);
        }
        Reply {
            response,
            user_id: None,
        }
    }
}

/// `GET /oauth2/passkey.js`: the hosted pages' one script. Cached a day by browsers (a
/// deployment changes it rarely; a stale copy still speaks to the same routes).
pub fn passkey_script() -> Reply {
    let mut response = Response::new(Body::Text(
        include_str!("../../assets/passkey.js").to_owned(),
    ));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    Reply {
        response,
        user_id: None,
    }
}

/// An input of a form.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    /// `email`, `password` or `text`.
    pub kind: &'static str,
    pub autocomplete: &'static str,
    pub value: &'a str,
    /// Extra attributes (e.g. ` inputmode="numeric"`), fixed strings only.
    pub extra: &'static str,
}

/// A submit button; `name` and `value` when the form must tell buttons apart.
pub struct Button<'a> {
    pub text: &'a str,
    pub name: Option<(&'a str, &'a str)>,
    pub secondary: bool,
}

/// Headers every page and every redirect from a page carries.
fn secure_headers(headers: &mut HeaderMap, csp: &str) {
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers.insert("content-security-policy", value);
    }
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn append_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(SET_COOKIE, value);
    }
}

/// 303 to `location`, relative (one of our pages) or a client's checked redirect URI, with
/// the pages' headers and `cookies`.
pub fn see_other(location: &str, cookies: &[String]) -> Reply {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    secure_headers(headers, "default-src 'none'; frame-ancestors 'none'");
    for cookie in cookies {
        append_cookie(headers, cookie);
    }
    Reply {
        response,
        user_id: None,
    }
}

/// The URL a client is sent back to: its redirect URI with the parameters added to its query.
pub fn client_location(redirect: &ClientRedirect) -> String {
    let mut url = redirect.redirect_uri.clone();
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for (name, value) in &redirect.params {
        url.push(separator);
        url.push_str(name);
        url.push('=');
        url.push_str(&query_encode(value));
        separator = '&';
    }
    url
}

/// A query string of `pairs`, each value percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", query_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Everything but unreserved characters (RFC 3986 §2.3) is encoded.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Whether a form's CSRF token matches the request's CSRF cookie.
pub fn csrf_ok(req: &Request, sent: Option<&str>) -> bool {
    let Some(cookie) = cookie(req.headers(), CSRF_COOKIE).filter(well_formed) else {
        return false;
    };
    let Some(sent) = sent else {
        return false;
    };
    cookie
        .expose_secret()
        .as_bytes()
        .ct_eq(sent.as_bytes())
        .into()
}

/// The SSO cookie's value, if the request carries one.
pub fn sso_cookie(req: &Request) -> Option<SecretString> {
    cookie(req.headers(), SSO_COOKIE)
}

/// Sets the SSO cookie to `token` for `max_age_seconds`.
pub fn set_sso_cookie(token: &SecretString, max_age_seconds: i64) -> String {
    format!(
        "{SSO_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        token.expose_secret(),
        max_age_seconds.max(0)
    )
}

/// Clears the SSO cookie.
pub fn clear_sso_cookie() -> String {
    format!("{SSO_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// A CSRF token: the same 256-bit opaque token as every other single-use secret here.
fn new_token() -> SecretString {
    OpaqueToken::generate().encode()
}

fn well_formed(token: &SecretString) -> bool {
    OpaqueToken::parse(token.expose_secret()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_everywhere_it_is_written() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn client_locations_keep_the_registered_query_and_encode_values() {
        let redirect = ClientRedirect {
            redirect_uri: "https://app.example/cb?x=1".into(),
            params: vec![("code", "a b".into()), ("state", "&evil=1".into())],
        };
        assert_eq!(
            client_location(&redirect),
            "https://app.example/cb?x=1&code=a%20b&state=%26evil%3D1"
        );
    }

    #[test]
    fn origins_of_redirect_uris() {
        assert_eq!(
            origin_of("https://app.example:8443/cb?x").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            origin_of("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(origin_of("https://a b/").as_deref(), None);
    }
}
