//! The rules of gateway facts (`payment::gateway_fact`): a fact lists every command a fresh
//! ledger would need, so against a payment that has seen earlier facts some are skipped as
//! already applied, some wait for an earlier fact, and some are conflicts that record nothing.

mod support;

use ledger_core::payment::gateway_fact::{
    classify_refusal, decide_fact, effect_already_recorded, is_already_applied, RefusalKind,
};
use ledger_core::payment::*;
use ledger_core::DomainError;
use support::*;

fn manual(amount: &str) -> PaymentCommand {
    initiate(amount, CaptureMode::Manual)
}

/// A captured payment's whole fact again records nothing: every command is already applied.
#[test]
fn a_repeated_fact_records_nothing() {
    let fact = [
        manual("100.00"),
        approve(None),
        capture("ch_1", Some("100.00"), true),
    ];
    let (_, state) = given(&fact);
    assert_eq!(decide_fact(&state, &fact), Ok(Vec::new()));
    // The final capture is refused for the payment's status, not its id, yet it is a skip.
    let error = decide(&state, &fact[2]).unwrap_err();
    assert_eq!(error.rule(), "payment_not_capturable");
    assert!(is_already_applied(&state, &fact[2], &error));
}

/// A fact whose first commands are known records only the rest, in one list of events.
#[test]
fn a_fact_records_only_what_the_payment_lacks() {
    let (_, state) = given(&[manual("100.00")]);
    let events = decide_fact(
        &state,
        &[
            manual("100.00"),
            approve(None),
            capture("ch_1", Some("40.00"), true),
        ],
    )
    .unwrap();
    let types: Vec<&str> = events.iter().map(PaymentEvent::event_type).collect();
    assert_eq!(types, ["PaymentAuthorized", "PaymentCaptured"]);
}

/// A refund before its payment, or before its capture, waits for the earlier fact.
#[test]
fn a_refund_that_arrives_early_awaits_the_earlier_fact() {
    let refused = decide_fact(&PaymentState::default(), &[refund("re_1", None)]).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::AwaitsEarlierFact);
    assert_eq!(refused.error, DomainError::PaymentNotFound);
    assert_eq!(refused.command_index, 0);

    let (_, authorized) = given(&[manual("100.00"), approve(None)]);
    let refused = decide_fact(&authorized, &[refund("re_1", None)]).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::AwaitsEarlierFact);
    assert_eq!(
        classify_refusal(&authorized, &refund("re_1", None), &refused.error),
        RefusalKind::AwaitsEarlierFact
    );
}

/// A refund's outcome reported again is a skip; the other outcome, in either order (Stripe's
/// refund that fails days after it succeeded), is a conflict that changes nothing.
#[test]
fn a_refund_failing_after_it_succeeded_is_a_conflict() {
    let captured = [
        manual("100.00"),
        approve(None),
        capture("ch_1", Some("100.00"), true),
        refund("re_1", Some("40.00")),
    ];
    for (first, then) in [(true, false), (false, true)] {
        let mut recorded = captured.to_vec();
        recorded.push(refund_outcome("re_1", first));
        let (_, state) = given(&recorded);
        assert_eq!(
            decide_fact(&state, &[refund_outcome("re_1", first)]),
            Ok(Vec::new())
        );
        let refused = decide_fact(&state, &[refund_outcome("re_1", then)]).unwrap_err();
        assert_eq!(refused.kind, RefusalKind::Conflict, "{first} then {then}");
        assert_eq!(refused.error.rule(), "refund_already_resolved");
    }
}

/// After a decline, a cancel changes nothing but a success is a conflict: nothing recorded.
#[test]
fn a_success_after_a_decline_is_a_conflict_and_a_cancel_a_skip() {
    let (_, declined) = given(&[manual("100.00"), decline("card_declined")]);
    assert_eq!(decide_fact(&declined, &[void()]), Ok(Vec::new()));
    let refused = decide_fact(&declined, &[manual("100.00"), approve(None)]).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::Conflict);
    assert_eq!(refused.command_index, 1);
    assert_eq!(refused.error.rule(), "payment_is_final");
}

/// An approval that reaches a voided payment is older news; one that reaches a declined
/// payment is not (the customer may have paid with another card).
#[test]
fn an_approval_after_a_void_is_already_applied() {
    let (_, voided) = given(&[manual("100.00"), void()]);
    assert!(effect_already_recorded(&voided, &approve(None)));
    let (_, declined) = given(&[manual("100.00"), decline("card_declined")]);
    assert!(!effect_already_recorded(&declined, &approve(None)));
}

/// A refund above the refundable amount is a disagreement, not a skip.
#[test]
fn a_refund_above_the_refundable_amount_is_a_conflict() {
    let (_, captured) = given(&[
        manual("100.00"),
        approve(None),
        capture("ch_1", Some("50.00"), false),
    ]);
    let refused = decide_fact(&captured, &[refund("re_1", Some("60.00"))]).unwrap_err();
    assert_eq!(refused.kind, RefusalKind::Conflict);
}
