//! Reading a JSON object body from a request, with every way it can be wrong answered as a 4xx.

use http::header::CONTENT_TYPE;
use lambda_http::{Body, Request};
use serde_json::{Map, Value};

use accounts::model::mfa::Code;

use crate::http::problem::{ApiError, FieldError};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body whose members have been checked against the expected field names.
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// Reads the body of `req` as a JSON object. Members not in `fields` are refused, so a
    /// misspelt field name is an error instead of being ignored.
    pub fn from_request(req: &Request, fields: &[&'static str]) -> Result<Self, ApiError> {
        if !is_json_content_type(req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes: &[u8] = match req.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::MalformedBody(
                "A JSON request body is required.".into(),
            ));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::MalformedBody("The request body is not valid UTF-8.".into()))?;
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ApiError::MalformedBody(format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(ApiError::MalformedBody(
                "The request body must be a JSON object.".into(),
            ));
        };
        let unknown: Vec<FieldError> = map
            .keys()
            .filter(|k| !fields.contains(&k.as_str()))
            .take(10)
            .map(|k| {
                let shown: String = k.chars().take(64).collect();
                FieldError::new(
                    "body",
                    format!("unknown field {shown:?}; expected only {fields:?}"),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::Validation(unknown));
        }
        Ok(Self(map))
    }

    /// The string member `field`, taken out of the body.
    pub fn take_string(&mut self, field: &'static str) -> Result<String, FieldError> {
        match self.0.remove(field) {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
            Some(_) => Err(FieldError::new(field, "must be a string")),
        }
    }
}

impl JsonObject {
    /// The object member `field`, taken out of the body.
    pub fn take_object(&mut self, field: &'static str) -> Result<Value, FieldError> {
        match self.0.remove(field) {
            Some(value @ Value::Object(_)) => Ok(value),
            None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
            Some(_) => Err(FieldError::new(field, "must be an object")),
        }
    }

    /// Whether the body has the member `field` (null counts as absent).
    pub fn has(&self, field: &str) -> bool {
        self.0.get(field).is_some_and(|v| !v.is_null())
    }

    /// The string member `field` if present (and not null).
    pub fn take_optional_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, FieldError> {
        match self.take_string(field) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.message == "is required" => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The body's `field`, a code as typed: six digits, or a recovery code.
pub fn code_field(body: &mut JsonObject, field: &'static str) -> Result<Code, FieldError> {
    let text = body.take_string(field)?;
    Code::parse(&text).ok_or_else(|| {
        FieldError::new(
            field,
            "must be the 6-digit code of your authenticator app or a recovery code",
        )
    })
}

/// The body's optional `code`: `None` when absent (or null), a field error when malformed.
pub fn optional_code(body: &mut JsonObject) -> Result<Option<Code>, FieldError> {
    match code_field(body, "code") {
        Ok(code) => Ok(Some(code)),
        Err(e) if e.message == "is required" => Ok(None),
        Err(e) => Err(e),
    }
}

/// The problems of a body's fields, collected so that one answer names them all.
#[derive(Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    /// The value, or `None` with its problem noted.
    pub fn take<T>(&mut self, read: Result<T, FieldError>) -> Option<T> {
        read.map_err(|e| self.errors.push(e)).ok()
    }

    /// The value, or `None` with each of its problems noted against `field`.
    pub fn take_all<T>(&mut self, field: &'static str, read: Result<T, Vec<String>>) -> Option<T> {
        read.map_err(|problems| {
            self.errors
                .extend(problems.into_iter().map(|m| FieldError::new(field, m)));
        })
        .ok()
    }

    /// Notes a problem of `field`.
    pub fn refuse(&mut self, field: &'static str, message: &str) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Whether no problem was noted.
    pub fn clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// The 400 naming every problem noted.
    pub fn into_error(self) -> ApiError {
        ApiError::Validation(self.errors)
    }
}

fn is_json_content_type(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media_type = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}
