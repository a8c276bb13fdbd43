//! Refresh tokens: opaque 256-bit secrets the server keeps only as SHA-256 hashes.
//!
//! Each login starts a *family*; every refresh spends the presented token and issues its
//! successor in the same family. A spent token keeps its successor sealed under a key only
//! the spent token itself can derive, so a client that retries a refresh within the grace
//! window gets the same successor back, and the table never holds a usable token.

use uuid::Uuid;

use crate::model::credentials::Email;
use crate::model::user::UserRecord;

use crate::model::token::{OpaqueToken, TokenHash};

/// A refresh token: an opaque token that continues a session.
pub type RefreshToken = OpaqueToken;

/// How long refresh tokens, the retry grace and whole sessions last
/// (`REFRESH_TOKEN_TTL_SECONDS`, `REFRESH_REUSE_GRACE_SECONDS`,
/// `SESSION_MAX_LIFETIME_SECONDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    pub refresh_ttl_seconds: i64,
    pub reuse_grace_seconds: i64,
    /// A session ends this long after its login however often it is refreshed (ASVS 5.0
    /// V7.3.2): refreshes slide each token's expiry, never the session's.
    pub max_lifetime_seconds: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            refresh_ttl_seconds: 30 * 24 * 60 * 60,
            reuse_grace_seconds: 10,
            max_lifetime_seconds: 90 * 24 * 60 * 60,
        }
    }
}

impl SessionSettings {
    /// When a refresh token issued at `issued_at` (Unix seconds) in a session begun at
    /// `created_at_ms` expires: its own lifetime, but never past the session's end.
    pub fn token_expiry(&self, issued_at: i64, created_at_ms: i64) -> i64 {
        (issued_at + self.refresh_ttl_seconds).min(created_at_ms / 1000 + self.max_lifetime_seconds)
    }

    /// Whether a session begun at `created_at_ms` has reached its absolute end at `now_ms`.
    pub fn session_over(&self, created_at_ms: i64, now_ms: i64) -> bool {
        now_ms >= created_at_ms.saturating_add(self.max_lifetime_seconds.saturating_mul(1000))
    }

    /// The lifetime of a new session's first refresh token.
    pub fn first_token_ttl(&self) -> i64 {
        self.refresh_ttl_seconds.min(self.max_lifetime_seconds)
    }
}

/// `unix_ms` as RFC 3339 in UTC, to the second (how session times are shown).
pub fn rfc3339_seconds(unix_ms: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A session: the family of refresh tokens that descend from one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFamily {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub email: Email,
    /// The user's `session_epoch` when the family began; it lives only while they match.
    pub epoch: u64,
    pub revoked: bool,
    pub created_at_ms: i64,
    /// Unix seconds; moved later by every refresh (the table's TTL attribute).
    pub expires_at: i64,
    /// The last refresh, if there was one.
    pub last_refreshed_at_ms: Option<i64>,
    /// The client that signed in, as first seen.
    pub client: ClientInfo,
    /// How the sign-in was made: its access tokens' `amr`, refreshed or not.
    pub method: shared::SignInMethod,
}

/// What a session remembers of the client that started it, for the user's session list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The `User-Agent` header, at most [`ClientInfo::MAX_USER_AGENT`] characters.
    pub user_agent: Option<String>,
    /// The address API Gateway saw.
    pub source_ip: Option<String>,
}

impl ClientInfo {
    pub const MAX_USER_AGENT: usize = 256;

    pub fn new(user_agent: Option<&str>, source_ip: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(Self::MAX_USER_AGENT)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Self {
            user_agent,
            source_ip: source_ip.map(str::to_owned).filter(|ip| !ip.is_empty()),
        }
    }
}

impl SessionFamily {
    /// Whether the session still works at `now_ms` for a user at `user_epoch`: not revoked,
    /// not expired, not past its absolute lifetime, of the user's current epoch.
    pub fn is_live(&self, settings: &SessionSettings, user_epoch: u64, now_ms: i64) -> bool {
        SessionState::from(self)
            .standing(user_epoch, settings, now_ms)
            .is_ok()
    }

    /// When the session ends unless refreshed (Unix seconds): its token's expiry, never past
    /// its absolute lifetime.
    pub fn ends_at(&self, settings: &SessionSettings) -> i64 {
        (self.created_at_ms / 1000 + settings.max_lifetime_seconds).min(self.expires_at)
    }

