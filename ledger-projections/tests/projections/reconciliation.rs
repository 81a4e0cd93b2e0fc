//! The reconciliation read model: runs, payout verdicts and exceptions with resolutions, its
//! queries (filters, keyset pages, environments, latest verdicts), and that rebuilds,
//! point-in-time builds and `verify` cover its tables.

use std::str::FromStr;

use ledger_core::ids::{Environment, ReconciliationRunId};
use ledger_core::reconciliation::ExceptionClass;
use ledger_projections::read_models::reconciliation::{self, ExceptionFilter, RunFilter};
use ledger_projections::rebuild::drop_point_in_time;
use ledger_projections::{
    build_point_in_time, rebuild, verify, AsOf, Discrepancy, Projection, Projector,
    ProjectorOptions, SchemaName,
};
use ledger_store::testing::TestDatabase;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{at, every_lifecycle, payout_verdict, reconciliation_run, start_run, Ledger};

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn small_batches(batch_size: usize) -> ProjectorOptions {
    ProjectorOptions {
        batch_size,
        ..ProjectorOptions::default()
    }
}

/// Every row of the reconciliation tables of `schema`, in a stable order.
async fn snapshot(pool: &PgPool, schema: &str) -> Vec<Value> {
    let mut tables = Vec::new();
    for table in Projection::Reconciliation.tables() {
        let rows: Value = sqlx::query_scalar(&format!(
            r#"SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]'::jsonb)
               FROM "{schema}"."{table}" t"#
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        tables.push(rows);
    }
    tables
}

/// Every exception of a filter, read in pages of `size`.
async fn all_exceptions(
    pool: &PgPool,
    environment: Environment,
    filter: &ExceptionFilter,
    size: usize,
) -> Vec<reconciliation::ReconciliationExceptionRow> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = reconciliation::list_exceptions(pool, environment, filter, after, size)
            .await
            .unwrap();
        let done = page.len() < size;
        after = page.last().map(|row| (row.found_position, row.ordinal));
        rows.extend(page);
        if done {
            return rows;
        }
    }
}

