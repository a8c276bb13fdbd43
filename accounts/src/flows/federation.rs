//! Sign-in through other identity providers: start (the provider's authorization request,
//! with state, nonce and PKCE kept server-side and the browser bound by a cookie), finish
//! (the callback: the state taken once, the browser checked, the code redeemed, the identity
//! checked and matched to an account by [`crate::model::federation::decide`]), and, for the
//! JSON API, the exchange of the one-time code its app got for the usual tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::password_check::PasswordCheck;
use super::{Accounts, SignedIn, audit};
use crate::audit::{Event, record_refusal};
use crate::error::Error;
use crate::federation::{Upstream, UpstreamError, client_secret_for};
use crate::model::client::{Caller, Client};
use crate::model::credentials::NewPassword;
use crate::model::federation::{
    FederationGrant, FederationState, GRANT_TTL_MS, GrantPurpose, Identity, Linking, Provider,
    STATE_TTL_MS, UpstreamIdentity, decide, method,
};
use crate::model::session::SessionFamily;
use crate::model::token::TokenHash;
use crate::model::user::UserRecord;
use crate::recovery::Notice;
use crate::store::{Store, StoreError};

/// The longest hosted-pages journey (their query) a sign-in carries along.
const MAX_JOURNEY_BYTES: usize = 4096;

/// Where a started sign-in sends the browser, and the cookie that binds it.
pub struct FederationStart {
    pub location: String,
    /// The binding cookie's value: only this browser may finish the sign-in.
    pub binding: SecretString,
}

/// What a provider's callback carries.
#[derive(Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's `error` (the user cancelled, or it refused).
    pub error: Option<String>,
}

/// Where a finished sign-in goes on.
pub enum FederationEnd {
    /// The hosted pages' journey goes on (its query), in this new browser session.
    Journey {
        journey: String,
        session: Box<SignedIn>,
    },
    /// The JSON API's app, at this address (its fragment holds the one-time code).
    App { location: String },
}

/// An identity as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    /// For `DELETE /identities/{id}`: the provider's id, a dot, the subject in base64url.
    pub id: String,
    pub provider: String,
    /// The provider's display name (its id when no longer configured).
    pub provider_name: String,
    pub email: Option<String>,
    pub linked_at_ms: i64,
}

/// The id of `identity` in the identities API.
pub fn identity_id(identity: &Identity) -> String {
    format!(
        "{}.{}",
        identity.provider,
        URL_SAFE_NO_PAD.encode(identity.subject.as_bytes())
    )
}

/// The provider and subject an identity id names, if it is one.
fn parse_identity_id(id: &str) -> Option<(String, String)> {
    let (provider, subject) = id.split_once('.')?;
    let subject = String::from_utf8(URL_SAFE_NO_PAD.decode(subject).ok()?).ok()?;
    let provider_ok = (1..=32).contains(&provider.len())
        && provider
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (provider_ok && !subject.is_empty()).then(|| (provider.to_owned(), subject))
}

/// A random value of 256 bits, base64url: states, nonces, verifiers, codes.
fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The hash under which a random value is kept.
fn hash_of(text: &str) -> TokenHash {
    TokenHash(Sha256::digest(text.as_bytes()).into())
}

impl<S: Store> Accounts<S> {
    /// The provider with this id.
    pub fn provider(&self, id: &str) -> Result<&Provider, Error> {
        self.federation
            .providers
            .iter()
            .find(|p| p.id == id)
            .ok_or(Error::UnknownProvider)
    }

    fn upstream(&self) -> Result<&Upstream, Error> {
        self.federation
            .upstream
            .as_deref()
            .ok_or_else(|| Error::internal("providers are configured without their client"))
    }

