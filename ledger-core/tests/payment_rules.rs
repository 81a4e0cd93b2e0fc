//! Given/When/Then tests of every payment command: given these accepted commands, when this
//! command arrives, then exactly these events are recorded, or this rule refuses it.

mod support;

use ledger_core::payment::*;
use serde_json::json;
use support::*;

fn manual(amount: &str) -> PaymentCommand {
    initiate(amount, CaptureMode::Manual)
}

// --- initiate -------------------------------------------------------------------------------

#[test]
fn initiate_records_the_payment_with_its_amount_and_capture_mode() {
    let events = decide(&PaymentState::default(), &manual("100.00")).expect("accepted");
    let [PaymentEvent::PaymentInitiated(initiated)] = events.as_slice() else {
        panic!("unexpected {events:?}");
    };
    assert_eq!(initiated.amount, usd("100.00"));
    assert_eq!(initiated.capture_mode, CaptureMode::Manual);
    let (_, state) = given(&[manual("100.00")]);
    assert_eq!(state.status(), Some(PaymentStatus::Initiated));
    assert_eq!(state.version, 1);
}

#[test]
fn initiate_twice_is_refused() {
    let (_, state) = given(&[manual("100.00")]);
    assert_refused(&state, &manual("100.00"), "payment_already_exists");
}

#[test]
fn any_command_before_initiate_is_refused() {
    assert_refused(
        &PaymentState::default(),
        &approve(None),
        "payment_not_found",
    );
    assert_refused(
        &PaymentState::default(),
        &capture("c1", None, true),
        "payment_not_found",
    );
}

// --- authorization --------------------------------------------------------------------------

#[test]
fn approval_defaults_to_the_requested_amount() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    let payment = state.payment.expect("payment");
    assert_eq!(payment.authorized_amount(), usd("100.00"));
    assert_eq!(payment.status(), PaymentStatus::Authorized);
}

#[test]
fn a_partial_authorization_is_recorded() {
    let (_, state) = given(&[manual("100.00"), approve(Some("60.00"))]);
    let payment = state.payment.expect("payment");
    assert_eq!(payment.authorized_amount(), usd("60.00"));
    assert_eq!(payment.capturable_amount(), usd("60.00"));
}

#[test]
fn authorizing_more_than_requested_is_refused() {
    let (_, state) = given(&[manual("100.00")]);
    assert_refused(
        &state,
        &approve(Some("100.01")),
        "authorized_exceeds_requested",
    );
}

#[test]
fn authorization_is_recorded_once() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    assert_refused(&state, &approve(None), "authorization_already_recorded");
    assert_refused(
        &state,
        &decline("insufficient_funds"),
        "authorization_already_recorded",
    );
}

#[test]
fn automatic_capture_mode_captures_the_full_authorized_amount() {
    let (events, state) = given(&[
        initiate("100.00", CaptureMode::Automatic),
        approve(Some("80.00")),
    ]);
    let PaymentEvent::PaymentCaptured(captured) = &events[2] else {
        panic!("expected a capture, got {events:?}");
    };
    assert_eq!(captured.amount, usd("80.00"));
    assert!(captured.final_capture);
    assert_eq!(state.status(), Some(PaymentStatus::Captured));
}

#[test]
fn a_decline_is_classified_and_final() {
    let (events, state) = given(&[manual("100.00"), decline("stolen_card")]);
    let PaymentEvent::PaymentDeclined(declined) = &events[1] else {
        panic!("expected a decline, got {events:?}");
    };
    assert_eq!(declined.category, DeclineCategory::HardDecline);
    assert!(!declined.retry_may_help);
    assert_eq!(state.status(), Some(PaymentStatus::Declined));
    for command in [
        capture("c1", None, true),
        void(),
        refund("r1", None),
        open_dispute("d1", "1.00", "0.00"),
    ] {
        assert_refused(&state, &command, "payment_is_final");
    }
}

