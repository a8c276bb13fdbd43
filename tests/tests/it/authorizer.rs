//! The authorizer handler on real authorizer events: golden responses, route rules and the
//! cache, and an attack suite where every case must end in exactly `Unauthorized`.

use authorizer::policy::{Effect, PolicyDocument};
use std::collections::HashMap;

use authorizer::{Authorizer, AuthorizerResponse, Unauthorized, V2Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::app::{TEST_PEM, settings};
use integration_tests::authorizer_events::{
    ALL_AUTH_KINDS, AuthKind, HS256_SECRET, Keys, arn_prefix, event, judge, subject,
};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use shared::SigningKey;
use shared::token::now_unix;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn policy_of(response: &AuthorizerResponse) -> &PolicyDocument {
    match response {
        AuthorizerResponse::Policy(p) => &p.policy_document,
        AuthorizerResponse::Simple(_) => panic!("expected an IAM policy response"),
    }
}

#[tokio::test]
async fn a_token_event_gets_the_exact_allow_policy_api_gateway_expects() {
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(None, V2Response::Simple);
    let token = keys.token(&["user", "editor"]);
    let claims = claims_of(&token);
    let ev = event(AuthKind::Token, "GET", "/items", Some(&bearer(&token)));
    // Through the Lambda entry point, as the runtime calls it.
    let response = authorizer
        .handle(LambdaEvent::new(ev, Context::default()))
        .await
        .unwrap();
    let expected = format!(
        concat!(
            r#"{{"principalId":"{sub}","policyDocument":{{"Version":"2012-10-17","Statement":["#,
            r#"{{"Action":"execute-api:Invoke","Effect":"Allow","Resource":["#,
            r#""arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/*"]}}]}},"#,
            r#""context":{{"principal":"user","sub":"{sub}","email":"ada@example.com","roles":"user,editor","exp":{exp},"email_verified":false,"amr":"pwd","client_id":"{client_id}","scope":"user editor"}}}}"#
        ),
        sub = claims["sub"].as_str().unwrap(),
        exp = claims["exp"],
        client_id = claims["client_id"].as_str().unwrap(),
    );
    assert_eq!(serde_json::to_string(&response).unwrap(), expected);
}

#[test]
fn a_token_s_session_reaches_the_context_as_a_plain_string_in_every_shape() {
    let keys = Keys::ed25519();
    let sid = uuid::Uuid::new_v4();
    let token = keys.token_for(&shared::Subject {
        session_id: Some(sid),
        method: Default::default(),
        ..subject(&["user"])
    });
    let authorizer = keys.authorizer(None, V2Response::Simple);
    for kind in ALL_AUTH_KINDS {
        let response = authorizer
            .decide(event(kind, "GET", "/items", Some(&bearer(&token))))
            .unwrap();
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["context"]["sid"], sid.to_string(), "{kind:?}: {json}");
    }
    // A token without a session (issued by hand, or before sid existed) has no sid at all,
    // never a null.
    let plain = keys.token(&["user"]);
    let response = authorizer
        .decide(event(
            AuthKind::Token,
            "GET",
            "/items",
            Some(&bearer(&plain)),
        ))
        .unwrap();
    assert!(!serde_json::to_string(&response).unwrap().contains("sid"));
}

#[test]
fn a_request_event_gets_the_same_policy_shape() {
    let keys = Keys::ed25519();
    let token = keys.token(&["user"]);
    let claims = claims_of(&token);
    let ev = event(AuthKind::Request, "POST", "/orders", Some(&bearer(&token)));
    let response = keys
        .authorizer(None, V2Response::Simple)
        .decide(ev)
        .unwrap();
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["principalId"], claims["sub"]);
    assert_eq!(
        json["policyDocument"]["Statement"][0]["Resource"],
        json!(["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/*"])
    );
    assert_eq!(
        json.as_object().unwrap().len(),
        3,
        "no usageIdentifierKey, nothing null: {json}"
    );
}

