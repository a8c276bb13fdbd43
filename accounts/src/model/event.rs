//! Lifecycle events: what happened to an account, a session or a client, for applications
//! to react to. An event exists if and only if its change committed: each store writes the
//! event in the same all-or-nothing write as the change (DynamoDB: the same transaction; an
//! `EVENT#<subject>` item), so a change that loses a race or is refused emits nothing. The
//! items of one user share a partition, so they are delivered in order per user.
//!
//! An event carries ids, the time, where the request came from, and only the data its
//! consumer needs: never a password, token, code, secret or hash.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::federation::Identity;
use super::mfa::MfaState;
use super::passkey::Passkey;
use super::registry::{ClientId, ClientRecord};
use super::session::SessionFamily;
use super::user::UserRecord;

/// An event's type. The names are the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    UserEmailVerified,
    UserPasswordChanged,
    UserPasswordReset,
    UserDisabled,
    UserEnabled,
    UserRolesChanged,
    UserDeleted,
    SessionCreated,
    SessionRevoked,
    SessionRefreshReused,
    MfaEnabled,
    MfaDisabled,
    MfaLocked,
    PasskeyAdded,
    PasskeyRemoved,
    ClientCreated,
    ClientDisabled,
    LoginLocked,
    IdentityLinked,
    IdentityUnlinked,
}

impl EventType {
    pub const ALL: [EventType; 21] = [
        EventType::UserCreated,
        EventType::UserEmailVerified,
        EventType::UserPasswordChanged,
        EventType::UserPasswordReset,
        EventType::UserDisabled,
        EventType::UserEnabled,
        EventType::UserRolesChanged,
        EventType::UserDeleted,
        EventType::SessionCreated,
        EventType::SessionRevoked,
        EventType::SessionRefreshReused,
        EventType::MfaEnabled,
        EventType::MfaDisabled,
        EventType::MfaLocked,
        EventType::PasskeyAdded,
        EventType::PasskeyRemoved,
        EventType::ClientCreated,
        EventType::ClientDisabled,
        EventType::LoginLocked,
        EventType::IdentityLinked,
        EventType::IdentityUnlinked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserEmailVerified => "user.email_verified",
            EventType::UserPasswordChanged => "user.password_changed",
            EventType::UserPasswordReset => "user.password_reset",
            EventType::UserDisabled => "user.disabled",
            EventType::UserEnabled => "user.enabled",
            EventType::UserRolesChanged => "user.roles_changed",
            EventType::UserDeleted => "user.deleted",
            EventType::SessionCreated => "session.created",
            EventType::SessionRevoked => "session.revoked",
            EventType::SessionRefreshReused => "session.refresh_reused",
            EventType::MfaEnabled => "mfa.enabled",
            EventType::MfaDisabled => "mfa.disabled",
            EventType::MfaLocked => "mfa.locked",
            EventType::PasskeyAdded => "passkey.added",
            EventType::PasskeyRemoved => "passkey.removed",
            EventType::ClientCreated => "client.created",
            EventType::ClientDisabled => "client.disabled",
            EventType::LoginLocked => "login.locked",
            EventType::IdentityLinked => "identity.linked",
            EventType::IdentityUnlinked => "identity.unlinked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The time of an event made now: the clock's milliseconds, but always after the last event
/// this process made. Events are sorted by time (then by a random id) in their partition, so
/// the events one change writes together keep the order they were made in.
fn event_time() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = shared::token::now_unix_ms();
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    now.max(previous + 1)
}

/// Whom an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubject {
    User(Uuid),
    Client(ClientId),
}

impl EventSubject {
    /// The partition an event of this subject is kept in: one per user (or client), so its
    /// events keep their order.
    pub fn partition(&self) -> String {
        match self {
            EventSubject::User(id) => format!("EVENT#{id}"),
            EventSubject::Client(id) => format!("EVENT#CLIENT#{}", id.as_str()),
        }
    }
}

