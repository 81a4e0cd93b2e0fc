//! The database itself refuses to change the log.

use ledger_store::testing::TestDatabase;
use ledger_store::ExpectedVersion;
use uuid::Uuid;

use crate::helpers::{count_events, single};

fn assert_refused(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>, operation: &str) {
    let error = result.expect_err(operation);
    assert!(
        error.to_string().contains("append-only"),
        "{operation}: unexpected error {error}"
    );
}

/// UPDATE, DELETE and TRUNCATE on `events` each fail, even for the table's owner (a
/// superuser here), and even when they would touch no row.
#[tokio::test]
async fn update_delete_and_truncate_are_refused() {
    let db = TestDatabase::new().await;
    db.store()
        .append(single(Uuid::new_v4(), ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    let pool = db.pool();
    assert_refused(
        sqlx::query!("UPDATE events SET event_type = 'Changed' WHERE position = 1")
            .execute(pool)
            .await,
        "UPDATE",
    );
    assert_refused(
        sqlx::query!("UPDATE events SET event_type = 'Changed' WHERE position = 999")
            .execute(pool)
            .await,
        "UPDATE of no row",
    );
    assert_refused(
        sqlx::query!("DELETE FROM events WHERE position = 2")
            .execute(pool)
            .await,
        "DELETE",
    );
    assert_refused(
        sqlx::query!("TRUNCATE events").execute(pool).await,
        "TRUNCATE",
    );
    assert_eq!(count_events(pool).await, 2);
}
