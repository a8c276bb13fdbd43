//! The handler's state.

use accounts::flows::Accounts;
use shared::TokenVerifier;

use crate::http::browser::BrowserSettings;
use crate::http::pages::Branding;

/// Everything a request needs, built once at cold start.
pub struct App<S> {
    /// The account flows, over the store `S`.
    pub accounts: Accounts<S>,
    /// Checks access tokens for `/verify`, and publishes its keys (JWKS, discovery).
    pub verifier: TokenVerifier,
    /// CORS origins and where the refresh token travels.
    pub browser: BrowserSettings,
    /// `PUBLISHED_SCOPES`: the scopes discovery lists as `scopes_supported` (none unless an
    /// operator chooses to publish them; the registered clients' scopes are never listed).
    pub published_scopes: Vec<String>,
    /// The hosted pages' product name, colour and logo.
    pub pages: Branding,
}
