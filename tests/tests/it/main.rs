//! The integration tests: one binary (each extra one would link the AWS SDK again), one module
//! per area. `logs.rs` stays apart because it installs the global log subscriber.

mod auth_api_props;
mod authorizer;
mod authorizer_props;
mod dynamo_api;
mod handler;
mod local_api;
mod mail;
mod openapi;
mod recovery;
mod runtime_contract;
mod sessions;
mod store_contract;
