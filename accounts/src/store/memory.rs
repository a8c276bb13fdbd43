//! An in-memory store for local-api and fast tests. One lock over all state, so every
//! operation is as atomic as its DynamoDB counterpart.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::traits::{
    AccountStore, ActionStore, AdminAudit, AdminStore, AttemptStore, AuthorizationStore,
    ClientStore, DeviceStore, EventStore, FederationStore, MailWindows, MfaStore, PasskeyStore,
    SessionStore, StoreError, UserPage, UserStore,
};
use crate::model::backoff::{Admission, EMAIL_WINDOW_SECONDS, LoginAttempts, Source, Window};
use crate::model::credentials::Email;
use crate::model::device::{DeviceGrant, DeviceState};
use crate::model::event::{AccountEvent, EventSubject, EventType, SessionEnd};
use crate::model::federation::{FederationGrant, FederationState, Identity};
use crate::model::link::{ActionRecord, Purpose};
use crate::model::mfa::{CHALLENGE_ATTEMPTS, MfaAdmission, MfaAttempts, MfaChallenge, MfaState};
use crate::model::oidc::{CodeRecord, CodeSpend, Consent};
use crate::model::passkey::{MAX_PASSKEYS, Passkey, PasskeyChallenge, PasskeyName};
use crate::model::registry::{CLIENT_CHECK_WINDOW_SECONDS, ClientId, ClientRecord};
use crate::model::session::{
    AccountState, RefreshLookup, RefreshRecord, SessionFamily, SessionState, Spent,
};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;

#[derive(Debug, Default)]
struct State {
    users: HashMap<Email, UserRecord>,
    challenges: HashMap<TokenHash, MfaChallenge>,
    /// Codes checked against each challenge.
    challenge_attempts: HashMap<TokenHash, u32>,
    /// Each user's consecutive second-factor codes.
    mfa_attempts: HashMap<Uuid, MfaAttempts>,
    attempts: HashMap<(Email, Source), LoginAttempts>,
    actions: HashMap<TokenHash, ActionRecord>,
    /// Every counting window (failed logins per email, mails, token checks), by a key naming
    /// what it counts.
    windows: HashMap<String, Window>,
    families: HashMap<Uuid, SessionFamily>,
    tokens: HashMap<TokenHash, RefreshRecord>,
    audit: Vec<AdminAudit>,
    clients: HashMap<ClientId, ClientRecord>,
    /// Authorization codes, and whether each has been spent.
    codes: HashMap<TokenHash, (CodeRecord, bool, bool)>,
    consents: HashMap<(Uuid, ClientId), Consent>,
    /// Passkeys by user and id, in the order they were added.
    passkeys: Vec<Passkey>,
    passkey_challenges: HashMap<TokenHash, PasskeyChallenge>,
    /// Device authorization grants by device code hash, and the grant each user code names.
    device_grants: HashMap<TokenHash, DeviceGrant>,
    user_codes: HashMap<TokenHash, TokenHash>,
    /// Lifecycle events, in the order their changes were made.
    events: Vec<AccountEvent>,
    /// Sign-ins at other providers under way, and finished ones waiting for their exchange.
    federation_states: HashMap<TokenHash, FederationState>,
    federation_grants: HashMap<TokenHash, FederationGrant>,
    /// Linked identities by (provider, subject), in the order they were linked.
    identities: Vec<Identity>,
}

