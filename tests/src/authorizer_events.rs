//! Authorizer events built from the real event fixtures, and tokens to put in them.

use authorizer::Authorizer;
use authorizer::V2Response;
use authorizer::policy::{Effect, PolicyDocument};
use authorizer::rules::Rules;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::token::now_unix;
use shared::{KeySet, SigningKey, Subject, TokenIssuer, TokenVerifier};
use uuid::Uuid;

use crate::app::settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Token,
    Request,
    V2,
}

pub const ALL_AUTH_KINDS: [AuthKind; 3] = [AuthKind::Token, AuthKind::Request, AuthKind::V2];

pub fn fixture(kind: AuthKind) -> Value {
    let text = match kind {
        AuthKind::Token => include_str!("../fixtures/authorizer-token.json"),
        AuthKind::Request => include_str!("../fixtures/authorizer-request.json"),
        AuthKind::V2 => include_str!("../fixtures/authorizer-v2.json"),
    };
    serde_json::from_str(text).expect("fixtures are JSON")
}

/// The API the fixtures call: REST stage `prod`, HTTP API stage `$default`.
pub fn arn_prefix(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::Token | AuthKind::Request => {
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod"
        }
        AuthKind::V2 => "arn:aws:execute-api:us-east-1:123456789012:f6g7h8i9j0/$default",
    }
}

/// A fixture event for `METHOD path`, carrying `authorization` as the Authorization header
/// value (or leaving it out when `None`).
pub fn event(kind: AuthKind, method: &str, path: &str, authorization: Option<&str>) -> Value {
    let mut ev = fixture(kind);
    let arn = format!("{}/{method}{path}", arn_prefix(kind));
    match kind {
        AuthKind::Token => {
            ev["methodArn"] = json!(arn);
            ev["authorizationToken"] = authorization.map_or(Value::Null, |a| json!(a));
        }
        AuthKind::Request => {
            ev["methodArn"] = json!(arn);
            ev["path"] = json!(path);
            ev["httpMethod"] = json!(method);
            set_header(&mut ev, "Authorization", authorization, true);
        }
        AuthKind::V2 => {
            ev["routeArn"] = json!(arn);
            ev["routeKey"] = json!(format!("{method} {path}"));
            ev["rawPath"] = json!(path);
            ev["requestContext"]["http"]["method"] = json!(method);
            ev["requestContext"]["http"]["path"] = json!(path);
            set_header(&mut ev, "authorization", authorization, false);
            ev["identitySource"] = authorization.map_or(Value::Null, |a| json!([a]));
        }
    }
    ev
}

fn set_header(ev: &mut Value, name: &str, value: Option<&str>, multi: bool) {
    for (map, multi_value) in [("headers", false), ("multiValueHeaders", true)] {
        if multi_value && !multi {
            continue;
        }
        let Some(obj) = ev[map].as_object_mut() else {
            continue;
        };
        obj.retain(|k, _| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            obj.insert(
                name.to_owned(),
                if multi_value { json!([v]) } else { json!(v) },
            );
        }
    }
}

/// A signing key and the authorizer that trusts it.
/// The secret of [`Keys::hs256`].
pub const HS256_SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

pub struct Keys {
    pub issuer: TokenIssuer,
    pub verifier: TokenVerifier,
}

impl Keys {
    pub fn ed25519() -> Self {
        Self::from_key(
            SigningKey::ed25519_generate(None).expect("a fresh key with its thumbprint kid"),
        )
    }

    pub fn hs256() -> Self {
        let secret = secrecy::SecretString::from(HS256_SECRET);
        Self::from_key(SigningKey::hs256(secret, None).expect("long enough"))
    }

    pub fn from_key(key: SigningKey) -> Self {
        let mut keys = KeySet::default();
        keys.insert(key.verification_key()).expect("one key");
        Self {
            issuer: TokenIssuer::new(key, settings(), 900),
            verifier: TokenVerifier::new(keys, settings(), 30),
        }
    }

    pub fn token_for(&self, subject: &Subject) -> String {
        self.issuer
            .issue(subject, now_unix())
            .expect("signs")
            .token
            .expose_secret()
            .to_owned()
    }

    pub fn token(&self, roles: &[&str]) -> String {
        self.token_for(&subject(roles))
    }

    pub fn authorizer(&self, rules: Option<&str>, v2: V2Response) -> Authorizer {
        let rules = rules.map(|r| Rules::parse(r).expect("valid rules"));
        Authorizer::new(self.verifier.clone(), rules, v2)
    }
}

pub fn subject(roles: &[&str]) -> Subject {
    Subject {
        user_id: Uuid::new_v4(),
        email: "ada@example.com".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        email_verified: false,
        session_id: None,
        method: Default::default(),
    }
}

/// How API Gateway judges a call to `method_arn` under `policy`, worked out here from the
/// serialized policy (what API Gateway receives), independently of the authorizer's own
/// `PolicyDocument::evaluate`: an explicit Deny wins, then any Allow, else `None` (the
/// implicit deny).
pub fn judge(policy: &PolicyDocument, method_arn: &str) -> Option<Effect> {
    let json = serde_json::to_value(policy).expect("policies serialize");
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .map(|s| s.as_str().expect("strings").to_owned())
                .collect(),
            other => panic!("not a string or list: {other}"),
        }
    };
    let mut effects = Vec::new();
    for statement in json["Statement"].as_array().expect("a Statement list") {
        let applies = strings(&statement["Action"])
            .iter()
            .any(|a| glob(a.as_bytes(), b"execute-api:Invoke"))
            && strings(&statement["Resource"])
                .iter()
                .any(|r| glob(r.as_bytes(), method_arn.as_bytes()));
        if applies {
            effects.push(statement["Effect"].as_str().expect("an Effect").to_owned());
        }
    }
    if effects.iter().any(|e| e == "Deny") {
        Some(Effect::Deny)
    } else if effects.iter().any(|e| e == "Allow") {
        Some(Effect::Allow)
    } else {
        None
    }
}

/// IAM wildcards, by recursion: `*` any run of characters (`/` included), `?` any one.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}
