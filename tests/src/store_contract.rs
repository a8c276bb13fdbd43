//! One contract for every `Store`: the same tests run against the in-memory store and
//! against DynamoDB (tests/store_contract.rs).

use std::sync::Arc;

use accounts::model::backoff::{
    Admission, BACKOFF_THRESHOLD, EMAIL_WINDOW_SECONDS, LoginAttempts, Source,
};
use accounts::model::credentials::Email;
use accounts::model::link::{ActionRecord, Purpose};
use accounts::model::session::RefreshToken;
use accounts::model::session::{ClientInfo, RefreshRecord, SessionFamily, Spent};
use accounts::model::user::UserRecord;
use accounts::store::{Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

/// The stored user with this email, through the one read the store offers by email.
async fn by_email<S: Store>(store: &S, email: &Email) -> Option<UserRecord> {
    store
        .find_user_for_login(email, &Source::new("192.0.2.1"))
        .await
        .unwrap()
        .0
}

pub fn user(email: &str) -> UserRecord {
    UserRecord {
        password_hash: SecretString::from(format!("$2b$04${}", "a".repeat(53))),
        roles: vec!["user".into(), "admin".into()],
        ..UserRecord::new(
            Email::parse(email).expect("test emails are valid"),
            SecretString::from(String::new()),
            OffsetDateTime::from_unix_timestamp(1_795_424_047).unwrap(),
        )
    }
}

pub async fn a_created_user_is_found_with_every_field<S: Store>(store: S) {
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

pub async fn an_unknown_email_is_not_found<S: Store>(store: S) {
    store.create_user(&user("ada@example.com")).await.unwrap();
    let other = Email::parse("grace@example.com").unwrap();
    assert!(by_email(&store, &other).await.is_none());
}

pub async fn a_second_user_with_the_same_email_is_refused_and_the_first_kept<S: Store>(store: S) {
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

pub async fn concurrent_creates_of_one_email_have_exactly_one_winner<S: Store + 'static>(store: S) {
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

pub async fn a_user_is_found_by_id<S: Store>(store: S) {
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

/// One admission for (email, source) at `now`, decided on the record the store holds.
async fn admit<S: Store>(store: &S, email: &Email, source: &Source, now: i64) -> Admission {
    let (_, seen) = store.find_user_for_login(email, source).await.unwrap();
    store
        .admit_login_attempt(email, source, seen, now)
        .await
        .unwrap()
}

pub async fn password_checks_are_counted_per_source_and_lock_at_the_threshold<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (here, there) = (Source::new("198.51.100.1"), Source::new("203.0.113.9"));
    let now = 1_795_424_047_000;
    for n in 1..=BACKOFF_THRESHOLD {
        match admit(&store, &ada.email, &here, now).await {
            Admission::Admitted(a) => assert_eq!(a.failures, n),
            other => panic!("check {n}: {other:?}"),
        }
    }
    assert_eq!(
        admit(&store, &ada.email, &here, now).await,
        Admission::Refused {
            retry_after_seconds: 1
        }
    );
    let (found, attempts) = store.find_user_for_login(&ada.email, &here).await.unwrap();
    assert_eq!(found.unwrap().user_id, ada.user_id);
    assert_eq!(
        (attempts.failures, attempts.locked_until_ms),
        (5, Some(now + 1_000))
    );
    // Another address has its own count: the owner is not locked out by a guesser elsewhere.
    assert!(matches!(
        admit(&store, &ada.email, &there, now).await,
        Admission::Admitted(LoginAttempts { failures: 1, .. })
    ));
    // Unknown emails are counted the same way.
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(matches!(
        admit(&store, &nobody, &here, now).await,
        Admission::Admitted(LoginAttempts { failures: 1, .. })
    ));
    // Forgotten after a success; and an expired record does not hold, even while stored.
    store
        .forget_login_failures(&ada.email, &here, false, now)
        .await
        .unwrap();
    let (_, attempts) = store.find_user_for_login(&ada.email, &here).await.unwrap();
    assert_eq!(attempts, LoginAttempts::default());
    let two_days_later = now + 2 * 24 * 3600 * 1000;
    for _ in 0..BACKOFF_THRESHOLD {
        admit(&store, &ada.email, &there, now).await;
    }
    assert!(matches!(
        admit(&store, &ada.email, &there, two_days_later).await,
        Admission::Admitted(LoginAttempts { failures: 1, .. })
    ));
}

pub async fn concurrent_checks_are_admitted_at_most_to_the_threshold<S: Store + 'static>(store: S) {
    let store = Arc::new(store);
    let email = Email::parse("ada@example.com").unwrap();
    let source = Source::new("198.51.100.1");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let (store, email, source) = (Arc::clone(&store), email.clone(), source.clone());
        // Every task decided on the same (empty) record it read before the others wrote.
        tasks.spawn(async move {
            store
                .admit_login_attempt(&email, &source, LoginAttempts::default(), 0)
                .await
                .unwrap()
        });
    }
    let mut admitted = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Admission::Admitted(a) = result.unwrap() {
            admitted.push(a.failures);
        }
    }
    admitted.sort_unstable();
    assert_eq!(
        admitted,
        (1..=BACKOFF_THRESHOLD).collect::<Vec<_>>(),
        "exactly the threshold of checks got through, each counted once"
    );
}

pub async fn the_email_window_counts_every_failure_once_and_starts_anew<S: Store + 'static>(
    store: S,
) {
    let store = Arc::new(store);
    let email = Email::parse("ada@example.com").unwrap();
    let now = 1_795_424_047_000;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (store, email) = (Arc::clone(&store), email.clone());
        tasks.spawn(async move { store.count_email_failure(&email, now).await.unwrap() });
    }
    let mut counts = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let window = result.unwrap();
        assert_eq!(window.window_ends, now / 1000 + EMAIL_WINDOW_SECONDS);
        counts.push(window.count);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<_>>(),
        "no failure lost or doubled"
    );
    // A success takes its own count back; a window that has ended starts again at one.
    store
        .forget_login_failures(&email, &Source::new("192.0.2.1"), true, now)
        .await
        .unwrap();
    assert_eq!(
        store.count_email_failure(&email, now).await.unwrap().count,
        20
    );
    let later = now + (EMAIL_WINDOW_SECONDS + 1) * 1000;
    assert_eq!(
        store
            .count_email_failure(&email, later)
            .await
            .unwrap()
            .count,
        1
    );
}

pub async fn trusted_sources_and_rehashes_are_stored<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let sources = vec!["203.0.113.9".to_owned(), "198.51.100.1".to_owned()];
    store.set_trusted_sources(&ada, &sources).await.unwrap();
    let found = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(found.trusted_sources, sources);
    assert!(found.trusts(&Source::new("198.51.100.1")));

    let new_hash = SecretString::from(format!("$2b$05${}", "b".repeat(53)));
    store.rehash_password(&found, &new_hash).await.unwrap();
    let rehashed = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(
        rehashed.password_hash.expose_secret(),
        new_hash.expose_secret()
    );
    // Based on a hash that is no longer stored: refused, nothing written.
    let stale = SecretString::from(format!("$2b$06${}", "c".repeat(53)));
    assert!(matches!(
        store.rehash_password(&found, &stale).await,
        Err(StoreError::Conflict)
    ));
    let kept = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(kept.password_hash.expose_secret(), new_hash.expose_secret());
}

