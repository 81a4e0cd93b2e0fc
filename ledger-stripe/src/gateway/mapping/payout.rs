//! `payout.paid` and `payout.failed`: the payout that moves a settlement batch's net to the
//! merchant's bank reached it, or bounced.

use ledger_core::ids::PayoutId;
use ledger_core::settlement::{PayoutUpdate, RecordPayout};

use super::{identity, GatewayFact, MappingInput, PayoutFact};
use crate::gateway::error::StripeError;
use crate::gateway::objects::Payout;

pub(super) fn map(input: &MappingInput<'_>) -> Result<GatewayFact, StripeError> {
    let payout: Payout = input.event.event().object()?;
    let reader = input.reader;
    let currency = reader.currency("data.object.currency", &payout.currency)?;
    let update = if input.event.event_type() == "payout.paid" {
        PayoutUpdate::Paid
    } else {
        // Stripe's message is for people; its code is the stable fallback.
        let reason = payout
            .failure_message
            .as_deref()
            .or(payout.failure_code.as_deref());
        PayoutUpdate::Failed {
            failure_reason: reader.optional_text("data.object.failure_message", reason)?,
        }
    };
    Ok(GatewayFact::Payout(PayoutFact {
        merchant_id: identity::merchant_id(
            reader,
            &payout.metadata,
            input.event.event().account.as_deref(),
            input.context,
        )?,
        command: RecordPayout {
            payout_id: reader.id("data.object.id", &payout.id, PayoutId::parse)?,
            amount: reader.positive_money("data.object.amount", payout.amount, currency)?,
            update,
        },
        arrival_date: payout
            .arrival_date
            .map(|seconds| reader.date("data.object.arrival_date", seconds))
            .transpose()?,
    }))
}
