//! The handler's state.

use accounts::flows::Accounts;
use shared::TokenVerifier;

use crate::http::browser::BrowserSettings;

/// Everything a request needs, built once at cold start.
pub struct App<S> {
    /// The account flows, over the store `S`.
    pub accounts: Accounts<S>,
    /// Checks access tokens for `/verify`, and publishes its keys (JWKS, discovery).
    pub verifier: TokenVerifier,
    /// CORS origins and where the refresh token travels.
    pub browser: BrowserSettings,
}
