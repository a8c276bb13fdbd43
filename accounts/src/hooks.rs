//! Synchronous hooks: the deployment's own code, asked before a change: `before-user-created`
//! (allow or deny a registration, before anything is written) and `customize-access-token`
//! (claims of the deployment's own in the access tokens of a sign-in or refresh, asked before
//! the session is written).
//!
//! A hook is a [`HookTarget`]: an HTTPS URL (the request signed per Standard Webhooks) or a
//! Lambda function ARN (invoked with the request as its payload; IAM is its authentication).
//! It is reached through a [`HookTransport`] the doors provide; this module holds the
//! contract: what is sent, which answers count, and what a failure means.
//!
//! Answers (the contract): `before-user-created` `{"decision":"allow"}`, or
//! `{"decision":"deny","message":"…"}` with a message the user sees; `customize-access-token`
//! `{"claims":{…}}` (at most [`MAX_CLAIMS`], names not reserved, values text of at most
//! [`MAX_CLAIM_CHARS`] characters, whole numbers or flags). Anything else is malformed, and
//! handled as a failure: `HOOK_FAILURE=closed` (the default) refuses with 503
//! `hook-unavailable`, `open` goes on as if allowed (without claims).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shared::config::{self, ConfigError, Env};
use shared::{CustomClaim, RESERVED_CLAIMS};

use crate::audit::{Event, record_refusal};
use crate::error::Error;
use crate::model::client::Client;
use crate::model::credentials::Email;
use crate::model::user::UserRecord;
use crate::webhook::{WebhookSecret, url_allowed};

/// Longest message a denial may show the user.
pub const MAX_MESSAGE_CHARS: usize = 300;
/// Most claims a `customize-access-token` answer may add.
pub const MAX_CLAIMS: usize = 20;
/// Longest text value of such a claim.
pub const MAX_CLAIM_CHARS: usize = 256;

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
    #[error("the hook function failed")]
    FunctionFailed,
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
            HookError::FunctionFailed => "function_error",
            HookError::Unreachable(_) => "unreachable",
            HookError::Malformed(_) => "malformed",
        }
    }
}

/// Where a hook is: `HOOK_BEFORE_USER_CREATED` or `HOOK_CUSTOMIZE_ACCESS_TOKEN`'s value.
#[derive(Clone, PartialEq, Eq)]
pub enum HookTarget {
    /// `https://…` (or `http://` to this machine): a `POST` signed per Standard Webhooks.
    Https(String),
    /// `arn:aws:lambda:<region>:<account>:function:<name>[:<alias or version>]`: invoked
    /// synchronously with the request body as its payload.
    Lambda(String),
}

impl std::fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // A URL may carry a credential in its query: never printed.
            HookTarget::Https(_) => f.write_str("Https(..)"),
            HookTarget::Lambda(arn) => f.debug_tuple("Lambda").field(arn).finish(),
        }
    }
}

impl HookTarget {
    /// A URL as [`url_allowed`] allows, or a Lambda function ARN.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        if text.starts_with("arn:") {
            return if lambda_arn(text) {
                Ok(HookTarget::Lambda(text.to_owned()))
            } else {
                Err("a Lambda hook must be a function ARN, \
                     arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]")
            };
        }
        if url_allowed(text) && !text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Ok(HookTarget::Https(text.to_owned()))
        } else {
            Err(
                "must be an https:// URL (http:// only to 127.0.0.1 or localhost) \
                 or a Lambda function ARN",
            )
        }
    }
}

/// Whether `text` is a Lambda function ARN, optionally qualified by a version or alias
/// (the forms Invoke takes, and IAM can scope a permission to exactly).
fn lambda_arn(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    let name_ok = |name: &str| {
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let qualifier_ok = |q: &str| {
        (1..=128).contains(&q.len())
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_$".contains(c))
    };
    let base = match parts.as_slice() {
        [arn, partition, lambda, region, account, function, name] => (
            *arn, *partition, *lambda, *region, *account, *function, *name, None,
        ),
        [
            arn,
            partition,
            lambda,
            region,
            account,
            function,
            name,
            qualifier,
        ] => (
            *arn,
            *partition,
            *lambda,
            *region,
            *account,
            *function,
            *name,
            Some(*qualifier),
        ),
        _ => return false,
    };
    let (arn, partition, lambda, region, account, function, name, qualifier) = base;
    arn == "arn"
        && (partition == "aws" || partition.starts_with("aws-"))
        && partition
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-')
        && lambda == "lambda"
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && function == "function"
        && name_ok(name)
        && qualifier.is_none_or(qualifier_ok)
}

/// A request to a hook: where it goes, the JSON body, and (to a URL) the Standard Webhooks
/// headers.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub target: HookTarget,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub timeout: Duration,
}

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Value, HookError>> + Send + 'a>>;

