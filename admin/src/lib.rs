//! `auth-admin`: operating a deployed users table with the operator's own AWS credentials —
//! users (get, list, roles, disable, enable, MFA reset, delete), their sessions, the import of
//! the Node.js original's users — and signing keys for rotation (`keys`). Every change writes an audit record naming the operator's AWS
//! identity, in the table and on stderr.

pub mod cli;
pub mod clients;
pub mod context;
pub mod failure;
pub mod import;
pub mod keys;
pub mod output;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Done.
    pub const OK: i32 = 0;
    /// An AWS or store failure, or the operator's identity could not be established.
    pub const FAILED: i32 = 1;
    /// Bad arguments (clap's own code).
    pub const USAGE: i32 = 2;
    /// No such user or session.
    pub const NOT_FOUND: i32 = 3;
    /// The account changed while the command ran; nothing was changed. Run it again.
    pub const CONFLICT: i32 = 4;
}
