//! [`MfaStore`] on DynamoDB: the MFA attributes of the user item, challenge items
//! `MFACHALLENGE#<sha256 hex>` / `MFACHALLENGE` (`user_id`, `email`, `epoch`, `expires_at`,
//! `attempts`), and each user's consecutive wrong codes `MFAFAIL#<user id>` / `MFAFAIL`
//! (`failures`, `locked_until_ms`, `expires_at`).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, ReturnValue, TransactWriteItem, Update};
use uuid::Uuid;

use super::client::{DynamoStore, Item, TTL_ATTRIBUTE};
use super::errors::{classify, internal, written};
use super::events::put_event;
use super::items::*;
use crate::model::event::AccountEvent;
use crate::model::mfa::{CHALLENGE_ATTEMPTS, MfaAdmission, MfaAttempts, MfaChallenge, MfaState};
use crate::model::session::{RefreshRecord, SessionFamily};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;
use crate::store::traits::{MfaStore, StoreError};

fn challenge_key(hash: &TokenHash) -> Item {
    Item::from([
        (
            "pk".to_owned(),
            s(format!("MFACHALLENGE#{}", hash.to_hex())),
        ),
        ("sk".to_owned(), s("MFACHALLENGE")),
    ])
}

fn mfa_attempts_key(user_id: Uuid) -> Item {
    Item::from([
        ("pk".to_owned(), s(format!("MFAFAIL#{user_id}"))),
        ("sk".to_owned(), s("MFAFAIL")),
    ])
}

fn mfa_attempts_from_item(item: &Item) -> MfaAttempts {
    MfaAttempts {
        failures: number_attr(item, "failures").map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        locked_until_ms: number_attr(item, "locked_until_ms"),
        // A stored record always has a positive expiry; 0 would read as "no record".
        expires_at: number_attr(item, TTL_ATTRIBUTE).unwrap_or(1).max(1),
    }
}

/// How often an admission re-reads and retries after its conditional write lost a race; each
/// lost race means another code was counted.
const ADMISSION_ROUNDS: usize = 12;

impl DynamoStore {
    /// The `Update` that writes `mfa` over `user`'s MFA state (revision moved on by one),
    /// only while the user is as read: id, epoch `epoch`, MFA revision. With `new_epoch`,
    /// the session epoch moves to it.
    fn mfa_update(
        &self,
        user: &UserRecord,
        mfa: &MfaState,
        epoch: u64,
        new_epoch: Option<u64>,
    ) -> Result<Update, StoreError> {
        let mut set = vec![
            "mfa_last_step = :last_step",
            "mfa_recovery = :recovery",
            "mfa_revision = :new_revision",
        ];
        let mut remove = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(user_key(&user.email)))
            .expression_attribute_values(":user_id", s(user.user_id.to_string()))
            .expression_attribute_values(":epoch", n(epoch))
            .expression_attribute_values(":last_step", n(mfa.last_step))
            .expression_attribute_values(":recovery", string_list(&mfa.recovery))
            .expression_attribute_values(":new_revision", n(user.mfa.revision + 1));
        match &mfa.secret {
            Some(sealed) => {
                set.push("mfa_secret = :secret");
                update = update.expression_attribute_values(
                    ":secret",
                    AttributeValue::B(Blob::new(sealed.clone())),
                );
            }
            None => remove.push("mfa_secret"),
        }
        match &mfa.pending {
            Some((sealed, until)) => {
                set.push("mfa_pending = :pending");
                set.push("mfa_pending_until = :pending_until");
                update = update
                    .expression_attribute_values(
                        ":pending",
                        AttributeValue::B(Blob::new(sealed.clone())),
                    )
                    .expression_attribute_values(":pending_until", n(*until));
            }
            None => remove.extend(["mfa_pending", "mfa_pending_until"]),
        }
        if let Some(new_epoch) = new_epoch {
            set.push("session_epoch = :new_epoch");
            update = update.expression_attribute_values(":new_epoch", n(new_epoch));
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let revision = if user.mfa.revision == 0 {
            "attribute_not_exists(mfa_revision)"
        } else {
            update = update.expression_attribute_values(":revision", n(user.mfa.revision));
            "mfa_revision = :revision"
        };
        update
            .update_expression(expression)
            .condition_expression(format!("{} AND {revision}", epoch_condition(epoch)))
            .build()
            .map_err(internal)
    }
}

