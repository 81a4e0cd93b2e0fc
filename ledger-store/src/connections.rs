//! Stream reads, several per query, on a few connections kept beside sqlx's pool.
//!
//! Reading a stream is the one query of every command and every `payment(id)`, and with the
//! folded states kept (`state_cache`) it is usually an index probe that returns no row: the
//! round trip and the statement's fixed cost are all of it. So is reading the row of a stream
//! this process keeps no fold of (`kept_state`), which for a new payment finds nothing, and the
//! claim on a refused command's idempotency key. So the reads queued at one moment go to the
//! server together: a reader task takes the first waiting read and every other one queued
//! behind it (up to [`MAX_READS_PER_QUERY`]); one statement answers all its reads of each kind.
//! Each read is still answered by a query sent after it was asked, so it sees every event
//! committed before it was asked, as a read of its own would.
//!
//! [`STREAM_READ_CONNECTIONS`] reader tasks share the queue, so while one query runs the next
//! reads gather for another. Each task keeps its own connection, detached from the pool:
//! sqlx 0.8 sends a round trip (`Sync`, wait for `ReadyForQuery`) every time a pooled
//! connection goes back to its pool. A connection that fails a query is dropped, never
//! reused; one idle longer than [`IDLE_CHECK_AFTER`] is pinged first, as the pool does,
//! since the server may have closed it meanwhile.

use std::sync::Arc;
use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::{Environment, IdempotencyRecord, RecordedEvent};
use crate::kept_state::StoredStream;
use crate::rows::{to_stored, EventRow};
use crate::store::IDLE_CHECK_AFTER;

/// Reader tasks, each with a connection: queries for stream reads in flight at once.
pub const STREAM_READ_CONNECTIONS: usize = 8;
/// Most stream reads answered by one query.
pub const MAX_READS_PER_QUERY: usize = 128;
/// Reads waiting for a reader task; callers wait when it is full.
const READ_QUEUE_CAPACITY: usize = 4_096;

type Answer = Result<Vec<RecordedEvent>, StoreError>;
type RowAnswer = Result<Option<StoredStream>, StoreError>;
type ClaimAnswer = Result<Option<IdempotencyRecord>, StoreError>;

/// A read waiting for its answer: what is asked, and where the answer goes.
struct Asked<Query, Found> {
    query: Query,
    reply: oneshot::Sender<Result<Found, StoreError>>,
}

/// A stream's events from a version on.
struct EventsFrom {
    stream_id: Uuid,
    from_version: i64,
}

type StreamRead = Asked<EventsFrom, Vec<RecordedEvent>>;

enum Read {
    Events(StreamRead),
    /// A stream's row (see `kept_state`): the read of a stream this process keeps no fold of.
    Row(Asked<Uuid, Option<StoredStream>>),
    /// An idempotency claim: the check of a refused command's key.
    Claim(Asked<(Environment, String), Option<IdempotencyRecord>>),
}

impl Read {
    /// Whether the caller gave up waiting: its read needs no answer.
    fn is_abandoned(&self) -> bool {
        match self {
            Read::Events(read) => read.reply.is_closed(),
            Read::Row(read) => read.reply.is_closed(),
            Read::Claim(read) => read.reply.is_closed(),
        }
    }
}

pub(crate) struct StreamReaders {
    queue: mpsc::Sender<Read>,
}

impl StreamReaders {
    /// Starts the reader tasks; they stop, closing their connections, once this is dropped.
    pub fn new(pool: PgPool) -> Self {
        let (queue, waiting) = mpsc::channel(READ_QUEUE_CAPACITY);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..STREAM_READ_CONNECTIONS {
            tokio::spawn(serve_reads(pool.clone(), Arc::clone(&waiting)));
        }
        StreamReaders { queue }
    }

    /// A stream's events from `from_version` on, in version order.
    pub async fn read_stream(&self, stream_id: Uuid, from_version: u64) -> Answer {
        let (reply, answer) = oneshot::channel();
        let from_version = to_stored(from_version)?;
        self.ask(Read::Events(Asked {
            query: EventsFrom {
                stream_id,
                from_version,
            },
            reply,
        }))
        .await?;
        answered(answer).await
    }

    /// A stream's row, `None` when the stream does not exist.
    pub async fn stored_stream(&self, stream_id: Uuid) -> RowAnswer {
        let (reply, answer) = oneshot::channel();
        self.ask(Read::Row(Asked {
            query: stream_id,
            reply,
        }))
        .await?;
        answered(answer).await
    }

