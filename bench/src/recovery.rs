//! `/password/forgot`'s time for a known and an unknown address: the answer must not tell
//! them apart by its time either (the mail takes time that an unknown address does not).

use std::sync::Arc;
use std::time::Instant;

use auth_api::recovery::RecoverySettings;
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
    app.recovery.settings = RecoverySettings::default();
    let clock = ManualClock::starting_now();
    app.clock = Arc::new(clock.clone());
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
    (crate::median(&mut unknown), crate::median(&mut known))
}
