//! Every mapped Stripe event, fixture by fixture: the exact commands it yields, the payment
//! id it lands on, and the events it ignores.

mod stripe_support;

use ledger_core::ids::*;
use ledger_core::payment::*;
use ledger_core::settlement::{PayoutUpdate, RecordPayout};
use ledger_core::Currency;
use ledger_stripe::gateway::{
    handled_event_types, map_event, payment_id_for_payment_intent, GatewayFact, IgnoredReason,
    MappingContext, PayoutFact, StripeError,
};
use serde_json::json;
use stripe_support::*;

const PAYMENT_INTENT: &str = "pi_3MtwBwLkdIwHu7ix28a3tqPa";
const CHARGE: &str = "ch_3MtwBwLkdIwHu7ix2Ck6fKGe";
const REFUND: &str = "re_3MtwBwLkdIwHu7ix2BG9Z5Dn";
const DISPUTE: &str = "dp_1MtwDdLkdIwHu7ixMz5hUtzH";

/// The manual-capture USD payment most fixtures belong to.
fn initiate_order_8472() -> PaymentCommand {
    PaymentCommand::Initiate(InitiatePayment {
        merchant_id: MerchantId::parse("merchant_acme").unwrap(),
        order_id: OrderId::parse("order_8472").unwrap(),
        environment: Environment::Test,
        amount: positive("20.00", Currency::USD),
        capture_mode: CaptureMode::Manual,
        payment_method: Some(text("card")),
    })
}

/// The approval as the charge reports it: auth code and `capture_before`.
fn approve_from_charge() -> PaymentCommand {
    PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: Some(positive("20.00", Currency::USD)),
        authorization_code: Some(text("123456")),
        gateway_reference: Some(text(PAYMENT_INTENT)),
        expires_at: Some(at(T0 + 7 * 86_400)),
    })
}

fn partial_capture() -> PaymentCommand {
    PaymentCommand::Capture(CapturePayment {
        capture_id: CaptureId::parse(CHARGE).unwrap(),
        amount: Some(positive("15.00", Currency::USD)),
        final_capture: true,
    })
}

fn refund_requested() -> PaymentCommand {
    PaymentCommand::Refund(RefundPayment {
        refund_id: RefundId::parse(REFUND).unwrap(),
        amount: Some(positive("5.00", Currency::USD)),
        reason: Some(text("requested_by_customer")),
    })
}

fn refund_succeeded() -> PaymentCommand {
    PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
        refund_id: RefundId::parse(REFUND).unwrap(),
        outcome: RefundOutcome::Succeeded,
    })
}

fn dispute_opened() -> PaymentCommand {
    PaymentCommand::OpenDispute(OpenDispute {
        dispute_id: DisputeId::parse(DISPUTE).unwrap(),
        amount: positive("10.00", Currency::USD),
        reason: text("fraudulent"),
        evidence_due_by: Some(at(T0 + 9 * 86_400)),
        fee: Some(money("15.00", Currency::USD)),
    })
}

fn order_8472_payment_id() -> PaymentId {
    // python3 -c "import uuid; print(uuid.uuid5(uuid.NAMESPACE_URL, 'pi_3MtwBwLkdIwHu7ix28a3tqPa'))"
    PaymentId::parse("6eccfae4-52f7-564a-9052-59be7f7a2194").unwrap()
}

fn assert_commands(name: &str, expected: Vec<PaymentCommand>) {
    let fact = payment_fact(name);
    assert_eq!(fact.payment_id, order_8472_payment_id(), "{name}");
    assert_eq!(fact.payment_intent_id, PAYMENT_INTENT, "{name}");
    assert_eq!(fact.commands, expected, "{name}");
}

#[test]
fn the_payment_id_is_the_uuid5_of_the_payment_intent_in_the_url_namespace() {
    assert_eq!(
        payment_id_for_payment_intent(PAYMENT_INTENT),
        order_8472_payment_id()
    );
    // python3 -c "import uuid; print(uuid.uuid5(uuid.NAMESPACE_URL, 'pi_3OzqKZJAJfZb9HEB1TQfyJ5e'))"
    assert_eq!(
        payment_id_for_payment_intent("pi_3OzqKZJAJfZb9HEB1TQfyJ5e").to_string(),
        "c106dcad-4bfb-54a7-bd36-1faafabbf88e"
    );
}

#[test]
fn payment_intent_created_initiates() {
    assert_commands("payment_intent.created", vec![initiate_order_8472()]);
}