#[test]
fn http_api_simple_responses_are_exact() {
    let keys = Keys::hs256();
    let token = keys.token(&["user"]);
    let claims = claims_of(&token);
    let allow = keys
        .authorizer(None, V2Response::Simple)
        .decide(event(AuthKind::V2, "GET", "/items", Some(&bearer(&token))))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&allow).unwrap(),
        format!(
            r#"{{"isAuthorized":true,"context":{{"principal":"user","sub":"{}","email":"ada@example.com","roles":"user","exp":{},"email_verified":false,"amr":"pwd","client_id":"{}","scope":"user"}}}}"#,
            claims["sub"].as_str().unwrap(),
            claims["exp"],
            claims["client_id"].as_str().unwrap()
        )
    );
    let deny = keys
        .authorizer(Some(r#"{"* /admin/*": ["admin"]}"#), V2Response::Simple)
        .decide(event(
            AuthKind::V2,
            "GET",
            "/admin/users",
            Some(&bearer(&token)),
        ))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&deny).unwrap(),
        r#"{"isAuthorized":false}"#
    );
}

#[test]
fn a_verified_email_reaches_the_context_and_meets_an_email_verified_rule() {
    let keys = Keys::ed25519();
    let rules = r#"{"* /*": ["user"], "* /billing/*": ["@email_verified"]}"#;
    let authorizer = keys.authorizer(Some(rules), V2Response::Iam);
    let prefix = arn_prefix(AuthKind::Token);
    for verified in [false, true] {
        let mut subject = subject(&["user"]);
        subject.email_verified = verified;
        let token = keys.token_for(&subject);
        assert_eq!(claims_of(&token)["email_verified"], verified);
        let response = authorizer
            .decide(event(
                AuthKind::Token,
                "GET",
                "/items",
                Some(&bearer(&token)),
            ))
            .unwrap();
        let AuthorizerResponse::Policy(policy) = &response else {
            panic!("a policy");
        };
        assert_eq!(policy.context.email_verified, verified);
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["context"]["email_verified"], verified, "a primitive");
        let billing = judge(
            policy_of(&response),
            &format!("{prefix}/POST/billing/cards"),
        );
        let expected = if verified {
            Effect::Allow
        } else {
            Effect::Deny
        };
        assert_eq!(billing, Some(expected), "verified: {verified}");
        assert_eq!(
            judge(policy_of(&response), &format!("{prefix}/GET/items")),
            Some(Effect::Allow)
        );
    }
}

#[test]
fn http_api_iam_responses_use_the_route_arn() {
    let keys = Keys::ed25519();
    let token = keys.token(&["user"]);
    let response = keys
        .authorizer(None, V2Response::Iam)
        .decide(event(
            AuthKind::V2,
            "DELETE",
            "/items/7",
            Some(&bearer(&token)),
        ))
        .unwrap();
    let policy = policy_of(&response);
    assert_eq!(
        policy.statement[0].resource,
        vec![format!("{}/*", arn_prefix(AuthKind::V2))]
    );
    assert!(!serde_json::to_string(&response).unwrap().contains("null"));
}

const RULES: &str = r#"{"GET /admin/*": ["admin"], "* /*": ["user"]}"#;

/// An HTTP API event whose route ARN is `route_resource` (after the stage), as API Gateway
/// sends for the route key `route_key`, for a request to `METHOD path`.
fn v2_on_route(
    route_key: &str,
    route_resource: &str,
    method: &str,
    path: &str,
    token: &str,
) -> Value {
    let mut ev = event(AuthKind::V2, method, path, Some(&bearer(token)));
    ev["routeKey"] = json!(route_key);
    ev["requestContext"]["routeKey"] = json!(route_key);
    ev["routeArn"] = json!(format!("{}/{route_resource}", arn_prefix(AuthKind::V2)));
    ev
}

