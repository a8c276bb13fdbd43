//! Reads the routes, their protection and the authorizer cache TTL from `template.yaml`, the
//! file SAM deploys, so the local gateway cannot drift from the deployed one.

use std::collections::HashMap;

use serde_norway::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template.yaml: {0}")]
pub struct TemplateError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(message.into()))
}

/// One route of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Upper-case HTTP method.
    pub method: String,
    pub path: String,
    /// Whether the authorizer runs before the route.
    pub protected: bool,
    /// HTTP API: the route's `AuthorizationScopes`; the token's `scope` must hold one.
    pub scopes: Vec<String>,
}

/// Which kind of API Gateway API the template deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// `AWS::Serverless::Api`: payload 1.0 events, the Lambda TOKEN authorizer.
    Rest,
    /// `AWS::Serverless::HttpApi`: payload 2.0 events, the built-in JWT authorizer.
    Http,
}

/// A value in the template: literal, or a parameter's (resolved by local-api's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Literal(String),
    Parameter(String),
}

/// An HTTP API's built-in JWT authorizer (`JwtConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthorizerSpec {
    pub issuer: Setting,
    pub audience: Vec<Setting>,
}

/// What local-api needs to know of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySpec {
    pub kind: ApiKind,
    /// The HTTP API's JWT authorizer, if it has one.
    pub jwt: Option<JwtAuthorizerSpec>,
    pub stage: String,
    pub routes: Vec<RouteSpec>,
    /// Seconds an authorizer answer is cached per token (0: off).
    pub authorizer_ttl: u64,
    /// Parameter defaults, by name.
    pub parameters: HashMap<String, String>,
    /// The API's `GatewayResponses`, by type, as written (conditions unresolved).
    gateway_responses: Vec<(String, Value)>,
    /// The template's `Conditions`, by name.
    conditions: HashMap<String, Value>,
}

/// Where a gateway response header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSource {
    /// A static value (`'text'` in the template).
    Static(String),
    /// A request header (`method.request.header.NAME`), absent when the request has none.
    RequestHeader(String),
}

/// One of the API's gateway responses: what API Gateway itself answers with (the
/// authorizer's 401, a Deny's 403, an unknown route, …).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayResponse {
    /// A status that replaces the default one, if set.
    pub status: Option<u16>,
    pub headers: Vec<(String, HeaderSource)>,
}

/// The gateway responses in force, by type (`UNAUTHORIZED`, `DEFAULT_4XX`, …).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayResponses(HashMap<String, GatewayResponse>);

impl GatewayResponses {
    /// The response for `kind` (an API Gateway response type), falling back to
    /// `DEFAULT_4XX`/`DEFAULT_5XX` by `status` as API Gateway does.
    pub fn get(&self, kind: &str, status: u16) -> Option<&GatewayResponse> {
        let default = if status >= 500 {
            "DEFAULT_5XX"
        } else {
            "DEFAULT_4XX"
        };
        self.0.get(kind).or_else(|| self.0.get(default))
    }
}

impl GatewaySpec {
    /// The route for `method` on `path`, with the values of its `{parameters}`. A literal
    /// path wins over a template, as in API Gateway.
    pub fn route(&self, method: &str, path: &str) -> Option<(&RouteSpec, Vec<(String, String)>)> {
        let candidates = self.routes.iter().filter(|r| r.method == method);
        let mut templated = None;
        for route in candidates {
            match path_parameters(&route.path, path) {
                Some(params) if params.is_empty() => return Some((route, params)),
                Some(params) if templated.is_none() => templated = Some((route, params)),
                _ => {}
            }
        }
        templated
    }

