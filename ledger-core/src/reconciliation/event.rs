//! What a reconciliation run found, and who resolved what.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::{event_codec, CodecError};
use crate::currency::Currency;
use crate::ids::{Environment, PaymentId, PayoutId, ReconciliationExceptionId, SettlementBatchId};
use crate::money::Money;
use crate::payment::SettledItem;
use crate::stored::stored_names;
use crate::text::ShortText;

/// Where the report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationSource {
    /// Stripe's itemized payout reconciliation report.
    StripePayouts,
}

stored_names!(ReconciliationSource, "reconciliation source" {
    StripePayouts => "stripe_payouts",
});

/// Every way the report and the ledger can disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionClass {
    /// In the report, but the ledger has no such capture, refund or dispute (a webhook never
    /// arrived, or the report names a payment the ledger never saw).
    MissingFromLedger,
    /// In the ledger, unsettled, and past its expected availability, yet in no payout.
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
    /// A line that could not be read; the rest of the file still is.
    InvalidRow,
}

stored_names!(ExceptionClass, "reconciliation exception class" {
    MissingFromLedger => "missing_from_ledger",
    MissingFromPayout => "missing_from_payout",
    AmountMismatch => "amount_mismatch",
    FeeMismatch => "fee_mismatch",
    CurrencyMismatch => "currency_mismatch",
    PayoutTotalMismatch => "payout_total_mismatch",
    SettledElsewhere => "settled_elsewhere",
    UnsupportedCategory => "unsupported_category",
    BatchRefused => "batch_refused",
    InvalidRow => "invalid_row",
});

/// The report's side of an exception, as the file wrote it (it may not even parse).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportSide {
    pub balance_transaction_id: Option<ShortText>,
    pub reporting_category: Option<ShortText>,
    pub currency: Option<ShortText>,
    pub gross: Option<ShortText>,
    pub fee: Option<ShortText>,
    pub net: Option<ShortText>,
    pub available_on: Option<ShortText>,
}

/// The ledger's side of an exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSide {
    pub currency: Currency,
    pub amount: Money,
    pub fee: Option<Money>,
    pub batch_id: Option<SettlementBatchId>,
    /// When the ledger recorded the item (the capture, refund or dispute).
    pub recorded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationException {
    pub exception_id: ReconciliationExceptionId,
    pub class: ExceptionClass,
    /// What is wrong, in words finance can act on.
    pub detail: ShortText,
    /// The report line (1 is the header), when the exception is about a line.
    pub line_number: Option<u64>,
    pub payout_id: Option<PayoutId>,
    pub payment_id: Option<PaymentId>,
    pub item: Option<SettledItem>,
    pub report: Option<ReportSide>,
    pub ledger: Option<LedgerSide>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRunStarted {
    pub environment: Environment,
    pub source: ReconciliationSource,
    pub file_name: Option<ShortText>,
    /// Lowercase hex SHA-256 of the file: the same file always makes the same run.
    pub file_sha256: String,
    pub started_by: ShortText,
    pub started_at: DateTime<Utc>,
    /// How long after a capture the gateway is expected to have paid it out.
    pub availability_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationExceptionsFound {
    pub exceptions: Vec<ReconciliationException>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutOutcome {
    /// Every line matched and the total agrees: the batch and its payout are in the ledger.
    Proven,
    /// At least one exception: nothing was recorded for this payout.
    Unproven,
}

stored_names!(PayoutOutcome, "payout verdict" {
    Proven => "proven",
    Unproven => "unproven",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutReconciled {
    pub payout_id: PayoutId,
    pub batch_id: SettlementBatchId,
    pub currency: Currency,
    pub line_count: u64,
    pub exception_count: u64,
    /// The report's totals over the payout's lines.
    pub gross: Money,
    pub fees: Money,
    pub net: Money,
    /// The payout amount the ledger knew before this run, if any.
    pub ledger_amount: Option<Money>,
    pub outcome: PayoutOutcome,
    /// Whether this run recorded the batch (false when the ledger already had it).
    pub batch_recorded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunSummary {
    pub lines: u64,
    pub matched_lines: u64,
    pub exceptions: u64,
    pub payouts_proven: u64,
    pub payouts_unproven: u64,
    pub batches_recorded: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationRunCompleted {
    pub summary: RunSummary,
    pub completed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciliationExceptionResolved {
    pub exception_id: ReconciliationExceptionId,
    pub reason: ShortText,
    pub resolved_by: ShortText,
    pub resolved_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconciliationEvent {
    ReconciliationRunStarted(ReconciliationRunStarted),
    ReconciliationExceptionsFound(ReconciliationExceptionsFound),
    PayoutReconciled(PayoutReconciled),
    ReconciliationRunCompleted(ReconciliationRunCompleted),
    ReconciliationExceptionResolved(ReconciliationExceptionResolved),
}

event_codec!(ReconciliationEvent, upcast_reconciliation_event, {
    ReconciliationRunStarted => 1,
    ReconciliationExceptionsFound => 1,
    PayoutReconciled => 1,
    ReconciliationRunCompleted => 1,
    ReconciliationExceptionResolved => 1,
});

/// No reconciliation event has an older schema yet.
fn upcast_reconciliation_event(
    event_type: &str,
    schema_version: u32,
    _payload: serde_json::Value,
) -> Result<serde_json::Value, CodecError> {
    Err(CodecError::InvalidPayload {
        event_type: event_type.to_owned(),
        schema_version,
        reason: "no upcaster exists from this schema version".to_owned(),
    })
}
