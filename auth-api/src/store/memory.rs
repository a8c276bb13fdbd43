//! An in-memory store for local-api and fast tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{LoginAttempts, StoreError, UserRecord, UserStore};
use crate::domain::Email;

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<Email, UserRecord>>,
    attempts: Mutex<HashMap<Email, LoginAttempts>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Email, UserRecord>> {
        // A panic while holding the lock cannot leave a half-written user: each operation is
        // one map call. So a poisoned lock is safe to keep using.
        self.users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<Email, LoginAttempts>> {
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl UserStore for MemoryStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let mut users = self.users();
        if users.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        users.insert(user.email.clone(), user.clone());
        Ok(())
    }

    async fn find_user_by_id(&self, user_id: uuid::Uuid) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .users()
            .values()
            .find(|u| u.user_id == user_id)
            .cloned())
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
    ) -> Result<(Option<UserRecord>, LoginAttempts), StoreError> {
        let user = self.users().get(email).cloned();
        let attempts = self.attempts().get(email).copied().unwrap_or_default();
        Ok((user, attempts))
    }

    async fn record_login_failure(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> Result<LoginAttempts, StoreError> {
        let mut attempts = self.attempts();
        let entry = attempts.entry(email.clone()).or_default();
        entry.failures += 1;
        if let Some(until) = LoginAttempts::lock_after(entry.failures, now_ms) {
            entry.locked_until_ms = Some(until);
        }
        Ok(*entry)
    }

    async fn clear_login_failures(&self, email: &Email) -> Result<(), StoreError> {
        self.attempts().remove(email);
        Ok(())
    }
}
