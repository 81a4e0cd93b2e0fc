//! One verified event, from the subject lock to its recorded outcome.

use chrono::{DateTime, Utc};
use ledger_core::ids::PaymentId;

use super::apply::{apply_payment, apply_payout, Application};
use super::error::WebhookError;
use super::outcome::DeliveryOutcome;
use super::parking;
use super::state::WebhookState;
use super::tables::{self, DeliveryRow, PaymentLink};
use crate::gateway::{
    map_event, payment_intent_id, GatewayFact, MappingContext, PaymentFact, StripeError,
    VerifiedEvent,
};

/// What became of an event this time round.
#[derive(Debug, Clone)]
pub(super) struct Resolution {
    pub outcome: DeliveryOutcome,
    pub detail: Option<String>,
    pub positions: Option<(u64, u64)>,
    pub payment_id: Option<PaymentId>,
    pub payment_intent_id: Option<String>,
    /// The event was applied by an earlier delivery: this one repeated it.
    pub replayed: bool,
    /// Why a signed event could not be mapped; the delivery is answered with it.
    pub rejection: Option<StripeError>,
}

impl Resolution {
    fn new(outcome: DeliveryOutcome, detail: Option<String>) -> Resolution {
        Resolution {
            outcome,
            detail,
            positions: None,
            payment_id: None,
            payment_intent_id: None,
            replayed: false,
            rejection: None,
        }
    }

    /// The outcome a delivery is counted under: a repeat of an applied event is a duplicate.
    pub fn delivery_outcome(&self) -> DeliveryOutcome {
        if self.replayed {
            DeliveryOutcome::Duplicate
        } else {
            self.outcome
        }
    }

    pub(super) fn row<'a>(
        &'a self,
        event: &'a VerifiedEvent,
        received_at: DateTime<Utc>,
    ) -> DeliveryRow<'a> {
        DeliveryRow {
            environment: event.environment(),
            stripe_event_id: event.id(),
            event_type: event.event_type(),
            payment_intent_id: self.payment_intent_id.as_deref(),
            payment_id: self.payment_id.map(|payment_id| payment_id.as_uuid()),
            outcome: self.outcome,
            detail: self.detail.as_deref(),
            positions: self.positions,
            received_at,
            processed_at: Utc::now(),
        }
    }
}

/// What an event is about, for turn-taking and parking: its PaymentIntent (`pi_…`), its
/// payout (`po_…`), or else the event itself.
pub(super) fn subject(event: &VerifiedEvent) -> String {
    if let Some(payment_intent) = payment_intent_id(event) {
        return payment_intent;
    }
    let object = &event.event().data.object;
    if object.get("object").and_then(|kind| kind.as_str()) == Some("payout") {
        if let Some(payout_id) = object.get("id").and_then(|id| id.as_str()) {
            return payout_id.to_owned();
        }
    }
    event.id().to_owned()
}

/// Handles one delivery: skip a repeat of a finished event, resolve, park what must wait,
/// record the delivery, then retry what was waiting on the same subject.
pub(super) async fn process(
    state: &WebhookState,
    event: &VerifiedEvent,
    received_at: DateTime<Utc>,
) -> Result<Resolution, WebhookError> {
    let environment = event.environment();
    let subject = subject(event);
    let _turn = state.lock_subject(environment, &subject).await;
    let payment_intent = payment_intent_id(event);
    let found = state
        .grouped()
        .seen(environment, event.id(), payment_intent.as_deref())
        .await?;
    let mut seen = found.outcome;
    if seen == Some(DeliveryOutcome::Parked)
        && parking::expire(state, environment, event.id()).await?
    {
        // A redelivery of an event parked past its age limit expires it rather than
        // applying it days late; the sweep would have within the minute.
        seen = Some(DeliveryOutcome::Expired);
    }
    if seen == Some(DeliveryOutcome::Expired) {
        tables::record_redelivery(state.pool(), environment, event.id(), received_at).await?;
        return Ok(Resolution::new(
            DeliveryOutcome::Expired,
            Some("the event expired while parked and is never applied".to_owned()),
        ));
    }
    if seen.is_some_and(DeliveryOutcome::is_final) {
        tables::record_redelivery(state.pool(), environment, event.id(), received_at).await?;
        let mut repeat = Resolution::new(DeliveryOutcome::Duplicate, None);
        repeat.replayed = true;
        return Ok(repeat);
    }
    // The link read above is as good as one read now: this process takes turns on the
    // subject, and a link, once written, never changes.
    let mut resolution = resolve_linked(state, event, found.linked_payment).await?;
    if resolution.outcome != DeliveryOutcome::Parked && seen == Some(DeliveryOutcome::Parked) {
        // A redelivery resolved an event parked earlier: it waits no more.
        tables::unpark(state.pool(), environment, event.id()).await?;
    }
    if resolution.outcome == DeliveryOutcome::Parked {
        let reason = resolution.detail.clone().unwrap_or_default();
        tables::park(state.pool(), event, &subject, &reason).await?;
        // Park, then try once more: an apply on this subject in another process that
        // committed before the parked row was visible, and so did not retry it, is seen now.
        let second = resolve(state, event).await?;
        if second.outcome != DeliveryOutcome::Parked {
            tables::unpark(state.pool(), environment, event.id()).await?;
            resolution = second;
        }
    }
    let parked_on_subject = state
        .grouped()
        .record(&resolution.row(event, received_at), &subject)
        .await?;
    if parked_on_subject
        && matches!(
            resolution.outcome,
            DeliveryOutcome::Applied | DeliveryOutcome::Duplicate
        )
    {
        // The event is recorded; a failure here only delays the parked events until the
        // subject's next apply, so it is logged rather than failing this delivery.
        if let Err(error) = parking::retry_subject(state, environment, &subject).await {
            tracing::warn!(%error, %subject, "retrying parked stripe events failed");
        }
    }
    Ok(resolution)
}

