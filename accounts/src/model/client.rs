//! Who is asking: the client a request came from, and the signed-in caller an access token
//! names. Each door (the JSON API, a hosted page, another Lambda) reads these once from its
//! transport; the flows take them as they are.

use uuid::Uuid;

use crate::model::backoff::Source;
use crate::model::credentials::Email;
use crate::model::session::{ClientInfo, TokenUse};

/// The client of a request: its address as the gateway saw it (never a header the client
/// writes) and its user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    address: Option<String>,
    user_agent: Option<String>,
    source: Source,
    /// Whether the request came through the hosted sign-in pages: a sign-in there starts a
    /// browser's single sign-on session, whose first token only its cookie holds.
    hosted: bool,
}

impl Client {
    pub fn new(address: Option<&str>, user_agent: Option<&str>) -> Self {
        let address = address.map(str::to_owned).filter(|a| !a.is_empty());
        Self {
            source: Source::new(address.as_deref().unwrap_or("")),
            address,
            user_agent: user_agent.map(str::to_owned),
            hosted: false,
        }
    }

    /// The same client, on the hosted sign-in pages.
    pub fn on_hosted_pages(mut self) -> Self {
        self.hosted = true;
        self
    }

    /// What a new session's first refresh token may be used for: the JSON API's refresh, or,
    /// from the hosted pages, only to find the browser's session again.
    pub fn first_token_use(&self) -> TokenUse {
        if self.hosted {
            TokenUse::Browser
        } else {
            TokenUse::Api
        }
    }

    /// The address, as given (for the audit trail).
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The address as the counters key it (`unknown` without one).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// What a new session records of this client.
    pub fn session_info(&self) -> ClientInfo {
        ClientInfo::new(self.user_agent.as_deref(), self.address.as_deref())
    }
}

/// The signed-in caller, as the authorizer in front of a protected route named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub email: Email,
    /// The session of the caller's access token, if it names one.
    pub session: Option<Uuid>,
}
