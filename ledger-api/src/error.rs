//! The one place where failures become answers: every error a client can see is an
//! [`ApiError`], and [`ApiError::code`] gives its `extensions.code` from interfaces.md. Internal
//! details (SQL, stack traces) are logged here and never sent.

use async_graphql::ErrorExtensions;
use ledger_core::DomainError;
use ledger_notify::NotifyError;
use ledger_projections::ProjectionError;
use ledger_store::StoreError;
use ledger_stripe::reconcile::ReconcileError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("a valid API key is required: send `Authorization: Bearer lk_…`")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    RuleViolation(DomainError),
    #[error("{0}")]
    ConcurrencyConflict(String),
    #[error("this idempotency key was already used for a different request; use a new key for a new request")]
    IdempotencyKeyReused,
    #[error("{0}")]
    Unavailable(String),
    /// The detail is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl ToString) -> ApiError {
        ApiError::Validation {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn internal(detail: impl ToString) -> ApiError {
        ApiError::Internal(detail.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "VALIDATION_ERROR",
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::RuleViolation(_) => "RULE_VIOLATION",
            ApiError::ConcurrencyConflict(_) => "CONCURRENCY_CONFLICT",
            ApiError::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ApiError::Unavailable(_) => "UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ApiError::ConcurrencyConflict(_) | ApiError::Unavailable(_)
        )
    }

    /// What the client is told: everything but internal errors, whose detail stays in logs.
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "something went wrong on our side and it was logged; repeating the request will \
                 not help: contact support with this response's x-request-id"
                    .to_owned()
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "service unavailable");
                "the ledger is temporarily unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status for errors answered outside GraphQL.
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RuleViolation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ConcurrencyConflict(_) | ApiError::IdempotencyKeyReused => {
                StatusCode::CONFLICT
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::Money(money) => ApiError::validation("amount", money),
            DomainError::PaymentNotFound => {
                ApiError::NotFound("no such payment in this environment".to_owned())
            }
            DomainError::SettlementBatchNotFound => {
                ApiError::NotFound("no such settlement batch in this environment".to_owned())
            }
            DomainError::ReconciliationRunNotFound => {
                ApiError::NotFound("no such reconciliation run in this environment".to_owned())
            }
            DomainError::ReconciliationExceptionNotFound { exception_id } => ApiError::NotFound(
                format!("no reconciliation exception {exception_id} in this environment"),
            ),
            other => ApiError::RuleViolation(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            not_applied @ StoreError::NotApplied { .. } => {
                ApiError::validation("atomic", not_applied)
            }
            StoreError::Rejected(domain) => domain.into(),
            StoreError::IdempotencyKeyReused { .. } => ApiError::IdempotencyKeyReused,
            conflict @ (StoreError::ConcurrencyConflict { .. }
            | StoreError::ConflictRetriesExhausted { .. }) => ApiError::ConcurrencyConflict(
                format!("{conflict}; the request may be retried as is"),
            ),
            invalid @ (StoreError::PayloadTooLarge { .. }
            | StoreError::InvalidPayload { .. }
            | StoreError::InvalidRequest(_)
            | StoreError::InvalidVersion { .. }) => ApiError::validation("input", invalid),
            unavailable @ (StoreError::WriterStopped
            | StoreError::BatchFailed(_)
            | StoreError::ReadFailed(_)) => ApiError::Unavailable(unavailable.to_string()),
            StoreError::Database(database) => database.into(),
            // A command naming a stream of another kind (a settlement batch's id as a
            // payment's): nothing of the kind it asked for has that id.
            StoreError::StreamTypeMismatch { requested, .. } => ApiError::NotFound(format!(
                "no such {} in this environment",
                requested.as_str().replace('_', " ")
            )),
            other => ApiError::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                ApiError::Unavailable(error.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

/// A read model that cannot be reached for now (the pool timed out or closed, the
/// connection broke, the point asked for is not projected yet) is UNAVAILABLE, which the
/// client may retry; anything else a read model says is INTERNAL.
impl From<ProjectionError> for ApiError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::Database(database) => database.into(),
            ProjectionError::Store(store) => store.into(),
            not_yet @ ProjectionError::NotYetProjected { .. } => {
                ApiError::Unavailable(not_yet.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.client_message()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            extensions.set("retryable", self.retryable());
            match self {
                ApiError::RuleViolation(rule) => extensions.set("rule", rule.rule()),
                ApiError::Validation { field, .. } => extensions.set("field", field.as_str()),
                _ => {}
            }
        })
    }
}

/// Resolvers return `async_graphql::Result`; this turns an `ApiResult` into one with the
/// error's code, retryability and rule in `extensions` (async-graphql's own conversion from a
/// displayable error would drop them).
pub trait IntoGraphql<T> {
    fn graphql(self) -> async_graphql::Result<T>;
}

impl<T> IntoGraphql<T> for Result<T, ApiError> {
    fn graphql(self) -> async_graphql::Result<T> {
        self.map_err(|error| error.extend())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<ReconcileError> for ApiError {
    fn from(error: ReconcileError) -> Self {
        match error {
            refused @ (ReconcileError::NotAPayoutReport { .. }
            | ReconcileError::UnreadableFile(_)
            | ReconcileError::AmountOverflow { .. }) => ApiError::validation("csv", refused),
            ReconcileError::Store(store) => store.into(),
            ReconcileError::Database(database) => database.into(),
            ReconcileError::Projections(projections) => projections.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<NotifyError> for ApiError {
    fn from(error: NotifyError) -> Self {
        match error {
            NotifyError::Invalid { field, message } => ApiError::validation(field, message),
            NotifyError::EndpointNotFound(_) => ApiError::NotFound(error.to_string()),
            NotifyError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            NotifyError::TooManyEndpoints(_) => ApiError::validation("url", error),
            NotifyError::Database(database) => database.into(),
            NotifyError::Store(store) => store.into(),
            NotifyError::Projection(projection) => projection.into(),
            other @ (NotifyError::Corrupt(_) | NotifyError::Client(_)) => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read models out of reach for now are retryable; what they found is not.
    #[test]
    fn projection_errors_map_to_unavailable_only_when_retrying_may_help() {
        let timed_out = ApiError::from(ProjectionError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(
            (timed_out.code(), timed_out.retryable()),
            ("UNAVAILABLE", true)
        );
        let closed = ApiError::from(ProjectionError::Database(sqlx::Error::PoolClosed));
        assert_eq!(closed.code(), "UNAVAILABLE");
        let behind = ApiError::from(ProjectionError::NotYetProjected {
            projection: "journal",
            checkpoint: 1,
            requested: 2,
        });
        assert_eq!(behind.code(), "UNAVAILABLE");
        let corrupt = ApiError::from(ProjectionError::Corrupt("status \"X\"".to_owned()));
        assert_eq!((corrupt.code(), corrupt.retryable()), ("INTERNAL", false));
        let import = ApiError::from(ReconcileError::Projections(ProjectionError::Database(
            sqlx::Error::PoolTimedOut,
        )));
        assert_eq!(import.code(), "UNAVAILABLE");
    }
}