#[test]
fn a_soft_decline_says_a_retry_may_help() {
    let (events, _) = given(&[manual("100.00"), decline("insufficient_funds")]);
    let PaymentEvent::PaymentDeclined(declined) = &events[1] else {
        panic!("expected a decline");
    };
    assert_eq!(declined.category, DeclineCategory::SoftDecline);
    assert!(declined.retry_may_help);
}

#[test]
fn a_decline_without_a_code_is_recorded_as_an_unknown_code_would_be() {
    let declined_without_code =
        PaymentCommand::RecordAuthorization(RecordAuthorization::Declined {
            decline_code: None,
            category: None,
            retry_may_help: None,
        });
    let (events, state) = given(&[manual("100.00"), declined_without_code]);
    let PaymentEvent::PaymentDeclined(declined) = &events[1] else {
        panic!("expected a decline, got {events:?}");
    };
    assert_eq!(declined.decline_code, None);
    assert_eq!(declined.category, DeclineCategory::classify("no_such_code"));
    assert_eq!(state.status(), Some(PaymentStatus::Declined));
}

// --- capture --------------------------------------------------------------------------------

#[test]
fn partial_and_multiple_captures_up_to_the_authorized_amount() {
    let (_, state) = given(&[
        manual("100.00"),
        approve(None),
        capture("c1", Some("30.00"), false),
    ]);
    assert_eq!(state.status(), Some(PaymentStatus::PartiallyCaptured));
    let (_, state) = given(&[
        manual("100.00"),
        approve(None),
        capture("c1", Some("30.00"), false),
        capture("c2", Some("70.00"), false),
    ]);
    let payment = state.payment.expect("payment");
    assert_eq!(payment.captured_amount(), usd("100.00"));
    assert_eq!(payment.status(), PaymentStatus::Captured);
}

#[test]
fn capture_without_amount_takes_all_that_is_capturable() {
    let (_, state) = given(&[
        manual("100.00"),
        approve(None),
        capture("c1", Some("30.00"), false),
    ]);
    let events = decide(&state, &capture("c2", None, true)).expect("accepted");
    let [PaymentEvent::PaymentCaptured(captured)] = events.as_slice() else {
        panic!("unexpected {events:?}");
    };
    assert_eq!(captured.amount, usd("70.00"));
}

#[test]
fn capturing_more_than_authorized_is_refused() {
    let (_, state) = given(&[
        manual("100.00"),
        approve(Some("50.00")),
        capture("c1", Some("30.00"), false),
    ]);
    assert_refused(
        &state,
        &capture("c2", Some("20.01"), false),
        "capture_exceeds_authorized",
    );
}

#[test]
fn a_final_partial_capture_releases_the_rest() {
    let (_, state) = given(&[
        manual("100.00"),
        approve(None),
        capture("c1", Some("30.00"), true),
    ]);
    assert_eq!(state.status(), Some(PaymentStatus::Captured));
    assert_refused(
        &state,
        &capture("c2", Some("1.00"), false),
        "payment_not_capturable",
    );
}

#[test]
fn capture_before_authorization_is_refused() {
    let (_, state) = given(&[manual("100.00")]);
    assert_refused(&state, &capture("c1", None, true), "payment_not_capturable");
}

#[test]
fn a_capture_id_is_used_once() {
    let (_, state) = given(&[
        manual("100.00"),
        approve(None),
        capture("c1", Some("10.00"), false),
    ]);
    assert_refused(
        &state,
        &capture("c1", Some("10.00"), false),
        "duplicate_capture_id",
    );
}

#[test]
fn a_capture_in_another_currency_is_refused() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    let euros =
        ledger_core::PositiveMoney::parse("10.00", ledger_core::Currency::EUR).expect("valid");
    let command = PaymentCommand::Capture(CapturePayment {
        capture_id: capture_id("c1"),
        amount: Some(euros),
        final_capture: false,
    });
    assert_refused(&state, &command, "currency_mismatch");
}

