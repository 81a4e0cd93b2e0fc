//! Commands decided together: a [`Unit`] of numbered lines, each a command decided on the
//! state the lines before it leave, appended in one transaction with every line's
//! idempotency claim ([`EventStore::append_claiming`]), or not at all.
//!
//! Each line's command runs its usual path through a handler bound to its line
//! ([`Unit::handler_for`]): the same closures decide it, but `turn` hands them to the
//! unit instead of appending. Lines take their turns in order (line `n` decides once every
//! line before it has); [`Unit::drive`] appends when all have decided and tells every line
//! the verdict. A line refused, or failed before it reached its turn ([`Unit::finished`]),
//! stops the unit: nothing is appended and every other line is answered
//! [`StoreError::NotApplied`]. When another writer changed a stream meanwhile (the append's
//! versions or a key no longer hold), every line decides again on what it reads now, like a
//! single command's turn, at most [`MAX_CONFLICT_RETRIES`] times.
//!
//! A line whose key was used before for the same request answers with that request's result
//! and adds nothing to the unit: an atomic request sent again appends nothing and every line
//! says `replayed`.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};

use ledger_core::aggregate::Aggregate;
use ledger_core::ids::PaymentId;
use ledger_core::payment::PaymentState;
use tokio::sync::watch;
use uuid::Uuid;

use super::{
    back_off, stream_append, CommandContext, CommandHandler, Decision, Handled, Outcome, Reading,
    MAX_CONFLICT_RETRIES,
};
use crate::error::StoreError;
use crate::event::{
    AppendResult, ExpectedVersion, IdempotencyClaim, KeptState, NewEvent, RecordedEvent,
    StreamAppend, StreamType,
};
use crate::state_cache::{Folded, StreamSummary};

/// A handler's line of a unit: where its turns go instead of the log.
#[derive(Clone)]
pub(crate) struct Line {
    unit: Arc<Unit>,
    index: usize,
}

/// Where a line stands in the current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Has not decided in this round.
    Waiting,
    /// Decided in this round; its events are in the unit.
    Decided,
    /// Answered without adding to the unit (a replay, a command that changes nothing).
    Answered,
    /// Refused or failed: the unit stops here.
    Failed,
}

#[derive(Debug, Clone)]
enum Verdict {
    Appended(Arc<AppendResult>),
    /// Decide again, in the next round (never published: the round moves on instead).
    Again,
    /// Nothing is appended: this line (0-based) was refused or failed.
    Stopped(usize),
    Failed(String),
}

#[derive(Debug, Clone)]
struct Progress {
    round: usize,
    /// The line whose turn it is.
    next: usize,
    /// The verdict of `round`, once given.
    verdict: Option<Verdict>,
}

/// A stream as the unit leaves it so far.
struct Pending {
    stream_type: StreamType,
    /// The version read before the unit's first event on it: the append's expectation.
    expected: ExpectedVersion,
    base_version: u64,
    /// The stream as read, before the unit's events.
    loaded: StreamSummary,
    /// `Folded<State>` of the stream's kind: the state after the unit's events so far.
    state: Box<dyn Any + Send + Sync>,
    events: Vec<NewEvent>,
    /// The state the last line's events leave, for the stream's row to keep.
    kept_state: Option<KeptState>,
}

#[derive(Default)]
struct Round {
    streams: HashMap<Uuid, Pending>,
    first_touched: Vec<Uuid>,
    claims: Vec<IdempotencyClaim>,
}

struct Shared {
    statuses: Vec<Status>,
    round: Round,
}

/// Commands decided in order and appended together, or not at all (see the module docs).
pub struct Unit {
    handler: CommandHandler,
    shared: Mutex<Shared>,
    progress: watch::Sender<Progress>,
}

impl Unit {
    /// A unit of `lines` commands, appended through `handler`'s store.
    pub fn new(handler: &CommandHandler, lines: usize) -> Arc<Unit> {
        let (progress, _) = watch::channel(Progress {
            round: 0,
            next: 0,
            verdict: None,
        });
        Arc::new(Unit {
            handler: CommandHandler {
                unit: None,
                ..handler.clone()
            },
            shared: Mutex::new(Shared {
                statuses: vec![Status::Waiting; lines],
                round: Round::default(),
            }),
            progress,
        })
    }

