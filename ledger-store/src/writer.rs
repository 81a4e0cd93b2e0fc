//! The single writer task: group commit.
//!
//! Every append goes through one bounded queue to one task. The task takes what is queued (up
//! to [`MAX_BATCH_REQUESTS`] requests and about [`MAX_BATCH_EVENTS`] events; when fewer are
//! waiting than last time it lingers up to [`MAX_BATCH_LINGER`] for them, since the callers
//! just answered are composing their next request), and writes the batch in one transaction,
//! in four round trips whatever its size:
//!
//! 1. `BEGIN` and lock the single `log_head` row (`SELECT … FOR UPDATE`), the serialization
//!    point of every writer in every process, sent together; this overlaps with gathering
//!    the batch;
//! 2. read the head, the versions of the batch's streams and the idempotency claims it names,
//!    in one statement after the lock, so that it sees what the previous holder of the lock
//!    committed;
//! 3. decide each request in queue order without I/O (`plan`), hashing from the canonical
//!    JSON the callers' tasks prepared;
//! 4. write the accepted events, stream versions and claims and move the head in one
//!    statement (`UNNEST` arrays in data-modifying CTEs; the head's trigger notifies);
//! 5. `COMMIT` once (one fsync for the whole batch), then answer every request: recorded,
//!    replayed, or its own typed rejection.
//!
//! Ordering: the head row stays locked until the commit, and PostgreSQL makes a transaction
//! visible before it releases its locks, so the batch that writes positions N+1… can only lock
//! the head after the batch that wrote N is committed and visible. A reader therefore never
//! sees position N+1 while N is still invisible, and reading by position skips nothing.
//! Sequences would not give this (they hand out numbers in call order, commits land in
//! another).
//!
//! A conflict or reused key rejects only its own request. Should the transaction fail on a
//! constraint the plan did not foresee (an event id already in the log), each request is
//! written again alone, so one bad request cannot sink the others.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use chrono::Utc;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
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
/// Longest wait for more requests before writing a batch smaller than the previous one.
pub const MAX_BATCH_LINGER: Duration = Duration::from_millis(2);

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

pub(crate) struct Job {
    pub request: PreparedRequest,
    pub reply: Reply,
}

/// Starts the writer; it stops when every sender is dropped.
pub(crate) fn spawn(pool: PgPool) -> (mpsc::Sender<Job>, Arc<WriterCounters>) {
    let (sender, receiver) = mpsc::channel(WRITER_QUEUE_CAPACITY);
    let counters = Arc::new(WriterCounters::default());
    tokio::spawn(run(pool, receiver, Arc::clone(&counters)));
    (sender, counters)
}

/// Counts kept by the writer, for metrics and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    batches: AtomicU64,
    requests: AtomicU64,
}

/// What the writer has done since the store started: how well group commit is batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStatistics {
    /// Transactions written (each one commit).
    pub batches: u64,
    /// Append requests answered in them.
    pub requests: u64,
}

impl WriterCounters {
    pub fn snapshot(&self) -> WriterStatistics {
        WriterStatistics {
            batches: self.batches.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Job>, counters: Arc<WriterCounters>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH_REQUESTS);
    let mut previous_batch_size = 1;
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        // Taking the head lock costs a round trip: it overlaps with the wait for the rest
        // of the batch instead of following it.
        let (locked, ()) = tokio::join!(
            begin_and_lock_head(&pool),
            gather(&mut receiver, &mut batch, previous_batch_size)
        );
        previous_batch_size = batch.len();
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters
            .requests
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        write_and_answer(&pool, locked, &mut batch).await;
    }
}

/// Adds what is queued to the batch, up to the limits. When fewer are waiting than came last
/// time, the callers just answered are likely composing their next request: wait up to
/// [`MAX_BATCH_LINGER`] for as many, so one commit serves them all.
async fn gather(receiver: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, expected: usize) {
    let linger_until = Instant::now() + MAX_BATCH_LINGER;
    let mut event_count: usize = batch.iter().map(|job| job.request.event_count()).sum();
    while batch.len() < MAX_BATCH_REQUESTS && event_count < MAX_BATCH_EVENTS {
        let job = match receiver.try_recv() {
            Ok(job) => job,
            Err(_) if batch.len() < expected => {
                let remaining = linger_until.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, receiver.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) | Err(_) => break,
                }
            }
            Err(_) => break,
        };
        event_count += job.request.event_count();
        batch.push(job);
    }
}

type Locked = Transaction<'static, Postgres>;
type ClaimKey = (Environment, String);

