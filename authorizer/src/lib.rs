//! The API Gateway Lambda authorizer: event in, decision out.
//!
//! One handler answers REST `TOKEN` and `REQUEST` events and HTTP API payload 2.0 events. A
//! missing or invalid token fails the invocation with exactly `Unauthorized` (API Gateway's
//! 401); a valid token gets a policy naming everything it may reach, so API Gateway's
//! per-token cache gives the right answer on every route.

use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use shared::config::{self, ConfigError, Env};
use shared::{AccessClaims, Principal, TokenVerifier, bearer_token};

pub mod policy;
pub mod rules;
pub mod session;

use policy::{Effect, INVOKE, PolicyDocument, Statement};
use rules::{Holder, Rules};
use session::{SessionCheck, SessionCheckSettings, SessionLookup, Standing};

/// How many verified tokens a warm authorizer remembers by default (`AUTHORIZER_TOKEN_CACHE`):
/// a token seen again skips its signature check. About 1 KiB each.
pub const DEFAULT_TOKEN_CACHE: usize = 512;

/// The stateless authorizer's only error. API Gateway answers 401 for exactly this message;
/// any other text would become a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

impl From<Unauthorized> for Diagnostic {
    fn from(_: Unauthorized) -> Self {
        Diagnostic {
            error_type: "Unauthorized".into(),
            error_message: "Unauthorized".into(),
        }
    }
}

/// How the session-checking authorizer refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// API Gateway's 401 (the message is exactly `Unauthorized`).
    #[error("Unauthorized")]
    Unauthorized,
    /// The session could not be checked: refused all the same (fail closed). Any message but
    /// `Unauthorized` makes API Gateway answer its `AUTHORIZER_CONFIGURATION_ERROR` response
    /// (template.yaml: 503 with `Retry-After`), which it does not cache, and which does not
    /// tell the client its token is bad.
    #[error("Service Unavailable")]
    Unavailable,
}

impl From<Unauthorized> for Refusal {
    fn from(_: Unauthorized) -> Self {
        Refusal::Unauthorized
    }
}

impl From<Refusal> for Diagnostic {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthorized => Unauthorized.into(),
            Refusal::Unavailable => Diagnostic {
                error_type: "SessionCheckUnavailable".into(),
                error_message: "Service Unavailable".into(),
            },
        }
    }
}

/// How HTTP API (payload 2.0) events are answered; it must match the API's authorizer setting
/// `EnableSimpleResponses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Response {
    /// `{"isAuthorized": …}`: a yes or no for the one route asked about.
    Simple,
    /// An IAM policy naming everything the token may reach.
    Iam,
}

/// `AUTHORIZER_V2_RESPONSE` values.
const V2_SIMPLE: &str = "simple";
const V2_IAM: &str = "iam";
/// Simple responses with route rules: each answer is right only for the route it was asked
/// for, so the API must invoke the authorizer on every request (caching off). The name says so.
const V2_SIMPLE_UNCACHED: &str = "simple-with-caching-off";

/// Values handed to the backend in `requestContext.authorizer`: primitives only, as REST APIs
/// refuse objects and arrays there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Context {
    /// `user` or `client` (a machine client's token).
    pub principal: &'static str,
    /// The user id, or a machine client's client_id.
    pub sub: String,
    /// The user's email; absent for a machine client.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// Comma-joined.
    pub roles: String,
    pub exp: i64,
    /// Whether the user proved they read mail at `email`.
    pub email_verified: bool,
    /// The token's session (`sid`); absent for tokens issued without one, never null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The sign-in's methods (`amr`), comma-joined: `pwd`, or `pwd,otp` after a second factor;
    /// absent for tokens issued without the claim.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub amr: String,
    /// The client the token was issued to (`client_id`); absent for tokens without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The token's scopes, space-separated (a user's roles, or a client's granted scopes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The deployment's own claims (its `customize-access-token` hook), by their names:
    /// text, numbers and flags, as the context can carry them.
    #[serde(flatten)]
    pub custom: std::collections::BTreeMap<String, shared::CustomClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    pub context: Context,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimpleResponse {
    pub is_authorized: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
}

/// What API Gateway receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AuthorizerResponse {
    Policy(PolicyResponse),
    Simple(SimpleResponse),
}

/// The parts of an execute-api ARN: `{prefix}/{stage}/{METHOD}/{path}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodArn<'a> {
    /// `arn:{partition}:execute-api:{region}:{account}:{api-id}`.
    pub prefix: &'a str,
    pub stage: &'a str,
    /// `{METHOD}/{path}`.
    pub resource: &'a str,
}