    /// The gateway responses as deployed with `parameters` (the defaults, overridden by
    /// these): `Fn::If` on the template's conditions resolved, `AWS::NoValue` dropped.
    pub fn gateway_responses(
        &self,
        parameters: &HashMap<String, String>,
    ) -> Result<GatewayResponses, TemplateError> {
        let mut values = self.parameters.clone();
        values.extend(parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
        let eval = Evaluator {
            parameters: &values,
            conditions: &self.conditions,
        };
        let mut out = HashMap::new();
        for (kind, definition) in &self.gateway_responses {
            let mut response = GatewayResponse::default();
            let Some(fields) = definition.as_mapping() else {
                return err(format!("GatewayResponses.{kind} is not a mapping"));
            };
            for (field, value) in fields {
                match field.as_str() {
                    Some("StatusCode") => {
                        response.status = eval
                            .value(value)?
                            .and_then(|v| scalar(&v, &HashMap::new()))
                            .map(|v| {
                                v.parse().map_err(|_| {
                                    TemplateError(format!(
                                        "GatewayResponses.{kind}.StatusCode is not a status"
                                    ))
                                })
                            })
                            .transpose()?;
                    }
                    Some("ResponseParameters") => {
                        let headers = get(value, "Headers").and_then(Value::as_mapping);
                        for (name, source) in headers.into_iter().flatten() {
                            let Some(name) = name.as_str() else { continue };
                            let Some(source) = eval.value(source)? else {
                                continue;
                            };
                            response
                                .headers
                                .push((name.to_owned(), header_source(kind, name, &source)?));
                        }
                    }
                    other => {
                        return err(format!(
                            "GatewayResponses.{kind}: {} is not modelled by local-api",
                            other.unwrap_or("?")
                        ));
                    }
                }
            }
            out.insert(kind.clone(), response);
        }
        Ok(GatewayResponses(out))
    }
}

fn header_source(kind: &str, name: &str, value: &Value) -> Result<HeaderSource, TemplateError> {
    let Some(text) = value.as_str() else {
        return err(format!(
            "GatewayResponses.{kind}.{name} is not a string after its conditions"
        ));
    };
    if let Some(quoted) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(HeaderSource::Static(quoted.to_owned()));
    }
    if let Some(header) = text.strip_prefix("method.request.header.") {
        return Ok(HeaderSource::RequestHeader(header.to_ascii_lowercase()));
    }
    err(format!(
        "GatewayResponses.{kind}.{name}: {text:?} is neither a 'static' value nor \
         method.request.header.NAME (all local-api models)"
    ))
}

/// Resolves the intrinsics a gateway response may use: `Fn::If` over conditions made of
/// `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition` and `Ref`s to parameters.
struct Evaluator<'a> {
    parameters: &'a HashMap<String, String>,
    conditions: &'a HashMap<String, Value>,
}

/// An intrinsic function as (name without `Fn::`, argument), in short or long form.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            let name = k.strip_prefix("Fn::").unwrap_or(k);
            matches!(
                name,
                "If" | "Equals" | "Not" | "And" | "Or" | "Ref" | "Condition"
            )
            .then(|| (name.to_owned(), v))
        }
        _ => None,
    }
}

