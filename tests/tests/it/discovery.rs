//! What lets any gateway or library check our tokens: the discovery document, the JWKS with
//! Ed25519 and RSA keys, and RFC 9068's `client_id` and `scope`. Verification by independent
//! libraries (npm jose, aws-jwt-verify) is tests/interop.

use accounts::store::{MemoryStore, Store};
use auth_api::App;
use integration_tests::app::{Answer, STRONG_PASSWORD, settings, test_app};
use integration_tests::events::{Event, Kind};
use integration_tests::local::LocalApi;
use serde_json::{Value, json};
use shared::{KeySet, SigningKey, TokenIssuer, TokenVerifier};

const RSA_PEM: &str = include_str!("../../fixtures/rsa-2048.pem");

async fn send<S: Store>(app: &App<S>, event: Event) -> Answer {
    Answer::from_response(app.handle(event.request()).await)
}

/// The app signing with `key`, accepting `also` too (a key being rotated in or out).
fn app_signing_with(key: SigningKey, also: Option<&SigningKey>) -> App<MemoryStore> {
    let mut app = test_app(MemoryStore::new());
    let mut keys = KeySet::default();
    keys.insert(key.verification_key()).unwrap();
    if let Some(other) = also {
        keys.insert(other.verification_key()).unwrap();
    }
    app.verifier = TokenVerifier::new(keys, settings(), 30);
    app.accounts.issuer = TokenIssuer::new(key, settings(), 900).with_client_id("web-app".into());
    app
}

#[tokio::test]
async fn discovery_names_the_issuer_its_jwks_and_nothing_it_does_not_have() {
    let app = test_app(MemoryStore::new());
    let answer = send(
        &app,
        Event::get(Kind::HttpV2, "/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
    let document = answer.json();
    assert_eq!(document["issuer"], "https://auth.test");
    assert_eq!(
        document["jwks_uri"],
        "https://auth.test/.well-known/jwks.json"
    );
    // ID tokens are signed with the signing key (EdDSA in the test app).
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    let members: Vec<&str> = document
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // Exactly the endpoints that exist, each at the route the router serves.
    let mut endpoints: Vec<&str> = members
        .into_iter()
        .filter(|m| m.ends_with("_endpoint"))
        .collect();
    endpoints.sort_unstable();
    assert_eq!(
        endpoints,
        vec![
            "authorization_endpoint",
            "device_authorization_endpoint",
            "end_session_endpoint",
            "introspection_endpoint",
            "revocation_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
        ],
        "{document}"
    );
    for (member, path) in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("end_session_endpoint", "/oauth2/logout"),
        (
            "device_authorization_endpoint",
            "/oauth2/device_authorization",
        ),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(document[member], format!("https://auth.test{path}"));
        assert!(
            auth_api::http::routes::Route::matching(path).is_some(),
            "{path} is not routed"
        );
    }
    assert_eq!(document["response_types_supported"], json!(["code"]));
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(
        document["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(document["subject_types_supported"], json!(["public"]));
    // OpenID Connect's own scopes; the registered clients' scopes are not published unless
    // an operator lists some.
    assert_eq!(
        document["scopes_supported"],
        json!(["openid", "email", "offline_access"])
    );
    let mut published = test_app(MemoryStore::new());
    published.published_scopes = vec!["orders:read".into()];
    let document = send(
        &published,
        Event::get(Kind::HttpV2, "/.well-known/openid-configuration"),
    )
    .await
    .json();
    assert_eq!(
        document["scopes_supported"],
        json!(["openid", "email", "offline_access", "orders:read"])
    );
    // Under HS256 nothing is published, as with the JWKS.
    let secret = secrecy::SecretString::from("0123456789abcdef0123456789abcdef");
    let hs = app_signing_with(SigningKey::hs256(secret, None).unwrap(), None);
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        send(&hs, Event::get(Kind::RestV1, path)).await.problem(404);
    }
}

#[tokio::test]
async fn an_rsa_signing_key_issues_rs256_tokens_the_jwks_and_discovery_describe() {
    let rsa = SigningKey::from_pem(RSA_PEM, None).unwrap();
    let old = SigningKey::ed25519_generate(None).unwrap();
    let app = app_signing_with(rsa.clone(), Some(&old));
    let discovery = send(
        &app,
        Event::get(Kind::RestV1, "/.well-known/openid-configuration"),
    )
    .await
    .json();
    // RS256, which every relying party supports.
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    let jwks = send(&app, Event::get(Kind::RestV1, "/.well-known/jwks.json"))
        .await
        .json();
    let kinds: Vec<(&str, &str)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kty"].as_str().unwrap(), k["kid"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("RSA", rsa.kid()), ("OKP", old.kid())]);
    assert!(jwks["keys"][0].get("d").is_none() && jwks["keys"][0].get("p").is_none());

    let credentials = json!({"email": "ada@example.com", "password": STRONG_PASSWORD});
    let registered = send(
        &app,
        Event::post_json(Kind::RestV1, "/register", &credentials),
    )
    .await;
    assert_eq!(registered.status, 201);
    let tokens = send(&app, Event::post_json(Kind::RestV1, "/login", &credentials))
        .await
        .json();
    let token = tokens["access_token"].as_str().unwrap();
    use base64::Engine as _;
    let decode = |part: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let parts: Vec<&str> = token.split('.').collect();
    let header = decode(parts[0]);
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("RS256"), Some(rsa.kid()))
    );
    let claims = decode(parts[1]);
    assert_eq!(claims["client_id"], "web-app");
    assert_eq!(claims["scope"], "user");
    let verified = send(&app, Event::get(Kind::RestV1, "/verify").bearer(token)).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
}

#[tokio::test]
async fn local_api_is_its_own_issuer_so_discovery_leads_back_to_it() {
    let api = LocalApi::spawn(MemoryStore::new(), &[], |_| {}).await;
    let http = reqwest::Client::new();
    let discovery: Value = http
        .get(api.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], api.url.as_str());
    let jwks: Value = http
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], api.config.key.kid());
    // With JWT_ISSUER set, that is the issuer, checked like auth-api's.
    let named = LocalApi::spawn(
        MemoryStore::new(),
        &[("JWT_ISSUER", "https://auth.example.com")],
        |_| {},
    )
    .await;
    assert_eq!(named.config.settings.issuer, "https://auth.example.com");
}
