//! Reconciliation for finance and auditors: the runs of imported payout reports with their
//! summary and payout verdicts, the exceptions they found (the ledger's side beside the
//! report's), and resolving an exception. Read from the reconciliation read model, so answers
//! may trail the log by the projection lag (`waitForPosition` reads one's own writes).
//!
//! Also the DataLoader behind `SettlementException.reconciliation`: the latest verdict on a
//! payout or batch, for every exception of an answer in one query per key kind.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, SubsecRound, Utc};
use ledger_core::ids::{
    Environment as CoreEnvironment, ReconciliationExceptionId, ReconciliationRunId,
};
use ledger_core::reconciliation::{
    ExceptionClass, PayoutOutcome, ReconciliationCommand, ReconciliationEvent,
    ReconciliationSource as CoreReconciliationSource, ResolveException, RunStatus,
};
use ledger_projections::read_models::reconciliation::{
    self as read_model, ExceptionCursor, ReconciliationExceptionRow, ReconciliationPayoutRow,
    ReconciliationRunRow, RunCursor,
};
use ledger_projections::Projection;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::context::{caller, state};
use super::mutation::command_context;
use super::parse;
use super::read_models::convert;
use super::read_models::page::{self, decode_cursor, encode_cursor, page_of, page_size, PageInfo};
use super::scalars::{DecimalText, Position};
use super::types::{same_variants, Environment, LedgerEvent};
use crate::auth::Permission;
use crate::error::{ApiError, ApiResult, IntoGraphql};

/// Every way the report and the ledger can disagree (ledger-core's `ExceptionClass`).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ReconciliationExceptionClass {
    /// In the report, but the ledger has no such capture, refund or dispute.
    MissingFromLedger,
    /// In the ledger, unsettled past its expected availability, yet in no payout.
    MissingFromPayout,
    AmountMismatch,
    FeeMismatch,
    CurrencyMismatch,
    /// A payout's lines do not add up to the payout the ledger knows.
    PayoutTotalMismatch,
    /// The ledger settled the item in another batch than this payout's.
    SettledElsewhere,
    /// A line of a kind the ledger keeps no item for.
    UnsupportedCategory,
    /// Every line matched, yet the ledger's settlement rules refused the payout's batch.
    BatchRefused,
    /// A line that could not be read.
    InvalidRow,
}

