//! The API Gateway-like front: HTTP request → REST API event → the real handlers → HTTP
//! response, with the real authorizer in front of protected routes and its answers cached per
//! token as API Gateway does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accounts::mail::MailDelivery;
use accounts::store::Store;
use auth_api::App;
use authorizer::policy::Effect;
use authorizer::session::SessionCheck;
use authorizer::{Authorizer, AuthorizerResponse, PolicyResponse, Refusal};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use lambda_http::Body;
use serde_json::{Map, Value, json};
use session_authorizer::StoreLookup;

use crate::hosts::LocalHosts;
use crate::jwt::{JwtAuthorizer, JwtContext, JwtRefusal};
use crate::template::{ApiKind, GatewayResponses, GatewaySpec, HeaderSource, RouteSpec};

/// The account, region and API id local ARNs are made of.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const API_ID: &str = "local";

/// API Gateway refuses larger payloads (10 MB).
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// How the authorizer step went, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    Public,
    Allow,
    CachedAllow,
    Deny,
    CachedDeny,
    Unauthorized,
    /// The authorizer could not decide (a session check failed).
    Failed,
}

impl AuthDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthDecision::Public => "public",
            AuthDecision::Allow => "allow",
            AuthDecision::CachedAllow => "allow (cached)",
            AuthDecision::Deny => "deny",
            AuthDecision::CachedDeny => "deny (cached)",
            AuthDecision::Unauthorized => "unauthorized",
            AuthDecision::Failed => "failed",
        }
    }
}

struct Cached {
    until: Instant,
    policy: PolicyResponse,
}

pub struct Gateway<S> {
    spec: GatewaySpec,
    /// The template's gateway responses, as deployed with local-api's parameters.
    responses: GatewayResponses,
    app: App<S>,
    authorizer: Authorizer,
    /// Session checks (`AUTHORIZER_CHECK_SESSION`), against the app's own store.
    session_check: Option<SessionCheck>,
    /// An HTTP API's built-in JWT authorizer.
    jwt: Option<JwtAuthorizer>,
    cache: Mutex<HashMap<String, Cached>>,
    authorizer_calls: AtomicU64,
    /// The `Host` names local-api's own outbox answers under.
    local_hosts: LocalHosts,
}

/// Why the authorizer step let nothing through.
enum Refused {
    /// The authorizer's 401.
    Unauthorized,
    /// The authorizer failed (a session check could not be made): API Gateway's
    /// `AUTHORIZER_CONFIGURATION_ERROR`, not cached.
    Failed,
}

/// A request as it arrives over HTTP.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: SocketAddr,
}

/// local-api's own route: the mail it kept instead of sending. Not in template.yaml: a
/// deployed API has no such route.
pub const OUTBOX_PATH: &str = "/_local/outbox";

/// local-api's own route: the lifecycle events its changes emitted, oldest first, as a
/// deployment delivers them (accounts::model::event). Not in template.yaml either.
pub const EVENTS_PATH: &str = "/_local/events";

impl<S: Store> Gateway<S> {
    pub fn new(
        spec: GatewaySpec,
        responses: GatewayResponses,
        app: App<S>,
        authorizer: Authorizer,
        session_check: Option<SessionCheck>,
        jwt: Option<JwtAuthorizer>,
    ) -> Self {
        Self {
            spec,
            responses,
            app,
            authorizer,
            session_check,
            jwt,
            cache: Mutex::new(HashMap::new()),
            authorizer_calls: AtomicU64::new(0),
            local_hosts: LocalHosts::default(),
        }
    }

    /// Answers the outbox only under these `Host` names (the listen address and localhost).
    pub fn set_local_hosts(&mut self, hosts: LocalHosts) {
        self.local_hosts = hosts;
    }