    /// Starts a sign-in at `provider_id`, coming back to `redirect_uri`: for the hosted
    /// pages' `journey` (their query) or, without one, for the JSON API's app; with a
    /// signed-in user's `link_ticket` ([`Accounts::start_link`]), a link to their account.
    pub async fn start_federation(
        &self,
        provider_id: &str,
        journey: Option<String>,
        link_ticket: Option<&str>,
        redirect_uri: &str,
        client: &Client,
    ) -> Result<FederationStart, Error> {
        let provider = self.provider(provider_id)?;
        if journey
            .as_ref()
            .is_some_and(|j| j.len() > MAX_JOURNEY_BYTES)
        {
            return Err(Error::FederationStateInvalid);
        }
        let now_ms = self.clock.now_ms();
        let link = match link_ticket {
            None => None,
            Some(ticket) => {
                let grant = match ticket.len() {
                    1..=128 => self.store.take_federation_grant(&hash_of(ticket)).await?,
                    _ => None,
                };
                let valid = grant.filter(|g| {
                    g.purpose == GrantPurpose::Link
                        && g.provider == provider.id
                        && g.expires_at_ms > now_ms
                });
                let Some(grant) = valid else {
                    record_refusal(Event::FederationFailed, None, "ticket", client);
                    return Err(Error::FederationStateInvalid);
                };
                Some(grant.user_id)
            }
        };
        let endpoints = self
            .upstream()?
            .endpoints(provider, now_ms)
            .await
            .map_err(|err| self.upstream_failed(provider, &err, client))?;
        let (state, nonce, verifier, binding) =
            (random_text(), random_text(), random_text(), random_text());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        self.store
            .save_federation_state(&FederationState {
                hash: hash_of(&state),
                provider: provider.id.clone(),
                nonce: nonce.clone(),
                verifier: SecretString::from(verifier),
                binding: hash_of(&binding),
                journey,
                link,
                expires_at_ms: now_ms + STATE_TTL_MS,
            })
            .await?;
        audit(Event::FederationStarted, None, client);
        Ok(FederationStart {
            location: Upstream::authorization_url(
                &endpoints,
                provider,
                redirect_uri,
                &state,
                &nonce,
                &challenge,
            ),
            binding: SecretString::from(binding),
        })
    }

