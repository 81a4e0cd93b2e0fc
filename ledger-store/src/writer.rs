//! The single writer task: group commit.
//!
//! Every append goes through one bounded queue to one task. The task takes what is queued (up
//! to [`MAX_BATCH_REQUESTS`] requests and about [`MAX_BATCH_EVENTS`] events), and writes the
//! batch in one transaction:
//!
//! 1. lock the single `log_head` row (`SELECT … FOR UPDATE`): the serialization point of every
//!    writer in every process, so positions are assigned in commit order;
//! 2. read the stored idempotency claims and stream versions the batch names;
//! 3. decide each request in queue order without I/O ([`crate::plan`]);
//! 4. write the accepted events, stream versions and claims with one `UNNEST` insert each, move
//!    the head (its trigger sends the notification), commit once;
//! 5. answer every request: recorded, replayed, or its own typed rejection.
//!
//! A conflict or reused key rejects only its own request. Should the transaction fail on a
//! constraint the plan did not foresee (an event id already in the log), each request is
//! written again alone, so one bad request cannot sink the others.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{AppendOutcome, AppendResult, Environment, RecordedEvent};
use crate::hash_chain::truncate_to_microseconds;
use crate::plan::{plan_batch, Decision, Head, Plan, StoredClaim, StreamState};
use crate::rows::{from_stored, to_stored};
use crate::validate::PreparedRequest;

/// Requests waiting for the writer; senders wait when it is full (back-pressure).
pub const WRITER_QUEUE_CAPACITY: usize = 4_096;
/// Most requests written in one transaction.
pub const MAX_BATCH_REQUESTS: usize = 512;
/// A batch stops taking requests once it holds this many events.
pub const MAX_BATCH_EVENTS: usize = 4_096;

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

pub(crate) struct Job {
    pub request: PreparedRequest,
    pub reply: Reply,
}

/// Starts the writer; it stops when every sender is dropped.
pub(crate) fn spawn(pool: PgPool) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel(WRITER_QUEUE_CAPACITY);
    tokio::spawn(run(pool, receiver));
    sender
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH_REQUESTS);
    while let Some(first) = receiver.recv().await {
        let mut event_count = first.request.event_count();
        batch.push(first);
        while batch.len() < MAX_BATCH_REQUESTS && event_count < MAX_BATCH_EVENTS {
            match receiver.try_recv() {
                Ok(job) => {
                    event_count += job.request.event_count();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        write_and_answer(&pool, &mut batch).await;
    }
}

async fn write_and_answer(pool: &PgPool, batch: &mut Vec<Job>) {
    let requests: Vec<&PreparedRequest> = batch.iter().map(|job| &job.request).collect();
    match write_batch(pool, &requests).await {
        Ok(answers) => {
            for (job, answer) in batch.drain(..).zip(answers) {
                // A caller that gave up waiting is no reason to stop.
                let _ = job.reply.send(answer);
            }
        }
        Err(StoreError::Database(sqlx::Error::Database(error))) if batch.len() > 1 => {
            tracing::warn!(%error, requests = batch.len(), "batch failed; writing each alone");
            for job in batch.drain(..) {
                let answer = match write_batch(pool, &[&job.request]).await {
                    Ok(mut answers) => answers.pop().unwrap_or(Err(StoreError::WriterStopped)),
                    Err(error) => Err(classify(error)),
                };
                let _ = job.reply.send(answer);
            }
        }
        Err(error) => {
            let message = error.to_string();
            let mut jobs = batch.drain(..);
            if let Some(job) = jobs.next() {
                let _ = job.reply.send(Err(classify(error)));
            }
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(StoreError::BatchFailed(message.clone())));
            }
        }
    }
}

/// Turns the constraint errors a plan cannot foresee into typed ones.
fn classify(error: StoreError) -> StoreError {
    if let StoreError::Database(sqlx::Error::Database(database_error)) = &error {
        if database_error.constraint() == Some("events_event_id_unique") {
            return StoreError::EventIdAlreadyRecorded;
        }
    }
    error
}

