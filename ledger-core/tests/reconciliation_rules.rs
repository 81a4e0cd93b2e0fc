//! The rules of a reconciliation run, Given / When / Then.

mod support;

use chrono::{DateTime, Utc};
use ledger_core::ids::*;
use ledger_core::reconciliation::*;
use ledger_core::DomainError;
use support::*;

fn started() -> ReconciliationRunStarted {
    ReconciliationRunStarted {
        environment: Environment::Test,
        source: ReconciliationSource::StripePayouts,
        file_name: None,
        file_sha256: "00".repeat(32),
        started_by: text("cli:finance"),
        started_at: at(9),
        availability_days: 7,
    }
}

fn exception(n: u128) -> ReconciliationException {
    ReconciliationException {
        exception_id: ReconciliationExceptionId::from_uuid(uuid::Uuid::from_u128(n)),
        class: ExceptionClass::MissingFromLedger,
        detail: text("the ledger has no capture ch_1"),
        line_number: Some(n as u64 + 1),
        payout_id: Some(PayoutId::parse("po_1").unwrap()),
        payment_id: None,
        item: None,
        report: None,
        ledger: None,
    }
}

fn given(commands: &[ReconciliationCommand]) -> ReconciliationRunState {
    commands
        .iter()
        .fold(ReconciliationRunState::default(), |state, command| {
            let events = decide(&state, command).expect("accepted");
            events.iter().fold(state, evolve)
        })
}

fn complete(at_time: DateTime<Utc>) -> ReconciliationCommand {
    ReconciliationCommand::Complete {
        lines: 10,
        matched_lines: 7,
        completed_at: at_time,
    }
}

fn resolve(n: u128) -> ReconciliationCommand {
    ReconciliationCommand::ResolveException(ResolveException {
        exception_id: ReconciliationExceptionId::from_uuid(uuid::Uuid::from_u128(n)),
        reason: text("webhook replayed from the dashboard"),
        resolved_by: text("key:finance"),
        resolved_at: at(12),
    })
}

fn rule_of(state: &ReconciliationRunState, command: &ReconciliationCommand) -> &'static str {
    decide(state, command).expect_err("refused").rule()
}

#[test]
fn a_file_is_imported_once() {
    let state = given(&[ReconciliationCommand::Start(started())]);
    assert_eq!(
        rule_of(&state, &ReconciliationCommand::Start(started())),
        "reconciliation_run_already_started"
    );
}

#[test]
fn findings_are_recorded_once_in_bounded_events_and_counted_in_the_summary() {
    let exceptions: Vec<_> = (0..60).map(exception).collect();
    let state = given(&[ReconciliationCommand::Start(started())]);
    let record = ReconciliationCommand::RecordExceptions {
        exceptions: exceptions.clone(),
    };
    let events = decide(&state, &record).expect("accepted");
    assert_eq!(events.len(), 3, "60 findings in events of at most 25");
    let state = events.iter().fold(state, evolve);
    assert!(
        decide(&state, &record).expect("accepted").is_empty(),
        "recording the same findings again records nothing (a resumed import)"
    );
    let state = given_on(state, &[complete(at(10))]);
    let summary = state
        .run
        .as_ref()
        .and_then(|run| run.summary.clone())
        .expect("completed");
    assert_eq!(summary.exceptions, 60);
    assert_eq!(summary.lines, 10);
}

fn given_on(
    state: ReconciliationRunState,
    commands: &[ReconciliationCommand],
) -> ReconciliationRunState {
    commands.iter().fold(state, |state, command| {
        let events = decide(&state, command).expect("accepted");
        events.iter().fold(state, evolve)
    })
}

#[test]
fn a_completed_run_records_no_further_findings() {
    let state = given(&[ReconciliationCommand::Start(started()), complete(at(10))]);
    assert_eq!(
        rule_of(
            &state,
            &ReconciliationCommand::RecordExceptions {
                exceptions: vec![exception(1)]
            }
        ),
        "reconciliation_run_already_completed"
    );
    assert_eq!(
        rule_of(&state, &complete(at(11))),
        "reconciliation_run_already_completed"
    );
}

#[test]
fn an_exception_is_resolved_once_and_only_if_it_exists() {
    let state = given(&[
        ReconciliationCommand::Start(started()),
        ReconciliationCommand::RecordExceptions {
            exceptions: vec![exception(1)],
        },
        complete(at(10)),
    ]);
    assert_eq!(
        rule_of(&state, &resolve(2)),
        "reconciliation_exception_not_found"
    );
    let state = given_on(state, &[resolve(1)]);
    let run = state.run.as_ref().expect("run");
    assert!(run.unresolved_exceptions().is_empty());
    assert_eq!(
        rule_of(&state, &resolve(1)),
        "reconciliation_exception_already_resolved"
    );
}

#[test]
fn nothing_but_a_start_is_accepted_before_the_run_exists() {
    let state = ReconciliationRunState::default();
    assert!(matches!(
        decide(&state, &resolve(1)),
        Err(DomainError::ReconciliationRunNotFound)
    ));
}
