//! The store traits, their records and their one error.

use std::future::Future;

use secrecy::SecretString;
use uuid::Uuid;

use crate::model::backoff::{Admission, LoginAttempts, Source, Window};
use crate::model::credentials::Email;
use crate::model::device::{DeviceGrant, DeviceState};
use crate::model::event::{AccountEvent, EventSubject, SessionEnd};
use crate::model::federation::{FederationGrant, FederationState, Identity};
use crate::model::link::ActionRecord;
use crate::model::mfa::{MfaAdmission, MfaChallenge, MfaState};
use crate::model::oidc::{CodeRecord, CodeSpend, Consent};
use crate::model::passkey::{Passkey, PasskeyChallenge, PasskeyName};
use crate::model::registry::{ClientId, ClientRecord};
use crate::model::session::{
    AccountState, RefreshLookup, RefreshRecord, SessionFamily, SessionState, Spent,
};
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user with this email exists already.
    #[error("a user with this email already exists")]
    EmailTaken,
    /// A conditional write lost: what it was based on changed meanwhile. Nothing was written.
    #[error("the item changed while the request ran")]
    Conflict,
    /// The backing service failed, timed out or throttled: worth retrying later.
    #[error("user store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A request or stored item was not what this code expects: a bug or a corrupt item.
    #[error("user store failed unexpectedly")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Users: accounts, their passwords and trusted sign-in addresses.
