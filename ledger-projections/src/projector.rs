//! [`Projector`]: applies the log to a set of projections in one schema, in batches, each
//! batch one transaction that writes the rows of every projection and their checkpoints.
//!
//! Checkpoints may differ between projections (after one was rebuilt): a batch starts after
//! the lowest and each projection skips the events it has already applied. Transactions
//! commit with `synchronous_commit = off`: a crash may lose the last few commits, but rows and
//! checkpoint are lost together and re-applied from the log, so the effect is still exactly
//! once, and rebuilds run much faster.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use std::collections::BTreeMap;

use sqlx::PgConnection;

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

/// Most events one transaction applies: bounds memory and lock time.
pub const MAX_BATCH_SIZE: usize = 50_000;

impl Default for ProjectorOptions {
    fn default() -> Self {
        ProjectorOptions {
            batch_size: 2_000,
            poll_interval: Duration::from_secs(1),
            state_cache_capacity: 200_000,
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

/// Applies the log to some projections of one schema.
pub struct Projector {
    pool: PgPool,
    schema: SchemaName,
    projections: Vec<Projection>,
    names: Vec<String>,
    options: ProjectorOptions,
    states: StreamStates,
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

    pub fn new(
        pool: PgPool,
        schema: SchemaName,
        projections: &[Projection],
        options: ProjectorOptions,
    ) -> Projector {
        let mut projections = projections.to_vec();
        projections.sort();
        projections.dedup();
        let options = ProjectorOptions {
            batch_size: options.batch_size.clamp(1, MAX_BATCH_SIZE),
            ..options
        };
        Projector {
            pool,
            schema,
            names: names_of(&projections),
            projections,
            options,
            states: StreamStates::new(options.state_cache_capacity),
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
        Ok(self.apply_batch(to_position, None, false).await?.0)
    }

    /// Applies batches until the log's end (or `to_position`); returns the events applied.
    /// While one batch is written, the next is read and folded (the database and this
    /// process work at the same time).
    #[tracing::instrument(skip(self), fields(schema = %self.schema))]
    pub async fn catch_up(&mut self, to_position: Option<u64>) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        let mut prefetched = None;
        loop {
            let (batch, next) = self.apply_batch(to_position, prefetched, true).await?;
            let Some(batch) = batch else {
                return Ok(applied);
            };
            applied += batch.events as u64;
            prefetched = next;
        }
    }

    /// One transaction: lock the checkpoints, take the prefetched batch if it starts right
    /// after them (or read one), write every projection and the checkpoints, commit. With
    /// `prefetch`, the following batch is read and folded while this one is written.
    async fn apply_batch(
        &mut self,
        to_position: Option<u64>,
        prefetched: Option<Batch>,
        prefetch: bool,
    ) -> Result<(Option<BatchApplied>, Option<Batch>), ProjectionError> {
        let mut transaction = self.pool.begin().await?;
        self.schema.enter(&mut transaction).await?;
        sqlx::query!("SELECT set_config('synchronous_commit', 'off', true)")
            .fetch_one(&mut *transaction)
            .await?;
        // In every transaction, not once: if the transaction that first created the rows
        // rolled back, a flag set then would leave the projection without checkpoints, and
        // every later batch would start again from position 1.
        checkpoint::ensure(&mut transaction, &self.names).await?;
        let checkpoints = checkpoint::lock(&mut transaction, &self.names).await?;
        if checkpoints.len() != self.names.len() {
            return Err(ProjectionError::CheckpointMissing);
        }
        let lowest = checkpoints.values().copied().min().unwrap_or(0);
        let from_position = lowest + 1;
        if to_position.is_some_and(|to| from_position > to) {
            return Ok((None, None));
        }
        // A prefetched batch is used only if nobody else moved the checkpoints meanwhile.
        let batch = match prefetched {
            Some(batch) if batch.first_position() == Some(from_position) => Some(batch),
            _ => {
                read_batch(
                    &mut transaction,
                    &mut self.states,
                    from_position,
                    to_position,
                    self.options.batch_size,
                )
                .await?
            }
        };
        let Some(batch) = batch else {
            return Ok((None, None));
        };
        let last_position = batch.last_position();
        let Projector {
            pool,
            projections,
            options,
            states,
            ..
        } = self;
        let write = write_batch(&mut transaction, projections, &checkpoints, &batch);
        let next = async {
            if !prefetch || to_position.is_some_and(|to| last_position >= to) {
                return Ok(None);
            }
            // Only with a spare connection: waiting for one could wait for this very
            // transaction's, which is released after the join.
            let Some(mut connection) = pool.try_acquire() else {
                return Ok(None);
            };
            read_batch(
                &mut connection,
                states,
                last_position + 1,
                to_position,
                options.batch_size,
            )
            .await
        };
        let (written, next) = tokio::join!(write, next);
        written?;
        transaction.commit().await?;
        let applied = BatchApplied {
            first_position: from_position,
            last_position,
            events: batch.events.len(),
        };
        // A failed prefetch is only a lost head start: the next batch reads again.
        Ok((Some(applied), next.ok().flatten()))
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
                        let _ =
                            tokio::time::timeout(self.options.poll_interval, listener.recv()).await;
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

async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(ledger_store::NOTIFY_CHANNEL).await.ok()?;
    Some(listener)
}
