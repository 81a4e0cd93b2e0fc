//! [`LogReader`]: the log's read-only queries on any pool, a standby's included.
//!
//! An [`crate::EventStore`] starts a writer and stream readers on its pool; a hot standby
//! refuses every write and `LISTEN`, so reads routed to one go through this instead: plain
//! statements, nothing kept, nothing written. A standby replays commits in the primary's
//! order, and the primary commits position N+1 only after N (see `writer`), so a standby's
//! log is a gap-free prefix of the primary's: reading it by position never skips one either.

use sqlx::PgPool;

use crate::error::StoreError;
use crate::event::{Environment, RecordedEvent};
use crate::read::LogHead;

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct LogReader {
    pool: PgPool,
}

impl LogReader {
    pub fn new(pool: PgPool) -> Self {
        LogReader { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// As [`crate::EventStore::read_all`].
    pub async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::read::read_all(&self.pool, from_position, limit).await
    }

    /// As [`crate::EventStore::read_all_of_environment`].
    pub async fn read_all_of_environment(
        &self,
        environment: Environment,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::read::read_all_of_environment(&self.pool, environment, from_position, limit).await
    }

    /// The last position this database has (on a standby: has replayed).
    pub async fn head(&self) -> Result<LogHead, StoreError> {
        crate::read::head(&self.pool).await
    }
}
