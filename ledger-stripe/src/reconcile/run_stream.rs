//! The run's stream as an import writes it: every event through the command handler and the
//! reconciliation rules, findings held until there are enough for a few events.
//!
//! The run is opened (started, or loaded when a previous import of the same file was
//! interrupted), fed findings and payout verdicts, and completed. Its state is kept as the
//! handler returns it, so each command is decided on what the log holds without reading it
//! again.

use chrono::{DateTime, Utc};
use ledger_core::ids::{PayoutId, ReconciliationRunId};
use ledger_core::reconciliation::{
    PayoutReconciled, ReconciliationCommand, ReconciliationException, ReconciliationRunStarted,
    ReconciliationRunState, ReconciliationSource, RunStatus,
};
use ledger_store::commands::{CommandContext, CommandHandler};

use super::error::ReconcileError;
use super::import::{ImportOutcome, ImportRequest};
use super::matching::findings::bounded_text;
use super::report;

/// The longest file name a run keeps.
const MAX_FILE_NAME_CHARS: usize = 200;
/// Exceptions held before they are recorded: a few events' worth, so memory stays bounded and
/// a run is not one event per finding.
const EXCEPTION_FLUSH: usize = 500;

pub struct RunStream<'a> {
    pub handler: &'a CommandHandler,
    pub request: &'a ImportRequest,
    pub run_id: ReconciliationRunId,
    state: ReconciliationRunState,
    /// The context of every command of the run; settlement commands add their own key.
    pub context: CommandContext,
    pending: Vec<ReconciliationException>,
    position: u64,
}

impl<'a> RunStream<'a> {
    /// Loads the run, and starts it when the log does not hold it yet. Only the start claims
    /// the caller's idempotency key: the same key sent with another file is then refused.
    pub async fn open(
        handler: &'a CommandHandler,
        request: &'a ImportRequest,
        run_id: ReconciliationRunId,
        sha256: &str,
    ) -> Result<RunStream<'a>, ReconcileError> {
        let context = CommandContext {
            environment: request.environment,
            actor_id: request.actor_id.clone(),
            actor_role: request.actor_role.clone(),
            correlation_id: run_id.as_uuid(),
            causation_id: None,
            occurred_at: request.now,
            idempotency: None,
        };
        let (state, history) = handler
            .load_with_history::<ReconciliationRunState>(run_id.as_uuid())
            .await?;
        // The run id is made from the environment too: no run of the other one shares it.
        let mut run = RunStream {
            handler,
            request,
            run_id,
            state,
            context,
            pending: Vec::new(),
            position: history.last().map_or(0, |event| event.position),
        };
        if run.state.run.is_none() {
            let started = ReconciliationRunStarted {
                environment: request.environment,
                source: ReconciliationSource::StripePayouts,
                file_name: request
                    .file_name
                    .as_deref()
                    .and_then(|name| report::bounded_text(name, MAX_FILE_NAME_CHARS)),
                file_sha256: sha256.to_owned(),
                started_by: bounded_text(&request.actor_id),
                started_at: request.now,
                availability_days: request.availability_days,
            };
            run.context.idempotency = request.idempotency.clone();
            let started = run.command(ReconciliationCommand::Start(started)).await;
            run.context.idempotency = None;
            started?;
        }
        Ok(run)
    }

    /// The outcome of a run a previous import completed: nothing is left to do.
    pub fn finished(&self) -> Option<ImportOutcome> {
        let run = self.state.run.as_ref()?;
        (run.status == RunStatus::Completed).then(|| ImportOutcome {
            run_id: self.run_id,
            already_imported: true,
            summary: run.summary.clone().unwrap_or_default(),
            position: self.position,
        })
    }

    /// The patience the run started with: a resumed import keeps it, whatever it is asked now.
    pub fn availability_days(&self) -> u32 {
        self.state
            .run
            .as_ref()
            .map_or(self.request.availability_days, |run| {
                run.started.availability_days
            })
    }

    pub fn started_at(&self) -> DateTime<Utc> {
        self.state
            .run
            .as_ref()
            .map_or(self.request.now, |run| run.started.started_at)
    }

    /// Whether the run has its verdict on this payout already (an interrupted import's).
    pub fn judged(&self, payout_id: &PayoutId) -> bool {
        self.state
            .run
            .as_ref()
            .is_some_and(|run| run.payouts.contains_key(payout_id))
    }

    async fn command(&mut self, command: ReconciliationCommand) -> Result<(), ReconcileError> {
        let state = std::mem::take(&mut self.state);
        let (state, events) = self
            .handler
            .advance_reconciliation(self.run_id, state, &command, &self.context)
            .await?;
        self.state = state;
        if let Some(last) = events.last() {
            self.position = last.position;
        }
        Ok(())
    }

    /// Holds a finding, recording the held ones once there are enough.
    pub async fn found(
        &mut self,
        exception: ReconciliationException,
    ) -> Result<(), ReconcileError> {
        self.pending.push(exception);
        if self.pending.len() >= EXCEPTION_FLUSH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Records the findings held so far.
    pub async fn flush(&mut self) -> Result<(), ReconcileError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let exceptions = std::mem::take(&mut self.pending);
        self.command(ReconciliationCommand::RecordExceptions { exceptions })
            .await
    }

    /// Records a payout's verdict after its findings, so that a payout is judged only once its
    /// findings are on record.
    pub async fn judge(&mut self, verdict: PayoutReconciled) -> Result<(), ReconcileError> {
        self.flush().await?;
        self.command(ReconciliationCommand::RecordPayout(verdict))
            .await
    }

    /// Closes the run with its summary.
    pub async fn complete(
        mut self,
        lines: u64,
        matched_lines: u64,
    ) -> Result<ImportOutcome, ReconcileError> {
        self.command(ReconciliationCommand::Complete {
            lines,
            matched_lines,
            completed_at: Utc::now(),
        })
        .await?;
        let summary = self
            .state
            .run
            .as_ref()
            .and_then(|run| run.summary.clone())
            .unwrap_or_default();
        Ok(ImportOutcome {
            run_id: self.run_id,
            already_imported: false,
            summary,
            position: self.position,
        })
    }
}
