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
    let [SettlementEvent::SettlementBatchRecorded(recorded), SettlementEvent::SettlementItemsAdded(added)] =
        decision.batch_events.as_slice()
    else {
        panic!("unexpected {decision:?}");
    };
    assert_eq!((recorded.item_count, added.items.len()), (4, 4));
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
        item_count: 1,
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

/// A batch of the largest size: `count` payments of 10.00 each, captured in full under `c1`.
fn largest_batch_world(count: u128) -> (World, SettlementCommand) {
    let mut world = world();
    world.payments.clear();
    let captured = given(&[
        initiate("10.00", CaptureMode::Manual),
        approve(None),
        capture("c1", None, true),
    ])
    .1;
    let mut items = Vec::new();
    for n in 1..=count {
        world.payments.insert(payment_id(n), captured.clone());
        items.push(item(
            n,
            SettledItem::Capture(capture_id("c1")),
            "10.00",
            "0.59",
        ));
    }
    let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id: world.batch_id,
        merchant_id: merchant(),
        environment: Environment::Test,
        currency: Currency::USD,
        items,
        reserve: Some(usd("1.00")),
    });
    (world, command)
}

#[test]
fn a_batch_of_the_largest_size_is_recorded_as_a_header_and_bounded_item_events() {
    // One event holding 2,000 items would be about 400 KiB, past the store's 64 KiB a payload.
    let (mut world, command) = largest_batch_world(MAX_SETTLEMENT_ITEMS as u128);
    let decision = settlement::decide(&world.batch, &world.payments, &command).expect("accepted");

    assert_eq!(decision.batch_events.len(), MAX_SETTLEMENT_BATCH_EVENTS);
    let SettlementEvent::SettlementBatchRecorded(recorded) = &decision.batch_events[0] else {
        panic!("{:?}", decision.batch_events[0]);
    };
    assert_eq!(recorded.item_count as usize, MAX_SETTLEMENT_ITEMS);
    assert!(recorded.items.is_empty());
    for event in &decision.batch_events[1..] {
        let SettlementEvent::SettlementItemsAdded(added) = event else {
            panic!("{event:?}");
        };
        assert_eq!(added.items.len(), SETTLEMENT_ITEMS_PER_EVENT);
    }
    assert_eq!(decision.payment_events.len(), MAX_SETTLEMENT_ITEMS);

    // The entries of the header and of each item event balance one by one, and together post
    // what the batch moves: 20,000.00 out of gateway_pending, net and reserve settled.
    let mut state = world.batch.clone();
    let mut balance = TrialBalance::default();
    for event in &decision.batch_events {
        if let Some(entry) = journal::settlement_entry(&state, event).expect("posts") {
            assert!(entry.is_balanced(), "{entry:?}");
            balance.post(&entry);
        }
        state = settlement::evolve(state, event);
    }
    let key = |account| AccountKey {
        environment: Environment::Test,
        merchant_id: merchant(),
        currency: Currency::USD,
        account,
    };
    assert_eq!(
        balance.balance(&key(Account::GatewayPending)),
        Decimal::new(-2_000_000, 2)
    );
    assert_eq!(
        balance.balance(&key(Account::ProcessingFees)),
        Decimal::new(118_000, 2)
    );
    assert_eq!(
        balance.balance(&key(Account::GatewayReserve)),
        Decimal::new(100, 2)
    );

    apply(&mut world, &decision);
    let batch = world.batch.batch.as_ref().expect("batch");
    assert!(batch.is_complete());
    assert_eq!(batch.net, usd("18819.00"));
    assert_eq!(invariants::check(&world.batch), Ok(()));
    for n in 1..=MAX_SETTLEMENT_ITEMS as u128 {
        let payment = world.payments[&payment_id(n)]
            .payment
            .as_ref()
            .expect("payment");
        assert_eq!(
            payment.settled_in(&SettledItem::Capture(capture_id("c1"))),
            Some(world.batch_id)
        );
    }
}

#[test]
fn one_more_item_than_the_largest_batch_is_refused() {
    let (world, command) = largest_batch_world(MAX_SETTLEMENT_ITEMS as u128 + 1);
    refused(&world, &command, "settlement_batch_too_large");
}

#[test]
fn an_item_event_stays_well_under_the_store_payload_cap_with_the_longest_items() {
    // The worst an item can be: the longest ids, of characters JSON escapes, and the largest
    // amounts of a three-decimal currency. 48 KiB leaves the store's 64 KiB cap a margin.
    let escaped = "\"".repeat(ledger_core::ids::MAX_ID_LENGTH);
    let largest = Money::parse("-999999999999.999", Currency::KWD).expect("in range");
    let item = SettlementItem {
        payment_id: payment_id(u128::MAX),
        item: SettledItem::Dispute(dispute_id(&escaped)),
        gross: largest,
        fee: largest,
    };
    let event = SettlementEvent::SettlementItemsAdded(SettlementItemsAdded {
        items: vec![item; SETTLEMENT_ITEMS_PER_EVENT],
    });
    let payload = serde_json::to_string(&event.to_payload().expect("encodes")).expect("text");
    assert!(payload.len() < 48 * 1024, "{} bytes", payload.len());
}

#[test]
fn a_fold_that_stops_inside_the_append_sees_an_incomplete_batch_that_keeps_the_invariants() {
    let (world, command) = largest_batch_world(250);
    let decision = settlement::decide(&world.batch, &world.payments, &command).expect("accepted");
    let partial = settlement::fold(&decision.batch_events[..2]);
    let batch = partial.batch.as_ref().expect("batch");
    assert_eq!((batch.item_count, batch.items.len()), (250, 100));
    assert!(!batch.is_complete());
    assert_eq!(invariants::check(&partial), Ok(()));
    // An item event past the count the header stated is a broken log.
    let mut extra = decision.batch_events.clone();
    extra.push(decision.batch_events[1].clone());
    assert!(invariants::check(&settlement::fold(&extra)).is_err());
}
