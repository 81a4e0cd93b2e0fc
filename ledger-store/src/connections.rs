//! A few connections for reading streams, kept beside sqlx's pool rather than in it.
//!
//! sqlx 0.8 sends a round trip (`Sync`, wait for `ReadyForQuery`) every time a pooled
//! connection goes back to its pool. Reading a stream is the one query of every command and
//! every `payment(id)`, so that ping was a tenth of the server's CPU in the `payment(id)`
//! benchmark. These connections are taken from the pool once, detached, and handed back
//! here without a ping. One that fails a read is dropped, never reused; one that sat idle
//! longer than [`IDLE_CHECK_AFTER`] is pinged first, as the pool does, since the server may
//! have closed it meanwhile.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::StoreError;
use crate::event::RecordedEvent;
use crate::store::IDLE_CHECK_AFTER;

/// Most connections kept for stream reads; more concurrent reads wait for one.
pub const STREAM_READ_CONNECTIONS: usize = 8;

pub(crate) struct StreamReaders {
    pool: PgPool,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    turns: Semaphore,
}

impl StreamReaders {
    pub fn new(pool: PgPool) -> Self {
        StreamReaders {
            pool,
            idle: Mutex::new(Vec::with_capacity(STREAM_READ_CONNECTIONS)),
            turns: Semaphore::new(STREAM_READ_CONNECTIONS),
        }
    }

    /// A stream's events from `from_version` on, in version order.
    pub async fn read_stream(
        &self,
        stream_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // The semaphore is never closed, so a turn always comes.
        let _turn = self
            .turns
            .acquire()
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        let mut connection = self.take().await?;
        // Dropped with the connection if this future is: a read cut off halfway leaves the
        // connection in a state nobody should reuse.
        let events = crate::read::read_stream(&mut connection, stream_id, from_version).await?;
        self.lock().push((connection, Instant::now()));
        Ok(events)
    }

    async fn take(&self) -> Result<PgConnection, StoreError> {
        let kept = self.lock().pop();
        if let Some((mut connection, last_used)) = kept {
            if last_used.elapsed() <= IDLE_CHECK_AFTER || connection.ping().await.is_ok() {
                return Ok(connection);
            }
        }
        Ok(self.pool.acquire().await?.detach())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(PgConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
