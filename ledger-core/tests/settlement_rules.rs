//! Settlement batches and payouts: a batch settles each item exactly once, across all the
//! payments it names, or not at all; its figures must match the ledger's; payouts move exactly
//! the net to the bank.

mod support;

use std::collections::BTreeMap;

use ledger_core::ids::*;
use ledger_core::journal::{self, Account, AccountKey, TrialBalance};
use ledger_core::payment::{
    self, CaptureMode, DisputeOutcome, PaymentCommand, PaymentEvent, PaymentState, SettledItem,
};
use ledger_core::settlement::{self, *};
use ledger_core::{Currency, Money, PositiveMoney};
use rust_decimal::Decimal;
use support::*;

struct World {
    payments: BTreeMap<PaymentId, PaymentState>,
    batch: SettlementBatchState,
    batch_id: SettlementBatchId,
}

fn payment_id(n: u128) -> PaymentId {
    PaymentId::from_uuid(uuid::Uuid::from_u128(n))
}

/// Two payments: one captured 100.00 and refunded 10.00, one captured 50.00 and disputed 20.00
/// with a 15.00 fee.
fn world() -> World {
    let mut first = vec![
        initiate("100.00", CaptureMode::Manual),
        approve(None),
        capture("c1", None, true),
    ];
    first.extend([refund("r1", Some("10.00")), refund_outcome("r1", true)]);
    let second = vec![
        initiate("50.00", CaptureMode::Automatic),
        approve(None),
        open_dispute("d1", "20.00", "15.00"),
    ];
    let mut payments = BTreeMap::new();
    payments.insert(payment_id(1), given(&first).1);
    payments.insert(payment_id(2), given(&second).1);
    World {
        payments,
        batch: SettlementBatchState::default(),
        batch_id: SettlementBatchId::from_uuid(uuid::Uuid::from_u128(99)),
    }
}

fn item(payment: u128, item: SettledItem, gross: &str, fee: &str) -> BatchItem {
    BatchItem {
        payment_id: payment_id(payment),
        item,
        gross: positive(gross),
        fee: usd(fee),
    }
}

fn full_batch(world: &World) -> SettlementCommand {
    SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id: world.batch_id,
        merchant_id: merchant(),
        environment: Environment::Test,
        currency: Currency::USD,
        items: vec![
            item(1, SettledItem::Capture(capture_id("c1")), "100.00", "3.20"),
            item(1, SettledItem::Refund(refund_id("r1")), "10.00", "0.00"),
            item(
                2,
                SettledItem::Capture(capture_id("automatic")),
                "50.00",
                "1.75",
            ),
            item(2, SettledItem::Dispute(dispute_id("d1")), "20.00", "15.00"),
        ],
        reserve: Some(usd("5.00")),
    })
}

fn refused(world: &World, command: &SettlementCommand, rule: &str) {
    match settlement::decide(&world.batch, &world.payments, command) {
        Ok(decision) => panic!("expected {rule}, got {decision:?}"),
        Err(error) => assert_eq!(error.rule(), rule, "{error}"),
    }
}

fn apply(world: &mut World, decision: &SettlementDecision) {
    world.batch = decision
        .batch_events
        .iter()
        .fold(world.batch.clone(), settlement::evolve);
    for (id, events) in &decision.payment_events {
        let state = world.payments.remove(id).unwrap_or_default();
        world
            .payments
            .insert(*id, events.iter().fold(state, payment::evolve));
    }
}

