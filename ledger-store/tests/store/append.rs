//! Appending and reading back; optimistic concurrency; atomic multi-stream appends.

use ledger_store::testing::TestDatabase;
use ledger_store::{AppendRequest, Environment, ExpectedVersion, StoreError, StreamType};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{claim, count_events, single, stream};

/// What an append returns is exactly what reading the stream and the log gives back,
/// every column included, with versions from 1 and positions from 1.
#[tokio::test]
async fn appended_events_read_back_identically() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    let outcome = store
        .append(single(stream_id, ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    assert!(!outcome.is_replayed());
    let recorded = outcome.into_result();
    assert_eq!(recorded.last_position, 3);
    let versions: Vec<u64> = recorded.events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [1, 2, 3]);

    let from_stream = store.read_stream(stream_id, 1).await.unwrap();
    assert_eq!(from_stream, recorded.events);
    assert_eq!(store.read_stream(stream_id, 3).await.unwrap().len(), 1);
    let page = store.read_all(2, 1).await.unwrap();
    assert_eq!(page, recorded.events[1..2]);
    let head = store.head().await.unwrap();
    assert_eq!(head.last_position, 3);
    assert_eq!(head.last_hash, recorded.events[2].hash);
    let metadata = recorded.events[0].parsed_metadata().unwrap();
    assert_eq!(metadata.actor_role, "service");
}

/// An append expecting a stale version fails with a retryable conflict naming the actual
/// version, and records nothing.
#[tokio::test]
async fn stale_expected_version_is_a_conflict() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    store
        .append(single(stream_id, ExpectedVersion::NoStream, 2))
        .await
        .unwrap();

    let error = store
        .append(single(stream_id, ExpectedVersion::NoStream, 1))
        .await
        .unwrap_err();
    assert!(error.is_retryable());
    assert!(matches!(
        error,
        StoreError::ConcurrencyConflict { stream_id: id, expected: ExpectedVersion::NoStream, actual: 2 } if id == stream_id
    ));
    let error = store
        .append(single(stream_id, ExpectedVersion::Exactly(1), 1))
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        StoreError::ConcurrencyConflict { actual: 2, .. }
    ));
    assert_eq!(count_events(db.pool()).await, 2);

    store
        .append(single(stream_id, ExpectedVersion::Exactly(2), 1))
        .await
        .unwrap();
    let any = store
        .append(single(stream_id, ExpectedVersion::Any, 1))
        .await
        .unwrap();
    assert_eq!(any.result().events[0].stream_version, 4);
}

/// Of many concurrent appends expecting the same version, exactly one wins; the others get
/// their own conflict without failing the winner (they share group-commit batches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_to_one_version_have_one_winner() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(single(stream_id, ExpectedVersion::NoStream, 1))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => winners += 1,
            Err(StoreError::ConcurrencyConflict { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(count_events(db.pool()).await, 1);
}

/// A settlement batch and the payments it settles are appended together: one stale stream
/// rejects the whole append and nothing of it is written; fresh versions record all of it,
/// at consecutive positions.
#[tokio::test]
async fn multi_stream_append_is_all_or_nothing() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let payments = [Uuid::new_v4(), Uuid::new_v4()];
    for payment in payments {
        store
            .append(single(payment, ExpectedVersion::NoStream, 2))
            .await
            .unwrap();
    }
    let batch_id = Uuid::new_v4();
    let settle = |second_expected: u64| AppendRequest {
        streams: vec![
            ledger_store::StreamAppend {
                stream_type: StreamType::SettlementBatch,
                ..stream(batch_id, ExpectedVersion::NoStream, 2)
            },
            stream(payments[0], ExpectedVersion::Exactly(2), 1),
            stream(payments[1], ExpectedVersion::Exactly(second_expected), 1),
        ],
        idempotency: None,
    };

    let error = store.append(settle(1)).await.unwrap_err();
    assert!(
        matches!(error, StoreError::ConcurrencyConflict { stream_id, .. } if stream_id == payments[1])
    );
    assert_eq!(count_events(db.pool()).await, 4);
    assert!(store.read_stream(batch_id, 1).await.unwrap().is_empty());
    assert_eq!(store.read_stream(payments[0], 1).await.unwrap().len(), 2);

    let recorded = store.append(settle(2)).await.unwrap().into_result();
    let positions: Vec<u64> = recorded.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, [5, 6, 7, 8]);
    assert_eq!(recorded.events[0].stream_type, StreamType::SettlementBatch);
    assert_eq!(store.read_stream(payments[1], 1).await.unwrap().len(), 3);
}