    /// The handler line `index` (0-based) runs its command through.
    pub fn handler_for(self: &Arc<Self>, index: usize) -> CommandHandler {
        CommandHandler {
            unit: Some(Line {
                unit: Arc::clone(self),
                index,
            }),
            ..self.handler.clone()
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the unit that line `index`'s command has ended. One that ended before deciding
    /// (its input refused before any read) stops the unit when its turn comes.
    pub fn finished(&self, index: usize) {
        let mut shared = self.shared();
        if let Some(status) = shared.statuses.get_mut(index) {
            if *status == Status::Waiting {
                *status = Status::Failed;
            }
        }
        self.advance(&shared);
    }

    /// Marks line `index` and moves the turn on past every line that is done.
    fn set(&self, index: usize, status: Status) {
        let mut shared = self.shared();
        if let Some(slot) = shared.statuses.get_mut(index) {
            *slot = status;
        }
        self.advance(&shared);
    }

    fn advance(&self, shared: &Shared) {
        self.progress.send_if_modified(|progress| {
            if progress.verdict.is_some() {
                return false;
            }
            let before = progress.next;
            while let Some(status) = shared.statuses.get(progress.next) {
                match status {
                    Status::Decided | Status::Answered => progress.next += 1,
                    Status::Failed => {
                        progress.verdict = Some(Verdict::Stopped(progress.next));
                        return true;
                    }
                    Status::Waiting => break,
                }
            }
            progress.next != before
        });
    }

    /// Appends once every line has decided, and gives the verdict; decides again after a
    /// conflict. Runs beside the lines' commands, and returns when the unit is settled.
    pub async fn drive(&self) {
        let mut watching = self.progress.subscribe();
        let lines = self.shared().statuses.len();
        for attempt in 0..=MAX_CONFLICT_RETRIES {
            let ready = watching
                .wait_for(|progress| progress.verdict.is_some() || progress.next >= lines)
                .await
                .map(|progress| progress.verdict.is_some());
            match ready {
                Ok(true) | Err(_) => return,
                Ok(false) => {}
            }
            let round = std::mem::take(&mut self.shared().round);
            let verdict = match self.append(round).await {
                Ok(result) => Verdict::Appended(Arc::new(result)),
                Err(
                    StoreError::ConcurrencyConflict { .. }
                    | StoreError::IdempotencyKeyReused { .. },
                ) if attempt < MAX_CONFLICT_RETRIES => {
                    back_off(attempt).await;
                    Verdict::Again
                }
                Err(StoreError::ConcurrencyConflict { .. }) => Verdict::Failed(
                    StoreError::ConflictRetriesExhausted {
                        attempts: MAX_CONFLICT_RETRIES,
                    }
                    .to_string(),
                ),
                Err(error) => Verdict::Failed(error.to_string()),
            };
            if !matches!(verdict, Verdict::Again) {
                self.progress.send_modify(|progress| {
                    progress.verdict = Some(verdict);
                });
                return;
            }
            // The next round: every line that decided decides again, in order.
            let mut shared = self.shared();
            for status in &mut shared.statuses {
                if *status == Status::Decided {
                    *status = Status::Waiting;
                }
            }
            self.progress.send_modify(|progress| {
                progress.round += 1;
                progress.next = 0;
            });
            self.advance(&shared);
        }
    }

    async fn append(&self, round: Round) -> Result<AppendResult, StoreError> {
        let Round {
            mut streams,
            first_touched,
            claims,
        } = round;
        let appends: Vec<StreamAppend> = first_touched
            .iter()
            .filter_map(|stream_id| {
                let pending = streams.remove(stream_id)?;
                (!pending.events.is_empty()).then_some(StreamAppend {
                    stream_id: *stream_id,
                    stream_type: pending.stream_type,
                    expected_version: pending.expected,
                    events: pending.events,
                    kept_state: pending.kept_state,
                })
            })
            .collect();
        if appends.is_empty() {
            return Ok(AppendResult {
                events: Vec::new(),
                last_position: 0,
            });
        }
        Ok(self
            .handler
            .store
            .append_claiming(appends, claims)
            .await?
            .into_result())
    }

    /// Line `index`'s turn: `turn`'s work, with the unit in place of the log.
    pub(super) async fn turn<State, Refusal, Error>(
        &self,
        index: usize,
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
        // Every stream is read as the unit leaves it: a state the caller holds (`Known`) is
        // read again, as `turn` does after a conflict.
        let Reading {
            load: _,
            visible,
            payments: named,
        } = reading;
        let mut watching = self.progress.subscribe();
        loop {
            let round = {
                let progress = watching
                    .wait_for(|progress| progress.verdict.is_some() || progress.next == index)
                    .await
                    .map_err(|_| StoreError::WriterStopped)?;
                if let Some(Verdict::Stopped(line)) = progress.verdict {
                    return Err(StoreError::NotApplied { line: line + 1 }.into());
                }
                progress.round
            };
            let decided = self
                .decide_line(stream_id, context, &named, visible, &mut decide)
                .await;
            let mine = match decided {
                Ok(Turn::Decided(mine)) => {
                    self.set(index, Status::Decided);
                    mine
                }
                Ok(Turn::Answered(outcome)) => {
                    self.set(index, Status::Answered);
                    return Ok(outcome);
                }
                Ok(Turn::Refused(refusal)) => {
                    self.set(index, Status::Failed);
                    return Ok(Outcome::Refused(refusal));
                }
                Err(error) => {
                    self.set(index, Status::Failed);
                    return Err(error);
                }
            };
            let verdict = watching
                .wait_for(|progress| progress.round != round || progress.verdict.is_some())
                .await
                .map_err(|_| StoreError::WriterStopped)?
                .verdict
                .clone();
            match verdict {
                Some(Verdict::Appended(result)) => {
                    return Ok(Outcome::Handled(mine.answer(stream_id, &result)?))
                }
                Some(Verdict::Stopped(line)) => {
                    return Err(StoreError::NotApplied { line: line + 1 }.into())
                }
                Some(Verdict::Failed(message)) => {
                    return Err(StoreError::BatchFailed(message).into())
                }
                // A new round: decide again.
                Some(Verdict::Again) | None => {}
            }
        }
    }

    /// Decides line `index` on the unit's state of its streams, read from the log where the
    /// unit has not touched them yet.
    async fn decide_line<State, Refusal, Error>(
        &self,
        stream_id: Uuid,
        context: &CommandContext,
        named: &[PaymentId],
        visible: fn(State, ledger_core::ids::Environment) -> State,
        decide: &mut impl FnMut(
            &State,
            &BTreeMap<PaymentId, PaymentState>,
        ) -> Result<Decision<State::Event, Refusal>, Error>,
    ) -> Result<Turn<State, Refusal>, Error>
    where
        State: Aggregate + Default + Clone + Send + Sync + 'static,
        Error: From<StoreError>,
    {
        if let Some(replayed) = self.handler.replay::<State>(stream_id, context).await? {
            return Ok(Turn::Answered(Outcome::Handled(replayed)));
        }
        let Folded { state, summary } = self.current::<State>(stream_id, context, visible).await?;
        let mut payments = BTreeMap::new();
        let mut payments_began = BTreeMap::new();
        for payment_id in named {
            let payment = self
                .current::<PaymentState>(payment_id.as_uuid(), context, super::visible_payment)
                .await?;
            payments.insert(*payment_id, payment.state);
            payments_began.insert(*payment_id, payment.summary.first_occurred_at);
        }
        let (events, payment_events) = match decide(&state, &payments)? {
            Decision::Record(events) => (events, BTreeMap::new()),
            Decision::RecordAcross {
                events,
                payment_events,
            } => (events, payment_events),
            Decision::Unchanged => {
                return Ok(Turn::Answered(Outcome::Handled(Handled {
                    state,
                    stream: summary,
                    events: Vec::new(),
                    position: summary.last_position,
                    replayed: false,
                })))
            }
            Decision::Refused(refusal) => return Ok(Turn::Refused(refusal)),
        };
        let mut shared = self.shared();
        let round = &mut shared.round;
        let mut versions = Vec::with_capacity(1 + payment_events.len());
        // A stream the unit begins has no first time in its summary; the plan takes it from
        // the stream's first event, whichever line wrote it.
        let began = Some(Some(
            summary.first_occurred_at.unwrap_or(context.occurred_at),
        ));
        let append = stream_append(stream_id, &state, began, &events, context)?;
        let after = events
            .iter()
            .fold(state, |state, event| state.evolve(event));
        versions.push(round.add(stream_id, append, after.clone())?);
        for (payment_id, events) in &payment_events {
            let payment = payments.get(payment_id).cloned().ok_or_else(|| {
                StoreError::InvalidRequest(format!(
                    "events for payment {payment_id}, which the decision did not read"
                ))
            })?;
            let began = payments_began.get(payment_id).copied();
            let append = stream_append(payment_id.as_uuid(), &payment, began, events, context)?;
            let after = events
                .iter()
                .fold(payment, |state, event| state.evolve(event));
            versions.push(round.add(payment_id.as_uuid(), append, after)?);
        }
        if let Some(idempotency) = &context.idempotency {
            round.claims.push(idempotency.claim(context.environment));
        }
        let loaded = round
            .streams
            .get(&stream_id)
            .map_or(summary, |pending| pending.loaded);
        Ok(Turn::Decided(Mine {
            state: after,
            loaded,
            versions,
        }))
    }

    /// A stream as the unit leaves it so far: its pending state, or read from the log (and
    /// then pending with no events).
    async fn current<State>(
        &self,
        stream_id: Uuid,
        context: &CommandContext,
        visible: fn(State, ledger_core::ids::Environment) -> State,
    ) -> Result<Folded<State>, StoreError>
    where
        State: Aggregate + Default + Clone + Send + Sync + 'static,
    {
        let pending = {
            let shared = self.shared();
            shared.round.streams.get(&stream_id).map(|pending| {
                pending
                    .state
                    .downcast_ref::<Folded<State>>()
                    .cloned()
                    .ok_or(StoreError::StreamTypeMismatch {
                        stream_id,
                        existing: pending.stream_type,
                        requested: State::STREAM_TYPE,
                    })
            })
        };
        if let Some(pending) = pending {
            return pending;
        }
        let Folded { state, summary } = self.handler.load_folded::<State>(stream_id).await?;
        let folded = Folded {
            state: visible(state, context.environment),
            summary,
        };
        let mut shared = self.shared();
        let round = &mut shared.round;
        if !round.streams.contains_key(&stream_id) {
            round.first_touched.push(stream_id);
            round.streams.insert(
                stream_id,
                Pending {
                    stream_type: State::STREAM_TYPE,
                    expected: match folded.state.version() {
                        0 => ExpectedVersion::NoStream,
                        version => ExpectedVersion::Exactly(version),
                    },
                    base_version: folded.state.version(),
                    loaded: folded.summary,
                    state: Box::new(folded.clone()),
                    events: Vec::new(),
                    kept_state: None,
                },
            );
        }
        Ok(folded)
    }
}

impl Round {
    /// Adds a line's append on a stream the unit has read (its events, and the state they
    /// leave for the stream's row to keep); returns the versions they take.
    fn add<State>(
        &mut self,
        stream_id: Uuid,
        append: StreamAppend,
        after: State,
    ) -> Result<(Uuid, RangeInclusive<u64>), StoreError>
    where
        State: Send + Sync + 'static,
    {
        let pending = self.streams.get_mut(&stream_id).ok_or_else(|| {
            StoreError::InvalidRequest(format!("events for stream {stream_id}, which was not read"))
        })?;
        let first = pending.base_version + pending.events.len() as u64 + 1;
        let last = first + append.events.len() as u64 - 1;
        pending.events.extend(append.events);
        pending.kept_state = append.kept_state;
        let summary = match pending.state.downcast_ref::<Folded<State>>() {
            Some(folded) => folded.summary,
            None => pending.loaded,
        };
        pending.state = Box::new(Folded {
            state: after,
            summary,
        });
        Ok((stream_id, first..=last))
    }
}

enum Turn<State, Refusal> {
    Decided(Mine<State>),
    Answered(Outcome<State, Refusal>),
    Refused(Refusal),
}

/// What a line decided: its stream's state after it, and the versions its events take on
/// each stream.
struct Mine<State> {
    state: State,
    /// The line's stream as read before the unit's events.
    loaded: StreamSummary,
    versions: Vec<(Uuid, RangeInclusive<u64>)>,
}

impl<State> Mine<State> {
    /// The line's answer from the unit's append: its own events, and its stream's summary up
    /// to its last event.
    fn answer(self, stream_id: Uuid, result: &AppendResult) -> Result<Handled<State>, StoreError> {
        let is_mine = |event: &RecordedEvent| {
            self.versions.iter().any(|(stream, versions)| {
                *stream == event.stream_id && versions.contains(&event.stream_version)
            })
        };
        let events: Vec<RecordedEvent> = result
            .events
            .iter()
            .filter(|e| is_mine(e))
            .cloned()
            .collect();
        let last_version = self
            .versions
            .iter()
            .find(|(stream, _)| *stream == stream_id)
            .map_or(0, |(_, versions)| *versions.end());
        let own: Vec<RecordedEvent> = result
            .events
            .iter()
            .filter(|event| event.stream_id == stream_id && event.stream_version <= last_version)
            .cloned()
            .collect();
        Ok(Handled {
            state: self.state,
            stream: self.loaded.after(&own),
            position: events
                .last()
                .map_or(result.last_position, |event| event.position),
            events,
            replayed: false,
        })
    }
}

impl Line {
    pub(super) fn unit(&self) -> &Unit {
        &self.unit
    }

    pub(super) fn index(&self) -> usize {
        self.index
    }
}
