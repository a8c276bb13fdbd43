//! Helpers shared by the integration tests: API Gateway events built from real fixtures, the
//! app under test, the DynamoDB server that `scripts/test` starts, and a fault-injecting proxy.

pub mod app;
pub mod architecture;
pub mod authorizer_events;
pub mod dynamo;
pub mod events;
pub mod http_peer;
pub mod lambda_invoke;
pub mod local;
pub mod logs;
pub mod oidc;
pub mod passkeys;
pub mod runtime_api;
pub mod store_contract;
pub mod upstream;
