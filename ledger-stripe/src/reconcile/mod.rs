//! Reconciliation against Stripe's itemized payout reconciliation report.
//!
//! # Layout
//! Pure (no I/O, no async), unit-tested without a database:
//! - [`report`]: the file read row by row into typed lines or `invalid_row` findings.
//! - [`matching`]: a payout's lines against the ledger's items, and the payout's verdict, given
//!   plain data; the classification rules themselves are `ledger_core::reconciliation`'s.
//!
//! I/O, each with one job:
//! - [`staging`]: readable lines staged in `reconciliation_report_lines`, read back per payout.
//! - [`ledger_view`]: what the read models hold for the items and payouts lines name.
//! - [`run_stream`]: the run's stream, written through the command handler.
//! - [`payout`]: one payout walked: lines paged in, looked up, matched, judged, recorded.
//! - [`settlements`]: a proven payout's settlement batch and payout, through the settlement
//!   rules.
//! - [`missing`]: the scan for ledger items no payout of the report took.
//! - [`import`]: [`import_stripe_payouts`], the order of the steps above.
//! - [`release`]: [`import_and_apply_parked`], an import and then the payout webhooks it
//!   unblocked.

pub mod error;
pub mod import;
pub mod ledger_view;
pub mod matching;
pub mod missing;
pub mod payout;
pub mod release;
pub mod report;
pub mod run_stream;
pub mod settlements;
pub mod staging;

pub use error::ReconcileError;
pub use import::{
    file_sha256, import_stripe_payouts, run_id_for, ImportOutcome, ImportRequest, Progress,
};
pub use matching::batch_id_for_payout;
pub use release::import_and_apply_parked;