same_variants!(
    ExceptionClass,
    ReconciliationExceptionClass {
        MissingFromLedger,
        MissingFromPayout,
        AmountMismatch,
        FeeMismatch,
        CurrencyMismatch,
        PayoutTotalMismatch,
        SettledElsewhere,
        UnsupportedCategory,
        BatchRefused,
        InvalidRow,
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ReconciliationRunStatus {
    /// The import is still recording what it finds.
    Running,
    Completed,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ReconciliationSource {
    /// Stripe's itemized payout reconciliation report.
    StripePayouts,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ReconciliationPayoutOutcome {
    /// Every line matched and the total agrees: the batch and its payout are in the ledger.
    Proven,
    /// At least one exception: nothing was recorded for this payout.
    Unproven,
}

same_variants!(RunStatus, ReconciliationRunStatus { Running, Completed });

same_variants!(
    CoreReconciliationSource,
    ReconciliationSource { StripePayouts }
);

same_variants!(
    PayoutOutcome,
    ReconciliationPayoutOutcome { Proven, Unproven }
);

#[derive(InputObject, Clone, Debug, Default)]
pub struct ReconciliationRunFilter {
    pub status: Option<ReconciliationRunStatus>,
}

/// Which exceptions to list; every field narrows the list, omitted ones do not.
#[derive(InputObject, Clone, Debug, Default)]
pub struct ReconciliationExceptionFilter {
    pub run_id: Option<Uuid>,
    pub class: Option<ReconciliationExceptionClass>,
    /// True for resolved exceptions only, false for those still open.
    pub resolved: Option<bool>,
    pub payout_id: Option<String>,
    pub payment_id: Option<Uuid>,
}

/// Which of a run's exceptions to list.
#[derive(InputObject, Clone, Debug, Default)]
pub struct ReconciliationRunExceptionFilter {
    pub class: Option<ReconciliationExceptionClass>,
    pub resolved: Option<bool>,
    pub payout_id: Option<String>,
    pub payment_id: Option<Uuid>,
}

impl From<ReconciliationExceptionFilter> for read_model::ExceptionFilter {
    fn from(filter: ReconciliationExceptionFilter) -> Self {
        read_model::ExceptionFilter {
            run_id: filter.run_id,
            class: filter.class.map(Into::into),
            resolved: filter.resolved,
            payout_id: filter.payout_id,
            payment_id: filter.payment_id,
        }
    }
}

/// What a run found, kept current: `unresolvedExceptions` drops as finance resolves them.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationRunSummary {
    /// Report lines read; null until the run completes.
    pub lines: Option<i64>,
    /// Report lines that matched the ledger; null until the run completes.
    pub matched_lines: Option<i64>,
    pub exceptions: i64,
    pub unresolved_exceptions: i64,
    pub payouts_proven: i64,
    pub payouts_unproven: i64,
    /// Settlement batches this run recorded for proven payouts.
    pub batches_recorded: i64,
}

/// One imported report.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct ReconciliationRun {
    pub id: Uuid,
    pub environment: Environment,
    pub source: ReconciliationSource,
    pub file_name: Option<String>,
    /// Lowercase hex SHA-256 of the file: the same file always makes the same run.
    pub file_sha256: String,
    pub started_by: String,
    pub started_at: DateTime<Utc>,
    /// How long after a capture the gateway is expected to have paid it out.
    pub availability_days: i32,
    pub status: ReconciliationRunStatus,
    pub completed_at: Option<DateTime<Utc>>,
    pub summary: ReconciliationRunSummary,
    pub version: Position,
    /// The log position of the run's last event.
    pub last_position: Position,
    #[graphql(skip)]
    core_environment: CoreEnvironment,
    #[graphql(skip)]
    payouts: Arc<DataLoader<RunPayoutsLoader>>,
}

#[ComplexObject]
impl ReconciliationRun {
    /// The verdict on each payout of the report, in the order the run judged them.
    async fn payouts(&self) -> async_graphql::Result<Vec<ReconciliationPayout>> {
        let payouts = self.payouts.load_one(self.id).await.graphql()?;
        Ok(payouts.unwrap_or_default())
    }

    /// The run's exceptions in report order, a page at a time.
    async fn exceptions(
        &self,
        context: &Context<'_>,
        filter: Option<ReconciliationRunExceptionFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ReconciliationExceptionConnection> {
        let run = async {
            let size = page_size(first)?;
            let pool = &state(context)?.pool;
            let filter = filter.unwrap_or_default();
            let filter = ReconciliationExceptionFilter {
                run_id: Some(self.id),
                class: filter.class,
                resolved: filter.resolved,
                payout_id: filter.payout_id,
                payment_id: filter.payment_id,
            };
            list_exceptions(pool, self.core_environment, filter, size, after.as_deref()).await
        };
        run.await.graphql()
    }
}

impl ReconciliationRun {
    fn new(
        row: ReconciliationRunRow,
        environment: CoreEnvironment,
        payouts: &Arc<DataLoader<RunPayoutsLoader>>,
    ) -> ApiResult<Self> {
        Ok(ReconciliationRun {
            id: row.run_id,
            environment: row.environment.into(),
            source: row.source.into(),
            status: row.status.into(),
            summary: ReconciliationRunSummary {
                lines: row.lines,
                matched_lines: row.matched_lines,
                exceptions: row.exceptions,
                unresolved_exceptions: row.unresolved_exceptions,
                payouts_proven: row.payouts_proven,
                payouts_unproven: row.payouts_unproven,
                batches_recorded: row.batches_recorded,
            },
            version: convert::position(row.version)?,
            last_position: convert::position(row.last_position)?,
            file_name: row.file_name,
            file_sha256: row.file_sha256,
            started_by: row.started_by,
            started_at: row.started_at,
            availability_days: row.availability_days,
            completed_at: row.completed_at,
            core_environment: environment,
            payouts: Arc::clone(payouts),
        })
    }
}

/// A run's verdict on one payout of the report.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationPayout {
    pub payout_id: String,
    /// The settlement batch that holds (or, for a proven payout, now holds) the payout.
    pub batch_id: Uuid,
    pub currency: String,
    pub line_count: i64,
    pub exception_count: i64,
    /// The report's totals over the payout's lines.
    pub gross: DecimalText,
    pub fees: DecimalText,
    pub net: DecimalText,
    /// The payout amount the ledger knew before the run, if any.
    pub ledger_amount: Option<DecimalText>,
    pub outcome: ReconciliationPayoutOutcome,
    /// Whether this run recorded the batch (false when the ledger already had it).
    pub batch_recorded: bool,
    pub reconciled_at: DateTime<Utc>,
}

impl ReconciliationPayout {
    fn new(row: ReconciliationPayoutRow) -> ApiResult<Self> {
        let currency = row.currency.as_str();
        Ok(ReconciliationPayout {
            gross: convert::money(row.gross, currency),
            fees: convert::money(row.fees, currency),
            net: convert::money(row.net, currency),
            ledger_amount: row
                .ledger_amount
                .map(|amount| convert::money(amount, currency)),
            outcome: row.outcome.into(),
            payout_id: row.payout_id,
            batch_id: row.batch_id,
            currency: row.currency,
            line_count: row.line_count,
            exception_count: row.exception_count,
            batch_recorded: row.batch_recorded,
            reconciled_at: row.reconciled_at,
        })
    }
}

/// The report's side of an exception, as the file wrote it (it may not even parse).
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct ReconciliationReportSide {
    pub balance_transaction_id: Option<String>,
    pub reporting_category: Option<String>,
    pub currency: Option<String>,
    pub gross: Option<String>,
    pub fee: Option<String>,
    pub net: Option<String>,
    pub available_on: Option<String>,
}

/// The ledger's side of an exception.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationLedgerSide {
    pub currency: String,
    /// The captured, refunded or disputed amount.
    pub amount: DecimalText,
    pub fee: Option<DecimalText>,
    /// The batch that settled the item, if one did.
    pub batch_id: Option<Uuid>,
    /// When the ledger recorded the item.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// One disagreement between the report and the ledger, and its resolution.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationException {
    pub id: Uuid,
    pub run_id: Uuid,
    pub class: ReconciliationExceptionClass,
    /// What is wrong, in words finance can act on.
    pub detail: String,
    /// The report line (1 is the header), when the exception is about a line.
    pub line_number: Option<i64>,
    pub payout_id: Option<String>,
    pub payment_id: Option<Uuid>,
    /// CAPTURE, REFUND or DISPUTE.
    pub item_kind: Option<String>,
    /// The capture, refund or dispute id.
    pub item_id: Option<String>,
    /// Null when the exception is not about a report line.
    pub report: Option<ReconciliationReportSide>,
    /// Null when the ledger has nothing to set beside the report.
    pub ledger: Option<ReconciliationLedgerSide>,
    /// When the run recorded the finding.
    pub found_at: DateTime<Utc>,
    pub resolved: bool,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution_reason: Option<String>,
    #[graphql(skip)]
    cursor: ExceptionCursor,
}

impl ReconciliationException {
    fn new(row: ReconciliationExceptionRow) -> ApiResult<Self> {
        let report = ReconciliationReportSide {
            balance_transaction_id: row.report_balance_transaction_id,
            reporting_category: row.report_reporting_category,
            currency: row.report_currency,
            gross: row.report_gross,
            fee: row.report_fee,
            net: row.report_net,
            available_on: row.report_available_on,
        };
        let has_report = [
            &report.balance_transaction_id,
            &report.reporting_category,
            &report.currency,
            &report.gross,
            &report.fee,
            &report.net,
            &report.available_on,
        ]
        .iter()
        .any(|field| field.is_some());
        let ledger = match (row.ledger_currency, row.ledger_amount) {
            (Some(currency), Some(amount)) => Some(ReconciliationLedgerSide {
                amount: convert::money(amount, &currency),
                fee: row.ledger_fee.map(|fee| convert::money(fee, &currency)),
                batch_id: row.ledger_batch_id,
                recorded_at: row.ledger_recorded_at,
                currency,
            }),
            _ => None,
        };
        Ok(ReconciliationException {
            id: row.exception_id,
            run_id: row.run_id,
            class: row.class.into(),
            detail: row.detail,
            line_number: row.line_number,
            payout_id: row.payout_id,
            payment_id: row.payment_id,
            item_kind: row.item_kind.map(|kind| kind.as_str().to_owned()),
            item_id: row.item_id,
            report: has_report.then_some(report),
            ledger,
            found_at: row.found_at,
            resolved: row.resolved_at.is_some(),
            resolved_at: row.resolved_at,
            resolved_by: row.resolved_by,
            resolution_reason: row.resolution_reason,
            cursor: (row.found_position, row.ordinal),
        })
    }
}

#[derive(SimpleObject, Clone)]
pub struct ReconciliationRunEdge {
    pub cursor: String,
    pub node: ReconciliationRun,
}

#[derive(SimpleObject, Clone)]
pub struct ReconciliationRunConnection {
    pub edges: Vec<ReconciliationRunEdge>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject, Clone)]
