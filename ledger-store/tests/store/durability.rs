//! Faults: an interrupted writer leaves nothing behind; acknowledged appends survive a crash.

use ledger_store::testing::{Shutdown, TestCluster, TestDatabase};
use ledger_store::{EventStore, ExpectedVersion};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::helpers::{count_events, single};

/// Begins what a writer does (locks the head, inserts an event) on a connection.
async fn half_written_append(connection: &mut sqlx::PgConnection) {
    sqlx::query!("BEGIN")
        .execute(&mut *connection)
        .await
        .unwrap();
    sqlx::query!("SELECT last_position FROM log_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *connection)
        .await
        .unwrap();
    sqlx::query!(
        r#"INSERT INTO events (position, event_id, stream_id, stream_type, stream_version,
               event_type, schema_version, recorded_at, occurred_at, payload, metadata,
               prev_hash, hash)
           SELECT last_position + 1, $1, $2, 'payment', 1, 'Orphan', 1, now(), now(), '{}',
               '{}', last_hash, last_hash FROM log_head"#,
        Uuid::new_v4(),
        Uuid::new_v4(),
    )
    .execute(&mut *connection)
    .await
    .unwrap();
}

/// A writer whose connection is killed in the middle of its transaction leaves no row, and
/// the log head it held is free again for the next append.
#[tokio::test]
async fn a_killed_writer_leaves_nothing_behind() {
    let db = TestDatabase::new().await;
    let store = db.store();
    store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    let mut victim = db.pool().acquire().await.unwrap();
    half_written_append(&mut victim).await;
    let backend = sqlx::query_scalar!(r#"SELECT pg_backend_pid() AS "pid!""#)
        .fetch_one(&mut *victim)
        .await
        .unwrap();
    let killed = sqlx::query_scalar!(r#"SELECT pg_terminate_backend($1) AS "killed!""#, backend)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(killed);
    victim.detach();

    assert_eq!(count_events(db.pool()).await, 2);
    let next = store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    assert_eq!(next.result().last_position, 3);
    assert!(store.verify_chain(1, None).await.unwrap().is_intact());
}

/// With durability on, every acknowledged append survives a crash of the server (immediate
/// shutdown, then WAL recovery), an append in flight at the crash leaves nothing, and the
/// chain verifies afterwards.
#[tokio::test]
async fn acknowledged_appends_survive_a_server_crash() {
    let cluster = TestCluster::start_durable().unwrap();
    let db = cluster.create_database().await.unwrap();
    let store = db.store();
    let mut acknowledged = 0;
    for _ in 0..20 {
        let outcome = store
            .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 2))
            .await
            .unwrap();
        acknowledged = outcome.result().last_position;
    }
    let mut in_flight = db.pool().acquire().await.unwrap();
    half_written_append(&mut in_flight).await;
    in_flight.detach();

    cluster.restart(Shutdown::Immediate).unwrap();

    // A fresh pool: every connection of the old one died with the server.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(db.url())
        .await
        .unwrap();
    let store = EventStore::new(pool.clone());
    assert_eq!(count_events(&pool).await, acknowledged as i64);
    assert_eq!(store.head().await.unwrap().last_position, acknowledged);
    let verification = store.verify_chain(1, None).await.unwrap();
    assert!(verification.is_intact());
    assert_eq!(verification.events_checked, acknowledged);
    let next = store
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 1))
        .await
        .unwrap();
    assert_eq!(next.result().last_position, acknowledged + 1);
    drop(db);
}
