//! What services and gateways ask of a payment: imperative requests that `decide` accepts or
//! refuses. Every field is already a parsed domain type; the edges turn raw input into these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decline::DeclineCategory;
use super::event::CaptureMode;
use crate::ids::{
    CaptureId, DisputeId, Environment, MerchantId, OrderId, PaymentId, RefundId, SettlementBatchId,
};
use crate::money::{Money, PositiveMoney};
use crate::stored::stored_names;
use crate::text::ShortText;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiatePayment {
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub environment: Environment,
    pub amount: PositiveMoney,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordAuthorization {
    Approved {
        /// Defaults to the requested amount.
        authorized_amount: Option<PositiveMoney>,
        authorization_code: Option<ShortText>,
        gateway_reference: Option<ShortText>,
        expires_at: Option<DateTime<Utc>>,
    },
    Declined {
        /// The gateway's decline code; a decline may come without one (category unknown).
        decline_code: Option<ShortText>,
        /// Derived from the decline code when the gateway does not say.
        category: Option<DeclineCategory>,
        retry_may_help: Option<bool>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePayment {
    pub capture_id: CaptureId,
    /// Defaults to all that is still capturable.
    pub amount: Option<PositiveMoney>,
    pub final_capture: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCaptureFailure {
    pub capture_id: CaptureId,
    pub amount: PositiveMoney,
    pub reason: ShortText,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoidPayment {
    pub reason: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireAuthorization {
    /// The time the expiry is checked against; the core reads no clock.
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPayment {
    pub refund_id: RefundId,
    /// Defaults to all that is refundable.
    pub amount: Option<PositiveMoney>,
    pub reason: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundOutcome {
    Succeeded,
    Failed { failure_reason: Option<ShortText> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRefundOutcome {
    pub refund_id: RefundId,
    pub outcome: RefundOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDispute {
    pub dispute_id: DisputeId,
    pub amount: PositiveMoney,
    pub reason: ShortText,
    pub evidence_due_by: Option<DateTime<Utc>>,
    /// Defaults to zero.
    pub fee: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitDisputeEvidence {
    pub dispute_id: DisputeId,
    pub evidence: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DisputeOutcome {
    Won,
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveDispute {
    pub dispute_id: DisputeId,
    pub outcome: DisputeOutcome,
}

/// Which money movement of a payment a settlement item settles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "item_id", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettledItem {
    Capture(CaptureId),
    Refund(RefundId),
    Dispute(DisputeId),
}

/// The kind of a [`SettledItem`], stored as its JSON `kind` is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettledItemKind {
    Capture,
    Refund,
    Dispute,
}

stored_names!(SettledItemKind, "settled item kind" {
    Capture => "CAPTURE",
    Refund => "REFUND",
    Dispute => "DISPUTE",
});

impl SettledItem {
    pub fn item_kind(&self) -> SettledItemKind {
        match self {
            SettledItem::Capture(_) => SettledItemKind::Capture,
            SettledItem::Refund(_) => SettledItemKind::Refund,
            SettledItem::Dispute(_) => SettledItemKind::Dispute,
        }
    }

    /// The kind in lower case, as messages and rule details spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            SettledItem::Capture(_) => "capture",
            SettledItem::Refund(_) => "refund",
            SettledItem::Dispute(_) => "dispute",
        }
    }

    pub fn item_id(&self) -> &str {
        match self {
            SettledItem::Capture(id) => id.as_str(),
            SettledItem::Refund(id) => id.as_str(),
            SettledItem::Dispute(id) => id.as_str(),
        }
    }
}

/// Recorded on a payment when a settlement batch names one of its items. Issued by the
/// settlement decision, never on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlePaymentItem {
    pub payment_id: PaymentId,
    pub batch_id: SettlementBatchId,
    pub item: SettledItem,
}

/// Every request a payment can receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum PaymentCommand {
    Initiate(InitiatePayment),
    RecordAuthorization(RecordAuthorization),
    Capture(CapturePayment),
    RecordCaptureFailure(RecordCaptureFailure),
    Void(VoidPayment),
    Expire(ExpireAuthorization),
    Refund(RefundPayment),
    RecordRefundOutcome(RecordRefundOutcome),
    OpenDispute(OpenDispute),
    SubmitDisputeEvidence(SubmitDisputeEvidence),
    ResolveDispute(ResolveDispute),
    Settle(SettlePaymentItem),
}
