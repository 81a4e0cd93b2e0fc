//! The stored JSON of every event type is a contract with the log: these tests pin it to
//! `tests/golden/events.json`, so a change of shape fails here until it gets a new schema
//! version and an upcaster. Regenerate on purpose with `UPDATE_GOLDEN=1 cargo test`.

mod support;

use chrono::NaiveDate;
use ledger_core::aggregate::Aggregate;
use ledger_core::codec::CodecError;
use ledger_core::ids::*;
use ledger_core::payment::*;
use ledger_core::reconciliation::*;
use ledger_core::settlement::*;
use ledger_core::Currency;
use ledger_core::{reconciliation, settlement};
use serde_json::{json, Value};
use support::*;

fn payment_id() -> PaymentId {
    PaymentId::parse("6f1c2b1e-3a44-4d8b-9a55-1f0e9c7b2d10").expect("uuid")
}

fn batch_id() -> SettlementBatchId {
    SettlementBatchId::parse("0b7a3c55-91d2-4e0f-8c3b-5a6d7e8f9a01").expect("uuid")
}

fn payout_id() -> PayoutId {
    PayoutId::parse("po_1OaB2cD3eF4gH5iJ").expect("payout id")
}

fn payment_examples() -> Vec<PaymentEvent> {
    vec![
        PaymentEvent::PaymentInitiated(PaymentInitiated {
            merchant_id: merchant(),
            order_id: OrderId::parse("order_1001").expect("order"),
            environment: Environment::Live,
            amount: usd("125.50"),
            capture_mode: CaptureMode::Manual,
            payment_method: Some(text("card")),
        }),
        PaymentEvent::PaymentAuthorized(PaymentAuthorized {
            authorized_amount: usd("125.50"),
            authorization_code: Some(text("A1B2C3")),
            gateway_reference: Some(text("pi_3Mtw9kLkdIwHu7ix0dUjBz3f")),
            expires_at: Some(at(12)),
        }),
        PaymentEvent::PaymentDeclined(PaymentDeclined {
            decline_code: Some(text("insufficient_funds")),
            category: DeclineCategory::SoftDecline,
            retry_may_help: true,
        }),
        PaymentEvent::PaymentCaptured(PaymentCaptured {
            capture_id: capture_id("ch_3Mtw9kLkdIwHu7ix0snN0B15"),
            amount: usd("100.00"),
            final_capture: false,
        }),
        PaymentEvent::CaptureFailed(CaptureFailed {
            capture_id: capture_id("cap_2"),
            amount: usd("25.50"),
            reason: text("authorization_expired"),
            retryable: false,
        }),
        PaymentEvent::AuthorizationVoided(AuthorizationVoided {
            reason: Some(text("requested_by_customer")),
            released_amount: usd("25.50"),
        }),
        PaymentEvent::AuthorizationExpired(AuthorizationExpired {
            released_amount: usd("25.50"),
        }),
        PaymentEvent::RefundRequested(RefundRequested {
            refund_id: refund_id("re_3Mtw9kLkdIwHu7ix0J1kq9nR"),
            amount: usd("20.00"),
            reason: Some(text("requested_by_customer")),
        }),
        PaymentEvent::RefundSucceeded(RefundSucceeded {
            refund_id: refund_id("re_3Mtw9kLkdIwHu7ix0J1kq9nR"),
            amount: usd("20.00"),
        }),
        PaymentEvent::RefundFailed(RefundFailed {
            refund_id: refund_id("re_2"),
            amount: usd("5.00"),
            reason: Some(text("expired_or_canceled_card")),
        }),
        PaymentEvent::DisputeOpened(DisputeOpened {
            dispute_id: dispute_id("dp_1Mtw9kLkdIwHu7ixAbCdEf"),
            amount: usd("80.00"),
            reason: text("fraudulent"),
            evidence_due_by: Some(at(20)),
            fee: usd("15.00"),
        }),
        PaymentEvent::DisputeEvidenceSubmitted(DisputeEvidenceSubmitted {
            dispute_id: dispute_id("dp_1Mtw9kLkdIwHu7ixAbCdEf"),
            evidence: json!({"customer_email_address": "jenny@example.com", "shipping_tracking_number": "1Z999AA10123456784"}),
        }),
        PaymentEvent::DisputeWon(DisputeWon {
            dispute_id: dispute_id("dp_1Mtw9kLkdIwHu7ixAbCdEf"),
            amount: usd("80.00"),
        }),
        PaymentEvent::DisputeLost(DisputeLost {
            dispute_id: dispute_id("dp_2"),
            amount: usd("10.00"),
        }),
        PaymentEvent::CaptureSettled(CaptureSettled {
            capture_id: capture_id("ch_3Mtw9kLkdIwHu7ix0snN0B15"),
            batch_id: batch_id(),
        }),
        PaymentEvent::RefundSettled(RefundSettled {
            refund_id: refund_id("re_3Mtw9kLkdIwHu7ix0J1kq9nR"),
            batch_id: batch_id(),
        }),
        PaymentEvent::DisputeSettled(DisputeSettled {
            dispute_id: dispute_id("dp_2"),
            batch_id: batch_id(),
        }),
    ]
}

