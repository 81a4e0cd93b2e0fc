//! Which ledger payment, order and merchant a Stripe object belongs to.
//!
//! - Payment id: `metadata.ledger_payment_id` (a UUID) when the object carries it; else the
//!   id the caller linked to the PaymentIntent ([`MappingContext::linked_payment_id`]); else
//!   the UUIDv5 of the PaymentIntent id in the URL namespace, so that every event of one
//!   PaymentIntent lands on one stream without any lookup.
//! - Order id: `metadata.order_id`, else the PaymentIntent id.
//! - Merchant id: on a Connect event (a top-level `account`), the account's merchant: the one
//!   `LEDGER_STRIPE_CONNECTED_ACCOUNTS` names for it, else the merchant whose id is the
//!   account id (`acct_…`), so an account nobody configured is still its own merchant and
//!   never another one's. A `metadata.merchant_id` that names another merchant is a conflict
//!   for a person ([`StripeError::MerchantConflict`]), never applied: the account is what
//!   Stripe vouches for, metadata is whatever the platform's code wrote. Without an account,
//!   `metadata.merchant_id`, else the caller's default merchant.
//! - One PaymentIntent per payment: [`identity_conflict`] refuses a fact about a payment that
//!   belongs to another merchant than the event's account, or that holds another
//!   PaymentIntent as its authorization's gateway reference.
//!
//! Stripe copies a PaymentIntent's metadata to its Charge once, at confirmation; refunds and
//! disputes carry none of it. That is why the caller may pass the linked payment id: a
//! PaymentIntent created with `ledger_payment_id` has its refunds and disputes arrive without
//! it.

use ledger_core::ids::{MerchantId, OrderId, PaymentId};
use ledger_core::payment::state::Authorization;
use ledger_core::payment::PaymentState;
use uuid::Uuid;

use super::fields::FieldReader;
use super::{MappingContext, MappingInput, PaymentFact};
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
        .filter(|text| !text.is_empty())
        .map(|merchant| {
            reader.id(
                "data.object.metadata.merchant_id",
                merchant,
                MerchantId::parse,
            )
        })
        .transpose()?;
    let Some(account) = account else {
        return Ok(stated.unwrap_or_else(|| context.default_merchant_id.clone()));
    };
    let merchant = account_merchant(reader, account, context)?;
    match stated {
        Some(stated) if stated != merchant => {
            Err(reader.merchant_conflict(account, &merchant, &stated))
        }
        _ => Ok(merchant),
    }
}

/// The merchant a Connect account is: configured, else the one of the account's own id.
fn account_merchant(
    reader: FieldReader<'_>,
    account: &str,
    context: &MappingContext,
) -> Result<MerchantId, StripeError> {
    match context.connected_accounts.merchant_of(account) {
        Some(merchant) => Ok(merchant.clone()),
        None => reader.id("account", account, MerchantId::parse),
    }
}

/// The merchant of the event's Connect account, if it has one.
pub(super) fn connected_merchant(
    input: &MappingInput<'_>,
) -> Result<Option<MerchantId>, StripeError> {
    input
        .event
        .event()
        .account
        .as_deref()
        .map(|account| account_merchant(input.reader, account, input.context))
        .transpose()
}

/// Stripe's prefix of PaymentIntent ids: a gateway reference with it is a PaymentIntent link.
const PAYMENT_INTENT_PREFIX: &str = "pi_";

/// Why `fact` must not be applied to the payment in `state`, if it must not: the event's
/// Connect account is another merchant than the payment's, or the payment's authorization
/// holds another PaymentIntent. Either way the gateway and the ledger disagree about who or
/// what the payment is, and applying the fact would move money on the wrong payment. A
/// payment that does not exist yet has nothing to disagree with.
pub fn identity_conflict(state: &PaymentState, fact: &PaymentFact) -> Option<String> {
    let payment = state.payment.as_ref()?;
    if let Some(merchant) = &fact.connected_merchant {
        if payment.merchant_id != *merchant {
            return Some(format!(
                "payment {} belongs to merchant {}, but the event's connected account is merchant {merchant}; the account decides the merchant, so nothing was applied",
                fact.payment_id, payment.merchant_id
            ));
        }
    }
    if let Authorization::Approved {
        gateway_reference: Some(reference),
        ..
    } = &payment.authorization
    {
        let reference = reference.as_str();
        if reference.starts_with(PAYMENT_INTENT_PREFIX) && reference != fact.payment_intent_id {
            return Some(format!(
                "payment {} is linked to PaymentIntent {reference}, not {}; a ledger payment is linked to one PaymentIntent, so nothing was applied",
                fact.payment_id, fact.payment_intent_id
            ));
        }
    }
    None
}
