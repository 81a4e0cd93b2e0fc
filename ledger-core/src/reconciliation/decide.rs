//! The rules of a reconciliation run: one start, findings recorded once each, one close, and
//! each exception resolved at most once.

use std::collections::BTreeSet;

use super::command::{ReconciliationCommand, ResolveException};
use super::event::{
    PayoutOutcome, PayoutReconciled, ReconciliationEvent, ReconciliationException,
    ReconciliationExceptionResolved, ReconciliationExceptionsFound, ReconciliationRunCompleted,
    RunSummary,
};
use super::state::{ReconciliationRun, ReconciliationRunState, RunStatus};
use crate::error::DomainError;

/// Exceptions per event: keeps each event well under the log's payload limit.
pub const MAX_EXCEPTIONS_PER_EVENT: usize = 25;

/// Decides a command against a run's state. In debug builds, asserts that the events keep
/// every invariant of a run ([`super::invariants`]).
pub fn decide(
    state: &ReconciliationRunState,
    command: &ReconciliationCommand,
) -> Result<Vec<ReconciliationEvent>, DomainError> {
    let events = decide_unchecked(state, command)?;
    if cfg!(debug_assertions) {
        let checked = super::invariants::check_decision(state, &events);
        debug_assert!(checked.is_ok(), "{command:?} broke {checked:?}");
    }
    Ok(events)
}

fn decide_unchecked(
    state: &ReconciliationRunState,
    command: &ReconciliationCommand,
) -> Result<Vec<ReconciliationEvent>, DomainError> {
    if let ReconciliationCommand::Start(started) = command {
        if state.run.is_some() {
            return Err(DomainError::ReconciliationRunAlreadyStarted);
        }
        return Ok(vec![ReconciliationEvent::ReconciliationRunStarted(
            started.clone(),
        )]);
    }
    let run = state
        .run
        .as_ref()
        .ok_or(DomainError::ReconciliationRunNotFound)?;
    match command {
        ReconciliationCommand::Start(_) => Err(DomainError::ReconciliationRunAlreadyStarted),
        ReconciliationCommand::RecordExceptions { exceptions } => {
            running(run)?;
            Ok(new_exceptions(run, exceptions))
        }
        ReconciliationCommand::RecordPayout(payout) => {
            running(run)?;
            Ok(new_payout(run, payout))
        }
        ReconciliationCommand::Complete {
            lines,
            matched_lines,
            completed_at,
        } => {
            running(run)?;
            Ok(vec![ReconciliationEvent::ReconciliationRunCompleted(
                ReconciliationRunCompleted {
                    summary: RunSummary {
                        lines: *lines,
                        matched_lines: *matched_lines,
                        exceptions: run.exceptions.len() as u64,
                        payouts_proven: run.payouts_with(PayoutOutcome::Proven),
                        payouts_unproven: run.payouts_with(PayoutOutcome::Unproven),
                        batches_recorded: run.batches_recorded,
                    },
                    completed_at: *completed_at,
                },
            )])
        }
        ReconciliationCommand::ResolveException(resolve) => resolve_exception(run, resolve),
    }
}

fn running(run: &ReconciliationRun) -> Result<(), DomainError> {
    match run.status {
        RunStatus::Running => Ok(()),
        RunStatus::Completed => Err(DomainError::ReconciliationRunAlreadyCompleted),
    }
}

fn new_exceptions(
    run: &ReconciliationRun,
    exceptions: &[ReconciliationException],
) -> Vec<ReconciliationEvent> {
    let mut seen = BTreeSet::new();
    let fresh: Vec<ReconciliationException> = exceptions
        .iter()
        .filter(|exception| {
            !run.exceptions.contains_key(&exception.exception_id)
                && seen.insert(exception.exception_id)
        })
        .cloned()
        .collect();
    fresh
        .chunks(MAX_EXCEPTIONS_PER_EVENT)
        .map(|chunk| {
            ReconciliationEvent::ReconciliationExceptionsFound(ReconciliationExceptionsFound {
                exceptions: chunk.to_vec(),
            })
        })
        .collect()
}

fn new_payout(run: &ReconciliationRun, payout: &PayoutReconciled) -> Vec<ReconciliationEvent> {
    if run.payouts.contains_key(&payout.payout_id) {
        return Vec::new();
    }
    vec![ReconciliationEvent::PayoutReconciled(payout.clone())]
}

fn resolve_exception(
    run: &ReconciliationRun,
    resolve: &ResolveException,
) -> Result<Vec<ReconciliationEvent>, DomainError> {
    let exception_id = resolve.exception_id;
    match run.exceptions.get(&exception_id) {
        None => Err(DomainError::ReconciliationExceptionNotFound {
            exception_id: exception_id.to_string(),
        }),
        Some(true) => Err(DomainError::ReconciliationExceptionAlreadyResolved {
            exception_id: exception_id.to_string(),
        }),
        Some(false) => Ok(vec![ReconciliationEvent::ReconciliationExceptionResolved(
            ReconciliationExceptionResolved {
                exception_id,
                reason: resolve.reason.clone(),
                resolved_by: resolve.resolved_by.clone(),
                resolved_at: resolve.resolved_at,
            },
        )]),
    }
}
