//! Command handling: the one place where the log meets the domain. Load the stream, fold it
//! through `ledger-core`, `decide`, append with the version that was read; when another writer
//! got there first, read again and decide again, a bounded number of times.
//!
//! Idempotency: the key is claimed with the events, in the same transaction, which settles
//! races between concurrent copies inside the store: a copy whose key is already claimed for
//! the same request gets the original answer, a different request under it a typed error. A
//! retry that the rules refuse (its first attempt already consumed the authorization) is
//! recognised by its key before the refusal is returned, so it gets the original answer too.
//!
//! Environments: a stream that belongs to the other environment does not exist for the caller.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ledger_core::aggregate::{Aggregate, DomainEvent};
use ledger_core::ids::{
    Environment as DomainEnvironment, PaymentId, ReconciliationRunId, SettlementBatchId,
};
use ledger_core::payment::{self, PaymentCommand, PaymentState};
use ledger_core::reconciliation::{self, ReconciliationCommand, ReconciliationRunState};
use ledger_core::settlement::{self, SettlementBatchState, SettlementCommand};
use ledger_core::DomainError;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{
    AppendOutcome, AppendRequest, AppendResult, Environment, EventMetadata, ExpectedVersion,
    IdempotencyClaim, IdempotencyRecord, NewEvent, RecordedEvent, StreamAppend, StreamType,
};
use crate::state_cache::{Folded, StateCache, StreamSummary};
use crate::store::EventStore;

/// How often a command is decided again after losing a race for its stream to another process.
pub const MAX_CONFLICT_RETRIES: usize = 8;

/// Commands of one process on one stream take turns (see [`StreamLocks`]); this many stripes
/// keep unrelated streams from waiting on each other.
const STREAM_LOCK_STRIPES: usize = 1024;

/// The longest pause before deciding again after a conflict, in milliseconds; the pause grows
/// with each attempt and is jittered so that racing writers spread out.
const CONFLICT_BACKOFF_MS_MAX: u64 = 20;

/// Who asks, on whose behalf, and how the request can be recognised when it comes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub environment: DomainEnvironment,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// When the fact happened: now for API commands, the gateway's time for webhooks.
    pub occurred_at: DateTime<Utc>,
    pub idempotency: Option<Idempotency>,
}

/// An idempotency key and the fingerprint of the request it was sent with. The fingerprint is
/// of the caller's raw input (before defaults such as generated ids are filled in), so that a
/// retry of the same input is recognised as the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: [u8; 32],
}

impl Idempotency {
    pub fn for_request(
        key: impl Into<String>,
        request: &serde_json::Value,
    ) -> Result<Self, StoreError> {
        Ok(Idempotency {
            key: key.into(),
            request_hash: IdempotencyClaim::hash_request(request)?,
        })
    }
}

/// The answer to a command: the stream's state after it, the events recorded (or, for an
/// idempotent replay, the events the original call recorded) and the log position reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled<State> {
    pub state: State,
    /// The stream after the command: the version and times `state` is the fold of.
    pub stream: StreamSummary,
    pub events: Vec<RecordedEvent>,
    pub position: u64,
    pub replayed: bool,
}

fn store_environment(environment: DomainEnvironment) -> Environment {
    match environment {
        DomainEnvironment::Test => Environment::Test,
        DomainEnvironment::Live => Environment::Live,
    }
}

fn store_stream_type(stream_type: ledger_core::aggregate::StreamType) -> StreamType {
    match stream_type {
        ledger_core::aggregate::StreamType::Payment => StreamType::Payment,
        ledger_core::aggregate::StreamType::SettlementBatch => StreamType::SettlementBatch,
        ledger_core::aggregate::StreamType::ReconciliationRun => StreamType::ReconciliationRun,
    }
}