    /// The claim on an idempotency key, `None` when nobody claimed it.
    pub async fn idempotency_record(&self, environment: Environment, key: &str) -> ClaimAnswer {
        let (reply, answer) = oneshot::channel();
        self.ask(Read::Claim(Asked {
            query: (environment, key.to_owned()),
            reply,
        }))
        .await?;
        answered(answer).await
    }

    async fn ask(&self, read: Read) -> Result<(), StoreError> {
        self.queue
            .send(read)
            .await
            .map_err(|_| StoreError::ReadFailed("the stream readers have stopped".to_owned()))
    }
}

async fn answered<T>(answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    answer.await.map_err(|_| {
        StoreError::ReadFailed("the stream reader stopped before answering".to_owned())
    })?
}

/// One reader task: takes the reads queued, answers those of each kind (events, rows, claims)
/// with one query, and again.
async fn serve_reads(pool: PgPool, waiting: Arc<Mutex<mpsc::Receiver<Read>>>) {
    let mut connection: Option<(PgConnection, Instant)> = None;
    let mut reads = Vec::with_capacity(MAX_READS_PER_QUERY);
    let mut event_reads = Vec::new();
    let mut row_reads = Vec::new();
    let mut claim_reads = Vec::new();
    loop {
        {
            let mut waiting = waiting.lock().await;
            if waiting.recv_many(&mut reads, MAX_READS_PER_QUERY).await == 0 {
                return;
            }
        }
        for read in reads.drain(..) {
            match read {
                _ if read.is_abandoned() => {}
                Read::Events(read) => event_reads.push(read),
                Read::Row(read) => row_reads.push(read),
                Read::Claim(read) => claim_reads.push(read),
            }
        }
        if event_reads.is_empty() && row_reads.is_empty() && claim_reads.is_empty() {
            continue;
        }
        let mut ready = match ready(&pool, connection.take()).await {
            Ok(ready) => ready,
            Err(error) => {
                let message = error.to_string();
                reply(
                    &mut event_reads,
                    Err(StoreError::ReadFailed(message.clone())),
                );
                reply(&mut row_reads, Err(StoreError::ReadFailed(message.clone())));
                reply(&mut claim_reads, Err(StoreError::ReadFailed(message)));
                continue;
            }
        };
        let mut healthy = true;
        if !event_reads.is_empty() {
            let answered = read_streams(&mut ready, &event_reads).await;
            healthy &= answered.is_ok();
            reply(&mut event_reads, answered);
        }
        if !row_reads.is_empty() {
            let stream_ids: Vec<Uuid> = row_reads.iter().map(|read| read.query).collect();
            let answered = crate::kept_state::read_many(&mut ready, &stream_ids).await;
            healthy &= answered.is_ok();
            reply(&mut row_reads, answered);
        }
        if !claim_reads.is_empty() {
            let keys: Vec<(Environment, String)> =
                claim_reads.iter().map(|read| read.query.clone()).collect();
            let answered = crate::read::idempotency_records(&mut ready, &keys).await;
            healthy &= answered.is_ok();
            reply(&mut claim_reads, answered);
        }
        // A connection that failed a query is dropped, never reused.
        if healthy {
            connection = Some((ready, Instant::now()));
        }
    }
}

/// Sends each read its answer from one query's answers, or the query's failure to all.
fn reply<Query, Found>(
    reads: &mut Vec<Asked<Query, Found>>,
    answered: Result<Vec<Result<Found, StoreError>>, StoreError>,
) {
    match answered {
        Ok(answers) => {
            for (read, answer) in reads.drain(..).zip(answers) {
                let _ = read.reply.send(answer);
            }
        }
        Err(error) => {
            let message = error.to_string();
            for read in reads.drain(..) {
                let _ = read
                    .reply
                    .send(Err(StoreError::ReadFailed(message.clone())));
            }
        }
    }
}

