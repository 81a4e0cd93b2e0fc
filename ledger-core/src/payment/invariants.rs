//! The payment invariants of domain.md, checked on any folded state. `decide` asserts them in
//! debug builds after every decision; `ledger verify` and the property tests check them on
//! every stream.

use std::collections::HashSet;

use rust_decimal::Decimal;

use super::state::{Authorization, Payment, PaymentState, RefundStatus};

/// One broken invariant, described for an auditor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant broken: {0}")]
pub struct InvariantViolation(pub String);

fn violation(text: impl Into<String>) -> Result<(), InvariantViolation> {
    Err(InvariantViolation(text.into()))
}

/// Checks invariant 2 of domain.md (and the currency rule) on a folded payment.
pub fn check(state: &PaymentState) -> Result<(), InvariantViolation> {
    let Some(payment) = &state.payment else {
        return if state.version == 0 {
            Ok(())
        } else {
            violation("events before PaymentInitiated")
        };
    };
    check_currency(payment)?;
    check_amounts(payment)?;
    check_unique_ids(payment)
}

fn check_currency(payment: &Payment) -> Result<(), InvariantViolation> {
    let currency = payment.currency();
    let mut amounts = vec![payment.authorized_amount()];
    amounts.extend(payment.captures.iter().map(|capture| capture.amount));
    amounts.extend(payment.refunds.iter().map(|refund| refund.amount));
    amounts.extend(
        payment
            .disputes
            .iter()
            .flat_map(|dispute| [dispute.amount, dispute.fee]),
    );
    match amounts.iter().find(|amount| amount.currency() != currency) {
        Some(amount) => violation(format!("{amount} in a {currency} payment")),
        None => Ok(()),
    }
}

fn check_amounts(payment: &Payment) -> Result<(), InvariantViolation> {
    // Sums of plain decimals, not the payment's own (which refuse to exist past the range):
    // a stream that broke the bounds is reported here, not panicked on.
    let requested = payment.requested_amount.amount();
    let authorized = payment.authorized_amount().amount();
    let captured: Decimal = payment
        .captures
        .iter()
        .map(|capture| capture.amount.amount())
        .sum();
    let withheld: Decimal = payment
        .refunds
        .iter()
        .filter(|refund| refund.status != RefundStatus::Failed)
        .map(|refund| refund.amount.amount())
        .chain(
            payment
                .disputes
                .iter()
                .filter(|dispute| dispute.withholds_funds())
                .map(|dispute| dispute.amount.amount()),
        )
        .sum();
    if requested <= Decimal::ZERO {
        return violation("requested amount is not positive");
    }
    if matches!(payment.authorization, Authorization::Approved { .. })
        && authorized <= Decimal::ZERO
    {
        return violation("authorized amount is not positive");
    }
    if authorized > requested {
        return violation(format!("authorized {authorized} > requested {requested}"));
    }
    if captured > authorized {
        return violation(format!("captured {captured} > authorized {authorized}"));
    }
    if withheld > captured {
        return violation(format!(
            "refunds and disputes {withheld} > captured {captured}"
        ));
    }
    let amounts = payment
        .captures
        .iter()
        .map(|capture| capture.amount)
        .chain(payment.refunds.iter().map(|refund| refund.amount))
        .chain(payment.disputes.iter().map(|dispute| dispute.amount));
    for amount in amounts {
        if !amount.is_positive() {
            return violation(format!("non-positive amount {amount}"));
        }
    }
    if payment
        .disputes
        .iter()
        .any(|dispute| dispute.fee.is_negative())
    {
        return violation("negative dispute fee");
    }
    Ok(())
}

fn check_unique_ids(payment: &Payment) -> Result<(), InvariantViolation> {
    let mut captures = HashSet::new();
    let mut refunds = HashSet::new();
    let mut disputes = HashSet::new();
    let unique = payment
        .captures
        .iter()
        .all(|capture| captures.insert(&capture.capture_id))
        && payment
            .refunds
            .iter()
            .all(|refund| refunds.insert(&refund.refund_id))
        && payment
            .disputes
            .iter()
            .all(|dispute| disputes.insert(&dispute.dispute_id));
    if unique {
        Ok(())
    } else {
        violation("a capture, refund or dispute id is used twice")
    }
}
