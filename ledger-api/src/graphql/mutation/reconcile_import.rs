//! `importStripePayoutReport`: finance imports Stripe's payout report through the API. The
//! request body limit bounds what fits (a few thousand lines); larger files go through
//! `ledger reconcile stripe-payouts`, which streams.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::Utc;

use super::command_context;
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};
use crate::graphql::context::{caller, state};
use crate::graphql::scalars::Position;
use ledger_stripe::reconcile::{import_and_apply_parked, ImportRequest, Progress};

/// The longest availability delay accepted, in days.
const MAX_AVAILABILITY_DAYS: i32 = 90;
const DEFAULT_AVAILABILITY_DAYS: i32 = 7;

#[derive(InputObject, serde::Serialize)]
pub struct ImportStripePayoutReportInput {
    pub idempotency_key: String,
    /// The report's CSV text, header first.
    pub csv: String,
    pub file_name: Option<String>,
    /// Days after a capture by which it should be in a payout (default 7).
    pub availability_days: Option<i32>,
}

/// What an import found; the run itself is queryable by `runId`.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationImportResult {
    pub run_id: uuid::Uuid,
    /// The same file was imported before: nothing new was recorded.
    pub already_imported: bool,
    pub lines: u64,
    pub matched_lines: u64,
    pub exceptions: u64,
    pub payouts_proven: u64,
    pub payouts_unproven: u64,
    pub batches_recorded: u64,
    pub position: Position,
}

#[derive(Default)]
pub struct ReconciliationImportMutation;

#[Object]
impl ReconciliationImportMutation {
    /// Imports Stripe's itemized payout reconciliation report as a reconciliation run: every
    /// line matched against the ledger or recorded as an exception; every payout whose lines
    /// all match recorded as a settlement batch and its payout. The same file imported again
    /// records nothing and answers with the first run.
    async fn import_stripe_payout_report(
        &self,
        context: &Context<'_>,
        input: ImportStripePayoutReportInput,
    ) -> async_graphql::Result<ReconciliationImportResult> {
        import(context, input).await.graphql()
    }
}

async fn import(
    context: &Context<'_>,
    input: ImportStripePayoutReportInput,
) -> ApiResult<ReconciliationImportResult> {
    let principal = caller(context, Permission::RunReconciliation)?;
    let app = state(context)?;
    let availability_days = input.availability_days.unwrap_or(DEFAULT_AVAILABILITY_DAYS);
    if !(0..=MAX_AVAILABILITY_DAYS).contains(&availability_days) {
        return Err(ApiError::validation(
            "availabilityDays",
            format!("give 0 to {MAX_AVAILABILITY_DAYS} days"),
        ));
    }
    let commands = command_context(
        &principal,
        "importStripePayoutReport",
        &input,
        &input.idempotency_key,
    )?;
    let request = ImportRequest {
        environment: principal.environment,
        file_name: input.file_name.clone(),
        actor_id: commands.actor_id.clone(),
        actor_role: commands.actor_role.clone(),
        availability_days: u32::try_from(availability_days).unwrap_or(0),
        now: Utc::now(),
        idempotency: commands.idempotency.clone(),
    };
    let bytes = input.csv.into_bytes();
    let mut ignore = |_: Progress| {};
    let outcome = import_and_apply_parked(
        &app.handler,
        app.webhooks.as_ref(),
        &request,
        || Ok(std::io::Cursor::new(bytes.as_slice())),
        &mut ignore,
    )
    .await?;
    let summary = outcome.summary;
    Ok(ReconciliationImportResult {
        run_id: outcome.run_id.as_uuid(),
        already_imported: outcome.already_imported,
        lines: summary.lines,
        matched_lines: summary.matched_lines,
        exceptions: summary.exceptions,
        payouts_proven: summary.payouts_proven,
        payouts_unproven: summary.payouts_unproven,
        batches_recorded: summary.batches_recorded,
        position: Position(outcome.position),
    })
}