/// How a hook is reached (HTTPS and Lambda's Invoke in auth-api and local-api): the request
/// sent, the answer's JSON body back, any status but 2xx (or a function error) an error,
/// never longer than the request's timeout.
pub trait HookTransport: Send + Sync {
    fn call(&self, request: HookRequest) -> Answer<'_>;
}

/// The hooks a deployment configured.
#[derive(Clone, Default)]
pub struct Hooks {
    pub before_user_created: Option<HookTarget>,
    pub customize_access_token: Option<HookTarget>,
    pub secret: Option<WebhookSecret>,
    pub timeout_ms: u64,
    pub failure: HookFailure,
    pub transport: Option<Arc<dyn HookTransport>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("before_user_created", &self.before_user_created)
            .field("customize_access_token", &self.customize_access_token)
            .field("timeout_ms", &self.timeout_ms)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// `HOOK_BEFORE_USER_CREATED` and `HOOK_CUSTOMIZE_ACCESS_TOKEN` (an https URL or a Lambda
/// function ARN), `HOOK_SECRET` (`whsec_…`, required with a URL hook), `HOOK_TIMEOUT_MS` (100
/// to 10000, default 2000) and `HOOK_FAILURE` (`closed`, the default, or `open`). The
/// transport is the door's to add.
pub fn hooks_from_env(env: &dyn Env) -> Result<Hooks, ConfigError> {
    let target = |variable: &'static str| -> Result<Option<HookTarget>, ConfigError> {
        config::optional(env, variable)
            .filter(|text| !text.trim().is_empty())
            .map(|text| HookTarget::parse(&text).map_err(|why| ConfigError::new(variable, why)))
            .transpose()
    };
    let before_user_created = target("HOOK_BEFORE_USER_CREATED")?;
    let customize_access_token = target("HOOK_CUSTOMIZE_ACCESS_TOKEN")?;
    let secret = config::optional(env, "HOOK_SECRET")
        .map(|text| WebhookSecret::parse(&text).map_err(|why| ConfigError::new("HOOK_SECRET", why)))
        .transpose()?;
    let signs = [&before_user_created, &customize_access_token]
        .into_iter()
        .any(|hook| matches!(hook, Some(HookTarget::Https(_))));
    if signs && secret.is_none() {
        return Err(ConfigError::new(
            "HOOK_SECRET",
            "a URL hook needs a secret (whsec_…) to sign its requests with",
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
        customize_access_token,
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

/// A `customize-access-token` answer's claims, checked.
fn claims_of(answer: &Value) -> Result<BTreeMap<String, CustomClaim>, HookError> {
    let Some(claims) = answer.get("claims").and_then(Value::as_object) else {
        return Err(HookError::Malformed(
            "the answer needs an object \"claims\"",
        ));
    };
    if claims.len() > MAX_CLAIMS {
        return Err(HookError::Malformed("more than 20 claims"));
    }
    let mut out = BTreeMap::new();
    for (name, value) in claims {
        let well_named = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        if !well_named {
            return Err(HookError::Malformed(
                "a claim's name must be 1 to 64 letters, digits, _ . : - (a letter first)",
            ));
        }
        if RESERVED_CLAIMS.contains(&name.as_str()) {
            return Err(HookError::Malformed("a claim may not have a reserved name"));
        }
        let claim = match value {
            Value::Bool(flag) => CustomClaim::Flag(*flag),
            Value::Number(number) => CustomClaim::Integer(number.as_i64().ok_or(
                HookError::Malformed("a number claim must be a whole number"),
            )?),
            Value::String(text)
                if text.chars().count() <= MAX_CLAIM_CHARS
                    && !text.chars().any(char::is_control) =>
            {
                CustomClaim::Text(text.clone())
            }
            Value::String(_) => {
                return Err(HookError::Malformed(
                    "a text claim must be at most 256 characters, no control characters",
                ));
            }
            _ => {
                return Err(HookError::Malformed(
                    "a claim must be text, a whole number or a flag",
                ));
            }
        };
        out.insert(name.clone(), claim);
    }
    Ok(out)
}

impl Hooks {
    /// Whether any hook is a Lambda function (the door then needs an SDK client).
    pub fn any_lambda(&self) -> bool {
        [&self.before_user_created, &self.customize_access_token]
            .into_iter()
            .any(|hook| matches!(hook, Some(HookTarget::Lambda(_))))
    }

    /// Whether any hook is configured.
    pub fn any(&self) -> bool {
        self.before_user_created.is_some() || self.customize_access_token.is_some()
    }

    /// The request of `body` to `target` through the door's transport: signed when it goes
    /// to a URL. A hook without its transport (or a URL hook without its secret) is a wiring
    /// bug of the door: refused, never skipped, so a configured check can never be silently
    /// allowed.
    fn request(
        &self,
        target: &HookTarget,
        body: Value,
    ) -> Result<(HookRequest, &Arc<dyn HookTransport>), Error> {
        let missing = || Error::internal("a hook is configured without its secret or transport");
        let transport = self.transport.as_ref().ok_or_else(missing)?;
        let body = body.to_string();
        let headers = match target {
            HookTarget::Https(_) => {
                let secret = self.secret.as_ref().ok_or_else(missing)?;
                let id = format!("hook_{}", uuid::Uuid::new_v4().simple());
                let timestamp = shared::token::now_unix();
                vec![
                    ("webhook-id", id.clone()),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", secret.sign(&id, timestamp, &body)),
                ]
            }
            HookTarget::Lambda(_) => Vec::new(),
        };
        let request = HookRequest {
            target: target.clone(),
            headers,
            body,
            timeout: Duration::from_millis(self.timeout_ms),
        };
        Ok((request, transport))
    }

    /// Asks `customize-access-token` for the claims of the access tokens `user` is about to
    /// get from `client_id`, signed in by `amr`: none without the hook; `HookUnavailable`
    /// when it failed and failures close (no claims when they open).
    pub async fn custom_claims(
        &self,
        user: &UserRecord,
        amr: &[String],
        client_id: &str,
        client: &Client,
    ) -> Result<BTreeMap<String, CustomClaim>, Error> {
        let Some(target) = &self.customize_access_token else {
            return Ok(BTreeMap::new());
        };
        let (request, transport) = self.request(
            target,
            json!({
                "type": "customize-access-token",
                "user_id": user.user_id.to_string(),
                "email": user.email.as_str(),
                "email_verified": user.email_verified,
                "roles": user.roles,
                "amr": amr,
                "client_id": client_id,
                "source_ip": client.address(),
            }),
        )?;
        match transport.call(request).await.and_then(|a| claims_of(&a)) {
            Ok(claims) => Ok(claims),
            Err(err) => {
                record_refusal(
                    Event::HookFailed,
                    Some(&user.user_id.to_string()),
                    err.reason(),
                    client,
                );
                tracing::warn!(hook = "customize-access-token", error = %err, "a hook failed");
                match self.failure {
                    HookFailure::Closed => Err(Error::HookUnavailable),
                    HookFailure::Open => Ok(BTreeMap::new()),
                }
            }
        }
    }

    /// Asks `before-user-created` whether `email` may register by `method`: `Ok` to go on,
    /// `RegistrationDenied` with the hook's message, `HookUnavailable` when it failed and
    /// failures close.
    pub async fn before_user_created(
        &self,
        email: &Email,
        method: &str,
        client: &Client,
    ) -> Result<(), Error> {
        let Some(target) = &self.before_user_created else {
            return Ok(());
        };
        let (request, transport) = self.request(
            target,
            json!({
                "type": "before-user-created",
                "email": email.as_str(),
                "method": method,
                "source_ip": client.address(),
            }),
        )?;
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
            (
                vec![(
                    "HOOK_CUSTOMIZE_ACCESS_TOKEN",
                    "arn:aws:lambda:us-east-1:123456789012:layer:x",
                )],
                "HOOK_CUSTOMIZE_ACCESS_TOKEN",
            ),
        ] {
            let env: HashMap<&str, &str> = bad.into_iter().collect();
            assert_eq!(hooks_from_env(&env).unwrap_err().variable, variable);
        }
    }

    #[test]
    fn a_hook_is_a_url_or_a_lambda_function_arn() {
        for arn in [
            "arn:aws:lambda:us-east-1:123456789012:function:signup-check",
            "arn:aws:lambda:eu-west-1:123456789012:function:claims:live",
            "arn:aws:lambda:us-east-1:123456789012:function:claims:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:claims:7",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
            " arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f ",
        ] {
            assert_eq!(
                HookTarget::parse(arn),
                Ok(HookTarget::Lambda(arn.trim().to_owned())),
                "{arn}"
            );
        }
        for bad in [
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:12345678901:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-east-1:123456789012:function:f:alias:extra",
            "arn:aws:lambda:us-east-1:123456789012:function:f*",
            "arn:aws:lambda::123456789012:function:f",
            "arn:evil:lambda:us-east-1:123456789012:function:f",
            "signup-check",
            "https://hooks.example.com/a b",
            "http://hooks.example.com/signup",
        ] {
            assert!(HookTarget::parse(bad).is_err(), "{bad}");
        }
        // Lambda hooks alone need no signing secret: IAM authenticates the call.
        let lambda_only = hooks_from_env(&HashMap::from([(
            "HOOK_BEFORE_USER_CREATED",
            "arn:aws:lambda:us-east-1:123456789012:function:signup-check",
        )]))
        .unwrap();
        assert!(lambda_only.any_lambda());
        assert!(lambda_only.secret.is_none());
        // A URL's query may hold a credential: the settings' Debug never shows it.
        let with_url = hooks_from_env(&HashMap::from([
            (
                "HOOK_CUSTOMIZE_ACCESS_TOKEN",
                "https://hooks.example.com/claims?key=s3cr3t",
            ),
            ("HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ]))
        .unwrap();
        assert!(!with_url.any_lambda());
        assert!(!format!("{with_url:?}").contains("s3cr3t"));
    }

    #[test]
    fn claims_are_bounded_and_never_reserved() {
        let ok = claims_of(&json!({"claims": {"tenant": "acme", "plan_level": 3, "beta": true}}))
            .unwrap();
        assert_eq!(ok["tenant"], CustomClaim::Text("acme".into()));
        assert_eq!(ok["plan_level"], CustomClaim::Integer(3));
        assert_eq!(ok["beta"], CustomClaim::Flag(true));
        assert!(claims_of(&json!({"claims": {}})).unwrap().is_empty());
        for bad in [
            json!({}),
            json!({"claims": []}),
            json!({"claims": {"sub": "someone-else"}}),
            json!({"claims": {"roles": "admin"}}),
            json!({"claims": {"scope": "admin"}}),
            json!({"claims": {"x": 1.5}}),
            json!({"claims": {"x": [1]}}),
            json!({"claims": {"x": {"y": 1}}}),
            json!({"claims": {"x": null}}),
            json!({"claims": {"1x": 1}}),
            json!({"claims": {"x y": 1}}),
            json!({"claims": {"x": "a".repeat(257)}}),
            json!({"claims": (0..21).map(|i| (format!("c{i}"), json!(i))).collect::<serde_json::Map<_, _>>()}),
        ] {
            assert!(claims_of(&bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_hook_without_its_transport_refuses_rather_than_allows() {
        let hooks = Hooks {
            before_user_created: Some(HookTarget::Https("https://hooks.example.com/signup".into())),
            customize_access_token: Some(HookTarget::Lambda(
                "arn:aws:lambda:us-east-1:123456789012:function:claims".into(),
            )),
            secret: Some(WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            failure: HookFailure::Open,
            transport: None,
        };
        let client = Client::new(Some("203.0.113.7"), None);
        let email = Email::parse("ada@example.com").unwrap();
        let user = UserRecord::new(
            email.clone(),
            String::new().into(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert!(matches!(
            hooks.before_user_created(&email, "password", &client).await,
            Err(Error::Internal(_))
        ));
        assert!(matches!(
            hooks.custom_claims(&user, &[], "api", &client).await,
            Err(Error::Internal(_))
        ));
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
