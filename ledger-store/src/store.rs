//! [`EventStore`]: the handle the rest of the ledger uses.

use std::sync::Arc;

use futures::Stream;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::connections::StreamReaders;
use crate::error::StoreError;
use crate::event::{AppendOutcome, AppendRequest, Environment, IdempotencyRecord, RecordedEvent};
use crate::kept_state::StoredStream;
use crate::read::LogHead;
use crate::subscribe::SubscribeOptions;
use crate::verify::{ChainCheck, ChainVerification};
use crate::writer::{Job, WriterCounters, WriterStatistics};

/// The schema, embedded: apply with [`migrate`] before using a database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connections a store opens by default: the writer holds one, readers share the rest.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// A connection idle longer than this is checked with a round trip before it is handed out.
pub const IDLE_CHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The longest any one statement of the ledger may run. A query that runs away (a plan gone
/// wrong, a lock held by a stuck session) fails with an error instead of holding a
/// connection, and a client request with it, forever. Migrations, which may rewrite large
/// tables, run without it (see [`migrate`]).
pub const STATEMENT_TIMEOUT: &str = "30s";

/// Pool settings every part of the ledger uses. sqlx checks each connection with a round trip
/// before handing it out; that doubled the round trips of every query under load (9% of the
/// server's CPU in the `payment(id)` benchmark). Only connections that sat idle a while,
/// the ones a restarted or restarting server may have closed, are checked now; a busy
/// connection that breaks fails its one statement and is discarded.
///
/// Every connection turns PostgreSQL's JIT compilation off. The ledger's statements are
/// short; JIT starts only where the planner's estimate is high, and on tables not analyzed
/// yet (a new database, a table that grew fast) the estimates are wild: the projection lag
/// query, read by `/readyz` and `/metrics`, compiled for about 200 ms on every call.
/// Every connection has [`STATEMENT_TIMEOUT`] too.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    pool_options_as(max_connections, None)
}

/// [`pool_options`] whose connections also switch to `role` (`SET ROLE`) before first use.
pub(crate) fn pool_options_as(max_connections: u32, role: Option<&'static str>) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |connection, _| {
            Box::pin(async move {
                // `role` 'none' is the login role itself, as `RESET ROLE` leaves it.
                sqlx::query!(
                    r#"SELECT set_config('jit', 'off', false) AS "jit",
                              set_config('statement_timeout', $1, false) AS "statement_timeout",
                              set_config('role', $2, false) AS "role""#,
                    STATEMENT_TIMEOUT,
                    role.unwrap_or("none")
                )
                .fetch_one(connection)
                .await?;
                Ok(())
            })
        })
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for > IDLE_CHECK_AFTER {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// Begins a transaction on a task of its own, so that it completes even if the caller is
/// cancelled meanwhile (a client that hangs up, a shutdown, an aborted task). sqlx 0.8 returns
/// a connection to the pool still inside the transaction when `begin` is cancelled while
/// waiting for the server (its rollback guard looks at a depth raised only after the wait):
/// the next user of that connection would then work in a transaction nobody commits, and its
/// writes would vanish. A completed transaction that nobody awaits anymore is dropped, and so
/// rolled back, like any other. Every transaction outside the store's writer begins here.
pub async fn begin_transaction(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let pool = pool.clone();
    match tokio::spawn(async move { pool.begin().await }).await {
        Ok(begun) => begun,
        Err(error) => Err(sqlx::Error::Io(std::io::Error::other(error))),
    }
}

/// [`begin_transaction`] for one of the ledger's own statements over whole tables (a build's
/// indexes, the verifier's comparison of read models): without [`STATEMENT_TIMEOUT`], which
/// such a statement outgrows as the log grows (a rebuild of ten million events failed on it).
/// The setting is the transaction's own; the connection goes back to the pool with its
/// timeout.
pub async fn begin_unbounded_transaction(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut transaction = begin_transaction(pool).await?;
    sqlx::query!("SELECT set_config('statement_timeout', '0', true)")
        .fetch_one(&mut *transaction)
        .await?;
    Ok(transaction)
}

/// Applies every pending migration, on a connection of its own without the statement timeout
/// (an index built on a large log may take longer), which is closed afterwards rather than
/// returned to the pool without its timeout.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await?.detach();
    sqlx::query!("SELECT set_config('statement_timeout', '0', false)")
        .fetch_one(&mut connection)
        .await?;
    MIGRATOR.run(&mut connection).await?;
    sqlx::Connection::close(connection).await?;
    Ok(())
}