    /// An answer API Gateway gives itself: `kind` is its gateway response type, whose headers
    /// (and status, if set) the template's `GatewayResponses` decide.
    fn gateway_error(
        &self,
        kind: &str,
        status: StatusCode,
        error_type: &str,
        message: &str,
        request: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(
            json!({"message": message}).to_string(),
        )));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(error_type) {
            headers.insert("x-amzn-errortype", v);
        }
        if let Some(custom) = self.responses.get(kind, status.as_u16()) {
            if let Some(code) = custom.status.and_then(|c| StatusCode::from_u16(c).ok()) {
                *response.status_mut() = code;
            }
            for (name, source) in &custom.headers {
                let value = match source {
                    HeaderSource::Static(text) => HeaderValue::from_str(text).ok(),
                    HeaderSource::RequestHeader(header) => request.get(header.as_str()).cloned(),
                };
                if let (Ok(name), Some(value)) = (http::HeaderName::try_from(name.as_str()), value)
                {
                    response.headers_mut().insert(name, value);
                }
            }
        }
        response
    }

    /// The auth-api behind the gateway.
    pub fn app(&self) -> &App<S> {
        &self.app
    }

    /// Its store (what auth-admin would change).
    pub fn store(&self) -> &S {
        &self.app.accounts.store
    }

    /// How many times the authorizer has been invoked (cache hits do not count).
    pub fn authorizer_calls(&self) -> u64 {
        self.authorizer_calls.load(Ordering::Relaxed)
    }

    fn method_arn(&self, method: &str, path: &str) -> String {
        format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{}/{method}{path}",
            self.spec.stage
        )
    }

    /// The authorizer's policy for this token: from the cache while fresh, else a new call.
    async fn authorize(&self, token: &str, arn: &str) -> Result<(PolicyResponse, bool), Refused> {
        let ttl = Duration::from_secs(self.spec.authorizer_ttl);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|_, c| c.until > Instant::now());
            if let Some(hit) = cache.get(token) {
                return Ok((hit.policy.clone(), true));
            }
        }
        self.authorizer_calls.fetch_add(1, Ordering::Relaxed);
        let event = json!({"type": "TOKEN", "authorizationToken": token, "methodArn": arn});
        let decided = match &self.session_check {
            None => self
                .authorizer
                .decide(event)
                .map_err(|_| Refused::Unauthorized),
            Some(check) => {
                let lookup = StoreLookup {
                    store: &self.app.accounts.store,
                    sessions: self.app.accounts.sessions,
                    clock: self.app.accounts.clock.as_ref(),
                };
                Box::pin(self.authorizer.decide_checked(event, check, &lookup))
                    .await
                    .map_err(|refusal| match refusal {
                        Refusal::Unauthorized => Refused::Unauthorized,
                        Refusal::Unavailable => Refused::Failed,
                    })
            }
        };
        match decided {
            Ok(AuthorizerResponse::Policy(policy)) => {
                if !ttl.is_zero() {
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    cache.insert(
                        token.to_owned(),
                        Cached {
                            until: Instant::now() + ttl,
                            policy: policy.clone(),
                        },
                    );
                }
                Ok((policy, false))
            }
            // A TOKEN event is always answered with a policy; anything else is a refusal.
            Ok(AuthorizerResponse::Simple(_)) => Err(Refused::Unauthorized),
            Err(refused) => Err(refused),
        }
    }

    /// The authorizer context the integration of a protected REST route `method` `path`
    /// gets for the `Authorization` header `token` (the authorizer's own context, the token's claims among it, and the
    /// `principalId`), or `None` when the authorizer refuses: what a backend behind this
    /// gateway would read.
    pub async fn authorizer_context(&self, token: &str, method: &str, path: &str) -> Option<Value> {
        let arn = self.method_arn(method, path);
        let (policy, _) = self.authorize(token, &arn).await.ok()?;
        (policy.policy_document.evaluate(&arn) == Some(Effect::Allow))
            .then(|| integration_context(&policy))
    }

    /// Answers one request, with what the access log should say of the authorizer.
    pub async fn handle(&self, req: HttpRequest) -> (Response<Full<Bytes>>, AuthDecision) {
        if req.body.len() > MAX_PAYLOAD {
            return (
                self.gateway_error(
                    "REQUEST_TOO_LARGE",
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLarge",
                    "Request Too Long",
                    &req.headers,
                ),
                AuthDecision::Public,
            );
        }
        if req.path == OUTBOX_PATH
            && req.method == "GET"
            && let MailDelivery::Outbox(outbox) = &self.app.accounts.recovery.mail
        {
            let host = req.headers.get(HOST).and_then(|h| h.to_str().ok());
            if !self.local_hosts.allows(host) {
                // Every reset link is in there: not for a page that rebound its name here.
                let mut response = Response::new(Full::new(Bytes::from_static(
                    b"misdirected: the outbox answers only under the address local-api \
                      listens on, or localhost\n",
                )));
                *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                return (response, AuthDecision::Public);
            }
            let mut response = Response::new(Full::new(Bytes::from(
                serde_json::to_string(&outbox.sent()).unwrap_or_else(|_| "[]".to_owned()),
            )));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return (response, AuthDecision::Public);
        }
        if req.path == EVENTS_PATH && req.method == "GET" {
            let host = req.headers.get(HOST).and_then(|h| h.to_str().ok());
            let (status, body) = if !self.local_hosts.allows(host) {
                (
                    StatusCode::MISDIRECTED_REQUEST,
                    r#"{"message":"the events answer only under the address local-api listens on, or localhost"}"#
                        .to_owned(),
                )
            } else {
                match self.app.accounts.store.all_events().await {
                    Ok(events) => (
                        StatusCode::OK,
                        serde_json::Value::Array(events.iter().map(|e| e.envelope()).collect())
                            .to_string(),
                    ),
                    Err(err) => {
                        tracing::error!(error = %shared::error_chain(&err), "listing the events failed");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            r#"{"message":"the store is unavailable"}"#.to_owned(),
                        )
                    }
                }
            };
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return (response, AuthDecision::Public);
        }
        let Some((route, path_parameters)) = self.spec.route(&req.method, &req.path) else {
            if self.spec.kind == ApiKind::Http {
                // What an HTTP API answers for a route it does not have.
                let mut response =
                    Response::new(Full::new(Bytes::from_static(br#"{"message":"Not Found"}"#)));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                return (response, AuthDecision::Public);
            }
            // What a REST API answers for a resource or method it does not have.
            return (
                self.gateway_error(
                    "MISSING_AUTHENTICATION_TOKEN",
                    StatusCode::FORBIDDEN,
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token",
                    &req.headers,
                ),
                AuthDecision::Public,
            );
        };
        if self.spec.kind == ApiKind::Http {
            return self.handle_http(&req, route, &path_parameters).await;
        }
        let arn = self.method_arn(&req.method, &req.path);
        let mut authorizer_context = None;
        let mut decision = AuthDecision::Public;
        if route.protected {
            let unauthorized = || {
                self.gateway_error(
                    "UNAUTHORIZED",
                    StatusCode::UNAUTHORIZED,
                    "UnauthorizedException",
                    "Unauthorized",
                    &req.headers,
                )
            };
            let token = req
                .headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.trim().is_empty());
            // API Gateway answers 401 itself, without calling the authorizer, when the
            // identity source is absent.
            let Some(token) = token else {
                return (unauthorized(), AuthDecision::Unauthorized);
            };
            let (policy, cached) = match self.authorize(token, &arn).await {
                Ok(found) => found,
                Err(Refused::Unauthorized) => {
                    return (unauthorized(), AuthDecision::Unauthorized);
                }
                Err(Refused::Failed) => {
                    return (
                        self.gateway_error(
                            "AUTHORIZER_CONFIGURATION_ERROR",
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "AuthorizerConfigurationException",
                            "Service Unavailable",
                            &req.headers,
                        ),
                        AuthDecision::Failed,
                    );
                }
            };
            match policy.policy_document.evaluate(&arn) {
                Some(Effect::Allow) => {
                    decision = if cached {
                        AuthDecision::CachedAllow
                    } else {
                        AuthDecision::Allow
                    };
                    authorizer_context = Some(integration_context(&policy));
                }
                effect => {
                    let decision = if cached {
                        AuthDecision::CachedDeny
                    } else {
                        AuthDecision::Deny
                    };
                    let message = if effect == Some(Effect::Deny) {
                        "User is not authorized to access this resource with an explicit deny"
                    } else {
                        "User is not authorized to access this resource"
                    };
                    return (
                        self.gateway_error(
                            "ACCESS_DENIED",
                            StatusCode::FORBIDDEN,
                            "AccessDeniedException",
                            message,
                            &req.headers,
                        ),
                        decision,
                    );
                }
            }
        }
        let event = self.rest_event(&req, &route.path, &path_parameters, authorizer_context);
        (self.invoke(event, &req.headers).await, decision)
    }

    /// An HTTP API request: the JWT authorizer (if the route is protected), then a payload
    /// 2.0 event.
    async fn handle_http(
        &self,
        req: &HttpRequest,
        route: &RouteSpec,
        path_parameters: &[(String, String)],
    ) -> (Response<Full<Bytes>>, AuthDecision) {
        let mut jwt = None;
        let mut decision = AuthDecision::Public;
        if route.protected {
            let Some(authorizer) = &self.jwt else {
                return (
                    http_api_refusal(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                        None,
                    ),
                    AuthDecision::Failed,
                );
            };
            let header = req.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
            match authorizer.authorize(header, &route.scopes).await {
                Ok(context) => {
                    decision = AuthDecision::Allow;
                    jwt = Some(context);
                }
                Err(JwtRefusal::Unauthorized(why)) => {
                    tracing::info!(reason = %why, "JWT authorizer refused the token");
                    let challenge =
                        format!("Bearer error=\"invalid_token\" error_description=\"{why}\"");
                    return (
                        http_api_refusal(
                            StatusCode::UNAUTHORIZED,
                            "Unauthorized",
                            Some(&challenge),
                        ),
                        AuthDecision::Unauthorized,
                    );
                }
                Err(JwtRefusal::InsufficientScope) => {
                    let challenge = format!(
                        "Bearer scope=\"{}\" error=\"insufficient_scope\"",
                        route.scopes.join(" ")
                    );
                    return (
                        http_api_refusal(StatusCode::FORBIDDEN, "Forbidden", Some(&challenge)),
                        AuthDecision::Deny,
                    );
                }
            }
        }
        let event = self.http_event(req, route, path_parameters, jwt);
        (self.invoke(event, &req.headers).await, decision)
    }

    /// Hands `event` to auth-api as Lambda would.
    async fn invoke(&self, event: Value, request_headers: &HeaderMap) -> Response<Full<Bytes>> {
        // The same entry as in Lambda: events lambda_http cannot convert (a Host header that
        // is not a valid URL authority, a body marked base64 that is not) get a 400 problem.
        let response = match auth_api::http::lambda::request_from_json(&event.to_string()) {
            Ok(request) => self.app.handle(request).await,
            Err(e) => {
                tracing::error!(error = %e, "could not build the Lambda event");
                return self.gateway_error(
                    "INTEGRATION_FAILURE",
                    StatusCode::BAD_GATEWAY,
                    "InternalServerErrorException",
                    "Internal server error",
                    request_headers,
                );
            }
        };
        into_http(response)
    }

    /// The REST API (payload 1.0) proxy event API Gateway would send for `req`.
    fn rest_event(
        &self,
        req: &HttpRequest,
        resource: &str,
        path_parameters: &[(String, String)],
        authorizer: Option<Value>,
    ) -> Value {
        let mut headers = Map::new();
        let mut multi_headers: Map<String, Value> = Map::new();
        for (name, value) in &req.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers.insert(name.as_str().to_owned(), json!(value));
            match multi_headers.get_mut(name.as_str()) {
                Some(Value::Array(values)) => values.push(json!(value)),
                _ => {
                    multi_headers.insert(name.as_str().to_owned(), json!([value]));
                }
            }
        }
        // API Gateway tells the integration the scheme the client used.
        if !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("x-forwarded-proto"))
        {
            headers.insert("X-Forwarded-Proto".into(), json!("http"));
            multi_headers.insert("X-Forwarded-Proto".into(), json!(["http"]));
        }
        let (query, multi_query) = query_maps(req.query.as_deref());
        let (body, is_base64) = if req.body.is_empty() {
            (Value::Null, false)
        } else {
            match std::str::from_utf8(&req.body) {
                Ok(text) => (json!(text), false),
                Err(_) => (json!(STANDARD.encode(&req.body)), true),
            }
        };
        let now = time::OffsetDateTime::now_utc();
        let mut context = json!({
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": req.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": API_ID,
            "extendedRequestId": uuid::Uuid::new_v4().to_string(),
            "httpMethod": req.method,
            "identity": {"sourceIp": req.source_ip.ip().to_string(),
                         "userAgent": req.headers.get("user-agent").and_then(|h| h.to_str().ok())},
            "path": format!("/{}{}", self.spec.stage, req.path),
            "protocol": "HTTP/1.1",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "requestTimeEpoch": now.unix_timestamp() * 1000 + i64::from(now.millisecond()),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": self.spec.stage,
        });
        if let Some(authorizer) = authorizer {
            context["authorizer"] = authorizer;
        }
        let path_parameters = if path_parameters.is_empty() {
            Value::Null
        } else {
            Value::Object(
                path_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(percent_decode(v))))
                    .collect(),
            )
        };
        json!({
            "resource": resource,
            "path": req.path,
            "httpMethod": req.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": path_parameters,
            "stageVariables": null,
            "requestContext": context,
            "body": body,
            "isBase64Encoded": is_base64,
        })
    }
}

