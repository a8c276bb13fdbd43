//! The route table: every route of the API with its method, path, name, and whether the
//! authorizer stands in front of it, in one place. template.yaml and openapi.yaml list the
//! same routes (tests compare them).

/// A route of this API: one method on one path (which may hold a `{parameter}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    Verify,
    Health,
    Me,
    DeleteAccount,
    Jwks,
    Discovery,
    Refresh,
    Logout,
    LogoutAll,
    Password,
    EmailVerify,
    EmailVerifyResend,
    PasswordForgot,
    PasswordReset,
    Sessions,
    EndSession,
    LoginMfa,
    MfaEnroll,
    MfaConfirm,
    MfaDisable,
    MfaRecoveryCodes,
    OAuthToken,
    OAuthAuthorize,
    OAuthLoginPage,
    OAuthLogin,
    OAuthConsent,
    OAuthRegisterPage,
    OAuthRegister,
    OAuthForgotPage,
    OAuthForgot,
    OAuthLogoutPage,
    OAuthLogout,
    OAuthUserinfo,
    OAuthUserinfoPost,
    OAuthRevoke,
    OAuthIntrospect,
    OAuthAuthorizePost,
    Consents,
    RevokeConsent,
    PasskeyRegisterOptions,
    PasskeyRegister,
    PasskeyLoginOptions,
    PasskeyLogin,
    Passkeys,
    RenamePasskey,
    DeletePasskey,
    LoginMfaPasskeyOptions,
    OAuthPasskeyScript,
    OAuthDeviceAuthorization,
    OAuthDevicePage,
    OAuthDevice,
    OAuthFederate,
    OAuthCallback,
    OAuthCallbackPost,
    FederationExchange,
    Identities,
    UnlinkIdentity,
    LinkIdentity,
}

/// What the table says of a route.
struct Entry {
    route: Route,
    method: &'static str,
    /// As template.yaml and openapi.yaml write it.
    path: &'static str,
    /// A stable name for logs and metrics.
    name: &'static str,
    /// Whether API Gateway must put the authorizer in front of it: these routes act for the
    /// caller the authorizer names.
    protected: bool,
}

const fn entry(
    route: Route,
    method: &'static str,
    path: &'static str,
    name: &'static str,
    protected: bool,
) -> Entry {
    Entry {
        route,
        method,
        path,
        name,
        protected,
    }
}

