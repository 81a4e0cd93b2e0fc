//! Each classification of a line, a clean month, a file imported twice, and bad rows.

use ledger_core::reconciliation::{ExceptionClass, PayoutOutcome};
use ledger_core::settlement::PayoutStatus;
use ledger_core::Currency;

use crate::support::*;

/// A month whose three payouts carry charges, a refund and a dispute, all as the ledger has
/// them.
async fn clean_month(ledger: &Ledger) -> String {
    ledger
        .captured("pi_3QaA01", "ch_3QaA01", "100.00", Currency::USD, day(3))
        .await;
    ledger
        .captured("pi_3QaA02", "ch_3QaA02", "42.50", Currency::USD, day(4))
        .await;
    ledger
        .captured("pi_3QaA03", "ch_3QaA03", "250.00", Currency::USD, day(5))
        .await;
    ledger
        .refunded("pi_3QaA01", "re_3QaA01", "30.00", Currency::USD, day(6))
        .await;
    ledger
        .captured("pi_3QaA04", "ch_3QaA04", "80.00", Currency::USD, day(6))
        .await;
    ledger
        .disputed(
            "pi_3QaA04",
            "dp_1QaA04",
            "80.00",
            "15.00",
            Currency::USD,
            day(7),
        )
        .await;
    report(&[
        charge(
            "po_1QaP01",
            "pi_3QaA01",
            "ch_3QaA01",
            "100.00",
            "3.20",
            "96.80",
        ),
        charge(
            "po_1QaP01",
            "pi_3QaA02",
            "ch_3QaA02",
            "42.50",
            "1.53",
            "40.97",
        ),
        charge(
            "po_1QaP02",
            "pi_3QaA03",
            "ch_3QaA03",
            "250.00",
            "7.55",
            "242.45",
        ),
        refund("po_1QaP02", "pi_3QaA01", "ch_3QaA01", "re_3QaA01", "-30.00"),
        charge(
            "po_1QaP03",
            "pi_3QaA04",
            "ch_3QaA04",
            "80.00",
            "2.62",
            "77.38",
        ),
        dispute(
            "po_1QaP03",
            "pi_3QaA04",
            "ch_3QaA04",
            "dp_1QaA04",
            "-80.00",
            "15.00",
            "-95.00",
        ),
    ])
}

#[tokio::test]
async fn a_clean_month_reconciles_to_zero_exceptions_and_records_its_payouts() {
    let ledger = Ledger::new().await;
    let file = clean_month(&ledger).await;

    let outcome = ledger.import(&file).await;

    assert!(!outcome.already_imported);
    let summary = &outcome.summary;
    assert_eq!(summary.lines, 6);
    assert_eq!(summary.matched_lines, 6);
    assert_eq!(
        summary.exceptions,
        0,
        "{:?}",
        ledger.exceptions(outcome.run_id).await
    );
    assert_eq!(summary.payouts_proven, 3);
    assert_eq!(summary.batches_recorded, 3);

    let batch = ledger.batch_of_payout("po_1QaP01").await;
    let batch = batch.batch.expect("the payout's batch is recorded");
    assert_eq!(batch.items.len(), 2);
    assert_eq!(batch.net.to_string(), "137.77 USD");
    let payout = batch.payouts.last().expect("its payout is recorded");
    assert_eq!(payout.status, PayoutStatus::Paid);
    assert_eq!(payout.amount.to_string(), "137.77 USD");

    // The refund and the dispute are settled on their payments, in their payouts' batches.
    let refunded = ledger.payment("pi_3QaA01").await.payment.unwrap();
    assert!(refunded.captures[0].settled_in.is_some());
    assert!(refunded.refunds[0].settled_in.is_some());
    let disputed = ledger.payment("pi_3QaA04").await.payment.unwrap();
    assert!(disputed.disputes[0].settled_in.is_some());
    let dispute_batch = ledger.batch_of_payout("po_1QaP03").await.batch.unwrap();
    assert_eq!(dispute_batch.net.to_string(), "-17.62 USD");
    assert!(
        dispute_batch.payouts.is_empty(),
        "a payout that moves no money to the bank records no payout"
    );

    // And the books still balance, every read model agreeing with the log.
    let report = ledger_projections::verify(
        &ledger.database.store(),
        ledger_projections::ProjectorOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);
}