fn settlement_examples() -> Vec<SettlementEvent> {
    let jpy = |amount: &str| ledger_core::Money::parse(amount, Currency::JPY).expect("jpy");
    vec![
        SettlementEvent::SettlementBatchRecorded(SettlementBatchRecorded {
            merchant_id: merchant(),
            environment: Environment::Live,
            currency: Currency::JPY,
            item_count: 2,
            items: Vec::new(),
            gross: jpy("4000"),
            fees: jpy("180"),
            reserve: jpy("100"),
            net: jpy("3720"),
        }),
        SettlementEvent::SettlementItemsAdded(SettlementItemsAdded {
            items: vec![
                SettlementItem {
                    payment_id: payment_id(),
                    item: SettledItem::Capture(capture_id("ch_1")),
                    gross: jpy("5000"),
                    fee: jpy("180"),
                },
                SettlementItem {
                    payment_id: payment_id(),
                    item: SettledItem::Refund(refund_id("re_1")),
                    gross: jpy("1000"),
                    fee: jpy("0"),
                },
            ],
        }),
        SettlementEvent::PayoutInitiated(PayoutInitiated {
            payout_id: payout_id(),
            amount: jpy("3720"),
            expected_arrival_date: NaiveDate::from_ymd_opt(2026, 11, 30),
        }),
        SettlementEvent::PayoutPaid(PayoutPaid {
            payout_id: payout_id(),
            amount: jpy("3720"),
        }),
        SettlementEvent::PayoutFailed(PayoutFailed {
            payout_id: payout_id(),
            amount: jpy("3720"),
            reason: Some(text("account_closed")),
        }),
    ]
}

fn reconciliation_examples() -> Vec<ReconciliationEvent> {
    let exception_id =
        ReconciliationExceptionId::parse("5d0c8f4e-2b1a-4c3d-9e8f-7a6b5c4d3e2f").expect("uuid");
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-26T09:30:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    vec![
        ReconciliationEvent::ReconciliationRunStarted(ReconciliationRunStarted {
            environment: Environment::Live,
            source: ReconciliationSource::StripePayouts,
            file_name: Some(text("payouts-2026-11.csv")),
            file_sha256: "ab".repeat(32),
            started_by: text("key:lk_live_3f2a"),
            started_at: at,
            availability_days: 7,
        }),
        ReconciliationEvent::ReconciliationExceptionsFound(ReconciliationExceptionsFound {
            exceptions: vec![ReconciliationException {
                exception_id,
                class: ExceptionClass::AmountMismatch,
                detail: text(
                    "the report's gross is 25.00 USD, the ledger recorded a capture of 20.00 USD",
                ),
                line_number: Some(42),
                payout_id: Some(payout_id()),
                payment_id: Some(payment_id()),
                item: Some(SettledItem::Capture(
                    CaptureId::parse("ch_3MtwBwLkdIwHu7ix0a1b2c3d").expect("id"),
                )),
                report: Some(ReportSide {
                    balance_transaction_id: Some(text("txn_3MtwBwLkdIwHu7ix0e4f5g6h")),
                    reporting_category: Some(text("charge")),
                    currency: Some(text("usd")),
                    gross: Some(text("25.00")),
                    fee: Some(text("1.03")),
                    net: Some(text("23.97")),
                    available_on: Some(text("2026-11-20 00:00:00")),
                }),
                ledger: Some(LedgerSide {
                    currency: Currency::parse("USD").expect("usd"),
                    amount: usd("20.00"),
                    fee: None,
                    batch_id: None,
                    recorded_at: Some(at),
                }),
            }],
        }),
        ReconciliationEvent::PayoutReconciled(PayoutReconciled {
            payout_id: payout_id(),
            batch_id: batch_id(),
            currency: Currency::parse("USD").expect("usd"),
            line_count: 2,
            exception_count: 0,
            gross: usd("80.00"),
            fees: usd("2.62"),
            net: usd("77.38"),
            ledger_amount: Some(usd("77.38")),
            outcome: PayoutOutcome::Proven,
            batch_recorded: true,
        }),
        ReconciliationEvent::ReconciliationRunCompleted(ReconciliationRunCompleted {
            summary: RunSummary {
                lines: 3,
                matched_lines: 2,
                exceptions: 1,
                payouts_proven: 1,
                payouts_unproven: 0,
                batches_recorded: 1,
            },
            completed_at: at,
        }),
        ReconciliationEvent::ReconciliationExceptionResolved(ReconciliationExceptionResolved {
            exception_id,
            reason: text("partial capture corrected by the gateway on 2026-11-21"),
            resolved_by: text("key:lk_live_9c1d"),
            resolved_at: at,
        }),
    ]
}

