//! Realistic event logs for the tests and the benchmark: commands run through ledger-core's
//! `decide` against the folded state, and the events appended with ledger-store, so every
//! stream in the log is one the domain would have produced.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use ledger_core::aggregate::DomainEvent;
use ledger_core::ids::*;
use ledger_core::payment::{self, *};
use ledger_core::reconciliation::{
    self, ExceptionClass, LedgerSide, PayoutOutcome, PayoutReconciled, ReconciliationCommand,
    ReconciliationEvent, ReconciliationException, ReconciliationRunState, ReconciliationSource,
    ReportSide, ResolveException, StartRun,
};
use ledger_core::settlement::{self, *};
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};
use ledger_store::{
    AppendRequest, EventMetadata, EventStore, ExpectedVersion, KeptState, NewEvent, RecordedEvent,
    StreamAppend, StreamType,
};
use uuid::Uuid;

pub fn money(amount: &str, currency: Currency) -> Money {
    Money::parse(amount, currency).unwrap()
}

pub fn positive(amount: &str, currency: Currency) -> PositiveMoney {
    PositiveMoney::parse(amount, currency).unwrap()
}

pub fn text(value: &str) -> ShortText {
    ShortText::parse(value).unwrap()
}

pub fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0)
        .single()
        .unwrap()
}

pub fn initiate(
    merchant: &str,
    order: &str,
    amount: &str,
    currency: Currency,
    mode: CaptureMode,
) -> PaymentCommand {
    PaymentCommand::Initiate(InitiatePayment {
        merchant_id: MerchantId::parse(merchant).unwrap(),
        order_id: OrderId::parse(order).unwrap(),
        environment: Environment::Test,
        amount: positive(amount, currency),
        capture_mode: mode,
        payment_method: Some(text("card")),
    })
}

pub fn approve(amount: Option<PositiveMoney>, expires_at: DateTime<Utc>) -> PaymentCommand {
    PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: amount,
        authorization_code: Some(text("A1B2C3")),
        gateway_reference: Some(text("pi_123")),
        expires_at: Some(expires_at),
    })
}

pub fn decline(code: &str) -> PaymentCommand {
    PaymentCommand::RecordAuthorization(RecordAuthorization::Declined {
        decline_code: Some(text(code)),
        category: None,
        retry_may_help: None,
    })
}

pub fn capture(id: &str, amount: Option<PositiveMoney>, final_capture: bool) -> PaymentCommand {
    PaymentCommand::Capture(CapturePayment {
        capture_id: CaptureId::parse(id).unwrap(),
        amount,
        final_capture,
    })
}

pub fn refund(id: &str, amount: Option<PositiveMoney>) -> PaymentCommand {
    PaymentCommand::Refund(RefundPayment {
        refund_id: RefundId::parse(id).unwrap(),
        amount,
        reason: Some(text("requested_by_customer")),
    })
}

pub fn refund_outcome(id: &str, succeeded: bool) -> PaymentCommand {
    PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
        refund_id: RefundId::parse(id).unwrap(),
        outcome: if succeeded {
            RefundOutcome::Succeeded
        } else {
            RefundOutcome::Failed {
                failure_reason: Some(text("expired_or_canceled_card")),
            }
        },
    })
}

pub fn open_dispute(
    id: &str,
    amount: PositiveMoney,
    fee: Money,
    due: DateTime<Utc>,
) -> PaymentCommand {
    PaymentCommand::OpenDispute(OpenDispute {
        dispute_id: DisputeId::parse(id).unwrap(),
        amount,
        reason: text("fraudulent"),
        evidence_due_by: Some(due),
        fee: Some(fee),
    })
}

pub fn submit_evidence(id: &str) -> PaymentCommand {
    PaymentCommand::SubmitDisputeEvidence(SubmitDisputeEvidence {
        dispute_id: DisputeId::parse(id).unwrap(),
        evidence: serde_json::json!({"receipt": "r_1", "note": "signed for ✓"}),
    })
}

pub fn resolve(id: &str, outcome: DisputeOutcome) -> PaymentCommand {
    PaymentCommand::ResolveDispute(ResolveDispute {
        dispute_id: DisputeId::parse(id).unwrap(),
        outcome,
    })
}