/// Maps an event with the payment linked to its PaymentIntent and applies it. Parks nothing
/// and records no delivery: the callers do.
pub(super) async fn resolve(
    state: &WebhookState,
    event: &VerifiedEvent,
) -> Result<Resolution, WebhookError> {
    let linked = match payment_intent_id(event) {
        Some(payment_intent) => {
            tables::linked_payment(state.pool(), event.environment(), &payment_intent).await?
        }
        None => None,
    };
    resolve_linked(state, event, linked).await
}

/// [`resolve`] with the PaymentIntent's link as read under the subject's turn.
async fn resolve_linked(
    state: &WebhookState,
    event: &VerifiedEvent,
    linked_payment: Option<uuid::Uuid>,
) -> Result<Resolution, WebhookError> {
    let environment = event.environment();
    let mut context = MappingContext::new(state.config().default_merchant_id.clone());
    context.connected_accounts = state.config().connected_accounts.clone();
    context.linked_payment_id = linked_payment.map(PaymentId::from_uuid);
    let fact = match map_event(event, &context) {
        Ok(fact) => fact,
        Err(error) if error.is_conflict() => {
            let mut conflict = Resolution::new(DeliveryOutcome::Conflict, Some(error.to_string()));
            conflict.payment_intent_id = payment_intent_id(event);
            return Ok(conflict);
        }
        Err(error) => {
            let mut rejected = Resolution::new(DeliveryOutcome::Rejected, Some(error.to_string()));
            rejected.payment_intent_id = payment_intent_id(event);
            rejected.rejection = Some(error);
            return Ok(rejected);
        }
    };
    match fact {
        GatewayFact::Ignored(reason) => Ok(Resolution::new(
            DeliveryOutcome::Ignored,
            Some(format!("{}: {reason}", reason.code())),
        )),
        GatewayFact::Payment(mut fact) => {
            if carries_payment_metadata(event) {
                // Linked before the append: the link follows from the object's metadata
                // alone, so writing it early is harmless, and a crash after the append cannot
                // leave later refunds and disputes without their payment. A PaymentIntent
                // linked already keeps its link (the first wins, and links never change), so
                // writing it again would only answer what was read.
                let read_for_this_intent =
                    payment_intent_id(event).as_deref() == Some(fact.payment_intent_id.as_str());
                let link = match linked_payment.filter(|_| read_for_this_intent) {
                    Some(linked) => PaymentLink::Linked(linked),
                    None => {
                        state
                            .grouped()
                            .link(
                                environment,
                                &fact.payment_intent_id,
                                fact.payment_id.as_uuid(),
                            )
                            .await?
                    }
                };
                let linked = match link {
                    PaymentLink::Linked(linked) => linked,
                    PaymentLink::PaymentHasAnother(other) => {
                        return Ok(linked_elsewhere(fact, &other));
                    }
                };
                if linked != fact.payment_id.as_uuid() {
                    tracing::warn!(
                        payment_intent = %fact.payment_intent_id,
                        "the PaymentIntent is linked to another payment; the first link wins"
                    );
                    fact.payment_id = PaymentId::from_uuid(linked);
                }
            }
            let application = apply_payment(state, event, &fact).await?;
            let mut resolution = from_application(application);
            resolution.payment_id = Some(fact.payment_id);
            resolution.payment_intent_id = Some(fact.payment_intent_id);
            Ok(resolution)
        }
        GatewayFact::Payout(fact) => Ok(from_application(apply_payout(state, event, &fact).await?)),
    }
}

/// A fact naming a payment that another PaymentIntent is linked to: a conflict for a person,
/// never applied (a ledger payment is linked to one PaymentIntent).
fn linked_elsewhere(fact: PaymentFact, other_payment_intent: &str) -> Resolution {
    let mut conflict = Resolution::new(
        DeliveryOutcome::Conflict,
        Some(format!(
            "payment {} is linked to PaymentIntent {other_payment_intent}, not {}; a ledger payment is linked to one PaymentIntent, so nothing was applied",
            fact.payment_id, fact.payment_intent_id
        )),
    );
    conflict.payment_id = Some(fact.payment_id);
    conflict.payment_intent_id = Some(fact.payment_intent_id);
    conflict
}

/// PaymentIntents and Charges carry the PaymentIntent's metadata (`ledger_payment_id`);
/// refunds and disputes do not.
fn carries_payment_metadata(event: &VerifiedEvent) -> bool {
    matches!(
        event
            .event()
            .data
            .object
            .get("object")
            .and_then(|kind| kind.as_str()),
        Some("payment_intent" | "charge")
    )
}

fn from_application(application: Application) -> Resolution {
    match application {
        Application::Applied {
            first_position,
            last_position,
            replayed,
        } => {
            let mut resolution = Resolution::new(DeliveryOutcome::Applied, None);
            resolution.positions = Some((first_position, last_position));
            resolution.replayed = replayed;
            resolution
        }
        Application::AlreadyRecorded => Resolution::new(
            DeliveryOutcome::Duplicate,
            Some("the ledger already holds every fact the event reports".to_owned()),
        ),
        Application::Awaits(reason) => Resolution::new(DeliveryOutcome::Parked, Some(reason)),
        Application::Conflict(reason) => Resolution::new(DeliveryOutcome::Conflict, Some(reason)),
    }
}
