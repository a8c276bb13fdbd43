//! The hosted pages of the authorization code flow: `GET /oauth2/authorize`, the sign-in
//! (`/oauth2/login`, with its second step), consent (`POST /oauth2/consent`), registration
//! (`/oauth2/register`), password reset (`/oauth2/forgot`), RP-Initiated Logout
//! (`/oauth2/logout`), and the device page (`/oauth2/device`, RFC 8628), whose sign-in is
//! the same pages' with the user code carried along instead of an authorization request.
//! Each reads the request once, calls one flow, and renders a page or a redirect. The
//! authorization request (or user code) travels between the pages in hidden inputs and is
//! checked again at every step: nothing a page carries is trusted.

use accounts::error::Error;
use accounts::flows::authorize::{
    AuthorizationParams, AuthorizationRequest, AuthorizeError, AuthorizeOutcome, BrowserSession,
};
use accounts::flows::device::DeviceRequest;
use accounts::flows::login::LoginOutcome;
use accounts::model::client::Client;
use accounts::model::credentials::{Email, NewPassword};
use accounts::model::mfa::Code;
use accounts::model::registry::ClientId;
use accounts::model::webauthn::AuthenticationResponse;
use accounts::store::Store;
use http::{HeaderValue, StatusCode};
use lambda_http::Request;
use secrecy::{ExposeSecret, SecretString};
use shared::metrics::Metric;

use crate::app::App;
use crate::http::oauth::Form;
use crate::http::pages::{
    Button, Field, Page, clear_sso_cookie, client_location, csrf_ok, query, see_other,
    set_sso_cookie, sso_cookie,
};
use crate::http::problem::{account_slug_title_detail, account_status};
use crate::http::reply::Reply;

/// The parameters a page form may carry besides the authorization request's.
const PAGE_FIELDS: [&str; 10] = [
    "csrf",
    "user_code",
    "email",
    "password",
    "code",
    "mfa_token",
    "decision",
    "methods",
    "passkey_challenge_id",
    "passkey_credential",
];

/// The authorization request's parameters in a query or form: unknown ones are ignored (RFC
/// 6749 §3.1), a repeated one is an error.
fn params_of(form: &Form) -> AuthorizationParams {
    let mut params = AuthorizationParams::default();
    for (name, value) in form.pairs() {
        if !PAGE_FIELDS.contains(&name) {
            params.set(name, value.to_owned());
        }
    }
    params
}

/// What a sign-in on these pages is for: an authorization request (its parameters carried
/// along), or a device waiting for its user code's approval (the code carried along).
enum Journey {
    Authorize(Box<AuthorizationParams>),
    Device(String),
}

impl Journey {
    /// The journey a query or form carries: a device's when it names a `user_code`.
    fn of(form: &Form) -> Self {
        match form.get("user_code") {
            Some(code) => Journey::Device(code.to_owned()),
            None => Journey::Authorize(Box::new(params_of(form))),
        }
    }

    /// What the page's forms and links carry along.
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        match self {
            Journey::Authorize(params) => params.pairs(),
            Journey::Device(code) => vec![("user_code", code.as_str())],
        }
    }

    fn redirect_uri(&self) -> Option<&str> {
        match self {
            Journey::Authorize(params) => params.redirect_uri.as_deref(),
            Journey::Device(_) => None,
        }
    }

    fn login_hint(&self) -> &str {
        match self {
            Journey::Authorize(params) => params.login_hint.as_deref().unwrap_or(""),
            Journey::Device(_) => "",
        }
    }
}

/// A journey, checked: the authorization request it carries, or the pending device grant.
enum Checked {
    Authorize(Box<AuthorizationRequest>),
    Device,
}

/// Checks `journey` again (nothing a page carries is trusted): a reply for the browser if it
/// cannot go on.
async fn check<S: Store>(
    app: &App<S>,
    req: &Request,
    journey: &Journey,
    client: &Client,
) -> Result<Checked, Box<Reply>> {
    match journey {
        Journey::Authorize(params) => app
            .accounts
            .authorization_request(params)
            .await
            .map(|r| Checked::Authorize(Box::new(r)))
            .map_err(|err| Box::new(authorize_error(app, err))),
        Journey::Device(code) => app
            .accounts
            .device_request(code, client)
            .await
            .map(|_| Checked::Device)
            .map_err(|err| Box::new(user_code_error(app, req, code, &err))),
    }
}

fn query_form(req: &Request) -> Result<Form, String> {
    Form::parse(req.uri().query().unwrap_or("")).map_err(|e| e.description)
}

/// A page for a fault: its cause logged once, here, and never shown.
fn fault_page<S>(app: &App<S>, err: &Error) -> Reply {
    match err {
        Error::StoreUnavailable(_) => shared::metrics::count(Metric::StoreFailures),
        _ => shared::metrics::count(Metric::InternalErrors),
    }
    tracing::error!(error = %shared::error_chain(err), "hosted page failed");
    let mut reply = Page::new(&app.pages, "Unavailable")
        .status(if matches!(err, Error::StoreUnavailable(_)) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        })
        .heading("Something went wrong")
        .paragraph("The sign-in service is unavailable right now. Please try again in a moment.")
        .render();
    reply
        .response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    reply
}