pub struct ReconciliationExceptionEdge {
    pub cursor: String,
    pub node: ReconciliationException,
}

#[derive(SimpleObject, Clone)]
pub struct ReconciliationExceptionConnection {
    pub edges: Vec<ReconciliationExceptionEdge>,
    pub page_info: PageInfo,
}

/// What `resolveReconciliationException` returns: the exception as the read model will show
/// it, the events recorded (for a replay, those the original call recorded) and the log
/// position reached.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationExceptionResult {
    pub exception: ReconciliationException,
    pub events: Vec<LedgerEvent>,
    pub position: Position,
    pub replayed: bool,
}

/// The payouts of the runs of one answer. The runs were already filtered by the caller's
/// environment; the loader filters again, as it is cheap.
pub struct RunPayoutsLoader {
    pool: PgPool,
    environment: CoreEnvironment,
}

impl Loader<Uuid> for RunPayoutsLoader {
    type Value = Vec<ReconciliationPayout>;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> ApiResult<HashMap<Uuid, Vec<ReconciliationPayout>>> {
        let rows = read_model::payouts_of(&self.pool, self.environment, keys).await?;
        let mut grouped: HashMap<Uuid, Vec<ReconciliationPayout>> = HashMap::new();
        for row in rows {
            grouped
                .entry(row.run_id)
                .or_default()
                .push(ReconciliationPayout::new(row)?);
        }
        Ok(grouped)
    }
}