#[test]
fn a_capture_failure_is_recorded_and_leaves_the_authorization_open() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    let command = PaymentCommand::RecordCaptureFailure(RecordCaptureFailure {
        capture_id: capture_id("c1"),
        amount: positive("100.00"),
        reason: text("issuer_unavailable"),
        retryable: true,
    });
    let events = decide(&state, &command).expect("accepted");
    assert!(matches!(
        events.as_slice(),
        [PaymentEvent::CaptureFailed(_)]
    ));
    let state = events.iter().fold(state, evolve);
    assert_eq!(state.status(), Some(PaymentStatus::Authorized));
    assert!(decide(&state, &capture("c1", None, true)).is_ok());
}

// --- void and expiry ------------------------------------------------------------------------

#[test]
fn void_releases_the_whole_authorization() {
    let (events, state) = given(&[manual("100.00"), approve(None), void()]);
    let PaymentEvent::AuthorizationVoided(voided) = &events[2] else {
        panic!("expected a void");
    };
    assert_eq!(voided.released_amount, usd("100.00"));
    assert_eq!(state.status(), Some(PaymentStatus::Voided));
    assert_refused(&state, &capture("c1", None, true), "payment_is_final");
}

#[test]
fn void_after_a_partial_capture_releases_the_rest_and_counts_as_captured() {
    let (events, state) = given(&[
        manual("100.00"),
        approve(None),
        capture("c1", Some("40.00"), false),
        void(),
    ]);
    let PaymentEvent::AuthorizationVoided(voided) = &events[3] else {
        panic!("expected a void");
    };
    assert_eq!(voided.released_amount, usd("60.00"));
    assert_eq!(state.status(), Some(PaymentStatus::Captured));
    assert!(decide(&state, &refund("r1", None)).is_ok());
}

#[test]
fn void_of_a_fully_captured_payment_is_refused() {
    let (_, state) = given(&[manual("100.00"), approve(None), capture("c1", None, true)]);
    assert_refused(&state, &void(), "payment_not_voidable");
}

#[test]
fn expiry_needs_the_expiry_time_to_have_passed() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    let early = PaymentCommand::Expire(ExpireAuthorization { now: at(11) });
    assert_refused(&state, &early, "authorization_not_expired");
    let late = PaymentCommand::Expire(ExpireAuthorization { now: at(12) });
    let events = decide(&state, &late).expect("accepted");
    let state = events.iter().fold(state, evolve);
    assert_eq!(state.status(), Some(PaymentStatus::Expired));
    assert_refused(&state, &capture("c1", None, true), "payment_is_final");
}

#[test]
fn expiry_without_an_expiry_time_is_refused() {
    let no_expiry = PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: None,
        authorization_code: None,
        gateway_reference: None,
        expires_at: None,
    });
    let (_, state) = given(&[manual("100.00"), no_expiry]);
    let expire = PaymentCommand::Expire(ExpireAuthorization { now: at(23) });
    assert_refused(&state, &expire, "authorization_has_no_expiry");
}

// --- refunds --------------------------------------------------------------------------------

fn captured_100() -> Vec<PaymentCommand> {
    vec![manual("100.00"), approve(None), capture("c1", None, true)]
}

#[test]
fn partial_and_multiple_refunds_up_to_the_refundable_amount() {
    let mut commands = captured_100();
    commands.extend([
        refund("r1", Some("30.00")),
        refund_outcome("r1", true),
        refund("r2", Some("20.00")),
    ]);
    let (_, state) = given(&commands);
    let payment = state.payment.expect("payment");
    assert_eq!(payment.refunded_amount(), usd("30.00"));
    assert_eq!(payment.refund_pending_amount(), usd("20.00"));
    assert_eq!(payment.refundable_amount(), usd("50.00"));
    assert_eq!(payment.status(), PaymentStatus::PartiallyRefunded);
}

#[test]
fn refunding_more_than_refundable_is_refused() {
    let mut commands = captured_100();
    commands.push(refund("r1", Some("60.00")));
    let (_, state) = given(&commands);
    assert_refused(
        &state,
        &refund("r2", Some("40.01")),
        "refund_exceeds_refundable",
    );
}