impl MfaStore for DynamoStore {
    async fn save_mfa(
        &self,
        user: &UserRecord,
        mfa: &MfaState,
        session: Option<(&SessionFamily, &RefreshRecord)>,
    ) -> Result<(), StoreError> {
        let change = AccountEvent::mfa_change(user, mfa)
            .map(|event| put_event(&event, &self.table))
            .transpose()?;
        let Some((family, token)) = session else {
            let update = self.mfa_update(user, mfa, user.session_epoch, None)?;
            let mut items = vec![TransactWriteItem::builder().update(update).build()];
            items.extend(change);
            return self.transact(items).await;
        };
        if family.epoch != user.session_epoch + 1 {
            return Err(StoreError::Conflict);
        }
        let update = self.mfa_update(user, mfa, user.session_epoch, Some(family.epoch))?;
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
            put_event(&AccountEvent::session_created(family), &self.table)?,
        ];
        items.extend(change);
        self.transact(items).await
    }

    async fn begin_mfa_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        let mut item = challenge_key(&challenge.hash);
        item.extend([
            ("entity".to_owned(), s("mfa_challenge")),
            ("user_id".to_owned(), s(challenge.user_id.to_string())),
            ("email".to_owned(), s(challenge.email.as_str())),
            ("epoch".to_owned(), n(challenge.epoch)),
            (TTL_ATTRIBUTE.to_owned(), n(challenge.expires_at)),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn count_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(challenge_key(hash)))
            .update_expression("ADD attempts :one")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(attempts) OR attempts < :max)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(CHALLENGE_ATTEMPTS))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let attempts = output
                    .attributes
                    .as_ref()
                    .and_then(|item| number_attr(item, "attempts"))
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(CHALLENGE_ATTEMPTS);
                Ok(Some(attempts))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn spend_mfa_challenge(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(challenge_key(hash)))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn admit_mfa_code(&self, user_id: Uuid, now_ms: i64) -> Result<MfaAdmission, StoreError> {
        // Compare-and-set, as the login backoff's admission: write the next record only if the
        // stored one is still the one the decision was made on.
        let key = mfa_attempts_key(user_id);
        let mut seen = self
            .get_consistent(key.clone())
            .await?
            .as_ref()
            .map(mfa_attempts_from_item)
            .unwrap_or_default();
        let mut exists = seen.expires_at != 0;
        for _ in 0..ADMISSION_ROUNDS {
            let next = match seen.admit(now_ms) {
                MfaAdmission::Admitted(next) => next,
                refused => return Ok(refused),
            };
            let mut item = key.clone();
            item.extend([
                ("entity".to_owned(), s("mfafail")),
                ("failures".to_owned(), n(next.failures)),
                (TTL_ATTRIBUTE.to_owned(), n(next.expires_at)),
            ]);
            if let Some(until) = next.locked_until_ms {
                item.insert("locked_until_ms".to_owned(), n(until));
            }
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item));
            let put = if exists {
                put.condition_expression("failures = :failures AND expires_at = :expires_at")
                    .expression_attribute_values(":failures", n(seen.failures))
                    .expression_attribute_values(":expires_at", n(seen.expires_at))
            } else {
                put.condition_expression("attribute_not_exists(pk)")
            };
            if written(put.send().await)? {
                return Ok(MfaAdmission::Admitted(next));
            }
            let item = self.get_consistent(key.clone()).await?;
            exists = item.is_some();
            seen = item
                .as_ref()
                .map(mfa_attempts_from_item)
                .unwrap_or_default();
        }
        // Still losing races: that many codes are being checked at once already.
        Ok(MfaAdmission::Refused {
            retry_after_seconds: 1,
        })
    }

    async fn forget_mfa_failures(&self, user_id: Uuid) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(mfa_attempts_key(user_id)))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn find_mfa_challenge(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let Some(item) = self.get_consistent(challenge_key(hash)).await? else {
            return Ok(None);
        };
        Ok(Some(MfaChallenge {
            hash: *hash,
            user_id: uuid_attr(&item, "user_id")?,
            email: email_attr(&item)?,
            epoch: u64::try_from(required_number(&item, "epoch")?)
                .map_err(|_| corrupt(&item, "epoch is negative"))?,
            expires_at: required_number(&item, TTL_ATTRIBUTE)?,
        }))
    }

    async fn complete_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
        user: &UserRecord,
        mfa: &MfaState,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        if family.epoch != challenge.epoch || user.session_epoch != challenge.epoch {
            return Err(StoreError::Conflict);
        }
        let spend = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(challenge_key(&challenge.hash)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(internal)?;
        let update = self.mfa_update(user, mfa, challenge.epoch, None)?;
        self.transact(vec![
            TransactWriteItem::builder().delete(spend).build(),
            TransactWriteItem::builder().update(update).build(),
            put(family_item(family), &self.table)?,
            put(refresh_item(token), &self.table)?,
        ])
        .await
    }
}
