//! Live subscriptions: catch up, follow, and lose nothing when notifications are missed.

use std::time::{Duration, Instant};

use futures::StreamExt;
use ledger_store::testing::TestDatabase;
use ledger_store::{wait_for_appends, ExpectedVersion, SubscribeOptions, NOTIFY_CHANNEL};
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::helpers::single;

const PATIENCE: Duration = Duration::from_secs(10);

/// A subscription from position 1 first delivers what is stored, then live events as they
/// are committed, in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_catches_up_then_follows_live() {
    let db = TestDatabase::new().await;
    let store = db.store();
    let stream_id = Uuid::new_v4();
    store
        .append(single(stream_id, ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    // A long poll interval: only the notification can deliver live events in time.
    let options = SubscribeOptions {
        poll_interval: Duration::from_secs(60),
        page_size: 2,
    };
    let mut subscription = Box::pin(store.subscribe_with(1, options));
    for expected in 1..=3 {
        let event = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.position, expected);
    }
    let writer = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer
            .append(single(stream_id, ExpectedVersion::Exactly(3), 2))
            .await
            .unwrap();
    });
    for expected in 4..=5 {
        let event = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("a live event arrives promptly")
            .unwrap()
            .unwrap();
        assert_eq!(event.position, expected);
    }
}

/// With notifications switched off entirely, a subscription still receives every event, by
/// polling by position: a missed notification delays, never loses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_loses_nothing_without_notifications() {
    let db = TestDatabase::new().await;
    sqlx::query!("ALTER TABLE log_head DISABLE TRIGGER log_head_notify")
        .execute(db.pool())
        .await
        .unwrap();
    let store = db.store();
    let options = SubscribeOptions {
        poll_interval: Duration::from_millis(100),
        page_size: 5,
    };
    let mut subscription = Box::pin(store.subscribe_with(1, options));
    let writer = store.clone();
    tokio::spawn(async move {
        for _ in 0..10 {
            writer
                .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 2))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    for expected in 1..=20 {
        let event = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.position, expected);
    }
}

/// A follower that has read the log to a position is not woken by announcements of appends up
/// to it (under a stream of appends they arrive after the read that saw their events), only
/// by one past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_is_woken_only_by_appends_past_what_it_read() {
    let db = TestDatabase::new().await;
    let mut listener = PgListener::connect_with(db.pool()).await.unwrap();
    listener.listen(NOTIFY_CHANNEL).await.unwrap();
    let pool = db.pool().clone();
    let announcer = tokio::spawn(async move {
        for position in ["3", "7"] {
            sqlx::query!("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, position)
                .execute(&pool)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query!("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, "8")
            .execute(&pool)
            .await
            .unwrap();
    });
    let started = Instant::now();
    wait_for_appends(&mut listener, Duration::from_secs(60), 7)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "woken after {waited:?} by an announcement of an append it had read"
    );
    assert!(
        waited < PATIENCE,
        "the append past it woke it only after {waited:?}"
    );
    announcer.await.unwrap();
}
