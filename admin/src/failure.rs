//! How a command fails: an exit code and one message.

use accounts::store::StoreError;

use crate::exit;

/// A failure that ends the command with its exit code and one message.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn store(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => Self::new(
                exit::CONFLICT,
                "the account changed while this ran; nothing was changed: run it again",
            ),
            other => Self::new(
                exit::FAILED,
                format!("the users table failed: {}", shared::error_chain(&other)),
            ),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::store(err)
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Self::new(exit::FAILED, format!("cannot write the output: {err}"))
    }
}