/// Every change that ends all sessions also forgets the trusted sign-in addresses: someone
/// who squatted an address, or stole a password, keeps no exemption from the email window.
pub async fn ending_every_session_forgets_the_trusted_addresses<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let sources = vec!["203.0.113.9".to_owned()];
    let trust = async || {
        let current = by_email(&store, &ada.email).await.unwrap();
        store.set_trusted_sources(&current, &sources).await.unwrap();
        let trusted = by_email(&store, &ada.email).await.unwrap();
        assert_eq!(trusted.trusted_sources, sources);
        trusted
    };
    trust().await;
    assert!(
        store
            .revoke_all_sessions(&ada.email, ada.user_id)
            .await
            .unwrap()
    );
    assert!(
        by_email(&store, &ada.email)
            .await
            .unwrap()
            .trusted_sources
            .is_empty()
    );

    let current = trust().await;
    assert!(store.set_disabled(&current, true).await.unwrap());
    assert!(
        by_email(&store, &ada.email)
            .await
            .unwrap()
            .trusted_sources
            .is_empty()
    );
    assert!(store.set_disabled(&current, false).await.unwrap());

    let current = trust().await;
    let (_, family, token) = session(&current, current.session_epoch + 1);
    let new_hash = SecretString::from(format!("$2b$05${}", "d".repeat(53)));
    store
        .change_password(&current, &new_hash, &family, &token)
        .await
        .unwrap();
    assert!(
        by_email(&store, &ada.email)
            .await
            .unwrap()
            .trusted_sources
            .is_empty()
    );
}

/// Unix milliseconds the session tests run at: in the future (2030), since DynamoDB Local
/// deletes items whose TTL attribute (`expires_at`) has passed, as DynamoDB does.
const NOW_MS: i64 = 1_895_424_047_000;

/// A new family for `user` at `epoch` and its first token, living an hour.
pub fn session(user: &UserRecord, epoch: u64) -> (RefreshToken, SessionFamily, RefreshRecord) {
    let client = ClientInfo::new(
        Some("Mozilla/5.0 (X11; Linux x86_64)"),
        Some("198.51.100.7"),
    );
    SessionFamily::begin(user, epoch, NOW_MS, 3600, client)
}

/// The successor of `record`'s token, issued `later_ms` after it, and how the old one is spent.
fn successor(old: &RefreshToken, record: &RefreshRecord, later_ms: i64) -> (RefreshRecord, Spent) {
    let next = RefreshToken::generate();
    let at_ms = record.issued_at_ms + later_ms;
    let new = RefreshRecord {
        hash: next.hash(),
        issued_at_ms: at_ms,
        expires_at: at_ms / 1000 + 3600,
        spent: None,
        ..record.clone()
    };
    let spent = Spent {
        at_ms,
        sealed_successor: old.seal(&next),
        successor_hash: new.hash,
    };
    (new, spent)
}

pub async fn a_session_starts_and_its_token_is_found_with_family_and_user<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (token, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();

    let found = store
        .find_refresh(&token.hash())
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found.token, record);
    assert_eq!(found.family, Some(family));
    let user = found.user.expect("the token's user");
    assert_eq!((user.user_id, user.session_epoch), (ada.user_id, 0));

    let unknown = RefreshToken::generate().hash();
    assert!(store.find_refresh(&unknown).await.unwrap().is_none());
}

pub async fn a_token_rotates_once_and_keeps_its_sealed_successor<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (token, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();

    let (next, spent) = successor(&token, &record, 60_000);
    store
        .rotate_refresh(&record.hash, &spent, &next, 0)
        .await
        .unwrap();
    let old = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(old.token.spent.as_ref(), Some(&spent));
    let new = store.find_refresh(&next.hash).await.unwrap().unwrap();
    assert_eq!(new.token, next);
    let family_now = new.family.unwrap();
    assert_eq!(
        family_now.expires_at, next.expires_at,
        "a refresh extends the session"
    );
    assert_eq!(family_now.last_refreshed_at_ms, Some(spent.at_ms));
    assert_eq!(
        token
            .unseal(&old.token.spent.unwrap().sealed_successor)
            .hash(),
        next.hash
    );

    // Spent is spent: a second rotation of the same token changes nothing.
    let (other, spent_again) = successor(&token, &record, 61_000);
    assert!(matches!(
        store
            .rotate_refresh(&record.hash, &spent_again, &other, 0)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(store.find_refresh(&other.hash).await.unwrap().is_none());
    let old = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(old.token.spent, Some(spent));
}

pub async fn concurrent_rotations_of_one_token_have_exactly_one_winner<S: Store + 'static>(
    store: S,
) {
    let store = Arc::new(store);
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (token, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (next, spent) = successor(&token, &record, 1000 + i);
        let (store, old) = (Arc::clone(&store), record.hash);
        tasks.spawn(async move {
            store
                .rotate_refresh(&old, &spent, &next, 0)
                .await
                .map(|()| next.hash)
        });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(hash) => winners.push(hash),
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected store error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one successor may exist");
    let old = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(old.token.spent.unwrap().successor_hash, winners[0]);
}

pub async fn a_revoked_family_cannot_rotate<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (token, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();
    let end = accounts::model::event::SessionEnd::Logout;
    store
        .revoke_family(family.family_id, family.user_id, end)
        .await
        .unwrap();
    store
        .revoke_family(family.family_id, family.user_id, end)
        .await
        .unwrap();
    store
        .revoke_family(Uuid::new_v4(), family.user_id, end)
        .await
        .unwrap();

    let found = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert!(found.family.unwrap().revoked);
    let (next, spent) = successor(&token, &record, 1000);
    assert!(matches!(
        store.rotate_refresh(&record.hash, &spent, &next, 0).await,
        Err(StoreError::Conflict)
    ));
    let found = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(found.token.spent, None, "nothing was half-written");
}

pub async fn revoking_all_sessions_moves_the_epoch_on<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (token, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();

    assert!(
        !store
            .revoke_all_sessions(&ada.email, Uuid::new_v4())
            .await
            .unwrap(),
        "another user's id must not end ada's sessions"
    );
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert!(
        !store
            .revoke_all_sessions(&nobody, ada.user_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_all_sessions(&ada.email, ada.user_id)
            .await
            .unwrap()
    );
    assert_eq!(by_email(&store, &ada.email).await.unwrap().session_epoch, 1);

    let (next, spent) = successor(&token, &record, 1000);
    assert!(matches!(
        store.rotate_refresh(&record.hash, &spent, &next, 0).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn a_password_change_starts_the_next_epoch_all_or_nothing<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, old_family, old_record) = session(&ada, 0);
    store.start_session(&old_family, &old_record).await.unwrap();

    let new_hash = SecretString::from(format!("$2b$04${}", "b".repeat(53)));
    let (_, family, record) = session(&ada, 1);
    store
        .change_password(&ada, &new_hash, &family, &record)
        .await
        .unwrap();
    let stored = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(
        stored.password_hash.expose_secret(),
        new_hash.expose_secret()
    );
    assert_eq!(stored.session_epoch, 1);
    let found = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(found.family.unwrap().epoch, 1);

    // A change based on the account as it was before loses, and writes nothing.
    let (_, late_family, late_record) = session(&ada, 1);
    let late_hash = SecretString::from(format!("$2b$04${}", "c".repeat(53)));
    assert!(matches!(
        store
            .change_password(&ada, &late_hash, &late_family, &late_record)
            .await,
        Err(StoreError::Conflict)
    ));
    let stored = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(
        stored.password_hash.expose_secret(),
        new_hash.expose_secret()
    );
    assert!(
        store
            .find_refresh(&late_record.hash)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn an_issued_token_is_live_and_a_newer_one_supersedes_it<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, first) = ActionRecord::issue(&ada, Purpose::VerifyEmail, NOW_MS, 86_400);
    store.issue_action(&first).await.unwrap();
    let (found, owner) = store
        .find_action(&first.hash)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found, first);
    let owner = owner.expect("with its user");
    assert!(found.usable_for(&owner, NOW_MS));
    assert!(!owner.email_verified);

    let (_, second) = ActionRecord::issue(&ada, Purpose::VerifyEmail, NOW_MS, 86_400);
    store.issue_action(&second).await.unwrap();
    let (_, owner) = store.find_action(&first.hash).await.unwrap().unwrap();
    assert!(!first.usable_for(&owner.unwrap(), NOW_MS), "superseded");
    assert!(matches!(
        store.verify_email(&first).await,
        Err(StoreError::Conflict)
    ));
    assert!(!by_email(&store, &ada.email).await.unwrap().email_verified);
    // A token for a user who does not exist is not stored.
    let ghost = user("ghost@example.com");
    let (_, orphan) = ActionRecord::issue(&ghost, Purpose::ResetPassword, NOW_MS, 1800);
    assert!(matches!(
        store.issue_action(&orphan).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.find_action(&orphan.hash).await.unwrap().is_none());
}

pub async fn a_verification_token_is_spent_once<S: Store + 'static>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, record) = ActionRecord::issue(&ada, Purpose::VerifyEmail, NOW_MS, 86_400);
    store.issue_action(&record).await.unwrap();
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, record) = (Arc::clone(&store), record.clone());
        tasks.spawn(async move { store.verify_email(&record).await });
    }
    let mut won = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(won, 1, "exactly one spend of one token");
    let verified = by_email(store.as_ref(), &ada.email).await.unwrap();
    assert!(verified.email_verified);
    assert_eq!(verified.verify_token, None);
    assert!(store.find_action(&record.hash).await.unwrap().is_none());
}

pub async fn a_reset_replaces_the_hash_ends_sessions_and_verifies_the_email<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, verify) = ActionRecord::issue(&ada, Purpose::VerifyEmail, NOW_MS, 86_400);
    store.issue_action(&verify).await.unwrap();
    let (_, reset) = ActionRecord::issue(&ada, Purpose::ResetPassword, NOW_MS, 1800);
    store.issue_action(&reset).await.unwrap();
    // A token acts only for its own purpose.
    let mut wrong_purpose = verify.clone();
    wrong_purpose.purpose = Purpose::ResetPassword;
    let new_hash = SecretString::from(format!("$2b$04${}", "n".repeat(53)));
    assert!(matches!(
        store.reset_password(&wrong_purpose, &new_hash).await,
        Err(StoreError::Conflict)
    ));
    store.reset_password(&reset, &new_hash).await.unwrap();
    let after = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(
        after.password_hash.expose_secret(),
        new_hash.expose_secret()
    );
    assert_eq!(after.session_epoch, ada.session_epoch + 1);
    assert!(after.email_verified);
    assert_eq!(after.reset_token, None);
    assert_eq!(
        after.verify_token,
        Some(verify.hash),
        "the other purpose's token is kept"
    );
    assert!(matches!(
        store.reset_password(&reset, &new_hash).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn mail_and_token_checks_are_counted_in_their_windows<S: Store>(store: S) {
    let email = Email::parse("ada@example.com").unwrap();
    let first = store.count_mail(&email, NOW_MS).await.unwrap();
    assert_eq!((first.minute.count, first.hour.count), (1, 1));
    assert_eq!(first.minute.window_ends, NOW_MS / 1000 + 60);
    assert_eq!(first.hour.window_ends, NOW_MS / 1000 + 3600);
    let second = store.count_mail(&email, NOW_MS + 1000).await.unwrap();
    assert_eq!((second.minute.count, second.hour.count), (2, 2));
    let later = store.count_mail(&email, NOW_MS + 61_000).await.unwrap();
    assert_eq!((later.minute.count, later.hour.count), (1, 3));
    let other = Email::parse("bob@example.com").unwrap();
    assert_eq!(
        store.count_mail(&other, NOW_MS).await.unwrap().hour.count,
        1
    );

    let here = Source::new("198.51.100.1");
    for n in 1..=3 {
        assert_eq!(
            store.count_token_check(&here, NOW_MS).await.unwrap().count,
            n
        );
    }
    let next_hour = NOW_MS + 3_601_000;
    assert_eq!(
        store
            .count_token_check(&here, next_hour)
            .await
            .unwrap()
            .count,
        1
    );
}

/// Registrations per source: every one of many parallel calls gets its own count, and a new
/// hour starts anew.
pub async fn registrations_are_counted_per_source_even_in_parallel<S: Store + 'static>(store: S) {
    let store = std::sync::Arc::new(store);
    let here = Source::new("198.51.100.7");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = std::sync::Arc::clone(&store);
        let here = here.clone();
        tasks.spawn(async move { store.count_registration(&here, NOW_MS).await.unwrap().count });
    }
    let mut counts = tasks.join_all().await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<u32>>());
    let elsewhere = Source::new("203.0.113.7");
    assert_eq!(
        store
            .count_registration(&elsewhere, NOW_MS)
            .await
            .unwrap()
            .count,
        1
    );
    let next_hour = NOW_MS + 3_601_000;
    assert_eq!(
        store
            .count_registration(&here, next_hour)
            .await
            .unwrap()
            .count,
        1
    );
}

