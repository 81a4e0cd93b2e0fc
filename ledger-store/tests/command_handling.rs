//! Command handling against a real log: commands are decided on the folded stream and
//! appended atomically; races are retried, never lost; idempotent retries record nothing new;
//! a refused command records nothing; environments do not see each other.

use std::sync::Arc;

use chrono::Utc;
use ledger_core::ids::*;
use ledger_core::payment::*;
use ledger_core::settlement::{
    BatchItem, RecordSettlementBatch, SettlementBatchState, SettlementCommand,
};
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_store::commands::{CommandContext, CommandHandler, Idempotency};
use ledger_store::testing::TestDatabase;
use ledger_store::StoreError;
use serde_json::json;
use uuid::Uuid;

fn context(environment: Environment, key: Option<(&str, serde_json::Value)>) -> CommandContext {
    CommandContext {
        environment,
        actor_id: "key_1".to_owned(),
        actor_role: "service".to_owned(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        occurred_at: Utc::now(),
        idempotency: key.map(|(key, input)| Idempotency::for_request(key, &input).unwrap()),
    }
}

fn usd(amount: &str) -> PositiveMoney {
    PositiveMoney::parse(amount, Currency::USD).unwrap()
}

fn initiate(amount: &str) -> PaymentCommand {
    PaymentCommand::Initiate(InitiatePayment {
        merchant_id: MerchantId::parse("merchant_1").unwrap(),
        order_id: OrderId::parse("order_1").unwrap(),
        environment: Environment::Test,
        amount: usd(amount),
        capture_mode: CaptureMode::Manual,
        payment_method: None,
    })
}

fn approve() -> PaymentCommand {
    PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: None,
        authorization_code: None,
        gateway_reference: None,
        expires_at: None,
    })
}

fn capture(id: &str, amount: &str) -> PaymentCommand {
    PaymentCommand::Capture(CapturePayment {
        capture_id: CaptureId::parse(id).unwrap(),
        amount: Some(usd(amount)),
        final_capture: false,
    })
}

async fn authorized_payment(handler: &CommandHandler, amount: &str) -> PaymentId {
    let payment_id = PaymentId::new_random();
    let test = context(Environment::Test, None);
    handler
        .handle_payment(payment_id, &initiate(amount), &test)
        .await
        .unwrap();
    handler
        .handle_payment(payment_id, &approve(), &test)
        .await
        .unwrap();
    payment_id
}

#[tokio::test]
async fn a_lifecycle_is_recorded_in_order_with_positions() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment_id = authorized_payment(&handler, "100.00").await;
    let test = context(Environment::Test, None);
    let captured = handler
        .handle_payment(payment_id, &capture("c1", "60.00"), &test)
        .await
        .unwrap();
    assert!(!captured.replayed);
    assert_eq!(captured.events.len(), 1);
    assert_eq!(captured.events[0].event_type, "PaymentCaptured");
    assert_eq!(captured.events[0].stream_version, 3);
    assert_eq!(captured.position, 3);
    // The answer is folded without re-reading the stream: it must equal a fresh read.
    let (fresh, history) = handler
        .load_with_history::<PaymentState>(payment_id.as_uuid())
        .await
        .unwrap();
    assert_eq!(captured.state, fresh);
    assert_eq!(captured.stream.version, history.len() as u64);
    assert_eq!(
        captured.stream.last_position,
        history.last().unwrap().position
    );
    assert_eq!(
        captured.stream.first_occurred_at,
        Some(history[0].occurred_at)
    );
    let payment = captured.state.payment.unwrap();
    assert_eq!(payment.status(), PaymentStatus::PartiallyCaptured);
    assert_eq!(
        payment.captured_amount(),
        Money::parse("60.00", Currency::USD).unwrap()
    );
}