impl<'a> MethodArn<'a> {
    pub fn parse(arn: &'a str) -> Option<Self> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("execute-api"), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let rest = parts.next()?;
        let mut pieces = rest.splitn(3, '/');
        let (api, stage, resource) = (pieces.next()?, pieces.next()?, pieces.next()?);
        if [partition, region, account, api, stage, resource]
            .iter()
            .any(|p| p.is_empty())
        {
            return None;
        }
        let prefix_len = arn.len() - rest.len() + api.len();
        Some(Self {
            prefix: &arn[..prefix_len],
            stage,
            resource,
        })
    }

    /// The ARN of `resource` (`METHOD/path` pattern) on this API and stage.
    pub fn on_stage(&self, resource: &str) -> String {
        format!("{}/{}/{}", self.prefix, self.stage, resource)
    }
}

/// `AUTHORIZER_V2_RESPONSE`. API Gateway caches an authorizer's answer per token and reuses it
/// on every route. A policy names every route, so it stays right; a simple answer is a yes or
/// no for the route first asked about. Without rules that answer is the same everywhere; with
/// rules it is not, so simple answers need an explicit opt-in that says caching must be off.
fn v2_response_from_env(env: &dyn Env, has_rules: bool) -> Result<V2Response, ConfigError> {
    const VARIABLE: &str = "AUTHORIZER_V2_RESPONSE";
    let value = config::optional(env, VARIABLE).map(|v| v.trim().to_ascii_lowercase());
    match (value.as_deref(), has_rules) {
        (None, false) => Ok(V2Response::Simple),
        (None, true) | (Some(V2_IAM), _) => Ok(V2Response::Iam),
        (Some(V2_SIMPLE), false) | (Some(V2_SIMPLE_UNCACHED), _) => Ok(V2Response::Simple),
        (Some(V2_SIMPLE), true) => Err(ConfigError::new(
            VARIABLE,
            format!(
                "simple responses with AUTHORIZER_RULES would let API Gateway's per-token cache \
                 reuse one route's yes on every route (an admin route included); use {V2_IAM} \
                 (the default with rules), or {V2_SIMPLE_UNCACHED} if the authorizer's result \
                 cache is off"
            ),
        )),
        (Some(other), _) => Err(ConfigError::new(
            VARIABLE,
            format!("must be {V2_SIMPLE}, {V2_IAM} or {V2_SIMPLE_UNCACHED}, got {other:?}"),
        )),
    }
}

/// Route ARN resources (after the stage) that name no concrete request path: HTTP API's
/// catch-all route, and route keys with path templates such as `ANY /{proxy+}`.
const NOT_CONCRETE_ROUTES: [&str; 2] = ["$default", "*{*"];

/// The event shapes, told apart by content.
enum Incoming {
    Token(ApiGatewayCustomAuthorizerRequest),
    Request(Box<ApiGatewayCustomAuthorizerRequestTypeRequest>),
    V2(Box<ApiGatewayV2CustomAuthorizerV2Request>),
}

impl Incoming {
    fn parse(event: Value) -> Result<Self, &'static str> {
        let is_v2 = event.get("version").and_then(Value::as_str) == Some("2.0")
            && event.get("routeArn").is_some();
        let kind = event.get("type").and_then(Value::as_str);
        if is_v2 {
            return serde_json::from_value(event)
                .map(|e| Incoming::V2(Box::new(e)))
                .map_err(|_| "malformed_event");
        }
        match kind {
            Some("TOKEN") => serde_json::from_value(event)
                .map(Incoming::Token)
                .map_err(|_| "malformed_event"),
            Some("REQUEST") => serde_json::from_value(event)
                .map(|e| Incoming::Request(Box::new(e)))
                .map_err(|_| "malformed_event"),
            _ => Err("unknown_event"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Incoming::Token(_) => "token",
            Incoming::Request(_) => "request",
            Incoming::V2(_) => "v2",
        }
    }

    fn arn(&self) -> Option<&str> {
        match self {
            Incoming::Token(e) => e.method_arn.as_deref(),
            Incoming::Request(e) => e.method_arn.as_deref(),
            Incoming::V2(e) => e.route_arn.as_deref(),
        }
    }

    fn token(&self) -> Option<&str> {
        fn from_headers(headers: &HeaderMap) -> Option<&str> {
            headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token)
        }
        match self {
            Incoming::Token(e) => e.authorization_token.as_deref().and_then(bearer_token),
            Incoming::Request(e) => from_headers(&e.headers),
            Incoming::V2(e) => from_headers(&e.headers).or_else(|| {
                e.identity_source
                    .iter()
                    .flatten()
                    .find_map(|s| bearer_token(s))
            }),
        }
    }
}