#[test]
fn a_batch_settles_every_item_on_its_payment_and_totals_the_net() {
    let mut world = world();
    let decision =
        settlement::decide(&world.batch, &world.payments, &full_batch(&world)).expect("accepted");
    let [SettlementEvent::SettlementBatchRecorded(recorded)] = decision.batch_events.as_slice()
    else {
        panic!("unexpected {decision:?}");
    };
    // gross = 100 − 10 + 50 − 20 = 120; fees = 3.20 + 1.75 + 15.00 = 19.95; net = 120 − 19.95 − 5
    assert_eq!(recorded.gross, usd("120.00"));
    assert_eq!(recorded.fees, usd("19.95"));
    assert_eq!(recorded.net, usd("95.05"));
    assert_eq!(decision.payment_events[&payment_id(1)].len(), 2);
    assert_eq!(decision.payment_events[&payment_id(2)].len(), 2);
    apply(&mut world, &decision);
    let first = world.payments[&payment_id(1)]
        .payment
        .as_ref()
        .expect("payment");
    assert_eq!(
        first.settled_in(&SettledItem::Capture(capture_id("c1"))),
        Some(world.batch_id)
    );
    // Settling again, even in another batch, is refused for the item already settled.
    let mut again = full_batch(&world);
    if let SettlementCommand::RecordBatch(record) = &mut again {
        record.batch_id = SettlementBatchId::from_uuid(uuid::Uuid::from_u128(100));
    }
    let other_batch = World {
        payments: world.payments.clone(),
        batch: SettlementBatchState::default(),
        batch_id: world.batch_id,
    };
    refused(&other_batch, &again, "settlement_item_already_settled");
}

#[test]
fn one_bad_item_rejects_the_whole_batch() {
    let world = world();
    let mut command = full_batch(&world);
    if let SettlementCommand::RecordBatch(record) = &mut command {
        record.items.push(item(
            3,
            SettledItem::Capture(capture_id("c1")),
            "1.00",
            "0.00",
        ));
    }
    refused(&world, &command, "settlement_item_not_found");
}

#[test]
fn duplicate_items_mismatched_figures_and_foreign_payments_are_refused() {
    let world = world();
    let with_items = |items: Vec<BatchItem>| {
        SettlementCommand::RecordBatch(RecordSettlementBatch {
            batch_id: world.batch_id,
            merchant_id: merchant(),
            environment: Environment::Test,
            currency: Currency::USD,
            items,
            reserve: None,
        })
    };
    let capture = || item(1, SettledItem::Capture(capture_id("c1")), "100.00", "1.00");
    refused(
        &world,
        &with_items(vec![capture(), capture()]),
        "duplicate_settlement_item",
    );
    refused(
        &world,
        &with_items(vec![item(
            1,
            SettledItem::Capture(capture_id("c1")),
            "99.99",
            "1.00",
        )]),
        "settlement_item_amount_mismatch",
    );
    refused(
        &world,
        &with_items(vec![item(
            2,
            SettledItem::Dispute(dispute_id("d1")),
            "20.00",
            "0.00",
        )]),
        "settlement_item_amount_mismatch",
    );
    refused(&world, &with_items(vec![]), "settlement_batch_empty");
    let mut live = with_items(vec![capture()]);
    if let SettlementCommand::RecordBatch(record) = &mut live {
        record.environment = Environment::Live;
    }
    refused(&world, &live, "settlement_payment_mismatch");
    let mut negative_fee = with_items(vec![item(
        1,
        SettledItem::Capture(capture_id("c1")),
        "100.00",
        "0.00",
    )]);
    if let SettlementCommand::RecordBatch(record) = &mut negative_fee {
        record.items[0].fee = usd("-1.00");
    }
    refused(&world, &negative_fee, "negative_settlement_amount");
}

#[test]
fn a_batch_is_recorded_once() {
    let mut world = world();
    let decision =
        settlement::decide(&world.batch, &world.payments, &full_batch(&world)).expect("accepted");
    apply(&mut world, &decision);
    refused(
        &world,
        &full_batch(&world),
        "settlement_batch_already_recorded",
    );
}

fn payout(id: &str, amount: &str, update: PayoutUpdate) -> SettlementCommand {
    SettlementCommand::RecordPayout(RecordPayout {
        payout_id: PayoutId::parse(id).expect("valid payout id"),
        amount: PositiveMoney::parse(amount, Currency::USD).expect("valid"),
        update,
    })
}

fn initiated() -> PayoutUpdate {
    PayoutUpdate::Initiated {
        expected_arrival_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 28),
    }
}

