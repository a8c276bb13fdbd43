//! The device authorization grant (RFC 8628), for command-line tools and devices without a
//! browser: the device asks for a device code and a user code, the user enters the user
//! code on the hosted page (`/oauth2/device`) of a browser where they are signed in and
//! allows or denies, and the device polls the token endpoint until it has its tokens.
//!
//! The tokens begin a session of their own (the device's, listed and ended as any other),
//! signed in the way the approving browser session was. User code lookups are counted per
//! source address and in total, so a code cannot be guessed in its life (see
//! [`crate::model::device`]).

use tokio::join;

use super::Accounts;
use super::authorize::OidcTokens;
use crate::audit::{Event, record_user_at_client};
use crate::error::Error;
use crate::model::client::Client;
use crate::model::device::{
    DEVICE_CODE_TTL_SECONDS, DeviceGrant, DeviceState, MAX_POLL_INTERVAL_SECONDS,
    POLL_INTERVAL_SECONDS, SLOW_DOWN_SECONDS, USER_CODE_LOOKUPS_IN_TOTAL,
    USER_CODE_LOOKUPS_PER_SOURCE, UserCode,
};
use crate::model::oidc::SCOPE_OFFLINE_ACCESS;
use crate::model::registry::{ClientRecord, GrantType};
use crate::model::session::{BrowserSession, SessionFamily, TokenUse};
use crate::model::token::OpaqueToken;
use crate::store::{Store, StoreError};

/// What the device is told (RFC 8628 §3.2).
pub struct DeviceAuthorization {
    pub device_code: OpaqueToken,
    pub user_code: UserCode,
    pub expires_in: i64,
    pub interval: i64,
}

/// A pending grant a user code named, with its client, for the confirmation page.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub grant: DeviceGrant,
    pub client: ClientRecord,
    pub user_code: UserCode,
}

impl DeviceRequest {
    pub fn scopes(&self) -> Vec<&str> {
        self.grant
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    }
}

