//! How the SDK's errors become [`StoreError`]s.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::store::traits::StoreError;

pub(super) fn internal(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Internal(Box::new(err))
}

/// Service errors that mean our request, data or deployment is wrong are bugs (500): a bad
/// request, a missing table, a refused permission or unknown credentials will not mend by
/// retrying. Everything else (timeouts, connection failures, throttling, 5xx) is the service
/// being unavailable (503, worth a retry).
pub(super) fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let is_bug = err.as_service_error().is_some_and(|e| {
        matches!(
            e.code(),
            Some(
                "ValidationException"
                    | "SerializationException"
                    | "MissingAuthenticationTokenException"
                    | "ResourceNotFoundException"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
            )
        )
    });
    if is_bug {
        StoreError::Internal(Box::new(err))
    } else {
        StoreError::Unavailable(Box::new(err))
    }
}

/// Whether `err` is a failed condition of a single-item write.
pub(super) fn condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// The outcome of a conditional write of one item: `Ok(true)` written, `Ok(false)` its
/// condition failed (nothing written), any other failure classified.
pub(super) fn written<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if condition_failed(&err) => Ok(false),
        Err(err) => Err(classify(err)),
    }
}
