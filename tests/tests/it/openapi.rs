//! The deployment contract. openapi.yaml describes exactly the API that exists: its routes are
//! the auth-api router's and template.yaml's, and the routes behind the authorizer carry the
//! bearer scheme. template.yaml, as SAM really translates it, deploys one stage, and the
//! documented deploy commands reach CloudFormation with every parameter whole.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use auth_api::http::routes::Route;
use integration_tests::local::{HTTP_TEMPLATE, TEMPLATE};
use serde_norway::Value;

const OPENAPI: &str = include_str!("../../../openapi.yaml");

/// A set of (method, path).
type Routes = BTreeSet<(String, String)>;

/// (method, path) of every operation in openapi.yaml, and those that need a bearer token.
fn openapi_routes() -> (Routes, Routes) {
    let doc: Value = serde_norway::from_str(OPENAPI).expect("openapi.yaml is YAML");
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut all = BTreeSet::new();
    let mut secured = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        let path = path.as_str().expect("a path").to_owned();
        for (method, operation) in item.as_mapping().expect("a path item") {
            let route = (method.as_str().unwrap().to_ascii_uppercase(), path.clone());
            let needs_token = operation["security"]
                .as_sequence()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if needs_token {
                secured.insert(route.clone());
            }
            all.insert(route);
        }
    }
    (all, secured)
}

fn router_routes(only_protected: bool) -> Routes {
    Route::ALL
        .iter()
        .filter(|r| !only_protected || r.protected())
        .map(|r| (r.method().to_owned(), r.path().to_owned()))
        .collect()
}

#[test]
fn openapi_template_and_router_have_the_same_routes() {
    let (documented, _) = openapi_routes();
    assert_eq!(documented, router_routes(false));
    let spec = local_api::template::parse(TEMPLATE).unwrap();
    // CORS preflights are deployed on every path but are no operation of the API.
    let deployed: Routes = spec
        .routes
        .iter()
        .filter(|r| r.method != "OPTIONS")
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(deployed, documented);

    // The zero-Lambda variant deploys the same routes, protected alike.
    let http = local_api::template::parse(HTTP_TEMPLATE).unwrap();
    let both = |spec: &local_api::template::GatewaySpec| -> Vec<(String, String, bool)> {
        spec.routes
            .iter()
            .map(|r| (r.method.clone(), r.path.clone(), r.protected))
            .collect()
    };
    assert_eq!(both(&http), both(&spec));
    assert_eq!(http.kind, local_api::template::ApiKind::Http);
}

#[test]
fn every_route_behind_the_authorizer_is_documented_as_needing_a_bearer_token() {
    let (_, secured) = openapi_routes();
    let protected = router_routes(true);
    assert!(protected.is_subset(&secured), "{protected:?} ⊄ {secured:?}");
    // /verify and userinfo check the token themselves; nothing else may claim to need one.
    let extra: Vec<_> = secured.difference(&protected).cloned().collect();
    let own = |m: &str, p: &str| (m.to_owned(), p.to_owned());
    assert_eq!(
        extra,
        [
            own("GET", "/oauth2/userinfo"),
            own("GET", "/verify"),
            own("POST", "/oauth2/userinfo"),
        ]
    );
}

