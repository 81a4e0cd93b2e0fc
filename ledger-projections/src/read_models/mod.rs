//! One module per read model: its writer (`apply`, fed a batch) and its queries.

pub mod disputes;
pub mod journal;
pub mod metrics;
pub mod orders;
pub mod payments;
pub mod reconciliation;
pub mod settlement;

use ledger_core::payment::state::{DisputeStatus, RefundStatus};
use ledger_core::payment::CaptureMode;
use ledger_core::settlement::PayoutStatus;
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

// The stored names of the core's enums, as in the JSON of events and the GraphQL schema.

pub(crate) fn capture_mode_name(mode: CaptureMode) -> &'static str {
    match mode {
        CaptureMode::Automatic => "AUTOMATIC",
        CaptureMode::Manual => "MANUAL",
    }
}

pub(crate) fn refund_status_name(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Pending => "PENDING",
        RefundStatus::Succeeded => "SUCCEEDED",
        RefundStatus::Failed => "FAILED",
    }
}

pub(crate) fn dispute_status_name(status: DisputeStatus) -> &'static str {
    match status {
        DisputeStatus::NeedsResponse => "NEEDS_RESPONSE",
        DisputeStatus::UnderReview => "UNDER_REVIEW",
        DisputeStatus::Won => "WON",
        DisputeStatus::Lost => "LOST",
    }
}

pub(crate) fn payout_status_name(status: PayoutStatus) -> &'static str {
    match status {
        PayoutStatus::InTransit => "IN_TRANSIT",
        PayoutStatus::Paid => "PAID",
        PayoutStatus::Failed => "FAILED",
    }
}
