//! Where accounts live, by concern: [`UserStore`], [`AttemptStore`], [`SessionStore`],
//! [`ActionStore`], [`AccountStore`], [`AdminStore`], [`MfaStore`] and [`ClientStore`], and
//! [`Store`], all of them (what the flows need). Each has a DynamoDB implementation and an
//! in-memory one; both pass the same contract tests (tests/src/store_contract.rs). The records
//! they hold are domain types ([`crate::model::user`], [`crate::model::session`], [`crate::model::backoff`]).

pub mod dynamo;
pub mod memory;
pub mod traits;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;
pub use traits::*;