#[test]
fn amount_capturable_updated_initiates_and_approves_what_is_capturable() {
    // Rendered with API version 2020-08-27: the charge comes in the embedded `charges` list.
    assert_commands(
        "payment_intent.amount_capturable_updated",
        vec![initiate_order_8472(), approve_from_charge()],
    );
}

#[test]
fn a_partial_charge_capture_is_a_final_capture_of_the_captured_amount() {
    assert_commands(
        "charge.captured",
        vec![
            initiate_order_8472(),
            approve_from_charge(),
            partial_capture(),
        ],
    );
}

#[test]
fn a_manual_payment_intent_succeeding_reports_the_same_capture_as_charge_captured() {
    // `latest_charge` is only an id here, so the approval lacks the charge's details; the
    // capture, which is what must not be recorded twice, is identical.
    let approve = PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: Some(positive("20.00", Currency::USD)),
        authorization_code: None,
        gateway_reference: Some(text(PAYMENT_INTENT)),
        expires_at: None,
    });
    assert_commands(
        "payment_intent.succeeded.manual",
        vec![initiate_order_8472(), approve, partial_capture()],
    );
    assert_eq!(
        payment_fact("payment_intent.succeeded.manual").commands[2],
        payment_fact("charge.captured").commands[2]
    );
}

#[test]
fn an_automatic_zero_decimal_payment_is_initiated_automatic_and_approved() {
    let fact = payment_fact("payment_intent.succeeded.jpy");
    assert_eq!(
        fact.payment_id.to_string(),
        "c106dcad-4bfb-54a7-bd36-1faafabbf88e"
    );
    let expected = vec![
        PaymentCommand::Initiate(InitiatePayment {
            // No merchant in the metadata: the Connect account is the merchant.
            merchant_id: MerchantId::parse("acct_1OzqJyJAJfZb9HEB").unwrap(),
            order_id: OrderId::parse("jp-order-0042").unwrap(),
            environment: Environment::Test,
            // `amount: 500` in JPY is 500 yen, not 5.00.
            amount: positive("500", Currency::JPY),
            capture_mode: CaptureMode::Automatic,
            // Two allowed types and no charge object: the method is not known.
            payment_method: None,
        }),
        PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
            authorized_amount: Some(positive("500", Currency::JPY)),
            authorization_code: None,
            gateway_reference: Some(text("pi_3OzqKZJAJfZb9HEB1TQfyJ5e")),
            expires_at: None,
        }),
    ];
    assert_eq!(fact.commands, expected);
}

#[test]
fn a_failed_payment_is_declined_with_the_issuer_code_and_metadata_payment_id_wins() {
    let fact = payment_fact("payment_intent.payment_failed");
    assert_eq!(
        fact.payment_id,
        PaymentId::parse("7b1f9f3e-2c4d-4e8a-9b6a-0f6f3c2d1e5a").unwrap()
    );
    assert_ne!(
        fact.payment_id,
        payment_id_for_payment_intent("pi_3NcLqGLkdIwHu7ix1hXb2VfY")
    );
    let expected = vec![
        PaymentCommand::Initiate(InitiatePayment {
            merchant_id: MerchantId::parse("merchant_acme").unwrap(),
            order_id: OrderId::parse("order_9001").unwrap(),
            environment: Environment::Test,
            amount: positive("49.99", Currency::EUR),
            capture_mode: CaptureMode::Automatic,
            payment_method: Some(text("card")),
        }),
        PaymentCommand::RecordAuthorization(RecordAuthorization::Declined {
            decline_code: Some(text("insufficient_funds")),
            category: None,
            retry_may_help: None,
        }),
    ];
    assert_eq!(fact.commands, expected);
}