async fn write_and_answer(pool: &PgPool, locked: Result<Locked, StoreError>, batch: &mut Vec<Job>) {
    let requests: Vec<&PreparedRequest> = batch.iter().map(|job| &job.request).collect();
    let written = match locked {
        Ok(transaction) => write_locked(pool, transaction, &requests).await,
        Err(error) => Err(error),
    };
    match written {
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

/// Writes one batch in one transaction (four round trips whatever its size); one answer per
/// request, in order.
async fn write_batch(
    pool: &PgPool,
    requests: &[&PreparedRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let transaction = begin_and_lock_head(pool).await?;
    write_locked(pool, transaction, requests).await
}

/// Begins the batch's transaction and locks the single `log_head` row, the serialization
/// point of every writer in every process; the lock is held until the commit.
///
/// One round trip: the three statements go as one simple query. They are fixed text with
/// nothing bound, as `BEGIN` itself is. The head's values are read by the next statement
/// (see [`stored_state`]). Generic plans: every statement of the batch is shaped so that
/// its plan does not depend on the values (probes by key, inserts), and planning each one
/// anew cost a quarter of a millisecond apiece while every other writer waits for the lock.
async fn begin_and_lock_head(pool: &PgPool) -> Result<Locked, StoreError> {
    Ok(pool
        .begin_with(
            "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
             SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE",
        )
        .await?)
}

/// The rest of the batch, once the head is locked: read, plan, write, commit, answer.
async fn write_locked(
    pool: &PgPool,
    mut transaction: Transaction<'static, Postgres>,
    requests: &[&PreparedRequest],
) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
    let (head, streams, claims) = stored_state(&mut transaction, requests).await?;
    let recorded_at = truncate_to_microseconds(Utc::now());
    let plan = plan_batch(head, streams, &claims, requests, recorded_at)?;
    if !plan.events.is_empty() {
        write_plan(&mut transaction, &plan).await?;
    }
    transaction.commit().await?;
    answers(pool, plan).await
}

/// What the batch finds stored: the log head, its streams' versions and its idempotency
/// claims, read in one round trip after the head is locked.
///
/// This must be a statement of its own, after the one that took the lock. In READ COMMITTED a
/// statement's snapshot is taken when it starts: a `SELECT … FOR UPDATE` that waits for
/// another writer's lock re-reads only the locked row when it gets it, and would see the
/// streams as they were before that writer committed. A statement started after the lock is
/// granted sees every batch committed before.
async fn stored_state(
    connection: &mut PgConnection,
    requests: &[&PreparedRequest],
) -> Result<
    (
        Head,
        HashMap<Uuid, StreamState>,
        HashMap<ClaimKey, StoredClaim>,
    ),
    StoreError,
> {
    let ids: Vec<Uuid> = requests
        .iter()
        .flat_map(|request| request.streams.iter().map(|stream| stream.stream_id))
        .collect::<HashSet<Uuid>>()
        .into_iter()
        .collect();
    let (environments, keys): (Vec<String>, Vec<String>) = requests
        .iter()
        .filter_map(|request| request.idempotency.as_ref())
        .map(|claim| (claim.environment.as_str().to_owned(), claim.key.clone()))
        .unzip();
    let rows = sqlx::query!(
        // One primary-key probe per wanted stream and key, whatever plan PostgreSQL caches
        // for the prepared statement. A plain join is flattened, and its generic plan, made
        // while the tables were small, hashes a sequential scan of the whole table: a batch
        // then costs time in proportion to the log. `LIMIT 1` keeps each lateral subquery a
        // parameterized index probe.
        r#"SELECT 'head'::text AS "kind!", NULL::uuid AS "stream_id?",
               NULL::text AS "stream_type?", last_position AS "version?",
               NULL::text AS "environment?", NULL::text AS "key?",
               last_hash AS "request_hash?", NULL::jsonb AS "result?"
           FROM log_head WHERE id = 1
           UNION ALL
           SELECT 'stream'::text, stream.stream_id,
               stream.stream_type, stream.version,
               NULL::text, NULL::text, NULL::bytea, NULL::jsonb
           FROM UNNEST($1::uuid[]) AS wanted (stream_id)
           CROSS JOIN LATERAL (
               SELECT stream_id, stream_type, version FROM streams
               WHERE streams.stream_id = wanted.stream_id
               LIMIT 1
           ) AS stream
           UNION ALL
           SELECT 'claim'::text, NULL::uuid, NULL::text, NULL::bigint,
               claim.environment, claim.key, claim.request_hash, claim.result
           FROM UNNEST($2::text[], $3::text[]) AS wanted (environment, key)
           CROSS JOIN LATERAL (
               SELECT environment, key, request_hash, result FROM idempotency_keys
               WHERE idempotency_keys.environment = wanted.environment
                 AND idempotency_keys.key = wanted.key
               LIMIT 1
           ) AS claim"#,
        &ids,
        &environments,
        &keys,
    )
    .fetch_all(connection)
    .await?;
    let mut head = None;
    let mut streams = HashMap::with_capacity(ids.len());
    let mut claims = HashMap::with_capacity(keys.len());
    for row in rows {
        if row.kind == "head" {
            head = Some(stored_head(row.version, row.request_hash)?);
            continue;
        }
        match (row.stream_id, row.stream_type, row.version) {
            (Some(stream_id), Some(stream_type), Some(version)) => {
                let state = StreamState {
                    stream_type: stream_type.parse()?,
                    version: from_stored(version)?,
                };
                streams.insert(stream_id, state);
            }
            _ => {
                let (Some(environment), Some(key), Some(request_hash), Some(result)) =
                    (row.environment, row.key, row.request_hash, row.result)
                else {
                    return Err(StoreError::CorruptEvent {
                        position: 0,
                        reason: format!("unexpected {} row among stored state", row.kind),
                    });
                };
                let claim = stored_claim(&key, request_hash, &result)?;
                claims.insert((environment.parse()?, key), claim);
            }
        }
    }
    let head = head.ok_or_else(|| StoreError::CorruptEvent {
        position: 0,
        reason: "the log_head row is missing".into(),
    })?;
    Ok((head, streams, claims))
}

fn stored_head(position: Option<i64>, hash: Option<Vec<u8>>) -> Result<Head, StoreError> {
    let position = position.unwrap_or(-1);
    Ok(Head {
        position: from_stored(position)?,
        hash: hash
            .unwrap_or_default()
            .try_into()
            .map_err(|_| StoreError::CorruptEvent {
                position,
                reason: "log head hash is not 32 bytes".into(),
            })?,
    })
}

/// A stored claim; its result names the positions its request recorded.
fn stored_claim(
    key: &str,
    request_hash: Vec<u8>,
    result: &serde_json::Value,
) -> Result<StoredClaim, StoreError> {
    let position = |name: &str| {
        result
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| StoreError::CorruptEvent {
                position: 0,
                reason: format!("idempotency result for key {key:?} lacks {name}"),
            })
    };
    Ok(StoredClaim {
        request_hash,
        first_position: position("first_position")?,
        last_position: position("last_position")?,
    })
}

/// Writes the accepted events, the streams' new versions, the idempotency claims and the new
/// head in one statement (one round trip); the head's trigger notifies subscribers.
async fn write_plan(connection: &mut PgConnection, plan: &Plan) -> Result<(), StoreError> {
    let mut events = EventColumns::with_capacity(plan.events.len());
    for event in &plan.events {
        events.push(event)?;
    }
    let streams = StreamColumns::new(plan)?;
    let claims = ClaimColumns::new(plan);
    sqlx::query!(
        r#"WITH new_events AS (
               INSERT INTO events (position, event_id, stream_id, stream_type, stream_version,
                   event_type, schema_version, recorded_at, occurred_at, payload, metadata,
                   prev_hash, hash)
               SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[],
                   $5::bigint[], $6::text[], $7::integer[], $8::timestamptz[],
                   $9::timestamptz[], $10::jsonb[], $11::jsonb[], $12::bytea[], $13::bytea[])
           ), new_streams AS (
               INSERT INTO streams (stream_id, stream_type, version)
               SELECT * FROM UNNEST($14::uuid[], $15::text[], $16::bigint[])
               ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version
           ), new_claims AS (
               INSERT INTO idempotency_keys (environment, key, request_hash, result)
               SELECT * FROM UNNEST($17::text[], $18::text[], $19::bytea[], $20::jsonb[])
           )
           UPDATE log_head SET last_position = $21, last_hash = $22 WHERE id = 1"#,
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

/// The final version of each stream the batch appends to, one array per column.
struct StreamColumns {
    ids: Vec<Uuid>,
    types: Vec<String>,
    versions: Vec<i64>,
}

impl StreamColumns {
    fn new(plan: &Plan) -> Result<Self, StoreError> {
        let mut columns = StreamColumns {
            ids: Vec::with_capacity(plan.stream_versions.len()),
            types: Vec::with_capacity(plan.stream_versions.len()),
            versions: Vec::with_capacity(plan.stream_versions.len()),
        };
        for (stream_id, stream_type, version) in &plan.stream_versions {
            columns.ids.push(*stream_id);
            columns.types.push(stream_type.as_str().to_owned());
            columns.versions.push(to_stored(*version)?);
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
