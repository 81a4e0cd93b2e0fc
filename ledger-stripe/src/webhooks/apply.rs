//! Applying what an event reports under its idempotency claim `stripe:<evt_…>`: the claim is
//! written by the log in the same transaction as the events, so the event is applied at most
//! once however many copies race (see the module docs of [`super`]).

use ledger_core::ids::SettlementBatchId;
use ledger_core::payment::gateway_fact::{decide_fact, FactRefused, RefusalKind};
use ledger_core::payment::PaymentState;
use ledger_core::settlement::{
    PayoutStatus, PayoutUpdate, SettlementBatchState, SettlementCommand,
};
use ledger_core::DomainError;
use ledger_store::commands::{CommandContext, Decision, Handled, Idempotency, Outcome};
use ledger_store::{StoreError, MAX_IDEMPOTENCY_KEY_LENGTH};
use sha2::Digest;
use uuid::Uuid;

use super::error::WebhookError;
use super::state::WebhookState;
use super::tables;
use crate::gateway::{identity_conflict, PaymentFact, PayoutFact, VerifiedEvent};

/// The prefix of the log's idempotency keys for Stripe events. API clients must not be able
/// to use keys with this prefix (the API layer refuses them).
pub const CLAIM_PREFIX: &str = "stripe:";

/// Who the log names as the actor of webhook events.
const ACTOR_ID: &str = "stripe";
const ACTOR_ROLE: &str = "webhook";

/// What applying a fact came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Application {
    /// Appended now, or earlier under the same claim (`replayed`).
    Applied {
        first_position: u64,
        last_position: u64,
        replayed: bool,
    },
    /// The ledger already held every fact; nothing appended.
    AlreadyRecorded,
    /// Something it depends on is not recorded yet.
    Awaits(String),
    /// The gateway and the ledger disagree; nothing appended.
    Conflict(String),
}

/// The claim key of an event: `stripe:evt_…`, or a digest of the id for the (never seen)
/// ids too long to fit the log's key bound.
fn claim_key(stripe_event_id: &str) -> String {
    let key = format!("{CLAIM_PREFIX}{stripe_event_id}");
    if key.len() <= MAX_IDEMPOTENCY_KEY_LENGTH {
        return key;
    }
    let digest = sha2::Sha256::digest(stripe_event_id.as_bytes());
    format!("{CLAIM_PREFIX}sha256:{}", hex::encode(digest))
}

/// Who records an event's facts and under which claim. The request a claim stands for is the
/// event id alone: Stripe's redeliveries of one event differ in fields such as
/// `pending_webhooks`, and must still count as the same request.
fn command_context(event: &VerifiedEvent) -> Result<CommandContext, StoreError> {
    Ok(CommandContext {
        environment: event.environment(),
        actor_id: ACTOR_ID.to_owned(),
        actor_role: ACTOR_ROLE.to_owned(),
        // Groups the log events of one Stripe event in traces and metadata.
        correlation_id: Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("{CLAIM_PREFIX}{}", event.id()).as_bytes(),
        ),
        causation_id: None,
        occurred_at: event.occurred_at(),
        idempotency: Some(Idempotency::for_request(
            claim_key(event.id()),
            &serde_json::json!({ "stripe_event_id": event.id() }),
        )?),
    })
}

fn applied<State>(handled: &Handled<State>) -> Application {
    Application::Applied {
        first_position: handled
            .events
            .first()
            .map_or(handled.position, |recorded| recorded.position),
        last_position: handled.position,
        replayed: handled.replayed,
    }
}

fn key_held(key: &str) -> Application {
    Application::Conflict(format!(
        "the idempotency key {key} is held by another request"
    ))
}

/// Why a payment fact recorded nothing. Both are checked against the event's claim first: a
/// repeated event is answered as a replay with the original positions.
enum Unrecorded {
    /// The ledger already holds every command of the fact.
    AlreadyRecorded,
    Refused(FactRefused),
    /// The fact is about a payment of another merchant or PaymentIntent.
    Identity(String),
}

fn refusal(refused: &FactRefused) -> Application {
    let reason = format!(
        "command {} of the event was refused: {} (rule {})",
        refused.command_index + 1,
        refused.error,
        refused.error.rule()
    );
    match refused.kind {
        RefusalKind::AwaitsEarlierFact => Application::Awaits(reason),
        RefusalKind::AlreadyApplied | RefusalKind::Conflict => Application::Conflict(reason),
    }
}