/// An error page that sends nobody anywhere.
pub fn error_page<S>(app: &App<S>, status: StatusCode, message: &str) -> Reply {
    Page::new(&app.pages, "Cannot continue")
        .status(status)
        .heading("This sign-in cannot continue")
        .error(message)
        .paragraph("Go back to the application and start again.")
        .render()
}

/// What an authorization error becomes: a page, or a redirect to the checked client.
fn authorize_error<S>(app: &App<S>, err: AuthorizeError) -> Reply {
    match err {
        AuthorizeError::Untrusted(why) => error_page(app, StatusCode::BAD_REQUEST, &why),
        AuthorizeError::Redirect(redirect) => see_other(&client_location(&redirect), &[]),
        AuthorizeError::Account(err) if err.is_fault() => fault_page(app, &err),
        AuthorizeError::Account(err) => {
            let (_, _, detail) = account_slug_title_detail(&err);
            error_page(app, account_status(&err), &detail)
        }
    }
}

/// The outcome of an authorization step as a reply, with `cookies` (the SSO cookie after a
/// sign-in).
fn outcome<S>(
    app: &App<S>,
    req: &Request,
    request: &AuthorizationRequest,
    params: &AuthorizationParams,
    result: Result<AuthorizeOutcome, AuthorizeError>,
    cookies: Vec<String>,
) -> Reply {
    match result {
        Ok(AuthorizeOutcome::Redirect(redirect)) => {
            see_other(&client_location(&redirect), &cookies)
        }
        Ok(AuthorizeOutcome::Login) => {
            see_other(&format!("login?{}", query(&params.pairs())), &cookies)
        }
        Ok(AuthorizeOutcome::Consent { user, scopes }) => {
            let mut page = Page::new(&app.pages, "Allow access")
                .with_csrf(req)
                .redirects_to(&request.redirect_uri)
                .heading(&format!(
                    "{} wants to access your account",
                    request.client.name
                ))
                .paragraph(&format!("Signed in as {}. It asks to:", user.email))
                .list(
                    &scopes
                        .iter()
                        .map(|s| scope_description(s))
                        .collect::<Vec<_>>(),
                )
                .form(
                    "consent",
                    &params.pairs(),
                    &[],
                    &[
                        Button {
                            text: "Allow",
                            name: Some(("decision", "allow")),
                            secondary: false,
                        },
                        Button {
                            text: "Deny",
                            name: Some(("decision", "deny")),
                            secondary: true,
                        },
                    ],
                );
            for cookie in cookies {
                page = page.set_cookie(cookie);
            }
            page.render()
        }
        Err(err) => authorize_error(app, err),
    }
}

/// What the consent page says a scope allows.
fn scope_description(scope: &str) -> String {
    match scope {
        "openid" => "know who you are (your account id)".into(),
        "email" => "see your email address".into(),
        "offline_access" => "stay signed in when you are away (a refresh token)".into(),
        other => format!("use the API with scope {other}"),
    }
}

/// `GET /oauth2/authorize` (or `POST`, the parameters in a form: OpenID Connect Core
/// §3.1.2.1): checks the request, then a code, a sign-in, or a consent.
pub async fn authorize<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let form = if req.method() == http::Method::POST {
        Form::from_request(req).map_err(|e| e.description)
    } else {
        query_form(req)
    };
    let form = match form {
        Ok(form) => form,
        Err(why) => return error_page(app, StatusCode::BAD_REQUEST, &why),
    };
    let params = params_of(&form);
    let request = match app.accounts.authorization_request(&params).await {
        Ok(request) => request,
        Err(err) => return authorize_error(app, err),
    };
    let session = match app
        .accounts
        .browser_session(cookie_text(req).as_deref())
        .await
    {
        Ok(session) => session,
        Err(err) => return fault_page(app, &err),
    };
    let result = app.accounts.authorize(&request, session, client).await;
    outcome(app, req, &request, &params, result, Vec::new())
}

fn cookie_text(req: &Request) -> Option<String> {
    sso_cookie(req).map(|c| c.expose_secret().to_owned())
}

