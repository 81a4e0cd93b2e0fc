//! Builders shared by the ledger-core tests: short names for the commands and events the
//! Given/When/Then tests read and write.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use ledger_core::ids::*;
use ledger_core::payment::*;
use ledger_core::text::ShortText;
use ledger_core::{Currency, Money, PositiveMoney};

pub fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::USD).expect("valid USD amount")
}

pub fn positive(amount: &str) -> PositiveMoney {
    PositiveMoney::parse(amount, Currency::USD).expect("positive USD amount")
}

pub fn text(value: &str) -> ShortText {
    ShortText::parse(value).expect("valid text")
}

pub fn capture_id(value: &str) -> CaptureId {
    CaptureId::parse(value).expect("valid capture id")
}

pub fn refund_id(value: &str) -> RefundId {
    RefundId::parse(value).expect("valid refund id")
}

pub fn dispute_id(value: &str) -> DisputeId {
    DisputeId::parse(value).expect("valid dispute id")
}

pub fn merchant() -> MerchantId {
    MerchantId::parse("merchant_1").expect("valid merchant id")
}

pub fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, hour, 0, 0)
        .single()
        .expect("valid time")
}

pub fn initiate(amount: &str, capture_mode: CaptureMode) -> PaymentCommand {
    PaymentCommand::Initiate(InitiatePayment {
        merchant_id: merchant(),
        order_id: OrderId::parse("order_1").expect("valid order id"),
        environment: Environment::Test,
        amount: positive(amount),
        capture_mode,
        payment_method: Some(text("card")),
    })
}

pub fn approve(amount: Option<&str>) -> PaymentCommand {
    PaymentCommand::RecordAuthorization(RecordAuthorization::Approved {
        authorized_amount: amount.map(positive),
        authorization_code: Some(text("A1B2C3")),
        gateway_reference: Some(text("pi_123")),
        expires_at: Some(at(12)),
    })
}

pub fn decline(code: &str) -> PaymentCommand {
    PaymentCommand::RecordAuthorization(RecordAuthorization::Declined {
        decline_code: Some(text(code)),
        category: None,
        retry_may_help: None,
    })
}

pub fn capture(id: &str, amount: Option<&str>, final_capture: bool) -> PaymentCommand {
    PaymentCommand::Capture(CapturePayment {
        capture_id: capture_id(id),
        amount: amount.map(positive),
        final_capture,
    })
}

pub fn refund(id: &str, amount: Option<&str>) -> PaymentCommand {
    PaymentCommand::Refund(RefundPayment {
        refund_id: refund_id(id),
        amount: amount.map(positive),
        reason: Some(text("requested_by_customer")),
    })
}

pub fn refund_outcome(id: &str, succeeded: bool) -> PaymentCommand {
    PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
        refund_id: refund_id(id),
        outcome: if succeeded {
            RefundOutcome::Succeeded
        } else {
            RefundOutcome::Failed {
                failure_reason: Some(text("expired_or_canceled_card")),
            }
        },
    })
}

pub fn open_dispute(id: &str, amount: &str, fee: &str) -> PaymentCommand {
    PaymentCommand::OpenDispute(OpenDispute {
        dispute_id: dispute_id(id),
        amount: positive(amount),
        reason: text("fraudulent"),
        evidence_due_by: Some(at(20)),
        fee: Some(usd(fee)),
    })
}

pub fn resolve(id: &str, outcome: DisputeOutcome) -> PaymentCommand {
    PaymentCommand::ResolveDispute(ResolveDispute {
        dispute_id: dispute_id(id),
        outcome,
    })
}

pub fn void() -> PaymentCommand {
    PaymentCommand::Void(VoidPayment {
        reason: Some(text("customer_cancelled")),
    })
}

/// Runs commands from nothing, each of which must be accepted; returns the events and state.
pub fn given(commands: &[PaymentCommand]) -> (Vec<PaymentEvent>, PaymentState) {
    let mut events = Vec::new();
    let mut state = PaymentState::default();
    for command in commands {
        let new = decide(&state, command)
            .unwrap_or_else(|error| panic!("given {command:?} was refused: {error}"));
        state = new.iter().fold(state, evolve);
        events.extend(new);
    }
    (events, state)
}

/// Asserts that the command is refused for the named rule.
pub fn assert_refused(state: &PaymentState, command: &PaymentCommand, rule: &str) {
    match decide(state, command) {
        Ok(events) => panic!("expected {rule}, but {command:?} recorded {events:?}"),
        Err(error) => assert_eq!(error.rule(), rule, "{error}"),
    }
}