type Decided = (&'static str, bool, AuthorizerResponse);
type Refused = (&'static str, &'static str);

/// The authorizer's state, built once at cold start.
#[derive(Debug, Clone)]
pub struct Authorizer {
    verifier: TokenVerifier,
    rules: Option<Rules>,
    v2_response: V2Response,
}

impl Authorizer {
    pub fn new(verifier: TokenVerifier, rules: Option<Rules>, v2_response: V2Response) -> Self {
        Self {
            verifier,
            rules,
            v2_response,
        }
    }

    /// Reads `JWT_PUBLIC_KEYS` or `JWT_SECRET`, `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `AUTHORIZER_RULES`, `AUTHORIZER_V2_RESPONSE` and `AUTHORIZER_TOKEN_CACHE`.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let cache = config::number(
            env,
            "AUTHORIZER_TOKEN_CACHE",
            DEFAULT_TOKEN_CACHE as u64,
            0,
            65_536,
        )?;
        // At most 65 536: fits in usize everywhere.
        let verifier = config::verifier_from_env(env, None)?.with_cache(cache as usize);
        let rules = config::optional(env, "AUTHORIZER_RULES")
            .map(|json| Rules::parse(&json))
            .transpose()?;
        let v2_response = v2_response_from_env(env, rules.is_some())?;
        Ok(Self::new(verifier, rules, v2_response))
    }

    /// [`Authorizer::from_env`] for the stateless binary, which cannot check sessions: with
    /// `AUTHORIZER_CHECK_SESSION=true` it refuses to start rather than silently not check.
    pub fn stateless_from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        if SessionCheckSettings::from_env(env)?.enabled {
            return Err(ConfigError::new(
                "AUTHORIZER_CHECK_SESSION",
                "this is the stateless authorizer, which reads no table; session checks need \
                 the session-authorizer binary (template.yaml parameter CheckSessions=true)",
            ));
        }
        Self::from_env(env)
    }

    /// The Lambda entry point.
    pub async fn handle(
        &self,
        event: LambdaEvent<Value>,
    ) -> Result<AuthorizerResponse, Unauthorized> {
        self.decide(event.payload)
    }

    /// Decides one event, and logs the decision (never the token).
    pub fn decide(&self, event: Value) -> Result<AuthorizerResponse, Unauthorized> {
        let started = Instant::now();
        let outcome = self
            .verified(event)
            .and_then(|(incoming, claims)| self.respond(&incoming, claims));
        log_decision(&outcome, started);
        outcome.map(|(_, _, r)| r).map_err(|_| Unauthorized)
    }

    /// [`Authorizer::decide`], then the token's session checked with `lookup` (answers kept by
    /// `check`): a token without a session, or whose session has ended, is refused; a lookup
    /// that fails or times out refuses too ([`Refusal::Unavailable`]).
    pub async fn decide_checked<L: SessionLookup>(
        &self,
        event: Value,
        check: &SessionCheck,
        lookup: &L,
    ) -> Result<AuthorizerResponse, Refusal> {
        let started = Instant::now();
        let (incoming, claims) = match self.verified(event) {
            Ok(verified) => verified,
            Err(refused) => {
                log_decision(&Err(refused), started);
                return Err(Refusal::Unauthorized);
            }
        };
        let kind = incoming.kind();
        let standing = if claims.principal() == Some(Principal::Client) {
            // A machine client's token has no session: its client must still exist, enabled.
            check.client_standing(lookup, &claims.sub).await
        } else {
            let Some(sid) = claims.sid.as_deref() else {
                log_decision(&Err((kind, "no_session_claim")), started);
                return Err(Refusal::Unauthorized);
            };
            check.standing(lookup, &claims, sid).await
        };
        match standing {
            Ok((Standing::Live, cached)) => {
                let outcome = self.respond(&incoming, claims);
                tracing::debug!(session_cached = cached, "session live");
                log_decision(&outcome, started);
                outcome
                    .map(|(_, _, r)| r)
                    .map_err(|_| Refusal::Unauthorized)
            }
            Ok((Standing::Ended(reason), _)) => {
                log_decision(&Err((kind, reason)), started);
                Err(Refusal::Unauthorized)
            }
            Err(e) => {
                count_decision(
                    "unavailable",
                    "session_check_failed",
                    started.elapsed().as_secs_f64() * 1e6,
                );
                tracing::error!(
                    decision = "unavailable",
                    reason = "session_check_failed",
                    event = kind,
                    sub = claims.sub,
                    error = %shared::error_chain(&e),
                    latency_us = started.elapsed().as_secs_f64() * 1e6,
                    "authorizer decision"
                );
                Err(Refusal::Unavailable)
            }
        }
    }

    /// The event's kind and verified claims, or why it is refused.
    fn verified(&self, event: Value) -> Result<(Incoming, AccessClaims), Refused> {
        let incoming = Incoming::parse(event).map_err(|reason| ("unknown", reason))?;
        let kind = incoming.kind();
        let arn_text = incoming.arn().ok_or((kind, "missing_arn"))?;
        MethodArn::parse(arn_text).ok_or((kind, "malformed_arn"))?;
        let token = incoming.token().ok_or((kind, "no_bearer_token"))?;
        let claims = self.verifier.verify(token).map_err(|e| (kind, e.code()))?;
        Ok((incoming, claims))
    }

    /// The answer for a verified token: `(event kind, allowed here, response)`.
    fn respond(&self, incoming: &Incoming, claims: AccessClaims) -> Result<Decided, Refused> {
        let kind = incoming.kind();
        let arn_text = incoming.arn().ok_or((kind, "missing_arn"))?;
        let arn = MethodArn::parse(arn_text).ok_or((kind, "malformed_arn"))?;
        let policy = self.policy_for(&claims, &arn);
        let allowed = policy.evaluate(arn_text) == Some(Effect::Allow);
        let context = Context {
            principal: claims.principal().unwrap_or(Principal::User).as_str(),
            sub: claims.sub.clone(),
            email: claims.email.clone(),
            roles: claims.roles.join(","),
            exp: claims.exp,
            email_verified: claims.email_verified,
            sid: claims.sid.clone(),
            amr: claims.amr.join(","),
            client_id: claims.client_id.clone(),
            scope: claims.scope.clone().unwrap_or_default(),
            custom: claims.custom.clone(),
        };
        let response = match (incoming, self.v2_response) {
            (Incoming::V2(_), V2Response::Simple) => AuthorizerResponse::Simple(SimpleResponse {
                is_authorized: allowed,
                context: allowed.then_some(context),
            }),
            _ => AuthorizerResponse::Policy(PolicyResponse {
                principal_id: claims.sub,
                policy_document: policy,
                context,
            }),
        };
        Ok((kind, allowed, response))
    }

    /// Everything the token may reach on this API and stage, independent of the route asked
    /// for: API Gateway caches this answer per token and reuses it for other routes.
    ///
    /// `{stage}/*` covers every route ARN: `{stage}/GET/items` and HTTP API's catch-all
    /// `{stage}/$default` alike (`{stage}/*/*` would miss the latter, which has no second
    /// slash). A route ARN that names no concrete path (the `$default` route, or a route key
    /// with `{param}` templates) cannot be judged by path rules, so with rules such ARNs are
    /// denied to any token that fails one of them.
    fn policy_for(&self, claims: &AccessClaims, arn: &MethodArn<'_>) -> PolicyDocument {
        let Some(rules) = &self.rules else {
            return PolicyDocument::new(vec![Statement {
                action: INVOKE,
                effect: Effect::Allow,
                resource: vec![arn.on_stage("*")],
            }]);
        };
        let holder = Holder {
            roles: &claims.roles,
            scope: claims.scope.as_deref().unwrap_or(""),
            email_verified: claims.email_verified,
            mfa: claims.used_mfa(),
        };
        let (admitted, refused): (Vec<_>, Vec<_>) =
            rules.iter().partition(|rule| rule.admits(&holder));
        let mut denied: Vec<String> = refused.iter().map(|r| arn.on_stage(&r.resource)).collect();
        if !denied.is_empty() {
            denied.extend(NOT_CONCRETE_ROUTES.iter().map(|r| arn.on_stage(r)));
        }
        let allowed: Vec<String> = admitted.iter().map(|r| arn.on_stage(&r.resource)).collect();
        let statement = [(Effect::Allow, allowed), (Effect::Deny, denied)]
            .into_iter()
            .filter(|(_, resources)| !resources.is_empty())
            .map(|(effect, resource)| Statement {
                action: INVOKE,
                effect,
                resource,
            })
            .collect();
        PolicyDocument::new(statement)
    }
}

