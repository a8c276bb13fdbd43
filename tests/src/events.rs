//! API Gateway events built from the real event fixtures in `tests/fixtures/`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::Request;
use serde_json::{Value, json};

/// The event shapes auth-api must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// REST API (payload v1) proxy integration.
    RestV1,
    /// HTTP API payload v2.
    HttpV2,
    /// Lambda function URL (payload v2 shape).
    FunctionUrl,
}

pub const ALL_KINDS: [Kind; 3] = [Kind::RestV1, Kind::HttpV2, Kind::FunctionUrl];

fn fixture(kind: Kind) -> Value {
    let text = match kind {
        Kind::RestV1 => include_str!("../fixtures/rest-v1-request.json"),
        Kind::HttpV2 => include_str!("../fixtures/http-v2-request.json"),
        Kind::FunctionUrl => include_str!("../fixtures/function-url-request.json"),
    };
    serde_json::from_str(text).expect("fixtures are JSON")
}

/// An event under construction.
#[derive(Debug, Clone)]
pub struct Event {
    kind: Kind,
    json: Value,
}

impl Event {
    /// An event of `kind` with exactly this payload.
    pub fn from_json(kind: Kind, json: Value) -> Self {
        Self { kind, json }
    }

    pub fn new(kind: Kind, method: &str, path: &str) -> Self {
        let mut json = fixture(kind);
        match kind {
            Kind::RestV1 => {
                let stage = json["requestContext"]["stage"]
                    .as_str()
                    .unwrap_or("prod")
                    .to_owned();
                json["httpMethod"] = json!(method);
                json["path"] = json!(path);
                json["resource"] = json!(path);
                json["requestContext"]["httpMethod"] = json!(method);
                json["requestContext"]["resourcePath"] = json!(path);
                json["requestContext"]["path"] = json!(format!("/{stage}{path}"));
            }
            Kind::HttpV2 | Kind::FunctionUrl => {
                if kind == Kind::HttpV2 {
                    json["routeKey"] = json!(format!("{method} {path}"));
                    json["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
                }
                json["rawPath"] = json!(path);
                json["requestContext"]["http"]["method"] = json!(method);
                json["requestContext"]["http"]["path"] = json!(path);
            }
        }
        Self { kind, json }
    }

    pub fn get(kind: Kind, path: &str) -> Self {
        Self::new(kind, "GET", path).no_body()
    }

    pub fn post_json(kind: Kind, path: &str, body: &Value) -> Self {
        Self::new(kind, "POST", path).body(&body.to_string())
    }

    /// An HTTP API event on a named stage, which API Gateway puts into `rawPath`.
    pub fn on_named_stage(mut self, stage: &str) -> Self {
        match self.kind {
            Kind::RestV1 => {
                let path = self.json["path"].as_str().unwrap_or("/").to_owned();
                self.json["requestContext"]["stage"] = json!(stage);
                self.json["requestContext"]["path"] = json!(format!("/{stage}{path}"));
            }
            Kind::HttpV2 | Kind::FunctionUrl => {
                let raw = self.json["rawPath"].as_str().unwrap_or("/").to_owned();
                self.json["requestContext"]["stage"] = json!(stage);
                self.json["rawPath"] = json!(format!("/{stage}{raw}"));
                self.json["requestContext"]["http"]["path"] = json!(format!("/{stage}{raw}"));
            }
        }
        self
    }

    /// The client address API Gateway saw (`sourceIp` of the request context).
    pub fn from_source(mut self, ip: &str) -> Self {
        match self.kind {
            Kind::RestV1 => self.json["requestContext"]["identity"]["sourceIp"] = json!(ip),
            Kind::HttpV2 | Kind::FunctionUrl => {
                self.json["requestContext"]["http"]["sourceIp"] = json!(ip)
            }
        }
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self = self.without_header(name);
        match self.kind {
            Kind::RestV1 => {
                self.json["headers"][name] = json!(value);
                self.json["multiValueHeaders"][name] = json!([value]);
            }
            Kind::HttpV2 | Kind::FunctionUrl => {
                self.json["headers"][name.to_ascii_lowercase()] = json!(value);
            }
        }
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        for map in ["headers", "multiValueHeaders"] {
            if let Some(obj) = self.json[map].as_object_mut() {
                obj.retain(|k, _| !k.eq_ignore_ascii_case(name));
            }
        }
        self
    }

    /// The query string, each pair once, as API Gateway passes it on.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut single = serde_json::Map::new();
        let mut multi = serde_json::Map::new();
        for (name, value) in pairs {
            single.insert((*name).to_owned(), json!(value));
            multi
                .entry((*name).to_owned())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("an array")
                .push(json!(value));
        }
        match self.kind {
            Kind::RestV1 => {
                self.json["queryStringParameters"] = Value::Object(single);
                self.json["multiValueQueryStringParameters"] = Value::Object(multi);
            }
            Kind::HttpV2 | Kind::FunctionUrl => {
                let raw: Vec<String> = pairs
                    .iter()
                    .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
                    .collect();
                self.json["rawQueryString"] = json!(raw.join("&"));
                self.json["queryStringParameters"] = Value::Object(single);
            }
        }
        self
    }

    pub fn body(mut self, text: &str) -> Self {
        self.json["body"] = json!(text);
        self.json["isBase64Encoded"] = json!(false);
        self
    }

    pub fn base64_body(mut self, bytes: &[u8]) -> Self {
        self.json["body"] = json!(STANDARD.encode(bytes));
        self.json["isBase64Encoded"] = json!(true);
        self
    }

    pub fn no_body(mut self) -> Self {
        self.json["body"] = Value::Null;
        self.json["isBase64Encoded"] = json!(false);
        self.without_header("content-type")
    }

    /// The context a Lambda authorizer passed on for `sub` with ada@example.com's email.
    pub fn authorized_as(self, sub: &str) -> Self {
        self.authorized(sub, "ada@example.com")
    }

    /// The context a Lambda authorizer passed on for an access token of session `sid`.
    pub fn authorized_in_session(self, sub: &str, email: &str, sid: &str) -> Self {
        self.authorized_with(
            json!({"sub": sub, "email": email, "roles": "user", "exp": 4_102_444_800_i64, "sid": sid}),
        )
    }

    /// The context a Lambda authorizer passed on, where API Gateway puts it for this shape.
    pub fn authorized(self, sub: &str, email: &str) -> Self {
        self.authorized_with(
            json!({"sub": sub, "email": email, "roles": "user", "exp": 4_102_444_800_i64}),
        )
    }

    /// The context a Lambda authorizer passed on, as given.
    pub fn authorized_with(mut self, context: Value) -> Self {
        match self.kind {
            Kind::RestV1 => {
                let mut flat = context;
                flat["principalId"] = flat["sub"].clone();
                self.json["requestContext"]["authorizer"] = flat;
            }
            Kind::HttpV2 | Kind::FunctionUrl => {
                self.json["requestContext"]["authorizer"] = json!({"lambda": context});
            }
        }
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// The Lambda payload.
    pub fn to_json(&self) -> Value {
        self.json.clone()
    }

    /// The event as the Lambda runtime hands it to the handler: lambda_http's parse of the
    /// payload, after auth-api's check for events lambda_http cannot convert.
    pub fn request(&self) -> Request {
        auth_api::http::lambda::request_from_json(&self.json.to_string())
            .expect("fixture events parse")
    }
}

/// `text` percent-encoded for a query or form value (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
