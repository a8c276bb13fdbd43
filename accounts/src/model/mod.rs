//! The account model: entities and pure policy. Nothing here does I/O, and nothing here
//! imports from outside `model` but `shared`.

pub mod backoff;
pub mod cbor;
pub mod client;
pub mod credentials;
pub mod device;
pub mod event;
pub mod federation;
pub mod link;
pub mod mfa;
pub mod oidc;
pub mod passkey;
pub mod registry;
pub mod session;
pub mod token;
pub mod user;
pub mod webauthn;
