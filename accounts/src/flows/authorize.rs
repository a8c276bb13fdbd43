//! OpenID Connect's authorization code flow (RFC 6749 §4.1 with OAuth 2.1's PKCE, OpenID
//! Connect Core 1.0 §3.1): the authorization request, the browser's single sign-on session,
//! consent, codes, and the tokens a code or a client's refresh token is exchanged for.
//!
//! The hosted pages are its door: they sign the user in with the same login flow as the JSON
//! API (same backoff, same audit lines), and the session that sign-in starts is the browser's
//! single sign-on session. Its first refresh token only the SSO cookie holds
//! ([`TokenUse::Browser`]); tokens issued to clients join the same session, so logout,
//! logout-all, a password change, disabling the user and the session-checking authorizer
//! treat them as one.

use secrecy::{ExposeSecret, SecretString};
use shared::{IdClaims, IssuedToken, at_hash};
use uuid::Uuid;

use super::oauth::ClientAuthentication;
use super::{Accounts, audit};
use crate::audit::{Event, record_user_at_client};
use crate::error::Error;
use crate::model::client::{Caller, Client};
use crate::model::event::SessionEnd;
use crate::model::oidc::{
    CODE_TTL_SECONDS, CodeChallenge, CodeRecord, CodeSpend, Consent, MAX_STATE_LEN, OIDC_SCOPES,
    SCOPE_EMAIL, SCOPE_OFFLINE_ACCESS, SCOPE_OPENID, redirect_uri_matches,
};
use crate::model::registry::{ClientId, ClientRecord, ClientType, GrantType};
pub use crate::model::session::BrowserSession;
use crate::model::session::{RefreshRecord, RefreshToken, SessionFamily, TokenUse};
use crate::model::token::OpaqueToken;
use crate::model::user::UserRecord;
use crate::store::{Store, StoreError};

/// Longest `login_hint` kept (an email address at most).
const MAX_LOGIN_HINT_LEN: usize = 320;

/// An authorization request's parameters as sent, before any is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

