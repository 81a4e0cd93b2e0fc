//! Applying what an event reports under its idempotency claim `stripe:<evt_…>`: the claim is
//! written by the log in the same transaction as the events, so the event is applied at most
//! once however many copies race (see the module docs of [`super`]).

use chrono::{DateTime, Utc};
use ledger_core::ids::{Environment as DomainEnvironment, SettlementBatchId};
use ledger_core::payment::{PaymentEvent, PaymentState};
use ledger_core::settlement::{
    PayoutStatus, PayoutUpdate, SettlementBatchState, SettlementCommand,
};
use ledger_core::DomainError;
use ledger_store::commands::{fold_recorded, CommandContext, Idempotency, MAX_CONFLICT_RETRIES};
use ledger_store::{
    AppendOutcome, AppendRequest, Environment, EventMetadata, ExpectedVersion, IdempotencyClaim,
    IdempotencyRecord, NewEvent, StoreError, StreamAppend, StreamType, MAX_IDEMPOTENCY_KEY_LENGTH,
};
use sha2::Digest;
use uuid::Uuid;

use super::error::WebhookError;
use super::state::WebhookState;
use super::tables;
use crate::gateway::{
    decide_fact, FactRefused, PaymentFact, PayoutFact, RefusalKind, VerifiedEvent,
};

/// The prefix of the log's idempotency keys for Stripe events. API clients must not be able
/// to use keys with this prefix (the API layer namespaces or refuses them).
pub const CLAIM_PREFIX: &str = "stripe:";

/// Who the log names as the actor of webhook events.
const ACTOR_ID: &str = "stripe";
const ACTOR_ROLE: &str = "webhook";

/// The longest pause before deciding again after losing a race, in milliseconds.
const CONFLICT_BACKOFF_MS_MAX: u64 = 20;

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

fn store_environment(environment: DomainEnvironment) -> Environment {
    match environment {
        DomainEnvironment::Test => Environment::Test,
        DomainEnvironment::Live => Environment::Live,
    }
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

/// The request a claim stands for is the event id alone: Stripe's redeliveries of one event
/// differ in fields such as `pending_webhooks`, and must still count as the same request.
fn claim(event: &VerifiedEvent) -> Result<IdempotencyClaim, StoreError> {
    Ok(IdempotencyClaim {
        environment: store_environment(event.environment()),
        key: claim_key(event.id()),
        request_hash: IdempotencyClaim::hash_request(
            &serde_json::json!({ "stripe_event_id": event.id() }),
        )?,
    })
}

/// Groups the log events of one Stripe event in traces and metadata.
fn correlation_id(event: &VerifiedEvent) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("stripe:{}", event.id()).as_bytes(),
    )
}

/// The answer of an earlier append under the same claim, or a conflict when the key was
/// taken by a different request.
fn replayed(record: &IdempotencyRecord, claim: &IdempotencyClaim) -> Application {
    if record.request_hash.as_slice() != claim.request_hash.as_slice() {
        return Application::Conflict(format!(
            "the idempotency key {} is held by another request",
            claim.key
        ));
    }
    let position = |name: &str| record.result.get(name).and_then(serde_json::Value::as_u64);
    match (position("first_position"), position("last_position")) {
        (Some(first_position), Some(last_position)) => Application::Applied {
            first_position,
            last_position,
            replayed: true,
        },
        _ => Application::Conflict(format!(
            "the claim {} holds no positions; the log was changed outside the ledger",
            claim.key
        )),
    }
}

fn applied(outcome: &AppendOutcome) -> Application {
    let result = outcome.result();
    Application::Applied {
        first_position: result
            .events
            .first()
            .map_or(result.last_position, |event| event.position),
        last_position: result.last_position,
        replayed: outcome.is_replayed(),
    }
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

/// Waits a little before the next attempt: longer after each loss, jittered.
async fn back_off(attempt: usize) {
    let ceiling_ms = (1u64 << attempt.min(5)).min(CONFLICT_BACKOFF_MS_MAX);
    let jitter_ms = (Uuid::new_v4().as_u128() % u128::from(ceiling_ms + 1)) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(jitter_ms)).await;
}

