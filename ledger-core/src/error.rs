//! The rules a command can break.
//!
//! Each variant is one business rule. [`DomainError::rule`] gives its stable snake_case name
//! (the API's `extensions.rule`); the message says, in words a support agent can act on, what
//! is wrong and what would be accepted instead.

use crate::ids::{CaptureId, DisputeId, PaymentId, PayoutId, RefundId};
use crate::money::{Money, MoneyError};
use crate::payment::PaymentStatus;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("this payment already exists; use a new payment id to start another payment")]
    PaymentAlreadyExists,
    #[error("no such payment: it must be initiated before anything else is recorded")]
    PaymentNotFound,
    #[error("the payment is {status:?} and accepts no further commands")]
    PaymentIsFinal { status: PaymentStatus },
    #[error("the payment is fully refunded; only disputes and their resolution can be recorded")]
    PaymentFullyRefunded,
    #[error("amounts of this payment are in {expected}, not {actual}")]
    CurrencyMismatch {
        expected: crate::currency::Currency,
        actual: crate::currency::Currency,
    },
    #[error("the authorization outcome was already recorded for this payment")]
    AuthorizationAlreadyRecorded,
    #[error("the authorized amount {authorized} exceeds the requested {requested}")]
    AuthorizedExceedsRequested { authorized: Money, requested: Money },
    #[error("the payment is {status:?}; only an authorized payment with an open authorization can be captured")]
    PaymentNotCapturable { status: PaymentStatus },
    #[error("capturing {requested} would exceed the authorization: at most {capturable} can still be captured")]
    CaptureExceedsAuthorized { requested: Money, capturable: Money },
    #[error("capture id {capture_id} was already used on this payment; use a new capture id")]
    DuplicateCaptureId { capture_id: CaptureId },
    #[error(
        "the payment is {status:?}; only a payment whose authorization is still open can be voided"
    )]
    PaymentNotVoidable { status: PaymentStatus },
    #[error("the authorization has no expiry time, so it cannot expire; void it instead")]
    AuthorizationHasNoExpiry,
    #[error("the authorization is valid until {expires_at}; it cannot be expired before then")]
    AuthorizationNotExpired {
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("the payment is {status:?}; only captured payments can be refunded")]
    PaymentNotRefundable { status: PaymentStatus },
    #[error("refunding {requested} would exceed what is refundable: at most {refundable}")]
    RefundExceedsRefundable { requested: Money, refundable: Money },
    #[error("refund id {refund_id} was already used on this payment; use a new refund id")]
    DuplicateRefundId { refund_id: RefundId },
    #[error("no refund {refund_id} on this payment")]
    RefundNotFound { refund_id: RefundId },
    #[error("refund {refund_id} already has its outcome recorded")]
    RefundAlreadyResolved { refund_id: RefundId },
    #[error("the payment is {status:?}; only captured payments can be disputed")]
    PaymentNotDisputable { status: PaymentStatus },
    #[error("a dispute of {requested} exceeds what is disputable: at most {disputable}")]
    DisputeExceedsDisputable { requested: Money, disputable: Money },
    #[error("dispute id {dispute_id} was already used on this payment")]
    DuplicateDisputeId { dispute_id: DisputeId },
    #[error("no dispute {dispute_id} on this payment")]
    DisputeNotFound { dispute_id: DisputeId },
    #[error("dispute {dispute_id} no longer needs a response, so evidence cannot be submitted")]
    DisputeNotAwaitingEvidence { dispute_id: DisputeId },
    #[error("dispute {dispute_id} is already resolved")]
    DisputeAlreadyResolved { dispute_id: DisputeId },
    #[error("the dispute fee must not be negative, got {fee}")]
    NegativeDisputeFee { fee: Money },
    #[error(
        "the evidence is larger than {limit_bytes} bytes of JSON; attach documents by reference"
    )]
    EvidenceTooLarge { limit_bytes: usize },
    #[error("this payment already has the most {kind} allowed ({limit})")]
    TooMany { kind: &'static str, limit: usize },
    #[error("no {kind} {item_id} on payment {payment_id}, so it cannot be settled")]
    SettlementItemNotFound {
        payment_id: PaymentId,
        kind: &'static str,
        item_id: String,
    },
    #[error("{kind} {item_id} of payment {payment_id} is not final yet and cannot be settled")]
    SettlementItemNotSettleable {
        payment_id: PaymentId,
        kind: &'static str,
        item_id: String,
    },
    #[error("{kind} {item_id} of payment {payment_id} was already settled in another batch")]
    SettlementItemAlreadySettled {
        payment_id: PaymentId,
        kind: &'static str,
        item_id: String,
    },
    #[error("{0}")]
    SettlementItemAmountMismatch(Box<AmountMismatch>),
    #[error(
        "payment {payment_id} belongs to another merchant, environment or currency than the batch"
    )]
    SettlementPaymentMismatch { payment_id: PaymentId },
    #[error("this settlement batch was already recorded")]
    SettlementBatchAlreadyRecorded,
    #[error("no such settlement batch: record the batch before its payout")]
    SettlementBatchNotFound,
    #[error("a settlement batch needs at least one item")]
    SettlementBatchEmpty,
    #[error("a settlement batch may hold at most {limit} items")]
    SettlementBatchTooLarge { limit: usize },
    #[error("{kind} {item_id} of payment {payment_id} appears twice in the batch")]
    DuplicateSettlementItem {
        payment_id: PaymentId,
        kind: &'static str,
        item_id: String,
    },
    #[error("settlement fees and reserves must not be negative, got {amount}")]
    NegativeSettlementAmount { amount: Money },
    #[error("the payout of {payout} does not equal the batch's net of {net}")]
    PayoutAmountDiffersFromNet { payout: Money, net: Money },
    #[error("the batch's net is {net}; there is nothing to pay out")]
    NothingToPayOut { net: Money },
    #[error("payout {payout_id} is already under way or paid for this batch")]
    PayoutAlreadyInitiated { payout_id: PayoutId },
    #[error("no payout {payout_id} in transit for this batch")]
    PayoutNotInTransit { payout_id: PayoutId },
    #[error("no such reconciliation run")]
    ReconciliationRunNotFound,
    #[error("this reconciliation run was already started; its file was imported before")]
    ReconciliationRunAlreadyStarted,
    #[error("this reconciliation run is complete and records no further findings")]
    ReconciliationRunAlreadyCompleted,
    #[error("the reconciliation run has no exception {exception_id}")]
    ReconciliationExceptionNotFound { exception_id: String },
    #[error("exception {exception_id} was already resolved; its resolution stands")]
    ReconciliationExceptionAlreadyResolved { exception_id: String },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A settlement item whose figures differ from the ledger's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {item_id} of payment {payment_id}: the batch says {field} {stated}, the ledger has {recorded}")]
