//! Rebuilds beside the live tables and swaps them in; point-in-time builds and balances as of
//! a past position or time.

use std::str::FromStr;
use std::time::Duration;

use ledger_core::ids::Environment;
use ledger_projections::read_models::journal;
use ledger_projections::rebuild::{balances_as_of, drop_point_in_time};
use ledger_projections::{
    build_point_in_time, position_as_of, projection_lag, rebuild, verify, AsOf, Projection,
    ProjectionError, Projector, ProjectorOptions, SchemaName,
};
use ledger_store::testing::TestDatabase;
use rust_decimal::Decimal;

use crate::support::{every_lifecycle, many_payments, Ledger};

/// A rebuild from zero replaces a damaged live table, keeps the checkpoint, and leaves no
/// schema behind.
#[tokio::test]
async fn rebuild_replaces_the_live_tables() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let world = every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    sqlx::query!(
        "UPDATE projection_payments SET captured_amount = 999 WHERE payment_id = $1",
        world.payments[0].as_uuid()
    )
    .execute(pool)
    .await
    .unwrap();
    let report = rebuild(pool, &Projection::ALL, ProjectorOptions::default())
        .await
        .unwrap();
    let head = ledger.store.head().await.unwrap().last_position;
    assert_eq!((report.position, report.events_applied), (head, head));
    let captured = sqlx::query_scalar!(
        "SELECT captured_amount FROM projection_payments WHERE payment_id = $1",
        world.payments[0].as_uuid()
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(captured, Decimal::from_str("100.00").unwrap());
    let leftovers: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM pg_namespace WHERE nspname LIKE 'projection\_%'"#
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0);
    assert!(verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap()
        .is_clean());
}

/// One projection is rebuilt (by `ledger replay`, as the owner) while the live projector
/// follows the log (in `ledger serve`, as the server's role) and new events keep arriving;
/// afterwards everything converges to a fresh fold, and the tables swapped in kept the
/// server's grants.
#[tokio::test]
async fn rebuild_while_the_live_projector_runs() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let pool = database.pool().clone();
    let serving = database.server_pool().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(Projector::live(serving.clone()).follow(async {
        let _ = stopped.await;
    }));
    many_payments(&ledger, 100).await;
    rebuild(&pool, &[Projection::Payments], ProjectorOptions::default())
        .await
        .unwrap();
    many_payments(&ledger, 100).await;
    let head = ledger.store.head().await.unwrap().last_position;
    for _ in 0..200 {
        let lag = projection_lag(&pool).await.unwrap();
        if lag
            .iter()
            .all(|projection| projection.checkpoint_position == head)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    live.await.unwrap();
    let problems = ledger_store::server_role::serving_role_problems(&serving)
        .await
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);
    assert!(report
        .compared_at
        .values()
        .all(|position| *position == head));
}

