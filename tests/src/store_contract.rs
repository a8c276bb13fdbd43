//! One contract for every `UserStore`: the same tests run against the in-memory store and
//! against DynamoDB (tests/store_contract.rs).

use std::sync::Arc;

use auth_api::domain::Email;
use auth_api::store::{LoginAttempts, StoreError, UserRecord, UserStore};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

/// The stored user with this email, through the one read the store offers by email.
async fn by_email<S: UserStore>(store: &S, email: &Email) -> Option<UserRecord> {
    store.find_user_for_login(email).await.unwrap().0
}

pub fn user(email: &str) -> UserRecord {
    UserRecord {
        user_id: Uuid::new_v4(),
        email: Email::parse(email).expect("test emails are valid"),
        password_hash: SecretString::from(format!("$2b$04${}", "a".repeat(53))),
        roles: vec!["user".into(), "admin".into()],
        created_at: OffsetDateTime::from_unix_timestamp(1_795_424_047).unwrap(),
    }
}

pub async fn a_created_user_is_found_with_every_field<S: UserStore>(store: S) {
    let created = user("ada@example.com");
    store.create_user(&created).await.unwrap();
    let found = by_email(&store, &created.email).await.expect("found");
    assert_eq!(found.user_id, created.user_id);
    assert_eq!(found.email, created.email);
    assert_eq!(
        found.password_hash.expose_secret(),
        created.password_hash.expose_secret()
    );
    assert_eq!(found.roles, created.roles);
    assert_eq!(found.created_at, created.created_at);
}

pub async fn an_unknown_email_is_not_found<S: UserStore>(store: S) {
    store.create_user(&user("ada@example.com")).await.unwrap();
    let other = Email::parse("grace@example.com").unwrap();
    assert!(by_email(&store, &other).await.is_none());
}

pub async fn a_second_user_with_the_same_email_is_refused_and_the_first_kept<S: UserStore>(
    store: S,
) {
    let first = user("ada@example.com");
    store.create_user(&first).await.unwrap();
    let second = user("ada@example.com");
    assert!(matches!(
        store.create_user(&second).await,
        Err(StoreError::EmailTaken)
    ));
    let found = by_email(&store, &first.email).await.unwrap();
    assert_eq!(
        found.user_id, first.user_id,
        "the first account was overwritten"
    );
}

pub async fn concurrent_creates_of_one_email_have_exactly_one_winner<S: UserStore + 'static>(
    store: S,
) {
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let u = user("race@example.com");
            store.create_user(&u).await.map(|()| u.user_id)
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(id) => winners.push(id),
            Err(StoreError::EmailTaken) => {}
            Err(other) => panic!("unexpected store error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let email = Email::parse("race@example.com").unwrap();
    let stored = by_email(&*store, &email).await.unwrap();
    assert_eq!(stored.user_id, winners[0]);
}

pub async fn a_user_is_found_by_id<S: UserStore>(store: S) {
    let ada = user("ada@example.com");
    let grace = user("grace@example.com");
    store.create_user(&ada).await.unwrap();
    store.create_user(&grace).await.unwrap();
    let found = store
        .find_user_by_id(grace.user_id)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.email, grace.email);
    assert_eq!(found.roles, grace.roles);
    assert!(
        store
            .find_user_by_id(Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn failed_logins_are_counted_and_lock_at_the_threshold<S: UserStore>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let now = 1_795_424_047_000;
    for n in 1..=4 {
        let a = store.record_login_failure(&ada.email, now).await.unwrap();
        assert_eq!(
            a,
            LoginAttempts {
                failures: n,
                locked_until_ms: None
            }
        );
    }
    let fifth = store.record_login_failure(&ada.email, now).await.unwrap();
    assert_eq!(fifth.locked_until_ms, Some(now + 1_000));
    let sixth = store.record_login_failure(&ada.email, now).await.unwrap();
    assert_eq!(
        (sixth.failures, sixth.locked_until_ms),
        (6, Some(now + 2_000))
    );

    let (found, attempts) = store.find_user_for_login(&ada.email).await.unwrap();
    assert_eq!(found.unwrap().user_id, ada.user_id);
    assert_eq!(attempts, sixth);

    // Unknown emails are counted the same way.
    let nobody = Email::parse("nobody@example.com").unwrap();
    store.record_login_failure(&nobody, now).await.unwrap();
    let (found, attempts) = store.find_user_for_login(&nobody).await.unwrap();
    assert!(found.is_none());
    assert_eq!(attempts.failures, 1);

    store.clear_login_failures(&ada.email).await.unwrap();
    let (_, attempts) = store.find_user_for_login(&ada.email).await.unwrap();
    assert_eq!(attempts, LoginAttempts::default());
}

pub async fn concurrent_failures_are_all_counted<S: UserStore + 'static>(store: S) {
    let store = Arc::new(store);
    let email = Email::parse("ada@example.com").unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (store, email) = (Arc::clone(&store), email.clone());
        tasks.spawn(async move { store.record_login_failure(&email, 0).await.unwrap() });
    }
    while tasks.join_next().await.is_some() {}
    let (_, attempts) = store.find_user_for_login(&email).await.unwrap();
    assert_eq!(
        attempts.failures, 20,
        "no failure was lost to a read-modify-write race"
    );
}