pub async fn clearing_login_failures_forgets_every_source_and_the_window<S: Store>(store: S) {
    let email = Email::parse("ada@example.com").unwrap();
    let sources = [Source::new("198.51.100.1"), Source::new("203.0.113.9")];
    for source in &sources {
        for _ in 0..5 {
            admit(&store, &email, source, NOW_MS).await;
        }
    }
    store.count_email_failure(&email, NOW_MS).await.unwrap();
    store.clear_login_failures(&email).await.unwrap();
    for source in &sources {
        let (_, attempts) = store.find_user_for_login(&email, source).await.unwrap();
        assert_eq!(attempts, LoginAttempts::default());
    }
    assert_eq!(
        store
            .count_email_failure(&email, NOW_MS)
            .await
            .unwrap()
            .count,
        1
    );
}

pub async fn sessions_are_listed_by_user_with_their_client<S: Store>(store: S) {
    let (ada, grace) = (user("ada@example.com"), user("grace@example.com"));
    store.create_user(&ada).await.unwrap();
    store.create_user(&grace).await.unwrap();
    let (_, first, first_token) = session(&ada, 0);
    let (_, mut second, second_token) = session(&ada, 0);
    second.client = ClientInfo::new(Some("curl/8.5.0"), None);
    let (_, other, other_token) = session(&grace, 0);
    for (family, token) in [
        (&first, &first_token),
        (&second, &second_token),
        (&other, &other_token),
    ] {
        store.start_session(family, token).await.unwrap();
    }
    let mut listed = store.list_sessions(ada.user_id).await.unwrap();
    listed.sort_by_key(|f| f.client.user_agent.clone());
    // Sorted by user agent: "Mozilla/…" before "curl/…".
    assert_eq!(listed, [first.clone(), second.clone()]);
    assert_eq!(listed[0].client.source_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(listed[1].client.source_ip, None);
    assert_eq!(store.list_sessions(grace.user_id).await.unwrap(), [other]);
    assert!(
        store
            .list_sessions(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.find_session(first.family_id).await.unwrap(),
        Some(first)
    );
    assert_eq!(store.find_session(Uuid::new_v4()).await.unwrap(), None);
}

pub async fn deleting_a_user_removes_the_account_and_all_it_owns<S: Store>(store: S) {
    let (ada, grace) = (user("ada@example.com"), user("grace@example.com"));
    store.create_user(&ada).await.unwrap();
    store.create_user(&grace).await.unwrap();
    let (token, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();
    let (next, spent) = successor(&token, &record, 1000);
    store
        .rotate_refresh(&record.hash, &spent, &next, 0)
        .await
        .unwrap();
    let (_, action) = ActionRecord::issue(&ada, Purpose::ResetPassword, NOW_MS, 600);
    store.issue_action(&action).await.unwrap();
    let (_, kept_family, kept_record) = session(&grace, 0);
    store
        .start_session(&kept_family, &kept_record)
        .await
        .unwrap();

    // As read before a logout-all moved the epoch on: nothing is deleted.
    let stale = by_email(&store, &ada.email).await.unwrap();
    assert!(
        store
            .revoke_all_sessions(&ada.email, ada.user_id)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.delete_user(&stale).await,
        Err(StoreError::Conflict)
    ));
    assert!(by_email(&store, &ada.email).await.is_some());

    let current = by_email(&store, &ada.email).await.unwrap();
    store.delete_user(&current).await.unwrap();
    assert!(by_email(&store, &ada.email).await.is_none());
    assert!(store.find_user_by_id(ada.user_id).await.unwrap().is_none());
    for hash in [record.hash, next.hash] {
        assert!(store.find_refresh(&hash).await.unwrap().is_none());
    }
    assert_eq!(store.find_session(family.family_id).await.unwrap(), None);
    assert!(store.find_action(&action.hash).await.unwrap().is_none());
    // Grace's account is untouched, and ada's email registers again at once.
    assert!(
        store
            .find_refresh(&kept_record.hash)
            .await
            .unwrap()
            .is_some()
    );
    let again = user("ada@example.com");
    store.create_user(&again).await.unwrap();
    assert_eq!(
        by_email(&store, &ada.email).await.unwrap().user_id,
        again.user_id
    );
}

pub async fn the_session_state_follows_the_session_and_its_account<S: Store>(store: S) {
    use accounts::model::session::{AccountState, SessionState};
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();
    let read = || store.session_state(family.family_id, &ada.email);

    let (found, account) = read().await.unwrap();
    assert_eq!(found, Some(SessionState::from(&family)));
    assert_eq!(
        account,
        Some(AccountState {
            user_id: ada.user_id,
            session_epoch: 0,
            disabled: false
        })
    );

    assert!(
        store
            .revoke_all_sessions(&ada.email, ada.user_id)
            .await
            .unwrap()
    );
    assert_eq!(read().await.unwrap().1.unwrap().session_epoch, 1);
    store
        .revoke_family(
            family.family_id,
            family.user_id,
            accounts::model::event::SessionEnd::Logout,
        )
        .await
        .unwrap();
    assert!(read().await.unwrap().0.unwrap().revoked);
    let stored = by_email(&store, &ada.email).await.unwrap();
    assert!(store.set_disabled(&stored, true).await.unwrap());
    assert!(read().await.unwrap().1.unwrap().disabled);

    let nobody = Email::parse("nobody@example.com").unwrap();
    let (session, account) = store.session_state(Uuid::new_v4(), &nobody).await.unwrap();
    assert_eq!((session, account), (None, None));
}

pub async fn mfa_state_is_saved_only_over_the_state_read<S: Store>(store: S) {
    use accounts::model::mfa::MfaState;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, old_family, old_record) = session(&ada, 0);
    store.start_session(&old_family, &old_record).await.unwrap();

    let pending = MfaState {
        pending: Some((vec![1, 2, 3], 1_900_000_000)),
        ..MfaState::default()
    };
    store.save_mfa(&ada, &pending, None).await.unwrap();
    let read = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(
        read.mfa,
        MfaState {
            revision: 1,
            ..pending.clone()
        }
    );
    // Saved over a stale read: refused, nothing written.
    assert!(matches!(
        store.save_mfa(&ada, &MfaState::default(), None).await,
        Err(StoreError::Conflict)
    ));

    // Enabled with a new session: the epoch moves on and only the new session lives.
    let enabled = MfaState {
        secret: Some(vec![9; 40]),
        pending: None,
        last_step: 7,
        recovery: vec!["a".repeat(64), "b".repeat(64)],
        revision: 0,
    };
    let (_, family, record) = session(&read, 1);
    store
        .save_mfa(&read, &enabled, Some((&family, &record)))
        .await
        .unwrap();
    let after = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(
        after.mfa,
        MfaState {
            revision: 2,
            ..enabled
        }
    );
    assert_eq!(after.session_epoch, 1);
    assert!(
        store
            .find_session(family.family_id)
            .await
            .unwrap()
            .is_some()
    );
    let found = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(found.family.unwrap().epoch, 1);

    // Disabled again: the secret and the codes go.
    store
        .save_mfa(&after, &MfaState::default(), None)
        .await
        .unwrap();
    let off = by_email(&store, &ada.email).await.unwrap().mfa;
    assert!(!off.enabled() && off.recovery.is_empty() && off.pending.is_none());
}

pub async fn concurrent_uses_of_one_code_have_exactly_one_winner<S: Store + 'static>(store: S) {
    use accounts::model::mfa::{MfaChallenge, MfaState};
    let store = Arc::new(store);
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let enabled = MfaState {
        secret: Some(vec![9; 40]),
        recovery: vec!["a".repeat(64), "b".repeat(64)],
        ..MfaState::default()
    };
    store.save_mfa(&ada, &enabled, None).await.unwrap();
    let read = by_email(store.as_ref(), &ada.email).await.unwrap();

    // Ten parallel saves of the state after spending one code, each over the same read.
    let spent = MfaState {
        last_step: 100,
        ..read.mfa.clone()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, read, spent) = (Arc::clone(&store), read.clone(), spent.clone());
        tasks.spawn(async move { store.save_mfa(&read, &spent, None).await });
    }
    let mut won = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected store error: {other:?}"),
        }
    }
    assert_eq!(won, 1, "a code serves once");

    // Ten parallel completions of one login challenge: one session.
    let read = by_email(store.as_ref(), &ada.email).await.unwrap();
    let challenge = MfaChallenge {
        hash: RefreshToken::generate().hash(),
        user_id: ada.user_id,
        email: ada.email.clone(),
        epoch: read.session_epoch,
        expires_at: NOW_MS / 1000 + 300,
    };
    store.begin_mfa_challenge(&challenge).await.unwrap();
    assert_eq!(
        store.find_mfa_challenge(&challenge.hash).await.unwrap(),
        Some(challenge.clone())
    );
    let mut tasks = tokio::task::JoinSet::new();
    for step in 0..10 {
        let (store, read, challenge) = (Arc::clone(&store), read.clone(), challenge.clone());
        let (_, family, record) = session(&read, read.session_epoch);
        let mfa = MfaState {
            last_step: 200 + step,
            ..read.mfa.clone()
        };
        tasks.spawn(async move {
            store
                .complete_mfa_challenge(&challenge, &read, &mfa, &family, &record)
                .await
                .map(|()| family.family_id)
        });
    }
    let mut sessions = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(id) => sessions.push(id),
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("unexpected store error: {other:?}"),
        }
    }
    assert_eq!(sessions.len(), 1, "a challenge serves one login");
    assert!(store.find_session(sessions[0]).await.unwrap().is_some());
    assert_eq!(
        store.find_mfa_challenge(&challenge.hash).await.unwrap(),
        None
    );

    // A challenge of an older epoch (a password changed since) completes nothing.
    let stale = MfaChallenge {
        hash: RefreshToken::generate().hash(),
        epoch: read.session_epoch,
        ..challenge
    };
    store.begin_mfa_challenge(&stale).await.unwrap();
    let current = by_email(store.as_ref(), &ada.email).await.unwrap();
    assert!(
        store
            .revoke_all_sessions(&ada.email, ada.user_id)
            .await
            .unwrap()
    );
    let (_, family, record) = session(&current, current.session_epoch);
    assert!(matches!(
        store
            .complete_mfa_challenge(&stale, &current, &current.mfa, &family, &record)
            .await,
        Err(StoreError::Conflict)
    ));
}

