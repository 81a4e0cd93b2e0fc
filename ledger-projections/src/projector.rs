//! [`Projector`]: applies the log to a set of projections in one schema, in batches, each
//! batch one transaction that writes the rows of every projection and their checkpoints
//! (builds split the projections over a few transactions written at once, each with the
//! checkpoints of its own projections: see [`BUILD_WRITERS`]).
//!
//! Checkpoints may differ between projections (after one was rebuilt): a batch starts after
//! the lowest and each projection skips the events it has already applied. Transactions
//! commit with `synchronous_commit = off`: a crash may lose the last few commits, but rows and
//! checkpoint are lost together and re-applied from the log, so the effect is still exactly
//! once, and rebuilds run much faster.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::batch::{read_batch, Batch};
use crate::checkpoint;
use crate::error::ProjectionError;
use crate::projection::{names_of, Projection};
use crate::read_models;
use crate::schema::SchemaName;
use crate::stream_states::StreamStates;

/// How a projector works.
#[derive(Debug, Clone, Copy)]
pub struct ProjectorOptions {
    /// Events per transaction.
    pub batch_size: usize,
    /// Longest wait for a notification before looking at the log anyway, when following.
    pub poll_interval: Duration,
    /// Stream states kept in memory between batches.
    pub state_cache_capacity: usize,
}

/// Most events one transaction applies: bounds memory (a projector holds up to two batches,
/// the one it writes and the next) and lock time.
pub const MAX_BATCH_SIZE: usize = 50_000;

/// Events per transaction when building from zero (rebuilds, point-in-time builds). Nobody
/// waits on a build's lag, and larger batches write each row once for several of its events
/// where smaller ones would insert it, then update it batch after batch.
pub const BUILD_BATCH_SIZE: usize = 50_000;

/// Stream states a projector keeps by default. The cache fills to its bound once the log
/// holds that many streams (a million generated events are ~200,000 streams), so the bound,
/// not the log, sets its memory: at 200,000 the scale benchmark's process grew by ~300 MiB
/// between 75,000 and 1,000,000 events. A batch needs only the streams it touches (a build's
/// 50,000 events touch at most that many; a stream missing is folded again from the log in
/// one query per batch), so 50,000 keeps the working set of a batch.
pub const DEFAULT_STATE_CACHE_CAPACITY: usize = 50_000;

impl Default for ProjectorOptions {
    fn default() -> Self {
        ProjectorOptions {
            batch_size: 2_000,
            poll_interval: Duration::from_secs(1),
            state_cache_capacity: DEFAULT_STATE_CACHE_CAPACITY,
        }
    }
}

impl ProjectorOptions {
    /// The options for building from zero: [`BUILD_BATCH_SIZE`] events per transaction.
    pub fn for_build() -> Self {
        ProjectorOptions {
            batch_size: BUILD_BATCH_SIZE,
            ..ProjectorOptions::default()
        }
    }
}

/// What one batch applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchApplied {
    pub first_position: u64,
    pub last_position: u64,
    pub events: usize,
}

/// Connections that write a build's projections in parallel. A build's schema has no
/// readers and each projection's checkpoint moves with its own rows, so its projections can
/// be written by separate transactions; the live projector keeps one transaction per batch.
pub(crate) const BUILD_WRITERS: usize = 3;

/// Projections written by one transaction per batch, with their checkpoints.
struct Lane {
    projections: Vec<Projection>,
    names: Vec<String>,
}

/// What one lane did with a batch.
enum LaneOutcome {
    /// Events applied: those after the lane's lowest checkpoint.
    Applied(usize),
    /// A checkpoint of the lane is before the batch's first event (it was moved back outside
    /// the projector): the batch cannot be applied, the log must be read again from there.
    Gap,
}

/// Applies the log to some projections of one schema.
pub struct Projector {
    pool: PgPool,
    schema: SchemaName,
    names: Vec<String>,
    lanes: Vec<Lane>,
    options: ProjectorOptions,
    states: StreamStates,
    /// The last position of the last batch written: following, an announcement of an append
    /// up to it needs no read.
    written_to: u64,
}

impl Projector {
    /// The live projector of every projection.
    pub fn live(pool: PgPool) -> Projector {
        Projector::new(
            pool,
            SchemaName::live(),
            &Projection::ALL,
            ProjectorOptions::default(),
        )
    }

    /// A projector that writes every batch in one transaction.
    pub fn new(
        pool: PgPool,
        schema: SchemaName,
        projections: &[Projection],
        options: ProjectorOptions,
    ) -> Projector {
        Projector::with_writers(pool, schema, projections, options, 1)
    }

    /// A projector for a build nobody reads until it is finished: its projections are
    /// written by [`BUILD_WRITERS`] transactions at once (see there).
    pub(crate) fn for_build(
        pool: PgPool,
        schema: SchemaName,
        projections: &[Projection],
        options: ProjectorOptions,
    ) -> Projector {
        Projector::with_writers(pool, schema, projections, options, BUILD_WRITERS)
    }

