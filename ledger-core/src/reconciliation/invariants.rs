//! The invariants of a reconciliation run, checked on any folded run and on each decision.
//! `decide` asserts them in debug builds; the property tests drive it with random commands.
//!
//! domain.md's general invariants as a run has them: a completed run is terminal and accepts
//! only resolutions (invariant 5); its summary is what its events recorded (the counts a
//! report shows are derived, never kept apart, invariant 1); an exception and a payout verdict
//! are recorded once each and an exception resolved at most once (ids unique, invariant 2);
//! and each findings event holds a bounded, non-empty chunk, so no event outgrows the log.

use std::collections::BTreeSet;

use super::decide::MAX_EXCEPTIONS_PER_EVENT;
use super::event::{PayoutOutcome, ReconciliationEvent};
use super::state::{evolve, ReconciliationRunState, RunStatus};
use crate::payment::invariants::InvariantViolation;

fn violation(text: impl Into<String>) -> Result<(), InvariantViolation> {
    Err(InvariantViolation(text.into()))
}

/// Checks a folded run.
pub fn check(state: &ReconciliationRunState) -> Result<(), InvariantViolation> {
    let Some(run) = &state.run else {
        return if state.version == 0 {
            Ok(())
        } else {
            violation("events before ReconciliationRunStarted")
        };
    };
    if run.batches_recorded > run.payouts.len() as u64 {
        return violation(format!(
            "{} batches recorded for {} payouts",
            run.batches_recorded,
            run.payouts.len()
        ));
    }
    match (run.status, &run.summary) {
        (RunStatus::Running, None) => Ok(()),
        (RunStatus::Running, Some(_)) => violation("a running run has a summary"),
        (RunStatus::Completed, None) => violation("a completed run has no summary"),
        (RunStatus::Completed, Some(summary)) => {
            let derived = (
                run.exceptions.len() as u64,
                run.payouts_with(PayoutOutcome::Proven),
                run.payouts_with(PayoutOutcome::Unproven),
                run.batches_recorded,
            );
            let stated = (
                summary.exceptions,
                summary.payouts_proven,
                summary.payouts_unproven,
                summary.batches_recorded,
            );
            if derived == stated {
                Ok(())
            } else {
                violation(format!(
                    "the summary states (exceptions, proven, unproven, batches) {stated:?}, the run's events make {derived:?}"
                ))
            }
        }
    }
}

/// Checks a decision's events against the run they were decided on, and the run they leave.
pub fn check_decision(
    before: &ReconciliationRunState,
    events: &[ReconciliationEvent],
) -> Result<(), InvariantViolation> {
    let completed = before
        .run
        .as_ref()
        .is_some_and(|run| run.status == RunStatus::Completed);
    let mut exceptions = BTreeSet::new();
    let mut after = before.clone();
    for event in events {
        let run = after.run.as_ref();
        let open = |id| run.and_then(|run| run.exceptions.get(id)) == Some(&false);
        let judged = |id| run.is_some_and(|run| run.payouts.contains_key(id));
        match event {
            ReconciliationEvent::ReconciliationExceptionResolved(resolved)
                if !open(&resolved.exception_id) =>
            {
                return violation(format!(
                    "exception {} resolved while not open",
                    resolved.exception_id
                ));
            }
            ReconciliationEvent::ReconciliationExceptionResolved(_) => {}
            _ if completed => return violation(format!("{event:?} after the run completed")),
            ReconciliationEvent::ReconciliationRunStarted(_) if run.is_some() => {
                return violation("a run started twice")
            }
            ReconciliationEvent::ReconciliationExceptionsFound(found) => {
                let count = found.exceptions.len();
                if count == 0 || count > MAX_EXCEPTIONS_PER_EVENT {
                    return violation(format!("{count} exceptions in one event"));
                }
                for exception in &found.exceptions {
                    let known =
                        run.is_some_and(|run| run.exceptions.contains_key(&exception.exception_id));
                    if known || !exceptions.insert(exception.exception_id) {
                        return violation(format!(
                            "exception {} recorded twice",
                            exception.exception_id
                        ));
                    }
                }
            }
            ReconciliationEvent::PayoutReconciled(payout) if judged(&payout.payout_id) => {
                return violation(format!("payout {} judged twice", payout.payout_id));
            }
            _ => {}
        }
        after = evolve(after, event);
    }
    check(&after)
}
