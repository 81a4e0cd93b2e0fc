//! A reconciliation run as its events have made it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::event::{PayoutOutcome, ReconciliationEvent, ReconciliationRunStarted, RunSummary};
use crate::ids::{PayoutId, ReconciliationExceptionId};
use crate::stored::stored_names;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Completed,
}

stored_names!(RunStatus, "reconciliation run status" {
    Running => "RUNNING",
    Completed => "COMPLETED",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRun {
    pub started: ReconciliationRunStarted,
    pub status: RunStatus,
    /// Every exception found, and whether someone resolved it.
    pub exceptions: BTreeMap<ReconciliationExceptionId, bool>,
    pub payouts: BTreeMap<PayoutId, PayoutOutcome>,
    pub batches_recorded: u64,
    pub summary: Option<RunSummary>,
}

impl ReconciliationRun {
    pub fn payouts_with(&self, outcome: PayoutOutcome) -> u64 {
        self.payouts
            .values()
            .filter(|seen| **seen == outcome)
            .count() as u64
    }

    pub fn unresolved_exceptions(&self) -> BTreeSet<ReconciliationExceptionId> {
        self.exceptions
            .iter()
            .filter(|(_, resolved)| !**resolved)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconciliationRunState {
    pub run: Option<ReconciliationRun>,
    pub version: u64,
}

/// Applies one event; total, like the payment's `evolve`.
pub fn evolve(
    mut state: ReconciliationRunState,
    event: &ReconciliationEvent,
) -> ReconciliationRunState {
    state.version += 1;
    match (&mut state.run, event) {
        (None, ReconciliationEvent::ReconciliationRunStarted(started)) => {
            state.run = Some(ReconciliationRun {
                started: started.clone(),
                status: RunStatus::Running,
                exceptions: BTreeMap::new(),
                payouts: BTreeMap::new(),
                batches_recorded: 0,
                summary: None,
            });
        }
        (Some(run), ReconciliationEvent::ReconciliationExceptionsFound(found)) => {
            for exception in &found.exceptions {
                run.exceptions
                    .entry(exception.exception_id)
                    .or_insert(false);
            }
        }
        (Some(run), ReconciliationEvent::PayoutReconciled(payout)) => {
            run.payouts.insert(payout.payout_id.clone(), payout.outcome);
            if payout.batch_recorded {
                run.batches_recorded += 1;
            }
        }
        (Some(run), ReconciliationEvent::ReconciliationRunCompleted(completed)) => {
            run.status = RunStatus::Completed;
            run.summary = Some(completed.summary.clone());
        }
        (Some(run), ReconciliationEvent::ReconciliationExceptionResolved(resolved)) => {
            if let Some(is_resolved) = run.exceptions.get_mut(&resolved.exception_id) {
                *is_resolved = true;
            }
        }
        _ => {}
    }
    state
}

pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a ReconciliationEvent>,
) -> ReconciliationRunState {
    events
        .into_iter()
        .fold(ReconciliationRunState::default(), evolve)
}
