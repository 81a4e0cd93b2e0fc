//! Idempotency keys: replays return the original result and record nothing new.

use ledger_store::testing::TestDatabase;
use ledger_store::{AppendRequest, Environment, ExpectedVersion, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{claim, count_events, single};

fn keyed(stream_id: Uuid, key: &str, request: &serde_json::Value) -> AppendRequest {
    AppendRequest {
        idempotency: Some(claim(key, request)),
        ..single(stream_id, ExpectedVersion::Any, 2)
    }
}

/// The same key with the same request gives back the original events and position, and
/// nothing new is written; the claim is stored with its result.
#[tokio::test]
async fn same_key_same_request_replays_the_original() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    let request = json!({"capture": "10.50"});
    let first = store
        .append(keyed(stream_id, "key-1", &request))
        .await
        .unwrap();
    assert!(!first.is_replayed());
    let again = store
        .append(keyed(stream_id, "key-1", &request))
        .await
        .unwrap();
    assert!(again.is_replayed());
    assert_eq!(again.result(), first.result());
    assert_eq!(count_events(db.pool()).await, 2);

    let record = store
        .idempotency_record(Environment::Test, "key-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.result,
        json!({"first_position": 1, "last_position": 2})
    );
    assert!(store
        .idempotency_record(Environment::Live, "key-1")
        .await
        .unwrap()
        .is_none());
}

/// The same key with a different request is refused with a typed error.
#[tokio::test]
async fn same_key_different_request_is_refused() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    store
        .append(keyed(stream_id, "key-2", &json!({"capture": "10.50"})))
        .await
        .unwrap();
    let error = store
        .append(keyed(stream_id, "key-2", &json!({"capture": "99.00"})))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::IdempotencyKeyReused { ref key, .. } if key == "key-2"));
    assert!(!error.is_retryable());
    assert_eq!(count_events(db.pool()).await, 2);
}

/// Fifty concurrent copies of one keyed request record it exactly once; every copy gets the
/// same events back (copies in one group-commit batch are deduplicated too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_record_once() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    let request = json!({"initiate": stream_id});
    let copies: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            let request = request.clone();
            tokio::spawn(async move { store.append(keyed(stream_id, "key-3", &request)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for copy in copies {
        outcomes.push(copy.await.unwrap().unwrap());
    }
    let recorded = outcomes.iter().filter(|o| !o.is_replayed()).count();
    assert_eq!(recorded, 1);
    let first_ids: Vec<Uuid> = outcomes[0]
        .result()
        .events
        .iter()
        .map(|e| e.event_id)
        .collect();
    for outcome in &outcomes {
        let ids: Vec<Uuid> = outcome.result().events.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, first_ids);
    }
    assert_eq!(count_events(db.pool()).await, 2);
}

/// A rejected request does not use up its key: once the conflict is resolved, the same key
/// records the corrected request.
#[tokio::test]
async fn rejected_request_does_not_claim_its_key() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    let request = json!({"capture": "1.00"});
    let mut stale = keyed(stream_id, "key-4", &request);
    stale.streams[0].expected_version = ExpectedVersion::Exactly(7);
    assert!(store.append(stale).await.is_err());
    assert!(store
        .idempotency_record(Environment::Test, "key-4")
        .await
        .unwrap()
        .is_none());
    let outcome = store
        .append(keyed(stream_id, "key-4", &request))
        .await
        .unwrap();
    assert!(!outcome.is_replayed());
}
