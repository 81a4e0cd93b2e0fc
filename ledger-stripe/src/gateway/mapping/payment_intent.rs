//! `payment_intent.*` events: the life of the authorization (see the module table in
//! [`super`]).

use ledger_core::payment::{CaptureMode, PaymentCommand, RecordAuthorization, VoidPayment};

use super::payment_commands::{
    approve, capture, capture_mode, initiate, payment_method, Initiation,
};
use super::{identity, GatewayFact, MappingInput, PaymentFact};
use crate::gateway::error::StripeError;
use crate::gateway::objects::{PaymentError, PaymentIntent};

/// The decline code recorded when Stripe names none.
const UNSPECIFIED_DECLINE_CODE: &str = "payment_failed";

pub(super) fn map(input: &MappingInput<'_>) -> Result<GatewayFact, StripeError> {
    let intent: PaymentIntent = input.event.event().object()?;
    let reader = input.reader;
    let currency = reader.currency("data.object.currency", &intent.currency)?;
    let mode = capture_mode(intent.capture_method.as_deref());
    let charge = intent.latest_charge_object();
    let initiation = Initiation {
        metadata: &intent.metadata,
        payment_intent_id: &intent.id,
        amount: reader.positive_money("data.object.amount", intent.amount, currency)?,
        capture_mode: mode,
        payment_method: payment_method(charge, &intent.payment_method_types),
    };
    let mut commands = vec![initiate(input, &initiation)?];
    match input.event.event_type() {
        "payment_intent.amount_capturable_updated" if intent.amount_capturable > 0 => {
            let capturable = reader.positive_money(
                "data.object.amount_capturable",
                intent.amount_capturable,
                currency,
            )?;
            commands.push(approve(input, capturable, charge, &intent.id)?);
        }
        "payment_intent.succeeded" => {
            let received = reader.positive_money(
                "data.object.amount_received",
                intent.amount_received,
                currency,
            )?;
            if mode == CaptureMode::Automatic {
                // The core captures an AUTOMATIC payment's authorized amount itself.
                commands.push(approve(input, received, charge, &intent.id)?);
            } else {
                let authorized_minor = charge.map_or(intent.amount, |charge| charge.amount);
                let authorized =
                    reader.positive_money("data.object.amount", authorized_minor, currency)?;
                let charge_id = intent.latest_charge_id().ok_or_else(|| {
                    reader.invalid(
                        "data.object.latest_charge",
                        "is missing: a succeeded manual-capture intent has a charge",
                    )
                })?;
                commands.push(approve(input, authorized, charge, &intent.id)?);
                commands.push(capture(input, charge_id, received)?);
            }
        }
        "payment_intent.payment_failed" => {
            commands.push(decline(input, intent.last_payment_error.as_ref())?);
        }
        "payment_intent.canceled" => {
            commands.push(PaymentCommand::Void(VoidPayment {
                reason: reader.optional_text(
                    "data.object.cancellation_reason",
                    intent.cancellation_reason.as_deref(),
                )?,
            }));
        }
        _ => {}
    }
    Ok(GatewayFact::Payment(PaymentFact {
        payment_id: identity::payment_id(reader, &intent.metadata, &intent.id, input.context)?,
        payment_intent_id: intent.id,
        commands,
        connected_merchant: identity::connected_merchant(input)?,
    }))
}

/// The issuer's `decline_code` says most; `code` covers failures without one (expired card,
/// processing error). The core classifies the code and whether a retry may help.
fn decline(
    input: &MappingInput<'_>,
    error: Option<&PaymentError>,
) -> Result<PaymentCommand, StripeError> {
    let code = error
        .and_then(|error| {
            [error.decline_code.as_deref(), error.code.as_deref()]
                .into_iter()
                .flatten()
                .map(str::trim)
                .find(|code| !code.is_empty())
        })
        .unwrap_or(UNSPECIFIED_DECLINE_CODE);
    Ok(PaymentCommand::RecordAuthorization(
        RecordAuthorization::Declined {
            decline_code: Some(
                input
                    .reader
                    .text("data.object.last_payment_error.decline_code", code)?,
            ),
            category: None,
            retry_may_help: None,
        },
    ))
}
