//! What every command works with: the table, the AWS configuration, the output, and the
//! operator's identity for the audit records.

use std::io::Write;
use std::time::Duration;

use accounts::model::credentials::Email;
use accounts::model::registry::ClientId;
use accounts::model::user::UserRecord;
use accounts::store::{AdminAudit, AdminStore, DynamoStore};
use serde_json::json;

use crate::exit;
use crate::failure::Failure;
use crate::output::{self, Format};

/// What an audited change is about: a user (or none, for bulk actions), or a client.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    User(Option<&'a UserRecord>),
    Client(&'a ClientId),
}

impl<'a> From<Option<&'a UserRecord>> for Target<'a> {
    fn from(user: Option<&'a UserRecord>) -> Self {
        Target::User(user)
    }
}

impl<'a> From<&'a ClientId> for Target<'a> {
    fn from(id: &'a ClientId) -> Self {
        Target::Client(id)
    }
}

/// What every command works with.
pub struct Context<'a> {
    pub store: DynamoStore,
    pub sdk: aws_config::SdkConfig,
    pub format: Format,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// The operator's AWS identity, found once before the first change.
    /// The operator, once established, and whether STS confirmed who that is.
    pub operator: Option<(String, bool)>,
    pub local_endpoint: bool,
    /// Whether an STS endpoint is set (`AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL`): then a
    /// local DynamoDB endpoint's operator is still asked of STS.
    pub sts_configured: bool,
}

impl Context<'_> {
    pub(crate) fn print_json(&mut self, value: &serde_json::Value) -> Result<(), Failure> {
        writeln!(self.out, "{}", output::json_text(value))?;
        Ok(())
    }

    pub(crate) fn print(&mut self, json: serde_json::Value, text: &str) -> Result<(), Failure> {
        match self.format {
            Format::Json => self.print_json(&json),
            Format::Table => {
                for line in text.lines() {
                    writeln!(self.out, "{}", output::clean(line))?;
                }
                Ok(())
            }
        }
    }

    /// The operator's AWS identity, from STS (`GetCallerIdentity` needs no permission).
    /// Against a local DynamoDB endpoint without an STS endpoint, the access key names them.
    pub async fn operator(&mut self) -> Result<String, Failure> {
        Ok(self.operator_identity().await?.0)
    }

    /// [`Context::operator`], and whether STS confirmed it (`false`: what a local endpoint's
    /// access key claims, which anyone can write).
    pub(crate) async fn operator_identity(&mut self) -> Result<(String, bool), Failure> {
        if let Some(known) = &self.operator {
            return Ok(known.clone());
        }
        let identity = if self.local_endpoint && !self.sts_configured {
            let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "unknown".into());
            (format!("unconfirmed: local (access key {key})"), false)
        } else {
            let sts = aws_sdk_sts::Client::new(&self.sdk);
            let answer = tokio::time::timeout(
                Duration::from_secs(10),
                sts.get_caller_identity().send(),
            )
            .await
            .map_err(|_| {
                Failure::new(exit::FAILED, "STS did not answer within 10 s: who are you?")
            })?
            .map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!(
                        "cannot establish your AWS identity (sts:GetCallerIdentity), which every \
                         change is recorded with: {}",
                        shared::error_chain(&e)
                    ),
                )
            })?;
            let arn = answer
                .arn
                .ok_or_else(|| Failure::new(exit::FAILED, "STS named no ARN for you"))?;
            (arn, true)
        };
        self.operator = Some(identity.clone());
        Ok(identity)
    }

    /// Records that a change is about to start: if it then fails half-way, or the process
    /// dies, the record of what was attempted is already in the table.
    pub async fn intend<'t>(
        &mut self,
        action: &str,
        target: impl Into<Target<'t>>,
        detail: String,
    ) -> Result<(), Failure> {
        self.record(action, target.into(), detail, "intended").await
    }

    /// Records how a change ended: `succeeded` with `result`'s detail, or `failed` with the
    /// failure. Returns the change's own result (a failure to record a failed change does
    /// not hide that change's failure).
    pub async fn conclude<'t, T>(
        &mut self,
        action: &str,
        target: impl Into<Target<'t>>,
        result: Result<(T, String), Failure>,
    ) -> Result<T, Failure> {
        let target = target.into();
        match result {
            Ok((value, detail)) => {
                self.record(action, target, detail, "succeeded").await?;
                Ok(value)
            }
            Err(failure) => {
                let _ = self
                    .record(action, target, failure.message.clone(), "failed")
                    .await;
                Err(failure)
            }
        }
    }

    /// One audit record: an item in the table and a JSON line on stderr.
    pub(crate) async fn record(
        &mut self,
        action: &str,
        target: Target<'_>,
        detail: String,
        outcome: &str,
    ) -> Result<(), Failure> {
        let user = match target {
            Target::User(user) => user,
            _ => None,
        };
        let (operator, operator_confirmed) = self.operator_identity().await?;
        let entry = AdminAudit {
            at_ms: shared::token::now_unix_ms(),
            action: action.to_owned(),
            operator,
            operator_confirmed,
            outcome: outcome.to_owned(),
            user_id: user.map(|u| u.user_id.to_string()),
            email: user.map(|u| u.email.as_str().to_owned()),
            client_id: match target {
                Target::Client(id) => Some(id.as_str().to_owned()),
                Target::User(_) => None,
            },
            detail,
        };
        let line = json!({"message": "audit", "event": format!("admin_{action}"), "entry": entry});
        let line = output::json_text(&line).replace('\n', "");
        writeln!(self.err, "{line}")?;
        self.store.record_admin_action(&entry).await?;
        Ok(())
    }

    pub(crate) async fn user(&mut self, email: &str) -> Result<UserRecord, Failure> {
        let parsed = Email::parse(email).map_err(|why| {
            Failure::new(exit::USAGE, format!("{email:?} is not an email: {why}"))
        })?;
        self.store
            .find_user(&parsed)
            .await?
            .ok_or_else(|| Failure::new(exit::NOT_FOUND, format!("no user with email {parsed}")))
    }
}