impl AuthorizationParams {
    /// The parameters by their RFC names, for a door that carries them along (the hosted
    /// pages keep them in hidden inputs between steps).
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
            ("login_hint", &self.login_hint),
            ("response_mode", &self.response_mode),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }

    /// Sets the parameter `name` (one of [`Self::pairs`]' names, or `request`/`request_uri`);
    /// `false` for any other name.
    pub fn set(&mut self, name: &str, value: String) -> bool {
        let slot = match name {
            "response_type" => &mut self.response_type,
            "client_id" => &mut self.client_id,
            "redirect_uri" => &mut self.redirect_uri,
            "scope" => &mut self.scope,
            "state" => &mut self.state,
            "nonce" => &mut self.nonce,
            "code_challenge" => &mut self.code_challenge,
            "code_challenge_method" => &mut self.code_challenge_method,
            "prompt" => &mut self.prompt,
            "max_age" => &mut self.max_age,
            "login_hint" => &mut self.login_hint,
            "response_mode" => &mut self.response_mode,
            "request" => &mut self.request,
            "request_uri" => &mut self.request_uri,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: ClientRecord,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub challenge: CodeChallenge,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// Where the browser goes back to the client: the redirect URI and the query it gets, `iss`
/// always among it (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    pub redirect_uri: String,
    pub params: Vec<(&'static str, String)>,
}

/// Why an authorization request went no further.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI could not be trusted: shown to the user, never sent
    /// anywhere (an open redirect otherwise).
    Untrusted(String),
    /// An error the client is told about at its redirect URI.
    Redirect(ClientRedirect),
    /// A fault (store, signing).
    Account(Error),
}

impl From<Error> for AuthorizeError {
    fn from(err: Error) -> Self {
        AuthorizeError::Account(err)
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(err: StoreError) -> Self {
        AuthorizeError::Account(err.into())
    }
}

/// What an authorization request leads to.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Back to the client: a code, or an error (`login_required`, `access_denied`, …).
    Redirect(ClientRedirect),
    /// The user must sign in (no session, `prompt=login`, or `max_age` passed).
    Login,
    /// The user must allow these scopes for this client.
    Consent {
        user: Box<UserRecord>,
        scopes: Vec<String>,
    },
}

/// The tokens of the authorization code and refresh grants.
pub struct OidcTokens {
    pub user_id: Uuid,
    pub access: IssuedToken,
    pub refresh: Option<RefreshToken>,
    pub id_token: Option<SecretString>,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// RFC 6749 §4.1.2.1 error codes, and OpenID Connect's.
fn error_redirect(
    request_uri: &str,
    state: Option<&str>,
    issuer: &str,
    error: &'static str,
    description: impl Into<String>,
) -> ClientRedirect {
    let mut params = vec![
        ("error", error.to_owned()),
        ("error_description", description.into()),
    ];
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    params.push(("iss", issuer.to_owned()));
    ClientRedirect {
        redirect_uri: request_uri.to_owned(),
        params,
    }
}

impl<S: Store> Accounts<S> {
    /// Checks an authorization request. The client and redirect URI first: until both are
    /// known good, every problem is [`AuthorizeError::Untrusted`]; after that, each is an
    /// error sent back to the client.
    pub async fn authorization_request(
        &self,
        params: &AuthorizationParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let client_id = params
            .client_id
            .as_deref()
            .and_then(ClientId::parse)
            .ok_or_else(|| {
                AuthorizeError::Untrusted("The request names no valid client.".into())
            })?;
        let client = self
            .store
            .find_client(&client_id)
            .await?
            .filter(|c| !c.disabled)
            .ok_or_else(|| {
                AuthorizeError::Untrusted("The application that sent you here is not known.".into())
            })?;
        let redirect_uri = params.redirect_uri.clone().ok_or_else(|| {
            AuthorizeError::Untrusted("The request names no redirect_uri.".into())
        })?;
        if !redirect_uri_matches(&client.redirect_uris, &redirect_uri, client.client_type) {
            return Err(AuthorizeError::Untrusted(
                "The redirect_uri is not registered for this application.".into(),
            ));
        }
        let issuer = self.issuer.settings().issuer.clone();
        let state = params.state.clone();
        let fail = |error: &'static str, description: String| {
            AuthorizeError::Redirect(error_redirect(
                &redirect_uri,
                state.as_deref(),
                &issuer,
                error,
                description,
            ))
        };
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
            // Not echoed back: too long to send.
            return Err(AuthorizeError::Redirect(error_redirect(
                &redirect_uri,
                None,
                &issuer,
                "invalid_request",
                format!("state is longer than {MAX_STATE_LEN} characters"),
            )));
        }
        if params.request.is_some() {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported".into(),
            ));
        }
        if params.request_uri.is_some() {
            return Err(fail(
                "request_uri_not_supported",
                "request_uri is not supported".into(),
            ));
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Err(fail("invalid_request", "response_type is required".into())),
            Some(other) => {
                return Err(fail(
                    "unsupported_response_type",
                    format!("response_type {other:?} is not supported; use code"),
                ));
            }
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(fail(
                "unauthorized_client",
                "this client may not use the authorization code grant".into(),
            ));
        }
        if params
            .response_mode
            .as_deref()
            .is_some_and(|m| m != "query")
        {
            return Err(fail(
                "invalid_request",
                "response_mode must be query".into(),
            ));
        }
        let challenge = CodeChallenge::parse(
            params.code_challenge.as_deref(),
            params.code_challenge_method.as_deref(),
        )
        .map_err(|why| fail("invalid_request", why))?;
        let scopes = self
            .requested_scopes(&client, params.scope.as_deref())
            .map_err(|why| fail("invalid_scope", why))?;
        let nonce = params.nonce.clone();
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE_LEN) {
            return Err(fail(
                "invalid_request",
                format!("nonce is longer than {MAX_STATE_LEN} characters"),
            ));
        }
        let (mut prompt_none, mut prompt_login, mut prompt_consent) = (false, false, false);
        for value in params.prompt.as_deref().unwrap_or("").split(' ') {
            match value {
                "" => {}
                "none" => prompt_none = true,
                "login" => prompt_login = true,
                "consent" => prompt_consent = true,
                "select_account" => prompt_login = true,
                other => {
                    return Err(fail(
                        "invalid_request",
                        format!("prompt {other:?} is not supported"),
                    ));
                }
            }
        }
        if prompt_none && (prompt_login || prompt_consent) {
            return Err(fail(
                "invalid_request",
                "prompt=none cannot be combined with other values".into(),
            ));
        }
        let max_age = match params.max_age.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<u32>().map(i64::from).map_err(|_| {
                fail(
                    "invalid_request",
                    "max_age must be a whole number of seconds".into(),
                )
            })?),
        };
        let login_hint = params
            .login_hint
            .clone()
            .filter(|h| h.len() <= MAX_LOGIN_HINT_LEN && !h.chars().any(char::is_control));
        Ok(AuthorizationRequest {
            client,
            redirect_uri,
            scopes,
            state,
            nonce,
            challenge,
            prompt_none,
            prompt_login,
            prompt_consent,
            max_age,
            login_hint,
        })
    }

    /// The scopes asked for: each an OpenID Connect scope or one registered for the client
    /// (`offline_access` only with the refresh_token grant, `openid` only when ID tokens can
    /// be signed for others to check).
    pub(super) fn requested_scopes(
        &self,
        client: &ClientRecord,
        asked: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let asked = asked.unwrap_or("");
        let mut scopes: Vec<String> = Vec::new();
        for word in asked.split(' ').filter(|w| !w.is_empty()) {
            let known =
                OIDC_SCOPES.contains(&word) || client.scopes.iter().any(|s| s.as_str() == word);
            if !known {
                return Err(format!("scope {word:?} is not allowed for this client"));
            }
            if word == SCOPE_OFFLINE_ACCESS && !client.allows(GrantType::RefreshToken) {
                return Err(
                    "offline_access needs the refresh_token grant, which this client does not have"
                        .into(),
                );
            }
            if word == SCOPE_OPENID && self.issuer.key().is_symmetric() {
                return Err("ID tokens need an asymmetric signing key (JWT_PRIVATE_KEY)".into());
            }
            if !scopes.iter().any(|s| s == word) {
                scopes.push(word.to_owned());
            }
        }
        if scopes.is_empty() {
            return Err("scope is required (openid for an ID token)".into());
        }
        Ok(scopes)
    }

    /// The browser session the SSO cookie `cookie` names: a live session of an enabled user,
    /// found by its first token, which only the cookie holds. `None` otherwise.
    pub async fn browser_session(
        &self,
        cookie: Option<&str>,
    ) -> Result<Option<BrowserSession>, Error> {
        let Some(token) = cookie.and_then(OpaqueToken::parse) else {
            return Ok(None);
        };
        let now_ms = self.clock.now_ms();
        Ok(self
            .store
            .find_refresh(&token.hash())
            .await?
            .and_then(|found| found.live(&self.sessions, now_ms))
            .filter(|found| found.token.token_use == TokenUse::Browser)
            .map(|found| BrowserSession {
                user: found.user,
                family: found.family,
            }))
    }

    /// The authorization request `request` from a browser with `session` (or none): a code,
    /// a sign-in, a consent, or an error for the client.
    pub async fn authorize(
        &self,
        request: &AuthorizationRequest,
        session: Option<BrowserSession>,
        client: &Client,
    ) -> Result<AuthorizeOutcome, AuthorizeError> {
        let now = self.clock.now_ms() / 1000;
        let usable = session.filter(|s| {
            !request.prompt_login
                && request
                    .max_age
                    .is_none_or(|max| now - s.family.created_at_ms / 1000 <= max)
        });
        let Some(session) = usable else {
            if request.prompt_none {
                return Ok(AuthorizeOutcome::Redirect(self.refusal(
                    request,
                    "login_required",
                    "the user is not signed in",
                )));
            }
            return Ok(AuthorizeOutcome::Login);
        };
        self.continue_authorization(request, &session, false, client)
            .await
    }

    /// After the user is known (just signed in, or by their session): consent if the client
    /// needs it, else a code.
    pub async fn continue_authorization(
        &self,
        request: &AuthorizationRequest,
        session: &BrowserSession,
        just_consented: bool,
        client: &Client,
    ) -> Result<AuthorizeOutcome, AuthorizeError> {
        if !request.client.first_party && !just_consented {
            let granted = self
                .store
                .find_consent(session.user.user_id, &request.client.client_id)
                .await?
                .map(|c| c.scopes)
                .unwrap_or_default();
            let missing = request.scopes.iter().any(|s| !granted.contains(s));
            if missing || request.prompt_consent {
                if request.prompt_none {
                    return Ok(AuthorizeOutcome::Redirect(self.refusal(
                        request,
                        "consent_required",
                        "the user has not allowed this client these scopes",
                    )));
                }
                return Ok(AuthorizeOutcome::Consent {
                    user: Box::new(session.user.clone()),
                    scopes: request.scopes.clone(),
                });
            }
        }
        let code = OpaqueToken::generate();
        let now = self.clock.now_ms() / 1000;
        let record = CodeRecord {
            hash: code.hash(),
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            challenge: request.challenge.clone(),
            scope: request.scopes.join(" "),
            nonce: request.nonce.clone(),
            user_id: session.user.user_id,
            email: session.user.email.clone(),
            family_id: session.family.family_id,
            expires_at: now + CODE_TTL_SECONDS,
        };
        self.store.save_code(&record).await?;
        record_user_at_client(
            Event::AuthorizationCodeIssued,
            &session.user.user_id.to_string(),
            request.client.client_id.as_str(),
            client,
        );
        let mut params = vec![("code", code.encode().expose_secret().to_owned())];
        if let Some(state) = &request.state {
            params.push(("state", state.clone()));
        }
        params.push(("iss", self.issuer.settings().issuer.clone()));
        Ok(AuthorizeOutcome::Redirect(ClientRedirect {
            redirect_uri: request.redirect_uri.clone(),
            params,
        }))
    }

    /// The user's answer on the consent page: `allow` remembers the scopes and goes on,
    /// anything else sends `access_denied` to the client.
    pub async fn consent(
        &self,
        request: &AuthorizationRequest,
        session: &BrowserSession,
        allow: bool,
        client: &Client,
    ) -> Result<AuthorizeOutcome, AuthorizeError> {
        let user_id = session.user.user_id.to_string();
        let client_id = request.client.client_id.as_str();
        if !allow {
            record_user_at_client(Event::ConsentDenied, &user_id, client_id, client);
            return Ok(AuthorizeOutcome::Redirect(self.refusal(
                request,
                "access_denied",
                "the user did not allow the request",
            )));
        }
        let now_ms = self.clock.now_ms();
        self.store
            .grant_consent(
                session.user.user_id,
                &request.client.client_id,
                &request.scopes,
                now_ms,
            )
            .await?;
        record_user_at_client(Event::ConsentGranted, &user_id, client_id, client);
        self.continue_authorization(request, session, true, client)
            .await
    }

    /// An error for the client at its (checked) redirect URI.
    pub fn refusal(
        &self,
        request: &AuthorizationRequest,
        error: &'static str,
        description: &str,
    ) -> ClientRedirect {
        error_redirect(
            &request.redirect_uri,
            request.state.as_deref(),
            &self.issuer.settings().issuer,
            error,
            description,
        )
    }

    /// The client at the token endpoint for the code and refresh grants: a confidential
    /// client by its secret, a public client by its id alone (it has no secret; PKCE and the
    /// binding of codes and tokens to it stand in).
    pub async fn authenticate_any_client(
        &self,
        client_id: Option<&str>,
        auth: Option<&ClientAuthentication>,
        client: &Client,
    ) -> Result<ClientRecord, Error> {
        if let Some(auth) = auth {
            return self.authenticate_client(auth, client).await;
        }
        let id = client_id
            .and_then(ClientId::parse)
            .ok_or(Error::InvalidClient)?;
        match self.store.find_client(&id).await? {
            Some(c) if !c.disabled && c.client_type == ClientType::Public => Ok(c),
            _ => Err(Error::InvalidClient),
        }
    }

    /// The authorization code grant: `code`, sent back with the redirect URI and the PKCE
    /// verifier it was bound to, by the client it was issued to. A code is spent by its first
    /// use, right or wrong; a second use revokes the session its tokens belong to.
    pub async fn exchange_code(
        &self,
        registered: &ClientRecord,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        client: &Client,
    ) -> Result<OidcTokens, Error> {
        if !registered.allows(GrantType::AuthorizationCode) {
            return Err(Error::UnauthorizedClient);
        }
        let code = OpaqueToken::parse(code).ok_or(Error::InvalidGrant("the code is not valid"))?;
        let now_ms = self.clock.now_ms();
        let record = match self.store.spend_code(&code.hash(), now_ms).await? {
            CodeSpend::First(record) => record,
            CodeSpend::Again {
                code: record,
                issued,
            } => {
                // RFC 6749 §4.1.2: a code used twice revokes what it issued. A use that races
                // the first, before its tokens exist, is refused alone: of parallel uses one
                // gets tokens, and the next use after it revokes them.
                if !issued {
                    return Err(Error::InvalidGrant("the code has been used already"));
                }
                self.store
                    .revoke_family(record.family_id, record.user_id, SessionEnd::CodeReused)
                    .await?;
                record_user_at_client(
                    Event::AuthorizationCodeReused,
                    &record.user_id.to_string(),
                    record.client_id.as_str(),
                    client,
                );
                return Err(Error::InvalidGrant("the code has been used already"));
            }
            CodeSpend::Unknown => return Err(Error::InvalidGrant("the code is not valid")),
        };
        if record.expires_at <= now_ms / 1000 {
            return Err(Error::InvalidGrant("the code has expired"));
        }
        if record.client_id != registered.client_id {
            return Err(Error::InvalidGrant("the code was issued to another client"));
        }
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(Error::InvalidGrant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !verifier.is_some_and(|v| record.challenge.verifies(v)) {
            return Err(Error::InvalidGrant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let (family, user) = tokio::join!(
            self.store.find_session(record.family_id),
            self.store.find_user(&record.email),
        );
        let (Some(family), Some(user)) = (family?, user?) else {
            return Err(Error::InvalidGrant("the session has ended"));
        };
        if user.user_id != record.user_id
            || user.disabled
            || !family.is_live(&self.sessions, user.session_epoch, now_ms)
        {
            return Err(Error::InvalidGrant("the session has ended"));
        }
        let now = now_ms / 1000;
        let custom = self
            .claims_for(&user, &family, registered.client_id.as_str(), client)
            .await?;
        let scopes: Vec<&str> = record.scope.split(' ').filter(|s| !s.is_empty()).collect();
        let refresh = if scopes.contains(&SCOPE_OFFLINE_ACCESS)
            && registered.allows(GrantType::RefreshToken)
        {
            let token = RefreshToken::generate();
            let token_record = RefreshRecord {
                hash: token.hash(),
                family_id: family.family_id,
                user_id: user.user_id,
                email: user.email.clone(),
                issued_at_ms: now_ms,
                expires_at: self.sessions.token_expiry(now, family.created_at_ms),
                spent: None,
                token_use: TokenUse::Client {
                    client_id: registered.client_id.clone(),
                    scope: record.scope.clone(),
                },
            };
            match self.store.add_refresh(&token_record, family.epoch).await {
                Ok(()) => Some(token),
                Err(StoreError::Conflict) => {
                    return Err(Error::InvalidGrant("the session has ended"));
                }
                Err(err) => return Err(err.into()),
            }
        } else {
            None
        };
        let tokens = self.oidc_tokens(
            &user,
            &family,
            registered.client_id.as_str(),
            &record.scope,
            record.nonce,
            refresh,
            now,
            custom,
        )?;
        self.store.mark_code_issued(&record.hash).await?;
        record_user_at_client(
            Event::OidcTokensIssued,
            &user.user_id.to_string(),
            registered.client_id.as_str(),
            client,
        );
        Ok(tokens)
    }

    /// The refresh token grant: `presented`, bound to `registered`, rotated as the JSON API's
    /// `/refresh` rotates (same grace, same reuse detection), for tokens of the scopes it was
    /// granted (or fewer, when `scope` asks for fewer).
    pub async fn refresh_for_client(
        &self,
        registered: &ClientRecord,
        presented: &str,
        scope: Option<&str>,
        client: &Client,
    ) -> Result<OidcTokens, Error> {
        if !registered.allows(GrantType::RefreshToken) {
            return Err(Error::UnauthorizedClient);
        }
        let presented = RefreshToken::parse(presented)
            .ok_or(Error::InvalidGrant("the refresh token is not valid"))?;
        let rotated = self
            .rotate(presented, client, |u| {
                matches!(u, TokenUse::Client { client_id, .. } if *client_id == registered.client_id)
            })
            .await
            .map_err(|err| match err {
                Error::InvalidRefreshToken => Error::InvalidGrant("the refresh token is not valid"),
                other => other,
            })?;
        let TokenUse::Client { scope: granted, .. } = &rotated.token_use else {
            return Err(Error::internal("a client's refresh token lost its binding"));
        };
        let scope = match scope {
            None => granted.clone(),
            Some(asked) => {
                let granted: Vec<&str> = granted.split(' ').collect();
                let asked: Vec<&str> = asked.split(' ').filter(|s| !s.is_empty()).collect();
                if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                    return Err(Error::InvalidScope(format!(
                        "scope {extra:?} was not granted with this refresh token"
                    )));
                }
                asked.join(" ")
            }
        };
        let custom = self
            .claims_for(
                &rotated.user,
                &rotated.family,
                registered.client_id.as_str(),
                client,
            )
            .await?;
        self.oidc_tokens(
            &rotated.user,
            &rotated.family,
            registered.client_id.as_str(),
            &scope,
            None,
            Some(rotated.successor),
            rotated.now,
            custom,
        )
    }

    /// An access token for `user` at `client_id` with `scope`, and an ID token when `scope`
    /// holds `openid`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn oidc_tokens(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        client_id: &str,
        scope: &str,
        nonce: Option<String>,
        refresh: Option<RefreshToken>,
        now: i64,
        custom: std::collections::BTreeMap<String, shared::CustomClaim>,
    ) -> Result<OidcTokens, Error> {
        let access = self.issuer.issue_customized(
            &super::subject(user, family),
            client_id,
            scope,
            custom,
            now,
        )?;
        let scopes: Vec<&str> = scope.split(' ').collect();
        let id_token = if scopes.contains(&SCOPE_OPENID) {
            let with_email = scopes.contains(&SCOPE_EMAIL);
            let claims = IdClaims {
                iss: self.issuer.settings().issuer.clone(),
                sub: user.user_id.to_string(),
                aud: client_id.to_owned(),
                exp: access.claims.exp,
                iat: now,
                auth_time: family.created_at_ms / 1000,
                nonce,
                amr: access.claims.amr.clone(),
                sid: Some(family.family_id.to_string()),
                at_hash: Some(at_hash(
                    self.issuer.key().algorithm(),
                    access.token.expose_secret(),
                )),
                email: with_email.then(|| user.email.to_string()),
                email_verified: with_email.then_some(user.email_verified),
            };
            Some(self.issuer.sign_id_token(&claims)?)
        } else {
            None
        };
        Ok(OidcTokens {
            user_id: user.user_id,
            access,
            refresh,
            id_token,
            scope: scope.to_owned(),
        })
    }

    /// The apps the caller allowed anything, with what they allowed, by client name.
    pub async fn consents_of(&self, caller: &Caller) -> Result<Vec<(Consent, String)>, Error> {
        let consents = self.store.list_consents(caller.user_id).await?;
        let mut named = Vec::with_capacity(consents.len());
        for consent in consents {
            let name = self
                .store
                .find_client(&consent.client_id)
                .await?
                .map_or_else(|| "(a deleted app)".to_owned(), |c| c.name);
            named.push((consent, name));
        }
        Ok(named)
    }

    /// Forgets what the caller allowed the client `client_id` (as sent): the app asks again
    /// next time. `ConsentNotFound` if there was nothing (or the id is malformed).
    pub async fn revoke_consent(
        &self,
        caller: &Caller,
        client_id: &str,
        client: &Client,
    ) -> Result<(), Error> {
        let id = ClientId::parse(client_id).ok_or(Error::ConsentNotFound)?;
        if !self.store.revoke_consent(caller.user_id, &id).await? {
            return Err(Error::ConsentNotFound);
        }
        record_user_at_client(
            Event::ConsentRevoked,
            &caller.user_id.to_string(),
            id.as_str(),
            client,
        );
        Ok(())
    }

    /// RP-Initiated Logout: ends the browser's session (and so every token issued in it).
    pub async fn end_browser_session(
        &self,
        session: &BrowserSession,
        client_id: Option<&str>,
        client: &Client,
    ) -> Result<(), Error> {
        self.store
            .revoke_family(
                session.family.family_id,
                session.user.user_id,
                SessionEnd::SignedOut,
            )
            .await?;
        let user_id = session.user.user_id.to_string();
        match client_id {
            Some(id) => record_user_at_client(Event::OidcLoggedOut, &user_id, id, client),
            None => audit(Event::OidcLoggedOut, Some(&user_id), client),
        }
        Ok(())
    }
}
