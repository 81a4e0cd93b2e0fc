//! Exactly-once effect: a projector that fails or is killed in the middle of a batch leaves
//! rows and checkpoints consistent (the rows are exactly those of the events up to the
//! checkpoint), and running again converges to the same result as one clean run.

use std::time::Duration;

use ledger_projections::{verify, Projection, Projector, ProjectorOptions, SchemaName};
use ledger_store::testing::TestDatabase;

use crate::support::{every_lifecycle, many_payments, Ledger};

fn small_batches(batch_size: usize) -> ProjectorOptions {
    ProjectorOptions {
        batch_size,
        ..ProjectorOptions::default()
    }
}

async fn checkpoints(pool: &sqlx::PgPool) -> Vec<i64> {
    sqlx::query_scalar!("SELECT position FROM projection_checkpoints ORDER BY projection")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Asserts that the live read models equal a fresh fold up to their checkpoints.
async fn assert_consistent(ledger: &Ledger) {
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);
}

/// A failure injected after some rows of a batch were written rolls the whole batch back with
/// its checkpoint; the next run applies it exactly once.
#[tokio::test]
async fn a_failure_mid_batch_leaves_rows_and_checkpoint_consistent() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    many_payments(&ledger, 150).await;
    let pool = database.pool();
    let failing_position: i64 = sqlx::query_scalar!(
        r#"SELECT MIN(position) AS "position!" FROM events
           WHERE event_type = 'PaymentCaptured' AND position > 130"#
    )
    .fetch_one(pool)
    .await
    .unwrap();
    // The journal insert fails on that event: rows of other read models in the same batch
    // were already written when it does.
    sqlx::raw_sql(&format!(
        r#"CREATE FUNCTION fail_on_position() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
               IF NEW.position = {failing_position} THEN RAISE EXCEPTION 'injected failure'; END IF;
               RETURN NEW;
           END $$;
           CREATE TRIGGER fail_on_position BEFORE INSERT ON projection_journal_entries
               FOR EACH ROW EXECUTE FUNCTION fail_on_position();"#
    ))
    .execute(pool)
    .await
    .unwrap();

    let mut projector = Projector::new(
        pool.clone(),
        SchemaName::live(),
        &Projection::ALL,
        small_batches(50),
    );
    let error = projector.catch_up(None).await.unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    let stopped_at = (failing_position - 1) / 50 * 50;
    assert_eq!(
        checkpoints(pool).await,
        vec![stopped_at; Projection::ALL.len()]
    );
    let newest_payment: Option<i64> =
        sqlx::query_scalar!("SELECT MAX(last_position) FROM projection_payments")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(newest_payment.unwrap() <= stopped_at);
    assert_consistent(&ledger).await;

    sqlx::raw_sql("DROP TRIGGER fail_on_position ON projection_journal_entries")
        .execute(pool)
        .await
        .unwrap();
    // A new projector (a restarted process) resumes after the checkpoint.
    let mut restarted = Projector::new(
        pool.clone(),
        SchemaName::live(),
        &Projection::ALL,
        small_batches(50),
    );
    let applied = restarted.catch_up(None).await.unwrap();
    let head = ledger.store.head().await.unwrap().last_position;
    assert_eq!(applied, head - stopped_at as u64);
    assert_eq!(
        checkpoints(pool).await,
        vec![head as i64; Projection::ALL.len()]
    );
    assert_consistent(&ledger).await;
}

/// A projector task aborted at an arbitrary point (its transaction dropped mid-flight) leaves
/// a consistent state, and the next run converges.
#[tokio::test]
async fn an_aborted_projector_converges_on_the_next_run() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    many_payments(&ledger, 400).await;
    let pool = database.pool().clone();
    let task = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut projector =
                Projector::new(pool, SchemaName::live(), &Projection::ALL, small_batches(7));
            projector.catch_up(None).await
        }
    });
    // Abort once some batches have committed, very likely inside another one.
    loop {
        let positions = checkpoints(&pool).await;
        if positions.first().is_some_and(|position| *position > 100) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    let _ = task.await;
    let head = ledger.store.head().await.unwrap().last_position as i64;
    let stopped = checkpoints(&pool).await;
    assert!(
        stopped[0] < head,
        "the projector finished before it was aborted"
    );
    assert_consistent(&ledger).await;

    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    assert_eq!(checkpoints(&pool).await, vec![head; Projection::ALL.len()]);
    assert_consistent(&ledger).await;
}

/// Two projectors on the same schema at once apply every event once: the checkpoint lock
/// serializes them.
#[tokio::test]
async fn concurrent_projectors_apply_each_event_once() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    many_payments(&ledger, 200).await;
    let pool = database.pool();
    let mut first = Projector::new(
        pool.clone(),
        SchemaName::live(),
        &Projection::ALL,
        small_batches(25),
    );
    let mut second = Projector::new(
        pool.clone(),
        SchemaName::live(),
        &Projection::ALL,
        small_batches(25),
    );
    let (one, two) = tokio::join!(first.catch_up(None), second.catch_up(None));
    let head = ledger.store.head().await.unwrap().last_position;
    assert_eq!(one.unwrap() + two.unwrap(), head);
    assert_consistent(&ledger).await;
}

/// A pool of one connection is enough: reading the next batch ahead never waits for the
/// connection the current batch's transaction holds.
#[tokio::test]
async fn a_single_connection_pool_catches_up() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    many_payments(&ledger, 50).await;
    let single = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database.url())
        .await
        .unwrap();
    let mut projector = Projector::new(
        single,
        SchemaName::live(),
        &Projection::ALL,
        small_batches(10),
    );
    let applied = tokio::time::timeout(Duration::from_secs(60), projector.catch_up(None))
        .await
        .expect("no deadlock")
        .unwrap();
    assert_eq!(applied, ledger.store.head().await.unwrap().last_position);
    assert_consistent(&ledger).await;
}
