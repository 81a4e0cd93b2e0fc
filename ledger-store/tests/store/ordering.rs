//! The global order: gap-free positions that no concurrent reader can skip.

use ledger_store::testing::TestDatabase;
use ledger_store::{EventStore, ExpectedVersion};
use uuid::Uuid;

use crate::helpers::{assert_each_stream_in_order, single, tail};

const WRITERS: usize = 16;
const APPENDS_PER_WRITER: usize = 40;

/// Many concurrent writers, through four stores (four writer tasks competing for the log
/// head as separate processes would), while a reader tails the log by position: the reader
/// sees every event exactly once, in position order with no gap, and each stream's versions
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_a_tailing_reader_see_every_event_once_in_order() {
    let db = TestDatabase::new().await;
    let stores: Vec<EventStore> = (0..4).map(|_| db.store()).collect();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = stores[writer % stores.len()].clone();
        writers.push(tokio::spawn(async move {
            let stream_id = Uuid::new_v4();
            let mut written = 0;
            for append in 0..APPENDS_PER_WRITER {
                let count = 1 + append % 3;
                store
                    .append(single(stream_id, ExpectedVersion::Exactly(written), count))
                    .await
                    .unwrap();
                written += count as u64;
            }
            written
        }));
    }
    let reader_store = stores[0].clone();
    let expected_total =
        (WRITERS * (0..APPENDS_PER_WRITER).map(|a| 1 + a % 3).sum::<usize>()) as u64;
    let reader = tokio::spawn(async move { tail(&reader_store, 0, expected_total).await });
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    let seen = reader.await.unwrap();
    assert_eq!(seen.len() as u64, total);
    assert_each_stream_in_order(&seen);
    // Every append through the first store was counted in some commit of its writer.
    let statistics = stores[0].writer_statistics();
    assert_eq!(
        statistics.requests as usize,
        WRITERS / stores.len() * APPENDS_PER_WRITER
    );
    assert!(statistics.batches >= 1 && statistics.batches <= statistics.requests);
    let verification = stores[0].verify_chain(1, None).await.unwrap();
    assert!(verification.is_intact(), "{verification:?}");
    assert_eq!(verification.events_checked, total);
}