pub fn void() -> PaymentCommand {
    PaymentCommand::Void(VoidPayment {
        reason: Some(text("customer_cancelled")),
    })
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        environment: ledger_store::Environment::Test,
        actor_id: "key_test_1".into(),
        actor_role: "service".into(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        idempotency_key: None,
    }
}

pub fn new_event<E: DomainEvent>(event: &E, occurred_at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event.event_type().to_owned(),
        schema_version: i32::try_from(event.schema_version()).unwrap(),
        occurred_at,
        payload: event.to_payload().unwrap(),
        metadata: metadata(),
    }
}

/// A payment stream's append of events decided on `state`, keeping the state they leave as
/// the command handler does; `began` is when the stream's first event occurred (`None`: these
/// events begin it).
pub fn payment_append(
    payment_id: PaymentId,
    state: &PaymentState,
    events: &[PaymentEvent],
    occurred_at: DateTime<Utc>,
    began: Option<DateTime<Utc>>,
) -> StreamAppend {
    StreamAppend {
        stream_id: payment_id.as_uuid(),
        stream_type: StreamType::Payment,
        expected_version: ExpectedVersion::Exactly(state.version),
        events: events
            .iter()
            .map(|event| new_event(event, occurred_at))
            .collect(),
        kept_state: Some(KeptState::after(state, events, began.unwrap_or(occurred_at)).unwrap()),
    }
}

/// Runs commands against the log: read, fold, decide, append (with the expected version).
pub struct Ledger {
    pub store: EventStore,
}

impl Ledger {
    pub fn new(store: EventStore) -> Self {
        Ledger { store }
    }

    pub async fn payment_state(&self, payment_id: PaymentId) -> PaymentState {
        self.payment_read(payment_id).await.0
    }

    /// A payment folded from its events, and when its first event occurred.
    pub async fn payment_read(
        &self,
        payment_id: PaymentId,
    ) -> (PaymentState, Option<DateTime<Utc>>) {
        let events = self
            .store
            .read_stream(payment_id.as_uuid(), 1)
            .await
            .unwrap();
        let began = events.first().map(|event| event.occurred_at);
        let decoded: Vec<PaymentEvent> = events
            .into_iter()
            .map(|event| {
                PaymentEvent::from_stored(
                    &event.event_type,
                    event.schema_version as u32,
                    event.payload,
                )
                .unwrap()
            })
            .collect();
        (payment::fold(&decoded), began)
    }

    pub async fn settlement_state(&self, batch_id: SettlementBatchId) -> SettlementBatchState {
        self.settlement_read(batch_id).await.0
    }

    /// A batch folded from its events, and when its first event occurred.
    pub async fn settlement_read(
        &self,
        batch_id: SettlementBatchId,
    ) -> (SettlementBatchState, Option<DateTime<Utc>>) {
        let events = self.store.read_stream(batch_id.as_uuid(), 1).await.unwrap();
        let began = events.first().map(|event| event.occurred_at);
        let decoded: Vec<SettlementEvent> = events
            .into_iter()
            .map(|event| {
                SettlementEvent::from_stored(
                    &event.event_type,
                    event.schema_version as u32,
                    event.payload,
                )
                .unwrap()
            })
            .collect();
        (settlement::fold(&decoded), began)
    }

    /// Decides and appends one payment command; panics when the domain refuses it.
    pub async fn pay(
        &self,
        payment_id: PaymentId,
        command: PaymentCommand,
        occurred_at: DateTime<Utc>,
    ) -> Vec<RecordedEvent> {
        let (state, began) = self.payment_read(payment_id).await;
        let events = payment::decide(&state, &command)
            .unwrap_or_else(|error| panic!("{command:?} refused: {error}"));
        let request = AppendRequest {
            streams: vec![payment_append(
                payment_id,
                &state,
                &events,
                occurred_at,
                began,
            )],
            idempotency: None,
        };
        self.store
            .append(request)
            .await
            .unwrap()
            .into_result()
            .events
    }

    pub async fn run_state(&self, run_id: ReconciliationRunId) -> ReconciliationRunState {
        let events = self.store.read_stream(run_id.as_uuid(), 1).await.unwrap();
        let decoded: Vec<ReconciliationEvent> = events
            .into_iter()
            .map(|event| {
                ReconciliationEvent::from_stored(
                    &event.event_type,
                    event.schema_version as u32,
                    event.payload,
                )
                .unwrap()
            })
            .collect();
        reconciliation::fold(&decoded)
    }

