//! The token core shared by both Lambdas: access-token claims, signing and verification keys,
//! JWKS documents, and configuration read from the environment.
//!
//! Nothing here knows HTTP or DynamoDB.

pub mod clock;
pub mod config;
pub mod errors;
pub mod id_token;
pub mod init;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, Env};
pub use errors::error_chain;
pub use id_token::{IdClaims, at_hash, verify_id_token_hint};
pub use keys::{Jwk, Jwks, KeyError, KeySet, SigningKey, VerificationKey};
pub use token::{
    AccessClaims, CustomClaim, IssuedToken, Principal, RESERVED_CLAIMS, SignInMethod, Subject,
    TokenError, TokenIssuer, TokenVerifier, bearer_token,
};
