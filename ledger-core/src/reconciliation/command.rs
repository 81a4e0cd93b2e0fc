//! What the importer and finance ask of a reconciliation run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{PayoutReconciled, ReconciliationException, ReconciliationRunStarted};
use crate::ids::ReconciliationExceptionId;
use crate::text::ShortText;

/// Opens a run for one report file.
pub type StartRun = ReconciliationRunStarted;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveException {
    pub exception_id: ReconciliationExceptionId,
    pub reason: ShortText,
    pub resolved_by: ShortText,
    pub resolved_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ReconciliationCommand {
    Start(StartRun),
    /// Findings; those the run already holds are skipped, so an interrupted import can be
    /// resumed by running it again.
    RecordExceptions {
        exceptions: Vec<ReconciliationException>,
    },
    /// One payout's verdict; a payout the run already judged is skipped.
    RecordPayout(PayoutReconciled),
    /// Closes the run. Exception and payout counts come from what the run recorded.
    Complete {
        lines: u64,
        matched_lines: u64,
        completed_at: DateTime<Utc>,
    },
    ResolveException(ResolveException),
}