#[tokio::test]
async fn importing_the_same_file_twice_records_nothing_new() {
    let ledger = Ledger::new().await;
    let file = clean_month(&ledger).await;
    let first = ledger.import(&file).await;
    let head = ledger.head().await;

    let second = ledger.import(&file).await;

    assert!(second.already_imported);
    assert_eq!(second.run_id, first.run_id);
    assert_eq!(second.summary, first.summary);
    assert_eq!(ledger.head().await, head, "not one event more");
}

#[tokio::test]
async fn every_difference_is_classified_and_its_payout_left_unproven() {
    let ledger = Ledger::new().await;
    // Matches: its payout alone is proven.
    ledger
        .captured("pi_3QbB01", "ch_3QbB01", "20.00", Currency::USD, day(10))
        .await;
    // Captured 19.00, reported 20.00.
    ledger
        .captured("pi_3QbB02", "ch_3QbB02", "19.00", Currency::USD, day(10))
        .await;
    // Captured in euros, reported in dollars.
    ledger
        .captured("pi_3QbB03", "ch_3QbB03", "20.00", Currency::EUR, day(10))
        .await;
    // A dispute whose fee was recorded as 15.00; the report says 20.00.
    ledger
        .captured("pi_3QbB04", "ch_3QbB04", "60.00", Currency::USD, day(10))
        .await;
    ledger
        .disputed(
            "pi_3QbB04",
            "dp_1QbB04",
            "60.00",
            "15.00",
            Currency::USD,
            day(11),
        )
        .await;
    // Captured long before the report's period, and in no payout.
    ledger
        .captured("pi_3QbB05", "ch_3QbB05", "75.00", Currency::USD, day(1))
        .await;
    // Captured two days before the period's end: not yet expected in a payout.
    ledger
        .captured("pi_3QbB06", "ch_3QbB06", "12.00", Currency::USD, day(19))
        .await;

    let mut bad_amount = charge(
        "po_1QbP02",
        "pi_3QbB07",
        "ch_3QbB07",
        "10.005",
        "0.30",
        "9.705",
    );
    bad_amount.available_on = "2026-11-20 00:00:00".to_owned();
    let mut fee_line = charge("po_1QbP02", "", "", "-0.50", "0.00", "-0.50");
    fee_line.category = "fee";
    fee_line.source = "fee_1QbB08".to_owned();
    let file = report(&[
        charge(
            "po_1QbP01",
            "pi_3QbB01",
            "ch_3QbB01",
            "20.00",
            "0.88",
            "19.12",
        ),
        charge(
            "po_1QbP02",
            "pi_3QbB02",
            "ch_3QbB02",
            "20.00",
            "0.88",
            "19.12",
        ),
        charge(
            "po_1QbP02",
            "pi_3QbB03",
            "ch_3QbB03",
            "20.00",
            "0.88",
            "19.12",
        ),
        dispute(
            "po_1QbP02",
            "pi_3QbB04",
            "ch_3QbB04",
            "dp_1QbB04",
            "-60.00",
            "20.00",
            "-80.00",
        ),
        charge(
            "po_1QbP02",
            "pi_3QbZZZ",
            "ch_3QbZZZ",
            "35.00",
            "1.32",
            "33.68",
        ),
        fee_line,
        bad_amount,
    ]);

    let outcome = ledger.import(&file).await;
    let exceptions = ledger.exceptions(outcome.run_id).await;
    let class_of_line = |line: u64| {
        exceptions
            .iter()
            .find(|exception| exception.line_number == Some(line))
            .map(|exception| exception.class)
    };
    assert_eq!(class_of_line(2), None, "the matching line");
    assert_eq!(class_of_line(3), Some(ExceptionClass::AmountMismatch));
    assert_eq!(class_of_line(4), Some(ExceptionClass::CurrencyMismatch));
    assert_eq!(class_of_line(5), Some(ExceptionClass::FeeMismatch));
    assert_eq!(class_of_line(6), Some(ExceptionClass::MissingFromLedger));
    assert_eq!(class_of_line(7), Some(ExceptionClass::UnsupportedCategory));
    assert_eq!(class_of_line(8), Some(ExceptionClass::InvalidRow));
    let missing: Vec<_> = exceptions
        .iter()
        .filter(|exception| exception.class == ExceptionClass::MissingFromPayout)
        .collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(
        missing[0].payment_id,
        Some(Ledger::payment_id("pi_3QbB05")),
        "the capture of the 1st, not the one of the 19th"
    );

    // The side-by-side figures of the amount mismatch.
    let amount = exceptions
        .iter()
        .find(|exception| exception.class == ExceptionClass::AmountMismatch)
        .unwrap();
    assert_eq!(
        amount
            .report
            .as_ref()
            .unwrap()
            .gross
            .as_ref()
            .unwrap()
            .as_str(),
        "20.00"
    );
    assert_eq!(
        amount.ledger.as_ref().unwrap().amount.to_string(),
        "19.00 USD"
    );

    let payouts = ledger.payouts(outcome.run_id).await;
    let outcome_of = |payout: &str| {
        payouts
            .iter()
            .find(|reconciled| reconciled.payout_id.as_str() == payout)
            .map(|reconciled| reconciled.outcome)
    };
    assert_eq!(outcome_of("po_1QbP01"), Some(PayoutOutcome::Proven));
    assert_eq!(outcome_of("po_1QbP02"), Some(PayoutOutcome::Unproven));
    assert!(ledger.batch_of_payout("po_1QbP01").await.batch.is_some());
    assert!(
        ledger.batch_of_payout("po_1QbP02").await.batch.is_none(),
        "nothing is recorded for a payout with exceptions"
    );
    assert_eq!(
        ledger.payment("pi_3QbB02").await.payment.unwrap().captures[0].settled_in,
        None
    );
}

