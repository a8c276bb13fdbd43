//! Property tests: whatever the token or event, the authorizer answers — it never panics, and
//! it never lets an unsigned token through.

use authorizer::policy::Effect;
use authorizer::{AuthorizerResponse, Unauthorized, V2Response};
use integration_tests::authorizer_events::{ALL_AUTH_KINDS, Keys, arn_prefix, event, judge};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("TOKEN"),
            Just("REQUEST"),
            Just("2.0"),
            Just("Bearer a.b.c")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("type".to_owned()),
            Just("version".to_owned()),
            Just("methodArn".to_owned()),
            Just("routeArn".to_owned()),
            Just("authorizationToken".to_owned()),
            Just("headers".to_owned()),
            Just("identitySource".to_owned()),
            Just("requestContext".to_owned()),
            ".{0,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_events_never_panic(ev in arbitrary_json()) {
        let keys = Keys::hs256();
        for v2 in [V2Response::Simple, V2Response::Iam] {
            // Any arbitrary event lacks a valid signed token, so it can only be refused.
            prop_assert_eq!(keys.authorizer(None, v2).decide(ev.clone()), Err(Unauthorized));
        }
    }

    #[test]
    fn arbitrary_tokens_in_real_events_are_refused_without_panicking(token in ".{0,300}", scheme in "(Bearer|bearer|BEARER| Bearer ){0,1}") {
        let keys = Keys::ed25519();
        let authorizer = keys.authorizer(Some(r#"{"* /*": ["user"]}"#), V2Response::Simple);
        for kind in ALL_AUTH_KINDS {
            let header = format!("{scheme} {token}");
            prop_assert_eq!(authorizer.decide(event(kind, "GET", "/items", Some(&header))), Err(Unauthorized));
        }
    }

    #[test]
    fn any_route_gets_the_policy_the_rules_say(method in "[A-Z*]{0,8}", path in "/[ -~]{0,60}") {
        let keys = Keys::ed25519();
        let token = keys.token(&["user"]);
        let authorizer = keys.authorizer(Some(r#"{"GET /admin/*": ["admin"], "* /*": ["user"]}"#), V2Response::Iam);
        for kind in ALL_AUTH_KINDS {
            let answer = authorizer.decide(event(kind, &method, &path, Some(&format!("Bearer {token}"))));
            // A valid token always gets a policy; whatever the route, it denies the admin
            // routes to a user and allows the rest (judged independently of the crate).
            let Ok(AuthorizerResponse::Policy(policy)) = answer else {
                return Err(TestCaseError::fail(format!("{kind:?}: no policy: {answer:?}")));
            };
            let arn = format!("{}/{method}{path}", arn_prefix(kind));
            let admin_route = judge(&policy.policy_document, &format!("{}/GET/admin/x", arn_prefix(kind)));
            prop_assert_eq!(admin_route, Some(Effect::Deny));
            // A templated path (`{…}`) names no concrete route: denied to a token that fails
            // a rule.
            let expected = if (method == "GET" && path.starts_with("/admin/")) || path.contains('{') {
                Effect::Deny
            } else {
                Effect::Allow
            };
            prop_assert_eq!(judge(&policy.policy_document, &arn), Some(expected), "{}", arn);
        }
    }
}