#[test]
fn payouts_move_exactly_the_net_and_retry_after_failure() {
    let mut world = world();
    refused(
        &world,
        &payout("po_1", "95.05", initiated()),
        "settlement_batch_not_found",
    );
    let decision =
        settlement::decide(&world.batch, &world.payments, &full_batch(&world)).expect("accepted");
    apply(&mut world, &decision);
    refused(
        &world,
        &payout("po_1", "95.00", initiated()),
        "payout_amount_differs_from_net",
    );
    let step = |world: &mut World, command: SettlementCommand| {
        let decision = settlement::decide(&world.batch, &world.payments, &command)
            .unwrap_or_else(|error| panic!("{command:?}: {error}"));
        apply(world, &decision);
    };
    step(&mut world, payout("po_1", "95.05", initiated()));
    refused(
        &world,
        &payout("po_2", "95.05", initiated()),
        "payout_already_initiated",
    );
    step(
        &mut world,
        payout(
            "po_1",
            "95.05",
            PayoutUpdate::Failed {
                failure_reason: Some(text("account_closed")),
            },
        ),
    );
    refused(
        &world,
        &payout("po_1", "95.05", PayoutUpdate::Paid),
        "payout_not_in_transit",
    );
    step(&mut world, payout("po_2", "95.05", PayoutUpdate::Paid));
    let batch = world.batch.batch.as_ref().expect("batch");
    assert_eq!(batch.payouts.len(), 2);
    assert_eq!(batch.payouts[1].status, PayoutStatus::Paid);
}

#[test]
fn the_books_balance_through_settlement_and_payout() {
    let mut world = world();
    let mut books = TrialBalance::default();
    let payment_commands: Vec<(u128, Vec<PaymentCommand>)> = vec![
        (
            1,
            vec![
                initiate("100.00", CaptureMode::Manual),
                approve(None),
                capture("c1", None, true),
                refund("r1", Some("10.00")),
                refund_outcome("r1", true),
            ],
        ),
        (
            2,
            vec![
                initiate("50.00", CaptureMode::Automatic),
                approve(None),
                open_dispute("d1", "20.00", "15.00"),
            ],
        ),
    ];
    for (_, commands) in &payment_commands {
        let (events, _) = given(commands);
        let mut state = PaymentState::default();
        for event in &events {
            if let Some(entry) = journal::payment_entry(&state, event).expect("in range") {
                assert!(entry.is_balanced());
                books.post(&entry);
            }
            state = payment::evolve(state, event);
        }
    }
    let decision =
        settlement::decide(&world.batch, &world.payments, &full_batch(&world)).expect("accepted");
    let mut batch_state = world.batch.clone();
    for event in &decision.batch_events {
        if let Some(entry) = journal::settlement_entry(&batch_state, event).expect("in range") {
            books.post(&entry);
        }
        batch_state = settlement::evolve(batch_state, event);
    }
    apply(&mut world, &decision);
    let payout_decision = settlement::decide(
        &world.batch,
        &world.payments,
        &payout("po_1", "95.05", PayoutUpdate::Paid),
    )
    .expect("accepted");
    for event in &payout_decision.batch_events {
        if let Some(entry) = journal::settlement_entry(&batch_state, event).expect("in range") {
            books.post(&entry);
        }
        batch_state = settlement::evolve(batch_state, event);
    }
    assert!(books.is_balanced(), "{:?}", books.totals_by_currency());
    let balance = |books: &TrialBalance, account| {
        books.balance(&AccountKey {
            environment: Environment::Test,
            merchant_id: merchant(),
            currency: Currency::USD,
            account,
        })
    };
    let amount = |text: &str| Money::parse(text, Currency::USD).expect("valid").amount();
    assert_eq!(balance(&books, Account::Bank), amount("95.05"));
    assert_eq!(balance(&books, Account::GatewayPending), Decimal::ZERO);
    assert_eq!(balance(&books, Account::GatewaySettled), Decimal::ZERO);
    assert_eq!(balance(&books, Account::GatewayReserve), amount("5.00"));
    assert_eq!(balance(&books, Account::Sales), -amount("150.00"));
    assert_eq!(balance(&books, Account::ProcessingFees), amount("4.95"));
    assert_eq!(balance(&books, Account::DisputeFees), amount("15.00"));
    // Resolving the dispute moves it out of disputes_open.
    let state = world.payments[&payment_id(2)].clone();
    let lost = payment::decide(&state, &resolve("d1", DisputeOutcome::Lost)).expect("accepted");
    let entry = journal::payment_entry(&state, &lost[0])
        .expect("in range")
        .expect("posts");
    books.post(&entry);
    assert_eq!(balance(&books, Account::DisputesOpen), Decimal::ZERO);
    assert_eq!(balance(&books, Account::ChargebackLosses), amount("20.00"));
    assert!(matches!(lost[0], PaymentEvent::DisputeLost(_)));
}

