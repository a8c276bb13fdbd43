//! Sign-in through other identity providers: `GET /oauth2/federate/{provider}` (off to the
//! provider, the browser bound by a cookie), `GET|POST /oauth2/callback/{provider}` (back:
//! on to the hosted pages' journey with a browser session, or to the app with a one-time
//! code), and `POST /federation/exchange {"code"}` (that code for the usual tokens).

use accounts::error::Error;
use accounts::flows::federation::{Callback, FederationEnd};
use accounts::model::client::Client;
use accounts::store::Store;
use http::StatusCode;
use lambda_http::Request;
use secrecy::ExposeSecret;

use crate::app::App;
use crate::http::body::{Fields, JsonObject};
use crate::http::browser::cookie;
use crate::http::oauth::Form;
use crate::http::pages::{query, see_other, set_sso_cookie};
use crate::http::problem::{ApiError, account_slug_title_detail, account_status};
use crate::http::reply::Reply;
use crate::routes::pages::error_page;

/// The cookie binding a sign-in under way to the browser that started it.
pub const BINDING_COOKIE: &str = "__Host-fed";

/// The parameters of a hosted-pages journey: an authorization request's or a device's.
fn is_journey(form: &Form) -> bool {
    form.contains("client_id") || form.contains("user_code")
}

/// The binding cookie: `SameSite=None`, so a provider's `form_post` brings it back; its
/// value only binds, the state proves the rest.
fn binding_cookie(value: &str, max_age_seconds: i64) -> String {
    format!(
        "{BINDING_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=None; Max-Age={max_age_seconds}"
    )
}

/// `{issuer}/oauth2/callback/{provider}`: where the provider sends the browser back.
fn redirect_uri<S>(app: &App<S>, provider: &str) -> String {
    format!(
        "{}/oauth2/callback/{provider}",
        app.accounts.issuer.settings().issuer
    )
}

/// A refusal as a page, in the JSON API's words; a fault's cause logged, never shown.
fn refusal_page<S>(app: &App<S>, err: &Error) -> Reply {
    if err.is_fault() {
        tracing::error!(error = %shared::error_chain(err), "a federated sign-in failed");
        return error_page(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Try again later.",
        );
    }
    let (_, _, detail) = account_slug_title_detail(err);
    error_page(app, account_status(err), &detail)
}

/// `GET /oauth2/federate/{provider}`: off to the provider. With a hosted-pages journey in
/// the query (an authorization request's parameters, or a `user_code`) the sign-in comes
/// back to it; with a `link_ticket` it links the provider to the account that asked for the
/// ticket; without either, it ends on the app (`FEDERATION_APP_URL`).
pub async fn start<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    provider: &str,
) -> Reply {
    let text = req.uri().query().unwrap_or("");
    let form = match Form::parse(text) {
        Ok(form) => form,
        Err(e) => return error_page(app, StatusCode::BAD_REQUEST, &e.description),
    };
    let link_ticket = form.get("link_ticket");
    let journey = (is_journey(&form) && link_ticket.is_none()).then(|| text.to_owned());
    match app
        .accounts
        .start_federation(
            provider,
            journey,
            link_ticket,
            &redirect_uri(app, provider),
            client,
        )
        .await
    {
        Ok(started) => see_other(
            &started.location,
            &[binding_cookie(
                started.binding.expose_secret(),
                accounts::model::federation::STATE_TTL_MS / 1000,
            )],
        ),
        Err(err) => refusal_page(app, &err),
    }
}

/// `GET|POST /oauth2/callback/{provider}`: back from the provider (`code` and `state`, or
/// `error`, in the query or, `form_post`, the form).
pub async fn callback<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    provider: &str,
) -> Reply {
    let form = match req.method() == http::Method::POST {
        true => Form::from_request(req),
        false => Form::parse(req.uri().query().unwrap_or("")),
    };
    let form = match form {
        Ok(form) => form,
        Err(e) => return error_page(app, StatusCode::BAD_REQUEST, &e.description),
    };
    let callback = Callback {
        code: form.get("code").map(str::to_owned),
        state: form.get("state").map(str::to_owned),
        error: form.get("error").map(str::to_owned),
    };
    let binding = cookie(req.headers(), BINDING_COOKIE);
    let clear = binding_cookie("", 0);
    let ended = app
        .accounts
        .finish_federation(
            provider,
            callback,
            binding.as_ref().map(|b| b.expose_secret()),
            &redirect_uri(app, provider),
            client,
        )
        .await;
    match ended {
        Ok(FederationEnd::App { location }) => see_other(&location, &[clear]),
        Ok(FederationEnd::Journey { journey, session }) => {
            let sso = set_sso_cookie(&session.refresh.encode(), session.refresh_expires_in);
            let Ok(form) = Form::parse(&journey) else {
                return error_page(
                    app,
                    StatusCode::BAD_REQUEST,
                    "The sign-in request is malformed.",
                );
            };
            // Back through the pages, which check the journey again and now find the
            // browser session. A fresh sign-in satisfies `prompt=login`: it is not asked
            // again (or the provider would be, forever).
            let next = match form.get("user_code") {
                Some(code) => format!("../device?{}", query(&[("user_code", code)])),
                None => {
                    let pairs: Vec<(&str, &str)> = form
                        .pairs()
                        .filter(|(name, value)| !(*name == "prompt" && *value == "login"))
                        .collect();
                    format!("../authorize?{}", query(&pairs))
                }
            };
            see_other(&next, &[sso, clear])
        }
        Err(err) => {
            let mut reply = refusal_page(app, &err);
            if let Ok(value) = http::HeaderValue::from_str(&clear) {
                reply
                    .response
                    .headers_mut()
                    .append(http::header::SET_COOKIE, value);
            }
            reply
        }
    }
}

/// `POST /federation/exchange {"code"}`: the one-time code a sign-in at a provider ended
/// with, for the answer `/login` gives (once, within a minute).
pub async fn exchange<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["code"])?;
    let mut fields = Fields::default();
    let Some(code) = fields.take(body.take_string("code")) else {
        return Err(fields.into_error());
    };
    let signed_in = app.accounts.exchange_federation(&code, client).await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}
