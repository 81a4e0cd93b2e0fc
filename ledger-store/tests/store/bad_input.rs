//! Bad input is rejected with a typed error and nothing is written.

use ledger_store::testing::TestDatabase;
use ledger_store::{AppendRequest, ExpectedVersion, StoreError, StreamType, MAX_PAYLOAD_BYTES};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{count_events, single};

fn with_payload(payload: serde_json::Value) -> AppendRequest {
    let mut request = single(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    request.streams[0].events[0].payload = payload;
    request
}

/// Each kind of bad input gets its own error, and the log stays empty.
#[tokio::test]
async fn bad_input_is_rejected_and_nothing_is_written() {
    let db = TestDatabase::new().await;
    let store = db.store();

    let oversized = json!({"blob": "x".repeat(MAX_PAYLOAD_BYTES)});
    let error = store.append(with_payload(oversized)).await.unwrap_err();
    assert!(matches!(
        error,
        StoreError::PayloadTooLarge {
            limit_bytes: MAX_PAYLOAD_BYTES,
            ..
        }
    ));

    for not_an_object in [json!([1, 2]), json!("text"), json!(null), json!(3)] {
        let error = store.append(with_payload(not_an_object)).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidPayload { .. }),
            "{error}"
        );
    }
    let error = store
        .append(with_payload(json!({"name": "a\u{0}b"})))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::InvalidPayload { .. }));

    let mut deep = json!({});
    for _ in 0..100 {
        deep = json!({ "nested": deep });
    }
    let error = store.append(with_payload(deep)).await.unwrap_err();
    assert!(matches!(error, StoreError::InvalidPayload { .. }));

    let mut request = single(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    request.streams[0].events[0].schema_version = 0;
    assert!(matches!(
        store.append(request).await.unwrap_err(),
        StoreError::InvalidPayload { .. }
    ));

    let mut request = single(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    request.streams[0].events[0].event_type = String::new();
    assert!(matches!(
        store.append(request).await.unwrap_err(),
        StoreError::InvalidPayload { .. }
    ));

    let request = single(Uuid::new_v4(), ExpectedVersion::Exactly(u64::MAX), 1);
    assert!(matches!(
        store.append(request).await.unwrap_err(),
        StoreError::InvalidVersion { .. }
    ));

    let empty = AppendRequest {
        streams: vec![],
        idempotency: None,
    };
    assert!(matches!(
        store.append(empty).await.unwrap_err(),
        StoreError::InvalidRequest(_)
    ));
    let no_events = single(Uuid::new_v4(), ExpectedVersion::NoStream, 0);
    assert!(matches!(
        store.append(no_events).await.unwrap_err(),
        StoreError::InvalidRequest(_)
    ));
    let stream_id = Uuid::new_v4();
    let mut twice = single(stream_id, ExpectedVersion::NoStream, 1);
    twice.streams.push(
        single(stream_id, ExpectedVersion::NoStream, 1)
            .streams
            .remove(0),
    );
    assert!(matches!(
        store.append(twice).await.unwrap_err(),
        StoreError::InvalidRequest(_)
    ));

    assert_eq!(count_events(db.pool()).await, 0);
}

/// Unknown stream types and negative versions cannot even be expressed past the edge, and
/// the database's own checks refuse them as well.
#[tokio::test]
async fn unknown_stream_types_and_negative_versions_are_refused() {
    assert!(matches!(
        "refund".parse::<StreamType>().map_err(StoreError::from),
        Err(StoreError::UnknownName(unknown)) if unknown.name == "refund" && unknown.kind == "stream type"
    ));
    assert_eq!(
        "settlement_batch".parse::<StreamType>().unwrap(),
        StreamType::SettlementBatch
    );
    assert!(matches!(
        ExpectedVersion::from_signed(-1),
        Err(StoreError::InvalidVersion { value: -1, .. })
    ));
    assert_eq!(
        ExpectedVersion::from_signed(0).unwrap(),
        ExpectedVersion::NoStream
    );
    assert_eq!(
        ExpectedVersion::from_signed(4).unwrap(),
        ExpectedVersion::Exactly(4)
    );

    let db = TestDatabase::new().await;
    let refused = sqlx::query!(
        "INSERT INTO streams (stream_id, stream_type, version) VALUES ($1, 'refund', 1)",
        Uuid::new_v4()
    )
    .execute(db.pool())
    .await;
    assert!(refused.is_err());
    let refused = sqlx::query!(
        "INSERT INTO streams (stream_id, stream_type, version) VALUES ($1, 'payment', -1)",
        Uuid::new_v4()
    )
    .execute(db.pool())
    .await;
    assert!(refused.is_err());
}

/// An event id already in the log is refused with a typed error, and a request batched with
/// it still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_already_recorded_fails_only_its_own_request() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let first = single(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    let mut duplicate = single(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    duplicate.streams[0].events[0].event_id = first.streams[0].events[0].event_id;
    store.append(first).await.unwrap();

    let other = single(Uuid::new_v4(), ExpectedVersion::NoStream, 1);
    let (duplicate_result, other_result) =
        tokio::join!(store.append(duplicate), store.append(other));
    assert!(matches!(
        duplicate_result.unwrap_err(),
        StoreError::EventIdAlreadyRecorded
    ));
    other_result.unwrap();
    assert_eq!(count_events(db.pool()).await, 2);
    assert!(store.verify_chain(1, None).await.unwrap().is_intact());
}
