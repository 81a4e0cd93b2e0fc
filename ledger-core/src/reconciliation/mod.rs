//! Reconciliation: proving that what the gateway says it settled and paid out is what the
//! ledger recorded.
//!
//! A gateway's payout report lists, per payout, the balance transactions the payout moved.
//! Each line is [`classify`]d against what the ledger knows of the capture, refund or dispute it
//! names; each payout is proven when every one of its lines matches and its total agrees with
//! any payout amount the ledger already knows. An import is a reconciliation run, a stream of
//! its own: it records what it found (exceptions in chunks, one verdict per payout, a summary)
//! and later who resolved which exception and why. Its [`invariants`] are asserted on every
//! decision in debug builds.
//!
//! The importer (ledger-api) reads the file, looks the ledger up and records the settlement
//! batches of proven payouts through the settlement rules; everything it decides is here.

mod classify;
mod command;
mod decide;
mod event;
pub mod invariants;
mod state;

pub use classify::{
    classify_line, payout_total_exception, LedgerItem, LedgerSettlement, LineVerdict,
    ReportCategory, ReportLine,
};
pub use command::{ReconciliationCommand, ResolveException, StartRun};
pub use decide::{decide, MAX_EXCEPTIONS_PER_EVENT};
pub use event::{
    ExceptionClass, LedgerSide, PayoutOutcome, PayoutReconciled, ReconciliationEvent,
    ReconciliationException, ReconciliationExceptionResolved, ReconciliationExceptionsFound,
    ReconciliationRunCompleted, ReconciliationRunStarted, ReconciliationSource, ReportSide,
    RunSummary,
};
pub use state::{evolve, fold, ReconciliationRun, ReconciliationRunState, RunStatus};