/// The event log. Cheap to clone; every clone shares one writer task, which stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    writer: mpsc::Sender<Job>,
    counters: Arc<WriterCounters>,
    stream_readers: Arc<StreamReaders>,
}

impl EventStore {
    /// Connects, applies pending migrations and starts the writer.
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let pool = pool_options(DEFAULT_MAX_CONNECTIONS)
            .connect(database_url)
            .await?;
        migrate(&pool).await?;
        Ok(Self::new(pool))
    }

    /// Starts the writer on a pool whose database is migrated. Needs a Tokio runtime.
    pub fn new(pool: PgPool) -> Self {
        let (writer, counters) = crate::writer::spawn(pool.clone());
        EventStore {
            stream_readers: Arc::new(StreamReaders::new(pool.clone())),
            pool,
            writer,
            counters,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How many batches the writer has committed and how many requests they carried.
    pub fn writer_statistics(&self) -> WriterStatistics {
        self.counters.snapshot()
    }

    /// Appends atomically to one or more streams, or replays an idempotent earlier result.
    /// Concurrent calls are committed together (see the `writer` module).
    #[tracing::instrument(skip_all, fields(streams = request.streams.len()))]
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, StoreError> {
        let request = crate::validate::prepare(request)?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Job { request, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Appends several commands' streams atomically, claiming each command's idempotency key
    /// in the same transaction: all are recorded or none. Any key already claimed refuses it
    /// whole ([`StoreError::IdempotencyKeyReused`]); each claim's result is the whole
    /// append's range, and each command's events carry its key in their metadata.
    #[tracing::instrument(skip_all, fields(streams = streams.len(), claims = claims.len()))]
    pub async fn append_claiming(
        &self,
        streams: Vec<crate::event::StreamAppend>,
        claims: Vec<crate::event::IdempotencyClaim>,
    ) -> Result<AppendOutcome, StoreError> {
        let request = crate::validate::prepare_claiming(streams, claims)?;
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Job { request, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// One stream's row: its type, version and kept state (see [`crate::kept_state`]); `None`
    /// when the stream does not exist.
    pub async fn stored_stream(&self, stream_id: Uuid) -> Result<Option<StoredStream>, StoreError> {
        self.stream_readers.stored_stream(stream_id).await
    }

    /// One stream's events from `from_version` on (1 for all), in version order.
    pub async fn read_stream(
        &self,
        stream_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.stream_readers
            .read_stream(stream_id, from_version)
            .await
    }

    /// A page of the global log: up to `limit` events (at most [`crate::MAX_PAGE_SIZE`]) from
    /// `from_position` on, in position order, with no gap.
    pub async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::read::read_all(&self.pool, from_position, limit).await
    }

    /// Like [`EventStore::read_all`], but only the events of one environment.
    pub async fn read_all_of_environment(
        &self,
        environment: Environment,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::read::read_all_of_environment(&self.pool, environment, from_position, limit).await
    }

    /// The stored claim on an idempotency key, if any.
    pub async fn idempotency_record(
        &self,
        environment: Environment,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.stream_readers
            .idempotency_record(environment, key)
            .await
    }

    /// The last position written and its hash.
    pub async fn head(&self) -> Result<LogHead, StoreError> {
        crate::read::head(&self.pool).await
    }

    /// Every event from `from_position` on, live, in position order (see `subscribe`).
    pub fn subscribe(
        &self,
        from_position: u64,
    ) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
        self.subscribe_with(from_position, SubscribeOptions::default())
    }

    pub fn subscribe_with(
        &self,
        from_position: u64,
        options: SubscribeOptions,
    ) -> impl Stream<Item = Result<RecordedEvent, StoreError>> + Send + 'static {
        crate::subscribe::subscribe(self.pool.clone(), from_position, options)
    }

    /// Re-verifies the hash chain from `from_position` to `to_position` (the head if `None`).
    pub async fn verify_chain(
        &self,
        from_position: u64,
        to_position: Option<u64>,
    ) -> Result<ChainVerification, StoreError> {
        crate::verify::verify_chain(&self.pool, from_position, to_position).await
    }

    /// Starts a check of the whole hash chain that the caller feeds with the pages of the log
    /// it reads for its own checks (see [`ChainCheck`]).
    pub async fn start_chain_check(&self) -> Result<ChainCheck, StoreError> {
        ChainCheck::start(&self.pool).await
    }

    /// The verdict of a chain check fed every page of the log: the same as
    /// [`EventStore::verify_chain`]`(1, None)`'s.
    pub async fn finish_chain_check(
        &self,
        check: ChainCheck,
    ) -> Result<ChainVerification, StoreError> {
        check.finish(&self.pool).await
    }
}