#[test]
fn a_failure_without_decline_code_uses_the_error_code() {
    let body = with_value(
        "payment_intent.payment_failed",
        "/data/object/last_payment_error/decline_code",
        json!(null),
    );
    let GatewayFact::Payment(fact) = map_event(&deliver_body(&body), &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    assert_eq!(
        fact.commands[1],
        PaymentCommand::RecordAuthorization(RecordAuthorization::Declined {
            decline_code: Some(text("card_declined")),
            category: None,
            retry_may_help: None,
        })
    );
}

#[test]
fn a_canceled_payment_intent_is_voided_with_its_reason_for_the_default_merchant() {
    let fact = payment_fact("payment_intent.canceled");
    let expected = vec![
        PaymentCommand::Initiate(InitiatePayment {
            merchant_id: default_merchant(),
            order_id: OrderId::parse("order_9100").unwrap(),
            environment: Environment::Test,
            amount: positive("125.00", Currency::USD),
            capture_mode: CaptureMode::Manual,
            payment_method: Some(text("card")),
        }),
        PaymentCommand::Void(VoidPayment {
            reason: Some(text("requested_by_customer")),
        }),
    ];
    assert_eq!(fact.commands, expected);
}

#[test]
fn without_order_metadata_the_order_is_the_payment_intent() {
    let body = with_value("payment_intent.created", "/data/object/metadata", json!({}));
    let GatewayFact::Payment(fact) = map_event(&deliver_body(&body), &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    let PaymentCommand::Initiate(initiate) = &fact.commands[0] else {
        panic!("expected an initiation");
    };
    assert_eq!(initiate.order_id.as_str(), PAYMENT_INTENT);
    assert_eq!(initiate.merchant_id, default_merchant());
}

#[test]
fn a_malformed_ledger_payment_id_is_refused_rather_than_guessed() {
    let body = with_value(
        "payment_intent.created",
        "/data/object/metadata",
        json!({"ledger_payment_id": "order-17"}),
    );
    let error = map_event(&deliver_body(&body), &context()).unwrap_err();
    assert!(
        matches!(&error, StripeError::InvalidField { field, .. } if *field == "data.object.metadata.ledger_payment_id"),
        "{error:?}"
    );
    assert_eq!(error.http_status(), 422);
}

#[test]
fn a_linked_payment_id_applies_to_objects_without_metadata() {
    let linked = PaymentId::parse("7b1f9f3e-2c4d-4e8a-9b6a-0f6f3c2d1e5a").unwrap();
    let context = MappingContext {
        linked_payment_id: Some(linked),
        ..context()
    };
    let GatewayFact::Payment(fact) = map_event(&deliver("refund.updated"), &context).unwrap()
    else {
        panic!("expected a payment fact");
    };
    assert_eq!(fact.payment_id, linked);
}

#[test]
fn refunds_map_from_their_status() {
    assert_commands("refund.created", vec![refund_requested()]);
    assert_commands(
        "refund.updated",
        vec![refund_requested(), refund_succeeded()],
    );
    let failed = RefundId::parse("re_3MtwBwLkdIwHu7ix2HdPq0Lm").unwrap();
    assert_commands(
        "refund.failed",
        vec![
            PaymentCommand::Refund(RefundPayment {
                refund_id: failed.clone(),
                amount: Some(positive("3.00", Currency::USD)),
                reason: Some(text("requested_by_customer")),
            }),
            PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
                refund_id: failed,
                outcome: RefundOutcome::Failed {
                    failure_reason: Some(text("expired_or_canceled_card")),
                },
            }),
        ],
    );
}

#[test]
fn a_canceled_refund_fails_with_its_status_as_reason() {
    let body = with_value("refund.created", "/data/object/status", json!("canceled"));
    let GatewayFact::Payment(fact) = map_event(&deliver_body(&body), &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    assert_eq!(
        fact.commands[1],
        PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
            refund_id: RefundId::parse(REFUND).unwrap(),
            outcome: RefundOutcome::Failed {
                failure_reason: Some(text("canceled")),
            },
        })
    );
}

#[test]
fn charge_refunded_maps_the_refunds_its_charge_embeds() {
    assert_commands(
        "charge.refunded",
        vec![refund_requested(), refund_succeeded()],
    );
    // API versions from 2022-11-15 no longer embed refunds: refund.* events carry them.
    let body = with_value("charge.refunded", "/data/object/refunds", json!(null));
    assert_eq!(
        map_event(&deliver_body(&body), &context()).unwrap(),
        GatewayFact::Ignored(IgnoredReason::RefundsNotIncluded)
    );
}

#[test]
fn a_refund_releasing_an_expired_authorization_is_ignored() {
    let body = with_value(
        "refund.created",
        "/data/object/reason",
        json!("expired_uncaptured_charge"),
    );
    assert_eq!(
        map_event(&deliver_body(&body), &context()).unwrap(),
        GatewayFact::Ignored(IgnoredReason::ExpiredUncapturedChargeRefund)
    );
}

#[test]
fn a_new_dispute_opens_with_its_deadline_and_fee() {
    assert_commands("charge.dispute.created", vec![dispute_opened()]);
}

