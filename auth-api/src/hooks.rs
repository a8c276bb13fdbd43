//! The HTTPS transport of the synchronous hooks ([`accounts::hooks`]): a `POST` of the JSON
//! body with its Standard Webhooks headers, bounded by the hook's timeout, no redirects
//! followed; a 2xx answer's JSON body back.

use std::sync::Arc;

use accounts::hooks::{HookError, HookRequest, HookTransport, Hooks};
use serde_json::Value;

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

/// `hooks` with the HTTPS transport, when any hook is configured.
pub fn with_https(mut hooks: Hooks) -> Result<Hooks, reqwest::Error> {
    if hooks.before_user_created.is_some() || hooks.customize_access_token.is_some() {
        hooks.transport = Some(Arc::new(HttpsTransport::new()?));
    }
    Ok(hooks)
}

impl HookTransport for HttpsTransport {
    fn call(
        &self,
        request: HookRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, HookError>> + Send + '_>>
    {
        Box::pin(async move {
            let timeout_ms = u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX);
            let mut builder = self
                .client
                .post(&request.url)
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
            if bytes.len() > 16 * 1024 {
                return Err(HookError::Malformed("the answer is larger than 16 KiB"));
            }
            serde_json::from_slice(&bytes)
                .map_err(|_| HookError::Malformed("the answer is not JSON"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_call_s_error_never_names_the_url() {
        // Nothing listens on port 1: the connection is refused at once.
        let request = HookRequest {
            url: "http://127.0.0.1:1/hook?token=s3cr3t-in-the-url".into(),
            body: "{}".into(),
            headers: Vec::new(),
            timeout: std::time::Duration::from_secs(2),
        };
        let err = HttpsTransport::new()
            .unwrap()
            .call(request)
            .await
            .unwrap_err();
        let chain = shared::error_chain(&err);
        assert!(matches!(err, HookError::Unreachable(_)), "{chain}");
        assert!(!chain.contains("s3cr3t"), "{chain}");
    }
}