#[tokio::test]
async fn a_refused_command_records_nothing() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment_id = authorized_payment(&handler, "100.00").await;
    let head = db.store().head().await.unwrap();
    let error = handler
        .handle_payment(
            payment_id,
            &capture("c1", "100.01"),
            &context(Environment::Test, None),
        )
        .await
        .unwrap_err();
    match error {
        StoreError::Rejected(rule) => assert_eq!(rule.rule(), "capture_exceeds_authorized"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(db.store().head().await.unwrap(), head);
}

#[tokio::test]
async fn concurrent_captures_never_exceed_the_authorization() {
    let db = TestDatabase::new().await;
    let handler = Arc::new(CommandHandler::new(db.store()));
    let payment_id = authorized_payment(&handler, "10.00").await;
    let tasks: Vec<_> = (0..20)
        .map(|index| {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                handler
                    .handle_payment(
                        payment_id,
                        &capture(&format!("c{index}"), "1.00"),
                        &context(Environment::Test, None),
                    )
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::Rejected(error)) => {
                assert_eq!(error.rule(), "payment_not_capturable");
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((accepted, refused), (10, 10));
    let state = handler
        .load_payment(Environment::Test, payment_id)
        .await
        .unwrap();
    let payment = state.payment.unwrap();
    assert_eq!(
        payment.captured_amount(),
        Money::parse("10.00", Currency::USD).unwrap()
    );
    assert_eq!(payment.captures.len(), 10);
}

/// Handlers over separate stores stand for separate processes: they do not take turns, so
/// their races are settled by the expected version, re-reading and deciding again.
#[tokio::test]
async fn writers_in_separate_processes_retry_and_lose_nothing() {
    let db = TestDatabase::new().await;
    let handlers: Vec<Arc<CommandHandler>> = (0..4)
        .map(|_| Arc::new(CommandHandler::new(db.store())))
        .collect();
    let payment_id = authorized_payment(&handlers[0], "8.00").await;
    let tasks: Vec<_> = (0..12)
        .map(|index| {
            let handler = Arc::clone(&handlers[index % handlers.len()]);
            tokio::spawn(async move {
                handler
                    .handle_payment(
                        payment_id,
                        &capture(&format!("c{index}"), "1.00"),
                        &context(Environment::Test, None),
                    )
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(StoreError::Rejected(error)) => {
                assert_eq!(error.rule(), "payment_not_capturable")
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 8);
    let payment = handlers[1]
        .load_payment(Environment::Test, payment_id)
        .await
        .unwrap()
        .payment
        .unwrap();
    assert_eq!(
        payment.captured_amount(),
        Money::parse("8.00", Currency::USD).unwrap()
    );
}

/// Each handler keeps the folds it loaded; a fold another process has since moved past must
/// be brought up to date from the log, never answered as it was kept.
#[tokio::test]
async fn a_kept_fold_catches_up_with_what_another_process_appended() {
    let db = TestDatabase::new().await;
    let here = CommandHandler::new(db.store());
    let elsewhere = CommandHandler::new(db.store());
    let payment_id = authorized_payment(&here, "10.00").await;
    let kept = here
        .load_folded::<PaymentState>(payment_id.as_uuid())
        .await
        .unwrap();
    assert_eq!(kept.summary.version, 2);

    let test = context(Environment::Test, None);
    elsewhere
        .handle_payment(payment_id, &capture("c1", "4.00"), &test)
        .await
        .unwrap();

    let caught_up = here
        .load_folded::<PaymentState>(payment_id.as_uuid())
        .await
        .unwrap();
    let (fresh, history) = here
        .load_with_history::<PaymentState>(payment_id.as_uuid())
        .await
        .unwrap();
    assert_eq!(caught_up.state, fresh);
    assert_eq!(caught_up.summary.version, 3);
    assert_eq!(
        caught_up.summary.last_position,
        history.last().unwrap().position
    );
    assert_eq!(
        caught_up.summary.last_occurred_at,
        Some(history.last().unwrap().occurred_at)
    );

    // Deciding here uses the caught-up state: 6.00 is all that is left to capture.
    let refused = here
        .handle_payment(payment_id, &capture("c2", "6.01"), &test)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Rejected(_)), "{refused:?}");
    let accepted = here
        .handle_payment(payment_id, &capture("c2", "6.00"), &test)
        .await
        .unwrap();
    assert_eq!(accepted.stream.version, 4);
    assert_eq!(
        accepted.state.payment.unwrap().captured_amount(),
        Money::parse("10.00", Currency::USD).unwrap()
    );
}

fn refund(id: &str, amount: &str) -> PaymentCommand {
    PaymentCommand::Refund(RefundPayment {
        refund_id: RefundId::parse(id).unwrap(),
        amount: Some(usd(amount)),
        reason: None,
    })
}

/// A command on a fold this handler keeps reads nothing before it is decided. When another
/// process moved the payment on meanwhile, the fold is behind, and the command must still be
/// decided on the log's state: an append through the log's version check, a refusal through
/// a read before it is answered.
#[tokio::test]
async fn a_command_on_a_kept_fold_reads_nothing_and_a_fold_left_behind_is_decided_again() {
    let db = TestDatabase::new().await;
    let here = CommandHandler::new(db.store());
    let elsewhere = CommandHandler::new(db.store());
    let test = context(Environment::Test, None);
    let payment_id = authorized_payment(&here, "10.00").await;

    let reads = here.stream_reads();
    here.handle_payment(payment_id, &capture("c1", "1.00"), &test)
        .await
        .unwrap();
    assert_eq!(
        here.stream_reads() - reads,
        0,
        "the kept fold is decided on"
    );

    // Elsewhere captures 4.00: here's fold knows of 1.00 captured only.
    elsewhere
        .handle_payment(payment_id, &capture("c2", "4.00"), &test)
        .await
        .unwrap();
    // Here's fold would refund at most 1.00; the log holds 5.00 captured.
    let refunded = here
        .handle_payment(payment_id, &refund("r1", "3.00"), &test)
        .await
        .expect("a refusal decided on a stale fold is decided again on the log's state");
    assert_eq!(refunded.stream.version, 5);
    assert_eq!(
        refunded.state.payment.unwrap().captured_amount(),
        Money::parse("5.00", Currency::USD).unwrap()
    );

    // Elsewhere captures 3.00 more: 2.00 is left, though here's fold would capture 5.00.
    elsewhere
        .handle_payment(payment_id, &capture("c3", "3.00"), &test)
        .await
        .unwrap();
    let head = db.store().head().await.unwrap();
    let refused = here
        .handle_payment(payment_id, &capture("c4", "5.00"), &test)
        .await
        .unwrap_err();
    match refused {
        StoreError::Rejected(rule) => assert_eq!(rule.rule(), "capture_exceeds_authorized"),
        other => panic!("expected the rules' refusal, got {other:?}"),
    }
    assert_eq!(db.store().head().await.unwrap(), head, "nothing appended");
    let (fresh, _) = here
        .load_with_history::<PaymentState>(payment_id.as_uuid())
        .await
        .unwrap();
    assert_eq!(
        here.kept::<PaymentState>(payment_id.as_uuid())
            .unwrap()
            .state,
        fresh
    );
}

#[tokio::test]
async fn fifty_concurrent_copies_of_one_request_record_one_set_of_events() {
    let db = TestDatabase::new().await;
    // Five handlers over separate stores: copies race inside the store, not only in one
    // process's queue.
    let handlers: Vec<Arc<CommandHandler>> = (0..5)
        .map(|_| Arc::new(CommandHandler::new(db.store())))
        .collect();
    let handler = Arc::clone(&handlers[0]);
    let payment_id = authorized_payment(&handler, "100.00").await;
    let input = json!({"paymentId": payment_id.to_string(), "amount": "25.00"});
    let tasks: Vec<_> = (0..50)
        .map(|index| {
            let handler = Arc::clone(&handlers[index % handlers.len()]);
            let input = input.clone();
            tokio::spawn(async move {
                // Each copy generates its own capture id, as the API does when none is given:
                // the fingerprint of the raw input is what makes them the same request.
                let command = capture(&format!("cap_{}", Uuid::new_v4().simple()), "25.00");
                handler
                    .handle_payment(
                        payment_id,
                        &command,
                        &context(Environment::Test, Some(("key-50", input))),
                    )
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().unwrap());
    }
    assert_eq!(answers.iter().filter(|answer| !answer.replayed).count(), 1);
    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.position, first.position);
        assert_eq!(answer.events, first.events);
    }
    let payment = handler
        .load_payment(Environment::Test, payment_id)
        .await
        .unwrap()
        .payment
        .unwrap();
    assert_eq!(payment.captures.len(), 1);
    assert_eq!(
        payment.captured_amount(),
        Money::parse("25.00", Currency::USD).unwrap()
    );
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment_id = authorized_payment(&handler, "100.00").await;
    let first = context(
        Environment::Test,
        Some(("key-1", json!({"amount": "1.00"}))),
    );
    handler
        .handle_payment(payment_id, &capture("c1", "1.00"), &first)
        .await
        .unwrap();
    let other = context(
        Environment::Test,
        Some(("key-1", json!({"amount": "2.00"}))),
    );
    let error = handler
        .handle_payment(payment_id, &capture("c2", "2.00"), &other)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::IdempotencyKeyReused { .. }),
        "{error:?}"
    );
    // The same key in the other environment is a different key.
    let live = context(
        Environment::Live,
        Some(("key-1", json!({"amount": "2.00"}))),
    );
    let error = handler
        .handle_payment(payment_id, &capture("c2", "2.00"), &live)
        .await
        .unwrap_err();
    match error {
        StoreError::Rejected(rule) => assert_eq!(rule.rule(), "payment_not_found"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_payment_is_invisible_to_the_other_environment() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment_id = authorized_payment(&handler, "100.00").await;
    let live = context(Environment::Live, None);
    let error = handler
        .handle_payment(payment_id, &capture("c1", "1.00"), &live)
        .await
        .unwrap_err();
    match error {
        StoreError::Rejected(rule) => assert_eq!(rule.rule(), "payment_not_found"),
        other => panic!("unexpected {other:?}"),
    }
    let seen = handler
        .load_payment(Environment::Live, payment_id)
        .await
        .unwrap();
    assert!(seen.payment.is_none());
}

fn batch(batch_id: SettlementBatchId, items: Vec<BatchItem>) -> SettlementCommand {
    SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id,
        merchant_id: MerchantId::parse("merchant_1").unwrap(),
        environment: Environment::Test,
        currency: Currency::USD,
        items,
        reserve: None,
    })
}

fn capture_item(payment_id: PaymentId, capture_id: &str, gross: &str) -> BatchItem {
    BatchItem {
        payment_id,
        item: SettledItem::Capture(CaptureId::parse(capture_id).unwrap()),
        gross: usd(gross),
        fee: Money::parse("0.30", Currency::USD).unwrap(),
    }
}

/// Records settlement batch `batch_id` of `items`, as a test-environment command.
async fn settle(
    handler: &CommandHandler,
    batch_id: SettlementBatchId,
    items: Vec<BatchItem>,
) -> Result<ledger_store::commands::Handled<SettlementBatchState>, StoreError> {
    handler
        .handle_settlement(
            batch_id,
            &batch(batch_id, items),
            &context(Environment::Test, None),
        )
        .await
}

#[tokio::test]
async fn a_settlement_batch_is_atomic_across_payments() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let test = context(Environment::Test, None);
    let first = authorized_payment(&handler, "10.00").await;
    let second = authorized_payment(&handler, "20.00").await;
    handler
        .handle_payment(first, &capture("c1", "10.00"), &test)
        .await
        .unwrap();
    handler
        .handle_payment(second, &capture("c1", "20.00"), &test)
        .await
        .unwrap();
    let settled = settle(
        &handler,
        SettlementBatchId::new_random(),
        vec![
            capture_item(first, "c1", "10.00"),
            capture_item(second, "c1", "20.00"),
        ],
    )
    .await
    .unwrap();
    // The batch's header and its items, and a CaptureSettled on each payment.
    assert_eq!(settled.events.len(), 4);
    let net = settled.state.batch.unwrap().net;
    assert_eq!(net, Money::parse("29.40", Currency::USD).unwrap());

    // A second batch naming one settled and one new item is refused whole.
    let third = authorized_payment(&handler, "5.00").await;
    handler
        .handle_payment(third, &capture("c1", "5.00"), &test)
        .await
        .unwrap();
    let head = db.store().head().await.unwrap();
    let error = settle(
        &handler,
        SettlementBatchId::new_random(),
        vec![
            capture_item(third, "c1", "5.00"),
            capture_item(first, "c1", "10.00"),
        ],
    )
    .await
    .unwrap_err();
    match error {
        StoreError::Rejected(rule) => assert_eq!(rule.rule(), "settlement_item_already_settled"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(db.store().head().await.unwrap(), head);
    let third_state = handler
        .load_payment(Environment::Test, third)
        .await
        .unwrap();
    assert!(third_state.payment.unwrap().captures[0]
        .settled_in
        .is_none());
}

/// A retry whose command the rules would still accept (a generated id makes it look new) is
/// answered by the key's claim in the append, and a retry the rules would now refuse is
/// recognised by its key before the refusal: both get the first answer and record nothing.
#[tokio::test]
async fn retries_get_the_first_answer_whether_the_rules_would_accept_them_or_not() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment_id = authorized_payment(&handler, "100.00").await;
    let input = serde_json::json!({"amount": "10.00"});
    let keyed = || context(Environment::Test, Some(("capture-10", input.clone())));
    let first = handler
        .handle_payment(payment_id, &capture("generated_1", "10.00"), &keyed())
        .await
        .unwrap();
    assert!(!first.replayed);

    // The retry's generated capture id differs, so the rules alone would record it again.
    let retry = handler
        .handle_payment(payment_id, &capture("generated_2", "10.00"), &keyed())
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.events, first.events);
    assert_eq!(retry.position, first.position);

    // Capture the other 90.00, then retry that capture under its key: the rules refuse it now
    // (nothing is left to capture), but the key says it is a retry of a success.
    let rest_input = serde_json::json!({"amount": "90.00"});
    let rest = || context(Environment::Test, Some(("capture-90", rest_input.clone())));
    let captured_rest = handler
        .handle_payment(payment_id, &capture("generated_3", "90.00"), &rest())
        .await
        .unwrap();
    let again = handler
        .handle_payment(payment_id, &capture("generated_4", "90.00"), &rest())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.events, captured_rest.events);
    let head = db.store().head().await.unwrap().last_position;
    assert_eq!(head, captured_rest.position, "no retry recorded anything");

    // The same key with another request is refused, whether or not the rules would accept it.
    let other = context(
        Environment::Test,
        Some(("capture-10", serde_json::json!({"amount": "5.00"}))),
    );
    let reused = handler
        .handle_payment(payment_id, &capture("generated_5", "5.00"), &other)
        .await
        .unwrap_err();
    assert!(
        matches!(
            reused,
            ledger_store::StoreError::IdempotencyKeyReused { .. }
        ),
        "{reused:?}"
    );
}

// Kept states: each stream's row keeps the fold its last command left, so that a stream no
// process has read yet is one row to read (`ledger_store::kept_state`).

/// A stream's row as stored.
async fn stream_row(db: &TestDatabase, stream_id: Uuid) -> ledger_store::kept_state::StoredStream {
    db.store().stored_stream(stream_id).await.unwrap().unwrap()
}

/// Edits a payment's kept state behind the log's back: its order id becomes `order_edited`.
async fn edit_kept_order_id(db: &TestDatabase, payment: PaymentId) {
    db.edit_kept_state::<PaymentState>(payment.as_uuid(), |state| {
        if let Some(payment) = state.payment.as_mut() {
            payment.order_id = OrderId::parse("order_edited").unwrap();
        }
    })
    .await;
}

/// The fold of a stream from its events, and its summary, as a reader without kept states
/// would make them.
async fn folded_from_events<State>(
    handler: &CommandHandler,
    stream_id: Uuid,
) -> ledger_store::state_cache::Folded<State>
where
    State: ledger_core::aggregate::Aggregate + Default,
{
    let (state, history) = handler.load_with_history::<State>(stream_id).await.unwrap();
    ledger_store::state_cache::Folded {
        state,
        summary: ledger_store::state_cache::StreamSummary::default().after(&history),
    }
}

#[tokio::test]
async fn every_command_keeps_the_fold_it_leaves_in_its_streams_row() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let test = context(Environment::Test, None);
    let first = authorized_payment(&handler, "10.00").await;
    let second = authorized_payment(&handler, "20.00").await;
    for payment in [first, second] {
        handler
            .handle_payment(payment, &capture("c1", "7.00"), &test)
            .await
            .unwrap();
    }
    // A settlement appends to the batch and, in the same append, to each payment it settles.
    let batch_id = SettlementBatchId::new_random();
    settle(
        &handler,
        batch_id,
        vec![
            capture_item(first, "c1", "7.00"),
            capture_item(second, "c1", "7.00"),
        ],
    )
    .await
    .unwrap();
    for payment in [first, second] {
        let stored = stream_row(&db, payment.as_uuid()).await;
        let kept = stored
            .folded::<PaymentState>()
            .expect("a kept payment state");
        let from_events = folded_from_events::<PaymentState>(&handler, payment.as_uuid()).await;
        assert_eq!(kept, from_events);
        assert_eq!(kept.summary.version, 4);
        assert!(kept.state.payment.unwrap().captures[0].settled_in.is_some());
        // Another process reads the same fold from the row.
        let elsewhere = CommandHandler::new(db.store())
            .load_folded::<PaymentState>(payment.as_uuid())
            .await
            .unwrap();
        assert_eq!(elsewhere, from_events);
    }
    let stored = stream_row(&db, batch_id.as_uuid()).await;
    let kept = stored
        .folded::<SettlementBatchState>()
        .expect("a kept batch state");
    assert_eq!(
        kept,
        folded_from_events::<SettlementBatchState>(&handler, batch_id.as_uuid()).await
    );
    // A payment's row is not a batch's state.
    assert!(stream_row(&db, first.as_uuid())
        .await
        .folded::<SettlementBatchState>()
        .is_none());
}

