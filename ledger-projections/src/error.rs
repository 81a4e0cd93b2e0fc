//! The crate's one error type.

use std::str::FromStr;

use ledger_core::codec::CodecError;
use ledger_core::stored::UnknownName;
use ledger_store::StoreError;

/// Everything that can go wrong while projecting, rebuilding, verifying or exporting.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A projection's checkpoint row is missing from its schema even after it was ensured.
    #[error("a projection checkpoint is missing; the projection tables were changed outside the projector")]
    CheckpointMissing,

    #[error("event log error: {0}")]
    Store(#[from] StoreError),

    /// A stored event does not decode into a domain event: the log holds something this build
    /// cannot read, so the projection stops rather than skip it.
    #[error("the event at position {position} does not decode: {source}")]
    Decode {
        position: u64,
        #[source]
        source: CodecError,
    },

    /// A stream's event arrived out of order (a version skipped or repeated).
    #[error("stream {stream_id} is at version {state_version}, but the event at position {position} has version {event_version}")]
    StreamOutOfOrder {
        stream_id: uuid::Uuid,
        position: u64,
        state_version: u64,
        event_version: u64,
    },

    /// A schema name that is not a plain lower-case identifier, or is reserved.
    #[error("invalid schema name {0:?}: use lower-case letters, digits and underscores, not starting with pg_ and not public")]
    InvalidSchemaName(String),

    /// A projection name that does not exist.
    #[error("unknown projection {0:?}: expected one of payments, orders, disputes, settlement, journal, metrics, reconciliation")]
    UnknownProjection(String),

    /// The schema a point-in-time build should write to exists already.
    #[error("schema {0} exists already; choose another name or drop it first")]
    SchemaExists(String),

    /// A question about a point the read model has not reached yet.
    #[error("the {projection} projection is at position {checkpoint}, before the position {requested} asked for")]
    NotYetProjected {
        projection: &'static str,
        checkpoint: u64,
        requested: u64,
    },

    /// An event whose journal posting leaves the range of amounts: the rules refuse such
    /// events, so the log holds one they never decided. The projection stops rather than post
    /// a wrong amount.
    #[error("the journal entry of the event at position {position} overflows: {source}")]
    JournalOverflow {
        position: u64,
        #[source]
        source: ledger_core::MoneyError,
    },

    /// A value from the database that does not fit (a negative position, an unknown status).
    #[error("unexpected stored value: {0}")]
    Corrupt(String),

    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),

    /// A task of a verification pass was cancelled (the runtime is shutting down).
    #[error("a verification task stopped: {0}")]
    TaskStopped(String),

    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

/// A stored enum name that the core does not know: the row is corrupt (or newer than this
/// build), so the read fails rather than guess.
impl From<UnknownName> for ProjectionError {
    fn from(error: UnknownName) -> Self {
        ProjectionError::Corrupt(error.to_string())
    }
}

/// A stored name read as the core's enum.
pub(crate) fn parse_stored<T: FromStr<Err = UnknownName>>(
    name: &str,
) -> Result<T, ProjectionError> {
    Ok(name.parse()?)
}

/// A position or version as stored (`bigint`).
pub(crate) fn to_stored(value: u64) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| ProjectionError::Corrupt(format!("{value} exceeds bigint")))
}

pub(crate) fn from_stored(value: i64) -> Result<u64, ProjectionError> {
    u64::try_from(value).map_err(|_| ProjectionError::Corrupt(format!("negative position {value}")))
}
