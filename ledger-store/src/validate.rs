//! Checks an append request before it reaches the writer, so bad input is rejected with a
//! typed error and never touches the database, and turns it into the stored shapes.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ledger_core::settlement::{MAX_SETTLEMENT_BATCH_EVENTS, MAX_SETTLEMENT_ITEMS};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{
    AppendRequest, ExpectedVersion, IdempotencyClaim, KeptState, NewEvent, StreamAppend, StreamType,
};
use crate::hash_chain::{format_time, truncate_to_microseconds, CanonicalParts};

/// Largest payload accepted, in bytes of its compact JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Deepest nesting of arrays and objects accepted in a payload.
pub const MAX_PAYLOAD_DEPTH: usize = 64;
/// Largest metadata object accepted, in bytes of its compact JSON text.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Most events one append may record, over all its streams. The largest append is a
/// settlement batch of the most items: its header and item events on the batch's stream and
/// one Settled event per item on the payments, all or nothing, so the bound is that append's
/// size and no more (a bound on every append keeps a transaction's rows and memory bounded).
pub const MAX_EVENTS_PER_APPEND: usize = MAX_SETTLEMENT_BATCH_EVENTS + MAX_SETTLEMENT_ITEMS;
/// Most streams one append may touch: a settlement batch and the payments it settles, each
/// item on a payment of its own at most.
pub const MAX_STREAMS_PER_APPEND: usize = 1 + MAX_SETTLEMENT_ITEMS;
/// Longest event type name accepted.
pub const MAX_EVENT_TYPE_LENGTH: usize = 200;
/// Longest idempotency key accepted; the database checks the same bound.
pub const MAX_IDEMPOTENCY_KEY_LENGTH: usize = 255;

/// An event ready to be stored: times truncated to what the database keeps, metadata as the
/// JSON object that is stored and hashed.
#[derive(Debug, Clone)]
pub(crate) struct PreparedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
    pub metadata: Value,
    /// Canonical JSON of the hashed parts, computed here so the writer only concatenates.
    pub canonical: CanonicalParts,
    /// The JSON text sent to the database, made here while measuring it, so the writer
    /// neither copies nor encodes the values.
    pub stored: StoredJson,
}

/// An event's payload and metadata as the compact JSON text the database parses into `jsonb`.
#[derive(Debug, Clone)]
pub(crate) struct StoredJson {
    pub payload: Arc<str>,
    pub metadata: Arc<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedStream {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub expected_version: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    pub kept_state: Option<KeptState>,
}

#[derive(Debug, Clone)]
pub(crate) struct PreparedRequest {
    pub streams: Vec<PreparedStream>,
    /// The keys the request claims: one for a command, one per command for several
    /// commands appended together (`EventStore::append_claiming`).
    pub claims: Vec<IdempotencyClaim>,
}

impl PreparedRequest {
    pub fn event_count(&self) -> usize {
        self.streams.iter().map(|stream| stream.events.len()).sum()
    }
}

/// Validates a whole request; the first problem found is returned.
pub(crate) fn prepare(request: AppendRequest) -> Result<PreparedRequest, StoreError> {
    let claims = request.idempotency.into_iter().collect();
    prepare_claiming(request.streams, claims)
}

/// Validates an append that claims several keys; each key may be claimed once.
pub(crate) fn prepare_claiming(
    streams: Vec<StreamAppend>,
    claims: Vec<IdempotencyClaim>,
) -> Result<PreparedRequest, StoreError> {
    let request = AppendRequest {
        streams,
        idempotency: None,
    };
    check_shape(&request)?;
    let mut keys = HashSet::with_capacity(claims.len());
    for claim in &claims {
        check_idempotency_key(&claim.key)?;
        if !keys.insert((claim.environment, claim.key.as_str())) {
            return Err(StoreError::InvalidRequest(format!(
                "idempotency key {:?} is claimed twice in one append",
                claim.key
            )));
        }
    }
    let streams = request
        .streams
        .into_iter()
        .map(prepare_stream)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PreparedRequest { streams, claims })
}

fn check_shape(request: &AppendRequest) -> Result<(), StoreError> {
    if request.streams.is_empty() {
        return Err(StoreError::InvalidRequest("no stream to append to".into()));
    }
    if request.streams.len() > MAX_STREAMS_PER_APPEND {
        return Err(StoreError::InvalidRequest(format!(
            "{} streams, at most {MAX_STREAMS_PER_APPEND} per append",
            request.streams.len()
        )));
    }
    let event_count: usize = request.streams.iter().map(|s| s.events.len()).sum();
    if event_count > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::InvalidRequest(format!(
            "{event_count} events, at most {MAX_EVENTS_PER_APPEND} per append"
        )));
    }
    let mut stream_ids = HashSet::new();
    let mut event_ids = HashSet::new();
    for stream in &request.streams {
        if stream.events.is_empty() {
            return Err(StoreError::InvalidRequest(format!(
                "stream {} has no event to append",
                stream.stream_id
            )));
        }
        if !stream_ids.insert(stream.stream_id) {
            return Err(StoreError::InvalidRequest(format!(
                "stream {} is named twice",
                stream.stream_id
            )));
        }
        for event in &stream.events {
            if !event_ids.insert(event.event_id) {
                return Err(StoreError::InvalidRequest(format!(
                    "event id {} is used twice",
                    event.event_id
                )));
            }
        }
    }
    Ok(())
}