pub trait UserStore: Send + Sync {
    /// Stores a new user, unless one with the same email exists: then `EmailTaken` and
    /// nothing is written. Atomic: of concurrent creates for one email exactly one succeeds.
    fn create_user(&self, user: &UserRecord)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user with this id. May lag a just-created user by a moment (DynamoDB reads it
    /// through a global secondary index, which is eventually consistent).
    fn find_user_by_id(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    /// The user with this email, read consistently (a user just created is found), and the
    /// failed-login record of (email, `source`), in one read. The record is returned as
    /// stored, expired or not ([`LoginAttempts::current`] judges that).
    fn find_user_for_login(
        &self,
        email: &Email,
        source: &Source,
    ) -> impl Future<Output = Result<(Option<UserRecord>, LoginAttempts), StoreError>> + Send;

    /// Stores `sources` as the user's trusted sources (see [`UserRecord::trusted_sources`]).
    fn set_trusted_sources(
        &self,
        user: &UserRecord,
        sources: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the user's password hash with `new_hash` (the same password at another bcrypt
    /// cost), only if the stored hash is still `user.password_hash`; `Conflict` otherwise.
    fn rehash_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the password of `user` (as read, hash and epoch included) and starts `family`
    /// with `token`, whose epoch must be `user.session_epoch + 1`: every older session ends,
    /// and the trusted sign-in addresses are forgotten.
    /// All or nothing; `Conflict` if the password or epoch changed since `user` was read.
    fn change_password(
        &self,
        user: &UserRecord,
        new_hash: &SecretString,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Deleting an account.
pub trait AccountStore: Send + Sync {
    /// Deletes `user` (as read: only while its id and session epoch are unchanged, else
    /// `Conflict` and nothing is deleted), then every session, refresh token and mail token
    /// of theirs. The user item goes first, in one conditional write: from then on the email
    /// can register again and nothing of the old account works, even if the clean-up after
    /// it fails (its items then expire by their TTL).
    fn delete_user(&self, user: &UserRecord)
    -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A page of users, and the token that continues the listing (none on the last page).
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub next: Option<String>,
}

/// One operator action, kept in the table (and printed by `auth-admin`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdminAudit {
    pub at_ms: i64,
    /// What was done, e.g. `users_disable`.
    pub action: String,
    /// Who did it: the operator's AWS identity (an ARN), as STS names it; or, against a local
    /// endpoint without STS, what the operator's access key claims (`operator_confirmed`
    /// false).
    pub operator: String,
    /// Whether STS confirmed `operator`.
    pub operator_confirmed: bool,
    /// `intended` (recorded before a change starts), `succeeded` or `failed` (after it).
    pub outcome: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// The machine client changed (`clients …` commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// What changed, in a few words (roles set, sessions revoked, …). Never a secret.
    pub detail: String,
}

/// What operators do (`auth-admin`): read, list and change accounts.
pub trait AdminStore: Send + Sync {
    /// The user with this email, read consistently.
    fn find_user(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    /// Up to `limit` users, continuing after `start` (a page's `next`). In no particular
    /// order, and not a snapshot: users written during a listing may or may not appear.
    fn list_users(
        &self,
        start: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<UserPage, StoreError>> + Send;

    /// Replaces the user's roles, if the user (this email and id) still exists: `false` if
    /// not. Access tokens pick them up at their next refresh.
    fn set_roles(
        &self,
        user: &UserRecord,
        roles: &[String],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Disables or enables the user (this email and id); disabling also moves the session
    /// epoch on, so every session ends at once, and forgets the trusted sign-in addresses. `false` if there is no such user.
    fn set_disabled(
        &self,
        user: &UserRecord,
        disabled: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Keeps `entry` in the store's audit trail.
    fn record_admin_action(
        &self,
        entry: &AdminAudit,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The login backoff's counters (see [`crate::model::backoff`]).
pub trait AttemptStore: Send + Sync {
    /// Counts one password check for (email, `source`) before it runs, unless the record
    /// holds a lock ([`LoginAttempts::admit`] decides). `seen` is the record as last read;
    /// if it changed meanwhile the store reads it again and decides anew, so of any number of
    /// concurrent calls no more are admitted than the policy allows.
    fn admit_login_attempt(
        &self,
        email: &Email,
        source: &Source,
        seen: LoginAttempts,
        now_ms: i64,
    ) -> impl Future<Output = Result<Admission, StoreError>> + Send;

    /// The account at `email`, read consistently, and a password check from `source` counted
    /// before it runs, as [`Self::admit_login_attempt`] decides it. The read and the count go
    /// out together: one round trip when the source has no live record (the usual case).
    fn read_and_admit_login(
        &self,
        email: &Email,
        source: &Source,
        now_ms: i64,
    ) -> impl Future<Output = Result<(Option<UserRecord>, Admission), StoreError>> + Send;

    /// Takes one check back out of `email`'s window (a check that succeeded), if the window
    /// still runs and holds any.
    fn take_back_email_failure(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one failed check against `email`'s window atomically (a new window starts
    /// when the last one has ended) and returns the count with this one.
    fn count_email_failure(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> impl Future<Output = Result<Window, StoreError>> + Send;

    /// After a successful check: forgets (email, `source`)'s record and, if this check was
    /// counted in the email's window, takes it back out.
    fn forget_login_failures(
        &self,
        email: &Email,
        source: &Source,
        email_counted: bool,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets every failed-login record of `email`, every source's and its window (after a
    /// password reset: the owner proved who they are).
    fn clear_login_failures(
        &self,
        email: &Email,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Sessions: refresh-token families and their tokens.
pub trait SessionStore: Send + Sync {
    /// Starts a session: writes the family and its first refresh token, both or neither.
    fn start_session(
        &self,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts the session of a successful sign-in of `user` from `source` with its clean-ups,
    /// all or nothing, in one write: the family and its first refresh token, (email,
    /// `source`)'s failed-login record forgotten, and, when `trusted` is given, the user's
    /// trusted sources replaced by it (a user deleted meanwhile: `Conflict`, nothing written).
    fn start_signed_in_session(
        &self,
        user: &UserRecord,
        family: &SessionFamily,
        token: &RefreshRecord,
        source: &Source,
        trusted: Option<&[String]>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The refresh token with this hash, its family and its user, read consistently.
    fn find_refresh(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<RefreshLookup>, StoreError>> + Send;

    /// Spends the token `spent_hash` and stores `successor` in its family, atomically, only if
    /// the token is still unspent, its family is not revoked and of `epoch`, and the user is
    /// still at `epoch`. Otherwise `Conflict` and nothing is written: of concurrent rotations
    /// of one token exactly one succeeds.
    fn rotate_refresh(
        &self,
        spent_hash: &TokenHash,
        spent: &Spent,
        successor: &RefreshRecord,
        epoch: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every session (family) of the user, live or not, as the index has them: a session
    /// started a moment ago may be missing (DynamoDB reads it through a global secondary
    /// index, which is eventually consistent).
    fn list_sessions(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<SessionFamily>, StoreError>> + Send;

    /// The session with this id, read consistently.
    fn find_session(
        &self,
        family_id: Uuid,
    ) -> impl Future<Output = Result<Option<SessionFamily>, StoreError>> + Send;

    /// What the session-checking authorizer needs of session `family_id` and of the account
    /// with `email`, read together and consistently (DynamoDB: one `BatchGetItem`, with only
    /// the attributes it needs: never a password hash).
    fn session_state(
        &self,
        family_id: Uuid,
        email: &Email,
    ) -> impl Future<Output = Result<(Option<SessionState>, Option<AccountState>), StoreError>> + Send;

    /// Revokes `user_id`'s family `family_id` for `end`: none of its tokens refreshes again,
    /// and its event is written with it. Revoking twice, or a family that does not exist (or
    /// is someone else's), is not an error and emits nothing.
    fn revoke_family(
        &self,
        family_id: Uuid,
        user_id: Uuid,
        end: SessionEnd,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends every session of the user by moving its `session_epoch` on, and forgets its trusted
    /// sign-in addresses. `false` if there is no such user (with this email and id).
    fn revoke_all_sessions(
        &self,
        email: &Email,
        user_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The authorization code flow: codes, tokens added to a live session, and consent.
pub trait AuthorizationStore: Send + Sync {
    /// Stores a new authorization code (`Conflict` if its hash exists: never, in practice).
    fn save_code(&self, code: &CodeRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the code with this hash spent at `now_ms` and returns it, atomically: of any
    /// number of concurrent calls exactly one gets [`CodeSpend::First`]; the others, and every
    /// later call, [`CodeSpend::Again`] while the item lasts.
    fn spend_code(
        &self,
        hash: &TokenHash,
        now_ms: i64,
    ) -> impl Future<Output = Result<CodeSpend, StoreError>> + Send;

    /// Records that the spent code with this hash has had its tokens issued: a use after
    /// that revokes them.
    fn mark_code_issued(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Adds `token` to its live session, only while the session is not revoked and is of
    /// `epoch`, and the user is still at `epoch`; `Conflict` and nothing written otherwise.
    fn add_refresh(
        &self,
        token: &RefreshRecord,
        epoch: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What `user_id` allowed `client_id`, if anything.
    fn find_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
    ) -> impl Future<Output = Result<Option<Consent>, StoreError>> + Send;

    /// Every client `user_id` allowed anything, read consistently.
    fn list_consents(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<Consent>, StoreError>> + Send;

    /// Forgets what `user_id` allowed `client_id`; `false` if there was nothing.
    fn revoke_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds `scopes` to what `user_id` allowed `client_id`: concurrent grants add up, none
    /// is lost.
    fn grant_consent(
        &self,
        user_id: Uuid,
        client_id: &ClientId,
        scopes: &[String],
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Two-factor sign-in: a user's MFA state and the challenges between a login's two steps.
pub trait MfaStore: Send + Sync {
    /// Replaces `user`'s MFA state with `mfa`, only while the user is as read (id, session
    /// epoch, and MFA revision `user.mfa.revision`, which moves on by one).
    /// With `session`, whose epoch must be `user.session_epoch + 1`, every other session ends
    /// and that one starts, all or nothing. `Conflict` and nothing written otherwise: of
    /// concurrent uses of one code exactly one succeeds.
    fn save_mfa(
        &self,
        user: &UserRecord,
        mfa: &MfaState,
        session: Option<(&SessionFamily, &RefreshRecord)>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a login's second step.
    fn begin_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one code against the challenge with this hash before the code is checked: the
    /// count with it, or `None` when the challenge is gone or has been checked
    /// [`crate::model::mfa::CHALLENGE_ATTEMPTS`] times already. Atomic: of any number of concurrent
    /// calls at most that many get a count.
    fn count_challenge_attempt(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;

    /// Spends the challenge with this hash (its last allowed code was wrong). Spending one that
    /// is gone is no error.
    fn spend_mfa_challenge(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one second-factor code of the user before it is checked, unless its second
    /// factor is locked ([`crate::model::mfa::MfaAttempts::admit`] decides). Of any number of
    /// concurrent calls no more are admitted than the policy allows.
    fn admit_mfa_code(
        &self,
        user_id: Uuid,
        now_ms: i64,
    ) -> impl Future<Output = Result<MfaAdmission, StoreError>> + Send;

    /// After a right code: the user's consecutive count and any lock are forgotten.
    fn forget_mfa_failures(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The challenge with this hash, expired or not.
    fn find_mfa_challenge(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<MfaChallenge>, StoreError>> + Send;

    /// Ends a login's second step: deletes the challenge, stores `mfa` (the code spent) as
    /// [`MfaStore::save_mfa`] does, and starts `family` with `token`, all or nothing, only
    /// while the challenge exists and the user is at its epoch and MFA revision as read.
    /// `Conflict` otherwise: a challenge or a code serves one login.
    fn complete_mfa_challenge(
        &self,
        challenge: &MfaChallenge,
        user: &UserRecord,
        mfa: &MfaState,
        family: &SessionFamily,
        token: &RefreshRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Mail-borne tokens (email verification, password reset) and the limits around them.
pub trait ActionStore: Send + Sync {
    /// Stores `record` and makes it its user's live token for its purpose (an older one stops
    /// working), both or neither. `Conflict` if the user no longer exists.
    fn issue_action(
        &self,
        record: &ActionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The token with this hash and its user, read consistently.
    fn find_action(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<(ActionRecord, Option<UserRecord>)>, StoreError>> + Send;

    /// Spends a verification token: the email is verified and the token gone, all or nothing,
    /// only while `record` is its user's live verification token; else `Conflict`.
    fn verify_email(
        &self,
        record: &ActionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Spends a reset token: the password hash is replaced, every session ends (the epoch
    /// moves on), the trusted sign-in addresses are forgotten, the email is verified and the
    /// token gone, all or nothing, only while
    /// `record` is its user's live reset token; else `Conflict`.
    fn reset_password(
        &self,
        record: &ActionRecord,
        new_hash: &SecretString,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates `user`, whose live verification token is `link`'s, with `link` itself, and
    /// counts the mail it is for in `mailbox`'s minute and hour windows (counted, never
    /// refused: an address that had no account gets this one mail), all or nothing, in one
    /// write. `EmailTaken` if the email has an account; then nothing is written.
    fn create_user_with_link(
        &self,
        user: &UserRecord,
        link: &ActionRecord,
        mailbox: &Email,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one mail to `email` in its minute and its hour window (registered or not).
    fn count_mail(
        &self,
        email: &Email,
        now_ms: i64,
    ) -> impl Future<Output = Result<MailWindows, StoreError>> + Send;

    /// Counts one token check from `source` in its hour window.
    fn count_token_check(
        &self,
        source: &Source,
        now_ms: i64,
    ) -> impl Future<Output = Result<Window, StoreError>> + Send;

    /// Counts one registration from `source` in its hour window (atomically: of concurrent
    /// calls each gets its own count).
    fn count_registration(
        &self,
        source: &Source,
        now_ms: i64,
    ) -> impl Future<Output = Result<Window, StoreError>> + Send;
}

/// The client registry and the token endpoint's failed-authentication windows.
pub trait ClientStore: Send + Sync {
    /// Stores a new client, unless its id is taken (`Conflict`, nothing written).
    fn create_client(
        &self,
        client: &ClientRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The client with this id, read consistently.
    fn find_client(
        &self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<ClientRecord>, StoreError>> + Send;

    /// Every client, by name.
    fn list_clients(&self) -> impl Future<Output = Result<Vec<ClientRecord>, StoreError>> + Send;

    /// Replaces the client with `client`, on the condition that the stored one is the
    /// version before (`client.version - 1`): else `Conflict` and nothing is written.
    fn save_client(
        &self,
        client: &ClientRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the client; `false` if there was none.
    fn delete_client(&self, id: &ClientId)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether the client exists and is disabled (`Some(disabled)`), reading only what the
    /// session-checking authorizer may read.
    fn client_standing(
        &self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<bool>, StoreError>> + Send;

    /// Counts one client authentication, before its secret is compared, in the client's
    /// window and in the source address's (atomically: of parallel calls each gets its own
    /// count); returns both counts with this one.
    fn count_client_check(
        &self,
        id: &ClientId,
        source: &Source,
        now_ms: i64,
    ) -> impl Future<Output = Result<(Window, Window), StoreError>> + Send;

    /// Takes a check that succeeded back out of both windows.
    fn take_back_client_check(
        &self,
        id: &ClientId,
        source: &Source,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Mails to one address in the last minute and the last hour, this one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailWindows {
    pub minute: Window,
    pub hour: Window,
}

/// Passkeys and the challenges of their ceremonies.
pub trait PasskeyStore: Send + Sync {
    /// Stores a ceremony's challenge (it expires by itself).
    fn save_passkey_challenge(
        &self,
        challenge: &PasskeyChallenge,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the challenge with this hash: it is deleted and returned, expired or not.
    /// `None` if there is none. Atomic: of concurrent takes of one challenge exactly one gets
    /// it.
    fn take_passkey_challenge(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<PasskeyChallenge>, StoreError>> + Send;

    /// The user's passkeys, oldest first, read consistently.
    fn list_passkeys(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<Passkey>, StoreError>> + Send;

    /// The user's passkey with this id (see [`crate::model::webauthn::passkey_id`]).
    fn find_passkey(
        &self,
        user_id: Uuid,
        id: &str,
    ) -> impl Future<Output = Result<Option<Passkey>, StoreError>> + Send;

    /// Adds `passkey` to `user` (as read: same id and session epoch, not disabled, fewer
    /// than [`crate::model::passkey::MAX_PASSKEYS`] passkeys, and not this credential
    /// already), counting it on the user, all or nothing; `Conflict` otherwise.
    fn add_passkey(
        &self,
        user: &UserRecord,
        passkey: &Passkey,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the user's passkey with this id and counts it off, all or nothing;
    /// `Conflict` if there is no such passkey.
    fn remove_passkey(
        &self,
        user: &UserRecord,
        id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Renames the user's passkey with this id; `Conflict` if there is none.
    fn rename_passkey(
        &self,
        user_id: Uuid,
        id: &str,
        name: &PasskeyName,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a sign-in with `passkey` (as read): its counter becomes `sign_count`, its
    /// backup state `backed_up`, its last use `now_ms`, only while the stored counter is
    /// still `passkey.sign_count`; `Conflict` otherwise (a concurrent assertion counted
    /// first, or the passkey is gone).
    fn record_passkey_use(
        &self,
        passkey: &Passkey,
        sign_count: u32,
        backed_up: bool,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The device authorization grant (RFC 8628): a grant under its device code's hash, found
/// also by its user code's.
pub trait DeviceStore: Send + Sync {
    /// Stores a new grant, and its user code as naming it, both or neither. `Conflict` if
    /// the user code names another grant still live at `now_ms` (then nothing is written).
    fn save_device_grant(
        &self,
        grant: &DeviceGrant,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The grant with this device code hash, read consistently.
    fn find_device_grant(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<DeviceGrant>, StoreError>> + Send;

    /// The grant this user code hash names, read consistently.
    fn find_device_grant_by_user_code(
        &self,
        user_code: &TokenHash,
    ) -> impl Future<Output = Result<Option<DeviceGrant>, StoreError>> + Send;

    /// Sets the grant's state to `decision` (approved or denied) only while it is pending
    /// and unexpired at `now_ms`; `false` (nothing written) otherwise. Of concurrent
    /// decisions exactly one is written.
    fn decide_device_grant(
        &self,
        hash: &TokenHash,
        decision: &DeviceState,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts a poll: the last poll becomes `now_ms` and the interval `interval`, only while
    /// the stored last poll is still `seen`; `false` (nothing written) otherwise. Of
    /// concurrent polls that read the same grant exactly one is counted.
    fn record_device_poll(
        &self,
        hash: &TokenHash,
        seen: Option<i64>,
        interval: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks an approved grant issued; `false` if it was not approved (issued already).
    fn spend_device_grant(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one user code lookup in `source`'s window and in the window of every source
    /// together (atomically: of parallel calls each gets its own counts); returns both
    /// counts with this one.
    fn count_user_code_lookup(
        &self,
        source: &Source,
        now_ms: i64,
    ) -> impl Future<Output = Result<(Window, Window), StoreError>> + Send;
}

/// Lifecycle events (see [`crate::model::event`]): every store writes a change's events in
/// the same all-or-nothing write as the change. Read back here by tests and local-api; in
/// AWS they leave through the table's stream.
pub trait EventStore: Send + Sync {
    /// The events of `subject`, oldest first.
    fn events_of(
        &self,
        subject: &EventSubject,
    ) -> impl Future<Output = Result<Vec<AccountEvent>, StoreError>> + Send;

    /// Writes `event` alone: for what follows a change already committed (a lock that
    /// began with a failed check).
    fn emit(&self, event: &AccountEvent) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every event kept, oldest first (local-api's `GET /_local/events`; a scan in DynamoDB).
    fn all_events(&self) -> impl Future<Output = Result<Vec<AccountEvent>, StoreError>> + Send;
}

/// Sign-in through other providers: sign-ins under way, linked identities, finished
/// sign-ins waiting for their exchange.
pub trait FederationStore: Send + Sync {
    /// Stores a sign-in under way (it expires by itself).
    fn save_federation_state(
        &self,
        state: &FederationState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the sign-in with this hash: deleted and returned, expired or not; `None` if
    /// there is none. Atomic: of concurrent takes exactly one gets it.
    fn take_federation_state(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<FederationState>, StoreError>> + Send;

    /// The identity `subject` at `provider`, read consistently.
    fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> impl Future<Output = Result<Option<Identity>, StoreError>> + Send;

    /// The user's identities, oldest first, as the index has them: one linked a moment ago
    /// may be missing (DynamoDB reads them through a global secondary index).
    fn list_identities(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<Identity>, StoreError>> + Send;

    /// Creates `user` (its `identities` counting this one) with `identity` linked to it
    /// (events `user.created` and `identity.linked`), all or nothing: `EmailTaken` if the email has an account,
    /// `Conflict` if the identity is linked already.
    fn create_federated_user(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Links `identity` to `user` (as read: same id and session epoch, not disabled),
    /// counting it on the user, with its `identity.linked` event, all or nothing; `Conflict` if the identity is linked
    /// already (to anyone) or the user changed.
    fn link_identity(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Unlinks `identity` from `user`, counting it off, with its `identity.unlinked` event,
    /// all or nothing; `Conflict` if it is not linked to that user, or is the user's last
    /// way to sign in (no password, no passkey, no other identity), even among concurrent
    /// unlinks.
    fn unlink_identity(
        &self,
        user: &UserRecord,
        identity: &Identity,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes `identity`, whose account is gone (no event: the account's deletion had
    /// one). Gone already is no error.
    fn forget_identity(
        &self,
        identity: &Identity,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a finished sign-in for its exchange (it expires by itself).
    fn save_federation_grant(
        &self,
        grant: &FederationGrant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the grant with this hash, as [`FederationStore::take_federation_state`] takes
    /// a state.
    fn take_federation_grant(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<FederationGrant>, StoreError>> + Send;
}

/// Everything the handlers store: users, login attempts, sessions and action tokens.
pub trait Store:
    UserStore
    + AttemptStore
    + SessionStore
    + ActionStore
    + AccountStore
    + AdminStore
    + MfaStore
    + ClientStore
    + AuthorizationStore
    + PasskeyStore
    + DeviceStore
    + EventStore
    + FederationStore
{
}

impl<T> Store for T where
    T: UserStore
        + AttemptStore
        + SessionStore
        + ActionStore
        + AccountStore
        + AdminStore
        + MfaStore
        + ClientStore
        + AuthorizationStore
        + PasskeyStore
        + DeviceStore
        + EventStore
        + FederationStore
{
}
