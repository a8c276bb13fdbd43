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
}

/// What local-api needs to know of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    pub stage: String,
    pub routes: Vec<RouteSpec>,
    /// Seconds an authorizer answer is cached per token (0: off).
    pub authorizer_ttl: u64,
    /// Parameter defaults, by name.
    pub parameters: HashMap<String, String>,
}

impl GatewaySpec {
    pub fn route(&self, method: &str, path: &str) -> Option<&RouteSpec> {
        self.routes
            .iter()
            .find(|r| r.method == method && r.path == path)
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

    let apis: Vec<_> = typed("AWS::Serverless::Api").collect();
    let [(api_id, api)] = apis.as_slice() else {
        return err(format!(
            "expected exactly one AWS::Serverless::Api resource, found {}",
            apis.len()
        ));
    };
    let api_props = get(api, "Properties");
    let stage = api_props
        .and_then(|p| get(p, "StageName"))
        .and_then(|v| scalar(v, &parameters))
        .ok_or_else(|| {
            TemplateError(format!("{api_id}: StageName is missing or not resolvable"))
        })?;
    let auth = api_props.and_then(|p| get(p, "Auth"));
    let default_authorizer = auth
        .and_then(|a| get(a, "DefaultAuthorizer"))
        .and_then(Value::as_str);
    let mut authorizer_ttl = 0;
    if let Some(name) = default_authorizer {
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
        let function = get(definition, "FunctionArn")
            .and_then(reference)
            .ok_or_else(|| {
                TemplateError(format!(
                    "{api_id}: authorizer {name} has no FunctionArn !GetAtt"
                ))
            })?;
        let binary = resources.get(function.as_str()).and_then(binary_of);
        if binary.as_deref() != Some("authorizer") {
            return err(format!(
                "{api_id}: authorizer {name} must be this project's authorizer function, not {function}"
            ));
        }
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
        authorizer_ttl = match identity.and_then(|i| get(i, "ReauthorizeEvery")) {
            None => 300,
            Some(v) => scalar(v, &parameters)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    TemplateError(format!("{api_id}: ReauthorizeEvery is not a number"))
                })?,
        };
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
            if get(event, "Type").and_then(Value::as_str) != Some("Api") {
                return err(format!(
                    "{function_id}.{event_id}: only Api events are supported by local-api"
                ));
            }
            if binary_of(function).as_deref() != Some("auth-api") {
                return err(format!(
                    "{function_id}.{event_id}: local-api only runs this project's auth-api behind routes"
                ));
            }
            let props = get(event, "Properties");
            let api_ref = props.and_then(|p| get(p, "RestApiId")).and_then(reference);
            if api_ref.as_deref() != Some(api_id.as_str()) {
                return err(format!(
                    "{function_id}.{event_id}: RestApiId must be !Ref {api_id}"
                ));
            }
            let path = props
                .and_then(|p| get(p, "Path"))
                .and_then(Value::as_str)
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| {
                    TemplateError(format!("{function_id}.{event_id}: Path is missing"))
                })?;
            if path.contains('{') {
                return err(format!(
                    "{function_id}.{event_id}: path parameters ({path}) are not supported by local-api"
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
            let authorizer = props
                .and_then(|p| get(p, "Auth"))
                .and_then(|a| get(a, "Authorizer"))
                .and_then(Value::as_str);
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
            });
        }
    }
    if routes.is_empty() {
        return err("no function has Api events on the API");
    }
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(GatewaySpec {
        stage,
        routes,
        authorizer_ttl,
        parameters,
    })
}
