//! The crate's one error type.

use std::path::PathBuf;

use uuid::Uuid;

use crate::event::{Environment, ExpectedVersion, StreamType};

/// Everything that can go wrong in the event log, typed so callers can map each case to a
/// precise answer (a conflict is retryable, a reused idempotency key is the client's mistake).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream since the caller read it. Re-read and retry.
    #[error("stream {stream_id} is at version {actual}, but the append expected {expected}")]
    ConcurrencyConflict {
        stream_id: Uuid,
        expected: ExpectedVersion,
        actual: u64,
    },

    /// The stream exists with another type than the append names.
    #[error("stream {stream_id} is a {existing} stream, not a {requested} stream")]
    StreamTypeMismatch {
        stream_id: Uuid,
        existing: StreamType,
        requested: StreamType,
    },

    /// The idempotency key was already used for a different request.
    #[error("idempotency key {key:?} in environment {environment} was already used for a different request")]
    IdempotencyKeyReused {
        environment: Environment,
        key: String,
    },

    /// One event's payload is larger than the log accepts.
    #[error("payload of event {event_id} is {size_bytes} bytes, the limit is {limit_bytes} bytes")]
    PayloadTooLarge {
        event_id: Uuid,
        size_bytes: usize,
        limit_bytes: usize,
    },

    /// One event's payload cannot be stored as it is.
    #[error("payload of event {event_id} is invalid: {reason}")]
    InvalidPayload { event_id: Uuid, reason: String },

    /// A stream type or environment name that the log does not know.
    #[error("{0}")]
    UnknownName(#[from] ledger_core::stored::UnknownName),

    /// A stream version or log position outside the range the log can hold.
    #[error("invalid version or position {value}: {reason}")]
    InvalidVersion { value: i128, reason: &'static str },

    /// The append request is malformed as a whole (empty, too large, a stream named twice).
    #[error("invalid append request: {0}")]
    InvalidRequest(String),

    /// A stored row does not decode; the log was changed outside this crate.
    #[error("stored event at position {position} is corrupt: {reason}")]
    CorruptEvent { position: i64, reason: String },

    /// An event id of the append is already in the log (event ids are unique forever).
    #[error("an event id of this append is already recorded in the log")]
    EventIdAlreadyRecorded,

    /// The group-commit transaction this append was part of failed. Nothing was recorded,
    /// unless the connection broke during the commit itself, when the outcome is unknown:
    /// retrying with the same idempotency key is safe either way.
    #[error(
        "the batch this append was written in failed; retry with the same idempotency key: {0}"
    )]
    BatchFailed(String),

    /// A command appended together with others (`commands::unit`) was not appended because
    /// the command on `line` (from 1) was refused or failed.
    #[error(
        "not applied: command {line} of this atomic request was refused, so none of its \
         commands was applied; fix that line and send the request again"
    )]
    NotApplied { line: usize },

    /// A read of the log failed as a whole (the reader lost its connection, say); nothing
    /// was changed, and reading again may succeed.
    #[error("reading from the event log failed: {0}")]
    ReadFailed(String),

    /// The single writer task has stopped (the store is shutting down).
    #[error("the event log writer has stopped")]
    WriterStopped,

    /// The embedded PostgreSQL server binaries were not found.
    #[error("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in {searched:?}; install PostgreSQL (e.g. `apt-get install postgresql`) or set DATABASE_URL")]
    PostgresBinariesNotFound { searched: Vec<PathBuf> },

    /// The embedded cluster's directory cannot be used by the user that runs PostgreSQL.
    #[error("directory {path} is not usable by user {user}: {reason}")]
    DirectoryNotAccessible {
        path: PathBuf,
        user: String,
        reason: String,
    },

    /// A path the embedded cluster would use is unsafe: it holds a character that cannot
    /// reach `pg_ctl`'s shell quoted, or it is a link or belongs to an unexpected owner.
    #[error("refusing to use {path} for the embedded PostgreSQL: {reason}")]
    UnsafePath { path: PathBuf, reason: String },

    /// A PostgreSQL server command (initdb, pg_ctl, postgres) failed.
    #[error("{command} failed: {detail}")]
    ClusterCommand { command: String, detail: String },

    /// A file-system operation for the embedded cluster failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Applying the schema migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// The domain refused the command: a business rule of ledger-core is broken. Nothing was
    /// recorded.
    #[error("{0}")]
    Rejected(#[from] ledger_core::DomainError),

    /// The stream kept changing under the command; every attempt lost the race.
    #[error(
        "the stream kept changing while the command was decided ({attempts} attempts); try again"
    )]
    ConflictRetriesExhausted { attempts: usize },

    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the same call may succeed when tried again (after re-reading, for a conflict).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::ConcurrencyConflict { .. }
            | StoreError::ConflictRetriesExhausted { .. }
            | StoreError::WriterStopped
            | StoreError::BatchFailed(_)
            | StoreError::ReadFailed(_) => true,
            StoreError::Database(error) => matches!(
                error,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            ),
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}