/// The key of `email`'s failed-login window.
fn email_window(email: &Email) -> String {
    format!("loginfail/{}", email.as_str())
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spends `record` (a `purpose` token) by applying `act` to its user, only while it is the
    /// user's live token and still stored; `Conflict` otherwise.
    fn spend(
        &self,
        record: &ActionRecord,
        purpose: Purpose,
        event: EventType,
        act: impl FnOnce(&mut UserRecord),
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            actions,
            events,
            ..
        } = &mut *state;
        let live = record.purpose == purpose && actions.contains_key(&record.hash);
        let user = users
            .get_mut(&record.email)
            .filter(|u| {
                live && u.user_id == record.user_id
                    && record.purpose.live_token(u) == Some(&record.hash)
            })
            .ok_or(StoreError::Conflict)?;
        act(user);
        actions.remove(&record.hash);
        events.push(AccountEvent::user(event, record.user_id));
        Ok(())
    }

    /// Counts one more in `window` (a new one when it has ended), `seconds` long.
    fn count(window: &mut Window, now_ms: i64, seconds: i64) -> Window {
        let now = now_ms / 1000;
        if window.window_ends <= now {
            *window = Window {
                count: 0,
                window_ends: now + seconds,
            };
        }
        window.count = window.count.saturating_add(1);
        *window
    }

    /// Takes one count back out of `window`, if it still runs.
    fn take_back(window: Option<&mut Window>, now_ms: i64) {
        if let Some(window) = window
            && window.window_ends > now_ms / 1000
        {
            window.count = window.count.saturating_sub(1);
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every operation checks before it changes anything, so a panic while holding the
        // lock cannot leave a half-written state, and a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl UserStore for MemoryStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.users.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        state.users.insert(user.email.clone(), user.clone());
        state.events.push(AccountEvent::user_created(user));
        Ok(())
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .state()
            .users
            .values()
            .find(|u| u.user_id == user_id)
            .cloned())
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
        source: &Source,
    ) -> Result<(Option<UserRecord>, LoginAttempts), StoreError> {
        let state = self.state();
        let user = state.users.get(email).cloned();
        let key = (email.clone(), source.clone());
        let attempts = state.attempts.get(&key).copied().unwrap_or_default();
        Ok((user, attempts))
    }

    async fn set_trusted_sources(
        &self,
        user: &UserRecord,
        sources: &[String],
    ) -> Result<(), StoreError> {
        if let Some(stored) = self.state().users.get_mut(&user.email)
            && stored.user_id == user.user_id
        {
            stored.trusted_sources = sources.to_vec();
        }
        Ok(())
    }

    async fn rehash_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
    ) -> Result<(), StoreError> {
        match self.state().users.get_mut(&user.email) {
            Some(stored)
                if stored.user_id == user.user_id
                    && stored.password_hash.expose_secret()
                        == user.password_hash.expose_secret() =>
            {
                stored.password_hash = new_hash.clone();
                stored.legacy_password = false;
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn change_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let unchanged = state.users.get(&user.email).is_some_and(|stored| {
            stored.user_id == user.user_id
                && stored.session_epoch == user.session_epoch
                && stored.password_hash.expose_secret() == user.password_hash.expose_secret()
        });
        if !unchanged
            || family.epoch != user.session_epoch + 1
            || state.families.contains_key(&family.family_id)
            || state.tokens.contains_key(&token.hash)
        {
            return Err(StoreError::Conflict);
        }
        if let Some(stored) = state.users.get_mut(&user.email) {
            stored.password_hash = new_hash.clone();
            stored.legacy_password = false;
            stored.session_epoch = family.epoch;
            stored.trusted_sources.clear();
        }
        state.families.insert(family.family_id, family.clone());
        state.tokens.insert(token.hash, token.clone());
        state.events.push(AccountEvent::user(
            EventType::UserPasswordChanged,
            user.user_id,
        ));
        Ok(())
    }
}

impl AttemptStore for MemoryStore {
    async fn admit_login_attempt(
        &self,
        email: &Email,
        source: &Source,
        _seen: LoginAttempts,
        now_ms: i64,
    ) -> Result<Admission, StoreError> {
        // Under the one lock the stored record is the one seen: decide on it directly.
        let mut state = self.state();
        let key = (email.clone(), source.clone());
        let stored = state.attempts.get(&key).copied().unwrap_or_default();
        let admission = stored.admit(now_ms);
        if let Admission::Admitted(next) = admission {
            state.attempts.insert(key, next);
        }
        Ok(admission)
    }

    async fn read_and_admit_login(
        &self,
        email: &Email,
        source: &Source,
        now_ms: i64,
    ) -> Result<(Option<UserRecord>, Admission), StoreError> {
        let mut state = self.state();
        let user = state.users.get(email).cloned();
        let key = (email.clone(), source.clone());
        let admission = state
            .attempts
            .get(&key)
            .copied()
            .unwrap_or_default()
            .admit(now_ms);
        if let Admission::Admitted(next) = admission {
            state.attempts.insert(key, next);
        }
        Ok((user, admission))
    }

    async fn take_back_email_failure(&self, email: &Email, now_ms: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        Self::take_back(state.windows.get_mut(&email_window(email)), now_ms);
        Ok(())
    }

    async fn count_email_failure(&self, email: &Email, now_ms: i64) -> Result<Window, StoreError> {
        let mut state = self.state();
        let window = state.windows.entry(email_window(email)).or_default();
        Ok(Self::count(window, now_ms, EMAIL_WINDOW_SECONDS))
    }

    async fn forget_login_failures(
        &self,
        email: &Email,
        source: &Source,
        email_counted: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.attempts.remove(&(email.clone(), source.clone()));
        if let Some(window) = state.windows.get_mut(&email_window(email))
            && email_counted
            && window.window_ends > now_ms / 1000
        {
            window.count = window.count.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear_login_failures(&self, email: &Email) -> Result<(), StoreError> {
        let mut state = self.state();
        state.attempts.retain(|(e, _), _| e != email);
        state.windows.remove(&email_window(email));
        Ok(())
    }
}

impl SessionStore for MemoryStore {
    async fn start_session(
        &self,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.families.contains_key(&family.family_id) || state.tokens.contains_key(&token.hash)
        {
            return Err(StoreError::Conflict);
        }
        state.families.insert(family.family_id, family.clone());
        state.tokens.insert(token.hash, token.clone());
        state.events.push(AccountEvent::session_created(family));
        Ok(())
    }

    async fn start_signed_in_session(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        token: &RefreshRecord,
        source: &Source,
        trusted: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.families.contains_key(&family.family_id) || state.tokens.contains_key(&token.hash)
        {
            return Err(StoreError::Conflict);
        }
        if let Some(sources) = trusted {
            match state.users.get_mut(&user.email) {
                Some(stored) if stored.user_id == user.user_id => {
                    stored.trusted_sources = sources.to_vec();
                }
                _ => return Err(StoreError::Conflict),
            }
        }
        state.attempts.remove(&(user.email.clone(), source.clone()));
        state.families.insert(family.family_id, family.clone());
        state.tokens.insert(token.hash, token.clone());
        state.events.push(AccountEvent::session_created(family));
        Ok(())
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshLookup>, StoreError> {
        let state = self.state();
        Ok(state.tokens.get(hash).map(|token| RefreshLookup {
            token: token.clone(),
            family: state.families.get(&token.family_id).cloned(),
            user: state.users.get(&token.email).cloned(),
        }))
    }

    async fn rotate_refresh(
        &self,
        spent_hash: &TokenHash,
        spent: &Spent,
        successor: &RefreshRecord,
        epoch: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            families,
            tokens,
            ..
        } = &mut *state;
        let token_ok = tokens
            .get(spent_hash)
            .is_some_and(|t| t.spent.is_none() && t.family_id == successor.family_id);
        let family_ok = families
            .get(&successor.family_id)
            .is_some_and(|f| !f.revoked && f.epoch == epoch);
        let user_ok = users
            .get(&successor.email)
            .is_some_and(|u| u.user_id == successor.user_id && u.session_epoch == epoch);
        if !(token_ok && family_ok && user_ok) || tokens.contains_key(&successor.hash) {
            return Err(StoreError::Conflict);
        }
        if let Some(token) = tokens.get_mut(spent_hash) {
            token.spent = Some(spent.clone());
        }
        if let Some(family) = families.get_mut(&successor.family_id) {
            family.expires_at = successor.expires_at;
            family.last_refreshed_at_ms = Some(spent.at_ms);
        }
        tokens.insert(successor.hash, successor.clone());
        Ok(())
    }

    async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionFamily>, StoreError> {
        Ok(self
            .state()
            .families
            .values()
            .filter(|f| f.user_id == user_id)
            .cloned()
            .collect())
    }

    async fn find_session(&self, family_id: Uuid) -> Result<Option<SessionFamily>, StoreError> {
        Ok(self.state().families.get(&family_id).cloned())
    }

    async fn session_state(
        &self,
        family_id: Uuid,
        email: &Email,
    ) -> Result<(Option<SessionState>, Option<AccountState>), StoreError> {
        let state = self.state();
        Ok((
            state.families.get(&family_id).map(SessionState::from),
            state.users.get(email).map(AccountState::from),
        ))
    }

    async fn revoke_family(
        &self,
        family_id: Uuid,
        user_id: Uuid,
        end: SessionEnd,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(family) = state
            .families
            .get_mut(&family_id)
            .filter(|f| f.user_id == user_id && !f.revoked)
        {
            family.revoked = true;
            state
                .events
                .push(AccountEvent::session_ended(user_id, family_id, end));
        }
        Ok(())
    }

    async fn revoke_all_sessions(&self, email: &Email, user_id: Uuid) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.users.get_mut(email) {
            Some(user) if user.user_id == user_id => {
                user.session_epoch += 1;
                user.trusted_sources.clear();
                state
                    .events
                    .push(AccountEvent::user(EventType::SessionRevoked, user_id).with("all", true));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl ActionStore for MemoryStore {
    async fn issue_action(&self, record: &ActionRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        let State { users, actions, .. } = &mut *state;
        let user = users
            .get_mut(&record.email)
            .filter(|u| u.user_id == record.user_id)
            .ok_or(StoreError::Conflict)?;
        if actions.contains_key(&record.hash) {
            return Err(StoreError::Conflict);
        }
        match record.purpose {
            Purpose::VerifyEmail => user.verify_token = Some(record.hash),
            Purpose::ResetPassword => user.reset_token = Some(record.hash),
        }
        actions.insert(record.hash, record.clone());
        Ok(())
    }

    async fn find_action(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(ActionRecord, Option<UserRecord>)>, StoreError> {
        let state = self.state();
        Ok(state
            .actions
            .get(hash)
            .map(|a| (a.clone(), state.users.get(&a.email).cloned())))
    }

    async fn verify_email(&self, record: &ActionRecord) -> Result<(), StoreError> {
        self.spend(
            record,
            Purpose::VerifyEmail,
            EventType::UserEmailVerified,
            |user| {
                user.email_verified = true;
                user.verify_token = None;
            },
        )
    }

    async fn reset_password(
        &self,
        record: &ActionRecord,
        new_hash: &SecretString,
    ) -> Result<(), StoreError> {
        self.spend(
            record,
            Purpose::ResetPassword,
            EventType::UserPasswordReset,
            |user| {
                user.password_hash = new_hash.clone();
                user.legacy_password = false;
                user.session_epoch += 1;
                user.trusted_sources.clear();
                user.email_verified = true;
                user.reset_token = None;
                user.has_password = true;
            },
        )
    }

    async fn create_user_with_link(
        &self,
        user: &UserRecord,
        link: &ActionRecord,
        mailbox: &Email,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.users.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        if state.actions.contains_key(&link.hash) {
            return Err(StoreError::Conflict);
        }
        state.users.insert(user.email.clone(), user.clone());
        state.actions.insert(link.hash, link.clone());
        state.events.push(AccountEvent::user_created(user));
        for (what, seconds) in [("minute", 60), ("hour", 3600)] {
            let window = state
                .windows
                .entry(format!("mail/{what}/{}", mailbox.as_str()))
                .or_default();
            Self::count(window, now_ms, seconds);
        }
        Ok(())
    }

    async fn count_mail(&self, email: &Email, now_ms: i64) -> Result<MailWindows, StoreError> {
        let mut state = self.state();
        let mut count = |what: &str, seconds: i64| {
            let window = state
                .windows
                .entry(format!("mail/{what}/{}", email.as_str()))
                .or_default();
            Self::count(window, now_ms, seconds)
        };
        let minute = count("minute", 60);
        let hour = count("hour", 3600);
        Ok(MailWindows { minute, hour })
    }

    async fn count_token_check(&self, source: &Source, now_ms: i64) -> Result<Window, StoreError> {
        let mut state = self.state();
        let window = state
            .windows
            .entry(format!("token-check/{}", source.as_str()))
            .or_default();
        Ok(Self::count(window, now_ms, 3600))
    }

    async fn count_registration(&self, source: &Source, now_ms: i64) -> Result<Window, StoreError> {
        let mut state = self.state();
        let window = state
            .windows
            .entry(format!("register/{}", source.as_str()))
            .or_default();
        Ok(Self::count(window, now_ms, 3600))
    }
}

impl AccountStore for MemoryStore {
    async fn delete_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        let unchanged = state.users.get(&user.email).is_some_and(|stored| {
            stored.user_id == user.user_id && stored.session_epoch == user.session_epoch
        });
        if !unchanged {
            return Err(StoreError::Conflict);
        }
        state.users.remove(&user.email);
        state.families.retain(|_, f| f.user_id != user.user_id);
        state.tokens.retain(|_, t| t.user_id != user.user_id);
        state.actions.retain(|_, a| a.user_id != user.user_id);
        state
            .consents
            .retain(|(user_id, _), _| *user_id != user.user_id);
        state.passkeys.retain(|p| p.user_id != user.user_id);
        state.identities.retain(|i| i.user_id != user.user_id);
        state.events.push(AccountEvent::user_deleted(user));
        Ok(())
    }
}

impl AdminStore for MemoryStore {
    async fn find_user(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().users.get(email).cloned())
    }

    async fn list_users(&self, start: Option<&str>, limit: usize) -> Result<UserPage, StoreError> {
        let state = self.state();
        let mut users: Vec<&UserRecord> = state
            .users
            .values()
            .filter(|u| start.is_none_or(|s| u.email.as_str() > s))
            .collect();
        users.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
        let more = users.len() > limit;
        users.truncate(limit);
        Ok(UserPage {
            next: more
                .then(|| users.last().map(|u| u.email.as_str().to_owned()))
                .flatten(),
            users: users.into_iter().cloned().collect(),
        })
    }

    async fn set_roles(&self, user: &UserRecord, roles: &[String]) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.users.get_mut(&user.email) {
            Some(stored) if stored.user_id == user.user_id => {
                stored.roles = roles.to_vec();
                state
                    .events
                    .push(AccountEvent::roles_changed(user.user_id, roles));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_disabled(&self, user: &UserRecord, disabled: bool) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.users.get_mut(&user.email) {
            Some(stored) if stored.user_id == user.user_id => {
                stored.disabled = disabled;
                if disabled {
                    stored.session_epoch += 1;
                    stored.trusted_sources.clear();
                }
                state
                    .events
                    .push(AccountEvent::disabled_changed(user.user_id, disabled));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_admin_action(&self, entry: &AdminAudit) -> Result<(), StoreError> {
        self.state().audit.push(entry.clone());
        Ok(())
    }
}

fn client_windows(id: &ClientId, source: &Source) -> (String, String) {
    (
        format!("clientauth/{}", id.window_key()),
        format!("clientauth-source/{}", source.as_str()),
    )
}

impl ClientStore for MemoryStore {
    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.clients.contains_key(&client.client_id) {
            return Err(StoreError::Conflict);
        }
        state
            .clients
            .insert(client.client_id.clone(), client.clone());
        state.events.push(AccountEvent::client_created(client));
        Ok(())
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.state().clients.get(id).cloned())
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut clients: Vec<ClientRecord> = self.state().clients.values().cloned().collect();
        clients.sort_by(|a, b| a.name.cmp(&b.name).then(a.client_id.cmp(&b.client_id)));
        Ok(clients)
    }

    async fn save_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.clients.get_mut(&client.client_id) {
            Some(stored) if stored.version + 1 == client.version => {
                let disabling = client.disabled && !stored.disabled;
                *stored = client.clone();
                if disabling {
                    state.events.push(AccountEvent::client_disabled(client));
                }
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        Ok(self.state().clients.remove(id).is_some())
    }

    async fn client_standing(&self, id: &ClientId) -> Result<Option<bool>, StoreError> {
        Ok(self.state().clients.get(id).map(|c| c.disabled))
    }

    async fn count_client_check(
        &self,
        id: &ClientId,
        source: &Source,
        now_ms: i64,
    ) -> Result<(Window, Window), StoreError> {
        let (by_client, by_source) = client_windows(id, source);
        let mut state = self.state();
        let client = Self::count(
            state.windows.entry(by_client).or_default(),
            now_ms,
            CLIENT_CHECK_WINDOW_SECONDS,
        );
        let source = Self::count(
            state.windows.entry(by_source).or_default(),
            now_ms,
            CLIENT_CHECK_WINDOW_SECONDS,
        );
        Ok((client, source))
    }

    async fn take_back_client_check(
        &self,
        id: &ClientId,
        source: &Source,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (by_client, by_source) = client_windows(id, source);
        let mut state = self.state();
        for key in [by_client, by_source] {
            Self::take_back(state.windows.get_mut(&key), now_ms);
        }
        Ok(())
    }
}

impl MfaStore for MemoryStore {
    async fn save_mfa(
        &self,
        user: &UserRecord,
        mfa: &MfaState,
        session: Option<(&SessionFamily, &RefreshRecord)>,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            families,
            tokens,
            events,
            ..
        } = &mut *state;
        let stored = users
            .get_mut(&user.email)
            .filter(|s| unchanged(s, user))
            .ok_or(StoreError::Conflict)?;
        if let Some((family, _)) = session
            && family.epoch != user.session_epoch + 1
        {
            return Err(StoreError::Conflict);
        }
        stored.mfa = next_mfa(user, mfa);
        events.extend(AccountEvent::mfa_change(user, mfa));
        if let Some((family, token)) = session {
            stored.session_epoch = family.epoch;
            families.insert(family.family_id, family.clone());
            tokens.insert(token.hash, token.clone());
            events.push(AccountEvent::session_created(family));
        }
        Ok(())
    }

    async fn begin_mfa_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError> {
        self.state()
            .challenges
            .insert(challenge.hash, challenge.clone());
        Ok(())
    }

    async fn find_mfa_challenge(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(self.state().challenges.get(hash).cloned())
    }

    async fn count_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        let mut state = self.state();
        if !state.challenges.contains_key(hash) {
            return Ok(None);
        }
        let attempts = state.challenge_attempts.entry(*hash).or_default();
        if *attempts >= CHALLENGE_ATTEMPTS {
            return Ok(None);
        }
        *attempts += 1;
        Ok(Some(*attempts))
    }

    async fn spend_mfa_challenge(&self, hash: &TokenHash) -> Result<(), StoreError> {
        let mut state = self.state();
        state.challenges.remove(hash);
        state.challenge_attempts.remove(hash);
        Ok(())
    }

    async fn admit_mfa_code(&self, user_id: Uuid, now_ms: i64) -> Result<MfaAdmission, StoreError> {
        let mut state = self.state();
        let record = state.mfa_attempts.entry(user_id).or_default();
        let admission = record.admit(now_ms);
        if let MfaAdmission::Admitted(next) = admission {
            *record = next;
        }
        Ok(admission)
    }

    async fn forget_mfa_failures(&self, user_id: Uuid) -> Result<(), StoreError> {
        self.state().mfa_attempts.remove(&user_id);
        Ok(())
    }

    async fn complete_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
        user: &UserRecord,
        mfa: &MfaState,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            challenges,
            families,
            tokens,
            ..
        } = &mut *state;
        let stored = users
            .get_mut(&user.email)
            .filter(|s| unchanged(s, user) && s.session_epoch == challenge.epoch)
            .ok_or(StoreError::Conflict)?;
        if challenges.remove(&challenge.hash).is_none() || family.epoch != challenge.epoch {
            return Err(StoreError::Conflict);
        }
        stored.mfa = next_mfa(user, mfa);
        families.insert(family.family_id, family.clone());
        tokens.insert(token.hash, token.clone());
        Ok(())
    }
}

/// `mfa` as stored over `read`'s state: the revision moved on by one.
fn next_mfa(read: &UserRecord, mfa: &MfaState) -> MfaState {
    MfaState {
        revision: read.mfa.revision + 1,
        ..mfa.clone()
    }
}

/// Whether the stored user is still `read`: same id, session epoch and MFA revision.
fn unchanged(stored: &UserRecord, read: &UserRecord) -> bool {
    stored.user_id == read.user_id
        && stored.session_epoch == read.session_epoch
        && stored.mfa.revision == read.mfa.revision
}

impl AuthorizationStore for MemoryStore {
    async fn save_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.codes.contains_key(&code.hash) {
            return Err(StoreError::Conflict);
        }
        state.codes.insert(code.hash, (code.clone(), false, false));
        Ok(())
    }

    async fn spend_code(&self, hash: &TokenHash, _now_ms: i64) -> Result<CodeSpend, StoreError> {
        let mut state = self.state();
        Ok(match state.codes.get_mut(hash) {
            None => CodeSpend::Unknown,
            Some((code, spent, issued)) if *spent => CodeSpend::Again {
                code: code.clone(),
                issued: *issued,
            },
            Some((code, spent, _)) => {
                *spent = true;
                CodeSpend::First(code.clone())
            }
        })
    }

    async fn mark_code_issued(&self, hash: &TokenHash) -> Result<(), StoreError> {
        if let Some((_, _, issued)) = self.state().codes.get_mut(hash) {
            *issued = true;
        }
        Ok(())
    }

    async fn add_refresh(&self, token: &RefreshRecord, epoch: u64) -> Result<(), StoreError> {
        let mut state = self.state();
        let family_ok = state
            .families
            .get(&token.family_id)
            .is_some_and(|f| !f.revoked && f.epoch == epoch);
        let user_ok = state
            .users
            .get(&token.email)
            .is_some_and(|u| u.user_id == token.user_id && u.session_epoch == epoch);
        if !(family_ok && user_ok) || state.tokens.contains_key(&token.hash) {
            return Err(StoreError::Conflict);
        }
        state.tokens.insert(token.hash, token.clone());
        Ok(())
    }

    async fn find_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        Ok(self
            .state()
            .consents
            .get(&(user_id, client_id.clone()))
            .cloned())
    }

    async fn list_consents(&self, user_id: Uuid) -> Result<Vec<Consent>, StoreError> {
        let mut found: Vec<Consent> = self
            .state()
            .consents
            .values()
            .filter(|c| c.user_id == user_id)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(found)
    }

    async fn revoke_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
    ) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .consents
            .remove(&(user_id, client_id.clone()))
            .is_some())
    }

    async fn grant_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
        scopes: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let consent = state
            .consents
            .entry((user_id, client_id.clone()))
            .or_insert_with(|| Consent {
                user_id,
                client_id: client_id.clone(),
                scopes: Vec::new(),
                updated_at_ms: now_ms,
            });
        for scope in scopes {
            if !consent.scopes.contains(scope) {
                consent.scopes.push(scope.clone());
            }
        }
        consent.scopes.sort();
        consent.updated_at_ms = now_ms;
        Ok(())
    }
}