impl<S: Store> Accounts<S> {
    /// `POST /oauth2/device_authorization`: a new grant for `registered` with `scope`.
    pub async fn device_authorization(
        &self,
        registered: &ClientRecord,
        scope: Option<&str>,
        client: &Client,
    ) -> Result<DeviceAuthorization, Error> {
        if !registered.allows(GrantType::DeviceCode) {
            return Err(Error::UnauthorizedClient);
        }
        let scopes = self
            .requested_scopes(registered, scope)
            .map_err(Error::InvalidScope)?;
        let now_ms = self.clock.now_ms();
        // A user code may name a live grant already (one in 2.6 × 10^10 per live grant):
        // then another.
        for _ in 0..3 {
            let device_code = OpaqueToken::generate();
            let user_code = UserCode::generate();
            let grant = DeviceGrant {
                hash: device_code.hash(),
                user_code: user_code.hash(),
                client_id: registered.client_id.clone(),
                scope: scopes.join(" "),
                expires_at: now_ms / 1000 + DEVICE_CODE_TTL_SECONDS,
                interval: POLL_INTERVAL_SECONDS,
                last_poll_ms: None,
                state: DeviceState::Pending,
            };
            match self.store.save_device_grant(&grant, now_ms).await {
                Ok(()) => {
                    crate::audit::record_client(
                        Event::DeviceAuthorizationStarted,
                        Some(registered.client_id.as_str()),
                        None,
                        client,
                    );
                    return Ok(DeviceAuthorization {
                        device_code,
                        user_code,
                        expires_in: DEVICE_CODE_TTL_SECONDS,
                        interval: POLL_INTERVAL_SECONDS,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(Error::Conflict)
    }

    /// The pending grant `user_code` (as typed) names, counted against the source's and
    /// everyone's lookups first. `UserCodeInvalid` for a malformed, unknown, expired or
    /// decided code, or one of a client since disabled.
    pub async fn device_request(
        &self,
        user_code: &str,
        client: &Client,
    ) -> Result<DeviceRequest, Error> {
        let now_ms = self.clock.now_ms();
        let (by_source, in_total) = self
            .store
            .count_user_code_lookup(client.source(), now_ms)
            .await?;
        let over = [
            (by_source, USER_CODE_LOOKUPS_PER_SOURCE),
            (in_total, USER_CODE_LOOKUPS_IN_TOTAL),
        ]
        .into_iter()
        .filter(|(window, limit)| window.count > *limit)
        .map(|(window, _)| window.window_ends)
        .max();
        if let Some(ends) = over {
            crate::audit::record_refusal(Event::UserCodeRefused, None, "limited", client);
            return Err(Error::TooManyUserCodes {
                retry_after_seconds: u64::try_from(ends - now_ms / 1000).unwrap_or(1).max(1),
            });
        }
        let refused = || {
            crate::audit::record_refusal(Event::UserCodeRefused, None, "unknown", client);
            Error::UserCodeInvalid
        };
        let Some(user_code) = UserCode::parse(user_code) else {
            return Err(refused());
        };
        let Some(grant) = self
            .store
            .find_device_grant_by_user_code(&user_code.hash())
            .await?
            .filter(|g| g.state == DeviceState::Pending && !g.expired(now_ms))
        else {
            return Err(refused());
        };
        let Some(registered) = self
            .store
            .find_client(&grant.client_id)
            .await?
            .filter(|c| !c.disabled && c.allows(GrantType::DeviceCode))
        else {
            return Err(refused());
        };
        Ok(DeviceRequest {
            grant,
            client: registered,
            user_code,
        })
    }

    /// The signed-in user's answer for the device: `allow` lets it have its tokens at its
    /// next poll, anything else tells it `access_denied`. `UserCodeInvalid` if the grant was
    /// decided meanwhile or has expired.
    pub async fn decide_device(
        &self,
        request: &DeviceRequest,
        session: &BrowserSession,
        allow: bool,
        client: &Client,
    ) -> Result<(), Error> {
        let decision = match allow {
            true => DeviceState::Approved {
                user_id: session.user.user_id,
                email: session.user.email.clone(),
                family_id: session.family.family_id,
            },
            false => DeviceState::Denied,
        };
        let now_ms = self.clock.now_ms();
        if !self
            .store
            .decide_device_grant(&request.grant.hash, &decision, now_ms)
            .await?
        {
            return Err(Error::UserCodeInvalid);
        }
        let event = match allow {
            true => Event::DeviceApproved,
            false => Event::DeviceDenied,
        };
        record_user_at_client(
            event,
            &session.user.user_id.to_string(),
            request.client.client_id.as_str(),
            client,
        );
        Ok(())
    }

    /// The device code grant at the token endpoint: `authorization_pending` until the user
    /// decides, `slow_down` when polled sooner than the interval (which then grows), then
    /// `access_denied`, or the tokens, once. Every poll is counted by one conditional
    /// write, so of parallel polls one is answered and the others are told to slow down.
    pub async fn poll_device(
        &self,
        registered: &ClientRecord,
        device_code: &str,
        client: &Client,
    ) -> Result<OidcTokens, Error> {
        if !registered.allows(GrantType::DeviceCode) {
            return Err(Error::UnauthorizedClient);
        }
        let code = OpaqueToken::parse(device_code)
            .ok_or(Error::InvalidGrant("the device code is not valid"))?;
        let now_ms = self.clock.now_ms();
        let grant = self
            .store
            .find_device_grant(&code.hash())
            .await?
            .ok_or(Error::InvalidGrant("the device code is not valid"))?;
        if grant.client_id != registered.client_id {
            return Err(Error::InvalidGrant(
                "the device code was issued to another client",
            ));
        }
        if grant.state == DeviceState::Issued {
            return Err(Error::InvalidGrant("the device code has been used already"));
        }
        if grant.expired(now_ms) {
            return Err(Error::DeviceCodeExpired);
        }
        if grant.polled_too_soon(now_ms) {
            let interval = (grant.interval + SLOW_DOWN_SECONDS).min(MAX_POLL_INTERVAL_SECONDS);
            // The interval runs from this poll too; a parallel poll that changed the grant
            // first has already been answered.
            self.store
                .record_device_poll(&grant.hash, grant.last_poll_ms, interval, now_ms)
                .await?;
            return Err(Error::SlowDown {
                interval_seconds: interval,
            });
        }
        if !self
            .store
            .record_device_poll(&grant.hash, grant.last_poll_ms, grant.interval, now_ms)
            .await?
        {
            // Another poll of this grant was counted first: this one came too soon.
            return Err(Error::SlowDown {
                interval_seconds: grant.interval,
            });
        }
        let DeviceState::Approved {
            user_id,
            email,
            family_id,
        } = grant.state
        else {
            return Err(match grant.state {
                DeviceState::Denied => Error::DeviceDenied,
                _ => Error::AuthorizationPending,
            });
        };
        if !self.store.spend_device_grant(&grant.hash).await? {
            return Err(Error::InvalidGrant("the device code has been used already"));
        }
        let (browser, user) = join!(
            self.store.find_session(family_id),
            self.store.find_user(&email)
        );
        let ended = Error::InvalidGrant("the session that allowed the device has ended");
        let (Some(browser), Some(user)) = (browser?, user?) else {
            return Err(ended);
        };
        if user.user_id != user_id
            || user.disabled
            || !browser.is_live(&self.sessions, user.session_epoch, now_ms)
        {
            return Err(ended);
        }
        let (token, mut family, mut record) = SessionFamily::begin(
            &user,
            user.session_epoch,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        family.method = browser.method;
        record.token_use = TokenUse::Client {
            client_id: registered.client_id.clone(),
            scope: grant.scope.clone(),
        };
        let custom = self
            .claims_for(&user, &family, registered.client_id.as_str(), client)
            .await?;
        self.store.start_session(&family, &record).await?;
        let offline = grant.scope.split(' ').any(|s| s == SCOPE_OFFLINE_ACCESS)
            && registered.allows(GrantType::RefreshToken);
        let tokens = self.oidc_tokens(
            &user,
            &family,
            registered.client_id.as_str(),
            &grant.scope,
            None,
            offline.then_some(token),
            now_ms / 1000,
            custom,
        )?;
        record_user_at_client(
            Event::DeviceTokensIssued,
            &user.user_id.to_string(),
            registered.client_id.as_str(),
            client,
        );
        Ok(tokens)
    }
}