impl Evaluator<'_> {
    /// `value` with its intrinsics resolved; `None` for `AWS::NoValue`.
    fn value(&self, value: &Value) -> Result<Option<Value>, TemplateError> {
        match intrinsic(value) {
            Some((name, arg)) if name == "If" => {
                let Some([condition, then, otherwise]) = arg.as_sequence().map(Vec::as_slice)
                else {
                    return err("Fn::If needs [condition, then, else]");
                };
                let Some(condition) = condition.as_str() else {
                    return err("Fn::If names its condition with a string");
                };
                let chosen = if self.condition(condition)? {
                    then
                } else {
                    otherwise
                };
                self.value(chosen)
            }
            Some((name, arg)) if name == "Ref" => match arg.as_str() {
                Some("AWS::NoValue") => Ok(None),
                Some(param) => match self.parameters.get(param) {
                    Some(v) => Ok(Some(Value::String(v.clone()))),
                    None => err(format!("!Ref {param}: no such parameter")),
                },
                None => err("!Ref takes a name"),
            },
            Some((name, _)) => err(format!("Fn::{name} is not modelled here by local-api")),
            None => Ok(Some(value.clone())),
        }
    }

    fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        match self.conditions.get(name) {
            Some(definition) => self.truth(definition),
            None => err(format!("condition {name} is not defined")),
        }
    }

    fn truth(&self, value: &Value) -> Result<bool, TemplateError> {
        let Some((name, arg)) = intrinsic(value) else {
            return err("a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition");
        };
        let items = || arg.as_sequence().map(Vec::as_slice).unwrap_or(&[]);
        match name.as_str() {
            "Equals" => match items() {
                [a, b] => {
                    let text = |v: &Value| -> Result<Option<String>, TemplateError> {
                        Ok(self.value(v)?.and_then(|v| scalar(&v, &HashMap::new())))
                    };
                    Ok(text(a)? == text(b)?)
                }
                _ => err("Fn::Equals takes two values"),
            },
            "Not" => match items() {
                [inner] => Ok(!self.truth(inner)?),
                _ => err("Fn::Not takes one condition"),
            },
            "And" => items()
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.truth(c)?)),
            "Or" => items()
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.truth(c)?)),
            "Condition" => match arg.as_str() {
                Some(other) => self.condition(other),
                None => err("Condition takes a name"),
            },
            other => err(format!("Fn::{other} is not a condition function")),
        }
    }
}

/// The `{name}` values of `path` under `template` (`/sessions/{id}`), if it fits.
fn path_parameters(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let (mut wanted, mut given) = (template.split('/'), path.split('/'));
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                params.push((w[1..w.len() - 1].to_owned(), g.to_owned()));
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_mapping()?.get(key)
}

/// A scalar, or a `!Ref`/`{"Ref": …}` to a parameter resolved to its default.
fn scalar(value: &Value, parameters: &HashMap<String, String>) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            parameters.get(tagged.value.as_str()?).cloned()
        }
        Value::Mapping(m) if m.len() == 1 => parameters.get(m.get("Ref")?.as_str()?).cloned(),
        _ => None,
    }
}

/// The logical id a `!Ref X`, `{"Ref": X}`, `!GetAtt X.Arn` or `{"Fn::GetAtt": [X, Arn]}` names.
fn reference(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        Value::Tagged(t) if t.tag == "GetAtt" => match &t.value {
            Value::String(s) => s.split('.').next().map(str::to_owned),
            Value::Sequence(seq) => seq.first()?.as_str().map(str::to_owned),
            _ => None,
        },
        Value::Mapping(m) => {
            if let Some(Value::String(s)) = m.get("Ref") {
                return Some(s.clone());
            }
            m.get("Fn::GetAtt")?
                .as_sequence()?
                .first()?
                .as_str()
                .map(str::to_owned)
        }
        _ => None,
    }
}

/// Which of this product's binaries a function resource builds.
fn binary_of(function: &Value) -> Option<String> {
    get(function, "Metadata")
        .and_then(|m| get(m, "BuildProperties"))
        .and_then(|b| get(b, "Binary"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            let uri = get(function, "Properties")?
                .as_mapping()?
                .get("CodeUri")?
                .as_str()?;
            Some(uri.trim_end_matches('/').rsplit('/').next()?.to_owned())
        })
}

/// The string-keyed entries of a mapping, cloned (none when `value` is not a mapping).
fn entries(value: Option<&Value>) -> impl Iterator<Item = (String, Value)> + '_ {
    value
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
}

