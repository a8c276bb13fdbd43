//! The event delivery function: it reads the users table's stream (only the `INSERT`s of
//! event items reach it, by the event source mapping's filter), and sends each event, in the
//! stream's order, to an EventBridge bus and to signed webhooks. A record that cannot be
//! delivered is reported as the batch's first failure: Lambda tries it, and everything after
//! it, again (so a user's events keep their order), until the mapping's retry bounds send
//! the batch to the dead-letter queue. Delivery is at least once; consumers drop repeats by
//! the event's `id`.
//!
//! Settings (environment): `EVENT_BUS_NAME` (a bus name or ARN; unset: no bus),
//! `EVENT_SOURCE` (EventBridge `source`, default `serverless-auth`), `WEBHOOK_URLS`
//! (comma-separated), `WEBHOOK_SECRET` (`whsec_…`) or `WEBHOOK_SECRET_PARAMETER` (an SSM
//! SecureString holding it).

pub mod webhook;

use std::time::Duration;

use accounts::model::event::AccountEvent;
use serde_json::{Value, json};
use shared::config::{self, ConfigError, Env};

pub use webhook::{WebhookSecret, Webhooks};

/// EventBridge `source` unless `EVENT_SOURCE` says otherwise.
pub const DEFAULT_SOURCE: &str = "serverless-auth";

/// Waits between the tries of one webhook delivery within an invocation; after them the
/// stream's own retries take over.
pub const LAMBDA_BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];

/// One webhook request's bound.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an event was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("EventBridge did not take the event: {0}")]
    EventBridge(String),
    #[error("a webhook did not take the event")]
    Webhook(#[from] webhook::WebhookError),
}

/// Where events go.
pub struct Delivery {
    bus: Option<(aws_sdk_eventbridge::Client, String)>,
    webhooks: Option<Webhooks>,
    source: String,
}

impl Delivery {
    pub fn new(
        bus: Option<(aws_sdk_eventbridge::Client, String)>,
        webhooks: Option<Webhooks>,
        source: String,
    ) -> Self {
        Self {
            bus,
            webhooks,
            source,
        }
    }

    /// The function's settings from `env`, reading the webhook secret from SSM when
    /// `WEBHOOK_SECRET_PARAMETER` names it.
    pub async fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let sdk = accounts::aws::from_env(env)?;
        let bus = config::optional(env, "EVENT_BUS_NAME")
            .filter(|name| !name.trim().is_empty())
            .map(|name| (aws_sdk_eventbridge::Client::new(&sdk), name));
        let secret = match (
            config::optional(env, "WEBHOOK_SECRET"),
            config::optional(env, "WEBHOOK_SECRET_PARAMETER"),
        ) {
            (Some(text), _) => Some(text),
            (None, Some(name)) => Some(
                aws_sdk_ssm::Client::new(&sdk)
                    .get_parameter()
                    .name(&name)
                    .with_decryption(true)
                    .send()
                    .await
                    .ok()
                    .and_then(|out| out.parameter.and_then(|p| p.value))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "WEBHOOK_SECRET_PARAMETER",
                            format!("the SSM parameter {name} could not be read"),
                        )
                    })?,
            ),
            (None, None) => None,
        };
        let webhooks = webhooks_from(env, secret, LAMBDA_BACKOFF.to_vec())?;
        let source =
            config::optional(env, "EVENT_SOURCE").unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
        Ok(Self::new(bus, webhooks, source))
    }

    /// Sends one event to the bus and to every webhook.
    pub async fn deliver(&self, event: &AccountEvent) -> Result<(), DeliveryError> {
        let body = event.envelope().to_string();
        if let Some((client, bus)) = &self.bus {
            let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(&self.source)
                .detail_type(event.kind.as_str())
                .detail(&body)
                .build();
            let out = client
                .put_events()
                .entries(entry)
                .send()
                .await
                .map_err(|e| DeliveryError::EventBridge(shared::error_chain(&e)))?;
            if out.failed_entry_count() > 0 {
                let code = out
                    .entries()
                    .iter()
                    .find_map(|e| e.error_code())
                    .unwrap_or("unknown")
                    .to_owned();
                return Err(DeliveryError::EventBridge(code));
            }
        }
        if let Some(webhooks) = &self.webhooks {
            webhooks.send(&event.id, &body).await?;
        }
        Ok(())
    }

    /// One stream batch: its events delivered in order; the answer names the first record
    /// that failed (`batchItemFailures`), so that it and what follows are tried again.
    pub async fn handle(&self, batch: &Value) -> Value {
        let records = batch["Records"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for record in records {
            let sequence = record["dynamodb"]["SequenceNumber"].as_str().unwrap_or("");
            if record["eventName"] != "INSERT" {
                continue;
            }
            let event = match accounts::store::dynamo::event_from_stream_image(
                &record["dynamodb"]["NewImage"],
            ) {
                Ok(event) => event,
                Err(err) => {
                    // Not an event item, or a corrupt one: it can never be delivered, and
                    // must not hold back those after it.
                    tracing::error!(sequence, error = %shared::error_chain(&err), "a stream record is no event");
                    continue;
                }
            };
            if let Err(err) = self.deliver(&event).await {
                tracing::error!(
                    event_id = event.id,
                    event_type = event.kind.as_str(),
                    error = %shared::error_chain(&err),
                    "an event was not delivered; it and the ones after it are retried"
                );
                return json!({"batchItemFailures": [{"itemIdentifier": sequence}]});
            }
            tracing::info!(
                event_id = event.id,
                event_type = event.kind.as_str(),
                "event delivered"
            );
        }
        json!({"batchItemFailures": []})
    }
}

/// The webhooks `WEBHOOK_URLS` names, signed with `secret`, tried with `backoff`; `None`
/// without URLs. URLs without a secret, or a URL that is neither HTTPS nor this machine's,
/// is a configuration error.
pub fn webhooks_from(
    env: &dyn Env,
    secret: Option<String>,
    backoff: Vec<Duration>,
) -> Result<Option<Webhooks>, ConfigError> {
    let urls: Vec<String> = config::optional(env, "WEBHOOK_URLS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = urls.iter().find(|u| !webhook::url_allowed(u)) {
        return Err(ConfigError::new(
            "WEBHOOK_URLS",
            format!("{bad} is not an https:// URL"),
        ));
    }
    let secret = secret.ok_or_else(|| {
        ConfigError::new(
            "WEBHOOK_SECRET",
            "webhooks need a secret (whsec_…) to sign with",
        )
    })?;
    let secret =
        WebhookSecret::parse(&secret).map_err(|why| ConfigError::new("WEBHOOK_SECRET", why))?;
    Webhooks::new(urls, secret, backoff, WEBHOOK_TIMEOUT)
        .map(Some)
        .map_err(|e| ConfigError::new("WEBHOOK_URLS", e.to_string()))
}
