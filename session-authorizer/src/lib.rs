//! The session-checking authorizer (`AUTHORIZER_CHECK_SESSION=true`): the stateless
//! authorizer's checks, then the token's session read from the users table, so a logout,
//! logout-all, password change, disable or delete refuses the token at the gateway before its
//! `exp` (within `AUTHORIZER_SESSION_CACHE_SECONDS` plus API Gateway's cache TTL).

use std::sync::Arc;

use accounts::model::credentials::Email;
use accounts::model::registry::ClientId;
use accounts::model::session::{SessionSettings, session_standing};
use accounts::store::{ClientStore, DynamoStore, SessionStore};
use authorizer::session::{
    LookupError, SessionCheck, SessionCheckSettings, SessionLookup, Standing,
};
use authorizer::{Authorizer, AuthorizerResponse, Refusal};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::config::{self, ConfigError, Env};
use shared::{AccessClaims, Clock};
use uuid::Uuid;

/// Answers for a token's session from auth-api's store (DynamoDB in Lambda; local-api's own).
pub struct StoreLookup<'a, S> {
    pub store: &'a S,
    pub sessions: SessionSettings,
    pub clock: &'a dyn Clock,
}

impl<S: SessionStore + ClientStore> SessionLookup for StoreLookup<'_, S> {
    async fn client_standing(&self, client_id: &str) -> Result<Standing, LookupError> {
        let Some(id) = ClientId::parse(client_id) else {
            return Ok(Standing::Ended("client_unknown"));
        };
        Ok(
            match self
                .store
                .client_standing(&id)
                .await
                .map_err(|e| LookupError(Box::new(e)))?
            {
                None => Standing::Ended("client_unknown"),
                Some(true) => Standing::Ended("client_disabled"),
                Some(false) => Standing::Live,
            },
        )
    }

    async fn standing(&self, claims: &AccessClaims, sid: &str) -> Result<Standing, LookupError> {
        // The token is verified: these parse unless it was issued by something else with our
        // key. Then it has no session here.
        let (Ok(family_id), Ok(user_id), Ok(email)) = (
            Uuid::parse_str(sid),
            Uuid::parse_str(&claims.sub),
            Email::parse(&claims.email),
        ) else {
            return Ok(Standing::Ended("session_unknown"));
        };
        let (session, account) = self
            .store
            .session_state(family_id, &email)
            .await
            .map_err(|e| LookupError(Box::new(e)))?;
        Ok(
            match session_standing(
                user_id,
                session.as_ref(),
                account.as_ref(),
                &self.sessions,
                self.clock.now_ms(),
            ) {
                Ok(()) => Standing::Live,
                Err(end) => Standing::Ended(end.code()),
            },
        )
    }
}

/// The Lambda's state, built once at cold start.
pub struct SessionAuthorizer {
    authorizer: Authorizer,
    check: SessionCheck,
    store: DynamoStore,
    sessions: SessionSettings,
    clock: Arc<dyn Clock>,
}

impl SessionAuthorizer {
    /// What [`Authorizer::from_env`] reads, and `AUTHORIZER_CHECK_SESSION` (must be true),
    /// `AUTHORIZER_SESSION_CACHE_SECONDS`, `USERS_TABLE`, `SESSION_MAX_LIFETIME_SECONDS` and
    /// the AWS SDK's variables.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let settings = SessionCheckSettings::from_env(env)?;
        if !settings.enabled {
            return Err(ConfigError::new(
                "AUTHORIZER_CHECK_SESSION",
                "must be true for the session-authorizer binary (deploy the authorizer binary \
                 for stateless checks)",
            ));
        }
        let sdk = accounts::aws::from_env(env)?;
        let table = config::required(env, "USERS_TABLE")?;
        let clock: Arc<dyn Clock> = Arc::new(shared::SystemClock);
        Ok(Self {
            authorizer: Authorizer::from_env(env)?,
            check: SessionCheck::new(settings.cache_seconds, Arc::clone(&clock)),
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            sessions: accounts::settings::sessions_from_env(env)?,
            clock,
        })
    }

    /// The Lambda entry point.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<AuthorizerResponse, Refusal> {
        let lookup = StoreLookup {
            store: &self.store,
            sessions: self.sessions,
            clock: self.clock.as_ref(),
        };
        // Boxed: the SDK's future nested in the runtime's is too deep for the compiler's
        // layout computation otherwise.
        Box::pin(
            self.authorizer
                .decide_checked(event.payload, &self.check, &lookup),
        )
        .await
    }
}