/// The sign-in form (and, after a right password, the code form of a two-factor user).
fn login_page<S>(
    app: &App<S>,
    req: &Request,
    journey: &Journey,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Reply {
    login_page_with(app, req, journey, email, error, None, status)
}

fn login_page_with<S>(
    app: &App<S>,
    req: &Request,
    journey: &Journey,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
    status: StatusCode,
) -> Reply {
    let mut page = Page::new(&app.pages, "Sign in")
        .with_csrf(req)
        .status(status)
        .heading("Sign in");
    if let Some(uri) = journey.redirect_uri() {
        page = page.redirects_to(uri);
    }
    if let Some(notice) = notice {
        page = page.paragraph(notice);
    }
    if let Some(error) = error {
        page = page.error(error);
    }
    let pairs = journey.pairs();
    let passkeys = app.accounts.passkeys.is_some();
    let page = match passkeys {
        true => page.offer_passkey(false),
        false => page,
    };
    let page = page
        .form(
            "login",
            &pairs,
            &[
                Field {
                    name: "email",
                    label: "Email",
                    kind: "email",
                    // Browsers offer passkeys in the email's autofill (conditional mediation).
                    autocomplete: if passkeys {
                        "username webauthn"
                    } else {
                        "username"
                    },
                    value: email,
                    extra: "",
                },
                Field {
                    name: "password",
                    label: "Password",
                    kind: "password",
                    autocomplete: "current-password",
                    value: "",
                    extra: "",
                },
            ],
            &[Button {
                text: "Sign in",
                name: None,
                secondary: false,
            }],
        )
        .link(&format!("register?{}", query(&pairs)), "Create an account")
        .link(
            &format!("forgot?{}", query(&pairs)),
            "Forgot your password?",
        );
    // Each provider's button: a link carrying the journey along.
    let mut page = page;
    for provider in &app.accounts.federation.providers {
        page = page.link(
            &format!("federate/{}?{}", provider.id, query(&pairs)),
            &format!("Continue with {}", provider.name),
        );
    }
    page.render()
}

fn code_page<S>(
    app: &App<S>,
    req: &Request,
    journey: &Journey,
    step: &SecondStep,
    error: Option<&str>,
    status: StatusCode,
) -> Reply {
    let totp = step.methods.split(' ').any(|m| m == "totp");
    let passkey =
        app.accounts.passkeys.is_some() && step.methods.split(' ').any(|m| m == "webauthn");
    let heading = match (totp, passkey) {
        (false, true) => "Use your passkey",
        _ => "Enter your code",
    };
    let mut page = Page::new(&app.pages, "Two-factor sign-in")
        .with_csrf(req)
        .status(status)
        .heading(heading);
    if let Some(uri) = journey.redirect_uri() {
        page = page.redirects_to(uri);
    }
    if let Some(error) = error {
        page = page.error(error);
    }
    let mut hidden = journey.pairs();
    hidden.push(("mfa_token", &step.mfa_token));
    hidden.push(("methods", &step.methods));
    let (fields, buttons, text): (&[Field], &[Button], &str) = match (totp || !passkey, passkey) {
        (true, false) => (
            &[CODE_FIELD],
            &[CONTINUE],
            "Enter the 6-digit code from your authenticator app, or a recovery code.",
        ),
        (true, true) => (
            &[CODE_FIELD],
            &[CONTINUE],
            "Enter the 6-digit code from your authenticator app or a recovery code, or use one \
             of your passkeys.",
        ),
        (false, _) => (
            &[],
            &[],
            "Confirm with one of your passkeys (this needs JavaScript).",
        ),
    };
    if passkey {
        page = page.offer_passkey(true);
    }
    page = page.paragraph(text).form("login", &hidden, fields, buttons);
    page.render()
}

const CODE_FIELD: Field<'static> = Field {
    name: "code",
    label: "Code",
    kind: "text",
    autocomplete: "one-time-code",
    value: "",
    extra: " inputmode=\"numeric\"",
};

const CONTINUE: Button<'static> = Button {
    text: "Continue",
    name: None,
    secondary: false,
};

/// The second step of a sign-in, as the page carries it: the `mfa_token` and what can finish
/// it (`totp`, `webauthn`; only what the page offers depends on it).
struct SecondStep {
    mfa_token: String,
    methods: String,
}

impl SecondStep {
    fn from_form(form: &Form, mfa_token: &str) -> Self {
        let methods = form
            .get("methods")
            .unwrap_or("totp")
            .split(' ')
            .filter(|m| matches!(*m, "totp" | "webauthn"))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            mfa_token: mfa_token.to_owned(),
            methods,
        }
    }
}

/// `GET /oauth2/login`: the sign-in form for a checked authorization request (or device).
pub async fn login_page_get<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let journey = match get_journey(app, req, client).await {
        Ok(journey) => journey,
        Err(reply) => return *reply,
    };
    login_page(
        app,
        req,
        &journey,
        journey.login_hint(),
        None,
        StatusCode::OK,
    )
}

/// The journey of a page GET, checked.
async fn get_journey<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Journey, Box<Reply>> {
    let form =
        query_form(req).map_err(|why| Box::new(error_page(app, StatusCode::BAD_REQUEST, &why)))?;
    let journey = Journey::of(&form);
    check(app, req, &journey, client).await?;
    Ok(journey)
}

