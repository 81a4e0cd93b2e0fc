//! The commands several events share: initiate, approve, capture. Built the same way from
//! every event, so that overlapping events produce identical commands.

use ledger_core::payment::{
    CaptureMode, CapturePayment, InitiatePayment, PaymentCommand, RecordAuthorization,
};
use ledger_core::PositiveMoney;

use super::{identity, MappingInput};
use crate::gateway::error::StripeError;
use crate::gateway::objects::{Charge, Metadata};

/// What an initiation needs from a PaymentIntent or a Charge.
pub(super) struct Initiation<'a> {
    pub metadata: &'a Metadata,
    pub payment_intent_id: &'a str,
    pub amount: PositiveMoney,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<&'a str>,
}

/// Stripe's `capture_method`: `manual` is the ledger's MANUAL; `automatic`,
/// `automatic_async` and an absent value (Stripe's default) are AUTOMATIC.
pub(super) fn capture_mode(capture_method: Option<&str>) -> CaptureMode {
    match capture_method {
        Some("manual") => CaptureMode::Manual,
        _ => CaptureMode::Automatic,
    }
}

pub(super) fn initiate(
    input: &MappingInput<'_>,
    initiation: &Initiation<'_>,
) -> Result<PaymentCommand, StripeError> {
    let reader = input.reader;
    Ok(PaymentCommand::Initiate(InitiatePayment {
        merchant_id: identity::merchant_id(
            reader,
            initiation.metadata,
            input.event.event().account.as_deref(),
            input.context,
        )?,
        order_id: identity::order_id(reader, initiation.metadata, initiation.payment_intent_id)?,
        environment: input.event.environment(),
        amount: initiation.amount,
        capture_mode: initiation.capture_mode,
        payment_method: reader.optional_text(
            "data.object.payment_method_details.type",
            initiation.payment_method,
        )?,
    }))
}

/// An approval of `authorized`, with the authorization code and expiry the charge reports
/// (when the event carries the charge) and the PaymentIntent id as gateway reference.
pub(super) fn approve(
    input: &MappingInput<'_>,
    authorized: PositiveMoney,
    charge: Option<&Charge>,
    payment_intent_id: &str,
) -> Result<PaymentCommand, StripeError> {
    let reader = input.reader;
    let capture_before = charge
        .and_then(|charge| charge.payment_method_details.as_ref())
        .and_then(|details| details.card.as_ref())
        .and_then(|card| card.capture_before);
    Ok(PaymentCommand::RecordAuthorization(
        RecordAuthorization::Approved {
            authorized_amount: Some(authorized),
            authorization_code: reader.optional_text(
                "data.object.authorization_code",
                charge.and_then(|charge| charge.authorization_code.as_deref()),
            )?,
            gateway_reference: Some(reader.text("data.object.id", payment_intent_id)?),
            expires_at: capture_before
                .map(|seconds| {
                    reader.timestamp(
                        "data.object.payment_method_details.card.capture_before",
                        seconds,
                    )
                })
                .transpose()?,
        },
    ))
}

/// A final capture under the charge's id (see the module docs on manual capture).
pub(super) fn capture(
    input: &MappingInput<'_>,
    charge_id: &str,
    amount: PositiveMoney,
) -> Result<PaymentCommand, StripeError> {
    Ok(PaymentCommand::Capture(CapturePayment {
        capture_id: input.reader.id(
            "data.object.latest_charge",
            charge_id,
            ledger_core::ids::CaptureId::parse,
        )?,
        amount: Some(amount),
        final_capture: true,
    }))
}

/// The payment method a charge reports, else the intent's only allowed one.
pub(super) fn payment_method<'a>(
    charge: Option<&'a Charge>,
    allowed_types: &'a [String],
) -> Option<&'a str> {
    charge
        .and_then(|charge| charge.payment_method_details.as_ref())
        .and_then(|details| details.method_type.as_deref())
        .or(match allowed_types {
            [only] => Some(only.as_str()),
            _ => None,
        })
}
