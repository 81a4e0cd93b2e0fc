//! Rebuilding read models from zero without taking the live ones down, point-in-time builds
//! for auditors, and balances as of a past time or position.
//!
//! # Rebuild and swap
//! A rebuild creates a fresh schema `projection_rebuild_*` with empty copies of the chosen
//! projections' tables (`projection_clone_tables`, the live tables are the template), fills it
//! from position 1 with its own [`Projector`] while the live projector keeps serving and
//! updating `public`, then swaps in one transaction:
//! 1. lock the live checkpoints of those projections (`FOR UPDATE`): this waits for the live
//!    projector's batch in flight and holds off the next one;
//! 2. move the live tables to a `projection_retired_*` schema and the rebuilt ones into
//!    `public` (`projection_swap_tables`, `ALTER TABLE … SET SCHEMA`, which is transactional);
//! 3. set the live checkpoints to the rebuild's position; commit.
//!
//! The build's tables are UNLOGGED and without secondary indexes while they fill (nobody reads
//! them yet); before the swap they are made LOGGED and indexed in bulk, which is much cheaper
//! than logging every row version of every batch.
//!
//! Readers see the old tables or the new ones, never a mix. After the commit the live projector
//! continues from the rebuild's checkpoint into the new tables (it may have been ahead: it
//! applies those events again, to the new tables, once). The retired schema is dropped.
//!
//! # Point in time
//! [`build_point_in_time`] builds the chosen projections into a named schema up to a position
//! (or the last position recorded at or before a time) and leaves it there for auditors to
//! query (`SELECT * FROM audit_2026_q3.projection_balances`). [`balances_as_of`] answers
//! balances at any past position or time from the live journal's postings, without a build.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ledger_core::ids::Environment;
use sqlx::PgPool;

use crate::checkpoint;
use crate::error::{from_stored, ProjectionError};
use crate::projection::{names_of, tables_of, Projection};
use crate::projector::{Projector, ProjectorOptions};
use crate::read_models::journal::{balances_up_to, Balance};
use crate::schema::{
    create_schema, drop_schema, finish_build, prepare_build, schema_exists, SchemaName,
};

/// A point in the log's past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Every event up to and including this position.
    Position(u64),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
}

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    pub schema: String,
    pub projections: Vec<Projection>,
    /// The position the built tables reflect.
    pub position: u64,
    pub events_applied: u64,
    pub elapsed: Duration,
    /// Of `elapsed`, the time spent making the built tables durable and indexing them.
    pub finishing: Duration,
}

impl BuildReport {
    pub fn events_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.events_applied as f64 / seconds
        } else {
            0.0
        }
    }
}