/// The HTTP API's JWT authorizer `name`: its issuer and audiences, read from the header API
/// Gateway documents (`$request.header.Authorization`).
fn jwt_authorizer(
    api_id: &str,
    name: &str,
    auth: Option<&Value>,
) -> Result<JwtAuthorizerSpec, TemplateError> {
    let Some(definition) = auth
        .and_then(|a| get(a, "Authorizers"))
        .and_then(|a| get(a, name))
    else {
        return err(format!(
            "{api_id}: DefaultAuthorizer {name} is not defined in Authorizers"
        ));
    };
    let Some(config) = get(definition, "JwtConfiguration") else {
        return err(format!(
            "{api_id}: authorizer {name} has no JwtConfiguration; local-api emulates HTTP APIs' JWT authorizers"
        ));
    };
    let source = get(definition, "IdentitySource").and_then(Value::as_str);
    if !source.is_some_and(|s| s.eq_ignore_ascii_case("$request.header.Authorization")) {
        return err(format!(
            "{api_id}: authorizer {name} must read $request.header.Authorization"
        ));
    }
    let setting = |value: &Value| match reference(value) {
        Some(parameter) => Some(Setting::Parameter(parameter)),
        None => value.as_str().map(|s| Setting::Literal(s.to_owned())),
    };
    let issuer = get(config, "issuer")
        .and_then(setting)
        .ok_or_else(|| TemplateError(format!("{api_id}: authorizer {name} has no issuer")))?;
    let audience: Vec<Setting> = get(config, "audience")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(setting)
        .collect();
    if audience.is_empty() {
        return err(format!("{api_id}: authorizer {name} has no audience"));
    }
    Ok(JwtAuthorizerSpec { issuer, audience })
}

