//! The folded state of each stream, kept between batches so that a batch only folds its own
//! events. The state after stream version v is a pure function of the log, so a cached state
//! stays right whatever happens to the transactions that used it; a state that is missing, or
//! at another version than the next event needs, is folded again from the log.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use ledger_core::journal::{self, JournalEntry};
use ledger_core::payment::{self, PaymentEvent, PaymentState};
use ledger_core::reconciliation::{self, ReconciliationEvent, ReconciliationRunState};
use ledger_core::settlement::{self, SettlementBatchState, SettlementEvent};
use ledger_core::MoneyError;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{from_stored, to_stored, ProjectionError};

/// A stream's domain event, decoded.
#[derive(Debug, Clone)]
pub enum DomainEvent {
    Payment(PaymentEvent),
    Settlement(SettlementEvent),
    Reconciliation(ReconciliationEvent),
}

/// A stream's folded state.
#[derive(Debug, Clone)]
pub enum StreamState {
    Payment(PaymentState),
    Settlement(SettlementBatchState),
    Reconciliation(ReconciliationRunState),
}

impl StreamState {
    pub(crate) fn empty_for(event: &DomainEvent) -> StreamState {
        match event {
            DomainEvent::Payment(_) => StreamState::Payment(PaymentState::default()),
            DomainEvent::Settlement(_) => StreamState::Settlement(SettlementBatchState::default()),
            DomainEvent::Reconciliation(_) => {
                StreamState::Reconciliation(ReconciliationRunState::default())
            }
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            StreamState::Payment(state) => state.version,
            StreamState::Settlement(state) => state.version,
            StreamState::Reconciliation(state) => state.version,
        }
    }

    /// Applies one event; an event of the other stream type leaves the state as it is but
    /// counts toward the version, like the core's total `evolve`.
    pub(crate) fn evolve(self, event: &DomainEvent) -> StreamState {
        match (self, event) {
            (StreamState::Payment(state), DomainEvent::Payment(event)) => {
                StreamState::Payment(payment::evolve(state, event))
            }
            (StreamState::Settlement(state), DomainEvent::Settlement(event)) => {
                StreamState::Settlement(settlement::evolve(state, event))
            }
            (StreamState::Reconciliation(state), DomainEvent::Reconciliation(event)) => {
                StreamState::Reconciliation(reconciliation::evolve(state, event))
            }
            (StreamState::Payment(mut state), _) => {
                state.version += 1;
                StreamState::Payment(state)
            }
            (StreamState::Settlement(mut state), _) => {
                state.version += 1;
                StreamState::Settlement(state)
            }
            (StreamState::Reconciliation(mut state), _) => {
                state.version += 1;
                StreamState::Reconciliation(state)
            }
        }
    }

    /// The journal entry of `event` on this state, the state before it: what the journal
    /// projection writes and what verify's refold balances.
    pub(crate) fn journal_entry(
        &self,
        event: &DomainEvent,
    ) -> Result<Option<JournalEntry>, MoneyError> {
        match (self, event) {
            (StreamState::Payment(state), DomainEvent::Payment(event)) => {
                journal::payment_entry(state, event)
            }
            (StreamState::Settlement(state), DomainEvent::Settlement(event)) => {
                journal::settlement_entry(state, event)
            }
            _ => Ok(None),
        }
    }
}

/// Decodes a stored event by its stream type.
pub(crate) fn decode(
    position: u64,
    stream_type: &str,
    event_type: &str,
    schema_version: i32,
    payload: serde_json::Value,
) -> Result<DomainEvent, ProjectionError> {
    let schema_version = u32::try_from(schema_version).unwrap_or(0);
    let decoded = match stream_type {
        "settlement_batch" => SettlementEvent::from_stored(event_type, schema_version, payload)
            .map(DomainEvent::Settlement),
        "reconciliation_run" => {
            ReconciliationEvent::from_stored(event_type, schema_version, payload)
                .map(DomainEvent::Reconciliation)
        }
        _ => {
            PaymentEvent::from_stored(event_type, schema_version, payload).map(DomainEvent::Payment)
        }
    };
    decoded.map_err(|source| ProjectionError::Decode { position, source })
}

