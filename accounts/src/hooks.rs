//! Synchronous hooks: the deployment's own code, asked before a change. This release has
//! `before-user-created` (allow or deny a registration, before anything is written).
//!
//! A hook is reached through a [`HookTransport`] (the doors provide one: HTTPS with a
//! Standard Webhooks signature on the request); this module holds the contract: what is
//! sent, which answers count, and what a failure means.
//!
//! Answers (the contract): `{"decision":"allow"}`, or `{"decision":"deny","message":"…"}`
//! with a message the user sees. Anything else is malformed, and handled as a failure:
//! `HOOK_FAILURE=closed` (the default) refuses with 503 `hook-unavailable`, `open` goes on
//! as if allowed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shared::config::{self, ConfigError, Env};

use crate::audit::{Event, record_refusal};
use crate::error::Error;
use crate::model::client::Client;
use crate::model::credentials::Email;
use crate::webhook::WebhookSecret;

/// Longest message a denial may show the user.
pub const MAX_MESSAGE_CHARS: usize = 300;
/// `HOOK_TIMEOUT_MS` unless set.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// What to do when a hook fails, times out or answers out of contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HookFailure {
    /// Refuse the change (503).
    #[default]
    Closed,
    /// Go on as if the hook had allowed it.
    Open,
}

/// Why a hook gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("the hook did not answer within {0} ms")]
    Timeout(u64),
    #[error("the hook answered status {0}")]
    Status(u16),
    #[error("the hook could not be reached")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the hook's answer is out of contract: {0}")]
    Malformed(&'static str),
}

impl HookError {
    /// The audit line's reason: a fixed word.
    pub fn reason(&self) -> &'static str {
        match self {
            HookError::Timeout(_) => "timeout",
            HookError::Status(_) => "status",
            HookError::Unreachable(_) => "unreachable",
            HookError::Malformed(_) => "malformed",
        }
    }
}

/// A request to a hook: its URL, the JSON body, and the Standard Webhooks headers.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub url: String,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub timeout: Duration,
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Value, HookError>> + Send + 'a>>;

/// How a hook is reached (HTTPS in auth-api and local-api): the request sent, the answer's
/// JSON body back, any status but 2xx an error, never longer than the request's timeout.
pub trait HookTransport: Send + Sync {
    fn call(&self, request: HookRequest) -> Answer<'_>;
}

/// The hooks a deployment configured.
#[derive(Clone, Default)]
pub struct Hooks {
    pub before_user_created: Option<String>,
    pub secret: Option<WebhookSecret>,
    pub timeout_ms: u64,
    pub failure: HookFailure,
    pub transport: Option<Arc<dyn HookTransport>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("before_user_created", &self.before_user_created)
            .field("timeout_ms", &self.timeout_ms)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// Whether `url` may be a hook: HTTPS, or plain HTTP to this machine (local-api, tests).
pub fn hook_url_allowed(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty();
    }
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|host| {
            url.strip_prefix(host)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        })
}

/// `HOOK_BEFORE_USER_CREATED` (an https URL), `HOOK_SECRET` (`whsec_…`, required with a
/// hook), `HOOK_TIMEOUT_MS` (100 to 10000, default 2000) and `HOOK_FAILURE` (`closed`, the
/// default, or `open`). The transport is the door's to add.
pub fn hooks_from_env(env: &dyn Env) -> Result<Hooks, ConfigError> {
    let before_user_created = config::optional(env, "HOOK_BEFORE_USER_CREATED")
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty());
    if let Some(url) = &before_user_created
        && !hook_url_allowed(url)
    {
        return Err(ConfigError::new(
            "HOOK_BEFORE_USER_CREATED",
            "must be an https:// URL (http:// only to 127.0.0.1 or localhost)",
        ));
    }
    let secret = config::optional(env, "HOOK_SECRET")
        .map(|text| WebhookSecret::parse(&text).map_err(|why| ConfigError::new("HOOK_SECRET", why)))
        .transpose()?;
    if before_user_created.is_some() && secret.is_none() {
        return Err(ConfigError::new(
            "HOOK_SECRET",
            "a hook needs a secret (whsec_…) to sign its requests with",
        ));
    }
    let timeout_ms = match config::optional(env, "HOOK_TIMEOUT_MS") {
        None => DEFAULT_TIMEOUT_MS,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| (100..=10_000).contains(ms))
            .ok_or_else(|| ConfigError::new("HOOK_TIMEOUT_MS", "must be 100 to 10000"))?,
    };
    let failure = match config::optional(env, "HOOK_FAILURE")
        .as_deref()
        .map(str::trim)
    {
        None | Some("closed") => HookFailure::Closed,
        Some("open") => HookFailure::Open,
        Some(_) => return Err(ConfigError::new("HOOK_FAILURE", "must be closed or open")),
    };
    Ok(Hooks {
        before_user_created,
        secret,
        timeout_ms,
        failure,
        transport: None,
    })
}

