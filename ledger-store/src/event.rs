//! The values that go into the log and come out of it. Payloads are JSON objects: the store
//! knows nothing of the domain's event types.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;

/// The kinds of stream and the two environments are the domain's own types, stored as their
/// `as_str` text (`payment`, `settlement_batch`, `reconciliation_run`; `test`, `live`).
pub use ledger_core::aggregate::StreamType;

pub use crate::kept_state::KeptState;
pub use ledger_core::ids::Environment;

/// Who did what, why and under which key: stored as the event's `metadata` JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub environment: Environment,
    /// The API key's id, or the webhook source (e.g. `stripe`).
    pub actor_id: String,
    /// The API key's role, or `webhook`.
    pub actor_role: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
}

/// One event to append. Its stream, version and position are given by the append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    /// When it happened in the world (the gateway's time for gateway events).
    pub occurred_at: DateTime<Utc>,
    /// A JSON object of at most [`crate::MAX_PAYLOAD_BYTES`] bytes.
    pub payload: serde_json::Value,
    pub metadata: EventMetadata,
}

/// The version a stream must be at for an append to it to be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version; `Exactly(0)` means the same as `NoStream`.
    Exactly(u64),
    /// No check: append after whatever is there.
    Any,
}

impl ExpectedVersion {
    /// Builds an expectation from a signed number as it comes from an edge (GraphQL, SQL):
    /// negative values are rejected rather than wrapped.
    pub fn from_signed(version: i64) -> Result<Self, StoreError> {
        match u64::try_from(version) {
            Ok(0) => Ok(ExpectedVersion::NoStream),
            Ok(version) => Ok(ExpectedVersion::Exactly(version)),
            Err(_) => Err(StoreError::InvalidVersion {
                value: i128::from(version),
                reason: "a stream version is never negative",
            }),
        }
    }

    /// Whether a stream currently at `actual` (0 for a stream that does not exist) satisfies it.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exactly(version) => actual == version,
            ExpectedVersion::Any => true,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::NoStream => formatter.write_str("no stream"),
            ExpectedVersion::Exactly(version) => write!(formatter, "version {version}"),
            ExpectedVersion::Any => formatter.write_str("any version"),
        }
    }
}

/// The events to append to one stream, and the version it must be at.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub expected_version: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// The stream's state after these events, to keep in its row so that the next read of
    /// it is one row (see `kept_state`); `None` clears what the row kept.
    pub kept_state: Option<KeptState>,
}

/// A claim on an idempotency key: the key and a hash of the request it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub environment: Environment,
    pub key: String,
    /// SHA-256 of the request, e.g. [`IdempotencyClaim::hash_request`] of its JSON form.
    pub request_hash: [u8; 32],
}

impl IdempotencyClaim {
    /// SHA-256 of the canonical (RFC 8785) JSON of a request, so that two requests that differ
    /// only in key order or white space hash the same.
    pub fn hash_request(request: &serde_json::Value) -> Result<[u8; 32], StoreError> {
        use sha2::Digest;
        let canonical = crate::canonical_json::to_vec(request).map_err(|error| {
            StoreError::InvalidRequest(format!("request cannot be canonicalized: {error}"))
        })?;
        Ok(sha2::Sha256::digest(canonical).into())
    }
}

/// One atomic append: every stream's events are recorded, or none are.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    pub streams: Vec<StreamAppend>,
    pub idempotency: Option<IdempotencyClaim>,
}

/// An event as stored: every column of the `events` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub stream_version: u64,
    pub event_type: String,
    pub schema_version: i32,
    /// The log's time, truncated to microseconds so it round-trips through `timestamptz`.
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    /// Kept as stored (not as [`EventMetadata`]) so the hash chain covers every byte of it.
    pub metadata: serde_json::Value,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl RecordedEvent {
    /// The metadata as the typed value it was appended from.
    pub fn parsed_metadata(&self) -> Result<EventMetadata, StoreError> {
        serde_json::from_value(self.metadata.clone()).map_err(|error| StoreError::CorruptEvent {
            position: i64::try_from(self.position).unwrap_or(i64::MAX),
            reason: format!("metadata does not decode: {error}"),
        })
    }
}

/// What one append recorded: its events and the log position reached.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendResult {
    pub events: Vec<RecordedEvent>,
    pub last_position: u64,
}

/// The answer to an append.
#[derive(Debug, Clone, PartialEq)]
pub enum AppendOutcome {
    /// The events were recorded now.
    Recorded(AppendResult),
    /// The idempotency key was used before for the same request: its original result, and
    /// nothing new was recorded.
    Replayed(AppendResult),
}

impl AppendOutcome {
    pub fn result(&self) -> &AppendResult {
        match self {
            AppendOutcome::Recorded(result) | AppendOutcome::Replayed(result) => result,
        }
    }

    pub fn into_result(self) -> AppendResult {
        match self {
            AppendOutcome::Recorded(result) | AppendOutcome::Replayed(result) => result,
        }
    }

    pub fn is_replayed(&self) -> bool {
        matches!(self, AppendOutcome::Replayed(_))
    }
}

/// A stored idempotency claim, as [`crate::EventStore::idempotency_record`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub environment: Environment,
    pub key: String,
    pub request_hash: Vec<u8>,
    /// `{"first_position": N, "last_position": M}`: the events the request recorded.
    pub result: serde_json::Value,
    pub created_at: DateTime<Utc>,
}