fn run_payouts_loader(
    pool: &PgPool,
    environment: CoreEnvironment,
) -> Arc<DataLoader<RunPayoutsLoader>> {
    Arc::new(DataLoader::new(
        RunPayoutsLoader {
            pool: pool.clone(),
            environment,
        },
        tokio::spawn,
    ))
}

async fn list_runs(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: ReconciliationRunFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<ReconciliationRunConnection> {
    let after = decode_cursor::<RunCursor>(after)?;
    let filter = read_model::RunFilter {
        status: filter.status.map(Into::into),
    };
    let rows = read_model::list_runs(pool, environment, &filter, after, size + 1).await?;
    let payouts = run_payouts_loader(pool, environment);
    let nodes = rows
        .into_iter()
        .map(|row| ReconciliationRun::new(row, environment, &payouts))
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| encode_cursor::<RunCursor>((node.started_at, node.id)),
        |cursor, node| ReconciliationRunEdge { cursor, node },
    );
    Ok(ReconciliationRunConnection { edges, page_info })
}

async fn list_exceptions(
    pool: &PgPool,
    environment: CoreEnvironment,
    filter: ReconciliationExceptionFilter,
    size: usize,
    after: Option<&str>,
) -> ApiResult<ReconciliationExceptionConnection> {
    let after = decode_cursor::<ExceptionCursor>(after)?;
    let rows =
        read_model::list_exceptions(pool, environment, &filter.into(), after, size + 1).await?;
    let nodes = rows
        .into_iter()
        .map(ReconciliationException::new)
        .collect::<ApiResult<Vec<_>>>()?;
    let (edges, page_info) = page_of(
        nodes,
        size,
        |node| encode_cursor::<ExceptionCursor>(node.cursor),
        |cursor, node| ReconciliationExceptionEdge { cursor, node },
    );
    Ok(ReconciliationExceptionConnection { edges, page_info })
}

