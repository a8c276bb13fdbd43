//! Webhooks signed per the Standard Webhooks specification: headers `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the secret's key), retried with backoff.

use std::time::Duration;

pub use accounts::webhook::{WebhookSecret, url_allowed};

/// Where events go over HTTP, and how hard each is tried.
#[derive(Clone)]
pub struct Webhooks {
    pub urls: Vec<String>,
    pub secret: WebhookSecret,
    /// Waits before the second, third, … try of one delivery.
    pub backoff: Vec<Duration>,
    client: reqwest::Client,
}

/// Why a webhook did not take an event.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("the receiver could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

impl Webhooks {
    /// Each request is bounded by `timeout`; redirects are not followed (a receiver
    /// answers where it was registered).
    pub fn new(
        urls: Vec<String>,
        secret: WebhookSecret,
        backoff: Vec<Duration>,
        timeout: Duration,
    ) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("serverless-auth-webhooks/1")
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Self {
            urls,
            secret,
            backoff,
            client,
        })
    }

    /// Sends `body` (an event's envelope) as message `id` to every URL, each tried until it
    /// answers 2xx or the backoff runs out: the first URL that never took it is the error.
    pub async fn send(&self, id: &str, body: &str) -> Result<(), WebhookError> {
        for url in &self.urls {
            let mut last = None;
            for attempt in 0..=self.backoff.len() {
                if attempt > 0 {
                    tokio::time::sleep(self.backoff[attempt - 1]).await;
                }
                match self.post(url, id, body).await {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(event_id = id, attempt, error = %err, "a webhook did not take an event");
                        last = Some(err);
                    }
                }
            }
            if let Some(err) = last {
                return Err(err);
            }
        }
        Ok(())
    }

    async fn post(&self, url: &str, id: &str, body: &str) -> Result<(), WebhookError> {
        let timestamp = shared::token::now_unix();
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", self.secret.sign(id, timestamp, body))
            .body(body.to_owned())
            .send()
            .await
            // Without its URL: a webhook URL may carry a credential, and the error is logged.
            .map_err(|e| WebhookError::Unreachable(e.without_url()))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(WebhookError::Status(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_delivery_s_error_never_names_the_url() {
        // Nothing listens on port 1: the connection is refused at once.
        let url = "http://127.0.0.1:1/hooks?token=s3cr3t-in-the-url";
        let webhooks = Webhooks::new(
            vec![url.to_owned()],
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            Vec::new(),
            Duration::from_secs(2),
        )
        .unwrap();
        let err = webhooks.send("evt_1", "{}").await.unwrap_err();
        let chain = shared::error_chain(&err);
        assert!(matches!(err, WebhookError::Unreachable(_)), "{chain}");
        assert!(!chain.contains("s3cr3t"), "{chain}");
    }
}
