//! An in-memory store for local-api and fast tests.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{StoreError, UserRecord, UserStore};
use crate::domain::Email;

#[derive(Debug, Default)]
pub struct MemoryStore {
    users: Mutex<HashMap<Email, UserRecord>>,
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

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.users().get(email).cloned())
    }
}