/// `?a=1&a=2&b` as API Gateway's single- and multi-value maps (last value wins in the first).
impl<S: Store> Gateway<S> {
    /// The HTTP API (payload 2.0) event API Gateway would send for `req`.
    fn http_event(
        &self,
        req: &HttpRequest,
        route: &RouteSpec,
        path_parameters: &[(String, String)],
        jwt: Option<JwtContext>,
    ) -> Value {
        let mut headers: Map<String, Value> = Map::new();
        let mut cookies = Vec::new();
        for (name, value) in &req.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if name == http::header::COOKIE {
                cookies.extend(value.split(';').map(|c| json!(c.trim())));
                continue;
            }
            // Payload 2.0: one lower-case key per header, repeated values comma-joined.
            match headers.get_mut(name.as_str()) {
                Some(Value::String(joined)) => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), json!(value));
                }
            }
        }
        headers
            .entry("x-forwarded-proto")
            .or_insert_with(|| json!("http"));
        headers
            .entry("x-forwarded-for")
            .or_insert_with(|| json!(req.source_ip.ip().to_string()));
        let (query, multi_query) = query_maps(req.query.as_deref());
        let query = match multi_query {
            Value::Object(multi) => Value::Object(
                multi
                    .into_iter()
                    .map(|(k, v)| {
                        let values: Vec<&str> = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        (k, json!(values.join(",")))
                    })
                    .collect(),
            ),
            _ => query,
        };
        let (body, is_base64) = if req.body.is_empty() {
            (Value::Null, false)
        } else {
            match std::str::from_utf8(&req.body) {
                Ok(text) => (json!(text), false),
                Err(_) => (json!(STANDARD.encode(&req.body)), true),
            }
        };
        let route_key = format!("{} {}", route.method, route.path);
        let raw_path = if self.spec.stage == "$default" {
            req.path.clone()
        } else {
            format!("/{}{}", self.spec.stage, req.path)
        };
        let now = time::OffsetDateTime::now_utc();
        let mut context = json!({
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": req.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "domainPrefix": API_ID,
            "http": {
                "method": req.method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip.ip().to_string(),
                "userAgent": req.headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": self.spec.stage,
            "timeEpoch": now.unix_timestamp() * 1000 + i64::from(now.millisecond()),
        });
        if let Some(jwt) = jwt {
            context["authorizer"] = json!({"jwt": {"claims": jwt.claims, "scopes": jwt.scopes}});
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": raw_path,
            "rawQueryString": req.query.clone().unwrap_or_default(),
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": is_base64,
        });
        if !cookies.is_empty() {
            event["cookies"] = json!(cookies);
        }
        if !query.is_null() {
            event["queryStringParameters"] = query;
        }
        if !path_parameters.is_empty() {
            event["pathParameters"] = Value::Object(
                path_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(percent_decode(v))))
                    .collect(),
            );
        }
        if !body.is_null() {
            event["body"] = body;
        }
        event
    }
}