/// The table, in the order of [`Route`]'s variants.
const TABLE: [Entry; 60] = [
    entry(Route::Register, "POST", "/register", "register", false),
    entry(Route::Login, "POST", "/login", "login", false),
    entry(Route::Verify, "GET", "/verify", "verify", false),
    entry(Route::Health, "GET", "/health", "health", false),
    entry(Route::Me, "GET", "/me", "me", true),
    entry(
        Route::DeleteAccount,
        "DELETE",
        "/me",
        "delete_account",
        true,
    ),
    entry(Route::Jwks, "GET", "/.well-known/jwks.json", "jwks", false),
    entry(
        Route::Discovery,
        "GET",
        "/.well-known/openid-configuration",
        "discovery",
        false,
    ),
    entry(Route::Refresh, "POST", "/refresh", "refresh", false),
    entry(Route::Logout, "POST", "/logout", "logout", false),
    entry(Route::LogoutAll, "POST", "/logout-all", "logout_all", true),
    entry(Route::Password, "POST", "/password", "password", true),
    entry(
        Route::EmailVerify,
        "POST",
        "/email/verify",
        "email_verify",
        false,
    ),
    entry(
        Route::EmailVerifyResend,
        "POST",
        "/email/verify/resend",
        "email_verify_resend",
        false,
    ),
    entry(
        Route::PasswordForgot,
        "POST",
        "/password/forgot",
        "password_forgot",
        false,
    ),
    entry(
        Route::PasswordReset,
        "POST",
        "/password/reset",
        "password_reset",
        false,
    ),
    entry(Route::Sessions, "GET", "/sessions", "sessions", true),
    entry(
        Route::EndSession,
        "DELETE",
        "/sessions/{id}",
        "end_session",
        true,
    ),
    entry(Route::LoginMfa, "POST", "/login/mfa", "login_mfa", false),
    entry(
        Route::MfaEnroll,
        "POST",
        "/mfa/totp/enroll",
        "mfa_enroll",
        true,
    ),
    entry(
        Route::MfaConfirm,
        "POST",
        "/mfa/totp/confirm",
        "mfa_confirm",
        true,
    ),
    entry(
        Route::MfaDisable,
        "POST",
        "/mfa/totp/disable",
        "mfa_disable",
        true,
    ),
    entry(
        Route::MfaRecoveryCodes,
        "POST",
        "/mfa/recovery-codes",
        "mfa_recovery_codes",
        true,
    ),
    entry(
        Route::OAuthToken,
        "POST",
        "/oauth2/token",
        "oauth_token",
        false,
    ),
    entry(
        Route::OAuthAuthorize,
        "GET",
        "/oauth2/authorize",
        "oauth_authorize",
        false,
    ),
    entry(
        Route::OAuthLoginPage,
        "GET",
        "/oauth2/login",
        "oauth_login_page",
        false,
    ),
    entry(
        Route::OAuthLogin,
        "POST",
        "/oauth2/login",
        "oauth_login",
        false,
    ),
    entry(
        Route::OAuthConsent,
        "POST",
        "/oauth2/consent",
        "oauth_consent",
        false,
    ),
    entry(
        Route::OAuthRegisterPage,
        "GET",
        "/oauth2/register",
        "oauth_register_page",
        false,
    ),
    entry(
        Route::OAuthRegister,
        "POST",
        "/oauth2/register",
        "oauth_register",
        false,
    ),
    entry(
        Route::OAuthForgotPage,
        "GET",
        "/oauth2/forgot",
        "oauth_forgot_page",
        false,
    ),
    entry(
        Route::OAuthForgot,
        "POST",
        "/oauth2/forgot",
        "oauth_forgot",
        false,
    ),
    entry(
        Route::OAuthLogoutPage,
        "GET",
        "/oauth2/logout",
        "oauth_logout_page",
        false,
    ),
    entry(
        Route::OAuthLogout,
        "POST",
        "/oauth2/logout",
        "oauth_logout",
        false,
    ),
    entry(
        Route::OAuthUserinfo,
        "GET",
        "/oauth2/userinfo",
        "oauth_userinfo",
        false,
    ),
    entry(
        Route::OAuthUserinfoPost,
        "POST",
        "/oauth2/userinfo",
        "oauth_userinfo_post",
        false,
    ),
    entry(
        Route::OAuthRevoke,
        "POST",
        "/oauth2/revoke",
        "oauth_revoke",
        false,
    ),
    entry(
        Route::OAuthIntrospect,
        "POST",
        "/oauth2/introspect",
        "oauth_introspect",
        false,
    ),
    entry(
        Route::OAuthAuthorizePost,
        "POST",
        "/oauth2/authorize",
        "oauth_authorize_post",
        false,
    ),
    entry(Route::Consents, "GET", "/consents", "consents", true),
    entry(
        Route::RevokeConsent,
        "DELETE",
        "/consents/{client_id}",
        "revoke_consent",
        true,
    ),
    entry(
        Route::PasskeyRegisterOptions,
        "POST",
        "/passkeys/register/options",
        "passkey_register_options",
        true,
    ),
    entry(
        Route::PasskeyRegister,
        "POST",
        "/passkeys/register",
        "passkey_register",
        true,
    ),
    entry(
        Route::PasskeyLoginOptions,
        "POST",
        "/passkeys/login/options",
        "passkey_login_options",
        false,
    ),
    entry(
        Route::PasskeyLogin,
        "POST",
        "/passkeys/login",
        "passkey_login",
        false,
    ),
    entry(Route::Passkeys, "GET", "/passkeys", "passkeys", true),
    entry(
        Route::RenamePasskey,
        "PATCH",
        "/passkeys/{id}",
        "rename_passkey",
        true,
    ),
    entry(
        Route::DeletePasskey,
        "DELETE",
        "/passkeys/{id}",
        "delete_passkey",
        true,
    ),
    entry(
        Route::LoginMfaPasskeyOptions,
        "POST",
        "/login/mfa/passkey/options",
        "login_mfa_passkey_options",
        false,
    ),
    entry(
        Route::OAuthPasskeyScript,
        "GET",
        "/oauth2/passkey.js",
        "oauth_passkey_script",
        false,
    ),
    entry(
        Route::OAuthDeviceAuthorization,
        "POST",
        "/oauth2/device_authorization",
        "oauth_device_authorization",
        false,
    ),
    entry(
        Route::OAuthDevicePage,
        "GET",
        "/oauth2/device",
        "oauth_device_page",
        false,
    ),
    entry(
        Route::OAuthDevice,
        "POST",
        "/oauth2/device",
        "oauth_device",
        false,
    ),
    entry(
        Route::OAuthFederate,
        "GET",
        "/oauth2/federate/{provider}",
        "oauth_federate",
        false,
    ),
    entry(
        Route::OAuthCallback,
        "GET",
        "/oauth2/callback/{provider}",
        "oauth_callback",
        false,
    ),
    entry(
        Route::OAuthCallbackPost,
        "POST",
        "/oauth2/callback/{provider}",
        "oauth_callback_post",
        false,
    ),
    entry(
        Route::FederationExchange,
        "POST",
        "/federation/exchange",
        "federation_exchange",
        false,
    ),
    entry(Route::Identities, "GET", "/identities", "identities", true),
    entry(
        Route::UnlinkIdentity,
        "DELETE",
        "/identities/{id}",
        "unlink_identity",
        true,
    ),
    entry(
        Route::LinkIdentity,
        "POST",
        "/identities/link/{provider}",
        "link_identity",
        true,
    ),
];

