//! `charge.dispute.created`, `.updated`, `.closed`: chargebacks, mapped from the dispute's
//! status so that any of its events, in any order, yields a prefix of the same commands.
//!
//! | status | commands |
//! |---|---|
//! | `needs_response` | OpenDispute |
//! | `under_review` | OpenDispute, SubmitDisputeEvidence |
//! | `won` / `lost` | OpenDispute, ResolveDispute(WON / LOST) |
//! | `warning_*` (inquiries) | ignored: no funds are withdrawn |
//! | `prevented`, `charge_refunded`, unknown | ignored: no chargeback outcome |

use ledger_core::ids::DisputeId;
use ledger_core::payment::decide::MAX_EVIDENCE_BYTES;
use ledger_core::payment::{
    DisputeOutcome, OpenDispute, PaymentCommand, ResolveDispute, SubmitDisputeEvidence,
};
use ledger_core::{Currency, Money};
use serde_json::{Map, Value};

use super::{identity, GatewayFact, IgnoredReason, MappingInput, PaymentFact};
use crate::gateway::error::StripeError;
use crate::gateway::objects::{BalanceTransaction, Dispute};

pub(super) fn map(input: &MappingInput<'_>) -> Result<GatewayFact, StripeError> {
    let dispute: Dispute = input.event.event().object()?;
    let status = dispute.status.as_str();
    let next = match status {
        "needs_response" => None,
        "under_review" => Some(Next::SubmitEvidence),
        "won" => Some(Next::Resolve(DisputeOutcome::Won)),
        "lost" => Some(Next::Resolve(DisputeOutcome::Lost)),
        inquiry if inquiry.starts_with("warning_") => {
            return Ok(GatewayFact::Ignored(IgnoredReason::DisputeInquiry {
                status: dispute.status.clone(),
            }))
        }
        _ => {
            return Ok(GatewayFact::Ignored(
                IgnoredReason::DisputeWithoutChargebackOutcome {
                    status: dispute.status.clone(),
                },
            ))
        }
    };
    let Some(payment_intent) = dispute.payment_intent.as_ref() else {
        return Ok(GatewayFact::Ignored(IgnoredReason::NoPaymentIntent));
    };
    let payment_intent_id = payment_intent.id().to_owned();
    let dispute_id = input
        .reader
        .id("data.object.id", &dispute.id, DisputeId::parse)?;
    let mut commands = vec![open(input, &dispute, dispute_id.clone())?];
    match next {
        None => {}
        Some(Next::SubmitEvidence) => commands.push(PaymentCommand::SubmitDisputeEvidence(
            SubmitDisputeEvidence {
                dispute_id,
                evidence: evidence(&dispute),
            },
        )),
        Some(Next::Resolve(outcome)) => {
            commands.push(PaymentCommand::ResolveDispute(ResolveDispute {
                dispute_id,
                outcome,
            }))
        }
    }
    Ok(GatewayFact::Payment(PaymentFact {
        payment_id: identity::payment_id(
            input.reader,
            &dispute.metadata,
            &payment_intent_id,
            input.context,
        )?,
        payment_intent_id,
        commands,
        connected_merchant: identity::connected_merchant(input)?,
    }))
}

/// What follows the opening, by status.
enum Next {
    SubmitEvidence,
    Resolve(DisputeOutcome),
}

fn open(
    input: &MappingInput<'_>,
    dispute: &Dispute,
    dispute_id: DisputeId,
) -> Result<PaymentCommand, StripeError> {
    let reader = input.reader;
    let currency = reader.currency("data.object.currency", &dispute.currency)?;
    let due_by = dispute
        .evidence_details
        .as_ref()
        .and_then(|details| details.due_by);
    Ok(PaymentCommand::OpenDispute(OpenDispute {
        dispute_id,
        amount: reader.positive_money("data.object.amount", dispute.amount, currency)?,
        reason: reader.text("data.object.reason", &dispute.reason)?,
        evidence_due_by: due_by
            .map(|seconds| reader.timestamp("data.object.evidence_details.due_by", seconds))
            .transpose()?,
        fee: withdrawal_fee(input, &dispute.balance_transactions, currency)?,
    }))
}

/// The fee Stripe charged for the dispute: the fees of the withdrawal transactions (negative
/// amounts), when all of them are in the dispute's currency. A reinstatement's fee (a won
/// dispute's refunded fee) is not part of the opening. `None` when there is no withdrawal yet
/// or it settled in another currency.
fn withdrawal_fee(
    input: &MappingInput<'_>,
    transactions: &[BalanceTransaction],
    currency: Currency,
) -> Result<Option<Money>, StripeError> {
    let withdrawals: Vec<&BalanceTransaction> = transactions
        .iter()
        .filter(|transaction| transaction.amount < 0)
        .collect();
    let same_currency = withdrawals.iter().all(|transaction| {
        Currency::parse(&transaction.currency).is_ok_and(|parsed| parsed == currency)
    });
    if withdrawals.is_empty() || !same_currency {
        return Ok(None);
    }
    let fee_minor = withdrawals
        .iter()
        .try_fold(0_i64, |sum, transaction| sum.checked_add(transaction.fee))
        .ok_or_else(|| {
            input
                .reader
                .invalid("data.object.balance_transactions.fee", "overflows")
        })?;
    let fee = input
        .reader
        .money("data.object.balance_transactions.fee", fee_minor, currency)?;
    Ok((!fee.is_negative()).then_some(fee))
}

/// The evidence as submitted: the non-null fields of Stripe's `evidence` object (most of its
/// thirty-odd fields are null). Evidence texts can exceed what the ledger keeps per
/// submission; then only the names of the submitted fields are recorded, with the dispute id
/// to find the documents in Stripe.
fn evidence(dispute: &Dispute) -> Value {
    let fields: Map<String, Value> = match &dispute.evidence {
        Some(Value::Object(fields)) => fields
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        _ => Map::new(),
    };
    let size = serde_json::to_vec(&fields).map_or(usize::MAX, |bytes| bytes.len());
    if size <= MAX_EVIDENCE_BYTES {
        return Value::Object(fields);
    }
    serde_json::json!({
        "stripe_dispute_id": dispute.id,
        "submitted_fields": fields.keys().collect::<Vec<_>>(),
        "omitted": "the evidence is larger than the ledger keeps; it is held by Stripe",
    })
}