/// An HTTP API's own refusal: `{"message": …}`, with a `WWW-Authenticate` challenge.
fn http_api_refusal(
    status: StatusCode,
    message: &str,
    challenge: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        json!({"message": message}).to_string(),
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(http::header::WWW_AUTHENTICATE, value);
    }
    response
}

fn query_maps(query: Option<&str>) -> (Value, Value) {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return (Value::Null, Value::Null);
    };
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        single.insert(k.clone(), json!(v));
        match multi.get_mut(&k) {
            Some(Value::Array(values)) => values.push(json!(v)),
            _ => {
                multi.insert(k, json!([v]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Lambda proxy response back to HTTP: status, every header value, text or binary body.
fn into_http(response: lambda_http::Response<Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(data) => Bytes::from(data),
        _ => Bytes::new(),
    };
    let mut out = Response::new(Full::new(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

/// The `requestContext.authorizer` of an allowed request: the policy's context, flat, with
/// its `principalId`.
fn integration_context(policy: &PolicyResponse) -> Value {
    let mut context = match serde_json::to_value(&policy.context) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    context.insert("principalId".into(), json!(policy.principal_id));
    Value::Object(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_become_single_and_multi_value_maps() {
        let (single, multi) = query_maps(Some("a=1&a=2&b=x%20y&c"));
        assert_eq!(single, json!({"a": "2", "b": "x y", "c": ""}));
        assert_eq!(multi, json!({"a": ["1", "2"], "b": ["x y"], "c": [""]}));
        assert_eq!(query_maps(None), (Value::Null, Value::Null));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
