//! Outgoing mail (verification and password-reset links): what is sent, and where it goes.
//! Amazon SES v2 in Lambda ([`SesMailer`]); an in-memory [`Outbox`] for local-api and tests.
//!
//! A mail's bodies carry single-use tokens: `Debug` shows only the recipient and subject, and
//! nothing here logs a body.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::BoxError;
use crate::model::credentials::Email;

/// One mail: a plain-text and an HTML part with the same content.
#[derive(Clone)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The service will not send this mail as things are: an unverified sender identity, a
    /// recipient outside the SES sandbox, a paused or suspended account. Retrying cannot help.
    #[error("the mail service refused the message")]
    Refused(#[source] BoxError),
    /// The service failed, timed out or throttled: a later retry may succeed.
    #[error("the mail service is unavailable")]
    Unavailable(#[source] BoxError),
}

/// Somewhere mail can be sent.
pub trait Mailer: Send + Sync {
    fn send(&self, mail: &Mail) -> impl Future<Output = Result<(), MailError>> + Send;
}

/// Amazon SES v2 `SendEmail`, from one verified identity.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesMailer {
    /// Sends as `from` (`SES_FROM_ADDRESS`), which must be a verified SES identity.
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }
}

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Refused(Box::new(e)))
}

impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(utf8(&mail.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&mail.text)?)
                    .html(utf8(&mail.html)?)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(mail.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// SES's answers that mean this mail will not go out as things stand: the message or an
/// identity was refused, or the account may not send. Everything else (timeouts, connection
/// failures, throttling, 5xx) is the service being unavailable.
fn classify<E, R>(err: SdkError<E, R>) -> MailError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let refused = err.as_service_error().is_some_and(|e| {
        matches!(
            e.code(),
            Some(
                "MessageRejected"
                    | "MailFromDomainNotVerifiedException"
                    | "AccountSuspendedException"
                    | "SendingPausedException"
                    | "NotFoundException"
                    | "BadRequestException"
                    | "AccessDeniedException"
            )
        )
    });
    if refused {
        MailError::Refused(Box::new(err))
    } else {
        MailError::Unavailable(Box::new(err))
    }
}

/// A mail kept by the [`Outbox`], as `GET /_local/outbox` lists it. `Debug` shows no body.
#[derive(Clone, Serialize)]
pub struct SentMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// RFC 3339, UTC.
    pub sent_at: String,
}

/// Keeps every mail in memory instead of sending it, newest last: local-api's mail, with no
/// AWS account, and the tests'. `Debug` shows how many, never a body.
#[derive(Default)]
pub struct Outbox {
    sent: Mutex<Vec<SentMail>>,
    /// Also print each mail's recipient, subject and link to stdout (local-api's console).
    echo: bool,
}

impl std::fmt::Debug for SentMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("sent_at", &self.sent_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("sent", &self.sent_mut().len())
            .field("echo", &self.echo)
            .finish()
    }
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// An outbox that also prints each mail's recipient, subject and link on stdout: for
    /// local-api, whose developer clicks the link. Never for a deployed function.
    pub fn echoing() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    fn sent_mut(&self) -> MutexGuard<'_, Vec<SentMail>> {
        // One push or one clone per lock: a panic cannot leave the list half-changed.
        self.sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every mail kept so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.sent_mut().clone()
    }
}

impl Mailer for Outbox {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let sent_at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|e| MailError::Unavailable(Box::new(e)))?;
        if self.echo {
            let link = mail
                .text
                .split_whitespace()
                .find(|w| w.starts_with("http"))
                .unwrap_or("(no link)");
            println!("mail to {}: {} — {link}", mail.to, mail.subject);
        }
        self.sent_mut().push(SentMail {
            to: mail.to.to_string(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            sent_at,
        });
        Ok(())
    }
}

/// Where a function's mail goes.
#[derive(Debug, Clone, Default)]
pub enum MailDelivery {
    /// Amazon SES (`SES_FROM_ADDRESS` set).
    Ses(SesMailer),
    /// Kept in memory (local-api, tests).
    Outbox(std::sync::Arc<Outbox>),
    /// No sender configured: nothing is sent, and each mail that is not sent is logged.
    #[default]
    Disabled,
}

impl MailDelivery {
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        match self {
            MailDelivery::Ses(ses) => ses.send(mail).await,
            MailDelivery::Outbox(outbox) => outbox.send(mail).await,
            MailDelivery::Disabled => Err(MailError::Refused(
                "no sender is configured (SES_FROM_ADDRESS)".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            to: Email::parse("ada@example.com").unwrap(),
            subject: "Reset your password".into(),
            text: "https://app.example/reset?token=SECRET-TOKEN".into(),
            html: "<a href=\"https://app.example/reset?token=SECRET-TOKEN\">reset</a>".into(),
        }
    }

    #[tokio::test]
    async fn debug_never_shows_a_body() {
        let shown = format!("{:?}", mail());
        assert!(shown.contains("ada@example.com") && shown.contains("Reset your password"));
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
        // Nor what the outbox kept, or the delivery holding it.
        let outbox = std::sync::Arc::new(Outbox::new());
        outbox.send(&mail()).await.unwrap();
        let kept = format!(
            "{:?} {:?}",
            outbox.sent(),
            MailDelivery::Outbox(outbox.clone())
        );
        assert!(kept.contains("Reset your password"), "{kept}");
        assert!(!kept.contains("SECRET-TOKEN"), "{kept}");
    }

    #[tokio::test]
    async fn the_outbox_keeps_every_mail_newest_last() {
        let outbox = Outbox::new();
        outbox.send(&mail()).await.unwrap();
        let mut second = mail();
        second.subject = "Verify your email".into();
        outbox.send(&second).await.unwrap();
        let sent = outbox.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].subject, "Verify your email");
        assert_eq!(sent[0].to, "ada@example.com");
        assert!(sent[0].text.contains("token=SECRET-TOKEN"));
        assert!(OffsetDateTime::parse(&sent[0].sent_at, &Rfc3339).is_ok());
    }
}
