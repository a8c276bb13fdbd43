//! The integration tests: one binary (each extra one would link the AWS SDK again), one module
//! per area. `logs.rs` stays apart because it installs the global log subscriber.

/// Runs each case, an `async fn(App<S>)`, over the in-memory store and over DynamoDB Local.
macro_rules! over_both_stores {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use accounts::store::MemoryStore;
            use integration_tests::app::test_app;
            use integration_tests::dynamo::{endpoint, fresh_store};

            #[tokio::test]
            async fn memory() {
                super::$case(test_app(MemoryStore::new())).await;
            }

            #[tokio::test]
            async fn dynamodb() {
                super::$case(test_app(fresh_store(&endpoint()).await)).await;
            }
        }
    )*};
}

mod account;
mod admin;
mod architecture;
mod auth_api_props;
mod authorizer;
mod authorizer_props;
mod browser;
mod device;
mod discovery;
mod docs;
mod dynamo_api;
mod event_delivery;
mod events;
mod federation;
mod handler;
mod hooks;
mod http_api;
mod lambda_hooks;
mod local_api;
mod mail;
mod mfa;
mod oauth;
mod oidc;
mod openapi;
mod passkeys;
mod recovery;
mod revocation;
mod runtime_contract;
mod sessions;
mod store_contract;
