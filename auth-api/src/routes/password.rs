//! `POST /password`: change the caller's password.

use accounts::model::client::{Caller, Client};
use accounts::model::credentials::NewPassword;
use accounts::store::Store;
use lambda_http::Request;
use secrecy::SecretString;

use crate::app::App;
use crate::http::body::{Fields, JsonObject, optional_code};
use crate::http::problem::ApiError;
use crate::http::reply::Reply;

/// `POST /password {"current_password","new_password","code"?}` (protected) → 200 with a new
/// access token and a new session; every other session of the user ends, and the owner is
/// mailed. A two-factor user also gives a current `code`.
pub async fn change<S: Store>(
    app: &App<S>,
    req: &Request,
    client: &Client,
    caller: &Caller,
) -> Result<Reply, ApiError> {
    let mut body = JsonObject::from_request(req, &["current_password", "new_password", "code"])?;
    let mut fields = Fields::default();
    let code = fields.take(optional_code(&mut body)).flatten();
    let current = fields.take(body.take_string("current_password"));
    let new = match fields.take(body.take_string("new_password")) {
        Some(raw) if current.as_deref() == Some(raw.as_str()) => {
            fields.refuse("new_password", "must differ from the current password");
            None
        }
        Some(raw) => fields.take_all("new_password", NewPassword::parse(raw, Some(&caller.email))),
        None => None,
    };
    let (Some(current), Some(new), true) = (current, new, fields.clean()) else {
        return Err(fields.into_error());
    };
    let signed_in = app
        .accounts
        .change_password(caller, client, SecretString::from(current), new, code)
        .await?;
    Ok(Reply::signed_in(&app.browser, &signed_in))
}
