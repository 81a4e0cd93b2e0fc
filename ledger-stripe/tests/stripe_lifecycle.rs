//! End to end in memory: Stripe events mapped, then decided and folded by the domain core,
//! with already-applied commands skipped and early events parked until what they need arrives.

mod stripe_support;

use ledger_core::payment::decide::AUTOMATIC_CAPTURE_ID;
use ledger_core::payment::{evolve, PaymentState, PaymentStatus};
use ledger_core::{Currency, DomainError};
use ledger_stripe::gateway::{
    classify_refusal, decide_fact, map_event, GatewayFact, RefusalKind, VerifiedEvent,
};
use stripe_support::*;

/// One payment's events in the order Stripe sends them: authorized, captured 15.00 of 20.00
/// (reported twice), refunded 5.00, disputed 10.00 and lost.
const LIFECYCLE: [&str; 9] = [
    "payment_intent.created",
    "payment_intent.amount_capturable_updated",
    "charge.captured",
    "payment_intent.succeeded.manual",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
];

/// Applies one delivery to the payment: `Ok(true)` when applied (or already held),
/// `Ok(false)` when it must wait for an earlier fact.
fn apply(state: &mut PaymentState, event: &VerifiedEvent) -> Result<bool, String> {
    let GatewayFact::Payment(fact) = map_event(event, &context()).unwrap() else {
        panic!("{} is not a payment fact", event.event_type());
    };
    match decide_fact(state, &fact.commands) {
        Ok(events) => {
            *state = events.iter().fold(state.clone(), evolve);
            Ok(true)
        }
        Err(refused) if refused.kind == RefusalKind::AwaitsEarlierFact => Ok(false),
        Err(refused) => Err(format!("{}: {:?}", event.event_type(), refused)),
    }
}

/// Delivers events in the given order, parking those that arrive early and retrying them
/// (as Stripe would) until nothing is left.
fn deliver_all(order: &[&str]) -> PaymentState {
    let mut state = PaymentState::default();
    let mut pending: Vec<VerifiedEvent> = order.iter().map(|name| deliver(name)).collect();
    for _round in 0..order.len() {
        pending.retain(|event| !apply(&mut state, event).unwrap());
        if pending.is_empty() {
            return state;
        }
    }
    panic!("never applied: {pending:?}");
}

fn assert_final_state(state: &PaymentState) {
    let payment = state.payment.as_ref().unwrap();
    assert_eq!(payment.status(), PaymentStatus::PartiallyRefunded);
    assert_eq!(payment.authorized_amount(), money("20.00", Currency::USD));
    assert_eq!(payment.captured_amount(), money("15.00", Currency::USD));
    assert_eq!(payment.refunded_amount(), money("5.00", Currency::USD));
    assert_eq!(payment.disputed_amount(), money("10.00", Currency::USD));
    assert_eq!(payment.refundable_amount(), money("0.00", Currency::USD));
    assert_eq!(payment.captures.len(), 1, "one capture, reported twice");
    assert_eq!(payment.disputes[0].fee, money("15.00", Currency::USD));
}

#[test]
fn four_events_authorize_capture_partially_and_refund() {
    let mut state = PaymentState::default();
    for name in [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "refund.updated",
    ] {
        assert!(apply(&mut state, &deliver(name)).unwrap(), "{name}");
    }
    let payment = state.payment.as_ref().unwrap();
    assert_eq!(payment.status(), PaymentStatus::PartiallyRefunded);
    assert_eq!(payment.captured_amount(), money("15.00", Currency::USD));
    assert_eq!(payment.refunded_amount(), money("5.00", Currency::USD));
    // The final partial capture released the uncaptured 5.00.
    assert_eq!(payment.capturable_amount(), money("0.00", Currency::USD));
    // Initiated, authorized, captured, refund requested, refund succeeded.
    assert_eq!(state.version, 5);
}

#[test]
fn the_whole_lifecycle_in_order_records_each_fact_once() {
    let state = deliver_all(&LIFECYCLE);
    assert_final_state(&state);
    // 5 facts up to the refund, then dispute opened, evidence submitted, dispute lost.
    assert_eq!(state.version, 8);
}

#[test]
fn the_whole_lifecycle_in_reverse_ends_in_the_same_state() {
    let mut reversed = LIFECYCLE;
    reversed.reverse();
    assert_final_state(&deliver_all(&reversed));
}