#[test]
fn a_dispute_under_review_submits_the_non_null_evidence() {
    let evidence = json!({
        "customer_email_address": "jenny.rosen@example.com",
        "customer_name": "Jenny Rosen",
        "product_description": "Two tickets, concert of 26 November",
        "receipt": "file_1MtwEeLkdIwHu7ixQx7VbN3k",
        "uncategorized_text": "The customer attended the event; scan logs attached.",
    });
    assert_commands(
        "charge.dispute.updated",
        vec![
            dispute_opened(),
            PaymentCommand::SubmitDisputeEvidence(SubmitDisputeEvidence {
                dispute_id: DisputeId::parse(DISPUTE).unwrap(),
                evidence,
            }),
        ],
    );
}

#[test]
fn a_closed_dispute_resolves_lost_or_won() {
    let resolve = |outcome| {
        PaymentCommand::ResolveDispute(ResolveDispute {
            dispute_id: DisputeId::parse(DISPUTE).unwrap(),
            outcome,
        })
    };
    assert_commands(
        "charge.dispute.closed",
        vec![dispute_opened(), resolve(DisputeOutcome::Lost)],
    );
    let won = with_value("charge.dispute.closed", "/data/object/status", json!("won"));
    let GatewayFact::Payment(fact) = map_event(&deliver_body(&won), &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    assert_eq!(
        fact.commands,
        vec![dispute_opened(), resolve(DisputeOutcome::Won)]
    );
}

#[test]
fn a_dispute_fee_in_another_settlement_currency_is_left_to_settlement() {
    let body = with_value(
        "charge.dispute.created",
        "/data/object/balance_transactions/0/currency",
        json!("eur"),
    );
    let GatewayFact::Payment(fact) = map_event(&deliver_body(&body), &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    let PaymentCommand::OpenDispute(open) = &fact.commands[0] else {
        panic!("expected an opening");
    };
    assert_eq!(open.fee, None);
}

#[test]
fn inquiries_and_closures_without_chargeback_are_ignored() {
    for (status, expected) in [
        (
            "warning_needs_response",
            IgnoredReason::DisputeInquiry {
                status: "warning_needs_response".to_owned(),
            },
        ),
        (
            "warning_closed",
            IgnoredReason::DisputeInquiry {
                status: "warning_closed".to_owned(),
            },
        ),
        (
            "prevented",
            IgnoredReason::DisputeWithoutChargebackOutcome {
                status: "prevented".to_owned(),
            },
        ),
    ] {
        let body = with_value(
            "charge.dispute.closed",
            "/data/object/status",
            json!(status),
        );
        assert_eq!(
            map_event(&deliver_body(&body), &context()).unwrap(),
            GatewayFact::Ignored(expected)
        );
    }
}

#[test]
fn payouts_map_to_paid_and_failed() {
    let arrival = chrono::NaiveDate::from_ymd_opt(2023, 11, 17).unwrap();
    assert_eq!(
        map_fixture("payout.paid"),
        GatewayFact::Payout(PayoutFact {
            merchant_id: default_merchant(),
            command: RecordPayout {
                payout_id: PayoutId::parse("po_1OaFdSLkdIwHu7ixVbQkQy3X").unwrap(),
                amount: positive("1845.30", Currency::USD),
                update: PayoutUpdate::Paid,
            },
            arrival_date: Some(arrival),
        })
    );
    assert_eq!(
        map_fixture("payout.failed"),
        GatewayFact::Payout(PayoutFact {
            merchant_id: default_merchant(),
            command: RecordPayout {
                payout_id: PayoutId::parse("po_1ObHeTLkdIwHu7ixW4rTq2Lp").unwrap(),
                amount: positive("990.00", Currency::USD),
                update: PayoutUpdate::Failed {
                    failure_reason: Some(text("The bank account has been closed.")),
                },
            },
            arrival_date: Some(arrival),
        })
    );
}

#[test]
fn amounts_and_currencies_that_do_not_fit_the_ledger_are_refused() {
    for (pointer, value, field) in [
        (
            "/data/object/currency",
            json!("xyz"),
            "data.object.currency",
        ),
        ("/data/object/amount", json!(0), "data.object.amount"),
        ("/data/object/amount", json!(-5), "data.object.amount"),
    ] {
        let body = with_value("payment_intent.created", pointer, value);
        let error = map_event(&deliver_body(&body), &context()).unwrap_err();
        assert!(
            matches!(&error, StripeError::InvalidField { field: found, event_id, .. }
                if *found == field && event_id == "evt_3MtwBwLkdIwHu7ix0sMPjSdz"),
            "{error:?}"
        );
    }
}

#[test]
fn a_charge_without_payment_intent_is_ignored() {
    let body = with_value(
        "charge.captured",
        "/data/object/payment_intent",
        json!(null),
    );
    assert_eq!(
        map_event(&deliver_body(&body), &context()).unwrap(),
        GatewayFact::Ignored(IgnoredReason::NoPaymentIntent)
    );
}

#[test]
fn redelivering_an_event_maps_to_identical_commands() {
    for name in [
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "refund.updated",
        "charge.dispute.updated",
    ] {
        assert_eq!(map_fixture(name), map_fixture(name), "{name}");
    }
}

#[test]
fn null_metadata_and_lists_read_as_empty() {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("payment_intent.created")).unwrap();
    event["data"]["object"]["metadata"] = json!(null);
    event["data"]["object"]["payment_method_types"] = json!(null);
    let body = serde_json::to_vec(&event).unwrap();
    let GatewayFact::Payment(fact) = map_event(&deliver_body(&body), &context()).unwrap() else {
        panic!("expected a payment fact");
    };
    assert_eq!(fact.payment_id, order_8472_payment_id());
}

/// Stripe's special currencies, as a webhook carries them: each amount reads as the money
/// Stripe means, not as ISO's minor units would have it.
#[test]
fn special_currencies_read_as_stripe_means_them() {
    // (currency, Stripe's integer amount, the ledger's amount)
    for (code, stripe_amount, expected) in [
        // Zero-decimal in ISO, two-decimal in Stripe's API: 50000 is 500 króna.
        ("isk", 50_000, "500"),
        // Two-decimal in both (only their payouts must be whole units).
        ("huf", 50_050, "500.50"),
        ("twd", 50_050, "500.50"),
        // Zero-decimal in both.
        ("ugx", 50_000, "50000"),
        // Three-decimal in both.
        ("kwd", 5_120, "5.120"),
        ("bhd", 5_120, "5.120"),
    ] {
        let mut event: serde_json::Value =
            serde_json::from_slice(&fixture("payment_intent.succeeded.jpy")).unwrap();
        let object = &mut event["data"]["object"];
        object["currency"] = json!(code);
        object["amount"] = json!(stripe_amount);
        object["amount_received"] = json!(stripe_amount);
        let body = serde_json::to_vec(&event).unwrap();
        let GatewayFact::Payment(fact) = map_event(&deliver_body(&body), &context()).unwrap()
        else {
            panic!("{code}: expected a payment fact");
        };
        let currency = Currency::parse(code).unwrap();
        let PaymentCommand::Initiate(initiate) = &fact.commands[0] else {
            panic!("{code}: expected an initiation first");
        };
        assert_eq!(initiate.amount, positive(expected, currency), "{code}");
    }

    // A fraction of a króna does not exist: refused, never rounded.
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("payment_intent.succeeded.jpy")).unwrap();
    event["data"]["object"]["currency"] = json!("isk");
    event["data"]["object"]["amount"] = json!(50_050);
    let body = serde_json::to_vec(&event).unwrap();
    assert!(map_event(&deliver_body(&body), &context()).is_err());
}