#[tokio::test]
async fn a_payout_whose_lines_differ_from_the_ledgers_batch_is_a_total_mismatch() {
    let ledger = Ledger::new().await;
    ledger
        .captured("pi_3QcC01", "ch_3QcC01", "50.00", Currency::USD, day(10))
        .await;
    ledger
        .captured("pi_3QcC02", "ch_3QcC02", "30.00", Currency::USD, day(10))
        .await;
    // Finance recorded the first payout by hand with one charge only.
    let first = report(&[charge(
        "po_1QcP01",
        "pi_3QcC01",
        "ch_3QcC01",
        "50.00",
        "1.75",
        "48.25",
    )]);
    ledger.import(&first).await;

    let month = report(&[
        charge(
            "po_1QcP01",
            "pi_3QcC01",
            "ch_3QcC01",
            "50.00",
            "1.75",
            "48.25",
        ),
        charge(
            "po_1QcP01",
            "pi_3QcC02",
            "ch_3QcC02",
            "30.00",
            "1.17",
            "28.83",
        ),
    ]);
    let outcome = ledger.import(&month).await;

    let exceptions = ledger.exceptions(outcome.run_id).await;
    let totals: Vec<_> = exceptions
        .iter()
        .filter(|exception| exception.class == ExceptionClass::PayoutTotalMismatch)
        .collect();
    assert!(!totals.is_empty(), "{exceptions:?}");
    assert!(
        totals[0].detail.as_str().contains("77.08"),
        "{}",
        totals[0].detail
    );
    assert!(
        totals[0].detail.as_str().contains("48.25"),
        "{}",
        totals[0].detail
    );
}