/// The routes, authorizer cache TTL and JWT authorizer of an API's `DefinitionBody` (an
/// OpenAPI document with API Gateway's extensions): each operation must integrate this
/// project's auth-api (`aws_proxy`); one with `security` is protected by the document's one
/// authorizer (a TOKEN Lambda authorizer of this project on a REST API, a JWT authorizer on an
/// HTTP API), whose scopes it lists.
fn from_definition(
    api_id: &str,
    kind: ApiKind,
    body: &Value,
    resources: &serde_norway::Mapping,
    parameters: &HashMap<String, String>,
) -> Result<(Vec<RouteSpec>, u64, Option<JwtAuthorizerSpec>), TemplateError> {
    let schemes: Vec<(String, Value)> =
        entries(get(body, "components").and_then(|c| get(c, "securitySchemes"))).collect();
    let mut authorizer_ttl = 0;
    let mut jwt = None;
    let scheme_name = match schemes.as_slice() {
        [] => None,
        [(name, scheme)] => {
            let Some(authorizer) = get(scheme, "x-amazon-apigateway-authorizer") else {
                return err(format!(
                    "{api_id}: security scheme {name} is no x-amazon-apigateway-authorizer"
                ));
            };
            let kind_of = get(authorizer, "type").and_then(Value::as_str);
            match (kind, kind_of) {
                (ApiKind::Rest, Some("token")) => {
                    let source = get(authorizer, "identitySource").and_then(Value::as_str);
                    if !source.is_some_and(|s| {
                        s.eq_ignore_ascii_case("method.request.header.Authorization")
                    }) {
                        return err(format!(
                            "{api_id}: authorizer {name} must read the Authorization header"
                        ));
                    }
                    // `!Sub [uri, {Authorizer: !If [Condition, A, B]}]` or a plain `!Sub uri`
                    // naming one function.
                    let uri = get(authorizer, "authorizerUri");
                    let mut functions = Vec::new();
                    if let Some((name, arg)) = uri.and_then(intrinsic)
                        && name == "Sub"
                    {
                        match arg {
                            Value::String(text) => functions.extend(sub_references(text)),
                            Value::Sequence(parts) => {
                                for value in parts.get(1).into_iter().flat_map(|m| {
                                    m.as_mapping().into_iter().flat_map(|m| m.values())
                                }) {
                                    functions.extend(functions_named(value));
                                }
                            }
                            _ => {}
                        }
                    }
                    if functions.is_empty() {
                        return err(format!(
                            "{api_id}: authorizer {name} has no authorizerUri naming a function"
                        ));
                    }
                    check_authorizers(api_id, name, &functions, resources)?;
                    authorizer_ttl = cache_ttl(
                        api_id,
                        "authorizerResultTtlInSeconds",
                        get(authorizer, "authorizerResultTtlInSeconds"),
                        parameters,
                    )?;
                }
                (ApiKind::Http, Some("jwt")) => {
                    let definition = serde_norway::Mapping::from_iter([
                        (
                            Value::from("IdentitySource"),
                            get(authorizer, "identitySource")
                                .cloned()
                                .unwrap_or(Value::Null),
                        ),
                        (
                            Value::from("JwtConfiguration"),
                            get(authorizer, "jwtConfiguration")
                                .cloned()
                                .unwrap_or(Value::Null),
                        ),
                    ]);
                    let auth = Value::Mapping(serde_norway::Mapping::from_iter([(
                        Value::from("Authorizers"),
                        Value::Mapping(serde_norway::Mapping::from_iter([(
                            Value::from(name.as_str()),
                            Value::Mapping(definition),
                        )])),
                    )]));
                    jwt = Some(jwt_authorizer(api_id, name, Some(&auth))?);
                }
                (_, other) => {
                    return err(format!(
                        "{api_id}: authorizer {name} of type {other:?}: local-api emulates TOKEN \
                         Lambda authorizers on REST APIs and JWT authorizers on HTTP APIs"
                    ));
                }
            }
            Some(name.clone())
        }
        _ => return err(format!("{api_id}: more than one security scheme")),
    };
    let Some(paths) = get(body, "paths").and_then(Value::as_mapping) else {
        return err(format!("{api_id}: DefinitionBody has no paths"));
    };
    let mut routes = Vec::new();
    for (path, item) in paths {
        let Some(path) = path.as_str().filter(|p| p.starts_with('/')) else {
            return err(format!("{api_id}: a path of DefinitionBody is not /…"));
        };
        if path.contains("+}") {
            return err(format!(
                "{api_id}: greedy path parameters ({path}) are not supported by local-api"
            ));
        }
        for (method, operation) in item.as_mapping().into_iter().flatten() {
            let Some(method) = method.as_str().map(str::to_ascii_uppercase) else {
                continue;
            };
            if method.starts_with("X-AMAZON") || method == "PARAMETERS" {
                continue;
            }
            if method == "ANY" || method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                return err(format!(
                    "{api_id}: {path}: method ANY is not supported by local-api"
                ));
            }
            let integration = get(operation, "x-amazon-apigateway-integration");
            let proxy = integration
                .and_then(|i| get(i, "type"))
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("aws_proxy"));
            let uri = integration.and_then(|i| get(i, "uri"));
            let function = match uri.and_then(intrinsic) {
                Some((name, Value::String(text))) if name == "Sub" => {
                    sub_references(text).into_iter().next()
                }
                _ => uri.and_then(reference),
            };
            let runs_auth_api = function
                .as_deref()
                .and_then(|f| resources.get(f))
                .and_then(binary_of)
                .as_deref()
                == Some("auth-api");
            if !proxy || !runs_auth_api {
                return err(format!(
                    "{api_id}: {method} {path}: local-api only runs this project's auth-api \
                     behind routes (an aws_proxy integration of its function)"
                ));
            }
            let security = get(operation, "security").and_then(Value::as_sequence);
            let mut protected = false;
            let mut scopes = Vec::new();
            for requirement in security.into_iter().flatten() {
                for (name, listed) in requirement.as_mapping().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if scheme_name.as_deref() != Some(name) {
                        return err(format!(
                            "{api_id}: {method} {path}: security {name} is not the document's authorizer"
                        ));
                    }
                    protected = true;
                    scopes.extend(
                        listed
                            .as_sequence()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| scalar(v, parameters)),
                    );
                }
            }
            if !scopes.is_empty() && kind == ApiKind::Rest {
                return err(format!(
                    "{api_id}: {method} {path}: scopes need a JWT authorizer, which local-api models on HTTP APIs only"
                ));
            }
            routes.push(RouteSpec {
                method,
                path: path.to_owned(),
                protected,
                scopes,
            });
        }
    }
    if routes.is_empty() {
        return err(format!("{api_id}: DefinitionBody has no operations"));
    }
    Ok((routes, authorizer_ttl, jwt))
}

