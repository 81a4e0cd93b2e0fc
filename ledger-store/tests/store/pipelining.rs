//! The pipelined writer: batches planned on the state the batches before them leave, checked
//! by the database when written.

use ledger_store::testing::TestDatabase;
use ledger_store::{
    AppendRequest, EventStore, ExpectedVersion, StoreError, PIPELINE_WHEN_ALONE_FOR,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{assert_each_stream_in_order, claim, count_events, single, tail};

/// Appends one after another until the store's writer has pipelined a batch: it does so once
/// it has written enough batches in a row with no other process writing.
async fn until_pipelining(store: &EventStore) {
    let stream_id = Uuid::new_v4();
    for version in 0..(PIPELINE_WHEN_ALONE_FOR as u64 + 2) {
        store
            .append(single(stream_id, ExpectedVersion::Exactly(version), 1))
            .await
            .unwrap();
    }
    assert!(
        store.writer_statistics().pipelined >= 1,
        "{:?}",
        store.writer_statistics()
    );
}

/// One store, many concurrent appenders, a reader tailing the log by position: the writer
/// pipelines, and the reader still sees every event exactly once, in position order, each
/// stream's versions in order, and the chain intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_writer_pipelines_and_readers_see_every_event_once_in_order() {
    const WRITERS: usize = 24;
    const APPENDS_PER_WRITER: u64 = 30;
    let db = TestDatabase::new().await;
    let store = db.store();
    until_pipelining(&store).await;
    let start = store.head().await.unwrap().last_position;
    let pipelined_before = store.writer_statistics().pipelined;

    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream_id = Uuid::new_v4();
                for version in 0..APPENDS_PER_WRITER {
                    let count = 1 + (version % 2) as usize;
                    let expected = store
                        .read_stream(stream_id, 1)
                        .await
                        .unwrap()
                        .last()
                        .map_or(0, |event| event.stream_version);
                    store
                        .append(single(stream_id, ExpectedVersion::Exactly(expected), count))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let expected_total = WRITERS as u64 * (APPENDS_PER_WRITER / 2 * 3);
    let reader_store = store.clone();
    let reader = tokio::spawn(async move { tail(&reader_store, start, expected_total).await });
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen.len() as u64, expected_total);
    assert_each_stream_in_order(&seen);
    let statistics = store.writer_statistics();
    assert!(statistics.pipelined > pipelined_before, "{statistics:?}");
    let verification = store.verify_chain(1, None).await.unwrap();
    assert!(verification.is_intact(), "{verification:?}");
    assert_eq!(verification.events_checked, start + expected_total);
}