/// The last position at or before the point: the position itself (capped at the head), or
/// the last position recorded at or before the time (0 when none was).
#[tracing::instrument(skip(pool))]
pub async fn position_as_of(pool: &PgPool, as_of: AsOf) -> Result<u64, ProjectionError> {
    let head = sqlx::query_scalar!("SELECT last_position FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    let head = from_stored(head)?;
    match as_of {
        AsOf::Position(position) => Ok(position.min(head)),
        AsOf::Time(time) => {
            // `recorded_at` never decreases along positions (the store takes it under the log
            // head's lock), so the newest entry by then is the last position recorded by then:
            // one descent of `events_recorded_at_position`, not a scan of the log.
            let position = sqlx::query_scalar!(
                r#"SELECT position FROM events WHERE recorded_at <= $1
                   ORDER BY recorded_at DESC, position DESC LIMIT 1"#,
                time
            )
            .fetch_optional(pool)
            .await?
            .unwrap_or(0);
            from_stored(position)
        }
    }
}

/// Rebuilds the projections from zero beside the live ones and swaps them in (see the module
/// docs). The live projector may keep running throughout.
#[tracing::instrument(skip(pool, options))]
pub async fn rebuild(
    pool: &PgPool,
    projections: &[Projection],
    options: ProjectorOptions,
) -> Result<BuildReport, ProjectionError> {
    let started = Instant::now();
    let schema = SchemaName::unique("projection_rebuild");
    let tables = tables_of(projections);
    let mut connection = pool.acquire().await?;
    create_schema(&mut connection, &schema, &tables).await?;
    prepare_build(&mut connection, &schema, &tables).await?;
    let mut projector = Projector::for_build(pool.clone(), schema.clone(), projections, options);
    let built = match projector.catch_up(None).await {
        Ok(events_applied) => finish_build(pool, &schema, &tables)
            .await
            .map(|finishing| (events_applied, finishing)),
        Err(error) => Err(error),
    };
    let swapped = match built {
        Ok((events_applied, finishing)) => swap(pool, &schema, projections, &tables)
            .await
            .map(|position| (events_applied, finishing, position)),
        Err(error) => Err(error),
    };
    // The rebuild schema holds only its checkpoints after a swap, or the abandoned build.
    drop_schema(&mut connection, &schema).await?;
    let (events_applied, finishing, position) = swapped?;
    Ok(BuildReport {
        schema: "public".to_owned(),
        projections: projections.to_vec(),
        position,
        events_applied,
        elapsed: started.elapsed(),
        finishing,
    })
}

/// Swaps the rebuilt tables in; returns the position they reflect.
async fn swap(
    pool: &PgPool,
    schema: &SchemaName,
    projections: &[Projection],
    tables: &[String],
) -> Result<u64, ProjectionError> {
    let names = names_of(projections);
    let retired = SchemaName::unique("projection_retired");
    let mut transaction = ledger_store::begin_transaction(pool).await?;
    SchemaName::live().enter(&mut transaction).await?;
    checkpoint::ensure(&mut transaction, &names).await?;
    checkpoint::lock(&mut transaction, &names).await?;
    schema.enter(&mut transaction).await?;
    let rebuilt = sqlx::query!(
        r#"SELECT MIN(position) AS position, MAX(last_recorded_at) AS last_recorded_at
           FROM projection_checkpoints WHERE projection = ANY($1::text[])"#,
        &names
    )
    .fetch_one(&mut *transaction)
    .await?;
    SchemaName::live().enter(&mut transaction).await?;
    let position = from_stored(rebuilt.position.unwrap_or(0))?;
    sqlx::query(&format!(r#"CREATE SCHEMA "{}""#, retired.as_str()))
        .execute(&mut *transaction)
        .await?;
    sqlx::query!(
        "SELECT projection_swap_tables($1, $2, $3)",
        schema.as_str(),
        retired.as_str(),
        tables
    )
    .fetch_one(&mut *transaction)
    .await?;
    checkpoint::advance(&mut transaction, &names, position, rebuilt.last_recorded_at).await?;
    drop_schema(&mut transaction, &retired).await?;
    transaction.commit().await?;
    Ok(position)
}

/// Builds the projections as they were at `as_of` into the new schema `schema`, which stays
/// for auditors to query until [`drop_point_in_time`].
#[tracing::instrument(skip(pool, options))]
pub async fn build_point_in_time(
    pool: &PgPool,
    schema: &SchemaName,
    as_of: AsOf,
    projections: &[Projection],
    options: ProjectorOptions,
) -> Result<BuildReport, ProjectionError> {
    let started = Instant::now();
    if schema.is_live() {
        return Err(ProjectionError::InvalidSchemaName(schema.to_string()));
    }
    let position = position_as_of(pool, as_of).await?;
    let mut connection = pool.acquire().await?;
    if schema_exists(&mut connection, schema).await? {
        return Err(ProjectionError::SchemaExists(schema.to_string()));
    }
    let tables = tables_of(projections);
    create_schema(&mut connection, schema, &tables).await?;
    prepare_build(&mut connection, schema, &tables).await?;
    let mut projector = Projector::for_build(pool.clone(), schema.clone(), projections, options);
    let events_applied = if position == 0 {
        0
    } else {
        projector.catch_up(Some(position)).await?
    };
    let finishing = finish_build(pool, schema, &tables).await?;
    Ok(BuildReport {
        schema: schema.to_string(),
        projections: projections.to_vec(),
        position,
        events_applied,
        elapsed: started.elapsed(),
        finishing,
    })
}

/// Drops a point-in-time schema.
#[tracing::instrument(skip(pool))]
pub async fn drop_point_in_time(pool: &PgPool, schema: &SchemaName) -> Result<(), ProjectionError> {
    let mut connection = pool.acquire().await?;
    drop_schema(&mut connection, schema).await
}

/// Balances of a merchant (every merchant when `None`) as of a past position or time, from the
/// live journal's postings. Refuses a position the journal has not reached yet.
#[tracing::instrument(skip(pool))]
pub async fn balances_as_of(
    pool: &PgPool,
    environment: Environment,
    merchant_id: Option<&str>,
    as_of: AsOf,
) -> Result<Vec<Balance>, ProjectionError> {
    let position = position_as_of(pool, as_of).await?;
    let checkpoint = sqlx::query_scalar!(
        "SELECT position FROM projection_checkpoints WHERE projection = $1",
        Projection::Journal.name()
    )
    .fetch_optional(pool)
    .await?
    .map(from_stored)
    .transpose()?
    .unwrap_or(0);
    if checkpoint < position {
        return Err(ProjectionError::NotYetProjected {
            projection: Projection::Journal.name(),
            checkpoint,
            requested: position,
        });
    }
    let mut connection = pool.acquire().await?;
    balances_up_to(&mut connection, environment, merchant_id, position).await
}