struct Cached {
    state: StreamState,
    /// The log position of the last event folded in: eviction drops the least recent.
    last_position: u64,
    /// When the stream's first event occurred (verify compares it with the stream's row).
    first_occurred_at: DateTime<Utc>,
}

/// The cache of folded stream states.
pub struct StreamStates {
    states: HashMap<Uuid, Cached>,
    capacity: usize,
}

/// What a batch needs of a stream: its id and the version of its first event in the batch.
pub(crate) struct StreamNeed {
    pub stream_id: Uuid,
    pub first_version: u64,
}

impl StreamStates {
    /// An empty cache keeping at most about `capacity` states.
    pub fn new(capacity: usize) -> Self {
        StreamStates {
            states: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Makes sure every stream of the batch is cached at the version before its first event
    /// in the batch, folding the missing ones from the log (events before `before_position`).
    #[tracing::instrument(skip_all, fields(streams = needs.len()))]
    pub(crate) async fn prepare(
        &mut self,
        connection: &mut PgConnection,
        needs: &[StreamNeed],
        before_position: u64,
    ) -> Result<(), ProjectionError> {
        let mut missing = Vec::new();
        for need in needs {
            let wanted = need.first_version.saturating_sub(1);
            let cached_version = self
                .states
                .get(&need.stream_id)
                .map(|cached| cached.state.version());
            if cached_version == Some(wanted) || (wanted == 0 && cached_version.is_none()) {
                continue;
            }
            self.states.remove(&need.stream_id);
            if wanted > 0 {
                missing.push(need.stream_id);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let rows = sqlx::query!(
            r#"SELECT position, stream_id, stream_type, event_type, schema_version, occurred_at,
                   payload
               FROM events
               WHERE stream_id = ANY($1::uuid[]) AND position < $2
               ORDER BY stream_id, stream_version"#,
            &missing,
            to_stored(before_position)?,
        )
        .fetch_all(connection)
        .await?;
        for row in rows {
            let position = from_stored(row.position)?;
            let event = decode(
                position,
                &row.stream_type,
                &row.event_type,
                row.schema_version,
                row.payload,
            )?;
            self.fold(row.stream_id, position, row.occurred_at, &event, |_| ());
        }
        Ok(())
    }

    /// Folds one event into its stream's state, first showing `inspect` the state before it
    /// (journal entries need it), without copying the state.
    pub(crate) fn fold<R>(
        &mut self,
        stream_id: Uuid,
        position: u64,
        occurred_at: DateTime<Utc>,
        event: &DomainEvent,
        inspect: impl FnOnce(&StreamState) -> R,
    ) -> R {
        let (before, first_occurred_at) = match self.states.remove(&stream_id) {
            Some(cached) => (cached.state, cached.first_occurred_at),
            // Only a stream's first event finds no state: `prepare` folds the others again.
            None => (StreamState::empty_for(event), occurred_at),
        };
        let seen = inspect(&before);
        let after = before.evolve(event);
        self.states.insert(
            stream_id,
            Cached {
                state: after,
                last_position: position,
                first_occurred_at,
            },
        );
        seen
    }

    /// When the stream's first event occurred, if its state is cached.
    pub(crate) fn first_occurred_at(&self, stream_id: &Uuid) -> Option<DateTime<Utc>> {
        self.states
            .get(stream_id)
            .map(|cached| cached.first_occurred_at)
    }

    pub(crate) fn version(&self, stream_id: &Uuid) -> u64 {
        self.states
            .get(stream_id)
            .map_or(0, |cached| cached.state.version())
    }

    pub(crate) fn get(&self, stream_id: &Uuid) -> Option<&StreamState> {
        self.states.get(stream_id).map(|cached| &cached.state)
    }

    /// Keeps the cache bounded: past its capacity, the least recently used half goes.
    pub(crate) fn evict(&mut self, keep: &HashSet<Uuid>) {
        if self.states.len() <= self.capacity {
            return;
        }
        let mut positions: Vec<u64> = self
            .states
            .values()
            .map(|cached| cached.last_position)
            .collect();
        let middle = positions.len() / 2;
        let (_, threshold, _) = positions.select_nth_unstable(middle);
        let threshold = *threshold;
        self.states.retain(|stream_id, cached| {
            cached.last_position >= threshold || keep.contains(stream_id)
        });
    }
}
