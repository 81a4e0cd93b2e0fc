//! GraphQL output types: views built from ledger-core states and recorded events, with `From`
//! conversions. Nothing here decides anything.

pub mod playbook;
pub mod reconciliation;

use async_graphql::{ComplexObject, Context, Enum, Json, SimpleObject};
use chrono::{DateTime, Utc};
use ledger_core::ids::Environment as CoreEnvironment;
use ledger_core::payment::state::{
    self as core_payment, Authorization, DisputeStatus as CoreDisputeStatus,
    RefundStatus as CoreRefundStatus,
};
use ledger_core::payment::{CaptureMode as CoreCaptureMode, PaymentStatus as CorePaymentStatus};
use ledger_core::settlement::{self as core_settlement, PayoutStatus as CorePayoutStatus};
use ledger_core::Money;
use ledger_store::state_cache::StreamSummary;
use ledger_store::RecordedEvent;
use uuid::Uuid;

use super::context::{caller, state};
use super::scalars::{DecimalText, Position};
use crate::auth::Permission;
use crate::error::{ApiResult, IntoGraphql};

pub fn amount(money: Money) -> DecimalText {
    DecimalText(money.amount().to_string())
}

/// `From` both ways between a core enum and the GraphQL enum of the same variants: the
/// GraphQL names are async-graphql's (SCREAMING_SNAKE_CASE of the variant), the stored names
/// are the core's own (`as_str`), and neither depends on the other.
macro_rules! same_variants {
    ($core:ident, $graphql:ident { $($variant:ident),+ $(,)? }) => {
        impl From<$core> for $graphql {
            fn from(value: $core) -> Self {
                match value {
                    $($core::$variant => $graphql::$variant),+
                }
            }
        }

        impl From<$graphql> for $core {
            fn from(value: $graphql) -> Self {
                match value {
                    $($graphql::$variant => $core::$variant),+
                }
            }
        }
    };
}
pub(crate) use same_variants;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PaymentStatus {
    Initiated,
    Authorized,
    PartiallyCaptured,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
    Declined,
    Expired,
}