/// A run projected a few events at a time (so that its row, its exceptions and their
/// resolution arrive in different batches) holds what the run recorded, and equals a fresh
/// fold in one batch.
#[tokio::test]
async fn reconciliation_read_model_shows_runs_payouts_and_exceptions() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let world = reconciliation_run(&ledger).await;
    let live_run = ReconciliationRunId::new_random();
    ledger
        .reconcile(
            live_run,
            start_run(Environment::Live, "live.csv", at(14, 9)),
            at(14, 9),
        )
        .await;
    // A later run judges po_bad again and proves it.
    let later_run = ReconciliationRunId::new_random();
    ledger
        .reconcile(
            later_run,
            start_run(Environment::Test, "again.csv", at(15, 9)),
            at(15, 9),
        )
        .await;
    ledger
        .reconcile(
            later_run,
            payout_verdict("po_bad", world.bad_batch, 0, true),
            at(15, 9),
        )
        .await;
    let pool = database.pool();
    Projector::new(
        pool.clone(),
        SchemaName::live(),
        &Projection::ALL,
        small_batches(2),
    )
    .catch_up(None)
    .await
    .unwrap();
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);

    let runs = reconciliation::list_runs(pool, Environment::Test, &RunFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        runs.iter().map(|run| run.run_id).collect::<Vec<_>>(),
        vec![later_run.as_uuid(), world.run_id.as_uuid()],
        "newest first"
    );
    let run = &runs[1];
    assert_eq!(run.environment.as_str(), "test");
    assert_eq!(run.source.as_str(), "stripe_payouts");
    assert_eq!(run.file_name.as_deref(), Some("payouts.csv"));
    assert_eq!(run.status.as_str(), "COMPLETED");
    assert_eq!(run.completed_at, Some(at(12, 10)));
    assert_eq!((run.lines, run.matched_lines), (Some(36), Some(5)));
    assert_eq!((run.exceptions, run.unresolved_exceptions), (31, 30));
    assert_eq!((run.payouts_proven, run.payouts_unproven), (1, 1));
    assert_eq!(run.batches_recorded, 1);
    assert_eq!(runs[0].status.as_str(), "RUNNING");
    assert_eq!(runs[0].lines, None);

    let completed = RunFilter {
        status: Some(ledger_core::reconciliation::RunStatus::Completed),
    };
    let page = reconciliation::list_runs(pool, Environment::Test, &completed, None, 10)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    let first = reconciliation::list_runs(pool, Environment::Test, &RunFilter::default(), None, 1)
        .await
        .unwrap();
    let second = reconciliation::list_runs(
        pool,
        Environment::Test,
        &RunFilter::default(),
        Some((first[0].started_at, first[0].run_id)),
        1,
    )
    .await
    .unwrap();
    assert_eq!(second[0].run_id, world.run_id.as_uuid());
    let live = reconciliation::list_runs(pool, Environment::Live, &RunFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].run_id, live_run.as_uuid());
    assert!(
        reconciliation::run(pool, Environment::Test, live_run.as_uuid())
            .await
            .unwrap()
            .is_none()
    );

    let payouts = reconciliation::payouts_of(pool, Environment::Test, &[world.run_id.as_uuid()])
        .await
        .unwrap();
    assert_eq!(payouts.len(), 2);
    let bad = payouts.iter().find(|p| p.payout_id == "po_bad").unwrap();
    assert_eq!(
        (
            bad.outcome.as_str(),
            bad.exception_count,
            bad.batch_recorded
        ),
        ("unproven", 31, false)
    );
    assert_eq!(bad.ledger_amount, Some(decimal("28.23")));
    assert_eq!(bad.net.to_string(), "28.23");
    let good = payouts.iter().find(|p| p.payout_id == "po_good").unwrap();
    assert_eq!(
        (good.outcome.as_str(), good.batch_recorded),
        ("proven", true)
    );
    assert_eq!(good.ledger_amount, None);

    let everything = ExceptionFilter::default();
    let exceptions = all_exceptions(pool, Environment::Test, &everything, 7).await;
    assert_eq!(
        exceptions
            .iter()
            .map(|row| row.exception_id)
            .collect::<Vec<_>>(),
        world
            .exceptions
            .iter()
            .map(|exception| exception.exception_id.as_uuid())
            .collect::<Vec<_>>(),
        "in the order found, each once across pages"
    );
    // Two events found them: 25, then 6.
    assert!(exceptions[..25]
        .iter()
        .all(|row| row.found_position == exceptions[0].found_position));
    assert!(exceptions[25].found_position > exceptions[0].found_position);
    assert_eq!(exceptions[25].ordinal, 0);
    let resolved = &exceptions[0];
    assert_eq!(resolved.resolved_at, Some(at(13, 9)));
    assert_eq!(resolved.resolved_by.as_deref(), Some("key_finance_1"));
    assert_eq!(
        resolved.resolution_reason.as_deref(),
        Some("webhook replayed by hand")
    );
    // Side by side: the report as the file wrote it, the ledger's amounts.
    let both = &exceptions[1];
    assert_eq!(both.class.as_str(), "amount_mismatch");
    assert_eq!(both.line_number, Some(3));
    assert_eq!(both.payout_id.as_deref(), Some("po_bad"));
    assert_eq!(both.payment_id, Some(world.payment_id.as_uuid()));
    assert_eq!(
        (
            both.item_kind.map(|kind| kind.as_str()),
            both.item_id.as_deref()
        ),
        (Some("CAPTURE"), Some("ch_3"))
    );
    assert_eq!(both.report_gross.as_deref(), Some("10.00"));
    assert_eq!(both.report_currency.as_deref(), Some("usd"));
    assert_eq!(both.report_available_on.as_deref(), Some("2026-11-10"));
    assert_eq!(both.ledger_currency.as_deref(), Some("USD"));
    assert_eq!(
        both.ledger_amount.map(|a| a.to_string()),
        Some("9.00".into())
    );
    assert_eq!(both.ledger_fee, Some(decimal("0.50")));
    assert_eq!(both.ledger_recorded_at, Some(at(3, 9)));
    assert_eq!(exceptions[0].ledger_currency, None);
    let total = exceptions.last().unwrap();
    assert_eq!(total.class.as_str(), "payout_total_mismatch");
    assert_eq!(
        (total.line_number, total.report_gross.as_ref()),
        (None, None)
    );

    let count = |filter: ExceptionFilter| async move {
        all_exceptions(pool, Environment::Test, &filter, 100)
            .await
            .len()
    };
    let class = |class: ExceptionClass| ExceptionFilter {
        class: Some(class),
        ..ExceptionFilter::default()
    };
    assert_eq!(count(class(ExceptionClass::AmountMismatch)).await, 10);
    assert_eq!(count(class(ExceptionClass::PayoutTotalMismatch)).await, 1);
    assert_eq!(count(class(ExceptionClass::InvalidRow)).await, 0);
    let resolved = |resolved: bool| ExceptionFilter {
        resolved: Some(resolved),
        ..ExceptionFilter::default()
    };
    assert_eq!(count(resolved(true)).await, 1);
    assert_eq!(count(resolved(false)).await, 30);
    let run_filter = |run_id: Uuid| ExceptionFilter {
        run_id: Some(run_id),
        ..ExceptionFilter::default()
    };
    assert_eq!(count(run_filter(world.run_id.as_uuid())).await, 31);
    assert_eq!(count(run_filter(later_run.as_uuid())).await, 0);
    let by_payment = ExceptionFilter {
        payment_id: Some(world.payment_id.as_uuid()),
        payout_id: Some("po_bad".to_owned()),
        ..ExceptionFilter::default()
    };
    assert_eq!(count(by_payment).await, 30);
    assert!(all_exceptions(pool, Environment::Live, &everything, 100)
        .await
        .is_empty());
    let one = reconciliation::exception(pool, Environment::Test, both.exception_id)
        .await
        .unwrap();
    assert_eq!(one.as_ref(), Some(both));
    assert!(
        reconciliation::exception(pool, Environment::Live, both.exception_id)
            .await
            .unwrap()
            .is_none()
    );

    // The latest verdict on a payout or batch is the later run's.
    let by_payout = reconciliation::latest_verdicts_by_payout(
        pool,
        Environment::Test,
        &[
            "po_bad".to_owned(),
            "po_good".to_owned(),
            "po_none".to_owned(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(by_payout.len(), 2);
    let latest_bad = by_payout
        .iter()
        .find(|row| row.payout_id == "po_bad")
        .unwrap();
    assert_eq!(
        (latest_bad.run_id, latest_bad.outcome.as_str()),
        (later_run.as_uuid(), "proven")
    );
    let by_batch = reconciliation::latest_verdicts_by_batch(
        pool,
        Environment::Test,
        &[world.bad_batch.as_uuid(), world.good_batch.as_uuid()],
    )
    .await
    .unwrap();
    assert_eq!(by_batch.len(), 2);
    assert!(by_batch
        .iter()
        .any(|row| row.batch_id == world.bad_batch.as_uuid() && row.run_id == later_run.as_uuid()));
    assert!(reconciliation::latest_verdicts_by_payout(
        pool,
        Environment::Live,
        &["po_bad".to_owned()]
    )
    .await
    .unwrap()
    .is_empty());
}

/// A rebuild gives the very same reconciliation rows, a point-in-time build holds them as
/// they were before the resolution, and `verify` reports a tampered exception row.
#[tokio::test]
async fn rebuilds_and_verify_cover_the_reconciliation_tables() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let world = reconciliation_run(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    let before = snapshot(pool, "public").await;
    assert!(before
        .iter()
        .all(|rows| !rows.as_array().unwrap().is_empty()));
    rebuild(pool, &Projection::ALL, ProjectorOptions::default())
        .await
        .unwrap();
    assert_eq!(snapshot(pool, "public").await, before);
    rebuild(pool, &[Projection::Reconciliation], small_batches(3))
        .await
        .unwrap();
    assert_eq!(snapshot(pool, "public").await, before);
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);
    assert!(report.compared_at.contains_key("reconciliation"));

    let resolved_at: i64 = sqlx::query_scalar(
        "SELECT position FROM events WHERE stream_id = $1 AND event_type = 'ReconciliationExceptionResolved'",
    )
    .bind(world.run_id.as_uuid())
    .fetch_one(pool)
    .await
    .unwrap();
    let schema = SchemaName::parse("audit_before_resolution").unwrap();
    build_point_in_time(
        pool,
        &schema,
        AsOf::Position(resolved_at as u64 - 1),
        &[Projection::Reconciliation],
        ProjectorOptions::default(),
    )
    .await
    .unwrap();
    let (unresolved, status): (i64, String) = sqlx::query_as(
        "SELECT unresolved_exceptions, status FROM audit_before_resolution.projection_reconciliation_runs",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((unresolved, status.as_str()), (31, "COMPLETED"));
    let resolved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_before_resolution.projection_reconciliation_exceptions WHERE resolved_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(resolved, 0);
    drop_point_in_time(pool, &schema).await.unwrap();

    sqlx::query(
        "UPDATE projection_reconciliation_exceptions SET resolution_reason = 'tampered' WHERE exception_id = $1",
    )
    .bind(world.exceptions[0].exception_id.as_uuid())
    .execute(pool)
    .await
    .unwrap();
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    let rows: Vec<_> = report
        .discrepancies
        .iter()
        .filter_map(|discrepancy| match discrepancy {
            Discrepancy::ReadModelRow {
                table,
                only_in,
                row,
            } => Some((table.as_str(), only_in.as_str(), row)),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 2, "{:#?}", report.discrepancies);
    assert!(rows
        .iter()
        .all(|(table, _, _)| *table == "projection_reconciliation_exceptions"));
    assert!(rows
        .iter()
        .any(|(_, only_in, row)| *only_in == "live" && row["resolution_reason"] == "tampered"));
}
