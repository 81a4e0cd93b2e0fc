//! Decoding stored rows into [`RecordedEvent`]s, refusing values the schema should have
//! prevented rather than guessing.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// One `events` row as sqlx reads it.
pub(crate) struct EventRow {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
    pub metadata: Value,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let position = row.position;
        let corrupt = |reason: &str| StoreError::CorruptEvent {
            position,
            reason: reason.into(),
        };
        Ok(RecordedEvent {
            position: u64::try_from(row.position).map_err(|_| corrupt("negative position"))?,
            event_id: row.event_id,
            stream_id: row.stream_id,
            stream_type: row
                .stream_type
                .parse()
                .map_err(|_| corrupt("unknown stream type"))?,
            stream_version: u64::try_from(row.stream_version)
                .map_err(|_| corrupt("negative stream version"))?,
            event_type: row.event_type,
            schema_version: row.schema_version,
            recorded_at: row.recorded_at,
            occurred_at: row.occurred_at,
            payload: row.payload,
            metadata: row.metadata,
            prev_hash: row
                .prev_hash
                .try_into()
                .map_err(|_| corrupt("prev_hash is not 32 bytes"))?,
            hash: row
                .hash
                .try_into()
                .map_err(|_| corrupt("hash is not 32 bytes"))?,
        })
    }
}

/// A position or version as stored (`bigint`); the schema keeps them non-negative.
pub(crate) fn to_stored(value: u64) -> Result<i64, StoreError> {
    crate::validate::check_version(value)
}

pub(crate) fn from_stored(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::InvalidVersion {
        value: i128::from(value),
        reason: "negative in the database",
    })
}
