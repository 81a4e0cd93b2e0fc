//! Refunds: `refund.created`, `refund.updated`, `refund.failed`, and `charge.refunded` when
//! its charge embeds the refund objects.
//!
//! Every refund maps from its current status alone, so whichever of its events arrives (and
//! in whatever order), the commands are a prefix of: Refund(`re_…`), then its outcome.

use ledger_core::ids::RefundId;
use ledger_core::payment::{PaymentCommand, RecordRefundOutcome, RefundOutcome, RefundPayment};

use super::{identity, GatewayFact, IgnoredReason, MappingInput, PaymentFact};
use crate::gateway::error::StripeError;
use crate::gateway::objects::{Charge, Refund};

/// Stripe's reason for a refund that releases an authorization that was never captured.
const EXPIRED_UNCAPTURED_CHARGE: &str = "expired_uncaptured_charge";

pub(super) fn map_refund(input: &MappingInput<'_>) -> Result<GatewayFact, StripeError> {
    let refund: Refund = input.event.event().object()?;
    if refund.reason.as_deref() == Some(EXPIRED_UNCAPTURED_CHARGE) {
        return Ok(GatewayFact::Ignored(
            IgnoredReason::ExpiredUncapturedChargeRefund,
        ));
    }
    let Some(payment_intent) = refund.payment_intent.as_ref() else {
        return Ok(GatewayFact::Ignored(IgnoredReason::NoPaymentIntent));
    };
    let payment_intent_id = payment_intent.id().to_owned();
    Ok(GatewayFact::Payment(PaymentFact {
        payment_id: identity::payment_id(
            input.reader,
            &refund.metadata,
            &payment_intent_id,
            input.context,
        )?,
        payment_intent_id,
        commands: refund_commands(input, &refund)?,
        connected_merchant: identity::connected_merchant(input)?,
    }))
}

pub(super) fn map_charge_refunded(input: &MappingInput<'_>) -> Result<GatewayFact, StripeError> {
    let charge: Charge = input.event.event().object()?;
    let Some(payment_intent) = charge.payment_intent.as_ref() else {
        return Ok(GatewayFact::Ignored(IgnoredReason::NoPaymentIntent));
    };
    let Some(refunds) = charge.refunds.as_ref() else {
        return Ok(GatewayFact::Ignored(IgnoredReason::RefundsNotIncluded));
    };
    let mut commands = Vec::new();
    // Stripe lists refunds newest first; the ledger records them oldest first.
    for refund in refunds.data.iter().rev() {
        if refund.reason.as_deref() != Some(EXPIRED_UNCAPTURED_CHARGE) {
            commands.extend(refund_commands(input, refund)?);
        }
    }
    if commands.is_empty() {
        return Ok(GatewayFact::Ignored(IgnoredReason::RefundsNotIncluded));
    }
    let payment_intent_id = payment_intent.id().to_owned();
    Ok(GatewayFact::Payment(PaymentFact {
        payment_id: identity::payment_id(
            input.reader,
            &charge.metadata,
            &payment_intent_id,
            input.context,
        )?,
        payment_intent_id,
        commands,
        connected_merchant: identity::connected_merchant(input)?,
    }))
}

/// Refund(`re_…`, amount, reason), then the outcome its status implies: `succeeded` →
/// succeeded; `failed` and `canceled` → failed with the failure reason; `pending`,
/// `requires_action` and unknown statuses → no outcome yet.
fn refund_commands(
    input: &MappingInput<'_>,
    refund: &Refund,
) -> Result<Vec<PaymentCommand>, StripeError> {
    let reader = input.reader;
    let currency = reader.currency("data.object.currency", &refund.currency)?;
    let refund_id = reader.id("data.object.id", &refund.id, RefundId::parse)?;
    let mut commands = vec![PaymentCommand::Refund(RefundPayment {
        refund_id: refund_id.clone(),
        amount: Some(reader.positive_money("data.object.amount", refund.amount, currency)?),
        reason: reader.optional_text("data.object.reason", refund.reason.as_deref())?,
    })];
    let status = refund.status.as_deref().unwrap_or("pending");
    let outcome = match status {
        "succeeded" => Some(RefundOutcome::Succeeded),
        "failed" | "canceled" => Some(RefundOutcome::Failed {
            failure_reason: reader.optional_text(
                "data.object.failure_reason",
                Some(refund.failure_reason.as_deref().unwrap_or(status)),
            )?,
        }),
        _ => None,
    };
    if let Some(outcome) = outcome {
        commands.push(PaymentCommand::RecordRefundOutcome(RecordRefundOutcome {
            refund_id,
            outcome,
        }));
    }
    Ok(commands)
}