fn stored(event_type: &str, schema_version: u32, payload: Value) -> Value {
    json!({"event_type": event_type, "schema_version": schema_version, "payload": payload})
}

fn current_shapes() -> Value {
    let payments = payment_examples().into_iter().map(|event| {
        stored(
            event.event_type(),
            event.schema_version(),
            event.to_payload().expect("encodes"),
        )
    });
    let settlements = settlement_examples().into_iter().map(|event| {
        stored(
            event.event_type(),
            event.schema_version(),
            event.to_payload().expect("encodes"),
        )
    });
    let runs = reconciliation_examples().into_iter().map(|event| {
        stored(
            event.event_type(),
            event.schema_version(),
            event.to_payload().expect("encodes"),
        )
    });
    Value::Array(payments.chain(settlements).chain(runs).collect())
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events.json");

#[test]
fn stored_shapes_match_the_golden_file() {
    let current = current_shapes();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&current).expect("pretty");
        std::fs::write(GOLDEN, text + "\n").expect("write golden file");
    }
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN).expect("golden file exists"))
            .expect("golden file is JSON");
    assert_eq!(
        current, golden,
        "event JSON changed: bump the schema version and add an upcaster, then regenerate"
    );
}

#[test]
fn every_event_type_has_a_golden_example() {
    let golden: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN).expect("golden file exists"))
            .expect("golden file is JSON");
    let covered: Vec<(String, u64)> = golden
        .iter()
        .map(|entry| {
            (
                entry["event_type"].as_str().expect("type").to_owned(),
                entry["schema_version"].as_u64().expect("version"),
            )
        })
        .collect();
    for (event_type, version) in PaymentEvent::EVENT_TYPES
        .iter()
        .chain(SettlementEvent::EVENT_TYPES)
        .chain(ReconciliationEvent::EVENT_TYPES)
    {
        assert!(
            covered.contains(&(event_type.to_string(), u64::from(*version))),
            "{event_type} v{version} has no golden example"
        );
    }
}

#[test]
fn golden_events_read_back_to_the_same_events() {
    for event in payment_examples() {
        let payload = event.to_payload().expect("encodes");
        let decoded =
            PaymentEvent::from_stored(event.event_type(), event.schema_version(), payload)
                .expect("decodes");
        assert_eq!(decoded, event);
    }
    for event in settlement_examples() {
        let payload = event.to_payload().expect("encodes");
        let decoded =
            SettlementEvent::from_stored(event.event_type(), event.schema_version(), payload)
                .expect("decodes");
        assert_eq!(decoded, event);
    }
    for event in reconciliation_examples() {
        let payload = event.to_payload().expect("encodes");
        let decoded =
            ReconciliationEvent::from_stored(event.event_type(), event.schema_version(), payload)
                .expect("decodes");
        assert_eq!(decoded, event);
    }
}

