//! The invariants of domain.md as properties over random command sequences, valid and invalid
//! mixed. Each property runs at least 1,000 cases. Amount generators work in integer minor
//! units of a random currency, so failures shrink to small, readable amounts.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ledger_core::ids::*;
use ledger_core::journal::{self, Account, AccountKey, TrialBalance};
use ledger_core::kept_form;
use ledger_core::payment::invariants;
use ledger_core::payment::state::DisputeStatus;
use ledger_core::payment::*;
use ledger_core::reconciliation::{
    self, ExceptionClass, PayoutOutcome, PayoutReconciled, ReconciliationCommand,
    ReconciliationException, ReconciliationRunStarted, ReconciliationRunState,
    ReconciliationSource, ResolveException, RunStatus,
};
use ledger_core::settlement::{
    self, BatchItem, PayoutUpdate, RecordPayout, RecordSettlementBatch, SettlementBatchState,
    SettlementCommand,
};
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};
use proptest::prelude::*;
use rust_decimal::Decimal;

const CASES: u32 = 1000;

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn text(value: &str) -> ShortText {
    ShortText::parse(value).expect("valid text")
}

fn currencies() -> impl Strategy<Value = Currency> {
    prop_oneof![
        Just(Currency::USD),
        Just(Currency::JPY),
        Just(Currency::BHD),
        Just(Currency::EUR),
    ]
}

/// Mostly the payment's currency, sometimes another one, to exercise the one-currency rule.
fn amount_in(currency: Currency) -> impl Strategy<Value = PositiveMoney> {
    let chosen = prop_oneof![19 => Just(currency), 1 => currencies()];
    let minor = prop_oneof![3 => 1i64..=2_500, 1 => 1i64..=12_000];
    (chosen, minor).prop_map(|(currency, minor)| {
        PositiveMoney::new(Money::from_minor_units(minor, currency).expect("in range"))
            .expect("positive")
    })
}

fn capture_ids() -> impl Strategy<Value = CaptureId> {
    prop_oneof![Just("c0"), Just("c1"), Just("c2"), Just("automatic")]
        .prop_map(|id| CaptureId::parse(id).expect("valid"))
}

fn refund_ids() -> impl Strategy<Value = RefundId> {
    (0u8..2).prop_map(|n| RefundId::parse(format!("r{n}")).expect("valid"))
}

fn dispute_ids() -> impl Strategy<Value = DisputeId> {
    (0u8..3).prop_map(|n| DisputeId::parse(format!("d{n}")).expect("valid"))
}

fn initiate(currency: Currency) -> impl Strategy<Value = PaymentCommand> {
    (
        prop_oneof![4 => 2_000i64..=10_000, 1 => 1i64..=2_000],
        prop_oneof![Just(CaptureMode::Manual), Just(CaptureMode::Automatic)],
    )
        .prop_map(move |(minor, capture_mode)| {
            PaymentCommand::Initiate(InitiatePayment {
                merchant_id: MerchantId::parse("m1").expect("valid"),
                order_id: OrderId::parse("o1").expect("valid"),
                environment: Environment::Test,
                amount: PositiveMoney::new(
                    Money::from_minor_units(minor, currency).expect("in range"),
                )
                .expect("positive"),
                capture_mode,
                payment_method: None,
            })
        })
}

