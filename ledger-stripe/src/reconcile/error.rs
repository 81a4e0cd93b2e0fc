//! [`ReconcileError`]: why an import stopped. Bad rows never stop it (they become
//! `invalid_row` exceptions); only a file that is not the report, a total past the largest
//! amount, or the ledger failing, do.

use ledger_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("this is not Stripe's itemized payout reconciliation report: it lacks the column(s) {missing}")]
    NotAPayoutReport { missing: String },
    #[error("the report cannot be read: {0}")]
    UnreadableFile(String),
    #[error("the event log failed: {0}")]
    Store(#[from] StoreError),
    #[error("the database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the read models could not catch up with the log: {0}")]
    Projections(#[from] ledger_projections::ProjectionError),
    #[error("a stored row is unreadable: {0}")]
    CorruptRow(String),
    /// A sum the report asks for leaves the range of amounts the ledger holds. The import stops
    /// rather than record a wrong total; importing the file again stops at the same place.
    #[error("{what} overflows: {source}")]
    AmountOverflow {
        what: String,
        #[source]
        source: ledger_core::MoneyError,
    },
}
