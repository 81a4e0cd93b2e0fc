//! From a verified Stripe event to the ledger facts it reports.
//!
//! [`map_event`] is pure: it reads the event and the caller's [`MappingContext`] and returns a
//! [`GatewayFact`]. Applying it (loading the stream, deciding, appending once per event id) is
//! the caller's; [`decide_fact`] (ledger-core's `payment::gateway_fact`) is the pure core of
//! that loop.
//!
//! # What each event becomes
//! Every mapped event yields the *full ordered list* of commands a ledger that had seen
//! nothing of this payment would need, as far as the object can tell. Commands the ledger
//! already holds are then refused with an "already recorded" rule and skipped
//! ([`classify_refusal`]). This makes the mapping independent of delivery order and
//! re-delivery: one PaymentIntent's events may arrive in any order, any number of times.
//!
//! | event | commands |
//! |---|---|
//! | `payment_intent.created` | Initiate |
//! | `payment_intent.amount_capturable_updated` | Initiate(MANUAL), Approved(amount_capturable) |
//! | `payment_intent.succeeded`, automatic capture | Initiate(AUTOMATIC), Approved(amount_received) |
//! | `payment_intent.succeeded`, manual capture | Initiate(MANUAL), Approved, Capture(`ch_…`, amount_received, final) |
//! | `payment_intent.payment_failed` | Initiate, Declined(decline_code, else code) |
//! | `payment_intent.canceled` | Initiate, Void(cancellation_reason) |
//! | `charge.captured` | Initiate(MANUAL), Approved(amount), Capture(`ch_…`, amount_captured, final) |
//! | `charge.refunded` | per embedded refund: Refund(`re_…`) and its outcome |
//! | `refund.created` / `.updated` / `.failed` | Refund(`re_…`) and the outcome its status implies |
//! | `charge.dispute.created` / `.updated` / `.closed` | OpenDispute(`dp_…`) and what its status implies |
//! | `payout.paid` / `payout.failed` | a [`PayoutFact`] (RecordPayout PAID / FAILED) |
//! | anything else | [`GatewayFact::Ignored`] |
//!
//! # Decisions worth knowing
//! - **Stripe's ids are the ledger's item ids**: capture id = charge id (`ch_…`), refund id =
//!   `re_…`, dispute id = `dp_…`, payout id = `po_…`. So `charge.captured` and
//!   `payment_intent.succeeded` reporting the same capture produce the same Capture command,
//!   and the second is refused as `duplicate_capture_id` and skipped.
//! - **Automatic capture** is the ledger's own AUTOMATIC mode: an AUTOMATIC payment captures
//!   its authorized amount when authorized, under the capture id
//!   [`ledger_core::payment::decide::AUTOMATIC_CAPTURE_ID`]. `payment_intent.succeeded` of an
//!   automatic intent (`automatic` or `automatic_async`) therefore maps to
//!   Initiate(AUTOMATIC) + Approved(amount_received) and no Capture: an explicit Capture would
//!   be refused, since the core has already captured everything. Stripe sends no
//!   `charge.captured` for automatic captures, so no other event reports a second capture.
//!   Settlement imports must match such a payment's `ch_…` to the capture id `automatic`.
//! - **Manual capture is final**: Stripe releases whatever a capture leaves uncaptured, so a
//!   partial capture (`amount_captured` < `amount`) is a final capture of `amount_captured`;
//!   the ledger releases the rest too. Multicapture is not supported: its later captures of
//!   the same charge would be refused as `duplicate_capture_id`.
//! - **Declines**: `last_payment_error.decline_code`, else `.code`, else `payment_failed`; the
//!   core classifies it (hard, soft, processing error). A declined ledger payment is final, so
//!   a PaymentIntent that later succeeds with another card is refused as `payment_is_final`
//!   and surfaces as a [`RefusalKind::Conflict`] rather than being skipped.
//! - **Refund statuses**: `pending` / `requires_action` → requested only; `succeeded` →
//!   RefundSucceeded; `failed` / `canceled` → RefundFailed with `failure_reason` (else the
//!   status). Refunds with reason `expired_uncaptured_charge` are Stripe releasing an
//!   authorization, not returning captured money: ignored (`payment_intent.canceled` reports
//!   the release). `charge.refunded` maps only the refunds its charge embeds (API versions
//!   before 2022-11-15 or expanded); otherwise it is ignored, and `refund.*` events carry them.
//! - **Dispute statuses**: `needs_response` → OpenDispute; `under_review` → OpenDispute,
//!   SubmitDisputeEvidence(the evidence's non-null fields); `won` / `lost` → OpenDispute,
//!   ResolveDispute(WON / LOST). Inquiries (`warning_needs_response`, `warning_under_review`,
//!   `warning_closed`) withdraw no funds and are ignored; when one escalates, its
//!   `charge.dispute.updated` to `needs_response` opens the dispute. `prevented` and the retired
//!   `charge_refunded` closed without a chargeback: ignored. The dispute fee is the sum of the
//!   fees of its withdrawal balance transactions when they are in the dispute's currency;
//!   otherwise none (a fee in another settlement currency belongs to settlement, not here).
//! - **Prerequisites an object cannot describe**: a refund or dispute object says nothing of
//!   the capture it needs, and a charge cannot tell an automatic from a manual intent, so
//!   their commands start at the refund or dispute. When the payment is not there yet, the
//!   refusal is [`RefusalKind::AwaitsEarlierFact`]: park the event or let Stripe retry.
//! - **Identity**: on a Connect event (top-level `account`) the account decides the merchant;
//!   metadata naming another merchant is a conflict, and so is a fact about a payment of
//!   another merchant. A ledger payment is linked to one PaymentIntent: a fact of another
//!   PaymentIntent than the one the payment holds is a conflict ([`identity_conflict`]).
//! - **Payouts** belong to settlement batches, which Stripe's events do not name: the caller
//!   finds the batch holding the payout id (recorded from the payout reconciliation report)
//!   and decides the [`PayoutFact`]'s `RecordPayout` against it.

