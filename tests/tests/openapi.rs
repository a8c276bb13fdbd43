//! openapi.yaml describes exactly the API that exists: its routes are the auth-api router's
//! and template.yaml's, and the routes behind the authorizer carry the bearer scheme.

use std::collections::BTreeSet;

use auth_api::routes::Route;
use integration_tests::local::TEMPLATE;
use serde_norway::Value;

const OPENAPI: &str = include_str!("../../openapi.yaml");

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
    let deployed: Routes = spec
        .routes
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(deployed, documented);
}

#[test]
fn every_route_behind_the_authorizer_is_documented_as_needing_a_bearer_token() {
    let (_, secured) = openapi_routes();
    let protected = router_routes(true);
    assert!(protected.is_subset(&secured), "{protected:?} ⊄ {secured:?}");
    // /verify checks the token itself; nothing else may claim to need one.
    let extra: Vec<_> = secured.difference(&protected).collect();
    assert_eq!(extra, [&("GET".to_owned(), "/verify".to_owned())]);
}