    /// A new family for `user` at `epoch`, begun at `now_ms` by `client`, with its first
    /// refresh token, which lives `ttl_seconds`.
    pub fn begin(
        user: &UserRecord,
        epoch: u64,
        now_ms: i64,
        ttl_seconds: i64,
        client: ClientInfo,
    ) -> (RefreshToken, SessionFamily, RefreshRecord) {
        let token = RefreshToken::generate();
        let expires_at = now_ms / 1000 + ttl_seconds;
        let family = SessionFamily {
            family_id: Uuid::new_v4(),
            user_id: user.user_id,
            email: user.email.clone(),
            epoch,
            revoked: false,
            created_at_ms: now_ms,
            expires_at,
            last_refreshed_at_ms: None,
            client,
            method: shared::SignInMethod::Password,
        };
        let record = RefreshRecord {
            hash: token.hash(),
            family_id: family.family_id,
            user_id: user.user_id,
            email: user.email.clone(),
            issued_at_ms: now_ms,
            expires_at,
            spent: None,
            token_use: TokenUse::Api,
        };
        (token, family, record)
    }
}

/// One refresh token, known by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub hash: TokenHash,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub email: Email,
    pub issued_at_ms: i64,
    /// Unix seconds (the table's TTL attribute).
    pub expires_at: i64,
    /// Set once the token has been exchanged for its successor.
    pub spent: Option<Spent>,
    /// Which door may use it; successors keep it.
    pub token_use: TokenUse,
}

/// Which door a refresh token belongs to: the JSON API's `/refresh`, a browser's sign-in on
/// the hosted pages (its SSO cookie, never refreshed), or the token endpoint for one OAuth
/// client with the scopes it was granted. A token is refused at every other door.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TokenUse {
    #[default]
    Api,
    Browser,
    Client {
        client_id: crate::model::registry::ClientId,
        /// Space-separated.
        scope: String,
    },
}

/// How a refresh token was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    pub at_ms: i64,
    /// The successor, sealed with the spent token (`RefreshToken::seal`).
    pub sealed_successor: [u8; 32],
    pub successor_hash: TokenHash,
}

/// A refresh token with its family and user, as one consistent read finds them.
#[derive(Debug, Clone)]
pub struct RefreshLookup {
    pub token: RefreshRecord,
    pub family: Option<SessionFamily>,
    pub user: Option<UserRecord>,
}

impl RefreshLookup {
    /// The token's session and user, if at `now_ms` the token has not expired (DynamoDB
    /// deletes expired items lazily), its user is the one it was issued to and enabled, and
    /// its session is live. Spent or not is the caller's to judge.
    pub fn live(self, settings: &SessionSettings, now_ms: i64) -> Option<LiveRefresh> {
        let (Some(family), Some(user)) = (self.family, self.user) else {
            return None;
        };
        let live = self.token.expires_at > now_ms / 1000
            && user.user_id == self.token.user_id
            && !user.disabled
            && family.is_live(settings, user.session_epoch, now_ms);
        live.then_some(LiveRefresh {
            token: self.token,
            family,
            user,
        })
    }
}

/// A signed-in session and its user: what a sign-in began, or a browser's SSO cookie finds.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub user: UserRecord,
    pub family: SessionFamily,
}

/// A refresh token of a live session, with that session and its user.
#[derive(Debug, Clone)]
pub struct LiveRefresh {
    pub token: RefreshRecord,
    pub family: SessionFamily,
    pub user: UserRecord,
}

/// What the session-checking authorizer reads of a session: no email, no client details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    pub user_id: Uuid,
    pub epoch: u64,
    pub revoked: bool,
    pub created_at_ms: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

impl SessionState {
    /// The one liveness rule of a session, for an account at `account_epoch`: not revoked,
    /// of the account's current epoch, not expired, not past its absolute lifetime.
    pub fn standing(
        &self,
        account_epoch: u64,
        settings: &SessionSettings,
        now_ms: i64,
    ) -> Result<(), SessionEnd> {
        if self.revoked {
            return Err(SessionEnd::Revoked);
        }
        if self.epoch != account_epoch {
            return Err(SessionEnd::OldEpoch);
        }
        if self.expires_at <= now_ms.div_euclid(1000)
            || settings.session_over(self.created_at_ms, now_ms)
        {
            return Err(SessionEnd::Expired);
        }
        Ok(())
    }
}

impl From<&SessionFamily> for SessionState {
    fn from(family: &SessionFamily) -> Self {
        Self {
            user_id: family.user_id,
            epoch: family.epoch,
            revoked: family.revoked,
            created_at_ms: family.created_at_ms,
            expires_at: family.expires_at,
        }
    }
}

/// What the session-checking authorizer reads of an account: never its password hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub user_id: Uuid,
    pub session_epoch: u64,
    pub disabled: bool,
}

impl From<&UserRecord> for AccountState {
    fn from(user: &UserRecord) -> Self {
        Self {
            user_id: user.user_id,
            session_epoch: user.session_epoch,
            disabled: user.disabled,
        }
    }
}