/// The list an endpoint subscribes to (`handled_event_types`) is exactly what the mapping
/// acts on: each listed type of a recorded event maps to a fact, and the same event under a
/// type left out of the list is ignored as unhandled.
#[test]
fn the_handled_event_types_are_the_ones_mapped() {
    let handled: Vec<&str> = handled_event_types().collect();
    let mut unique = handled.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), handled.len(), "{handled:?}");
    let fixture_of = |event_type: &str| match event_type {
        "payment_intent.succeeded" => "payment_intent.succeeded.manual".to_owned(),
        other => other.to_owned(),
    };
    for event_type in &handled {
        let fact = map_fixture(&fixture_of(event_type));
        assert!(
            !matches!(
                fact,
                GatewayFact::Ignored(IgnoredReason::UnhandledEventType { .. })
            ),
            "{event_type}: {fact:?}"
        );
    }
    for unhandled in ["charge.succeeded", "charge.dispute.funds_withdrawn"] {
        assert!(!handled.contains(&unhandled));
        let body = with_value("charge.captured", "/type", json!(unhandled));
        assert_eq!(
            map_event(&deliver_body(&body), &context()).unwrap(),
            GatewayFact::Ignored(IgnoredReason::UnhandledEventType {
                event_type: unhandled.to_owned()
            })
        );
    }
}