    /// Decides and appends one command on a reconciliation run.
    pub async fn reconcile(
        &self,
        run_id: ReconciliationRunId,
        command: ReconciliationCommand,
        occurred_at: DateTime<Utc>,
    ) -> Vec<RecordedEvent> {
        let state = self.run_state(run_id).await;
        let events = reconciliation::decide(&state, &command)
            .unwrap_or_else(|error| panic!("{command:?} refused: {error}"));
        let request = AppendRequest {
            streams: vec![StreamAppend {
                stream_id: run_id.as_uuid(),
                stream_type: StreamType::ReconciliationRun,
                expected_version: ExpectedVersion::Exactly(state.version),
                events: events
                    .iter()
                    .map(|event| new_event(event, occurred_at))
                    .collect(),
                kept_state: None,
            }],
            idempotency: None,
        };
        self.store
            .append(request)
            .await
            .unwrap()
            .into_result()
            .events
    }

    /// Decides and appends one settlement command across the batch and its payments.
    pub async fn settle(
        &self,
        batch_id: SettlementBatchId,
        command: SettlementCommand,
        occurred_at: DateTime<Utc>,
    ) -> Vec<RecordedEvent> {
        let (state, batch_began) = self.settlement_read(batch_id).await;
        let mut payments = BTreeMap::new();
        let mut began = BTreeMap::new();
        for payment_id in settlement::payments_named(&command) {
            let (state, first) = self.payment_read(payment_id).await;
            payments.insert(payment_id, state);
            began.insert(payment_id, first);
        }
        let decision = settlement::decide(&state, &payments, &command)
            .unwrap_or_else(|error| panic!("{command:?} refused: {error}"));
        let mut streams = vec![StreamAppend {
            stream_id: batch_id.as_uuid(),
            stream_type: StreamType::SettlementBatch,
            expected_version: ExpectedVersion::Exactly(state.version),
            events: decision
                .batch_events
                .iter()
                .map(|event| new_event(event, occurred_at))
                .collect(),
            kept_state: Some(
                KeptState::after(
                    &state,
                    &decision.batch_events,
                    batch_began.unwrap_or(occurred_at),
                )
                .unwrap(),
            ),
        }];
        for (payment_id, events) in &decision.payment_events {
            let state = payments.get(payment_id).cloned().unwrap_or_default();
            let first = began.get(payment_id).copied().flatten();
            streams.push(payment_append(
                *payment_id,
                &state,
                events,
                occurred_at,
                first,
            ));
        }
        let request = AppendRequest {
            streams,
            idempotency: None,
        };
        self.store
            .append(request)
            .await
            .unwrap()
            .into_result()
            .events
    }
}

pub fn batch_item(
    payment_id: PaymentId,
    item: SettledItem,
    gross: PositiveMoney,
    fee: Money,
) -> BatchItem {
    BatchItem {
        payment_id,
        item,
        gross,
        fee,
    }
}

pub fn record_batch(
    batch_id: SettlementBatchId,
    merchant: &str,
    currency: Currency,
    items: Vec<BatchItem>,
    reserve: Option<Money>,
) -> SettlementCommand {
    SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id,
        merchant_id: MerchantId::parse(merchant).unwrap(),
        environment: Environment::Test,
        currency,
        items,
        reserve,
    })
}

pub fn payout(payout_id: &str, amount: PositiveMoney, update: PayoutUpdate) -> SettlementCommand {
    SettlementCommand::RecordPayout(RecordPayout {
        payout_id: PayoutId::parse(payout_id).unwrap(),
        amount,
        update,
    })
}

pub fn expected_arrival(day: u32) -> PayoutUpdate {
    PayoutUpdate::Initiated {
        expected_arrival_date: NaiveDate::from_ymd_opt(2026, 11, day),
    }
}

