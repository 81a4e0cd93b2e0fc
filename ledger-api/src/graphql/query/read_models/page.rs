//! What every connection shares: page sizes, opaque keyset cursors, `pageInfo`, and the wait
//! that lets a client read its own writes.

use std::time::Duration;

use async_graphql::connection::{CursorType, OpaqueCursor};
use async_graphql::SimpleObject;
use ledger_projections::{Projection, ProjectionLag};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::graphql::scalars::Position;
use crate::graphql::AppState;
use crate::replicas::ReadRoute;

/// The largest page any connection returns; larger requests are refused rather than
/// silently shortened, so a client never mistakes a short page for the end.
pub const MAX_PAGE_SIZE: usize = 100;
/// The page size when `first` is omitted.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// How long a query waits for the read models to reach `waitForPosition`.
const WAIT_FOR_POSITION_MAX: Duration = Duration::from_secs(5);
/// A waiter's first look again after this, then after twice as long, up to the maximum.
const WAIT_FOR_POSITION_FIRST_POLL: Duration = Duration::from_millis(10);
const WAIT_FOR_POSITION_MAX_POLL: Duration = Duration::from_millis(200);
/// A reading of the checkpoints younger than this answers every waiter: however many
/// queries wait, the process reads the checkpoints at most once per this interval.
const CHECKPOINT_READING_FRESH_FOR: Duration = Duration::from_millis(20);

/// The projections' checkpoints as last read, shared by every query of the process that
/// waits for a position.
#[derive(Default)]
pub struct SharedCheckpoints {
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Vec<ProjectionLag>)>>,
}

impl SharedCheckpoints {
    /// A reading started at most [`CHECKPOINT_READING_FRESH_FOR`] ago, read anew if needed.
    /// Waiters queue on the lock, so one of them reads while the others take its answer.
    async fn read(&self, pool: &sqlx::PgPool) -> ApiResult<Vec<ProjectionLag>> {
        let mut last = self.last.lock().await;
        if let Some((started, reading)) = last.as_ref() {
            if started.elapsed() < CHECKPOINT_READING_FRESH_FOR {
                return Ok(reading.clone());
            }
        }
        let started = tokio::time::Instant::now();
        metrics::counter!("ledger_read_model_wait_checkpoint_reads_total").increment(1);
        let reading = ledger_projections::projection_lag(pool).await?;
        *last = Some((started, reading.clone()));
        Ok(reading)
    }
}

/// `first` checked against the cap.
pub fn page_size(first: Option<i32>) -> ApiResult<usize> {
    let Some(first) = first else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    usize::try_from(first)
        .ok()
        .filter(|first| (1..=MAX_PAGE_SIZE).contains(first))
        .ok_or_else(|| {
            ApiError::validation(
                "first",
                format!("first must be between 1 and {MAX_PAGE_SIZE}; page with `after`"),
            )
        })
}

/// A cursor is the sort key of a row, opaque to clients: base64 of its JSON. Keyset
/// pagination (rows strictly after the key) stays exact while rows are inserted, which an
/// offset would not.
pub fn encode_cursor<K: Serialize + DeserializeOwned>(key: K) -> String {
    OpaqueCursor(key).encode_cursor()
}

pub fn decode_cursor<K: Serialize + DeserializeOwned>(after: Option<&str>) -> ApiResult<Option<K>> {
    after
        .map(|text| {
            OpaqueCursor::<K>::decode_cursor(text)
                .map(|cursor| cursor.0)
                .map_err(|_| {
                    ApiError::validation(
                        "after",
                        "not a cursor of this list: pass an endCursor this query returned",
                    )
                })
        })
        .transpose()
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Always false: these connections page forward only.
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A page of rows fetched with one row of look-ahead: `rows` holds at most `size + 1`; the
/// extra row only says that a next page exists.
pub fn page_of<R, E>(
    mut rows: Vec<R>,
    size: usize,
    cursor: impl Fn(&R) -> String,
    edge: impl Fn(String, R) -> E,
) -> (Vec<E>, PageInfo) {
    let has_next_page = rows.len() > size;
    rows.truncate(size);
    let cursors: Vec<String> = rows.iter().map(&cursor).collect();
    let page_info = PageInfo {
        has_next_page,
        has_previous_page: false,
        start_cursor: cursors.first().cloned(),
        end_cursor: cursors.last().cloned(),
    };
    let edges = cursors
        .into_iter()
        .zip(rows)
        .map(|(cursor, row)| edge(cursor, row))
        .collect();
    (edges, page_info)
}

/// Waits until every named projection has applied the log up to `position` (the `position`
/// a mutation returned), so that a client reads its own writes, and says where to read:
/// a standby whose read models have it too, else the primary (without a position, any
/// standby in rotation). Bounded: after [`WAIT_FOR_POSITION_MAX`] the answer is
/// UNAVAILABLE, which the client may retry.
pub async fn wait_for_position(
    app: &AppState,
    position: Option<Position>,
    projections: &[Projection],
) -> ApiResult<ReadRoute> {
    let Some(Position(position)) = position else {
        return Ok(app.reads.any());
    };
    let head = app.handler.store().head().await?.last_position;
    if position > head {
        return Err(ApiError::validation(
            "waitForPosition",
            format!(
                "position {position} has not been recorded (the log ends at {head}); \
                 pass a position a mutation returned"
            ),
        ));
    }
    let deadline = tokio::time::Instant::now() + WAIT_FOR_POSITION_MAX;
    let mut pause = WAIT_FOR_POSITION_FIRST_POLL;
    loop {
        let lag = app.checkpoints.read(&app.pool).await?;
        if reached(&lag, position, projections) {
            return Ok(app.reads.having_projected(position, projections).await);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unavailable(format!(
                "the read models have not reached position {position} yet"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(WAIT_FOR_POSITION_MAX_POLL);
    }
}

/// Whether every one of `projections` has applied the log up to `position`, by `lag`.
pub(crate) fn reached(lag: &[ProjectionLag], position: u64, projections: &[Projection]) -> bool {
    projections.iter().all(|wanted| {
        lag.iter().any(|projection| {
            projection.projection == wanted.name() && projection.checkpoint_position >= position
        })
    })
}