/// The form of a page POST, its CSRF token checked, and the journey it carries, checked
/// again.
async fn posted<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<(Form, Journey, Checked), Box<Reply>> {
    let form = Form::from_request(req)
        .map_err(|e| error_page(app, StatusCode::BAD_REQUEST, &e.description))?;
    if !csrf_ok(req, form.get("csrf")) {
        return Err(error_page(
            app,
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site.",
        )
        .into());
    }
    let journey = Journey::of(&form);
    let checked = check(app, req, &journey, client).await?;
    Ok((form, journey, checked))
}

/// `POST /oauth2/login`: the password step (`email`, `password`) or the second step
/// (`mfa_token`, `code`), then on to the client (or its consent page), with the SSO cookie.
pub async fn login_post<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let (form, journey, checked) = match posted(app, req, client).await {
        Ok(posted) => posted,
        Err(reply) => return *reply,
    };
    let params = &journey;
    let hosted = client.clone().on_hosted_pages();
    let email = form.get("email").unwrap_or("").to_owned();
    let passkey = form
        .get("passkey_credential")
        .filter(|c| !c.is_empty())
        .map(|credential| {
            (
                form.get("passkey_challenge_id").unwrap_or(""),
                serde_json::from_str::<AuthenticationResponse>(credential).ok(),
            )
        });
    let signed_in = if let Some(mfa_token) = form.get("mfa_token") {
        let step = SecondStep::from_form(&form, mfa_token);
        let result = match passkey {
            Some((_, None)) => {
                return code_page(
                    app,
                    req,
                    params,
                    &step,
                    Some("The passkey's answer could not be read. Try again."),
                    StatusCode::BAD_REQUEST,
                );
            }
            Some((challenge_id, Some(credential))) => {
                crate::http::on_heap(|| {
                    app.accounts.login_second_factor_passkey(
                        mfa_token,
                        challenge_id,
                        &credential,
                        &hosted,
                    )
                })
                .await
            }
            None => {
                let Some(code) = form.get("code").and_then(Code::parse) else {
                    return code_page(
                        app,
                        req,
                        params,
                        &step,
                        Some("Enter the code from your authenticator app."),
                        StatusCode::BAD_REQUEST,
                    );
                };
                crate::http::on_heap(|| app.accounts.login_second_factor(mfa_token, code, &hosted))
                    .await
            }
        };
        match result {
            Ok(signed_in) => signed_in,
            Err(Error::InvalidMfaCode) => {
                return code_page(
                    app,
                    req,
                    params,
                    &step,
                    Some("That code is wrong or was used already."),
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(Error::PasskeyRefused(_) | Error::PasskeyChallengeInvalid) => {
                return code_page(
                    app,
                    req,
                    params,
                    &step,
                    Some("That passkey was not accepted. Try again."),
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(Error::InvalidMfaToken) => {
                return login_page(
                    app,
                    req,
                    params,
                    "",
                    Some("The sign-in took too long. Please sign in again."),
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(err) => return login_error(app, req, params, &email, &err),
        }
    } else if let Some((challenge_id, credential)) = passkey {
        let Some(credential) = credential else {
            return login_page(
                app,
                req,
                params,
                &email,
                Some("The passkey's answer could not be read. Try again."),
                StatusCode::BAD_REQUEST,
            );
        };
        match crate::http::on_heap(|| {
            app.accounts
                .login_with_passkey(challenge_id, &credential, &hosted)
        })
        .await
        {
            Ok(signed_in) => signed_in,
            Err(Error::PasskeyRefused(_) | Error::PasskeyChallengeInvalid) => {
                return login_page(
                    app,
                    req,
                    params,
                    &email,
                    Some(
                        "That passkey was not accepted. Try again, or sign in with your password.",
                    ),
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(err) => return login_error(app, req, params, &email, &err),
        }
    } else {
        let (Some(email), Some(password)) = (form.get("email"), form.get("password")) else {
            return login_page(
                app,
                req,
                params,
                &email,
                Some("Enter your email and password."),
                StatusCode::BAD_REQUEST,
            );
        };
        let password = SecretString::from(password.to_owned());
        match crate::http::on_heap(|| app.accounts.login(email, password, &hosted)).await {
            Ok(LoginOutcome::SignedIn(signed_in)) => *signed_in,
            Ok(LoginOutcome::SecondFactorRequired(challenge)) => {
                let step = SecondStep {
                    mfa_token: challenge.mfa_token.encode().expose_secret().to_owned(),
                    methods: challenge.methods.join(" "),
                };
                return code_page(app, req, params, &step, None, StatusCode::OK);
            }
            Err(err) => return login_error(app, req, params, email, &err),
        }
    };
    let token = signed_in.refresh.encode();
    let session = signed_in.session;
    let cookie = set_sso_cookie(&token, signed_in.refresh_expires_in);
    let (Checked::Authorize(request), Journey::Authorize(params)) = (checked, &journey) else {
        // Signed in for a device: on to its confirmation, with the new session.
        return see_other(&format!("device?{}", query(&journey.pairs())), &[cookie]);
    };
    let result = crate::http::on_heap(|| {
        app.accounts
            .continue_authorization(&request, &session, false, client)
    })
    .await;
    outcome(app, req, &request, params, result, vec![cookie])
}

/// A refused sign-in, as the JSON API words it, on the sign-in form.
fn login_error<S>(
    app: &App<S>,
    req: &Request,
    params: &Journey,
    email: &str,
    err: &Error,
) -> Reply {
    if err.is_fault() {
        return fault_page(app, err);
    }
    let (_, _, detail) = account_slug_title_detail(err);
    let status = account_status(err);
    let mut reply = login_page(app, req, params, email, Some(&detail), status);
    if let Error::TooManyAttempts {
        retry_after_seconds,
    }
    | Error::MfaLocked {
        retry_after_seconds,
    } = err
    {
        reply.response.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(*retry_after_seconds),
        );
    }
    reply
}

/// `POST /oauth2/consent`: `decision` `allow` or `deny`, by the signed-in user.
pub async fn consent<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let (form, journey, checked) = match posted(app, req, client).await {
        Ok(posted) => posted,
        Err(reply) => return *reply,
    };
    let (Checked::Authorize(request), Journey::Authorize(params)) = (checked, journey) else {
        return error_page(app, StatusCode::BAD_REQUEST, "This form is not a consent.");
    };
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return error_page(app, StatusCode::BAD_REQUEST, "Choose Allow or Deny.");
        }
    };
    let session = match browser_session(app, req).await {
        Ok(Some(session)) => session,
        // The session ended meanwhile: sign in again.
        Ok(None) => return see_other(&format!("login?{}", query(&params.pairs())), &[]),
        Err(reply) => return *reply,
    };
    let result = app
        .accounts
        .consent(&request, &session, allow, client)
        .await;
    outcome(app, req, &request, &params, result, Vec::new())
}

async fn browser_session<S: Store>(
    app: &App<S>,
    req: &Request,
) -> Result<Option<BrowserSession>, Box<Reply>> {
    app.accounts
        .browser_session(cookie_text(req).as_deref())
        .await
        .map_err(|err| Box::new(fault_page(app, &err)))
}

/// The logout request's parameters, checked: the client and where to send the browser after.
struct LogoutRequest {
    client_id: Option<ClientId>,
    /// A registered post-logout redirect URI, with `state` added.
    redirect: Option<String>,
    state: Option<String>,
    post_logout_redirect_uri: Option<String>,
    /// The session the `id_token_hint` names.
    hinted_session: Option<String>,
}

async fn logout_request<S: Store>(app: &App<S>, form: &Form) -> Result<LogoutRequest, Box<Reply>> {
    let hint = match form.get("id_token_hint") {
        Some(token) => Some(
            shared::verify_id_token_hint(
                app.verifier.keys(),
                app.accounts.issuer.settings(),
                token,
            )
            .map_err(|_| {
                error_page(
                    app,
                    StatusCode::BAD_REQUEST,
                    "The id_token_hint is not an ID token of this service.",
                )
            })?,
        ),
        None => None,
    };
    let named = form.get("client_id");
    if let (Some(named), Some(hint)) = (named, &hint)
        && hint.aud != named
    {
        return Err(error_page(
            app,
            StatusCode::BAD_REQUEST,
            "client_id and the id_token_hint name different applications.",
        )
        .into());
    }
    let client_id = named
        .map(str::to_owned)
        .or_else(|| hint.as_ref().map(|h| h.aud.clone()));
    let client_id = match client_id {
        Some(id) => Some(ClientId::parse(&id).ok_or_else(|| {
            error_page(app, StatusCode::BAD_REQUEST, "The client_id is not valid.")
        })?),
        None => None,
    };
    let state = form.get("state").map(str::to_owned);
    let post_logout = form.get("post_logout_redirect_uri").map(str::to_owned);
    let redirect = match &post_logout {
        None => None,
        Some(uri) => {
            let Some(id) = &client_id else {
                return Err(error_page(
                    app,
                    StatusCode::BAD_REQUEST,
                    "post_logout_redirect_uri needs client_id or id_token_hint.",
                )
                .into());
            };
            let registered = app
                .accounts
                .store
                .find_client(id)
                .await
                .map_err(|e| fault_page(app, &e.into()))?
                .filter(|c| !c.disabled && c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if registered.is_none() {
                return Err(error_page(
                    app,
                    StatusCode::BAD_REQUEST,
                    "The post_logout_redirect_uri is not registered for this application.",
                )
                .into());
            }
            let mut params = Vec::new();
            if let Some(state) = &state {
                params.push(("state", state.clone()));
            }
            Some(client_location(
                &accounts::flows::authorize::ClientRedirect {
                    redirect_uri: uri.clone(),
                    params,
                },
            ))
        }
    };
    Ok(LogoutRequest {
        client_id,
        redirect,
        state,
        post_logout_redirect_uri: post_logout,
        hinted_session: hint.and_then(|h| h.sid),
    })
}

/// Signed out: to the client's registered page, or a page that says so.
fn signed_out<S>(app: &App<S>, logout: &LogoutRequest) -> Reply {
    let cookies = [clear_sso_cookie()];
    match &logout.redirect {
        Some(location) => see_other(location, &cookies),
        None => Page::new(&app.pages, "Signed out")
            .set_cookie(clear_sso_cookie())
            .heading("You are signed out")
            .paragraph("You can close this window.")
            .render(),
    }
}

/// `GET /oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0): with an `id_token_hint`
/// of the browser's own session, the session ends at once; otherwise the user is asked.
pub async fn logout_get<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let form = match query_form(req) {
        Ok(form) => form,
        Err(why) => return error_page(app, StatusCode::BAD_REQUEST, &why),
    };
    let logout = match logout_request(app, &form).await {
        Ok(logout) => logout,
        Err(reply) => return *reply,
    };
    let session = match browser_session(app, req).await {
        Ok(session) => session,
        Err(reply) => return *reply,
    };
    let Some(session) = session else {
        // Nothing to end here.
        return signed_out(app, &logout);
    };
    let own_hint =
        logout.hinted_session.as_deref() == Some(session.family.family_id.to_string().as_str());
    if own_hint {
        if let Err(err) = app
            .accounts
            .end_browser_session(
                &session,
                logout.client_id.as_ref().map(ClientId::as_str),
                client,
            )
            .await
        {
            return fault_page(app, &err);
        }
        return signed_out(app, &logout);
    }
    let mut hidden: Vec<(&str, &str)> = Vec::new();
    if let Some(id) = &logout.client_id {
        hidden.push(("client_id", id.as_str()));
    }
    if let Some(uri) = &logout.post_logout_redirect_uri {
        hidden.push(("post_logout_redirect_uri", uri));
    }
    if let Some(state) = &logout.state {
        hidden.push(("state", state));
    }
    let mut page = Page::new(&app.pages, "Sign out")
        .with_csrf(req)
        .heading("Sign out?")
        .paragraph(&format!("You are signed in as {}.", session.user.email));
    if let Some(uri) = &logout.post_logout_redirect_uri {
        page = page.redirects_to(uri);
    }
    page.form(
        "logout",
        &hidden,
        &[],
        &[Button {
            text: "Sign out",
            name: None,
            secondary: false,
        }],
    )
    .render()
}

/// `POST /oauth2/logout`: the user confirmed.
pub async fn logout_post<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let form = match Form::from_request(req) {
        Ok(form) => form,
        Err(e) => return error_page(app, StatusCode::BAD_REQUEST, &e.description),
    };
    if !csrf_ok(req, form.get("csrf")) {
        return error_page(
            app,
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site.",
        );
    }
    let logout = match logout_request(app, &form).await {
        Ok(logout) => logout,
        Err(reply) => return *reply,
    };
    match browser_session(app, req).await {
        Ok(Some(session)) => {
            if let Err(err) = app
                .accounts
                .end_browser_session(
                    &session,
                    logout.client_id.as_ref().map(ClientId::as_str),
                    client,
                )
                .await
            {
                return fault_page(app, &err);
            }
        }
        Ok(None) => {}
        Err(reply) => return *reply,
    }
    signed_out(app, &logout)
}

/// `GET /oauth2/register`: the registration form, for an authorization request.
pub async fn register_get<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    match get_journey(app, req, client).await {
        Ok(journey) => register_page(app, req, &journey, "", &[], StatusCode::OK),
        Err(reply) => *reply,
    }
}

fn register_page<S>(
    app: &App<S>,
    req: &Request,
    params: &Journey,
    email: &str,
    errors: &[String],
    status: StatusCode,
) -> Reply {
    let mut page = Page::new(&app.pages, "Create an account")
        .with_csrf(req)
        .status(status)
        .heading("Create an account");
    for error in errors {
        page = page.error(error);
    }
    let pairs = params.pairs();
    page.form(
        "register",
        &pairs,
        &[
            Field {
                name: "email",
                label: "Email",
                kind: "email",
                autocomplete: "username",
                value: email,
                extra: "",
            },
            Field {
                name: "password",
                label: "Password (at least 8 characters)",
                kind: "password",
                autocomplete: "new-password",
                value: "",
                extra: " minlength=\"8\"",
            },
        ],
        &[Button {
            text: "Create account",
            name: None,
            secondary: false,
        }],
    )
    .link(
        &format!("login?{}", query(&pairs)),
        "Already have an account? Sign in",
    )
    .render()
}

/// `POST /oauth2/register`: `email` and `password`, as `POST /register` takes them; then the
/// sign-in form (with mail on, after the verification mail, if the deployment requires it).
pub async fn register_post<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let (form, params, _) = match posted(app, req, client).await {
        Ok(posted) => posted,
        Err(reply) => return *reply,
    };
    let raw_email = form.get("email").unwrap_or("");
    let email = Email::parse(raw_email);
    let password = NewPassword::parse(
        form.get("password").unwrap_or("").to_owned(),
        email.as_ref().ok(),
    );
    let (email, password) = match (email, password) {
        (Ok(email), Ok(password)) => (email, password),
        (email, password) => {
            let mut errors = Vec::new();
            if let Err(why) = email {
                errors.push(format!("Email {why}."));
            }
            if let Err(why) = password {
                errors.extend(why.into_iter().map(|w| format!("Password: {w}")));
            }
            return register_page(
                app,
                req,
                &params,
                raw_email,
                &errors,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    match app.accounts.register(email, password, client).await {
        Ok(_) => {
            let notice = if app.accounts.mail_on() {
                "Your account is ready. Check your mail to verify your address, then sign in."
            } else {
                "Your account is ready. Sign in."
            };
            login_page_with(
                app,
                req,
                &params,
                raw_email,
                None,
                Some(notice),
                StatusCode::OK,
            )
        }
        Err(err) if err.is_fault() => fault_page(app, &err),
        Err(err) => {
            let (_, _, detail) = account_slug_title_detail(&err);
            register_page(
                app,
                req,
                &params,
                raw_email,
                &[detail],
                account_status(&err),
            )
        }
    }
}

/// `GET /oauth2/forgot`: asks for the email a reset link goes to.
pub async fn forgot_get<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    match get_journey(app, req, client).await {
        Ok(journey) => forgot_page(app, req, &journey, None, StatusCode::OK),
        Err(reply) => *reply,
    }
}

fn forgot_page<S>(
    app: &App<S>,
    req: &Request,
    params: &Journey,
    message: Option<&str>,
    status: StatusCode,
) -> Reply {
    let mut page = Page::new(&app.pages, "Reset your password")
        .with_csrf(req)
        .status(status)
        .heading("Reset your password");
    if let Some(message) = message {
        page = page.paragraph(message);
    }
    let pairs = params.pairs();
    page.form(
        "forgot",
        &pairs,
        &[Field {
            name: "email",
            label: "Email",
            kind: "email",
            autocomplete: "username",
            value: "",
            extra: "",
        }],
        &[Button {
            text: "Send a reset link",
            name: None,
            secondary: false,
        }],
    )
    .link(&format!("login?{}", query(&pairs)), "Back to sign in")
    .render()
}

/// `POST /oauth2/forgot`: `email`, as `POST /password/forgot` takes it: the same answer for
/// every address.
pub async fn forgot_post<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let (form, params, _) = match posted(app, req, client).await {
        Ok(posted) => posted,
        Err(reply) => return *reply,
    };
    let email = match Email::parse(form.get("email").unwrap_or("")) {
        Ok(email) => email,
        Err(why) => {
            let message = format!("Email {why}.");
            return forgot_page(app, req, &params, Some(&message), StatusCode::BAD_REQUEST);
        }
    };
    match app.accounts.forgot_password(&email, client).await {
        Ok(()) => forgot_page(
            app,
            req,
            &params,
            Some("If an account with this email exists, a mail with a reset link is on its way."),
            StatusCode::OK,
        ),
        Err(err) if err.is_fault() => fault_page(app, &err),
        Err(err) => {
            let (_, _, detail) = account_slug_title_detail(&err);
            forgot_page(app, req, &params, Some(&detail), account_status(&err))
        }
    }
}

/// The page where the user enters a device's user code (RFC 8628 §3.3), with `value`
/// filled in and `error` above it.
fn device_entry_page<S>(
    app: &App<S>,
    req: &Request,
    value: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Reply {
    let mut page = Page::new(&app.pages, "Connect a device")
        .with_csrf(req)
        .status(status)
        .heading("Connect a device");
    if let Some(error) = error {
        page = page.error(error);
    }
    page.paragraph("Enter the code your device or command-line tool shows.")
        .form(
            "device",
            &[],
            &[Field {
                name: "user_code",
                label: "Code",
                kind: "text",
                autocomplete: "off",
                value,
                extra: " autocapitalize=\"characters\" spellcheck=\"false\" maxlength=\"32\"",
            }],
            &[CONTINUE],
        )
        .render()
}

/// A user code that cannot go on, on the entry page: unknown, expired or decided (400), or
/// too many lookups (429, `Retry-After`).
fn user_code_error<S>(app: &App<S>, req: &Request, code: &str, err: &Error) -> Reply {
    if err.is_fault() {
        return fault_page(app, err);
    }
    let (_, _, detail) = account_slug_title_detail(err);
    let mut reply = device_entry_page(app, req, code, Some(&detail), account_status(err));
    if let Error::TooManyUserCodes {
        retry_after_seconds,
    } = err
    {
        reply.response.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(*retry_after_seconds),
        );
    }
    reply
}

/// The signed-in user's confirmation: which application, with what access, for which code.
fn device_confirmation<S>(
    app: &App<S>,
    req: &Request,
    request: &DeviceRequest,
    session: &BrowserSession,
) -> Reply {
    let code = request.user_code.display();
    Page::new(&app.pages, "Connect a device")
        .with_csrf(req)
        .heading(&format!("Allow {} on your device?", request.client.name))
        .paragraph(&format!(
            "Signed in as {}. Only allow this if you started it yourself and your device \
             shows the code {code}. It asks to:",
            session.user.email
        ))
        .list(
            &request
                .scopes()
                .into_iter()
                .map(scope_description)
                .collect::<Vec<_>>(),
        )
        .form(
            "device",
            &[("user_code", &code)],
            &[],
            &[
                Button {
                    text: "Allow",
                    name: Some(("decision", "allow")),
                    secondary: false,
                },
                Button {
                    text: "Deny",
                    name: Some(("decision", "deny")),
                    secondary: true,
                },
            ],
        )
        .render()
}

/// The grant `code` names, then the sign-in (if the browser has no session) or the
/// confirmation.
async fn device_step<S: Store>(app: &App<S>, req: &Request, client: &Client, code: &str) -> Reply {
    match device_signed_in(app, req, client, code).await {
        Ok((request, session)) => device_confirmation(app, req, &request, &session),
        Err(reply) => *reply,
    }
}

/// The pending grant `code` names and the browser's session; else the reply that stops
/// here: the code's error, or the sign-in with the code carried along.
async fn device_signed_in<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    code: &str,
) -> Result<(DeviceRequest, BrowserSession), Box<Reply>> {
    let request = app
        .accounts
        .device_request(code, client)
        .await
        .map_err(|err| Box::new(user_code_error(app, req, code, &err)))?;
    match browser_session(app, req).await? {
        Some(session) => Ok((request, session)),
        None => {
            let code = request.user_code.display();
            Err(Box::new(see_other(
                &format!("login?{}", query(&[("user_code", &code)])),
                &[],
            )))
        }
    }
}

