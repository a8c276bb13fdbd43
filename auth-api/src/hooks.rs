//! The transports of the synchronous hooks ([`accounts::hooks`]), each bounded by the hook's
//! timeout and taking at most 16 KiB of answer:
//! - a URL: a `POST` of the JSON body with its Standard Webhooks headers, no redirects
//!   followed; a 2xx answer's JSON body back;
//! - a Lambda function ARN: Lambda's `Invoke` (synchronous, the body as the payload); the
//!   function's JSON result back, a function error a failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use accounts::hooks::{HookError, HookRequest, HookTarget, HookTransport, Hooks};
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use serde_json::Value;
use shared::config::ConfigError;

/// The largest answer a hook may give.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Value, HookError>> + Send + 'a>>;

pub struct HttpsTransport {
    client: reqwest::Client,
}

impl HttpsTransport {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("serverless-auth-hooks/1")
            .build()?;
        Ok(Self { client })
    }
}

/// Invokes Lambda hook functions.
pub struct LambdaTransport {
    client: aws_sdk_lambda::Client,
}

impl LambdaTransport {
    /// A client of `sdk` whose every call (its retries included) ends within `timeout`.
    pub fn new(sdk: &SdkConfig, timeout: Duration) -> Self {
        let attempt = timeout.min(Duration::from_secs(1).max(timeout / 2));
        let config = aws_sdk_lambda::config::Builder::from(sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(500).min(timeout))
                    .operation_attempt_timeout(attempt)
                    .operation_timeout(timeout)
                    .build(),
            )
            .build();
        Self {
            client: aws_sdk_lambda::Client::from_conf(config),
        }
    }

    async fn invoke(&self, arn: &str, request: HookRequest) -> Result<Value, HookError> {
        let timeout_ms = u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX);
        let call = self
            .client
            .invoke()
            .function_name(arn)
            .payload(aws_sdk_lambda::primitives::Blob::new(request.body))
            .send();
        let output = match tokio::time::timeout(request.timeout, call).await {
            Err(_) => return Err(HookError::Timeout(timeout_ms)),
            Ok(Err(err)) => {
                use aws_sdk_lambda::error::SdkError;
                return Err(match &err {
                    SdkError::TimeoutError(_) => HookError::Timeout(timeout_ms),
                    SdkError::ServiceError(service) => {
                        HookError::Status(service.raw().status().as_u16())
                    }
                    _ => HookError::Unreachable(Box::new(err)),
                });
            }
            Ok(Ok(output)) => output,
        };
        if output.function_error().is_some() {
            return Err(HookError::FunctionFailed);
        }
        let status = u16::try_from(output.status_code()).unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(HookError::Status(status));
        }
        let bytes = output
            .payload()
            .map(aws_sdk_lambda::primitives::Blob::as_ref)
            .unwrap_or_default();
        answer_of(bytes)
    }
}

/// The transports a deployment's hooks need.
struct Transports {
    https: Option<HttpsTransport>,
    lambda: Option<LambdaTransport>,
}

impl HookTransport for Transports {
    fn call(&self, request: HookRequest) -> Answer<'_> {
        Box::pin(async move {
            match (&request.target, &self.https, &self.lambda) {
                (HookTarget::Https(_), Some(https), _) => https.post(request).await,
                (HookTarget::Lambda(arn), _, Some(lambda)) => {
                    let arn = arn.clone();
                    lambda.invoke(&arn, request).await
                }
                // with_transports builds the one each configured hook needs.
                _ => Err(HookError::Malformed("no transport for this hook")),
            }
        })
    }
}

/// `hooks` with the transports its hooks need: HTTPS for URLs, a Lambda client of `sdk` for
/// function ARNs (a Lambda hook without `sdk` is a configuration error).
pub fn with_transports(mut hooks: Hooks, sdk: Option<&SdkConfig>) -> Result<Hooks, ConfigError> {
    let urls = [&hooks.before_user_created, &hooks.customize_access_token]
        .into_iter()
        .any(|hook| matches!(hook, Some(HookTarget::Https(_))));
    let https = if urls {
        Some(HttpsTransport::new().map_err(|e| {
            ConfigError::new("HOOK_BEFORE_USER_CREATED", format!("no HTTPS client: {e}"))
        })?)
    } else {
        None
    };
    let lambda = if hooks.any_lambda() {
        let sdk = sdk.ok_or_else(|| {
            ConfigError::new(
                "HOOK_BEFORE_USER_CREATED",
                "a Lambda hook needs AWS credentials and a region (AWS_REGION, AWS_ACCESS_KEY_ID)",
            )
        })?;
        Some(LambdaTransport::new(
            sdk,
            Duration::from_millis(hooks.timeout_ms),
        ))
    } else {
        None
    };
    if hooks.any() {
        hooks.transport = Some(Arc::new(Transports { https, lambda }));
    }
    Ok(hooks)
}

/// A hook's answer: JSON of at most 16 KiB.
fn answer_of(bytes: &[u8]) -> Result<Value, HookError> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(HookError::Malformed("the answer is larger than 16 KiB"));
    }
    serde_json::from_slice(bytes).map_err(|_| HookError::Malformed("the answer is not JSON"))
}

impl HttpsTransport {
    async fn post(&self, request: HookRequest) -> Result<Value, HookError> {
        let HookTarget::Https(url) = &request.target else {
            return Err(HookError::Malformed("not a URL hook"));
        };
        {
            let timeout_ms = u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX);
            let mut builder = self
                .client
                .post(url)
                .timeout(request.timeout)
                .header("content-type", "application/json");
            for (name, value) in &request.headers {
                builder = builder.header(*name, value);
            }
            let sent = builder.body(request.body).send().await.map_err(|e| {
                if e.is_timeout() {
                    HookError::Timeout(timeout_ms)
                } else {
                    // Without its URL: a hook URL may carry a credential, and the error is
                    // logged.
                    HookError::Unreachable(Box::new(e.without_url()))
                }
            })?;
            let status = sent.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(HookError::Status(status));
            }
            // At most 16 KiB of answer.
            let bytes = sent.bytes().await.map_err(|e| {
                if e.is_timeout() {
                    HookError::Timeout(timeout_ms)
                } else {
                    // Without its URL: a hook URL may carry a credential, and the error is
                    // logged.
                    HookError::Unreachable(Box::new(e.without_url()))
                }
            })?;
            answer_of(&bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_call_s_error_never_names_the_url() {
        // Nothing listens on port 1: the connection is refused at once.
        let request = HookRequest {
            target: HookTarget::Https("http://127.0.0.1:1/hook?token=s3cr3t-in-the-url".into()),
            body: "{}".into(),
            headers: Vec::new(),
            timeout: std::time::Duration::from_secs(2),
        };
        let err = HttpsTransport::new()
            .unwrap()
            .post(request)
            .await
            .unwrap_err();
        let chain = shared::error_chain(&err);
        assert!(matches!(err, HookError::Unreachable(_)), "{chain}");
        assert!(!chain.contains("s3cr3t"), "{chain}");
    }
}