/// Decides a payment fact against its stream and appends the new events with the event's
/// claim; after a lost race, reads and decides again.
pub(super) async fn apply_payment(
    state: &WebhookState,
    event: &VerifiedEvent,
    fact: &PaymentFact,
) -> Result<Application, WebhookError> {
    let claim = claim(event)?;
    let stream_id = fact.payment_id.as_uuid();
    for attempt in 0..MAX_CONFLICT_RETRIES {
        // Checked first so that a repeated event is answered from its claim rather than
        // decided again against a ledger it has already changed.
        if let Some(record) = state
            .store()
            .idempotency_record(claim.environment, &claim.key)
            .await?
        {
            return Ok(replayed(&record, &claim));
        }
        let payment: PaymentState = fold_recorded(&state.store().read_stream(stream_id, 1).await?)?;
        if payment
            .payment
            .as_ref()
            .is_some_and(|payment| payment.environment != event.environment())
        {
            return Ok(Application::Conflict(format!(
                "payment {} belongs to the other environment",
                fact.payment_id
            )));
        }
        let events = match decide_fact(&payment, &fact.commands) {
            Ok(events) if events.is_empty() => return Ok(Application::AlreadyRecorded),
            Ok(events) => events,
            Err(refused) => return Ok(refusal(&refused)),
        };
        let request = AppendRequest {
            streams: vec![payment_append(
                stream_id,
                payment.version,
                &events,
                event,
                &claim,
            )?],
            idempotency: Some(claim.clone()),
        };
        match state.store().append(request).await {
            Ok(outcome) => return Ok(applied(&outcome)),
            Err(StoreError::ConcurrencyConflict { .. }) => back_off(attempt).await,
            Err(StoreError::IdempotencyKeyReused { key, .. }) => {
                return Ok(Application::Conflict(format!(
                    "the idempotency key {key} is held by another request"
                )))
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(StoreError::ConflictRetriesExhausted {
        attempts: MAX_CONFLICT_RETRIES,
    }
    .into())
}

fn payment_append(
    stream_id: Uuid,
    version: u64,
    events: &[PaymentEvent],
    event: &VerifiedEvent,
    claim: &IdempotencyClaim,
) -> Result<StreamAppend, StoreError> {
    let metadata = EventMetadata {
        environment: claim.environment,
        actor_id: ACTOR_ID.to_owned(),
        actor_role: ACTOR_ROLE.to_owned(),
        correlation_id: correlation_id(event),
        causation_id: None,
        idempotency_key: Some(claim.key.clone()),
    };
    let occurred_at: DateTime<Utc> = event.occurred_at();
    let events = events
        .iter()
        .map(|domain_event| {
            let event_id = Uuid::new_v4();
            Ok(NewEvent {
                event_id,
                event_type: domain_event.event_type().to_owned(),
                schema_version: i32::try_from(domain_event.schema_version()).unwrap_or(i32::MAX),
                occurred_at,
                payload: domain_event
                    .to_payload()
                    .map_err(|error| StoreError::InvalidPayload {
                        event_id,
                        reason: error.to_string(),
                    })?,
                metadata: metadata.clone(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(StreamAppend {
        stream_id,
        stream_type: StreamType::Payment,
        expected_version: match version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exactly(version),
        },
        events,
    })
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
    let claim = claim(event)?;
    let context = CommandContext {
        environment: event.environment(),
        actor_id: ACTOR_ID.to_owned(),
        actor_role: ACTOR_ROLE.to_owned(),
        correlation_id: correlation_id(event),
        causation_id: None,
        occurred_at: event.occurred_at(),
        idempotency: Some(Idempotency {
            key: claim.key.clone(),
            request_hash: claim.request_hash,
        }),
    };
    let command = SettlementCommand::RecordPayout(fact.command.clone());
    let batch_id = SettlementBatchId::from_uuid(batch_uuid);
    match state
        .commands()
        .handle_settlement(batch_id, &command, &context)
        .await
    {
        Ok(handled) => Ok(Application::Applied {
            first_position: handled
                .events
                .first()
                .map_or(handled.position, |recorded| recorded.position),
            last_position: handled.position,
            replayed: handled.replayed,
        }),
        Err(StoreError::Rejected(error)) => {
            let batch: SettlementBatchState = state.commands().load(batch_uuid).await?;
            Ok(payout_refusal(&batch, fact, &error))
        }
        Err(StoreError::IdempotencyKeyReused { key, .. }) => Ok(Application::Conflict(format!(
            "the idempotency key {key} is held by another request"
        ))),
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
