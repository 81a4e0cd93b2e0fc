//! Reconciliation against Stripe's itemized payout reconciliation report: the file is read
//! ([`report`]), staged ([`staging`]), matched against the read models ([`ledger_view`]) with
//! the rules of `ledger_core::reconciliation`, and recorded as a run ([`import`]);
//! [`import_and_apply_parked`] then applies the payout webhooks the run unblocked ([`release`]).

pub mod error;
pub mod import;
pub mod ledger_view;
pub mod release;
pub mod report;
pub mod staging;

pub use error::ReconcileError;
pub use import::{
    batch_id_for_payout, file_sha256, import_stripe_payouts, run_id_for, ImportOutcome,
    ImportRequest, Progress,
};
pub use release::import_and_apply_parked;
