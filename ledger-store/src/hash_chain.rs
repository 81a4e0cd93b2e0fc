//! The hash chain over the log, exactly as the audit export defines it
//! (`shared/spec/interfaces.md`, "Audit export and hash chain"):
//!
//! `hash = lowercase_hex(SHA-256(prev_hash_raw_32_bytes || JCS(line)))`, where `line` is the
//! export line without `prev_hash` and `hash`:
//! `{"position", "event_id", "stream_id", "stream_version", "event_type", "schema_version",
//! "recorded_at", "payload", "metadata"}` and JCS is RFC 8785 canonical JSON. The first
//! event's `prev_hash` is 32 zero bytes. In the database both hashes are the 32 raw bytes.
//!
//! Formats inside the line: positions and versions are JSON numbers; ids are lowercase
//! hyphenated UUIDs; `recorded_at` is RFC 3339 in UTC with exactly six fractional digits and a
//! `Z` (`2026-11-26T13:41:00.123456Z`). `recorded_at` is truncated to microseconds before it is
//! hashed and stored, so what `timestamptz` gives back hashes the same.
//!
//! The export line has no `occurred_at` or `stream_type`; so that the chain still covers every
//! stored column, the store copies both into the `metadata` object (keys `occurred_at`, same
//! format as `recorded_at`, and `stream_type`), and verification checks that they agree with
//! their columns.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Truncates a time to what `timestamptz` stores, so it round-trips exactly.
pub fn truncate_to_microseconds(time: DateTime<Utc>) -> DateTime<Utc> {
    time.trunc_subsecs(6)
}

/// RFC 3339, UTC, six fractional digits, `Z`: the one time format in the hashed line.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The export line without `prev_hash` and `hash`: what the hash covers.
pub fn hashed_line(event: &RecordedEvent) -> Value {
    json!({
        "position": event.position,
        "event_id": event.event_id,
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "recorded_at": format_time(event.recorded_at),
        "payload": event.payload,
        "metadata": event.metadata,
    })
}

/// One audit export line: every field of [`hashed_line`] plus `prev_hash` and `hash` as
/// lowercase hex.
pub fn export_line(event: &RecordedEvent) -> Value {
    let mut line = hashed_line(event);
    if let Value::Object(fields) = &mut line {
        fields.insert(
            "prev_hash".into(),
            Value::String(hex::encode(event.prev_hash)),
        );
        fields.insert("hash".into(), Value::String(hex::encode(event.hash)));
    }
    line
}

/// The hash of an event, from its `prev_hash` and its other fields (its `hash` is ignored).
pub fn compute_hash(event: &RecordedEvent) -> Result<[u8; 32], StoreError> {
    let canonical = crate::canonical_json::to_vec(&hashed_line(event)).map_err(|error| {
        StoreError::InvalidPayload {
            event_id: event.event_id,
            reason: format!("cannot be canonicalized: {error}"),
        }
    })?;
    let mut hasher = Sha256::new();
    hasher.update(event.prev_hash);
    hasher.update(&canonical);
    Ok(hasher.finalize().into())
}

/// Largest integer JCS writes as plain digits (2^53); beyond it numbers take other forms.
const MAX_PLAIN_INTEGER: u64 = 1 << 53;

/// The JCS text of an event's variable parts, computed once per event by the appending task
/// (in parallel, off the single writer's path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CanonicalParts {
    pub event_type: String,
    pub payload: String,
    pub metadata: String,
}

impl CanonicalParts {
    pub fn new(event_type: &str, payload: &Value, metadata: &Value) -> serde_json::Result<Self> {
        Ok(CanonicalParts {
            event_type: serde_json_canonicalizer::to_string(&event_type)?,
            payload: crate::canonical_json::to_string(payload)?,
            metadata: crate::canonical_json::to_string(metadata)?,
        })
    }
}

/// The same hash as [`compute_hash`], assembling the canonical line from pre-canonicalized
/// parts: JCS is recursive, so a canonical object is its members' canonical texts in sorted
/// key order (`event_id` < `event_type` < `metadata` < `payload` < `position` <
/// `recorded_at` < `schema_version` < `stream_id` < `stream_version`).
pub(crate) fn compute_hash_with_parts(
    event: &RecordedEvent,
    parts: &CanonicalParts,
    recorded_at_text: &str,
) -> Result<[u8; 32], StoreError> {
    if event.position >= MAX_PLAIN_INTEGER || event.stream_version >= MAX_PLAIN_INTEGER {
        return compute_hash(event);
    }
    let line = format!(
        r#"{{"event_id":"{}","event_type":{},"metadata":{},"payload":{},"position":{},"recorded_at":"{}","schema_version":{},"stream_id":"{}","stream_version":{}}}"#,
        event.event_id,
        parts.event_type,
        parts.metadata,
        parts.payload,
        event.position,
        recorded_at_text,
        event.schema_version,
        event.stream_id,
        event.stream_version,
    );
    let mut hasher = Sha256::new();
    hasher.update(event.prev_hash);
    hasher.update(line.as_bytes());
    Ok(hasher.finalize().into())
}