/// README.md and every page of docs/, where the commands and snippets users copy live.
static DOCS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut pages: Vec<_> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    for page in pages {
        text.push_str(&std::fs::read_to_string(page).unwrap());
    }
    text
});

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs tests/sam/sam_checks.py with the Python on PATH that has SAM CLI (scripts/test puts
/// .tools/venv first), and returns its stdout.
fn sam(args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("tests/sam/sam_checks.py")
        .args(args)
        .current_dir(root())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "sam_checks.py {args:?} failed (run scripts/test, which installs SAM CLI into \
         .tools/venv and puts it on PATH): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// A JWKS as the documented commands make it: the test key's public JWK, compact JSON.
fn jwks() -> String {
    let key = shared::SigningKey::ed25519_from_pem(integration_tests::app::TEST_PEM, None).unwrap();
    let mut set = shared::KeySet::default();
    set.insert(key.verification_key()).unwrap();
    serde_json::to_string(&set.to_jwks()).unwrap()
}

fn translate(parameters: serde_json::Value) -> serde_json::Value {
    let out = sam(&["translate", "template.yaml", &parameters.to_string()]);
    serde_json::from_str(&out).expect("the translated template is JSON")
}

#[test]
fn sam_deploys_exactly_one_stage_with_throttling_logs_and_tracing() {
    let template = translate(serde_json::json!({"PublicJwks": jwks()}));
    let resources = template["Resources"].as_object().unwrap();
    // A stage comes from a Stage resource or from a Deployment's StageName (how SAM adds
    // its extra "Stage" stage when OpenApiVersion is not set).
    let mut stages = Vec::new();
    for (name, resource) in resources {
        match resource["Type"].as_str() {
            Some("AWS::ApiGateway::Stage") => stages.push((name.clone(), resource.clone())),
            Some("AWS::ApiGateway::Deployment") => assert!(
                resource["Properties"].get("StageName").is_none(),
                "{name} creates a stage of its own: {resource}"
            ),
            _ => {}
        }
    }
    assert_eq!(stages.len(), 1, "{stages:?}");
    let stage = &stages[0].1["Properties"];
    assert_eq!(stage["StageName"], serde_json::json!({"Ref": "StageName"}));
    assert_eq!(stage["TracingEnabled"], true);
    assert!(stage["AccessLogSetting"]["DestinationArn"].is_object());
    assert!(stage["MethodSettings"][0]["ThrottlingRateLimit"].is_object());

    // The account's CloudWatch role, when the stack creates it, exists before the stage.
    assert_eq!(
        resources["ApiGatewayAccount"]["Condition"],
        "CreateCloudWatchRole"
    );
    let tags = stage["Tags"].to_string();
    assert!(tags.contains(r#"{"Ref":"ApiGatewayAccount"}"#), "{tags}");
    assert_eq!(
        resources["UsersTable"]["DeletionPolicy"],
        "RetainExceptOnCreate"
    );
}

/// Every documented `sam deploy` command that passes `--parameter-overrides`: its template
/// and the words after that flag, as bash expands them with `JWKS` set (and `API_URL`, the
/// stack output the HTTP API variant's second deploy reads).
fn readme_deploy_commands(jwks_for: impl Fn(&str) -> String) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    for line in DOCS.lines().filter(|l| l.starts_with("sam deploy")) {
        let Some((head, words)) = line.split_once("--parameter-overrides ") else {
            continue;
        };
        let template = head
            .split_once("--template-file ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("template.yaml")
            .to_owned();
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {words}"))
            .env("JWKS", jwks_for(&template))
            .env(
                "API_URL",
                "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            )
            .output()
            .expect("bash runs");
        assert!(output.status.success());
        let words = String::from_utf8(output.stdout)
            .unwrap()
            .split('\0')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        commands.push((template, words));
    }
    commands
}

/// The JWKS the documented commands make for `template`: Ed25519 for template.yaml, RSA for the
/// HTTP API variant.
fn readme_jwks(template: &str) -> String {
    if template == "template.yaml" {
        return jwks();
    }
    let key =
        shared::SigningKey::from_pem(include_str!("../../fixtures/rsa-2048.pem"), None).unwrap();
    let mut set = shared::KeySet::default();
    set.insert(key.verification_key()).unwrap();
    serde_json::to_string(&set.to_jwks()).unwrap()
}

fn parse_overrides(words: &[String]) -> serde_json::Value {
    let mut args = vec!["overrides"];
    args.extend(words.iter().map(String::as_str));
    serde_json::from_str(&sam(&args)).unwrap()
}

#[test]
fn the_documented_deploy_commands_reach_cloudformation_with_the_whole_jwks() {
    let commands = readme_deploy_commands(readme_jwks);
    let mut templates: Vec<&str> = commands.iter().map(|(t, _)| t.as_str()).collect();
    templates.sort_unstable();
    assert_eq!(
        templates,
        [
            "template-http-api.yaml",
            "template-http-api.yaml",
            "template.yaml"
        ]
    );
    for (template, words) in &commands {
        let parsed = parse_overrides(words);
        assert_eq!(
            parsed["PublicJwks"],
            readme_jwks(template).as_str(),
            "{parsed}"
        );
        if template == "template.yaml" {
            assert_eq!(parsed["JwtIssuer"], "https://auth.example.com");
        }
        for (name, value) in parsed.as_object().unwrap() {
            let value = value.as_str().unwrap();
            assert_eq!(
                sam(&["check", template, name, value]),
                "ok",
                "{template}: {name}={value}"
            );
        }
    }
    let jwks = jwks();
    // The form the README had: SAM CLI cuts the value at its first quote, and the template
    // now refuses what is left at deploy time instead of both functions failing at start.
    let naive = parse_overrides(&[format!("PublicJwks={jwks}")]);
    assert_eq!(naive["PublicJwks"], "{");
    assert_ne!(sam(&["check", "template.yaml", "PublicJwks", "{"]), "ok");
}

#[test]
fn bad_parameter_values_fail_the_deploy_not_the_first_request() {
    let rules = r#"{"GET /admin/*":["admin"],"* /*":["user"]}"#;
    let one = jwks();
    let key = &one[r#"{"keys":["#.len()..one.len() - "]}".len()];
    let two_keys = format!(r#"{{"keys":[{key},{key}]}}"#);
    let good = [
        ("JwtIssuer", "https://auth.example.com"),
        (
            "JwtIssuer",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        ),
        ("JwtAudience", "my-api"),
        ("PublicJwks", &jwks()),
        ("PublicJwks", &two_keys),
        ("AuthorizerRules", ""),
        ("AuthorizerRules", rules),
        ("ThrottlingRateLimit", "100"),
        ("ThrottlingBurstLimit", "1"),
        ("SessionMaxLifetimeSeconds", "7776000"),
        ("CreateApiGatewayCloudWatchRole", "true"),
        ("SesFromAddress", ""),
        ("SesFromAddress", "auth@mail.example.com"),
        ("SesIdentity", "example.com"),
        (
            "VerifyEmailUrlTemplate",
            "https://app.example.com/verify-email?token={token}",
        ),
        (
            "ResetPasswordUrlTemplate",
            "https://app.example.com/#/reset/{token}",
        ),
        ("AppName", "Acme Shop"),
        ("ResetTokenTtlSeconds", "1800"),
        ("RequireVerifiedEmail", "true"),
        ("CustomDomain", "auth.example.com"),
        (
            "CustomDomainCertificateArn",
            "arn:aws:acm:eu-west-1:123456789012:certificate/0e2a4d7c-5f3b-4a8e-9c1d-2b6f8a7e3d10",
        ),
        ("BrandName", "Acme Accounts"),
        ("BrandColor", "#0a7"),
        ("BrandLogoUrl", "https://cdn.example.com/logo.svg"),
        ("HookBeforeUserCreated", "https://hooks.example.com/signup"),
        (
            "HookBeforeUserCreated",
            "arn:aws:lambda:eu-west-1:123456789012:function:auth-hooks",
        ),
        (
            "HookCustomizeAccessToken",
            "arn:aws:lambda:eu-west-1:123456789012:function:auth-hooks:live",
        ),
    ];
    for (name, value) in good {
        assert_eq!(
            sam(&["check", "template.yaml", name, value]),
            "ok",
            "{name}={value}"
        );
    }
    let bad = [
        ("JwtIssuer", "http://auth.example.com"),
        ("JwtIssuer", "auth.example.com"),
        ("JwtIssuer", "https://auth.example.com/?x=1"),
        ("JwtAudience", ""),
        ("JwtAudience", "my api"),
        ("PublicJwks", "{"),
        ("PublicJwks", r#"{"keys":[]}"#),
        ("PublicJwks", "not json"),
        ("AuthorizerRules", "GET /admin/*"),
        ("AuthorizerRules", "{"),
        ("ThrottlingRateLimit", "0"),
        ("ThrottlingBurstLimit", "0"),
        ("SessionMaxLifetimeSeconds", "10"),
        ("CreateApiGatewayCloudWatchRole", "yes"),
        ("SesFromAddress", "not an address"),
        (
            "VerifyEmailUrlTemplate",
            "http://app.example.com/verify?token={token}",
        ),
        ("ResetPasswordUrlTemplate", "https://app.example.com/reset"),
        (
            "ResetPasswordUrlTemplate",
            "https://app.example.com/\"{token}",
        ),
        ("ResetTokenTtlSeconds", "100000"),
        ("VerifyTokenTtlSeconds", "60"),
        ("RequireVerifiedEmail", "yes"),
        ("CustomDomain", "https://auth.example.com"),
        ("CustomDomain", "Auth.Example.com"),
        (
            "CustomDomainCertificateArn",
            "arn:aws:iam::123456789012:role/x",
        ),
        ("BrandName", "<script>"),
        ("BrandColor", "blue"),
        ("BrandLogoUrl", "http://cdn.example.com/logo.svg"),
        ("BrandLogoUrl", "https://cdn.example.com/\"onerror=x"),
        ("HookBeforeUserCreated", "http://hooks.example.com/signup"),
        (
            "HookBeforeUserCreated",
            "arn:aws:lambda:eu-west-1:123456789012:function:*",
        ),
        (
            "HookCustomizeAccessToken",
            "arn:aws:lambda:eu-west-1:123456789012:layer:x",
        ),
        ("HookCustomizeAccessToken", "auth-hooks"),
    ];
    for (name, value) in bad {
        assert_ne!(
            sam(&["check", "template.yaml", name, value]),
            "ok",
            "{name}={value}"
        );
    }
}

#[test]
fn sam_deploys_preflights_without_the_authorizer_and_cors_on_the_gateway_s_own_answers() {
    let origins = "https://app.example.com,https://admin.example.com";
    let template = translate(serde_json::json!({
        "PublicJwks": jwks(),
        "CorsAllowedOrigins": origins,
        "RefreshTokenTransport": "cookie",
    }));
    let resources = template["Resources"].as_object().unwrap();
    let body = &resources["AuthApi"]["Properties"]["Body"];
    for route in Route::ALL {
        let path = route.path();
        let options = &body["paths"][path]["options"];
        assert!(
            options.get("security").is_none(),
            "{path}: a preflight carries no Authorization header: {options}"
        );
        let integration = &options["x-amazon-apigateway-integration"];
        assert_eq!(integration["type"], "aws_proxy", "{path}");
        assert!(
            integration["uri"]
                .to_string()
                .contains("AuthApiFunction.Arn"),
            "{path}: {integration}"
        );
        let method = route.method().to_ascii_lowercase();
        let operation = &body["paths"][path][method.as_str()];
        if route.protected() {
            assert_eq!(
                operation["security"],
                serde_json::json!([{"TokenAuthorizer": []}]),
                "{path}"
            );
        } else {
            assert!(operation.get("security").is_none(), "{path}: {operation}");
        }
    }
    // API Gateway's own answers: the header values, conditional on CORS being on.
    let responses = &body["x-amazon-apigateway-gateway-responses"];
    for kind in [
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "MISSING_AUTHENTICATION_TOKEN",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    ] {
        let parameters = &responses[kind]["responseParameters"];
        assert_eq!(
            parameters["gatewayresponse.header.Access-Control-Allow-Origin"],
            serde_json::json!({"Fn::If": ["HasCors", "method.request.header.origin", {"Ref": "AWS::NoValue"}]}),
            "{kind}"
        );
        assert_eq!(
            parameters["gatewayresponse.header.Vary"],
            serde_json::json!({"Fn::If": ["HasCors", "'Origin'", {"Ref": "AWS::NoValue"}]}),
            "{kind}"
        );
    }
    assert_eq!(
        template["Conditions"]["HasCors"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, ""]}]})
    );
    let variables = &resources["AuthApiFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        variables["CORS_ALLOWED_ORIGINS"],
        serde_json::json!({"Fn::If": ["HasCors", {"Ref": "CorsAllowedOrigins"}, {"Ref": "AWS::NoValue"}]})
    );
    assert_eq!(
        variables["REFRESH_TOKEN_TRANSPORT"],
        serde_json::json!({"Ref": "RefreshTokenTransport"})
    );
}

#[test]
fn cors_parameters_accept_exact_origins_and_refuse_what_browsers_never_send() {
    for good in [
        "",
        "*",
        "https://app.example.com",
        "https://app.example.com,http://localhost:5173",
        "https://a.example:8443",
    ] {
        assert_eq!(
            sam(&["check", "template.yaml", "CorsAllowedOrigins", good]),
            "ok",
            "{good}"
        );
    }
    for bad in [
        "https://app.example.com/",
        "https://app.example.com, https://b.example",
        "app.example.com",
        "https://*.example.com",
        "https://a.example,*",
        "ftp://a.example",
    ] {
        assert_ne!(
            sam(&["check", "template.yaml", "CorsAllowedOrigins", bad]),
            "ok",
            "{bad}"
        );
    }
    for transport in ["body", "cookie", "both"] {
        assert_eq!(
            sam(&["check", "template.yaml", "RefreshTokenTransport", transport]),
            "ok"
        );
    }
    assert_ne!(
        sam(&["check", "template.yaml", "RefreshTokenTransport", "header"]),
        "ok"
    );
}

/// The first YAML block of docs/authorizer.md under "Protecting an existing API".
fn readme_rest_snippet() -> String {
    let section = DOCS
        .split("## Protecting an existing API")
        .nth(1)
        .expect("docs/authorizer.md has the section");
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    format!(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nTransform: AWS::Serverless-2016-10-31\n{block}"
    )
}

#[test]
fn the_documented_rest_snippet_keeps_preflights_off_the_authorizer_and_cors_on_its_errors() {
    let dir = std::env::temp_dir().join(format!("readme-snippet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, readme_rest_snippet()).unwrap();
    let out = sam(&["translate", path.to_str().unwrap(), "{}"]);
    let _ = std::fs::remove_dir_all(&dir);
    let template: serde_json::Value = serde_json::from_str(&out).unwrap();
    let body = &template["Resources"]["MyApi"]["Properties"]["Body"];
    let items = &body["paths"]["/items"];
    assert_eq!(
        items["get"]["security"],
        serde_json::json!([{"AccessToken": []}])
    );
    let options = &items["options"];
    assert!(options.is_object(), "{items}");
    assert!(
        options.get("security").is_none(),
        "a preflight behind the authorizer: {options}"
    );
    assert_eq!(
        options["x-amazon-apigateway-integration"]["type"], "mock",
        "{options}"
    );
    let headers =
        options["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
            .to_string();
    assert!(headers.contains("'https://app.example.com'"), "{headers}");
    let responses = &body["x-amazon-apigateway-gateway-responses"];
    for kind in [
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "MISSING_AUTHENTICATION_TOKEN",
        "DEFAULT_5XX",
    ] {
        assert_eq!(
            responses[kind]["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"],
            "'https://app.example.com'",
            "{kind}"
        );
    }
}

/// `CheckSessions=true` puts the session-checking authorizer behind the API (and the export),
/// with read-only access to session and user items and only the attributes the check reads;
/// its refusals when DynamoDB fails are the gateway's 503 with `Retry-After`.
#[test]
fn check_sessions_deploys_the_session_authorizer_with_read_only_access_to_its_items() {
    let template = translate(serde_json::json!({"PublicJwks": jwks(), "CheckSessions": "true"}));
    let resources = template["Resources"].as_object().unwrap();
    let choice = serde_json::json!({"Fn::If": [
        "ChecksSessions",
        {"Fn::GetAtt": ["SessionAuthorizerFunction", "Arn"]},
        {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]},
    ]});
    let permission = resources
        .values()
        .find(|r| {
            r["Type"] == "AWS::Lambda::Permission"
                && r["Properties"]["SourceArn"]
                    .to_string()
                    .contains("authorizers")
        })
        .expect("the gateway may invoke the authorizer");
    assert_eq!(permission["Properties"]["FunctionName"], choice);
    let scheme = &resources["AuthApi"]["Properties"]["Body"]["components"]["securitySchemes"]["TokenAuthorizer"]
        ["x-amazon-apigateway-authorizer"];
    assert_eq!(scheme["authorizerUri"]["Fn::Sub"][1]["Authorizer"], choice);
    assert_eq!(
        template["Outputs"]["AuthorizerFunctionArn"]["Value"],
        choice
    );

    // Exactly one of the two functions exists, whichever way the parameter is set.
    assert_eq!(
        resources["AuthorizerFunction"]["Condition"],
        "StatelessAuthorizer"
    );
    assert_eq!(
        resources["SessionAuthorizerFunction"]["Condition"],
        "ChecksSessions"
    );
    let conditions = &template["Conditions"];
    assert_eq!(
        conditions["ChecksSessions"],
        serde_json::json!({"Fn::Equals": [{"Ref": "CheckSessions"}, "true"]})
    );
    assert_eq!(
        conditions["StatelessAuthorizer"],
        serde_json::json!({"Fn::Not": [{"Condition": "ChecksSessions"}]})
    );
    let function = &resources["SessionAuthorizerFunction"]["Properties"];
    let variables = &function["Environment"]["Variables"];
    assert_eq!(variables["AUTHORIZER_CHECK_SESSION"], "true");
    assert_eq!(
        variables["USERS_TABLE"],
        serde_json::json!({"Ref": "UsersTable"})
    );

    // Its role: BatchGetItem only, on the table only, session and user items only, and only
    // the attributes auth-api's code reads for the check.
    let role = &resources["SessionAuthorizerFunctionRole"]["Properties"];
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1, "{statements:?}");
    let statement = &statements[0];
    assert_eq!(statement["Action"], "dynamodb:BatchGetItem");
    assert_eq!(
        statement["Resource"],
        serde_json::json!({"Fn::GetAtt": ["UsersTable", "Arn"]})
    );
    let condition = &statement["Condition"];
    assert_eq!(
        condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        serde_json::json!(["SESSION#*", "EMAIL#*", "CLIENT#*"])
    );
    let mut granted: Vec<&str> = condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut read = accounts::store::dynamo::SESSION_STATE_ATTRIBUTES.to_vec();
    granted.sort_unstable();
    read.sort_unstable();
    assert_eq!(granted, read);
    assert_eq!(
        condition["StringEqualsIfExists"]["dynamodb:Select"],
        "SPECIFIC_ATTRIBUTES"
    );

    let responses = &resources["AuthApi"]["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
        ["AUTHORIZER_CONFIGURATION_ERROR"];
    assert_eq!(responses["statusCode"], "503");
    assert_eq!(
        responses["responseParameters"]["gatewayresponse.header.Retry-After"],
        "'1'"
    );
}

/// The zero-Lambda variant as SAM translates it: an HTTP API whose built-in JWT authorizer
/// takes the stack's issuer and audience, guards exactly the router's protected routes, and no
/// authorizer function at all.
#[test]
fn the_http_api_variant_protects_its_routes_with_the_built_in_jwt_authorizer() {
    let rsa_jwks = {
        let pem = include_str!("../../fixtures/rsa-2048.pem");
        let key = shared::SigningKey::from_pem(pem, None).unwrap();
        let mut set = shared::KeySet::default();
        set.insert(key.verification_key()).unwrap();
        serde_json::to_string(&set.to_jwks()).unwrap()
    };
    let out = sam(&[
        "translate",
        "template-http-api.yaml",
        &serde_json::json!({"PublicJwks": rsa_jwks}).to_string(),
    ]);
    let template: serde_json::Value = serde_json::from_str(&out).unwrap();
    let resources = template["Resources"].as_object().unwrap();
    let functions: Vec<&String> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        functions,
        ["AuthApiFunction", "EventsFunction"],
        "no authorizer Lambda: auth-api and the event delivery"
    );
    let body = &resources["AuthApi"]["Properties"]["Body"];
    let scheme = &body["components"]["securitySchemes"]["JwtAuthorizer"];
    let authorizer = &scheme["x-amazon-apigateway-authorizer"];
    assert_eq!(authorizer["type"], "jwt");
    assert_eq!(
        authorizer["identitySource"],
        "$request.header.Authorization"
    );
    assert_eq!(
        authorizer["jwtConfiguration"],
        serde_json::json!({"issuer": {"Ref": "JwtIssuer"}, "audience": [{"Ref": "JwtAudience"}]})
    );
    let mut guarded = BTreeSet::new();
    for (path, item) in body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["security"] == serde_json::json!([{"JwtAuthorizer": []}]) {
                guarded.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(guarded, router_routes(true));

    // A JWKS without an RSA key cannot be deployed: the authorizer would refuse every token.
    assert_eq!(
        sam(&["check", "template-http-api.yaml", "PublicJwks", &jwks()]).trim(),
        "does not match AllowedPattern"
    );
}

/// Both templates give auth-api the MFA key's SSM parameter, and read access to it alone
/// beside the signing key's.
#[test]
fn both_templates_give_auth_api_its_mfa_key_parameter_and_nothing_more() {
    let rsa_jwks = readme_jwks("template-http-api.yaml");
    for (template, jwks) in [
        ("template.yaml", jwks()),
        ("template-http-api.yaml", rsa_jwks),
    ] {
        let out = sam(&[
            "translate",
            template,
            &serde_json::json!({"PublicJwks": jwks}).to_string(),
        ]);
        let translated: serde_json::Value = serde_json::from_str(&out).unwrap();
        let resources = &translated["Resources"];
        let variables = &resources["AuthApiFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            variables["MFA_ENCRYPTION_KEY_PARAMETER"],
            serde_json::json!({"Ref": "MfaKeyParameterName"}),
            "{template}"
        );
        let statements = &resources["AuthApiFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
            ["Statement"];
        let ssm = statements
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"] == "ssm:GetParameter")
            .unwrap_or_else(|| panic!("{template}: no ssm:GetParameter"));
        let resources = ssm["Resource"].to_string();
        assert!(
            resources.contains("${SigningKeyParameterName}"),
            "{resources}"
        );
        assert!(resources.contains("${MfaKeyParameterName}"), "{resources}");
        assert_eq!(ssm["Resource"].as_array().unwrap().len(), 2, "{resources}");
    }
}

/// A MethodSetting's `ResourcePath` as CloudFormation reads it: "/" then the path with each
/// "/" written "~1" (and "~" written "~0"), or "/*" for every method. `None` if malformed.
fn decode_resource_path(encoded: &str) -> Option<String> {
    let rest = encoded.strip_prefix('/')?;
    if rest == "*" {
        return Some("/*".to_owned());
    }
    if rest.contains('/') || !rest.starts_with("~1") {
        return None;
    }
    Some(rest.replace("~1", "/").replace("~0", "~"))
}

/// The public POST routes that cost a bcrypt or a mail: what a flood goes for.
const SIGN_IN_ROUTES: [&str; 18] = [
    "/login",
    "/oauth2/login",
    "/oauth2/register",
    "/oauth2/forgot",
    "/login/mfa",
    "/register",
    "/password/forgot",
    "/password/reset",
    "/email/verify",
    "/email/verify/resend",
    "/passkeys/login/options",
    "/passkeys/login",
    "/login/mfa/passkey/options",
    "/oauth2/device_authorization",
    // Both its GET (the link's user_code) and its POST look user codes up.
    "/oauth2/device",
    // Sign-in through other providers: a state written, a code redeemed, a code spent.
    "/oauth2/federate/{provider}",
    "/oauth2/callback/{provider}",
    "/federation/exchange",
];

/// Limits at the edge, as SAM deploys them with the defaults: one address cannot deny sign-in
/// to others. A WAF rate rule per client address guards the sign-in routes (on by default),
/// and the routes' shared throttle is a cost ceiling that only a hundred addresses at the
/// rate rule's limit could fill. The per-route throttles name real routes, their paths
/// encoded as CloudFormation wants them.
#[test]
fn one_address_cannot_use_up_the_sign_in_routes_under_the_default_deployment() {
    let defaults = translate(serde_json::json!({"PublicJwks": jwks()}));
    let resources = defaults["Resources"].as_object().unwrap();
    let parameters = &defaults["Parameters"];
    let default = |name: &str| -> f64 {
        let value = &parameters[name]["Default"];
        value
            .as_f64()
            .or_else(|| value.as_str().and_then(|v| v.parse().ok()))
            .unwrap_or_else(|| panic!("{name}: {value}"))
    };
    let stage = resources
        .values()
        .find(|r| r["Type"] == "AWS::ApiGateway::Stage")
        .unwrap();
    let settings = stage["Properties"]["MethodSettings"].as_array().unwrap();
    let mut throttled = Vec::new();
    for setting in settings {
        let encoded = setting["ResourcePath"].as_str().unwrap();
        let path = decode_resource_path(encoded)
            .unwrap_or_else(|| panic!("{encoded} is not a CloudFormation ResourcePath"));
        if path == "/*" {
            continue;
        }
        let method = setting["HttpMethod"].as_str().unwrap();
        assert_eq!(
            Route::find(method, &path).map(|r| r.protected()),
            Some(false),
            "{method} {encoded} ({path}) is no public route of the router"
        );
        if path == "/oauth2/token" {
            // Machine clients' token endpoint: its own ceiling, not the sign-in routes'.
            assert_eq!(
                setting["ThrottlingRateLimit"],
                serde_json::json!({"Ref": "TokenEndpointRateLimit"})
            );
            continue;
        }
        assert_eq!(
            setting["ThrottlingRateLimit"],
            serde_json::json!({"Ref": "AuthRouteRateLimit"})
        );
        throttled.push(path);
    }
    throttled.sort();
    throttled.dedup();
    let mut expected = SIGN_IN_ROUTES.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(throttled, expected);

    // WAF is on by default, and its rate rule counts per client address on every one of
    // those routes (under any stage prefix).
    assert_eq!(parameters["EnableWaf"]["Default"], "true");
    assert_eq!(
        defaults["Conditions"]["UsesWaf"],
        serde_json::json!({"Fn::Equals": [{"Ref": "EnableWaf"}, "true"]})
    );
    assert_eq!(resources["WebAcl"]["Condition"], "UsesWaf");
    assert_eq!(resources["WebAclAssociation"]["Condition"], "UsesWaf");
    let acl = &resources["WebAcl"]["Properties"];
    assert_eq!(acl["Scope"], "REGIONAL");
    let rules = acl["Rules"].as_array().unwrap();
    let rate = &rules[0]["Statement"]["RateBasedStatement"];
    assert_eq!(rate["AggregateKeyType"], "IP");
    assert_eq!(rate["Limit"], serde_json::json!({"Ref": "WafRateLimit"}));
    assert_eq!(rules[0]["Action"], serde_json::json!({"Block": {}}));
    let matchers = rate["ScopeDownStatement"]["OrStatement"]["Statements"]
        .as_array()
        .unwrap();
    for route in SIGN_IN_ROUTES {
        let uri = format!("/prod{route}");
        let covered = matchers.iter().any(|m| {
            let m = &m["ByteMatchStatement"];
            let needle = m["SearchString"].as_str().unwrap();
            match m["PositionalConstraint"].as_str().unwrap() {
                "ENDS_WITH" => uri.ends_with(needle),
                "CONTAINS" => uri.contains(needle),
                "EXACTLY" => uri == needle,
                "STARTS_WITH" => uri.starts_with(needle),
                other => panic!("{other}"),
            }
        });
        assert!(covered, "{route} escapes the per-address rate rule");
    }
    // The shared throttle: filling it takes 100 addresses at the rate rule's limit (WAF
    // counts per 5 minutes), and it stays at or below the stage's own.
    let per_address_per_second = default("WafRateLimit") / 300.0;
    assert!(
        default("AuthRouteRateLimit") >= 100.0 * per_address_per_second,
        "one address's allowance is too large a share of the sign-in throttle"
    );
    assert!(default("AuthRouteRateLimit") <= default("ThrottlingRateLimit"));
    assert!(default("AuthRouteBurstLimit") <= default("ThrottlingBurstLimit"));
    assert_eq!(
        rules[1]["Statement"]["ManagedRuleGroupStatement"]["Name"],
        "AWSManagedRulesCommonRuleSet"
    );
    // Associated with the one stage SAM deploys.
    let association = resources["WebAclAssociation"]["Properties"]["ResourceArn"].to_string();
    let stage_name = resources
        .iter()
        .find(|(_, r)| r["Type"] == "AWS::ApiGateway::Stage")
        .map(|(name, _)| name.clone())
        .unwrap();
    assert!(association.contains(&stage_name), "{association}");
    assert!(association.contains("/restapis/"), "{association}");

    // No cap on auth-api by default, never one on the authorizer.
    let reserved = &resources["AuthApiFunction"]["Properties"]["ReservedConcurrentExecutions"];
    assert_eq!(
        reserved,
        &serde_json::json!({"Fn::If": ["HasReservedConcurrency", {"Ref": "AuthApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]})
    );
    for authorizer in ["AuthorizerFunction", "SessionAuthorizerFunction"] {
        assert!(
            resources[authorizer]["Properties"]
                .get("ReservedConcurrentExecutions")
                .is_none(),
            "{authorizer}"
        );
    }
}

#[test]
fn resource_paths_decode_as_cloudformation_reads_them() {
    assert_eq!(
        decode_resource_path("/~1login~1mfa").as_deref(),
        Some("/login/mfa")
    );
    assert_eq!(decode_resource_path("/~1login").as_deref(), Some("/login"));
    assert_eq!(decode_resource_path("/*").as_deref(), Some("/*"));
    // The unencoded form CloudFormation does not take.
    assert_eq!(decode_resource_path("/login/mfa"), None);
    assert_eq!(decode_resource_path("/login"), None);
    assert_eq!(decode_resource_path("login"), None);
}

/// The account's API Gateway logging role serves every REST API of the account: deleting
/// this stack keeps it (and the account setting that names it).
#[test]
fn deleting_the_stack_keeps_the_accounts_api_gateway_logging_role() {
    let template = translate(serde_json::json!({
        "PublicJwks": jwks(),
        "CreateApiGatewayCloudWatchRole": "true",
    }));
    let resources = template["Resources"].as_object().unwrap();
    for name in ["ApiGatewayCloudWatchLogsRole", "ApiGatewayAccount"] {
        assert_eq!(resources[name]["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(resources[name]["UpdateReplacePolicy"], "Retain", "{name}");
        assert_eq!(
            resources[name]["Condition"], "CreateCloudWatchRole",
            "{name}"
        );
    }
}

/// The alarms, their topic and the dashboard, as SAM deploys them: each alarm watches a
/// metric the code really emits (the names and dimensions of shared::metrics' lines, checked
/// in the release binaries' output by runtime_contract), notifies the topic, and the
/// dashboard's body is JSON once CloudFormation substitutes it.
#[test]
fn alarms_watch_what_the_functions_emit_and_notify_the_topic() {
    let template = translate(serde_json::json!({
        "PublicJwks": jwks(),
        "AlarmEmail": "ops@example.com",
        "CheckSessions": "true",
        "SesFromAddress": "auth@example.com",
        "AppUrlTemplate": "https://app.example.com/{action}?token={token}",
    }));
    let resources = template["Resources"].as_object().unwrap();
    let alarms: std::collections::BTreeMap<&String, &serde_json::Value> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(name, r)| (name, &r["Properties"]))
        .collect();
    let names: Vec<&str> = alarms.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "Api5xxAlarm",
            "AuthApiErrorsAlarm",
            "AuthApiLatencyAlarm",
            "AuthApiServerErrorsAlarm",
            "AuthApiThrottlesAlarm",
            "AuthorizerErrorsAlarm",
            "AuthorizerLatencyAlarm",
            "AuthorizerThrottlesAlarm",
            "ClientAuthFailureSpikeAlarm",
            "CodeReuseAlarm",
            "EventsDeadLetterAlarm",
            "FailedLoginSpikeAlarm",
            "HookFailuresAlarm",
            "MailFailuresAlarm",
            "RefreshReuseAlarm",
            "SessionCheckFailuresAlarm",
            "StoreFailuresAlarm",
        ]
    );
    // What the code emits: every metric is a shared::metrics::Metric, so a name here that is
    // not one would be an alarm that never fires.
    let emitted = |name: &str| shared::metrics::Metric::named(name).is_some();
    let ours = serde_json::json!({"Fn::Sub": "ServerlessAuth/${AWS::StackName}"});
    for (name, alarm) in &alarms {
        assert_eq!(
            alarm["AlarmActions"],
            serde_json::json!([{"Ref": "AlarmTopic"}]),
            "{name}"
        );
        assert_eq!(
            alarm["OKActions"],
            serde_json::json!([{"Ref": "AlarmTopic"}]),
            "{name}"
        );
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{name}");
        if alarm["Namespace"] == ours {
            let metric = alarm["MetricName"].as_str().unwrap();
            assert!(
                emitted(metric),
                "{name} watches {metric}, which nothing emits"
            );
            let function = alarm["Dimensions"][0].clone();
            assert_eq!(function["Name"], "Function", "{name}");
            assert!(
                function["Value"] == "auth-api" || function["Value"] == "authorizer",
                "{name}"
            );
        }
    }
    // The authorizer's real errors: Lambda Errors less its own refusals.
    let real = &alarms[&"AuthorizerErrorsAlarm".to_owned()]["Metrics"];
    let expression = real
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ReturnData"] == true)
        .unwrap();
    assert_eq!(
        expression["Expression"],
        "FILL(errors, 0) - FILL(refusals, 0) - FILL(unavailable, 0)"
    );
    assert_eq!(
        alarms[&"FailedLoginSpikeAlarm".to_owned()]["Threshold"],
        serde_json::json!({"Ref": "FailedLoginAlarmThreshold"})
    );
    assert_eq!(
        alarms[&"AuthApiLatencyAlarm".to_owned()]["ExtendedStatistic"],
        "p99"
    );
    assert_eq!(
        resources["SessionCheckFailuresAlarm"]["Condition"],
        "ChecksSessions"
    );
    assert_eq!(resources["MailFailuresAlarm"]["Condition"], "SendsMail");
    // Events given up on: the dead-letter queue is not empty.
    let dead_letters = &alarms[&"EventsDeadLetterAlarm".to_owned()];
    assert_eq!(dead_letters["Namespace"], "AWS/SQS");
    assert_eq!(
        dead_letters["Dimensions"][0]["Value"],
        serde_json::json!({"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]})
    );

    // The topic, and the optional mail subscription.
    assert_eq!(resources["AlarmTopic"]["Type"], "AWS::SNS::Topic");
    let subscription = &resources["AlarmEmailSubscription"];
    assert_eq!(subscription["Condition"], "HasAlarmEmail");
    assert_eq!(subscription["Properties"]["Protocol"], "email");
    // The functions name the namespace the alarms watch.
    for function in [
        "AuthApiFunction",
        "AuthorizerFunction",
        "SessionAuthorizerFunction",
    ] {
        assert_eq!(
            resources[function]["Properties"]["Environment"]["Variables"]["METRICS_NAMESPACE"],
            ours,
            "{function}"
        );
    }

    // The dashboard's body is JSON once substituted.
    let body = &resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"];
    let mut text = body[0].as_str().unwrap().to_owned();
    for (placeholder, value) in [
        ("${Namespace}", "ServerlessAuth/stack"),
        ("${AWS::Region}", "us-east-1"),
        ("${AWS::StackName}", "stack"),
        ("${StageName}", "prod"),
        ("${AuthApiFunction}", "stack-AuthApiFunction-1"),
        ("${Authorizer}", "stack-AuthorizerFunction-1"),
    ] {
        text = text.replace(placeholder, value);
    }
    assert!(!text.contains("${"), "every placeholder is known: {text}");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["widgets"].as_array().unwrap().len(), 6);
    // The OpenID Provider's own: codes issued and codes reused.
    let shown = dashboard.to_string();
    for metric in ["CodesIssued", "CodeReuse"] {
        assert!(shown.contains(&format!("\"{metric}\"")), "{metric}");
    }
    // Each of its lines of our namespace names a metric the code emits.
    let mut ours = 0;
    for widget in dashboard["widgets"].as_array().unwrap() {
        for line in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if line[0] == "ServerlessAuth/stack" {
                let metric = line[1].as_str().unwrap();
                assert!(
                    emitted(metric),
                    "the dashboard shows {metric}, which nothing emits"
                );
                ours += 1;
            }
        }
    }
    assert!(
        ours >= 10,
        "the dashboard's own metrics went missing: {ours}"
    );
}

/// SAM gives every API event an AWS::Lambda::Permission, one statement in the function's
/// resource-based policy, whose limit is 20,480 bytes: with 45 events auth-api's was 18 KB for
/// a short stack name and 25 KB for a 128-character one (the deploy fails), and each route the
/// next features add made it worse. The routes are now the API's OpenAPI document with one
/// permission per function: the policies, as Lambda would keep them for a 128-character stack
/// name, are the same with 50 more routes, and far below the limit.
#[test]
fn each_function_s_resource_policy_is_one_statement_whatever_the_number_of_routes() {
    let stack = "s".repeat(128);
    let deployments = [
        ("template.yaml", serde_json::json!({"PublicJwks": jwks()})),
        (
            "template.yaml",
            serde_json::json!({"PublicJwks": jwks(), "CheckSessions": "true"}),
        ),
        (
            "template-http-api.yaml",
            serde_json::json!({"PublicJwks": readme_jwks("template-http-api.yaml")}),
        ),
    ];
    for (template, parameters) in deployments {
        let sizes = |extra: &str| -> serde_json::Value {
            serde_json::from_str(&sam(&[
                "policy-sizes",
                template,
                &parameters.to_string(),
                &stack,
                extra,
            ]))
            .unwrap()
        };
        let now = sizes("0");
        assert_eq!(
            now,
            sizes("50"),
            "{template}: the policies grow with the routes"
        );
        let policies = now.as_object().unwrap();
        assert!(
            policies.contains_key("AuthApiFunction"),
            "{template}: {now}"
        );
        for (function, size) in policies {
            assert_eq!(size[0], 1, "{template}: {function}: {now}");
            let bytes = size[1].as_u64().unwrap();
            assert!(
                bytes <= 20_480 / 10,
                "{template}: {function}: {bytes} bytes"
            );
        }
    }
}

/// A custom domain, as SAM deploys it: only when `CustomDomain` is set, regional, TLS 1.2,
/// mapped to the one stage, its DNS target an output; and a domain without a certificate is
/// refused before anything is created.
#[test]
fn a_custom_domain_maps_to_the_stage_only_when_asked_and_needs_its_certificate() {
    let template = translate(serde_json::json!({"PublicJwks": jwks()}));
    let resources = template["Resources"].as_object().unwrap();
    let domain = &resources["ApiDomainName"];
    assert_eq!(domain["Condition"], "HasCustomDomain");
    assert_eq!(domain["Type"], "AWS::ApiGateway::DomainName");
    let properties = &domain["Properties"];
    assert_eq!(
        properties["DomainName"],
        serde_json::json!({"Ref": "CustomDomain"})
    );
    assert_eq!(
        properties["EndpointConfiguration"]["Types"],
        serde_json::json!(["REGIONAL"])
    );
    assert_eq!(properties["SecurityPolicy"], "TLS_1_2");
    let mapping = &resources["ApiBasePathMapping"];
    assert_eq!(mapping["Condition"], "HasCustomDomain");
    assert_eq!(
        mapping["Properties"]["RestApiId"],
        serde_json::json!({"Ref": "AuthApi"})
    );
    assert_eq!(
        template["Conditions"]["HasCustomDomain"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "CustomDomain"}, ""]}]})
    );
    assert_eq!(
        template["Outputs"]["CustomDomainTarget"]["Condition"],
        "HasCustomDomain"
    );
    let rule = &template["Rules"]["CustomDomainNeedsCertificate"];
    assert_eq!(
        rule["Assertions"][0]["Assert"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "CustomDomainCertificateArn"}, ""]}]})
    );
}
