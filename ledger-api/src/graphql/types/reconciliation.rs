//! The reconciliation types: runs of imported payout reports with their summary and payout
//! verdicts, the exceptions they found (the ledger's side beside the report's), their filters,
//! connections and enums, each built from its read-model row or converted from the core's
//! enum with `From`.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_core::reconciliation::{
    ExceptionClass, PayoutOutcome, ReconciliationSource as CoreReconciliationSource, RunStatus,
};
use ledger_projections::read_models::reconciliation::{
    self as read_model, ExceptionCursor, ReconciliationExceptionRow, ReconciliationPayoutRow,
    ReconciliationRunRow,
};
use uuid::Uuid;

use super::{same_variants, Environment, LedgerEvent};
use crate::error::{ApiResult, IntoGraphql};
use crate::graphql::loaders::reconciliation::RunPayoutsLoader;
use crate::graphql::query::read_models::convert;
use crate::graphql::query::read_models::page::PageInfo;
use crate::graphql::query::reconciliation::run_exceptions;
use crate::graphql::scalars::{DecimalText, Position};

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
    pub(crate) core_environment: CoreEnvironment,
    #[graphql(skip)]
    payouts: Arc<DataLoader<RunPayoutsLoader>>,
}

#[ComplexObject]
impl ReconciliationRun {
    /// The verdict on each payout of the report, in the order the run judged them.
    async fn payouts(&self) -> async_graphql::Result<Vec<ReconciliationPayout>> {
        run_payouts(self).await.graphql()
    }

    /// The run's exceptions in report order, a page at a time.
    #[graphql(complexity = "crate::graphql::page_complexity(first, child_complexity)")]
    async fn exceptions(
        &self,
        context: &Context<'_>,
        filter: Option<ReconciliationRunExceptionFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ReconciliationExceptionConnection> {
        run_exceptions(context, self, filter, first, after)
            .await
            .graphql()
    }
}

async fn run_payouts(run: &ReconciliationRun) -> ApiResult<Vec<ReconciliationPayout>> {
    Ok(run.payouts.load_one(run.id).await?.unwrap_or_default())
}

impl ReconciliationRun {
    pub(crate) fn new(
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
    pub(crate) fn new(row: ReconciliationPayoutRow) -> ApiResult<Self> {
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
    pub(crate) cursor: ExceptionCursor,
}

impl ReconciliationException {
    pub(crate) fn new(row: ReconciliationExceptionRow) -> ApiResult<Self> {
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
    pub(crate) fn new(row: &ReconciliationPayoutRow) -> ApiResult<Self> {
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