    /// Finishes a sign-in at `provider_id` from its callback, in the browser holding
    /// `binding`: the account it signs in to (found, made, or linked by the rules), then the
    /// journey's session or the app's one-time code.
    pub async fn finish_federation(
        &self,
        provider_id: &str,
        callback: Callback,
        binding: Option<&str>,
        redirect_uri: &str,
        client: &Client,
    ) -> Result<FederationEnd, Error> {
        let provider = self.provider(provider_id)?;
        let refuse = |reason: &'static str, err: Error| {
            record_refusal(Event::FederationFailed, None, reason, client);
            Err(err)
        };
        // The state is taken first, whatever follows: a callback works once.
        let Some(state_text) = callback.state.as_deref().filter(|s| s.len() <= 128) else {
            return refuse("state", Error::FederationStateInvalid);
        };
        let now_ms = self.clock.now_ms();
        let Some(state) = self
            .store
            .take_federation_state(&hash_of(state_text))
            .await?
        else {
            return refuse("state", Error::FederationStateInvalid);
        };
        let bound = binding.is_some_and(|b| bool::from(hash_of(b).0.ct_eq(&state.binding.0)));
        if state.expires_at_ms <= now_ms || state.provider != provider.id || !bound {
            return refuse("state", Error::FederationStateInvalid);
        }
        if callback.error.is_some() {
            return refuse("cancelled", Error::FederationCancelled);
        }
        let Some(code) = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
        else {
            return refuse("code", Error::FederationRefused);
        };
        let upstream = self.upstream()?;
        let identity = async {
            let endpoints = upstream.endpoints(provider, now_ms).await?;
            let secret = client_secret_for(provider, now_ms)?;
            upstream
                .identity(
                    provider,
                    &endpoints,
                    secret.as_ref(),
                    code,
                    redirect_uri,
                    &state.verifier,
                    &state.nonce,
                    now_ms,
                )
                .await
        }
        .await
        .map_err(|err| self.upstream_failed(provider, &err, client))?;
        if let Some(user_id) = state.link {
            return self
                .link_from_account(provider, &identity, user_id, client)
                .await;
        }
        let user = self.account_of(provider, &identity, client).await?;
        let user_text = user.user_id.to_string();
        if user.disabled {
            audit(Event::LoginRefusedDisabled, Some(&user_text), client);
            return Err(Error::AccountDisabled);
        }
        if self.recovery.settings.require_verified_email && !user.email_verified {
            audit(Event::LoginRefusedUnverified, Some(&user_text), client);
            return Err(Error::EmailNotVerified);
        }
        if !identity.mfa && !self.second_factor_methods(&user).is_empty() {
            // The account asks a second factor the provider did not vouch for; its second
            // step signs in with a password.
            record_refusal(
                Event::FederationFailed,
                Some(&user_text),
                "second_factor",
                client,
            );
            return Err(Error::FederationNeedsSecondFactor);
        }
        audit(Event::FederatedSignedIn, Some(&user_text), client);
        match state.journey {
            Some(journey) => {
                // The hosted pages' session: its token is the SSO cookie's.
                let hosted = client.clone().on_hosted_pages();
                let session = self
                    .federated_session(&user, method(&identity), &hosted, now_ms)
                    .await?;
                Ok(FederationEnd::Journey {
                    journey,
                    session: Box::new(session),
                })
            }
            None => {
                let app_url = self.federation.app_url.as_deref().ok_or_else(|| {
                    Error::internal("FEDERATION_APP_URL is needed for the JSON API's sign-in")
                })?;
                let code = random_text();
                self.store
                    .save_federation_grant(&FederationGrant {
                        hash: hash_of(&code),
                        user_id: user.user_id,
                        provider: provider.id.clone(),
                        amr: method(&identity).amr(),
                        purpose: GrantPurpose::SignIn,
                        expires_at_ms: now_ms + GRANT_TTL_MS,
                    })
                    .await?;
                Ok(FederationEnd::App {
                    location: format!("{app_url}#code={code}"),
                })
            }
        }
    }

    /// Turns the one-time `code` a JSON API sign-in ended with into its tokens: once, within
    /// a minute, while the account may still sign in.
    pub async fn exchange_federation(
        &self,
        code: &str,
        client: &Client,
    ) -> Result<SignedIn, Error> {
        let now_ms = self.clock.now_ms();
        let grant = match code.len() {
            1..=128 => self.store.take_federation_grant(&hash_of(code)).await?,
            _ => None,
        };
        let Some(grant) =
            grant.filter(|g| g.expires_at_ms > now_ms && g.purpose == GrantPurpose::SignIn)
        else {
            record_refusal(Event::FederationFailed, None, "code", client);
            return Err(Error::FederationCodeInvalid);
        };
        let user = self
            .store
            .find_user_by_id(grant.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(Error::FederationCodeInvalid)?;
        // The grant keeps the sign-in's amr, so the session says how it was made.
        let signed_in_by = shared::SignInMethod::from_amr(&grant.amr)
            .filter(|m| matches!(m, shared::SignInMethod::Federated { .. }))
            .ok_or(Error::FederationCodeInvalid)?;
        self.federated_session(&user, signed_in_by, client, now_ms)
            .await
    }

    /// A ticket for the signed-in caller to link `provider_id` to their account: the URL the
    /// browser goes to next is `/oauth2/federate/{provider}?link_ticket={ticket}` (once,
    /// within ten minutes).
    pub async fn start_link(
        &self,
        caller: &Caller,
        provider_id: &str,
        client: &Client,
    ) -> Result<String, Error> {
        let provider = self.provider(provider_id)?;
        let (user, _) = PasswordCheck::caller_account(self, caller, client).await?;
        let ticket = random_text();
        self.store
            .save_federation_grant(&FederationGrant {
                hash: hash_of(&ticket),
                user_id: user.user_id,
                provider: provider.id.clone(),
                amr: Vec::new(),
                purpose: GrantPurpose::Link,
                expires_at_ms: self.clock.now_ms() + STATE_TTL_MS,
            })
            .await?;
        Ok(ticket)
    }

    /// Links `identity` to the account of `user_id`, who started the link signed in: the
    /// sign-in at the provider proved the identity, the session proved the account.
    async fn link_from_account(
        &self,
        provider: &Provider,
        identity: &UpstreamIdentity,
        user_id: uuid::Uuid,
        client: &Client,
    ) -> Result<FederationEnd, Error> {
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(Error::FederationStateInvalid)?;
        let user_text = user.user_id.to_string();
        let taken = || {
            record_refusal(
                Event::FederationLinkRefused,
                Some(&user_text),
                "taken",
                client,
            );
            Err(Error::IdentityTaken)
        };
        match self
            .store
            .find_identity(&identity.provider, &identity.subject)
            .await?
        {
            Some(linked) if linked.user_id == user.user_id => {}
            Some(_) => return taken(),
            None => {
                let linked = Identity {
                    provider: identity.provider.clone(),
                    subject: identity.subject.clone(),
                    user_id: user.user_id,
                    email: identity.email.as_ref().map(|e| e.as_str().to_owned()),
                    linked_at_ms: self.clock.now_ms(),
                };
                match self.store.link_identity(&user, &linked).await {
                    Ok(()) => {}
                    // Linked meanwhile, to someone, or the account changed.
                    Err(StoreError::Conflict) => return taken(),
                    Err(err) => return Err(err.into()),
                }
                audit(Event::IdentityLinked, Some(&user_text), client);
                self.send_notice(
                    &user.email,
                    Some(&user_text),
                    Notice::IdentityLinked,
                    client,
                )
                .await;
            }
        }
        let app_url = self
            .federation
            .app_url
            .as_deref()
            .ok_or_else(|| Error::internal("FEDERATION_APP_URL is needed to end a link"))?;
        Ok(FederationEnd::App {
            location: format!("{app_url}#linked={}", provider.id),
        })
    }

    /// The caller's linked identities, oldest first.
    pub async fn identities(
        &self,
        caller: &Caller,
        client: &Client,
    ) -> Result<Vec<LinkedIdentity>, Error> {
        let (user, _) = PasswordCheck::caller_account(self, caller, client).await?;
        let linked = self.store.list_identities(user.user_id).await?;
        Ok(linked
            .iter()
            .map(|identity| LinkedIdentity {
                id: identity_id(identity),
                provider: identity.provider.clone(),
                provider_name: self
                    .federation
                    .providers
                    .iter()
                    .find(|p| p.id == identity.provider)
                    .map_or_else(|| identity.provider.clone(), |p| p.name.clone()),
                email: identity.email.clone(),
                linked_at_ms: identity.linked_at_ms,
            })
            .collect())
    }

    /// Unlinks the caller's identity `id`, unless it is the account's last way to sign in
    /// (`LastSignInMethod`); the owner is told by mail.
    pub async fn unlink(&self, caller: &Caller, id: &str, client: &Client) -> Result<(), Error> {
        let (user, _) = PasswordCheck::caller_account(self, caller, client).await?;
        let Some((provider, subject)) = parse_identity_id(id) else {
            return Err(Error::IdentityNotFound);
        };
        let identity = self
            .store
            .find_identity(&provider, &subject)
            .await?
            .filter(|i| i.user_id == user.user_id)
            .ok_or(Error::IdentityNotFound)?;
        match self.store.unlink_identity(&user, &identity).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                // Gone meanwhile, or the last way in: which, read again.
                return match self.store.find_identity(&provider, &subject).await? {
                    Some(i) if i.user_id == user.user_id => Err(Error::LastSignInMethod),
                    _ => Err(Error::IdentityNotFound),
                };
            }
            Err(err) => return Err(err.into()),
        }
        let user_id = user.user_id.to_string();
        audit(Event::IdentityUnlinked, Some(&user_id), client);
        self.send_notice(
            &user.email,
            Some(&user_id),
            Notice::IdentityUnlinked,
            client,
        )
        .await;
        Ok(())
    }

    /// A new session of `user`, signed in at a provider.
    async fn federated_session(
        &self,
        user: &UserRecord,
        signed_in_by: shared::SignInMethod,
        client: &Client,
        now_ms: i64,
    ) -> Result<SignedIn, Error> {
        let (token, mut family, mut record) = SessionFamily::begin(
            user,
            user.session_epoch,
            now_ms,
            self.sessions.first_token_ttl(),
            client.session_info(),
        );
        family.method = signed_in_by;
        record.token_use = client.first_token_use();
        let custom = self.first_party_claims(user, &family, client).await?;
        self.store.start_session(&family, &record).await?;
        self.signed_in(
            user,
            &family,
            token,
            record.expires_at,
            now_ms / 1000,
            custom,
        )
    }

    /// The account `identity` signs in to: the one it is linked to, or (by the rules) a new
    /// one, or an existing one it is linked to now.
    async fn account_of(
        &self,
        provider: &Provider,
        identity: &UpstreamIdentity,
        client: &Client,
    ) -> Result<UserRecord, Error> {
        let linked = self
            .store
            .find_identity(&identity.provider, &identity.subject)
            .await?;
        let mut owner = None;
        if let Some(linked) = &linked {
            match self.store.find_user_by_id(linked.user_id).await? {
                Some(user) => owner = Some(user),
                // The account went and left its identity behind: free it.
                None => self.store.forget_identity(linked).await?,
            }
        }
        let existing = match (&owner, &identity.email) {
            (None, Some(email)) => self.store.find_user(email).await?,
            _ => None,
        };
        let now_ms = self.clock.now_ms();
        let new_identity = |user_id| Identity {
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            user_id,
            email: identity.email.as_ref().map(|e| e.as_str().to_owned()),
            linked_at_ms: now_ms,
        };
        match decide(
            identity,
            owner.as_ref().map(|u| u.user_id),
            existing.as_ref(),
        ) {
            Linking::SignIn(_) => owner.ok_or_else(|| Error::internal("an owner was decided")),
            Linking::Link(_) => {
                let user = existing.ok_or_else(|| Error::internal("a link was decided"))?;
                self.store
                    .link_identity(&user, &new_identity(user.user_id))
                    .await?;
                let user_id = user.user_id.to_string();
                audit(Event::IdentityLinked, Some(&user_id), client);
                self.send_notice(&user.email, Some(&user_id), Notice::IdentityLinked, client)
                    .await;
                Ok(user)
            }
            Linking::Create {
                email,
                email_verified,
            } => {
                self.hooks
                    .before_user_created(&email, &format!("federated:{}", provider.id), client)
                    .await?;
                // No password anyone knows: a reset by mail can set one.
                let unknown = NewPassword::parse(random_text(), None)
                    .map_err(|_| Error::internal("a random password was refused"))?;
                let hash = self.passwords.hash(unknown).await?;
                let created_at = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
                    .map_err(Error::internal)?;
                let mut user = UserRecord::new(email, hash, created_at);
                user.email_verified = email_verified;
                user.has_password = false;
                user.identities = 1;
                match self
                    .store
                    .create_federated_user(&user, &new_identity(user.user_id))
                    .await
                {
                    Ok(()) => {}
                    // Registered meanwhile by its owner: not ours to link to.
                    Err(StoreError::EmailTaken) => {
                        record_refusal(Event::FederationLinkRefused, None, "raced", client);
                        return Err(Error::FederationSignInFirst);
                    }
                    Err(err) => return Err(err.into()),
                }
                audit(
                    Event::FederatedRegistered,
                    Some(&user.user_id.to_string()),
                    client,
                );
                Ok(user)
            }
            Linking::SignInFirst => {
                let user_id = existing.map(|u| u.user_id.to_string());
                record_refusal(
                    Event::FederationLinkRefused,
                    user_id.as_deref(),
                    "unproven",
                    client,
                );
                Err(Error::FederationSignInFirst)
            }
            Linking::NoEmail => {
                record_refusal(Event::FederationFailed, None, "no_email", client);
                Err(Error::FederationNoEmail)
            }
        }
    }

    /// Audits an upstream failure and says what it means for the user.
    fn upstream_failed(&self, provider: &Provider, err: &UpstreamError, client: &Client) -> Error {
        record_refusal(Event::FederationFailed, None, err.reason(), client);
        tracing::warn!(provider = %provider.id, error = %err, "a sign-in at a provider failed");
        match err {
            UpstreamError::Unreachable(_) | UpstreamError::Status(_) => {
                Error::FederationUnavailable
            }
            UpstreamError::Malformed(_) | UpstreamError::IdToken(_) | UpstreamError::Refused(_) => {
                Error::FederationRefused
            }
        }
    }
}