/// A denial's message, as the user will see it: trimmed, 1 to [`MAX_MESSAGE_CHARS`]
/// characters, no control characters.
fn message_of(answer: &Value) -> Result<String, HookError> {
    let text = answer["message"]
        .as_str()
        .map(str::trim)
        .ok_or(HookError::Malformed("a denial needs a message"))?;
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_MESSAGE_CHARS || text.chars().any(char::is_control) {
        return Err(HookError::Malformed(
            "a denial's message must be 1 to 300 characters, no control characters",
        ));
    }
    Ok(text.to_owned())
}

impl Hooks {
    /// Asks `before-user-created` whether `email` may register by `method`: `Ok` to go on,
    /// `RegistrationDenied` with the hook's message, `HookUnavailable` when it failed and
    /// failures close.
    pub async fn before_user_created(
        &self,
        email: &Email,
        method: &str,
        client: &Client,
    ) -> Result<(), Error> {
        let (Some(url), Some(secret), Some(transport)) =
            (&self.before_user_created, &self.secret, &self.transport)
        else {
            return Ok(());
        };
        let id = format!("hook_{}", uuid::Uuid::new_v4().simple());
        let body = json!({
            "type": "before-user-created",
            "email": email.as_str(),
            "method": method,
            "source_ip": client.address(),
        })
        .to_string();
        let timestamp = shared::token::now_unix();
        let request = HookRequest {
            url: url.clone(),
            headers: vec![
                ("webhook-id", id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", secret.sign(&id, timestamp, &body)),
            ],
            body,
            timeout: Duration::from_millis(self.timeout_ms),
        };
        let answered =
            transport
                .call(request)
                .await
                .and_then(|answer| match answer["decision"].as_str() {
                    Some("allow") => Ok(None),
                    Some("deny") => message_of(&answer).map(Some),
                    _ => Err(HookError::Malformed("decision must be allow or deny")),
                });
        match answered {
            Ok(None) => Ok(()),
            Ok(Some(message)) => {
                record_refusal(Event::RegistrationDenied, None, "hook", client);
                Err(Error::RegistrationDenied(message))
            }
            Err(err) => {
                record_refusal(Event::HookFailed, None, err.reason(), client);
                tracing::warn!(hook = "before-user-created", error = %err, "a hook failed");
                match self.failure {
                    HookFailure::Closed => Err(Error::HookUnavailable),
                    HookFailure::Open => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn settings_are_checked() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let ok = hooks_from_env(&HashMap::from([
            (
                "HOOK_BEFORE_USER_CREATED",
                "https://hooks.example.com/signup",
            ),
            ("HOOK_SECRET", secret),
            ("HOOK_TIMEOUT_MS", "500"),
            ("HOOK_FAILURE", "open"),
        ]))
        .unwrap();
        assert_eq!(ok.timeout_ms, 500);
        assert_eq!(ok.failure, HookFailure::Open);
        let none = hooks_from_env(&HashMap::<&str, &str>::new()).unwrap();
        assert!(none.before_user_created.is_none());
        assert_eq!(none.failure, HookFailure::Closed);
        for (bad, variable) in [
            (
                vec![("HOOK_BEFORE_USER_CREATED", "https://h.example")],
                "HOOK_SECRET",
            ),
            (
                vec![
                    ("HOOK_BEFORE_USER_CREATED", "http://h.example"),
                    ("HOOK_SECRET", secret),
                ],
                "HOOK_BEFORE_USER_CREATED",
            ),
            (vec![("HOOK_TIMEOUT_MS", "50")], "HOOK_TIMEOUT_MS"),
            (vec![("HOOK_FAILURE", "maybe")], "HOOK_FAILURE"),
            (vec![("HOOK_SECRET", "whsec_c2hvcnQ=")], "HOOK_SECRET"),
        ] {
            let env: HashMap<&str, &str> = bad.into_iter().collect();
            assert_eq!(hooks_from_env(&env).unwrap_err().variable, variable);
        }
    }

    #[test]
    fn a_denial_s_message_is_bounded() {
        assert_eq!(
            message_of(&json!({"message": "  Use your work address. "})).unwrap(),
            "Use your work address."
        );
        assert!(message_of(&json!({})).is_err());
        assert!(message_of(&json!({"message": ""})).is_err());
        assert!(message_of(&json!({"message": "a\u{7}b"})).is_err());
        assert!(message_of(&json!({"message": "x".repeat(301)})).is_err());
    }
}