same_variants!(
    CorePaymentStatus,
    PaymentStatus {
        Initiated,
        Authorized,
        PartiallyCaptured,
        Captured,
        PartiallyRefunded,
        Refunded,
        Voided,
        Declined,
        Expired,
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    Automatic,
    Manual,
}

same_variants!(CoreCaptureMode, CaptureMode { Automatic, Manual });

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Environment {
    Test,
    Live,
}

same_variants!(CoreEnvironment, Environment { Test, Live });

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

same_variants!(
    CoreRefundStatus,
    RefundStatus {
        Pending,
        Succeeded,
        Failed,
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DisputeStatus {
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

same_variants!(
    CoreDisputeStatus,
    DisputeStatus {
        NeedsResponse,
        UnderReview,
        Won,
        Lost,
    }
);

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PayoutStatus {
    InTransit,
    Paid,
    Failed,
}

same_variants!(
    CorePayoutStatus,
    PayoutStatus {
        InTransit,
        Paid,
        Failed,
    }
);

#[derive(SimpleObject, Clone, Debug)]
pub struct Capture {
    pub capture_id: String,
    pub amount: DecimalText,
    pub final_capture: bool,
    pub settled_in_batch: Option<Uuid>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Refund {
    pub refund_id: String,
    pub amount: DecimalText,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub failure_reason: Option<String>,
    pub settled_in_batch: Option<Uuid>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Dispute {
    pub dispute_id: String,
    pub amount: DecimalText,
    pub fee: DecimalText,
    pub reason: String,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub status: DisputeStatus,
    pub settled_in_batch: Option<Uuid>,
}

/// One event of the log with its position and place in the hash chain.
#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerEvent {
    pub position: Position,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub version: Position,
    #[graphql(name = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
    pub payload: Json<serde_json::Value>,
    pub metadata: Json<serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&RecordedEvent> for LedgerEvent {
    fn from(event: &RecordedEvent) -> Self {
        LedgerEvent {
            position: Position(event.position),
            event_id: event.event_id,
            stream_id: event.stream_id,
            stream_type: event.stream_type.as_str().to_owned(),
            version: Position(event.stream_version),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            occurred_at: event.occurred_at,
            payload: Json(event.payload.clone()),
            metadata: Json(event.metadata.clone()),
            prev_hash: hex::encode(event.prev_hash),
            hash: hex::encode(event.hash),
        }
    }
}

/// A payment as its events made it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: String,
    pub merchant_id: String,
    pub environment: Environment,
    pub status: PaymentStatus,
    pub currency: String,
    pub amount: DecimalText,
    pub authorized_amount: DecimalText,
    pub captured_amount: DecimalText,
    pub capturable_amount: DecimalText,
    pub refunded_amount: DecimalText,
    pub refund_pending_amount: DecimalText,
    pub disputed_amount: DecimalText,
    pub refundable_amount: DecimalText,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<String>,
    pub authorization_code: Option<String>,
    pub decline_code: Option<String>,
    pub retry_may_help: Option<bool>,
    /// The failure playbook's advice for the decline; null unless the payment was declined.
    pub decline_advice: Option<playbook::DeclineAdvice>,
    pub captures: Vec<Capture>,
    pub refunds: Vec<Refund>,
    pub disputes: Vec<Dispute>,
    pub version: Position,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Payment {
    /// The events this view was folded from, in version order. Needs the payment history
    /// permission; the events a command just recorded are in its result's `events`.
    async fn events(&self, context: &Context<'_>) -> async_graphql::Result<Vec<LedgerEvent>> {
        async {
            caller(context, Permission::ReadPaymentHistory)?;
            stream_events(context, self.id, self.version).await
        }
        .await
        .graphql()
    }
}

/// A stream's events up to `version`: read only when a query asks for them, and cut at the
/// version the rest of the answer was folded from, so the two agree even if the stream grew
/// in between.
async fn stream_events(
    context: &Context<'_>,
    stream_id: Uuid,
    version: Position,
) -> ApiResult<Vec<LedgerEvent>> {
    let events = state(context)?
        .handler
        .store()
        .read_stream(stream_id, 1)
        .await?;
    Ok(events
        .iter()
        .take_while(|event| event.stream_version <= version.0)
        .map(LedgerEvent::from)
        .collect())
}

impl Payment {
    /// Builds the view from the folded payment and the stream it was folded from.
    pub fn new(id: Uuid, payment: &core_payment::Payment, stream: &StreamSummary) -> Payment {
        let (authorization_code, decline_code, retry_may_help) = match &payment.authorization {
            Authorization::Approved {
                authorization_code, ..
            } => (
                authorization_code.as_ref().map(ToString::to_string),
                None,
                None,
            ),
            Authorization::Declined {
                decline_code,
                retry_may_help,
                ..
            } => (
                None,
                decline_code.as_ref().map(ToString::to_string),
                Some(*retry_may_help),
            ),
            Authorization::Pending => (None, None, None),
        };
        Payment {
            id,
            order_id: payment.order_id.to_string(),
            merchant_id: payment.merchant_id.to_string(),
            environment: payment.environment.into(),
            status: payment.status().into(),
            currency: payment.currency().code().to_owned(),
            amount: amount(payment.requested_amount),
            authorized_amount: amount(payment.authorized_amount()),
            captured_amount: amount(payment.captured_amount()),
            capturable_amount: amount(payment.capturable_amount()),
            refunded_amount: amount(payment.refunded_amount()),
            refund_pending_amount: amount(payment.refund_pending_amount()),
            disputed_amount: amount(payment.disputed_amount()),
            refundable_amount: amount(payment.refundable_amount()),
            capture_mode: payment.capture_mode.into(),
            payment_method: payment.payment_method.as_ref().map(ToString::to_string),
            authorization_code,
            decline_advice: matches!(payment.authorization, Authorization::Declined { .. })
                .then(|| playbook::DeclineAdvice::for_decline(decline_code.as_deref())),
            decline_code,
            retry_may_help,
            captures: payment.captures.iter().map(capture).collect(),
            refunds: payment.refunds.iter().map(refund).collect(),
            disputes: payment.disputes.iter().map(dispute).collect(),
            version: Position(stream.version),
            created_at: stream.first_occurred_at.unwrap_or_default(),
            updated_at: stream.last_occurred_at.unwrap_or_default(),
        }
    }
}

fn capture(capture: &core_payment::Capture) -> Capture {
    Capture {
        capture_id: capture.capture_id.to_string(),
        amount: amount(capture.amount),
        final_capture: capture.final_capture,
        settled_in_batch: capture.settled_in.map(|batch| batch.as_uuid()),
    }
}

fn refund(refund: &core_payment::Refund) -> Refund {
    Refund {
        refund_id: refund.refund_id.to_string(),
        amount: amount(refund.amount),
        status: refund.status.into(),
        reason: refund.reason.as_ref().map(ToString::to_string),
        failure_reason: refund.failure_reason.as_ref().map(ToString::to_string),
        settled_in_batch: refund.settled_in.map(|batch| batch.as_uuid()),
    }
}

fn dispute(dispute: &core_payment::Dispute) -> Dispute {
    Dispute {
        dispute_id: dispute.dispute_id.to_string(),
        amount: amount(dispute.amount),
        fee: amount(dispute.fee),
        reason: dispute.reason.to_string(),
        evidence_due_by: dispute.evidence_due_by,
        status: dispute.status.into(),
        settled_in_batch: dispute.settled_in.map(|batch| batch.as_uuid()),
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SettlementItem {
    pub payment_id: Uuid,
    pub kind: String,
    pub item_id: String,
    pub gross: DecimalText,
    pub fee: DecimalText,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Payout {
    pub payout_id: String,
    pub amount: DecimalText,
    pub status: PayoutStatus,
    pub expected_arrival_date: Option<chrono::NaiveDate>,
    pub failure_reason: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct SettlementBatch {
    pub id: Uuid,
    pub merchant_id: String,
    pub environment: Environment,
    pub currency: String,
    pub gross: DecimalText,
    pub fees: DecimalText,
    pub reserve: DecimalText,
    pub net: DecimalText,
    pub items: Vec<SettlementItem>,
    pub payouts: Vec<Payout>,
    pub version: Position,
}

#[ComplexObject]
impl SettlementBatch {
    /// The events this view was folded from, in version order.
    async fn events(&self, context: &Context<'_>) -> async_graphql::Result<Vec<LedgerEvent>> {
        stream_events(context, self.id, self.version)
            .await
            .graphql()
    }
}

impl SettlementBatch {
    pub fn new(
        id: Uuid,
        batch: &core_settlement::SettlementBatch,
        stream: &StreamSummary,
    ) -> SettlementBatch {
        SettlementBatch {
            id,
            merchant_id: batch.merchant_id.to_string(),
            environment: batch.environment.into(),
            currency: batch.currency.code().to_owned(),
            gross: amount(batch.gross),
            fees: amount(batch.fees),
            reserve: amount(batch.reserve),
            net: amount(batch.net),
            items: batch
                .items
                .iter()
                .map(|item| SettlementItem {
                    payment_id: item.payment_id.as_uuid(),
                    kind: item.item.item_kind().as_str().to_owned(),
                    item_id: item.item.item_id().to_owned(),
                    gross: amount(item.gross),
                    fee: amount(item.fee),
                })
                .collect(),
            payouts: batch
                .payouts
                .iter()
                .map(|payout| Payout {
                    payout_id: payout.payout_id.to_string(),
                    amount: amount(payout.amount),
                    status: payout.status.into(),
                    expected_arrival_date: payout.expected_arrival_date,
                    failure_reason: payout.failure_reason.as_ref().map(ToString::to_string),
                })
                .collect(),
            version: Position(stream.version),
        }
    }
}

/// What a payment mutation returns: the new state, the events recorded (for a replay, those
/// the original call recorded) and the log position reached.
#[derive(SimpleObject, Clone, Debug)]
pub struct PaymentResult {
    pub payment: Payment,
    pub events: Vec<LedgerEvent>,
    pub position: Position,
    /// True when this answer repeats an earlier call with the same idempotency key.
    pub replayed: bool,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct SettlementResult {
    pub batch: SettlementBatch,
    pub events: Vec<LedgerEvent>,
    pub position: Position,
    pub replayed: bool,
}

/// A Stripe event as the webhook endpoint handled it.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDelivery {
    pub stripe_event_id: String,
    pub event_type: String,
    pub payment_intent_id: Option<String>,
    pub payment_id: Option<Uuid>,
    /// applied, duplicate, ignored, parked, conflict, rejected or expired (parked for more
    /// than 72 hours and never applied).
    pub outcome: String,
    pub detail: Option<String>,
    pub first_position: Option<Position>,
    pub last_position: Option<Position>,
    pub delivery_count: u32,
    pub received_at: DateTime<Utc>,
    pub last_received_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
}

impl From<&ledger_stripe::webhooks::WebhookDelivery> for WebhookDelivery {
    fn from(delivery: &ledger_stripe::webhooks::WebhookDelivery) -> Self {
        WebhookDelivery {
            stripe_event_id: delivery.stripe_event_id.clone(),
            event_type: delivery.event_type.clone(),
            payment_intent_id: delivery.payment_intent_id.clone(),
            payment_id: delivery.payment_id.map(|payment_id| payment_id.as_uuid()),
            outcome: delivery.outcome.as_str().to_owned(),
            detail: delivery.detail.clone(),
            first_position: delivery.first_position.map(Position),
            last_position: delivery.last_position.map(Position),
            delivery_count: delivery.delivery_count,
            received_at: delivery.received_at,
            last_received_at: delivery.last_received_at,
            processed_at: delivery.processed_at,
        }
    }
}