/// A stream keeps its type: appending to it as another type is refused.
#[tokio::test]
async fn stream_type_cannot_change() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    store
        .append(single(stream_id, ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    let mut request = single(stream_id, ExpectedVersion::Any, 1);
    request.streams[0].stream_type = StreamType::SettlementBatch;
    let error = store.append(request).await.unwrap_err();
    assert!(matches!(error, StoreError::StreamTypeMismatch { .. }));
}

/// Concurrent stream reads are answered together, several per query: each still gets exactly
/// its own stream's events from the version it asked for, none of another's.
#[tokio::test]
async fn concurrent_stream_reads_each_get_their_own_stream() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut streams = Vec::new();
    for index in 0..40 {
        let stream_id = Uuid::new_v4();
        let count = 1 + index % 8;
        let recorded = store
            .append(single(stream_id, ExpectedVersion::NoStream, count))
            .await
            .unwrap()
            .into_result();
        streams.push((stream_id, recorded.events));
    }
    let reads = (0..400).map(|read| {
        let store = store.clone();
        let (stream_id, events) = streams[(read * 7) % streams.len()].clone();
        // From every version, and from one past the last (nothing yet).
        let from_version = 1 + read % (events.len() + 1);
        async move {
            let read_back = store
                .read_stream(stream_id, from_version as u64)
                .await
                .unwrap();
            assert_eq!(
                read_back,
                events[from_version - 1..],
                "stream {stream_id} from version {from_version}"
            );
        }
    });
    futures::future::join_all(reads).await;
}

/// Reads of streams' rows and of idempotency claims are answered together with reads of
/// events, by the same readers: each gets its own stream's row (its type and version) or its
/// own key's claim (the positions its request recorded), a stream never written or a key never
/// claimed gets none, and the reads of events beside them are unaffected.
#[tokio::test]
async fn concurrent_reads_of_rows_claims_and_events_each_get_their_own() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let mut streams = Vec::new();
    for index in 0..30 {
        let stream_id = Uuid::new_v4();
        let count = 1 + index % 5;
        let mut request = single(stream_id, ExpectedVersion::NoStream, count);
        request.idempotency = Some(claim(
            &format!("key-{stream_id}"),
            &json!({ "index": index }),
        ));
        let recorded = store.append(request).await.unwrap().into_result();
        streams.push((stream_id, recorded.events));
    }
    let reads = (0..400).map(|read| {
        let store = store.clone();
        let (stream_id, events) = streams[(read * 7) % streams.len()].clone();
        async move {
            match read % 4 {
                0 => {
                    let row = store.stored_stream(stream_id).await.unwrap().unwrap();
                    assert_eq!(row.stream_id, stream_id);
                    assert_eq!(row.stream_type, StreamType::Payment);
                    assert_eq!(row.version, events.len() as u64, "stream {stream_id}");
                    // A raw append brings no state to keep.
                    assert_eq!(row.kept, None);
                }
                1 => {
                    let never_written = Uuid::new_v4();
                    assert_eq!(store.stored_stream(never_written).await.unwrap(), None);
                }
                2 => {
                    let key = format!("key-{stream_id}");
                    let record = store
                        .idempotency_record(Environment::Test, &key)
                        .await
                        .unwrap()
                        .unwrap();
                    assert_eq!(record.key, key);
                    assert_eq!(
                        record.result,
                        json!({
                            "first_position": events[0].position,
                            "last_position": events[events.len() - 1].position,
                        })
                    );
                    assert_eq!(
                        store
                            .idempotency_record(Environment::Test, "never-claimed")
                            .await
                            .unwrap(),
                        None
                    );
                }
                _ => assert_eq!(store.read_stream(stream_id, 1).await.unwrap(), events),
            }
        }
    });
    futures::future::join_all(reads).await;
}

