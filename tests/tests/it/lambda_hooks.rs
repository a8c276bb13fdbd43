//! Hooks given as a Lambda function ARN: auth-api's real SDK `Invoke` call reaches a real
//! function binary (examples/lambda-hook, its release build) under the Runtime API emulator,
//! through an Invoke front. Every call goes through scripts/test's recorder and is checked
//! against the templates' IAM policies (`lambda:InvokeFunction` on exactly the hook's ARN).
//! Allow, deny, claims; a function error, an out-of-contract or reserved answer, a function
//! that never answers and an unknown function all refuse (503) when failures close, and a
//! registration goes on when they open.

use std::time::Duration;

use accounts::hooks::{HookFailure, HookTarget, Hooks};
use accounts::model::credentials::Email;
use accounts::store::{AdminStore, MemoryStore, SessionStore, Store};
use auth_api::App;
use integration_tests::app::{STRONG_PASSWORD, post, test_app};
use integration_tests::dynamo::{AUTH_API_KEY, endpoint, fresh_store, sdk_as};
use integration_tests::events::{Event, Kind};
use integration_tests::lambda_invoke::{InvokeFront, recorded, scripted_function};
use integration_tests::runtime_api::{Report, RuntimeApi, spawn};
use serde_json::{Value, json};
use shared::CustomClaim;
use tokio::process::Child;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:auth-hooks";

/// A function's answer to each event, played by the test: `Err` is the function's error.
type Script = fn(&Value) -> Result<Value, Value>;

