//! One page of the log, decoded and folded once, shared by every read model of a projector
//! and by the notification dispatcher (`ledger-notify`), so the log is followed one way.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use ledger_core::journal::JournalEntry;
use ledger_core::payment::PaymentState;
use ledger_core::reconciliation::ReconciliationRunState;
use ledger_core::settlement::SettlementBatchState;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{from_stored, to_stored, ProjectionError};
use crate::stream_states::{decode, DomainEvent, StreamNeed, StreamState, StreamStates};

/// One event of the batch: where it is in the log, what it says, and its journal entry.
#[derive(Debug, Clone)]
pub struct BatchEvent {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub event: DomainEvent,
    pub entry: Option<JournalEntry>,
    /// The stream's state right after this event, kept only when the reader asks for it
    /// ([`read_batch_with_states`]): notifications carry it, read models need only the
    /// state after the page.
    pub state_after: Option<StreamState>,
}

/// A page of consecutive positions with each touched stream's state after the page.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<BatchEvent>,
    pub payments: BTreeMap<Uuid, PaymentState>,
    pub settlements: BTreeMap<Uuid, SettlementBatchState>,
    pub reconciliations: BTreeMap<Uuid, ReconciliationRunState>,
}

impl Batch {
    pub fn last_position(&self) -> u64 {
        self.events.last().map_or(0, |event| event.position)
    }

    pub fn first_position(&self) -> Option<u64> {
        self.events.first().map(|event| event.position)
    }

    pub fn last_recorded_at(&self) -> Option<DateTime<Utc>> {
        self.events.last().map(|event| event.recorded_at)
    }

    /// Keeps a stream's state after the batch (a touched stream's), which the read models
    /// write from.
    pub(crate) fn keep_state(&mut self, stream_id: Uuid, state: Option<&StreamState>) {
        match state {
            Some(StreamState::Payment(state)) => {
                self.payments.insert(stream_id, state.clone());
            }
            Some(StreamState::Settlement(state)) => {
                self.settlements.insert(stream_id, state.clone());
            }
            Some(StreamState::Reconciliation(state)) => {
                self.reconciliations.insert(stream_id, state.clone());
            }
            None => {}
        }
    }

    /// The events a projection at checkpoint `after` has not applied yet.
    pub fn events_after(&self, after: u64) -> impl Iterator<Item = &BatchEvent> {
        self.events
            .iter()
            .filter(move |event| event.position > after)
    }
}

/// Reads up to `limit` events from `from_position` (up to `to_position` when given) and folds
/// them. `None` when there is nothing to read.
pub(crate) async fn read_batch(
    connection: &mut PgConnection,
    states: &mut StreamStates,
    from_position: u64,
    to_position: Option<u64>,
    limit: usize,
) -> Result<Option<Batch>, ProjectionError> {
    read(connection, states, from_position, to_position, limit, false).await
}

/// [`read_batch`] that also keeps each event's stream state after it
/// ([`BatchEvent::state_after`]).
pub async fn read_batch_with_states(
    connection: &mut PgConnection,
    states: &mut StreamStates,
    from_position: u64,
    to_position: Option<u64>,
    limit: usize,
) -> Result<Option<Batch>, ProjectionError> {
    read(connection, states, from_position, to_position, limit, true).await
}

#[tracing::instrument(skip(connection, states))]
async fn read(
    connection: &mut PgConnection,
    states: &mut StreamStates,
    from_position: u64,
    to_position: Option<u64>,
    limit: usize,
    keep_states: bool,
) -> Result<Option<Batch>, ProjectionError> {
    let to_position = to_stored(to_position.unwrap_or(i64::MAX as u64))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut versions = Vec::new();
    // Each payload is decoded as its row arrives: a batch of parsed JSON documents would
    // take several times the memory of the typed events.
    let mut rows = Vec::new();
    let mut stream = sqlx::query!(
        r#"SELECT position, event_id, stream_id, stream_type, stream_version, event_type,
               schema_version, recorded_at, occurred_at, payload
           FROM events
           WHERE position >= $1 AND position <= $2
           ORDER BY position
           LIMIT $3"#,
        to_stored(from_position)?,
        to_position,
        limit,
    )
    .fetch(&mut *connection);
    while let Some(row) = stream.try_next().await? {
        let position = from_stored(row.position)?;
        let event = decode(
            position,
            &row.stream_type,
            &row.event_type,
            row.schema_version,
            row.payload,
        )?;
        rows.push(BatchEvent {
            position,
            event_id: row.event_id,
            stream_id: row.stream_id,
            event_type: row.event_type,
            occurred_at: row.occurred_at,
            recorded_at: row.recorded_at,
            event,
            entry: None,
            state_after: None,
        });
        versions.push(from_stored(row.stream_version)?);
    }
    drop(stream);
    if rows.is_empty() {
        return Ok(None);
    }
    let mut needs = Vec::new();
    let mut seen = HashSet::new();
    for (row, version) in rows.iter().zip(&versions) {
        if seen.insert(row.stream_id) {
            needs.push(StreamNeed {
                stream_id: row.stream_id,
                first_version: *version,
            });
        }
    }
    states.prepare(connection, &needs, from_position).await?;

    let mut batch = Batch {
        events: rows,
        ..Batch::default()
    };
    for (event, version) in batch.events.iter_mut().zip(versions) {
        let state_version = states.version(&event.stream_id);
        if state_version + 1 != version {
            return Err(ProjectionError::StreamOutOfOrder {
                stream_id: event.stream_id,
                position: event.position,
                state_version,
                event_version: version,
            });
        }
        event.entry = states
            .fold(
                event.stream_id,
                event.position,
                event.occurred_at,
                &event.event,
                |before| before.journal_entry(&event.event),
            )
            .map_err(|source| ProjectionError::JournalOverflow {
                position: event.position,
                source,
            })?;
        if keep_states {
            event.state_after = states.get(&event.stream_id).cloned();
        }
    }
    for stream_id in seen.iter() {
        batch.keep_state(*stream_id, states.get(stream_id));
    }
    states.evict(&seen);
    Ok(Some(batch))
}