/// A small world with every lifecycle: automatic and manual captures, a partial capture and
/// partial refund, a decline, a void, a refund that fails, a lost and a won dispute, a
/// settlement batch with a reserve and a payout paid, and a JPY payment.
pub async fn every_lifecycle(ledger: &Ledger) -> World {
    let usd = Currency::USD;
    let world = World::default();
    let [auto, manual, declined, voided, disputed, won, yen] = world.payments;
    // 1. AUTOMATIC: authorized and captured at once, then refunded in part.
    ledger
        .pay(
            auto,
            initiate(
                "merchant_a",
                "order_1",
                "100.00",
                usd,
                CaptureMode::Automatic,
            ),
            at(1, 9),
        )
        .await;
    ledger.pay(auto, approve(None, at(8, 9)), at(1, 9)).await;
    ledger
        .pay(
            auto,
            refund("re_1", Some(positive("30.00", usd))),
            at(2, 10),
        )
        .await;
    ledger
        .pay(auto, refund_outcome("re_1", true), at(2, 11))
        .await;
    // 2. MANUAL: partial capture then final capture, a refund that fails.
    ledger
        .pay(
            manual,
            initiate("merchant_a", "order_2", "50.00", usd, CaptureMode::Manual),
            at(1, 10),
        )
        .await;
    ledger
        .pay(manual, approve(None, at(8, 10)), at(1, 10))
        .await;
    ledger
        .pay(
            manual,
            capture("ca_1", Some(positive("20.00", usd)), false),
            at(1, 12),
        )
        .await;
    ledger
        .pay(
            manual,
            capture("ca_2", Some(positive("30.00", usd)), true),
            at(1, 13),
        )
        .await;
    ledger
        .pay(
            manual,
            refund("re_2", Some(positive("5.00", usd))),
            at(3, 9),
        )
        .await;
    ledger
        .pay(manual, refund_outcome("re_2", false), at(3, 10))
        .await;
    // 3. Declined, on the same order as the next one.
    ledger
        .pay(
            declined,
            initiate("merchant_a", "order_3", "70.00", usd, CaptureMode::Manual),
            at(1, 11),
        )
        .await;
    ledger
        .pay(declined, decline("insufficient_funds"), at(1, 11))
        .await;
    // 4. Voided.
    ledger
        .pay(
            voided,
            initiate("merchant_a", "order_3", "70.00", usd, CaptureMode::Manual),
            at(1, 14),
        )
        .await;
    ledger
        .pay(voided, approve(None, at(8, 14)), at(1, 14))
        .await;
    ledger.pay(voided, void(), at(1, 15)).await;
    // 5. A dispute lost, with a fee.
    ledger
        .pay(
            disputed,
            initiate(
                "merchant_a",
                "order_4",
                "80.00",
                usd,
                CaptureMode::Automatic,
            ),
            at(1, 16),
        )
        .await;
    ledger
        .pay(disputed, approve(None, at(8, 16)), at(1, 16))
        .await;
    ledger
        .pay(
            disputed,
            open_dispute(
                "dp_1",
                positive("80.00", usd),
                money("15.00", usd),
                at(20, 0),
            ),
            at(4, 9),
        )
        .await;
    ledger
        .pay(disputed, submit_evidence("dp_1"), at(5, 9))
        .await;
    ledger
        .pay(disputed, resolve("dp_1", DisputeOutcome::Lost), at(9, 9))
        .await;
    // 6. A dispute won.
    ledger
        .pay(
            won,
            initiate(
                "merchant_b",
                "order_5",
                "40.00",
                usd,
                CaptureMode::Automatic,
            ),
            at(2, 9),
        )
        .await;
    ledger.pay(won, approve(None, at(9, 9)), at(2, 9)).await;
    ledger
        .pay(
            won,
            open_dispute(
                "dp_2",
                positive("10.00", usd),
                money("0.00", usd),
                at(21, 0),
            ),
            at(4, 9),
        )
        .await;
    ledger
        .pay(won, resolve("dp_2", DisputeOutcome::Won), at(10, 9))
        .await;
    // 7. A zero-decimal currency.
    ledger
        .pay(
            yen,
            initiate(
                "merchant_b",
                "order_6",
                "5000",
                Currency::JPY,
                CaptureMode::Automatic,
            ),
            at(2, 10),
        )
        .await;
    ledger.pay(yen, approve(None, at(9, 10)), at(2, 10)).await;
    // Settlement of merchant_a's captures and the succeeded refund, with a reserve; paid out.
    let items = vec![
        batch_item(
            auto,
            SettledItem::Capture(CaptureId::parse("automatic").unwrap()),
            positive("100.00", usd),
            money("3.20", usd),
        ),
        batch_item(
            manual,
            SettledItem::Capture(CaptureId::parse("ca_1").unwrap()),
            positive("20.00", usd),
            money("0.88", usd),
        ),
        batch_item(
            auto,
            SettledItem::Refund(RefundId::parse("re_1").unwrap()),
            positive("30.00", usd),
            money("0.00", usd),
        ),
    ];
    ledger
        .settle(
            world.batch,
            record_batch(
                world.batch,
                "merchant_a",
                usd,
                items,
                Some(money("10.00", usd)),
            ),
            at(3, 12),
        )
        .await;
    let net = positive("75.92", usd);
    ledger
        .settle(
            world.batch,
            payout("po_1", net, expected_arrival(5)),
            at(3, 13),
        )
        .await;
    ledger
        .settle(
            world.batch,
            payout("po_1", net, PayoutUpdate::Paid),
            at(6, 9),
        )
        .await;
    world
}