/// Why a session ended, as its event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// `POST /logout`.
    Logout,
    /// Ended from the user's session list.
    Ended,
    /// RP-Initiated Logout on the hosted pages.
    SignedOut,
    /// A client revoked one of its tokens (RFC 7009).
    TokenRevoked,
    /// An authorization code came back after its tokens were issued.
    CodeReused,
    /// A spent refresh token came back after its grace: `session.refresh_reused`.
    RefreshReused,
    /// An operator ended it.
    Operator,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Logout => "logout",
            SessionEnd::Ended => "ended",
            SessionEnd::SignedOut => "signed_out",
            SessionEnd::TokenRevoked => "token_revoked",
            SessionEnd::CodeReused => "code_reused",
            SessionEnd::RefreshReused => "refresh_reused",
            SessionEnd::Operator => "operator",
        }
    }
}

/// Where the request behind a change came from, where there was one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

impl Origin {
    /// Runs `f` with this origin: the events its changes emit name it.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        ORIGIN.scope(self, f).await
    }

    /// The origin of the request being served, if any.
    pub fn current() -> Origin {
        ORIGIN.try_with(Clone::clone).unwrap_or_default()
    }
}

/// One event, as kept and delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountEvent {
    /// `evt_` and 32 hex digits: unique, for consumers to drop a second delivery.
    pub id: String,
    pub kind: EventType,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub subject: EventSubject,
    pub origin: Origin,
    pub data: Map<String, Value>,
}

impl AccountEvent {
    /// A new event of `kind` about `subject` now, from the request being served.
    pub fn new(kind: EventType, subject: EventSubject, at_ms: i64) -> Self {
        Self {
            id: format!("evt_{}", Uuid::new_v4().simple()),
            kind,
            at_ms,
            subject,
            origin: Origin::current(),
            data: Map::new(),
        }
    }

    /// A user's event now.
    pub fn user(kind: EventType, user_id: Uuid) -> Self {
        Self::new(kind, EventSubject::User(user_id), event_time())
    }