/// A process that has not read a stream reads its row, not its events: a row changed behind
/// the log's back is what it answers (which is why `ledger verify` compares every kept state
/// with the fold of the log).
#[tokio::test]
async fn a_stream_new_to_a_process_is_read_from_its_row() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment = authorized_payment(&handler, "10.00").await;
    edit_kept_order_id(&db, payment).await;
    let read = CommandHandler::new(db.store())
        .load_payment(Environment::Test, payment)
        .await
        .unwrap();
    assert_eq!(read.payment.unwrap().order_id.as_str(), "order_edited");
}

/// A kept state of another format than this build's (written by an older or newer one) is
/// not used, nor is a row whose state is not at the row's version: the stream is folded from
/// its events, and its next command keeps the fold again.
#[tokio::test]
async fn a_kept_state_of_another_format_or_version_is_not_used() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let test = context(Environment::Test, None);
    for change in ["another format", "a state at another version"] {
        let payment = authorized_payment(&handler, "10.00").await;
        let truth = folded_from_events::<PaymentState>(&handler, payment.as_uuid()).await;
        // Were the edited state used, the read would answer its order id.
        edit_kept_order_id(&db, payment).await;
        if change == "another format" {
            sqlx::query("UPDATE streams SET state_format = state_format + 1 WHERE stream_id = $1")
                .bind(payment.as_uuid())
                .execute(db.pool())
                .await
                .unwrap();
        } else {
            db.edit_kept_state::<PaymentState>(payment.as_uuid(), |state| state.version = 1)
                .await;
        }
        let read = CommandHandler::new(db.store())
            .load_folded::<PaymentState>(payment.as_uuid())
            .await
            .unwrap();
        assert_eq!(read, truth, "{change}");
        handler
            .handle_payment(payment, &capture("c1", "4.00"), &test)
            .await
            .unwrap();
        let kept = stream_row(&db, payment.as_uuid())
            .await
            .folded::<PaymentState>()
            .expect("kept again by the next command");
        assert_eq!(
            kept,
            folded_from_events::<PaymentState>(&handler, payment.as_uuid()).await,
            "{change}"
        );
    }
}

