//! The schema a projector writes into. The live read models are in `public`; a rebuild or a
//! point-in-time build writes the same tables into a schema of its own. Queries name tables
//! without a schema and each transaction sets its `search_path` to `<schema>, public`, so the
//! same compile-time-checked SQL serves every schema (the log's tables are only in `public`).

use std::fmt;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use sqlx::{PgConnection, PgPool};

use crate::error::ProjectionError;
use crate::projector::BUILD_WRITERS;

/// PostgreSQL's identifier length limit.
const MAX_SCHEMA_NAME_LENGTH: usize = 63;

/// A validated schema name: lower-case ASCII letters, digits and underscores, starting with a
/// letter or underscore, not `pg_*` or `information_schema`. `public` is the live schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    pub fn live() -> SchemaName {
        SchemaName("public".to_owned())
    }

    /// A schema other than the live one.
    pub fn parse(text: &str) -> Result<SchemaName, ProjectionError> {
        let invalid = || ProjectionError::InvalidSchemaName(text.chars().take(80).collect());
        let mut characters = text.chars();
        let starts_well = characters
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == '_');
        let rest_well = text.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        });
        let reserved = text.starts_with("pg_") || text == "public" || text == "information_schema";
        if !starts_well || !rest_well || reserved || text.len() > MAX_SCHEMA_NAME_LENGTH {
            return Err(invalid());
        }
        Ok(SchemaName(text.to_owned()))
    }

    /// A fresh, unique name with the given prefix (for rebuilds and scratch builds).
    pub(crate) fn unique(prefix: &str) -> SchemaName {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        SchemaName(format!("{prefix}_{}", &suffix[..12]))
    }

    /// The default schema of a point-in-time build: `as_of_position_N`.
    pub fn for_point(position: u64) -> SchemaName {
        SchemaName(format!("as_of_position_{position}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_live(&self) -> bool {
        self.0 == "public"
    }

    /// Points the transaction's unqualified names at this schema first, then `public`.
    pub(crate) async fn enter(&self, connection: &mut PgConnection) -> Result<(), ProjectionError> {
        let path = if self.is_live() {
            "public".to_owned()
        } else {
            format!("{}, public", self.0)
        };
        sqlx::query!("SELECT set_config('search_path', $1, true)", path)
            .fetch_one(connection)
            .await?;
        Ok(())
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Whether a schema of that name exists.
pub(crate) async fn schema_exists(
    connection: &mut PgConnection,
    schema: &SchemaName,
) -> Result<bool, ProjectionError> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS "exists!""#,
        schema.as_str()
    )
    .fetch_one(connection)
    .await?;
    Ok(exists)
}

/// Creates the schema with empty copies of the given projection tables and the checkpoint
/// table. Identifiers cannot be bound as parameters; the name was validated by
/// [`SchemaName::parse`] and is quoted besides.
pub(crate) async fn create_schema(
    connection: &mut PgConnection,
    schema: &SchemaName,
    tables: &[String],
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(r#"CREATE SCHEMA "{}""#, schema.as_str()))
        .execute(&mut *connection)
        .await?;
    let mut all_tables = vec!["projection_checkpoints".to_owned()];
    all_tables.extend(tables.iter().cloned());
    sqlx::query!(
        "SELECT projection_clone_tables($1, $2)",
        schema.as_str(),
        &all_tables
    )
    .fetch_one(connection)
    .await?;
    Ok(())
}

/// Drops a schema and everything in it.
pub(crate) async fn drop_schema(
    connection: &mut PgConnection,
    schema: &SchemaName,
) -> Result<(), ProjectionError> {
    if schema.is_live() {
        return Err(ProjectionError::InvalidSchemaName(schema.0.clone()));
    }
    sqlx::query(&format!(
        r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#,
        schema.as_str()
    ))
    .execute(connection)
    .await?;
    Ok(())
}

/// Readies freshly created tables for a build nobody reads until it is finished: UNLOGGED and
/// without secondary indexes (see `migrations/20261126400000_projection_builds.sql`).
pub(crate) async fn prepare_build(
    connection: &mut PgConnection,
    schema: &SchemaName,
    tables: &[String],
) -> Result<(), ProjectionError> {
    sqlx::query!(
        "SELECT projection_prepare_build($1, $2)",
        schema.as_str(),
        tables
    )
    .fetch_one(connection)
    .await?;
    Ok(())
}

/// Makes a finished build durable (LOGGED) and creates its secondary indexes, several tables
/// at once: each table is rewritten and indexed on its own, so the server's cores share the
/// work. A failure leaves the build unfinished, as before: it is dropped, never swapped in.
/// Returns how long it took.
pub(crate) async fn finish_build(
    pool: &PgPool,
    schema: &SchemaName,
    tables: &[String],
) -> Result<Duration, ProjectionError> {
    let started = Instant::now();
    futures::stream::iter(tables)
        .map(|table| async move {
            // Indexing a table of a long log takes longer than the statement timeout.
            let mut transaction = ledger_store::begin_unbounded_transaction(pool).await?;
            sqlx::query!(
                "SELECT projection_finish_build($1, $2)",
                schema.as_str(),
                &[table.clone()] as &[String]
            )
            .fetch_one(&mut *transaction)
            .await?;
            transaction.commit().await?;
            Ok::<(), ProjectionError>(())
        })
        .buffer_unordered(BUILD_WRITERS)
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed())
}