fn any_command(currency: Currency) -> impl Strategy<Value = PaymentCommand> {
    let batch = SettlementBatchId::from_uuid(uuid::Uuid::from_u128(7));
    let payment = PaymentId::from_uuid(uuid::Uuid::from_u128(1));
    prop_oneof![
        1 => initiate(currency),
        8 => (proptest::option::of(amount_in(currency)), proptest::option::of(0i64..100))
            .prop_map(|(authorized_amount, hours)| PaymentCommand::RecordAuthorization(
                RecordAuthorization::Approved {
                    authorized_amount,
                    authorization_code: None,
                    gateway_reference: None,
                    expires_at: hours.map(|hours| epoch() + Duration::hours(hours)),
                }
            )),
        1 => prop_oneof![Just("insufficient_funds"), Just("stolen_card"), Just("processing_error")]
            .prop_map(|code| PaymentCommand::RecordAuthorization(RecordAuthorization::Declined {
                decline_code: Some(text(code)),
                category: None,
                retry_may_help: None,
            })),
        6 => (capture_ids(), proptest::option::of(amount_in(currency)), any::<bool>())
            .prop_map(|(capture_id, amount, final_capture)| PaymentCommand::Capture(CapturePayment {
                capture_id, amount, final_capture,
            })),
        1 => (capture_ids(), amount_in(currency), any::<bool>())
            .prop_map(|(capture_id, amount, retryable)| PaymentCommand::RecordCaptureFailure(
                RecordCaptureFailure { capture_id, amount, reason: text("do_not_honor"), retryable }
            )),
        1 => Just(PaymentCommand::Void(VoidPayment { reason: None })),
        1 => (0i64..120).prop_map(|hours| PaymentCommand::Expire(ExpireAuthorization {
                now: epoch() + Duration::hours(hours),
            })),
        5 => (refund_ids(), proptest::option::of(amount_in(currency)))
            .prop_map(|(refund_id, amount)| PaymentCommand::Refund(RefundPayment {
                refund_id, amount, reason: None,
            })),
        5 => (refund_ids(), any::<bool>()).prop_map(|(refund_id, succeeded)| {
                PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
                    refund_id,
                    outcome: if succeeded {
                        RefundOutcome::Succeeded
                    } else {
                        RefundOutcome::Failed { failure_reason: None }
                    },
                })
            }),
        3 => (dispute_ids(), amount_in(currency), 0i64..2_000)
            .prop_map(move |(dispute_id, amount, fee)| PaymentCommand::OpenDispute(OpenDispute {
                dispute_id,
                amount,
                reason: text("fraudulent"),
                evidence_due_by: None,
                fee: Some(Money::from_minor_units(fee, currency).expect("in range")),
            })),
        1 => dispute_ids().prop_map(|dispute_id| PaymentCommand::SubmitDisputeEvidence(
                SubmitDisputeEvidence { dispute_id, evidence: serde_json::json!({"note": "receipt"}) }
            )),
        2 => (dispute_ids(), any::<bool>()).prop_map(|(dispute_id, won)| {
                PaymentCommand::ResolveDispute(ResolveDispute {
                    dispute_id,
                    outcome: if won { DisputeOutcome::Won } else { DisputeOutcome::Lost },
                })
            }),
        2 => prop_oneof![
                capture_ids().prop_map(SettledItem::Capture),
                refund_ids().prop_map(SettledItem::Refund),
                dispute_ids().prop_map(SettledItem::Dispute),
            ].prop_map(move |item| PaymentCommand::Settle(SettlePaymentItem {
                payment_id: payment, batch_id: batch, item,
            })),
    ]
}

/// A random lifecycle: usually starts with initiate, then up to 40 commands of any kind.
fn lifecycle() -> impl Strategy<Value = (Currency, Vec<PaymentCommand>)> {
    currencies().prop_flat_map(|currency| {
        (
            Just(currency),
            initiate(currency),
            proptest::collection::vec(any_command(currency), 0..40),
            prop_oneof![9 => Just(true), 1 => Just(false)],
        )
            .prop_map(|(currency, first, rest, starts_with_initiate)| {
                let mut commands = Vec::with_capacity(rest.len() + 1);
                if starts_with_initiate {
                    commands.push(first);
                }
                commands.extend(rest);
                (currency, commands)
            })
    })
}

/// One accepted command: the state it was decided on and the events it recorded.
struct Step {
    command: PaymentCommand,
    before: PaymentState,
    outcome: Result<Vec<PaymentEvent>, ledger_core::DomainError>,
}

fn run(commands: &[PaymentCommand]) -> (PaymentState, Vec<PaymentEvent>, Vec<Step>) {
    let mut state = PaymentState::default();
    let mut log = Vec::new();
    let mut steps = Vec::new();
    for command in commands {
        let outcome = decide(&state, command);
        let before = state.clone();
        if let Ok(events) = &outcome {
            state = events.iter().fold(state, evolve);
            log.extend(events.iter().cloned());
        }
        steps.push(Step {
            command: command.clone(),
            before,
            outcome,
        });
    }
    (state, log, steps)
}