#[test]
fn a_failed_refund_releases_its_amount() {
    let mut commands = captured_100();
    commands.extend([refund("r1", None), refund_outcome("r1", false)]);
    let (_, state) = given(&commands);
    let payment = state.payment.as_ref().expect("payment");
    assert_eq!(payment.refundable_amount(), usd("100.00"));
    assert_eq!(payment.status(), PaymentStatus::Captured);
}

#[test]
fn a_full_refund_makes_the_payment_refunded_and_accepts_only_disputes() {
    let mut commands = captured_100();
    commands.extend([refund("r1", None), refund_outcome("r1", true)]);
    let (_, state) = given(&commands);
    assert_eq!(state.status(), Some(PaymentStatus::Refunded));
    assert_refused(
        &state,
        &refund("r2", Some("1.00")),
        "payment_fully_refunded",
    );
    assert_refused(&state, &void(), "payment_fully_refunded");
    // Nothing is left to dispute, but the dispute rules, not the status, say so.
    assert_refused(
        &state,
        &open_dispute("d1", "1.00", "0.00"),
        "dispute_exceeds_disputable",
    );
}

#[test]
fn refund_before_capture_is_refused() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    assert_refused(&state, &refund("r1", None), "payment_not_refundable");
}

#[test]
fn refund_outcome_is_recorded_once_for_a_known_refund() {
    let mut commands = captured_100();
    commands.extend([refund("r1", Some("10.00")), refund_outcome("r1", true)]);
    let (_, state) = given(&commands);
    assert_refused(
        &state,
        &refund_outcome("r1", false),
        "refund_already_resolved",
    );
    assert_refused(&state, &refund_outcome("r9", true), "refund_not_found");
    assert_refused(&state, &refund("r1", Some("1.00")), "duplicate_refund_id");
}

// --- disputes -------------------------------------------------------------------------------

#[test]
fn a_dispute_withholds_its_amount_until_it_is_won() {
    let mut commands = captured_100();
    commands.push(open_dispute("d1", "40.00", "15.00"));
    let (_, state) = given(&commands);
    let payment = state.payment.as_ref().expect("payment");
    assert_eq!(payment.disputed_amount(), usd("40.00"));
    assert_eq!(payment.refundable_amount(), usd("60.00"));
    let won = decide(&state, &resolve("d1", DisputeOutcome::Won)).expect("accepted");
    let state = won.iter().fold(state, evolve);
    let payment = state.payment.as_ref().expect("payment");
    assert_eq!(payment.refundable_amount(), usd("100.00"));
}

#[test]
fn a_lost_dispute_keeps_its_amount_withheld() {
    let mut commands = captured_100();
    commands.extend([
        open_dispute("d1", "40.00", "15.00"),
        resolve("d1", DisputeOutcome::Lost),
    ]);
    let (_, state) = given(&commands);
    let payment = state.payment.as_ref().expect("payment");
    assert_eq!(payment.refundable_amount(), usd("60.00"));
    assert_refused(
        &state,
        &resolve("d1", DisputeOutcome::Won),
        "dispute_already_resolved",
    );
}

#[test]
fn a_dispute_larger_than_disputable_is_refused() {
    let mut commands = captured_100();
    commands.push(refund("r1", Some("70.00")));
    let (_, state) = given(&commands);
    assert_refused(
        &state,
        &open_dispute("d1", "30.01", "0.00"),
        "dispute_exceeds_disputable",
    );
    assert!(decide(&state, &open_dispute("d1", "30.00", "0.00")).is_ok());
}

#[test]
fn evidence_only_while_the_dispute_needs_a_response() {
    let mut commands = captured_100();
    commands.push(open_dispute("d1", "40.00", "0.00"));
    let (_, state) = given(&commands);
    let evidence = PaymentCommand::SubmitDisputeEvidence(SubmitDisputeEvidence {
        dispute_id: dispute_id("d1"),
        evidence: json!({"receipt": "https://example.test/r/1", "tracking": "1Z999"}),
    });
    let events = decide(&state, &evidence).expect("accepted");
    let state = events.iter().fold(state, evolve);
    let payment = state.payment.as_ref().expect("payment");
    assert_eq!(
        payment
            .dispute(&dispute_id("d1"))
            .map(|dispute| dispute.status),
        Some(ledger_core::payment::state::DisputeStatus::UnderReview)
    );
    assert_refused(&state, &evidence, "dispute_not_awaiting_evidence");
    let unknown = PaymentCommand::SubmitDisputeEvidence(SubmitDisputeEvidence {
        dispute_id: dispute_id("d9"),
        evidence: json!({}),
    });
    assert_refused(&state, &unknown, "dispute_not_found");
}