/// A pipelining writer that never saw a stream takes the version a request expects on trust;
/// the database refuses the batch when the stream is elsewhere, and the request gets the
/// conflict it would have got from a writer that read first, with nothing written.
#[tokio::test]
async fn a_stale_expectation_on_a_stream_the_writer_never_saw_is_a_conflict() {
    let db = TestDatabase::new().await;
    let elsewhere = db.store();
    let stream_id = Uuid::new_v4();
    elsewhere
        .append(single(stream_id, ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    let store = db.store();
    until_pipelining(&store).await;
    let mut head = store.head().await.unwrap();
    let again_before = store.writer_statistics().written_again;

    // Behind the stream (its next version is taken), and ahead of it (its next version is
    // free, only the stream's row says where it is).
    for expected in [2, 5] {
        let stale = store
            .append(single(stream_id, ExpectedVersion::Exactly(expected), 1))
            .await
            .unwrap_err();
        assert!(
            matches!(stale, StoreError::ConcurrencyConflict { actual: 3, .. }),
            "{stale:?}"
        );
        assert_eq!(store.head().await.unwrap(), head, "nothing may be written");
        until_pipelining(&store).await;
        head = store.head().await.unwrap();
    }
    assert_eq!(store.writer_statistics().written_again, again_before + 2);

    let current = store
        .append(single(stream_id, ExpectedVersion::Exactly(3), 1))
        .await
        .unwrap();
    assert_eq!(current.result().events[0].stream_version, 4);
    assert_eq!(current.result().events[0].position, head.last_position + 1);
}

/// Another process writing while a writer pipelines: the writer's next batch finds the head
/// elsewhere, is written again after reading, and lands after the other process's events; the
/// writer goes back to reading first until it has been alone for a while, then pipelines
/// again.
#[tokio::test]
async fn another_process_writing_sends_a_pipelining_writer_back_to_reading() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let elsewhere = db.store();
    until_pipelining(&store).await;
    let before = store.writer_statistics();

    elsewhere
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    let next = store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    assert_eq!(next.result().events[0].position, head.last_position + 1);
    assert_eq!(next.result().events[0].prev_hash, head.last_hash);
    let after = store.writer_statistics();
    assert_eq!(after.written_again, before.written_again + 1, "{after:?}");

    until_pipelining(&store).await;
    assert!(store.writer_statistics().pipelined > after.pipelined);
    let verification = store.verify_chain(1, None).await.unwrap();
    assert!(verification.is_intact(), "{verification:?}");
}

/// A retry whose key another process recorded reaches a pipelining writer that has never seen
/// the key: it gets the original result, or the reused-key error for another request, and
/// nothing new is written.
#[tokio::test]
async fn a_replay_the_pipelining_writer_never_saw_gets_the_original_result() {
    let db = TestDatabase::new().await;
    let elsewhere = db.store();
    let stream_id = Uuid::new_v4();
    let request = json!({"capture": "10.50"});
    let keyed = |request: &serde_json::Value| AppendRequest {
        idempotency: Some(claim("key-pipelined", request)),
        ..single(stream_id, ExpectedVersion::NoStream, 2)
    };
    let first = elsewhere.append(keyed(&request)).await.unwrap();
    let store = db.store();
    until_pipelining(&store).await;
    let events = count_events(db.pool()).await;

    let replayed = store.append(keyed(&request)).await.unwrap();
    assert!(replayed.is_replayed());
    assert_eq!(replayed.result(), first.result());
    let reused = store
        .append(keyed(&json!({"capture": "99.00"})))
        .await
        .unwrap_err();
    assert!(
        matches!(reused, StoreError::IdempotencyKeyReused { .. }),
        "{reused:?}"
    );
    assert_eq!(count_events(db.pool()).await, events);
}

/// The last step of a pipelined batch, `log_advance_head`, as a batch's statement calls it:
/// raises LP001 when the head is short of the batch, moves the head otherwise.
async fn advance_head(
    connection: &mut sqlx::PgConnection,
    from: (i64, &[u8]),
    to: (i64, &[u8]),
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT log_advance_head($1, $2, $3, $4, 0, 0, 0)")
        .bind(from.0)
        .bind(from.1)
        .bind(to.0)
        .bind(to.1)
        .fetch_one(connection)
        .await
}

/// A pipelined batch whose statement reaches the head before the statement of the batch
/// before it has started (on saturated cores, its connection was scheduled first) waits a
/// few milliseconds for that batch to announce itself, then for its commit, and is written
/// instead of rolled back and sent again. When the batch before never comes, it is still
/// refused with LP001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_ahead_of_the_batch_before_waits_for_it_briefly() {
    let db = TestDatabase::new().await;
    let pool = db.pool();
    let head: (i64, Vec<u8>) =
        sqlx::query_as("SELECT last_position, last_hash FROM log_head WHERE id = 1")
            .fetch_one(pool)
            .await
            .unwrap();
    let (first_hash, second_hash) = (vec![1_u8; 32], vec![2_u8; 32]);
    // The later batch reaches the head first; the batch before, its transaction already
    // open, starts 2 ms later, well within the later batch's wait.
    let mut earlier = pool.begin().await.unwrap();
    let mut transaction = pool.begin().await.unwrap();
    let later = tokio::spawn({
        let second_hash = second_hash.clone();
        let first_hash = first_hash.clone();
        async move {
            let advanced = advance_head(
                &mut transaction,
                (head.0 + 1, &first_hash),
                (head.0 + 2, &second_hash),
            )
            .await;
            transaction.commit().await.unwrap();
            advanced
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    sqlx::query("SELECT log_announce_batch($1)")
        .bind(head.0 + 1)
        .execute(&mut *earlier)
        .await
        .unwrap();
    advance_head(&mut earlier, (head.0, &head.1), (head.0 + 1, &first_hash))
        .await
        .unwrap();
    earlier.commit().await.unwrap();
    assert!(later.await.unwrap().unwrap(), "the later batch was refused");
    let moved: i64 = sqlx::query_scalar("SELECT last_position FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(moved, head.0 + 2);

    // A batch before that never comes: the later batch is refused, as before.
    let mut transaction = pool.begin().await.unwrap();
    let refused = advance_head(
        &mut transaction,
        (head.0 + 3, &first_hash),
        (head.0 + 4, &second_hash),
    )
    .await;
    let code = match refused {
        Err(sqlx::Error::Database(error)) => error.code().map(|code| code.into_owned()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code.as_deref(), Some("LP001"));
    transaction.rollback().await.unwrap();
}
