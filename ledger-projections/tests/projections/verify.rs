//! `verify` reports a damaged read-model row and a tampered log row, each as what it is.

use ledger_core::ids::OrderId;
use ledger_core::payment::PaymentState;
use ledger_projections::{
    verify, Discrepancy, Projection, Projector, ProjectorOptions, SchemaName,
};
use ledger_store::testing::TestDatabase;

use crate::support::{every_lifecycle, many_payments, Ledger};

/// A clean ledger verifies clean: chain intact, every stream folds, books balance.
#[tokio::test]
async fn a_clean_ledger_verifies_clean() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    Projector::live(database.pool().clone())
        .catch_up(None)
        .await
        .unwrap();
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    let head = ledger.store.head().await.unwrap().last_position;
    assert!(report.is_clean(), "{:#?}", report.discrepancies);
    assert!(report.chain.is_intact());
    assert_eq!(report.events_folded, head);
    // The fresh build took every event from the refold: nothing was read twice.
    assert_eq!(report.events_built_from_refold, head);
    assert_eq!(report.events_built_from_log, 0);
    assert_eq!(report.streams_folded, 8);
    // Every row keeping a state was held to the fold.
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM streams WHERE state IS NOT NULL")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert!(kept > 0);
    assert_eq!(report.kept_states_compared, kept as u64);
    assert!(report
        .trial_balance_totals
        .values()
        .all(|total| total.is_zero()));
}

/// A read-model row changed behind the projector's back is reported with the table and both
/// versions of the row.
#[tokio::test]
async fn a_corrupted_read_model_row_is_reported() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    sqlx::query!(
        "UPDATE projection_balances SET balance = balance + 1 WHERE merchant_id = 'merchant_a' AND account = 'bank'"
    )
    .execute(pool)
    .await
    .unwrap();
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.chain.is_intact());
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
        .all(|(table, _, row)| *table == "projection_balances" && row["account"] == "bank"));
    assert!(rows.iter().any(|(_, only_in, _)| *only_in == "live"));
    assert!(rows.iter().any(|(_, only_in, _)| *only_in == "fresh fold"));
    assert_eq!(report.discrepancies.len(), 2);
}