/// Serializes this process's commands per stream. Optimistic concurrency alone keeps the log
/// correct, but when many requests for one payment arrive at once (a client retrying, a burst
/// of webhooks) most of them would lose the race, re-read and lose again; taking turns inside
/// the process leaves conflicts to writers in other processes.
struct StreamLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl StreamLocks {
    fn new() -> Self {
        StreamLocks {
            stripes: (0..STREAM_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    async fn lock(&self, stream_id: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = (stream_id.as_u128() % STREAM_LOCK_STRIPES as u128) as usize;
        self.stripes[stripe].lock().await
    }
}

/// Waits a little before the next attempt: longer after each loss, jittered.
async fn back_off(attempt: usize) {
    let ceiling_ms = (1u64 << attempt.min(5)).min(CONFLICT_BACKOFF_MS_MAX);
    let jitter_ms = (Uuid::new_v4().as_u128() % u128::from(ceiling_ms + 1)) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(jitter_ms)).await;
}

/// Runs payment and settlement commands against the log.
#[derive(Clone)]
pub struct CommandHandler {
    store: EventStore,
    locks: std::sync::Arc<StreamLocks>,
    states: std::sync::Arc<StateCache>,
}

impl CommandHandler {
    pub fn new(store: EventStore) -> Self {
        CommandHandler {
            store,
            locks: std::sync::Arc::new(StreamLocks::new()),
            states: std::sync::Arc::new(StateCache::default()),
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Folds a stream from its events.
    pub async fn load<State>(&self, stream_id: Uuid) -> Result<State, StoreError>
    where
        State: Aggregate + Default + Clone + Send + Sync + 'static,
    {
        Ok(self.load_folded::<State>(stream_id).await?.state)
    }

    /// A stream's state and summary as the log holds them now: the fold kept from earlier
    /// loads plus whatever events came after it (see `state_cache`), so only new events are
    /// read and decoded.
    pub async fn load_folded<State>(&self, stream_id: Uuid) -> Result<Folded<State>, StoreError>
    where
        State: Aggregate + Default + Clone + Send + Sync + 'static,
    {
        let kept = self.states.get::<State>(stream_id);
        let (state, summary) = match kept {
            Some(folded) => (folded.state, folded.summary),
            None => (State::default(), StreamSummary::default()),
        };
        let newer = self
            .store
            .read_stream(stream_id, summary.version + 1)
            .await?;
        if newer.is_empty() && summary.version > 0 {
            return Ok(Folded { state, summary });
        }
        let folded = Folded {
            state: fold_onto(state, &newer)?,
            summary: summary.after(&newer),
        };
        if folded.summary.version > 0 {
            self.states.put(stream_id, folded.clone());
        }
        Ok(folded)
    }

    /// Folds a stream and returns the events it was folded from.
    pub async fn load_with_history<State>(
        &self,
        stream_id: Uuid,
    ) -> Result<(State, Vec<RecordedEvent>), StoreError>
    where
        State: Aggregate + Default,
    {
        let events = self.store.read_stream(stream_id, 1).await?;
        let state = fold_recorded::<State>(&events)?;
        Ok((state, events))
    }

    /// A run read whole and not kept: its state holds every finding of its import.
    async fn load_run(
        &self,
        run_id: ReconciliationRunId,
    ) -> Result<ReconciliationRunState, StoreError> {
        Ok(self
            .load_with_history::<ReconciliationRunState>(run_id.as_uuid())
            .await?
            .0)
    }

    /// A payment as the caller's environment sees it: a payment of the other environment is
    /// absent.
    pub async fn load_payment(
        &self,
        environment: DomainEnvironment,
        payment_id: PaymentId,
    ) -> Result<PaymentState, StoreError> {
        let state: PaymentState = self.load(payment_id.as_uuid()).await?;
        Ok(visible_payment(state, environment))
    }

    #[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
    pub async fn handle_payment(
        &self,
        payment_id: PaymentId,
        command: &PaymentCommand,
        context: &CommandContext,
    ) -> Result<Handled<PaymentState>, StoreError> {
        let _turn = self.locks.lock(payment_id.as_uuid()).await;
        for attempt in 0..MAX_CONFLICT_RETRIES {
            let Folded { state, summary } = self
                .load_folded::<PaymentState>(payment_id.as_uuid())
                .await?;
            let hidden_elsewhere = state
                .payment
                .as_ref()
                .is_some_and(|payment| payment.environment != context.environment);
            if hidden_elsewhere {
                return Err(StoreError::Rejected(match command {
                    PaymentCommand::Initiate(_) => DomainError::PaymentAlreadyExists,
                    _ => DomainError::PaymentNotFound,
                }));
            }
            let events = match payment::decide(&state, command) {
                Ok(events) => events,
                Err(rule) => return self.refused(payment_id.as_uuid(), context, rule).await,
            };
            let stream = stream_append(payment_id.as_uuid(), &state, &events, context)?;
            match self.append(vec![stream], context).await {
                Err(StoreError::ConcurrencyConflict { .. }) => back_off(attempt).await,
                Err(error) => return Err(error),
                Ok(outcome) => {
                    let handled = self
                        .answer_after(payment_id.as_uuid(), state, summary, outcome)
                        .await?;
                    self.keep(payment_id.as_uuid(), &handled);
                    return Ok(handled);
                }
            }
        }
        Err(StoreError::ConflictRetriesExhausted {
            attempts: MAX_CONFLICT_RETRIES,
        })
    }

    #[tracing::instrument(skip_all, fields(batch_id = %batch_id))]
    pub async fn handle_settlement(
        &self,
        batch_id: SettlementBatchId,
        command: &SettlementCommand,
        context: &CommandContext,
    ) -> Result<Handled<SettlementBatchState>, StoreError> {
        let _turn = self.locks.lock(batch_id.as_uuid()).await;
        for attempt in 0..MAX_CONFLICT_RETRIES {
            let Folded {
                state: batch,
                summary,
            } = self
                .load_folded::<SettlementBatchState>(batch_id.as_uuid())
                .await?;
            if batch
                .batch
                .as_ref()
                .is_some_and(|batch| batch.environment != context.environment)
            {
                return Err(StoreError::Rejected(DomainError::SettlementBatchNotFound));
            }
            let mut payments = BTreeMap::new();
            for payment_id in settlement::payments_named(command) {
                let state = self.load_payment(context.environment, payment_id).await?;
                payments.insert(payment_id, state);
            }
            let decision = match settlement::decide(&batch, &payments, command) {
                Ok(decision) => decision,
                Err(rule) => return self.refused(batch_id.as_uuid(), context, rule).await,
            };
            let mut streams = vec![stream_append(
                batch_id.as_uuid(),
                &batch,
                &decision.batch_events,
                context,
            )?];
            for (payment_id, events) in &decision.payment_events {
                let state = payments.get(payment_id).cloned().unwrap_or_default();
                streams.push(stream_append(
                    payment_id.as_uuid(),
                    &state,
                    events,
                    context,
                )?);
            }
            match self.append(streams, context).await {
                Err(StoreError::ConcurrencyConflict { .. }) => back_off(attempt).await,
                Err(error) => return Err(error),
                Ok(outcome) => {
                    let handled = self
                        .answer_after(batch_id.as_uuid(), batch, summary, outcome)
                        .await?;
                    self.keep(batch_id.as_uuid(), &handled);
                    return Ok(handled);
                }
            }
        }
        Err(StoreError::ConflictRetriesExhausted {
            attempts: MAX_CONFLICT_RETRIES,
        })
    }

    /// A command on a reconciliation run, decided on the run as the log holds it: how finance
    /// resolves an exception.
    #[tracing::instrument(skip_all, fields(run_id = %run_id))]
    pub async fn handle_reconciliation(
        &self,
        run_id: ReconciliationRunId,
        command: &ReconciliationCommand,
        context: &CommandContext,
    ) -> Result<Handled<ReconciliationRunState>, StoreError> {
        if let Some(replayed) = self
            .replay::<ReconciliationRunState>(run_id.as_uuid(), context)
            .await?
        {
            return Ok(replayed);
        }
        let _turn = self.locks.lock(run_id.as_uuid()).await;
        for attempt in 0..MAX_CONFLICT_RETRIES {
            // Read whole, not kept: a run's state holds every finding of its import, and runs
            // are resolved rarely.
            let (state, history) = self
                .load_with_history::<ReconciliationRunState>(run_id.as_uuid())
                .await?;
            let summary = StreamSummary::default().after(&history);
            let state = visible_run(state, context.environment);
            let events = reconciliation::decide(&state, command)?;
            if events.is_empty() {
                return Ok(Handled {
                    state,
                    stream: summary,
                    events: Vec::new(),
                    position: summary.last_position,
                    replayed: false,
                });
            }
            let stream = stream_append(run_id.as_uuid(), &state, &events, context)?;
            match self.append(vec![stream], context).await {
                Err(StoreError::ConcurrencyConflict { .. }) => back_off(attempt).await,
                Err(error) => return Err(error),
                Ok(outcome) => {
                    return self
                        .answer_after(run_id.as_uuid(), state, summary, outcome)
                        .await
                }
            }
        }
        Err(StoreError::ConflictRetriesExhausted {
            attempts: MAX_CONFLICT_RETRIES,
        })
    }

    /// A command on a run whose state the caller already holds: the importer, the only writer
    /// of a run while it is open, records thousands of findings without reading its ever
    /// longer stream back each time. Only when someone else wrote meanwhile (a resolution) is
    /// the stream read again. Returns the state after the command and the events recorded.
    #[tracing::instrument(skip_all, fields(run_id = %run_id))]
    pub async fn advance_reconciliation(
        &self,
        run_id: ReconciliationRunId,
        known: ReconciliationRunState,
        command: &ReconciliationCommand,
        context: &CommandContext,
    ) -> Result<(ReconciliationRunState, Vec<RecordedEvent>), StoreError> {
        let _turn = self.locks.lock(run_id.as_uuid()).await;
        let mut state = known;
        for attempt in 0..MAX_CONFLICT_RETRIES {
            let events = reconciliation::decide(&state, command)?;
            if events.is_empty() {
                return Ok((state, Vec::new()));
            }
            let stream = stream_append(run_id.as_uuid(), &state, &events, context)?;
            match self.append(vec![stream], context).await {
                Err(StoreError::ConcurrencyConflict { .. }) => {
                    back_off(attempt).await;
                    state = visible_run(self.load_run(run_id).await?, context.environment);
                }
                Err(error) => return Err(error),
                Ok(outcome) => {
                    // A replayed key answers with events already in the state's past.
                    let replayed = outcome.is_replayed();
                    let recorded = outcome.into_result().events;
                    if replayed {
                        let state = visible_run(self.load_run(run_id).await?, context.environment);
                        return Ok((state, recorded));
                    }
                    for event in &recorded {
                        state = reconciliation::evolve(state, &decode(event)?);
                    }
                    return Ok((state, recorded));
                }
            }
        }
        Err(StoreError::ConflictRetriesExhausted {
            attempts: MAX_CONFLICT_RETRIES,
        })
    }

    async fn append(
        &self,
        streams: Vec<StreamAppend>,
        context: &CommandContext,
    ) -> Result<AppendOutcome, StoreError> {
        let idempotency = context
            .idempotency
            .as_ref()
            .map(|idempotency| IdempotencyClaim {
                environment: store_environment(context.environment),
                key: idempotency.key.clone(),
                request_hash: idempotency.request_hash,
            });
        self.store
            .append(AppendRequest {
                streams,
                idempotency,
            })
            .await
    }

    /// A command the rules refuse: when it carries a key already used for the same request,
    /// it is a retry that its first attempt's events now refuse (a second capture of what was
    /// captured), so the first answer is the answer. Fresh commands skip this lookup: the
    /// append claims their key in the same transaction and answers a replay there.
    async fn refused<State>(
        &self,
        stream_id: Uuid,
        context: &CommandContext,
        rule: DomainError,
    ) -> Result<Handled<State>, StoreError>
    where
        State: Aggregate + Default,
    {
        match self.replay::<State>(stream_id, context).await? {
            Some(replayed) => Ok(replayed),
            None => Err(StoreError::Rejected(rule)),
        }
    }

    /// The original answer for a key already used with the same request, if any.
    async fn replay<State>(
        &self,
        stream_id: Uuid,
        context: &CommandContext,
    ) -> Result<Option<Handled<State>>, StoreError>
    where
        State: Aggregate + Default,
    {
        let Some(idempotency) = &context.idempotency else {
            return Ok(None);
        };
        let environment = store_environment(context.environment);
        let Some(record) = self
            .store
            .idempotency_record(environment, &idempotency.key)
            .await?
        else {
            return Ok(None);
        };
        if record.request_hash.as_slice() != idempotency.request_hash.as_slice() {
            return Err(StoreError::IdempotencyKeyReused {
                environment,
                key: idempotency.key.clone(),
            });
        }
        let result = replayed_result(&self.store, &record).await?;
        self.answer(stream_id, AppendOutcome::Replayed(result))
            .await
            .map(Some)
    }

    /// The answer to an append decided on `state` (the fold `stream` describes): for new
    /// events the state is that fold plus the stream's new events, with no second read of the
    /// stream; a replay reads the stream, whose state the original call's events no longer
    /// describe.
    async fn answer_after<State>(
        &self,
        stream_id: Uuid,
        state: State,
        stream: StreamSummary,
        outcome: AppendOutcome,
    ) -> Result<Handled<State>, StoreError>
    where
        State: Aggregate + Default,
    {
        let AppendOutcome::Recorded(AppendResult {
            events,
            last_position,
        }) = outcome
        else {
            return self.answer(stream_id, outcome).await;
        };
        let own: Vec<RecordedEvent> = events
            .iter()
            .filter(|event| event.stream_id == stream_id)
            .cloned()
            .collect();
        Ok(Handled {
            state: fold_onto(state, &own)?,
            stream: stream.after(&own),
            events,
            position: last_position,
            replayed: false,
        })
    }

    /// Keeps the fold a command answered with, so the next command or query on the stream
    /// reads nothing it has not seen.
    fn keep<State>(&self, stream_id: Uuid, handled: &Handled<State>)
    where
        State: Clone + Send + Sync + 'static,
    {
        if !handled.replayed {
            self.states.put(
                stream_id,
                Folded {
                    state: handled.state.clone(),
                    summary: handled.stream,
                },
            );
        }
    }

    async fn answer<State>(
        &self,
        stream_id: Uuid,
        outcome: AppendOutcome,
    ) -> Result<Handled<State>, StoreError>
    where
        State: Aggregate + Default,
    {
        let replayed = outcome.is_replayed();
        let AppendResult {
            events,
            last_position,
        } = outcome.into_result();
        let (state, history) = self.load_with_history::<State>(stream_id).await?;
        Ok(Handled {
            state,
            stream: StreamSummary::default().after(&history),
            events,
            position: last_position,
            replayed,
        })
    }
}

/// Reads back the events an earlier call recorded under an idempotency key: the claim keeps
/// the first and last positions, and one request's events are always contiguous in the log.
async fn replayed_result(
    store: &EventStore,
    record: &IdempotencyRecord,
) -> Result<AppendResult, StoreError> {
    let position = |name: &str| {
        record
            .result
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| StoreError::CorruptEvent {
                position: 0,
                reason: format!("idempotency result for key {:?} lacks {name}", record.key),
            })
    };
    let first_position = position("first_position")?;
    let last_position = position("last_position")?;
    let count =
        usize::try_from(last_position.saturating_sub(first_position) + 1).unwrap_or(usize::MAX);
    let events = store.read_all(first_position, count).await?;
    Ok(AppendResult {
        events,
        last_position,
    })
}

fn visible_payment(state: PaymentState, environment: DomainEnvironment) -> PaymentState {
    match &state.payment {
        Some(payment) if payment.environment != environment => PaymentState::default(),
        _ => state,
    }
}

/// A run of the other environment does not exist for the caller.
fn visible_run(
    state: ReconciliationRunState,
    environment: DomainEnvironment,
) -> ReconciliationRunState {
    match &state.run {
        Some(run) if run.started.environment != environment => ReconciliationRunState::default(),
        _ => state,
    }
}

/// Decodes and folds recorded events.
pub fn fold_recorded<State>(events: &[RecordedEvent]) -> Result<State, StoreError>
where
    State: Aggregate + Default,
{
    fold_onto(State::default(), events)
}

/// Decodes `events`, the stream's next ones, and folds them onto `state`.
fn fold_onto<State>(state: State, events: &[RecordedEvent]) -> Result<State, StoreError>
where
    State: Aggregate,
{
    events.iter().try_fold(state, |state, recorded| {
        Ok(state.evolve(&decode::<State::Event>(recorded)?))
    })
}

/// Reads a recorded event back as a domain event.
pub fn decode<Event: DomainEvent>(recorded: &RecordedEvent) -> Result<Event, StoreError> {
    let schema_version = u32::try_from(recorded.schema_version).unwrap_or(0);
    Event::from_stored(
        &recorded.event_type,
        schema_version,
        recorded.payload.clone(),
    )
    .map_err(|error| StoreError::CorruptEvent {
        position: i64::try_from(recorded.position).unwrap_or(i64::MAX),
        reason: error.to_string(),
    })
}

fn stream_append<State, Event>(
    stream_id: Uuid,
    state: &State,
    events: &[Event],
    context: &CommandContext,
) -> Result<StreamAppend, StoreError>
where
    State: Aggregate<Event = Event>,
    Event: DomainEvent,
{
    let metadata = EventMetadata {
        environment: store_environment(context.environment),
        actor_id: context.actor_id.clone(),
        actor_role: context.actor_role.clone(),
        correlation_id: context.correlation_id,
        causation_id: context.causation_id,
        idempotency_key: context
            .idempotency
            .as_ref()
            .map(|idempotency| idempotency.key.clone()),
    };
    let events = events
        .iter()
        .map(|event| {
            Ok(NewEvent {
                event_id: Uuid::new_v4(),
                event_type: event.event_type().to_owned(),
                schema_version: i32::try_from(event.schema_version()).unwrap_or(i32::MAX),
                occurred_at: context.occurred_at,
                payload: event
                    .to_payload()
                    .map_err(|error| StoreError::InvalidPayload {
                        event_id: Uuid::nil(),
                        reason: error.to_string(),
                    })?,
                metadata: metadata.clone(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(StreamAppend {
        stream_id,
        stream_type: store_stream_type(State::STREAM_TYPE),
        expected_version: match state.version() {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exactly(version),
        },
        events,
    })
}