/// The ids of [`every_lifecycle`]'s streams.
pub struct World {
    pub payments: [PaymentId; 7],
    pub batch: SettlementBatchId,
}

impl Default for World {
    fn default() -> Self {
        World {
            payments: std::array::from_fn(|_| PaymentId::new_random()),
            batch: SettlementBatchId::new_random(),
        }
    }
}

/// Appends `count` more simple payments (initiated, authorized, captured automatically) for
/// tests that need a longer log.
pub async fn many_payments(ledger: &Ledger, count: usize) {
    let mut appends = Vec::new();
    for index in 0..count {
        let payment_id = PaymentId::new_random();
        let mut state = PaymentState::default();
        let mut events = Vec::new();
        let commands = [
            initiate(
                "merchant_c",
                &format!("order_m{index}"),
                "12.34",
                Currency::EUR,
                CaptureMode::Automatic,
            ),
            approve(None, at(20, 0)),
        ];
        for command in &commands {
            let decided = payment::decide(&state, command).unwrap();
            state = decided.iter().fold(state, payment::evolve);
            events.extend(decided);
        }
        appends.push(ledger.store.append(AppendRequest {
            streams: vec![payment_append(
                payment_id,
                &PaymentState::default(),
                &events,
                at(7, 0) + Duration::minutes(index as i64),
                None,
            )],
            idempotency: None,
        }));
    }
    for outcome in futures::future::join_all(appends).await {
        outcome.unwrap();
    }
}

/// The opening of a run of `environment` at `started_at`.
pub fn start_run(
    environment: Environment,
    file: &str,
    started_at: DateTime<Utc>,
) -> ReconciliationCommand {
    ReconciliationCommand::Start(StartRun {
        environment,
        source: ReconciliationSource::StripePayouts,
        file_name: Some(text(file)),
        file_sha256: format!("{:0>64}", file.len()),
        started_by: text("key_finance_1"),
        started_at,
        availability_days: 2,
    })
}

/// An exception about report line `line` of payout `payout`: the odd lines have the ledger's
/// side too, every line the report's.
pub fn line_exception(
    class: ExceptionClass,
    line: u64,
    payout: &str,
    payment_id: PaymentId,
) -> ReconciliationException {
    let usd = Currency::USD;
    ReconciliationException {
        exception_id: ReconciliationExceptionId::new_random(),
        class,
        detail: text(&format!("line {line} disagrees")),
        line_number: Some(line),
        payout_id: Some(PayoutId::parse(payout).unwrap()),
        payment_id: Some(payment_id),
        item: Some(SettledItem::Capture(
            CaptureId::parse(format!("ch_{line}")).unwrap(),
        )),
        report: Some(ReportSide {
            balance_transaction_id: Some(text(&format!("txn_{line}"))),
            reporting_category: Some(text("charge")),
            currency: Some(text("usd")),
            gross: Some(text("10.00")),
            fee: Some(text("0.59")),
            net: Some(text("9.41")),
            available_on: Some(text("2026-11-10")),
        }),
        ledger: (line % 2 == 1).then(|| LedgerSide {
            currency: usd,
            amount: money("9.00", usd),
            fee: Some(money("0.50", usd)),
            batch_id: None,
            recorded_at: Some(at(3, 9)),
        }),
    }
}

