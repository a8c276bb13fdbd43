//! Accounts: the model (users, credentials, sessions, links, two-factor state, backoff), the
//! flows that change it, and the stores that keep it, for every door that calls them: the
//! JSON API (auth-api), the operator CLI (admin), the session authorizer and local-api.
//!
//! No HTTP is known here (docs/architecture.md).

pub mod audit;
pub mod aws;
pub mod error;
pub mod federation;
pub mod flows;
pub mod hooks;
pub mod mail;
pub mod model;
pub mod passwords;
pub mod recovery;
pub mod settings;
pub mod store;
pub mod webhook;