#[test]
fn oversized_evidence_is_refused() {
    let mut commands = captured_100();
    commands.push(open_dispute("d1", "40.00", "0.00"));
    let (_, state) = given(&commands);
    let evidence = PaymentCommand::SubmitDisputeEvidence(SubmitDisputeEvidence {
        dispute_id: dispute_id("d1"),
        evidence: json!({"text": "x".repeat(ledger_core::payment::decide::MAX_EVIDENCE_BYTES)}),
    });
    assert_refused(&state, &evidence, "evidence_too_large");
}

#[test]
fn a_dispute_id_is_used_once_and_fees_are_not_negative() {
    let mut commands = captured_100();
    commands.push(open_dispute("d1", "10.00", "0.00"));
    let (_, state) = given(&commands);
    assert_refused(
        &state,
        &open_dispute("d1", "10.00", "0.00"),
        "duplicate_dispute_id",
    );
    assert_refused(
        &state,
        &open_dispute("d2", "10.00", "-1.00"),
        "negative_dispute_fee",
    );
}

#[test]
fn a_dispute_needs_a_capture() {
    let (_, state) = given(&[manual("100.00"), approve(None)]);
    assert_refused(
        &state,
        &open_dispute("d1", "1.00", "0.00"),
        "payment_not_disputable",
    );
}

// --- settlement of items --------------------------------------------------------------------

fn settle(item: SettledItem) -> PaymentCommand {
    PaymentCommand::Settle(SettlePaymentItem {
        payment_id: ledger_core::ids::PaymentId::from_uuid(uuid::Uuid::nil()),
        batch_id: ledger_core::ids::SettlementBatchId::from_uuid(uuid::Uuid::nil()),
        item,
    })
}

#[test]
fn an_item_is_settled_once() {
    let (_, state) = given(&captured_100());
    let command = settle(SettledItem::Capture(capture_id("c1")));
    let events = decide(&state, &command).expect("accepted");
    let state = events.iter().fold(state, evolve);
    assert_refused(&state, &command, "settlement_item_already_settled");
}

#[test]
fn unknown_and_pending_items_cannot_be_settled() {
    let mut commands = captured_100();
    commands.push(refund("r1", Some("10.00")));
    let (_, state) = given(&commands);
    assert_refused(
        &state,
        &settle(SettledItem::Capture(capture_id("c9"))),
        "settlement_item_not_found",
    );
    assert_refused(
        &state,
        &settle(SettledItem::Refund(refund_id("r1"))),
        "settlement_item_not_settleable",
    );
}

#[test]
fn a_fully_refunded_payment_still_settles_its_capture_and_refund() {
    let mut commands = captured_100();
    commands.extend([refund("r1", None), refund_outcome("r1", true)]);
    let (_, state) = given(&commands);
    let capture =
        decide(&state, &settle(SettledItem::Capture(capture_id("c1")))).expect("capture settles");
    let state = capture.iter().fold(state, evolve);
    assert!(decide(&state, &settle(SettledItem::Refund(refund_id("r1")))).is_ok());
}

// --- rule names reach support agents -------------------------------------------------------

#[test]
fn refusals_explain_what_would_be_accepted() {
    let (_, state) = given(&[manual("100.00"), approve(Some("50.00"))]);
    let error = decide(&state, &capture("c1", Some("60.00"), true)).expect_err("refused");
    assert_eq!(error.rule(), "capture_exceeds_authorized");
    let message = error.to_string();
    assert!(message.contains("60.00 USD"), "{message}");
    assert!(message.contains("at most 50.00 USD"), "{message}");
}