fn dispute_command(command: &PaymentCommand) -> bool {
    matches!(
        command,
        PaymentCommand::OpenDispute(_)
            | PaymentCommand::SubmitDisputeEvidence(_)
            | PaymentCommand::ResolveDispute(_)
    )
}

fn amount_of(money: Money) -> Decimal {
    money.amount()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Invariant 1: folding the log from nothing always yields the same state, and the state a
    /// command was decided on plus its new events equals the fold of all events so far.
    #[test]
    fn folding_is_deterministic_and_incremental((_, commands) in lifecycle()) {
        let (state, log, steps) = run(&commands);
        prop_assert_eq!(&fold(&log), &state);
        prop_assert_eq!(&fold(&log), &fold(&log));
        prop_assert_eq!(state.version, log.len() as u64);
        let mut replayed = Vec::new();
        for step in &steps {
            if let Ok(events) = &step.outcome {
                prop_assert_eq!(&fold(&replayed), &step.before);
                replayed.extend(events.iter().cloned());
                let incremental = events.iter().fold(step.before.clone(), evolve);
                prop_assert_eq!(&incremental, &fold(&replayed));
            }
        }
    }

    /// The log keeps each stream's latest fold in its kept form (`ledger_core::kept_form`),
    /// and a read trusts that copy instead of folding: after every step, the state reads back
    /// from its kept bytes as exactly the fold it was written from.
    #[test]
    fn every_payment_state_reads_back_from_its_kept_form((_, commands) in lifecycle()) {
        let (_, _, steps) = run(&commands);
        for step in &steps {
            let kept = kept_form::encode(&step.before).expect("a state encodes");
            let read: PaymentState = kept_form::decode(&kept).expect("a kept state reads back");
            prop_assert_eq!(&read, &step.before);
        }
    }

    /// Invariant 2: captured ≤ authorized ≤ requested; refunds and withholding disputes ≤
    /// captured; nothing negative; one currency; unique item ids. Checked after every step.
    #[test]
    fn amounts_stay_within_their_bounds((currency, commands) in lifecycle()) {
        let (_, _, steps) = run(&commands);
        let mut state = PaymentState::default();
        for step in &steps {
            if let Ok(events) = &step.outcome {
                state = events.iter().fold(state, evolve);
            }
            prop_assert!(invariants::check(&state).is_ok(), "{:?} after {:?}", invariants::check(&state), step.command);
            if let Some(payment) = &state.payment {
                prop_assert_eq!(payment.currency(), currency);
                let captured = amount_of(payment.captured_amount());
                prop_assert!(captured <= amount_of(payment.authorized_amount()));
                prop_assert!(amount_of(payment.authorized_amount()) <= amount_of(payment.requested_amount));
                let withheld = amount_of(payment.refunded_amount())
                    + amount_of(payment.refund_pending_amount())
                    + amount_of(payment.disputed_amount());
                prop_assert!(withheld <= captured);
                prop_assert!(!payment.refundable_amount().is_negative());
            }
        }
    }

    /// Invariant 3: a refused command records nothing and decide is a pure function: asked
    /// twice, it answers the same.
    #[test]
    fn refusals_record_nothing_and_decisions_repeat((_, commands) in lifecycle()) {
        let (_, _, steps) = run(&commands);
        for step in &steps {
            let again = decide(&step.before, &step.command);
            prop_assert_eq!(&again, &step.outcome);
            if let Ok(events) = &step.outcome {
                prop_assert!(!events.is_empty(), "accepted {:?} recorded nothing", step.command);
            }
        }
    }

    /// Invariant 4: every journal entry balances, the trial balance is zero, and balances from
    /// the journal equal those derived from the payment's state.
    #[test]
    fn the_journal_balances_and_agrees_with_the_state((currency, commands) in lifecycle()) {
        let (state, log, _) = run(&commands);
        let mut books = TrialBalance::default();
        let mut folded = PaymentState::default();
        for event in &log {
            if let Some(entry) = journal::payment_entry(&folded, event).expect("in range") {
                prop_assert!(entry.is_balanced(), "{:?}", entry);
                books.post(&entry);
            }
            folded = evolve(folded, event);
        }
        prop_assert!(books.is_balanced());
        let Some(payment) = &state.payment else { return Ok(()); };
        let balance = |account| books.balance(&AccountKey {
            environment: payment.environment,
            merchant_id: payment.merchant_id.clone(),
            currency,
            account,
        });
        let open: Decimal = payment.disputes.iter()
            .filter(|dispute| matches!(dispute.status, DisputeStatus::NeedsResponse | DisputeStatus::UnderReview))
            .map(|dispute| dispute.amount.amount()).sum();
        let lost: Decimal = payment.disputes.iter()
            .filter(|dispute| dispute.status == DisputeStatus::Lost)
            .map(|dispute| dispute.amount.amount()).sum();
        let fees: Decimal = payment.disputes.iter().map(|dispute| dispute.fee.amount()).sum();
        let all_disputes: Decimal = payment.disputes.iter().map(|dispute| dispute.amount.amount()).sum();
        let captured = payment.captured_amount().amount();
        let refunded = payment.refunded_amount().amount();
        prop_assert_eq!(balance(Account::Sales), -captured);
        prop_assert_eq!(balance(Account::Refunds), refunded);
        prop_assert_eq!(balance(Account::DisputesOpen), open);
        prop_assert_eq!(balance(Account::ChargebackLosses), lost);
        prop_assert_eq!(balance(Account::DisputeFees), fees);
        prop_assert_eq!(
            balance(Account::GatewayPending),
            captured - refunded - all_disputes - fees + (all_disputes - open - lost)
        );
    }

    /// Invariant 5: declined, voided and expired payments accept nothing; a fully refunded one
    /// accepts only disputes (and the settlement of what already moved).
    #[test]
    fn nothing_is_accepted_after_a_final_state((_, commands) in lifecycle()) {
        let (_, _, steps) = run(&commands);
        for step in &steps {
            let Some(status) = step.before.status() else { continue; };
            if status.is_final() {
                prop_assert!(step.outcome.is_err(), "{:?} accepted {:?}", status, step.command);
            }
            if status == PaymentStatus::Refunded && step.outcome.is_ok() {
                let allowed = dispute_command(&step.command)
                    || matches!(step.command, PaymentCommand::Settle(_));
                prop_assert!(allowed, "refunded payment accepted {:?}", step.command);
            }
        }
    }

    /// Every recorded event survives its stored JSON unchanged.
    #[test]
    fn recorded_events_round_trip_through_their_stored_json((_, commands) in lifecycle()) {
        let (_, log, _) = run(&commands);
        for event in &log {
            let payload = event.to_payload().expect("encodes");
            let text = serde_json::to_string(&payload).expect("serializes");
            let reread: serde_json::Value = serde_json::from_str(&text).expect("parses");
            let decoded = PaymentEvent::from_stored(event.event_type(), event.schema_version(), reread)
                .expect("decodes");
            prop_assert_eq!(&decoded, event);
        }
    }

    /// Settlement closes the books: after settling every settleable item of several payments
    /// and paying out the net, the trial balance is zero, nothing settled is left pending and
    /// the bank holds exactly the net.
    #[test]
    fn settlement_and_payout_keep_the_books_balanced(
        lifecycles in proptest::collection::vec(
            proptest::collection::vec(any_command(Currency::USD), 0..30), 1..4),
        fee_basis_points in 0i64..500,
        reserve_minor in 0i64..500,
    ) {
        let mut books = TrialBalance::default();
        let mut payments = BTreeMap::new();
        for (index, rest) in lifecycles.iter().enumerate() {
            let mut commands = vec![PaymentCommand::Initiate(InitiatePayment {
                merchant_id: MerchantId::parse("m1").expect("valid"),
                order_id: OrderId::parse(format!("o{index}")).expect("valid"),
                environment: Environment::Test,
                amount: PositiveMoney::parse("100.00", Currency::USD).expect("valid"),
                capture_mode: CaptureMode::Manual,
                payment_method: None,
            })];
            // Settlement items come from the batch, not from the payment's own commands.
            commands.extend(rest.iter().filter(|c| !matches!(c, PaymentCommand::Settle(_))).cloned());
            let (state, log, _) = run(&commands);
            let mut folded = PaymentState::default();
            for event in &log {
                if let Some(entry) = journal::payment_entry(&folded, event).expect("in range") { books.post(&entry); }
                folded = evolve(folded, event);
            }
            payments.insert(PaymentId::from_uuid(uuid::Uuid::from_u128(index as u128 + 1)), state);
        }
        let usd = |minor: i64| Money::from_minor_units(minor, Currency::USD).expect("in range");
        let mut items = Vec::new();
        let mut reinstated = Decimal::ZERO;
        for (payment_id, state) in &payments {
            let Some(payment) = &state.payment else { continue; };
            let fee_of = |gross: Money| usd(gross.to_minor_units() * fee_basis_points / 10_000);
            for capture in &payment.captures {
                items.push(BatchItem { payment_id: *payment_id, item: SettledItem::Capture(capture.capture_id.clone()),
                    gross: PositiveMoney::new(capture.amount).expect("positive"), fee: fee_of(capture.amount) });
            }
            for refund in payment.refunds.iter().filter(|refund| refund.status == ledger_core::payment::state::RefundStatus::Succeeded) {
                items.push(BatchItem { payment_id: *payment_id, item: SettledItem::Refund(refund.refund_id.clone()),
                    gross: PositiveMoney::new(refund.amount).expect("positive"), fee: usd(0) });
            }
            for dispute in &payment.disputes {
                items.push(BatchItem { payment_id: *payment_id, item: SettledItem::Dispute(dispute.dispute_id.clone()),
                    gross: PositiveMoney::new(dispute.amount).expect("positive"), fee: dispute.fee });
                if dispute.status == DisputeStatus::Won { reinstated += dispute.amount.amount(); }
            }
        }
        if items.is_empty() { return Ok(()); }
        let batch_id = SettlementBatchId::from_uuid(uuid::Uuid::from_u128(42));
        let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
            batch_id, merchant_id: MerchantId::parse("m1").expect("valid"), environment: Environment::Test,
            currency: Currency::USD, items, reserve: Some(usd(reserve_minor)),
        });
        let decision = settlement::decide(&SettlementBatchState::default(), &payments, &command)
            .expect("a batch of every settleable item is accepted");
        let mut batch = SettlementBatchState::default();
        for event in &decision.batch_events {
            if let Some(entry) = journal::settlement_entry(&batch, event).expect("in range") {
                prop_assert!(entry.is_balanced());
                books.post(&entry);
            }
            batch = settlement::evolve(batch, event);
        }
        for (payment_id, events) in &decision.payment_events {
            let state = payments.remove(payment_id).unwrap_or_default();
            let state = events.iter().fold(state, evolve);
            prop_assert!(invariants::check(&state).is_ok());
            payments.insert(*payment_id, state);
        }
        let net = batch.batch.as_ref().expect("recorded").net;
        if net.is_positive() {
            let payout = SettlementCommand::RecordPayout(RecordPayout {
                payout_id: PayoutId::parse("po_1").expect("valid"),
                amount: PositiveMoney::new(net).expect("positive"),
                update: PayoutUpdate::Paid,
            });
            let decision = settlement::decide(&batch, &payments, &payout).expect("payout accepted");
            for event in &decision.batch_events {
                if let Some(entry) = journal::settlement_entry(&batch, event).expect("in range") { books.post(&entry); }
                batch = settlement::evolve(batch, event);
            }
        }
        prop_assert!(books.is_balanced(), "{:?}", books.totals_by_currency());
        let balance = |account| books.balance(&AccountKey {
            environment: Environment::Test,
            merchant_id: MerchantId::parse("m1").expect("valid"),
            currency: Currency::USD,
            account,
        });
        prop_assert_eq!(balance(Account::GatewayPending), reinstated);
        if net.is_positive() {
            prop_assert_eq!(balance(Account::Bank), net.amount());
            prop_assert_eq!(balance(Account::GatewaySettled), Decimal::ZERO);
        } else {
            prop_assert_eq!(balance(Account::GatewaySettled), net.amount());
        }
    }
}

