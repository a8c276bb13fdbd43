//! Mail through a real SES v2 API (moto's server, which scripts/test starts): what SES
//! receives, and how a refusal and an outage are told apart.

use std::time::{Duration, Instant};

use auth_api::domain::Email;
use auth_api::mail::{Mail, MailError, Mailer, SesMailer};
use integration_tests::dynamo::Proxy;
use serde_json::Value;

fn ses_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SESV2").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_SESV2 is not set: run `scripts/test`, which starts moto for SES")
    })
}

/// An SES client configured as the Lambda configures its own (timeouts, retries, TLS), at
/// `endpoint`.
fn ses(endpoint: &str) -> aws_sdk_sesv2::Client {
    let sdk = auth_api::sdk::from_env(&shared::config::ProcessEnv).unwrap();
    aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk)
            .endpoint_url(endpoint)
            .build(),
    )
}

/// A sender address of its own for each test, verified in SES unless `verified` is false.
async fn sender(verified: bool) -> String {
    let from = format!("auth-{}@example.com", uuid::Uuid::new_v4().simple());
    if verified {
        ses(&ses_endpoint())
            .create_email_identity()
            .email_identity(&from)
            .send()
            .await
            .expect("verify the sender in moto");
    }
    from
}

fn mail(subject: &str) -> Mail {
    Mail {
        to: Email::parse("ada@example.com").unwrap(),
        subject: subject.to_owned(),
        text: "Open https://app.example/verify?token=TOKEN to verify.".into(),
        html: "<p><a href=\"https://app.example/verify?token=TOKEN\">Verify</a></p>".into(),
    }
}

/// What moto's SES has accepted so far.
async fn sent_messages() -> Vec<Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", ses_endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_mail_from_a_verified_sender_reaches_ses_as_sent() {
    let from = sender(true).await;
    let subject = format!("Verify your email {}", uuid::Uuid::new_v4());
    SesMailer::new(ses(&ses_endpoint()), &from)
        .send(&mail(&subject))
        .await
        .unwrap();
    let sent = sent_messages().await;
    let message = sent
        .iter()
        .find(|m| m["subject"] == subject.as_str())
        .unwrap_or_else(|| panic!("SES did not receive it: {sent:?}"));
    assert_eq!(message["source"], from.as_str());
    assert_eq!(
        message["destinations"]["ToAddresses"],
        serde_json::json!(["ada@example.com"])
    );
    assert!(message["body"].as_str().unwrap().contains("token=TOKEN"));
}

#[tokio::test]
async fn an_unverified_sender_is_a_refusal_that_names_the_cause() {
    let from = sender(false).await;
    let err = SesMailer::new(ses(&ses_endpoint()), &from)
        .send(&mail("never sent"))
        .await
        .unwrap_err();
    let MailError::Refused(cause) = &err else {
        panic!("a refusal, not an outage: {err:?}");
    };
    let chain = auth_api::error_chain(cause.as_ref());
    assert!(chain.contains("not verified"), "{chain}");
}

#[tokio::test]
async fn ses_down_is_unavailable_within_the_bound() {
    let proxy = Proxy::start_for(&ses_endpoint()).await;
    let from = sender(true).await;
    proxy.stop().await;
    let started = Instant::now();
    let err = SesMailer::new(ses(&proxy.url()), &from)
        .send(&mail("while down"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in {:?}",
        started.elapsed()
    );
}