pub struct AmountMismatch {
    pub payment_id: PaymentId,
    pub kind: &'static str,
    pub item_id: String,
    pub field: &'static str,
    pub stated: Money,
    pub recorded: Money,
}

impl DomainError {
    /// The stable name of the broken rule, as the API reports it in `extensions.rule`.
    pub fn rule(&self) -> &'static str {
        match self {
            DomainError::PaymentAlreadyExists => "payment_already_exists",
            DomainError::PaymentNotFound => "payment_not_found",
            DomainError::PaymentIsFinal { .. } => "payment_is_final",
            DomainError::PaymentFullyRefunded => "payment_fully_refunded",
            DomainError::CurrencyMismatch { .. } => "currency_mismatch",
            DomainError::AuthorizationAlreadyRecorded => "authorization_already_recorded",
            DomainError::AuthorizedExceedsRequested { .. } => "authorized_exceeds_requested",
            DomainError::PaymentNotCapturable { .. } => "payment_not_capturable",
            DomainError::CaptureExceedsAuthorized { .. } => "capture_exceeds_authorized",
            DomainError::DuplicateCaptureId { .. } => "duplicate_capture_id",
            DomainError::PaymentNotVoidable { .. } => "payment_not_voidable",
            DomainError::AuthorizationHasNoExpiry => "authorization_has_no_expiry",
            DomainError::AuthorizationNotExpired { .. } => "authorization_not_expired",
            DomainError::PaymentNotRefundable { .. } => "payment_not_refundable",
            DomainError::RefundExceedsRefundable { .. } => "refund_exceeds_refundable",
            DomainError::DuplicateRefundId { .. } => "duplicate_refund_id",
            DomainError::RefundNotFound { .. } => "refund_not_found",
            DomainError::RefundAlreadyResolved { .. } => "refund_already_resolved",
            DomainError::PaymentNotDisputable { .. } => "payment_not_disputable",
            DomainError::DisputeExceedsDisputable { .. } => "dispute_exceeds_disputable",
            DomainError::DuplicateDisputeId { .. } => "duplicate_dispute_id",
            DomainError::DisputeNotFound { .. } => "dispute_not_found",
            DomainError::DisputeNotAwaitingEvidence { .. } => "dispute_not_awaiting_evidence",
            DomainError::DisputeAlreadyResolved { .. } => "dispute_already_resolved",
            DomainError::NegativeDisputeFee { .. } => "negative_dispute_fee",
            DomainError::EvidenceTooLarge { .. } => "evidence_too_large",
            DomainError::TooMany { .. } => "too_many_items",
            DomainError::SettlementItemNotFound { .. } => "settlement_item_not_found",
            DomainError::SettlementItemNotSettleable { .. } => "settlement_item_not_settleable",
            DomainError::SettlementItemAlreadySettled { .. } => "settlement_item_already_settled",
            DomainError::SettlementItemAmountMismatch(_) => "settlement_item_amount_mismatch",
            DomainError::SettlementPaymentMismatch { .. } => "settlement_payment_mismatch",
            DomainError::SettlementBatchAlreadyRecorded => "settlement_batch_already_recorded",
            DomainError::SettlementBatchNotFound => "settlement_batch_not_found",
            DomainError::SettlementBatchEmpty => "settlement_batch_empty",
            DomainError::SettlementBatchTooLarge { .. } => "settlement_batch_too_large",
            DomainError::DuplicateSettlementItem { .. } => "duplicate_settlement_item",
            DomainError::NegativeSettlementAmount { .. } => "negative_settlement_amount",
            DomainError::PayoutAmountDiffersFromNet { .. } => "payout_amount_differs_from_net",
            DomainError::NothingToPayOut { .. } => "nothing_to_pay_out",
            DomainError::PayoutAlreadyInitiated { .. } => "payout_already_initiated",
            DomainError::PayoutNotInTransit { .. } => "payout_not_in_transit",
            DomainError::ReconciliationRunNotFound => "reconciliation_run_not_found",
            DomainError::ReconciliationRunAlreadyStarted => "reconciliation_run_already_started",
            DomainError::ReconciliationRunAlreadyCompleted => {
                "reconciliation_run_already_completed"
            }
            DomainError::ReconciliationExceptionNotFound { .. } => {
                "reconciliation_exception_not_found"
            }
            DomainError::ReconciliationExceptionAlreadyResolved { .. } => {
                "reconciliation_exception_already_resolved"
            }
            DomainError::Money(MoneyError::CurrencyMismatch { .. }) => "currency_mismatch",
            DomainError::Money(_) => "invalid_amount",
        }
    }
}
