//! Command handling: the one place where the log meets the domain. Every command, from the
//! API, a Stripe webhook or a reconciliation import, goes through one loop
//! (`CommandHandler::turn`): take the stream's turn in this process, load the stream's fold
//! (kept between commands, see `state_cache`), decide on it through a closure, append with
//! the version that was read and the caller's idempotency claim; when another writer got
//! there first, back off, read again and decide again, a bounded number of times. A command
//! that needs the state to be built (an amount in the payment's currency, "all that is still
//! refundable", a gateway fact) is built inside the closure, so it costs one read, not two.
//! [`CommandHandler::handle_payment`], [`CommandHandler::handle_settlement`] and the
//! reconciliation entries are thin wrappers over it; `handle_payment_with` and
//! `handle_settlement_with` take the closure.
//!
//! Idempotency: the key is claimed with the events, in the same transaction, which settles
//! races between concurrent copies inside the store: a copy whose key is already claimed for
//! the same request gets the original answer, a different request under it a typed error. A
//! retry that the rules refuse (its first attempt already consumed the authorization) is
//! recognised by its key before the refusal is returned, so it gets the original answer too.
//!
//! Environments: a stream that belongs to the other environment does not exist for the caller.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
pub mod unit;

use ledger_core::aggregate::{Aggregate, DomainEvent};
use ledger_core::ids::{Environment, PaymentId, ReconciliationRunId, SettlementBatchId};
use ledger_core::payment::{self, PaymentCommand, PaymentEvent, PaymentState};
use ledger_core::reconciliation::{self, ReconciliationCommand, ReconciliationRunState};
use ledger_core::settlement::{self, SettlementBatchState, SettlementCommand, SettlementEvent};
use ledger_core::DomainError;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{
    AppendOutcome, AppendRequest, AppendResult, EventMetadata, ExpectedVersion, IdempotencyClaim,
    IdempotencyRecord, KeptState, NewEvent, RecordedEvent, StreamAppend,
};
use crate::kept_state::StoredStream;
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
    pub environment: Environment,
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

    /// The claim the log writes in the same transaction as the events: the key, scoped to
    /// the environment.
    pub fn claim(&self, environment: Environment) -> IdempotencyClaim {
        IdempotencyClaim {
            environment,
            key: self.key.clone(),
            request_hash: self.request_hash,
        }
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

/// What a command decided on the state loaded under its stream's turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<Event, Refusal> {
    /// Append these events to the stream.
    Record(Vec<Event>),
    /// Append these events to the stream and, in the same atomic append, those of each
    /// payment named (a settlement batch settling its items).
    RecordAcross {
        events: Vec<Event>,
        payment_events: BTreeMap<PaymentId, Vec<PaymentEvent>>,
    },
    /// Nothing to record: the answer is the stream as it is.
    Unchanged,
    /// The rules refuse. A key already used for the same request is a retry whose first
    /// attempt now makes the rules refuse it (a second capture of what was captured, a Stripe
    /// event delivered again), so its original answer is the answer; otherwise the refusal.
    Refused(Refusal),
}

impl<Event> Decision<Event, DomainError> {
    /// The decision of a core `decide`: its events, or its refusal.
    pub fn of(decided: Result<Vec<Event>, DomainError>) -> Self {
        match decided {
            Ok(events) => Decision::Record(events),
            Err(rule) => Decision::Refused(rule),
        }
    }
}

/// The end of a command's turn: handled (recorded, replayed or unchanged), or refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<State, Refusal> {
    Handled(Handled<State>),
    Refused(Refusal),
}

impl<State> Outcome<State, DomainError> {
    /// A refusal of the rules as the store's error.
    pub fn handled(self) -> Result<Handled<State>, StoreError> {
        match self {
            Outcome::Handled(handled) => Ok(handled),
            Outcome::Refused(rule) => Err(StoreError::Rejected(rule)),
        }
    }
}

/// How a command's turn reads its stream.
enum Load<State> {
    /// The fold kept in the state cache plus the events after it; the new fold is kept.
    Kept,
    /// The whole stream, not kept: a reconciliation run's state holds every finding of its
    /// import, and runs are resolved rarely.
    Whole,
    /// A state the caller holds (the importer, a run's only writer while it is open); read
    /// whole again only after losing a race.
    Known(State),
}

/// What one turn decides on besides its own stream.
struct Reading<State> {
    load: Load<State>,
    /// The state as the caller's environment sees it (a run of the other environment is
    /// absent); applied to every state read from the log.
    visible: fn(State, Environment) -> State,
    /// Payments the decision reads (a settlement batch's items), read again in every attempt.
    payments: Vec<PaymentId>,
}