#[test]
fn http_api_catch_all_and_templated_routes_admit_a_valid_token() {
    // The `$default` route's ARN is `{stage}/$default`, with no second slash: a grant of
    // `{stage}/*/*` never matches it, `{stage}/*` does.
    let keys = Keys::ed25519();
    let token = keys.token(&["user"]);
    let authorizer = keys.authorizer(None, V2Response::Iam);
    for (route_key, resource) in [
        ("$default", "$default"),
        ("ANY /{proxy+}", "ANY/{proxy+}"),
        ("GET /items/{id}", "GET/items/{id}"),
        ("GET /items/{id}", "GET/items/7"),
    ] {
        let ev = v2_on_route(route_key, resource, "GET", "/items/7", &token);
        let route_arn = ev["routeArn"].as_str().unwrap().to_owned();
        let response = authorizer.decide(ev).unwrap();
        let policy = policy_of(&response);
        assert_eq!(
            judge(policy, &route_arn),
            Some(Effect::Allow),
            "{route_key}"
        );
        // Simple responses say the same.
        let simple = keys
            .authorizer(None, V2Response::Simple)
            .decide(v2_on_route(route_key, resource, "GET", "/items/7", &token))
            .unwrap();
        assert_eq!(serde_json::to_value(&simple).unwrap()["isAuthorized"], true);
    }
}

#[test]
fn with_rules_a_route_arn_without_a_concrete_path_admits_only_tokens_that_pass_every_rule() {
    // `ANY /{proxy+}` and `$default` ARNs do not say which path was asked for, and API
    // Gateway reuses a cached policy on them for every path: a token that fails a rule (here
    // a user on `GET /admin/*`) must be denied there, or it would reach admin paths.
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(Some(RULES), V2Response::Iam);
    let user = keys.token(&["user"]);
    let admin = keys.token(&["user", "admin"]);
    for (route_key, resource) in [("$default", "$default"), ("ANY /{proxy+}", "ANY/{proxy+}")] {
        for (token, expected) in [(&user, Effect::Deny), (&admin, Effect::Allow)] {
            let ev = v2_on_route(route_key, resource, "GET", "/admin/users", token);
            let route_arn = ev["routeArn"].as_str().unwrap().to_owned();
            let response = authorizer.decide(ev).unwrap();
            assert_eq!(
                judge(policy_of(&response), &route_arn),
                Some(expected),
                "{route_key}"
            );
        }
    }
    // Concrete routes still follow the rules path by path.
    let response = authorizer
        .decide(v2_on_route(
            "GET /items",
            "GET/items",
            "GET",
            "/items",
            &user,
        ))
        .unwrap();
    let policy = policy_of(&response);
    let prefix = arn_prefix(AuthKind::V2);
    assert_eq!(
        judge(policy, &format!("{prefix}/GET/items")),
        Some(Effect::Allow)
    );
    assert_eq!(
        judge(policy, &format!("{prefix}/GET/admin/users")),
        Some(Effect::Deny)
    );
}

fn authorizer_env(extra: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
    let mut env = HashMap::from([
        ("JWT_ISSUER", "https://auth.test"),
        ("JWT_AUDIENCE", "test-api"),
        ("JWT_SECRET", HS256_SECRET),
    ]);
    assert_eq!(
        (env["JWT_ISSUER"], env["JWT_AUDIENCE"]),
        (settings().issuer.as_str(), settings().audience.as_str())
    );
    env.extend(extra.iter().copied());
    env
}

