//! The one statement that writes a planned batch: its events, its streams' rows (versions and
//! kept states), its idempotency claims and the new head, checking in the database what the
//! plan assumed.
//!
//! A plan is made from the state the previous batches leave, often before they commit (see
//! the `writer` module), so the statement checks that state rather than trusting it:
//!
//! - every stream must be at the version the plan found it at: a stream's upsert only
//!   updates a row at that version and type (a row another batch is writing is waited for);
//! - event ids, positions, stream versions and idempotency keys are unique keys, so one
//!   already taken fails the statement;
//! - last, `log_advance_head` takes the head's lock (waiting for the batch before it to
//!   commit), checks that the head is the one the plan chains onto and moves it. Each batch
//!   announces itself first (`log_announce_batch`, an advisory lock on the position it ends
//!   at), so that the batch after it waits for it even when its own inserts finish first.
//!
//! The inserts come before the lock, so they run while the batch before is still committing;
//! the lock is held until the commit, which orders the commits by position. Any failed check
//! raises and rolls the whole batch back; [`Refusal`] says which.

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{KeptState, RecordedEvent};
use crate::plan::Plan;
use crate::rows::to_stored;
use crate::validate::StoredJson;

/// Why the database refused a batch whose plan assumed a state that did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The head is short of the plan's: the batch before it has not taken the head's lock
    /// yet, or failed.
    Early,
    /// The log moved elsewhere: another writer took the head, a position, a stream version
    /// or an idempotency key the plan counted on.
    Stale,
}

impl Refusal {
    /// The refusal an error stands for, if it is one: an event id already recorded is not,
    /// since planning again on fresh state would not change it.
    pub fn of(error: &StoreError) -> Option<Refusal> {
        let StoreError::Database(sqlx::Error::Database(error)) = error else {
            return None;
        };
        match error.code().as_deref() {
            Some("LP001") => Some(Refusal::Early),
            Some("LP002" | "LP003") => Some(Refusal::Stale),
            // unique_violation, other than on the event's own id.
            Some("23505") if error.constraint() != Some("events_event_id_unique") => {
                Some(Refusal::Stale)
            }
            // deadlock_detected, lock_not_available (see `connections::LOCK_TIMEOUT`).
            Some("40P01" | "55P03") => Some(Refusal::Stale),
            _ => None,
        }
    }
}

/// Writes the plan in one statement, in the connection's transaction or in one of its own.
pub(crate) async fn write_plan(
    connection: &mut PgConnection,
    plan: &Plan,
) -> Result<(), StoreError> {
    let mut events = EventColumns::with_capacity(plan.events.len());
    for (event, stored) in plan.events.iter().zip(&plan.stored_json) {
        events.push(event, stored)?;
    }
    let streams = StreamColumns::new(plan)?;
    let claims = ClaimColumns::new(plan);
    sqlx::query_scalar!(
        r#"WITH announced AS MATERIALIZED (
               SELECT log_announce_batch($21)
           ), new_events AS (
               INSERT INTO events (position, event_id, stream_id, stream_type, stream_version,
                   event_type, schema_version, recorded_at, occurred_at, payload, metadata,
                   prev_hash, hash)
               SELECT new_event.* FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[],
                   $4::text[], $5::bigint[], $6::text[], $7::integer[], $8::timestamptz[],
                   $9::timestamptz[], $10::text[]::jsonb[], $11::text[]::jsonb[], $12::bytea[],
                   $13::bytea[])
                   AS new_event, announced
               RETURNING 1
           ), new_streams AS (
               INSERT INTO streams (stream_id, stream_type, version, state_format, state,
                   first_occurred_at, last_occurred_at, last_position)
               SELECT new_stream.* FROM UNNEST($14::uuid[], $15::text[], $16::bigint[],
                   $26::integer[], $27::bytea[], $28::timestamptz[],
                   $29::timestamptz[], $30::bigint[])
                   AS new_stream, announced
               ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version,
                   state_format = EXCLUDED.state_format, state = EXCLUDED.state,
                   first_occurred_at = COALESCE(streams.first_occurred_at,
                       EXCLUDED.first_occurred_at),
                   last_occurred_at = EXCLUDED.last_occurred_at,
                   last_position = EXCLUDED.last_position
               WHERE streams.stream_type = EXCLUDED.stream_type
                 AND streams.version = (
                     SELECT planned.from_version
                     FROM UNNEST($14::uuid[], $25::bigint[]) AS planned (stream_id, from_version)
                     WHERE planned.stream_id = EXCLUDED.stream_id
                 )
               RETURNING 1
           ), new_claims AS (
               INSERT INTO idempotency_keys (environment, key, request_hash, result)
               SELECT new_claim.* FROM UNNEST($17::text[], $18::text[], $19::bytea[],
                   $20::jsonb[]) AS new_claim, announced
               RETURNING 1
           )
           SELECT log_advance_head($23, $24, $21, $22,
               (SELECT count(*) FROM new_streams), cardinality($14::uuid[]),
               (SELECT count(*) FROM new_events) + (SELECT count(*) FROM new_claims)
           ) AS "moved!""#,
        &events.positions,
        &events.event_ids,
        &events.stream_ids,
        &events.stream_types,
        &events.stream_versions,
        &events.event_types,
        &events.schema_versions,
        &events.recorded_ats,
        &events.occurred_ats,
        &events.payloads,
        &events.metadatas,
        &events.prev_hashes,
        &events.hashes,
        &streams.ids,
        &streams.types,
        &streams.versions,
        &claims.environments,
        &claims.keys,
        &claims.hashes,
        &claims.results,
        to_stored(plan.head.position)?,
        &plan.head.hash[..],
        to_stored(plan.base.position)?,
        &plan.base.hash[..],
        &streams.from_versions,
        &streams.state_formats as &[Option<i32>],
        &streams.states as &[Option<&[u8]>],
        &streams.first_occurred_ats as &[Option<chrono::DateTime<Utc>>],
        &streams.last_occurred_ats,
        &streams.last_positions,
    )
    .fetch_one(connection)
    .await?;
    Ok(())
}