/// Why an access token's session no longer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// No account with the token's email and id: deleted (perhaps registered again).
    UserGone,
    UserDisabled,
    /// No such session of this user (never existed, deleted, or removed by the table's TTL).
    UnknownSession,
    /// Logged out, ended from the session list, or caught reusing a refresh token.
    Revoked,
    /// Of an older epoch: logout-all, a password change or reset, or a disable since.
    OldEpoch,
    /// Not refreshed in time, or past its absolute lifetime.
    Expired,
}

impl SessionEnd {
    /// The reason logged by the authorizer.
    pub fn code(self) -> &'static str {
        match self {
            SessionEnd::UserGone => "user_deleted",
            SessionEnd::UserDisabled => "user_disabled",
            SessionEnd::UnknownSession => "session_unknown",
            SessionEnd::Revoked => "session_revoked",
            SessionEnd::OldEpoch => "session_epoch_old",
            SessionEnd::Expired => "session_expired",
        }
    }
}

/// Whether the session `session` of the user `user_id` still stands at `now_ms`, given what
/// the store holds of it and of the account (`account`, found by the token's email).
pub fn session_standing(
    user_id: Uuid,
    session: Option<&SessionState>,
    account: Option<&AccountState>,
    settings: &SessionSettings,
    now_ms: i64,
) -> Result<(), SessionEnd> {
    let account = account
        .filter(|a| a.user_id == user_id)
        .ok_or(SessionEnd::UserGone)?;
    if account.disabled {
        return Err(SessionEnd::UserDisabled);
    }
    session
        .filter(|s| s.user_id == user_id)
        .ok_or(SessionEnd::UnknownSession)?
        .standing(account.session_epoch, settings, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_at_its_token_s_expiry_but_never_past_its_absolute_lifetime() {
        let settings = SessionSettings {
            refresh_ttl_seconds: 3600,
            reuse_grace_seconds: 10,
            max_lifetime_seconds: 86_400,
        };
        let user = crate::model::user::UserRecord::new(
            crate::model::credentials::Email::parse("ada@example.com").unwrap(),
            "$2b$04$x".to_owned().into(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let (_, mut family, _) =
            SessionFamily::begin(&user, 0, 1_000_000, 3600, ClientInfo::default());
        assert_eq!(family.ends_at(&settings), 1_000 + 3600);
        // Refreshed late in its life: the token would outlive the session.
        family.expires_at = 1_000 + 86_400 + 500;
        assert_eq!(family.ends_at(&settings), 1_000 + 86_400);
        assert_eq!(
            rfc3339_seconds(1_500).as_deref(),
            Some("1970-01-01T00:00:01Z")
        );
    }

    #[test]
    fn a_session_stands_only_while_it_and_its_account_are_as_issued() {
        let settings = SessionSettings::default();
        let user_id = Uuid::new_v4();
        let now_ms = 1_900_000_000_000;
        let session = SessionState {
            user_id,
            epoch: 2,
            revoked: false,
            created_at_ms: now_ms - 1000,
            expires_at: now_ms / 1000 + 60,
        };
        let account = AccountState {
            user_id,
            session_epoch: 2,
            disabled: false,
        };
        let standing = |s: SessionState, a: AccountState| {
            session_standing(user_id, Some(&s), Some(&a), &settings, now_ms)
        };
        assert_eq!(standing(session, account), Ok(()));
        let cases = [
            (
                SessionState {
                    revoked: true,
                    ..session
                },
                account,
                SessionEnd::Revoked,
            ),
            (
                session,
                AccountState {
                    session_epoch: 3,
                    ..account
                },
                SessionEnd::OldEpoch,
            ),
            (
                session,
                AccountState {
                    disabled: true,
                    ..account
                },
                SessionEnd::UserDisabled,
            ),
            (
                session,
                AccountState {
                    user_id: Uuid::new_v4(),
                    ..account
                },
                SessionEnd::UserGone,
            ),
            (
                SessionState {
                    user_id: Uuid::new_v4(),
                    ..session
                },
                account,
                SessionEnd::UnknownSession,
            ),
            (
                SessionState {
                    expires_at: now_ms / 1000,
                    ..session
                },
                account,
                SessionEnd::Expired,
            ),
            (
                SessionState {
                    created_at_ms: now_ms - settings.max_lifetime_seconds * 1000,
                    ..session
                },
                account,
                SessionEnd::Expired,
            ),
        ];
        for (s, a, end) in cases {
            assert_eq!(standing(s, a), Err(end), "{s:?} {a:?}");
        }
        assert_eq!(
            session_standing(user_id, Some(&session), None, &settings, now_ms),
            Err(SessionEnd::UserGone)
        );
        assert_eq!(
            session_standing(user_id, None, Some(&account), &settings, now_ms),
            Err(SessionEnd::UnknownSession)
        );
    }
}