/// A hook function behind an Invoke front and the call recorder; stopped when dropped.
struct LambdaHook {
    endpoint: String,
    _front: InvokeFront,
    _recorder: Child,
    _function: Option<Child>,
    _scripted: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for LambdaHook {
    fn drop(&mut self) {
        if let Some(task) = &self._scripted {
            task.abort();
        }
    }
}

/// The example hook function's release binary, as the function `ARN`, with `env`.
async fn example_hook(env: &[(&str, String)]) -> LambdaHook {
    let api = RuntimeApi::start().await;
    let function = spawn("lambda-hook", &api, env);
    let front = InvokeFront::start(ARN, api).await;
    let (endpoint, recorder) = recorded(&front.url()).await;
    LambdaHook {
        endpoint,
        _front: front,
        _recorder: recorder,
        _function: Some(function),
        _scripted: None,
    }
}

/// A function played by the test (`answer`), or none at all: nothing ever answers.
async fn scripted_hook(arn: &str, answer: Option<Script>) -> LambdaHook {
    let api = RuntimeApi::start().await;
    let scripted = answer.map(|answer| scripted_function(api.address(), answer));
    let front = InvokeFront::start(arn, api).await;
    let (endpoint, recorder) = recorded(&front.url()).await;
    LambdaHook {
        endpoint,
        _front: front,
        _recorder: recorder,
        _function: None,
        _scripted: scripted,
    }
}

/// `app` asking `hook` for both hooks, as auth-api's main wires them (its own SDK
/// configuration, the Lambda endpoint pointed at the recorder).
fn with_lambda_hooks<S>(
    mut app: App<S>,
    hook: &LambdaHook,
    timeout_ms: u64,
    failure: HookFailure,
) -> App<S> {
    let sdk = sdk_as(AUTH_API_KEY)
        .into_builder()
        .endpoint_url(&hook.endpoint)
        .build();
    app.accounts.hooks = auth_api::hooks::with_transports(
        Hooks {
            before_user_created: Some(HookTarget::Lambda(ARN.into())),
            customize_access_token: Some(HookTarget::Lambda(ARN.into())),
            secret: None,
            timeout_ms,
            failure,
            transport: None,
        },
        Some(&sdk),
    )
    .unwrap();
    app
}

/// A registration, never left hanging: every hook failure is bounded by its timeout.
async fn register<S: Store>(app: &App<S>, email: &str) -> integration_tests::app::Answer {
    tokio::time::timeout(
        Duration::from_secs(20),
        post(
            app,
            "/register",
            json!({"email": email, "password": STRONG_PASSWORD}),
            None,
        ),
    )
    .await
    .expect("answered, not hung")
}

async fn exists<S: Store>(app: &App<S>, email: &str) -> bool {
    app.accounts
        .store
        .find_user(&Email::parse(email).unwrap())
        .await
        .unwrap()
        .is_some()
}

async fn a_lambda_hook_allows_denies_and_adds_claims<S: Store>(app: App<S>) {
    let hook = example_hook(&[("ALLOWED_EMAIL_DOMAINS", "example.com".into())]).await;
    let app = with_lambda_hooks(app, &hook, 5000, HookFailure::Closed);

    let denied = register(&app, "eve@elsewhere.example").await;
    let problem = denied.problem(400);
    assert_eq!(problem["type"], "urn:problem-type:auth:registration-denied");
    assert_eq!(
        problem["detail"],
        "Sign-up is open to addresses at example.com only."
    );
    assert!(!exists(&app, "eve@elsewhere.example").await);

    assert_eq!(register(&app, "ada@Example.com").await.status, 201);
    let session = post(
        &app,
        "/login",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(session.status, 200, "{}", session.text);
    let claims = app
        .verifier
        .verify(session.json()["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        claims.custom["tenant"],
        CustomClaim::Text("example.com".into())
    );
    assert_eq!(claims.custom["mfa"], CustomClaim::Flag(false));
    assert_eq!(claims.roles, ["user"]);
}

#[tokio::test]
async fn a_lambda_hook_allows_denies_and_adds_claims_in_memory() {
    a_lambda_hook_allows_denies_and_adds_claims(test_app(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_lambda_hook_allows_denies_and_adds_claims_on_dynamodb() {
    a_lambda_hook_allows_denies_and_adds_claims(test_app(fresh_store(&endpoint()).await)).await;
}

/// Each way a Lambda hook can fail refuses the registration with 503 `hook-unavailable`
/// (nothing written) while failures close, and lets it through when they open.
#[tokio::test]
async fn a_failing_lambda_hook_refuses_or_lets_through_as_configured() {
    let failing: [(&str, Option<Script>, &str); 5] = [
        (
            "a function error",
            Some(|_| Err(json!({"errorType": "Error", "errorMessage": "boom"}))),
            ARN,
        ),
        ("an answer out of contract", Some(|_| Ok(json!("ok"))), ARN),
        (
            "a decision out of contract",
            Some(|_| Ok(json!({"decision": "perhaps"}))),
            ARN,
        ),
        ("no answer within the timeout", None, ARN),
        (
            "a function that does not exist",
            Some(|_| Ok(json!({"decision": "allow"}))),
            "arn:aws:lambda:us-east-1:123456789012:function:another",
        ),
    ];
    for (case, answer, served) in failing {
        let hook = scripted_hook(served, answer).await;
        let app = with_lambda_hooks(
            test_app(MemoryStore::new()),
            &hook,
            300,
            HookFailure::Closed,
        );
        let refused = register(&app, "ada@example.com").await;
        assert_eq!(
            refused.problem(503)["type"],
            "urn:problem-type:auth:hook-unavailable",
            "{case}"
        );
        assert!(!exists(&app, "ada@example.com").await, "{case}");

        let app = with_lambda_hooks(test_app(MemoryStore::new()), &hook, 300, HookFailure::Open);
        assert_eq!(
            register(&app, "ada@example.com").await.status,
            201,
            "{case}, failures open"
        );
    }
}

/// A claim under a reserved name refuses the sign-in before any session is written.
#[tokio::test]
async fn a_lambda_hook_cannot_claim_a_reserved_name() {
    let hook = scripted_hook(
        ARN,
        Some(|request| match request["type"].as_str() {
            Some("before-user-created") => Ok(json!({"decision": "allow"})),
            _ => Ok(json!({"claims": {"sub": "someone-else", "tenant": "acme"}})),
        }),
    )
    .await;
    let app = with_lambda_hooks(
        test_app(MemoryStore::new()),
        &hook,
        2000,
        HookFailure::Closed,
    );
    assert_eq!(register(&app, "ada@example.com").await.status, 201);
    let refused = post(
        &app,
        "/login",
        json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(
        refused.problem(503)["type"],
        "urn:problem-type:auth:hook-unavailable"
    );
    let user = app
        .accounts
        .store
        .find_user(&Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.accounts
            .store
            .list_sessions(user.user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

fn response_body(report: Report) -> Value {
    match report {
        Report::Response { body, .. } => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The shipped artefacts: the release auth-api, configured by its variables alone, invokes
/// the release example hook (denying a domain, adding the tenant claim).
#[tokio::test]
async fn the_release_auth_api_invokes_a_lambda_hook_by_its_arn() {
    let hook = example_hook(&[("ALLOWED_EMAIL_DOMAINS", "example.com".into())]).await;
    let store = fresh_store(&endpoint()).await;
    let mut api = RuntimeApi::start().await;
    let env = vec![
        ("JWT_ISSUER", integration_tests::app::settings().issuer),
        ("JWT_AUDIENCE", integration_tests::app::settings().audience),
        (
            "JWT_SIGNING_KEY",
            integration_tests::app::TEST_PEM.to_owned(),
        ),
        ("USERS_TABLE", store.table().to_owned()),
        ("BCRYPT_COST", "4".to_owned()),
        ("BCRYPT_ALLOW_LOW_COST", "true".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        ("AWS_ENDPOINT_URL_LAMBDA", hook.endpoint.clone()),
        ("HOOK_BEFORE_USER_CREATED", ARN.to_owned()),
        ("HOOK_CUSTOMIZE_ACCESS_TOKEN", ARN.to_owned()),
    ];
    let mut child = spawn("auth-api", &api, &env);
    let register = |email: &str| {
        Event::post_json(
            Kind::RestV1,
            "/register",
            &json!({"email": email, "password": STRONG_PASSWORD}),
        )
        .to_json()
    };
    let denied = response_body(api.invoke(register("eve@elsewhere.example")).await);
    assert_eq!(denied["statusCode"], 400, "{denied}");
    let problem: Value = serde_json::from_str(denied["body"].as_str().unwrap()).unwrap();
    assert_eq!(problem["type"], "urn:problem-type:auth:registration-denied");

    let registered = response_body(api.invoke(register("ada@example.com")).await);
    assert_eq!(registered["statusCode"], 201, "{registered}");
    let login = Event::post_json(
        Kind::HttpV2,
        "/login",
        &json!({"email": "ada@example.com", "password": STRONG_PASSWORD}),
    );
    let login = response_body(api.invoke(login.to_json()).await);
    assert_eq!(login["statusCode"], 200, "{login}");
    let tokens: Value = serde_json::from_str(login["body"].as_str().unwrap()).unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["tenant"], "example.com");
    assert_eq!(claims["mfa"], false);
    child.kill().await.unwrap();
}