#[derive(Default)]
pub struct ReconciliationQuery;

#[Object]
impl ReconciliationQuery {
    /// Reconciliation runs, newest first, a page at a time.
    async fn reconciliation_runs(
        &self,
        context: &Context<'_>,
        filter: Option<ReconciliationRunFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<ReconciliationRunConnection> {
        let run = async {
            let principal = caller(context, Permission::ReadReconciliations)?;
            let size = page_size(first)?;
            let app = state(context)?;
            page::wait_for_position(app, wait_for_position, &[Projection::Reconciliation]).await?;
            let filter = filter.unwrap_or_default();
            list_runs(
                &app.pool,
                principal.environment,
                filter,
                size,
                after.as_deref(),
            )
            .await
        };
        run.await.graphql()
    }

    /// One run with its summary, payouts and exceptions; null when no such run exists in the
    /// caller's environment.
    async fn reconciliation_run(
        &self,
        context: &Context<'_>,
        id: Uuid,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<Option<ReconciliationRun>> {
        let run = async {
            let principal = caller(context, Permission::ReadReconciliations)?;
            let app = state(context)?;
            page::wait_for_position(app, wait_for_position, &[Projection::Reconciliation]).await?;
            let row = read_model::run(&app.pool, principal.environment, id).await?;
            let payouts = run_payouts_loader(&app.pool, principal.environment);
            row.map(|row| ReconciliationRun::new(row, principal.environment, &payouts))
                .transpose()
        };
        run.await.graphql()
    }

    /// Exceptions in the order they were found (oldest first, each run's in report order), a
    /// page at a time: finance's work list with `filter: {resolved: false}`.
    async fn reconciliation_exceptions(
        &self,
        context: &Context<'_>,
        filter: Option<ReconciliationExceptionFilter>,
        first: Option<i32>,
        after: Option<String>,
        wait_for_position: Option<Position>,
    ) -> async_graphql::Result<ReconciliationExceptionConnection> {
        let run = async {
            let principal = caller(context, Permission::ReadReconciliations)?;
            let size = page_size(first)?;
            let app = state(context)?;
            page::wait_for_position(app, wait_for_position, &[Projection::Reconciliation]).await?;
            let filter = filter.unwrap_or_default();
            list_exceptions(
                &app.pool,
                principal.environment,
                filter,
                size,
                after.as_deref(),
            )
            .await
        };
        run.await.graphql()
    }
}

#[derive(InputObject, Serialize)]
pub struct ResolveReconciliationExceptionInput {
    pub idempotency_key: String,
    pub exception_id: Uuid,
    /// Why the exception needs nothing more (what was done about it).
    pub reason: String,
}

#[derive(Default)]
pub struct ReconciliationMutation;

#[Object]
impl ReconciliationMutation {
    /// Marks an exception of a reconciliation run resolved, with the reason; the caller's key
    /// is recorded as who resolved it. An exception is resolved once.
    async fn resolve_reconciliation_exception(
        &self,
        context: &Context<'_>,
        input: ResolveReconciliationExceptionInput,
    ) -> async_graphql::Result<ReconciliationExceptionResult> {
        resolve_exception(context, input).await.graphql()
    }
}

async fn resolve_exception(
    context: &Context<'_>,
    input: ResolveReconciliationExceptionInput,
) -> ApiResult<ReconciliationExceptionResult> {
    let principal = caller(context, Permission::RunReconciliation)?;
    let app = state(context)?;
    let command_context = command_context(
        &principal,
        "resolveReconciliationException",
        &input,
        &input.idempotency_key,
    )?;
    let reason = parse::short_text("reason", &input.reason)?;
    // The run of an exception is known only to the read model; an exception it does not show
    // yet is not found, which a retry after the projection lag answers.
    let row = read_model::exception(&app.pool, principal.environment, input.exception_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no reconciliation exception {} in this environment",
                input.exception_id
            ))
        })?;
    let run_id = ReconciliationRunId::from_uuid(row.run_id);
    let command = ReconciliationCommand::ResolveException(ResolveException {
        exception_id: ReconciliationExceptionId::from_uuid(input.exception_id),
        reason,
        resolved_by: parse::short_text("resolvedBy", &command_context.actor_id)?,
        // The database keeps microseconds: recorded so, the event, the answer and the read
        // model all say the same time.
        resolved_at: command_context.occurred_at.trunc_subsecs(6),
    });
    let handled = app
        .handler
        .handle_reconciliation(run_id, &command, &command_context)
        .await?;
    // The read model shows the row with the recorded resolution once it has applied the
    // event: the same row is built here from the event, for a replay from the original one.
    let mut exception = ReconciliationException::new(row)?;
    for event in &handled.events {
        if event.stream_id != run_id.as_uuid() {
            continue;
        }
        let decoded = ledger_store::commands::decode::<ReconciliationEvent>(event)?;
        if let ReconciliationEvent::ReconciliationExceptionResolved(resolved) = decoded {
            if resolved.exception_id.as_uuid() == exception.id {
                exception.resolved = true;
                exception.resolved_at = Some(resolved.resolved_at);
                exception.resolved_by = Some(resolved.resolved_by.to_string());
                exception.resolution_reason = Some(resolved.reason.to_string());
            }
        }
    }
    Ok(ReconciliationExceptionResult {
        exception,
        events: handled.events.iter().map(LedgerEvent::from).collect(),
        position: Position(handled.position),
        replayed: handled.replayed,
    })
}