/// Why one stored event breaks the chain, or `None` when it links to `expected_prev_hash`
/// at `expected_position` and its hash and copied metadata are right.
pub fn check_link(
    event: &RecordedEvent,
    expected_position: u64,
    expected_prev_hash: &[u8; 32],
) -> Option<String> {
    if event.position != expected_position {
        return Some(format!(
            "expected position {expected_position}, found {}",
            event.position
        ));
    }
    if &event.prev_hash != expected_prev_hash {
        return Some("prev_hash is not the previous event's hash".into());
    }
    // From canonical parts rather than `compute_hash`: the same hash (a test holds them
    // equal), without copying the payload and metadata into a line first, which was most of
    // a verification's time per event.
    let computed = CanonicalParts::new(&event.event_type, &event.payload, &event.metadata)
        .map_err(|error| StoreError::InvalidPayload {
            event_id: event.event_id,
            reason: format!("cannot be canonicalized: {error}"),
        })
        .and_then(|parts| compute_hash_with_parts(event, &parts, &format_time(event.recorded_at)));
    match computed {
        Ok(hash) if hash == event.hash => {}
        Ok(_) => return Some("hash does not match the event's contents".into()),
        Err(error) => return Some(error.to_string()),
    }
    let copied_occurred_at = event.metadata.get("occurred_at").and_then(Value::as_str);
    if copied_occurred_at != Some(format_time(event.occurred_at).as_str()) {
        return Some("occurred_at column differs from metadata.occurred_at".into());
    }
    let copied_stream_type = event.metadata.get("stream_type").and_then(Value::as_str);
    if copied_stream_type != Some(event.stream_type.as_str()) {
        return Some("stream_type column differs from metadata.stream_type".into());
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::event::StreamType;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn sample_event() -> RecordedEvent {
        let recorded_at = Utc.with_ymd_and_hms(2026, 11, 26, 13, 41, 0).unwrap();
        RecordedEvent {
            position: 1,
            event_id: Uuid::nil(),
            stream_id: Uuid::nil(),
            stream_type: StreamType::Payment,
            stream_version: 1,
            event_type: "PaymentInitiated".into(),
            schema_version: 1,
            recorded_at,
            occurred_at: recorded_at,
            payload: json!({"amount": "10.50", "currency": "USD"}),
            metadata: json!({"stream_type": "payment", "occurred_at": "2026-11-26T13:41:00.000000Z"}),
            prev_hash: GENESIS_HASH,
            hash: [0; 32],
        }
    }

    /// The time format has exactly six fractional digits and a Z, even on whole seconds.
    #[test]
    fn formats_time_with_six_fractional_digits() {
        let time = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_time(time), "2026-01-02T03:04:05.000000Z");
        let precise = time + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(
            format_time(truncate_to_microseconds(precise)),
            "2026-01-02T03:04:05.123456Z"
        );
    }

    /// The hash is SHA-256 over the raw previous hash then the JCS bytes, which a reader can
    /// recompute by hand from the canonical text.
    #[test]
    fn hash_is_sha256_of_prev_hash_and_canonical_line() {
        let event = sample_event();
        let canonical = concat!(
            r#"{"event_id":"00000000-0000-0000-0000-000000000000","event_type":"PaymentInitiated","#,
            r#""metadata":{"occurred_at":"2026-11-26T13:41:00.000000Z","stream_type":"payment"},"#,
            r#""payload":{"amount":"10.50","currency":"USD"},"position":1,"#,
            r#""recorded_at":"2026-11-26T13:41:00.000000Z","schema_version":1,"#,
            r#""stream_id":"00000000-0000-0000-0000-000000000000","stream_version":1}"#
        );
        let mut hasher = Sha256::new();
        hasher.update([0u8; 32]);
        hasher.update(canonical.as_bytes());
        let expected: [u8; 32] = hasher.finalize().into();
        assert_eq!(compute_hash(&event).unwrap(), expected);
    }

    /// RFC 8785 section 3.2.2 / appendix B number and string examples survive canonicalization.
    #[test]
    fn canonical_json_follows_rfc_8785_examples() {
        let input: Value = serde_json::from_str(
            r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],
                "string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#,
        )
        .unwrap();
        let canonical = serde_json_canonicalizer::to_string(&input).unwrap();
        assert_eq!(
            canonical,
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// Any change to a hashed field, or to the previous hash, is detected.
    #[test]
    fn check_link_detects_changes() {
        let mut event = sample_event();
        event.hash = compute_hash(&event).unwrap();
        assert_eq!(check_link(&event, 1, &GENESIS_HASH), None);
        assert!(check_link(&event, 2, &GENESIS_HASH).is_some());
        assert!(check_link(&event, 1, &[1; 32]).is_some());
        let mut tampered = event.clone();
        tampered.payload = json!({"amount": "99.99", "currency": "USD"});
        assert!(check_link(&tampered, 1, &GENESIS_HASH).is_some());
        let mut moved = event;
        moved.occurred_at += chrono::Duration::seconds(1);
        assert!(check_link(&moved, 1, &GENESIS_HASH).is_some());
    }

    /// Assembling the line from canonical parts gives exactly the generic JCS hash, with
    /// escapes, non-ASCII text and numbers in the parts.
    #[test]
    fn hash_from_parts_equals_generic_hash() {
        let mut event = sample_event();
        event.event_type = "Événement \"quoted\" \u{1}".into();
        event.payload =
            json!({"z": 1.50, "a": [1e30, -0.0, "\u{20ac}"], "m": {"b": null, "a": true}});
        event.position = 12_345;
        event.stream_version = 7;
        event.schema_version = -3;
        event.prev_hash = [9; 32];
        let parts =
            CanonicalParts::new(&event.event_type, &event.payload, &event.metadata).unwrap();
        let text = format_time(event.recorded_at);
        assert_eq!(
            compute_hash_with_parts(&event, &parts, &text).unwrap(),
            compute_hash(&event).unwrap()
        );
    }

    /// The export line carries both hashes in lowercase hex.
    #[test]
    fn export_line_has_hex_hashes() {
        let mut event = sample_event();
        event.hash = [0xAB; 32];
        let line = export_line(&event);
        assert_eq!(line["prev_hash"], Value::String("00".repeat(32)));
        assert_eq!(line["hash"], Value::String("ab".repeat(32)));
        assert_eq!(line.as_object().unwrap().len(), 11);
    }
}