/// An exception with no line (a payout whose total disagrees).
pub fn payout_exception(payout: &str) -> ReconciliationException {
    ReconciliationException {
        exception_id: ReconciliationExceptionId::new_random(),
        class: ExceptionClass::PayoutTotalMismatch,
        detail: text("the payout's lines do not add up to its amount"),
        line_number: None,
        payout_id: Some(PayoutId::parse(payout).unwrap()),
        payment_id: None,
        item: None,
        report: None,
        ledger: None,
    }
}

pub fn payout_verdict(
    payout: &str,
    batch_id: SettlementBatchId,
    exceptions: u64,
    batch_recorded: bool,
) -> ReconciliationCommand {
    let usd = Currency::USD;
    ReconciliationCommand::RecordPayout(PayoutReconciled {
        payout_id: PayoutId::parse(payout).unwrap(),
        batch_id,
        currency: usd,
        line_count: 3,
        exception_count: exceptions,
        gross: money("30.00", usd),
        fees: money("1.77", usd),
        net: money("28.23", usd),
        ledger_amount: (!batch_recorded).then(|| money("28.23", usd)),
        outcome: if exceptions == 0 {
            PayoutOutcome::Proven
        } else {
            PayoutOutcome::Unproven
        },
        batch_recorded,
    })
}

pub fn resolve_exception(
    exception_id: ReconciliationExceptionId,
    reason: &str,
) -> ReconciliationCommand {
    ReconciliationCommand::ResolveException(ResolveException {
        exception_id,
        reason: text(reason),
        resolved_by: text("key_finance_1"),
        resolved_at: at(13, 9),
    })
}

/// A completed run of the test environment: 30 line exceptions on payout `po_bad` (in two
/// events: at most 25 each) and one on its total; `po_bad` unproven, `po_good` proven with its
/// batch recorded; then the first exception resolved.
pub async fn reconciliation_run(ledger: &Ledger) -> RunWorld {
    let run_id = ReconciliationRunId::new_random();
    let payment_id = PaymentId::new_random();
    ledger
        .reconcile(
            run_id,
            start_run(Environment::Test, "payouts.csv", at(12, 9)),
            at(12, 9),
        )
        .await;
    let classes = [
        ExceptionClass::MissingFromLedger,
        ExceptionClass::AmountMismatch,
        ExceptionClass::FeeMismatch,
    ];
    let mut exceptions: Vec<ReconciliationException> = (0..30)
        .map(|index| line_exception(classes[index % 3], index as u64 + 2, "po_bad", payment_id))
        .collect();
    exceptions.push(payout_exception("po_bad"));
    ledger
        .reconcile(
            run_id,
            ReconciliationCommand::RecordExceptions {
                exceptions: exceptions.clone(),
            },
            at(12, 9),
        )
        .await;
    let bad_batch = SettlementBatchId::new_random();
    let good_batch = SettlementBatchId::new_random();
    ledger
        .reconcile(
            run_id,
            payout_verdict("po_bad", bad_batch, 31, false),
            at(12, 9),
        )
        .await;
    ledger
        .reconcile(
            run_id,
            payout_verdict("po_good", good_batch, 0, true),
            at(12, 9),
        )
        .await;
    ledger
        .reconcile(
            run_id,
            ReconciliationCommand::Complete {
                lines: 36,
                matched_lines: 5,
                completed_at: at(12, 10),
            },
            at(12, 10),
        )
        .await;
    ledger
        .reconcile(
            run_id,
            resolve_exception(exceptions[0].exception_id, "webhook replayed by hand"),
            at(13, 9),
        )
        .await;
    RunWorld {
        run_id,
        payment_id,
        exceptions,
        bad_batch,
        good_batch,
    }
}

/// The ids of [`reconciliation_run`]'s run.
pub struct RunWorld {
    pub run_id: ReconciliationRunId,
    pub payment_id: PaymentId,
    pub exceptions: Vec<ReconciliationException>,
    pub bad_batch: SettlementBatchId,
    pub good_batch: SettlementBatchId,
}
