//! Every read model holds what the domain says after a log of every lifecycle.

use std::str::FromStr;

use chrono::NaiveDate;
use ledger_core::ids::Environment;
use ledger_projections::read_models::{disputes, journal, metrics, orders, payments, settlement};
use ledger_projections::{projection_lag, Projector};
use ledger_store::testing::TestDatabase;
use rust_decimal::Decimal;

use crate::support::{at, every_lifecycle, Ledger};

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// Payments, children, orders, disputes, settlement, balances and metrics after one catch-up.
#[tokio::test]
async fn read_models_show_every_lifecycle() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let world = every_lifecycle(&ledger).await;
    let mut projector = Projector::live(database.pool().clone());
    let applied = projector.catch_up(None).await.unwrap();
    let head = ledger.store.head().await.unwrap().last_position;
    assert_eq!(applied, head);
    let pool = database.pool();
    let [auto, manual, declined, voided, disputed, won, yen] = world.payments;

    let ids: Vec<_> = world.payments.iter().map(|id| id.as_uuid()).collect();
    let rows = payments::payments_by_id(pool, Environment::Test, &ids)
        .await
        .unwrap();
    let row = |id: ledger_core::ids::PaymentId| {
        rows.iter()
            .find(|row| row.payment_id == id.as_uuid())
            .unwrap()
            .clone()
    };
    let auto_row = row(auto);
    assert_eq!(auto_row.status.as_str(), "PARTIALLY_REFUNDED");
    assert_eq!(auto_row.captured_amount, decimal("100.00"));
    assert_eq!(auto_row.refunded_amount, decimal("30.00"));
    assert_eq!(auto_row.refundable_amount, decimal("70.00"));
    assert_eq!(auto_row.refundable_amount.to_string(), "70.00");
    assert_eq!(auto_row.capture_mode.as_str(), "AUTOMATIC");
    assert_eq!(auto_row.created_at, at(1, 9));
    assert_eq!(auto_row.updated_at, at(3, 12));
    assert_eq!(row(manual).status.as_str(), "CAPTURED");
    assert_eq!(row(manual).captured_amount, decimal("50.00"));
    assert_eq!(row(manual).refunded_amount, decimal("0.00"));
    assert_eq!(row(declined).status.as_str(), "DECLINED");
    assert_eq!(
        row(declined).decline_code.as_deref(),
        Some("insufficient_funds")
    );
    assert_eq!(
        row(declined)
            .decline_category
            .map(|category| category.as_str()),
        Some("SOFT_DECLINE")
    );
    assert_eq!(row(voided).status.as_str(), "VOIDED");
    assert_eq!(row(disputed).disputed_amount, decimal("80.00"));
    assert_eq!(row(won).disputed_amount, decimal("0.00"));
    assert_eq!(row(yen).currency, "JPY");
    assert_eq!(row(yen).captured_amount.to_string(), "5000");

    let captures = payments::captures_of(pool, &[manual.as_uuid(), auto.as_uuid()])
        .await
        .unwrap();
    assert_eq!(captures.len(), 3);
    let settled = captures
        .iter()
        .find(|capture| capture.capture_id == "ca_1")
        .unwrap();
    assert_eq!(settled.settled_batch_id, Some(world.batch.as_uuid()));
    assert_eq!(settled.captured_at, at(1, 12));
    assert_eq!(settled.settled_at, Some(at(3, 12)));
    let refunds = payments::refunds_of(pool, &[manual.as_uuid()])
        .await
        .unwrap();
    assert_eq!(refunds[0].status.as_str(), "FAILED");
    assert_eq!(refunds[0].resolved_at, Some(at(3, 10)));

    let order_status = |order: &'static str| async move {
        orders::order(pool, Environment::Test, order).await.unwrap()[0]
            .0
            .payment_status
            .as_str()
    };
    assert_eq!(order_status("order_1").await, "PARTIALLY_REFUNDED");
    assert_eq!(order_status("order_2").await, "PAID");
    assert_eq!(order_status("order_3").await, "UNPAID");
    assert_eq!(order_status("order_4").await, "DISPUTED");
    assert_eq!(order_status("order_5").await, "PAID");
    let order_3 = orders::order(pool, Environment::Test, "order_3")
        .await
        .unwrap();
    assert_eq!(order_3[0].1.len(), 2);

    let open = disputes::list_disputes(
        pool,
        Environment::Test,
        &disputes::DisputeFilter::default(),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(open.len(), 2);
    // Page by page, following each page's last row as the cursor: the same rows in order.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = disputes::list_disputes(
            pool,
            Environment::Test,
            &disputes::DisputeFilter::default(),
            after.clone(),
            1,
        )
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        after = Some((
            last.evidence_due_by,
            last.payment_id,
            last.dispute_id.clone(),
        ));
        paged.extend(page);
    }
    assert_eq!(paged, open);
    let needs_response = disputes::DisputeFilter {
        status: Some(ledger_core::payment::state::DisputeStatus::NeedsResponse),
        ..disputes::DisputeFilter::default()
    };
    assert!(
        disputes::list_disputes(pool, Environment::Test, &needs_response, None, 10)
            .await
            .unwrap()
            .iter()
            .all(|dispute| dispute.status.as_str() == "NEEDS_RESPONSE")
    );
    let lost = open
        .iter()
        .find(|dispute| dispute.dispute_id == "dp_1")
        .unwrap();
    assert_eq!(
        (
            lost.status.as_str(),
            lost.outcome.map(|outcome| outcome.as_str())
        ),
        ("LOST", Some("LOST"))
    );
    assert_eq!(lost.fee, decimal("15.00"));
    assert_eq!(lost.evidence_count, 1);
    assert_eq!(lost.evidence_due_by, Some(at(20, 0)));
    assert_eq!(lost.opened_at, at(4, 9));
    assert_eq!(lost.resolved_at, Some(at(9, 9)));
    let day = |day: u32| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let rate = disputes::dispute_rate(pool, Environment::Test, "merchant_a", day(1), day(30))
        .await
        .unwrap();
    assert_eq!((rate.disputes_opened, rate.captures), (1, 4));
    assert_eq!(rate.rate, Some(decimal("0.25")));

    let of_merchant = settlement::BatchFilter {
        merchant_id: Some("merchant_a".to_owned()),
        ..settlement::BatchFilter::default()
    };
    let batches = settlement::list_batches(pool, Environment::Test, &of_merchant, None, 10)
        .await
        .unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].net, decimal("75.92"));
    assert_eq!(
        batches[0].payout_status.map(|status| status.as_str()),
        Some("PAID")
    );
    let after_last = Some((batches[0].recorded_at, batches[0].batch_id));
    assert!(
        settlement::list_batches(pool, Environment::Test, &of_merchant, after_last, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing after the last batch"
    );
    let paid = settlement::BatchFilter {
        payout_status: Some(ledger_core::settlement::PayoutStatus::Paid),
        ..of_merchant.clone()
    };
    assert_eq!(
        settlement::list_batches(pool, Environment::Test, &paid, None, 10)
            .await
            .unwrap(),
        batches
    );
    let payouts = settlement::payouts_of(pool, &[world.batch.as_uuid()])
        .await
        .unwrap();
    assert_eq!(payouts[0].paid_at, Some(at(6, 9)));
    let exceptions =
        settlement::settlement_exceptions(pool, Environment::Test, at(30, 0), 7, None, 500)
            .await
            .unwrap();
    // The merchant filter and the limit are the query's, so the database does the cutting.
    let first_two =
        settlement::settlement_exceptions(pool, Environment::Test, at(30, 0), 7, None, 2)
            .await
            .unwrap();
    assert_eq!(first_two, exceptions[..2]);
    let of_merchant_a = settlement::settlement_exceptions(
        pool,
        Environment::Test,
        at(30, 0),
        7,
        Some("merchant_a"),
        500,
    )
    .await
    .unwrap();
    assert!(!of_merchant_a.is_empty());
    assert_eq!(
        of_merchant_a,
        exceptions
            .iter()
            .filter(|exception| exception.merchant_id == "merchant_a")
            .cloned()
            .collect::<Vec<_>>()
    );
    let of_nobody = settlement::settlement_exceptions(
        pool,
        Environment::Test,
        at(30, 0),
        7,
        Some("merchant_nobody"),
        500,
    )
    .await
    .unwrap();
    assert!(of_nobody.is_empty());
    let kinds: Vec<&str> = exceptions
        .iter()
        .map(|exception| exception.kind.as_str())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "RESERVE_WITHHELD")
            .count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "PAYOUT_LATE").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "CAPTURE_NOT_SETTLED")
            .count(),
        4,
        "{kinds:?}"
    );

    let balances = journal::balances(pool, Environment::Test, Some("merchant_a"))
        .await
        .unwrap();
    let summary = journal::merchant_summary(&balances);
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].pending, decimal("15.00"));
    assert_eq!(summary[0].settled, decimal("0.00"));
    assert_eq!(summary[0].in_transit, decimal("0.00"));
    assert_eq!(summary[0].paid_out, decimal("75.92"));
    assert_eq!(summary[0].reserved, decimal("10.00"));
    let all = journal::balances(pool, Environment::Test, None)
        .await
        .unwrap();
    let mut totals = std::collections::BTreeMap::<String, Decimal>::new();
    for balance in &all {
        *totals.entry(balance.currency.clone()).or_default() += balance.balance;
    }
    assert!(
        totals.values().all(Decimal::is_zero),
        "trial balance {totals:?}"
    );

    let daily = metrics::merchant_metrics(pool, Environment::Test, "merchant_a", day(1), day(1))
        .await
        .unwrap();
    assert_eq!(daily[0].payments_initiated, 5);
    assert_eq!(daily[0].authorization_rate(), Some(decimal("0.8")));
    let day_3 = metrics::merchant_metrics(pool, Environment::Test, "merchant_a", day(3), day(3))
        .await
        .unwrap();
    assert_eq!(day_3[0].settled_captures, 2);
    assert_eq!(day_3[0].settlement_seconds_total, 51 * 3600 + 48 * 3600);
    let declines = metrics::decline_codes(pool, Environment::Test, "merchant_a", day(1), day(30))
        .await
        .unwrap();
    assert_eq!(
        declines,
        vec![(
            "insufficient_funds".to_owned(),
            ledger_core::payment::DeclineCategory::SoftDecline,
            1
        )]
    );

    let lag = projection_lag(pool).await.unwrap();
    assert_eq!(lag.len(), ledger_projections::Projection::ALL.len());
    assert!(lag
        .iter()
        .all(|lag| lag.positions_behind == 0 && lag.seconds_behind == 0.0));
}

