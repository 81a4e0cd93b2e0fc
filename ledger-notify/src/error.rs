//! The crate's one error type.

use ledger_projections::ProjectionError;
use ledger_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Input a client sent that cannot be used; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    #[error("no notification endpoint {0} in this environment")]
    EndpointNotFound(uuid::Uuid),

    /// The idempotency key was used before for a different endpoint.
    #[error("this idempotency key was already used for a different request")]
    IdempotencyKeyReused,

    /// The environment already has as many endpoints as it may.
    #[error("an environment has at most {0} notification endpoints; disable or reuse one")]
    TooManyEndpoints(i64),

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    #[error("event log error: {0}")]
    Store(#[from] StoreError),

    #[error("reading the log: {0}")]
    Projection(#[from] ProjectionError),

    /// A stored row that this build cannot read (an unknown status, a negative position).
    #[error("corrupt notification row: {0}")]
    Corrupt(String),

    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

impl NotifyError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> NotifyError {
        NotifyError::Invalid {
            field,
            message: message.into(),
        }
    }
}

pub(crate) fn to_stored(value: u64) -> Result<i64, NotifyError> {
    i64::try_from(value).map_err(|_| NotifyError::Corrupt(format!("{value} is out of range")))
}

pub(crate) fn from_stored(value: i64) -> Result<u64, NotifyError> {
    u64::try_from(value).map_err(|_| NotifyError::Corrupt(format!("{value} is negative")))
}