fn code_for(user: &UserRecord, family: &SessionFamily) -> accounts::model::oidc::CodeRecord {
    use accounts::model::oidc::{CodeChallenge, CodeRecord};
    use accounts::model::registry::ClientId;
    CodeRecord {
        hash: RefreshToken::generate().hash(),
        client_id: ClientId::parse("client-1").unwrap(),
        redirect_uri: "https://app.test/callback".into(),
        challenge: CodeChallenge::from_stored("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        scope: "openid email".into(),
        nonce: Some("n-1".into()),
        user_id: user.user_id,
        email: user.email.clone(),
        family_id: family.family_id,
        expires_at: NOW_MS / 1000 + 60,
    }
}

pub async fn an_authorization_code_is_spent_once_even_in_parallel<S: Store + 'static>(store: S) {
    use accounts::model::oidc::CodeSpend;
    let store = Arc::new(store);
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, family, record) = session(&ada, 0);
    store.start_session(&family, &record).await.unwrap();
    let code = code_for(&ada, &family);
    store.save_code(&code).await.unwrap();
    assert!(matches!(
        store.save_code(&code).await,
        Err(StoreError::Conflict)
    ));

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, hash) = (Arc::clone(&store), code.hash);
        tasks.spawn(async move { store.spend_code(&hash, NOW_MS).await });
    }
    let mut first = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap().unwrap() {
            CodeSpend::First(found) => first.push(found),
            CodeSpend::Again {
                code: found,
                issued,
            } => {
                assert_eq!(found, code);
                assert!(!issued, "nothing issued yet");
            }
            CodeSpend::Unknown => panic!("the code exists"),
        }
    }
    assert_eq!(
        first,
        vec![code.clone()],
        "exactly one first use, the code as saved"
    );
    store.mark_code_issued(&code.hash).await.unwrap();
    assert_eq!(
        store.spend_code(&code.hash, NOW_MS).await.unwrap(),
        CodeSpend::Again {
            code: code.clone(),
            issued: true
        }
    );
    let unknown = RefreshToken::generate().hash();
    assert_eq!(
        store.spend_code(&unknown, NOW_MS).await.unwrap(),
        CodeSpend::Unknown
    );
    store.mark_code_issued(&unknown).await.unwrap();
}

