//! Building requests for the tests.

use chrono::Utc;
use ledger_store::{
    AppendRequest, Environment, EventMetadata, ExpectedVersion, IdempotencyClaim, NewEvent,
    StreamAppend, StreamType,
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