/// The comparison summarises each pair of tables before it compares rows: the same rows
/// written in another order report nothing, a changed value or a missing row is reported row
/// by row, and values equal but printed differently (a numeric's scale) are still equal.
#[tokio::test]
async fn tables_are_compared_by_their_rows_whatever_their_order() {
    let database = TestDatabase::new().await;
    let pool = database.pool();
    for statement in [
        "CREATE SCHEMA fresh",
        "SELECT projection_clone_tables('fresh', ARRAY['projection_balances'])",
        "INSERT INTO public.projection_balances
         SELECT 'test', 'merchant_' || n, 'USD', 'bank', n * 1.25, n, n
         FROM generate_series(1, 50) n",
        "INSERT INTO fresh.projection_balances
         SELECT 'test', 'merchant_' || n, 'USD', 'bank', n * 1.25, n, n
         FROM generate_series(50, 1, -1) n",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
    let differences = || async {
        let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
            "SELECT table_name, only_in, row_data
             FROM projection_compare_tables('public', 'fresh', ARRAY['projection_balances'], 10)",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(_, only_in, row)| (only_in, row["merchant_id"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(differences().await, []);

    let change = |statement: &'static str| async move {
        sqlx::query(statement).execute(pool).await.unwrap();
    };
    change("UPDATE fresh.projection_balances SET balance = balance + 0.01 WHERE merchant_id = 'merchant_7'").await;
    let mut changed = differences().await;
    changed.sort();
    assert_eq!(
        changed,
        [
            ("fresh".to_owned(), "merchant_7".to_owned()),
            ("public".to_owned(), "merchant_7".to_owned())
        ]
    );
    change("UPDATE fresh.projection_balances SET balance = balance - 0.01 WHERE merchant_id = 'merchant_7'").await;
    assert_eq!(differences().await, []);

    change("UPDATE fresh.projection_balances SET balance = round(balance, 4) WHERE merchant_id = 'merchant_9'").await;
    assert_eq!(differences().await, [], "11.2500 equals 11.25");

    change("DELETE FROM public.projection_balances WHERE merchant_id = 'merchant_30'").await;
    assert_eq!(
        differences().await,
        [("fresh".to_owned(), "merchant_30".to_owned())]
    );
}

/// A log row changed by a superuser with the append-only trigger disabled breaks the chain at
/// that position, and the changed amount breaks a payment invariant.
#[tokio::test]
async fn a_tampered_log_row_is_reported() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let world = every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    let manual = world.payments[1].as_uuid();
    let position = tamper_with_the_capture_of(pool, manual).await;

    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(!report.is_clean());
    assert!(
        report
            .to_string()
            .contains(&format!("hash chain broken at position {position}")),
        "{report}"
    );
    assert_eq!(
        report
            .chain
            .first_broken
            .as_ref()
            .map(|broken| broken.position),
        Some(position as u64)
    );
    assert!(report.discrepancies.iter().any(|discrepancy| matches!(
        discrepancy,
        Discrepancy::ChainBroken { position: broken, .. } if *broken == position as u64
    )));
    assert!(
        report.discrepancies.iter().any(|discrepancy| matches!(
            discrepancy,
            Discrepancy::InvariantBroken { stream_id, .. } if *stream_id == manual
        )),
        "{:#?}",
        report.discrepancies
    );
    // The build is not fed the page with the changed event or any after it (the refold
    // stopped folding that payment); it builds them from the log as a projector does.
    assert!(report.events_built_from_refold < position as u64);
    assert!(report.events_built_from_log > 0);
    // The live read models were projected from the untampered log: they differ now.
    assert!(report
        .discrepancies
        .iter()
        .any(|discrepancy| matches!(discrepancy, Discrepancy::ReadModelRow { table, .. } if table == "projection_payments")));
    // The stream whose fold stopped at the changed event has no fold to hold its row to: it
    // is reported once, for its event.
    assert!(
        !report
            .discrepancies
            .iter()
            .any(|discrepancy| matches!(discrepancy, Discrepancy::KeptStateDiffers { .. })),
        "{:#?}",
        report.discrepancies
    );
}

/// Changes the amount of a payment's first capture in the log, as a superuser with the
/// append-only trigger disabled could, and returns its position.
async fn tamper_with_the_capture_of(pool: &sqlx::PgPool, payment: uuid::Uuid) -> i64 {
    let manual = payment;
    let position: i64 = sqlx::query_scalar!(
        "SELECT position FROM events WHERE stream_id = $1 AND event_type = 'PaymentCaptured' ORDER BY position LIMIT 1",
        manual
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut transaction = pool.begin().await.unwrap();
    sqlx::raw_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&mut *transaction)
        .await
        .unwrap();
    sqlx::query!(
        r#"UPDATE events SET payload = jsonb_set(payload, '{amount,amount}', '"45.00"') WHERE position = $1"#,
        position
    )
    .execute(&mut *transaction)
    .await
    .unwrap();
    sqlx::raw_sql("ALTER TABLE events ENABLE TRIGGER events_append_only")
        .execute(&mut *transaction)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    position
}