/// The largest amount the ledger holds, in USD.
const MAX_USD: &str = "1000000000000.00";

fn overflow(result: Result<SettlementDecision, ledger_core::DomainError>) {
    match result {
        Err(ledger_core::DomainError::Money(ledger_core::MoneyError::OutOfRange { .. })) => {}
        other => panic!("expected the money range to be named, got {other:?}"),
    }
}

#[test]
fn a_batch_whose_gross_passes_the_largest_amount_is_refused_not_totalled_wrong() {
    // Two captures of 600 billion each: every item is valid, their sum is not.
    let big = "600000000000.00";
    let captured = |_| given(&[initiate(big, CaptureMode::Automatic), approve(None)]).1;
    let world = World {
        payments: BTreeMap::from([(payment_id(1), captured(1)), (payment_id(2), captured(2))]),
        batch: SettlementBatchState::default(),
        batch_id: SettlementBatchId::from_uuid(uuid::Uuid::from_u128(99)),
    };
    let automatic = || SettledItem::Capture(capture_id("automatic"));
    let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id: world.batch_id,
        merchant_id: merchant(),
        environment: Environment::Test,
        currency: Currency::USD,
        items: vec![
            item(1, automatic(), big, "0.00"),
            item(2, automatic(), big, "0.00"),
        ],
        reserve: None,
    });
    overflow(settlement::decide(&world.batch, &world.payments, &command));
}

#[test]
fn a_refund_whose_gross_and_fee_pass_the_largest_amount_is_refused() {
    // The batch's net is in range (the capture offsets the refund), but the refund's own
    // withdrawal of gross and fee is not: the journal could not post it.
    let refunded = given(&[
        initiate(MAX_USD, CaptureMode::Automatic),
        approve(None),
        refund("r1", None),
        refund_outcome("r1", true),
    ])
    .1;
    let world = World {
        payments: BTreeMap::from([(payment_id(1), refunded)]),
        batch: SettlementBatchState::default(),
        batch_id: SettlementBatchId::from_uuid(uuid::Uuid::from_u128(99)),
    };
    let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id: world.batch_id,
        merchant_id: merchant(),
        environment: Environment::Test,
        currency: Currency::USD,
        items: vec![
            item(
                1,
                SettledItem::Capture(capture_id("automatic")),
                MAX_USD,
                "0.00",
            ),
            item(1, SettledItem::Refund(refund_id("r1")), MAX_USD, "0.01"),
        ],
        reserve: None,
    });
    overflow(settlement::decide(&world.batch, &world.payments, &command));
}

#[test]
fn a_dispute_whose_amount_and_fee_pass_the_largest_amount_is_refused() {
    let (_, state) = given(&[initiate(MAX_USD, CaptureMode::Automatic), approve(None)]);
    assert_refused(
        &state,
        &open_dispute("d1", MAX_USD, "0.01"),
        "invalid_amount",
    );
}

#[test]
fn a_logged_withdrawal_past_the_largest_amount_fails_to_post_instead_of_posting_wrong() {
    // An event the rules would refuse, as a corrupted or older log might hold it.
    let recorded = SettlementEvent::SettlementBatchRecorded(SettlementBatchRecorded {
        merchant_id: merchant(),
        environment: Environment::Test,
        currency: Currency::USD,
        items: vec![SettlementItem {
            payment_id: payment_id(1),
            item: SettledItem::Dispute(dispute_id("d1")),
            gross: usd(MAX_USD),
            fee: usd("0.01"),
        }],
        gross: usd(MAX_USD).negate(),
        fees: usd("0.01"),
        reserve: usd("0.00"),
        // The true net, −1,000,000,000,000.01, is not an amount at all.
        net: usd(MAX_USD).negate(),
    });
    let posted = journal::settlement_entry(&SettlementBatchState::default(), &recorded);
    assert!(
        matches!(posted, Err(ledger_core::MoneyError::OutOfRange { .. })),
        "{posted:?}"
    );
}