/// The latest reconciliation verdict on a payout: what the settlement exceptions view shows
/// beside a batch or payout finance is looking at.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationVerdict {
    pub run_id: Uuid,
    pub payout_id: String,
    pub batch_id: Uuid,
    pub outcome: ReconciliationPayoutOutcome,
    pub exception_count: i64,
    pub reconciled_at: DateTime<Utc>,
}

impl ReconciliationVerdict {
    fn new(row: &ReconciliationPayoutRow) -> ApiResult<Self> {
        Ok(ReconciliationVerdict {
            run_id: row.run_id,
            payout_id: row.payout_id.clone(),
            batch_id: row.batch_id,
            outcome: row.outcome.into(),
            exception_count: row.exception_count,
            reconciled_at: row.reconciled_at,
        })
    }
}

/// What a verdict is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VerdictKey {
    Payout(String),
    Batch(Uuid),
}

/// The latest verdicts of one answer's settlement exceptions, within the caller's environment.
pub struct VerdictLoader {
    pool: PgPool,
    environment: CoreEnvironment,
}

impl VerdictLoader {
    pub fn new(pool: &PgPool, environment: CoreEnvironment) -> Arc<DataLoader<VerdictLoader>> {
        Arc::new(DataLoader::new(
            VerdictLoader {
                pool: pool.clone(),
                environment,
            },
            tokio::spawn,
        ))
    }
}

impl Loader<VerdictKey> for VerdictLoader {
    type Value = ReconciliationVerdict;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[VerdictKey],
    ) -> ApiResult<HashMap<VerdictKey, ReconciliationVerdict>> {
        let mut payout_ids = Vec::new();
        let mut batch_ids = Vec::new();
        for key in keys {
            match key {
                VerdictKey::Payout(payout_id) => payout_ids.push(payout_id.clone()),
                VerdictKey::Batch(batch_id) => batch_ids.push(*batch_id),
            }
        }
        let mut verdicts = HashMap::new();
        if !payout_ids.is_empty() {
            let rows =
                read_model::latest_verdicts_by_payout(&self.pool, self.environment, &payout_ids)
                    .await?;
            for row in &rows {
                verdicts.insert(
                    VerdictKey::Payout(row.payout_id.clone()),
                    ReconciliationVerdict::new(row)?,
                );
            }
        }
        if !batch_ids.is_empty() {
            let rows =
                read_model::latest_verdicts_by_batch(&self.pool, self.environment, &batch_ids)
                    .await?;
            for row in &rows {
                verdicts.insert(
                    VerdictKey::Batch(row.batch_id),
                    ReconciliationVerdict::new(row)?,
                );
            }
        }
        Ok(verdicts)
    }
}