/// A recorded batch of one captured payment, netting 96.80 USD.
fn recorded_batch() -> SettlementBatchState {
    let payment_id = PaymentId::from_uuid(uuid::Uuid::from_u128(1));
    let (payment, _, _) = run(&[
        PaymentCommand::Initiate(InitiatePayment {
            merchant_id: MerchantId::parse("m1").expect("valid"),
            order_id: OrderId::parse("o1").expect("valid"),
            environment: Environment::Test,
            amount: PositiveMoney::parse("100.00", Currency::USD).expect("valid"),
            capture_mode: CaptureMode::Automatic,
            payment_method: None,
        }),
        PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
            authorized_amount: None,
            authorization_code: None,
            gateway_reference: None,
            expires_at: None,
        }),
    ]);
    let command = SettlementCommand::RecordBatch(RecordSettlementBatch {
        batch_id: SettlementBatchId::from_uuid(uuid::Uuid::from_u128(42)),
        merchant_id: MerchantId::parse("m1").expect("valid"),
        environment: Environment::Test,
        currency: Currency::USD,
        items: vec![BatchItem {
            payment_id,
            item: SettledItem::Capture(
                CaptureId::parse(decide::AUTOMATIC_CAPTURE_ID).expect("valid"),
            ),
            gross: PositiveMoney::parse("100.00", Currency::USD).expect("valid"),
            fee: Money::parse("3.20", Currency::USD).expect("valid"),
        }],
        reserve: None,
    });
    let payments = BTreeMap::from([(payment_id, payment)]);
    let decision = settlement::decide(&SettlementBatchState::default(), &payments, &command)
        .expect("a batch of the payment's capture is accepted");
    decision
        .batch_events
        .iter()
        .fold(SettlementBatchState::default(), settlement::evolve)
}