#[test]
fn with_rules_http_api_answers_are_policies_so_a_cached_answer_cannot_open_an_admin_route() {
    // API Gateway caches one answer per token and reuses it on every route. A simple
    // `isAuthorized: true` for `GET /items` would then be reused on `GET /admin/users`.
    let keys = Keys::hs256();
    let user = keys.token(&["user"]);
    let authorizer = Authorizer::from_env(&authorizer_env(&[("AUTHORIZER_RULES", RULES)])).unwrap();
    let first = authorizer
        .decide(event(AuthKind::V2, "GET", "/items", Some(&bearer(&user))))
        .unwrap();
    let cached = policy_of(&first);
    let prefix = arn_prefix(AuthKind::V2);
    assert_eq!(
        judge(cached, &format!("{prefix}/GET/items")),
        Some(Effect::Allow)
    );
    assert_eq!(
        judge(cached, &format!("{prefix}/GET/admin/users")),
        Some(Effect::Deny)
    );

    // Simple answers with rules need an opt-in whose name says what it costs.
    let refused = Authorizer::from_env(&authorizer_env(&[
        ("AUTHORIZER_RULES", RULES),
        ("AUTHORIZER_V2_RESPONSE", "simple"),
    ]));
    assert_eq!(refused.unwrap_err().variable, "AUTHORIZER_V2_RESPONSE");
    let opted_in = Authorizer::from_env(&authorizer_env(&[
        ("AUTHORIZER_RULES", RULES),
        ("AUTHORIZER_V2_RESPONSE", "simple-with-caching-off"),
    ]))
    .unwrap();
    let answer = opted_in
        .decide(event(
            AuthKind::V2,
            "GET",
            "/admin/users",
            Some(&bearer(&user)),
        ))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&answer).unwrap(),
        r#"{"isAuthorized":false}"#
    );
    // Without rules, simple answers stay the default: they are the same on every route.
    let plain = Authorizer::from_env(&authorizer_env(&[])).unwrap();
    let answer = plain
        .decide(event(AuthKind::V2, "GET", "/items", Some(&bearer(&user))))
        .unwrap();
    assert_eq!(serde_json::to_value(&answer).unwrap()["isAuthorized"], true);
}

#[test]
fn a_role_the_rules_refuse_gets_a_deny_policy() {
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(Some(RULES), V2Response::Iam);
    let user = keys.token(&["user"]);
    for kind in [AuthKind::Token, AuthKind::Request, AuthKind::V2] {
        let arn = format!("{}/GET/admin/users", arn_prefix(kind));
        let response = authorizer
            .decide(event(kind, "GET", "/admin/users", Some(&bearer(&user))))
            .unwrap();
        let policy = policy_of(&response);
        assert_eq!(judge(policy, &arn), Some(Effect::Deny), "{kind:?}");
        let deny = policy
            .statement
            .iter()
            .find(|s| s.effect == Effect::Deny)
            .unwrap();
        let prefix = arn_prefix(kind);
        assert_eq!(
            deny.resource,
            vec![
                format!("{prefix}/GET/admin/*"),
                format!("{prefix}/$default"),
                format!("{prefix}/*{{*"),
            ]
        );
    }
    // A token with no admitted role at all gets only a Deny.
    let guest = keys.token(&["guest"]);
    let response = authorizer
        .decide(event(
            AuthKind::Token,
            "GET",
            "/items",
            Some(&bearer(&guest)),
        ))
        .unwrap();
    let policy = policy_of(&response);
    assert!(policy.statement.iter().all(|s| s.effect == Effect::Deny));
    assert_eq!(
        judge(
            policy,
            &format!("{}/GET/items", arn_prefix(AuthKind::Token))
        ),
        Some(Effect::Deny)
    );
}

