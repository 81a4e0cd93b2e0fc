//! One module per read model: its writer (`apply`, fed a batch) and its queries. All SQL on
//! the read-model tables is here, the API's lists and the importer's lookups included.
//!
//! Rows carry the core's enums: a stored name is read once, with the core's `FromStr`, when
//! the row is read; one that the core does not know makes the read fail as corrupt.

pub mod disputes;
pub mod journal;
pub mod ledger_items;
pub mod metrics;
pub mod orders;
pub mod payments;
pub mod reconciliation;
pub mod settlement;

use sqlx::PgConnection;

use crate::batch::Batch;
use crate::error::ProjectionError;
use crate::projection::Projection;

/// Applies the batch's events after position `after` to one projection's tables.
pub(crate) async fn apply(
    projection: Projection,
    connection: &mut PgConnection,
    batch: &Batch,
    after: u64,
) -> Result<(), ProjectionError> {
    match projection {
        Projection::Payments => payments::apply(connection, batch, after).await,
        Projection::Orders => orders::apply(connection, batch, after).await,
        Projection::Disputes => disputes::apply(connection, batch, after).await,
        Projection::Settlement => settlement::apply(connection, batch, after).await,
        Projection::Journal => journal::apply(connection, batch, after).await,
        Projection::Metrics => metrics::apply(connection, batch, after).await,
        Projection::Reconciliation => reconciliation::apply(connection, batch, after).await,
    }
}

/// Stored rows read as rows of the read model; the first unreadable one fails the read.
pub(crate) fn read_rows<S, R>(rows: Vec<S>) -> Result<Vec<R>, ProjectionError>
where
    R: TryFrom<S, Error = ProjectionError>,
{
    rows.into_iter().map(R::try_from).collect()
}