/// An append that brings no state (a raw append to the log) leaves the row keeping none, so
/// no read takes the state before it for the stream's fold.
#[tokio::test]
async fn an_append_without_a_state_clears_the_kept_one() {
    let db = TestDatabase::new().await;
    let handler = CommandHandler::new(db.store());
    let payment = authorized_payment(&handler, "10.00").await;
    let captured = PaymentEvent::PaymentCaptured(PaymentCaptured {
        capture_id: CaptureId::parse("c1").unwrap(),
        amount: Money::parse("3.00", Currency::USD).unwrap(),
        final_capture: false,
    });
    db.store()
        .append(ledger_store::AppendRequest {
            streams: vec![ledger_store::StreamAppend {
                stream_id: payment.as_uuid(),
                stream_type: ledger_store::StreamType::Payment,
                expected_version: ledger_store::ExpectedVersion::Exactly(2),
                events: vec![ledger_store::NewEvent {
                    event_id: Uuid::new_v4(),
                    event_type: captured.event_type().to_owned(),
                    schema_version: i32::try_from(captured.schema_version()).unwrap(),
                    occurred_at: Utc::now(),
                    payload: captured.to_payload().unwrap(),
                    metadata: ledger_store::EventMetadata {
                        environment: Environment::Test,
                        actor_id: "key_1".to_owned(),
                        actor_role: "service".to_owned(),
                        correlation_id: Uuid::new_v4(),
                        causation_id: None,
                        idempotency_key: None,
                    },
                }],
                kept_state: None,
            }],
            idempotency: None,
        })
        .await
        .unwrap();
    let stored = stream_row(&db, payment.as_uuid()).await;
    assert_eq!(stored.version, 3);
    assert!(stored.kept.is_none());
    let read = CommandHandler::new(db.store())
        .load_payment(Environment::Test, payment)
        .await
        .unwrap();
    assert_eq!(
        read.payment.unwrap().captured_amount(),
        Money::parse("3.00", Currency::USD).unwrap()
    );
}