pub async fn tokens_keep_their_use_and_join_only_a_live_session<S: Store>(store: S) {
    use accounts::model::registry::ClientId;
    use accounts::model::session::TokenUse;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let (_, family, mut record) = session(&ada, 0);
    record.token_use = TokenUse::Browser;
    store.start_session(&family, &record).await.unwrap();
    let found = store.find_refresh(&record.hash).await.unwrap().unwrap();
    assert_eq!(found.token.token_use, TokenUse::Browser);

    let client_token = RefreshRecord {
        hash: RefreshToken::generate().hash(),
        token_use: TokenUse::Client {
            client_id: ClientId::parse("client-1").unwrap(),
            scope: "openid offline_access".into(),
        },
        ..record.clone()
    };
    store.add_refresh(&client_token, 0).await.unwrap();
    let found = store
        .find_refresh(&client_token.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.token, client_token);
    // A rotation keeps the use.
    let old = RefreshToken::generate();
    let (next, spent) = successor(&old, &client_token, 1000);
    store
        .rotate_refresh(&client_token.hash, &spent, &next, 0)
        .await
        .unwrap();
    let found = store.find_refresh(&next.hash).await.unwrap().unwrap();
    assert_eq!(found.token.token_use, client_token.token_use);

    // Not into another epoch, nor a revoked session.
    let late = RefreshRecord {
        hash: RefreshToken::generate().hash(),
        ..client_token.clone()
    };
    assert!(matches!(
        store.add_refresh(&late, 1).await,
        Err(StoreError::Conflict)
    ));
    store
        .revoke_family(
            family.family_id,
            family.user_id,
            accounts::model::event::SessionEnd::Logout,
        )
        .await
        .unwrap();
    assert!(matches!(
        store.add_refresh(&late, 0).await,
        Err(StoreError::Conflict)
    ));
    assert!(store.find_refresh(&late.hash).await.unwrap().is_none());
}