/// An auditor's schema holds the read models as they were before the settlement, and the
/// balances then agree with `balances_as_of` by position and by time.
#[tokio::test]
async fn point_in_time_build_and_balances_as_of() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let world = every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    let settlement = sqlx::query!(
        "SELECT position, recorded_at FROM events WHERE stream_id = $1 AND stream_version = 1",
        world.batch.as_uuid()
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let before = settlement.position as u64 - 1;
    let before_time = sqlx::query_scalar!(
        "SELECT recorded_at FROM events WHERE position = $1",
        before as i64
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        position_as_of(pool, AsOf::Time(before_time)).await.unwrap(),
        before
    );
    assert!(settlement.recorded_at > before_time);

    let schema = SchemaName::parse("audit_before_settlement").unwrap();
    let report = build_point_in_time(
        pool,
        &schema,
        AsOf::Time(before_time),
        &Projection::ALL,
        ProjectorOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.position, before);
    // What an auditor would type: plain SQL against the named schema.
    let batches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_before_settlement.projection_settlement_batches",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(batches, 0);
    let audited: Vec<(String, String, String, Decimal)> = sqlx::query_as(
        r#"SELECT merchant_id, currency, account, balance FROM audit_before_settlement.projection_balances
           WHERE balance <> 0 ORDER BY merchant_id, currency, account"#,
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let as_of = balances_as_of(pool, Environment::Test, None, AsOf::Position(before))
        .await
        .unwrap();
    let as_of: Vec<_> = as_of
        .into_iter()
        .filter(|balance| !balance.balance.is_zero())
        .collect();
    assert_eq!(audited.len(), as_of.len());
    for (audited, as_of) in audited.iter().zip(&as_of) {
        assert_eq!(
            (&audited.0, &audited.1, &audited.2, audited.3),
            (
                &as_of.merchant_id,
                &as_of.currency,
                &as_of.account.as_str().to_owned(),
                as_of.balance
            )
        );
    }
    assert!(as_of
        .iter()
        .all(|balance| balance.account.as_str() != "gateway_settled"));
    let summary = journal::merchant_summary(&as_of);
    assert!(summary.iter().all(|currency| currency.paid_out.is_zero()));
    let existing = build_point_in_time(
        pool,
        &schema,
        AsOf::Position(1),
        &[Projection::Journal],
        ProjectorOptions::default(),
    )
    .await;
    assert!(matches!(existing, Err(ProjectionError::SchemaExists(_))));
    drop_point_in_time(pool, &schema).await.unwrap();

    many_payments(&ledger, 3).await;
    let head = ledger.store.head().await.unwrap().last_position;
    let ahead = balances_as_of(pool, Environment::Test, None, AsOf::Position(head)).await;
    assert!(
        matches!(ahead, Err(ProjectionError::NotYetProjected { .. })),
        "{ahead:?}"
    );
}

/// Balances as of a past position start from the journal's snapshots (every 256th line of an
/// account) and add the lines since: at every position they are what summing all the postings
/// up to it gives. The snapshots a live projector writes in small batches are those a build
/// writes in large ones (verify compares them) and those the migration's backfill makes.
#[tokio::test]
async fn balances_as_of_from_snapshots_agree_with_every_posting_summed() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    many_payments(&ledger, 600).await;
    every_lifecycle(&ledger).await;
    let pool = database.pool();
    let options = ProjectorOptions {
        batch_size: 7,
        ..ProjectorOptions::default()
    };
    Projector::new(pool.clone(), SchemaName::live(), &Projection::ALL, options)
        .catch_up(None)
        .await
        .unwrap();

    let expected_snapshots: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(lines / 256), 0)::bigint FROM (SELECT count(*) AS lines
         FROM projection_postings GROUP BY environment, merchant_id, currency, account) AS counted",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(expected_snapshots >= 2, "{expected_snapshots}");
    let snapshots = || async {
        sqlx::query_as::<_, (String, String, String, String, i64, Decimal)>(
            "SELECT environment, merchant_id, currency, account, position, balance
             FROM projection_balance_snapshots ORDER BY 1, 2, 3, 4, 5",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    let written = snapshots().await;
    assert_eq!(written.len() as i64, expected_snapshots);

    let head = ledger.store.head().await.unwrap().last_position;
    for position in (1..=head).step_by(11).chain([head]) {
        for merchant in [None, Some("merchant_c")] {
            let summed: Vec<(String, String, String, Decimal)> = sqlx::query_as(
                "SELECT merchant_id, currency, account,
                        SUM(CASE side WHEN 'debit' THEN amount ELSE -amount END)
                 FROM projection_postings
                 WHERE environment = 'test' AND ($1::text IS NULL OR merchant_id = $1)
                   AND position <= $2
                 GROUP BY merchant_id, currency, account ORDER BY 1, 2, 3",
            )
            .bind(merchant)
            .bind(position as i64)
            .fetch_all(pool)
            .await
            .unwrap();
            let as_of = balances_as_of(pool, Environment::Test, merchant, AsOf::Position(position))
                .await
                .unwrap();
            let as_of: Vec<(String, String, String, Decimal)> = as_of
                .into_iter()
                .map(|balance| {
                    (
                        balance.merchant_id,
                        balance.currency,
                        balance.account.as_str().to_owned(),
                        balance.balance,
                    )
                })
                .collect();
            assert_eq!(as_of, summed, "as of position {position}, {merchant:?}");
        }
    }

    let report = verify(&ledger.store, ProjectorOptions::for_build())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);

    sqlx::query("DELETE FROM projection_balance_snapshots")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projection_balances SET postings = 0")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("SELECT projection_balance_snapshots_backfill()")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(snapshots().await, written);
    let report = verify(&ledger.store, ProjectorOptions::for_build())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);
}

/// Schema names are plain identifiers and never the live schema.
#[test]
fn schema_names_are_checked() {
    assert!(SchemaName::parse("audit_2026_q3").is_ok());
    for bad in [
        "public",
        "pg_temp",
        "Audit",
        "a-b",
        "",
        "1abc",
        "a\"; DROP TABLE events; --",
    ] {
        assert!(SchemaName::parse(bad).is_err(), "{bad}");
    }
}
