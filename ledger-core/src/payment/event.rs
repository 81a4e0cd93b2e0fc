//! What happened to a payment: past-tense facts, each with the data a reader needs without
//! consulting anything else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decline::DeclineCategory;
use crate::codec::{event_codec, CodecError};
use crate::ids::{
    CaptureId, DisputeId, Environment, MerchantId, OrderId, RefundId, SettlementBatchId,
};
use crate::money::Money;
use crate::stored::stored_names;
use crate::text::ShortText;

/// When the authorized amount is taken: right away, or by explicit captures later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    Automatic,
    Manual,
}

stored_names!(CaptureMode, "capture mode" {
    Automatic => "AUTOMATIC",
    Manual => "MANUAL",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentInitiated {
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub environment: Environment,
    pub amount: Money,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    pub authorized_amount: Money,
    pub authorization_code: Option<ShortText>,
    pub gateway_reference: Option<ShortText>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Schema v2 added `category` and `retry_may_help`; v1 payloads are upcast by classifying
/// their decline code. Schema v3 allows a decline without a code (`decline_code: null`); a v2
/// payload is a v3 payload as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    /// `None` when the gateway gave no code (schema v3; v1 and v2 always had one).
    pub decline_code: Option<ShortText>,
    pub category: DeclineCategory,
    pub retry_may_help: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub capture_id: CaptureId,
    pub amount: Money,
    /// A final capture closes the authorization: the uncaptured rest is released.
    pub final_capture: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureFailed {
    pub capture_id: CaptureId,
    pub amount: Money,
    pub reason: ShortText,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationVoided {
    pub reason: Option<ShortText>,
    /// The part of the authorization given back to the customer.
    pub released_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationExpired {
    pub released_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequested {
    pub refund_id: RefundId,
    pub amount: Money,
    pub reason: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundSucceeded {
    pub refund_id: RefundId,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundFailed {
    pub refund_id: RefundId,
    /// The amount released back into the refundable amount.
    pub amount: Money,
    pub reason: Option<ShortText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeOpened {
    pub dispute_id: DisputeId,
    pub amount: Money,
    pub reason: ShortText,
    pub evidence_due_by: Option<DateTime<Utc>>,
    /// The gateway's dispute fee, zero when it charges none.
    pub fee: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeEvidenceSubmitted {
    pub dispute_id: DisputeId,
    pub evidence: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeWon {
    pub dispute_id: DisputeId,
    /// The disputed amount, reinstated to the merchant.
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeLost {
    pub dispute_id: DisputeId,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSettled {
    pub capture_id: CaptureId,
    pub batch_id: SettlementBatchId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundSettled {
    pub refund_id: RefundId,
    pub batch_id: SettlementBatchId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeSettled {
    pub dispute_id: DisputeId,
    pub batch_id: SettlementBatchId,
}

/// Every fact a payment stream can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    PaymentInitiated(PaymentInitiated),
    PaymentAuthorized(PaymentAuthorized),
    PaymentDeclined(PaymentDeclined),
    PaymentCaptured(PaymentCaptured),
    CaptureFailed(CaptureFailed),
    AuthorizationVoided(AuthorizationVoided),
    AuthorizationExpired(AuthorizationExpired),
    RefundRequested(RefundRequested),
    RefundSucceeded(RefundSucceeded),
    RefundFailed(RefundFailed),
    DisputeOpened(DisputeOpened),
    DisputeEvidenceSubmitted(DisputeEvidenceSubmitted),
    DisputeWon(DisputeWon),
    DisputeLost(DisputeLost),
    CaptureSettled(CaptureSettled),
    RefundSettled(RefundSettled),
    DisputeSettled(DisputeSettled),
}

event_codec!(PaymentEvent, upcast_payment_event, {
    PaymentInitiated => 1,
    PaymentAuthorized => 1,
    PaymentDeclined => 3,
    PaymentCaptured => 1,
    CaptureFailed => 1,
    AuthorizationVoided => 1,
    AuthorizationExpired => 1,
    RefundRequested => 1,
    RefundSucceeded => 1,
    RefundFailed => 1,
    DisputeOpened => 1,
    DisputeEvidenceSubmitted => 1,
    DisputeWon => 1,
    DisputeLost => 1,
    CaptureSettled => 1,
    RefundSettled => 1,
    DisputeSettled => 1,
});

/// Brings an older payload up to the current schema of its type.
fn upcast_payment_event(
    event_type: &str,
    schema_version: u32,
    mut payload: serde_json::Value,
) -> Result<serde_json::Value, CodecError> {
    match (event_type, schema_version) {
        ("PaymentDeclined", 1) => {
            let code = payload
                .get("decline_code")
                .and_then(serde_json::Value::as_str)
                .map(DeclineCategory::classify)
                .ok_or_else(|| CodecError::InvalidPayload {
                    event_type: event_type.to_owned(),
                    schema_version,
                    reason: "missing decline_code".to_owned(),
                })?;
            if let Some(object) = payload.as_object_mut() {
                object.insert(
                    "category".to_owned(),
                    serde_json::Value::String(code.as_str().to_owned()),
                );
                object.insert(
                    "retry_may_help".to_owned(),
                    serde_json::Value::Bool(code.retry_may_help()),
                );
            }
            Ok(payload)
        }
        // Every v2 payload has a code, which v3 allows as well.
        ("PaymentDeclined", 2) => Ok(payload),
        _ => Err(CodecError::InvalidPayload {
            event_type: event_type.to_owned(),
            schema_version,
            reason: "no upcaster exists from this schema version".to_owned(),
        }),
    }
}