/// The kept connection when it is fresh or answers a ping, else a new one from the pool.
pub(crate) async fn ready(
    pool: &PgPool,
    kept: Option<(PgConnection, Instant)>,
) -> Result<PgConnection, StoreError> {
    if let Some((mut connection, last_used)) = kept {
        if last_used.elapsed() <= IDLE_CHECK_AFTER || connection.ping().await.is_ok() {
            return Ok(connection);
        }
    }
    let mut connection = pool.acquire().await?.detach();
    // With custom plans, PostgreSQL plans the statement again on every execution, sized by
    // the reads in hand. It keeps doing so when its first executions happened to carry a
    // single read each (their plans look cheaper than the generic one), and planning then
    // costs more than the probes. The generic plan is the same index probe per read whatever
    // their number; the setting stays on this connection, which never goes back to the pool.
    //
    // The writer keeps its connections here too. Its statements wait for the head's lock only
    // as long as the batch before takes to commit; a wait much longer than that is a batch
    // of another process holding the lock while it waits for rows this one inserted (see
    // `fresh_batch`), and ends with `lock_not_available` instead of PostgreSQL's deadlock
    // check a second later. Reads take no lock.
    sqlx::query!(
        "SELECT set_config('plan_cache_mode', 'force_generic_plan', false) AS plan_cache_mode, \
                set_config('lock_timeout', $1, false) AS lock_timeout",
        format!("{}ms", LOCK_TIMEOUT.as_millis())
    )
    .fetch_one(&mut connection)
    .await?;
    Ok(connection)
}

/// Longest wait for a lock on the connections kept here.
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

/// The answer a grouped statement's row belongs to: `read` is the row's `WITH ORDINALITY`
/// number, counted from 1, of the request it answers. A number no request has fails the whole
/// statement (`what` names the requests in the error).
pub(crate) fn answer_to<'a, T>(
    answers: &'a mut [T],
    read: i64,
    what: &str,
) -> Result<&'a mut T, StoreError> {
    let count = answers.len();
    usize::try_from(read - 1)
        .ok()
        .and_then(|index| answers.get_mut(index))
        .ok_or_else(|| {
            StoreError::ReadFailed(format!("the server answered {what} {read} of {count}"))
        })
}

/// Each read's events, in the order of `reads`, from one query.
async fn read_streams(
    connection: &mut PgConnection,
    reads: &[StreamRead],
) -> Result<Vec<Answer>, StoreError> {
    let stream_ids: Vec<Uuid> = reads.iter().map(|read| read.query.stream_id).collect();
    let from_versions: Vec<i64> = reads.iter().map(|read| read.query.from_version).collect();
    // One index probe on (stream_id, stream_version) per read, whatever the table's size
    // when the plan was made: `OFFSET 0` keeps the planner from flattening the lateral
    // subquery into a join, which on a new, still small log it would hash with a scan of
    // every event, and keep doing so from the cached plan as the log grows.
    let rows = sqlx::query!(
        r#"SELECT k.read AS "read!", e.position AS "position!", e.event_id AS "event_id!",
               e.stream_id AS "stream_id!", e.stream_type AS "stream_type!",
               e.stream_version AS "stream_version!", e.event_type AS "event_type!",
               e.schema_version AS "schema_version!", e.recorded_at AS "recorded_at!",
               e.occurred_at AS "occurred_at!", e.payload AS "payload!",
               e.metadata AS "metadata!", e.prev_hash AS "prev_hash!", e.hash AS "hash!"
           FROM UNNEST($1::uuid[], $2::bigint[]) WITH ORDINALITY AS k(stream_id, from_version, read)
           CROSS JOIN LATERAL (
               SELECT * FROM events
               WHERE events.stream_id = k.stream_id AND events.stream_version >= k.from_version
               OFFSET 0
           ) e
           ORDER BY k.read, e.stream_version"#,
        &stream_ids,
        &from_versions,
    )
    .fetch_all(connection)
    .await?;
    let mut answers: Vec<Answer> = reads.iter().map(|_| Ok(Vec::new())).collect();
    for row in rows {
        let answer = answer_to(&mut answers, row.read, "read")?;
        let Ok(events) = answer else {
            continue;
        };
        let event = RecordedEvent::try_from(EventRow {
            position: row.position,
            event_id: row.event_id,
            stream_id: row.stream_id,
            stream_type: row.stream_type,
            stream_version: row.stream_version,
            event_type: row.event_type,
            schema_version: row.schema_version,
            recorded_at: row.recorded_at,
            occurred_at: row.occurred_at,
            payload: row.payload,
            metadata: row.metadata,
            prev_hash: row.prev_hash,
            hash: row.hash,
        });
        // A corrupt event fails the read of its own stream, not the others.
        match event {
            Ok(event) => events.push(event),
            Err(error) => *answer = Err(error),
        }
    }
    Ok(answers)
}