/// The routes a path names, with the value of its `{parameter}` if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMatch {
    pub routes: Vec<Route>,
    pub parameter: Option<String>,
}

impl PathMatch {
    /// The route for `method`, if the path has one.
    pub fn route(&self, method: &str) -> Option<Route> {
        self.routes.iter().copied().find(|r| r.method() == method)
    }

    /// The path's methods, e.g. `DELETE, GET` (for CORS preflights).
    pub fn methods(&self) -> String {
        let mut methods: Vec<&str> = self.routes.iter().map(|r| r.method()).collect();
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    /// Every method the path answers, for `Allow`: its own and the CORS preflight's.
    pub fn allow(&self) -> String {
        format!("{}, OPTIONS", self.methods())
    }
}

impl Route {
    /// Every route, for checks that the template and the router agree.
    pub const ALL: [Route; 60] = {
        let mut all = [Route::Register; 60];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].route;
            i += 1;
        }
        all
    };

    fn entry(self) -> &'static Entry {
        // The table lists the variants in their order (a test checks it).
        &TABLE[self as usize]
    }

    /// The routes for a path (stage already removed), if any.
    pub fn matching(path: &str) -> Option<PathMatch> {
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        let mut literal = Vec::new();
        let mut templated = PathMatch {
            routes: Vec::new(),
            parameter: None,
        };
        for entry in &TABLE {
            match template_match(entry.path, path) {
                Some(None) => literal.push(entry.route),
                Some(Some(parameter)) => {
                    templated.routes.push(entry.route);
                    templated.parameter = Some(parameter);
                }
                None => {}
            }
        }
        // A path the table names literally is that resource alone, as API Gateway routes it:
        // `/passkeys/register` is not a passkey `{id}`.
        if !literal.is_empty() {
            return Some(PathMatch {
                routes: literal,
                parameter: None,
            });
        }
        (!templated.routes.is_empty()).then_some(templated)
    }

    /// The route for a method and path, if any.
    pub fn find(method: &str, path: &str) -> Option<Self> {
        Self::matching(path)?.route(method)
    }

    /// The one method this route answers.
    pub fn method(self) -> &'static str {
        self.entry().method
    }

    /// A stable name for logs.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// Whether API Gateway must put the authorizer in front of this route.
    pub fn protected(self) -> bool {
        self.entry().protected
    }

    /// Whether this is an OAuth endpoint, whose errors are RFC 6749 JSON, not problem+json.
    pub fn oauth(self) -> bool {
        self.path().starts_with("/oauth2/") && !self.page() && self != Route::OAuthPasskeyScript
    }

    /// Whether this is a hosted page, whose every answer is HTML (or a redirect).
    pub fn page(self) -> bool {
        matches!(
            self.path(),
            "/oauth2/authorize"
                | "/oauth2/login"
                | "/oauth2/consent"
                | "/oauth2/register"
                | "/oauth2/forgot"
                | "/oauth2/logout"
                | "/oauth2/device"
                | "/oauth2/federate/{provider}"
                | "/oauth2/callback/{provider}"
        )
    }

    /// The path this route is served at, as template.yaml and openapi.yaml write it.
    pub fn path(self) -> &'static str {
        self.entry().path
    }
}

/// Whether `path` fits `template` (`/sessions/{id}`): `Some(parameter)` if it does, the
/// parameter being the value in the `{…}` segment, if the template has one.
fn template_match(template: &str, path: &str) -> Option<Option<String>> {
    let mut parameter = None;
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(parameter),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                parameter = Some(g.to_owned());
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_route_once_in_variant_order() {
        for (i, entry) in TABLE.iter().enumerate() {
            assert_eq!(entry.route as usize, i, "{:?}", entry.route);
        }
        let mut names: Vec<&str> = TABLE.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }

    #[test]
    fn a_path_finds_its_routes_and_parameter() {
        let found = Route::matching("/sessions/abc/").unwrap();
        assert_eq!(found.routes, vec![Route::EndSession]);
        assert_eq!(found.parameter.as_deref(), Some("abc"));
        assert_eq!(Route::find("DELETE", "/me"), Some(Route::DeleteAccount));
        assert_eq!(
            Route::matching("/me").unwrap().allow(),
            "DELETE, GET, OPTIONS"
        );
        assert!(Route::matching("/sessions/").is_some_and(|m| m.routes == vec![Route::Sessions]));
        assert_eq!(Route::matching("/nope"), None);
        // A literal path is its own resource, never a value of a templated one.
        let register = Route::matching("/passkeys/register").unwrap();
        assert_eq!(register.routes, vec![Route::PasskeyRegister]);
        assert_eq!(register.allow(), "POST, OPTIONS");
        let one = Route::matching("/passkeys/abc").unwrap();
        assert_eq!(one.routes, vec![Route::RenamePasskey, Route::DeletePasskey]);
        assert_eq!(one.parameter.as_deref(), Some("abc"));
    }
}
