//! Mail through a real SES v2 API (moto's server, which scripts/test starts): what SES
//! receives, and how a refusal and an outage are told apart.

use std::time::{Duration, Instant};

use std::sync::Arc;

use accounts::mail::{Mail, MailDelivery, MailError, Mailer, SesMailer};
use accounts::model::credentials::Email;
use accounts::store::{MemoryStore, Store};
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, link_token, test_app};
use integration_tests::dynamo::{Proxy, endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use serde_json::{Value, json};
use shared::ManualClock;

fn ses_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SESV2").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_SESV2 is not set: run `scripts/test`, which starts moto for SES")
    })
}

/// An SES client configured as the Lambda configures its own (timeouts, retries, TLS), at
/// `endpoint`, making auth-api's calls.
fn ses(endpoint: &str) -> aws_sdk_sesv2::Client {
    ses_as(endpoint, integration_tests::dynamo::AUTH_API_KEY)
}

/// An SES client under the access key id `access_key`.
fn ses_as(endpoint: &str, access_key: &str) -> aws_sdk_sesv2::Client {
    let sdk = integration_tests::dynamo::sdk_as(access_key);
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
        ses_as(&ses_endpoint(), integration_tests::dynamo::TESTS_KEY)
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
    let chain = shared::error_chain(cause.as_ref());
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

/// `app` with its mail going to moto's SES from `from`, and its clock.
fn mailing_from<S>(mut app: App<S>, from: &str) -> (App<S>, ManualClock) {
    app.accounts.recovery.mail = MailDelivery::Ses(SesMailer::new(ses(&ses_endpoint()), from));
    let clock = ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    (app, clock)
}

async fn post<S: Store>(app: &App<S>, path: &str, body: Value) -> Answer {
    let event = Event::post_json(Kind::RestV1, path, &body);
    Answer::from_response(app.handle(event.request()).await)
}

/// The token of the newest mail moto's SES accepted for `to` whose subject starts so.
async fn token_sent_to(to: &str, subject: &str) -> String {
    let sent = sent_messages().await;
    let mail = sent
        .iter()
        .rev()
        .find(|m| {
            m["destinations"]["ToAddresses"][0] == to
                && m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(subject))
        })
        .unwrap_or_else(|| panic!("SES received no {subject:?} mail for {to}: {sent:?}"));
    link_token(mail["body"].as_str().unwrap())
}

#[tokio::test]
async fn verification_and_reset_go_through_ses_and_finish_from_the_mails_on_dynamodb() {
    let from = sender(true).await;
    ses_flow(mailing_from(
        test_app(fresh_store(&endpoint()).await),
        &from,
    ))
    .await;
}

#[tokio::test]
async fn verification_and_reset_go_through_ses_and_finish_from_the_mails_in_memory() {
    let from = sender(true).await;
    ses_flow(mailing_from(test_app(MemoryStore::new()), &from)).await;
}

async fn ses_flow<S: Store>((app, clock): (App<S>, ManualClock)) {
    let ada = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let credentials = |password: &str| json!({"email": ada, "password": password});
    let registered = post(&app, "/register", credentials(STRONG_PASSWORD)).await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let token = token_sent_to(&ada, "Verify your email").await;
    let verified = post(&app, "/email/verify", json!({"token": token})).await;
    assert_eq!(verified.status, 200, "{}", verified.text);

    clock.advance_ms(61_000);
    let forgot = post(&app, "/password/forgot", json!({"email": ada})).await;
    assert_eq!(forgot.status, 202, "{}", forgot.text);
    let token = token_sent_to(&ada, "Reset your").await;
    let new_password = "lantern quartz meadow ninety blossoms";
    let reset = post(
        &app,
        "/password/reset",
        json!({"token": token, "new_password": new_password}),
    )
    .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    assert_eq!(
        post(&app, "/login", credentials(STRONG_PASSWORD))
            .await
            .status,
        401
    );
    assert_eq!(
        post(&app, "/login", credentials(new_password)).await.status,
        200
    );
}

#[tokio::test]
async fn ses_refusing_changes_no_answer_and_the_user_can_ask_again() {
    // An unverified sender: SES refuses every mail (as in the sandbox for a stranger).
    let from = sender(false).await;
    let (app, clock) = mailing_from(test_app(fresh_store(&endpoint()).await), &from);
    let ada = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = post(
        &app,
        "/register",
        json!({"email": ada, "password": STRONG_PASSWORD}),
    )
    .await;
    assert_eq!(
        registered.status, 201,
        "registration stands: {}",
        registered.text
    );
    clock.advance_ms(61_000);
    let known = post(&app, "/password/forgot", json!({"email": ada})).await;
    let unknown = post(
        &app,
        "/password/forgot",
        json!({"email": "nobody-at-all@example.com"}),
    )
    .await;
    assert_eq!((known.status, &known.text), (unknown.status, &unknown.text));
    assert_eq!(known.status, 202);
    // SES down: the same answers, within the bound.
    let proxy = Proxy::start_for(&ses_endpoint()).await;
    proxy.stop().await;
    let mut down = app;
    down.accounts.recovery.mail = MailDelivery::Ses(SesMailer::new(ses(&proxy.url()), &from));
    clock.advance_ms(61_000);
    let started = Instant::now();
    let answer = post(&down, "/password/forgot", json!({"email": ada})).await;
    assert_eq!((answer.status, &answer.text), (202, &known.text));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