/// The functions a value names: `!GetAtt F.Arn`/`!Ref F`, or either branch of
/// `!If [Condition, A, B]` (the stateless or the session-checking authorizer).
fn functions_named(value: &Value) -> Vec<String> {
    match intrinsic(value) {
        Some((name, Value::Sequence(branches))) if name == "If" && branches.len() == 3 => {
            branches[1..].iter().filter_map(reference).collect()
        }
        _ => reference(value).into_iter().collect(),
    }
}

/// Every function a TOKEN authorizer may run must be this project's authorizer.
fn check_authorizers(
    api_id: &str,
    name: &str,
    functions: &[String],
    resources: &serde_norway::Mapping,
) -> Result<(), TemplateError> {
    for function in functions {
        let binary = resources.get(function.as_str()).and_then(binary_of);
        if !matches!(binary.as_deref(), Some("authorizer" | "session-authorizer")) {
            return err(format!(
                "{api_id}: authorizer {name} must be this project's authorizer function, not {function}"
            ));
        }
    }
    Ok(())
}

/// An authorizer's cache TTL in seconds (`setting`, a number or a parameter); API Gateway's
/// default of 300 when unset.
fn cache_ttl(
    api_id: &str,
    setting: &str,
    value: Option<&Value>,
    parameters: &HashMap<String, String>,
) -> Result<u64, TemplateError> {
    match value {
        None => Ok(300),
        Some(v) => scalar(v, parameters)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| TemplateError(format!("{api_id}: {setting} is not a number"))),
    }
}

/// The logical ids a `!Sub` text names as `${Id.Attribute}` or `${Id}` (not parameters or
/// pseudo parameters: those have no resource; callers check what they find).
fn sub_references(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .filter(|name| !name.starts_with("AWS::"))
        .map(|name| name.split('.').next().unwrap_or(name).to_owned())
        .collect()
}