/// Writes one batch in one transaction; one answer per request, in order.
async fn write_batch(
    pool: &PgPool,
    requests: &[&PreparedRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let mut transaction = pool.begin().await?;
    let head = lock_head(&mut transaction).await?;
    let claims = stored_claims(&mut transaction, requests).await?;
    let streams = stream_states(&mut transaction, requests).await?;
    let recorded_at = truncate_to_microseconds(Utc::now());
    let plan = plan_batch(head, streams, &claims, requests, recorded_at)?;
    if !plan.events.is_empty() {
        insert_events(&mut transaction, &plan.events).await?;
        upsert_streams(&mut transaction, &plan).await?;
        insert_claims(&mut transaction, &plan).await?;
        move_head(&mut transaction, plan.head).await?;
    }
    transaction.commit().await?;
    answers(pool, plan).await
}

async fn lock_head(connection: &mut PgConnection) -> Result<Head, StoreError> {
    let row = sqlx::query!("SELECT last_position, last_hash FROM log_head WHERE id = 1 FOR UPDATE")
        .fetch_one(connection)
        .await?;
    Ok(Head {
        position: from_stored(row.last_position)?,
        hash: row
            .last_hash
            .try_into()
            .map_err(|_| StoreError::CorruptEvent {
                position: row.last_position,
                reason: "log head hash is not 32 bytes".into(),
            })?,
    })
}

async fn stored_claims(
    connection: &mut PgConnection,
    requests: &[&PreparedRequest],
) -> Result<HashMap<(Environment, String), StoredClaim>, StoreError> {
    let (environments, keys): (Vec<String>, Vec<String>) = requests
        .iter()
        .filter_map(|request| request.idempotency.as_ref())
        .map(|claim| (claim.environment.as_str().to_owned(), claim.key.clone()))
        .unzip();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query!(
        r#"SELECT environment, key, request_hash, result
           FROM idempotency_keys
           WHERE (environment, key) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))"#,
        &environments,
        &keys,
    )
    .fetch_all(connection)
    .await?;
    let mut claims = HashMap::with_capacity(rows.len());
    for row in rows {
        let position = |name: &str| {
            row.result
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| StoreError::CorruptEvent {
                    position: 0,
                    reason: format!("idempotency result for key {:?} lacks {name}", row.key),
                })
        };
        let claim = StoredClaim {
            request_hash: row.request_hash.clone(),
            first_position: position("first_position")?,
            last_position: position("last_position")?,
        };
        claims.insert((row.environment.parse()?, row.key), claim);
    }
    Ok(claims)
}

async fn stream_states(
    connection: &mut PgConnection,
    requests: &[&PreparedRequest],
) -> Result<HashMap<Uuid, StreamState>, StoreError> {
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|request| request.streams.iter().map(|stream| stream.stream_id))
        .collect();
    let rows = sqlx::query!(
        "SELECT stream_id, stream_type, version FROM streams WHERE stream_id = ANY($1::uuid[])",
        &ids,
    )
    .fetch_all(connection)
    .await?;
    let mut states = HashMap::with_capacity(rows.len());
    for row in rows {
        let state = StreamState {
            stream_type: row.stream_type.parse()?,
            version: from_stored(row.version)?,
        };
        states.insert(row.stream_id, state);
    }
    Ok(states)
}

async fn insert_events(
    connection: &mut PgConnection,
    events: &[RecordedEvent],
) -> Result<(), StoreError> {
    let mut columns = EventColumns::with_capacity(events.len());
    for event in events {
        columns.push(event)?;
    }
    sqlx::query!(
        r#"INSERT INTO events (position, event_id, stream_id, stream_type, stream_version,
               event_type, schema_version, recorded_at, occurred_at, payload, metadata,
               prev_hash, hash)
           SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[],
               $6::text[], $7::integer[], $8::timestamptz[], $9::timestamptz[], $10::jsonb[],
               $11::jsonb[], $12::bytea[], $13::bytea[])"#,
        &columns.positions,
        &columns.event_ids,
        &columns.stream_ids,
        &columns.stream_types,
        &columns.stream_versions,
        &columns.event_types,
        &columns.schema_versions,
        &columns.recorded_ats,
        &columns.occurred_ats,
        &columns.payloads,
        &columns.metadatas,
        &columns.prev_hashes,
        &columns.hashes,
    )
    .execute(connection)
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
    payloads: Vec<serde_json::Value>,
    metadatas: Vec<serde_json::Value>,
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

    fn push(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
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
        self.payloads.push(event.payload.clone());
        self.metadatas.push(event.metadata.clone());
        self.prev_hashes.push(event.prev_hash.to_vec());
        self.hashes.push(event.hash.to_vec());
        Ok(())
    }
}