/// Logs one decision (never the token), and counts it in the metrics.
fn log_decision(outcome: &Result<Decided, Refused>, started: Instant) {
    let latency_us = started.elapsed().as_secs_f64() * 1e6;
    let (decision, reason) = match outcome {
        Ok((_, true, _)) => ("allow", "token_valid"),
        Ok((_, false, _)) => ("deny", "role_refused"),
        Err((_, reason)) => ("unauthorized", *reason),
    };
    count_decision(decision, reason, latency_us);
    match outcome {
        Ok((kind, allowed, response)) => {
            let sub = match response {
                AuthorizerResponse::Policy(p) => Some(p.principal_id.as_str()),
                AuthorizerResponse::Simple(s) => s.context.as_ref().map(|c| c.sub.as_str()),
            };
            tracing::info!(
                decision = if *allowed { "allow" } else { "deny" },
                reason = if *allowed {
                    "token_valid"
                } else {
                    "role_refused"
                },
                sub,
                event = kind,
                latency_us,
                "authorizer decision"
            );
        }
        Err((kind, reason)) => {
            tracing::info!(
                decision = "unauthorized",
                reason = *reason,
                event = *kind,
                latency_us,
                "authorizer decision"
            );
        }
    }
}

/// One decision in the metrics: `Decisions` by decision and reason, and its latency.
fn count_decision(decision: &str, reason: &str, latency_us: f64) {
    use shared::metrics::Metric;
    shared::metrics::emit(
        &[("Decision", decision), ("Reason", reason)],
        &[
            (Metric::Decisions, 1.0),
            (Metric::DecisionLatency, latency_us),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_arns_split_into_prefix_stage_and_resource() {
        let arn =
            MethodArn::parse("arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/a/b")
                .unwrap();
        assert_eq!(
            arn.prefix,
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123"
        );
        assert_eq!(arn.stage, "prod");
        assert_eq!(arn.resource, "GET/a/b");
        assert_eq!(
            arn.on_stage("*"),
            "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/*"
        );
        let cn =
            MethodArn::parse("arn:aws-cn:execute-api:cn-north-1:1:api/$default/POST/").unwrap();
        assert_eq!(cn.stage, "$default");
        assert_eq!(cn.resource, "POST/");
    }

    #[test]
    fn foreign_or_truncated_arns_are_refused() {
        for bad in [
            "",
            "arn:aws:lambda:us-east-1:1:function:f",
            "arn:aws:execute-api:us-east-1:1:api",
            "arn:aws:execute-api:us-east-1:1:api/prod",
            "arn:aws:execute-api::1:api/prod/GET/",
            "not an arn",
        ] {
            assert!(MethodArn::parse(bad).is_none(), "{bad:?}");
        }
    }

    fn env(
        extra: &[(&'static str, &'static str)],
    ) -> std::collections::HashMap<&'static str, &'static str> {
        let mut env = std::collections::HashMap::from([
            ("JWT_ISSUER", "https://auth.example"),
            ("JWT_AUDIENCE", "api"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]);
        env.extend(extra.iter().copied());
        env
    }

    #[test]
    fn misconfiguration_fails_the_cold_start_naming_the_variable() {
        assert!(Authorizer::from_env(&env(&[])).is_ok());
        let bad_rules = Authorizer::from_env(&env(&[("AUTHORIZER_RULES", "{\"GET\": 1}")]));
        assert_eq!(bad_rules.unwrap_err().variable, "AUTHORIZER_RULES");
        let bad_mode = Authorizer::from_env(&env(&[("AUTHORIZER_V2_RESPONSE", "both")]));
        assert_eq!(bad_mode.unwrap_err().variable, "AUTHORIZER_V2_RESPONSE");
        let rules = ("AUTHORIZER_RULES", r#"{"GET /admin/*": ["admin"]}"#);
        let unsafe_simple =
            Authorizer::from_env(&env(&[rules, ("AUTHORIZER_V2_RESPONSE", "simple")]));
        let err = unsafe_simple.unwrap_err();
        assert_eq!(err.variable, "AUTHORIZER_V2_RESPONSE");
        assert!(
            err.problem.contains("simple-with-caching-off"),
            "{}",
            err.problem
        );
        let mut no_keys = env(&[]);
        no_keys.remove("JWT_SECRET");
        assert_eq!(
            Authorizer::from_env(&no_keys).unwrap_err().variable,
            "JWT_PUBLIC_KEYS"
        );
        let bad_jwks = env(&[("JWT_PUBLIC_KEYS", "{\"keys\": []}")]);
        let mut bad_jwks = bad_jwks;
        bad_jwks.remove("JWT_SECRET");
        assert_eq!(
            Authorizer::from_env(&bad_jwks).unwrap_err().variable,
            "JWT_PUBLIC_KEYS"
        );
    }

    #[test]
    fn the_error_payload_is_exactly_unauthorized() {
        let d = Diagnostic::from(Unauthorized);
        assert_eq!(d.error_message, "Unauthorized");
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"errorType":"Unauthorized","errorMessage":"Unauthorized"}"#
        );
    }
}