/// The refold reads the log in position order and keeps a bounded cache of stream states:
/// with pages of three events and a single state kept, every stream is let go and folded
/// again from the log between its events, and the refold finds exactly what it finds with
/// everything kept: the same streams and events, and the tampered capture's broken invariant.
#[tokio::test]
async fn the_refold_finds_the_same_whatever_it_keeps() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let world = every_lifecycle(&ledger).await;
    many_payments(&ledger, 20).await;
    every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    tamper_with_the_capture_of(pool, world.payments[1].as_uuid()).await;

    let refold_findings = |report: &ledger_projections::VerificationReport| {
        let mut found: Vec<String> = report
            .discrepancies
            .iter()
            .filter(|discrepancy| {
                matches!(
                    discrepancy,
                    Discrepancy::InvariantBroken { .. }
                        | Discrepancy::BadEvent { .. }
                        | Discrepancy::UnbalancedEntry { .. }
                        | Discrepancy::TrialBalanceNotZero { .. }
                )
            })
            .map(ToString::to_string)
            .collect();
        found.sort();
        found
    };
    let everything_kept = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    let little_kept = verify(
        &ledger.store,
        ProjectorOptions {
            batch_size: 3,
            state_cache_capacity: 1,
            ..ProjectorOptions::default()
        },
    )
    .await
    .unwrap();
    let found = refold_findings(&everything_kept);
    assert!(
        everything_kept
            .discrepancies
            .iter()
            .any(|discrepancy| matches!(discrepancy, Discrepancy::InvariantBroken { .. })),
        "{found:#?}"
    );
    assert_eq!(refold_findings(&little_kept), found);
    assert_eq!(
        (
            little_kept.events_folded,
            little_kept.streams_folded,
            little_kept.kept_states_compared
        ),
        (
            everything_kept.events_folded,
            everything_kept.streams_folded,
            everything_kept.kept_states_compared
        )
    );
    assert_eq!(everything_kept.streams_folded, 2 * 8 + 20);
}