/// `GET /oauth2/device`: the code entry page; with `user_code` (the link a device shows as
/// `verification_uri_complete`), straight on to the sign-in or the confirmation.
pub async fn device_get<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let form = match query_form(req) {
        Ok(form) => form,
        Err(why) => return error_page(app, StatusCode::BAD_REQUEST, &why),
    };
    match form.get("user_code") {
        Some(code) => device_step(app, req, client, code).await,
        None => device_entry_page(app, req, "", None, StatusCode::OK),
    }
}

/// `POST /oauth2/device`: a `user_code` entered (on to the sign-in or the confirmation), or
/// the confirmation's `decision`, `allow` or `deny`, by the signed-in user.
pub async fn device_post<S: Store>(app: &App<S>, req: &Request, client: &Client) -> Reply {
    let form = match Form::from_request(req) {
        Ok(form) => form,
        Err(e) => return error_page(app, StatusCode::BAD_REQUEST, &e.description),
    };
    if !csrf_ok(req, form.get("csrf")) {
        return error_page(
            app,
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site.",
        );
    }
    let Some(code) = form.get("user_code") else {
        return device_entry_page(
            app,
            req,
            "",
            Some("Enter the code your device shows."),
            StatusCode::BAD_REQUEST,
        );
    };
    let allow = match form.get("decision") {
        None => return device_step(app, req, client, code).await,
        Some("allow") => true,
        Some("deny") => false,
        Some(_) => return error_page(app, StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    // The code checked again; a session that ended meanwhile signs in again.
    let (request, session) = match device_signed_in(app, req, client, code).await {
        Ok(found) => found,
        Err(reply) => return *reply,
    };
    match app
        .accounts
        .decide_device(&request, &session, allow, client)
        .await
    {
        Ok(()) if allow => Page::new(&app.pages, "Device connected")
            .heading("Your device is connected")
            .paragraph(&format!(
                "{} is signed in on your device. You can close this window.",
                request.client.name
            ))
            .render(),
        Ok(()) => Page::new(&app.pages, "Device not connected")
            .heading("Access denied")
            .paragraph("Your device was not signed in. You can close this window.")
            .render(),
        Err(err) => user_code_error(app, req, code, &err),
    }
}

/// A page for a method the hosted page does not answer.
pub fn method_not_allowed<S>(app: &App<S>, allow: &str) -> Reply {
    let mut reply = error_page(
        app,
        StatusCode::METHOD_NOT_ALLOWED,
        "This page cannot be reached this way.",
    );
    if let Ok(value) = HeaderValue::from_str(allow) {
        reply
            .response
            .headers_mut()
            .insert(http::header::ALLOW, value);
    }
    reply
}
