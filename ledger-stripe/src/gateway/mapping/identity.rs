//! Which ledger payment, order and merchant a Stripe object belongs to.
//!
//! - Payment id: `metadata.ledger_payment_id` (a UUID) when the object carries it; else the
//!   id the caller linked to the PaymentIntent ([`MappingContext::linked_payment_id`]); else
//!   the UUIDv5 of the PaymentIntent id in the URL namespace, so that every event of one
//!   PaymentIntent lands on one stream without any lookup.
//! - Order id: `metadata.order_id`, else the PaymentIntent id.
//! - Merchant id: `metadata.merchant_id`, else the event's Connect `account`, else the
//!   caller's default merchant.
//!
//! Stripe copies a PaymentIntent's metadata to its Charge once, at confirmation; refunds and
//! disputes carry none of it. That is why the caller may pass the linked payment id: a
//! PaymentIntent created with `ledger_payment_id` has its refunds and disputes arrive without
//! it.

use ledger_core::ids::{MerchantId, OrderId, PaymentId};
use uuid::Uuid;

use super::fields::FieldReader;
use super::MappingContext;
use crate::gateway::error::StripeError;
use crate::gateway::objects::Metadata;

/// The metadata key naming the ledger payment a PaymentIntent pays.
pub const LEDGER_PAYMENT_ID_KEY: &str = "ledger_payment_id";
/// The metadata key naming the merchant's order.
pub const ORDER_ID_KEY: &str = "order_id";
/// The metadata key naming the merchant (for platforms that are not on Connect).
pub const MERCHANT_ID_KEY: &str = "merchant_id";

/// The ledger payment id of a PaymentIntent that names none: UUIDv5 of its id (`pi_…`) in the
/// RFC 4122 URL namespace (6ba7b811-9dad-11d1-80b4-00c04fd430c8).
pub fn payment_id_for_payment_intent(payment_intent_id: &str) -> PaymentId {
    PaymentId::from_uuid(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        payment_intent_id.as_bytes(),
    ))
}

pub(super) fn payment_id(
    reader: FieldReader<'_>,
    metadata: &Metadata,
    payment_intent_id: &str,
    context: &MappingContext,
) -> Result<PaymentId, StripeError> {
    match metadata.get(LEDGER_PAYMENT_ID_KEY) {
        Some(text) => PaymentId::parse(text.trim())
            .map_err(|error| reader.invalid("data.object.metadata.ledger_payment_id", error)),
        None => Ok(context
            .linked_payment_id
            .unwrap_or_else(|| payment_id_for_payment_intent(payment_intent_id))),
    }
}

pub(super) fn order_id(
    reader: FieldReader<'_>,
    metadata: &Metadata,
    payment_intent_id: &str,
) -> Result<OrderId, StripeError> {
    let order = metadata
        .get(ORDER_ID_KEY)
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
        .unwrap_or(payment_intent_id);
    reader.id("data.object.metadata.order_id", order, OrderId::parse)
}

pub(super) fn merchant_id(
    reader: FieldReader<'_>,
    metadata: &Metadata,
    account: Option<&str>,
    context: &MappingContext,
) -> Result<MerchantId, StripeError> {
    let stated = metadata
        .get(MERCHANT_ID_KEY)
        .map(|text| text.trim())
        .filter(|text| !text.is_empty());
    match (stated, account) {
        (Some(merchant), _) => reader.id(
            "data.object.metadata.merchant_id",
            merchant,
            MerchantId::parse,
        ),
        (None, Some(account)) => reader.id("account", account, MerchantId::parse),
        (None, None) => Ok(context.default_merchant_id.clone()),
    }
}
