//! `/password/forgot`'s time for a known and an unknown address, and `/register`'s for a new
//! and a taken one: the answers must not tell them apart by their time either (the mail takes
//! time that an unknown address does not).

use std::sync::Arc;
use std::time::Instant;

use accounts::recovery::RecoverySettings;
use integration_tests::app::{STRONG_PASSWORD, test_app};
use integration_tests::dynamo::{endpoint, fresh_store};
use integration_tests::events::{Event, Kind};
use serde_json::json;
use shared::ManualClock;

/// Requests per kind of address.
pub const REQUESTS: usize = 20;

/// Median milliseconds of `/password/forgot` for (unknown, known) addresses, over DynamoDB
/// Local, with the deployed default response floor and mail kept in an outbox.
pub async fn forgot_times() -> (f64, f64) {
    let mut app = test_app(fresh_store(&endpoint()).await);
    app.accounts.recovery.settings = RecoverySettings {
        // Every registration here comes from one address.
        registrations_per_source_per_hour: u32::MAX,
        ..RecoverySettings::default()
    };
    let clock = ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    let post =
        |path: &str, body: serde_json::Value| Event::post_json(Kind::RestV1, path, &body).request();
    // Each known address once: one mail a minute per address.
    for n in 0..REQUESTS {
        let body = json!({"email": format!("known{n}@example.com"), "password": STRONG_PASSWORD});
        assert_eq!(app.handle(post("/register", body)).await.status(), 201);
    }
    clock.advance_ms(61_000);
    let mut unknown = Vec::with_capacity(REQUESTS);
    let mut known = Vec::with_capacity(REQUESTS);
    for n in 0..REQUESTS {
        for (times, email) in [
            (&mut unknown, format!("nobody{n}@example.com")),
            (&mut known, format!("known{n}@example.com")),
        ] {
            let started = Instant::now();
            let answer = app
                .handle(post("/password/forgot", json!({"email": email})))
                .await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(answer.status(), 202);
        }
    }
    (
        crate::support::median(&mut unknown),
        crate::support::median(&mut known),
    )
}

/// Median milliseconds of `/register` for (new, taken) addresses, over DynamoDB Local at the
/// production floor of bcrypt cost 10, with mail on (an outbox): a taken address must answer
/// as a new one does, in time too, while its owner gets a mail instead.
pub async fn register_times() -> (f64, f64) {
    let mut app = test_app(fresh_store(&endpoint()).await);
    app.accounts.recovery.settings = RecoverySettings {
        registrations_per_source_per_hour: u32::MAX,
        ..RecoverySettings::default()
    };
    app.accounts.passwords = accounts::passwords::Passwords::new(10).expect("cost 10");
    let clock = ManualClock::starting_now();
    app.accounts.clock = Arc::new(clock.clone());
    let post =
        |path: &str, body: serde_json::Value| Event::post_json(Kind::RestV1, path, &body).request();
    for n in 0..REQUESTS {
        let body = json!({"email": format!("taken{n}@example.com"), "password": STRONG_PASSWORD});
        assert_eq!(app.handle(post("/register", body)).await.status(), 201);
    }
    // Past the minute of their verification mails: the attempt's notice is mailed too.
    clock.advance_ms(61_000);
    let mut new = Vec::with_capacity(REQUESTS);
    let mut taken = Vec::with_capacity(REQUESTS);
    for n in 0..REQUESTS {
        for (times, email) in [
            (&mut new, format!("new{n}@example.com")),
            (&mut taken, format!("taken{n}@example.com")),
        ] {
            let body = json!({"email": email, "password": "another fine passphrase 42"});
            let started = Instant::now();
            let answer = app.handle(post("/register", body)).await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(answer.status(), 201);
        }
    }
    let mails = integration_tests::app::outbox(&app);
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.subject.starts_with("Someone tried to create"))
            .count(),
        REQUESTS,
        "every taken address's owner was told"
    );
    (
        crate::support::median(&mut new),
        crate::support::median(&mut taken),
    )
}
