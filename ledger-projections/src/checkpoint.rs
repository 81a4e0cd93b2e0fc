//! Checkpoints: how far each projection has applied the log. A checkpoint is written in the
//! same transaction as the rows it covers, so after any crash the rows are exactly those of the
//! events up to it (exactly-once effect), and applying resumes right after it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::error::{from_stored, to_stored, ProjectionError};

/// Creates missing checkpoints at position 0.
pub(crate) async fn ensure(
    connection: &mut PgConnection,
    names: &[String],
) -> Result<(), ProjectionError> {
    sqlx::query!(
        r#"INSERT INTO projection_checkpoints (projection, position)
           SELECT name, 0 FROM UNNEST($1::text[]) AS name
           ON CONFLICT (projection) DO NOTHING"#,
        names
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Reads and locks the checkpoints: a second projector on the same schema waits here, then
/// sees what the first one committed, so no event is applied twice.
pub(crate) async fn lock(
    connection: &mut PgConnection,
    names: &[String],
) -> Result<BTreeMap<String, u64>, ProjectionError> {
    let rows = sqlx::query!(
        r#"SELECT projection, position FROM projection_checkpoints
           WHERE projection = ANY($1::text[])
           ORDER BY projection
           FOR UPDATE"#,
        names
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| Ok((row.projection, from_stored(row.position)?)))
        .collect()
}

/// Moves the named checkpoints to `position`.
pub(crate) async fn advance(
    connection: &mut PgConnection,
    names: &[String],
    position: u64,
    recorded_at: Option<DateTime<Utc>>,
) -> Result<(), ProjectionError> {
    sqlx::query!(
        r#"UPDATE projection_checkpoints
           SET position = $2, last_recorded_at = $3, updated_at = now()
           WHERE projection = ANY($1::text[])"#,
        names,
        to_stored(position)?,
        recorded_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Every checkpoint of the schema the connection's `search_path` points at.
pub(crate) async fn read_all(
    connection: &mut PgConnection,
) -> Result<BTreeMap<String, u64>, ProjectionError> {
    let rows = sqlx::query!("SELECT projection, position FROM projection_checkpoints")
        .fetch_all(connection)
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.projection, from_stored(row.position)?)))
        .collect()
}

/// How far a live projection is behind the log, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionLag {
    pub projection: String,
    pub checkpoint_position: u64,
    pub head_position: u64,
    /// Events recorded but not applied yet.
    pub positions_behind: u64,
    /// The recorded_at of the last applied event.
    pub last_applied_recorded_at: Option<DateTime<Utc>>,
    /// How long the oldest event not yet applied has waited (zero when caught up): the
    /// staleness a reader of this projection may see.
    pub seconds_behind: f64,
}

/// The lag of every live projection.
#[tracing::instrument(skip_all)]
pub async fn projection_lag(pool: &PgPool) -> Result<Vec<ProjectionLag>, ProjectionError> {
    let rows = sqlx::query!(
        r#"SELECT c.projection, c.position, c.last_recorded_at, h.last_position,
                  now() AS "now!",
                  (SELECT e.recorded_at FROM events e WHERE e.position = c.position + 1)
                      AS oldest_unapplied
           FROM projection_checkpoints c CROSS JOIN log_head h
           ORDER BY c.projection"#
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let checkpoint_position = from_stored(row.position)?;
            let head_position = from_stored(row.last_position)?;
            let seconds_behind = row
                .oldest_unapplied
                .map(|oldest| (row.now - oldest).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            Ok(ProjectionLag {
                projection: row.projection,
                checkpoint_position,
                head_position,
                positions_behind: head_position.saturating_sub(checkpoint_position),
                last_applied_recorded_at: row.last_recorded_at,
                seconds_behind,
            })
        })
        .collect()
}