fn check_idempotency_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LENGTH || key.contains('\0') {
        return Err(StoreError::InvalidRequest(format!(
            "idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} bytes without NUL"
        )));
    }
    Ok(())
}

fn prepare_stream(stream: StreamAppend) -> Result<PreparedStream, StoreError> {
    if let ExpectedVersion::Exactly(version) = stream.expected_version {
        check_version(version)?;
    }
    let stream_type = stream.stream_type;
    let events = stream
        .events
        .into_iter()
        .map(|event| prepare_event(event, stream_type))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PreparedStream {
        stream_id: stream.stream_id,
        stream_type,
        expected_version: stream.expected_version,
        events,
        kept_state: stream.kept_state,
    })
}

/// Versions and positions are stored as `bigint`, so anything above `i64::MAX` is refused.
pub(crate) fn check_version(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::InvalidVersion {
        value: i128::from(version),
        reason: "larger than the log can store (2^63 - 1)",
    })
}

fn prepare_event(event: NewEvent, stream_type: StreamType) -> Result<PreparedEvent, StoreError> {
    let event_id = event.event_id;
    let invalid = |reason: String| StoreError::InvalidPayload { event_id, reason };
    if event.event_type.is_empty()
        || event.event_type.len() > MAX_EVENT_TYPE_LENGTH
        || event.event_type.contains('\0')
    {
        return Err(invalid(format!(
            "event type must be 1 to {MAX_EVENT_TYPE_LENGTH} bytes without NUL"
        )));
    }
    if event.schema_version < 1 {
        return Err(invalid(format!(
            "schema version {} is below 1",
            event.schema_version
        )));
    }
    let payload_text = check_payload(event_id, &event.payload)?;
    let occurred_at = truncate_to_microseconds(event.occurred_at);
    let (metadata, metadata_text) = stored_metadata(&event, occurred_at, stream_type)?;
    let canonical = CanonicalParts::new(&event.event_type, &event.payload, &metadata)
        .map_err(|error| invalid(format!("cannot be canonicalized: {error}")))?;
    Ok(PreparedEvent {
        canonical,
        event_id,
        event_type: event.event_type,
        schema_version: event.schema_version,
        occurred_at,
        payload: event.payload,
        metadata,
        stored: StoredJson {
            payload: payload_text.into(),
            metadata: metadata_text.into(),
        },
    })
}

/// The metadata object as stored: the caller's fields plus copies of `occurred_at` and
/// `stream_type`, so the hash chain covers those columns too (see `hash_chain`).
fn stored_metadata(
    event: &NewEvent,
    occurred_at: DateTime<Utc>,
    stream_type: StreamType,
) -> Result<(Value, String), StoreError> {
    let invalid = |reason: String| StoreError::InvalidPayload {
        event_id: event.event_id,
        reason,
    };
    let mut metadata = serde_json::to_value(&event.metadata)
        .map_err(|error| invalid(format!("metadata does not serialize: {error}")))?;
    let Value::Object(fields) = &mut metadata else {
        return Err(invalid("metadata is not a JSON object".into()));
    };
    fields.insert(
        "occurred_at".into(),
        Value::String(format_time(occurred_at)),
    );
    fields.insert(
        "stream_type".into(),
        Value::String(stream_type.as_str().into()),
    );
    let text = serde_json::to_string(&metadata)
        .map_err(|error| invalid(format!("metadata does not serialize: {error}")))?;
    let size_bytes = text.len();
    if size_bytes > MAX_METADATA_BYTES {
        return Err(invalid(format!(
            "metadata is {size_bytes} bytes, at most {MAX_METADATA_BYTES}"
        )));
    }
    check_no_nul(event.event_id, &metadata)?;
    Ok((metadata, text))
}

/// The payload's compact JSON text, if it may be stored.
fn check_payload(event_id: Uuid, payload: &Value) -> Result<String, StoreError> {
    if !payload.is_object() {
        return Err(StoreError::InvalidPayload {
            event_id,
            reason: "payload must be a JSON object".into(),
        });
    }
    let text = serde_json::to_string(payload).map_err(|error| StoreError::InvalidPayload {
        event_id,
        reason: format!("does not serialize: {error}"),
    })?;
    let size_bytes = text.len();
    if size_bytes > MAX_PAYLOAD_BYTES {
        return Err(StoreError::PayloadTooLarge {
            event_id,
            size_bytes,
            limit_bytes: MAX_PAYLOAD_BYTES,
        });
    }
    check_no_nul(event_id, payload)?;
    Ok(text)
}

/// PostgreSQL's `jsonb` cannot hold the NUL character, and nesting is bounded; walked with an
/// explicit stack so a deep value cannot overflow ours.
fn check_no_nul(event_id: Uuid, value: &Value) -> Result<(), StoreError> {
    let invalid = |reason: &str| StoreError::InvalidPayload {
        event_id,
        reason: reason.into(),
    };
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        if depth > MAX_PAYLOAD_DEPTH {
            return Err(invalid("nested deeper than the limit"));
        }
        match value {
            Value::String(text) if text.contains('\0') => {
                return Err(invalid("contains the NUL character (\\u0000)"));
            }
            Value::Array(items) => pending.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(fields) => {
                for (key, item) in fields {
                    if key.contains('\0') {
                        return Err(invalid("contains the NUL character (\\u0000) in a key"));
                    }
                    pending.push((item, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
