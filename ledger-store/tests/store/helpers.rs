//! Building requests for the tests.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use ledger_store::{
    AppendRequest, Environment, EventMetadata, EventStore, ExpectedVersion, IdempotencyClaim,
    NewEvent, RecordedEvent, StreamAppend, StreamType,
};
use serde_json::json;
use uuid::Uuid;

pub fn metadata() -> EventMetadata {
    EventMetadata {
        environment: Environment::Test,
        actor_id: "key_test_1".into(),
        actor_role: "service".into(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        idempotency_key: None,
    }
}

pub fn event(event_type: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        schema_version: 1,
        occurred_at: Utc::now(),
        payload: json!({"amount": "10.50", "currency": "USD", "note": "café ✓"}),
        metadata: metadata(),
    }
}

pub fn stream(stream_id: Uuid, expected: ExpectedVersion, count: usize) -> StreamAppend {
    StreamAppend {
        stream_id,
        stream_type: StreamType::Payment,
        expected_version: expected,
        events: (0..count).map(|i| event(&format!("Event{i}"))).collect(),
        kept_state: None,
    }
}

pub fn single(stream_id: Uuid, expected: ExpectedVersion, count: usize) -> AppendRequest {
    AppendRequest {
        streams: vec![stream(stream_id, expected, count)],
        idempotency: None,
    }
}

pub fn claim(key: &str, request: &serde_json::Value) -> IdempotencyClaim {
    IdempotencyClaim {
        environment: Environment::Test,
        key: key.into(),
        request_hash: IdempotencyClaim::hash_request(request).unwrap(),
    }
}

pub async fn count_events(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM events"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Reads the log by position, as a tailing reader does, from after `after` until `count` events
/// are seen or two minutes pass; a skipped or repeated position fails the test.
pub async fn tail(store: &EventStore, after: u64, count: u64) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    let mut next = after + 1;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while next <= after + count && tokio::time::Instant::now() < deadline {
        for event in store.read_all(next, 100).await.unwrap() {
            assert_eq!(
                event.position, next,
                "the reader skipped or repeated a position"
            );
            next += 1;
            seen.push(event);
        }
    }
    seen
}

/// Every event once, and each stream's versions in order from 1 with no gap.
pub fn assert_each_stream_in_order(events: &[RecordedEvent]) {
    let unique: HashSet<Uuid> = events.iter().map(|event| event.event_id).collect();
    assert_eq!(unique.len(), events.len());
    let mut versions: HashMap<Uuid, u64> = HashMap::new();
    for event in events {
        let version = versions.entry(event.stream_id).or_default();
        *version += 1;
        assert_eq!(event.stream_version, *version);
    }
}