#[test]
fn a_version_1_decline_is_upcast_by_classifying_its_code() {
    let v1 = json!({"decline_code": "stolen_card"});
    let event = PaymentEvent::from_stored("PaymentDeclined", 1, v1).expect("upcasts");
    assert_eq!(
        event,
        PaymentEvent::PaymentDeclined(PaymentDeclined {
            decline_code: Some(text("stolen_card")),
            category: DeclineCategory::HardDecline,
            retry_may_help: false,
        })
    );
}

#[test]
fn a_version_1_batch_with_its_items_inline_is_read_and_folded_as_recorded() {
    // As every batch before items moved to SettlementItemsAdded was stored.
    let v1 = json!({
        "merchant_id": "merchant_1",
        "environment": "live",
        "currency": "USD",
        "items": [
            {"payment_id": payment_id().to_string(), "item": {"kind": "CAPTURE", "item_id": "ch_1"},
             "gross": {"amount": "50.00", "currency": "USD"},
             "fee": {"amount": "1.75", "currency": "USD"}},
            {"payment_id": payment_id().to_string(), "item": {"kind": "REFUND", "item_id": "re_1"},
             "gross": {"amount": "10.00", "currency": "USD"},
             "fee": {"amount": "0.00", "currency": "USD"}}
        ],
        "gross": {"amount": "40.00", "currency": "USD"},
        "fees": {"amount": "1.75", "currency": "USD"},
        "reserve": {"amount": "0.00", "currency": "USD"},
        "net": {"amount": "38.25", "currency": "USD"}
    });
    let event = SettlementEvent::from_stored("SettlementBatchRecorded", 1, v1).expect("upcasts");
    let SettlementEvent::SettlementBatchRecorded(recorded) = &event else {
        panic!("{event:?}");
    };
    assert_eq!((recorded.item_count, recorded.items.len()), (2, 2));
    let state = ledger_core::settlement::fold([&event]);
    let batch = state.batch.as_ref().expect("batch");
    assert!(batch.is_complete());
    assert_eq!(batch.items, recorded.items);
    assert_eq!(ledger_core::settlement::invariants::check(&state), Ok(()));
    let entry = ledger_core::journal::settlement_entry(&SettlementBatchState::default(), &event)
        .expect("posts")
        .expect("an entry");
    assert!(entry.is_balanced());
    assert_eq!(entry.postings.len(), 5);
}

#[test]
fn unknown_types_future_versions_and_bad_payloads_are_errors() {
    assert!(matches!(
        PaymentEvent::from_stored("PaymentTeleported", 1, json!({})),
        Err(CodecError::UnknownEventType { .. })
    ));
    assert!(matches!(
        PaymentEvent::from_stored("PaymentCaptured", 2, json!({})),
        Err(CodecError::UnsupportedSchemaVersion { .. })
    ));
    assert!(matches!(
        PaymentEvent::from_stored("PaymentCaptured", 0, json!({})),
        Err(CodecError::UnsupportedSchemaVersion { .. })
    ));
    let float_amount = json!({"capture_id": "c1", "amount": {"amount": 10.5, "currency": "USD"}, "final_capture": true});
    assert!(matches!(
        PaymentEvent::from_stored("PaymentCaptured", 1, float_amount),
        Err(CodecError::InvalidPayload { .. })
    ));
    let wrong_scale = json!({"capture_id": "c1", "amount": {"amount": "10.505", "currency": "USD"}, "final_capture": true});
    assert!(PaymentEvent::from_stored("PaymentCaptured", 1, wrong_scale).is_err());
}

#[test]
fn a_version_2_decline_reads_as_version_3_and_a_decline_may_have_no_code() {
    let v2 = json!({"decline_code": "insufficient_funds", "category": "SOFT_DECLINE",
                    "retry_may_help": true});
    let event = PaymentEvent::from_stored("PaymentDeclined", 2, v2).expect("reads");
    assert_eq!(
        event,
        PaymentEvent::PaymentDeclined(PaymentDeclined {
            decline_code: Some(text("insufficient_funds")),
            category: DeclineCategory::SoftDecline,
            retry_may_help: true,
        })
    );
    let without_code = PaymentEvent::PaymentDeclined(PaymentDeclined {
        decline_code: None,
        category: DeclineCategory::SoftDecline,
        retry_may_help: true,
    });
    assert_eq!(without_code.schema_version(), 3);
    let payload = without_code.to_payload().expect("encodes");
    assert_eq!(payload["decline_code"], Value::Null);
    assert_eq!(
        PaymentEvent::from_stored("PaymentDeclined", 3, payload).expect("decodes"),
        without_code
    );
}