/// Routes (`METHOD/path` after the stage) and how the policy must judge them.
type RouteExpectations = [(&'static str, Option<Effect>); 4];

#[test]
fn one_cached_answer_is_right_for_every_route() {
    // API Gateway caches the first answer per token and reuses it for other routes, so the
    // policy returned for one route must judge every other route correctly too.
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(Some(RULES), V2Response::Iam);
    let prefix = arn_prefix(AuthKind::Token);
    let cases: [(&[&str], RouteExpectations); 3] = [
        (
            &["user"],
            [
                ("GET/items", Some(Effect::Allow)),
                ("POST/items/7", Some(Effect::Allow)),
                ("GET/admin/users", Some(Effect::Deny)),
                ("DELETE/admin/users", Some(Effect::Allow)),
            ],
        ),
        (
            &["user", "admin"],
            [
                ("GET/items", Some(Effect::Allow)),
                ("POST/items/7", Some(Effect::Allow)),
                ("GET/admin/users", Some(Effect::Allow)),
                ("DELETE/admin/users", Some(Effect::Allow)),
            ],
        ),
        (
            &["admin"],
            [
                ("GET/items", Some(Effect::Deny)),
                ("POST/items/7", Some(Effect::Deny)),
                ("GET/admin/users", Some(Effect::Deny)),
                ("DELETE/admin/users", Some(Effect::Deny)),
            ],
        ),
    ];
    for (roles, routes) in cases {
        let token = keys.token(roles);
        // First call on one route (the answer API Gateway caches)...
        let cached = authorizer
            .decide(event(
                AuthKind::Token,
                "GET",
                "/items",
                Some(&bearer(&token)),
            ))
            .unwrap();
        for (route, expected) in routes {
            let arn = format!("{prefix}/{route}");
            // ...judges every route as a fresh decision for that route would.
            let (method, path) = route.split_once('/').unwrap();
            let fresh = authorizer
                .decide(event(
                    AuthKind::Token,
                    method,
                    &format!("/{path}"),
                    Some(&bearer(&token)),
                ))
                .unwrap();
            assert_eq!(
                judge(policy_of(&cached), &arn),
                expected,
                "{roles:?} {route}"
            );
            assert_eq!(
                judge(policy_of(&fresh), &arn),
                expected,
                "{roles:?} {route}"
            );
        }
        // And nothing on another stage or API.
        let other_stage = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/test/GET/items";
        assert_ne!(judge(policy_of(&cached), other_stage), Some(Effect::Allow));
    }
}

#[test]
fn the_bearer_scheme_and_header_name_are_case_insensitive() {
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(None, V2Response::Simple);
    let token = keys.token(&["user"]);
    for value in [format!("bearer {token}"), format!("  BEARER   {token}  ")] {
        for kind in ALL_AUTH_KINDS {
            assert!(
                authorizer
                    .decide(event(kind, "GET", "/items", Some(&value)))
                    .is_ok(),
                "{kind:?} {value:?}"
            );
        }
    }
    let mut ev = event(AuthKind::Request, "GET", "/items", None);
    ev["headers"]["aUtHoRiZaTiOn"] = json!(bearer(&token));
    assert!(authorizer.decide(ev).is_ok());
}

#[test]
fn unknown_events_and_foreign_arns_fail_closed() {
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(None, V2Response::Simple);
    let token = keys.token(&["user"]);
    let mut foreign = event(AuthKind::Token, "GET", "/items", Some(&bearer(&token)));
    foreign["methodArn"] = json!("arn:aws:lambda:us-east-1:123456789012:function:f");
    let mut missing = event(AuthKind::Token, "GET", "/items", Some(&bearer(&token)));
    missing.as_object_mut().unwrap().remove("methodArn");
    for ev in [
        json!({}),
        json!(null),
        json!([1]),
        json!({"type": "OTHER"}),
        foreign,
        missing,
    ] {
        assert_eq!(authorizer.decide(ev), Err(Unauthorized));
    }
}

/// Builds a token with any header and claims, signed with an HMAC secret.
fn forge(header: Value, claims: Value, secret: &[u8]) -> String {
    let header: jsonwebtoken::Header = serde_json::from_value(header).unwrap();
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn claims_now() -> Value {
    let now = now_unix();
    json!({"sub": "00000000-0000-4000-8000-000000000000", "email": "m@evil.example",
           "iss": "https://auth.test", "aud": "test-api", "iat": now, "nbf": now,
           "exp": now + 600, "jti": "x", "roles": ["admin"]})
}

#[test]
fn every_attack_ends_in_exactly_unauthorized() {
    let keys = Keys::ed25519();
    let authorizer = keys.authorizer(None, V2Response::Iam);
    let good = keys.token(&["user"]);
    let kid = keys.issuer.key().kid().to_owned();
    let x = keys
        .issuer
        .key()
        .verification_key()
        .jwk()
        .unwrap()
        .x
        .clone()
        .unwrap();
    let public = URL_SAFE_NO_PAD.decode(&x).unwrap();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let flip = |segment: usize| {
        let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        let mut bytes = p[segment].clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        p[segment] = String::from_utf8(bytes).unwrap();
        p.join(".")
    };
    let with_claim = |k: &str, v: Value| {
        let mut c = claims_now();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        c
    };
    let secret = b"attacker-chosen-secret-0123456789";
    let hs_header = |extra: Value| {
        let mut h = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
        h.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        h
    };
    let other = Keys::ed25519();
    let now = now_unix();
    let expired = spoiled_token(&keys, |c| {
        c.iat = now - 2000;
        c.nbf = now - 2000;
        c.exp = now - 1000;
    });
    let future = spoiled_token(&keys, |c| {
        c.nbf = now + 600;
        c.exp = now + 1200;
    });
    let wrong_iss = spoiled_token(&keys, |c| c.iss = "https://evil.example".into());
    let wrong_aud = spoiled_token(&keys, |c| c.aud = "another-api".into());

    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                b64(&claims_now())
            ),
        ),
        (
            "alg none with junk signature",
            format!(
                "{}.{}.AAAA",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                b64(&claims_now())
            ),
        ),
        (
            "HS256 keyed with the Ed25519 public key bytes",
            forge(hs_header(json!({})), claims_now(), &public),
        ),
        (
            "HS256 keyed with the public key's base64url",
            forge(hs_header(json!({})), claims_now(), x.as_bytes()),
        ),
        (
            "unknown kid",
            forge(
                json!({"alg": "HS256", "typ": "at+jwt", "kid": "nope"}),
                claims_now(),
                secret,
            ),
        ),
        (
            "jku elsewhere",
            forge(
                hs_header(json!({"jku": "https://evil.example/jwks.json"})),
                claims_now(),
                secret,
            ),
        ),
        (
            "x5u elsewhere",
            forge(
                hs_header(json!({"x5u": "https://evil.example/cert.pem"})),
                claims_now(),
                secret,
            ),
        ),
        (
            "embedded jwk",
            forge(
                hs_header(json!({"jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret)}})),
                claims_now(),
                secret,
            ),
        ),
        ("expired", expired),
        ("nbf in the future", future),
        ("wrong iss", wrong_iss),
        ("wrong aud", wrong_aud),
        (
            "missing exp",
            forge(hs_header(json!({})), with_claim("exp", Value::Null), secret),
        ),
        (
            "refresh-style typ",
            forge(
                json!({"alg": "HS256", "typ": "refresh+jwt", "kid": kid}),
                claims_now(),
                secret,
            ),
        ),
        ("one byte of header changed", flip(0)),
        ("one byte of payload changed", flip(1)),
        ("one byte of signature changed", flip(2)),
        ("signature stripped", format!("{}.{}.", parts[0], parts[1])),
        ("two segments", format!("{}.{}", parts[0], parts[1])),
        ("four segments", format!("{good}.{}", parts[2])),
        (
            "not base64url",
            format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
        ),
        (
            "100 KB token",
            format!("{}.{}.{}", parts[0], "A".repeat(100_000), parts[2]),
        ),
        ("empty string", String::new()),
        ("token from another key", other.token(&["admin"])),
    ];
    for kind in ALL_AUTH_KINDS {
        for (name, token) in &attacks {
            let ev = event(kind, "GET", "/items", Some(&bearer(token)));
            assert_eq!(authorizer.decide(ev), Err(Unauthorized), "{kind:?}: {name}");
        }
        for (name, header) in [
            ("no header", None),
            ("Bearer with no token", Some("Bearer")),
            ("Bearer and spaces", Some("Bearer   ")),
            ("Basic scheme", Some("Basic YTpi")),
            ("bare token", Some(good.as_str())),
        ] {
            let ev = event(kind, "GET", "/items", header);
            assert_eq!(authorizer.decide(ev), Err(Unauthorized), "{kind:?}: {name}");
        }
    }
    let payload = Diagnostic::from(Unauthorized);
    assert_eq!(payload.error_message, "Unauthorized");
    // The real thing still passes.
    assert!(
        authorizer
            .decide(event(
                AuthKind::Token,
                "GET",
                "/items",
                Some(&bearer(&good))
            ))
            .is_ok()
    );
}

#[test]
fn a_critical_header_extension_ends_in_unauthorized_even_with_a_good_signature() {
    // RFC 7515 section 4.1.11: `crit` names extensions the recipient must understand or
    // refuse the token; we understand none. Signed by the real key, so only `crit` is wrong.
    let keys = Keys::from_key(SigningKey::ed25519_from_pem(TEST_PEM, None).unwrap());
    let authorizer = keys.authorizer(None, V2Response::Iam);
    let der: String = TEST_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(der)
        .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let sign = |header: &Value| {
        let message = format!("{}.{}", b64(header), b64(&claims_now()));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA)
                .unwrap();
        format!("{message}.{signature}")
    };
    let plain = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": keys.issuer.key().kid()});
    let mut critical = plain.clone();
    critical["crit"] = json!(["exp-ext"]);
    critical["exp-ext"] = json!(true);
    for kind in ALL_AUTH_KINDS {
        let ok = event(kind, "GET", "/items", Some(&bearer(&sign(&plain))));
        assert!(
            authorizer.decide(ok).is_ok(),
            "{kind:?}: the control passes"
        );
        let bad = event(kind, "GET", "/items", Some(&bearer(&sign(&critical))));
        assert_eq!(authorizer.decide(bad), Err(Unauthorized), "{kind:?}");
    }
}

/// A token signed by the right key whose claims `tweak` spoils.
fn spoiled_token(keys: &Keys, tweak: impl FnOnce(&mut shared::AccessClaims)) -> String {
    let mut claims = keys
        .issuer
        .issue(&subject(&["user"]), now_unix())
        .unwrap()
        .claims;
    tweak(&mut claims);
    secrecy::ExposeSecret::expose_secret(&keys.issuer.sign(&claims).unwrap()).to_owned()
}

const RSA_PEM: &str = include_str!("../../fixtures/rsa-2048.pem");

/// Signs exactly `header.claims` with an RSA PEM key, RS256.
fn forge_rs256(header: Value, claims: Value, pem: &str) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(&header), b64(&claims));
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::DecodePrivateKey as _;
    let der = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[test]
fn rsa_attacks_end_in_exactly_unauthorized_and_rs256_tokens_pass() {
    // The authorizer trusts one RSA and one Ed25519 key, as during a rotation between them.
    let rsa = SigningKey::from_pem(RSA_PEM, None).unwrap();
    let ed = SigningKey::ed25519_from_pem(TEST_PEM, None).unwrap();
    let mut set = shared::KeySet::default();
    set.insert(rsa.verification_key()).unwrap();
    set.insert(ed.verification_key()).unwrap();
    let verifier = shared::TokenVerifier::new(set, settings(), 30);
    let authorizer = Authorizer::new(verifier, None, V2Response::Iam);
    let rsa_keys = Keys::from_key(rsa.clone());
    let good = rsa_keys.token(&["user"]);
    for kind in ALL_AUTH_KINDS {
        let ev = event(kind, "GET", "/items", Some(&bearer(&good)));
        assert!(
            authorizer.decide(ev).is_ok(),
            "{kind:?}: a good RS256 token"
        );
    }
    let jwk = rsa.verification_key().jwk().cloned().unwrap();
    let n = jwk.n.clone().unwrap();
    let modulus = URL_SAFE_NO_PAD.decode(&n).unwrap();
    let hs_rsa = json!({"alg": "HS256", "typ": "at+jwt", "kid": rsa.kid()});
    let other_pem = include_str!("../../fixtures/rsa-2048-other.pem");
    let attacks = [
        (
            "HS256 keyed with the RSA modulus",
            forge(hs_rsa.clone(), claims_now(), &modulus),
        ),
        (
            "HS256 keyed with the modulus' base64url",
            forge(hs_rsa.clone(), claims_now(), n.as_bytes()),
        ),
        (
            "HS256 keyed with the published JWK",
            forge(
                hs_rsa,
                claims_now(),
                serde_json::to_string(&jwk).unwrap().as_bytes(),
            ),
        ),
        (
            "RS256 claimed for the Ed25519 key",
            forge_rs256(
                json!({"alg": "RS256", "typ": "at+jwt", "kid": ed.kid()}),
                claims_now(),
                RSA_PEM,
            ),
        ),
        ("EdDSA claimed for the RSA key", {
            let ed_token = Keys::from_key(ed.clone()).token(&["admin"]);
            let parts: Vec<&str> = ed_token.split('.').collect();
            let header = URL_SAFE_NO_PAD
                .encode(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": rsa.kid()}).to_string());
            format!("{header}.{}.{}", parts[1], parts[2])
        }),
        (
            "RS256 with our kid, signed by another RSA key",
            forge_rs256(
                json!({"alg": "RS256", "typ": "at+jwt", "kid": rsa.kid()}),
                claims_now(),
                other_pem,
            ),
        ),
        (
            "PS256 with our kid",
            forge_rs256(
                json!({"alg": "PS256", "typ": "at+jwt", "kid": rsa.kid()}),
                claims_now(),
                RSA_PEM,
            ),
        ),
    ];
    for kind in ALL_AUTH_KINDS {
        for (name, token) in &attacks {
            let ev = event(kind, "GET", "/items", Some(&bearer(token)));
            assert_eq!(authorizer.decide(ev), Err(Unauthorized), "{kind:?}: {name}");
        }
    }
    // A short RSA key cannot even be configured: the authorizer does not start.
    let short = include_str!("../../fixtures/rsa-1024.pem");
    assert!(SigningKey::from_pem(short, None).is_err());
}

/// The deployment's own claims (its customize-access-token hook) reach the context by their
/// names, as text, numbers and flags, in every event shape; a token without any has none.
#[test]
fn a_token_s_own_claims_reach_the_context() {
    use secrecy::ExposeSecret;
    use shared::CustomClaim;
    let keys = Keys::ed25519();
    let custom = std::collections::BTreeMap::from([
        ("tenant".to_owned(), CustomClaim::Text("acme".into())),
        ("plan_level".to_owned(), CustomClaim::Integer(3)),
        ("beta".to_owned(), CustomClaim::Flag(true)),
    ]);
    let token = keys
        .issuer
        .issue_with_claims(&subject(&["user"]), custom, shared::token::now_unix())
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    let authorizer = keys.authorizer(None, V2Response::Simple);
    for kind in ALL_AUTH_KINDS {
        let response = authorizer
            .decide(event(kind, "GET", "/items", Some(&bearer(&token))))
            .unwrap();
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["context"]["tenant"], "acme", "{kind:?}: {json}");
        assert_eq!(json["context"]["plan_level"], 3, "{kind:?}: {json}");
        assert_eq!(json["context"]["beta"], true, "{kind:?}: {json}");
    }
    let plain = keys.token(&["user"]);
    let response = authorizer
        .decide(event(
            AuthKind::Token,
            "GET",
            "/items",
            Some(&bearer(&plain)),
        ))
        .unwrap();
    assert!(!serde_json::to_string(&response).unwrap().contains("tenant"));
}