impl<State> Reading<State> {
    fn kept() -> Self {
        Reading {
            load: Load::Kept,
            visible: |state, _| state,
            payments: Vec::new(),
        }
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
    /// How many times this handler (and its clones) read a stream from the log.
    stream_reads: std::sync::Arc<AtomicU64>,
    /// The line of a [`unit::Unit`] this handler's commands are decided in, instead of each
    /// being appended on its own.
    unit: Option<unit::Line>,
}

impl CommandHandler {
    pub fn new(store: EventStore) -> Self {
        CommandHandler {
            store,
            locks: std::sync::Arc::new(StreamLocks::new()),
            states: std::sync::Arc::new(StateCache::default()),
            stream_reads: std::sync::Arc::new(AtomicU64::new(0)),
            unit: None,
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// How many stream reads this handler has sent to the log (each load is one, a kept fold
    /// included: it reads the events after it). For tests and diagnostics: a command costs
    /// one per attempt, plus one per payment a settlement names, but none when it is decided
    /// on a fold this process keeps and appends (see `turn`).
    pub fn stream_reads(&self) -> u64 {
        self.stream_reads.load(Ordering::Relaxed)
    }

    /// The fold kept for a stream, if any, without reading the log.
    pub fn kept<State>(&self, stream_id: Uuid) -> Option<Folded<State>>
    where
        State: Clone + Send + Sync + 'static,
    {
        self.states.get::<State>(stream_id)
    }

    async fn read_stream(
        &self,
        stream_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.stream_reads.fetch_add(1, Ordering::Relaxed);
        self.store.read_stream(stream_id, from_version).await
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
    /// read and decoded. A stream this process keeps no fold of is read from the state its
    /// row keeps (see `kept_state`): one row, however many events made it; without one, from
    /// its events.
    pub async fn load_folded<State>(&self, stream_id: Uuid) -> Result<Folded<State>, StoreError>
    where
        State: Aggregate + Default + Clone + Send + Sync + 'static,
    {
        let kept = match self.states.get::<State>(stream_id) {
            Some(folded) => Some(folded),
            None => {
                self.stream_reads.fetch_add(1, Ordering::Relaxed);
                let stored = self.store.stored_stream(stream_id).await?;
                let folded = stored.as_ref().and_then(StoredStream::folded::<State>);
                if let Some(folded) = folded {
                    self.states.put(stream_id, folded.clone());
                    return Ok(folded);
                }
                if stored.is_none() {
                    // No row, no stream: nothing to read from the log either.
                    return Ok(Folded {
                        state: State::default(),
                        summary: StreamSummary::default(),
                    });
                }
                None
            }
        };
        let (state, summary) = match kept {
            Some(folded) => (folded.state, folded.summary),
            None => (State::default(), StreamSummary::default()),
        };
        let newer = self.read_stream(stream_id, summary.version + 1).await?;
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
        let events = self.read_stream(stream_id, 1).await?;
        let state = fold_recorded::<State>(&events)?;
        Ok((state, events))
    }

    /// A payment as the caller's environment sees it: a payment of the other environment is
    /// absent.
    pub async fn load_payment(
        &self,
        environment: Environment,
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
        let hidden = match command {
            PaymentCommand::Initiate(_) => DomainError::PaymentAlreadyExists,
            _ => DomainError::PaymentNotFound,
        };
        self.payment_turn(payment_id, context, hidden, |payment| {
            Ok::<_, StoreError>(Decision::of(payment::decide(payment, command)))
        })
        .await?
        .handled()
    }

    /// A payment command decided by `decide` on the payment as the log holds it under the
    /// stream's turn: for commands built from the payment (amounts in its currency, "all that
    /// is still capturable"), and for a gateway's facts. One stream read per attempt, the fold
    /// kept afterwards like any other command's. A payment of the other environment is
    /// `payment_not_found`, before `decide` sees it.
    #[tracing::instrument(skip_all, fields(payment_id = %payment_id))]
    pub async fn handle_payment_with<Refusal, Error>(
        &self,
        payment_id: PaymentId,
        context: &CommandContext,
        decide: impl FnMut(&PaymentState) -> Result<Decision<PaymentEvent, Refusal>, Error>,
    ) -> Result<Outcome<PaymentState, Refusal>, Error>
    where
        Error: From<StoreError>,
    {
        self.payment_turn(payment_id, context, DomainError::PaymentNotFound, decide)
            .await
    }

    /// A payment's turn: `hidden` is the refusal when the payment belongs to the other
    /// environment.
    async fn payment_turn<Refusal, Error>(
        &self,
        payment_id: PaymentId,
        context: &CommandContext,
        hidden: DomainError,
        mut decide: impl FnMut(&PaymentState) -> Result<Decision<PaymentEvent, Refusal>, Error>,
    ) -> Result<Outcome<PaymentState, Refusal>, Error>
    where
        Error: From<StoreError>,
    {
        let environment = context.environment;
        self.turn(
            payment_id.as_uuid(),
            context,
            Reading::kept(),
            |state: &PaymentState, _| {
                let hidden_elsewhere = state
                    .payment
                    .as_ref()
                    .is_some_and(|payment| payment.environment != environment);
                if hidden_elsewhere {
                    return Err(StoreError::Rejected(hidden.clone()).into());
                }
                decide(state)
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(batch_id = %batch_id))]
    pub async fn handle_settlement(
        &self,
        batch_id: SettlementBatchId,
        command: &SettlementCommand,
        context: &CommandContext,
    ) -> Result<Handled<SettlementBatchState>, StoreError> {
        let payments = settlement::payments_named(command).into_iter().collect();
        self.settlement_turn(batch_id, context, payments, |_| {
            Ok::<_, StoreError>(command.clone())
        })
        .await
    }

    /// A settlement command built by `build` from the batch as the log holds it under the
    /// stream's turn (a payout's amount in the batch's currency). Only for commands that name
    /// no payments: the payments a command settles are read before it is decided.
    #[tracing::instrument(skip_all, fields(batch_id = %batch_id))]
    pub async fn handle_settlement_with<Error>(
        &self,
        batch_id: SettlementBatchId,
        context: &CommandContext,
        build: impl FnMut(&SettlementBatchState) -> Result<SettlementCommand, Error>,
    ) -> Result<Handled<SettlementBatchState>, Error>
    where
        Error: From<StoreError>,
    {
        self.settlement_turn(batch_id, context, Vec::new(), build)
            .await
    }

    async fn settlement_turn<Error>(
        &self,
        batch_id: SettlementBatchId,
        context: &CommandContext,
        payments: Vec<PaymentId>,
        mut build: impl FnMut(&SettlementBatchState) -> Result<SettlementCommand, Error>,
    ) -> Result<Handled<SettlementBatchState>, Error>
    where
        Error: From<StoreError>,
    {
        let environment = context.environment;
        let reading = Reading {
            payments,
            ..Reading::kept()
        };
        let outcome = self
            .turn(
                batch_id.as_uuid(),
                context,
                reading,
                |batch: &SettlementBatchState,
                 loaded_payments: &BTreeMap<PaymentId, PaymentState>|
                 -> Result<Decision<SettlementEvent, DomainError>, Error> {
                    if batch
                        .batch
                        .as_ref()
                        .is_some_and(|batch| batch.environment != environment)
                    {
                        return Err(
                            StoreError::Rejected(DomainError::SettlementBatchNotFound).into()
                        );
                    }
                    let command = build(batch)?;
                    let named = settlement::payments_named(&command);
                    if named.iter().any(|id| !loaded_payments.contains_key(id)) {
                        return Err(StoreError::InvalidRequest(
                            "a settlement command built from its batch names payments not read"
                                .to_owned(),
                        )
                        .into());
                    }
                    Ok(match settlement::decide(batch, loaded_payments, &command) {
                        Ok(decision) => Decision::RecordAcross {
                            events: decision.batch_events,
                            payment_events: decision.payment_events,
                        },
                        Err(rule) => Decision::Refused(rule),
                    })
                },
            )
            .await?;
        Ok(outcome.handled()?)
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
        self.run_turn(run_id, Load::Whole, command, context).await
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
        let handled = self
            .run_turn(run_id, Load::Known(known), command, context)
            .await?;
        Ok((handled.state, handled.events))
    }

    /// A run's turn: read whole (never kept), a run of the other environment absent. A
    /// command that changes nothing answers with the run as it is.
    async fn run_turn(
        &self,
        run_id: ReconciliationRunId,
        load: Load<ReconciliationRunState>,
        command: &ReconciliationCommand,
        context: &CommandContext,
    ) -> Result<Handled<ReconciliationRunState>, StoreError> {
        let reading = Reading {
            load,
            visible: visible_run,
            payments: Vec::new(),
        };
        self.turn(run_id.as_uuid(), context, reading, |run, _| {
            let events = reconciliation::decide(run, command)?;
            Ok::<_, StoreError>(if events.is_empty() {
                Decision::Unchanged
            } else {
                Decision::Record(events)
            })
        })
        .await?
        .handled()
    }

    /// The one path from a command to the log. Takes the stream's turn in this process
    /// ([`StreamLocks`]), reads the stream (and the payments the decision reads), lets
    /// `decide` decide on what was read, and appends the events with the version read and
    /// the context's idempotency claim, in one atomic append. When another process wrote to
    /// one of the streams meanwhile, backs off, reads again and decides again, at most
    /// [`MAX_CONFLICT_RETRIES`] times. A refusal is first checked against the key (see
    /// [`Decision::Refused`]); an error of `decide` ends the turn as it is.
    ///
    /// A fold this process keeps stands in for the read: the append's version check finds
    /// it behind as surely as a read would, and what no append checks is read for before it
    /// is answered. A command on a stream this process wrote or read last costs no read.
    async fn turn<State, Refusal, Error>(
        &self,
        stream_id: Uuid,
        context: &CommandContext,
        reading: Reading<State>,
        mut decide: impl FnMut(
            &State,
            &BTreeMap<PaymentId, PaymentState>,
        ) -> Result<Decision<State::Event, Refusal>, Error>,
    ) -> Result<Outcome<State, Refusal>, Error>
    where
        State: Aggregate + Default + Clone + Send + Sync + 'static,
        Error: From<StoreError>,
    {
        if let Some(line) = &self.unit {
            return line
                .unit()
                .turn(line.index(), stream_id, context, reading, decide)
                .await;
        }
        let _turn = self.locks.lock(stream_id).await;
        let Reading {
            load,
            visible,
            payments: named,
        } = reading;
        let keep = matches!(load, Load::Kept);
        let mut known = match load {
            Load::Known(state) => Some(state),
            Load::Kept | Load::Whole => None,
        };
        // A fold this process keeps is decided on as it is, without reading whether the log
        // moved past it, when only an append can come of the decision that the append's
        // version check settles: a stream of its own, no payments read beside it. Anything
        // else decided on it (a refusal, an error, nothing to record) is checked against the
        // log before it is answered.
        let mut trust_kept = named.is_empty();
        let mut attempt = 0;
        while attempt < MAX_CONFLICT_RETRIES {
            let kept = match (&known, keep && trust_kept) {
                (None, true) => self.states.get::<State>(stream_id),
                _ => None,
            };
            let unchecked = kept.is_some();
            let (state, summary) = match (known.take(), kept) {
                (Some(state), _) => (state, StreamSummary::default()),
                (None, Some(Folded { state, summary })) => {
                    (visible(state, context.environment), summary)
                }
                (None, None) if keep => {
                    let Folded { state, summary } = self.load_folded::<State>(stream_id).await?;
                    (visible(state, context.environment), summary)
                }
                (None, None) => {
                    let (state, history) = self.load_with_history::<State>(stream_id).await?;
                    let summary = StreamSummary::default().after(&history);
                    (visible(state, context.environment), summary)
                }
            };
            let mut payments = BTreeMap::new();
            let mut payments_began = BTreeMap::new();
            for payment_id in &named {
                let Folded { state, summary } = self
                    .load_folded::<PaymentState>(payment_id.as_uuid())
                    .await?;
                payments.insert(*payment_id, visible_payment(state, context.environment));
                payments_began.insert(*payment_id, summary.first_occurred_at);
            }
            let decided = decide(&state, &payments);
            let appends = matches!(&decided, Ok(Decision::Record(events)) if !events.is_empty());
            if unchecked && !appends && self.moved_past(stream_id, summary.version).await? {
                // Decided on a fold the log has moved past: decide again on the log's.
                trust_kept = false;
                continue;
            }
            let (events, payment_events) = match decided? {
                Decision::Record(events) => (events, BTreeMap::new()),
                Decision::RecordAcross {
                    events,
                    payment_events,
                } => (events, payment_events),
                Decision::Unchanged => {
                    return Ok(Outcome::Handled(Handled {
                        state,
                        stream: summary,
                        events: Vec::new(),
                        position: summary.last_position,
                        replayed: false,
                    }))
                }
                Decision::Refused(refusal) => {
                    return Ok(match self.replay::<State>(stream_id, context).await? {
                        Some(replayed) => Outcome::Handled(replayed),
                        None => Outcome::Refused(refusal),
                    })
                }
            };
            // What the stream's row keeps: only a fold kept between commands is (a run's whole
            // state is not), and only with its first event's time.
            let began = keep.then_some(summary.first_occurred_at);
            let mut streams = vec![stream_append(stream_id, &state, began, &events, context)?];
            for (payment_id, events) in &payment_events {
                // The version a payment's events are appended at is the one its decision read.
                let payment = payments.get(payment_id).ok_or_else(|| {
                    StoreError::InvalidRequest(format!(
                        "events for payment {payment_id}, which the decision did not read"
                    ))
                })?;
                let began = payments_began.get(payment_id).copied();
                streams.push(stream_append(
                    payment_id.as_uuid(),
                    payment,
                    began,
                    events,
                    context,
                )?);
            }
            match self.append(streams, context).await {
                // The kept fold was behind the log: no race lost, no pause before reading it.
                Err(StoreError::ConcurrencyConflict { .. }) if unchecked => trust_kept = false,
                Err(StoreError::ConcurrencyConflict { .. }) => {
                    back_off(attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
                Ok(outcome) => {
                    let handled = self
                        .answer_after(stream_id, state, summary, outcome)
                        .await?;
                    if keep {
                        self.keep(stream_id, &handled);
                    }
                    return Ok(Outcome::Handled(handled));
                }
            }
        }
        Err(StoreError::ConflictRetriesExhausted {
            attempts: MAX_CONFLICT_RETRIES,
        }
        .into())
    }

    /// Whether the log holds events of the stream after `version`: the check of a decision
    /// made on a kept fold that no append's version check settles.
    async fn moved_past(&self, stream_id: Uuid, version: u64) -> Result<bool, StoreError> {
        Ok(!self.read_stream(stream_id, version + 1).await?.is_empty())
    }

    async fn append(
        &self,
        streams: Vec<StreamAppend>,
        context: &CommandContext,
    ) -> Result<AppendOutcome, StoreError> {
        let idempotency = context
            .idempotency
            .as_ref()
            .map(|idempotency| idempotency.claim(context.environment));
        self.store
            .append(AppendRequest {
                streams,
                idempotency,
            })
            .await
    }

    /// The original answer for a key already used with the same request, if any. Fresh
    /// commands skip this lookup: the append claims their key in the same transaction and
    /// answers a replay there; only refusals (and a run's commands, before their turn) ask.
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
        let environment = context.environment;
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
    let mut events = store.read_all(first_position, count).await?;
    // Commands appended together (`unit`) share one range; each one's events carry its key.
    let own = |event: &RecordedEvent| {
        event
            .metadata
            .get("idempotency_key")
            .and_then(serde_json::Value::as_str)
            == Some(record.key.as_str())
    };
    let mut last_position = last_position;
    if events.iter().any(own) && !events.iter().all(own) {
        events.retain(own);
        last_position = events.last().map_or(last_position, |event| event.position);
    }
    Ok(AppendResult {
        events,
        last_position,
    })
}

fn visible_payment(state: PaymentState, environment: Environment) -> PaymentState {
    match &state.payment {
        Some(payment) if payment.environment != environment => PaymentState::default(),
        _ => state,
    }
}

/// A run of the other environment does not exist for the caller.
fn visible_run(state: ReconciliationRunState, environment: Environment) -> ReconciliationRunState {
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

/// Decodes `events`, the stream's next ones, and folds them onto `state`. A stream of another
/// kind (a settlement batch's id given as a payment's) is [`StoreError::StreamTypeMismatch`],
/// which callers answer as "not found", not as a corrupt event.
fn fold_onto<State>(state: State, events: &[RecordedEvent]) -> Result<State, StoreError>
where
    State: Aggregate,
{
    events.iter().try_fold(state, |state, recorded| {
        if recorded.stream_type != State::STREAM_TYPE {
            return Err(StoreError::StreamTypeMismatch {
                stream_id: recorded.stream_id,
                existing: recorded.stream_type,
                requested: State::STREAM_TYPE,
            });
        }
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

/// The append of `events`, decided on `state`. `began` is what the stream's row may keep:
/// `None` keeps nothing; `Some(time)` keeps the state after the events, the stream having
/// begun at `time` (`Some(None)`: unknown, so only a stream these events begin is kept).
fn stream_append<State, Event>(
    stream_id: Uuid,
    state: &State,
    began: Option<Option<DateTime<Utc>>>,
    events: &[Event],
    context: &CommandContext,
) -> Result<StreamAppend, StoreError>
where
    State: Aggregate<Event = Event> + Clone,
    Event: DomainEvent,
{
    let first_occurred_at = match (began, state.version()) {
        (Some(Some(began)), _) => Some(began),
        (Some(None), 0) => Some(context.occurred_at),
        _ => None,
    };
    let kept_state = match first_occurred_at {
        Some(began) if !events.is_empty() => Some(KeptState::after(state, events, began)?),
        _ => None,
    };
    let metadata = EventMetadata {
        environment: context.environment,
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
        stream_type: State::STREAM_TYPE,
        expected_version: match state.version() {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exactly(version),
        },
        events,
        kept_state,
    })
}