pub async fn consent_grows_by_every_grant_and_goes_with_the_account<S: Store + 'static>(store: S) {
    use accounts::model::registry::ClientId;
    let store = Arc::new(store);
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let client = ClientId::parse("client-1").unwrap();
    assert!(
        store
            .find_consent(ada.user_id, &client)
            .await
            .unwrap()
            .is_none()
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (store, client) = (Arc::clone(&store), client.clone());
        let user_id = ada.user_id;
        tasks.spawn(async move {
            store
                .grant_consent(
                    user_id,
                    &client,
                    &[format!("s{i}"), "openid".into()],
                    NOW_MS,
                )
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let consent = store
        .find_consent(ada.user_id, &client)
        .await
        .unwrap()
        .unwrap();
    let mut expected: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    expected.push("openid".into());
    expected.sort();
    assert_eq!(consent.scopes, expected, "no grant lost");
    // Another client's consent is its own.
    let other = ClientId::parse("client-2").unwrap();
    assert!(
        store
            .find_consent(ada.user_id, &other)
            .await
            .unwrap()
            .is_none()
    );
    let read = by_email(store.as_ref(), &ada.email).await.unwrap();
    store.delete_user(&read).await.unwrap();
    assert!(
        store
            .find_consent(ada.user_id, &client)
            .await
            .unwrap()
            .is_none(),
        "deleted with the account"
    );
}

fn passkey_of(user: &UserRecord, n: u8) -> accounts::model::passkey::Passkey {
    let credential_id = vec![n; 20];
    accounts::model::passkey::Passkey {
        id: accounts::model::webauthn::passkey_id(&credential_id),
        credential_id,
        user_id: user.user_id,
        name: accounts::model::passkey::PasskeyName::parse("Laptop").unwrap(),
        public_key: vec![0xa1, 0x01, 0x02],
        algorithm: -7,
        sign_count: 0,
        backup_eligible: true,
        backed_up: false,
        transports: vec!["internal".into()],
        created_at_ms: NOW_MS + i64::from(n),
        last_used_at_ms: None,
    }
}

pub async fn passkeys_are_counted_on_the_user_and_bound_to_its_epoch<S: Store>(store: S) {
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    let first = passkey_of(&ada, 1);
    store.add_passkey(&ada, &first).await.unwrap();
    assert!(matches!(
        store.add_passkey(&ada, &first).await,
        Err(StoreError::Conflict)
    ));
    let second = passkey_of(&ada, 2);
    store.add_passkey(&ada, &second).await.unwrap();
    let read = by_email(&store, &ada.email).await.unwrap();
    assert_eq!(read.passkeys, 2);
    assert_eq!(
        store.list_passkeys(ada.user_id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        store.find_passkey(ada.user_id, &first.id).await.unwrap(),
        Some(first.clone())
    );
    // Someone else's id finds nothing.
    assert_eq!(
        store.find_passkey(Uuid::new_v4(), &first.id).await.unwrap(),
        None
    );

    // The counter moves only from the value read.
    store
        .record_passkey_use(&first, 5, true, NOW_MS)
        .await
        .unwrap();
    assert!(matches!(
        store.record_passkey_use(&first, 6, true, NOW_MS).await,
        Err(StoreError::Conflict)
    ));
    let used = store
        .find_passkey(ada.user_id, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (used.sign_count, used.backed_up, used.last_used_at_ms),
        (5, true, Some(NOW_MS))
    );
    let renamed = accounts::model::passkey::PasskeyName::parse("Phone").unwrap();
    store
        .rename_passkey(ada.user_id, &first.id, &renamed)
        .await
        .unwrap();
    assert!(matches!(
        store.rename_passkey(ada.user_id, "unknown", &renamed).await,
        Err(StoreError::Conflict)
    ));

    store.remove_passkey(&read, &second.id).await.unwrap();
    assert!(matches!(
        store.remove_passkey(&read, &second.id).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(by_email(&store, &ada.email).await.unwrap().passkeys, 1);

    // Signed out everywhere since `ada` was read: nothing is added.
    assert!(
        store
            .revoke_all_sessions(&read.email, read.user_id)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.add_passkey(&read, &passkey_of(&ada, 3)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.list_passkeys(ada.user_id).await.unwrap().len(), 1);
}

pub async fn a_passkey_challenge_is_taken_once_even_in_parallel<S: Store + 'static>(store: S) {
    use accounts::model::passkey::{Ceremony, PasskeyChallenge};
    let store = Arc::new(store);
    let challenge = PasskeyChallenge {
        hash: RefreshToken::generate().hash(),
        challenge: [9; 32],
        ceremony: Ceremony::SignIn {
            user: Some((Uuid::new_v4(), 3)),
            by_email: true,
        },
        expires_at: NOW_MS / 1000 + 300,
    };
    store.save_passkey_challenge(&challenge).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, hash) = (Arc::clone(&store), challenge.hash);
        tasks.spawn(async move { store.take_passkey_challenge(&hash).await });
    }
    let mut taken = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Some(found) = result.unwrap().unwrap() {
            taken.push(found);
        }
    }
    assert_eq!(taken, vec![challenge.clone()], "exactly one take, as saved");
    for ceremony in [
        Ceremony::Register {
            user_id: Uuid::new_v4(),
            epoch: 0,
        },
        Ceremony::SignIn {
            user: None,
            by_email: false,
        },
        Ceremony::SecondFactor {
            mfa_token: RefreshToken::generate().hash(),
        },
    ] {
        let other = PasskeyChallenge {
            hash: RefreshToken::generate().hash(),
            ceremony,
            ..challenge.clone()
        };
        store.save_passkey_challenge(&other).await.unwrap();
        assert_eq!(
            store.take_passkey_challenge(&other.hash).await.unwrap(),
            Some(other)
        );
    }
}

/// A device grant: saved with its user code (which a live grant keeps to itself, an ended one
/// gives up), decided once, polled once per read, spent once even in parallel; and user code
/// lookups counted per source and in total.
pub async fn a_device_grant_is_decided_polled_and_spent_once<S: Store + 'static>(store: S) {
    use accounts::model::device::{DeviceGrant, DeviceState, USER_CODE_WINDOW_SECONDS, UserCode};
    use accounts::model::registry::ClientId;
    let store = Arc::new(store);
    let code = UserCode::generate();
    let grant = DeviceGrant {
        hash: RefreshToken::generate().hash(),
        user_code: code.hash(),
        client_id: ClientId::generate(),
        scope: "openid offline_access".into(),
        expires_at: NOW_MS / 1000 + 600,
        interval: 5,
        last_poll_ms: None,
        state: DeviceState::Pending,
    };
    store.save_device_grant(&grant, NOW_MS).await.unwrap();
    assert_eq!(
        store.find_device_grant(&grant.hash).await.unwrap(),
        Some(grant.clone())
    );
    assert_eq!(
        store
            .find_device_grant_by_user_code(&code.hash())
            .await
            .unwrap(),
        Some(grant.clone())
    );
    // A live grant keeps its user code; nothing of the second grant is written.
    let rival = DeviceGrant {
        hash: RefreshToken::generate().hash(),
        ..grant.clone()
    };
    assert!(matches!(
        store.save_device_grant(&rival, NOW_MS).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.find_device_grant(&rival.hash).await.unwrap(), None);

    // Polls: only over the last poll read.
    assert!(
        store
            .record_device_poll(&grant.hash, None, 5, NOW_MS)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_device_poll(&grant.hash, None, 5, NOW_MS + 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_device_poll(&grant.hash, Some(NOW_MS), 10, NOW_MS + 2)
            .await
            .unwrap()
    );
    let polled = store.find_device_grant(&grant.hash).await.unwrap().unwrap();
    assert_eq!(
        (polled.last_poll_ms, polled.interval),
        (Some(NOW_MS + 2), 10)
    );

    // Decided once: of ten approvals at once (each by another browser session) exactly one
    // is written, whole.
    let approvals: Vec<DeviceState> = (0..10)
        .map(|_| DeviceState::Approved {
            user_id: Uuid::new_v4(),
            email: Email::parse("ada@example.com").unwrap(),
            family_id: Uuid::new_v4(),
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for decision in approvals.clone() {
        let (store, hash) = (Arc::clone(&store), grant.hash);
        tasks.spawn(async move {
            store
                .decide_device_grant(&hash, &decision, NOW_MS)
                .await
                .unwrap()
        });
    }
    assert_eq!(tasks.join_all().await.iter().filter(|w| **w).count(), 1);
    let decided = store.find_device_grant(&grant.hash).await.unwrap().unwrap();
    assert!(approvals.contains(&decided.state), "{:?}", decided.state);
    // Decided: a denial now changes nothing.
    assert!(
        !store
            .decide_device_grant(&grant.hash, &DeviceState::Denied, NOW_MS)
            .await
            .unwrap()
    );
    // Spent once: of ten spends at once exactly one.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, hash) = (Arc::clone(&store), grant.hash);
        tasks.spawn(async move { store.spend_device_grant(&hash).await.unwrap() });
    }
    assert_eq!(tasks.join_all().await.iter().filter(|w| **w).count(), 1);
    assert_eq!(
        store
            .find_device_grant(&grant.hash)
            .await
            .unwrap()
            .unwrap()
            .state,
        DeviceState::Issued
    );
    // A denied grant is never spent.
    let denied = DeviceGrant {
        hash: RefreshToken::generate().hash(),
        user_code: UserCode::generate().hash(),
        ..grant.clone()
    };
    store.save_device_grant(&denied, NOW_MS).await.unwrap();
    assert!(
        store
            .decide_device_grant(&denied.hash, &DeviceState::Denied, NOW_MS)
            .await
            .unwrap()
    );
    assert!(!store.spend_device_grant(&denied.hash).await.unwrap());

    // An expired grant cannot be decided, and gives its user code up.
    let ended_at = NOW_MS + 600_000;
    let late = DeviceGrant {
        hash: RefreshToken::generate().hash(),
        expires_at: ended_at / 1000 + 600,
        ..grant.clone()
    };
    assert!(
        !store
            .decide_device_grant(&grant.hash, &DeviceState::Denied, ended_at)
            .await
            .unwrap()
    );
    store.save_device_grant(&late, ended_at).await.unwrap();
    assert_eq!(
        store
            .find_device_grant_by_user_code(&code.hash())
            .await
            .unwrap()
            .map(|g| g.hash),
        Some(late.hash)
    );

    // Lookups: each counted in its source's window and in everyone's, even in parallel.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let store = Arc::clone(&store);
        let source = Source::new(if i < 8 { "192.0.2.8" } else { "192.0.2.9" });
        tasks.spawn(async move { store.count_user_code_lookup(&source, NOW_MS).await.unwrap() });
    }
    let counts = tasks.join_all().await;
    let mut totals: Vec<u32> = counts.iter().map(|(_, total)| total.count).collect();
    totals.sort_unstable();
    assert_eq!(totals, (1..=12).collect::<Vec<_>>());
    let mut by_source: Vec<u32> = counts.iter().map(|(source, _)| source.count).collect();
    by_source.sort_unstable();
    assert_eq!(by_source, [1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8]);
    for (source, total) in &counts {
        assert_eq!(source.window_ends, NOW_MS / 1000 + USER_CODE_WINDOW_SECONDS);
        assert_eq!(total.window_ends, NOW_MS / 1000 + USER_CODE_WINDOW_SECONDS);
    }
    // A new window after the last one ends.
    let (source, total) = store
        .count_user_code_lookup(
            &Source::new("192.0.2.8"),
            NOW_MS + USER_CODE_WINDOW_SECONDS * 1000,
        )
        .await
        .unwrap();
    assert_eq!((source.count, total.count), (1, 1));
}

/// The event types of `subject`'s events, oldest first.
async fn event_types<S: Store>(store: &S, user_id: Uuid) -> Vec<&'static str> {
    use accounts::model::event::EventSubject;
    store
        .events_of(&EventSubject::User(user_id))
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str())
        .collect()
}

/// An event exists if and only if its change committed: written with it, and not when the
/// change is refused or loses a race (ten parallel registrations of one email: one
/// `user.created`). Events name the request's origin, carry no secret, and keep their order.
pub async fn every_committed_change_and_only_it_emits_its_event<S: Store + 'static>(store: S) {
    use accounts::model::event::{EventSubject, EventType, Origin};
    let store = Arc::new(store);
    let ada = user("ada@example.com");
    let origin = Origin {
        source_ip: Some("203.0.113.7".into()),
        user_agent: Some("curl/8.5".into()),
    };
    origin.clone().scope(store.create_user(&ada)).await.unwrap();
    assert!(matches!(
        store.create_user(&ada).await,
        Err(StoreError::EmailTaken)
    ));
    let events = store
        .events_of(&EventSubject::User(ada.user_id))
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, EventType::UserCreated);
    assert_eq!(events[0].origin, origin);
    assert_eq!(events[0].data["email"], "ada@example.com");
    assert!(events[0].id.starts_with("evt_"));
    let text = events[0].envelope().to_string();
    assert!(!text.contains("$2b$"), "no hash: {text}");

    // Ten registrations of one email at once: one account, one event.
    let mut tasks = tokio::task::JoinSet::new();
    let racers: Vec<UserRecord> = (0..10).map(|_| user("grace@example.com")).collect();
    for racer in racers.clone() {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.create_user(&racer).await.is_ok() });
    }
    assert_eq!(tasks.join_all().await.iter().filter(|w| **w).count(), 1);
    let mut created = 0;
    for racer in &racers {
        created += event_types(&*store, racer.user_id).await.len();
    }
    assert_eq!(created, 1);

    // A session: its event, from where its client was; the same session again: nothing.
    let (_, family, token) = session(&ada, 0);
    store.start_session(&family, &token).await.unwrap();
    assert!(store.start_session(&family, &token).await.is_err());
    let events = store
        .events_of(&EventSubject::User(ada.user_id))
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].kind, EventType::SessionCreated);
    assert_eq!(events[1].data["session_id"], family.family_id.to_string());
    assert_eq!(events[1].data["amr"], serde_json::json!(["pwd"]));
    assert_eq!(events[1].origin.source_ip.as_deref(), Some("198.51.100.7"));
    // Ended once: again, or as someone else's, emits nothing; a reuse says so.
    use accounts::model::event::SessionEnd;
    store
        .revoke_family(family.family_id, ada.user_id, SessionEnd::Logout)
        .await
        .unwrap();
    store
        .revoke_family(family.family_id, ada.user_id, SessionEnd::Logout)
        .await
        .unwrap();
    let (_, stolen, stolen_token) = session(&ada, 0);
    store.start_session(&stolen, &stolen_token).await.unwrap();
    store
        .revoke_family(stolen.family_id, Uuid::new_v4(), SessionEnd::Ended)
        .await
        .unwrap();
    store
        .revoke_family(stolen.family_id, ada.user_id, SessionEnd::RefreshReused)
        .await
        .unwrap();
    let events = store
        .events_of(&EventSubject::User(ada.user_id))
        .await
        .unwrap();
    assert_eq!(events[2].data["reason"], "logout");
    assert_eq!(events[2].data["session_id"], family.family_id.to_string());
    assert_eq!(events[4].data["session_id"], stolen.family_id.to_string());

    // A password change from a stale read is refused and emits nothing; from the right one,
    // once.
    let (_, next, next_token) = session(&ada, 1);
    let stale = UserRecord {
        password_hash: SecretString::from("$2b$04$stale".to_owned()),
        ..ada.clone()
    };
    let new_hash = SecretString::from(format!("$2b$04${}", "b".repeat(53)));
    assert!(
        store
            .change_password(&stale, &new_hash, &next, &next_token)
            .await
            .is_err()
    );
    store
        .change_password(&ada, &new_hash, &next, &next_token)
        .await
        .unwrap();
    // Logout-all of someone else's id: refused, nothing; of ada: one event.
    assert!(
        !store
            .revoke_all_sessions(&ada.email, Uuid::new_v4())
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_all_sessions(&ada.email, ada.user_id)
            .await
            .unwrap()
    );
    // A passkey added twice is one event; removing one that is gone is none.
    let ada_now = by_email(&*store, &ada.email).await.unwrap();
    let key = passkey_of(&ada_now, 7);
    store.add_passkey(&ada_now, &key).await.unwrap();
    assert!(store.add_passkey(&ada_now, &key).await.is_err());
    store.remove_passkey(&ada_now, &key.id).await.unwrap();
    assert!(store.remove_passkey(&ada_now, &key.id).await.is_err());
    // An operator's changes; of a user who is not there, none.
    let roles = vec!["user".to_owned(), "editor".to_owned()];
    assert!(store.set_roles(&ada_now, &roles).await.unwrap());
    let nobody = user("nobody@example.com");
    assert!(!store.set_roles(&nobody, &roles).await.unwrap());
    assert!(!store.set_disabled(&nobody, true).await.unwrap());
    assert!(store.set_disabled(&ada_now, true).await.unwrap());
    assert!(store.set_disabled(&ada_now, false).await.unwrap());
    // Deleted once; the events stay to be delivered.
    let ada_now = by_email(&*store, &ada.email).await.unwrap();
    store.delete_user(&ada_now).await.unwrap();
    assert!(store.delete_user(&ada_now).await.is_err());
    assert_eq!(
        event_types(&*store, ada.user_id).await,
        [
            "user.created",
            "session.created",
            "session.revoked",
            "session.created",
            "session.refresh_reused",
            "user.password_changed",
            "session.revoked",
            "passkey.added",
            "passkey.removed",
            "user.roles_changed",
            "user.disabled",
            "user.enabled",
            "user.deleted",
        ]
    );
    let events = store
        .events_of(&EventSubject::User(ada.user_id))
        .await
        .unwrap();
    assert_eq!(
        events[9].data["roles"],
        serde_json::json!(["user", "editor"])
    );
    assert_eq!(events[12].data["email"], "ada@example.com");
    let all = store.all_events().await.unwrap();
    assert_eq!(all.len(), 14, "ada's thirteen and grace's one");

    // A client: created once; disabled once (saving it disabled again emits nothing).
    use accounts::model::registry::{ClientRecord, ClientSpec};
    let (client, _) = ClientRecord::create(
        ClientSpec {
            name: Some("events".into()),
            ..ClientSpec::default()
        },
        "tests",
        NOW_MS,
    )
    .expect("a client");
    store.create_client(&client).await.unwrap();
    assert!(store.create_client(&client).await.is_err());
    let disabled = client.with_disabled(true, "tests", NOW_MS);
    store.save_client(&disabled).await.unwrap();
    let again = disabled.with_disabled(true, "tests", NOW_MS);
    store.save_client(&again).await.unwrap();
    // A stale save is refused and emits nothing.
    assert!(store.save_client(&disabled).await.is_err());
    let kinds: Vec<&str> = store
        .events_of(&EventSubject::Client(client.client_id.clone()))
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["client.created", "client.disabled"]);
}

