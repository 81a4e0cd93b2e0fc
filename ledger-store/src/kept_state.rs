//! A stream's latest fold, kept in its `streams` row beside its version and written by the
//! statement that appends its events (`batch_write`), so that reading a stream nobody has read
//! in this process is one row instead of its every event (migration
//! `20261210100000_kept_stream_states.sql`, docs/scaling.md).
//!
//! The log stays the truth: a kept state is the fold in ledger-core's `kept_form` (the bytes of
//! its serde form), named by `Aggregate::STATE_FORMAT`. It is only written by a command that
//! decided on the state it keeps, is only used when its format and version are the ones the
//! reader expects, and `ledger verify` compares every one with the log's fold at its version.
//! An append that brings no state (a raw append through `EventStore::append`) clears it, and
//! the stream is folded from its events until its next command. Its column is `bytea` since
//! migration `20261211100000_kept_states_as_bytes.sql` (format 1 was JSON text).

use chrono::{DateTime, Utc};
use ledger_core::aggregate::Aggregate;
use ledger_core::kept_form;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::StreamType;
use crate::rows::from_stored;
use crate::state_cache::{Folded, StreamSummary};

/// The state a stream's append leaves it in, to keep in its row: the kept form of a state of
/// the stream's kind, at the version the plan checks the append leaves (a state at another
/// version is not kept). That it is the fold of the events is the caller's to make true (the
/// command handler folds its decision's events onto the state it decided on) and
/// `ledger verify`'s to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptState {
    version: u64,
    format: u32,
    bytes: Vec<u8>,
    first_occurred_at: DateTime<Utc>,
}

impl KeptState {
    /// The state `state` (the fold of its stream after the append's events) in its kept form;
    /// `first_occurred_at` is the stream's first event's time.
    pub fn of<State: Aggregate>(
        state: &State,
        first_occurred_at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let bytes = kept_form::encode(state)
            .map_err(|error| StoreError::InvalidRequest(error.to_string()))?;
        Ok(KeptState {
            version: state.version(),
            format: State::STATE_FORMAT,
            bytes,
            first_occurred_at,
        })
    }

    /// The state `events` leave when folded onto `state` (the stream before them), in its
    /// kept form; `first_occurred_at` is the stream's first event's time.
    pub fn after<State: Aggregate + Clone>(
        state: &State,
        events: &[State::Event],
        first_occurred_at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let after = events
            .iter()
            .fold(state.clone(), |state, event| state.evolve(event));
        Self::of(&after, first_occurred_at)
    }

    /// The stream version the state is the fold of.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn format(&self) -> u32 {
        self.format
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn first_occurred_at(&self) -> DateTime<Utc> {
        self.first_occurred_at
    }
}

/// A `streams` row as stored: its version, and its kept state if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStream {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub version: u64,
    pub kept: Option<StoredKeptState>,
}

/// A kept state as read back, not yet trusted: [`StoredStream::folded`] decides.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKeptState {
    pub format: u32,
    pub bytes: Vec<u8>,
    pub first_occurred_at: DateTime<Utc>,
    pub last_occurred_at: DateTime<Utc>,
    pub last_position: u64,
}

impl StoredStream {
    /// The kept state as `State`'s fold, if it is one: of `State`'s stream type and format,
    /// and the fold of the version the row is at. `None` means fold the stream's events.
    pub fn folded<State: Aggregate>(&self) -> Option<Folded<State>> {
        let kept = self.kept.as_ref()?;
        if self.stream_type != State::STREAM_TYPE || kept.format != State::STATE_FORMAT {
            return None;
        }
        let state: State = match kept_form::decode(&kept.bytes) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(
                    stream_id = %self.stream_id,
                    %error,
                    "a kept stream state does not read back; folding the stream's events instead"
                );
                return None;
            }
        };
        (state.version() == self.version && self.version > 0).then(|| Folded {
            state,
            summary: StreamSummary {
                version: self.version,
                first_occurred_at: Some(kept.first_occurred_at),
                last_occurred_at: Some(kept.last_occurred_at),
                last_position: kept.last_position,
            },
        })
    }
}

/// Several streams' rows from one statement, in the order of `stream_ids`: `None` for a
/// stream that does not exist; a row that does not read back fails its own stream's answer, not
/// the others'. Read on the stream readers' connections (see `connections`).
pub(crate) async fn read_many(
    connection: &mut PgConnection,
    stream_ids: &[Uuid],
) -> Result<Vec<Result<Option<StoredStream>, StoreError>>, StoreError> {
    // One primary-key probe per stream; `OFFSET 0` keeps the lateral subquery a probe, as in
    // the stream readers' read of events.
    let rows = sqlx::query!(
        r#"SELECT k.read AS "read!", s.stream_id AS "stream_id!", s.stream_type AS "stream_type!",
               s.version AS "version!", s.state_format AS "state_format?", s.state AS "state?",
               s.first_occurred_at AS "first_occurred_at?",
               s.last_occurred_at AS "last_occurred_at?", s.last_position AS "last_position?"
           FROM UNNEST($1::uuid[]) WITH ORDINALITY AS k(stream_id, read)
           CROSS JOIN LATERAL (
               SELECT * FROM streams WHERE streams.stream_id = k.stream_id OFFSET 0
           ) s"#,
        stream_ids,
    )
    .fetch_all(connection)
    .await?;
    let mut stored: Vec<Result<Option<StoredStream>, StoreError>> =
        stream_ids.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let slot = crate::connections::answer_to(&mut stored, row.read, "stream row")?;
        let read = || -> Result<StoredStream, StoreError> {
            let kept = match (
                row.state_format,
                row.state,
                row.first_occurred_at,
                row.last_occurred_at,
                row.last_position,
            ) {
                (Some(format), Some(bytes), Some(first), Some(last), Some(position)) => {
                    Some(StoredKeptState {
                        format: u32::try_from(format).unwrap_or(u32::MAX),
                        bytes,
                        first_occurred_at: first,
                        last_occurred_at: last,
                        last_position: from_stored(position)?,
                    })
                }
                _ => None,
            };
            Ok(StoredStream {
                stream_id: row.stream_id,
                stream_type: row.stream_type.parse()?,
                version: from_stored(row.version)?,
                kept,
            })
        };
        *slot = read().map(Some);
    }
    Ok(stored)
}