#[tokio::test]
async fn bad_rows_get_their_own_errors_and_the_rest_is_still_imported() {
    let ledger = Ledger::new().await;
    let file = clean_month(&ledger).await;
    let mut lines: Vec<String> = file.lines().map(str::to_owned).collect();
    lines.insert(2, "po_1QaP01,2026-11-21 00:00:00,txn_bad1,2026-11-13,2026-11-20,usd,twelve,0.3,11.7,charge,ch_x,,,,,,,,visa".to_owned());
    lines.insert(4, ",2026-11-21 00:00:00,txn_bad2,2026-11-13,2026-11-20,xyz,1.00,0.00,1.00,charge,ch_y,,,,,,,,visa".to_owned());
    let file = lines.join("\n") + "\n";

    let outcome = ledger.import(&file).await;

    let exceptions = ledger.exceptions(outcome.run_id).await;
    let invalid: Vec<_> = exceptions
        .iter()
        .filter(|exception| exception.class == ExceptionClass::InvalidRow)
        .collect();
    assert_eq!(invalid.len(), 2, "{exceptions:?}");
    assert_eq!(invalid[0].line_number, Some(3));
    assert!(
        invalid[0].detail.as_str().contains("gross"),
        "{}",
        invalid[0].detail
    );
    assert_eq!(invalid[1].line_number, Some(5));
    assert!(
        invalid[1].detail.as_str().contains("automatic_payout_id"),
        "{}",
        invalid[1].detail
    );
    assert_eq!(outcome.summary.lines, 8);
    assert_eq!(outcome.summary.matched_lines, 6);
    assert_eq!(
        outcome.summary.payouts_proven, 3,
        "the good payouts are still proven"
    );
}

#[tokio::test]
async fn a_file_that_is_not_the_report_records_nothing() {
    let ledger = Ledger::new().await;
    let head = ledger.head().await;
    let error = ledger
        .try_import("id,amount,currency\n1,10.00,usd\n")
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("automatic_payout_id"), "{error}");
    assert_eq!(ledger.head().await, head);
}

#[tokio::test]
async fn a_charge_line_settles_the_capture_of_an_automatically_captured_payment() {
    let ledger = Ledger::new().await;
    ledger
        .captured_automatically("pi_3QdD01", "64.00", Currency::USD, day(12))
        .await;
    let file = report(&[charge(
        "po_1QdP01",
        "pi_3QdD01",
        "ch_3QdD01",
        "64.00",
        "2.16",
        "61.84",
    )]);

    let outcome = ledger.import(&file).await;

    assert_eq!(
        outcome.summary.exceptions,
        0,
        "{:?}",
        ledger.exceptions(outcome.run_id).await
    );
    assert_eq!(outcome.summary.batches_recorded, 1);
    let payment = ledger.payment("pi_3QdD01").await.payment.unwrap();
    assert_eq!(payment.captures[0].capture_id.as_str(), "automatic");
    assert!(payment.captures[0].settled_in.is_some());
}

#[tokio::test]
async fn a_partial_capture_is_its_charge_line_less_the_partial_capture_reversal() {
    let ledger = Ledger::new().await;
    ledger
        .captured_in_part("pi_3QeE01", "ch_3QeE01", "20.00", "15.00", day(12))
        .await;
    let mut reversal = charge(
        "po_1QeP01",
        "pi_3QeE01",
        "ch_3QeE01",
        "-5.00",
        "0.00",
        "-5.00",
    );
    reversal.category = "partial_capture_reversal";
    let file = report(&[
        charge(
            "po_1QeP01",
            "pi_3QeE01",
            "ch_3QeE01",
            "20.00",
            "0.88",
            "19.12",
        ),
        reversal,
    ]);

    let outcome = ledger.import(&file).await;

    assert_eq!(
        outcome.summary.exceptions,
        0,
        "{:?}",
        ledger.exceptions(outcome.run_id).await
    );
    assert_eq!(outcome.summary.matched_lines, 2);
    let batch = ledger.batch_of_payout("po_1QeP01").await.batch.unwrap();
    assert_eq!(batch.gross.to_string(), "15.00 USD");
    assert_eq!(batch.net.to_string(), "14.12 USD");
    assert_eq!(batch.payouts[0].amount.to_string(), "14.12 USD");

    // A reversal whose charge is in no line of its payout cannot be matched.
    let ledger = Ledger::new().await;
    let mut orphan = charge(
        "po_1QeP02",
        "pi_3QeE02",
        "ch_3QeE02",
        "-5.00",
        "0.00",
        "-5.00",
    );
    orphan.category = "partial_capture_reversal";
    let outcome = ledger.import(&report(&[orphan])).await;
    let exceptions = ledger.exceptions(outcome.run_id).await;
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0].class, ExceptionClass::UnsupportedCategory);
}