/// The events of a batch, one array per column, for one `UNNEST` insert.
#[derive(Default)]
struct EventColumns {
    positions: Vec<i64>,
    event_ids: Vec<Uuid>,
    stream_ids: Vec<Uuid>,
    stream_types: Vec<String>,
    stream_versions: Vec<i64>,
    event_types: Vec<String>,
    schema_versions: Vec<i32>,
    recorded_ats: Vec<chrono::DateTime<Utc>>,
    occurred_ats: Vec<chrono::DateTime<Utc>>,
    payloads: Vec<String>,
    metadatas: Vec<String>,
    prev_hashes: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

impl EventColumns {
    fn with_capacity(capacity: usize) -> Self {
        EventColumns {
            positions: Vec::with_capacity(capacity),
            event_ids: Vec::with_capacity(capacity),
            stream_ids: Vec::with_capacity(capacity),
            stream_types: Vec::with_capacity(capacity),
            stream_versions: Vec::with_capacity(capacity),
            event_types: Vec::with_capacity(capacity),
            schema_versions: Vec::with_capacity(capacity),
            recorded_ats: Vec::with_capacity(capacity),
            occurred_ats: Vec::with_capacity(capacity),
            payloads: Vec::with_capacity(capacity),
            metadatas: Vec::with_capacity(capacity),
            prev_hashes: Vec::with_capacity(capacity),
            hashes: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, event: &RecordedEvent, stored: &StoredJson) -> Result<(), StoreError> {
        self.positions.push(to_stored(event.position)?);
        self.event_ids.push(event.event_id);
        self.stream_ids.push(event.stream_id);
        self.stream_types
            .push(event.stream_type.as_str().to_owned());
        self.stream_versions.push(to_stored(event.stream_version)?);
        self.event_types.push(event.event_type.clone());
        self.schema_versions.push(event.schema_version);
        self.recorded_ats.push(event.recorded_at);
        self.occurred_ats.push(event.occurred_at);
        self.payloads.push(stored.payload.to_string());
        self.metadatas.push(stored.metadata.to_string());
        self.prev_hashes.push(event.prev_hash.to_vec());
        self.hashes.push(event.hash.to_vec());
        Ok(())
    }
}

/// Each stream the batch appends to, one array per column: the version it goes to, the one
/// it must be at, and what its row keeps of it (see `kept_state`).
struct StreamColumns<'plan> {
    ids: Vec<Uuid>,
    types: Vec<String>,
    versions: Vec<i64>,
    from_versions: Vec<i64>,
    state_formats: Vec<Option<i32>>,
    states: Vec<Option<&'plan [u8]>>,
    first_occurred_ats: Vec<Option<chrono::DateTime<Utc>>>,
    last_occurred_ats: Vec<chrono::DateTime<Utc>>,
    last_positions: Vec<i64>,
}

impl<'plan> StreamColumns<'plan> {
    fn new(plan: &'plan Plan) -> Result<Self, StoreError> {
        let count = plan.stream_advances.len();
        let mut columns = StreamColumns {
            ids: Vec::with_capacity(count),
            types: Vec::with_capacity(count),
            versions: Vec::with_capacity(count),
            from_versions: Vec::with_capacity(count),
            state_formats: Vec::with_capacity(count),
            states: Vec::with_capacity(count),
            first_occurred_ats: Vec::with_capacity(count),
            last_occurred_ats: Vec::with_capacity(count),
            last_positions: Vec::with_capacity(count),
        };
        for advance in &plan.stream_advances {
            columns.ids.push(advance.stream_id);
            columns.types.push(advance.stream_type.as_str().to_owned());
            columns.versions.push(to_stored(advance.to_version)?);
            columns.from_versions.push(to_stored(advance.from_version)?);
            let kept = advance.end.kept_state.as_ref();
            columns
                .state_formats
                .push(kept.map(|kept| i32::try_from(kept.format()).unwrap_or(i32::MAX)));
            columns.states.push(kept.map(KeptState::bytes));
            columns
                .first_occurred_ats
                .push(advance.end.first_occurred_at);
            columns.last_occurred_ats.push(advance.end.last_occurred_at);
            columns
                .last_positions
                .push(to_stored(advance.end.last_position)?);
        }
        Ok(columns)
    }
}

/// The idempotency claims the batch records, one array per column.
struct ClaimColumns {
    environments: Vec<String>,
    keys: Vec<String>,
    hashes: Vec<Vec<u8>>,
    results: Vec<serde_json::Value>,
}

impl ClaimColumns {
    fn new(plan: &Plan) -> Self {
        let mut columns = ClaimColumns {
            environments: Vec::with_capacity(plan.claims.len()),
            keys: Vec::with_capacity(plan.claims.len()),
            hashes: Vec::with_capacity(plan.claims.len()),
            results: Vec::with_capacity(plan.claims.len()),
        };
        for claim in &plan.claims {
            columns
                .environments
                .push(claim.environment.as_str().to_owned());
            columns.keys.push(claim.key.clone());
            columns.hashes.push(claim.request_hash.clone());
            columns.results.push(serde_json::json!({
                "first_position": claim.first_position,
                "last_position": claim.last_position,
            }));
        }
        columns
    }
}