mod charge;
mod dispute;
mod fields;
mod identity;
mod payment_commands;
mod payment_intent;
mod payout;
mod refund;

use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use ledger_core::ids::{MerchantId, PaymentId};
use ledger_core::payment::PaymentCommand;
use ledger_core::settlement::RecordPayout;

use super::connect::ConnectedAccounts;
use super::error::StripeError;
use super::event::VerifiedEvent;
use fields::FieldReader;

pub use identity::{
    identity_conflict, payment_id_for_payment_intent, LEDGER_PAYMENT_ID_KEY, MERCHANT_ID_KEY,
    ORDER_ID_KEY,
};
/// The rules of repeated, late and early gateway facts are the payment's own (ledger-core).
pub use ledger_core::payment::gateway_fact::{
    classify_refusal, decide_fact, is_already_applied, FactRefused, RefusalKind,
};

/// What the caller knows that the event does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingContext {
    /// The merchant of events that name none (no `metadata.merchant_id`, no Connect account).
    pub default_merchant_id: MerchantId,
    /// The ledger payment already linked to the event's PaymentIntent (see
    /// [`payment_intent_id`]), when the caller has one on record. Used when the object
    /// carries no `metadata.ledger_payment_id`, before falling back to the UUIDv5.
    pub linked_payment_id: Option<PaymentId>,
    /// The configured merchants of Connect accounts; an account not in it is the merchant of
    /// its own id (see `identity`).
    pub connected_accounts: Arc<ConnectedAccounts>,
}

impl MappingContext {
    pub fn new(default_merchant_id: MerchantId) -> MappingContext {
        MappingContext {
            default_merchant_id,
            linked_payment_id: None,
            connected_accounts: Arc::default(),
        }
    }
}

/// What one Stripe event reports to the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayFact {
    /// Commands for one payment stream, in order.
    Payment(PaymentFact),
    /// A payout of a settlement batch.
    Payout(PayoutFact),
    /// Nothing to record; answer 200 and keep the event as ignored, with this reason.
    Ignored(IgnoredReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFact {
    pub payment_id: PaymentId,
    /// Stripe's `pi_…`, the gateway reference the caller may index to link later events.
    pub payment_intent_id: String,
    /// Everything a fresh ledger would need, in order; see [`decide_fact`].
    pub commands: Vec<PaymentCommand>,
    /// On a Connect event, the merchant its account is: a payment of another merchant is a
    /// conflict, whatever the commands ([`identity_conflict`]).
    pub connected_merchant: Option<MerchantId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutFact {
    pub merchant_id: MerchantId,
    /// Payout id (`po_…`), amount and PAID or FAILED.
    pub command: RecordPayout,
    /// Stripe's expected arrival date, for display: PAID and FAILED do not record it.
    pub arrival_date: Option<NaiveDate>,
}

/// Why an event records nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredReason {
    /// An event type the ledger does not map.
    UnhandledEventType { event_type: String },
    /// A charge, refund or dispute without a PaymentIntent (the legacy Charges API).
    NoPaymentIntent,
    /// Stripe releasing an uncaptured authorization through a refund object.
    ExpiredUncapturedChargeRefund,
    /// `charge.refunded` without its refunds embedded; `refund.*` events carry them.
    RefundsNotIncluded,
    /// An inquiry, not a chargeback: no funds withdrawn.
    DisputeInquiry { status: String },
    /// A dispute closed without a chargeback outcome (`prevented`, `charge_refunded`) or in a
    /// status this mapping does not know.
    DisputeWithoutChargebackOutcome { status: String },
}

impl IgnoredReason {
    /// A stable snake_case name, for the ignored-events record.
    pub fn code(&self) -> &'static str {
        match self {
            IgnoredReason::UnhandledEventType { .. } => "unhandled_event_type",
            IgnoredReason::NoPaymentIntent => "no_payment_intent",
            IgnoredReason::ExpiredUncapturedChargeRefund => "expired_uncaptured_charge_refund",
            IgnoredReason::RefundsNotIncluded => "refunds_not_included",
            IgnoredReason::DisputeInquiry { .. } => "dispute_inquiry",
            IgnoredReason::DisputeWithoutChargebackOutcome { .. } => {
                "dispute_without_chargeback_outcome"
            }
        }
    }
}