/// Federation: a sign-in under way and a finished one are each taken once, even by ten
/// parallel callbacks or exchanges; an expired one is still returned (the flow judges it).
pub async fn federation_states_and_grants_are_taken_once_even_in_parallel<S: Store + 'static>(
    store: S,
) {
    use accounts::model::federation::{FederationGrant, FederationState};
    let store = Arc::new(store);
    let state = FederationState {
        hash: RefreshToken::generate().hash(),
        provider: "google".into(),
        nonce: "n-0S6_WzA2Mj".into(),
        verifier: SecretString::from("v".repeat(43)),
        binding: RefreshToken::generate().hash(),
        journey: Some("client_id=web&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb".into()),
        link: None,
        expires_at_ms: NOW_MS + 600_000,
    };
    store.save_federation_state(&state).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, hash) = (Arc::clone(&store), state.hash);
        tasks.spawn(async move { store.take_federation_state(&hash).await });
    }
    let mut taken = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Some(found) = result.unwrap().unwrap() {
            taken.push(found);
        }
    }
    assert_eq!(taken.len(), 1, "exactly one take");
    let found = &taken[0];
    assert_eq!(
        (
            &found.provider,
            &found.nonce,
            &found.binding,
            &found.journey,
            found.expires_at_ms
        ),
        (
            &state.provider,
            &state.nonce,
            &state.binding,
            &state.journey,
            state.expires_at_ms
        )
    );
    assert_eq!(
        found.verifier.expose_secret(),
        state.verifier.expose_secret()
    );
    let json_api = FederationState {
        hash: RefreshToken::generate().hash(),
        journey: None,
        link: Some(Uuid::new_v4()),
        expires_at_ms: NOW_MS - 1,
        ..state.clone()
    };
    store.save_federation_state(&json_api).await.unwrap();
    let found = store.take_federation_state(&json_api.hash).await.unwrap();
    assert_eq!(
        found.map(|f| (f.journey, f.link, f.expires_at_ms)),
        Some((None, json_api.link, NOW_MS - 1))
    );

    let grant = FederationGrant {
        hash: RefreshToken::generate().hash(),
        user_id: Uuid::new_v4(),
        provider: "google".into(),
        amr: vec!["fed".into(), "mfa".into()],
        purpose: accounts::model::federation::GrantPurpose::SignIn,
        expires_at_ms: NOW_MS + 60_000,
    };
    store.save_federation_grant(&grant).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, hash) = (Arc::clone(&store), grant.hash);
        tasks.spawn(async move { store.take_federation_grant(&hash).await });
    }
    let mut taken = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Some(found) = result.unwrap().unwrap() {
            taken.push(found);
        }
    }
    assert_eq!(taken, vec![grant.clone()], "exactly one take, as saved");
    assert_eq!(
        store.take_federation_grant(&grant.hash).await.unwrap(),
        None
    );
    let ticket = FederationGrant {
        hash: RefreshToken::generate().hash(),
        amr: Vec::new(),
        purpose: accounts::model::federation::GrantPurpose::Link,
        ..grant.clone()
    };
    store.save_federation_grant(&ticket).await.unwrap();
    assert_eq!(
        store.take_federation_grant(&ticket.hash).await.unwrap(),
        Some(ticket)
    );
}