impl PasskeyStore for MemoryStore {
    async fn save_passkey_challenge(&self, challenge: &PasskeyChallenge) -> Result<(), StoreError> {
        self.state()
            .passkey_challenges
            .insert(challenge.hash, challenge.clone());
        Ok(())
    }

    async fn take_passkey_challenge(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<PasskeyChallenge>, StoreError> {
        Ok(self.state().passkey_challenges.remove(hash))
    }

    async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<Passkey>, StoreError> {
        Ok(self
            .state()
            .passkeys
            .iter()
            .filter(|p| p.user_id == user_id)
            .cloned()
            .collect())
    }

    async fn find_passkey(&self, user_id: Uuid, id: &str) -> Result<Option<Passkey>, StoreError> {
        Ok(self
            .state()
            .passkeys
            .iter()
            .find(|p| p.user_id == user_id && p.id == id)
            .cloned())
    }

    async fn add_passkey(&self, user: &UserRecord, passkey: &Passkey) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            passkeys,
            events,
            ..
        } = &mut *state;
        let stored = users
            .get_mut(&user.email)
            .filter(|s| {
                s.user_id == user.user_id
                    && s.session_epoch == user.session_epoch
                    && !s.disabled
                    && s.passkeys < MAX_PASSKEYS
            })
            .ok_or(StoreError::Conflict)?;
        if passkeys
            .iter()
            .any(|p| p.user_id == passkey.user_id && p.id == passkey.id)
        {
            return Err(StoreError::Conflict);
        }
        stored.passkeys += 1;
        passkeys.push(passkey.clone());
        events.push(AccountEvent::passkey_added(passkey));
        Ok(())
    }

    async fn remove_passkey(&self, user: &UserRecord, id: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            passkeys,
            events,
            ..
        } = &mut *state;
        let index = passkeys
            .iter()
            .position(|p| p.user_id == user.user_id && p.id == id)
            .ok_or(StoreError::Conflict)?;
        passkeys.remove(index);
        if let Some(stored) = users
            .get_mut(&user.email)
            .filter(|s| s.user_id == user.user_id)
        {
            stored.passkeys = stored.passkeys.saturating_sub(1);
        }
        events.push(
            AccountEvent::user(EventType::PasskeyRemoved, user.user_id).with("passkey_id", id),
        );
        Ok(())
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: &str,
        name: &PasskeyName,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let passkey = state
            .passkeys
            .iter_mut()
            .find(|p| p.user_id == user_id && p.id == id)
            .ok_or(StoreError::Conflict)?;
        passkey.name = name.clone();
        Ok(())
    }

    async fn record_passkey_use(
        &self,
        passkey: &Passkey,
        sign_count: u32,
        backed_up: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let stored = state
            .passkeys
            .iter_mut()
            .find(|p| {
                p.user_id == passkey.user_id
                    && p.id == passkey.id
                    && p.sign_count == passkey.sign_count
            })
            .ok_or(StoreError::Conflict)?;
        stored.sign_count = sign_count;
        stored.backed_up = backed_up;
        stored.last_used_at_ms = Some(now_ms);
        Ok(())
    }
}