/// Parses the template text.
pub fn parse(text: &str) -> Result<GatewaySpec, TemplateError> {
    let doc: Value =
        serde_norway::from_str(text).map_err(|e| TemplateError(format!("not valid YAML: {e}")))?;
    let mut parameters = HashMap::new();
    if let Some(params) = get(&doc, "Parameters").and_then(Value::as_mapping) {
        for (name, spec) in params {
            if let (Some(name), Some(default)) = (
                name.as_str(),
                get(spec, "Default").and_then(|d| scalar(d, &HashMap::new())),
            ) {
                parameters.insert(name.to_owned(), default);
            }
        }
    }
    let Some(resources) = get(&doc, "Resources").and_then(Value::as_mapping) else {
        return err("has no Resources");
    };
    let typed = |wanted: &'static str| {
        resources
            .iter()
            .filter(move |(_, r)| get(r, "Type").and_then(Value::as_str) == Some(wanted))
            .filter_map(|(id, r)| Some((id.as_str()?.to_owned(), r)))
    };

    let apis: Vec<_> = typed("AWS::Serverless::Api")
        .map(|(id, r)| (id, r, ApiKind::Rest))
        .chain(typed("AWS::Serverless::HttpApi").map(|(id, r)| (id, r, ApiKind::Http)))
        .collect();
    let [(api_id, api, kind)] = apis.as_slice() else {
        return err(format!(
            "expected exactly one AWS::Serverless::Api or AWS::Serverless::HttpApi resource, found {}",
            apis.len()
        ));
    };
    let kind = *kind;
    let api_props = get(api, "Properties");
    let stage = match (api_props.and_then(|p| get(p, "StageName")), kind) {
        // An HTTP API without StageName gets the $default stage (no path prefix).
        (None, ApiKind::Http) => "$default".to_owned(),
        (stage, _) => stage.and_then(|v| scalar(v, &parameters)).ok_or_else(|| {
            TemplateError(format!("{api_id}: StageName is missing or not resolvable"))
        })?,
    };
    let gateway_responses = entries(api_props.and_then(|p| get(p, "GatewayResponses"))).collect();
    let conditions = entries(get(&doc, "Conditions")).collect();
    if let Some(body) = api_props.and_then(|p| get(p, "DefinitionBody")) {
        let (mut routes, authorizer_ttl, jwt) =
            from_definition(api_id, kind, body, resources, &parameters)?;
        routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        return Ok(GatewaySpec {
            kind,
            jwt,
            stage,
            routes,
            authorizer_ttl,
            parameters,
            gateway_responses,
            conditions,
        });
    }
    let auth = api_props.and_then(|p| get(p, "Auth"));
    let default_authorizer = auth
        .and_then(|a| get(a, "DefaultAuthorizer"))
        .and_then(Value::as_str);
    let mut authorizer_ttl = 0;
    let mut jwt = None;
    if let (Some(name), ApiKind::Http) = (default_authorizer, kind) {
        jwt = Some(jwt_authorizer(api_id, name, auth)?);
    } else if let Some(name) = default_authorizer {
        let Some(definition) = auth
            .and_then(|a| get(a, "Authorizers"))
            .and_then(|a| get(a, name))
        else {
            return err(format!(
                "{api_id}: DefaultAuthorizer {name} is not defined in Authorizers"
            ));
        };
        let payload = get(definition, "FunctionPayloadType")
            .and_then(Value::as_str)
            .unwrap_or("TOKEN");
        if payload != "TOKEN" {
            return err(format!(
                "{api_id}: authorizer {name} has FunctionPayloadType {payload}; local-api emulates TOKEN authorizers"
            ));
        }
        // One function, or `!If [Condition, A, B]` choosing between the stateless and the
        // session-checking authorizer: local-api runs either from the same library.
        let arn = get(definition, "FunctionArn");
        let functions: Vec<String> = arn.map(functions_named).unwrap_or_default();
        if functions.is_empty() {
            return err(format!(
                "{api_id}: authorizer {name} has no FunctionArn !GetAtt (or !If of two)"
            ));
        }
        check_authorizers(api_id, name, &functions, resources)?;
        let identity = get(definition, "Identity");
        let header = identity
            .and_then(|i| get(i, "Header"))
            .and_then(Value::as_str)
            .unwrap_or("Authorization");
        if !header.eq_ignore_ascii_case("authorization") {
            return err(format!(
                "{api_id}: authorizer {name} must read the Authorization header"
            ));
        }
        authorizer_ttl = cache_ttl(
            api_id,
            "ReauthorizeEvery",
            identity.and_then(|i| get(i, "ReauthorizeEvery")),
            &parameters,
        )?;
    }

    let mut routes = Vec::new();
    for (function_id, function) in typed("AWS::Serverless::Function") {
        let Some(events) = get(function, "Properties")
            .and_then(|p| get(p, "Events"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for (event_id, event) in events {
            let event_id = event_id.as_str().unwrap_or("?");
            let (event_type, api_property) = match kind {
                ApiKind::Rest => ("Api", "RestApiId"),
                ApiKind::Http => ("HttpApi", "ApiId"),
            };
            if get(event, "Type").and_then(Value::as_str) != Some(event_type) {
                return err(format!(
                    "{function_id}.{event_id}: only {event_type} events on {api_id} are supported by local-api"
                ));
            }
            if binary_of(function).as_deref() != Some("auth-api") {
                return err(format!(
                    "{function_id}.{event_id}: local-api only runs this project's auth-api behind routes"
                ));
            }
            let props = get(event, "Properties");
            let api_ref = props.and_then(|p| get(p, api_property)).and_then(reference);
            if api_ref.as_deref() != Some(api_id.as_str()) {
                return err(format!(
                    "{function_id}.{event_id}: {api_property} must be !Ref {api_id}"
                ));
            }
            let path = props
                .and_then(|p| get(p, "Path"))
                .and_then(Value::as_str)
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| {
                    TemplateError(format!("{function_id}.{event_id}: Path is missing"))
                })?;
            if path.contains("+}") {
                return err(format!(
                    "{function_id}.{event_id}: greedy path parameters ({path}) are not supported by local-api"
                ));
            }
            let method = props
                .and_then(|p| get(p, "Method"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TemplateError(format!("{function_id}.{event_id}: Method is missing"))
                })?
                .to_ascii_uppercase();
            if method == "ANY" {
                return err(format!(
                    "{function_id}.{event_id}: method ANY is not supported by local-api"
                ));
            }
            let event_auth = props.and_then(|p| get(p, "Auth"));
            let authorizer = event_auth
                .and_then(|a| get(a, "Authorizer"))
                .and_then(Value::as_str);
            let scopes: Vec<String> = event_auth
                .and_then(|a| get(a, "AuthorizationScopes"))
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|v| scalar(v, &parameters))
                .collect();
            if !scopes.is_empty() && kind == ApiKind::Rest {
                return err(format!(
                    "{function_id}.{event_id}: AuthorizationScopes need a Cognito or JWT authorizer, which local-api models on HTTP APIs only"
                ));
            }
            let protected = match (authorizer, default_authorizer) {
                (Some("NONE"), _) => false,
                (Some(named), Some(default)) if named == default => true,
                (Some(named), _) => {
                    return err(format!(
                        "{function_id}.{event_id}: authorizer {named} is not the API's default authorizer"
                    ));
                }
                (None, default) => default.is_some(),
            };
            routes.push(RouteSpec {
                method,
                path: path.to_owned(),
                protected,
                scopes,
            });
        }
    }
    if routes.is_empty() {
        return err("no function has Api events on the API");
    }
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(GatewaySpec {
        kind,
        jwt,
        stage,
        routes,
        authorizer_ttl,
        parameters,
        gateway_responses,
        conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Origins: {Type: String, Default: ""}
Conditions:
  HasOrigins: !Not [!Equals [!Ref Origins, ""]]
  Both: !And [{Condition: HasOrigins}, !Equals ["a", "a"]]
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      GatewayResponses:
        UNAUTHORIZED:
          ResponseParameters:
            Headers:
              Access-Control-Allow-Origin: !If [Both, method.request.header.Origin, !Ref AWS::NoValue]
              Vary: "'Origin'"
        DEFAULT_5XX:
          StatusCode: "503"
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: auth-api}}
    Properties:
      Events:
        E: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /x, Method: options}}
"#;

    #[test]
    fn gateway_responses_follow_the_conditions_of_the_parameters_in_force() {
        let spec = parse(TEMPLATE).unwrap();
        assert_eq!(spec.routes[0].method, "OPTIONS");
        let off = spec.gateway_responses(&HashMap::new()).unwrap();
        let unauthorized = off.get("UNAUTHORIZED", 401).unwrap();
        assert_eq!(
            unauthorized.headers,
            [("Vary".to_owned(), HeaderSource::Static("Origin".into()))]
        );
        let on = spec
            .gateway_responses(&HashMap::from([(
                "Origins".into(),
                "https://a.example".into(),
            )]))
            .unwrap();
        assert_eq!(
            on.get("UNAUTHORIZED", 401).unwrap().headers[0],
            (
                "Access-Control-Allow-Origin".to_owned(),
                HeaderSource::RequestHeader("origin".into())
            )
        );
        assert_eq!(on.get("ACCESS_DENIED", 403), None);
        assert_eq!(on.get("AUTHORIZER_FAILURE", 500).unwrap().status, Some(503));
    }
}
