//! The DynamoDB store. Table layout (docs/architecture.md, "Table layout"):
//!
//! | item | pk | sk | attributes |
//! |---|---|---|---|
//! | user | `EMAIL#<email>` | `USER` | `user_id`, `email`, `password_hash`, `roles` (list), `created_at` (RFC 3339), `entity`, `gsi1pk` = `USER#<user_id>`, `session_epoch`, `trusted_sources` (list) |
//! | failed logins per source | `LOGINFAIL#<email>` | `SOURCE#<ip>` | `failures`, `locked_until_ms`, `expires_at` (TTL, a day after the last check); written only conditionally on the values read |
//! | failed logins per email | `LOGINFAIL#<email>` | `EMAIL` | `count` (moved only by `ADD`), `expires_at` (the window's end, and the TTL) |
//! | session (refresh family) | `SESSION#<family_id>` | `SESSION` | `user_id`, `email`, `epoch`, `revoked` (bool), `created_at_ms`, `expires_at` (TTL, moved on by each refresh), `last_refreshed_at_ms`, `user_agent`, `source_ip`, `gsi1pk` = `SESSIONS#<user_id>` |
//! | client | `CLIENT#<client_id>` | `CLIENT` | `client_id`, `name`, `client_type`, `scopes`, `grant_types`, `redirect_uris`, `post_logout_redirect_uris` (lists), `first_party`, `disabled` (bools), `secrets` (list of maps: `hash` SHA-256 hex, `created_at_ms`, `expires_at_ms`), `created_at_ms`, `created_by`, `updated_at_ms`, `updated_by`, `version`, `entity` = `client` |
//! | failed client authentications | `CLIENTAUTH#<SHA-256 hex of the client_id sent>` / `CLIENTAUTHSRC#<ip>` | `CLIENTAUTH` / `CLIENTAUTHSRC` | `count`, `expires_at` (the window's end, and the TTL) |
//! | passkey | `PASSKEY#<user_id>` | `CRED#<passkey id>` | `user_id`, `credential_id`, `public_key` (binary, COSE), `algorithm`, `sign_count`, `backup_eligible`, `backed_up` (bools), `transports` (list), `name`, `created_at_ms`, `last_used_at_ms`, `gsi1pk` = `TOKENS#<user_id>`; counted on the user item as `passkeys` |
//! | passkey ceremony challenge | `WEBAUTHN#<SHA-256 hex of challenge_id>` | `WEBAUTHN` | `ceremony`, `challenge` (binary), `user_id`, `epoch`, `by_email`, `mfa_token` (hash), `expires_at` (TTL, 5 minutes) |
//! | device authorization grant | `DEVICE#<SHA-256 hex of the device code>` | `DEVICE` | `user_code` (hash), `client_id`, `scope`, `poll_interval`, `last_poll_ms`, `grant_state` (`pending`/`approved`/`denied`/`issued`), once approved `user_id`, `email`, `family_id` (the approving browser session), `expires_at` (TTL, 10 minutes) |
//! | device user code | `USERCODE#<SHA-256 hex of the user code>` | `USERCODE` | `device` (the grant's hash), `expires_at` (TTL) |
//! | user code lookups | `USERCODELOOKUP#<ip>` / `USERCODELOOKUP` | `USERCODELOOKUP` | `count`, `expires_at` (the window's end, and the TTL) |
//! | lifecycle event | `EVENT#<user_id>` / `EVENT#CLIENT#<client_id>` | `<at_ms>#<event id>` | `event_id`, `event_type`, `at_ms`, `user_id`/`client_id`, `source_ip`, `user_agent`, `data` (JSON), `expires_at` (TTL, a day); written in its change's transaction |
//! | refresh token | `REFRESH#<sha256 hex>` | `REFRESH` | `family_id`, `user_id`, `email`, `issued_at_ms`, `expires_at` (TTL), `token_status` (`active`/`spent`); once spent `spent_at_ms`, `successor` (binary, sealed), `successor_hash`; `gsi1pk` = `TOKENS#<user_id>` |
//!
//! Global secondary index `gsi1` (partition key `gsi1pk`, all attributes) finds a user by id
//! (`USER#`), their sessions (`SESSIONS#`) and their tokens (`TOKENS#`).
//! `expires_at` (Unix seconds) is the table's TTL attribute.
//!
//! One file per concern: `items` (keys and attribute codecs), `errors` (how SDK errors map to
//! [`StoreError`]), `schema` (the table itself), and one per trait: `users`, `attempts`,
//! `sessions`.

mod actions;
mod admin;
mod attempts;
mod authorization;
mod client;
mod clients;
mod device;
mod errors;
mod events;
mod federation;
mod items;
mod mfa;
mod passkeys;
mod schema;
mod sessions;
mod users;

pub use client::{DynamoStore, TTL_ATTRIBUTE, USER_ID_INDEX};
pub use events::event_from_stream_image;
pub use items::SESSION_STATE_ATTRIBUTES;