const GOLDEN_STATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/states.json");

/// Every example event of a kind folded into one state: a state with every part filled.
fn example_states() -> Value {
    let payment = payment_examples()
        .iter()
        .fold(PaymentState::default(), ledger_core::payment::evolve);
    let batch = settlement_examples()
        .iter()
        .fold(SettlementBatchState::default(), settlement::evolve);
    let run = reconciliation_examples()
        .iter()
        .fold(ReconciliationRunState::default(), reconciliation::evolve);
    json!({
        "payment": golden_state(&payment),
        "settlement_batch": golden_state(&batch),
        "reconciliation_run": golden_state(&run),
    })
}

/// A state's format, its serde form as JSON to read, and its kept bytes in hex.
fn golden_state<State: Aggregate>(state: &State) -> Value {
    let kept = ledger_core::kept_form::encode(state).expect("a state encodes");
    json!({"format": State::STATE_FORMAT, "state": state, "kept": hex::encode(kept)})
}

/// The state whose kept bytes the golden file holds for `kind`.
fn golden_kept<State: Aggregate>(golden: &Value, kind: &str) -> State {
    let bytes =
        hex::decode(golden[kind]["kept"].as_str().expect("kept bytes in hex")).expect("hex");
    ledger_core::kept_form::decode(&bytes).expect("the golden kept bytes read back")
}

/// The log keeps each stream's latest fold in this form (`Aggregate::STATE_FORMAT`): a
/// change of a state's shape without a new format would have reads take an old copy for a
/// fold it is not.
#[test]
fn kept_state_shapes_match_the_golden_file() {
    let current = example_states();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&current).expect("pretty");
        std::fs::write(GOLDEN_STATES, text + "\n").expect("write golden file");
    }
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN_STATES).expect("golden file exists"))
            .expect("golden file is JSON");
    for kind in ["payment", "settlement_batch", "reconciliation_run"] {
        if current[kind]["format"] == golden[kind]["format"] {
            assert_eq!(
                current[kind]["state"], golden[kind]["state"],
                "the serde form of a {kind} state changed: change its STATE_FORMAT, then regenerate"
            );
            // The bytes name no field: a field moved within its struct changes them alone.
            assert_eq!(
                current[kind]["kept"], golden[kind]["kept"],
                "the kept bytes of a {kind} state changed: change its STATE_FORMAT, then regenerate"
            );
        }
    }
    assert_eq!(
        current, golden,
        "a STATE_FORMAT changed: regenerate on purpose"
    );
}

#[test]
fn golden_states_read_back_as_the_folds_they_were_written_from() {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN_STATES).expect("golden file exists"))
            .expect("golden file is JSON");
    let payment: PaymentState =
        serde_json::from_value(golden["payment"]["state"].clone()).expect("a payment state");
    assert_eq!(
        payment,
        payment_examples()
            .iter()
            .fold(PaymentState::default(), ledger_core::payment::evolve)
    );
    let batch: SettlementBatchState =
        serde_json::from_value(golden["settlement_batch"]["state"].clone()).expect("a batch");
    assert_eq!(
        batch,
        settlement_examples()
            .iter()
            .fold(SettlementBatchState::default(), settlement::evolve)
    );
    let run: ReconciliationRunState =
        serde_json::from_value(golden["reconciliation_run"]["state"].clone()).expect("a run");
    assert_eq!(
        run,
        reconciliation_examples()
            .iter()
            .fold(ReconciliationRunState::default(), reconciliation::evolve)
    );
    assert_eq!(golden_kept::<PaymentState>(&golden, "payment"), payment);
    assert_eq!(
        golden_kept::<SettlementBatchState>(&golden, "settlement_batch"),
        batch
    );
    assert_eq!(
        golden_kept::<ReconciliationRunState>(&golden, "reconciliation_run"),
        run
    );
}