async fn upsert_streams(connection: &mut PgConnection, plan: &Plan) -> Result<(), StoreError> {
    let mut ids = Vec::with_capacity(plan.stream_versions.len());
    let mut types = Vec::with_capacity(plan.stream_versions.len());
    let mut versions = Vec::with_capacity(plan.stream_versions.len());
    for (stream_id, stream_type, version) in &plan.stream_versions {
        ids.push(*stream_id);
        types.push(stream_type.as_str().to_owned());
        versions.push(to_stored(*version)?);
    }
    sqlx::query!(
        r#"INSERT INTO streams (stream_id, stream_type, version)
           SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[])
           ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version"#,
        &ids,
        &types,
        &versions,
    )
    .execute(connection)
    .await?;
    Ok(())
}

async fn insert_claims(connection: &mut PgConnection, plan: &Plan) -> Result<(), StoreError> {
    if plan.claims.is_empty() {
        return Ok(());
    }
    let mut environments = Vec::with_capacity(plan.claims.len());
    let mut keys = Vec::with_capacity(plan.claims.len());
    let mut hashes = Vec::with_capacity(plan.claims.len());
    let mut results = Vec::with_capacity(plan.claims.len());
    for claim in &plan.claims {
        environments.push(claim.environment.as_str().to_owned());
        keys.push(claim.key.clone());
        hashes.push(claim.request_hash.clone());
        results.push(serde_json::json!({
            "first_position": claim.first_position,
            "last_position": claim.last_position,
        }));
    }
    sqlx::query!(
        r#"INSERT INTO idempotency_keys (environment, key, request_hash, result)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::jsonb[])"#,
        &environments,
        &keys,
        &hashes,
        &results,
    )
    .execute(connection)
    .await?;
    Ok(())
}

async fn move_head(connection: &mut PgConnection, head: Head) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE log_head SET last_position = $1, last_hash = $2 WHERE id = 1",
        to_stored(head.position)?,
        &head.hash[..],
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// One answer per request, reading back the events of replays of earlier batches.
async fn answers(
    pool: &PgPool,
    plan: Plan,
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    // Only results that a later request of the batch replays are kept aside (cloned).
    let replayed: HashSet<usize> = plan
        .decisions
        .iter()
        .filter_map(|decision| match decision {
            Decision::ReplayInBatch { request_index } => Some(*request_index),
            _ => None,
        })
        .collect();
    let mut kept: HashMap<usize, AppendResult> = HashMap::with_capacity(replayed.len());
    // Recorded ranges are disjoint and in order, so the events are moved out in one pass.
    let mut events = plan.events.into_iter();
    let mut answers = Vec::with_capacity(plan.decisions.len());
    for (request_index, decision) in plan.decisions.into_iter().enumerate() {
        let answer = match decision {
            Decision::Recorded { events: range } => {
                let recorded: Vec<RecordedEvent> = events.by_ref().take(range.len()).collect();
                let last_position = recorded.last().map_or(0, |event| event.position);
                let result = AppendResult {
                    events: recorded,
                    last_position,
                };
                if replayed.contains(&request_index) {
                    kept.insert(request_index, result.clone());
                }
                Ok(AppendOutcome::Recorded(result))
            }
            Decision::ReplayStored {
                first_position,
                last_position,
            } => crate::read::events_between(pool, first_position, last_position)
                .await
                .map(|events| {
                    AppendOutcome::Replayed(AppendResult {
                        events,
                        last_position,
                    })
                }),
            Decision::ReplayInBatch { request_index } => kept
                .get(&request_index)
                .cloned()
                .map(AppendOutcome::Replayed)
                .ok_or(StoreError::WriterStopped),
            Decision::Rejected(error) => Err(error),
        };
        answers.push(answer);
    }
    Ok(answers)
}