    fn with_writers(
        pool: PgPool,
        schema: SchemaName,
        projections: &[Projection],
        options: ProjectorOptions,
        writers: usize,
    ) -> Projector {
        let mut projections = projections.to_vec();
        projections.sort();
        projections.dedup();
        let options = ProjectorOptions {
            batch_size: options.batch_size.clamp(1, MAX_BATCH_SIZE),
            ..options
        };
        let lanes = lanes(&projections, writers);
        Projector {
            pool,
            schema,
            names: names_of(&projections),
            lanes,
            options,
            states: StreamStates::new(options.state_cache_capacity),
            written_to: 0,
        }
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Applies one batch (at most up to `to_position`), or returns `None` when there was
    /// nothing left to apply.
    #[tracing::instrument(skip(self), fields(schema = %self.schema))]
    pub async fn run_batch(
        &mut self,
        to_position: Option<u64>,
    ) -> Result<Option<BatchApplied>, ProjectionError> {
        let Some(from_position) = self.next_position(to_position).await? else {
            return Ok(None);
        };
        let batch = {
            let mut connection = self.pool.acquire().await?;
            read_batch(
                &mut connection,
                &mut self.states,
                from_position,
                to_position,
                self.options.batch_size,
            )
            .await?
        };
        let Some(batch) = batch else {
            return Ok(None);
        };
        let events = self.write(&batch).await?.unwrap_or(0);
        Ok(Some(BatchApplied {
            first_position: from_position,
            last_position: batch.last_position(),
            events,
        }))
    }

    /// Applies batches until the log's end (or `to_position`); returns the events applied.
    /// A reader task reads and folds the next batch while this one is written, so the
    /// database and this process work at the same time, on separate threads.
    #[tracing::instrument(skip(self), fields(schema = %self.schema))]
    pub async fn catch_up(&mut self, to_position: Option<u64>) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        loop {
            let Some(from_position) = self.next_position(to_position).await? else {
                return Ok(applied);
            };
            let states = std::mem::replace(
                &mut self.states,
                StreamStates::new(self.options.state_cache_capacity),
            );
            let (mut batches, reader) = spawn_reader(
                self.pool.clone(),
                states,
                from_position,
                to_position,
                self.options.batch_size,
            );
            let outcome = loop {
                let batch = match batches.recv().await {
                    None => break Ok(true),
                    Some(Err(error)) => break Err(error),
                    Some(Ok(batch)) => batch,
                };
                match self.write(&batch).await {
                    Ok(Some(events)) => {
                        applied += events as u64;
                        self.written_to = self.written_to.max(batch.last_position());
                    }
                    Ok(None) => break Ok(false),
                    Err(error) => break Err(error),
                }
            };
            drop(batches);
            // A reader that failed to return its cache only costs folding streams again.
            if let Ok(states) = reader.await {
                self.states = states;
            }
            if outcome? {
                return Ok(applied);
            }
        }
    }

    /// The position after the lowest checkpoint, or `None` when that is past `to_position`.
    async fn next_position(
        &self,
        to_position: Option<u64>,
    ) -> Result<Option<u64>, ProjectionError> {
        let mut transaction = begin(&self.pool).await?;
        self.schema.enter(&mut transaction).await?;
        checkpoint::ensure(&mut transaction, &self.names).await?;
        let checkpoints = checkpoint::lock(&mut transaction, &self.names).await?;
        transaction.commit().await?;
        if checkpoints.len() != self.names.len() {
            return Err(ProjectionError::CheckpointMissing);
        }
        let from_position = checkpoints.values().copied().min().unwrap_or(0) + 1;
        Ok(if to_position.is_some_and(|to| from_position > to) {
            None
        } else {
            Some(from_position)
        })
    }

    /// Writes the batch, every lane in its own transaction at once. Returns the events
    /// applied (the most any lane applied), or `None` when a lane found a gap before the
    /// batch and the log must be read again after the lowest checkpoint.
    pub(crate) async fn write(&self, batch: &Batch) -> Result<Option<usize>, ProjectionError> {
        let outcomes = futures::future::try_join_all(
            self.lanes
                .iter()
                .map(|lane| write_lane(&self.pool, &self.schema, lane, batch)),
        )
        .await?;
        let mut applied = 0;
        for outcome in outcomes {
            match outcome {
                LaneOutcome::Applied(events) => applied = applied.max(events),
                LaneOutcome::Gap => return Ok(None),
            }
        }
        Ok(Some(applied))
    }

    /// Catches up, then follows the log live until `shutdown` completes: woken by the log's
    /// notifications, polling at `poll_interval` in case one is missed. Errors are logged and
    /// retried after the poll interval (a database restart is survived).
    pub async fn follow(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut listener: Option<PgListener> = None;
        loop {
            if listener.is_none() {
                listener = listen(&self.pool).await;
            }
            let caught_up = tokio::select! {
                result = self.catch_up(None) => result,
                () = &mut shutdown => return,
            };
            if let Err(error) = caught_up {
                tracing::warn!(%error, schema = %self.schema, "projection failed; retrying");
                listener = None;
            }
            let wait = async {
                match listener.as_mut() {
                    Some(listener) => {
                        let _ = ledger_store::wait_for_appends(
                            listener,
                            self.options.poll_interval,
                            self.written_to,
                        )
                        .await;
                    }
                    None => tokio::time::sleep(self.options.poll_interval).await,
                }
            };
            tokio::select! {
                () = wait => {}
                () = &mut shutdown => return,
            }
        }
    }
}

