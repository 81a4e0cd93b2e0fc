//! The role the server works as can append and read the log, and can change nothing else:
//! not the log's rows, not its trigger, not a table, not a key, not a role.

use ledger_store::server_role::serving_role_problems;
use ledger_store::testing::TestDatabase;
use ledger_store::ExpectedVersion;
use uuid::Uuid;

use crate::helpers::{count_events, single};

/// PostgreSQL's "insufficient_privilege": refused for want of a right, not for any other
/// reason (the append-only trigger's refusal is another code).
const INSUFFICIENT_PRIVILEGE: &str = "42501";

#[tokio::test]
async fn the_server_role_appends_and_reads_but_cannot_change_the_log_or_the_schema() {
    let db = TestDatabase::new().await;
    let serving = db.server_pool().await;
    assert_eq!(
        serving_role_problems(&serving).await.unwrap(),
        Vec::<String>::new()
    );

    // What the server does: append through the store, and read back.
    let stream = Uuid::new_v4();
    ledger_store::EventStore::new(serving.clone())
        .append(single(stream, ExpectedVersion::NoStream, 2))
        .await
        .unwrap();
    assert_eq!(count_events(&serving).await, 2);

    let forbidden = [
        "UPDATE events SET event_type = 'Changed'",
        "DELETE FROM events",
        "TRUNCATE events",
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "DROP TRIGGER events_append_only ON events",
        "CREATE TABLE shadow (id int)",
        "DROP TABLE projection_payments",
        "TRUNCATE projection_payments",
        "INSERT INTO api_keys (id, name, role, environment, key_hash, key_prefix) \
         VALUES (gen_random_uuid(), 'x', 'admin', 'live', 'h', 'p')",
        "UPDATE api_keys SET revoked_at = NULL",
        "DELETE FROM _sqlx_migrations",
        "ALTER ROLE ledger_server SUPERUSER",
        "CREATE ROLE intruder LOGIN",
    ];
    for statement in forbidden {
        let refused = sqlx::raw_sql(statement).execute(&serving).await;
        let code = match &refused {
            Err(sqlx::Error::Database(error)) => error.code().map(|code| code.into_owned()),
            _ => None,
        };
        assert_eq!(
            code.as_deref(),
            Some(INSUFFICIENT_PRIVILEGE),
            "{statement}: {refused:?}"
        );
    }
    assert_eq!(count_events(db.pool()).await, 2);
}

/// The owner's own connections, as a server that skipped the role would use, fail the check
/// `ledger serve` runs before it serves; so does a role that lost a grant it needs.
#[tokio::test]
async fn the_check_refuses_the_owner_and_a_role_missing_a_grant() {
    let db = TestDatabase::new().await;
    let owner_problems = serving_role_problems(db.pool()).await.unwrap();
    assert!(
        owner_problems
            .iter()
            .any(|problem| problem.contains("owner")),
        "{owner_problems:?}"
    );

    sqlx::raw_sql("REVOKE SELECT ON projection_payments FROM ledger_server")
        .execute(db.pool())
        .await
        .unwrap();
    let serving = db.server_pool().await;
    let problems = serving_role_problems(&serving).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("projection_payments"), "{problems:?}");
}