/// Reads trust each stream's row for its state (ledger-store's `kept_state`), so verify holds
/// every row to the fold of the log: a state edited, a row moved back to an earlier version,
/// and a row for events the log does not hold are each reported with their stream.
#[tokio::test]
async fn a_kept_state_that_is_not_the_fold_of_the_log_is_reported() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    let kept: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT stream_id, version FROM streams
         WHERE stream_type = 'payment' AND state IS NOT NULL AND version > 1
         ORDER BY last_position LIMIT 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let (edited, moved_back) = (kept[0].0, kept[1].0);
    database
        .edit_kept_state::<PaymentState>(edited, |state| {
            if let Some(payment) = state.payment.as_mut() {
                payment.order_id = OrderId::parse("order_edited").unwrap();
            }
        })
        .await;
    // The row says the stream ends earlier than it does, with that earlier version's state.
    sqlx::query("UPDATE streams SET version = version - 1 WHERE stream_id = $1")
        .bind(moved_back)
        .execute(pool)
        .await
        .unwrap();
    database
        .edit_kept_state::<PaymentState>(moved_back, |state| state.version -= 1)
        .await;
    let invented = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO streams (stream_id, stream_type, version, state_format, state,
             first_occurred_at, last_occurred_at, last_position)
         SELECT $1, 'payment', 1, state_format, state, first_occurred_at, first_occurred_at, 1
         FROM streams WHERE stream_id = $2",
    )
    .bind(invented)
    .bind(edited)
    .execute(pool)
    .await
    .unwrap();
    database
        .edit_kept_state::<PaymentState>(invented, |state| state.version = 1)
        .await;

    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.chain.is_intact());
    let reported: Vec<(uuid::Uuid, &str)> = report
        .discrepancies
        .iter()
        .filter_map(|discrepancy| match discrepancy {
            Discrepancy::KeptStateDiffers { stream_id, reason } => {
                Some((*stream_id, reason.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(reported.len(), 3, "{:#?}", report.discrepancies);
    assert_eq!(report.discrepancies.len(), 3, "{:#?}", report.discrepancies);
    let reason_of = |stream_id| {
        reported
            .iter()
            .find(|(reported, _)| *reported == stream_id)
            .map(|(_, reason)| *reason)
            .unwrap_or_else(|| panic!("{stream_id} not reported: {reported:#?}"))
    };
    assert!(reason_of(edited).contains("not the fold of its events"));
    assert!(reason_of(moved_back).contains("but the log holds version"));
    assert!(reason_of(invented).contains("the log does not hold"));
    assert!(report.to_string().contains(&format!("stream {edited}")));
}

/// The fresh build of the read models is fed the refold's pages, each projection up to its
/// own live checkpoint: with the payments and the journal projected only halfway, and pages of
/// three events, every event is built from the refold's pages, nothing from a second read of
/// the log, and the build matches every live table at its own checkpoint.
#[tokio::test]
async fn the_read_models_are_built_from_the_refold_to_each_checkpoint() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    many_payments(&ledger, 20).await;
    let pool = database.pool();
    let head = ledger.store.head().await.unwrap().last_position;
    let halfway = head / 2 + 1;
    let behind = [Projection::Payments, Projection::Journal];
    let ahead: Vec<Projection> = Projection::ALL
        .into_iter()
        .filter(|projection| !behind.contains(projection))
        .collect();
    let options = ProjectorOptions::default();
    Projector::new(pool.clone(), SchemaName::live(), &behind, options)
        .catch_up(Some(halfway))
        .await
        .unwrap();
    Projector::new(pool.clone(), SchemaName::live(), &ahead, options)
        .catch_up(None)
        .await
        .unwrap();

    let report = verify(
        &ledger.store,
        ProjectorOptions {
            batch_size: 3,
            state_cache_capacity: 1,
            ..ProjectorOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:#?}", report.discrepancies);
    assert_eq!(report.compared_at["payments"], halfway);
    assert_eq!(report.compared_at["journal"], halfway);
    assert_eq!(report.compared_at["orders"], head);
    assert_eq!(report.events_built_from_refold, head);
    assert_eq!(report.events_built_from_log, 0);

    // The same build, checked: a row taken out of every live table that has one is found in
    // every one of them, whichever of the comparison's two halves the table is in.
    let mut emptied = std::collections::BTreeSet::new();
    for projection in Projection::ALL {
        for table in projection.tables() {
            let removed = sqlx::query(&format!(
                "DELETE FROM public.{table} WHERE ctid = (SELECT ctid FROM public.{table} LIMIT 1)"
            ))
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
            if removed > 0 {
                emptied.insert(table.to_string());
            }
        }
    }
    assert!(emptied.len() > 8, "{emptied:?}");
    let report = verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    let reported: std::collections::BTreeSet<String> = report
        .discrepancies
        .iter()
        .filter_map(|discrepancy| match discrepancy {
            Discrepancy::ReadModelRow { table, only_in, .. } if only_in == "fresh fold" => {
                Some(table.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(reported, emptied, "{:#?}", report.discrepancies);
}

/// A ledger taking traffic: payments are appended and the live projector follows them while
/// verify runs, so the live checkpoints move during every verification. Verify locks them
/// before comparing and builds what they did meanwhile: each run compares and finds nothing
/// wrong, where waiting for the projector to stand still failed most runs.
#[tokio::test]
async fn verify_compares_while_the_ledger_takes_traffic() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let pool = database.pool();
    Projector::live(pool.clone()).catch_up(None).await.unwrap();
    let (stop_projector, projector_stopped) = tokio::sync::oneshot::channel::<()>();
    let projector = tokio::spawn(Projector::live(pool.clone()).follow(async {
        projector_stopped.await.ok();
    }));
    let traffic_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = tokio::spawn({
        let ledger = Ledger::new(ledger.store.clone());
        let stop = traffic_stop.clone();
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                many_payments(&ledger, 5).await;
            }
        }
    });

    let mut built_from_log = 0;
    for _ in 0..3 {
        let report = verify(&ledger.store, ProjectorOptions::default())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:#?}", report.discrepancies);
        built_from_log += report.events_built_from_log;
    }
    // The projector did move while verify ran: the build took its moves from the log.
    assert!(built_from_log > 0);

    traffic_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    traffic.await.unwrap();
    stop_projector.send(()).unwrap();
    projector.await.unwrap();
}