/// Decides a payment fact through the command handler, like any payment command: on the
/// payment as the log holds it under the stream's turn, appended with the event's claim,
/// decided again after a lost race, the fold kept.
pub(super) async fn apply_payment(
    state: &WebhookState,
    event: &VerifiedEvent,
    fact: &PaymentFact,
) -> Result<Application, WebhookError> {
    let context = command_context(event)?;
    let outcome = state
        .commands()
        .handle_payment_with(fact.payment_id, &context, |payment: &PaymentState| {
            // Decided on the state the append is checked against, so no concurrent command
            // can make the payment another's between the check and the append.
            if let Some(reason) = identity_conflict(payment, fact) {
                return Ok(Decision::Refused(Unrecorded::Identity(reason)));
            }
            Ok::<_, StoreError>(match decide_fact(payment, &fact.commands) {
                Ok(events) if events.is_empty() => Decision::Refused(Unrecorded::AlreadyRecorded),
                Ok(events) => Decision::Record(events),
                Err(refused) => Decision::Refused(Unrecorded::Refused(refused)),
            })
        })
        .await;
    match outcome {
        Ok(Outcome::Handled(handled)) => Ok(applied(&handled)),
        Ok(Outcome::Refused(Unrecorded::AlreadyRecorded)) => Ok(Application::AlreadyRecorded),
        Ok(Outcome::Refused(Unrecorded::Refused(refused))) => Ok(refusal(&refused)),
        Ok(Outcome::Refused(Unrecorded::Identity(reason))) => Ok(Application::Conflict(reason)),
        // The handler's answer for a payment of the other environment.
        Err(StoreError::Rejected(DomainError::PaymentNotFound)) => {
            Ok(Application::Conflict(format!(
                "payment {} belongs to the other environment",
                fact.payment_id
            )))
        }
        // Metadata naming a stream that is not a payment: retrying would never change that, so
        // a person looks at it rather than Stripe retrying forever.
        Err(StoreError::StreamTypeMismatch { existing, .. }) => Ok(Application::Conflict(format!(
            "ledger_payment_id {} names a {} stream, not a payment",
            fact.payment_id,
            existing.as_str().replace('_', " ")
        ))),
        Err(StoreError::IdempotencyKeyReused { key, .. }) => Ok(key_held(&key)),
        Err(error) => Err(error.into()),
    }
}

/// Records a payout on the settlement batch that initiated it, through the command handler
/// (which decides, appends with the claim and replays a repeated claim).
pub(super) async fn apply_payout(
    state: &WebhookState,
    event: &VerifiedEvent,
    fact: &PayoutFact,
) -> Result<Application, WebhookError> {
    let payout_id = fact.command.payout_id.as_str();
    let Some(batch_uuid) =
        tables::batch_for_payout(state.pool(), event.environment(), payout_id).await?
    else {
        return Ok(Application::Awaits(format!(
            "no settlement batch has initiated payout {payout_id} yet; a reconciliation import records it"
        )));
    };
    let context = command_context(event)?;
    let command = SettlementCommand::RecordPayout(fact.command.clone());
    let batch_id = SettlementBatchId::from_uuid(batch_uuid);
    match state
        .commands()
        .handle_settlement(batch_id, &command, &context)
        .await
    {
        Ok(handled) => Ok(applied(&handled)),
        Err(StoreError::Rejected(error)) => {
            let batch: SettlementBatchState = state.commands().load(batch_uuid).await?;
            Ok(payout_refusal(&batch, fact, &error))
        }
        Err(StoreError::IdempotencyKeyReused { key, .. }) => Ok(key_held(&key)),
        Err(error) => Err(error.into()),
    }
}

/// A payout report the batch already reflects is a duplicate; any other refusal a conflict.
fn payout_refusal(
    batch: &SettlementBatchState,
    fact: &PayoutFact,
    error: &DomainError,
) -> Application {
    let status = batch
        .batch
        .as_ref()
        .and_then(|batch| batch.payout(&fact.command.payout_id))
        .map(|payout| payout.status);
    let reported = match fact.command.update {
        PayoutUpdate::Paid => Some(PayoutStatus::Paid),
        PayoutUpdate::Failed { .. } => Some(PayoutStatus::Failed),
        PayoutUpdate::Initiated { .. } => Some(PayoutStatus::InTransit),
    };
    if status.is_some() && status == reported {
        return Application::AlreadyRecorded;
    }
    Application::Conflict(format!(
        "the payout report was refused: {error} (rule {})",
        error.rule()
    ))
}