impl DeviceStore for MemoryStore {
    async fn save_device_grant(&self, grant: &DeviceGrant, now_ms: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        let taken = state
            .user_codes
            .get(&grant.user_code)
            .and_then(|device| state.device_grants.get(device))
            .is_some_and(|other| !other.expired(now_ms));
        if taken || state.device_grants.contains_key(&grant.hash) {
            return Err(StoreError::Conflict);
        }
        state.user_codes.insert(grant.user_code, grant.hash);
        state.device_grants.insert(grant.hash, grant.clone());
        Ok(())
    }

    async fn find_device_grant(&self, hash: &TokenHash) -> Result<Option<DeviceGrant>, StoreError> {
        Ok(self.state().device_grants.get(hash).cloned())
    }

    async fn find_device_grant_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> Result<Option<DeviceGrant>, StoreError> {
        let state = self.state();
        Ok(state
            .user_codes
            .get(user_code)
            .and_then(|device| state.device_grants.get(device))
            .filter(|grant| grant.user_code == *user_code)
            .cloned())
    }

    async fn decide_device_grant(
        &self,
        hash: &TokenHash,
        decision: &DeviceState,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.device_grants.get_mut(hash) {
            Some(grant) if grant.state == DeviceState::Pending && !grant.expired(now_ms) => {
                grant.state = decision.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_device_poll(
        &self,
        hash: &TokenHash,
        seen: Option<i64>,
        interval: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.device_grants.get_mut(hash) {
            Some(grant) if grant.last_poll_ms == seen => {
                grant.last_poll_ms = Some(now_ms);
                grant.interval = interval;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn spend_device_grant(&self, hash: &TokenHash) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.device_grants.get_mut(hash) {
            Some(grant) if matches!(grant.state, DeviceState::Approved { .. }) => {
                grant.state = DeviceState::Issued;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn count_user_code_lookup(
        &self,
        source: &Source,
        now_ms: i64,
    ) -> Result<(Window, Window), StoreError> {
        let seconds = crate::model::device::USER_CODE_WINDOW_SECONDS;
        let mut state = self.state();
        let by_source = Self::count(
            state
                .windows
                .entry(format!("user-code/{}", source.as_str()))
                .or_default(),
            now_ms,
            seconds,
        );
        let in_total = Self::count(
            state.windows.entry("user-code".to_owned()).or_default(),
            now_ms,
            seconds,
        );
        Ok((by_source, in_total))
    }
}

impl FederationStore for MemoryStore {
    async fn save_federation_state(&self, state: &FederationState) -> Result<(), StoreError> {
        self.state()
            .federation_states
            .insert(state.hash, state.clone());
        Ok(())
    }

    async fn take_federation_state(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<FederationState>, StoreError> {
        Ok(self.state().federation_states.remove(hash))
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<Identity>, StoreError> {
        Ok(self
            .state()
            .identities
            .iter()
            .find(|i| i.provider == provider && i.subject == subject)
            .cloned())
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<Identity>, StoreError> {
        let mut found: Vec<Identity> = self
            .state()
            .identities
            .iter()
            .filter(|i| i.user_id == user_id)
            .cloned()
            .collect();
        found.sort_by_key(|i| i.linked_at_ms);
        Ok(found)
    }

    async fn create_federated_user(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.users.contains_key(&user.email) {
            return Err(StoreError::EmailTaken);
        }
        if state
            .identities
            .iter()
            .any(|i| i.provider == identity.provider && i.subject == identity.subject)
        {
            return Err(StoreError::Conflict);
        }
        state.users.insert(user.email.clone(), user.clone());
        state.identities.push(identity.clone());
        let created = AccountEvent::user_created(user);
        let linked = AccountEvent::identity_change(identity, true);
        state.events.push(created);
        state.events.push(linked);
        Ok(())
    }

    async fn link_identity(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let taken = state
            .identities
            .iter()
            .any(|i| i.provider == identity.provider && i.subject == identity.subject);
        let stored = state.users.get_mut(&user.email).filter(|stored| {
            stored.user_id == user.user_id
                && stored.session_epoch == user.session_epoch
                && !stored.disabled
        });
        let Some(stored) = stored.filter(|_| !taken && identity.user_id == user.user_id) else {
            return Err(StoreError::Conflict);
        };
        stored.identities += 1;
        state.identities.push(identity.clone());
        state
            .events
            .push(AccountEvent::identity_change(identity, true));
        Ok(())
    }

    async fn unlink_identity(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let State {
            users,
            identities,
            events,
            ..
        } = &mut *state;
        let linked = identities.iter().position(|i| {
            i.provider == identity.provider
                && i.subject == identity.subject
                && i.user_id == user.user_id
        });
        let stored = users.get_mut(&user.email).filter(|stored| {
            stored.user_id == user.user_id
                && (stored.has_password || stored.identities > 1 || stored.passkeys > 0)
        });
        let (Some(index), Some(stored)) = (linked, stored) else {
            return Err(StoreError::Conflict);
        };
        let removed = identities.remove(index);
        stored.identities = stored.identities.saturating_sub(1);
        events.push(AccountEvent::identity_change(&removed, false));
        Ok(())
    }

    async fn forget_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        self.state().identities.retain(|i| {
            !(i.provider == identity.provider
                && i.subject == identity.subject
                && i.user_id == identity.user_id)
        });
        Ok(())
    }

    async fn save_federation_grant(&self, grant: &FederationGrant) -> Result<(), StoreError> {
        self.state()
            .federation_grants
            .insert(grant.hash, grant.clone());
        Ok(())
    }

    async fn take_federation_grant(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<FederationGrant>, StoreError> {
        Ok(self.state().federation_grants.remove(hash))
    }
}

impl EventStore for MemoryStore {
    async fn events_of(&self, subject: &EventSubject) -> Result<Vec<AccountEvent>, StoreError> {
        Ok(self
            .state()
            .events
            .iter()
            .filter(|e| e.subject == *subject)
            .cloned()
            .collect())
    }

    async fn emit(&self, event: &AccountEvent) -> Result<(), StoreError> {
        self.state().events.push(event.clone());
        Ok(())
    }

    async fn all_events(&self) -> Result<Vec<AccountEvent>, StoreError> {
        Ok(self.state().events.clone())
    }
}