fn payout_command() -> impl Strategy<Value = SettlementCommand> {
    let update = prop_oneof![
        Just(PayoutUpdate::Initiated {
            expected_arrival_date: None
        }),
        Just(PayoutUpdate::Paid),
        Just(PayoutUpdate::Failed {
            failure_reason: None
        }),
    ];
    (
        0u8..3,
        prop_oneof![Just("96.80"), Just("96.79"), Just("100.00")],
        update,
    )
        .prop_map(|(payout, amount, update)| {
            SettlementCommand::RecordPayout(RecordPayout {
                payout_id: PayoutId::parse(format!("po_{payout}")).expect("valid"),
                amount: PositiveMoney::parse(amount, Currency::USD).expect("valid"),
                update,
            })
        })
}

fn exception_of(id: u8) -> ReconciliationException {
    ReconciliationException {
        exception_id: ReconciliationExceptionId::from_uuid(uuid::Uuid::from_u128(u128::from(id))),
        class: ExceptionClass::MissingFromLedger,
        detail: text("the ledger has no capture"),
        line_number: Some(u64::from(id)),
        payout_id: None,
        payment_id: None,
        item: None,
        report: None,
        ledger: None,
    }
}

fn reconciliation_command() -> impl Strategy<Value = ReconciliationCommand> {
    let usd = |amount: &str| Money::parse(amount, Currency::USD).expect("valid");
    let start = ReconciliationCommand::Start(ReconciliationRunStarted {
        environment: Environment::Test,
        source: ReconciliationSource::StripePayouts,
        file_name: None,
        file_sha256: "00".repeat(32),
        started_by: text("cli:finance"),
        started_at: epoch(),
        availability_days: 7,
    });
    let record = proptest::collection::vec(0u8..60, 0..40).prop_map(|ids| {
        ReconciliationCommand::RecordExceptions {
            exceptions: ids.into_iter().map(exception_of).collect(),
        }
    });
    let payout =
        (0u8..4, any::<bool>(), any::<bool>()).prop_map(move |(payout, proven, batch_recorded)| {
            ReconciliationCommand::RecordPayout(PayoutReconciled {
                payout_id: PayoutId::parse(format!("po_{payout}")).expect("valid"),
                batch_id: SettlementBatchId::from_uuid(uuid::Uuid::from_u128(u128::from(payout))),
                currency: Currency::USD,
                line_count: 2,
                exception_count: u64::from(!proven),
                gross: usd("100.00"),
                fees: usd("3.20"),
                net: usd("96.80"),
                ledger_amount: None,
                outcome: if proven {
                    PayoutOutcome::Proven
                } else {
                    PayoutOutcome::Unproven
                },
                batch_recorded,
            })
        });
    let complete = (0u64..100).prop_map(|lines| ReconciliationCommand::Complete {
        lines,
        matched_lines: lines / 2,
        completed_at: epoch(),
    });
    let resolve = (0u8..60).prop_map(|id| {
        ReconciliationCommand::ResolveException(ResolveException {
            exception_id: ReconciliationExceptionId::from_uuid(uuid::Uuid::from_u128(u128::from(
                id,
            ))),
            reason: text("refunded by hand"),
            resolved_by: text("finance"),
            resolved_at: epoch(),
        })
    });
    prop_oneof![1 => Just(start), 4 => record, 3 => payout, 1 => complete, 3 => resolve]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Settlement invariants under any payout sequence: `decide` asserts them on every
    /// accepted command (debug builds), and the folded batch keeps them; a refusal records
    /// nothing and folding stays deterministic.
    #[test]
    fn payout_sequences_keep_every_batch_invariant(
        commands in proptest::collection::vec(payout_command(), 0..12)
    ) {
        let mut batch = recorded_batch();
        let mut log = Vec::new();
        for command in &commands {
            if let Ok(decision) = settlement::decide(&batch, &BTreeMap::new(), command) {
                prop_assert!(decision.payment_events.is_empty());
                for event in &decision.batch_events {
                    batch = settlement::evolve(batch, event);
                    log.push(event.clone());
                }
            }
            prop_assert!(settlement::invariants::check(&batch).is_ok(), "{:?}", settlement::invariants::check(&batch));
        }
        let refolded = log.iter().fold(recorded_batch(), settlement::evolve);
        prop_assert_eq!(&refolded, &batch);
        let kept = kept_form::encode(&batch).expect("a batch encodes");
        let read: SettlementBatchState = kept_form::decode(&kept).expect("a kept batch reads back");
        prop_assert_eq!(read, batch);
    }

    /// Reconciliation invariants under any command sequence: `decide` asserts them on every
    /// accepted command (debug builds), and the folded run keeps them; a completed run
    /// accepts resolutions only.
    #[test]
    fn reconciliation_runs_keep_every_invariant(
        commands in proptest::collection::vec(reconciliation_command(), 0..20)
    ) {
        let mut state = ReconciliationRunState::default();
        let mut log = Vec::new();
        for command in &commands {
            let completed = state.run.as_ref().is_some_and(|run| run.status == RunStatus::Completed);
            if let Ok(events) = reconciliation::decide(&state, command) {
                if completed {
                    let resolution = matches!(command, ReconciliationCommand::ResolveException(_));
                    prop_assert!(resolution, "{:?} accepted after completion", command);
                }
                for event in &events {
                    state = reconciliation::evolve(state, event);
                    log.push(event.clone());
                }
            }
            prop_assert!(reconciliation::invariants::check(&state).is_ok(), "{:?}", reconciliation::invariants::check(&state));
        }
        let kept = kept_form::encode(&state).expect("a run encodes");
        let read: ReconciliationRunState = kept_form::decode(&kept).expect("a kept run reads back");
        prop_assert_eq!(&read, &state);
        prop_assert_eq!(reconciliation::fold(&log), state);
    }
}
