//! The routes: each parses its request, calls one flow of `accounts`, and renders the
//! outcome.

pub mod account;
pub mod consents;
pub mod federation;
pub mod health;
pub mod identities;
pub mod jwks;
pub mod login;
pub mod mfa;
pub mod oauth;
pub mod pages;
pub mod passkeys;
pub mod password;
pub mod recovery;
pub mod register;
pub mod sessions;
pub mod verify;