/// Begins a transaction that completes even if the projector is cancelled meanwhile (see
/// [`ledger_store::begin_transaction`]).
async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, ProjectionError> {
    Ok(ledger_store::begin_transaction(pool).await?)
}

/// Splits the projections into at most `writers` lanes of about equal write cost.
fn lanes(projections: &[Projection], writers: usize) -> Vec<Lane> {
    let mut by_cost = projections.to_vec();
    by_cost.sort_by_key(|projection| std::cmp::Reverse(projection.write_cost()));
    let mut lanes: Vec<(u32, Vec<Projection>)> = Vec::new();
    for projection in by_cost {
        if lanes.len() < writers.max(1) {
            lanes.push((projection.write_cost(), vec![projection]));
        } else if let Some(lightest) = lanes.iter_mut().min_by_key(|(cost, _)| *cost) {
            lightest.0 += projection.write_cost();
            lightest.1.push(projection);
        }
    }
    lanes
        .into_iter()
        .map(|(_, mut projections)| {
            // Checkpoints are locked in name order within a lane, as in every transaction.
            projections.sort();
            Lane {
                names: names_of(&projections),
                projections,
            }
        })
        .collect()
}

/// One lane's transaction: lock its checkpoints, write the events after them, move them.
async fn write_lane(
    pool: &PgPool,
    schema: &SchemaName,
    lane: &Lane,
    batch: &Batch,
) -> Result<LaneOutcome, ProjectionError> {
    let mut transaction = begin(pool).await?;
    schema.enter(&mut transaction).await?;
    sqlx::query!("SELECT set_config('synchronous_commit', 'off', true)")
        .fetch_one(&mut *transaction)
        .await?;
    // In every transaction, not once: if the transaction that first created the rows
    // rolled back, a flag set then would leave the projection without checkpoints, and
    // every later batch would start again from position 1.
    checkpoint::ensure(&mut transaction, &lane.names).await?;
    let checkpoints = checkpoint::lock(&mut transaction, &lane.names).await?;
    if checkpoints.len() != lane.names.len() {
        return Err(ProjectionError::CheckpointMissing);
    }
    let lowest = checkpoints.values().copied().min().unwrap_or(0);
    let first_position = batch.first_position().unwrap_or(0);
    if lowest + 1 < first_position {
        return Ok(LaneOutcome::Gap);
    }
    write_batch(&mut transaction, &lane.projections, &checkpoints, batch).await?;
    transaction.commit().await?;
    Ok(LaneOutcome::Applied(batch.events_after(lowest).count()))
}

/// Writes every projection's rows of the batch and moves their checkpoints.
async fn write_batch(
    connection: &mut PgConnection,
    projections: &[Projection],
    checkpoints: &BTreeMap<String, u64>,
    batch: &Batch,
) -> Result<(), ProjectionError> {
    let last_position = batch.last_position();
    let mut advanced = Vec::with_capacity(projections.len());
    for projection in projections {
        let after = checkpoints.get(projection.name()).copied().unwrap_or(0);
        if after >= last_position {
            continue;
        }
        read_models::apply(*projection, connection, batch, after).await?;
        advanced.push(projection.name().to_owned());
    }
    checkpoint::advance(
        connection,
        &advanced,
        last_position,
        batch.last_recorded_at(),
    )
    .await
}

/// Reads and folds batches from `from_position` on its own task, one batch ahead of the
/// writer, until the log's end (or `to_position`) or until the receiver is dropped; the task
/// returns the state cache. A connection is held only while reading, so the reader never
/// keeps one that a writer waits for (a pool of one connection is enough).
fn spawn_reader(
    pool: PgPool,
    mut states: StreamStates,
    from_position: u64,
    to_position: Option<u64>,
    batch_size: usize,
) -> (
    mpsc::Receiver<Result<Batch, ProjectionError>>,
    JoinHandle<StreamStates>,
) {
    let (sender, receiver) = mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let mut next = from_position;
        loop {
            // The slot is taken before reading, so one batch is read while one is written:
            // never a third in the channel. A batch can hold large states (a reconciliation
            // run's findings), and memory must not grow with the lead.
            let Ok(slot) = sender.reserve().await else {
                break;
            };
            let read = async {
                let mut connection = pool.acquire().await?;
                read_batch(&mut connection, &mut states, next, to_position, batch_size).await
            };
            match read.await {
                Ok(Some(batch)) => {
                    let last_position = batch.last_position();
                    slot.send(Ok(batch));
                    if to_position.is_some_and(|to| last_position >= to) {
                        break;
                    }
                    next = last_position + 1;
                }
                Ok(None) => break,
                Err(error) => {
                    slot.send(Err(error));
                    break;
                }
            }
        }
        states
    });
    (receiver, reader)
}

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(ledger_store::NOTIFY_CHANNEL).await.ok()?;
    Some(listener)
}