/// Identities: created with their account (an email with an account refused, an identity
/// linked already refused), linked once to one user only while the user is as read, found
/// by provider and subject, listed by user, unlinked, and gone with the account; each link
/// and unlink an event.
pub async fn identities_link_once_and_go_with_their_account<S: Store + 'static>(store: S) {
    use accounts::model::event::EventSubject;
    use accounts::model::federation::Identity;
    let identity = |user_id: Uuid, subject: &str| Identity {
        provider: "google".into(),
        subject: subject.into(),
        user_id,
        email: Some("ada@example.com".into()),
        linked_at_ms: NOW_MS,
    };
    let ada = user("ada@example.com");
    let first = identity(ada.user_id, "1001");
    store.create_federated_user(&ada, &first).await.unwrap();
    assert_eq!(
        store.find_identity("google", "1001").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.find_identity("github", "1001").await.unwrap(), None);
    assert!(by_email(&store, &ada.email).await.is_some());

    // The email has an account: nothing written, the identity stays free.
    let again = user("ada@example.com");
    assert!(matches!(
        store
            .create_federated_user(&again, &identity(again.user_id, "2002"))
            .await,
        Err(StoreError::EmailTaken)
    ));
    assert_eq!(store.find_identity("google", "2002").await.unwrap(), None);
    // The identity is linked: nothing written, the email stays free.
    let bob = user("bob@example.com");
    assert!(matches!(
        store
            .create_federated_user(&bob, &identity(bob.user_id, "1001"))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(by_email(&store, &bob.email).await.is_none());

    store.create_user(&bob).await.unwrap();
    // Linked to Ada already: not to Bob too.
    assert!(matches!(
        store
            .link_identity(&bob, &identity(bob.user_id, "1001"))
            .await,
        Err(StoreError::Conflict)
    ));
    // Bob as read no longer: his sessions ended meanwhile.
    store
        .revoke_all_sessions(&bob.email, bob.user_id)
        .await
        .unwrap();
    assert!(matches!(
        store
            .link_identity(&bob, &identity(bob.user_id, "3003"))
            .await,
        Err(StoreError::Conflict)
    ));
    let bob = by_email(&store, &bob.email).await.unwrap();
    let later = Identity {
        linked_at_ms: NOW_MS + 1,
        ..identity(bob.user_id, "3003")
    };
    store.link_identity(&bob, &later).await.unwrap();
    let earlier = Identity {
        provider: "github".into(),
        ..identity(bob.user_id, "583231")
    };
    store.link_identity(&bob, &earlier).await.unwrap();
    assert_eq!(
        store.list_identities(bob.user_id).await.unwrap(),
        vec![earlier.clone(), later.clone()]
    );
    assert_eq!(
        store.list_identities(ada.user_id).await.unwrap(),
        vec![first.clone()]
    );

    // Unlinked once; not by another user's name.
    assert!(matches!(
        store.unlink_identity(&ada, &later).await,
        Err(StoreError::Conflict)
    ));
    store.unlink_identity(&bob, &later).await.unwrap();
    assert!(matches!(
        store.unlink_identity(&bob, &later).await,
        Err(StoreError::Conflict)
    ));
    let counted = by_email(&store, &bob.email).await.unwrap();
    assert_eq!(counted.identities, 1, "two linked, one unlinked");
    assert_eq!(store.find_identity("google", "3003").await.unwrap(), None);
    let kinds: Vec<&str> = store
        .events_of(&EventSubject::User(bob.user_id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "user.created",
            "session.revoked",
            "identity.linked",
            "identity.linked",
            "identity.unlinked"
        ]
    );

    // The account's deletion takes its identities along.
    store.delete_user(&bob).await.unwrap();
    assert_eq!(store.find_identity("github", "583231").await.unwrap(), None);
    assert!(store.list_identities(bob.user_id).await.unwrap().is_empty());
}

/// An account made by a sign-in at a provider has no password: its last identity is never
/// unlinked, even by concurrent unlinks of its last two; an account with a password may
/// unlink its only one. A forgotten identity (its account gone) goes quietly.
pub async fn the_last_way_to_sign_in_is_never_unlinked<S: Store + 'static>(store: S) {
    use accounts::model::federation::Identity;
    let identity = |user_id: Uuid, subject: &str| Identity {
        provider: "google".into(),
        subject: subject.into(),
        user_id,
        email: None,
        linked_at_ms: NOW_MS,
    };
    let mut carol = user("carol@example.com");
    carol.has_password = false;
    carol.identities = 1;
    store
        .create_federated_user(&carol, &identity(carol.user_id, "c1"))
        .await
        .unwrap();
    let read = by_email(&store, &carol.email).await.unwrap();
    assert!(!read.has_password);
    assert_eq!(read.identities, 1);
    store
        .link_identity(&read, &identity(carol.user_id, "c2"))
        .await
        .unwrap();
    let read = Arc::new(by_email(&store, &carol.email).await.unwrap());
    assert_eq!(read.identities, 2);
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (store, read) = (Arc::clone(&store), Arc::clone(&read));
        let subject = if i % 2 == 0 { "c1" } else { "c2" };
        let target = identity(read.user_id, subject);
        tasks.spawn(async move { store.unlink_identity(&read, &target).await.is_ok() });
    }
    let mut unlinked = 0;
    while let Some(done) = tasks.join_next().await {
        unlinked += usize::from(done.unwrap());
    }
    assert_eq!(unlinked, 1, "one of the last two, never both");
    let left = store.list_identities(carol.user_id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(matches!(
        store.unlink_identity(&read, &left[0]).await,
        Err(StoreError::Conflict)
    ));

    // With a password, the only identity may go.
    let mut dave = user("dave@example.com");
    dave.identities = 1;
    store
        .create_federated_user(&dave, &identity(dave.user_id, "d1"))
        .await
        .unwrap();
    store
        .unlink_identity(&dave, &identity(dave.user_id, "d1"))
        .await
        .unwrap();
    assert_eq!(by_email(&*store, &dave.email).await.unwrap().identities, 0);

    // A forgotten identity goes without its (gone) account; twice is no error.
    store.forget_identity(&left[0]).await.unwrap();
    store.forget_identity(&left[0]).await.unwrap();
    assert_eq!(
        store
            .find_identity("google", &left[0].subject)
            .await
            .unwrap(),
        None
    );
}