impl fmt::Display for IgnoredReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoredReason::UnhandledEventType { event_type } => {
                write!(formatter, "the ledger does not map `{event_type}` events")
            }
            IgnoredReason::NoPaymentIntent => {
                formatter.write_str("the object belongs to no PaymentIntent")
            }
            IgnoredReason::ExpiredUncapturedChargeRefund => formatter.write_str(
                "the refund releases an expired authorization; payment_intent.canceled records it",
            ),
            IgnoredReason::RefundsNotIncluded => formatter
                .write_str("the charge does not embed its refunds; refund.* events record them"),
            IgnoredReason::DisputeInquiry { status } => {
                write!(
                    formatter,
                    "the dispute is an inquiry ({status}); no funds moved"
                )
            }
            IgnoredReason::DisputeWithoutChargebackOutcome { status } => write!(
                formatter,
                "the dispute's status `{status}` records no chargeback outcome"
            ),
        }
    }
}

/// Maps a verified event to the ledger facts it reports. An error means the event is signed
/// and well-formed but a field the mapping needs does not fit the ledger (an unknown currency,
/// a zero amount, a malformed `ledger_payment_id`).
pub fn map_event(
    event: &VerifiedEvent,
    context: &MappingContext,
) -> Result<GatewayFact, StripeError> {
    let input = MappingInput {
        event,
        context,
        reader: FieldReader::new(event.id()),
    };
    match MAPPERS
        .iter()
        .find(|(event_type, _)| *event_type == event.event_type())
    {
        Some((_, mapper)) => mapper(&input),
        None => Ok(GatewayFact::Ignored(IgnoredReason::UnhandledEventType {
            event_type: event.event_type().to_owned(),
        })),
    }
}

type Mapper = fn(&MappingInput<'_>) -> Result<GatewayFact, StripeError>;

/// The event types the ledger maps, each with its mapping; every other type is ignored.
const MAPPERS: [(&str, Mapper); 15] = [
    ("payment_intent.created", payment_intent::map),
    (
        "payment_intent.amount_capturable_updated",
        payment_intent::map,
    ),
    ("payment_intent.succeeded", payment_intent::map),
    ("payment_intent.payment_failed", payment_intent::map),
    ("payment_intent.canceled", payment_intent::map),
    ("charge.captured", charge::map_charge_captured),
    ("charge.refunded", refund::map_charge_refunded),
    ("refund.created", refund::map_refund),
    ("refund.updated", refund::map_refund),
    ("refund.failed", refund::map_refund),
    ("charge.dispute.created", dispute::map),
    ("charge.dispute.updated", dispute::map),
    ("charge.dispute.closed", dispute::map),
    ("payout.paid", payout::map),
    ("payout.failed", payout::map),
];

/// The Stripe event types the ledger maps to facts, in the order of [`map_event`]'s table:
/// the `enabled_events` of a webhook endpoint that sends the ledger what it uses and nothing
/// it would only record as ignored.
pub fn handled_event_types() -> impl Iterator<Item = &'static str> {
    MAPPERS.iter().map(|(event_type, _)| *event_type)
}

/// The PaymentIntent id (`pi_…`) an event concerns, read without mapping it: the object's own
/// id for a PaymentIntent, its `payment_intent` field for a charge, refund or dispute. The
/// caller uses it to look up a linked payment id before calling [`map_event`].
pub fn payment_intent_id(event: &VerifiedEvent) -> Option<String> {
    let object = &event.event().data.object;
    let id = if object.get("object").and_then(|kind| kind.as_str()) == Some("payment_intent") {
        object.get("id")
    } else {
        object
            .get("payment_intent")
            .map(|reference| reference.get("id").unwrap_or(reference))
    };
    id.and_then(|id| id.as_str()).map(str::to_owned)
}

/// One event being mapped, with what every mapping function needs.
struct MappingInput<'a> {
    event: &'a VerifiedEvent,
    context: &'a MappingContext,
    reader: FieldReader<'a>,
}
