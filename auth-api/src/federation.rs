//! The HTTPS transport to upstream identity providers ([`accounts::federation`]): JSON
//! answers only, no redirects followed, each call bounded in time (5 s) and size (256 KiB),
//! and no URL, form or answer in any error (a URL may name a code, a form holds secrets).

use std::sync::Arc;
use std::time::Duration;

use accounts::federation::Federation;
use accounts::federation::{HttpAnswer, Upstream, UpstreamError, UpstreamHttp};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use shared::config::ConfigError;

/// The largest answer read from a provider.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// The longest a provider may take to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

type Answer<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpAnswer, UpstreamError>> + Send + 'a>,
>;

pub struct HttpsUpstream {
    client: reqwest::Client,
}

impl HttpsUpstream {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .user_agent("serverless-auth/1")
            .build()?;
        Ok(Self { client })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<HttpAnswer, UpstreamError> {
        // Without the URL: it may carry a code or a token, and errors are logged.
        let failed = |e: reqwest::Error| UpstreamError::Unreachable(Box::new(e.without_url()));
        let response = request
            .header("accept", "application/json")
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(UpstreamError::Malformed("the answer is too large"));
        }
        let bytes = response.bytes().await.map_err(failed)?;
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(UpstreamError::Malformed("the answer is too large"));
        }
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(HttpAnswer { status, body })
    }
}

impl UpstreamHttp for HttpsUpstream {
    fn get(&self, url: String, bearer: Option<SecretString>) -> Answer<'_> {
        Box::pin(async move {
            let mut request = self.client.get(url);
            if let Some(token) = bearer {
                request = request.bearer_auth(token.expose_secret());
            }
            self.send(request).await
        })
    }

    fn post_form(&self, url: String, form: Vec<(&'static str, SecretString)>) -> Answer<'_> {
        Box::pin(async move {
            let form: Vec<(&str, &str)> = form
                .iter()
                .map(|(name, value)| (*name, value.expose_secret()))
                .collect();
            self.send(self.client.post(url).form(&form)).await
        })
    }
}

/// `federation` with its providers' HTTPS client, when it has providers.
pub fn with_upstream(mut federation: Federation) -> Result<Federation, ConfigError> {
    if !federation.providers.is_empty() {
        let https = HttpsUpstream::new().map_err(|e| {
            ConfigError::new("FEDERATION_PROVIDERS", format!("no HTTPS client: {e}"))
        })?;
        federation.upstream = Some(Arc::new(Upstream::new(Arc::new(https))));
    }
    Ok(federation)
}