/// The store's connections never JIT-compile: on tables not analyzed yet the planner's
/// estimates start compilations that cost far more than the short statements themselves.
#[tokio::test]
async fn pooled_connections_run_without_jit() {
    let db = TestDatabase::new().await;
    let pool = ledger_store::pool_options(2)
        .connect(db.url())
        .await
        .unwrap();
    let jit: String = sqlx::query_scalar!(r#"SELECT current_setting('jit') AS "jit!""#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jit, "off");
}

/// No statement of the ledger runs unbounded: every pooled connection has the store's
/// statement timeout, and one that runs past it fails instead of holding its connection.
#[tokio::test]
async fn pooled_connections_have_a_statement_timeout() {
    let db = TestDatabase::new().await;
    let pool = ledger_store::pool_options(2)
        .connect(db.url())
        .await
        .unwrap();
    let timeout: String =
        sqlx::query_scalar!(r#"SELECT current_setting('statement_timeout') AS "timeout!""#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(timeout, ledger_store::STATEMENT_TIMEOUT);
    // The same setting, made shorter for this session only, does stop a long statement.
    let mut connection = pool.acquire().await.unwrap();
    sqlx::query("SET statement_timeout = '100ms'")
        .execute(&mut *connection)
        .await
        .unwrap();
    let error = sqlx::query("SELECT pg_sleep(5)")
        .execute(&mut *connection)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("statement timeout"), "{error}");
}

/// The ledger's own statements over whole tables (a build's indexes, the verifier's comparison)
/// run in a transaction without the statement timeout; the connection keeps its timeout for
/// the statements after it.
#[tokio::test]
async fn an_unbounded_transaction_outlasts_the_timeout_and_leaves_it_in_place() {
    let db = TestDatabase::new().await;
    // One connection, so the transaction runs on the one whose timeout was shortened.
    let pool = ledger_store::pool_options(1)
        .connect(db.url())
        .await
        .unwrap();
    sqlx::query("SET statement_timeout = '100ms'")
        .execute(&pool)
        .await
        .unwrap();
    let mut transaction = ledger_store::begin_unbounded_transaction(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_sleep(0.3)")
        .execute(&mut *transaction)
        .await
        .expect("a statement longer than the connection's timeout runs to its end");
    transaction.commit().await.unwrap();
    let timeout: String =
        sqlx::query_scalar!(r#"SELECT current_setting('statement_timeout') AS "timeout!""#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(timeout, "100ms");
}

/// A stored event that no longer decodes fails the read of its own stream with a typed error;
/// a read of another stream answered by the same query is unaffected.
#[tokio::test]
async fn a_corrupt_event_fails_only_its_own_streams_read() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let damaged = Uuid::new_v4();
    let intact = Uuid::new_v4();
    store
        .append(single(damaged, ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    let written = store
        .append(single(intact, ExpectedVersion::NoStream, 3))
        .await
        .unwrap()
        .into_result();

    // As a superuser, past the append-only trigger and the hash's length check.
    sqlx::raw_sql(
        "ALTER TABLE events DISABLE TRIGGER events_append_only;
         ALTER TABLE events DROP CONSTRAINT events_hash_check;",
    )
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query!(
        r"UPDATE events SET hash = '\x00' WHERE stream_id = $1 AND stream_version = 2",
        damaged
    )
    .execute(db.pool())
    .await
    .unwrap();

    let reads: Vec<_> = (0..20)
        .map(|read| {
            let store = store.clone();
            let stream_id = if read % 2 == 0 { damaged } else { intact };
            async move { (stream_id, store.read_stream(stream_id, 1).await) }
        })
        .collect();
    for (stream_id, read) in futures::future::join_all(reads).await {
        if stream_id == damaged {
            assert!(
                matches!(read, Err(StoreError::CorruptEvent { .. })),
                "{read:?}"
            );
        } else {
            assert_eq!(read.unwrap(), written.events);
        }
    }
}
