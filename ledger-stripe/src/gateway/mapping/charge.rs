//! `charge.captured`: a manual-capture charge was captured, in full or in part.
//!
//! Stripe sends this event only for charges captured after authorization, so the payment is
//! MANUAL. The commands equal those of the matching `payment_intent.succeeded`: same
//! authorization, same capture id (the charge id), same amount, final.

use ledger_core::payment::CaptureMode;

use super::payment_commands::{approve, capture, initiate, payment_method, Initiation};
use super::{identity, GatewayFact, IgnoredReason, MappingInput, PaymentFact};
use crate::gateway::error::StripeError;
use crate::gateway::objects::Charge;

pub(super) fn map_charge_captured(input: &MappingInput<'_>) -> Result<GatewayFact, StripeError> {
    let charge: Charge = input.event.event().object()?;
    let Some(payment_intent) = charge.payment_intent.as_ref() else {
        return Ok(GatewayFact::Ignored(IgnoredReason::NoPaymentIntent));
    };
    let payment_intent_id = payment_intent.id().to_owned();
    let reader = input.reader;
    let currency = reader.currency("data.object.currency", &charge.currency)?;
    let authorized = reader.positive_money("data.object.amount", charge.amount, currency)?;
    // Renderings from before `amount_captured` existed capture the whole amount.
    let captured_minor = charge.amount_captured.unwrap_or(charge.amount);
    let captured =
        reader.positive_money("data.object.amount_captured", captured_minor, currency)?;
    let initiation = Initiation {
        metadata: &charge.metadata,
        payment_intent_id: &payment_intent_id,
        amount: authorized,
        capture_mode: CaptureMode::Manual,
        payment_method: payment_method(Some(&charge), &[]),
    };
    let commands = vec![
        initiate(input, &initiation)?,
        approve(input, authorized, Some(&charge), &payment_intent_id)?,
        capture(input, &charge.id, captured)?,
    ];
    Ok(GatewayFact::Payment(PaymentFact {
        payment_id: identity::payment_id(
            reader,
            &charge.metadata,
            &payment_intent_id,
            input.context,
        )?,
        payment_intent_id,
        commands,
        connected_merchant: identity::connected_merchant(input)?,
    }))
}
