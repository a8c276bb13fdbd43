//! Property tests for auth-api's entry points: whatever API Gateway event arrives, the
//! handler answers with a well-formed response and never a 5xx (the in-memory store cannot be
//! unavailable); whatever string is presented as an access or refresh token, parsing answers.

use accounts::model::session::RefreshToken;
use accounts::store::MemoryStore;
use integration_tests::app::{Answer, test_app};
use integration_tests::events::{ALL_KINDS, Event};
use proptest::prelude::*;
use serde_json::{Value, json};

const PATHS: [&str; 12] = [
    "/register",
    "/login",
    "/refresh",
    "/logout",
    "/logout-all",
    "/password",
    "/verify",
    "/health",
    "/me",
    "/.well-known/jwks.json",
    "/prod/login",
    "/",
];

fn body() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        ".{0,80}".prop_map(Some),
        (
            ".{0,20}",
            ".{0,20}",
            prop_oneof![
                Just("email"),
                Just("password"),
                Just("refresh_token"),
                Just("x")
            ]
        )
            .prop_map(|(a, b, k)| Some(json!({k: a, "password": b}).to_string())),
        Just(Some(
            r#"{"email":"ada@example.com","password":"correct horse battery staple"}"#.into()
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_event_gets_a_well_formed_answer_and_never_a_5xx(
        kind in 0..ALL_KINDS.len(),
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("OPTIONS")],
        path in prop_oneof![prop::sample::select(PATHS.to_vec()).prop_map(str::to_owned), "/[a-z./%-]{0,20}"],
        content_type in prop_oneof![Just("application/json".to_owned()), Just("text/plain".to_owned()), ".{0,20}"],
        body in body(),
        base64 in any::<bool>(),
        authorization in prop_oneof![Just(None), ".{0,60}".prop_map(Some)],
        sub in prop_oneof![Just(None), Just(Some(uuid::Uuid::new_v4().to_string())), ".{0,10}".prop_map(Some)],
    ) {
        let mut event = Event::new(ALL_KINDS[kind], method, &path).to_json();
        event["headers"]["content-type"] = json!(content_type);
        event["body"] = body.map_or(Value::Null, Value::String);
        event["isBase64Encoded"] = json!(base64);
        if let Some(value) = authorization {
            event["headers"]["authorization"] = json!(value);
        }
        let mut event = Event::from_json(ALL_KINDS[kind], event);
        if let Some(sub) = sub {
            event = event.authorized(&sub, "ada@example.com");
        }
        let Ok(request) = auth_api::http::lambda::request_from_json(&event.to_json().to_string()) else {
            // Not an event lambda_http deserializes at all: the runtime refuses it before us.
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let app = test_app(MemoryStore::new());
        let answer = Answer::from_response(runtime.block_on(app.handle(request)));
        prop_assert!(answer.status < 500, "{} for {}", answer.text, event.to_json());
        if answer.status >= 400 {
            answer.problem(answer.status);
        }
    }

    #[test]
    fn any_string_is_refused_as_an_access_token_without_panicking(token in ".{0,300}") {
        let app = test_app(MemoryStore::new());
        prop_assert!(app.verifier.verify(&token).is_err());
        let _ = shared::bearer_token(&token);
    }

    #[test]
    fn refresh_token_parsing_accepts_exactly_43_base64url_characters(text in "[A-Za-z0-9_=+/-]{0,50}") {
        let parsed = RefreshToken::parse(&text);
        if let Some(token) = parsed {
            prop_assert_eq!(text.len(), 43);
            use secrecy::ExposeSecret;
            let encoded = token.encode();
            prop_assert_eq!(encoded.expose_secret(), text.as_str());
        }
    }
}
