//! The login backoff's two records per email: per source (compare-and-set) and per email (`ADD`).

use aws_sdk_dynamodb::types::ReturnValue;

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::{classify, written};
use super::items::*;
use crate::model::backoff::{Admission, EMAIL_WINDOW_SECONDS, LoginAttempts, Source, Window};
use crate::model::credentials::Email;
use crate::model::user::UserRecord;
use crate::store::traits::{AttemptStore, StoreError};

/// How often an admission re-reads and retries after its conditional write lost a race.
/// Each lost race means another check was counted, so the lock is soon what the re-read sees.
const ADMISSION_ROUNDS: usize = 12;

impl AttemptStore for DynamoStore {
    async fn admit_login_attempt(
        &self,
        email: &Email,
        source: &Source,
        seen: LoginAttempts,
        now_ms: i64,
    ) -> Result<Admission, StoreError> {
        // Compare-and-set: write the next record only if the stored one is still the one the
        // decision was made on. A loser reads again and decides on what the winner wrote.
        let mut seen = seen;
        for _ in 0..ADMISSION_ROUNDS {
            let next = match seen.admit(now_ms) {
                Admission::Admitted(next) => next,
                refused => return Ok(refused),
            };
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attempts_item(email, source, &next)));
            let put = if seen.expires_at == 0 {
                put.condition_expression("attribute_not_exists(pk)")
            } else {
                put.condition_expression("failures = :failures AND expires_at = :expires_at")
                    .expression_attribute_values(":failures", n(seen.failures))
                    .expression_attribute_values(":expires_at", n(seen.expires_at))
            };
            if written(put.send().await)? {
                return Ok(Admission::Admitted(next));
            }
            seen = self
                .get_consistent(attempts_key(email, source))
                .await?
                .as_ref()
                .map(attempts_from_item)
                .unwrap_or_default();
        }
        // Still losing races: as many checks as that are running at once already.
        Ok(Admission::Refused {
            retry_after_seconds: 1,
        })
    }

    async fn read_and_admit_login(
        &self,
        email: &Email,
        source: &Source,
        now_ms: i64,
    ) -> Result<(Option<UserRecord>, Admission), StoreError> {
        // The usual case: no live record for this source. Count the check as the first of a
        // fresh record, on the condition that there is none (or only an expired one), while the
        // account is read: one round trip. Otherwise decide on the record as stored.
        let read_user = async {
            match self.get_consistent(user_key(email)).await? {
                Some(item) => user_from_item(&item).map(Some),
                None => Ok(None),
            }
        };
        let first = match LoginAttempts::default().admit(now_ms) {
            Admission::Admitted(first) => first,
            refused => return Ok((read_user.await?, refused)),
        };
        let count_fresh = async {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attempts_item(email, source, &first)))
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                .expression_attribute_values(":now", n(now_ms / 1000))
                .send()
                .await;
            written(result)
        };
        let (user, fresh) = tokio::join!(read_user, count_fresh);
        let user = user?;
        if fresh? {
            return Ok((user, Admission::Admitted(first)));
        }
        let seen = self
            .get_consistent(attempts_key(email, source))
            .await?
            .as_ref()
            .map(attempts_from_item)
            .unwrap_or_default();
        let admission = self
            .admit_login_attempt(email, source, seen, now_ms)
            .await?;
        Ok((user, admission))
    }

    async fn take_back_email_failure(&self, email: &Email, now_ms: i64) -> Result<(), StoreError> {
        self.take_back_from_window(email_failures_key(email), now_ms)
            .await
    }

    async fn count_email_failure(&self, email: &Email, now_ms: i64) -> Result<Window, StoreError> {
        self.count_in_window(
            email_failures_key(email),
            "loginfail",
            now_ms,
            EMAIL_WINDOW_SECONDS,
        )
        .await
    }

    async fn forget_login_failures(
        &self,
        email: &Email,
        source: &Source,
        email_counted: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let forget_source = async {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(attempts_key(email, source)))
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        };
        let uncount_email = async {
            if !email_counted {
                return Ok(());
            }
            self.take_back_email_failure(email, now_ms).await
        };
        let (a, b) = tokio::join!(forget_source, uncount_email);
        a.and(b)
    }

    async fn clear_login_failures(&self, email: &Email) -> Result<(), StoreError> {
        // Every record under the email's partition: one per source, and the window.
        let pk = format!("LOGINFAIL#{}", email.as_str());
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for key in page.items.unwrap_or_default() {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .send()
                    .await
                    .map_err(classify)?;
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(());
            }
        }
    }
}

impl DynamoStore {
    /// Counts one more in the window of the item at `key` and returns the count with it; a
    /// window that has ended (or none) starts anew, `window_seconds` long.
    /// Takes one count back out of the window at `key`, if it still runs and holds any.
    pub(super) async fn take_back_from_window(
        &self,
        key: Item,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("ADD #count :minus_one")
            .condition_expression("expires_at > :now AND #count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":now", n(now_ms / 1000))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        // Nothing to take back: the window ended, or holds nothing.
        written(result).map(|_| ())
    }

    pub(super) async fn count_in_window(
        &self,
        key: Item,
        entity: &str,
        now_ms: i64,
        window_seconds: i64,
    ) -> Result<Window, StoreError> {
        let now = now_ms / 1000;
        let fresh_end = now + window_seconds;
        for _ in 0..3 {
            // One call in the usual case: count into the window, starting one if there is none.
            let output = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression(
                    "ADD #count :one SET entity = :entity, \
                     expires_at = if_not_exists(expires_at, :ends)",
                )
                .expression_attribute_values(":one", n(1))
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":entity", s(entity))
                .expression_attribute_values(":ends", n(fresh_end))
                .return_values(ReturnValue::AllNew)
                .send()
                .await
                .map_err(classify)?;
            let item = output.attributes.unwrap_or_default();
            let counted = Window {
                count: number_attr(&item, "count")
                    .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)),
                // The window ends when its item expires: one attribute for both.
                window_ends: required_number(&item, TTL_ATTRIBUTE)?,
            };
            if counted.window_ends > now {
                return Ok(counted);
            }
            // The window had ended (DynamoDB deletes lazily): start a new one with this check,
            // unless a concurrent request just did (then count into that one).
            let mut item = key.clone();
            item.extend([
                ("entity".to_owned(), s(entity)),
                ("count".to_owned(), n(1)),
                (TTL_ATTRIBUTE.to_owned(), n(fresh_end)),
            ]);
            let restarted = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("expires_at = :ended")
                .expression_attribute_values(":ended", n(counted.window_ends))
                .send()
                .await;
            if written(restarted)? {
                return Ok(Window {
                    count: 1,
                    window_ends: fresh_end,
                });
            }
        }
        #[derive(Debug, thiserror::Error)]
        #[error("a counting window kept changing under concurrent writes")]
        struct Contended;
        Err(StoreError::Unavailable(Box::new(Contended)))
    }
}
