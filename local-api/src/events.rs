//! local-api's delivery of lifecycle events: what EventsFunction does in AWS, on a laptop.
//! Every event a change wrote is printed and, with `WEBHOOK_URLS` and `WEBHOOK_SECRET`, sent
//! to the webhooks, signed as in AWS, in order; its retries back off in seconds (1, 2, 4, 8
//! and 16: all within a minute), after which the event is given up with a warning.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use accounts::store::Store;
use shared::config::{self, ConfigError, Env};

use crate::gateway::Gateway;

/// Waits between the tries of one local webhook delivery.
pub const LOCAL_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// How often the store is looked at for new events.
const POLL: Duration = Duration::from_millis(500);

/// The webhooks `WEBHOOK_URLS` and `WEBHOOK_SECRET` name, if any.
pub fn webhooks_from_env(env: &dyn Env) -> Result<Option<events::Webhooks>, ConfigError> {
    events::webhooks_from(
        env,
        config::optional(env, "WEBHOOK_SECRET"),
        LOCAL_BACKOFF.to_vec(),
    )
}

/// Prints and delivers every new event of `gateway`'s store until the process ends.
pub fn spawn<S: Store + 'static>(
    gateway: Arc<Gateway<S>>,
    webhooks: Option<events::Webhooks>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delivered: HashSet<String> = HashSet::new();
        loop {
            tokio::time::sleep(POLL).await;
            let all = match gateway.app().accounts.store.all_events().await {
                Ok(all) => all,
                Err(err) => {
                    tracing::warn!(error = %shared::error_chain(&err), "cannot read the events");
                    continue;
                }
            };
            for event in all {
                if delivered.contains(&event.id) {
                    continue;
                }
                let subject = event.envelope();
                let who = subject["user_id"]
                    .as_str()
                    .or(subject["client_id"].as_str())
                    .unwrap_or("");
                println!("  event      {} {who} {}", event.kind.as_str(), event.id);
                if let Some(webhooks) = &webhooks
                    && let Err(err) = webhooks.send(&event.id, &subject.to_string()).await
                {
                    tracing::warn!(
                        event_id = event.id,
                        error = %err,
                        "a webhook did not take an event within a minute: given up"
                    );
                }
                delivered.insert(event.id);
            }
        }
    })
}