/// Lag counts positions and the age of the oldest event not yet applied.
#[tokio::test]
async fn lag_measures_what_is_not_applied() {
    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    every_lifecycle(&ledger).await;
    let mut projector = Projector::live(database.pool().clone());
    projector.run_batch(Some(10)).await.unwrap();
    let head = ledger.store.head().await.unwrap().last_position;
    let lag = projection_lag(database.pool()).await.unwrap();
    for projection in &lag {
        assert_eq!(projection.checkpoint_position, 10);
        assert_eq!(projection.positions_behind, head - 10);
        assert!(projection.seconds_behind >= 0.0);
        assert!(projection.last_applied_recorded_at.is_some());
    }
}

/// A batch's items come in several events of one append; a projector whose page ends inside
/// that append still shows the batch with its stated count and every
/// item once, numbered in order, as a rebuild in one page does.
#[tokio::test]
async fn a_batch_whose_items_span_pages_is_projected_whole() {
    use crate::support::{approve, batch_item, initiate, positive, record_batch};
    use ledger_core::ids::{CaptureId, PaymentId, SettlementBatchId};
    use ledger_core::payment::{CaptureMode, SettledItem};
    use ledger_core::Currency;
    use ledger_projections::{ProjectorOptions, SchemaName};

    let database = TestDatabase::new().await;
    let ledger = Ledger::new(database.store());
    let usd = Currency::USD;
    let mut items = Vec::new();
    for number in 0..250 {
        let payment_id = PaymentId::new_random();
        let order = format!("order_{number}");
        let start = initiate("merchant_a", &order, "10.00", usd, CaptureMode::Automatic);
        ledger.pay(payment_id, start, at(1, 9)).await;
        ledger
            .pay(payment_id, approve(None, at(8, 9)), at(1, 9))
            .await;
        items.push(batch_item(
            payment_id,
            SettledItem::Capture(CaptureId::parse("automatic").unwrap()),
            positive("10.00", usd),
            ledger_core::Money::parse("0.30", usd).unwrap(),
        ));
    }
    let batch_id = SettlementBatchId::new_random();
    let command = record_batch(batch_id, "merchant_a", usd, items, None);
    let recorded = ledger.settle(batch_id, command, at(3, 9)).await;
    assert_eq!(recorded[0].event_type, "SettlementBatchRecorded");

    // The first page ends with the header and the first of its three item events.
    let first_page = usize::try_from(recorded[1].position).unwrap();
    let options = ProjectorOptions {
        batch_size: first_page,
        ..ProjectorOptions::default()
    };
    let pool = database.pool();
    let mut projector = Projector::new(
        pool.clone(),
        SchemaName::live(),
        &ledger_projections::Projection::ALL,
        options,
    );
    projector.catch_up(None).await.unwrap();

    let batches = settlement::list_batches(
        pool,
        Environment::Test,
        &settlement::BatchFilter::default(),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].item_count, 250);
    assert_eq!(batches[0].net, decimal("2425.00"));
    let lines: Vec<i32> = sqlx::query_scalar(
        "SELECT line_number FROM projection_settlement_items WHERE batch_id = $1 ORDER BY line_number",
    )
    .bind(batch_id.as_uuid())
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(lines, (1..=250).collect::<Vec<i32>>());
    let report = ledger_projections::verify(&ledger.store, ProjectorOptions::default())
        .await
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);
}
