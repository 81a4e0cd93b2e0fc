//! The named projections and the tables each one owns. A projection is the unit of
//! checkpointing and of rebuilding: its tables are written only by it.

use std::fmt;
use std::str::FromStr;

use crate::error::ProjectionError;

/// One read model with its own checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Projection {
    /// Payments with their captures and refunds.
    Payments,
    /// Order-level payment status.
    Orders,
    /// Disputes (also the payment's dispute list).
    Disputes,
    /// Settlement batches, items and payouts.
    Settlement,
    /// Journal entries, postings and balances.
    Journal,
    /// Daily metrics per merchant.
    Metrics,
    /// Reconciliation runs, their payout verdicts and exceptions with resolutions.
    Reconciliation,
}

impl Projection {
    pub const ALL: [Projection; 7] = [
        Projection::Payments,
        Projection::Orders,
        Projection::Disputes,
        Projection::Settlement,
        Projection::Journal,
        Projection::Metrics,
        Projection::Reconciliation,
    ];

    /// The name used in checkpoints and on the command line (`--projection NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Projection::Payments => "payments",
            Projection::Orders => "orders",
            Projection::Disputes => "disputes",
            Projection::Settlement => "settlement",
            Projection::Journal => "journal",
            Projection::Metrics => "metrics",
            Projection::Reconciliation => "reconciliation",
        }
    }

    /// The tables this projection writes, all in the same schema.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Projection::Payments => &[
                "projection_payments",
                "projection_captures",
                "projection_refunds",
            ],
            Projection::Orders => &["projection_order_payments", "projection_orders"],
            Projection::Disputes => &["projection_disputes"],
            Projection::Settlement => &[
                "projection_settlement_batches",
                "projection_settlement_items",
                "projection_payouts",
            ],
            Projection::Journal => &[
                "projection_journal_entries",
                "projection_postings",
                "projection_balances",
                "projection_balance_snapshots",
            ],
            Projection::Metrics => &[
                "projection_merchant_daily_metrics",
                "projection_merchant_daily_declines",
                "projection_metric_capture_times",
            ],
            Projection::Reconciliation => &[
                "projection_reconciliation_runs",
                "projection_reconciliation_payouts",
                "projection_reconciliation_exceptions",
            ],
        }
    }

    /// Relative time its writes take per batch (measured with `examples/rebuild_bench.rs`),
    /// to spread a build's projections over its writers evenly.
    pub(crate) fn write_cost(self) -> u32 {
        match self {
            Projection::Payments => 10,
            Projection::Orders => 11,
            Projection::Journal => 4,
            Projection::Metrics => 2,
            Projection::Settlement => 2,
            Projection::Disputes => 1,
            Projection::Reconciliation => 1,
        }
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Projection {
    type Err = ProjectionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Projection::ALL
            .into_iter()
            .find(|projection| projection.name() == text)
            .ok_or_else(|| ProjectionError::UnknownProjection(text.chars().take(64).collect()))
    }
}

/// The tables of several projections, as one list for the schema functions.
pub(crate) fn tables_of(projections: &[Projection]) -> Vec<String> {
    projections
        .iter()
        .flat_map(|projection| projection.tables().iter().map(|table| (*table).to_owned()))
        .collect()
}

/// The checkpoint names of several projections.
pub(crate) fn names_of(projections: &[Projection]) -> Vec<String> {
    projections
        .iter()
        .map(|projection| projection.name().to_owned())
        .collect()
}
