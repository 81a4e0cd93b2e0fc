//! A payment as its events have made it, and `evolve`, the one function that changes it.
//!
//! Every amount shown to users (captured, refunded, refundable, …) is derived here from the
//! folded facts, never stored apart from them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::command::SettledItem;
use super::decline::DeclineCategory;
use super::event::{CaptureMode, PaymentEvent};
use crate::currency::Currency;
use crate::ids::{
    CaptureId, DisputeId, Environment, MerchantId, OrderId, RefundId, SettlementBatchId,
};
use crate::money::Money;
use crate::stored::stored_names;
use crate::text::ShortText;

/// The payment's lifecycle status, derived from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

stored_names!(PaymentStatus, "payment status" {
    Initiated => "INITIATED",
    Authorized => "AUTHORIZED",
    PartiallyCaptured => "PARTIALLY_CAPTURED",
    Captured => "CAPTURED",
    PartiallyRefunded => "PARTIALLY_REFUNDED",
    Refunded => "REFUNDED",
    Voided => "VOIDED",
    Declined => "DECLINED",
    Expired => "EXPIRED",
});

impl PaymentStatus {
    /// Declined, voided and expired payments accept no further commands.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentStatus::Voided | PaymentStatus::Declined | PaymentStatus::Expired
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DisputeStatus {
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

stored_names!(DisputeStatus, "dispute status" {
    NeedsResponse => "NEEDS_RESPONSE",
    UnderReview => "UNDER_REVIEW",
    Won => "WON",
    Lost => "LOST",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

stored_names!(RefundStatus, "refund status" {
    Pending => "PENDING",
    Succeeded => "SUCCEEDED",
    Failed => "FAILED",
});

/// Why no more can be captured although the authorization was not used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationClosure {
    FinalCapture,
    Voided,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authorization {
    Pending,
    Approved {
        amount: Money,
        authorization_code: Option<ShortText>,
        gateway_reference: Option<ShortText>,
        expires_at: Option<DateTime<Utc>>,
    },
    Declined {
        decline_code: Option<ShortText>,
        category: DeclineCategory,
        retry_may_help: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub capture_id: CaptureId,
    pub amount: Money,
    pub final_capture: bool,
    pub settled_in: Option<SettlementBatchId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCapture {
    pub capture_id: CaptureId,
    pub amount: Money,
    pub reason: ShortText,
    pub retryable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: RefundId,
    pub amount: Money,
    pub reason: Option<ShortText>,
    pub status: RefundStatus,
    pub failure_reason: Option<ShortText>,
    pub settled_in: Option<SettlementBatchId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub dispute_id: DisputeId,
    pub amount: Money,
    pub fee: Money,
    pub reason: ShortText,
    pub evidence_due_by: Option<DateTime<Utc>>,
    pub status: DisputeStatus,
    pub evidence: Vec<serde_json::Value>,
    pub settled_in: Option<SettlementBatchId>,
}

impl Dispute {
    /// Open and lost disputes hold money back from the merchant; won ones have given it back.
    pub fn withholds_funds(&self) -> bool {
        !matches!(self.status, DisputeStatus::Won)
    }

    pub fn is_resolved(&self) -> bool {
        matches!(self.status, DisputeStatus::Won | DisputeStatus::Lost)
    }
}

/// An initiated payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub environment: Environment,
    pub requested_amount: Money,
    pub capture_mode: CaptureMode,
    pub payment_method: Option<ShortText>,
    pub authorization: Authorization,
    pub closure: Option<AuthorizationClosure>,
    pub captures: Vec<Capture>,
    pub failed_captures: Vec<FailedCapture>,
    pub refunds: Vec<Refund>,
    pub disputes: Vec<Dispute>,
}

/// A payment stream folded: nothing yet, or a payment, and how many events made it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentState {
    pub payment: Option<Payment>,
    pub version: u64,
}

fn sum(currency: Currency, mut amounts: impl Iterator<Item = Money>) -> Money {
    let total = amounts.try_fold(Money::zero(currency), |sum, amount| sum.checked_add(amount));
    // The rules keep captures within the authorized amount and refunds and disputes within
    // the captured one (invariant 2), all below the requested amount: a sum past the range
    // means a log that broke them, and any number answered instead would be wrong.
    match total {
        Ok(total) => total,
        Err(error) => panic!("a payment's amounts add up past the range of amounts: {error}"),
    }
}

impl Payment {
    pub fn currency(&self) -> Currency {
        self.requested_amount.currency()
    }

    pub fn authorized_amount(&self) -> Money {
        match &self.authorization {
            Authorization::Approved { amount, .. } => *amount,
            _ => Money::zero(self.currency()),
        }
    }

    pub fn captured_amount(&self) -> Money {
        sum(
            self.currency(),
            self.captures.iter().map(|capture| capture.amount),
        )
    }

    fn refunds_with(&self, status: RefundStatus) -> Money {
        sum(
            self.currency(),
            self.refunds
                .iter()
                .filter(|refund| refund.status == status)
                .map(|refund| refund.amount),
        )
    }

    /// Refunds the gateway has confirmed.
    pub fn refunded_amount(&self) -> Money {
        self.refunds_with(RefundStatus::Succeeded)
    }

    /// Refunds requested but without an outcome yet.
    pub fn refund_pending_amount(&self) -> Money {
        self.refunds_with(RefundStatus::Pending)
    }

    /// Open and lost disputes: the money a dispute currently takes from the merchant.
    pub fn disputed_amount(&self) -> Money {
        sum(
            self.currency(),
            self.disputes
                .iter()
                .filter(|dispute| dispute.withholds_funds())
                .map(|dispute| dispute.amount),
        )
    }

    /// Captured − (pending + succeeded refunds) − (open + lost disputes).
    pub fn refundable_amount(&self) -> Money {
        let rest = self.captured_amount().amount()
            - self.refund_pending_amount().amount()
            - self.refunded_amount().amount()
            - self.disputed_amount().amount();
        debug_assert!(
            rest >= Decimal::ZERO,
            "refunds and disputes exceed captures"
        );
        self.money(rest.max(Decimal::ZERO))
    }

    /// An amount known to be valid for this payment: the difference of two of its sums, both
    /// within the range and of one sign, is within it too.
    fn money(&self, amount: Decimal) -> Money {
        match Money::new(amount, self.currency()) {
            Ok(money) => money,
            Err(error) => panic!("a payment's derived amount is out of range: {error}"),
        }
    }

    /// What a new dispute may still claim: the same as the refundable amount.
    pub fn disputable_amount(&self) -> Money {
        self.refundable_amount()
    }

    /// Whether more can be captured: approved, not closed, not used up.
    pub fn capture_open(&self) -> bool {
        matches!(self.authorization, Authorization::Approved { .. })
            && self.closure.is_none()
            && self.captured_amount().amount() < self.authorized_amount().amount()
    }

    /// What a capture may still take.
    pub fn capturable_amount(&self) -> Money {
        if !self.capture_open() {
            return Money::zero(self.currency());
        }
        self.money(self.authorized_amount().amount() - self.captured_amount().amount())
    }

    pub fn status(&self) -> PaymentStatus {
        match &self.authorization {
            Authorization::Declined { .. } => PaymentStatus::Declined,
            Authorization::Pending => match self.closure {
                Some(AuthorizationClosure::Voided) => PaymentStatus::Voided,
                _ => PaymentStatus::Initiated,
            },
            Authorization::Approved { .. } if self.captures.is_empty() => match self.closure {
                Some(AuthorizationClosure::Voided) => PaymentStatus::Voided,
                Some(AuthorizationClosure::Expired) => PaymentStatus::Expired,
                _ => PaymentStatus::Authorized,
            },
            Authorization::Approved { .. } => {
                let refunded = self.refunded_amount();
                if refunded.is_positive() && refunded == self.captured_amount() {
                    PaymentStatus::Refunded
                } else if refunded.is_positive() {
                    PaymentStatus::PartiallyRefunded
                } else if self.capture_open() {
                    PaymentStatus::PartiallyCaptured
                } else {
                    PaymentStatus::Captured
                }
            }
        }
    }

    pub fn capture(&self, capture_id: &CaptureId) -> Option<&Capture> {
        self.captures
            .iter()
            .find(|capture| &capture.capture_id == capture_id)
    }

    pub fn refund(&self, refund_id: &RefundId) -> Option<&Refund> {
        self.refunds
            .iter()
            .find(|refund| &refund.refund_id == refund_id)
    }

    pub fn dispute(&self, dispute_id: &DisputeId) -> Option<&Dispute> {
        self.disputes
            .iter()
            .find(|dispute| &dispute.dispute_id == dispute_id)
    }

    /// The batch an item was settled in, if it exists and was settled.
    pub fn settled_in(&self, item: &SettledItem) -> Option<SettlementBatchId> {
        match item {
            SettledItem::Capture(id) => self.capture(id).and_then(|capture| capture.settled_in),
            SettledItem::Refund(id) => self.refund(id).and_then(|refund| refund.settled_in),
            SettledItem::Dispute(id) => self.dispute(id).and_then(|dispute| dispute.settled_in),
        }
    }
}

impl PaymentState {
    pub fn status(&self) -> Option<PaymentStatus> {
        self.payment.as_ref().map(Payment::status)
    }
}

/// Applies one event. Total: an event that does not fit the state (which `decide` never
/// produces) leaves the payment unchanged but still counts toward the version, and
/// [`super::invariants::check`] reports it when folding a stream for verification.
pub fn evolve(mut state: PaymentState, event: &PaymentEvent) -> PaymentState {
    state.version += 1;
    match (&mut state.payment, event) {
        (None, PaymentEvent::PaymentInitiated(initiated)) => {
            state.payment = Some(Payment {
                merchant_id: initiated.merchant_id.clone(),
                order_id: initiated.order_id.clone(),
                environment: initiated.environment,
                requested_amount: initiated.amount,
                capture_mode: initiated.capture_mode,
                payment_method: initiated.payment_method.clone(),
                authorization: Authorization::Pending,
                closure: None,
                captures: Vec::new(),
                failed_captures: Vec::new(),
                refunds: Vec::new(),
                disputes: Vec::new(),
            });
        }
        (Some(payment), event) => apply(payment, event),
        (None, _) => {}
    }
    state
}

fn apply(payment: &mut Payment, event: &PaymentEvent) {
    match event {
        PaymentEvent::PaymentInitiated(_) => {}
        PaymentEvent::PaymentAuthorized(authorized) => {
            payment.authorization = Authorization::Approved {
                amount: authorized.authorized_amount,
                authorization_code: authorized.authorization_code.clone(),
                gateway_reference: authorized.gateway_reference.clone(),
                expires_at: authorized.expires_at,
            };
        }
        PaymentEvent::PaymentDeclined(declined) => {
            payment.authorization = Authorization::Declined {
                decline_code: declined.decline_code.clone(),
                category: declined.category,
                retry_may_help: declined.retry_may_help,
            };
        }
        PaymentEvent::PaymentCaptured(captured) => {
            payment.captures.push(Capture {
                capture_id: captured.capture_id.clone(),
                amount: captured.amount,
                final_capture: captured.final_capture,
                settled_in: None,
            });
            if captured.final_capture {
                payment.closure = Some(AuthorizationClosure::FinalCapture);
            }
        }
        PaymentEvent::CaptureFailed(failed) => payment.failed_captures.push(FailedCapture {
            capture_id: failed.capture_id.clone(),
            amount: failed.amount,
            reason: failed.reason.clone(),
            retryable: failed.retryable,
        }),
        PaymentEvent::AuthorizationVoided(_) => {
            payment.closure = Some(AuthorizationClosure::Voided);
        }
        PaymentEvent::AuthorizationExpired(_) => {
            payment.closure = Some(AuthorizationClosure::Expired);
        }
        PaymentEvent::RefundRequested(requested) => payment.refunds.push(Refund {
            refund_id: requested.refund_id.clone(),
            amount: requested.amount,
            reason: requested.reason.clone(),
            status: RefundStatus::Pending,
            failure_reason: None,
            settled_in: None,
        }),
        PaymentEvent::RefundSucceeded(succeeded) => {
            if let Some(refund) = refund_mut(payment, &succeeded.refund_id) {
                refund.status = RefundStatus::Succeeded;
            }
        }
        PaymentEvent::RefundFailed(failed) => {
            if let Some(refund) = refund_mut(payment, &failed.refund_id) {
                refund.status = RefundStatus::Failed;
                refund.failure_reason = failed.reason.clone();
            }
        }
        PaymentEvent::DisputeOpened(opened) => payment.disputes.push(Dispute {
            dispute_id: opened.dispute_id.clone(),
            amount: opened.amount,
            fee: opened.fee,
            reason: opened.reason.clone(),
            evidence_due_by: opened.evidence_due_by,
            status: DisputeStatus::NeedsResponse,
            evidence: Vec::new(),
            settled_in: None,
        }),
        PaymentEvent::DisputeEvidenceSubmitted(submitted) => {
            if let Some(dispute) = dispute_mut(payment, &submitted.dispute_id) {
                dispute.status = DisputeStatus::UnderReview;
                dispute.evidence.push(submitted.evidence.clone());
            }
        }
        PaymentEvent::DisputeWon(won) => {
            if let Some(dispute) = dispute_mut(payment, &won.dispute_id) {
                dispute.status = DisputeStatus::Won;
            }
        }
        PaymentEvent::DisputeLost(lost) => {
            if let Some(dispute) = dispute_mut(payment, &lost.dispute_id) {
                dispute.status = DisputeStatus::Lost;
            }
        }
        PaymentEvent::CaptureSettled(settled) => {
            if let Some(capture) = payment
                .captures
                .iter_mut()
                .find(|capture| capture.capture_id == settled.capture_id)
            {
                capture.settled_in = Some(settled.batch_id);
            }
        }
        PaymentEvent::RefundSettled(settled) => {
            if let Some(refund) = refund_mut(payment, &settled.refund_id) {
                refund.settled_in = Some(settled.batch_id);
            }
        }
        PaymentEvent::DisputeSettled(settled) => {
            if let Some(dispute) = dispute_mut(payment, &settled.dispute_id) {
                dispute.settled_in = Some(settled.batch_id);
            }
        }
    }
}

fn refund_mut<'a>(payment: &'a mut Payment, refund_id: &RefundId) -> Option<&'a mut Refund> {
    payment
        .refunds
        .iter_mut()
        .find(|refund| &refund.refund_id == refund_id)
}

fn dispute_mut<'a>(payment: &'a mut Payment, dispute_id: &DisputeId) -> Option<&'a mut Dispute> {
    payment
        .disputes
        .iter_mut()
        .find(|dispute| &dispute.dispute_id == dispute_id)
}

/// Folds a whole stream from nothing.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a PaymentEvent>) -> PaymentState {
    events.into_iter().fold(PaymentState::default(), evolve)
}
