//! A payout of more lines than one event of the log could hold: its batch is recorded whole,
//! in one atomic append of bounded events, and the import goes through without exceptions.

use ledger_core::ids::*;
use ledger_core::payment::*;
use ledger_core::reconciliation::PayoutOutcome;
use ledger_core::settlement::PayoutStatus;
use ledger_core::Currency;
use ledger_store::commands::CommandContext;
use uuid::Uuid;

use crate::support::*;

/// `count` card payments of 25.00 captured under their charge ids, sent concurrently as the
/// webhooks would record them; their report lines, all in `payout`.
async fn captured_charges(ledger: &Ledger, payout: &str, count: usize) -> Vec<Line> {
    captured_charges_of(ledger, MERCHANT, payout, 0..count).await
}

/// The payments numbered `numbers`, of `merchant`, as [`captured_charges`] makes them.
async fn captured_charges_of(
    ledger: &Ledger,
    merchant: &'static str,
    payout: &str,
    numbers: std::ops::Range<usize>,
) -> Vec<Line> {
    let mut tasks = tokio::task::JoinSet::new();
    for number in numbers.clone() {
        let handler = ledger.handler.clone();
        tasks.spawn(async move {
            let intent = format!("pi_3Lp{number:012}");
            let charge = format!("ch_3Lp{number:012}");
            let payment_id = Ledger::payment_id(&intent);
            let commands = [
                PaymentCommand::Initiate(InitiatePayment {
                    merchant_id: MerchantId::parse(merchant).unwrap(),
                    order_id: OrderId::parse(format!("order_{intent}")).unwrap(),
                    environment: Environment::Test,
                    amount: money("25.00", Currency::USD),
                    capture_mode: CaptureMode::Manual,
                    payment_method: None,
                }),
                PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
                    authorized_amount: None,
                    authorization_code: None,
                    gateway_reference: None,
                    expires_at: None,
                }),
                PaymentCommand::Capture(CapturePayment {
                    capture_id: CaptureId::parse(&charge).unwrap(),
                    amount: None,
                    final_capture: true,
                }),
            ];
            let context = CommandContext {
                environment: Environment::Test,
                actor_id: "test".to_owned(),
                actor_role: "service".to_owned(),
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                occurred_at: day(10),
                idempotency: None,
            };
            for command in &commands {
                handler
                    .handle_payment(payment_id, command, &context)
                    .await
                    .unwrap_or_else(|error| panic!("{intent}: {error}"));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    numbers
        .map(|number| {
            charge(
                payout,
                &format!("pi_3Lp{number:012}"),
                &format!("ch_3Lp{number:012}"),
                "25.00",
                "1.03",
                "23.97",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payout_of_1500_charges_reconciles_with_no_exceptions_and_settles_them_all() {
    let ledger = Ledger::new().await;
    let lines = captured_charges(&ledger, "po_1LpP01", 1_500).await;

    let outcome = ledger.import(&report(&lines)).await;

    let summary = &outcome.summary;
    assert_eq!(summary.lines, 1_500);
    assert_eq!(summary.matched_lines, 1_500);
    assert_eq!(
        summary.exceptions,
        0,
        "{:?}",
        ledger.exceptions(outcome.run_id).await
    );
    assert_eq!((summary.payouts_proven, summary.batches_recorded), (1, 1));
    let verdicts = ledger.payouts(outcome.run_id).await;
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].outcome, PayoutOutcome::Proven);
    assert!(verdicts[0].batch_recorded);

    let batch = ledger.batch_of_payout("po_1LpP01").await.batch.unwrap();
    assert_eq!(batch.items.len(), 1_500);
    assert_eq!(batch.net.to_string(), "35955.00 USD");
    assert_eq!(batch.payouts.last().unwrap().status, PayoutStatus::Paid);
    for number in [0, 749, 1_499] {
        let payment = ledger
            .payment(&format!("pi_3Lp{number:012}"))
            .await
            .payment
            .unwrap();
        assert!(payment.captures[0].settled_in.is_some(), "{number}");
    }
    let report = ledger_projections::verify(
        &ledger.database.store(),
        ledger_projections::ProjectorOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.discrepancies);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_the_rules_refuse_is_an_exception_and_the_import_goes_on() {
    // Stripe paid out one merchant's charges and another's together: every line matches, but
    // a batch is one merchant's, so the settlement rules refuse it whole.
    let ledger = Ledger::new().await;
    let mut lines = captured_charges(&ledger, "po_1LpP01", 300).await;
    lines.extend(captured_charges_of(&ledger, "acct_1OtherMerchant", "po_1LpP01", 300..301).await);
    lines.extend(captured_charges_of(&ledger, MERCHANT, "po_1LpP02", 400..700).await);

    let outcome = ledger.import(&report(&lines)).await;

    let exceptions = ledger.exceptions(outcome.run_id).await;
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert_eq!(
        exceptions[0].class,
        ledger_core::reconciliation::ExceptionClass::BatchRefused
    );
    assert!(
        exceptions[0]
            .detail
            .as_str()
            .contains("settlement_payment_mismatch"),
        "{exceptions:?}"
    );
    assert!(ledger.batch_of_payout("po_1LpP01").await.batch.is_none());
    // The payout after it is recorded whole.
    assert_eq!(outcome.summary.batches_recorded, 1);
    let batch = ledger.batch_of_payout("po_1LpP02").await.batch.unwrap();
    assert_eq!(batch.items.len(), 300);
    let verdicts = ledger.payouts(outcome.run_id).await;
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts.iter().any(|verdict| !verdict.batch_recorded));
}