#[test]
fn redelivered_events_record_nothing_new() {
    let state = deliver_all(&LIFECYCLE);
    for name in LIFECYCLE {
        let GatewayFact::Payment(fact) = map_event(&deliver(name), &context()).unwrap() else {
            panic!("{name}");
        };
        assert_eq!(
            decide_fact(&state, &fact.commands),
            Ok(Vec::new()),
            "{name}"
        );
    }
}

#[test]
fn an_automatic_jpy_payment_is_captured_by_the_core_in_yen() {
    let mut state = PaymentState::default();
    assert!(apply(&mut state, &deliver("payment_intent.succeeded.jpy")).unwrap());
    let payment = state.payment.as_ref().unwrap();
    assert_eq!(payment.status(), PaymentStatus::Captured);
    assert_eq!(payment.captured_amount(), money("500", Currency::JPY));
    assert_eq!(
        payment.captures[0].capture_id.as_str(),
        AUTOMATIC_CAPTURE_ID
    );
}

#[test]
fn a_cancel_after_a_decline_changes_nothing_but_a_success_after_it_is_a_conflict() {
    let mut state = PaymentState::default();
    assert!(apply(&mut state, &deliver("payment_intent.payment_failed")).unwrap());
    assert_eq!(state.status(), Some(PaymentStatus::Declined));
    let cancel = [ledger_core::payment::PaymentCommand::Void(
        ledger_core::payment::VoidPayment { reason: None },
    )];
    assert_eq!(decide_fact(&state, &cancel), Ok(Vec::new()));
    let approve = ledger_core::payment::PaymentCommand::RecordAuthorization(
        ledger_core::payment::RecordAuthorization::Approved {
            authorized_amount: None,
            authorization_code: None,
            gateway_reference: None,
            expires_at: None,
        },
    );
    let refused = decide_fact(&state, std::slice::from_ref(&approve)).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::Conflict);
    assert_eq!(refused.error.rule(), "payment_is_final");
}

#[test]
fn a_refund_before_its_payment_waits_and_records_nothing() {
    let state = PaymentState::default();
    let GatewayFact::Payment(fact) = map_event(&deliver("refund.updated"), &context()).unwrap()
    else {
        panic!("expected a payment fact");
    };
    let refused = decide_fact(&state, &fact.commands).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::AwaitsEarlierFact);
    assert_eq!(refused.error, DomainError::PaymentNotFound);
    assert_eq!(
        classify_refusal(&state, &fact.commands[0], &refused.error),
        RefusalKind::AwaitsEarlierFact
    );
}

#[test]
fn a_refund_of_an_authorized_but_uncaptured_payment_waits_for_the_capture() {
    let mut state = PaymentState::default();
    for name in [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
    ] {
        assert!(apply(&mut state, &deliver(name)).unwrap(), "{name}");
    }
    assert!(!apply(&mut state, &deliver("refund.updated")).unwrap());
    assert!(apply(&mut state, &deliver("charge.captured")).unwrap());
    assert!(apply(&mut state, &deliver("refund.updated")).unwrap());
    assert_eq!(state.status(), Some(PaymentStatus::PartiallyRefunded));
}

#[test]
fn an_authorization_delivered_after_the_cancel_is_skipped() {
    let mut state = PaymentState::default();
    let canceled = deliver("payment_intent.canceled");
    assert!(apply(&mut state, &canceled).unwrap());
    // The same intent's authorization, delivered late: Stripe had authorized, then canceled.
    let GatewayFact::Payment(fact) = map_event(&canceled, &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    let approve = ledger_core::payment::PaymentCommand::RecordAuthorization(
        ledger_core::payment::RecordAuthorization::Approved {
            authorized_amount: None,
            authorization_code: None,
            gateway_reference: None,
            expires_at: None,
        },
    );
    let late = [fact.commands[0].clone(), approve];
    assert_eq!(decide_fact(&state, &late), Ok(Vec::new()));
    assert_eq!(state.status(), Some(PaymentStatus::Voided));
}

#[test]
fn evidence_too_large_for_the_ledger_is_recorded_by_reference() {
    let text = "scan log line\n".repeat(2_000);
    let body = with_value(
        "charge.dispute.updated",
        "/data/object/evidence/uncategorized_text",
        serde_json::json!(text),
    );
    let mut state = deliver_all(&[
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
    ]);
    assert!(apply(&mut state, &deliver_body(&body)).unwrap());
    let dispute = &state.payment.as_ref().unwrap().disputes[0];
    assert_eq!(
        dispute.evidence[0]["stripe_dispute_id"],
        "dp_1MtwDdLkdIwHu7ixMz5hUtzH"
    );
    assert!(dispute.evidence[0]["submitted_fields"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("uncategorized_text")));
}