    /// With `name` set to `value` in its data.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.data.insert(name.to_owned(), value.into());
        self
    }

    /// `session.created`: a session began (a sign-in, a token for a device), from where its
    /// client was, with its id and the sign-in's methods.
    pub fn session_created(family: &SessionFamily) -> Self {
        let mut event = Self::user(EventType::SessionCreated, family.user_id)
            .with("session_id", family.family_id.to_string())
            .with("amr", family.method.amr());
        event.origin = Origin {
            source_ip: family.client.source_ip.clone(),
            user_agent: family.client.user_agent.clone(),
        };
        event
    }

    /// `user.created`, with the address.
    pub fn user_created(user: &UserRecord) -> Self {
        Self::user(EventType::UserCreated, user.user_id).with("email", user.email.as_str())
    }

    /// `mfa.enabled` or `mfa.disabled`, when `next` turns the second factor of `user` (as
    /// read) on or off.
    pub fn mfa_change(user: &UserRecord, next: &MfaState) -> Option<Self> {
        match (user.mfa.enabled(), next.enabled()) {
            (false, true) => Some(Self::user(EventType::MfaEnabled, user.user_id)),
            (true, false) => Some(Self::user(EventType::MfaDisabled, user.user_id)),
            _ => None,
        }
    }

    /// `passkey.added`, with its id, name and whether it may be synced.
    pub fn passkey_added(passkey: &Passkey) -> Self {
        Self::user(EventType::PasskeyAdded, passkey.user_id)
            .with("passkey_id", passkey.id.as_str())
            .with("name", passkey.name.as_str())
            .with("synced", passkey.backup_eligible)
    }

    /// `identity.linked` or `identity.unlinked`: an account of another provider was linked
    /// to the user or unlinked, with the provider and its subject.
    pub fn identity_change(identity: &Identity, linked: bool) -> Self {
        let kind = match linked {
            true => EventType::IdentityLinked,
            false => EventType::IdentityUnlinked,
        };
        Self::user(kind, identity.user_id)
            .with("provider", identity.provider.as_str())
            .with("subject", identity.subject.as_str())
    }

    /// `user.roles_changed`, with the roles now.
    pub fn roles_changed(user_id: Uuid, roles: &[String]) -> Self {
        Self::user(EventType::UserRolesChanged, user_id).with("roles", roles.to_vec())
    }

    /// `user.disabled` (every session ended) or `user.enabled`.
    pub fn disabled_changed(user_id: Uuid, disabled: bool) -> Self {
        let kind = match disabled {
            true => EventType::UserDisabled,
            false => EventType::UserEnabled,
        };
        Self::user(kind, user_id)
    }

    /// `user.deleted`, with the address it had (for the consumer to find its own records).
    pub fn user_deleted(user: &UserRecord) -> Self {
        Self::user(EventType::UserDeleted, user.user_id).with("email", user.email.as_str())
    }

    /// `session.revoked` (with why), or `session.refresh_reused`, for session `family_id`.
    pub fn session_ended(user_id: Uuid, family_id: Uuid, end: SessionEnd) -> Self {
        match end {
            SessionEnd::RefreshReused => Self::user(EventType::SessionRefreshReused, user_id),
            other => Self::user(EventType::SessionRevoked, user_id).with("reason", other.as_str()),
        }
        .with("session_id", family_id.to_string())
    }

    /// `client.created`, with its name, type and grants.
    pub fn client_created(client: &ClientRecord) -> Self {
        Self::new(
            EventType::ClientCreated,
            EventSubject::Client(client.client_id.clone()),
            event_time(),
        )
        .with("name", client.name.as_str())
        .with("client_type", client.client_type.as_str())
        .with(
            "grant_types",
            client
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>(),
        )
    }

    /// `client.disabled`: its tokens stop working at the session-checking authorizer.
    pub fn client_disabled(client: &ClientRecord) -> Self {
        Self::new(
            EventType::ClientDisabled,
            EventSubject::Client(client.client_id.clone()),
            event_time(),
        )
    }

    /// Its sort key within the subject's partition: time order, then id.
    pub fn sort_key(&self) -> String {
        format!("{:013}#{}", self.at_ms.max(0), self.id)
    }

    /// The event as consumers get it (the body of a webhook, the `detail` of an EventBridge
    /// event).
    pub fn envelope(&self) -> Value {
        let time =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.at_ms) * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                });
        let mut body = json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "time": time,
            "data": self.data,
        });
        match &self.subject {
            EventSubject::User(id) => body["user_id"] = json!(id.to_string()),
            EventSubject::Client(id) => body["client_id"] = json!(id.as_str()),
        }
        if let Some(ip) = &self.origin.source_ip {
            body["source_ip"] = json!(ip);
        }
        if let Some(agent) = &self.origin.user_agent {
            body["user_agent"] = json!(agent);
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_made_one_after_another_sort_in_that_order() {
        let user = Uuid::new_v4();
        let made: Vec<AccountEvent> = (0..200)
            .map(|_| AccountEvent::user(EventType::SessionCreated, user))
            .collect();
        for pair in made.windows(2) {
            assert!(pair[0].at_ms < pair[1].at_ms);
            assert!(pair[0].sort_key() < pair[1].sort_key());
        }
    }

    #[test]
    fn every_type_has_its_contract_name_once() {
        let names: std::collections::HashSet<&str> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
    }

    #[tokio::test]
    async fn an_event_names_the_origin_of_the_request_it_came_from() {
        let origin = Origin {
            source_ip: Some("203.0.113.7".into()),
            user_agent: Some("curl/8".into()),
        };
        let user = Uuid::new_v4();
        let inside = origin
            .clone()
            .scope(async { AccountEvent::user(EventType::UserCreated, user) })
            .await;
        assert_eq!(inside.origin, origin);
        let envelope = inside.clone().with("email", "ada@example.com").envelope();
        assert_eq!(envelope["type"], "user.created");
        assert_eq!(envelope["user_id"], user.to_string());
        assert_eq!(envelope["source_ip"], "203.0.113.7");
        assert_eq!(envelope["data"]["email"], "ada@example.com");
        assert!(envelope["time"].as_str().unwrap().ends_with('Z'));
        let outside = AccountEvent::user(EventType::UserCreated, user);
        assert_eq!(outside.origin, Origin::default());
        assert!(outside.envelope().get("source_ip").is_none());
        assert_ne!(outside.id, inside.id);
    }
}
